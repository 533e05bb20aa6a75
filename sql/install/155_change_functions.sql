-- Raising cards from a run, deciding on them, proration preview, write-back.

-- The spot-check flags of a quantity change.
CREATE FUNCTION billrecon._spot_check_flags(current_qty numeric, delta numeric)
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $sc$
  SELECT CASE WHEN abs(delta) >= greatest(
                coalesce(nullif(current_setting('billrecon.spot_check_min_delta', true), '')::numeric, 10),
                coalesce(nullif(current_setting('billrecon.spot_check_ratio', true), '')::numeric, 0.5)
                  * abs(current_qty))
              THEN ARRAY['out_of_proportion'] ELSE ARRAY[]::text[] END
$sc$;
COMMENT ON FUNCTION billrecon._spot_check_flags(numeric, numeric) IS
  'Internal: {out_of_proportion} when |delta| >= max(billrecon.spot_check_min_delta, billrecon.spot_check_ratio x '
  'current quantity), else {}';

-- First day of the month after today: the default effective date.
CREATE FUNCTION billrecon._default_effective_date()
RETURNS date
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $de$ SELECT (date_trunc('month', current_date) + interval '1 month')::date $de$;
COMMENT ON FUNCTION billrecon._default_effective_date() IS
  'Internal: the default effective date of a change, the first day of the next month';

-- Turns a run's discrepancies into cards. A card already decided (approved,
-- failed, or pushed but not yet seen by a sync) is not raised again; a
-- dismissed card comes back only when its numbers change; a pending card is
-- refreshed; pending cards whose discrepancy is gone are withdrawn.
CREATE FUNCTION billrecon._raise_change_cards(run_id bigint)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan   -- plans for this run's size (see billrecon.reconcile)
AS $rc$
DECLARE
  v_run billrecon.reconcile_runs;
  v_raised integer;
  v_n integer;
BEGIN
  SELECT * INTO v_run FROM billrecon.reconcile_runs r WHERE r.id = _raise_change_cards.run_id;
  -- A re-run of a past month reports, but proposes nothing: its cards would
  -- undo or duplicate the newer month's.
  IF EXISTS (SELECT 1 FROM billrecon.reconcile_runs r
              WHERE r.period_start > v_run.period_start AND r.finished_at IS NOT NULL AND r.id <> v_run.id) THEN
    RETURN 0;
  END IF;

  -- Never IF NOT EXISTS: the caller may have made one (062_session_tables.sql).
  -- Kept for the session and emptied at commit (creating it in every
  -- transaction was a tenth of a run of one client); one of another shape,
  -- made by an earlier version of this function, is made again.
  IF billrecon._session_table('billrecon_card_candidates')
     AND (SELECT count(*) FROM pg_catalog.pg_attribute a
           WHERE a.attrelid = pg_catalog.to_regclass('pg_temp.billrecon_card_candidates') AND a.attnum > 0
             AND NOT a.attisdropped) <> 19 THEN
    DROP TABLE pg_temp.billrecon_card_candidates;
  END IF;
  IF NOT billrecon._session_table('billrecon_card_candidates') THEN
    CREATE TEMP TABLE billrecon_card_candidates (
      result_id bigint, kind text, psa_company_id bigint, company_external_id text, company text,
      line_item_id bigint, line_item_external_id text, agreement_external_id text, product text, product_name text,
      vendor_integration_id integer, usage_kind text, type text, current_qty numeric, proposed_qty numeric,
      unit_price numeric, billing_cycle text, explanation text, card_key text) ON COMMIT DELETE ROWS;
  END IF;
  DELETE FROM pg_temp.billrecon_card_candidates;

  -- Quantity cards: the billed quantity that zeroes the group's variance,
  -- rounded up to whole units unless the rule says otherwise. More usage is
  -- added to the group's line (the latest); less usage is taken off the
  -- group's lines from the latest back, each down to zero at most, so a
  -- group whose newest line is too small to absorb a drop still gets cards.
  INSERT INTO pg_temp.billrecon_card_candidates
  SELECT x.id, 'quantity', x.psa_company_id, x.company_external_id, x.company, x.line_item_id,
         x.line_item_external_id, x.agreement_external_id, x.product, x.product_name, NULL, NULL, x.type,
         x.invoiced_qty,
         CASE WHEN coalesce(sr.round_up, true)
              THEN ceil(x.invoiced_qty + x.variance / x.multiplier)
              ELSE x.invoiced_qty + x.variance / x.multiplier END,
         x.unit_price, x.billing_cycle, x.explanation
    FROM billrecon.reconcile_results x
    LEFT JOIN billrecon.service_rules sr ON sr.id = x.rule_id
   WHERE x.run_id = v_run.id AND x.state = 'reconciled' AND x.counted_qty IS NOT NULL
     AND x.type IN ('calculated', 'estimated') AND x.variance > 0;
  INSERT INTO pg_temp.billrecon_card_candidates
  SELECT y.id, 'quantity', y.psa_company_id, y.company_external_id, y.company, y.line_item_id,
         y.line_item_external_id, y.agreement_external_id, y.product, y.product_name, NULL, NULL, y.type,
         y.invoiced_qty,
         CASE WHEN y.round_up THEN ceil(y.invoiced_qty - y.take) ELSE y.invoiced_qty - y.take END,
         y.unit_price, y.billing_cycle,
         CASE WHEN y.line_item_id = y.report_line THEN y.explanation
              ELSE format('Part of the group reported on line %s: %s', y.group_line_item_id, y.group_explanation) END
    FROM (SELECT z.*, least(greatest(z.invoiced_qty, 0), greatest(0, z.reduce - (z.before_this))) AS take
            FROM (SELECT l.*, g.reduce, g.report_line, g.group_explanation, g.type AS group_type,
                         coalesce(sr.round_up, true) AS round_up,
                         coalesce(sum(greatest(l.invoiced_qty, 0)) OVER (
                           PARTITION BY g.report_id ORDER BY l.effective_date DESC NULLS LAST, l.line_item_id DESC
                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before_this
                    FROM (SELECT x.id AS report_id, x.line_item_id AS report_line, x.psa_company_id, x.rule_id,
                                 x.integration_id, -(x.variance / x.multiplier) AS reduce, x.explanation AS group_explanation,
                                 x.type
                            FROM billrecon.reconcile_results x
                           WHERE x.run_id = v_run.id AND x.state = 'reconciled' AND x.counted_qty IS NOT NULL
                             AND x.type IN ('calculated', 'estimated') AND x.variance < 0) g
                    JOIN billrecon.reconcile_results l ON l.run_id = v_run.id AND l.state = 'reconciled'
                         AND l.psa_company_id = g.psa_company_id AND l.rule_id = g.rule_id
                         AND l.integration_id = g.integration_id
                    LEFT JOIN billrecon.service_rules sr ON sr.id = l.rule_id) z) y
   WHERE y.take > 0;
  UPDATE pg_temp.billrecon_card_candidates c SET type = r.type
    FROM billrecon.reconcile_results r
   WHERE c.kind = 'quantity' AND r.id = c.result_id AND c.type IS NULL;
  DELETE FROM pg_temp.billrecon_card_candidates c WHERE c.kind = 'quantity' AND c.proposed_qty = c.current_qty;

  -- New revenue: unaccounted usage, whole units.
  INSERT INTO pg_temp.billrecon_card_candidates
  SELECT x.id, 'new_revenue', x.psa_company_id, x.company_external_id, x.company, NULL, NULL, NULL, x.product,
         x.product_name, x.integration_id, x.usage_kind, 'unaccounted', 0, ceil(x.counted_qty), x.unit_price, 'monthly', x.explanation
    FROM billrecon.reconcile_results x
   WHERE x.run_id = v_run.id AND x.row_kind = 'unaccounted' AND x.counted_qty > 0;
  -- One key per card identity (proposed_changes.card_key), so every match
  -- below is an equi-join.
  UPDATE pg_temp.billrecon_card_candidates c
     SET card_key = CASE c.kind WHEN 'new_revenue'
                                THEN 'n:' || c.psa_company_id || ':' || c.vendor_integration_id || ':' || c.product
                                ELSE 'q:' || c.line_item_id END;
  IF v_run.client_id IS NULL THEN   -- a run of one client is small enough for any plan
    ANALYZE pg_temp.billrecon_card_candidates;
  END IF;

  -- Skip what is already decided or waiting for a sync to show the push.
  DELETE FROM pg_temp.billrecon_card_candidates c
   USING billrecon.proposed_changes p
   WHERE p.kind = c.kind AND p.status IN ('approved', 'failed')
     AND p.card_key = c.card_key;
  DELETE FROM pg_temp.billrecon_card_candidates c
   USING billrecon.proposed_changes p, billrecon.psa_line_items l
   WHERE c.kind = 'quantity' AND p.kind IN ('quantity', 'revert') AND p.status = 'pushed'
     AND p.line_item_id = c.line_item_id AND l.id = c.line_item_id AND l.last_seen_at < p.pushed_at;
  -- A dismissed card stays dismissed while its numbers stay the same.
  DELETE FROM pg_temp.billrecon_card_candidates c
   WHERE EXISTS (
     SELECT 1 FROM billrecon.proposed_changes p
      WHERE p.kind = c.kind AND p.status = 'dismissed'
        AND p.current_qty = c.current_qty AND p.proposed_qty = c.proposed_qty
        AND p.card_key = c.card_key);

  -- Refresh pending cards of the same line / product. A card whose numbers
  -- changed (quantities, price, amounts, type, cycle or spot-check flags) is
  -- rewritten, and audited. A card whose numbers are the same only records
  -- that this run still found it (last_run_id, result_id, explanation,
  -- updated_at): run bookkeeping, which the audit trigger does not watch, so
  -- the unchanged cards of a large book cost no trigger call.
  UPDATE billrecon.proposed_changes p
     SET last_run_id = v_run.id, result_id = n.result_id, type = n.type, current_qty = n.current_qty,
         proposed_qty = n.proposed_qty, unit_price = n.unit_price, amount = n.amount,
         monthly_amount = n.monthly_amount, billing_cycle = n.billing_cycle, explanation = n.explanation,
         flags = n.flags, updated_at = now()
    FROM (SELECT c.*, round((c.proposed_qty - c.current_qty) * c.unit_price, 2)::numeric(14, 2) AS amount,
                 billrecon.monthly_amount(round((c.proposed_qty - c.current_qty) * c.unit_price, 2),
                   CASE WHEN c.billing_cycle IN ('quarterly', 'annual') THEN c.billing_cycle ELSE 'monthly' END
                 )::numeric(14, 2) AS monthly_amount,
                 CASE WHEN c.kind = 'new_revenue' THEN ARRAY['new_revenue']
                      ELSE billrecon._spot_check_flags(c.current_qty, c.proposed_qty - c.current_qty) END AS flags
            FROM pg_temp.billrecon_card_candidates c) n
   WHERE p.status = 'pending' AND p.kind = n.kind
     AND p.card_key = n.card_key
     AND (p.type, p.current_qty, p.proposed_qty, p.unit_price, p.amount, p.monthly_amount, p.billing_cycle, p.flags)
         IS DISTINCT FROM (n.type, n.current_qty, n.proposed_qty, n.unit_price, n.amount, n.monthly_amount,
                           n.billing_cycle, n.flags);
  UPDATE billrecon.proposed_changes p
     SET last_run_id = v_run.id, result_id = c.result_id, explanation = c.explanation, updated_at = now()
    FROM pg_temp.billrecon_card_candidates c
   WHERE p.status = 'pending' AND p.kind = c.kind
     AND p.card_key = c.card_key
     AND p.last_run_id IS DISTINCT FROM v_run.id;
  DELETE FROM pg_temp.billrecon_card_candidates c
   USING billrecon.proposed_changes p
   WHERE p.status = 'pending' AND p.kind = c.kind
     AND p.card_key = c.card_key;

  -- Withdraw pending cards this run no longer supports (not for runs of an
  -- older period than the card's, which must not undo a newer month's work).
  DELETE FROM billrecon.proposed_changes p
   USING billrecon.reconcile_runs lr
   WHERE p.status = 'pending' AND p.kind IN ('quantity', 'new_revenue')
     AND lr.id = p.last_run_id AND lr.period_start <= v_run.period_start AND p.last_run_id <> v_run.id
     AND p.psa_integration_id IS NOT DISTINCT FROM v_run.psa_integration_id
     AND (v_run.client_id IS NULL OR p.psa_company_id = v_run.client_id);

  INSERT INTO billrecon.proposed_changes (
    kind, run_id, last_run_id, result_id, psa_integration_id, psa_company_id, company_external_id, company,
    line_item_id, line_item_external_id, agreement_external_id, product, product_name, vendor_integration_id,
    usage_kind, type, current_qty, proposed_qty, unit_price, amount, monthly_amount, billing_cycle, flags, explanation,
    note, tags)
  SELECT c.kind, v_run.id, v_run.id, c.result_id, v_run.psa_integration_id, c.psa_company_id, c.company_external_id,
         c.company, c.line_item_id, c.line_item_external_id, c.agreement_external_id, c.product, c.product_name,
         c.vendor_integration_id, c.usage_kind, c.type, c.current_qty, c.proposed_qty, c.unit_price,
         round((c.proposed_qty - c.current_qty) * c.unit_price, 2),
         billrecon.monthly_amount(round((c.proposed_qty - c.current_qty) * c.unit_price, 2),
                                  CASE WHEN c.billing_cycle IN ('quarterly', 'annual') THEN c.billing_cycle
                                       ELSE 'monthly' END),
         c.billing_cycle,
         CASE WHEN c.kind = 'new_revenue' THEN ARRAY['new_revenue']
              ELSE billrecon._spot_check_flags(c.current_qty, c.proposed_qty - c.current_qty) END,
         c.explanation, n.note, coalesce(n.tags, '{}')
    FROM pg_temp.billrecon_card_candidates c
    LEFT JOIN billrecon.line_item_notes n ON n.line_item_id = c.line_item_id
   ORDER BY c.company, c.kind DESC, c.line_item_external_id, c.product;
  GET DIAGNOSTICS v_raised = ROW_COUNT;

  -- Decided cards seen again keep their decision; remember the run saw them.
  UPDATE billrecon.proposed_changes p
     SET last_run_id = v_run.id
    FROM billrecon.reconcile_results x
   WHERE x.run_id = v_run.id AND p.status IN ('approved', 'failed') AND p.last_run_id IS DISTINCT FROM v_run.id
     AND p.kind = 'quantity' AND x.line_item_id = p.line_item_id AND x.state = 'reconciled' AND x.variance <> 0;
  UPDATE billrecon.proposed_changes p
     SET last_run_id = v_run.id
    FROM billrecon.reconcile_results x
   WHERE x.run_id = v_run.id AND p.status IN ('approved', 'failed') AND p.last_run_id IS DISTINCT FROM v_run.id
     AND p.kind = 'new_revenue' AND x.row_kind = 'unaccounted' AND x.psa_company_id = p.psa_company_id
     AND x.integration_id = p.vendor_integration_id AND x.product = p.product;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  RETURN v_raised;
END
$rc$;
COMMENT ON FUNCTION billrecon._raise_change_cards(bigint) IS
  'Internal: raises change cards from a reconcile run''s discrepancies (called by billrecon.reconcile())';

CREATE VIEW billrecon.change_cards AS
SELECT p.id AS card_id, p.run_id, p.company_external_id AS psa_company_id, p.line_item_external_id AS line_item_id,
       p.current_qty, p.proposed_qty, p.delta, p.amount, p.status,
       coalesce(p.effective_date, CASE WHEN p.status IN ('pending', 'approved', 'failed')
                                       THEN billrecon._default_effective_date() END) AS effective_date,
       p.flags,
       p.kind, p.company, p.agreement_external_id AS agreement_id, p.product, p.product_name, p.type,
       round(p.unit_price, 2)::numeric(14, 2) AS unit_price,
       p.monthly_amount, p.billing_cycle, vi.name AS vendor_integration, p.usage_kind, p.explanation,
       p.dismiss_reason, p.decided_by, p.decided_at, p.push_attempts, p.pushed_at, p.push_error,
       p.reverts_card_id, p.reverted_by_card_id, p.last_run_id,
       coalesce(p.note, n.note) AS note,
       ARRAY(SELECT DISTINCT t FROM unnest(p.tags || coalesce(n.tags, '{}')) AS t ORDER BY t) AS tags,
       p.created_at, p.updated_at
  FROM billrecon.proposed_changes p
  LEFT JOIN billrecon.integrations vi ON vi.id = p.vendor_integration_id
  LEFT JOIN billrecon.line_item_notes n ON n.line_item_id = p.line_item_id;
COMMENT ON VIEW billrecon.change_cards IS
  'Change cards: one per line whose billed quantity differs from the counted usage (calculated or estimated '
  'discrepancies) and one per unaccounted usage product (kind new_revenue), with status pending / approved / dismissed '
  '/ pushed / failed. Decide with billrecon.approve(), dismiss(), set_effective_date(); write back with '
  'billrecon.push_changes().';

-- Which of these ids exist; raises for any that does not.
CREATE FUNCTION billrecon._check_card_ids(card_ids bigint[])
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $ci$
DECLARE
  v_missing bigint[];
BEGIN
  IF card_ids IS NULL OR cardinality(card_ids) = 0 THEN
    RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'no card ids given',
      DETAIL = 'The function takes an array of change card ids.',
      HINT = 'SELECT array_agg(card_id) FROM billrecon.change_cards WHERE status = ''pending'' AND ... gives them.';
  END IF;
  SELECT array_agg(DISTINCT i ORDER BY i) INTO v_missing
    FROM unnest(card_ids) AS u(i)
   WHERE i IS NULL OR NOT EXISTS (SELECT 1 FROM billrecon.proposed_changes p WHERE p.id = u.i);
  IF v_missing IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42704',
      MESSAGE = format('change card(s) %s do not exist', array_to_string(v_missing, ', ', 'NULL')),
      DETAIL = 'Nothing was changed.',
      HINT = 'billrecon.change_cards lists the cards and their ids (card_id).';
  END IF;
END
$ci$;
COMMENT ON FUNCTION billrecon._check_card_ids(bigint[]) IS 'Internal: raises unless every id is an existing card';

CREATE FUNCTION billrecon.approve(card_ids bigint[], effective_date date DEFAULT NULL, force boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $ap$
DECLARE
  v_role name := billrecon._acting_role();
  v_held text;
  v_held_n integer;
  v_skipped text;
  v_n integer;
BEGIN
  PERFORM billrecon._check_card_ids(card_ids);
  SELECT string_agg(format('%s (%s)', p.id, p.status), ', ' ORDER BY p.id) INTO v_skipped
    FROM billrecon.proposed_changes p
   WHERE p.id = ANY (card_ids) AND p.status NOT IN ('pending', 'dismissed');
  IF NOT coalesce(force, false) THEN
    -- One line per reason: "out_of_proportion: 3 card(s) (12, 15, 31); ..."
    SELECT string_agg(format('%s: %s card(s) (%s)', r.reason, r.n, r.ids), '; ' ORDER BY r.reason),
           coalesce(sum(r.n), 0)
      INTO v_held, v_held_n
      FROM (SELECT f.reason, count(*) AS n,
                   CASE WHEN count(*) <= 20 THEN string_agg(f.id::text, ', ' ORDER BY f.id)
                        ELSE string_agg(f.id::text, ', ' ORDER BY f.id) FILTER (WHERE f.rn <= 20) || ', ...' END AS ids
              FROM (SELECT p.id, CASE WHEN 'new_revenue' = ANY (p.flags) THEN 'new_revenue (no line bills this usage yet)'
                                      ELSE 'out_of_proportion (|delta| large for the current quantity)' END AS reason,
                           row_number() OVER (PARTITION BY 'new_revenue' = ANY (p.flags) ORDER BY p.id) AS rn
                      FROM billrecon.proposed_changes p
                     WHERE p.id = ANY (card_ids) AND p.status IN ('pending', 'dismissed')
                       AND cardinality(p.flags) > 0) f
             GROUP BY f.reason) r;
  END IF;
  UPDATE billrecon.proposed_changes p
     SET status = 'approved',
         effective_date = coalesce(approve.effective_date, p.effective_date, billrecon._default_effective_date()),
         decided_by = v_role, decided_at = now(), dismiss_reason = NULL, updated_at = now()
   WHERE p.id = ANY (card_ids) AND p.status IN ('pending', 'dismissed')
     AND (coalesce(force, false) OR cardinality(p.flags) = 0);
  GET DIAGNOSTICS v_n = ROW_COUNT;
  IF v_held IS NOT NULL THEN
    RAISE NOTICE 'held back % flagged card(s): %', v_held_n, v_held
      USING DETAIL = 'Flagged cards are not approved in bulk.',
            HINT = 'Check them, then billrecon.approve(ARRAY[...], force => true) approves them.';
  END IF;
  IF v_skipped IS NOT NULL THEN
    RAISE NOTICE 'skipped card(s) already decided: %', v_skipped
      USING HINT = 'Only pending and dismissed cards can be approved.';
  END IF;
  RETURN v_n;
END
$ap$;
COMMENT ON FUNCTION billrecon.approve(bigint[], date, boolean) IS
  'Approves pending (or dismissed) change cards with an effective date (default: the card''s, else the first day of '
  'next month). Cards flagged out_of_proportion or new_revenue are held back unless force => true; a NOTICE says '
  'which and why. Returns the number approved.';

CREATE FUNCTION billrecon.dismiss(card_ids bigint[], reason text)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $di$
DECLARE
  v_n integer;
  v_skipped text;
BEGIN
  IF reason IS NULL OR btrim(reason) = '' THEN
    RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'a reason is required to dismiss a card',
      DETAIL = 'The reason stays with the card and is shown next month if the card comes back.',
      HINT = 'For example billrecon.dismiss(ARRAY[12], ''client prepaid 5 spare seats'').';
  END IF;
  PERFORM billrecon._check_card_ids(card_ids);
  SELECT string_agg(format('%s (%s)', p.id, p.status), ', ' ORDER BY p.id) INTO v_skipped
    FROM billrecon.proposed_changes p WHERE p.id = ANY (card_ids) AND p.status IN ('pushed', 'dismissed');
  UPDATE billrecon.proposed_changes p
     SET status = 'dismissed', dismiss_reason = reason, decided_by = billrecon._acting_role(), decided_at = now(),
         updated_at = now()
   WHERE p.id = ANY (card_ids) AND p.status IN ('pending', 'approved', 'failed');
  GET DIAGNOSTICS v_n = ROW_COUNT;
  IF v_skipped IS NOT NULL THEN
    RAISE NOTICE 'skipped card(s) already pushed or dismissed: %', v_skipped
      USING HINT = CASE WHEN v_skipped LIKE '%(pushed)%'
                        THEN 'A pushed card is undone with billrecon.revert_change(card_id).'
                        ELSE 'A dismissed card stays dismissed; approve it to change your mind.' END;
  END IF;
  RETURN v_n;
END
$di$;
COMMENT ON FUNCTION billrecon.dismiss(bigint[], text) IS
  'Dismisses pending, approved or failed change cards with a reason. A dismissed card is not raised again while its '
  'numbers stay the same. Returns the number dismissed.';

CREATE FUNCTION billrecon.set_effective_date(card_ids bigint[], effective_date date)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $se$
DECLARE
  v_n integer;
BEGIN
  IF effective_date IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'effective_date must not be null',
      DETAIL = 'The effective date is the day the new quantity starts.',
      HINT = 'Approving without a date uses the first day of next month.';
  END IF;
  PERFORM billrecon._check_card_ids(card_ids);
  UPDATE billrecon.proposed_changes p
     SET effective_date = set_effective_date.effective_date, updated_at = now()
   WHERE p.id = ANY (card_ids) AND p.status IN ('pending', 'approved', 'failed');
  GET DIAGNOSTICS v_n = ROW_COUNT;
  RETURN v_n;
END
$se$;
COMMENT ON FUNCTION billrecon.set_effective_date(bigint[], date) IS
  'Sets the effective date of pending, approved or failed cards without approving them; returns the number changed';

CREATE FUNCTION billrecon.note_card(card_ids bigint[], note text, tags text[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $nc$
DECLARE
  v_n integer;
BEGIN
  PERFORM billrecon._check_card_ids(card_ids);
  UPDATE billrecon.proposed_changes p
     SET note = note_card.note, tags = coalesce(note_card.tags, p.tags), updated_at = now()
   WHERE p.id = ANY (card_ids);
  GET DIAGNOSTICS v_n = ROW_COUNT;
  RETURN v_n;
END
$nc$;
COMMENT ON FUNCTION billrecon.note_card(bigint[], text, text[]) IS
  'Sets the reviewer''s note (and tags, when given) on change cards; returns the number changed';

CREATE FUNCTION billrecon.note_line_item(line_item_id text, note text, tags text[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $nl$
BEGIN
  INSERT INTO billrecon.line_item_notes AS n (line_item_id, note, tags, updated_by)
  VALUES (billrecon._psa_line_item(note_line_item.line_item_id), note_line_item.note,
          coalesce(note_line_item.tags, '{}'), billrecon._acting_role())
  ON CONFLICT ON CONSTRAINT line_item_notes_pkey DO UPDATE
     SET note = excluded.note, tags = coalesce(note_line_item.tags, n.tags), updated_by = excluded.updated_by,
         updated_at = now();
END
$nl$;
COMMENT ON FUNCTION billrecon.note_line_item(text, text, text[]) IS
  'Sets the reviewer''s note (and tags, when given) on a PSA line item (its external id); they stay with the line '
  'month after month and show on its change cards';

-- Proration preview of approved cards.
CREATE VIEW billrecon.change_card_proration AS
SELECT p.id AS card_id, p.company_external_id AS psa_company_id, p.company, p.line_item_external_id AS line_item_id,
       p.product, a.external_id AS agreement_id, a.billing_cycle, p.effective_date, cy.cycle_start, cy.cycle_end,
       round(p.unit_price, 2)::numeric(14, 2) AS unit_price, p.delta,
       s.supported AS proration_supported,
       CASE WHEN s.supported AND p.effective_date BETWEEN cy.cycle_start AND cy.cycle_end
            THEN billrecon.prorate(p.unit_price, p.delta, p.effective_date, cy.cycle_start, cy.cycle_end)::numeric(14, 2)
            ELSE 0::numeric(14, 2) END AS prorated_amount,
       CASE WHEN NOT s.supported THEN s.reason || ': the change starts with the next cycle'
            WHEN p.effective_date = cy.cycle_start THEN 'effective on the cycle start: the full cycle'
            ELSE format('%s of %s days of the cycle', cy.cycle_end - p.effective_date + 1,
                        cy.cycle_end - cy.cycle_start + 1) END AS basis
  FROM billrecon.proposed_changes p
  JOIN billrecon.psa_line_items l ON l.id = p.line_item_id
  JOIN billrecon.psa_agreements a ON a.id = l.agreement_id
  JOIN billrecon.integrations i ON i.id = l.integration_id
  CROSS JOIN LATERAL billrecon.billing_cycle(
    CASE WHEN a.billing_cycle IN ('monthly', 'quarterly', 'annual') THEN a.billing_cycle ELSE 'monthly' END,
    p.effective_date, a.start_date) cy
  CROSS JOIN LATERAL (
    SELECT CASE
             WHEN a.prorate IS FALSE THEN false
             WHEN i.kind = 'connectwise' THEN coalesce(a.prorate, false)
             ELSE true
           END AS supported,
           CASE
             WHEN a.prorate IS FALSE THEN 'the agreement does not prorate'
             WHEN i.kind = 'connectwise' AND a.prorate IS NULL THEN 'the agreement''s proration flag is unknown'
           END AS reason) s
 WHERE p.status = 'approved' AND p.kind IN ('quantity', 'revert') AND p.unit_price IS NOT NULL;
COMMENT ON VIEW billrecon.change_card_proration IS
  'For approved cards: the prorated charge (or credit) of the change from its effective date to the end of the '
  'agreement''s billing cycle (billrecon.prorate); zero where the agreement (ConnectWise prorateFlag, or prorate = '
  'false on any PSA) does not prorate, the change then starting with the next cycle';
