-- Client mapping and service rules on a small hand-made book of business.
\set SHOW_CONTEXT never
SELECT billrecon.add_integration('cw', 'connectwise', 'https://api-na.myconnectwise.net/v4_6_release/apis/3.0',
  '{"company_id":"a","public_key":"b","private_key":"c","client_id":"d"}', is_default_psa => true) > 0 AS psa;
SELECT billrecon.add_integration('devices', 'csv', '', '{}') > 0 AS csv;

-- The PSA side, as a sync would have stored it.
INSERT INTO billrecon.psa_companies (integration_id, external_id, name, first_seen_at, last_seen_at)
SELECT i.id, v.ext, v.name, now(), now() FROM billrecon.integrations i,
  (VALUES ('250', 'Harbor Dental Group, LLC'), ('251', 'Smith & Jones Law')) v(ext, name) WHERE i.name = 'cw';
INSERT INTO billrecon.psa_agreements (integration_id, external_id, company_id, name, billing_cycle, first_seen_at, last_seen_at)
SELECT c.integration_id, 'AG-' || c.external_id, c.id, 'Managed Services', 'monthly', now(), now()
  FROM billrecon.psa_companies c;
INSERT INTO billrecon.psa_line_items (integration_id, external_id, agreement_id, company_id, product_code, product_name,
                                      quantity, unit_price, first_seen_at, last_seen_at)
SELECT a.integration_id, v.ext, a.id, a.company_id, v.code, v.name, v.qty, v.price, now(), now()
  FROM billrecon.psa_agreements a
  JOIN (VALUES ('AG-250', '1', 'MS-WKS', 'Managed Workstation', 12, 45.00),
               ('AG-250', '2', 'MS-SRV', 'Managed Server', 2, 150.00),
               ('AG-250', '3', 'M365-BP', 'Microsoft 365 Business Premium', 14, 22.00),
               ('AG-250', '4', 'ONBOARD', 'Onboarding fee', 1, 500.00),
               ('AG-250', '5', 'MS-WKS', 'Managed Workstation (credit)', -1, 45.00),
               ('AG-251', '6', 'MS-WKS', 'Managed Workstation', 5, 40.00),
               ('AG-251', '7', 'BDR-2', 'Backup appliance (2 servers)', 1, 200.00)) v(agr, ext, code, name, qty, price)
    ON v.agr = a.external_id;

SELECT billrecon.import_usage_csv('devices', $csv$account_id,account_name,kind,product,quantity,device_class,os_name,device_name,last_active_at
N1,Harbor Dental,device,,,desktop,Windows 11 Pro,HD-01,
N1,Harbor Dental,device,,,server,Windows Server 2022,HD-DC01,
N2,SMITH AND JONES LAW,device,,,laptop,macOS 14,SJ-01,
N3,Unknown Org,device,,,desktop,Windows 10,X-01,
$csv$) AS rows_loaded;

-- Clear unmapped first: accounts and line items.
SELECT integration, vendor_account_id, vendor_account_name, usage_records, has_suggestion
  FROM billrecon.unmapped_vendor_accounts ORDER BY 1, 2;
SELECT line_item_id, company, product, quantity FROM billrecon.unmapped_line_items ORDER BY line_item_id;

-- Client mapping by hand, then fixes.
SELECT billrecon.map_client('devices', 'N1', '250');
SELECT billrecon.map_client('devices', 'N2', '250');
SELECT billrecon.map_client('devices', 'N2', '251');      -- replaces
SELECT billrecon.map_client('devices', 'N9', '251');
SELECT billrecon.map_client('devices', 'N3', '999');
SELECT billrecon.map_client('nope', 'N3', '250');
SELECT va.external_id, pc.name, m.source FROM billrecon.client_mappings m
  JOIN billrecon.vendor_accounts va ON va.id = m.vendor_account_id
  JOIN billrecon.psa_companies pc ON pc.id = m.psa_company_id ORDER BY 1;
SELECT billrecon.unmap_client('devices', 'N2') AS unmapped, billrecon.unmap_client('devices', 'N2') AS again;
SELECT billrecon.map_client('devices', 'N2', '251');
SELECT billrecon.reject_client_match('devices', 'N3', '250', 'different company');
SELECT va.external_id, pc.external_id, r.reason FROM billrecon.client_match_rejections r
  JOIN billrecon.vendor_accounts va ON va.id = r.vendor_account_id
  JOIN billrecon.psa_companies pc ON pc.id = r.psa_company_id;

-- Service rules: validation.
SELECT billrecon.map_line_item('1', 'devices', 'licence', '{"skus": ["SPB"]}');
SELECT billrecon.map_line_item('1', 'devices', 'asset', '{"device_class": ["tablet"]}');
SELECT billrecon.map_line_item('1', 'devices', 'asset', '{"os_name": "(unclosed"}');
SELECT billrecon.map_line_item('1', 'devices', 'asset', '{"skus": ["SPB"]}');
SELECT billrecon.map_line_item('1', 'devices', 'asset', '{}', 0);
SELECT billrecon.map_line_item('1', 'devices', 'seats');
SELECT billrecon.map_line_item('1', 'devices', 'manual', '{"compare_with": "nope"}');
SELECT billrecon.map_line_item('404', 'devices', 'asset');
SELECT billrecon.map_line_item('1', 'cw', 'asset');

-- Service rules that work: product rule, line rule wins, multiplier, ignore, exclude, adjustments.
SELECT billrecon.map_product('ms-wks', 'devices', 'asset', '{"device_class": ["desktop", "laptop"]}') > 0 AS product_rule;
SELECT billrecon.map_line_item('6', 'devices', 'asset', '{"device_class": ["laptop"], "os_name": "^mac"}') > 0 AS line_rule;
SELECT billrecon.map_line_item('7', 'devices', 'asset', '{"device_class": ["server"]}', 2) > 0 AS bdr_rule;
SELECT billrecon.map_line_item('3', 'devices', 'custom_sql') > 0 AS custom;
SELECT billrecon.ignore_line_item('4', 'one-off onboarding fee');
SELECT billrecon.link_adjustment('5', '1');
SELECT billrecon.link_adjustment('6', '1');
SELECT billrecon.exclude_vendor_product('devices', 'Internal');
SELECT billrecon.exclude_vendor_product('devices', 'INTERNAL', 'our own machines');
SELECT product, reason FROM billrecon.excluded_vendor_products;
SELECT line_item_id, company, product, rule_scope, integration, mode, filters, multiplier, ignored, parent_line_item_id, state
  FROM billrecon.service_mapping ORDER BY line_item_id;
SELECT line_item_id, product FROM billrecon.unmapped_line_items ORDER BY 1;

-- Presets fill what is still unmapped, and never change existing rules.
SELECT billrecon.add_integration('ninja', 'ninjaone', 'https://app.ninjarmm.com', '{"client_id":"a","client_secret":"b"}') > 0 AS ninja;
SELECT billrecon.apply_presets('ninja') AS rules_created;
SELECT billrecon.apply_presets('ninja') AS again;
SELECT line_item_id, product, rule_scope, integration, mode, filters, state FROM billrecon.service_mapping ORDER BY 1;
SELECT r.psa_product, r.mode, r.source, p.description FROM billrecon.service_rules r LEFT JOIN billrecon.rule_presets p ON p.id = r.preset_id
 WHERE r.psa_product IS NOT NULL ORDER BY 1;

-- Deleting a line rule falls back to the product rule; unignoring reconciles again.
SELECT billrecon.delete_rule(rule_id) FROM billrecon.service_mapping WHERE line_item_id = '6';
SELECT billrecon.unignore_line_item('4') AS unignored;
SELECT line_item_id, rule_scope, mode, state FROM billrecon.service_mapping WHERE line_item_id IN ('4', '6') ORDER BY 1;

-- What is left, per integration, and which vendor products no rule counts.
SELECT billrecon.delete_rule(rule_id) AS bdr_rule_deleted FROM billrecon.service_mapping WHERE line_item_id = '7';
SELECT * FROM billrecon.uncaptured_vendor_products ORDER BY integration, kind, product;
SELECT * FROM billrecon.unmapped_counts ORDER BY integration;
SELECT billrecon.map_line_item('7', 'devices', 'asset', '{"device_class": ["server"]}', 2) > 0 AS bdr_rule;
SELECT count(*) AS uncaptured FROM billrecon.uncaptured_vendor_products;

-- Suggested matches: one to one, rejected pairs never again, confirmed from the recommended threshold.
SELECT billrecon.recommended_match_threshold();
SELECT billrecon.unmap_client('devices', 'N1') AS unmapped;
SELECT billrecon.suggest_client_matches() AS suggested;
SELECT integration, vendor_account_id, vendor_account_name, psa_company_id, psa_company_name, score >= 0.9 AS confident,
       evidence
  FROM billrecon.client_match_suggestions ORDER BY vendor_account_id;
SELECT billrecon.confirm_client_matches(1.5);
SELECT billrecon.confirm_client_matches() AS confirmed;
SELECT va.external_id, pc.external_id AS psa_company_id, m.source, m.score >= 0.9 AS confident
  FROM billrecon.client_mappings m
  JOIN billrecon.vendor_accounts va ON va.id = m.vendor_account_id
  JOIN billrecon.psa_companies pc ON pc.id = m.psa_company_id ORDER BY 1;
SELECT count(*) AS suggestions_left FROM billrecon.client_match_suggestions;

SELECT count(billrecon.drop_integration(name)::text) AS dropped FROM billrecon.integrations;
