-- billrecon 0.1.0 -> 0.2.0, run by ALTER EXTENSION billrecon UPDATE.
-- Every schema change between the frozen 0.1.0 script (billrecon--0.1.0.sql,
-- tag v0.1.0) and sql/install/*.sql goes here as well, so that an updated
-- database ends exactly where a fresh CREATE EXTENSION does; test/e2e/
-- test_upgrade.py compares the two (test/bin/schema-fingerprint.sql) and
-- prints every difference. docs/upgrading.md: how to write this file.
\echo Use "ALTER EXTENSION billrecon UPDATE TO '0.2.0'" to load this file. \quit

-- Comments a new user found wrong or empty (the walk-through of issue 10).
COMMENT ON FUNCTION billrecon.add_integration(text, text, text, jsonb, jsonb, boolean) IS
  'Adds an integration and returns its id. kind: connectwise, halopsa or autotask (PSAs); msgraph, partnercenter, '
  'pax8, ninjaone, dattormm or csv (vendors); base_url: the API root (empty for csv); credentials: the keys the kind '
  'needs (docs/connectors/<kind>.md); options: per-integration settings; is_default_psa: the PSA that is reconciled. '
  'Everything is validated first; nothing is stored on error. Admin only.';
COMMENT ON COLUMN billrecon.unmapped_counts.kind IS 'The integration''s kind (connectwise, ninjaone, msgraph, ...)';
COMMENT ON COLUMN billrecon.unmapped_vendor_accounts.kind IS 'The integration''s kind (ninjaone, msgraph, pax8, ...)';
COMMENT ON COLUMN billrecon.change_cards.status IS 'Card status: pending, approved, dismissed, pushed or failed';
COMMENT ON COLUMN billrecon.change_cards.kind IS
  'quantity (change a line''s quantity), new_revenue (usage no line bills: add a line in the PSA) or revert (puts a '
  'pushed change back)';
COMMENT ON COLUMN billrecon.change_cards.last_run_id IS 'Last reconcile run that still found the discrepancy';
COMMENT ON COLUMN billrecon.change_cards.decided_at IS 'When the card was approved or dismissed';
COMMENT ON COLUMN billrecon.change_cards.updated_at IS 'Last change of the card';
COMMENT ON COLUMN billrecon.client_integrations.kind IS 'The integration''s kind (ninjaone, msgraph, pax8, ...)';
COMMENT ON COLUMN billrecon.client_integrations.status IS
  'Integration health: green, yellow or red (billrecon.integration_status says why)';
COMMENT ON COLUMN billrecon.client_seats.kind IS 'Kind of seat: device, licence, user or subscription';
COMMENT ON COLUMN billrecon.inactive_seats.kind IS 'Kind of seat: device, licence, user or subscription';

-- 130: a comment.
COMMENT ON COLUMN billrecon.reconcile_run_inputs.kind IS 'The integration''s kind (connectwise, ninjaone, msgraph, ...)';

-- Credentials at rest encrypted (opt-in; docs/security.md), 020: the table.
-- The new columns come last, as in sql/install/020_integrations.sql; the
-- CHECK of encrypted_credentials keeps the name PostgreSQL gives it in the
-- CREATE TABLE (integration_credentials_encrypted_credentials_check).
ALTER TABLE billrecon.integration_credentials
  ALTER COLUMN credentials DROP NOT NULL,
  ADD COLUMN encrypted_credentials bytea
             CHECK (octet_length(encrypted_credentials) >= 40
                    AND substring(encrypted_credentials FROM 1 FOR 4) = '\x42524331'::bytea),
  ADD COLUMN credential_key_id text GENERATED ALWAYS AS
             (encode(substring(encrypted_credentials FROM 5 FOR 8), 'hex')) STORED,
  ADD COLUMN credential_keys text[],
  ADD CONSTRAINT integration_credentials_clear_or_encrypted
    CHECK ((credentials IS NULL) <> (encrypted_credentials IS NULL)),
  ADD CONSTRAINT integration_credentials_keys_of_encrypted
    CHECK (credential_keys IS NULL OR encrypted_credentials IS NOT NULL);
-- Existing rows: every 0.1.0 credential is in clear, which is what a fresh
-- install holds for the same data (no key configured: encrypted_credentials,
-- credential_key_id and credential_keys NULL). Nothing to fill. They are not
-- encrypted here even when billrecon.credential_key_file already names a key:
-- billrecon.credential_encryption then says "clear, to encrypt", and
-- billrecon.encrypt_credentials() encrypts them (docs/security.md).
COMMENT ON TABLE billrecon.integration_credentials IS
  'Secrets of each integration (API keys, client secrets), in clear or encrypted with the key of '
  'billrecon.credential_key_file. Readable by billrecon_admin only; sync functions read them with the extension '
  'owner''s rights, decrypt them in memory and never print them.';
COMMENT ON COLUMN billrecon.integration_credentials.credentials IS
  'Credential keys per kind as docs/connectors/<kind>.md lists them, in clear; NULL when encrypted. Whatever is '
  'written here is encrypted at once (trigger) while billrecon.credential_key_file names a key.';
COMMENT ON COLUMN billrecon.integration_credentials.encrypted_credentials IS
  'The credentials encrypted (AES-256-GCM envelope: "BRC1", key id, nonce, ciphertext, tag; bound to the '
  'integration id); NULL when stored in clear. Only billrecon''s C code can decrypt it, with the key file.';
COMMENT ON COLUMN billrecon.integration_credentials.credential_key_id IS
  'Id of the key the credentials are encrypted with (16 hex digits, from the envelope; a fingerprint, not the '
  'key); NULL when in clear. billrecon.credential_key_status() gives the configured key''s id.';
COMMENT ON COLUMN billrecon.integration_credentials.credential_keys IS
  'Names (never values) of the encrypted credentials, for the audit log and billrecon.credential_encryption; '
  'NULL when in clear';

-- 070: update_integration re-validates encrypted credentials by their names.
CREATE OR REPLACE FUNCTION billrecon.update_integration(integration text, base_url text DEFAULT NULL,
                                             credentials jsonb DEFAULT NULL, options jsonb DEFAULT NULL,
                                             enabled boolean DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $upd$
DECLARE
  v_id integer := billrecon._integration_id(integration);
  v_row billrecon.integrations;
  v_creds jsonb;
BEGIN
  SELECT * INTO v_row FROM billrecon.integrations i WHERE i.id = v_id FOR UPDATE;
  -- Encrypted credentials are not decrypted here: they were validated when
  -- set, so only their names are checked again (a stand-in value each).
  SELECT coalesce(c.credentials,
                  (SELECT pg_catalog.jsonb_object_agg(k, 'stored') FROM pg_catalog.unnest(c.credential_keys) k))
    INTO v_creds FROM billrecon.integration_credentials c WHERE c.integration_id = v_id;
  -- Re-validate only when something validated changes: enabling or disabling
  -- an integration must work even if, say, billrecon.allow_http changed since.
  IF update_integration.base_url IS NOT NULL OR update_integration.credentials IS NOT NULL
     OR update_integration.options IS NOT NULL THEN
    PERFORM billrecon._validate_integration(v_row.kind, coalesce(update_integration.base_url, v_row.base_url),
                                            coalesce(update_integration.credentials, v_creds, '{}'::jsonb),
                                            coalesce(update_integration.options, v_row.options));
  END IF;
  UPDATE billrecon.integrations i
     SET base_url = pg_catalog.rtrim(coalesce(update_integration.base_url, i.base_url), '/'),
         options = coalesce(update_integration.options, i.options),
         enabled = coalesce(update_integration.enabled, i.enabled),
         updated_at = now()
   WHERE i.id = v_id;
  IF update_integration.credentials IS NOT NULL THEN
    UPDATE billrecon.integration_credentials c
       SET credentials = update_integration.credentials, updated_at = now()
     WHERE c.integration_id = v_id;
  END IF;
END
$upd$;

-- 075: the encryption functions, trigger and view (new).
CREATE FUNCTION billrecon._encrypt_credentials(integration_id integer, credentials jsonb)
RETURNS bytea
AS 'MODULE_PATHNAME', 'billrecon_encrypt_credentials'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION billrecon._encrypt_credentials(integer, jsonb) IS
  'Internal: the credentials of that integration encrypted with the key of billrecon.credential_key_file '
  '(AES-256-GCM envelope), or NULL when no key is configured; an error when the key file is unusable';

CREATE FUNCTION billrecon._encrypt_credentials_row()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $enc$
DECLARE
  v_envelope bytea;
BEGIN
  IF NEW.credentials IS NULL THEN
    RETURN NEW;   -- already encrypted (or re-encrypted by rotate_credential_key)
  END IF;
  -- pg_restore (or psql) loading a dump restores exactly what was dumped, as
  -- billrecon._audit_row() does; billrecon.encrypt_credentials() afterwards
  -- encrypts rows that were dumped in clear.
  IF current_query() ~* '^\s*COPY\s' AND current_query() ~* '\sFROM\s+stdin'
     AND (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user) THEN
    RETURN NEW;
  END IF;
  v_envelope := billrecon._encrypt_credentials(NEW.integration_id, NEW.credentials);
  IF v_envelope IS NULL THEN
    -- No key configured: stored in clear, as given (and any old envelope goes).
    NEW.encrypted_credentials := NULL;
    NEW.credential_keys := NULL;
  ELSE
    NEW.credential_keys := ARRAY(SELECT k FROM pg_catalog.jsonb_object_keys(NEW.credentials) k ORDER BY k);
    NEW.encrypted_credentials := v_envelope;
    NEW.credentials := NULL;
  END IF;
  RETURN NEW;
END
$enc$;
COMMENT ON FUNCTION billrecon._encrypt_credentials_row() IS
  'Internal: trigger encrypting credentials written in clear to billrecon.integration_credentials while '
  'billrecon.credential_key_file names a key';

CREATE TRIGGER encrypt BEFORE INSERT OR UPDATE ON billrecon.integration_credentials
  FOR EACH ROW EXECUTE FUNCTION billrecon._encrypt_credentials_row();

CREATE FUNCTION billrecon.credential_key_status(OUT configured boolean, OUT key_file text, OUT key_id text,
                                                OUT problem text)
RETURNS record
AS 'MODULE_PATHNAME', 'billrecon_credential_key_status'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION billrecon.credential_key_status() IS
  'The credential key as this session sees it: configured (billrecon.credential_key_file is set), key_file, '
  'key_id (the fingerprint stored with every row it encrypted) and problem (why the file cannot be used: '
  'missing, group-readable, inside the data directory, not a 256-bit hex key; NULL when usable). Never the key. '
  'Admin only.';

CREATE VIEW billrecon.credential_encryption AS
SELECT i.name AS integration,
       i.kind,
       c.encrypted_credentials IS NOT NULL AS encrypted,
       c.credential_key_id AS key_id,
       CASE
         WHEN c.encrypted_credentials IS NULL AND NOT k.configured THEN 'clear'
         WHEN c.encrypted_credentials IS NULL THEN 'clear, to encrypt'
         WHEN NOT k.configured THEN 'encrypted, no key configured'
         WHEN k.problem IS NOT NULL THEN 'encrypted, key file unusable'
         WHEN c.credential_key_id OPERATOR(pg_catalog.=) k.key_id THEN 'encrypted'
         ELSE 'encrypted, other key'
       END AS status,
       coalesce(c.credential_keys,
                ARRAY(SELECT j FROM pg_catalog.jsonb_object_keys(c.credentials) j ORDER BY j)) AS credential_keys,
       c.updated_at
  FROM billrecon.integrations i
  JOIN billrecon.integration_credentials c ON c.integration_id = i.id
 CROSS JOIN billrecon.credential_key_status() k;
COMMENT ON VIEW billrecon.credential_encryption IS
  'Whether each integration''s credentials are encrypted at rest, and whether the configured key opens them. '
  'Names of credentials only, never values. Admin only.';
COMMENT ON COLUMN billrecon.credential_encryption.integration IS 'Integration name';
COMMENT ON COLUMN billrecon.credential_encryption.kind IS 'Integration kind';
COMMENT ON COLUMN billrecon.credential_encryption.encrypted IS 'True when the credentials are stored encrypted';
COMMENT ON COLUMN billrecon.credential_encryption.key_id IS 'Id of the key they are encrypted with; NULL in clear';
COMMENT ON COLUMN billrecon.credential_encryption.status IS
  'clear (no key configured); clear, to encrypt (a key is configured: run billrecon.encrypt_credentials()); '
  'encrypted (the configured key opens them); encrypted, no key configured / encrypted, key file unusable / '
  'encrypted, other key (syncs of this integration fail: see billrecon.credential_key_status())';
COMMENT ON COLUMN billrecon.credential_encryption.credential_keys IS 'Names of the credentials (never values)';
COMMENT ON COLUMN billrecon.credential_encryption.updated_at IS 'When the credentials were last set';

CREATE FUNCTION billrecon.encrypt_credentials()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $encall$
DECLARE
  v_key record;
  v_count integer;
BEGIN
  SELECT * INTO v_key FROM billrecon.credential_key_status();
  IF NOT v_key.configured THEN
    RAISE EXCEPTION USING ERRCODE = '55000',
      MESSAGE = 'no credential key is configured',
      DETAIL = 'billrecon.credential_key_file is empty, so there is no key to encrypt the credentials with.',
      HINT = 'Make a key file outside the data directory (openssl rand -hex 32, owned by the server''s OS user, '
             'mode 0600), then: ALTER SYSTEM SET billrecon.credential_key_file = ''/path/to/key''; '
             'SELECT pg_reload_conf();';
  END IF;
  IF v_key.problem IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'F0000',
      MESSAGE = 'the credential key file cannot be used',
      DETAIL = v_key.problem,
      HINT = 'Fix the file or billrecon.credential_key_file as the DETAIL says, reload, and run this again.';
  END IF;
  -- Rewriting a row in clear is enough: the trigger encrypts it.
  UPDATE billrecon.integration_credentials c SET credentials = c.credentials WHERE c.credentials IS NOT NULL;
  GET DIAGNOSTICS v_count = ROW_COUNT;
  RETURN v_count;
END
$encall$;
COMMENT ON FUNCTION billrecon.encrypt_credentials() IS
  'Encrypts every credential still stored in clear with the key of billrecon.credential_key_file and returns '
  'how many rows it encrypted (0 when all are encrypted already). Audited (key names only). Admin only.';

CREATE FUNCTION billrecon.rotate_credential_key(old_key_file text)
RETURNS integer
AS 'MODULE_PATHNAME', 'billrecon_rotate_credential_key'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION billrecon.rotate_credential_key(text) IS
  'Re-encrypts with the configured key (billrecon.credential_key_file, the new one) every credential encrypted '
  'with the key in old_key_file, and returns how many; rows already under the new key are left alone, rows under '
  'a third key too (with a NOTICE naming them). One transaction. Reads a file named in the call: superusers and '
  'members of pg_read_server_files only (EXECUTE is the admin''s).';

CREATE FUNCTION billrecon.decrypt_credentials(key_file text)
RETURNS integer
AS 'MODULE_PATHNAME', 'billrecon_decrypt_credentials'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION billrecon.decrypt_credentials(text) IS
  'Turns encryption off: stores every encrypted credential in clear again, decrypted with the key in key_file, '
  'and returns how many. billrecon.credential_key_file must be empty first. Reads a file named in the call: '
  'superusers and members of pg_read_server_files only (EXECUTE is the admin''s).';

-- 170: the audit names encrypted credentials, never the envelope.
CREATE OR REPLACE FUNCTION billrecon._audit_row()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $au$
DECLARE
  v_before jsonb := CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END;
  v_after jsonb := CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END;
  v_changed text[];
  v_row jsonb;
BEGIN
  -- pg_restore (or psql) loading a dump: the rows and their audit trail come
  -- from the dump itself; auditing the load again would collide with the
  -- restored audit rows. Only a superuser's COPY ... FROM qualifies.
  IF current_setting('session_replication_role') = 'replica'
     OR (current_query() ~* '^\s*COPY\s' AND current_query() ~* '\sFROM\s+stdin'
         AND (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user)) THEN
    RETURN NULL;
  END IF;
  IF TG_TABLE_NAME = 'integration_credentials' THEN
    -- Never a secret in the audit: which keys, not their values (for
    -- encrypted rows the names kept beside the envelope; never the envelope,
    -- only the id of the key it is encrypted with).
    v_before := v_before - 'credentials' - 'encrypted_credentials' - 'credential_keys'
                || CASE WHEN v_before IS NOT NULL THEN jsonb_build_object('credential_keys',
                     coalesce((SELECT jsonb_agg(k ORDER BY k) FROM jsonb_object_keys(OLD.credentials) k),
                              to_jsonb(OLD.credential_keys))) END;
    v_after := v_after - 'credentials' - 'encrypted_credentials' - 'credential_keys'
               || CASE WHEN v_after IS NOT NULL THEN jsonb_build_object('credential_keys',
                    coalesce((SELECT jsonb_agg(k ORDER BY k) FROM jsonb_object_keys(NEW.credentials) k),
                             to_jsonb(NEW.credential_keys))) END;
    IF TG_OP = 'UPDATE' AND (OLD.credentials IS DISTINCT FROM NEW.credentials
                             OR OLD.encrypted_credentials IS DISTINCT FROM NEW.encrypted_credentials) THEN
      v_changed := ARRAY['credentials'];
    END IF;
  END IF;
  IF TG_OP = 'UPDATE' THEN
    SELECT coalesce(v_changed, '{}') || coalesce(array_agg(n.key ORDER BY n.key), '{}') INTO v_changed
      FROM jsonb_each(v_after) n
     -- Bookkeeping a reconcile run refreshes is not a change anyone made.
     WHERE n.key NOT IN ('updated_at', 'last_run_id', 'result_id', 'explanation', 'card_key')
       AND n.value IS DISTINCT FROM v_before -> n.key;
    IF cardinality(v_changed) = 0 THEN
      RETURN NULL;   -- nothing a reviewer would call a change
    END IF;
  END IF;
  v_row := coalesce(v_after, v_before);
  INSERT INTO billrecon.audit_log (role, action, object, object_id, changed, before, after)
  VALUES (billrecon._acting_role(), lower(TG_OP COLLATE "C"),   -- (not the database's rules: Turkish 'INSERT' is 'ınsert')
          TG_TABLE_NAME,
          coalesce(v_row ->> 'id', v_row ->> 'vendor_account_id', v_row ->> 'line_item_id', v_row ->> 'integration_id',
                   v_row ->> 'part_number')
            || CASE WHEN TG_TABLE_NAME = 'client_match_rejections' THEN '/' || (v_row ->> 'psa_company_id')
                    WHEN TG_TABLE_NAME = 'excluded_vendor_products' THEN '/' || (v_row ->> 'product')
                    ELSE '' END,
          v_changed, v_before, v_after);
  RETURN NULL;
END
$au$;

-- 120: _filter_captures is never null.
CREATE OR REPLACE FUNCTION billrecon._filter_captures(mode text, f billrecon.rule_filter, u billrecon.usage_records)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(CASE mode
           WHEN 'asset' THEN u.kind = 'device'
             AND (f.device_classes IS NULL OR f.device_classes ? u.device_class)
             AND (f.os_pattern IS NULL OR coalesce(u.os_name, '') ~* f.os_pattern)
             AND (f.name_pattern IS NULL OR coalesce(u.device_name, '') ~* f.name_pattern)
           WHEN 'licence' THEN u.kind = 'licence'
             AND (f.skus IS NULL OR upper(coalesce(u.product, '')) = ANY (f.skus)
                  OR upper(coalesce(u.product_name, '')) = ANY (f.skus))
           WHEN 'user' THEN u.kind = 'user'
           WHEN 'subscription' THEN u.kind = 'subscription'
             AND (f.products_pattern IS NULL OR coalesce(u.product, '') ~* f.products_pattern
                  OR coalesce(u.product_name, '') ~* f.products_pattern)
           ELSE false
         END, false);   -- a device without a class, a null SKU: not captured (never null)

-- 135: reconcile counts usage in one pass (billrecon._count_usage, C).
CREATE OR REPLACE FUNCTION billrecon._refresh_statistics()
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

CREATE OR REPLACE FUNCTION billrecon.reconcile(period date DEFAULT current_date, psa_company_id text DEFAULT NULL)
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
-- (sql -> plpgsql: CREATE OR REPLACE may change the language.)
CREATE OR REPLACE FUNCTION billrecon._explain_results(run_id bigint)
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

-- 062: working tables in pg_temp only after asking billrecon._session_table (new).
CREATE FUNCTION billrecon._session_table(name text)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $sst$
DECLARE
  v_rel record;
BEGIN
  SELECT c.relkind, c.relowner, c.relhastriggers, c.relhasrules INTO v_rel
    FROM pg_catalog.pg_class c
   WHERE c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()
     AND c.relname OPERATOR(pg_catalog.=) _session_table.name;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  IF v_rel.relkind OPERATOR(pg_catalog.=) 'r'
     AND v_rel.relowner OPERATOR(pg_catalog.=) (SELECT r.oid FROM pg_catalog.pg_roles r
                                                 WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER)
     AND NOT v_rel.relhastriggers AND NOT v_rel.relhasrules THEN
    RETURN true;
  END IF;
  RAISE EXCEPTION USING ERRCODE = '42P07',
    MESSAGE = pg_catalog.format('a temporary relation "%s" that billrecon did not create exists in this session',
                                _session_table.name),
    DETAIL = 'billrecon keeps a working table of that name in the session''s temporary schema; one created by '
             'another role, or carrying triggers or rules, would run its code with billrecon''s rights, so '
             'billrecon refuses to use it.',
    HINT = pg_catalog.format('Drop it (DROP TABLE pg_temp.%I) or use a new session, then try again.',
                             _session_table.name);
END
$sst$;
COMMENT ON FUNCTION billrecon._session_table(text) IS
  'Internal: whether billrecon''s working table of this name already exists in the session''s pg_temp (false: '
  'create it); raises 42P07 when a relation of that name exists that is not billrecon''s own plain table';

-- 155: plans for the run's size; its working table through billrecon._session_table.
CREATE OR REPLACE FUNCTION billrecon._raise_change_cards(run_id bigint)
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
-- 900: the privileges of the new objects, as sql/install/900_privileges.sql
-- gives them (its REVOKE ... FROM PUBLIC covers every function; the GRANTs in
-- this script are recorded in pg_init_privs as a fresh install's are).
REVOKE ALL ON billrecon.credential_encryption FROM PUBLIC;
REVOKE ALL ON FUNCTION billrecon._encrypt_credentials(integer, jsonb),
                       billrecon._encrypt_credentials_row(),
                       billrecon.credential_key_status(),
                       billrecon.encrypt_credentials(),
                       billrecon.rotate_credential_key(text),
                       billrecon.decrypt_credentials(text),
                       billrecon._count_usage(bigint, bigint),
                       billrecon._session_table(text)
  FROM PUBLIC;
GRANT SELECT ON billrecon.credential_encryption TO billrecon_admin;
GRANT EXECUTE ON FUNCTION billrecon._encrypt_credentials(integer, jsonb),
                          billrecon.credential_key_status(),
                          billrecon.encrypt_credentials(),
                          billrecon.rotate_credential_key(text),
                          billrecon.decrypt_credentials(text)
  TO billrecon_admin;

-- Usage records: one composite foreign key through the vendor account
-- instead of three (integration, account, sync run): the sync writes usage
-- pages straight into the table, and the checks were a quarter of it.
ALTER TABLE billrecon.vendor_accounts
  ADD CONSTRAINT vendor_accounts_integration_id_id_key UNIQUE (integration_id, id);
ALTER TABLE billrecon.usage_records
  DROP CONSTRAINT usage_records_account_id_fkey,
  DROP CONSTRAINT usage_records_integration_id_fkey,
  DROP CONSTRAINT usage_records_last_sync_run_id_fkey,
  ADD CONSTRAINT usage_records_integration_id_account_id_fkey FOREIGN KEY (integration_id, account_id)
    REFERENCES billrecon.vendor_accounts (integration_id, id) ON DELETE CASCADE;
COMMENT ON COLUMN billrecon.usage_records.last_seen_at IS 'Last sync that returned the record changed (a sync that returns it unchanged leaves the row alone; every current record was returned by the integration''s last successful full sync)';
COMMENT ON COLUMN billrecon.usage_records.last_sync_run_id IS 'Sync run that last wrote the row (billrecon.sync_runs.id; not a foreign key, see the table''s DDL); a sync that returns the record unchanged does not write it';

-- Syncs: vendor accounts applied before usage pages are stored; the
-- mass-removal guard of full syncs.
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
REVOKE ALL ON FUNCTION billrecon._apply_staged_accounts(bigint, timestamptz) FROM PUBLIC;
-- 0.2.0 adds p_unchanged_usage (usage records the sink found unchanged and left alone).
DROP FUNCTION billrecon._apply_staged(bigint, boolean);
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
REVOKE ALL ON FUNCTION billrecon._apply_staged(bigint, boolean, text[]) FROM PUBLIC;

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

-- Reconcile results: no foreign keys to synced data (a run is a snapshot);
-- dropping an integration nulls the ids, as ON DELETE SET NULL did.
ALTER TABLE billrecon.reconcile_results
  DROP CONSTRAINT reconcile_results_psa_company_id_fkey,
  DROP CONSTRAINT reconcile_results_agreement_id_fkey,
  DROP CONSTRAINT reconcile_results_line_item_id_fkey,
  DROP CONSTRAINT reconcile_results_integration_id_fkey,
  DROP CONSTRAINT reconcile_results_vendor_account_id_fkey;
CREATE FUNCTION billrecon._detach_reconcile_results()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $det$
BEGIN
  UPDATE billrecon.reconcile_results x
     SET psa_company_id = NULL
   WHERE x.psa_company_id IN (SELECT c.id FROM billrecon.psa_companies c WHERE c.integration_id = OLD.id);
  UPDATE billrecon.reconcile_results x
     SET agreement_id = NULL
   WHERE x.agreement_id IN (SELECT a.id FROM billrecon.psa_agreements a WHERE a.integration_id = OLD.id);
  UPDATE billrecon.reconcile_results x
     SET line_item_id = NULL
   WHERE x.line_item_id IN (SELECT l.id FROM billrecon.psa_line_items l WHERE l.integration_id = OLD.id);
  UPDATE billrecon.reconcile_results x
     SET vendor_account_id = NULL
   WHERE x.vendor_account_id IN (SELECT va.id FROM billrecon.vendor_accounts va WHERE va.integration_id = OLD.id);
  UPDATE billrecon.reconcile_results x SET integration_id = NULL WHERE x.integration_id = OLD.id;
  UPDATE billrecon.reconcile_run_clients x
     SET psa_company_id = NULL
   WHERE x.psa_company_id IN (SELECT c.id FROM billrecon.psa_companies c WHERE c.integration_id = OLD.id);
  RETURN OLD;
END
$det$;
COMMENT ON FUNCTION billrecon._detach_reconcile_results() IS
  'Internal trigger: when an integration is dropped, sets the ids reconcile results (and run clients) kept of its '
  'synced rows to null';
CREATE TRIGGER detach_reconcile_results BEFORE DELETE ON billrecon.integrations
  FOR EACH ROW EXECUTE FUNCTION billrecon._detach_reconcile_results();
REVOKE ALL ON FUNCTION billrecon._detach_reconcile_results() FROM PUBLIC;


CREATE OR REPLACE FUNCTION billrecon._carry_over_replaced_lines()
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
COMMENT ON FUNCTION billrecon._explain_results(bigint) IS
  'Internal: writes the explanation of every row of the run being reconciled (in the session''s working table '
  'pg_temp.billrecon_run_rows, before reconcile() stores them)';

-- Reconcile runs: no foreign key from a run's result rows and clients, nor
-- from a card's last_run_id (a check per row was a third of writing a run);
-- triggers on the runs do what the keys did on delete. Dropping an
-- integration nulls the run clients' ids too (_detach_reconcile_results).
ALTER TABLE billrecon.reconcile_results DROP CONSTRAINT reconcile_results_run_id_fkey;
ALTER TABLE billrecon.reconcile_run_clients
  DROP CONSTRAINT reconcile_run_clients_run_id_fkey,
  DROP CONSTRAINT reconcile_run_clients_psa_company_id_fkey;
ALTER TABLE billrecon.proposed_changes DROP CONSTRAINT proposed_changes_last_run_id_fkey;
CREATE FUNCTION billrecon._cascade_deleted_runs()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $cdr$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    TRUNCATE billrecon.reconcile_results, billrecon.reconcile_run_clients;
    UPDATE billrecon.proposed_changes p SET last_run_id = NULL WHERE p.last_run_id IS NOT NULL;
  ELSE
    DELETE FROM billrecon.reconcile_results x WHERE x.run_id IN (SELECT g.id FROM deleted_runs g);
    DELETE FROM billrecon.reconcile_run_clients x WHERE x.run_id IN (SELECT g.id FROM deleted_runs g);
    UPDATE billrecon.proposed_changes p SET last_run_id = NULL
     WHERE p.last_run_id IN (SELECT g.id FROM deleted_runs g);
  END IF;
  RETURN NULL;
END
$cdr$;
COMMENT ON FUNCTION billrecon._cascade_deleted_runs() IS
  'Internal trigger: deletes the result rows and clients of deleted reconcile runs (truncates them with the runs) '
  'and nulls the cards'' last_run_id that named them, as foreign keys'' ON DELETE CASCADE / SET NULL would';
CREATE TRIGGER cascade_deleted_runs AFTER DELETE ON billrecon.reconcile_runs
  REFERENCING OLD TABLE AS deleted_runs
  FOR EACH STATEMENT EXECUTE FUNCTION billrecon._cascade_deleted_runs();
CREATE TRIGGER cascade_truncated_runs AFTER TRUNCATE ON billrecon.reconcile_runs
  FOR EACH STATEMENT EXECUTE FUNCTION billrecon._cascade_deleted_runs();
REVOKE ALL ON FUNCTION billrecon._cascade_deleted_runs() FROM PUBLIC;

-- 170: the cards' audit trigger does not fire for an update of the run's
-- bookkeeping only (last_run_id, result_id, explanation, updated_at), which
-- it never recorded.
DROP TRIGGER audit ON billrecon.proposed_changes;
CREATE TRIGGER audit
  AFTER INSERT
     OR UPDATE OF id, kind, run_id, psa_integration_id, psa_company_id, company_external_id, company, line_item_id,
                  line_item_external_id, agreement_external_id, product, product_name, vendor_integration_id,
                  usage_kind, type, current_qty, proposed_qty, unit_price, amount, monthly_amount, billing_cycle,
                  status, effective_date, flags, dismiss_reason, decided_by, decided_at, push_attempts, pushed_at,
                  pushed_by, push_error, push_reference, push_note, reverts_card_id, reverted_by_card_id, note, tags,
                  created_at
     OR DELETE
  ON billrecon.proposed_changes
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();

-- A run of one client withdraws that client's pending cards it no longer
-- supports (billrecon._raise_change_cards): without it, a scan of every card.
CREATE INDEX proposed_changes_pending_client ON billrecon.proposed_changes (psa_company_id) WHERE status = 'pending';
