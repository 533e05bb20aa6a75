-- billrecon.reconcile(period): compares every PSA line item in force with the
-- usage its rule counts, and records the run. Set-based SQL, statement by
-- statement, so a DBA can read and EXPLAIN each step (docs/reconciliation.md).

-- The quantity a usage record stands for when no rule says how to count it
-- (unmapped accounts, unaccounted usage, manual lines compared with an
-- integration): devices, subscriptions and licences as reported, enabled users.
CREATE FUNCTION billrecon._usage_quantity(u billrecon.usage_records)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN u.kind = 'user' AND NOT coalesce(u.enabled, true) THEN 0 ELSE u.quantity END;
COMMENT ON FUNCTION billrecon._usage_quantity(billrecon.usage_records) IS
  'Internal: the quantity a usage record stands for without a rule (disabled users count 0)';

-- What a manual line compared with an integration counts: devices of an RMM,
-- subscriptions of a distributor, licensed enabled users of Microsoft 365
-- (not its licences too: that would count people twice).
CREATE FUNCTION billrecon._compare_quantity(u billrecon.usage_records)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE u.kind
         WHEN 'licence' THEN 0
         WHEN 'user' THEN CASE WHEN coalesce(u.enabled, true) AND coalesce(u.licensed, true) THEN u.quantity ELSE 0 END
         ELSE u.quantity
       END;
COMMENT ON FUNCTION billrecon._compare_quantity(billrecon.usage_records) IS
  'Internal: the quantity a manual line''s compare_with integration contributes for the usage record';

-- One machine's identity across RMMs: its serial number (placeholders such
-- as "To Be Filled By O.E.M." are no identity), else its host name without a
-- DNS suffix ("PC-01.corp.local" = "pc-01"; a name with spaces is kept whole).
CREATE FUNCTION billrecon._serial_key(serial text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
         WHEN upper(regexp_replace(coalesce(serial, ''), '\s', '', 'g'))
              IN ('', '0', 'NONE', 'N/A', 'NA', 'DEFAULTSTRING', 'SYSTEMSERIALNUMBER', 'TOBEFILLEDBYO.E.M.',
                  '0123456789', '123456789', 'CHASSISSERIALNUMBER', 'NOTAPPLICABLE') THEN NULL
         ELSE upper(regexp_replace(serial, '\s', '', 'g'))
       END;
COMMENT ON FUNCTION billrecon._serial_key(text) IS
  'Internal: a serial number normalized for comparison, null for empty or placeholder serials';

CREATE FUNCTION billrecon._host_key(device_name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
         WHEN btrim(coalesce(device_name, '')) = '' THEN NULL
         WHEN device_name ~ '^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$' THEN lower(split_part(device_name, '.', 1))
         ELSE lower(btrim(device_name))
       END;
COMMENT ON FUNCTION billrecon._host_key(text) IS
  'Internal: a device name normalized for comparison (DNS suffix dropped from host names)';

-- The name people know a vendor product by: Microsoft reports licences by
-- SKU part number and id only; billrecon.microsoft_skus knows the names.
CREATE FUNCTION billrecon._usage_display_name(u billrecon.usage_records)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN u.kind = 'licence'
            THEN coalesce((SELECT k.display_name FROM billrecon.microsoft_skus k
                            WHERE k.part_number = upper(u.product)), u.product_name)
            ELSE u.product_name END;
COMMENT ON FUNCTION billrecon._usage_display_name(billrecon.usage_records) IS
  'Internal: the product''s display name (for Microsoft licences from billrecon.microsoft_skus)';

-- Fresh planner statistics before counting: right after the first syncs
-- (or a large one) autovacuum may not have analyzed the tables yet, and a
-- plan made for empty tables is seconds slower on real ones.
CREATE FUNCTION billrecon._refresh_statistics()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $st$
DECLARE
  v_table text;
BEGIN
  FOR v_table IN
    SELECT s.relname FROM pg_stat_user_tables s
     WHERE s.schemaname = 'billrecon'
       AND s.relname IN ('psa_companies', 'psa_agreements', 'psa_line_items', 'vendor_accounts', 'usage_records',
                         'client_mappings', 'service_rules')   -- (a full run analyzes its results itself)
       AND (coalesce(s.last_analyze, s.last_autoanalyze) IS NULL
            OR s.n_mod_since_analyze > 0.2 * greatest(s.n_live_tup, 1000))
  LOOP
    EXECUTE format('ANALYZE billrecon.%I', v_table);
  END LOOP;
END
$st$;
COMMENT ON FUNCTION billrecon._refresh_statistics() IS
  'Internal: analyzes the tables reconcile reads when they were never analyzed or changed much since';

-- The billrecon.* settings a run used, for its row.
CREATE FUNCTION billrecon._reconcile_settings()
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $set$
  SELECT coalesce(jsonb_object_agg(s.name, s.setting || coalesce(s.unit, '')), '{}')
    FROM pg_settings s
   WHERE s.name IN ('billrecon.inactive_after', 'billrecon.stale_after', 'billrecon.spot_check_min_delta',
                    'billrecon.spot_check_ratio')
$set$;
COMMENT ON FUNCTION billrecon._reconcile_settings() IS 'Internal: the billrecon.* settings recorded with a reconcile run';

-- A write-back that replaced a line (ConnectWise: the old addition ends, a
-- new one carries the quantity) hands the old line's own rule, note and
-- ignore flag to the new line once a sync has brought it in, so the review
-- done on the line stays with it.
CREATE FUNCTION billrecon._carry_over_replaced_lines()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $co$
DECLARE
  v_n integer;
  v_total integer := 0;
  v_have_table boolean := billrecon._session_table('billrecon_replaced_lines');   -- refuses a caller's
BEGIN
  -- Most runs have nothing to carry over: no temporary table then.
  IF NOT EXISTS (SELECT 1 FROM billrecon.proposed_changes p
                  WHERE p.status = 'pushed' AND p.line_item_id IS NOT NULL AND p.push_reference IS NOT NULL
                    AND p.push_reference <> p.line_item_external_id) THEN
    RETURN 0;
  END IF;
  IF NOT v_have_table THEN
    CREATE TEMP TABLE billrecon_replaced_lines (old_id bigint, new_id bigint) ON COMMIT DROP;
  END IF;
  TRUNCATE pg_temp.billrecon_replaced_lines;
  INSERT INTO pg_temp.billrecon_replaced_lines
  SELECT DISTINCT p.line_item_id, nl.id
    FROM billrecon.proposed_changes p
    JOIN billrecon.psa_line_items nl ON nl.integration_id = p.psa_integration_id AND nl.external_id = p.push_reference
         AND nl.removed_at IS NULL
   WHERE p.status = 'pushed' AND p.line_item_id IS NOT NULL AND p.push_reference IS NOT NULL
     AND p.push_reference <> p.line_item_external_id;
  INSERT INTO billrecon.service_rules (line_item_id, integration_id, mode, filters, multiplier, round_up, source, preset_id)
  SELECT x.new_id, r.integration_id, r.mode, r.filters, r.multiplier, r.round_up, r.source, r.preset_id
    FROM pg_temp.billrecon_replaced_lines x JOIN billrecon.service_rules r ON r.line_item_id = x.old_id
  ON CONFLICT (line_item_id) WHERE line_item_id IS NOT NULL DO NOTHING;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  v_total := v_total + v_n;
  INSERT INTO billrecon.line_item_notes (line_item_id, note, tags, updated_by)
  SELECT x.new_id, n.note, n.tags, n.updated_by
    FROM pg_temp.billrecon_replaced_lines x JOIN billrecon.line_item_notes n ON n.line_item_id = x.old_id
  ON CONFLICT ON CONSTRAINT line_item_notes_pkey DO NOTHING;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  v_total := v_total + v_n;
  INSERT INTO billrecon.ignored_line_items (line_item_id, reason, ignored_by)
  SELECT x.new_id, g.reason, g.ignored_by
    FROM pg_temp.billrecon_replaced_lines x JOIN billrecon.ignored_line_items g ON g.line_item_id = x.old_id
  ON CONFLICT ON CONSTRAINT ignored_line_items_pkey DO NOTHING;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  RETURN v_total + v_n;
END
$co$;
COMMENT ON FUNCTION billrecon._carry_over_replaced_lines() IS
  'Internal: gives a line that replaced another through a write-back the old line''s own rule, note and ignore flag '
  '(called by billrecon.reconcile())';

-- The counting pass, in C++ (src/reconcile/usage_counter.cpp): every usage
-- record of the mapped clients read once and tested against the rules of its
-- client, instead of once per rule in SQL. It means exactly what
-- billrecon._filter_captures / _filter_quantity and the SQL it replaces in
-- steps 4 and 6 mean (docs/reconciliation.md, "How it is computed"); the
-- pg_regress book and the e2e properties hold it to the same numbers.
CREATE FUNCTION billrecon._count_usage(run_id bigint, psa_company_id bigint)
RETURNS bigint
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'billrecon_count_usage';
COMMENT ON FUNCTION billrecon._count_usage(bigint, bigint) IS
  'Internal: counts the usage records of a reconcile run''s clients in one pass (groups, unaccounted usage, seats) '
  'into the session''s temporary tables billrecon_group_counts, billrecon_unaccounted_parts and '
  'billrecon_client_seats; returns the number of records read (called by billrecon.reconcile())';

CREATE FUNCTION billrecon.reconcile(period date DEFAULT current_date, psa_company_id text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- Plans for this run's size: a generic plan made for the average run reads
-- every run's rows by sequential scan when one client is reconciled.
SET plan_cache_mode = force_custom_plan
-- No JIT: compiling its large statements cost a quarter of a run on a big
-- book (seconds of LLVM) for queries that each run once.
SET jit = off
AS $rec$
DECLARE
  v_company bigint;
  v_psa integer;
  v_psa_name text;
  v_run bigint;
  v_start date;
  v_end date;
  v_lines integer;
  v_count integer;
  v_amount numeric;
  v_notes text[];
  v_stats_target text := pg_catalog.current_setting('default_statistics_target');
BEGIN
  IF reconcile.period IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'period must not be null',
      DETAIL = 'reconcile() reconciles the billing period (calendar month) containing the date it is given.',
      HINT = 'Call billrecon.reconcile() for the current month or billrecon.reconcile(''2026-10-01'') for October.';
  END IF;
  v_psa := billrecon._default_psa();
  SELECT i.name INTO v_psa_name FROM billrecon.integrations i WHERE i.id = v_psa;
  IF reconcile.psa_company_id IS NOT NULL THEN
    v_company := billrecon._psa_company(reconcile.psa_company_id);
  END IF;
  PERFORM billrecon._carry_over_replaced_lines();
  PERFORM billrecon._refresh_statistics();
  v_start := date_trunc('month', reconcile.period)::date;
  v_end := (v_start + interval '1 month' - interval '1 day')::date;

  INSERT INTO billrecon.reconcile_runs (period, period_start, period_end, psa_integration_id, psa_integration, run_by,
                                        settings, client_id, client_external_id)
  VALUES (reconcile.period, v_start, v_end, v_psa, v_psa_name, billrecon._acting_role(), billrecon._reconcile_settings(),
          v_company, reconcile.psa_company_id)
  RETURNING id INTO v_run;

  -- Inputs: every enabled integration's health and the age of its data.
  INSERT INTO billrecon.reconcile_run_inputs (run_id, integration_id, integration, kind, side, status, last_success_at,
                                              last_sync_run_id, last_error)
  SELECT v_run, s.integration_id, s.integration, s.kind, s.side, s.status, s.last_success_at, s.last_run_id,
         s.last_error
    FROM billrecon._integration_health s
   WHERE s.enabled;

  -- The run's rows are worked on in a temporary table of the session (no
  -- indexes, WAL or foreign keys to maintain through the steps below) and
  -- written to billrecon.reconcile_results once, complete, at the end
  -- (billrecon._session_table: never one the caller created).
  IF billrecon._session_table('billrecon_run_rows') THEN
    IF (SELECT count(*) FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = pg_catalog.to_regclass('pg_temp.billrecon_run_rows') AND a.attnum > 0 AND NOT a.attisdropped)
       <> (SELECT count(*) FROM pg_catalog.pg_attribute a
            WHERE a.attrelid = 'billrecon.reconcile_results'::regclass AND a.attnum > 0 AND NOT a.attisdropped) THEN
      DROP TABLE pg_temp.billrecon_run_rows;   -- made before an extension update
    END IF;
  END IF;
  IF NOT billrecon._session_table('billrecon_run_rows') THEN
    CREATE TEMP TABLE billrecon_run_rows (LIKE billrecon.reconcile_results INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
  END IF;
  DELETE FROM pg_temp.billrecon_run_rows;

  -- 1. Every line item of the default PSA in force on the period's last day,
  --    with the rule that applies and why it is or is not reconciled.
  INSERT INTO pg_temp.billrecon_run_rows (
    run_id, row_kind, state, psa_company_id, company_external_id, company, agreement_id, agreement_external_id,
    agreement, billing_cycle, cycle_start, cycle_end, cycle_source, line_item_id, line_item_external_id,
    parent_line_item_id, product, product_name, description, effective_date, rule_id, rule_scope, integration_id,
    integration, mode, filters, multiplier, invoiced_qty, adjustment_qty, unit_price, invoiced_source, price_source)
  SELECT v_run, 'line',
         CASE
           WHEN g.line_item_id IS NOT NULL THEN 'ignored'
           WHEN parent.id IS NOT NULL THEN 'adjustment'
           WHEN r.id IS NULL THEN 'unmapped'
           WHEN r.mode = 'custom_sql' THEN 'custom_sql'
           WHEN r.mode = 'manual' AND ci.id IS NULL THEN 'manual'
           WHEN NOT EXISTS (
             SELECT 1 FROM billrecon.client_mappings m
               JOIN billrecon.vendor_accounts va ON va.id = m.vendor_account_id
              WHERE m.psa_company_id = c.id AND va.removed_at IS NULL
                AND va.integration_id = coalesce(ci.id, r.integration_id)) THEN 'unmapped'
           ELSE 'reconciled'
         END,
         c.id, c.external_id, c.name, a.id, a.external_id, a.name, a.billing_cycle, cy.cycle_start, cy.cycle_end,
         CASE WHEN a.billing_cycle = 'monthly' OR (a.billing_cycle IN ('quarterly', 'annual') AND a.start_date IS NOT NULL)
              THEN 'hard' ELSE 'estimated' END,
         l.id, l.external_id, parent.id, coalesce(l.product_code, l.product_name), l.product_name, l.description,
         l.effective_date, r.id, CASE WHEN r.id IS NULL THEN NULL WHEN r.line_item_id IS NULL THEN 'product' ELSE 'line' END,
         coalesce(ci.id, ri.id), coalesce(ci.name, ri.name), r.mode, r.filters, r.multiplier,
         l.quantity, 0, l.unit_price, 'hard', CASE WHEN l.unit_price IS NOT NULL THEN 'hard' END
    FROM billrecon.psa_line_items l
    JOIN billrecon.psa_agreements a ON a.id = l.agreement_id
    JOIN billrecon.psa_companies c ON c.id = l.company_id
    CROSS JOIN LATERAL billrecon.billing_cycle(
      CASE WHEN a.billing_cycle IN ('monthly', 'quarterly', 'annual') THEN a.billing_cycle ELSE 'monthly' END,
      reconcile.period, a.start_date) cy
    -- (billrecon._line_rule written out: the line's own rule, else its product's;
    -- a function with subqueries is not inlined and costs a call per line)
    LEFT JOIN billrecon.service_rules own ON own.line_item_id = l.id
    LEFT JOIN LATERAL (
      SELECT p.id FROM billrecon.service_rules p
       WHERE own.id IS NULL AND p.psa_product IS NOT NULL
         AND (lower(p.psa_product) = lower(l.product_code) OR lower(p.psa_product) = lower(l.product_name))
       ORDER BY lower(p.psa_product) = lower(l.product_code) DESC, p.id
       LIMIT 1) prod ON true
    LEFT JOIN billrecon.service_rules r ON r.id = coalesce(own.id, prod.id)
    LEFT JOIN billrecon.integrations ri ON ri.id = r.integration_id
    LEFT JOIN billrecon.integrations ci ON r.mode = 'manual' AND ci.name = r.filters->>'compare_with'
    LEFT JOIN billrecon.ignored_line_items g ON g.line_item_id = l.id
    LEFT JOIN billrecon.line_item_parents lp ON lp.line_item_id = l.id
    LEFT JOIN billrecon.psa_line_items parent ON parent.id = coalesce(lp.parent_line_item_id, l.parent_line_item_id)
   WHERE l.integration_id = v_psa AND (v_company IS NULL OR l.company_id = v_company)
     AND l.removed_at IS NULL AND a.removed_at IS NULL AND c.removed_at IS NULL
     AND (l.effective_date IS NULL OR l.effective_date <= v_end)
     AND (l.cancel_date IS NULL OR l.cancel_date > v_end)
     AND (a.start_date IS NULL OR a.start_date <= v_end)
     AND (a.end_date IS NULL OR a.end_date >= v_end)
     AND (NOT a.cancelled OR a.cancelled_date > v_end);

  -- The run's rows are new to the planner: without statistics it plans the
  -- group joins below for a handful of rows (seconds instead of
  -- milliseconds on a large book). ANALYZE samples, so this stays cheap.
  -- A coarse sample is enough to choose joins (3,000 rows instead of 30,000:
  -- the ANALYZE of the results below went from ≈ 125 ms to ≈ 15 ms).
  IF v_company IS NULL THEN   -- a run of one client is small enough for any plan
    PERFORM pg_catalog.set_config('default_statistics_target', '10', true);
    ANALYZE pg_temp.billrecon_run_rows (run_id, row_kind, state, psa_company_id, rule_id, integration_id,
                                         line_item_id, parent_line_item_id, mode);
    PERFORM pg_catalog.set_config('default_statistics_target', v_stats_target, true);
  END IF;

  -- 2. Adjustments net into their parent: a quantity correction (price zero or
  --    positive) adds its signed quantity; a credit (negative price) nets
  --    money, not seats, and adds nothing.
  UPDATE pg_temp.billrecon_run_rows p
     SET adjustment_qty = adj.qty
    FROM (SELECT x.parent_line_item_id, sum(CASE WHEN coalesce(x.unit_price, 0) >= 0 THEN x.invoiced_qty ELSE 0 END) AS qty
            FROM pg_temp.billrecon_run_rows x
           WHERE x.run_id = v_run AND x.state = 'adjustment'
           GROUP BY x.parent_line_item_id) adj
   WHERE p.run_id = v_run AND p.line_item_id = adj.parent_line_item_id;

  -- 3. Missing unit prices: the same product's price on the client's other
  --    lines, else the median over every client's lines of the product.
  UPDATE pg_temp.billrecon_run_rows t
     SET unit_price = e.price, price_source = 'estimated', estimate_basis = e.basis
    FROM (SELECT x.id,
                 coalesce(own.price, med.price) AS price,
                 CASE
                   WHEN own.price IS NOT NULL THEN
                     format('unit price taken from %s other %s line(s) of this product for this client', own.n, x.billing_cycle)
                   WHEN med.price IS NOT NULL THEN
                     format('unit price is the median of %s other %s line(s) of this product', med.n, x.billing_cycle)
                   ELSE 'no unit price known for this product: amount unknown'
                 END AS basis
            FROM pg_temp.billrecon_run_rows x
            LEFT JOIN LATERAL (
              SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY o.unit_price) AS price, count(*) AS n
                FROM billrecon.psa_line_items o
                JOIN billrecon.psa_agreements oa ON oa.id = o.agreement_id AND oa.billing_cycle = x.billing_cycle
               WHERE o.company_id = x.psa_company_id AND o.removed_at IS NULL AND o.unit_price IS NOT NULL
                 AND o.id <> x.line_item_id AND coalesce(o.product_code, o.product_name) = x.product
              HAVING count(*) > 0) own ON true
            LEFT JOIN LATERAL (
              SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY o.unit_price) AS price, count(*) AS n
                FROM billrecon.psa_line_items o
                JOIN billrecon.psa_agreements oa ON oa.id = o.agreement_id AND oa.billing_cycle = x.billing_cycle
               WHERE o.integration_id = v_psa AND o.removed_at IS NULL AND o.unit_price IS NOT NULL
                 AND o.id <> x.line_item_id AND coalesce(o.product_code, o.product_name) = x.product
              HAVING count(*) > 0) med ON own.price IS NULL
           WHERE x.run_id = v_run AND x.row_kind = 'line' AND x.state = 'reconciled' AND x.unit_price IS NULL) e
   WHERE t.id = e.id;

  -- 4. Count. Lines of one client under one rule form a group: expected is the
  --    sum of (billed + adjustments) x multiplier; the variance goes on the
  --    line with the latest effective date, priced at its unit price. The
  --    usage is counted in one pass over the records (billrecon._count_usage):
  --    what each group's rule counts, and the distinct machines of asset
  --    rules (a machine the RMM reports twice, one serial number, is one seat).
  PERFORM billrecon._count_usage(v_run, v_company);
  -- (Window functions over the run's rows, not a join of the rows to their
  -- groups: a join on three columns is estimated at one row and planned as
  -- a nested loop that is quadratic in the number of groups.)
  --    The same statement prices the variance (variance / multiplier x unit
  --    price, rounded to cents, and its monthly equivalent) and types it:
  --    calculated when every input is hard, else estimated with its basis.
  UPDATE pg_temp.billrecon_run_rows t
     SET group_line_item_id = c.report_line,
         group_size = c.n,
         expected_qty = CASE WHEN c.is_report THEN c.expected
                             ELSE (t.invoiced_qty + t.adjustment_qty) * t.multiplier END,
         counted_qty = CASE WHEN c.is_report THEN c.qty END,
         counted_accounts = c.accounts,
         duplicates_counted_once = CASE WHEN c.is_report AND c.duplicates > 0 THEN c.duplicates END,
         variance = c.variance,
         counted_source = CASE WHEN t.mode = 'manual' THEN 'estimated' ELSE 'hard' END,
         amount = round(c.variance / t.multiplier * t.unit_price, 2),
         monthly_amount = billrecon.monthly_amount(round(c.variance / t.multiplier * t.unit_price, 2),
                                                   CASE WHEN t.billing_cycle IN ('quarterly', 'annual')
                                                        THEN t.billing_cycle ELSE 'monthly' END),
         type = CASE WHEN t.price_source = 'estimated' OR t.unit_price IS NULL OR t.mode = 'manual'
                       OR t.cycle_source = 'estimated'
                     THEN 'estimated' ELSE 'calculated' END,
         estimate_basis = nullif(concat_ws('; ', t.estimate_basis,
                                    CASE WHEN t.mode = 'manual' THEN
                                      format('manual line compared with %s', t.integration) END,
                                    CASE WHEN t.cycle_source = 'estimated' THEN
                                      CASE WHEN t.billing_cycle IN ('quarterly', 'annual')
                                           THEN format('%s cycle without an agreement start date: calendar %s assumed',
                                                       t.billing_cycle,
                                                       CASE t.billing_cycle WHEN 'quarterly' THEN 'quarter' ELSE 'year' END)
                                           ELSE format('billing cycle %s: monthly assumed', t.billing_cycle) END END), '')
    FROM (SELECT g.*, CASE WHEN g.is_report THEN g.qty - g.expected ELSE 0 END AS variance
            FROM (SELECT x.id,
                         sum((x.invoiced_qty + x.adjustment_qty) * x.multiplier) OVER w AS expected,
                         count(*) OVER w AS n,
                         x.id = first_value(x.id) OVER w AS is_report,
                         first_value(x.line_item_external_id) OVER w AS report_line,
                         -- asset rules count machines: one reported twice (one serial number) is one seat
                         CASE WHEN x.mode = 'asset' THEN coalesce(k.machines, 0) ELSE coalesce(k.quantity, 0) END AS qty,
                         CASE WHEN x.mode = 'asset' THEN coalesce(k.quantity, 0) - coalesce(k.machines, 0) ELSE 0 END
                           AS duplicates,
                         coalesce(a.accounts, 0) AS accounts
                    FROM pg_temp.billrecon_run_rows x
                    LEFT JOIN pg_temp.billrecon_group_counts k   -- written by billrecon._count_usage
                           ON k.psa_company_id = x.psa_company_id AND k.rule_id = x.rule_id
                          AND k.integration_id = x.integration_id
                    LEFT JOIN (SELECT m.psa_company_id, va.integration_id, count(*) AS accounts
                                 FROM billrecon.client_mappings m
                                 JOIN billrecon.vendor_accounts va ON va.id = m.vendor_account_id
                                      AND va.removed_at IS NULL
                                WHERE v_company IS NULL OR m.psa_company_id = v_company
                                GROUP BY m.psa_company_id, va.integration_id) a
                           ON a.psa_company_id = x.psa_company_id AND a.integration_id = x.integration_id
                   WHERE x.run_id = v_run AND x.state = 'reconciled'
                  WINDOW w AS (PARTITION BY x.psa_company_id, x.rule_id, x.integration_id
                               ORDER BY x.effective_date DESC NULLS LAST, x.line_item_id DESC
                               ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)) g) c
   WHERE t.id = c.id;

  UPDATE pg_temp.billrecon_run_rows t
     SET type = 'unmapped'
   WHERE t.run_id = v_run AND t.state = 'unmapped';

  -- 5. Usage of vendor accounts mapped to no client (and not ignored as no
  --    client): unmapped, per account and kind.
  INSERT INTO pg_temp.billrecon_run_rows (
    run_id, row_kind, state, type, integration_id, integration, vendor_account_id, vendor_account_external_id,
    vendor_account, usage_kind, product, counted_qty, counted_source, example_usage_id)
  SELECT v_run, 'vendor_account', 'unmapped', 'unmapped', i.id, i.name, va.id, va.external_id, va.name, u.kind,
         CASE u.kind WHEN 'device' THEN 'devices' WHEN 'licence' THEN 'licences' WHEN 'user' THEN 'users'
                     ELSE 'subscriptions' END,
         sum(billrecon._usage_quantity(u)), 'hard', min(u.id)
    FROM billrecon.vendor_accounts va
    JOIN billrecon.integrations i ON i.id = va.integration_id AND i.enabled
    JOIN billrecon.usage_records u ON u.account_id = va.id AND u.removed_at IS NULL
   WHERE va.removed_at IS NULL AND v_company IS NULL   -- a run of one client leaves them out
     AND NOT EXISTS (SELECT 1 FROM billrecon.client_mappings m WHERE m.vendor_account_id = va.id)
     AND NOT EXISTS (SELECT 1 FROM billrecon.ignored_vendor_accounts g WHERE g.vendor_account_id = va.id)
     AND NOT billrecon._usage_excluded(u)
   GROUP BY i.id, i.name, va.id, va.external_id, va.name, u.kind
  HAVING sum(billrecon._usage_quantity(u)) > 0;

  -- 6. Usage of a mapped client that no rule of the client captures (and no
  --    exclusion covers): unaccounted, per client, integration and product.
  --    A custom_sql rule captures all of its integration's usage for the
  --    client (the PSA counts it); a manual line compared with an
  --    integration captures nothing. The same seats seen by a second system
  --    are not new revenue: a device another RMM reports (same serial or host
  --    name) and a rule of the client counts there; a licence or
  --    subscription of a product a line of the client bills by name; a
  --    distributor's subscription of a product the client's tenant reports as
  --    licences (the licences speak for them); users, where the tenant reports
  --    licences (the licences are what is billed), and unlicensed users.
  --    Each record is judged in the counting pass of step 4
  --    (billrecon._count_usage); here its verdicts are summed per product.
  INSERT INTO pg_temp.billrecon_run_rows (
    run_id, row_kind, state, type, psa_company_id, company_external_id, company, integration_id, integration,
    usage_kind, product, product_name, counted_qty, counted_accounts, counted_source, variance, example_usage_id)
  SELECT v_run, 'unaccounted', 'unaccounted', 'unaccounted', c.id, c.external_id, c.name, i.id, i.name, p.kind,
         p.product, max(p.display_name), sum(p.quantity), count(DISTINCT p.account_id), 'hard', sum(p.quantity),
         min(p.min_usage_id)
    FROM pg_temp.billrecon_unaccounted_parts p   -- written by billrecon._count_usage in step 4
    JOIN billrecon.psa_companies c ON c.id = p.psa_company_id
    JOIN billrecon.integrations i ON i.id = p.integration_id
   GROUP BY c.id, c.external_id, c.name, i.id, i.name, p.kind, p.product
  HAVING sum(p.quantity) > 0;

  -- Unaccounted usage is priced like the lines that bill the same kind of
  -- usage (their rule would count it, whatever the vendor; the client's own
  -- lines included): the median of their monthly price per counted unit.
  UPDATE pg_temp.billrecon_run_rows t
     SET unit_price = e.price, price_source = 'estimated', billing_cycle = 'monthly',
         amount = round(t.counted_qty * e.price, 2), monthly_amount = round(t.counted_qty * e.price, 2),
         estimate_basis = CASE WHEN e.price IS NULL
                               THEN 'no line of any client bills this usage: amount unknown'
                               ELSE format('priced at the median monthly unit price of %s line(s) whose rule would '
                                           'count this usage', e.n) END
    FROM (WITH rules AS MATERIALIZED (   -- each distinct rule once, with its lines' monthly unit prices
            SELECT o.mode, billrecon._rule_filter(o.filters) AS f,
                   array_agg(billrecon.monthly_amount(o.unit_price / o.multiplier, 'monthly'))
                     FILTER (WHERE o.billing_cycle = 'monthly') AS monthly_lines,
                   array_agg(billrecon.monthly_amount(o.unit_price / o.multiplier,
                               CASE WHEN o.billing_cycle IN ('quarterly', 'annual') THEN o.billing_cycle
                                    ELSE 'monthly' END)) AS all_lines
              FROM pg_temp.billrecon_run_rows o
             WHERE o.run_id = v_run AND o.row_kind = 'line' AND o.state = 'reconciled'
               AND o.price_source = 'hard' AND o.mode <> 'manual'
             GROUP BY o.mode, o.filters)
          SELECT x.id, p.price, p.n
            FROM pg_temp.billrecon_run_rows x
            JOIN billrecon.usage_records u ON u.id = x.example_usage_id
            LEFT JOIN LATERAL (
              -- monthly lines when there are any: they price a month directly
              SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY v.price) AS price, count(*) AS n
                FROM (SELECT CASE WHEN bool_or(r.monthly_lines IS NOT NULL) OVER () THEN r.monthly_lines
                                  ELSE r.all_lines END AS prices
                        FROM rules r
                       WHERE billrecon._filter_captures(r.mode, r.f, u)) m
                CROSS JOIN LATERAL unnest(m.prices) AS v(price)
              HAVING count(*) > 0) p ON true
           WHERE x.run_id = v_run AND x.row_kind = 'unaccounted') e
   WHERE t.id = e.id;

  -- Seats per client, kept with the run.
  INSERT INTO billrecon.reconcile_run_clients (run_id, psa_company_id, company_external_id, company, seat_count,
                                               devices, users, licences, subscriptions)
  SELECT v_run, c.id, c.external_id, c.name, coalesce(s.seats, 0), coalesce(s.devices, 0), coalesce(s.users, 0),
         coalesce(s.licences, 0), coalesce(s.subscriptions, 0)
    FROM billrecon.psa_companies c
    LEFT JOIN pg_temp.billrecon_client_seats s ON s.psa_company_id = c.id   -- from billrecon._count_usage
   WHERE c.id IN (SELECT x.psa_company_id FROM pg_temp.billrecon_run_rows x WHERE x.run_id = v_run)
     AND (v_company IS NULL OR c.id = v_company);

  -- Inputs that may be unreliable: said once in a WARNING and the run's
  -- notes, and on every row that depends on them.
  UPDATE pg_temp.billrecon_run_rows t
     SET input_warning = w.warning
    FROM (SELECT x.id,
                 string_agg(format('%s is %s: %s', i.integration, i.status,
                                   coalesce(s.status_reason, 'no sync')), '; ' ORDER BY i.integration) AS warning
            FROM pg_temp.billrecon_run_rows x
            JOIN billrecon.reconcile_run_inputs i ON i.run_id = v_run AND i.status <> 'green'
                 AND (i.integration_id = x.integration_id OR (x.row_kind = 'line' AND i.integration_id = v_psa))
            LEFT JOIN billrecon._integration_health s ON s.integration_id = i.integration_id
           WHERE x.run_id = v_run
           GROUP BY x.id) w
   WHERE t.id = w.id;
  SELECT array_agg(format('%s (%s) is %s: %s', i.integration, i.kind, i.status,
                          coalesce(s.status_reason, 'no sync')) ORDER BY i.integration)
    INTO v_notes
    FROM billrecon.reconcile_run_inputs i
    LEFT JOIN billrecon._integration_health s ON s.integration_id = i.integration_id
   WHERE i.run_id = v_run AND i.status <> 'green';
  IF NOT EXISTS (SELECT 1 FROM pg_temp.billrecon_run_rows x WHERE x.run_id = v_run AND x.row_kind = 'line') THEN
    v_notes := coalesce(v_notes, '{}') ||
               format('no line item of %s is in force on %s: nothing billed to compare (has it been synced?)',
                      v_psa_name, v_end);
  END IF;
  IF v_notes IS NOT NULL AND cardinality(v_notes) > 0 THEN
    RAISE WARNING 'reconcile run % used data that may be incomplete', v_run
      USING DETAIL = array_to_string(v_notes, E'\n'),
            HINT = 'Sync the integrations named (billrecon.sync or billrecon.sync_async) and reconcile again; '
                   'the affected rows say so in input_warning.';
  END IF;

  PERFORM billrecon._explain_results(v_run);

  -- The run's rows, complete, stored once, client by client: the indexes
  -- on the client and the line are then filled in key order (neighbouring
  -- leaf pages, not one random page a row), and a client's rows of a run
  -- sit together in the table.
  INSERT INTO billrecon.reconcile_results
  SELECT * FROM pg_temp.billrecon_run_rows x ORDER BY x.company_external_id, x.line_item_id, x.id;
  IF v_company IS NULL THEN   -- fresh statistics for the cards' joins (coarse: see step 1)
    PERFORM pg_catalog.set_config('default_statistics_target', '10', true);
    ANALYZE billrecon.reconcile_results (run_id, row_kind, state, psa_company_id, line_item_id, integration_id);
    PERFORM pg_catalog.set_config('default_statistics_target', v_stats_target, true);
  END IF;

  SELECT count(*),
         count(*) FILTER (WHERE billrecon._is_discrepancy(x.type, x.variance)),
         coalesce(sum(x.amount) FILTER (WHERE billrecon._is_discrepancy(x.type, x.variance)), 0)
    INTO v_lines, v_count, v_amount
    FROM pg_temp.billrecon_run_rows x   -- (the rows just stored, without reading every run's)
   WHERE x.run_id = v_run;
  UPDATE billrecon.reconcile_runs
     SET finished_at = clock_timestamp(), line_count = v_lines, discrepancy_count = v_count,
         discrepancy_amount = v_amount, notes = coalesce(v_notes, '{}')
   WHERE id = v_run;

  PERFORM billrecon._raise_change_cards(v_run);
  RETURN v_run;
END
$rec$;
COMMENT ON FUNCTION billrecon.reconcile(date, text) IS
  'Reconciles the billing period (calendar month) containing period: every line item of the default PSA in force on '
  'the month''s last day is compared with the usage its service rule counts for the client; unmapped accounts and '
  'unaccounted usage are recorded too. Stores the run and raises change cards; returns the run id. Read the results '
  'in billrecon.discrepancies and billrecon.reconciled_invoices. With psa_company_id (the PSA''s id of a client) '
  'only that client is reconciled (a quick re-check after a fix; unaccounted usage is then priced from its own '
  'lines, and unmapped vendor accounts are left out).';

-- One sentence per result row saying what was compared and what it means.
CREATE FUNCTION billrecon._explain_results(run_id bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan   -- a run of one client reads its rows by index, not the whole table
AS $exp$
BEGIN
  UPDATE pg_temp.billrecon_run_rows t   -- (the run's rows before they are stored)
     SET explanation = CASE
       WHEN t.state = 'reconciled' AND t.counted_qty IS NULL THEN
         format('Reconciled with %s other line(s) of the same rule for this client; the group''s variance is on line %s.',
                t.group_size - 1, t.group_line_item_id)
       WHEN t.state = 'reconciled' THEN
         format('Counted %s in %s (%s%s) for %s account(s); billed %s%s%s = %s expected%s. %s',
                trim_scale(t.counted_qty), t.integration, t.mode,
                CASE WHEN t.filters IS NOT NULL AND t.filters <> '{}' THEN ' ' || t.filters::text ELSE '' END,
                t.counted_accounts,
                CASE WHEN t.group_size > 1 THEN format('%s lines, ', t.group_size) ELSE '' END,
                CASE WHEN t.group_size > 1 THEN format('%s', trim_scale(t.expected_qty / t.multiplier))
                     ELSE trim_scale(t.invoiced_qty + t.adjustment_qty)::text END,
                CASE WHEN t.multiplier <> 1 THEN format(' x %s', trim_scale(t.multiplier)) ELSE '' END,
                trim_scale(t.expected_qty),
                CASE WHEN t.adjustment_qty <> 0 THEN format(' (adjustments %s)', trim_scale(t.adjustment_qty)) ELSE '' END
                  || CASE WHEN t.duplicates_counted_once > 0
                          THEN format('; %s device record(s) of machines reported twice counted once',
                                      t.duplicates_counted_once) ELSE '' END,
                CASE
                  WHEN t.variance = 0 THEN 'No discrepancy.'
                  WHEN t.unit_price IS NULL THEN
                    format('%s by %s; amount unknown: no unit price.',
                           CASE WHEN t.variance > 0 THEN 'Under-billed' ELSE 'Over-billed' END, trim_scale(abs(t.variance)))
                  ELSE format('%s by %s: %s%s x %s = %s per %s cycle%s.',
                              CASE WHEN t.variance > 0 THEN 'Under-billed' ELSE 'Over-billed' END,
                              trim_scale(abs(t.variance)), trim_scale(t.variance),
                              CASE WHEN t.multiplier <> 1 THEN format(' / %s', trim_scale(t.multiplier)) ELSE '' END,
                              trim_scale(t.unit_price), t.amount,
                              CASE WHEN t.billing_cycle IN ('quarterly', 'annual') THEN t.billing_cycle ELSE 'monthly' END,
                              CASE WHEN t.monthly_amount IS DISTINCT FROM t.amount
                                   THEN format(' (%s a month)', t.monthly_amount) ELSE '' END)
                END)
       WHEN t.state = 'ignored' THEN
         'Ignored' || coalesce(': ' || (SELECT g.reason FROM billrecon.ignored_line_items g
                                         WHERE g.line_item_id = t.line_item_id), '') || '. Never reconciled.'
       WHEN t.state = 'custom_sql' THEN
         'The PSA computes this quantity itself (custom_sql rule): shown, never reconciled nor written back.'
       WHEN t.state = 'manual' THEN 'Manual line: no automatic count (add compare_with to compare it with an integration).'
       WHEN t.state = 'adjustment' THEN
         CASE WHEN coalesce(t.unit_price, 0) < 0
              THEN format('Credit of %s x %s on line %s: nets money, not seats.', trim_scale(t.invoiced_qty),
                          trim_scale(t.unit_price), (SELECT p.external_id FROM billrecon.psa_line_items p
                                                     WHERE p.id = t.parent_line_item_id))
              ELSE format('Adjustment of line %s: nets %s units into it.',
                          (SELECT p.external_id FROM billrecon.psa_line_items p WHERE p.id = t.parent_line_item_id),
                          trim_scale(t.invoiced_qty)) END
       WHEN t.state = 'unmapped' AND t.row_kind = 'line' AND t.rule_id IS NULL THEN
         'No service rule covers this line: map it (billrecon.map_line_item or billrecon.map_product) or ignore it.'
       WHEN t.state = 'unmapped' AND t.row_kind = 'line' THEN
         format('The client has no vendor account mapped on %s, so its usage cannot be counted: map one with '
                'billrecon.map_client() (not counted 0 and over-billed).', t.integration)
       WHEN t.row_kind = 'vendor_account' THEN
         format('%s %s reported by %s for vendor account "%s" (%s), which is mapped to no client: map it with '
                'billrecon.map_client() or confirm a suggestion.', trim_scale(t.counted_qty), t.product, t.integration,
                t.vendor_account, t.vendor_account_external_id)
       WHEN t.row_kind = 'unaccounted' THEN
         format('%s in %s for this client, counted by no rule of the client: %s. Bill it (map a line to a rule '
                'that counts it) or exclude the product (billrecon.exclude_vendor_product).',
                concat_ws(' ', trim_scale(t.counted_qty), coalesce(t.product_name, t.product),
                          CASE t.usage_kind WHEN 'device' THEN 'device(s)' WHEN 'licence' THEN 'licence(s)'
                                            WHEN 'subscription' THEN 'subscription unit(s)' END),
                t.integration,
                CASE WHEN t.amount IS NULL THEN 'unbilled usage, price unknown'
                     ELSE format('about %s a month of unbilled usage at %s each', t.amount, trim_scale(t.unit_price)) END)
     END || coalesce(' Caution: ' || t.input_warning || '.', '')
   WHERE t.run_id = _explain_results.run_id;
END
$exp$;
COMMENT ON FUNCTION billrecon._explain_results(bigint) IS
  'Internal: writes the explanation of every row of the run being reconciled (in the session''s working table '
  'pg_temp.billrecon_run_rows, before reconcile() stores them)';

-- Whether a result row is a discrepancy: a missing mapping, unaccounted usage,
-- or a reconciled line whose count differs from its billing.
CREATE FUNCTION billrecon._is_discrepancy(type text, variance numeric)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN type IN ('unmapped', 'unaccounted') OR (type IN ('calculated', 'estimated') AND variance <> 0);
COMMENT ON FUNCTION billrecon._is_discrepancy(text, numeric) IS
  'Internal: whether a result row of this type and variance is a discrepancy';
