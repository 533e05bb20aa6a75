-- Usage from CSV.

CREATE FUNCTION billrecon.import_usage_csv(integration text, csv text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'billrecon_import_usage_csv'
LANGUAGE C STRICT VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION billrecon.import_usage_csv(text, text) IS
  'Loads usage for a csv integration from CSV text (RFC 4180) with the header '
  'account_id,account_name,kind,product,quantity,device_class,os_name,device_name,last_active_at. '
  'kind: device, licence, user or subscription; quantity defaults to 1 for devices and users; last_active_at is '
  'ISO 8601. The file replaces the integration''s usage like a full sync (rows not in it are marked removed); a bad '
  'row raises with its line number and nothing is stored. Returns the number of usage rows loaded. From psql: '
  '\set csv `cat usage.csv` then SELECT billrecon.import_usage_csv(''name'', :''csv'').';
