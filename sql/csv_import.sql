-- Usage from CSV: strict parsing, all rows or none, re-import replaces.
\set SHOW_CONTEXT never
SELECT billrecon.add_integration('sheet', 'csv', '', '{}') > 0 AS added;

SELECT billrecon.import_usage_csv('sheet', $csv$account_id,account_name,kind,product,quantity,device_class,os_name,device_name,last_active_at
A1,Harbor Dental,device,,,laptop,Windows 11 Pro,HD-LT-01,2026-11-01T08:00:00Z
A1,Harbor Dental,device,,,server,Windows Server 2022,HD-DC01,2026-08-15T00:00:00Z
A1,Harbor Dental,licence,SPB,12,,,,
A2,"Smith, Jones & Co",user,,,,,alice@smith.example,2026-10-01
A2,"Smith, Jones & Co",subscription,Backup 1TB,2.5,,,,
$csv$) AS rows_loaded;

SELECT a.external_id AS account, a.name, u.kind, u.product, u.quantity, u.device_class, u.os_name, u.device_name,
       u.last_active_at AT TIME ZONE 'UTC' AS last_active_utc
  FROM billrecon.usage_records u JOIN billrecon.vendor_accounts a ON a.id = u.account_id
 WHERE u.removed_at IS NULL ORDER BY u.external_id;

-- A bad row rejects the whole file, with its line number; nothing changes.
SELECT billrecon.import_usage_csv('sheet', $csv$account_id,account_name,kind,product,quantity,device_class,os_name,device_name,last_active_at
A1,Harbor Dental,licence,SPB,14,,,,
A1,Harbor Dental,licence,SPB,many,,,,
$csv$);
SELECT billrecon.import_usage_csv('sheet', 'account,name');
SELECT count(*) AS current_rows, sum(quantity) AS total_quantity
  FROM billrecon.usage_records WHERE removed_at IS NULL;

-- Importing again replaces: what the file no longer has is marked removed.
SELECT billrecon.import_usage_csv('sheet', $csv$account_id,account_name,kind,product,quantity,device_class,os_name,device_name,last_active_at
A1,Harbor Dental,licence,SPB,14,,,,
$csv$) AS rows_loaded;
SELECT u.external_id, u.quantity, u.removed_at IS NOT NULL AS removed
  FROM billrecon.usage_records u ORDER BY u.external_id;
SELECT a.external_id, a.removed_at IS NOT NULL AS removed FROM billrecon.vendor_accounts a ORDER BY 1;
SELECT requested_mode, mode, status, records, note FROM billrecon.sync_runs ORDER BY id;

-- A csv integration has nothing to fetch; other kinds do not take CSV.
SELECT integration, status, records, mode FROM billrecon.sync('sheet');
SELECT note FROM billrecon.sync_runs ORDER BY id DESC LIMIT 1;
SET billrecon.allow_http = on;
SELECT billrecon.add_integration('ninja', 'ninjaone', 'http://127.0.0.1:9', '{"client_id":"a","client_secret":"b"}') > 0 AS added;
SELECT billrecon.import_usage_csv('ninja', 'account_id,account_name,kind,product,quantity,device_class,os_name,device_name,last_active_at');
SELECT billrecon.add_integration('sheet2', 'csv', 'https://example.com', '{}');
SELECT count(billrecon.drop_integration(name)::text) AS dropped FROM billrecon.integrations;
