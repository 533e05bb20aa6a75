-- Staging: a sync writes every page here first, keyed by its run id, and
-- billrecon._apply_staged() moves the whole run into the live tables in one
-- statement per table. Unlogged: a crash simply loses unfinished runs (they
-- are marked failed). Not dumped, not granted to anyone.

CREATE UNLOGGED TABLE billrecon._stage_companies (
  run_id bigint NOT NULL, seq bigserial, external_id text NOT NULL, name text NOT NULL,
  identifier text, status text, website text, domains text[], deleted boolean NOT NULL,
  source_updated_at timestamptz
);
CREATE INDEX ON billrecon._stage_companies (run_id, external_id);
COMMENT ON TABLE billrecon._stage_companies IS 'Internal: PSA companies of running syncs, by run id (billrecon.psa_companies columns)';

CREATE UNLOGGED TABLE billrecon._stage_agreements (
  run_id bigint NOT NULL, seq bigserial, external_id text NOT NULL, company_external_id text NOT NULL,
  name text NOT NULL, type text, billing_cycle text NOT NULL, billing_cycle_label text, start_date date,
  end_date date, prorate boolean, status text, cancelled boolean NOT NULL, cancelled_date date,
  source_updated_at timestamptz
);
CREATE INDEX ON billrecon._stage_agreements (run_id, external_id);
COMMENT ON TABLE billrecon._stage_agreements IS 'Internal: PSA agreements of running syncs, by run id (billrecon.psa_agreements columns)';

CREATE UNLOGGED TABLE billrecon._stage_line_items (
  run_id bigint NOT NULL, seq bigserial, external_id text NOT NULL, agreement_external_id text NOT NULL,
  company_external_id text NOT NULL, product_code text, product_name text, description text,
  quantity numeric NOT NULL, unit_price numeric, unit_cost numeric, billing_type text, quantity_source text,
  effective_date date, cancel_date date, parent_external_id text, source_updated_at timestamptz
);
CREATE INDEX ON billrecon._stage_line_items (run_id, external_id);
COMMENT ON TABLE billrecon._stage_line_items IS 'Internal: PSA line items of running syncs, by run id (billrecon.psa_line_items columns)';

CREATE UNLOGGED TABLE billrecon._stage_vendor_accounts (
  run_id bigint NOT NULL, seq bigserial, external_id text NOT NULL, name text NOT NULL, domains text[],
  status text, source_updated_at timestamptz
);
CREATE INDEX ON billrecon._stage_vendor_accounts (run_id, external_id);
COMMENT ON TABLE billrecon._stage_vendor_accounts IS 'Internal: vendor accounts of running syncs, by run id (billrecon.vendor_accounts columns)';

CREATE UNLOGGED TABLE billrecon._stage_usage_records (
  run_id bigint NOT NULL, seq bigserial, external_id text NOT NULL, account_external_id text NOT NULL,
  kind text NOT NULL, product text, product_name text, quantity numeric NOT NULL, device_class text,
  os_name text, device_name text, serial_number text, licensed boolean, enabled boolean, online boolean,
  last_active_at timestamptz, unit_cost numeric, purchased_quantity numeric, status text, billing_term text,
  term_end_date date, user_name text, source_updated_at timestamptz
);
CREATE INDEX ON billrecon._stage_usage_records (run_id, external_id);
COMMENT ON TABLE billrecon._stage_usage_records IS 'Internal: usage records of running syncs, by run id (billrecon.usage_records columns)';

-- Upserts the vendor accounts a run has staged so far into the live table.
-- The staging sink calls it before the first usage page after new accounts
-- (usage pages are stored directly in billrecon.usage_records and must find
-- their account); _apply_staged calls it again at the end (idempotent).
CREATE FUNCTION billrecon._apply_staged_accounts(p_run_id bigint, p_now timestamptz DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $accounts$
DECLARE
  v_integration integer;
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
BEGIN
  SELECT r.integration_id INTO STRICT v_integration FROM billrecon.sync_runs r WHERE r.id = p_run_id;
  INSERT INTO billrecon.vendor_accounts AS t
    (integration_id, external_id, name, domains, status, source_updated_at, first_seen_at, last_seen_at,
     removed_at, last_sync_run_id)
  SELECT DISTINCT ON (s.external_id) v_integration, s.external_id, s.name, coalesce(s.domains, '{}'), s.status,
         s.source_updated_at, v_now, v_now, NULL, p_run_id
    FROM billrecon._stage_vendor_accounts s
   WHERE s.run_id = p_run_id
   ORDER BY s.external_id, s.seq DESC
  ON CONFLICT (integration_id, external_id) DO UPDATE
     SET name = excluded.name, domains = excluded.domains, status = excluded.status,
         source_updated_at = excluded.source_updated_at, last_seen_at = excluded.last_seen_at,
         removed_at = NULL, last_sync_run_id = excluded.last_sync_run_id;

END
$accounts$;
COMMENT ON FUNCTION billrecon._apply_staged_accounts(bigint, timestamptz) IS
  'Internal: upserts the vendor accounts staged so far by one sync run into billrecon.vendor_accounts';

-- Moves one run's staged rows into the live tables: upsert by (integration,
-- external id); in full mode, rows the source no longer returned get
-- removed_at. Children whose parent is unknown are skipped and counted (the
-- run then ends with warnings). Usage records mostly arrive here already
-- stored (the sink upserts each page whose accounts are known); only those
-- staged for want of their account are applied here. Returns the skipped
-- counts; refuses (22000) a full sync that would remove too much.
-- p_unchanged_usage: the external ids of usage records the sink found
-- stored and unchanged (it leaves those rows alone, last_seen_at and
-- last_sync_run_id included), so that a full sync does not take them for
-- removed; NULL when the sink wrote every row it stored.
CREATE FUNCTION billrecon._apply_staged(p_run_id bigint, p_full boolean, p_unchanged_usage text[] DEFAULT NULL,
  OUT skipped_agreements bigint, OUT skipped_line_items bigint, OUT skipped_usage_records bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $apply$
DECLARE
  v_integration integer;
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_share numeric;
  v_min bigint;
  v_what text;
  v_removed bigint;
  v_current bigint;
  v_unchanged text[] := coalesce(p_unchanged_usage, '{}');
  v_usage_gone bigint;
  v_nestloop text;
BEGIN
  SELECT r.integration_id INTO STRICT v_integration FROM billrecon.sync_runs r WHERE r.id = p_run_id;

  -- Companies.
  INSERT INTO billrecon.psa_companies AS t
    (integration_id, external_id, name, identifier, status, website, domains, deleted, source_updated_at,
     first_seen_at, last_seen_at, removed_at, last_sync_run_id)
  SELECT DISTINCT ON (s.external_id) v_integration, s.external_id, s.name, s.identifier, s.status, s.website,
         coalesce(s.domains, '{}'), s.deleted, s.source_updated_at, v_now, v_now, NULL, p_run_id
    FROM billrecon._stage_companies s
   WHERE s.run_id = p_run_id
   ORDER BY s.external_id, s.seq DESC
  ON CONFLICT (integration_id, external_id) DO UPDATE
     SET name = excluded.name, identifier = excluded.identifier, status = excluded.status,
         website = excluded.website, domains = excluded.domains, deleted = excluded.deleted,
         source_updated_at = excluded.source_updated_at, last_seen_at = excluded.last_seen_at,
         removed_at = NULL, last_sync_run_id = excluded.last_sync_run_id;

  -- Agreements (their company must be known, from this run or an earlier one).
  INSERT INTO billrecon.psa_agreements AS t
    (integration_id, external_id, company_id, name, type, billing_cycle, billing_cycle_label, start_date,
     end_date, prorate, status, cancelled, cancelled_date, source_updated_at, first_seen_at, last_seen_at,
     removed_at, last_sync_run_id)
  SELECT DISTINCT ON (s.external_id) v_integration, s.external_id, c.id, s.name, s.type, s.billing_cycle,
         s.billing_cycle_label, s.start_date, s.end_date, s.prorate, s.status, s.cancelled, s.cancelled_date,
         s.source_updated_at, v_now, v_now, NULL, p_run_id
    FROM billrecon._stage_agreements s
    JOIN billrecon.psa_companies c
      ON c.integration_id OPERATOR(pg_catalog.=) v_integration AND c.external_id OPERATOR(pg_catalog.=) s.company_external_id
   WHERE s.run_id = p_run_id
   ORDER BY s.external_id, s.seq DESC
  ON CONFLICT (integration_id, external_id) DO UPDATE
     SET company_id = excluded.company_id, name = excluded.name, type = excluded.type,
         billing_cycle = excluded.billing_cycle, billing_cycle_label = excluded.billing_cycle_label,
         start_date = excluded.start_date, end_date = excluded.end_date, prorate = excluded.prorate,
         status = excluded.status, cancelled = excluded.cancelled, cancelled_date = excluded.cancelled_date,
         source_updated_at = excluded.source_updated_at, last_seen_at = excluded.last_seen_at,
         removed_at = NULL, last_sync_run_id = excluded.last_sync_run_id;
  SELECT pg_catalog.count(DISTINCT s.external_id) INTO skipped_agreements
    FROM billrecon._stage_agreements s
   WHERE s.run_id = p_run_id
     AND NOT EXISTS (SELECT 1 FROM billrecon.psa_companies c
                      WHERE c.integration_id OPERATOR(pg_catalog.=) v_integration
                        AND c.external_id OPERATOR(pg_catalog.=) s.company_external_id);

  -- Line items (their agreement must be known).
  INSERT INTO billrecon.psa_line_items AS t
    (integration_id, external_id, agreement_id, company_id, product_code, product_name, description, quantity,
     unit_price, unit_cost, billing_type, quantity_source, effective_date, cancel_date, parent_external_id,
     source_updated_at, first_seen_at, last_seen_at, removed_at, last_sync_run_id)
  SELECT DISTINCT ON (s.external_id) v_integration, s.external_id, a.id, a.company_id, s.product_code,
         s.product_name, s.description, s.quantity, s.unit_price, s.unit_cost, s.billing_type, s.quantity_source,
         s.effective_date, s.cancel_date, s.parent_external_id, s.source_updated_at, v_now, v_now, NULL, p_run_id
    FROM billrecon._stage_line_items s
    JOIN billrecon.psa_agreements a
      ON a.integration_id OPERATOR(pg_catalog.=) v_integration AND a.external_id OPERATOR(pg_catalog.=) s.agreement_external_id
   WHERE s.run_id = p_run_id
   ORDER BY s.external_id, s.seq DESC
  ON CONFLICT (integration_id, external_id) DO UPDATE
     SET agreement_id = excluded.agreement_id, company_id = excluded.company_id,
         product_code = excluded.product_code, product_name = excluded.product_name,
         description = excluded.description, quantity = excluded.quantity, unit_price = excluded.unit_price,
         unit_cost = excluded.unit_cost, billing_type = excluded.billing_type,
         quantity_source = excluded.quantity_source, effective_date = excluded.effective_date,
         cancel_date = excluded.cancel_date, parent_external_id = excluded.parent_external_id,
         source_updated_at = excluded.source_updated_at, last_seen_at = excluded.last_seen_at,
         removed_at = NULL, last_sync_run_id = excluded.last_sync_run_id;
  SELECT pg_catalog.count(DISTINCT s.external_id) INTO skipped_line_items
    FROM billrecon._stage_line_items s
   WHERE s.run_id = p_run_id
     AND NOT EXISTS (SELECT 1 FROM billrecon.psa_agreements a
                      WHERE a.integration_id OPERATOR(pg_catalog.=) v_integration
                        AND a.external_id OPERATOR(pg_catalog.=) s.agreement_external_id);
  -- Adjustment lines: resolve the parent link.
  UPDATE billrecon.psa_line_items l
     SET parent_line_item_id = p.id
    FROM billrecon.psa_line_items p
   WHERE l.integration_id OPERATOR(pg_catalog.=) v_integration
     AND l.last_sync_run_id OPERATOR(pg_catalog.=) p_run_id
     AND l.parent_external_id IS NOT NULL
     AND p.integration_id OPERATOR(pg_catalog.=) v_integration
     AND p.external_id OPERATOR(pg_catalog.=) l.parent_external_id
     AND l.parent_line_item_id IS DISTINCT FROM p.id;

  -- Vendor accounts (already stored when usage pages came after them:
  -- the sink calls _apply_staged_accounts before storing usage directly).
  PERFORM billrecon._apply_staged_accounts(p_run_id, v_now);

  -- Usage records (their account must be known).
  INSERT INTO billrecon.usage_records AS t
    (integration_id, external_id, account_id, kind, product, product_name, quantity, device_class, os_name,
     device_name, serial_number, licensed, enabled, online, last_active_at, unit_cost, purchased_quantity, status,
     billing_term, term_end_date, user_name, source_updated_at, first_seen_at, last_seen_at, removed_at,
     last_sync_run_id)
  SELECT DISTINCT ON (s.external_id) v_integration, s.external_id, va.id, s.kind, s.product, s.product_name,
         s.quantity, s.device_class, s.os_name, s.device_name, s.serial_number, s.licensed, s.enabled, s.online,
         s.last_active_at, s.unit_cost, s.purchased_quantity, s.status, s.billing_term, s.term_end_date,
         s.user_name, s.source_updated_at, v_now, v_now, NULL, p_run_id
    FROM billrecon._stage_usage_records s
    JOIN billrecon.vendor_accounts va
      ON va.integration_id OPERATOR(pg_catalog.=) v_integration AND va.external_id OPERATOR(pg_catalog.=) s.account_external_id
   WHERE s.run_id = p_run_id
   ORDER BY s.external_id, s.seq DESC
  ON CONFLICT (integration_id, external_id) DO UPDATE
     SET account_id = excluded.account_id, kind = excluded.kind, product = excluded.product,
         product_name = excluded.product_name, quantity = excluded.quantity, device_class = excluded.device_class,
         os_name = excluded.os_name, device_name = excluded.device_name, serial_number = excluded.serial_number,
         licensed = excluded.licensed, enabled = excluded.enabled, online = excluded.online,
         last_active_at = excluded.last_active_at, unit_cost = excluded.unit_cost,
         purchased_quantity = excluded.purchased_quantity, status = excluded.status,
         billing_term = excluded.billing_term, term_end_date = excluded.term_end_date, user_name = excluded.user_name,
         source_updated_at = excluded.source_updated_at, last_seen_at = excluded.last_seen_at,
         removed_at = NULL, last_sync_run_id = excluded.last_sync_run_id;
  SELECT pg_catalog.count(DISTINCT s.external_id) INTO skipped_usage_records
    FROM billrecon._stage_usage_records s
   WHERE s.run_id = p_run_id
     AND NOT EXISTS (SELECT 1 FROM billrecon.vendor_accounts va
                      WHERE va.integration_id OPERATOR(pg_catalog.=) v_integration
                        AND va.external_id OPERATOR(pg_catalog.=) s.account_external_id);

  -- Full sync: whatever the source no longer returned is marked removed,
  -- unless that is more than billrecon.max_removed_share of the
  -- integration's current rows of a table (and at least
  -- billrecon.removal_guard_min_rows): a vendor that ended its listing early
  -- (an empty page mid-listing ends NinjaOne's bare arrays) must not look
  -- like half the devices were decommissioned. The ERROR rolls the whole
  -- sync back, so the stored data stays as it was.
  IF p_full THEN
    -- Usage records not returned: not written by this run and not among
    -- those it found unchanged. The anti-join against the array must be a
    -- hash or merge join (work_mem-bounded, spills to disk): right after a
    -- first sync the table has no statistics, the planner expects a handful
    -- of rows and picks a nested loop that rescans the whole array per row
    -- (minutes at 200,000). So nested loops are off for these two
    -- statements; EXECUTE plans them with the array as a constant (unnest's
    -- estimate is its length). `<> ALL (array)` is no way out: planning it
    -- estimates every element (≈ 300 bytes of planner memory per id).
    v_nestloop := pg_catalog.current_setting('enable_nestloop');
    PERFORM pg_catalog.set_config('enable_nestloop', 'off', true);
    EXECUTE 'SELECT pg_catalog.count(*) FROM billrecon.usage_records t
              WHERE t.integration_id OPERATOR(pg_catalog.=) $1 AND t.removed_at IS NULL
                AND t.last_sync_run_id IS DISTINCT FROM $2
                AND NOT EXISTS (SELECT 1 FROM unnest($3) AS s(external_id)
                                 WHERE s.external_id OPERATOR(pg_catalog.=) t.external_id)'
      INTO v_usage_gone USING v_integration, p_run_id, v_unchanged;
    PERFORM pg_catalog.set_config('enable_nestloop', v_nestloop, true);
    v_share := coalesce(NULLIF(pg_catalog.current_setting('billrecon.max_removed_share', true), '')::numeric, 0.5);
    v_min := coalesce(NULLIF(pg_catalog.current_setting('billrecon.removal_guard_min_rows', true), '')::bigint, 20);
    IF v_share < 1 THEN
      FOR v_what, v_removed, v_current IN
        SELECT 'PSA companies', pg_catalog.count(*) FILTER (WHERE NOT EXISTS (
                 SELECT 1 FROM billrecon._stage_companies s
                  WHERE s.run_id OPERATOR(pg_catalog.=) p_run_id AND s.external_id OPERATOR(pg_catalog.=) t.external_id)),
               pg_catalog.count(*)
          FROM billrecon.psa_companies t
         WHERE t.integration_id OPERATOR(pg_catalog.=) v_integration AND t.removed_at IS NULL
        UNION ALL
        SELECT 'agreements', pg_catalog.count(*) FILTER (WHERE t.last_sync_run_id IS DISTINCT FROM p_run_id), pg_catalog.count(*)
          FROM billrecon.psa_agreements t
         WHERE t.integration_id OPERATOR(pg_catalog.=) v_integration AND t.removed_at IS NULL
        UNION ALL
        SELECT 'line items', pg_catalog.count(*) FILTER (WHERE t.last_sync_run_id IS DISTINCT FROM p_run_id), pg_catalog.count(*)
          FROM billrecon.psa_line_items t
         WHERE t.integration_id OPERATOR(pg_catalog.=) v_integration AND t.removed_at IS NULL
        UNION ALL
        SELECT 'vendor accounts', pg_catalog.count(*) FILTER (WHERE NOT EXISTS (
                 SELECT 1 FROM billrecon._stage_vendor_accounts s
                  WHERE s.run_id OPERATOR(pg_catalog.=) p_run_id AND s.external_id OPERATOR(pg_catalog.=) t.external_id)),
               pg_catalog.count(*)
          FROM billrecon.vendor_accounts t
         WHERE t.integration_id OPERATOR(pg_catalog.=) v_integration AND t.removed_at IS NULL
        UNION ALL
        SELECT 'usage records', v_usage_gone,
               (SELECT pg_catalog.count(*) FROM billrecon.usage_records t
                 WHERE t.integration_id OPERATOR(pg_catalog.=) v_integration AND t.removed_at IS NULL)
      LOOP
        IF v_removed OPERATOR(pg_catalog.>=) v_min
           AND v_removed::numeric OPERATOR(pg_catalog.>) (v_share OPERATOR(pg_catalog.*) v_current) THEN
          RAISE EXCEPTION 'full sync would mark % of % current % removed', v_removed, v_current, v_what
            USING ERRCODE = 'data_exception',
                  DETAIL = pg_catalog.format('The source returned %s of the integration''s %s current %s; marking the other %s (%s %%) removed exceeds billrecon.max_removed_share = %s. Nothing was changed.',
                             v_current OPERATOR(pg_catalog.-) v_removed, v_current, v_what, v_removed,
                             pg_catalog.round((100 OPERATOR(pg_catalog.*) v_removed)::numeric OPERATOR(pg_catalog./) v_current),
                             v_share),
                  HINT = 'A vendor that ended its listing early (an empty or short page) is the usual cause: run the sync again later. If the records really are gone, allow it for one sync: SET billrecon.max_removed_share = 1, then SELECT billrecon.sync(...).';
        END IF;
      END LOOP;
    END IF;
    UPDATE billrecon.psa_companies t SET removed_at = v_now, last_sync_run_id = p_run_id
     WHERE t.integration_id OPERATOR(pg_catalog.=) v_integration AND t.removed_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM billrecon._stage_companies s
                        WHERE s.run_id OPERATOR(pg_catalog.=) p_run_id AND s.external_id OPERATOR(pg_catalog.=) t.external_id);
    UPDATE billrecon.psa_agreements t SET removed_at = v_now, last_sync_run_id = p_run_id
     WHERE t.integration_id OPERATOR(pg_catalog.=) v_integration AND t.removed_at IS NULL
       AND t.last_sync_run_id IS DISTINCT FROM p_run_id;
    UPDATE billrecon.psa_line_items t SET removed_at = v_now, last_sync_run_id = p_run_id
     WHERE t.integration_id OPERATOR(pg_catalog.=) v_integration AND t.removed_at IS NULL
       AND t.last_sync_run_id IS DISTINCT FROM p_run_id;
    UPDATE billrecon.vendor_accounts t SET removed_at = v_now, last_sync_run_id = p_run_id
     WHERE t.integration_id OPERATOR(pg_catalog.=) v_integration AND t.removed_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM billrecon._stage_vendor_accounts s
                        WHERE s.run_id OPERATOR(pg_catalog.=) p_run_id AND s.external_id OPERATOR(pg_catalog.=) t.external_id);
    IF v_usage_gone OPERATOR(pg_catalog.>) 0 THEN
      PERFORM pg_catalog.set_config('enable_nestloop', 'off', true);
      EXECUTE 'UPDATE billrecon.usage_records t SET removed_at = $4, last_sync_run_id = $2
                WHERE t.integration_id OPERATOR(pg_catalog.=) $1 AND t.removed_at IS NULL
                  AND t.last_sync_run_id IS DISTINCT FROM $2
                  AND NOT EXISTS (SELECT 1 FROM unnest($3) AS s(external_id)
                                   WHERE s.external_id OPERATOR(pg_catalog.=) t.external_id)'
        USING v_integration, p_run_id, v_unchanged, v_now;
      PERFORM pg_catalog.set_config('enable_nestloop', v_nestloop, true);
    END IF;
  END IF;

  DELETE FROM billrecon._stage_companies WHERE run_id OPERATOR(pg_catalog.=) p_run_id;
  DELETE FROM billrecon._stage_agreements WHERE run_id OPERATOR(pg_catalog.=) p_run_id;
  DELETE FROM billrecon._stage_line_items WHERE run_id OPERATOR(pg_catalog.=) p_run_id;
  DELETE FROM billrecon._stage_vendor_accounts WHERE run_id OPERATOR(pg_catalog.=) p_run_id;
  DELETE FROM billrecon._stage_usage_records WHERE run_id OPERATOR(pg_catalog.=) p_run_id;
END
$apply$;
COMMENT ON FUNCTION billrecon._apply_staged(bigint, boolean, text[]) IS
  'Internal: moves the staged rows of one sync run into the live tables (upsert; full mode marks vanished rows removed)';

-- Every staging column says where its value goes (\d+ shows it).
DO $stage_comments$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT c.relname, a.attname,
           CASE c.relname WHEN '_stage_companies' THEN 'psa_companies' WHEN '_stage_agreements' THEN 'psa_agreements'
                          WHEN '_stage_line_items' THEN 'psa_line_items' ELSE substr(c.relname, 8) END AS target
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
     WHERE n.nspname = 'billrecon' AND c.relkind = 'r' AND c.relname LIKE '\_stage\_%'
       AND pg_catalog.col_description(c.oid, a.attnum) IS NULL
     ORDER BY c.relname, a.attnum
  LOOP
    EXECUTE format('COMMENT ON COLUMN billrecon.%I.%I IS %L', r.relname, r.attname,
                   format('Staged value for billrecon.%s.%s of one sync run, emptied when the run ends',
                          r.target, r.attname));
  END LOOP;
END
$stage_comments$;
