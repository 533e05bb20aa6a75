-- A sync that cannot reach its API fails as data, not as an ERROR, and leaves
\set SHOW_CONTEXT never
-- everything as it was.
SET billrecon.allow_http = on;
SELECT billrecon.add_integration('down', 'ninjaone', 'http://127.0.0.1:9',
  '{"client_id":"id","client_secret":"do-not-print-me"}',
  '{"max_retries": 1, "retry_base_delay_ms": 1, "connect_timeout_ms": 2000}') > 0 AS added;

SELECT integration, status, records, mode, pages, requests, retries, warnings,
       error LIKE 'could not connect to 127.0.0.1:9%' AS error_says_unreachable,
       error LIKE '%do-not-print-me%' AS error_leaks_secret
  FROM billrecon.sync('down', 'full');

SELECT integration, status, last_success_at IS NULL AS never_succeeded, status_reason, last_sync_status
  FROM billrecon.integration_status WHERE integration = 'down';
SELECT requested_mode, mode, status, error_sqlstate, finished_at IS NOT NULL AS finished,
       error || coalesce(error_detail, '') LIKE '%do-not-print-me%' AS leaks_secret
  FROM billrecon.sync_runs ORDER BY id;
SELECT level, message LIKE 'could not connect%' AS says_unreachable FROM billrecon.sync_run_messages;
SELECT count(*) AS vendor_accounts FROM billrecon.vendor_accounts;

-- Turning allow_http off afterwards also stops the sync (checked at every sync).
SET billrecon.allow_http = off;
SELECT integration, status, error FROM billrecon.sync('down', 'full');
RESET billrecon.allow_http;

-- sync(NULL) runs every enabled integration: none is left.
SELECT billrecon.update_integration('down', enabled => false);
SELECT count(*) AS runs FROM billrecon.sync();
SELECT count(billrecon.drop_integration(name)::text) AS dropped FROM billrecon.integrations;
