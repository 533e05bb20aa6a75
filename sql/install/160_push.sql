-- Writing approved cards back to the PSA, and putting a pushed change back.
--
-- Exactly once: every write first reads the PSA's quantity for the line on
-- the effective date and sends nothing when it already holds the new one
-- (billrecon._write_back_quantity with check_first). A push interrupted after
-- the PSA applied it (crash, timeout, cancelled statement) leaves the card
-- approved or failed; the retry finds the quantity in place and only marks
-- the card pushed. Card rows are locked while they are pushed, so two
-- sessions never push one card at once.

CREATE FUNCTION billrecon.push_changes(include_future boolean DEFAULT false, card_ids bigint[] DEFAULT NULL)
RETURNS TABLE (card_id bigint, status text, error text, quantity_before numeric, quantity_after numeric, note text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $pc$
DECLARE
  v_role name := billrecon._acting_role();
  v_card billrecon.proposed_changes;
  v_psa text;
  v_line text;
  v_attempt bigint;
  v_wb record;
  v_msg text;
  v_detail text;
  v_hint text;
BEGIN
  IF card_ids IS NOT NULL THEN
    PERFORM billrecon._check_card_ids(card_ids);
  END IF;
  FOR v_card IN
    SELECT p.* FROM billrecon.proposed_changes p
     WHERE p.status IN ('approved', 'failed') AND p.kind IN ('quantity', 'revert')
       AND p.psa_integration_id IS NOT NULL   -- the PSA was dropped: nothing to write to
       AND (push_changes.card_ids IS NULL OR p.id = ANY (push_changes.card_ids))
       AND (coalesce(include_future, false) OR push_changes.card_ids IS NOT NULL
            OR coalesce(p.effective_date, billrecon._default_effective_date()) <= current_date)
     ORDER BY p.id
       FOR UPDATE SKIP LOCKED
  LOOP
    SELECT i.name, l.external_id INTO v_psa, v_line
      FROM billrecon.psa_line_items l JOIN billrecon.integrations i ON i.id = l.integration_id
     WHERE l.id = v_card.line_item_id AND l.removed_at IS NULL;
    INSERT INTO billrecon.change_card_pushes (card_id, attempt, pushed_by, integration, line_item_id, quantity,
                                              effective_date)
    VALUES (v_card.id, v_card.push_attempts + 1, v_role, v_psa, coalesce(v_line, v_card.line_item_external_id),
            v_card.proposed_qty, coalesce(v_card.effective_date, billrecon._default_effective_date()))
    RETURNING id INTO v_attempt;
    BEGIN
      IF v_line IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '55000',
          MESSAGE = format('line item %s no longer exists', v_card.line_item_external_id),
          DETAIL = 'The PSA no longer has the line this card changes (it was deleted there and a sync removed it).',
          HINT = 'Dismiss the card; the next reconcile shows the client''s lines as they are now.';
      END IF;
      SELECT * INTO v_wb
        FROM billrecon._write_back_quantity(v_psa, v_line, v_card.proposed_qty,
                                            coalesce(v_card.effective_date, billrecon._default_effective_date()), true);
      IF v_wb.quantity_after IS DISTINCT FROM v_card.proposed_qty THEN
        RAISE EXCEPTION USING ERRCODE = '55000',
          MESSAGE = format('the PSA reports quantity %s after the change, not %s', trim_scale(v_wb.quantity_after),
                           trim_scale(v_card.proposed_qty)),
          DETAIL = coalesce(v_wb.note, ''),
          HINT = 'Check the line in the PSA; push_changes() again reads its quantity first and writes only what is missing.';
      END IF;
      UPDATE billrecon.change_card_pushes a
         SET status = 'pushed', finished_at = clock_timestamp(), quantity_before = v_wb.quantity_before,
             quantity_after = v_wb.quantity_after, reference = v_wb.reference, note = v_wb.note, requests = v_wb.requests
       WHERE a.id = v_attempt;
      UPDATE billrecon.proposed_changes p
         SET status = 'pushed', pushed_at = now(), pushed_by = v_role, push_error = NULL,
             push_reference = v_wb.reference, push_note = v_wb.note, push_attempts = p.push_attempts + 1,
             effective_date = coalesce(p.effective_date, billrecon._default_effective_date()), updated_at = now()
       WHERE p.id = v_card.id;
      card_id := v_card.id; status := 'pushed'; error := NULL;
      quantity_before := v_wb.quantity_before; quantity_after := v_wb.quantity_after; note := v_wb.note;
    EXCEPTION
      WHEN query_canceled THEN RAISE;
      WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_msg = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
        v_msg := v_msg || coalesce(nullif(': ' || v_detail, ': '), '');
        UPDATE billrecon.change_card_pushes a
           SET status = 'failed', finished_at = clock_timestamp(), error = v_msg
         WHERE a.id = v_attempt;
        UPDATE billrecon.proposed_changes p
           SET status = 'failed', push_error = v_msg, push_attempts = p.push_attempts + 1, updated_at = now()
         WHERE p.id = v_card.id;
        card_id := v_card.id; status := 'failed'; error := v_msg;
        quantity_before := NULL; quantity_after := NULL; note := v_hint;
    END;
    RETURN NEXT;
  END LOOP;
END
$pc$;
COMMENT ON FUNCTION billrecon.push_changes(boolean, bigint[]) IS
  'Writes approved (and retries failed) quantity cards to the PSA through its API: those whose effective date has '
  'come, or all with include_future => true, or exactly card_ids. Each card becomes pushed, or failed with the PSA''s '
  'message (retry by calling again). Safe to repeat: a change the PSA already holds is not sent twice. new_revenue '
  'cards are never pushed (add the line in the PSA). Returns one row per card attempted.';

CREATE FUNCTION billrecon.revert_change(card_id bigint, effective_date date DEFAULT NULL)
RETURNS TABLE (revert_card_id bigint, status text, error text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $rv$
DECLARE
  v_card billrecon.proposed_changes;
  v_new bigint;
BEGIN
  SELECT * INTO v_card FROM billrecon.proposed_changes p WHERE p.id = revert_change.card_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('change card %s does not exist', revert_change.card_id),
      HINT = 'billrecon.change_cards lists the cards.';
  END IF;
  IF v_card.status <> 'pushed' OR v_card.kind NOT IN ('quantity', 'revert') THEN
    RAISE EXCEPTION USING ERRCODE = '55000',
      MESSAGE = format('change card %s cannot be reverted', v_card.id),
      DETAIL = format('It is a %s card with status %s; only pushed quantity changes can be reverted.', v_card.kind,
                      v_card.status),
      HINT = 'Dismiss a card that was not pushed yet.';
  END IF;
  IF v_card.reverted_by_card_id IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '55000',
      MESSAGE = format('change card %s is already reverted', v_card.id),
      DETAIL = format('Card %s put it back.', v_card.reverted_by_card_id),
      HINT = 'Revert that card to apply the change again.';
  END IF;
  INSERT INTO billrecon.proposed_changes (
    kind, run_id, last_run_id, psa_integration_id, psa_company_id, company_external_id, company, line_item_id,
    line_item_external_id, agreement_external_id, product, type, current_qty, proposed_qty, unit_price, amount,
    monthly_amount, billing_cycle, status, effective_date, flags, explanation, decided_by, decided_at, reverts_card_id)
  VALUES ('revert', v_card.run_id, v_card.last_run_id, v_card.psa_integration_id, v_card.psa_company_id,
          v_card.company_external_id, v_card.company, v_card.line_item_id, v_card.line_item_external_id,
          v_card.agreement_external_id, v_card.product, v_card.type, v_card.proposed_qty, v_card.current_qty,
          v_card.unit_price, -v_card.amount, -v_card.monthly_amount, v_card.billing_cycle, 'approved',
          coalesce(revert_change.effective_date, v_card.effective_date), '{}',
          format('Reverts card %s: %s back to %s.', v_card.id, trim_scale(v_card.proposed_qty),
                 trim_scale(v_card.current_qty)),
          billrecon._acting_role(), now(), v_card.id)
  RETURNING id INTO v_new;
  UPDATE billrecon.proposed_changes p SET reverted_by_card_id = v_new, updated_at = now() WHERE p.id = v_card.id;
  RETURN QUERY SELECT r.card_id, r.status, r.error FROM billrecon.push_changes(card_ids => ARRAY[v_new]) r;
END
$rv$;
COMMENT ON FUNCTION billrecon.revert_change(bigint, date) IS
  'Puts a pushed change back: records a revert card (previous quantity, same effective date unless one is given) '
  'linked to the original and pushes it at once. Returns the revert card''s push result; a failed revert stays '
  'approved-to-retry as a failed card.';
