-- Installing the extension: its objects, roles and settings.
\set SHOW_CONTEXT never
CREATE EXTENSION billrecon;
SELECT extname, extversion, extrelocatable, extnamespace::regnamespace AS schema
  FROM pg_extension WHERE extname = 'billrecon';
SELECT billrecon.version() ~ '^billrecon [0-9]+\.[0-9]+\.[0-9]+$' AS version_ok;

-- The roles and how they nest.
SELECT r.rolname, r.rolcanlogin,
       array(SELECT m.rolname FROM pg_auth_members am JOIN pg_roles m ON m.oid = am.roleid
              WHERE am.member = r.oid ORDER BY 1) AS member_of
  FROM pg_roles r WHERE r.rolname LIKE 'billrecon\_%' ORDER BY 1;

-- The user-facing functions and views (private helpers start with "_").
SELECT p.oid::regprocedure AS function, pg_get_function_result(p.oid) AS returns
  FROM pg_proc p WHERE p.pronamespace = 'billrecon'::regnamespace AND p.proname !~ '^_'
 ORDER BY p.oid::regprocedure::text;
SELECT c.relname, c.relkind
  FROM pg_class c WHERE c.relnamespace = 'billrecon'::regnamespace AND c.relkind IN ('r', 'v')
 ORDER BY 1;

-- Settings and their defaults.
SELECT name, setting, unit, context FROM pg_settings WHERE name LIKE 'billrecon.%' ORDER BY name;

-- Unknown billrecon.* settings are refused (the prefix is reserved).
SET billrecon.no_such_setting = 1;
