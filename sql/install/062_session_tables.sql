-- Working tables in the caller's temporary schema.
--
-- reconcile() and its helpers run as the extension owner (SECURITY DEFINER)
-- but keep working tables in the calling session's pg_temp. The caller owns
-- that schema's objects: a table of the same name created there first, with
-- a trigger, a rule, a column default or an index expression calling a
-- function of the caller's, would run that function with the owner's rights
-- when billrecon writes to it (CREATE TEMP TABLE IF NOT EXISTS keeps it).
-- Every such table is therefore created only after asking this function:
-- false when the name is free (create it, without IF NOT EXISTS), true when
-- it is billrecon's own from an earlier call in this session (a plain table
-- of the current user with no trigger or rule: nobody else can add one), and
-- an error otherwise.
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
