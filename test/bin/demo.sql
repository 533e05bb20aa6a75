-- The billrecon demo, run by test/bin/demo in database billrecon_demo against
-- the loopback mock vendor APIs. psql variables set by the script:
--   cw_base_url, cw_credentials, ninja_base_url, ninja_credentials
\set ON_ERROR_STOP on
\pset pager off
\pset format aligned

\echo
\echo '==> CREATE EXTENSION billrecon'
CREATE EXTENSION billrecon;

-- The mocks speak plain http on 127.0.0.1; real vendors need https.
SET billrecon.allow_http = on;

\echo
\echo '==> integrations: ConnectWise (the default PSA) and NinjaOne (RMM)'
SELECT billrecon.add_integration(
	name           => 'connectwise',
	kind           => 'connectwise',
	base_url       => :'cw_base_url',
	credentials    => :'cw_credentials'::jsonb,
	is_default_psa => true
) AS connectwise_id;

SELECT billrecon.add_integration(
	name        => 'ninjaone',
	kind        => 'ninjaone',
	base_url    => :'ninja_base_url',
	credentials => :'ninja_credentials'::jsonb
) AS ninjaone_id;

\echo
\echo '==> full sync of every integration'
SELECT * FROM billrecon.sync(NULL, 'full') ORDER BY integration;

\echo
\echo '==> integration status'
SELECT * FROM billrecon.integration_status ORDER BY integration;

\echo
\echo '==> rows synced, per table'
SELECT t.table_name AS "table",
       (xpath('/row/n/text()',
              query_to_xml(format('SELECT count(*) AS n FROM %I.%I', t.table_schema, t.table_name),
                           false, true, '')))[1]::text::bigint AS "rows"
  FROM information_schema.tables AS t
 WHERE t.table_schema = 'billrecon' AND t.table_type = 'BASE TABLE'
 ORDER BY 1;

-- Next (as those land): suggest and confirm client matches, apply presets,
-- reconcile the period and show the discrepancies.
