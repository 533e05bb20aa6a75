-- Schema: tables, keys, types, comments on everything.
BEGIN;
SELECT plan(124);

SELECT has_schema('billrecon');
SELECT tables_are('billrecon', ARRAY[
  'integrations', 'integration_credentials', 'sync_runs', 'sync_run_messages',
  'psa_companies', 'psa_agreements', 'psa_line_items', 'vendor_accounts', 'usage_records',
  '_stage_companies', '_stage_agreements', '_stage_line_items', '_stage_vendor_accounts', '_stage_usage_records',
  'client_mappings', 'client_match_candidates', 'client_match_rejections', 'rule_presets', 'service_rules',
  'ignored_line_items', 'excluded_vendor_products', 'line_item_parents',
  'reconcile_runs', 'reconcile_run_inputs', 'reconcile_results', 'reconcile_run_clients',
  'proposed_changes', 'change_card_pushes', 'line_item_notes', 'audit_log', 'sync_jobs_queue', 'sync_job_tasks',
  'ignored_vendor_accounts', 'microsoft_skus'
]);
SELECT has_view('billrecon', 'integration_status', 'integration_status view exists');
SELECT has_view('billrecon', 'sync_history', 'sync_history view exists');
SELECT has_view('billrecon', v, v || ' view exists')
  FROM unnest(ARRAY['client_match_suggestions', 'unmapped_vendor_accounts', 'service_mapping', 'unmapped_line_items']) AS v;
SELECT has_column('billrecon', 'client_match_suggestions', c, 'client_match_suggestions has ' || c)
  FROM unnest(ARRAY['integration', 'vendor_account_id', 'vendor_account_name', 'psa_company_id', 'psa_company_name',
                    'score', 'evidence']) AS c;
-- Built-in presets are not user data: only the user's own rows are dumped.
SELECT is((SELECT cfg.condition FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS cfg(oid, condition)
            WHERE e.extname = 'billrecon' AND cfg.oid = 'billrecon.rule_presets'::regclass),
          'WHERE NOT builtin', 'rule_presets dumps the user''s presets only');

-- Stable surface columns (product.md).
SELECT has_column('billrecon', 'integration_status', c, 'integration_status has ' || c)
  FROM unnest(ARRAY['integration', 'kind', 'status', 'last_success_at', 'last_error']) AS c;
SELECT has_column('billrecon', 'reconciled_invoices', c, 'reconciled_invoices has ' || c)
  FROM unnest(ARRAY['run_id', 'psa_company_id', 'company', 'seat_count', 'service_count', 'discrepancy_count',
                    'discrepancy_amount', 'billing_cycle']) AS c;
SELECT has_column('billrecon', 'discrepancies', c, 'discrepancies has ' || c)
  FROM unnest(ARRAY['run_id', 'psa_company_id', 'company', 'agreement_id', 'line_item_id', 'product', 'integration',
                    'mode', 'invoiced_qty', 'counted_qty', 'unit_price', 'variance', 'amount', 'type']) AS c;
SELECT has_column('billrecon', 'flagged_services', c, 'flagged_services has ' || c)
  FROM unnest(ARRAY['psa_company_id', 'agreement_id', 'line_item_id', 'product', 'flag']) AS c;
SELECT has_column('billrecon', 'inactive_seats', c, 'inactive_seats has ' || c)
  FROM unnest(ARRAY['integration', 'vendor_account_id', 'psa_company_id', 'seat', 'kind', 'last_active_at',
                    'days_inactive']) AS c;
SELECT has_column('billrecon', 'change_cards', c, 'change_cards has ' || c)
  FROM unnest(ARRAY['card_id', 'run_id', 'psa_company_id', 'line_item_id', 'current_qty', 'proposed_qty', 'delta',
                    'amount', 'status', 'effective_date', 'flags']) AS c;
-- Report money is numeric with two decimals, ids are text (what BI tools read well).
SELECT col_type_is('billrecon', v, c, 'numeric(14,2)', v || '.' || c || ' is numeric(14,2)')
  FROM (VALUES ('discrepancies', 'amount'), ('discrepancies', 'unit_price'), ('reconciled_invoices', 'discrepancy_amount'),
               ('change_cards', 'amount')) AS x(v, c);
SELECT col_type_is('billrecon', v, c, 'text', v || '.' || c || ' is text')
  FROM (VALUES ('discrepancies', 'psa_company_id'), ('discrepancies', 'line_item_id'), ('discrepancies', 'type'),
               ('change_cards', 'status')) AS x(v, c);

SELECT col_is_pk('billrecon', 'integrations', 'id', 'col_is_pk billrecon, integrations, id');
SELECT col_is_unique('billrecon', 'integrations', 'name', 'col_is_unique billrecon, integrations, name');
SELECT col_is_pk('billrecon', 'integration_credentials', 'integration_id', 'col_is_pk billrecon, integration_credentials, integration_id');
SELECT col_is_fk('billrecon', 'integration_credentials', 'integration_id', 'col_is_fk billrecon, integration_credentials, integration_id');
SELECT col_is_unique('billrecon', 'psa_companies', ARRAY['integration_id', 'external_id'], 'col_is_unique billrecon, psa_companies, [integration_id, external_id]');
SELECT col_is_unique('billrecon', 'psa_agreements', ARRAY['integration_id', 'external_id'], 'col_is_unique billrecon, psa_agreements, [integration_id, external_id]');
SELECT col_is_unique('billrecon', 'psa_line_items', ARRAY['integration_id', 'external_id'], 'col_is_unique billrecon, psa_line_items, [integration_id, external_id]');
SELECT col_is_unique('billrecon', 'vendor_accounts', ARRAY['integration_id', 'external_id'], 'col_is_unique billrecon, vendor_accounts, [integration_id, external_id]');
SELECT col_is_unique('billrecon', 'usage_records', ARRAY['integration_id', 'external_id'], 'col_is_unique billrecon, usage_records, [integration_id, external_id]');
SELECT col_is_fk('billrecon', 'psa_agreements', 'company_id', 'col_is_fk billrecon, psa_agreements, company_id');
SELECT col_is_fk('billrecon', 'psa_line_items', 'agreement_id', 'col_is_fk billrecon, psa_line_items, agreement_id');
SELECT col_is_fk('billrecon', 'usage_records', ARRAY['integration_id', 'account_id'], 'col_is_fk billrecon, usage_records, [integration_id, account_id]');

-- Money and quantities are exact numerics, never floats.
SELECT col_type_is('billrecon', 'psa_line_items', 'quantity', 'numeric', 'col_type_is billrecon, psa_line_items, quantity, numeric');
SELECT col_type_is('billrecon', 'psa_line_items', 'unit_price', 'numeric', 'col_type_is billrecon, psa_line_items, unit_price, numeric');
SELECT col_type_is('billrecon', 'psa_line_items', 'unit_cost', 'numeric', 'col_type_is billrecon, psa_line_items, unit_cost, numeric');
SELECT col_type_is('billrecon', 'usage_records', 'quantity', 'numeric', 'col_type_is billrecon, usage_records, quantity, numeric');
SELECT col_type_is('billrecon', 'usage_records', 'unit_cost', 'numeric', 'col_type_is billrecon, usage_records, unit_cost, numeric');
SELECT col_type_is('billrecon', 'usage_records', 'last_active_at', 'timestamp with time zone', 'col_type_is billrecon, usage_records, last_active_at, timestamp with time zone');
SELECT col_type_is('billrecon', 'psa_agreements', 'start_date', 'date', 'col_type_is billrecon, psa_agreements, start_date, date');
SELECT col_type_is('billrecon', 'integration_credentials', 'credentials', 'jsonb', 'col_type_is billrecon, integration_credentials, credentials, jsonb');

SELECT col_not_null('billrecon', 'psa_line_items', 'quantity', 'col_not_null billrecon, psa_line_items, quantity');
SELECT col_not_null('billrecon', 'usage_records', 'kind', 'col_not_null billrecon, usage_records, kind');

-- Staging is unlogged: a crash loses only unfinished runs.
SELECT is((SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'billrecon' AND c.relname LIKE '\_stage\_%' AND c.relkind = 'r'
              AND c.relpersistence = 'u'), 5, 'all five staging tables are unlogged');

-- User data is registered for pg_dump (tables and their sequences).
SELECT set_eq(
  $$SELECT c.relname::text FROM pg_extension e, unnest(e.extconfig) AS cfg(oid) JOIN pg_class c ON c.oid = cfg.oid
     WHERE e.extname = 'billrecon' AND c.relkind = 'r'$$,
  ARRAY['integrations', 'integration_credentials', 'sync_runs', 'sync_run_messages', 'psa_companies',
        'psa_agreements', 'psa_line_items', 'vendor_accounts', 'usage_records', 'client_mappings',
        'client_match_candidates', 'client_match_rejections', 'rule_presets', 'service_rules', 'ignored_line_items',
        'excluded_vendor_products', 'line_item_parents', 'reconcile_runs', 'reconcile_run_inputs',
        'reconcile_results', 'reconcile_run_clients', 'proposed_changes', 'change_card_pushes', 'line_item_notes',
        'audit_log', 'sync_jobs_queue', 'sync_job_tasks', 'ignored_vendor_accounts',
        'microsoft_skus'],
  'every user-data table is dumped by pg_dump');
SELECT is((SELECT count(*)::int FROM pg_extension e, unnest(e.extconfig) AS cfg(oid) JOIN pg_class c ON c.oid = cfg.oid
            WHERE e.extname = 'billrecon' AND c.relkind = 'S'), 16, 'their sequences are dumped too');

-- Comments on every table, view, column and function of the schema.
SELECT is_empty($$
  SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = 'billrecon' AND c.relkind IN ('r', 'v', 'm') AND obj_description(c.oid, 'pg_class') IS NULL$$,
  'every table and view has a comment');
SELECT is_empty($$
  SELECT c.relname || '.' || a.attname FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
   WHERE n.nspname = 'billrecon' AND c.relkind IN ('r', 'v', 'm') AND c.relname NOT LIKE '\_stage\_%'
     AND col_description(c.oid, a.attnum) IS NULL$$,
  'every column of every table and view has a comment');
SELECT is_empty($$
  SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname = 'billrecon' AND obj_description(p.oid, 'pg_proc') IS NULL$$,
  'every function has a comment');

-- Definer functions pin their search_path.
SELECT is_empty($$
  SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname = 'billrecon' AND p.prosecdef
     AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)$$,
  'SECURITY DEFINER functions set search_path = pg_catalog, pg_temp');

SELECT has_function('billrecon', 'add_integration', ARRAY['text', 'text', 'text', 'jsonb', 'jsonb', 'boolean']);
SELECT function_returns('billrecon', 'add_integration', ARRAY['text', 'text', 'text', 'jsonb', 'jsonb', 'boolean'], 'integer');
SELECT has_function('billrecon', 'sync', ARRAY['text', 'text']);
SELECT is_definer('billrecon', 'sync', ARRAY['text', 'text'], 'sync runs with the owner''s rights (reads credentials)');
SELECT isnt_definer('billrecon', 'add_integration', ARRAY['text', 'text', 'text', 'jsonb', 'jsonb', 'boolean'],
                    'add_integration runs with the caller''s rights (admin only)');

-- At-rest encryption of credentials (docs/security.md).
SELECT col_type_is('billrecon', 'integration_credentials', 'encrypted_credentials', 'bytea',
                   'encrypted credentials are bytea (an AES-256-GCM envelope)');
SELECT col_is_null('billrecon', 'integration_credentials', 'credentials',
                   'credentials may be NULL (when encrypted)');
SELECT has_view('billrecon', 'credential_encryption', 'credential_encryption view exists');
SELECT has_column('billrecon', 'credential_encryption', c, 'credential_encryption has ' || c)
  FROM unnest(ARRAY['integration', 'kind', 'encrypted', 'key_id', 'status', 'credential_keys']) AS c;
SELECT has_trigger('billrecon', 'integration_credentials', 'encrypt', 'credentials are encrypted by a trigger');
SELECT isnt_definer('billrecon', f, a, f || ' runs with the caller''s rights')
  FROM (VALUES ('encrypt_credentials', ARRAY[]::text[]), ('rotate_credential_key', ARRAY['text']),
               ('decrypt_credentials', ARRAY['text'])) AS x(f, a);

-- The cards' audit trigger fires on an update of any column but the
-- bookkeeping a reconcile run refreshes (170_audit.sql): a column added to
-- proposed_changes must be added to its UPDATE OF list.
SELECT set_eq(
  $$SELECT a.attname::text FROM pg_trigger g JOIN pg_attribute a ON a.attrelid = g.tgrelid AND a.attnum = ANY (g.tgattr)
     WHERE g.tgrelid = 'billrecon.proposed_changes'::regclass AND g.tgname = 'audit'$$,
  $$SELECT a.attname::text FROM pg_attribute a
     WHERE a.attrelid = 'billrecon.proposed_changes'::regclass AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attgenerated = '' AND a.attname NOT IN ('updated_at', 'last_run_id', 'result_id', 'explanation')$$,
  'the cards'' audit trigger watches every column but the run''s bookkeeping');

-- The extension is not relocatable and lives in its own schema.
SELECT is((SELECT extrelocatable FROM pg_extension WHERE extname = 'billrecon'), false, 'not relocatable');
SELECT is((SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
            WHERE e.extname = 'billrecon'), 'billrecon', 'installed in schema billrecon');

SELECT * FROM finish();
ROLLBACK;
