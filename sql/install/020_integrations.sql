-- Integrations: configured connections to a PSA or a vendor API.

CREATE TABLE billrecon.integrations (
  id             serial PRIMARY KEY,
  name           text NOT NULL UNIQUE
                 CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
  kind           text NOT NULL
                 CHECK (kind IN ('connectwise', 'halopsa', 'autotask', 'msgraph', 'partnercenter',
                                 'pax8', 'ninjaone', 'dattormm', 'csv')),
  side           text NOT NULL GENERATED ALWAYS AS
                 (CASE WHEN kind IN ('connectwise', 'halopsa', 'autotask') THEN 'psa' ELSE 'vendor' END) STORED,
  base_url       text NOT NULL,
  options        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(options) = 'object'),
  enabled        boolean NOT NULL DEFAULT true,
  is_default_psa boolean NOT NULL DEFAULT false,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT integrations_default_psa_is_psa CHECK (NOT is_default_psa OR side = 'psa')
);
CREATE UNIQUE INDEX integrations_one_default_psa ON billrecon.integrations (is_default_psa) WHERE is_default_psa;

COMMENT ON TABLE billrecon.integrations IS
  'Configured connections to a PSA (ConnectWise, HaloPSA, Autotask) or a vendor API (Microsoft 365, Partner Center, '
  'Pax8, NinjaOne, Datto RMM, CSV). Create with billrecon.add_integration(); credentials live apart, in '
  'billrecon.integration_credentials, readable by billrecon_admin only.';
COMMENT ON COLUMN billrecon.integrations.id IS 'Internal id of the integration';
COMMENT ON COLUMN billrecon.integrations.name IS 'Unique name used in every function that takes an integration (letters, digits, _ . -)';
COMMENT ON COLUMN billrecon.integrations.kind IS 'Which API: connectwise, halopsa, autotask, msgraph, partnercenter, pax8, ninjaone, dattormm, csv';
COMMENT ON COLUMN billrecon.integrations.side IS 'psa for PSA kinds (billing side), vendor for usage sources; derived from kind';
COMMENT ON COLUMN billrecon.integrations.base_url IS 'API root of the service, e.g. https://api-na.myconnectwise.net/v4_6_release/apis/3.0; https only unless billrecon.allow_http is on';
COMMENT ON COLUMN billrecon.integrations.options IS 'Per-integration options (page_size, timeout_ms, max_retries, requests_per_second, token_url, ...; see docs/connectors/)';
COMMENT ON COLUMN billrecon.integrations.enabled IS 'Disabled integrations are skipped by billrecon.sync(NULL) and scheduled syncs; their data stays';
COMMENT ON COLUMN billrecon.integrations.is_default_psa IS 'The PSA whose agreements are reconciled; at most one integration has it';
COMMENT ON COLUMN billrecon.integrations.created_at IS 'When the integration was added';
COMMENT ON COLUMN billrecon.integrations.updated_at IS 'When the integration''s settings or credentials last changed';

CREATE TABLE billrecon.integration_credentials (
  integration_id integer PRIMARY KEY REFERENCES billrecon.integrations (id) ON DELETE CASCADE,
  credentials    jsonb NOT NULL CHECK (jsonb_typeof(credentials) = 'object'),
  updated_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE billrecon.integration_credentials IS
  'Secrets of each integration (API keys, client secrets). Readable by billrecon_admin only; sync functions read '
  'them with the extension owner''s rights and never print them.';
COMMENT ON COLUMN billrecon.integration_credentials.integration_id IS 'The integration these credentials belong to';
COMMENT ON COLUMN billrecon.integration_credentials.credentials IS 'Credential keys per kind as docs/connectors/<kind>.md lists them';
COMMENT ON COLUMN billrecon.integration_credentials.updated_at IS 'When the credentials were last set';
