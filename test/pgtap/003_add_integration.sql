-- add_integration: every bad input is a clear error with its SQLSTATE, and nothing is stored.
BEGIN;
SELECT plan(20);

SET LOCAL billrecon.allow_http = off;

SELECT throws_ok($$SELECT billrecon.add_integration('a', 'quickbooks', 'https://x.example.com', '{}')$$,
                 '22023', NULL, 'unknown kind');
SELECT throws_ok($$SELECT billrecon.add_integration('a', 'halopsa', 'https://acme.halopsa.com', '{"client_id":"a"}')$$,
                 '22023', NULL, 'missing credential of another kind');
SELECT throws_ok($$SELECT billrecon.add_integration('a', 'connectwise', 'not a url',
                   '{"company_id":"a","public_key":"b","private_key":"c","client_id":"d"}')$$,
                 '22023', NULL, 'malformed base URL');
SELECT throws_ok($$SELECT billrecon.add_integration('a', 'connectwise', 'ftp://api.example.com/x',
                   '{"company_id":"a","public_key":"b","private_key":"c","client_id":"d"}')$$,
                 '22023', NULL, 'base URL with another scheme');
SELECT throws_ok($$SELECT billrecon.add_integration('a', 'connectwise', 'https://api-na.myconnectwise.net/v4_6_release/apis/3.0',
                   '{"company_id":"a","public_key":"b","client_id":"d"}')$$,
                 '22023', NULL, 'missing credential');
SELECT throws_ok($$SELECT billrecon.add_integration('a', 'connectwise', 'https://api-na.myconnectwise.net/v4_6_release/apis/3.0',
                   '{"company_id":"a","public_key":"b","private_key":"","client_id":"d"}')$$,
                 '22023', NULL, 'empty credential');
SELECT throws_ok($$SELECT billrecon.add_integration('a', 'connectwise', 'https://api-na.myconnectwise.net/v4_6_release/apis/3.0',
                   '[1,2]')$$,
                 '22023', NULL, 'credentials that are not an object');
SELECT throws_ok($$SELECT billrecon.add_integration('a', 'ninjaone', 'http://127.0.0.1:9',
                   '{"client_id":"a","client_secret":"b"}')$$,
                 '22023', NULL, 'http URL while billrecon.allow_http is off');
SELECT throws_ok($$SELECT billrecon.add_integration('a', 'ninjaone', 'https://app.ninjarmm.com',
                   '{"client_id":"a","client_secret":"b"}', '{"page_size": 0}')$$,
                 '22023', NULL, 'option out of range');
SELECT throws_ok($$SELECT billrecon.add_integration('a', 'ninjaone', 'https://app.ninjarmm.com',
                   '{"client_id":"a","client_secret":"b"}', '{"no_such_option": 1}')$$,
                 '22023', NULL, 'unknown option');
SELECT throws_ok($$SELECT billrecon.add_integration('bad name!', 'ninjaone', 'https://app.ninjarmm.com',
                   '{"client_id":"a","client_secret":"b"}')$$,
                 '22023', NULL, 'invalid integration name');
SELECT throws_ok($$SELECT billrecon.add_integration('a', 'ninjaone', 'https://app.ninjarmm.com',
                   '{"client_id":"a","client_secret":"b"}', '{}', true)$$,
                 '22023', NULL, 'a vendor cannot be the default PSA');
SELECT is((SELECT count(*)::int FROM billrecon.integrations), 0, 'nothing stored after bad input');
SELECT is((SELECT count(*)::int FROM billrecon.integration_credentials), 0, 'no credentials stored after bad input');

SELECT lives_ok($$SELECT billrecon.add_integration('cw', 'connectwise', 'https://api-na.myconnectwise.net/v4_6_release/apis/3.0/',
                  '{"company_id":"a","public_key":"b","private_key":"c","client_id":"d"}', '{"page_size": 500}', true)$$,
                'a valid PSA');
SELECT is((SELECT base_url FROM billrecon.integrations WHERE name = 'cw'),
          'https://api-na.myconnectwise.net/v4_6_release/apis/3.0', 'trailing slash trimmed');
SELECT throws_ok($$SELECT billrecon.add_integration('cw2', 'connectwise', 'https://api-na.myconnectwise.net/v4_6_release/apis/3.0',
                   '{"company_id":"a","public_key":"b","private_key":"c","client_id":"d"}', '{}', true)$$,
                 '23505', 'there is already a default PSA', 'a second default PSA');
SELECT throws_ok($$SELECT billrecon.add_integration('cw', 'ninjaone', 'https://app.ninjarmm.com',
                   '{"client_id":"a","client_secret":"b"}')$$,
                 '23505', NULL, 'duplicate name');
SELECT is((SELECT count(*)::int FROM billrecon.integrations), 1, 'only the valid integration is stored');

SET LOCAL billrecon.allow_http = on;
SELECT lives_ok($$SELECT billrecon.add_integration('ninja', 'ninjaone', 'http://127.0.0.1:9',
                  '{"client_id":"a","client_secret":"b"}')$$, 'http is accepted when billrecon.allow_http is on');

SELECT * FROM finish();
ROLLBACK;
