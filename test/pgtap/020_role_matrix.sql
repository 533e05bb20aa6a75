-- The roles matrix: every table, view, sequence and function of schema
-- billrecon (and the schema itself) against PUBLIC, billrecon_reader,
-- billrecon_operator and billrecon_admin, with what each role may do written
-- down below as data. An object the matrix does not list fails the test: a new
-- function or view needs a decision about who may use it (docs/security.md).
--
-- The model (product.md "Security and roles", docs/architecture.md "Roles"):
--   PUBLIC    nothing at all.
--   reader    reads synced data, sync history, reconcile runs and the report
--             views; never credentials, never staging, never the audit log.
--   operator  + syncs, maps, reconciles, approves, pushes. Mapping tables are
--             written by SECURITY INVOKER functions, so the operator holds
--             INSERT/UPDATE/DELETE on them (every change is audited by
--             trigger); runs, cards, pushes, notes and the audit log are
--             written only by SECURITY DEFINER functions: no direct write.
--             Reads the audit log.
--   admin     + integrations and their credentials, presets and SKUs;
--             prunes (DELETE) the audit log. Nobody updates or inserts audit
--             rows by hand. Synced data and sync history are written only
--             inside billrecon's functions (dropping an integration cascades
--             with the table owner's rights, so no DELETE grant is needed).
--
-- Letters are PostgreSQL's own (as psql's \dp shows them):
--   tables, views  a INSERT  r SELECT  w UPDATE  d DELETE  D TRUNCATE  x REFERENCES  t TRIGGER
--   sequences      r SELECT  w UPDATE  U USAGE
--   functions      X EXECUTE
--   schema         U USAGE   C CREATE
-- Each column holds the role's EFFECTIVE rights (inherited ones included:
-- admin is a member of operator, operator of reader). SELECT, INSERT, UPDATE
-- and REFERENCES are checked with has_any_column_privilege, so a column-level
-- grant counts too. PUBLIC is probed through a fresh role that has no grants.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SET LOCAL client_min_messages = warning;

CREATE ROLE billrecon_tap_public NOLOGIN;   -- stands for PUBLIC; rolled back at the end

CREATE TEMP TABLE role_matrix (
  kind     text NOT NULL CHECK (kind IN ('schema', 'table', 'view', 'sequence', 'function')),
  object   text NOT NULL,     -- relation name, or function name(argument types)
  public   text NOT NULL,
  reader   text NOT NULL,
  operator text NOT NULL,
  admin    text NOT NULL
);

INSERT INTO role_matrix (kind, object, public, reader, operator, admin) VALUES
  -- kind        object                                  public reader operator admin
  ('schema',   'billrecon',                                  '', 'U',    'U',    'U'),

  -- Integrations and secrets.
  ('table',    'integrations',                               '', 'r',    'r',    'arwd'),
  ('sequence', 'integrations_id_seq',                        '', '',     '',     'U'),
  ('table',    'integration_credentials',                    '', '',     '',     'arwd'),

  -- Sync history and synced data: read by all, written by sync() alone.
  -- FINDING (900_privileges.sql): "GRANT DELETE ON sync_runs, sync_run_messages,
  -- psa_companies, psa_agreements, psa_line_items, vendor_accounts, usage_records
  -- TO billrecon_admin" gives the admin hand deletes of history and data; the
  -- cascade of drop_integration() does not need it (verified with it revoked).
  ('table',    'sync_runs',                                  '', 'r',    'r',    'r'),
  ('sequence', 'sync_runs_id_seq',                           '', '',     '',     ''),
  ('table',    'sync_run_messages',                          '', 'r',    'r',    'r'),
  ('table',    'psa_companies',                              '', 'r',    'r',    'r'),
  ('sequence', 'psa_companies_id_seq',                       '', '',     '',     ''),
  ('table',    'psa_agreements',                             '', 'r',    'r',    'r'),
  ('sequence', 'psa_agreements_id_seq',                      '', '',     '',     ''),
  ('table',    'psa_line_items',                             '', 'r',    'r',    'r'),
  ('sequence', 'psa_line_items_id_seq',                      '', '',     '',     ''),
  ('table',    'vendor_accounts',                            '', 'r',    'r',    'r'),
  ('sequence', 'vendor_accounts_id_seq',                     '', '',     '',     ''),
  ('table',    'usage_records',                              '', 'r',    'r',    'r'),
  ('sequence', 'usage_records_id_seq',                       '', '',     '',     ''),

  -- Staging: private to sync().
  ('table',    '_stage_companies',                           '', '',     '',     ''),
  ('sequence', '_stage_companies_seq_seq',                   '', '',     '',     ''),
  ('table',    '_stage_agreements',                          '', '',     '',     ''),
  ('sequence', '_stage_agreements_seq_seq',                  '', '',     '',     ''),
  ('table',    '_stage_line_items',                          '', '',     '',     ''),
  ('sequence', '_stage_line_items_seq_seq',                  '', '',     '',     ''),
  ('table',    '_stage_vendor_accounts',                     '', '',     '',     ''),
  ('sequence', '_stage_vendor_accounts_seq_seq',             '', '',     '',     ''),
  ('table',    '_stage_usage_records',                       '', '',     '',     ''),
  ('sequence', '_stage_usage_records_seq_seq',               '', '',     '',     ''),

  -- Background sync queue: written by sync_async() / cancel_sync() (definer).
  ('table',    'sync_jobs_queue',                            '', 'r',    'r',    'r'),
  ('sequence', 'sync_jobs_queue_id_seq',                     '', '',     '',     ''),
  ('table',    'sync_job_tasks',                             '', 'r',    'r',    'r'),
  ('sequence', 'sync_job_tasks_id_seq',                      '', '',     '',     ''),

  -- Mapping: the operator's tables, changed through invoker functions, audited.
  ('table',    'client_mappings',                            '', 'r',    'arwd', 'arwd'),
  ('table',    'client_match_candidates',                    '', 'r',    'arwd', 'arwd'),
  ('table',    'client_match_rejections',                    '', 'r',    'arwd', 'arwd'),
  ('table',    'ignored_vendor_accounts',                    '', 'r',    'arwd', 'arwd'),
  ('table',    'service_rules',                              '', 'r',    'arwd', 'arwd'),
  ('sequence', 'service_rules_id_seq',                       '', '',     'U',    'U'),
  ('table',    'ignored_line_items',                         '', 'r',    'arwd', 'arwd'),
  ('table',    'excluded_vendor_products',                   '', 'r',    'arwd', 'arwd'),
  ('table',    'line_item_parents',                          '', 'r',    'arwd', 'arwd'),
  -- Presets and the SKU catalogue: the admin's.
  ('table',    'rule_presets',                               '', 'r',    'r',    'arwd'),
  ('sequence', 'rule_presets_id_seq',                        '', '',     '',     'U'),
  ('table',    'microsoft_skus',                             '', 'r',    'r',    'arwd'),

  -- Reconcile runs, cards, pushes, notes: written by definer functions only.
  ('table',    'reconcile_runs',                             '', 'r',    'r',    'r'),
  ('sequence', 'reconcile_runs_id_seq',                      '', '',     '',     ''),
  ('table',    'reconcile_run_inputs',                       '', 'r',    'r',    'r'),
  ('table',    'reconcile_results',                          '', 'r',    'r',    'r'),
  ('sequence', 'reconcile_results_id_seq',                   '', '',     '',     ''),
  ('table',    'reconcile_run_clients',                      '', 'r',    'r',    'r'),
  ('table',    'proposed_changes',                           '', 'r',    'r',    'r'),
  ('sequence', 'proposed_changes_id_seq',                    '', '',     '',     ''),
  ('table',    'change_card_pushes',                         '', 'r',    'r',    'r'),
  ('sequence', 'change_card_pushes_id_seq',                  '', '',     '',     ''),
  ('table',    'line_item_notes',                            '', 'r',    'r',    'r'),

  -- The audit trail: operators read it, the admin prunes it, nobody edits it.
  ('table',    'audit_log',                                  '', '',     'r',    'rd'),
  ('sequence', 'audit_log_id_seq',                           '', '',     '',     ''),

  -- Views (they run with their owner's rights: each one is a decision).
  ('view',     '_integration_health',                        '', '',     '',     ''),
  ('view',     'integration_status',                         '', 'r',    'r',    'r'),
  ('view',     'sync_history',                               '', 'r',    'r',    'r'),
  ('view',     'sync_jobs',                                  '', 'r',    'r',    'r'),
  ('view',     'client_match_suggestions',                   '', 'r',    'r',    'r'),
  ('view',     'unmapped_vendor_accounts',                   '', 'r',    'r',    'r'),
  ('view',     'service_mapping',                            '', 'r',    'r',    'r'),
  ('view',     'unmapped_line_items',                        '', 'r',    'r',    'r'),
  ('view',     'uncaptured_vendor_products',                 '', 'r',    'r',    'r'),
  ('view',     'unmapped_counts',                            '', 'r',    'r',    'r'),
  ('view',     'reconciled_lines',                           '', 'r',    'r',    'r'),
  ('view',     'discrepancies',                              '', 'r',    'r',    'r'),
  ('view',     'discrepancies_by_client',                    '', 'r',    'r',    'r'),
  ('view',     'discrepancies_by_service',                   '', 'r',    'r',    'r'),
  ('view',     'discrepancies_by_contract',                  '', 'r',    'r',    'r'),
  ('view',     'reconciled_invoices',                        '', 'r',    'r',    'r'),
  ('view',     'reconcile_run_comparison',                   '', 'r',    'r',    'r'),
  ('view',     'client_integrations',                        '', 'r',    'r',    'r'),
  ('view',     'client_seats',                               '', 'r',    'r',    'r'),
  ('view',     'client_services',                            '', 'r',    'r',    'r'),
  ('view',     'flagged_services',                           '', 'r',    'r',    'r'),
  ('view',     'inactive_seats',                             '', 'r',    'r',    'r'),
  ('view',     'duplicate_seats',                            '', 'r',    'r',    'r'),
  ('view',     'margin',                                     '', 'r',    'r',    'r'),
  ('view',     'change_cards',                               '', 'r',    'r',    'r'),
  ('view',     'change_card_proration',                      '', 'r',    'r',    'r'),

  -- Functions everyone with the reader role uses (directly or through views).
  ('function', 'version()',                                  '', 'X',    'X',    'X'),
  ('function', 'recommended_match_threshold()',              '', 'X',    'X',    'X'),
  ('function', 'last_run_id()',                              '', 'X',    'X',    'X'),
  ('function', 'prorate(numeric,numeric,date,date,date)',    '', 'X',    'X',    'X'),
  ('function', 'billing_cycle(text,date,date)',              '', 'X',    'X',    'X'),
  ('function', 'monthly_amount(numeric,text)',               '', 'X',    'X',    'X'),
  ('function', 'sync_schedules()',                           '', 'X',    'X',    'X'),
  ('function', '_sync_progress()',                           '', 'X',    'X',    'X'),
  ('function', '_is_discrepancy(text,numeric)',              '', 'X',    'X',    'X'),
  ('function', '_rule_filter(jsonb)',                         '', 'X',    'X',    'X'),
  ('function', '_filter_captures(text,billrecon.rule_filter,billrecon.usage_records)', '', 'X', 'X', 'X'),
  ('function', '_filter_quantity(text,billrecon.rule_filter,billrecon.usage_records)', '', 'X', 'X', 'X'),
  ('function', '_rule_captures(text,jsonb,billrecon.usage_records)', '', 'X', 'X', 'X'),
  ('function', '_rule_quantity(text,jsonb,billrecon.usage_records)', '', 'X', 'X', 'X'),
  ('function', '_usage_excluded(billrecon.usage_records)',   '', 'X',    'X',    'X'),
  ('function', '_usage_captured(billrecon.usage_records)',   '', 'X',    'X',    'X'),
  ('function', '_usage_display_name(billrecon.usage_records)', '', 'X',  'X',    'X'),
  ('function', '_line_rule(billrecon.psa_line_items)',       '', 'X',    'X',    'X'),
  ('function', '_default_effective_date()',                  '', 'X',    'X',    'X'),
  ('function', 'report_html(bigint)',                        '', 'X',    'X',    'X'),
  ('function', '_html_escape(text)',                         '', 'X',    'X',    'X'),
  ('function', '_report_money(numeric,boolean)',             '', 'X',    'X',    'X'),
  ('function', '_report_bars(text[],numeric[],numeric[],text[])', '', 'X', 'X',  'X'),
  -- FINDING (900_privileges.sql): duplicate_seats calls these two, so every role
  -- granted the view gets 42501 "permission denied for function _serial_key";
  -- they belong in the reader's GRANT EXECUTE list with the other view helpers.
  ('function', '_serial_key(text)',                          '', 'X',    'X',    'X'),
  ('function', '_host_key(text)',                            '', 'X',    'X',    'X'),

  -- The operator's: sync, map, reconcile, approve, push.
  ('function', 'sync(text,text)',                            '', '',     'X',    'X'),
  ('function', 'sync_async(text,text)',                      '', '',     'X',    'X'),
  ('function', 'cancel_sync(bigint)',                        '', '',     'X',    'X'),
  ('function', 'schedule_sync(text,text,text)',              '', '',     'X',    'X'),
  ('function', 'unschedule_sync(bigint)',                    '', '',     'X',    'X'),
  ('function', 'unschedule_sync(text,text)',                 '', '',     'X',    'X'),
  ('function', 'import_usage_csv(text,text)',                '', '',     'X',    'X'),
  ('function', 'suggest_client_matches()',                   '', '',     'X',    'X'),
  ('function', 'confirm_client_matches(numeric)',            '', '',     'X',    'X'),
  ('function', 'map_client(text,text,text)',                 '', '',     'X',    'X'),
  ('function', 'unmap_client(text,text)',                    '', '',     'X',    'X'),
  ('function', 'reject_client_match(text,text,text,text)',   '', '',     'X',    'X'),
  ('function', 'ignore_vendor_account(text,text,text)',      '', '',     'X',    'X'),
  ('function', 'unignore_vendor_account(text,text)',         '', '',     'X',    'X'),
  ('function', 'map_line_item(text,text,text,jsonb,numeric)', '', '',    'X',    'X'),
  ('function', 'map_product(text,text,text,jsonb,numeric)',  '', '',     'X',    'X'),
  ('function', 'delete_rule(bigint)',                        '', '',     'X',    'X'),
  ('function', 'ignore_line_item(text,text)',                '', '',     'X',    'X'),
  ('function', 'unignore_line_item(text)',                   '', '',     'X',    'X'),
  ('function', 'exclude_vendor_product(text,text,text)',     '', '',     'X',    'X'),
  ('function', 'include_vendor_product(text,text)',          '', '',     'X',    'X'),
  ('function', 'link_adjustment(text,text)',                 '', '',     'X',    'X'),
  ('function', 'apply_presets(text)',                        '', '',     'X',    'X'),
  ('function', 'reconcile(date,text)',                       '', '',     'X',    'X'),
  ('function', 'approve(bigint[],date,boolean)',             '', '',     'X',    'X'),
  ('function', 'dismiss(bigint[],text)',                     '', '',     'X',    'X'),
  ('function', 'set_effective_date(bigint[],date)',          '', '',     'X',    'X'),
  ('function', 'note_card(bigint[],text,text[])',            '', '',     'X',    'X'),
  ('function', 'note_line_item(text,text,text[])',           '', '',     'X',    'X'),
  ('function', 'push_changes(boolean,bigint[])',             '', '',     'X',    'X'),
  ('function', 'revert_change(bigint,date)',                 '', '',     'X',    'X'),
  -- helpers the operator's invoker functions call
  ('function', '_vendor_account(text,text)',                 '', '',     'X',    'X'),
  ('function', '_psa_company(text)',                         '', '',     'X',    'X'),
  ('function', '_default_psa()',                             '', '',     'X',    'X'),
  ('function', '_psa_line_item(text)',                       '', '',     'X',    'X'),
  ('function', '_check_rule(integer,text,jsonb,numeric)',    '', '',     'X',    'X'),
  ('function', '_check_pattern(text,text)',                  '', '',     'X',    'X'),
  ('function', '_integration_id(text)',                      '', '',     'X',    'X'),

  -- The admin's: integrations.
  ('function', 'add_integration(text,text,text,jsonb,jsonb,boolean)', '', '', '', 'X'),
  ('function', 'update_integration(text,text,jsonb,jsonb,boolean)',   '', '', '', 'X'),
  ('function', 'set_default_psa(text)',                      '', '',     '',     'X'),
  ('function', 'drop_integration(text)',                     '', '',     '',     'X'),
  ('function', '_validate_integration(text,text,jsonb,jsonb)', '', '',   '',     'X'),
  -- The admin's: at-rest encryption of credentials (docs/security.md). No
  -- function returns decrypted credentials; rotate and decrypt read a key
  -- file named in the call and also require superuser or pg_read_server_files.
  ('view',     'credential_encryption',                      '', '',     '',     'r'),
  ('function', 'credential_key_status()',                    '', '',     '',     'X'),
  ('function', 'encrypt_credentials()',                      '', '',     '',     'X'),
  ('function', 'rotate_credential_key(text)',                '', '',     '',     'X'),
  ('function', 'decrypt_credentials(text)',                  '', '',     '',     'X'),
  ('function', '_encrypt_credentials(integer,jsonb)',        '', '',     '',     'X'),
  -- FINDING (900_privileges.sql): "GRANT EXECUTE ON FUNCTION
  -- _write_back_quantity(...), _write_back_quantity_c(...) TO billrecon_admin"
  -- lets the admin change a PSA quantity with no card, no approval, no
  -- change_card_pushes row and no audit entry (and _c skips the wrapper's
  -- checks). Writes to the PSA go through push_changes()/revert_change(),
  -- which run as the owner and need no grant.
  ('function', '_write_back_quantity(text,text,numeric,date,boolean)', '', '', '', ''),
  ('function', '_write_back_quantity_c(text,text,text,text,boolean)',  '', '', '', ''),

  -- Internal: called by the owner's code only (definer functions, triggers, views, the worker).
  ('function', '_acting_role()',                             '', '',     '',     ''),
  ('function', '_apply_staged(bigint,boolean,text[])',       '', '',     '',     ''),
  ('function', '_apply_staged_accounts(bigint,timestamp with time zone)', '', '', '', ''),
  ('function', '_audit_row()',                               '', '',     '',     ''),
  ('function', '_encrypt_credentials_row()',                 '', '',     '',     ''),
  ('function', '_keep_builtin_rows()',                        '', '',     '',     ''),
  ('function', '_cancel_sync_task(bigint)',                  '', '',     '',     ''),
  ('function', '_carry_over_replaced_lines()',               '', '',     '',     ''),
  ('function', '_check_card_ids(bigint[])',                  '', '',     '',     ''),
  ('function', '_check_sync_mode(text)',                     '', '',     '',     ''),
  ('function', '_compare_quantity(billrecon.usage_records)', '', '',     '',     ''),
  ('function', '_count_usage(bigint,bigint)',                '', '',     '',     ''),
  ('function', '_detach_reconcile_results()',                '', '',     '',     ''),
  ('function', '_cascade_deleted_runs()',                    '', '',     '',     ''),
  ('function', '_cron_assert(text,text,text,boolean,boolean,text,text)', '', '', '', ''),
  ('function', '_cron_database()',                           '', '',     '',     ''),
  ('function', '_cron_job_database()',                       '', '',     '',     ''),
  ('function', '_cron_require(text,text,text)',              '', '',     '',     ''),
  ('function', '_effective_options(integer)',                '', '',     '',     ''),
  ('function', '_explain_results(bigint)',                   '', '',     '',     ''),
  ('function', '_raise_change_cards(bigint)',                '', '',     '',     ''),
  ('function', '_reconcile_settings()',                      '', '',     '',     ''),
  ('function', '_refresh_statistics()',                      '', '',     '',     ''),
  ('function', '_session_table(text)',                       '', '',     '',     ''),
  ('function', '_spot_check_flags(numeric,numeric)',         '', '',     '',     ''),
  ('function', '_sync_job_command(text,text)',               '', '',     '',     ''),
  ('function', '_sync_job_name(text,text,text)',             '', '',     '',     ''),
  ('function', '_sync_workers_available()',                  '', '',     '',     ''),
  ('function', '_usage_quantity(billrecon.usage_records)',   '', '',     '',     ''),
  ('function', '_wake_sync_workers(integer)',                '', '',     '',     '');

-- ------------------------------------------------------------- the catalog side

-- Letters in one fixed order, so 'dr' and 'rd' compare equal; '-' for none.
CREATE FUNCTION pg_temp.privs(letters text) RETURNS text LANGUAGE sql IMMUTABLE AS $p$
  SELECT coalesce(nullif(string_agg(l, '' ORDER BY o), ''), '-')
    FROM unnest(string_to_array('a r w d D x t U C X', ' ')) WITH ORDINALITY AS x(l, o)
   WHERE strpos(letters, l) > 0
$p$;

-- Every object of the schema.
CREATE TEMP VIEW catalog_objects AS
SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'view'
                      WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'table' END AS kind,
       c.relname::text AS object, c.oid
  FROM pg_catalog.pg_class c
 WHERE c.relnamespace = 'billrecon'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
UNION ALL
SELECT 'function', substr(p.oid::regprocedure::text, length('billrecon.') + 1), p.oid
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'billrecon'::regnamespace
UNION ALL
SELECT 'schema', 'billrecon', 'billrecon'::regnamespace::oid;

-- What a role may do with an object, in the letters above.
CREATE FUNCTION pg_temp.actual(kind text, obj oid, who name) RETURNS text LANGUAGE sql STABLE AS $a$
  SELECT pg_temp.privs(CASE kind
    WHEN 'schema' THEN
      concat(CASE WHEN has_schema_privilege(who, obj, 'USAGE') THEN 'U' END,
             CASE WHEN has_schema_privilege(who, obj, 'CREATE') THEN 'C' END)
    WHEN 'sequence' THEN
      concat(CASE WHEN has_sequence_privilege(who, obj, 'SELECT') THEN 'r' END,
             CASE WHEN has_sequence_privilege(who, obj, 'UPDATE') THEN 'w' END,
             CASE WHEN has_sequence_privilege(who, obj, 'USAGE') THEN 'U' END)
    WHEN 'function' THEN
      CASE WHEN has_function_privilege(who, obj, 'EXECUTE') THEN 'X' END
    ELSE
      concat(CASE WHEN has_any_column_privilege(who, obj, 'INSERT') THEN 'a' END,
             CASE WHEN has_any_column_privilege(who, obj, 'SELECT') THEN 'r' END,
             CASE WHEN has_any_column_privilege(who, obj, 'UPDATE') THEN 'w' END,
             CASE WHEN has_table_privilege(who, obj, 'DELETE') THEN 'd' END,
             CASE WHEN has_table_privilege(who, obj, 'TRUNCATE') THEN 'D' END,
             CASE WHEN has_any_column_privilege(who, obj, 'REFERENCES') THEN 'x' END,
             CASE WHEN has_table_privilege(who, obj, 'TRIGGER') THEN 't' END)
    END)
$a$;

CREATE FUNCTION pg_temp.row_text(public text, reader text, operator text, admin text) RETURNS text
LANGUAGE sql IMMUTABLE AS $r$
  SELECT format('public %s, reader %s, operator %s, admin %s', pg_temp.privs(public), pg_temp.privs(reader),
                pg_temp.privs(operator), pg_temp.privs(admin))
$r$;

CREATE TEMP TABLE matrix_check AS
SELECT o.kind, o.object,
       pg_temp.row_text(pg_temp.actual(o.kind, o.oid, 'billrecon_tap_public'),
                        pg_temp.actual(o.kind, o.oid, 'billrecon_reader'),
                        pg_temp.actual(o.kind, o.oid, 'billrecon_operator'),
                        pg_temp.actual(o.kind, o.oid, 'billrecon_admin')) AS have,
       CASE WHEN m.object IS NOT NULL THEN pg_temp.row_text(m.public, m.reader, m.operator, m.admin) END AS want
  FROM catalog_objects o
  LEFT JOIN role_matrix m ON m.kind = o.kind AND m.object = o.object;

SELECT plan((SELECT count(*)::int FROM matrix_check) + 27);

-- ------------------------------------------------ the matrix itself is sound

SELECT is_empty($$SELECT kind || ' ' || object FROM catalog_objects
                  EXCEPT SELECT kind || ' ' || object FROM role_matrix ORDER BY 1$$,
                'every object of schema billrecon has an expectation in the roles matrix');
SELECT is_empty($$SELECT kind || ' ' || object FROM role_matrix
                  EXCEPT SELECT kind || ' ' || object FROM catalog_objects ORDER BY 1$$,
                'every row of the roles matrix names an existing object (no stale rows)');
SELECT is_empty($$SELECT kind, object, count(*) FROM role_matrix GROUP BY 1, 2 HAVING count(*) > 1$$,
                'no object has two rows in the roles matrix');
SELECT is_empty($$
  SELECT kind, object, l AS bad_letter
    FROM role_matrix, unnest(string_to_array(public || reader || operator || admin, NULL)) AS l
   WHERE strpos(CASE kind WHEN 'schema' THEN 'UC' WHEN 'sequence' THEN 'rwU' WHEN 'function' THEN 'X'
                          ELSE 'arwdDxt' END, l) = 0$$,
  'the matrix uses only the letters each kind of object has');
-- Membership is inheritance: each role may do at least what the one below it may.
SELECT is_empty($$
  SELECT kind, object, public, reader, operator, admin
    FROM role_matrix m
   WHERE m.public <> ''
      OR EXISTS (SELECT 1 FROM unnest(string_to_array(m.reader, NULL)) l WHERE strpos(m.operator, l) = 0)
      OR EXISTS (SELECT 1 FROM unnest(string_to_array(m.operator, NULL)) l WHERE strpos(m.admin, l) = 0)$$,
  'the matrix follows the hierarchy: PUBLIC nothing, reader within operator within admin');

-- -------------------------------------------------------------- the roles

SELECT set_eq($$SELECT r.rolname::text AS role, m.rolname::text AS member
                  FROM pg_catalog.pg_auth_members a
                  JOIN pg_catalog.pg_roles r ON r.oid = a.roleid
                  JOIN pg_catalog.pg_roles m ON m.oid = a.member
                 WHERE r.rolname LIKE 'billrecon\_%' OR m.rolname LIKE 'billrecon\_%'$$,
              $$VALUES ('billrecon_reader', 'billrecon_operator'), ('billrecon_operator', 'billrecon_admin')$$,
              'role hierarchy: admin is a member of operator, operator of reader, and nothing else');
SELECT is_empty($$SELECT rolname FROM pg_catalog.pg_roles
                   WHERE rolname IN ('billrecon_reader', 'billrecon_operator', 'billrecon_admin')
                     AND (rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls OR rolreplication OR NOT rolinherit)$$,
                'billrecon roles have no SUPERUSER, CREATEROLE, CREATEDB, BYPASSRLS, REPLICATION, and inherit');

-- ------------------------------------------------------- one test per object

SELECT is(have, want, format('%s billrecon.%s: %s', kind, object,
                             coalesce(want, 'NO EXPECTATION in test/pgtap/020_role_matrix.sql: add a row')))
  FROM matrix_check
 ORDER BY kind, object;

-- ----------------------------------------------- rules the catalog must keep

-- Whatever the matrix says, these hold for every object, present and future.
SELECT is_empty($$SELECT kind || ' ' || object FROM catalog_objects o
                   WHERE pg_temp.actual(o.kind, o.oid, 'billrecon_tap_public') <> '-'$$,
                'PUBLIC may do nothing with any object of schema billrecon');
SELECT is_empty($$SELECT o.object FROM catalog_objects o
                   WHERE o.kind = 'function' AND o.object LIKE '\_%'
                     AND (SELECT provolatile FROM pg_catalog.pg_proc WHERE oid = o.oid) = 'v'
                     AND has_function_privilege('billrecon_tap_public', o.oid, 'EXECUTE')$$,
                'no internal (_) function that may write data is executable by PUBLIC');
SELECT is_empty($$SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p
                   WHERE p.pronamespace = 'billrecon'::regnamespace AND p.prosecdef
                     AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search\_path=%')$$,
                'every SECURITY DEFINER function pins its search_path (proconfig)');
-- Pinned safely: only pg_catalog and billrecon, pg_temp named and last (an
-- unnamed pg_temp is searched FIRST, so a hostile temp object would win).
SELECT is_empty($$
  SELECT p.oid::regprocedure::text, c
    FROM pg_catalog.pg_proc p, unnest(p.proconfig) c
   WHERE p.pronamespace = 'billrecon'::regnamespace AND p.prosecdef AND c LIKE 'search\_path=%'
     AND NOT (regexp_split_to_array(replace(substr(c, length('search_path=') + 1), ' ', ''), ',')
                <@ ARRAY['pg_catalog', 'billrecon', 'pg_temp']
              AND (regexp_split_to_array(replace(substr(c, length('search_path=') + 1), ' ', ''), ','))
                    [array_upper(regexp_split_to_array(replace(substr(c, length('search_path=') + 1), ' ', ''), ','), 1)]
                  = 'pg_temp')$$,
  'SECURITY DEFINER search_path lists only pg_catalog/billrecon and ends with pg_temp');
SELECT is_empty($$SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p
                   WHERE p.pronamespace = 'billrecon'::regnamespace AND p.prosecdef
                     AND has_function_privilege('billrecon_tap_public', p.oid, 'EXECUTE')$$,
                'no SECURITY DEFINER function is executable by PUBLIC');
SELECT is_empty($$SELECT r.rolname FROM pg_catalog.pg_roles r
                   WHERE r.rolname IN ('billrecon_tap_public', 'billrecon_reader', 'billrecon_operator', 'billrecon_admin')
                     AND has_schema_privilege(r.oid, 'billrecon'::regnamespace, 'CREATE')$$,
                'no billrecon role may create objects in schema billrecon (definer code trusts it)');
SELECT is_empty($$SELECT r.rolname FROM pg_catalog.pg_roles r
                   WHERE r.rolname IN ('billrecon_tap_public', 'billrecon_reader', 'billrecon_operator')
                     AND has_any_column_privilege(r.oid, 'billrecon.integration_credentials'::regclass, 'SELECT')$$,
                'credentials: no column readable by PUBLIC, reader or operator');
-- Views run with their owner's rights: one that reads credentials must be the admin's alone.
SELECT is_empty($$
  SELECT DISTINCT v.relname, r.rolname
    FROM pg_catalog.pg_rewrite rw
    JOIN pg_catalog.pg_class v ON v.oid = rw.ev_class AND v.relkind IN ('v', 'm')
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = rw.oid
    CROSS JOIN pg_catalog.pg_roles r
   WHERE v.relnamespace = 'billrecon'::regnamespace
     AND d.refobjid = 'billrecon.integration_credentials'::regclass
     AND r.rolname IN ('billrecon_tap_public', 'billrecon_reader', 'billrecon_operator')
     AND has_table_privilege(r.oid, v.oid, 'SELECT')$$,
  'no view a non-admin may read is built on integration_credentials');
SELECT is_empty($$SELECT r.rolname, privilege FROM pg_catalog.pg_roles r,
                        unnest(ARRAY['INSERT', 'UPDATE', 'TRUNCATE']) AS privilege
                   WHERE r.rolname IN ('billrecon_tap_public', 'billrecon_reader', 'billrecon_operator', 'billrecon_admin')
                     AND CASE WHEN privilege = 'TRUNCATE'
                              THEN has_table_privilege(r.oid, 'billrecon.audit_log'::regclass, privilege)
                              ELSE has_any_column_privilege(r.oid, 'billrecon.audit_log'::regclass, privilege) END$$,
                'the audit log: no role inserts, updates or truncates it by hand');

-- A view runs with its owner's rights on tables, but the functions it calls
-- are checked against the reader: a view granted to a role must work for it.
CREATE FUNCTION pg_temp.unusable_views(who name) RETURNS TABLE (view_name text, error text)
LANGUAGE plpgsql AS $u$
DECLARE
  v record;
BEGIN
  FOR v IN SELECT c.relname FROM pg_catalog.pg_class c
            WHERE c.relnamespace = 'billrecon'::regnamespace AND c.relkind IN ('v', 'm')
              AND has_table_privilege(who, c.oid, 'SELECT')
            ORDER BY 1 LOOP
    BEGIN
      EXECUTE format('SET LOCAL ROLE %I', who);
      EXECUTE format('SELECT t::text FROM billrecon.%I t', v.relname);   -- every column, so every function
      RESET ROLE;
    EXCEPTION WHEN OTHERS THEN
      RESET ROLE;
      view_name := v.relname;
      error := SQLSTATE || ': ' || SQLERRM;
      RETURN NEXT;
    END;
  END LOOP;
END
$u$;
SELECT is_empty(format('SELECT * FROM pg_temp.unusable_views(%L)', r),
                'every view ' || r || ' may read works for it (no helper function left ungranted)')
  FROM unnest(ARRAY['billrecon_reader', 'billrecon_operator', 'billrecon_admin']) AS r;

-- ------------------------------------- the same rules, tried for real (SET ROLE)

SET LOCAL ROLE billrecon_tap_public;
SELECT throws_ok('SELECT * FROM billrecon.integration_status', '42501', NULL, 'PUBLIC cannot read a report view');
SELECT throws_ok('SELECT billrecon.version()', '42501', NULL, 'PUBLIC cannot call a function');
RESET ROLE;

SET LOCAL ROLE billrecon_reader;
SELECT throws_ok('SELECT * FROM billrecon.integration_credentials', '42501', NULL, 'reader cannot read credentials');
SELECT throws_ok('SELECT * FROM billrecon.audit_log', '42501', NULL, 'reader cannot read the audit log');
RESET ROLE;

SET LOCAL ROLE billrecon_operator;
SELECT throws_ok($$INSERT INTO billrecon.audit_log (role, action, object) VALUES ('x', 'insert', 'forged')$$,
                 '42501', NULL, 'operator cannot forge an audit row');
SELECT throws_ok('UPDATE billrecon.proposed_changes SET status = $$approved$$', '42501', NULL,
                 'operator cannot approve a card by hand');
SELECT throws_ok('DELETE FROM billrecon.reconcile_runs', '42501', NULL, 'operator cannot delete reconcile runs');
RESET ROLE;

SET LOCAL ROLE billrecon_admin;
SELECT throws_ok('UPDATE billrecon.audit_log SET role = $$someone$$', '42501', NULL,
                 'admin cannot rewrite the audit log');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
