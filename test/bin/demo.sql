-- The billrecon demo, run by test/bin/demo in database billrecon_demo against
-- the loopback mock vendor APIs. The psql variable integrations_sql names the
-- file of add_integration calls test/bin/demo_integrations.py wrote for them.
\set ON_ERROR_STOP on
\pset pager off
\pset format aligned

\echo
\echo '==> CREATE EXTENSION billrecon'
CREATE EXTENSION billrecon;

-- The mocks speak plain http on 127.0.0.1; real vendors need https.
SET billrecon.allow_http = on;

\echo
\echo '==> integrations: ConnectWise (the default PSA), NinjaOne and Datto RMM (devices), Partner Center,'
\echo '    Microsoft 365 (its tenants are Partner Center''s customers) and Pax8'
\i :integrations_sql

\echo
\echo '==> full sync of every integration'
SELECT integration, status, mode, records, pages, requests, retries, warnings, error
  FROM billrecon.sync(NULL, 'full') ORDER BY integration;

\echo
\echo '==> a quick sync right after: ConnectWise asks only for what changed; APIs without a modified filter run full'
SELECT integration, status, mode, records, requests
  FROM billrecon.sync(NULL, 'quick') ORDER BY integration;

\echo
\echo '==> integration status'
SELECT integration, kind, status, status_reason, last_sync_mode, accounts, items, last_error
  FROM billrecon.integration_status ORDER BY integration;

\echo
\echo '==> what was synced'
SELECT 'PSA companies' AS what, count(*) AS current FROM billrecon.psa_companies WHERE removed_at IS NULL
UNION ALL SELECT 'PSA agreements', count(*) FROM billrecon.psa_agreements WHERE removed_at IS NULL
UNION ALL SELECT 'PSA line items', count(*) FROM billrecon.psa_line_items WHERE removed_at IS NULL
UNION ALL SELECT 'vendor accounts', count(*) FROM billrecon.vendor_accounts WHERE removed_at IS NULL
UNION ALL SELECT 'usage records', count(*) FROM billrecon.usage_records WHERE removed_at IS NULL;

\echo
\echo '==> devices per class, and how many have not been seen for 21 days'
SELECT device_class, count(*) AS devices,
       count(*) FILTER (WHERE last_active_at < now() - interval '21 days') AS inactive_21_days
  FROM billrecon.usage_records WHERE kind = 'device' AND removed_at IS NULL
 GROUP BY device_class ORDER BY device_class;

\echo
\echo '==> the ten largest clients by billed recurring amount'
SELECT c.name AS client, count(*) AS lines, sum(l.quantity * coalesce(l.unit_price, 0)) AS monthly_amount
  FROM billrecon.psa_line_items l JOIN billrecon.psa_companies c ON c.id = l.company_id
 WHERE l.removed_at IS NULL AND l.cancel_date IS NULL
 GROUP BY c.name ORDER BY monthly_amount DESC, client LIMIT 10;

\echo
\echo '==> service mapping: built-in presets turn recognised PSA products into rules'
SELECT billrecon.apply_presets() AS rules_created;
SELECT state, count(*) AS line_items FROM billrecon.service_mapping GROUP BY state ORDER BY state;
SELECT product, integration, mode, filters, count(*) AS line_items
  FROM billrecon.service_mapping WHERE state = 'mapped' GROUP BY 1, 2, 3, 4 ORDER BY 1, 2;

\echo
\echo '==> client mapping: suggestions with their evidence, then the confident ones confirmed'
SELECT billrecon.suggest_client_matches() AS suggested;
SELECT integration, vendor_account_name, psa_company_name, score, evidence
  FROM billrecon.client_match_suggestions ORDER BY score DESC, integration, vendor_account_name LIMIT 12;
SELECT billrecon.confirm_client_matches() AS confirmed_at_recommended_threshold;
SELECT integration, vendor_account_name, psa_company_name, score, evidence
  FROM billrecon.client_match_suggestions ORDER BY score DESC, integration, vendor_account_name;

\echo
\echo '==> still to clear before reconciling (billrecon.unmapped_counts): what a human must decide'
SELECT * FROM billrecon.unmapped_counts ORDER BY side DESC, integration;

-- Next (as those land): reconcile the period and show the discrepancies.
