-- Service mapping: which usage a PSA line item is compared with.

CREATE TABLE billrecon.rule_presets (
  id                  serial PRIMARY KEY,
  vendor_kind         text NOT NULL CHECK (vendor_kind IN ('msgraph', 'partnercenter', 'pax8', 'ninjaone', 'dattormm', 'csv')),
  psa_product_pattern text NOT NULL,
  mode                text NOT NULL CHECK (mode IN ('asset', 'licence', 'user', 'subscription')),
  filters             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(filters) = 'object'),
  multiplier          numeric NOT NULL DEFAULT 1 CHECK (multiplier > 0),
  description         text NOT NULL,
  builtin             boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE billrecon.rule_presets IS
  'Rule templates per vendor kind: a PSA product whose catalog code or name matches psa_product_pattern gets a product '
  'rule with this mode, filters and multiplier when billrecon.apply_presets() runs. Built-in rows ship with the '
  'extension; add your own rows (builtin = false), they are kept by pg_dump.';
COMMENT ON COLUMN billrecon.rule_presets.id IS 'Preset id';
COMMENT ON COLUMN billrecon.rule_presets.vendor_kind IS 'Kind of vendor integration the rules count';
COMMENT ON COLUMN billrecon.rule_presets.psa_product_pattern IS 'Case-insensitive POSIX regular expression matched against the PSA product code and name';
COMMENT ON COLUMN billrecon.rule_presets.mode IS 'Rule mode: asset, licence, user or subscription';
COMMENT ON COLUMN billrecon.rule_presets.filters IS 'Rule filters (docs/sql-reference.md, "Rule filters")';
COMMENT ON COLUMN billrecon.rule_presets.multiplier IS 'Units counted per billed unit';
COMMENT ON COLUMN billrecon.rule_presets.description IS 'What the preset is for';
COMMENT ON COLUMN billrecon.rule_presets.builtin IS 'Shipped with billrecon (not dumped; recreated by the extension)';

INSERT INTO billrecon.rule_presets (vendor_kind, psa_product_pattern, mode, filters, description, builtin) VALUES
  ('msgraph', 'business premium|\mm365[ _-]?bp\M|\mspb\M', 'licence', '{"skus": ["SPB"]}',
   'Microsoft 365 Business Premium licences', true),
  ('msgraph', 'business standard|\mm365[ _-]?bs\M', 'licence', '{"skus": ["O365_BUSINESS_PREMIUM"]}',
   'Microsoft 365 Business Standard licences (SKU part number O365_BUSINESS_PREMIUM)', true),
  ('msgraph', 'business basic|\mm365[ _-]?bb\M', 'licence', '{"skus": ["O365_BUSINESS_ESSENTIALS"]}',
   'Microsoft 365 Business Basic licences', true),
  ('msgraph', 'exchange online.*(plan 1|p1)|\mexo[ _-]?p1\M', 'licence', '{"skus": ["EXCHANGESTANDARD"]}',
   'Exchange Online (Plan 1) licences', true),
  ('msgraph', '(microsoft|office) 365 e3|\mm365[ _-]?e3\M', 'licence', '{"skus": ["SPE_E3"]}',
   'Microsoft 365 E3 licences', true),
  ('msgraph', '(microsoft|office) 365 e5|\mm365[ _-]?e5\M', 'licence', '{"skus": ["SPE_E5"]}',
   'Microsoft 365 E5 licences', true),
  ('ninjaone', 'workstation|desktop|laptop|\mwks\M', 'asset', '{"device_class": ["desktop", "laptop"]}',
   'Managed workstations: NinjaOne desktops and laptops', true),
  ('ninjaone', 'server|\msrv\M', 'asset', '{"device_class": ["server"]}',
   'Managed servers: NinjaOne servers', true),
  ('dattormm', 'workstation|desktop|laptop|\mwks\M', 'asset', '{"device_class": ["desktop", "laptop"]}',
   'Managed workstations: Datto RMM desktops and laptops', true),
  ('dattormm', 'server|\msrv\M', 'asset', '{"device_class": ["server"]}',
   'Managed servers: Datto RMM servers', true),
  ('pax8', 'business premium|\mm365[ _-]?bp\M', 'subscription', '{"products": ["business premium"]}',
   'Microsoft 365 Business Premium bought through Pax8', true),
  ('partnercenter', 'business premium|\mm365[ _-]?bp\M', 'subscription', '{"products": ["business premium"]}',
   'Microsoft 365 Business Premium bought through Partner Center', true);

CREATE TABLE billrecon.microsoft_skus (
  part_number  text PRIMARY KEY CHECK (part_number = upper(part_number)),
  display_name text NOT NULL,
  builtin      boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE billrecon.microsoft_skus IS
  'Display names of Microsoft licence SKUs by part number (Graph reports part numbers and ids only): reports and the '
  'unaccounted check compare licences with PSA lines and distributor subscriptions by these names. Built-in rows '
  'ship with billrecon; add your own (builtin = false), they are kept by pg_dump.';
COMMENT ON COLUMN billrecon.microsoft_skus.part_number IS 'SKU part number as Graph reports it (skuPartNumber), upper case';
COMMENT ON COLUMN billrecon.microsoft_skus.display_name IS 'The product''s name as Microsoft sells it';
COMMENT ON COLUMN billrecon.microsoft_skus.builtin IS 'Shipped with billrecon (not dumped)';
INSERT INTO billrecon.microsoft_skus (part_number, display_name, builtin) VALUES
  ('SPB', 'Microsoft 365 Business Premium', true),
  ('O365_BUSINESS_PREMIUM', 'Microsoft 365 Business Standard', true),
  ('O365_BUSINESS_ESSENTIALS', 'Microsoft 365 Business Basic', true),
  ('O365_BUSINESS', 'Microsoft 365 Apps for business', true),
  ('OFFICESUBSCRIPTION', 'Microsoft 365 Apps for enterprise', true),
  ('SPE_E3', 'Microsoft 365 E3', true),
  ('SPE_E5', 'Microsoft 365 E5', true),
  ('SPE_F1', 'Microsoft 365 F3', true),
  ('ENTERPRISEPACK', 'Office 365 E3', true),
  ('ENTERPRISEPREMIUM', 'Office 365 E5', true),
  ('STANDARDPACK', 'Office 365 E1', true),
  ('EXCHANGESTANDARD', 'Exchange Online (Plan 1)', true),
  ('EXCHANGEENTERPRISE', 'Exchange Online (Plan 2)', true),
  ('EXCHANGEARCHIVE_ADDON', 'Exchange Online Archiving', true),
  ('AAD_PREMIUM', 'Microsoft Entra ID P1', true),
  ('AAD_PREMIUM_P2', 'Microsoft Entra ID P2', true),
  ('EMS', 'Enterprise Mobility + Security E3', true),
  ('INTUNE_A', 'Microsoft Intune Plan 1', true),
  ('ATP_ENTERPRISE', 'Microsoft Defender for Office 365 (Plan 1)', true),
  ('VISIOCLIENT', 'Visio Plan 2', true),
  ('PROJECTPROFESSIONAL', 'Project Plan 3', true),
  ('POWER_BI_PRO', 'Power BI Pro', true),
  ('POWER_BI_STANDARD', 'Power BI (free)', true),
  ('FLOW_FREE', 'Microsoft Power Automate Free', true),
  ('TEAMS_EXPLORATORY', 'Microsoft Teams Exploratory', true),
  ('MCOEV', 'Microsoft Teams Phone Standard', true),
  ('MCOPSTN1', 'Microsoft Teams Domestic Calling Plan', true),
  ('WIN10_VDA_E3', 'Windows 10/11 Enterprise E3', true);

CREATE TABLE billrecon.service_rules (
  id             bigserial PRIMARY KEY,
  line_item_id   bigint REFERENCES billrecon.psa_line_items (id) ON DELETE CASCADE,
  psa_product    text,
  integration_id integer NOT NULL REFERENCES billrecon.integrations (id) ON DELETE CASCADE,
  mode           text NOT NULL CHECK (mode IN ('asset', 'licence', 'user', 'subscription', 'manual', 'custom_sql')),
  filters        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(filters) = 'object'),
  multiplier     numeric NOT NULL DEFAULT 1 CHECK (multiplier > 0),
  round_up       boolean NOT NULL DEFAULT true,
  source         text NOT NULL DEFAULT 'manual' CHECK (source IN ('manual', 'preset')),
  preset_id      integer REFERENCES billrecon.rule_presets (id) ON DELETE SET NULL,
  created_by     name NOT NULL DEFAULT current_user,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT service_rules_line_or_product CHECK ((line_item_id IS NULL) <> (psa_product IS NULL))
);
CREATE UNIQUE INDEX service_rules_one_per_line ON billrecon.service_rules (line_item_id) WHERE line_item_id IS NOT NULL;
CREATE UNIQUE INDEX service_rules_one_per_product ON billrecon.service_rules (lower(psa_product)) WHERE psa_product IS NOT NULL;
CREATE INDEX service_rules_integration ON billrecon.service_rules (integration_id);
COMMENT ON TABLE billrecon.service_rules IS
  'Service mapping: a rule ties one PSA line item (line_item_id) or every line of a PSA product (psa_product) to an '
  'integration and a counting mode. A line''s own rule wins over its product''s. Create with billrecon.map_line_item(), '
  'billrecon.map_product() or billrecon.apply_presets().';
COMMENT ON COLUMN billrecon.service_rules.id IS 'Rule id';
COMMENT ON COLUMN billrecon.service_rules.line_item_id IS 'The line item this rule is for (billrecon.psa_line_items.id); null for a product rule';
COMMENT ON COLUMN billrecon.service_rules.psa_product IS 'The PSA product (catalog code or name, case-insensitive) whose lines this rule is for; null for a line rule';
COMMENT ON COLUMN billrecon.service_rules.integration_id IS 'Integration whose usage is counted (for manual and custom_sql: the one shown beside the line)';
COMMENT ON COLUMN billrecon.service_rules.mode IS 'asset (devices), licence (licence seats), user (users), subscription (subscription quantities), manual (no automatic count), custom_sql (the PSA computes the quantity; shown, never reconciled)';
COMMENT ON COLUMN billrecon.service_rules.filters IS 'Which usage counts, by mode (docs/sql-reference.md, "Rule filters")';
COMMENT ON COLUMN billrecon.service_rules.multiplier IS 'Units counted per billed unit: a line "BDR (2 servers)" has multiplier 2';
COMMENT ON COLUMN billrecon.service_rules.round_up IS 'Round a fractional count up to whole units before proposing it to the PSA';
COMMENT ON COLUMN billrecon.service_rules.source IS 'manual or preset (made by billrecon.apply_presets)';
COMMENT ON COLUMN billrecon.service_rules.preset_id IS 'The preset that made the rule, if any';
COMMENT ON COLUMN billrecon.service_rules.created_by IS 'Role that created the rule';
COMMENT ON COLUMN billrecon.service_rules.created_at IS 'When it was created';
COMMENT ON COLUMN billrecon.service_rules.updated_at IS 'When it last changed';

CREATE TABLE billrecon.ignored_line_items (
  line_item_id bigint PRIMARY KEY REFERENCES billrecon.psa_line_items (id) ON DELETE CASCADE,
  reason       text,
  ignored_by   name NOT NULL DEFAULT current_user,
  ignored_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE billrecon.ignored_line_items IS 'Line items shown as ignored and never reconciled (one-off fees, bundles billed by hand)';
COMMENT ON COLUMN billrecon.ignored_line_items.line_item_id IS 'The line item (billrecon.psa_line_items.id)';
COMMENT ON COLUMN billrecon.ignored_line_items.reason IS 'Why, for the next reviewer';
COMMENT ON COLUMN billrecon.ignored_line_items.ignored_by IS 'Role that ignored it';
COMMENT ON COLUMN billrecon.ignored_line_items.ignored_at IS 'When';

CREATE TABLE billrecon.excluded_vendor_products (
  integration_id integer NOT NULL REFERENCES billrecon.integrations (id) ON DELETE CASCADE,
  product        text NOT NULL,
  reason         text,
  excluded_by    name NOT NULL DEFAULT current_user,
  excluded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX excluded_vendor_products_key ON billrecon.excluded_vendor_products (integration_id, lower(product));
COMMENT ON TABLE billrecon.excluded_vendor_products IS
  'Vendor products / SKUs whose usage is never counted nor reported as unaccounted (free, trial or internal SKUs)';
COMMENT ON COLUMN billrecon.excluded_vendor_products.integration_id IS 'The vendor integration';
COMMENT ON COLUMN billrecon.excluded_vendor_products.product IS 'Product or SKU (matched case-insensitively against usage product and product name)';
COMMENT ON COLUMN billrecon.excluded_vendor_products.reason IS 'Why, if given';
COMMENT ON COLUMN billrecon.excluded_vendor_products.excluded_by IS 'Role that excluded it';
COMMENT ON COLUMN billrecon.excluded_vendor_products.excluded_at IS 'When';

CREATE TABLE billrecon.line_item_parents (
  line_item_id        bigint PRIMARY KEY REFERENCES billrecon.psa_line_items (id) ON DELETE CASCADE,
  parent_line_item_id bigint NOT NULL REFERENCES billrecon.psa_line_items (id) ON DELETE CASCADE,
  linked_by           name NOT NULL DEFAULT current_user,
  linked_at           timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT line_item_parents_not_self CHECK (line_item_id <> parent_line_item_id)
);
COMMENT ON TABLE billrecon.line_item_parents IS
  'Adjustment / credit lines linked by hand to the line they adjust (the PSA''s own link, where it has one, is '
  'billrecon.psa_line_items.parent_line_item_id); the adjustment nets against its parent';
COMMENT ON COLUMN billrecon.line_item_parents.line_item_id IS 'The adjustment or credit line';
COMMENT ON COLUMN billrecon.line_item_parents.parent_line_item_id IS 'The line it adjusts';
COMMENT ON COLUMN billrecon.line_item_parents.linked_by IS 'Role that linked them';
COMMENT ON COLUMN billrecon.line_item_parents.linked_at IS 'When';
