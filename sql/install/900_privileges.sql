-- Privileges and pg_dump registration. Keep last: it covers every object above.

REVOKE ALL ON ALL TABLES IN SCHEMA billrecon FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA billrecon FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA billrecon FROM PUBLIC;

-- Reader: synced data, history and report views; never credentials, never staging.
GRANT SELECT ON billrecon.integrations, billrecon.sync_runs, billrecon.sync_run_messages,
                billrecon.psa_companies, billrecon.psa_agreements, billrecon.psa_line_items,
                billrecon.vendor_accounts, billrecon.usage_records,
                billrecon.integration_status, billrecon.sync_history
  TO billrecon_reader;
GRANT SELECT ON billrecon.ignored_vendor_accounts, billrecon.microsoft_skus TO billrecon_reader;
GRANT SELECT ON billrecon.client_mappings, billrecon.client_match_candidates, billrecon.client_match_rejections,
                billrecon.client_match_suggestions, billrecon.unmapped_vendor_accounts,
                billrecon.rule_presets, billrecon.service_rules, billrecon.ignored_line_items,
                billrecon.excluded_vendor_products, billrecon.line_item_parents,
                billrecon.service_mapping, billrecon.unmapped_line_items,
                billrecon.uncaptured_vendor_products, billrecon.unmapped_counts
  TO billrecon_reader;
GRANT EXECUTE ON FUNCTION billrecon.version(), billrecon.recommended_match_threshold() TO billrecon_reader;

-- Operator: runs syncs (the function runs with the owner's rights to read
-- credentials and write data; the operator gets no direct write access).
GRANT EXECUTE ON FUNCTION billrecon.sync(text, text), billrecon.import_usage_csv(text, text) TO billrecon_operator;

-- Operator: mapping (the functions run with the caller's rights and check
-- their input; the tables are the operator's to change through them).
GRANT INSERT, UPDATE, DELETE ON billrecon.ignored_vendor_accounts TO billrecon_operator;
GRANT INSERT, UPDATE, DELETE ON billrecon.client_mappings, billrecon.client_match_candidates,
                                billrecon.client_match_rejections, billrecon.service_rules,
                                billrecon.ignored_line_items, billrecon.excluded_vendor_products,
                                billrecon.line_item_parents
  TO billrecon_operator;
GRANT USAGE ON SEQUENCE billrecon.service_rules_id_seq TO billrecon_operator;
GRANT EXECUTE ON FUNCTION billrecon.suggest_client_matches(),
                          billrecon.confirm_client_matches(numeric),
                          billrecon.map_client(text, text, text),
                          billrecon.unmap_client(text, text),
                          billrecon.reject_client_match(text, text, text, text),
                          billrecon.ignore_vendor_account(text, text, text),
                          billrecon.unignore_vendor_account(text, text),
                          billrecon.map_line_item(text, text, text, jsonb, numeric),
                          billrecon.map_product(text, text, text, jsonb, numeric),
                          billrecon.delete_rule(bigint),
                          billrecon.ignore_line_item(text, text),
                          billrecon.unignore_line_item(text),
                          billrecon.exclude_vendor_product(text, text, text),
                          billrecon.include_vendor_product(text, text),
                          billrecon.link_adjustment(text, text),
                          billrecon.apply_presets(text),
                          billrecon._vendor_account(text, text),
                          billrecon._psa_company(text),
                          billrecon._default_psa(),
                          billrecon._psa_line_item(text),
                          billrecon._check_rule(integer, text, jsonb, numeric),
                          billrecon._check_pattern(text, text),
                          billrecon._integration_id(text)
  TO billrecon_operator;

-- Reader: reconcile runs, reports and cards. Functions a view calls are
-- checked against the view's user, so the pure helpers are the reader's too.
GRANT SELECT ON billrecon.reconcile_runs, billrecon.reconcile_run_inputs, billrecon.reconcile_results,
                billrecon.reconcile_run_clients,
                billrecon.reconciled_lines, billrecon.discrepancies, billrecon.discrepancies_by_client,
                billrecon.discrepancies_by_service, billrecon.discrepancies_by_contract,
                billrecon.reconciled_invoices, billrecon.reconcile_run_comparison,
                billrecon.client_integrations, billrecon.client_seats, billrecon.client_services,
                billrecon.flagged_services, billrecon.inactive_seats, billrecon.duplicate_seats, billrecon.margin,
                billrecon.proposed_changes, billrecon.change_card_pushes, billrecon.line_item_notes,
                billrecon.change_cards, billrecon.change_card_proration
  TO billrecon_reader;
GRANT EXECUTE ON FUNCTION billrecon.last_run_id(),
                          billrecon._is_discrepancy(text, numeric),
                          billrecon._rule_filter(jsonb),
                          billrecon._filter_captures(text, billrecon.rule_filter, billrecon.usage_records),
                          billrecon._filter_quantity(text, billrecon.rule_filter, billrecon.usage_records),
                          billrecon._rule_captures(text, jsonb, billrecon.usage_records),
                          billrecon._rule_quantity(text, jsonb, billrecon.usage_records),
                          billrecon._usage_excluded(billrecon.usage_records),
                          billrecon._usage_captured(billrecon.usage_records),
                          billrecon._line_rule(billrecon.psa_line_items),
                          billrecon._default_effective_date(),
                          billrecon._usage_display_name(billrecon.usage_records),
                          billrecon._serial_key(text),
                          billrecon._host_key(text)
  TO billrecon_reader;

-- Operator: reconcile and the change workflow. The functions run with the
-- owner's rights (runs, cards and their audit cannot be forged by hand).
GRANT EXECUTE ON FUNCTION billrecon.reconcile(date, text),
                          billrecon.approve(bigint[], date, boolean),
                          billrecon.dismiss(bigint[], text),
                          billrecon.set_effective_date(bigint[], date),
                          billrecon.note_card(bigint[], text, text[]),
                          billrecon.note_line_item(text, text, text[]),
                          billrecon.push_changes(boolean, bigint[]),
                          billrecon.revert_change(bigint, date)
  TO billrecon_operator;
GRANT SELECT ON billrecon.audit_log TO billrecon_operator;

-- Admin: integrations and their credentials; presets.
GRANT INSERT, UPDATE, DELETE ON billrecon.rule_presets, billrecon.microsoft_skus TO billrecon_admin;
GRANT USAGE ON SEQUENCE billrecon.rule_presets_id_seq TO billrecon_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON billrecon.integrations, billrecon.integration_credentials TO billrecon_admin;
-- Pruning the audit trail is the admin's alone; nobody updates it.
GRANT DELETE ON billrecon.audit_log TO billrecon_admin;
GRANT USAGE ON SEQUENCE billrecon.integrations_id_seq TO billrecon_admin;
-- Deleting an integration cascades into its history and data (foreign-key
-- actions run as the tables' owner): no direct DELETE on synced data, so
-- nothing disappears without an audited integration change.
GRANT EXECUTE ON FUNCTION billrecon.add_integration(text, text, text, jsonb, jsonb, boolean),
                          billrecon.update_integration(text, text, jsonb, jsonb, boolean),
                          billrecon.set_default_psa(text),
                          billrecon.drop_integration(text),
                          billrecon._validate_integration(text, text, jsonb, jsonb),
                          billrecon._integration_id(text)
  TO billrecon_admin;
-- Admin: at-rest encryption of credentials. Encrypting is the admin's; no
-- function returns decrypted credentials. The two that read a key file named
-- in the call also check for superuser or pg_read_server_files themselves.
GRANT SELECT ON billrecon.credential_encryption TO billrecon_admin;
GRANT EXECUTE ON FUNCTION billrecon._encrypt_credentials(integer, jsonb),
                          billrecon.credential_key_status(),
                          billrecon.encrypt_credentials(),
                          billrecon.rotate_credential_key(text),
                          billrecon.decrypt_credentials(text)
  TO billrecon_admin;
-- Quantities reach the PSA only through cards (push_changes / revert_change):
-- nobody calls billrecon._write_back_quantity directly but a superuser.

-- User data survives pg_dump / pg_restore.
SELECT pg_catalog.pg_extension_config_dump('billrecon.integrations', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.integrations_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.integration_credentials', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.sync_runs', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.sync_runs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.sync_run_messages', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.psa_companies', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.psa_companies_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.psa_agreements', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.psa_agreements_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.psa_line_items', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.psa_line_items_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.vendor_accounts', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.vendor_accounts_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.usage_records', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.usage_records_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.client_mappings', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.client_match_candidates', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.client_match_rejections', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.ignored_vendor_accounts', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.rule_presets', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('billrecon.rule_presets_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.microsoft_skus', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('billrecon.service_rules', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.service_rules_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.ignored_line_items', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.excluded_vendor_products', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.line_item_parents', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.reconcile_runs', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.reconcile_run_inputs', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.reconcile_results', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.reconcile_run_clients', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.proposed_changes', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.change_card_pushes', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.line_item_notes', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.reconcile_runs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.reconcile_results_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.proposed_changes_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.change_card_pushes_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.audit_log_id_seq', '');
