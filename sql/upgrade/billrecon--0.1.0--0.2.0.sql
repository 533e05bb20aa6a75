-- billrecon 0.1.0 -> 0.2.0, run by ALTER EXTENSION billrecon UPDATE.
-- Every schema change between the frozen 0.1.0 script (billrecon--0.1.0.sql,
-- tag v0.1.0) and sql/install/*.sql goes here as well, so that an updated
-- database ends exactly where a fresh CREATE EXTENSION does; test/e2e/
-- test_upgrade.py compares the two (test/bin/schema-fingerprint.sql) and
-- prints every difference. docs/upgrading.md: how to write this file.
\echo Use "ALTER EXTENSION billrecon UPDATE TO '0.2.0'" to load this file. \quit

-- Comments a new user found wrong or empty (the walk-through of issue 10).
COMMENT ON FUNCTION billrecon.add_integration(text, text, text, jsonb, jsonb, boolean) IS
  'Adds an integration and returns its id. kind: connectwise, halopsa or autotask (PSAs); msgraph, partnercenter, '
  'pax8, ninjaone, dattormm or csv (vendors); base_url: the API root (empty for csv); credentials: the keys the kind '
  'needs (docs/connectors/<kind>.md); options: per-integration settings; is_default_psa: the PSA that is reconciled. '
  'Everything is validated first; nothing is stored on error. Admin only.';
COMMENT ON COLUMN billrecon.unmapped_counts.kind IS 'The integration''s kind (connectwise, ninjaone, msgraph, ...)';
COMMENT ON COLUMN billrecon.unmapped_vendor_accounts.kind IS 'The integration''s kind (ninjaone, msgraph, pax8, ...)';
COMMENT ON COLUMN billrecon.change_cards.status IS 'Card status: pending, approved, dismissed, pushed or failed';
COMMENT ON COLUMN billrecon.change_cards.kind IS
  'quantity (change a line''s quantity), new_revenue (usage no line bills: add a line in the PSA) or revert (puts a '
  'pushed change back)';
COMMENT ON COLUMN billrecon.change_cards.last_run_id IS 'Last reconcile run that still found the discrepancy';
COMMENT ON COLUMN billrecon.change_cards.decided_at IS 'When the card was approved or dismissed';
COMMENT ON COLUMN billrecon.change_cards.updated_at IS 'Last change of the card';
COMMENT ON COLUMN billrecon.client_integrations.kind IS 'The integration''s kind (ninjaone, msgraph, pax8, ...)';
COMMENT ON COLUMN billrecon.client_integrations.status IS
  'Integration health: green, yellow or red (billrecon.integration_status says why)';
COMMENT ON COLUMN billrecon.client_seats.kind IS 'Kind of seat: device, licence, user or subscription';
COMMENT ON COLUMN billrecon.inactive_seats.kind IS 'Kind of seat: device, licence, user or subscription';
