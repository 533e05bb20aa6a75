-- Managing integrations: validation messages, updates, default PSA, removal.
\set SHOW_CONTEXT never
SET billrecon.allow_http = off;

SELECT billrecon.add_integration('a', 'quickbooks', 'https://x.example.com', '{}');
SELECT billrecon.add_integration('a', 'connectwise', 'api-na.myconnectwise.net/v4_6_release/apis/3.0',
  '{"company_id":"a","public_key":"b","private_key":"c","client_id":"d"}');
SELECT billrecon.add_integration('a', 'connectwise', 'https://user:pw@api-na.myconnectwise.net/v4_6_release/apis/3.0',
  '{"company_id":"a","public_key":"b","private_key":"c","client_id":"d"}');
SELECT billrecon.add_integration('a', 'connectwise', 'https://api-na.myconnectwise.net/v4_6_release/apis/3.0',
  '{"company_id":"a","public_key":"b","client_id":"d"}');
SELECT billrecon.add_integration('a', 'connectwise', 'https://api-na.myconnectwise.net/v4_6_release/apis/3.0',
  '{"company_id":"a","public_key":"b","private_key":"c","client_id":"d","password":"p"}');
SELECT billrecon.add_integration('a', 'ninjaone', 'http://127.0.0.1:9', '{"client_id":"a","client_secret":"b"}');
SELECT billrecon.add_integration('a', 'ninjaone', 'https://app.ninjarmm.com', '{"client_id":"a","client_secret":"b"}',
  '{"page_size": 5000}');
SELECT billrecon.add_integration('a', 'ninjaone', 'https://app.ninjarmm.com', '{"client_id":"a","client_secret":"b"}',
  '{"page_sise": 50}');
SELECT billrecon.add_integration('a b', 'ninjaone', 'https://app.ninjarmm.com', '{"client_id":"a","client_secret":"b"}');
SELECT count(*) AS stored_after_errors FROM billrecon.integrations;

-- Valid ones.
SELECT billrecon.add_integration('cw', 'connectwise', 'https://api-na.myconnectwise.net/v4_6_release/apis/3.0/',
  '{"company_id":"acme","public_key":"pub","private_key":"priv","client_id":"00000000-0000-4000-8000-000000000001"}',
  '{"page_size": 500}', is_default_psa => true) > 0 AS added;
SELECT billrecon.add_integration('ninja', 'ninjaone', 'https://app.ninjarmm.com',
  '{"client_id":"id","client_secret":"secret"}') > 0 AS added;
SELECT billrecon.add_integration('cw2', 'connectwise', 'https://api-eu.myconnectwise.net/v4_6_release/apis/3.0',
  '{"company_id":"acme","public_key":"pub","private_key":"priv","client_id":"x"}', is_default_psa => true);
SELECT billrecon.add_integration('cw', 'ninjaone', 'https://app.ninjarmm.com', '{"client_id":"a","client_secret":"b"}');
SELECT name, kind, side, base_url, options, enabled, is_default_psa FROM billrecon.integrations ORDER BY name;

-- Changing them.
SELECT billrecon.update_integration('ninja', options => '{"page_size": 200}', enabled => false);
SELECT billrecon.update_integration('ninja', base_url => 'ftp://app.ninjarmm.com');
SELECT billrecon.update_integration('nope', enabled => true);
SELECT billrecon.add_integration('cw2', 'connectwise', 'https://api-eu.myconnectwise.net/v4_6_release/apis/3.0',
  '{"company_id":"acme","public_key":"pub","private_key":"priv","client_id":"x"}') > 0 AS added;
SELECT billrecon.set_default_psa('cw2');
SELECT billrecon.set_default_psa('ninja');
SELECT name, options, enabled, is_default_psa FROM billrecon.integrations ORDER BY name;

-- Syncing: unknown and disabled integrations, bad mode.
SELECT * FROM billrecon.sync('nope');
SELECT * FROM billrecon.sync('ninja');
SELECT * FROM billrecon.sync('cw', 'fast');

-- Status before any sync.
SELECT integration, kind, status, last_success_at, last_error, status_reason
  FROM billrecon.integration_status ORDER BY integration;

SELECT billrecon.drop_integration('cw2');
SELECT name FROM billrecon.integrations ORDER BY name;

-- Leave nothing behind for the next test (these point at real vendor hosts).
SELECT count(billrecon.drop_integration(name)::text) AS dropped FROM billrecon.integrations;
SELECT count(*) AS left_over FROM billrecon.integrations;
