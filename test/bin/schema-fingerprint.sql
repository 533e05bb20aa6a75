-- The schema of the installed billrecon extension as sorted text lines, one
-- fact a line, for diffing two databases (an updated one against a fresh
-- install: test/e2e/test_upgrade.py; by hand: test/bin/schema-diff DB_A DB_B).
--
--     psql -X -q -At -d DB -f test/bin/schema-fingerprint.sql > DB.txt
--
-- What it covers, for schema billrecon and every member of the extension:
-- the extension (version, schema, pg_extension_config_dump registrations and
-- their WHERE conditions), membership (pg_depend deptype 'e'), the schema;
-- tables, views and sequences (kind, persistence, row security, options,
-- owner, ACL); columns (position among live columns, type, NOT NULL,
-- default, identity, generated, collation, column ACL); constraints, indexes,
-- triggers, policies, rules, extended statistics; view definitions;
-- sequence parameters and owning column; functions (pg_get_functiondef:
-- language, volatility, strictness, SECURITY DEFINER, parallel safety, cost,
-- SET search_path and other proconfig, body), owner, ACL; types (enum
-- labels in order, domains, composite and range types); the comment of every
-- object and column; pg_init_privs (the privileges pg_dump treats as the
-- extension's own) and default privileges in the schema.
-- Not covered: data, sequence positions, statistics, roles (cluster-wide),
-- and the pg_attver=<n> entry this Debian server build writes into every new
-- column's attoptions (a number that differs from one CREATE to the next).
--
-- A SET and one query, no psql meta-commands: the e2e test runs the file's
-- text as it is. jit is off because compiling this large query costs seconds
-- (Debian's server is built with LLVM) and running it a few milliseconds. Names are schema-qualified whatever the search_path
-- (pg_identify_object); definitions are printed with the session's
-- search_path, so run both sides with the same one. ACL entries are sorted
-- (their order carries no meaning). Multi-line definitions are split into
-- numbered lines so a diff shows the line that differs.
SET jit = off;
WITH ext AS (
  SELECT e.* FROM pg_catalog.pg_extension e WHERE e.extname = 'billrecon'
), members AS (
  SELECT d.classid, d.objid, d.objsubid
    FROM pg_catalog.pg_depend d JOIN ext ON d.refobjid = ext.oid
   WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.deptype = 'e'
), nsp AS (
  SELECT n.* FROM pg_catalog.pg_namespace n
   WHERE n.nspname = 'billrecon'
      OR n.oid IN (SELECT objid FROM members WHERE classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass)
), rels AS (
  SELECT c.*, pg_catalog.pg_identify_object('pg_catalog.pg_class'::pg_catalog.regclass, c.oid, 0) AS o
    FROM pg_catalog.pg_class c
   WHERE c.relnamespace IN (SELECT oid FROM nsp)
      OR c.oid IN (SELECT objid FROM members WHERE classid = 'pg_catalog.pg_class'::pg_catalog.regclass)
), procs AS (
  SELECT p.*, pg_catalog.pg_identify_object('pg_catalog.pg_proc'::pg_catalog.regclass, p.oid, 0) AS o
    FROM pg_catalog.pg_proc p
   WHERE p.pronamespace IN (SELECT oid FROM nsp)
      OR p.oid IN (SELECT objid FROM members WHERE classid = 'pg_catalog.pg_proc'::pg_catalog.regclass)
), types AS (
  SELECT t.*, pg_catalog.pg_identify_object('pg_catalog.pg_type'::pg_catalog.regclass, t.oid, 0) AS o
    FROM pg_catalog.pg_type t
   WHERE (t.typnamespace IN (SELECT oid FROM nsp)
          OR t.oid IN (SELECT objid FROM members WHERE classid = 'pg_catalog.pg_type'::pg_catalog.regclass))
     -- array types and tables' row types come with their element or table
     AND NOT (t.typcategory = 'A' AND t.typelem <> 0)
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
), objs AS (
  -- every object in scope, for comments and pg_init_privs: (class, oid)
  SELECT 'pg_catalog.pg_class'::pg_catalog.regclass AS classid, oid AS objid FROM rels
  UNION SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, oid FROM procs
  UNION SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, oid FROM types
  UNION SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass, oid FROM nsp
  UNION SELECT 'pg_catalog.pg_extension'::pg_catalog.regclass, oid FROM ext
  UNION SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, k.oid FROM pg_catalog.pg_constraint k
         WHERE k.conrelid IN (SELECT oid FROM rels) OR k.contypid IN (SELECT oid FROM types)
  UNION SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass, g.oid FROM pg_catalog.pg_trigger g
         WHERE g.tgrelid IN (SELECT oid FROM rels)
  UNION SELECT 'pg_catalog.pg_policy'::pg_catalog.regclass, y.oid FROM pg_catalog.pg_policy y
         WHERE y.polrelid IN (SELECT oid FROM rels)
  UNION SELECT 'pg_catalog.pg_rewrite'::pg_catalog.regclass, w.oid FROM pg_catalog.pg_rewrite w
         WHERE w.ev_class IN (SELECT oid FROM rels)
  UNION SELECT classid, objid FROM members
), facts(k, n, line) AS (
  -- the extension
  SELECT 'a extension', 0, pg_catalog.format('extension %s: version %s, relocatable %s, schema %s',
         extname, extversion, extrelocatable, extnamespace::pg_catalog.regnamespace)
    FROM ext
  UNION ALL
  SELECT 'a extension', 1, pg_catalog.format('extension config dump: %s WHERE %s',
         (pg_catalog.pg_identify_object('pg_catalog.pg_class'::pg_catalog.regclass, u.cfg, 0)).identity,
         coalesce(nullif(u.cond, ''), '(every row)'))
    FROM ext, unnest(ext.extconfig, ext.extcondition) AS u(cfg, cond)
  UNION ALL
  SELECT 'b member', 0, pg_catalog.format('member: %s %s', i.type, i.identity)
    FROM members m, pg_catalog.pg_identify_object(m.classid, m.objid, m.objsubid) i
  UNION ALL
  SELECT 'c schema ' || nspname, 0, pg_catalog.format('schema %s: owner %s, acl %s',
         nspname, pg_catalog.pg_get_userbyid(nspowner),
         (SELECT coalesce(pg_catalog.array_agg(a::text ORDER BY a::text), '{}') FROM unnest(nspacl) a))
    FROM nsp
  UNION ALL
  -- relations
  SELECT 'd relation ' || (o).identity, 0, pg_catalog.format(
         '%s %s: persistence %s, row security %s%s, options %s, owner %s, acl %s%s',
         (o).type, (o).identity, relpersistence, relrowsecurity,
         CASE WHEN relforcerowsecurity THEN ' (forced)' ELSE '' END, coalesce(reloptions::text, '{}'),
         pg_catalog.pg_get_userbyid(relowner),
         (SELECT coalesce(pg_catalog.array_agg(a::text ORDER BY a::text), '{}') FROM unnest(relacl) a),
         CASE WHEN relreplident <> 'd' THEN ', replica identity ' || relreplident::text ELSE '' END)
    FROM rels WHERE relkind NOT IN ('i', 'I')
  UNION ALL
  SELECT 'd relation ' || (r.o).identity, 1, pg_catalog.format(
         'column %s.%I: #%s %s%s%s%s%s%s%s',
         (r.o).identity, a.attname,
         pg_catalog.row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
         pg_catalog.format_type(a.atttypid, a.atttypmod),
         CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
         CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END,
         CASE WHEN a.attgenerated <> '' THEN ' generated ' || a.attgenerated::text ELSE '' END,
         CASE WHEN def.adbin IS NOT NULL THEN ' default ' || pg_catalog.pg_get_expr(def.adbin, def.adrelid) ELSE '' END,
         CASE WHEN a.attcollation <> 0 AND a.attcollation <> (SELECT typcollation FROM pg_catalog.pg_type WHERE oid = a.atttypid)
              THEN ' collate ' || a.attcollation::pg_catalog.regcollation::text ELSE '' END,
         coalesce(' options ' || (SELECT pg_catalog.array_agg(x ORDER BY x) FROM unnest(a.attoptions) x
                                   WHERE x NOT LIKE 'pg\_attver=%')::text, '')
         || CASE WHEN a.attacl IS NOT NULL THEN ' acl ' || (SELECT pg_catalog.array_agg(x::text ORDER BY x::text)
                                                            FROM unnest(a.attacl) x)::text ELSE '' END)
    FROM rels r
    JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_catalog.pg_attrdef def ON def.adrelid = a.attrelid AND def.adnum = a.attnum
   WHERE r.relkind NOT IN ('i', 'I', 'S')
  UNION ALL
  SELECT 'd relation ' || (r.o).identity, 2, pg_catalog.format('constraint %I on %s: %s%s',
         k.conname, (r.o).identity, pg_catalog.pg_get_constraintdef(k.oid),
         CASE WHEN k.convalidated THEN '' ELSE ' (not validated)' END)
    FROM rels r JOIN pg_catalog.pg_constraint k ON k.conrelid = r.oid
  UNION ALL
  SELECT 'd relation ' || (r.o).identity, 3, pg_catalog.format('index on %s: %s%s%s',
         (r.o).identity, pg_catalog.pg_get_indexdef(x.indexrelid),
         CASE WHEN x.indisclustered THEN ' (clustered)' ELSE '' END,
         CASE WHEN x.indisreplident THEN ' (replica identity)' ELSE '' END)
    FROM rels r JOIN pg_catalog.pg_index x ON x.indrelid = r.oid
  UNION ALL
  SELECT 'd relation ' || (r.o).identity, 4, pg_catalog.format('trigger on %s: %s (enabled %s)',
         (r.o).identity, pg_catalog.pg_get_triggerdef(g.oid), g.tgenabled)
    FROM rels r JOIN pg_catalog.pg_trigger g ON g.tgrelid = r.oid AND NOT g.tgisinternal
  UNION ALL
  SELECT 'd relation ' || (r.o).identity, 5, pg_catalog.format(
         'policy %I on %s: %s for %s to %s using (%s) with check (%s)',
         y.polname, (r.o).identity, CASE WHEN y.polpermissive THEN 'permissive' ELSE 'restrictive' END,
         y.polcmd, (SELECT pg_catalog.array_agg(CASE WHEN ro = 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(ro) END
                                                ORDER BY 1) FROM unnest(y.polroles) ro),
         pg_catalog.pg_get_expr(y.polqual, y.polrelid), pg_catalog.pg_get_expr(y.polwithcheck, y.polrelid))
    FROM rels r JOIN pg_catalog.pg_policy y ON y.polrelid = r.oid
  UNION ALL
  SELECT 'd relation ' || (r.o).identity, 6, pg_catalog.format('rule on %s: %s (enabled %s)',
         (r.o).identity, pg_catalog.pg_get_ruledef(w.oid), w.ev_enabled)
    FROM rels r JOIN pg_catalog.pg_rewrite w ON w.ev_class = r.oid AND w.rulename <> '_RETURN'
  UNION ALL
  SELECT 'd relation ' || (r.o).identity, 7, pg_catalog.format('statistics on %s: %s',
         (r.o).identity, pg_catalog.pg_get_statisticsobjdef(s.oid))
    FROM rels r JOIN pg_catalog.pg_statistic_ext s ON s.stxrelid = r.oid
  UNION ALL
  -- view definitions, a line each
  SELECT 'd relation ' || (r.o).identity, 100 + l.n::integer, pg_catalog.format('%s %s | %s',
         (r.o).type, (r.o).identity, l.line)
    FROM rels r, pg_catalog.regexp_split_to_table(pg_catalog.pg_get_viewdef(r.oid, true), E'\n')
                 WITH ORDINALITY AS l(line, n)
   WHERE r.relkind IN ('v', 'm')
  UNION ALL
  -- sequences
  SELECT 'd relation ' || (r.o).identity, 8, pg_catalog.format(
         'sequence %s: %s start %s increment %s min %s max %s cache %s%s%s',
         (r.o).identity, s.seqtypid::pg_catalog.regtype, s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
         s.seqcache, CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END,
         coalesce((SELECT pg_catalog.format(' owned by %s.%I (%s)',
                          (pg_catalog.pg_identify_object('pg_catalog.pg_class'::pg_catalog.regclass, d.refobjid, 0)).identity,
                          a.attname, d.deptype)
                     FROM pg_catalog.pg_depend d
                     JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = r.oid
                      AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjsubid > 0
                      AND d.deptype IN ('a', 'i')), ''))
    FROM rels r JOIN pg_catalog.pg_sequence s ON s.seqrelid = r.oid
  UNION ALL
  -- functions and procedures: the whole CREATE statement, a line each; aggregates by their parts
  SELECT 'e function ' || (p.o).identity, 0, pg_catalog.format('%s %s: owner %s, acl %s',
         (p.o).type, (p.o).identity, pg_catalog.pg_get_userbyid(p.proowner),
         CASE WHEN p.proacl IS NULL THEN '(default)'
              ELSE (SELECT pg_catalog.array_agg(a::text ORDER BY a::text) FROM unnest(p.proacl) a)::text END)
    FROM procs p
  UNION ALL
  SELECT 'e function ' || (p.o).identity, l.n::integer, pg_catalog.format('%s | %s', (p.o).identity, l.line)
    FROM procs p, pg_catalog.regexp_split_to_table(pg_catalog.pg_get_functiondef(p.oid), E'\n')
                  WITH ORDINALITY AS l(line, n)
   WHERE p.prokind <> 'a'
  UNION ALL
  SELECT 'e function ' || (p.o).identity, 1, pg_catalog.format(
         'aggregate %s: sfunc %s stype %s finalfunc %s combinefunc %s initcond %s',
         (p.o).identity, g.aggtransfn, pg_catalog.format_type(g.aggtranstype, NULL), g.aggfinalfn, g.aggcombinefn,
         coalesce(g.agginitval, '(null)'))
    FROM procs p JOIN pg_catalog.pg_aggregate g ON g.aggfnoid = p.oid
  UNION ALL
  -- types
  SELECT 'f type ' || (t.o).identity, 0, pg_catalog.format('type %s: typtype %s, owner %s, acl %s%s%s',
         (t.o).identity, t.typtype, pg_catalog.pg_get_userbyid(t.typowner),
         CASE WHEN t.typacl IS NULL THEN '(default)'
              ELSE (SELECT pg_catalog.array_agg(a::text ORDER BY a::text) FROM unnest(t.typacl) a)::text END,
         CASE WHEN t.typtype = 'd' THEN pg_catalog.format(', domain over %s%s%s',
                   pg_catalog.format_type(t.typbasetype, t.typtypmod),
                   CASE WHEN t.typnotnull THEN ' not null' ELSE '' END,
                   coalesce(' default ' || t.typdefault, '')) ELSE '' END,
         CASE WHEN t.typtype = 'e' THEN ', labels ' || (SELECT pg_catalog.array_agg(e.enumlabel ORDER BY e.enumsortorder)
                                                          FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid)::text
              WHEN t.typtype = 'r' THEN (SELECT pg_catalog.format(', range of %s', rngsubtype::pg_catalog.regtype)
                                           FROM pg_catalog.pg_range WHERE rngtypid = t.oid)
              ELSE '' END)
    FROM types t
  UNION ALL
  SELECT 'f type ' || (t.o).identity, 1, pg_catalog.format('constraint %I on %s: %s',
         k.conname, (t.o).identity, pg_catalog.pg_get_constraintdef(k.oid))
    FROM types t JOIN pg_catalog.pg_constraint k ON k.contypid = t.oid
  UNION ALL
  -- comments on every object in scope and on its columns
  SELECT 'g comment', 0, pg_catalog.format('comment on %s %s: %s', i.type, i.identity,
         pg_catalog.replace(d.description, E'\n', '\n'))
    FROM pg_catalog.pg_description d
    JOIN objs ON objs.classid = d.classoid AND objs.objid = d.objoid,
         pg_catalog.pg_identify_object(d.classoid, d.objoid, d.objsubid) i
  UNION ALL
  -- the privileges pg_dump takes as the extension's own
  SELECT 'h init privs', 0, pg_catalog.format('init privs on %s %s: %s %s', i.type, i.identity, ip.privtype,
         (SELECT pg_catalog.array_agg(a::text ORDER BY a::text) FROM unnest(ip.initprivs) a))
    FROM pg_catalog.pg_init_privs ip
    JOIN objs ON objs.classid = ip.classoid AND objs.objid = ip.objoid,
         pg_catalog.pg_identify_object(ip.classoid, ip.objoid, ip.objsubid) i
  UNION ALL
  SELECT 'i default acl', 0, pg_catalog.format('default privileges of %s in %s on %s: %s',
         pg_catalog.pg_get_userbyid(da.defaclrole), da.defaclnamespace::pg_catalog.regnamespace, da.defaclobjtype,
         (SELECT pg_catalog.array_agg(a::text ORDER BY a::text) FROM unnest(da.defaclacl) a))
    FROM pg_catalog.pg_default_acl da WHERE da.defaclnamespace IN (SELECT oid FROM nsp)
)
SELECT line FROM facts ORDER BY k COLLATE "C", n, line COLLATE "C";
