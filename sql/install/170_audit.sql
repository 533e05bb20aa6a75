-- Audit: every change to change cards, mappings, rules and integration
-- settings, with the role that made it, when, and the row before and after.
-- Written by triggers (so a change made around the functions is audited
-- too); only billrecon_admin may delete from it, no one may update it.

CREATE TABLE billrecon.audit_log (
  id           bigserial PRIMARY KEY,
  at           timestamptz NOT NULL DEFAULT clock_timestamp(),
  role         name NOT NULL,
  session_role name NOT NULL DEFAULT session_user,
  action       text NOT NULL CHECK (action IN ('insert', 'update', 'delete')),
  object       text NOT NULL,
  object_id    text,
  changed      text[],
  before       jsonb,
  after        jsonb,
  transaction  bigint NOT NULL DEFAULT txid_current()
);
CREATE INDEX audit_log_object ON billrecon.audit_log (object, object_id, at);
CREATE INDEX audit_log_at ON billrecon.audit_log (at);
COMMENT ON TABLE billrecon.audit_log IS
  'Every change to change cards, card pushes, client mappings and rejections, service rules, ignored lines, excluded '
  'products, adjustment links, notes, presets, integrations and (without their values) credentials: who, when, what, '
  'before and after. Written by triggers; nobody may update it, only billrecon_admin may delete (prune) rows.';
COMMENT ON COLUMN billrecon.audit_log.id IS 'Entry id';
COMMENT ON COLUMN billrecon.audit_log.at IS 'When the change was made';
COMMENT ON COLUMN billrecon.audit_log.role IS 'Role that made it (the role acted as, SET ROLE included)';
COMMENT ON COLUMN billrecon.audit_log.session_role IS 'Role the session logged in as';
COMMENT ON COLUMN billrecon.audit_log.action IS 'insert, update or delete';
COMMENT ON COLUMN billrecon.audit_log.object IS 'Table changed (billrecon.<object>)';
COMMENT ON COLUMN billrecon.audit_log.object_id IS 'Key of the row changed';
COMMENT ON COLUMN billrecon.audit_log.changed IS 'update: the columns whose value changed';
COMMENT ON COLUMN billrecon.audit_log.before IS 'The row before (update, delete); credentials show only their keys';
COMMENT ON COLUMN billrecon.audit_log.after IS 'The row after (insert, update); credentials show only their keys';
COMMENT ON COLUMN billrecon.audit_log.transaction IS 'Transaction id: entries of one statement or call share it';

CREATE FUNCTION billrecon._audit_row()
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
COMMENT ON FUNCTION billrecon._audit_row() IS 'Internal: trigger writing billrecon.audit_log';

-- Cards: an update that sets only the bookkeeping a reconcile run refreshes
-- (updated_at, last_run_id, result_id, explanation; card_key and delta are
-- generated) is never a change anyone made, and _audit_row would write
-- nothing for it; listing every other column keeps the trigger from firing
-- at all for such an update (every run refreshes every pending card it still
-- finds: 5,000 trigger calls, 0.4 s a run on a large book). pgTAP
-- 001_schema.sql fails when a column of the table is missing from the list.
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
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.change_card_pushes
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.client_mappings
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.client_match_rejections
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.ignored_vendor_accounts
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.service_rules
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.ignored_line_items
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.excluded_vendor_products
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.line_item_parents
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.line_item_notes
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.rule_presets
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.integrations
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.integration_credentials
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();

-- Built-in presets and SKU names ship with the extension and are not dumped:
-- a change to them would silently come back as shipped after a restore.
CREATE FUNCTION billrecon._keep_builtin_rows()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $kb$
BEGIN
  IF OLD.builtin AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
    RAISE EXCEPTION USING ERRCODE = '55000',
      MESSAGE = format('built-in rows of billrecon.%s cannot be changed or deleted', TG_TABLE_NAME),
      DETAIL = 'They ship with billrecon and are recreated as shipped by every install and restore.',
      HINT = 'Add your own row (builtin = false); for presets, yours are applied before the built-in ones.';
  END IF;
  RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$kb$;
COMMENT ON FUNCTION billrecon._keep_builtin_rows() IS 'Internal: trigger refusing changes to built-in rows';
CREATE TRIGGER keep_builtin BEFORE UPDATE OR DELETE ON billrecon.rule_presets
  FOR EACH ROW EXECUTE FUNCTION billrecon._keep_builtin_rows();
CREATE TRIGGER keep_builtin BEFORE UPDATE OR DELETE ON billrecon.microsoft_skus
  FOR EACH ROW EXECUTE FUNCTION billrecon._keep_builtin_rows();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.microsoft_skus
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();
