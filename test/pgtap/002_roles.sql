-- Roles and privileges: who can read credentials, run syncs, manage integrations.
BEGIN;
SELECT plan(38);

SELECT has_role('billrecon_admin');
SELECT has_role('billrecon_operator');
SELECT has_role('billrecon_reader');
SELECT is_member_of('billrecon_reader', 'billrecon_operator');
SELECT is_member_of('billrecon_operator', 'billrecon_admin');

-- Credentials: the admin only.
SELECT table_privs_are('billrecon', 'integration_credentials', 'billrecon_admin',
                       ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']);
SELECT table_privs_are('billrecon', 'integration_credentials', 'billrecon_operator', ARRAY[]::text[]);
SELECT table_privs_are('billrecon', 'integration_credentials', 'billrecon_reader', ARRAY[]::text[]);
SELECT table_privs_are('billrecon', 'integration_credentials', 'public', ARRAY[]::text[]);

-- Synced data: readable by readers, written only through billrecon's functions.
SELECT table_privs_are('billrecon', t, 'billrecon_reader', ARRAY['SELECT'], 'reader can only read ' || t)
  FROM unnest(ARRAY['psa_companies', 'psa_agreements', 'psa_line_items', 'vendor_accounts', 'usage_records']) AS t;
SELECT table_privs_are('billrecon', 'psa_line_items', 'billrecon_operator', ARRAY['SELECT'],
                       'operator cannot write line items directly');
SELECT table_privs_are('billrecon', '_stage_usage_records', 'billrecon_reader', ARRAY[]::text[],
                       'staging is private');
SELECT table_privs_are('billrecon', 'integration_status', 'public', ARRAY[]::text[], 'PUBLIC sees no view');

SELECT function_privs_are('billrecon', 'sync', ARRAY['text', 'text'], 'billrecon_operator', ARRAY['EXECUTE']);
SELECT function_privs_are('billrecon', 'map_line_item', ARRAY['text', 'text', 'text', 'jsonb', 'numeric'],
                          'billrecon_operator', ARRAY['EXECUTE']);
SELECT function_privs_are('billrecon', 'map_line_item', ARRAY['text', 'text', 'text', 'jsonb', 'numeric'],
                          'billrecon_reader', ARRAY[]::text[]);
SELECT table_privs_are('billrecon', 'service_rules', 'billrecon_reader', ARRAY['SELECT'], 'reader reads rules only');
SELECT table_privs_are('billrecon', 'rule_presets', 'billrecon_operator', ARRAY['SELECT'], 'presets are the admin''s');
SELECT function_privs_are('billrecon', '_write_back_quantity', ARRAY['text', 'text', 'numeric', 'date', 'boolean'],
                          'billrecon_operator', ARRAY[]::text[]);
SELECT function_privs_are('billrecon', 'sync', ARRAY['text', 'text'], 'billrecon_reader', ARRAY[]::text[]);
SELECT function_privs_are('billrecon', 'sync', ARRAY['text', 'text'], 'public', ARRAY[]::text[]);
SELECT function_privs_are('billrecon', 'add_integration', ARRAY['text', 'text', 'text', 'jsonb', 'jsonb', 'boolean'],
                          'billrecon_operator', ARRAY[]::text[]);
SELECT function_privs_are('billrecon', 'add_integration', ARRAY['text', 'text', 'text', 'jsonb', 'jsonb', 'boolean'],
                          'billrecon_admin', ARRAY['EXECUTE']);

-- The admin adds an integration; its secret is then invisible to the others.
SET LOCAL ROLE billrecon_admin;
SELECT lives_ok($$SELECT billrecon.add_integration('cw', 'connectwise',
  'https://api-na.myconnectwise.net/v4_6_release/apis/3.0',
  '{"company_id":"acme","public_key":"pub","private_key":"s3cr3t-private","client_id":"00000000-0000-4000-8000-000000000001"}',
  '{}', true)$$, 'the admin adds an integration');
SELECT is((SELECT credentials->>'private_key' FROM billrecon.integration_credentials), 's3cr3t-private',
          'the admin reads credentials');
RESET ROLE;

SET LOCAL ROLE billrecon_operator;
SELECT throws_ok('SELECT * FROM billrecon.integration_credentials', '42501', NULL, 'operator cannot read credentials');
SELECT throws_ok($$SELECT billrecon.add_integration('x', 'ninjaone', 'https://app.ninjarmm.com',
                   '{"client_id":"a","client_secret":"b"}')$$, '42501', NULL, 'operator cannot add integrations');
SELECT throws_ok($$UPDATE billrecon.psa_companies SET name = 'x'$$, '42501', NULL, 'operator cannot edit synced data');
SELECT is((SELECT count(*)::int FROM billrecon.integrations), 1, 'operator sees integrations');
SELECT is_empty($$SELECT 1 FROM billrecon.integration_status WHERE integration_status::text LIKE '%s3cr3t%'$$,
                'no secret in integration_status');
RESET ROLE;

SET LOCAL ROLE billrecon_reader;
SELECT throws_ok('SELECT * FROM billrecon.integration_credentials', '42501', NULL, 'reader cannot read credentials');
SELECT throws_ok($$SELECT * FROM billrecon.sync('cw')$$, '42501', NULL, 'reader cannot sync');
SELECT is((SELECT status FROM billrecon.integration_status WHERE integration = 'cw'), 'yellow',
          'reader sees status: never synced is yellow');
SELECT is((SELECT status_reason FROM billrecon.integration_status WHERE integration = 'cw'), 'never synced',
          'and why');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
