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

-- Credentials are stored either in clear (credentials) or, when
-- billrecon.credential_key_file names a key, encrypted (encrypted_credentials:
-- AES-256-GCM, see docs/security.md); never both. The encryption columns
-- came in 0.2.0 and stay last: ALTER TABLE ADD COLUMN puts them there in a
-- database updated from 0.1.0 (docs/upgrading.md).
CREATE TABLE billrecon.integration_credentials (
  integration_id        integer PRIMARY KEY REFERENCES billrecon.integrations (id) ON DELETE CASCADE,
  credentials           jsonb CHECK (jsonb_typeof(credentials) = 'object'),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  encrypted_credentials bytea
                        CHECK (octet_length(encrypted_credentials) >= 40
                               AND substring(encrypted_credentials FROM 1 FOR 4) = '\x42524331'::bytea),
  credential_key_id     text GENERATED ALWAYS AS
                        (encode(substring(encrypted_credentials FROM 5 FOR 8), 'hex')) STORED,
  credential_keys       text[],
  CONSTRAINT integration_credentials_clear_or_encrypted
    CHECK ((credentials IS NULL) <> (encrypted_credentials IS NULL)),
  CONSTRAINT integration_credentials_keys_of_encrypted
    CHECK (credential_keys IS NULL OR encrypted_credentials IS NOT NULL)
);
COMMENT ON TABLE billrecon.integration_credentials IS
  'Secrets of each integration (API keys, client secrets), in clear or encrypted with the key of '
  'billrecon.credential_key_file. Readable by billrecon_admin only; sync functions read them with the extension '
  'owner''s rights, decrypt them in memory and never print them.';
COMMENT ON COLUMN billrecon.integration_credentials.integration_id IS 'The integration these credentials belong to';
COMMENT ON COLUMN billrecon.integration_credentials.credentials IS
  'Credential keys per kind as docs/connectors/<kind>.md lists them, in clear; NULL when encrypted. Whatever is '
  'written here is encrypted at once (trigger) while billrecon.credential_key_file names a key.';
COMMENT ON COLUMN billrecon.integration_credentials.encrypted_credentials IS
  'The credentials encrypted (AES-256-GCM envelope: "BRC1", key id, nonce, ciphertext, tag; bound to the '
  'integration id); NULL when stored in clear. Only billrecon''s C code can decrypt it, with the key file.';
COMMENT ON COLUMN billrecon.integration_credentials.credential_key_id IS
  'Id of the key the credentials are encrypted with (16 hex digits, from the envelope; a fingerprint, not the '
  'key); NULL when in clear. billrecon.credential_key_status() gives the configured key''s id.';
COMMENT ON COLUMN billrecon.integration_credentials.credential_keys IS
  'Names (never values) of the encrypted credentials, for the audit log and billrecon.credential_encryption; '
  'NULL when in clear';
COMMENT ON COLUMN billrecon.integration_credentials.updated_at IS 'When the credentials were last set';
