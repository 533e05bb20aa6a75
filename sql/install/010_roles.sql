-- Roles. They are cluster-wide, so they may already exist from another
-- database's installation; create only what is missing. Hierarchy:
-- billrecon_admin > billrecon_operator > billrecon_reader.
DO $roles$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'billrecon_reader') THEN
    CREATE ROLE billrecon_reader NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'billrecon_operator') THEN
    CREATE ROLE billrecon_operator NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'billrecon_admin') THEN
    CREATE ROLE billrecon_admin NOLOGIN;
  END IF;
  IF NOT pg_catalog.pg_has_role('billrecon_operator', 'billrecon_reader', 'MEMBER') THEN
    GRANT billrecon_reader TO billrecon_operator;
  END IF;
  IF NOT pg_catalog.pg_has_role('billrecon_admin', 'billrecon_operator', 'MEMBER') THEN
    GRANT billrecon_operator TO billrecon_admin;
  END IF;
END
$roles$;

COMMENT ON ROLE billrecon_reader IS 'billrecon: reads report views and synced data; never credentials';
COMMENT ON ROLE billrecon_operator IS 'billrecon: syncs, maps, reconciles, approves and pushes changes; never reads credentials';
COMMENT ON ROLE billrecon_admin IS 'billrecon: manages integrations and their credentials; everything an operator can do';

REVOKE ALL ON SCHEMA billrecon FROM PUBLIC;
GRANT USAGE ON SCHEMA billrecon TO billrecon_reader;
