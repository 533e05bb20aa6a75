-- billrecon install script, assembled by the Makefile from sql/install/*.sql
-- in name order. Do not edit the assembled file; edit the fragments.
\echo Use "CREATE EXTENSION billrecon" to load this file. \quit

COMMENT ON SCHEMA billrecon IS
  'billrecon: MSP billing reconciliation. PSA agreements and line items, vendor accounts and usage, '
  'the mapping between them, reconciliation runs and their change cards. See docs/sql-reference.md.';

-- Roles. They are cluster-wide, so they may already exist from another
-- database's installation; create only what is missing. Hierarchy:
-- billrecon_admin > billrecon_operator > billrecon_reader.
DO $roles$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'billrecon_reader') THEN
    CREATE ROLE billrecon_reader NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'billrecon_operator') THEN
    CREATE ROLE billrecon_operator NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'billrecon_admin') THEN
    CREATE ROLE billrecon_admin NOLOGIN;
  END IF;
  IF NOT pg_catalog.pg_has_role('billrecon_operator', 'billrecon_reader', 'MEMBER') THEN
    GRANT billrecon_reader TO billrecon_operator;
  END IF;
  IF NOT pg_catalog.pg_has_role('billrecon_admin', 'billrecon_operator', 'MEMBER') THEN
    GRANT billrecon_operator TO billrecon_admin;
  END IF;
END
$roles$;

COMMENT ON ROLE billrecon_reader IS 'billrecon: reads report views and synced data; never credentials';
COMMENT ON ROLE billrecon_operator IS 'billrecon: syncs, maps, reconciles, approves and pushes changes; never reads credentials';
COMMENT ON ROLE billrecon_admin IS 'billrecon: manages integrations and their credentials; everything an operator can do';

REVOKE ALL ON SCHEMA billrecon FROM PUBLIC;
GRANT USAGE ON SCHEMA billrecon TO billrecon_reader;

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

-- One row per sync attempt of one integration.

CREATE TABLE billrecon.sync_runs (
  id             bigserial PRIMARY KEY,
  integration_id integer NOT NULL REFERENCES billrecon.integrations (id) ON DELETE CASCADE,
  requested_mode text NOT NULL CHECK (requested_mode IN ('full', 'quick')),
  mode           text CHECK (mode IN ('full', 'quick')),
  status         text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
  started_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at    timestamptz,
  changes_since  timestamptz,
  pages          bigint NOT NULL DEFAULT 0 CHECK (pages >= 0),
  records        bigint NOT NULL DEFAULT 0 CHECK (records >= 0),
  requests       bigint NOT NULL DEFAULT 0 CHECK (requests >= 0),
  retries        bigint NOT NULL DEFAULT 0 CHECK (retries >= 0),
  bytes          bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
  warnings       integer NOT NULL DEFAULT 0 CHECK (warnings >= 0),
  error          text,
  error_detail   text,
  error_sqlstate text,
  note           text,
  started_by     name NOT NULL DEFAULT current_user,
  CONSTRAINT sync_runs_finished CHECK ((status = 'running') = (finished_at IS NULL)),
  CONSTRAINT sync_runs_error_when_failed CHECK (status <> 'failed' OR error IS NOT NULL)
);
CREATE INDEX sync_runs_integration_started ON billrecon.sync_runs (integration_id, started_at DESC);

COMMENT ON TABLE billrecon.sync_runs IS
  'History of syncs: one row per attempt of one integration, with what was fetched and how it ended. '
  'A failed or cancelled run left the integration''s previous data untouched.';
COMMENT ON COLUMN billrecon.sync_runs.id IS 'Run id';
COMMENT ON COLUMN billrecon.sync_runs.integration_id IS 'The integration synced';
COMMENT ON COLUMN billrecon.sync_runs.requested_mode IS 'Mode asked for: full or quick';
COMMENT ON COLUMN billrecon.sync_runs.mode IS 'Mode really used: quick falls back to full when the API has no modified-since filter or there was no earlier successful sync';
COMMENT ON COLUMN billrecon.sync_runs.status IS 'running, succeeded, failed or cancelled';
COMMENT ON COLUMN billrecon.sync_runs.started_at IS 'When the run started (clock time)';
COMMENT ON COLUMN billrecon.sync_runs.finished_at IS 'When the run ended; null while running';
COMMENT ON COLUMN billrecon.sync_runs.changes_since IS 'Quick mode: changes were fetched from this time on (previous successful start minus a safety overlap)';
COMMENT ON COLUMN billrecon.sync_runs.pages IS 'Pages of results fetched';
COMMENT ON COLUMN billrecon.sync_runs.records IS 'Records received and staged';
COMMENT ON COLUMN billrecon.sync_runs.requests IS 'HTTP requests sent, retries and token requests included';
COMMENT ON COLUMN billrecon.sync_runs.retries IS 'Requests repeated after 429, 5xx, timeouts or resets';
COMMENT ON COLUMN billrecon.sync_runs.bytes IS 'Response bytes received';
COMMENT ON COLUMN billrecon.sync_runs.warnings IS 'Warnings recorded in billrecon.sync_run_messages; a run with warnings makes the integration yellow';
COMMENT ON COLUMN billrecon.sync_runs.error IS 'Why the run failed (never contains credentials); null on success';
COMMENT ON COLUMN billrecon.sync_runs.error_detail IS 'Facts behind the error: endpoint, HTTP status, record id, attempts';
COMMENT ON COLUMN billrecon.sync_runs.error_sqlstate IS 'SQLSTATE class of the failure (08001 unreachable, 08006 timeout, 28000 auth, 22000/22P02 bad data, ...; docs/errors.md)';
COMMENT ON COLUMN billrecon.sync_runs.note IS 'Remarks on the run, e.g. why quick mode ran as full';
COMMENT ON COLUMN billrecon.sync_runs.started_by IS 'Role that started the run';

CREATE TABLE billrecon.sync_run_messages (
  run_id  bigint NOT NULL REFERENCES billrecon.sync_runs (id) ON DELETE CASCADE,
  seq     integer NOT NULL,
  level   text NOT NULL CHECK (level IN ('warning', 'error')),
  message text NOT NULL,
  PRIMARY KEY (run_id, seq)
);
COMMENT ON TABLE billrecon.sync_run_messages IS 'Warnings and errors of sync runs, in the order they happened';
COMMENT ON COLUMN billrecon.sync_run_messages.run_id IS 'The sync run';
COMMENT ON COLUMN billrecon.sync_run_messages.seq IS 'Order within the run, from 1';
COMMENT ON COLUMN billrecon.sync_run_messages.level IS 'warning (the run still succeeded) or error';
COMMENT ON COLUMN billrecon.sync_run_messages.message IS 'What happened (never contains credentials)';

-- PSA side: companies (clients), agreements (contracts), line items.
-- Rows are never deleted by a sync: a full sync marks rows the PSA no longer
-- returns with removed_at, so mappings, notes and history keep their target.

CREATE TABLE billrecon.psa_companies (
  id                bigserial PRIMARY KEY,
  integration_id    integer NOT NULL REFERENCES billrecon.integrations (id) ON DELETE CASCADE,
  external_id       text NOT NULL,
  name              text NOT NULL,
  identifier        text,
  status            text,
  website           text,
  domains           text[] NOT NULL DEFAULT '{}',
  deleted           boolean NOT NULL DEFAULT false,
  source_updated_at timestamptz,
  first_seen_at     timestamptz NOT NULL,
  last_seen_at      timestamptz NOT NULL,
  removed_at        timestamptz,
  last_sync_run_id  bigint REFERENCES billrecon.sync_runs (id) ON DELETE SET NULL,
  UNIQUE (integration_id, external_id)
);
COMMENT ON TABLE billrecon.psa_companies IS 'Clients as the PSA knows them (ConnectWise companies, HaloPSA clients, Autotask companies)';
COMMENT ON COLUMN billrecon.psa_companies.id IS 'Internal id';
COMMENT ON COLUMN billrecon.psa_companies.integration_id IS 'PSA integration the company came from';
COMMENT ON COLUMN billrecon.psa_companies.external_id IS 'The PSA''s own id of the company, as text';
COMMENT ON COLUMN billrecon.psa_companies.name IS 'Company name in the PSA';
COMMENT ON COLUMN billrecon.psa_companies.identifier IS 'Short code of the company in the PSA (ConnectWise identifier), if any';
COMMENT ON COLUMN billrecon.psa_companies.status IS 'Status as the PSA names it (e.g. Active)';
COMMENT ON COLUMN billrecon.psa_companies.website IS 'Web site recorded in the PSA (evidence for client matching)';
COMMENT ON COLUMN billrecon.psa_companies.domains IS 'E-mail and web domains known for the company (evidence for client matching)';
COMMENT ON COLUMN billrecon.psa_companies.deleted IS 'The PSA flags the company as deleted';
COMMENT ON COLUMN billrecon.psa_companies.source_updated_at IS 'Last modification time reported by the PSA';
COMMENT ON COLUMN billrecon.psa_companies.first_seen_at IS 'First sync that returned the company';
COMMENT ON COLUMN billrecon.psa_companies.last_seen_at IS 'Last sync that returned the company';
COMMENT ON COLUMN billrecon.psa_companies.removed_at IS 'Set by a full sync when the PSA stopped returning the company; null for current rows';
COMMENT ON COLUMN billrecon.psa_companies.last_sync_run_id IS 'Sync run that last wrote the row';

CREATE TABLE billrecon.psa_agreements (
  id                  bigserial PRIMARY KEY,
  integration_id      integer NOT NULL REFERENCES billrecon.integrations (id) ON DELETE CASCADE,
  external_id         text NOT NULL,
  company_id          bigint NOT NULL REFERENCES billrecon.psa_companies (id) ON DELETE CASCADE,
  name                text NOT NULL,
  type                text,
  billing_cycle       text NOT NULL DEFAULT 'unknown'
                      CHECK (billing_cycle IN ('monthly', 'quarterly', 'annual', 'other', 'unknown')),
  billing_cycle_label text,
  start_date          date,
  end_date            date,
  prorate             boolean,
  status              text,
  cancelled           boolean NOT NULL DEFAULT false,
  cancelled_date      date,
  source_updated_at   timestamptz,
  first_seen_at       timestamptz NOT NULL,
  last_seen_at        timestamptz NOT NULL,
  removed_at          timestamptz,
  last_sync_run_id    bigint REFERENCES billrecon.sync_runs (id) ON DELETE SET NULL,
  UNIQUE (integration_id, external_id)
);
CREATE INDEX psa_agreements_company ON billrecon.psa_agreements (company_id);
COMMENT ON TABLE billrecon.psa_agreements IS 'Agreements (contracts) under which the PSA bills recurring line items';
COMMENT ON COLUMN billrecon.psa_agreements.id IS 'Internal id';
COMMENT ON COLUMN billrecon.psa_agreements.integration_id IS 'PSA integration the agreement came from';
COMMENT ON COLUMN billrecon.psa_agreements.external_id IS 'The PSA''s own id of the agreement, as text';
COMMENT ON COLUMN billrecon.psa_agreements.company_id IS 'Client the agreement bills (billrecon.psa_companies.id)';
COMMENT ON COLUMN billrecon.psa_agreements.name IS 'Agreement name in the PSA';
COMMENT ON COLUMN billrecon.psa_agreements.type IS 'Agreement type as the PSA names it';
COMMENT ON COLUMN billrecon.psa_agreements.billing_cycle IS 'monthly, quarterly, annual, other (a cycle billrecon does not normalize) or unknown (not reported)';
COMMENT ON COLUMN billrecon.psa_agreements.billing_cycle_label IS 'The PSA''s own name of the billing cycle (tenant configuration, e.g. "Monthly")';
COMMENT ON COLUMN billrecon.psa_agreements.start_date IS 'First day the agreement bills';
COMMENT ON COLUMN billrecon.psa_agreements.end_date IS 'Last day the agreement bills; null when open-ended';
COMMENT ON COLUMN billrecon.psa_agreements.prorate IS 'Whether the PSA prorates mid-cycle changes on this agreement; null when not reported';
COMMENT ON COLUMN billrecon.psa_agreements.status IS 'Status as the PSA names it (Active, Cancelled, Expired, Inactive)';
COMMENT ON COLUMN billrecon.psa_agreements.cancelled IS 'The PSA flags the agreement as cancelled';
COMMENT ON COLUMN billrecon.psa_agreements.cancelled_date IS 'When it was cancelled';
COMMENT ON COLUMN billrecon.psa_agreements.source_updated_at IS 'Last modification time reported by the PSA';
COMMENT ON COLUMN billrecon.psa_agreements.first_seen_at IS 'First sync that returned the agreement';
COMMENT ON COLUMN billrecon.psa_agreements.last_seen_at IS 'Last sync that returned the agreement';
COMMENT ON COLUMN billrecon.psa_agreements.removed_at IS 'Set by a full sync when the PSA stopped returning the agreement; null for current rows';
COMMENT ON COLUMN billrecon.psa_agreements.last_sync_run_id IS 'Sync run that last wrote the row';

CREATE TABLE billrecon.psa_line_items (
  id                  bigserial PRIMARY KEY,
  integration_id      integer NOT NULL REFERENCES billrecon.integrations (id) ON DELETE CASCADE,
  external_id         text NOT NULL,
  agreement_id        bigint NOT NULL REFERENCES billrecon.psa_agreements (id) ON DELETE CASCADE,
  company_id          bigint NOT NULL REFERENCES billrecon.psa_companies (id) ON DELETE CASCADE,
  product_code        text,
  product_name        text,
  description         text,
  quantity            numeric NOT NULL,
  unit_price          numeric,
  unit_cost           numeric,
  billing_type        text,
  quantity_source     text,
  effective_date      date,
  cancel_date         date,
  parent_external_id  text,
  parent_line_item_id bigint REFERENCES billrecon.psa_line_items (id) ON DELETE SET NULL,
  source_updated_at   timestamptz,
  first_seen_at       timestamptz NOT NULL,
  last_seen_at        timestamptz NOT NULL,
  removed_at          timestamptz,
  last_sync_run_id    bigint REFERENCES billrecon.sync_runs (id) ON DELETE SET NULL,
  UNIQUE (integration_id, external_id)
);
CREATE INDEX psa_line_items_agreement ON billrecon.psa_line_items (agreement_id);
CREATE INDEX psa_line_items_company ON billrecon.psa_line_items (company_id);
CREATE INDEX psa_line_items_parent ON billrecon.psa_line_items (parent_line_item_id) WHERE parent_line_item_id IS NOT NULL;
COMMENT ON TABLE billrecon.psa_line_items IS
  'Recurring line items of agreements (ConnectWise additions, HaloPSA recurring invoice lines, Autotask contract services): what the client is billed for';
COMMENT ON COLUMN billrecon.psa_line_items.id IS 'Internal id';
COMMENT ON COLUMN billrecon.psa_line_items.integration_id IS 'PSA integration the line came from';
COMMENT ON COLUMN billrecon.psa_line_items.external_id IS 'The PSA''s own id of the line, as text';
COMMENT ON COLUMN billrecon.psa_line_items.agreement_id IS 'Agreement the line belongs to (billrecon.psa_agreements.id)';
COMMENT ON COLUMN billrecon.psa_line_items.company_id IS 'Client billed (billrecon.psa_companies.id), the agreement''s company';
COMMENT ON COLUMN billrecon.psa_line_items.product_code IS 'Catalog code of the product (ConnectWise product identifier, Halo item code, Autotask service id)';
COMMENT ON COLUMN billrecon.psa_line_items.product_name IS 'Product name from the PSA catalog, or the line''s description when the catalog has none';
COMMENT ON COLUMN billrecon.psa_line_items.description IS 'The line''s own description';
COMMENT ON COLUMN billrecon.psa_line_items.quantity IS 'Billed quantity (exact decimal as the PSA stores it)';
COMMENT ON COLUMN billrecon.psa_line_items.unit_price IS 'Price per unit billed to the client; null when the PSA has none (flagged, then estimated)';
COMMENT ON COLUMN billrecon.psa_line_items.unit_cost IS 'Cost per unit recorded in the PSA, if any';
COMMENT ON COLUMN billrecon.psa_line_items.billing_type IS 'Billing type as the PSA names it (Billable, DoNotBill, NoCharge, ...)';
COMMENT ON COLUMN billrecon.psa_line_items.quantity_source IS 'How the PSA derives the quantity, when it says (fixed, users, assets, ...)';
COMMENT ON COLUMN billrecon.psa_line_items.effective_date IS 'First day the line bills';
COMMENT ON COLUMN billrecon.psa_line_items.cancel_date IS 'Last day the line bills; null when open-ended';
COMMENT ON COLUMN billrecon.psa_line_items.parent_external_id IS 'For adjustment / credit lines: the PSA id of the line they adjust';
COMMENT ON COLUMN billrecon.psa_line_items.parent_line_item_id IS 'For adjustment / credit lines: the line they adjust (resolved from parent_external_id)';
COMMENT ON COLUMN billrecon.psa_line_items.source_updated_at IS 'Last modification time reported by the PSA';
COMMENT ON COLUMN billrecon.psa_line_items.first_seen_at IS 'First sync that returned the line';
COMMENT ON COLUMN billrecon.psa_line_items.last_seen_at IS 'Last sync that returned the line';
COMMENT ON COLUMN billrecon.psa_line_items.removed_at IS 'Set by a full sync when the PSA stopped returning the line; null for current rows';
COMMENT ON COLUMN billrecon.psa_line_items.last_sync_run_id IS 'Sync run that last wrote the row';

-- Vendor side: accounts (the vendor's notion of a client) and usage records.

CREATE TABLE billrecon.vendor_accounts (
  id                bigserial PRIMARY KEY,
  integration_id    integer NOT NULL REFERENCES billrecon.integrations (id) ON DELETE CASCADE,
  external_id       text NOT NULL,
  name              text NOT NULL,
  domains           text[] NOT NULL DEFAULT '{}',
  status            text,
  source_updated_at timestamptz,
  first_seen_at     timestamptz NOT NULL,
  last_seen_at      timestamptz NOT NULL,
  removed_at        timestamptz,
  last_sync_run_id  bigint REFERENCES billrecon.sync_runs (id) ON DELETE SET NULL,
  UNIQUE (integration_id, external_id)
);
COMMENT ON TABLE billrecon.vendor_accounts IS
  'The vendor''s notion of a client: Microsoft customer tenant, Pax8 company, NinjaOne organization, Datto site';
COMMENT ON COLUMN billrecon.vendor_accounts.id IS 'Internal id';
COMMENT ON COLUMN billrecon.vendor_accounts.integration_id IS 'Vendor integration the account came from';
COMMENT ON COLUMN billrecon.vendor_accounts.external_id IS 'The vendor''s own id of the account, as text';
COMMENT ON COLUMN billrecon.vendor_accounts.name IS 'Account name at the vendor';
COMMENT ON COLUMN billrecon.vendor_accounts.domains IS 'Domains the vendor reports for the account (evidence for client matching)';
COMMENT ON COLUMN billrecon.vendor_accounts.status IS 'Status as the vendor names it, if any';
COMMENT ON COLUMN billrecon.vendor_accounts.source_updated_at IS 'Last modification time reported by the vendor';
COMMENT ON COLUMN billrecon.vendor_accounts.first_seen_at IS 'First sync that returned the account';
COMMENT ON COLUMN billrecon.vendor_accounts.last_seen_at IS 'Last sync that returned the account';
COMMENT ON COLUMN billrecon.vendor_accounts.removed_at IS 'Set by a full sync when the vendor stopped returning the account; null for current rows';
COMMENT ON COLUMN billrecon.vendor_accounts.last_sync_run_id IS 'Sync run that last wrote the row';

CREATE TABLE billrecon.usage_records (
  id                  bigserial PRIMARY KEY,
  integration_id      integer NOT NULL REFERENCES billrecon.integrations (id) ON DELETE CASCADE,
  external_id         text NOT NULL,
  account_id          bigint NOT NULL REFERENCES billrecon.vendor_accounts (id) ON DELETE CASCADE,
  kind                text NOT NULL CHECK (kind IN ('device', 'licence', 'user', 'subscription')),
  product             text,
  product_name        text,
  quantity            numeric NOT NULL,
  device_class        text CHECK (device_class IN ('desktop', 'laptop', 'server', 'other')),
  os_name             text,
  device_name         text,
  serial_number       text,
  licensed            boolean,
  enabled             boolean,
  online              boolean,
  last_active_at      timestamptz,
  unit_cost           numeric,
  purchased_quantity  numeric,
  status              text,
  billing_term        text,
  term_end_date       date,
  user_name           text,
  source_updated_at   timestamptz,
  first_seen_at       timestamptz NOT NULL,
  last_seen_at        timestamptz NOT NULL,
  removed_at          timestamptz,
  last_sync_run_id    bigint REFERENCES billrecon.sync_runs (id) ON DELETE SET NULL,
  UNIQUE (integration_id, external_id)
);
CREATE INDEX usage_records_account ON billrecon.usage_records (account_id);
CREATE INDEX usage_records_integration_kind ON billrecon.usage_records (integration_id, kind) WHERE removed_at IS NULL;
COMMENT ON TABLE billrecon.usage_records IS
  'What clients really use ("seats"): devices, licences, users and subscriptions reported by vendors';
COMMENT ON COLUMN billrecon.usage_records.id IS 'Internal id';
COMMENT ON COLUMN billrecon.usage_records.integration_id IS 'Vendor integration the record came from';
COMMENT ON COLUMN billrecon.usage_records.external_id IS 'The vendor''s own id of the device, licence, user or subscription, as text';
COMMENT ON COLUMN billrecon.usage_records.account_id IS 'Vendor account the seat belongs to (billrecon.vendor_accounts.id)';
COMMENT ON COLUMN billrecon.usage_records.kind IS 'device, licence, user or subscription';
COMMENT ON COLUMN billrecon.usage_records.product IS 'SKU, product id or, for devices, the vendor''s device class (e.g. NinjaOne nodeClass)';
COMMENT ON COLUMN billrecon.usage_records.product_name IS 'Human name of the product or SKU, when the vendor gives one';
COMMENT ON COLUMN billrecon.usage_records.quantity IS 'Units this record stands for: 1 for a device or user, the seat count for a licence or subscription';
COMMENT ON COLUMN billrecon.usage_records.device_class IS 'Devices: desktop, laptop, server or other (a vendor that cannot tell desktop from laptop reports desktop)';
COMMENT ON COLUMN billrecon.usage_records.os_name IS 'Devices: operating system name';
COMMENT ON COLUMN billrecon.usage_records.device_name IS 'Devices: host or display name';
COMMENT ON COLUMN billrecon.usage_records.serial_number IS 'Devices: serial number (finds one device reported twice)';
COMMENT ON COLUMN billrecon.usage_records.licensed IS 'Users: holds at least one licence';
COMMENT ON COLUMN billrecon.usage_records.enabled IS 'Users: account enabled; devices: approved / managed';
COMMENT ON COLUMN billrecon.usage_records.online IS 'Devices: online at the time of the sync';
COMMENT ON COLUMN billrecon.usage_records.last_active_at IS 'Last activity the vendor saw (device contact, user sign-in)';
COMMENT ON COLUMN billrecon.usage_records.unit_cost IS 'Vendor cost per unit, where the vendor reports it (margin reports)';
COMMENT ON COLUMN billrecon.usage_records.purchased_quantity IS 'Licences: units purchased (prepaid and enabled); quantity holds the units assigned';
COMMENT ON COLUMN billrecon.usage_records.status IS 'Status as the vendor names it (Active, Suspended, Enabled, ...)';
COMMENT ON COLUMN billrecon.usage_records.billing_term IS 'Subscriptions: billing term as the vendor names it (Monthly, Annual, ...)';
COMMENT ON COLUMN billrecon.usage_records.term_end_date IS 'Subscriptions: end of the current commitment or term';
COMMENT ON COLUMN billrecon.usage_records.user_name IS 'Users: sign-in name (e.g. the Microsoft 365 user principal name)';
COMMENT ON COLUMN billrecon.usage_records.source_updated_at IS 'Last modification time reported by the vendor';
COMMENT ON COLUMN billrecon.usage_records.first_seen_at IS 'First sync that returned the record';
COMMENT ON COLUMN billrecon.usage_records.last_seen_at IS 'Last sync that returned the record';
COMMENT ON COLUMN billrecon.usage_records.removed_at IS 'Set by a full sync when the vendor stopped returning the record; null for current rows';
COMMENT ON COLUMN billrecon.usage_records.last_sync_run_id IS 'Sync run that last wrote the row';

-- Staging: a sync writes every page here first, keyed by its run id, and
-- billrecon._apply_staged() moves the whole run into the live tables in one
-- statement per table. Unlogged: a crash simply loses unfinished runs (they
-- are marked failed). Not dumped, not granted to anyone.

CREATE UNLOGGED TABLE billrecon._stage_companies (
  run_id bigint NOT NULL, seq bigserial, external_id text NOT NULL, name text NOT NULL,
  identifier text, status text, website text, domains text[], deleted boolean NOT NULL,
  source_updated_at timestamptz
);
CREATE INDEX ON billrecon._stage_companies (run_id, external_id);
COMMENT ON TABLE billrecon._stage_companies IS 'Internal: PSA companies of running syncs, by run id (billrecon.psa_companies columns)';

CREATE UNLOGGED TABLE billrecon._stage_agreements (
  run_id bigint NOT NULL, seq bigserial, external_id text NOT NULL, company_external_id text NOT NULL,
  name text NOT NULL, type text, billing_cycle text NOT NULL, billing_cycle_label text, start_date date,
  end_date date, prorate boolean, status text, cancelled boolean NOT NULL, cancelled_date date,
  source_updated_at timestamptz
);
CREATE INDEX ON billrecon._stage_agreements (run_id, external_id);
COMMENT ON TABLE billrecon._stage_agreements IS 'Internal: PSA agreements of running syncs, by run id (billrecon.psa_agreements columns)';

CREATE UNLOGGED TABLE billrecon._stage_line_items (
  run_id bigint NOT NULL, seq bigserial, external_id text NOT NULL, agreement_external_id text NOT NULL,
  company_external_id text NOT NULL, product_code text, product_name text, description text,
  quantity numeric NOT NULL, unit_price numeric, unit_cost numeric, billing_type text, quantity_source text,
  effective_date date, cancel_date date, parent_external_id text, source_updated_at timestamptz
);
CREATE INDEX ON billrecon._stage_line_items (run_id, external_id);
COMMENT ON TABLE billrecon._stage_line_items IS 'Internal: PSA line items of running syncs, by run id (billrecon.psa_line_items columns)';

CREATE UNLOGGED TABLE billrecon._stage_vendor_accounts (
  run_id bigint NOT NULL, seq bigserial, external_id text NOT NULL, name text NOT NULL, domains text[],
  status text, source_updated_at timestamptz
);
CREATE INDEX ON billrecon._stage_vendor_accounts (run_id, external_id);
COMMENT ON TABLE billrecon._stage_vendor_accounts IS 'Internal: vendor accounts of running syncs, by run id (billrecon.vendor_accounts columns)';

CREATE UNLOGGED TABLE billrecon._stage_usage_records (
  run_id bigint NOT NULL, seq bigserial, external_id text NOT NULL, account_external_id text NOT NULL,
  kind text NOT NULL, product text, product_name text, quantity numeric NOT NULL, device_class text,
  os_name text, device_name text, serial_number text, licensed boolean, enabled boolean, online boolean,
  last_active_at timestamptz, unit_cost numeric, purchased_quantity numeric, status text, billing_term text,
  term_end_date date, user_name text, source_updated_at timestamptz
);
CREATE INDEX ON billrecon._stage_usage_records (run_id, external_id);
COMMENT ON TABLE billrecon._stage_usage_records IS 'Internal: usage records of running syncs, by run id (billrecon.usage_records columns)';

-- Moves one run's staged rows into the live tables: upsert by (integration,
-- external id); in full mode, rows the source no longer returned get
-- removed_at. Children whose parent is unknown are skipped and counted (the
-- run then ends with warnings). Returns the skipped counts.
CREATE FUNCTION billrecon._apply_staged(p_run_id bigint, p_full boolean,
  OUT skipped_agreements bigint, OUT skipped_line_items bigint, OUT skipped_usage_records bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $apply$
DECLARE
  v_integration integer;
  v_now timestamptz := pg_catalog.clock_timestamp();
BEGIN
  SELECT r.integration_id INTO STRICT v_integration FROM billrecon.sync_runs r WHERE r.id = p_run_id;

  -- Companies.
  INSERT INTO billrecon.psa_companies AS t
    (integration_id, external_id, name, identifier, status, website, domains, deleted, source_updated_at,
     first_seen_at, last_seen_at, removed_at, last_sync_run_id)
  SELECT DISTINCT ON (s.external_id) v_integration, s.external_id, s.name, s.identifier, s.status, s.website,
         coalesce(s.domains, '{}'), s.deleted, s.source_updated_at, v_now, v_now, NULL, p_run_id
    FROM billrecon._stage_companies s
   WHERE s.run_id = p_run_id
   ORDER BY s.external_id, s.seq DESC
  ON CONFLICT (integration_id, external_id) DO UPDATE
     SET name = excluded.name, identifier = excluded.identifier, status = excluded.status,
         website = excluded.website, domains = excluded.domains, deleted = excluded.deleted,
         source_updated_at = excluded.source_updated_at, last_seen_at = excluded.last_seen_at,
         removed_at = NULL, last_sync_run_id = excluded.last_sync_run_id;

  -- Agreements (their company must be known, from this run or an earlier one).
  INSERT INTO billrecon.psa_agreements AS t
    (integration_id, external_id, company_id, name, type, billing_cycle, billing_cycle_label, start_date,
     end_date, prorate, status, cancelled, cancelled_date, source_updated_at, first_seen_at, last_seen_at,
     removed_at, last_sync_run_id)
  SELECT DISTINCT ON (s.external_id) v_integration, s.external_id, c.id, s.name, s.type, s.billing_cycle,
         s.billing_cycle_label, s.start_date, s.end_date, s.prorate, s.status, s.cancelled, s.cancelled_date,
         s.source_updated_at, v_now, v_now, NULL, p_run_id
    FROM billrecon._stage_agreements s
    JOIN billrecon.psa_companies c
      ON c.integration_id OPERATOR(pg_catalog.=) v_integration AND c.external_id OPERATOR(pg_catalog.=) s.company_external_id
   WHERE s.run_id = p_run_id
   ORDER BY s.external_id, s.seq DESC
  ON CONFLICT (integration_id, external_id) DO UPDATE
     SET company_id = excluded.company_id, name = excluded.name, type = excluded.type,
         billing_cycle = excluded.billing_cycle, billing_cycle_label = excluded.billing_cycle_label,
         start_date = excluded.start_date, end_date = excluded.end_date, prorate = excluded.prorate,
         status = excluded.status, cancelled = excluded.cancelled, cancelled_date = excluded.cancelled_date,
         source_updated_at = excluded.source_updated_at, last_seen_at = excluded.last_seen_at,
         removed_at = NULL, last_sync_run_id = excluded.last_sync_run_id;
  SELECT pg_catalog.count(DISTINCT s.external_id) INTO skipped_agreements
    FROM billrecon._stage_agreements s
   WHERE s.run_id = p_run_id
     AND NOT EXISTS (SELECT 1 FROM billrecon.psa_companies c
                      WHERE c.integration_id OPERATOR(pg_catalog.=) v_integration
                        AND c.external_id OPERATOR(pg_catalog.=) s.company_external_id);

  -- Line items (their agreement must be known).
  INSERT INTO billrecon.psa_line_items AS t
    (integration_id, external_id, agreement_id, company_id, product_code, product_name, description, quantity,
     unit_price, unit_cost, billing_type, quantity_source, effective_date, cancel_date, parent_external_id,
     source_updated_at, first_seen_at, last_seen_at, removed_at, last_sync_run_id)
  SELECT DISTINCT ON (s.external_id) v_integration, s.external_id, a.id, a.company_id, s.product_code,
         s.product_name, s.description, s.quantity, s.unit_price, s.unit_cost, s.billing_type, s.quantity_source,
         s.effective_date, s.cancel_date, s.parent_external_id, s.source_updated_at, v_now, v_now, NULL, p_run_id
    FROM billrecon._stage_line_items s
    JOIN billrecon.psa_agreements a
      ON a.integration_id OPERATOR(pg_catalog.=) v_integration AND a.external_id OPERATOR(pg_catalog.=) s.agreement_external_id
   WHERE s.run_id = p_run_id
   ORDER BY s.external_id, s.seq DESC
  ON CONFLICT (integration_id, external_id) DO UPDATE
     SET agreement_id = excluded.agreement_id, company_id = excluded.company_id,
         product_code = excluded.product_code, product_name = excluded.product_name,
         description = excluded.description, quantity = excluded.quantity, unit_price = excluded.unit_price,
         unit_cost = excluded.unit_cost, billing_type = excluded.billing_type,
         quantity_source = excluded.quantity_source, effective_date = excluded.effective_date,
         cancel_date = excluded.cancel_date, parent_external_id = excluded.parent_external_id,
         source_updated_at = excluded.source_updated_at, last_seen_at = excluded.last_seen_at,
         removed_at = NULL, last_sync_run_id = excluded.last_sync_run_id;
  SELECT pg_catalog.count(DISTINCT s.external_id) INTO skipped_line_items
    FROM billrecon._stage_line_items s
   WHERE s.run_id = p_run_id
     AND NOT EXISTS (SELECT 1 FROM billrecon.psa_agreements a
                      WHERE a.integration_id OPERATOR(pg_catalog.=) v_integration
                        AND a.external_id OPERATOR(pg_catalog.=) s.agreement_external_id);
  -- Adjustment lines: resolve the parent link.
  UPDATE billrecon.psa_line_items l
     SET parent_line_item_id = p.id
    FROM billrecon.psa_line_items p
   WHERE l.integration_id OPERATOR(pg_catalog.=) v_integration
     AND l.last_sync_run_id OPERATOR(pg_catalog.=) p_run_id
     AND l.parent_external_id IS NOT NULL
     AND p.integration_id OPERATOR(pg_catalog.=) v_integration
     AND p.external_id OPERATOR(pg_catalog.=) l.parent_external_id
     AND l.parent_line_item_id IS DISTINCT FROM p.id;

  -- Vendor accounts.
  INSERT INTO billrecon.vendor_accounts AS t
    (integration_id, external_id, name, domains, status, source_updated_at, first_seen_at, last_seen_at,
     removed_at, last_sync_run_id)
  SELECT DISTINCT ON (s.external_id) v_integration, s.external_id, s.name, coalesce(s.domains, '{}'), s.status,
         s.source_updated_at, v_now, v_now, NULL, p_run_id
    FROM billrecon._stage_vendor_accounts s
   WHERE s.run_id = p_run_id
   ORDER BY s.external_id, s.seq DESC
  ON CONFLICT (integration_id, external_id) DO UPDATE
     SET name = excluded.name, domains = excluded.domains, status = excluded.status,
         source_updated_at = excluded.source_updated_at, last_seen_at = excluded.last_seen_at,
         removed_at = NULL, last_sync_run_id = excluded.last_sync_run_id;

  -- Usage records (their account must be known).
  INSERT INTO billrecon.usage_records AS t
    (integration_id, external_id, account_id, kind, product, product_name, quantity, device_class, os_name,
     device_name, serial_number, licensed, enabled, online, last_active_at, unit_cost, purchased_quantity, status,
     billing_term, term_end_date, user_name, source_updated_at, first_seen_at, last_seen_at, removed_at,
     last_sync_run_id)
  SELECT DISTINCT ON (s.external_id) v_integration, s.external_id, va.id, s.kind, s.product, s.product_name,
         s.quantity, s.device_class, s.os_name, s.device_name, s.serial_number, s.licensed, s.enabled, s.online,
         s.last_active_at, s.unit_cost, s.purchased_quantity, s.status, s.billing_term, s.term_end_date,
         s.user_name, s.source_updated_at, v_now, v_now, NULL, p_run_id
    FROM billrecon._stage_usage_records s
    JOIN billrecon.vendor_accounts va
      ON va.integration_id OPERATOR(pg_catalog.=) v_integration AND va.external_id OPERATOR(pg_catalog.=) s.account_external_id
   WHERE s.run_id = p_run_id
   ORDER BY s.external_id, s.seq DESC
  ON CONFLICT (integration_id, external_id) DO UPDATE
     SET account_id = excluded.account_id, kind = excluded.kind, product = excluded.product,
         product_name = excluded.product_name, quantity = excluded.quantity, device_class = excluded.device_class,
         os_name = excluded.os_name, device_name = excluded.device_name, serial_number = excluded.serial_number,
         licensed = excluded.licensed, enabled = excluded.enabled, online = excluded.online,
         last_active_at = excluded.last_active_at, unit_cost = excluded.unit_cost,
         purchased_quantity = excluded.purchased_quantity, status = excluded.status,
         billing_term = excluded.billing_term, term_end_date = excluded.term_end_date, user_name = excluded.user_name,
         source_updated_at = excluded.source_updated_at, last_seen_at = excluded.last_seen_at,
         removed_at = NULL, last_sync_run_id = excluded.last_sync_run_id;
  SELECT pg_catalog.count(DISTINCT s.external_id) INTO skipped_usage_records
    FROM billrecon._stage_usage_records s
   WHERE s.run_id = p_run_id
     AND NOT EXISTS (SELECT 1 FROM billrecon.vendor_accounts va
                      WHERE va.integration_id OPERATOR(pg_catalog.=) v_integration
                        AND va.external_id OPERATOR(pg_catalog.=) s.account_external_id);

  -- Full sync: whatever the source no longer returned is marked removed.
  IF p_full THEN
    UPDATE billrecon.psa_companies t SET removed_at = v_now, last_sync_run_id = p_run_id
     WHERE t.integration_id OPERATOR(pg_catalog.=) v_integration AND t.removed_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM billrecon._stage_companies s
                        WHERE s.run_id OPERATOR(pg_catalog.=) p_run_id AND s.external_id OPERATOR(pg_catalog.=) t.external_id);
    UPDATE billrecon.psa_agreements t SET removed_at = v_now, last_sync_run_id = p_run_id
     WHERE t.integration_id OPERATOR(pg_catalog.=) v_integration AND t.removed_at IS NULL
       AND t.last_sync_run_id IS DISTINCT FROM p_run_id;
    UPDATE billrecon.psa_line_items t SET removed_at = v_now, last_sync_run_id = p_run_id
     WHERE t.integration_id OPERATOR(pg_catalog.=) v_integration AND t.removed_at IS NULL
       AND t.last_sync_run_id IS DISTINCT FROM p_run_id;
    UPDATE billrecon.vendor_accounts t SET removed_at = v_now, last_sync_run_id = p_run_id
     WHERE t.integration_id OPERATOR(pg_catalog.=) v_integration AND t.removed_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM billrecon._stage_vendor_accounts s
                        WHERE s.run_id OPERATOR(pg_catalog.=) p_run_id AND s.external_id OPERATOR(pg_catalog.=) t.external_id);
    UPDATE billrecon.usage_records t SET removed_at = v_now, last_sync_run_id = p_run_id
     WHERE t.integration_id OPERATOR(pg_catalog.=) v_integration AND t.removed_at IS NULL
       AND t.last_sync_run_id IS DISTINCT FROM p_run_id;
  END IF;

  DELETE FROM billrecon._stage_companies WHERE run_id OPERATOR(pg_catalog.=) p_run_id;
  DELETE FROM billrecon._stage_agreements WHERE run_id OPERATOR(pg_catalog.=) p_run_id;
  DELETE FROM billrecon._stage_line_items WHERE run_id OPERATOR(pg_catalog.=) p_run_id;
  DELETE FROM billrecon._stage_vendor_accounts WHERE run_id OPERATOR(pg_catalog.=) p_run_id;
  DELETE FROM billrecon._stage_usage_records WHERE run_id OPERATOR(pg_catalog.=) p_run_id;
END
$apply$;
COMMENT ON FUNCTION billrecon._apply_staged(bigint, boolean) IS
  'Internal: moves the staged rows of one sync run into the live tables (upsert; full mode marks vanished rows removed)';

-- Managing integrations.

CREATE FUNCTION billrecon._validate_integration(kind text, base_url text, credentials jsonb, options jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'billrecon_validate_integration'
LANGUAGE C STABLE;
COMMENT ON FUNCTION billrecon._validate_integration(text, text, jsonb, jsonb) IS
  'Internal: raises a descriptive error when kind, base URL, credentials or options are unusable for that kind';

CREATE FUNCTION billrecon.add_integration(name text, kind text, base_url text, credentials jsonb,
                                          options jsonb DEFAULT '{}', is_default_psa boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $add$
DECLARE
  v_id integer;
  v_other text;
BEGIN
  IF add_integration.name IS NULL OR add_integration.name !~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$' THEN
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = format('invalid integration name "%s"', add_integration.name),
      DETAIL = 'Names are 1 to 63 characters: letters, digits, "_", "." and "-", starting with a letter or digit.',
      HINT = 'Use a short name such as ''connectwise'' or ''ninja-eu''; functions take it to name the integration.';
  END IF;
  PERFORM billrecon._validate_integration(add_integration.kind, add_integration.base_url,
                                          coalesce(add_integration.credentials, 'null'::jsonb),
                                          coalesce(add_integration.options, '{}'::jsonb));
  IF EXISTS (SELECT 1 FROM billrecon.integrations i WHERE i.name = add_integration.name) THEN
    RAISE EXCEPTION USING ERRCODE = '23505',
      MESSAGE = format('integration "%s" already exists', add_integration.name),
      DETAIL = 'Integration names are unique.',
      HINT = 'Choose another name, or change the existing one with billrecon.update_integration().';
  END IF;
  IF coalesce(add_integration.is_default_psa, false) THEN
    IF add_integration.kind NOT IN ('connectwise', 'halopsa', 'autotask') THEN
      RAISE EXCEPTION USING ERRCODE = '22023',
        MESSAGE = format('a %s integration cannot be the default PSA', add_integration.kind),
        DETAIL = 'Only connectwise, halopsa and autotask integrations are PSAs.',
        HINT = 'Pass is_default_psa => false for vendor integrations.';
    END IF;
    SELECT i.name INTO v_other FROM billrecon.integrations i WHERE i.is_default_psa;
    IF FOUND THEN
      RAISE EXCEPTION USING ERRCODE = '23505',
        MESSAGE = 'there is already a default PSA',
        DETAIL = format('Integration "%s" is the default PSA; there can be only one.', v_other),
        HINT = format('Add this integration with is_default_psa => false, then run SELECT billrecon.set_default_psa(%L).', add_integration.name);
    END IF;
  END IF;

  INSERT INTO billrecon.integrations (name, kind, base_url, options, is_default_psa)
  VALUES (add_integration.name, add_integration.kind, pg_catalog.rtrim(add_integration.base_url, '/'),
          coalesce(add_integration.options, '{}'::jsonb), coalesce(add_integration.is_default_psa, false))
  RETURNING id INTO v_id;
  INSERT INTO billrecon.integration_credentials (integration_id, credentials)
  VALUES (v_id, coalesce(add_integration.credentials, '{}'::jsonb));
  RETURN v_id;
END
$add$;
COMMENT ON FUNCTION billrecon.add_integration(text, text, text, jsonb, jsonb, boolean) IS
  'Adds an integration and returns its id. kind: connectwise or ninjaone in this version (the other kinds of '
  'docs/connectors/ raise feature_not_supported); base_url: the API root; credentials: the keys the kind needs '
  '(docs/connectors/<kind>.md); options: per-integration settings. Everything is validated first; nothing is stored '
  'on error. Admin only.';

CREATE FUNCTION billrecon._integration_id(integration text)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $id$
DECLARE
  v_id integer;
BEGIN
  SELECT i.id INTO v_id FROM billrecon.integrations i WHERE i.name = integration;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704',
      MESSAGE = format('integration "%s" does not exist', integration),
      DETAIL = format('No row of billrecon.integrations has name "%s".', integration),
      HINT = 'SELECT name FROM billrecon.integrations lists the integrations; billrecon.add_integration() adds one.';
  END IF;
  RETURN v_id;
END
$id$;
COMMENT ON FUNCTION billrecon._integration_id(text) IS 'Internal: the id of the integration with that name, or an error';

CREATE FUNCTION billrecon.update_integration(integration text, base_url text DEFAULT NULL,
                                             credentials jsonb DEFAULT NULL, options jsonb DEFAULT NULL,
                                             enabled boolean DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $upd$
DECLARE
  v_id integer := billrecon._integration_id(integration);
  v_row billrecon.integrations;
  v_creds jsonb;
BEGIN
  SELECT * INTO v_row FROM billrecon.integrations i WHERE i.id = v_id FOR UPDATE;
  SELECT c.credentials INTO v_creds FROM billrecon.integration_credentials c WHERE c.integration_id = v_id;
  -- Re-validate only when something validated changes: enabling or disabling
  -- an integration must work even if, say, billrecon.allow_http changed since.
  IF update_integration.base_url IS NOT NULL OR update_integration.credentials IS NOT NULL
     OR update_integration.options IS NOT NULL THEN
    PERFORM billrecon._validate_integration(v_row.kind, coalesce(update_integration.base_url, v_row.base_url),
                                            coalesce(update_integration.credentials, v_creds, '{}'::jsonb),
                                            coalesce(update_integration.options, v_row.options));
  END IF;
  UPDATE billrecon.integrations i
     SET base_url = pg_catalog.rtrim(coalesce(update_integration.base_url, i.base_url), '/'),
         options = coalesce(update_integration.options, i.options),
         enabled = coalesce(update_integration.enabled, i.enabled),
         updated_at = now()
   WHERE i.id = v_id;
  IF update_integration.credentials IS NOT NULL THEN
    UPDATE billrecon.integration_credentials c
       SET credentials = update_integration.credentials, updated_at = now()
     WHERE c.integration_id = v_id;
  END IF;
END
$upd$;
COMMENT ON FUNCTION billrecon.update_integration(text, text, jsonb, jsonb, boolean) IS
  'Changes an integration''s base URL, credentials (replaced whole), options (replaced whole) or enabled flag; '
  'null leaves a value as it is. Validated like add_integration. Admin only.';

CREATE FUNCTION billrecon.set_default_psa(integration text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $def$
DECLARE
  v_id integer := billrecon._integration_id(integration);
  v_kind text;
BEGIN
  SELECT i.kind INTO v_kind FROM billrecon.integrations i WHERE i.id = v_id;
  IF v_kind NOT IN ('connectwise', 'halopsa', 'autotask') THEN
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = format('integration "%s" is not a PSA', integration),
      DETAIL = format('Its kind is %s; only connectwise, halopsa and autotask integrations are PSAs.', v_kind),
      HINT = 'Name a PSA integration.';
  END IF;
  UPDATE billrecon.integrations i SET is_default_psa = false, updated_at = now() WHERE i.is_default_psa AND i.id <> v_id;
  UPDATE billrecon.integrations i SET is_default_psa = true, updated_at = now() WHERE i.id = v_id AND NOT i.is_default_psa;
END
$def$;
COMMENT ON FUNCTION billrecon.set_default_psa(text) IS 'Makes this PSA integration the default PSA (the one reconciled); admin only';

CREATE FUNCTION billrecon.drop_integration(integration text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $drop$
BEGIN
  DELETE FROM billrecon.integrations i WHERE i.id = billrecon._integration_id(integration);
END
$drop$;
COMMENT ON FUNCTION billrecon.drop_integration(text) IS
  'Removes an integration with its credentials, sync history and synced data; admin only. To keep the data, '
  'disable it instead: billrecon.update_integration(name, enabled => false).';

-- Syncing.

-- The options a sync uses: the stored ones, plus what is derived from other
-- integrations' data. An msgraph integration without customer_tenants reads
-- the customers Partner Center integrations have synced (their ids are the
-- customers' tenant ids).
CREATE FUNCTION billrecon._effective_options(integration_id integer)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $opt$
  SELECT CASE
           WHEN i.kind = 'msgraph' AND NOT i.options ? 'customer_tenants' THEN
             i.options || jsonb_strip_nulls(jsonb_build_object('customer_tenants',
               (SELECT jsonb_agg(t.tenant ORDER BY t.tenant)
                  FROM (SELECT DISTINCT lower(va.external_id) AS tenant
                          FROM billrecon.vendor_accounts va
                          JOIN billrecon.integrations pc ON pc.id = va.integration_id
                         WHERE pc.kind = 'partnercenter' AND pc.enabled AND va.removed_at IS NULL) t)))
           ELSE i.options
         END
    FROM billrecon.integrations i
   WHERE i.id = _effective_options.integration_id
$opt$;
COMMENT ON FUNCTION billrecon._effective_options(integer) IS
  'Internal: an integration''s options as a sync uses them (Microsoft 365 tenants from Partner Center when not listed)';

CREATE FUNCTION billrecon.sync(integration text DEFAULT NULL, mode text DEFAULT 'quick')
RETURNS TABLE (integration text, status text, records bigint, error text, run_id bigint, mode text,
               pages bigint, requests bigint, retries bigint, warnings integer)
AS 'MODULE_PATHNAME', 'billrecon_sync'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION billrecon.sync(text, text) IS
  'Syncs one integration (by name), or every enabled one when integration is null, in this session, and returns '
  'one row per sync run. mode: quick (only what changed since the last successful sync, where the API can filter; '
  'full otherwise) or full (everything; records no longer returned are marked removed). A failing sync does not '
  'raise: its row says failed with the reason, and the integration''s previous data stays exactly as it was.';

CREATE FUNCTION billrecon.version()
RETURNS text
AS 'MODULE_PATHNAME', 'billrecon_version'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION billrecon.version() IS 'Version of the loaded billrecon library';

CREATE FUNCTION billrecon._acting_role()
RETURNS name
AS 'MODULE_PATHNAME', 'billrecon_acting_role'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION billrecon._acting_role() IS
  'Internal: the role the caller acts as (SET ROLE included), also inside SECURITY DEFINER functions: the name '
  'written to audit and run rows';

-- Health without the row counts: cheap enough for every reconcile run.
CREATE VIEW billrecon._integration_health AS
WITH last_run AS (
  SELECT DISTINCT ON (r.integration_id) r.*
    FROM billrecon.sync_runs r
   WHERE r.status <> 'running'
     -- a sync refused because another one of the integration was running
     -- (55P03) never started: it says nothing about the integration's health
     AND r.error_sqlstate IS DISTINCT FROM '55P03'
   ORDER BY r.integration_id, r.finished_at DESC, r.id DESC
), last_success AS (
  SELECT r.integration_id, max(r.finished_at) AS finished_at
    FROM billrecon.sync_runs r
   WHERE r.status = 'succeeded'
   GROUP BY r.integration_id
), settings AS (
  SELECT coalesce(nullif(current_setting('billrecon.stale_after', true), ''), '24h')::interval AS stale_after
)
SELECT i.id AS integration_id,
       i.name AS integration,
       i.kind,
       CASE
         WHEN lr.id IS NULL THEN 'yellow'
         WHEN lr.status = 'failed' THEN 'red'
         WHEN ls.finished_at IS NULL THEN 'yellow'
         WHEN ls.finished_at < now() - s.stale_after THEN 'yellow'
         WHEN lr.status = 'cancelled' OR lr.warnings > 0 THEN 'yellow'
         ELSE 'green'
       END AS status,
       ls.finished_at AS last_success_at,
       CASE WHEN lr.status = 'failed' THEN lr.error || coalesce(': ' || lr.error_detail, '') END AS last_error,
       CASE
         WHEN lr.id IS NULL THEN 'never synced'
         WHEN lr.status = 'failed' THEN 'last sync failed'
         WHEN ls.finished_at IS NULL THEN 'no successful sync yet'
         WHEN ls.finished_at < now() - s.stale_after THEN
           format('stale: last success is older than billrecon.stale_after (%s)', s.stale_after)
         WHEN lr.status = 'cancelled' THEN 'last sync was cancelled'
         WHEN lr.warnings > 0 THEN format('last sync succeeded with %s warning(s)', lr.warnings)
         ELSE 'ok'
       END AS status_reason,
       lr.finished_at AS last_sync_at,
       lr.status AS last_sync_status,
       lr.mode AS last_sync_mode,
       lr.id AS last_run_id,
       i.side,
       i.enabled,
       i.is_default_psa
  FROM billrecon.integrations i
  CROSS JOIN settings s
  LEFT JOIN last_run lr ON lr.integration_id = i.id
  LEFT JOIN last_success ls ON ls.integration_id = i.id;
COMMENT ON VIEW billrecon._integration_health IS
  'Internal: billrecon.integration_status without its row counts (what reconcile records about its inputs)';
COMMENT ON COLUMN billrecon._integration_health.integration_id IS 'billrecon.integrations.id';
COMMENT ON COLUMN billrecon._integration_health.integration IS 'Integration name';
COMMENT ON COLUMN billrecon._integration_health.kind IS 'Integration kind';
COMMENT ON COLUMN billrecon._integration_health.status IS 'green, yellow or red (see billrecon.integration_status)';
COMMENT ON COLUMN billrecon._integration_health.last_success_at IS 'When the last successful sync finished';
COMMENT ON COLUMN billrecon._integration_health.last_error IS 'Error of the last sync when it failed';
COMMENT ON COLUMN billrecon._integration_health.status_reason IS 'Why the status is what it is';
COMMENT ON COLUMN billrecon._integration_health.last_sync_at IS 'When the last finished sync ended';
COMMENT ON COLUMN billrecon._integration_health.last_sync_status IS 'Outcome of the last finished sync';
COMMENT ON COLUMN billrecon._integration_health.last_sync_mode IS 'Mode of the last finished sync';
COMMENT ON COLUMN billrecon._integration_health.last_run_id IS 'billrecon.sync_runs.id of the last finished sync';
COMMENT ON COLUMN billrecon._integration_health.side IS 'psa or vendor';
COMMENT ON COLUMN billrecon._integration_health.enabled IS 'Whether the integration is enabled';
COMMENT ON COLUMN billrecon._integration_health.is_default_psa IS 'The PSA that is reconciled';

CREATE VIEW billrecon.integration_status AS
SELECT h.integration, h.kind, h.status, h.last_success_at, h.last_error, h.status_reason, h.last_sync_at,
       h.last_sync_status, h.last_sync_mode, h.last_run_id, h.side, h.enabled, h.is_default_psa,
       CASE WHEN h.side = 'psa' THEN
         (SELECT count(*) FROM billrecon.psa_companies c WHERE c.integration_id = h.integration_id AND c.removed_at IS NULL)
       ELSE
         (SELECT count(*) FROM billrecon.vendor_accounts a WHERE a.integration_id = h.integration_id AND a.removed_at IS NULL)
       END AS accounts,
       CASE WHEN h.side = 'psa' THEN
         (SELECT count(*) FROM billrecon.psa_line_items l WHERE l.integration_id = h.integration_id AND l.removed_at IS NULL)
       ELSE
         (SELECT count(*) FROM billrecon.usage_records u WHERE u.integration_id = h.integration_id AND u.removed_at IS NULL)
       END AS items
  FROM billrecon._integration_health h;
COMMENT ON VIEW billrecon.integration_status IS
  'Health of every integration: green = last sync succeeded and is newer than billrecon.stale_after; yellow = never '
  'synced, stale, cancelled or succeeded with warnings; red = last sync failed. Check it before reconciling: a red or '
  'stale integration makes later numbers misleading.';
COMMENT ON COLUMN billrecon.integration_status.integration IS 'Integration name';
COMMENT ON COLUMN billrecon.integration_status.kind IS 'Integration kind (connectwise, ninjaone, ...)';
COMMENT ON COLUMN billrecon.integration_status.status IS 'green, yellow or red (see the view comment)';
COMMENT ON COLUMN billrecon.integration_status.last_success_at IS 'When the last successful sync finished';
COMMENT ON COLUMN billrecon.integration_status.last_error IS 'Error of the last sync when it failed; null otherwise';
COMMENT ON COLUMN billrecon.integration_status.status_reason IS 'Why the status is what it is, in words';
COMMENT ON COLUMN billrecon.integration_status.last_sync_at IS 'When the last finished sync (of any outcome) ended';
COMMENT ON COLUMN billrecon.integration_status.last_sync_status IS 'succeeded, failed or cancelled: outcome of the last finished sync';
COMMENT ON COLUMN billrecon.integration_status.last_sync_mode IS 'full or quick: mode really used by the last finished sync';
COMMENT ON COLUMN billrecon.integration_status.last_run_id IS 'billrecon.sync_runs.id of the last finished sync';
COMMENT ON COLUMN billrecon.integration_status.side IS 'psa or vendor';
COMMENT ON COLUMN billrecon.integration_status.enabled IS 'Whether billrecon.sync(NULL) includes the integration';
COMMENT ON COLUMN billrecon.integration_status.is_default_psa IS 'The PSA that is reconciled';
COMMENT ON COLUMN billrecon.integration_status.accounts IS 'Current companies (PSA) or vendor accounts (vendor) stored';
COMMENT ON COLUMN billrecon.integration_status.items IS 'Current line items (PSA) or usage records (vendor) stored';

CREATE VIEW billrecon.sync_history AS
SELECT r.id AS run_id, i.name AS integration, i.kind, r.requested_mode, r.mode, r.status, r.started_at,
       r.finished_at, r.finished_at - r.started_at AS duration, r.pages, r.records, r.requests, r.retries,
       r.warnings, r.error, r.error_detail, r.note, r.started_by
  FROM billrecon.sync_runs r
  JOIN billrecon.integrations i ON i.id = r.integration_id;
COMMENT ON VIEW billrecon.sync_history IS 'Every sync run with its integration''s name, newest last by run_id';
COMMENT ON COLUMN billrecon.sync_history.run_id IS 'billrecon.sync_runs.id';
COMMENT ON COLUMN billrecon.sync_history.integration IS 'Integration name';
COMMENT ON COLUMN billrecon.sync_history.kind IS 'Integration kind';
COMMENT ON COLUMN billrecon.sync_history.requested_mode IS 'Mode asked for';
COMMENT ON COLUMN billrecon.sync_history.mode IS 'Mode really used';
COMMENT ON COLUMN billrecon.sync_history.status IS 'running, succeeded, failed or cancelled';
COMMENT ON COLUMN billrecon.sync_history.started_at IS 'Start time';
COMMENT ON COLUMN billrecon.sync_history.finished_at IS 'End time; null while running';
COMMENT ON COLUMN billrecon.sync_history.duration IS 'How long it took';
COMMENT ON COLUMN billrecon.sync_history.pages IS 'Pages fetched';
COMMENT ON COLUMN billrecon.sync_history.records IS 'Records staged';
COMMENT ON COLUMN billrecon.sync_history.requests IS 'HTTP requests sent';
COMMENT ON COLUMN billrecon.sync_history.retries IS 'Requests repeated';
COMMENT ON COLUMN billrecon.sync_history.warnings IS 'Warnings (billrecon.sync_run_messages)';
COMMENT ON COLUMN billrecon.sync_history.error IS 'Why it failed';
COMMENT ON COLUMN billrecon.sync_history.error_detail IS 'Facts behind the error';
COMMENT ON COLUMN billrecon.sync_history.note IS 'Remarks, e.g. why quick ran as full';
COMMENT ON COLUMN billrecon.sync_history.started_by IS 'Role that started it';

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

-- Writing a quantity back to the PSA (the building block of the change workflow).

CREATE FUNCTION billrecon._write_back_quantity_c(integration text, line_item_id text, quantity text,
                                                 effective_date text, check_first boolean)
RETURNS TABLE (quantity_before text, quantity_after text, reference text, note text, requests bigint)
AS 'MODULE_PATHNAME', 'billrecon_write_back_quantity'
LANGUAGE C STRICT VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION billrecon._write_back_quantity_c(text, text, text, text, boolean) IS
  'Internal: the C side of billrecon._write_back_quantity()';

CREATE FUNCTION billrecon._write_back_quantity(integration text, line_item_id text, quantity numeric,
                                               effective_date date DEFAULT NULL, check_first boolean DEFAULT true)
RETURNS TABLE (quantity_before numeric, quantity_after numeric, reference text, note text, requests bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $wb$
BEGIN
  IF quantity IS NULL OR quantity < 0 THEN
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = format('invalid quantity %s', coalesce(quantity::text, 'NULL')),
      DETAIL = 'A line item''s quantity is a number of zero or more.',
      HINT = 'Pass the quantity the line should bill from the effective date on.';
  END IF;
  -- Quantities cross the C boundary as exact decimal text.
  RETURN QUERY SELECT c.quantity_before::numeric, c.quantity_after::numeric, c.reference, c.note, c.requests
    FROM billrecon._write_back_quantity_c(
      integration, line_item_id, quantity::text,
      to_char(coalesce(effective_date, (date_trunc('month', current_date) + interval '1 month')::date), 'YYYY-MM-DD'),
      coalesce(check_first, true)) AS c;
END
$wb$;
COMMENT ON FUNCTION billrecon._write_back_quantity(text, text, numeric, date, boolean) IS
  'Internal (admin): writes one line item''s quantity to the PSA the way its API does it (ConnectWise: cancel the '
  'addition the day before and add a dated one; HaloPSA: post the recurring invoice; Autotask: a contract service '
  'adjustment). effective_date defaults to the first day of next month. With check_first it reads the PSA''s '
  'quantity and sends nothing when it already matches. billrecon.push_changes() uses it for approved cards.';

-- Client mapping: (integration, vendor account) -> PSA company.

CREATE TABLE billrecon.client_mappings (
  vendor_account_id bigint PRIMARY KEY REFERENCES billrecon.vendor_accounts (id) ON DELETE CASCADE,
  psa_company_id    bigint NOT NULL REFERENCES billrecon.psa_companies (id) ON DELETE CASCADE,
  source            text NOT NULL CHECK (source IN ('manual', 'suggestion')),
  score             numeric(4, 3) CHECK (score BETWEEN 0 AND 1),
  evidence          text,
  mapped_by         name NOT NULL DEFAULT current_user,
  mapped_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX client_mappings_company ON billrecon.client_mappings (psa_company_id);
COMMENT ON TABLE billrecon.client_mappings IS
  'Which PSA company each vendor account belongs to. Usage of an unmapped account cannot be reconciled (it shows as '
  'unmapped). Set by billrecon.map_client() or billrecon.confirm_client_matches().';
COMMENT ON COLUMN billrecon.client_mappings.vendor_account_id IS 'The vendor account (billrecon.vendor_accounts.id); one mapping each';
COMMENT ON COLUMN billrecon.client_mappings.psa_company_id IS 'The PSA company it belongs to (billrecon.psa_companies.id)';
COMMENT ON COLUMN billrecon.client_mappings.source IS 'manual (billrecon.map_client) or suggestion (confirmed from billrecon.client_match_suggestions)';
COMMENT ON COLUMN billrecon.client_mappings.score IS 'Score of the confirmed suggestion; null for manual mappings';
COMMENT ON COLUMN billrecon.client_mappings.evidence IS 'Why the suggestion was made; null for manual mappings';
COMMENT ON COLUMN billrecon.client_mappings.mapped_by IS 'Role that mapped or confirmed it';
COMMENT ON COLUMN billrecon.client_mappings.mapped_at IS 'When';

CREATE TABLE billrecon.client_match_candidates (
  vendor_account_id bigint PRIMARY KEY REFERENCES billrecon.vendor_accounts (id) ON DELETE CASCADE,
  psa_company_id    bigint NOT NULL REFERENCES billrecon.psa_companies (id) ON DELETE CASCADE,
  score             numeric(4, 3) NOT NULL CHECK (score BETWEEN 0 AND 1),
  evidence          text NOT NULL,
  suggested_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE billrecon.client_match_candidates IS
  'Suggested client matches waiting for confirmation, made by billrecon.suggest_client_matches(); read them through '
  'billrecon.client_match_suggestions';
COMMENT ON COLUMN billrecon.client_match_candidates.vendor_account_id IS 'The unmapped vendor account';
COMMENT ON COLUMN billrecon.client_match_candidates.psa_company_id IS 'The PSA company suggested for it';
COMMENT ON COLUMN billrecon.client_match_candidates.score IS 'Confidence from 0 to 1';
COMMENT ON COLUMN billrecon.client_match_candidates.evidence IS 'Why, in words: name and domain evidence, ambiguity';
COMMENT ON COLUMN billrecon.client_match_candidates.suggested_at IS 'When it was suggested';

CREATE TABLE billrecon.client_match_rejections (
  vendor_account_id bigint NOT NULL REFERENCES billrecon.vendor_accounts (id) ON DELETE CASCADE,
  psa_company_id    bigint NOT NULL REFERENCES billrecon.psa_companies (id) ON DELETE CASCADE,
  reason            text,
  rejected_by       name NOT NULL DEFAULT current_user,
  rejected_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (vendor_account_id, psa_company_id)
);
COMMENT ON TABLE billrecon.client_match_rejections IS 'Pairs a user rejected: never suggested again';
COMMENT ON COLUMN billrecon.client_match_rejections.vendor_account_id IS 'The vendor account';
COMMENT ON COLUMN billrecon.client_match_rejections.psa_company_id IS 'The PSA company it must not be matched to';
COMMENT ON COLUMN billrecon.client_match_rejections.reason IS 'Why, if given';
COMMENT ON COLUMN billrecon.client_match_rejections.rejected_by IS 'Role that rejected it';
COMMENT ON COLUMN billrecon.client_match_rejections.rejected_at IS 'When';

CREATE TABLE billrecon.ignored_vendor_accounts (
  vendor_account_id bigint PRIMARY KEY REFERENCES billrecon.vendor_accounts (id) ON DELETE CASCADE,
  reason            text,
  ignored_by        name NOT NULL DEFAULT current_user,
  ignored_at        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE billrecon.ignored_vendor_accounts IS
  'Vendor accounts that are no client (the MSP''s own tenant or organization, a lab, a "deleted devices" site): never '
  'suggested, never listed as unmapped, their usage never reported. Set by billrecon.ignore_vendor_account().';
COMMENT ON COLUMN billrecon.ignored_vendor_accounts.vendor_account_id IS 'The account (billrecon.vendor_accounts.id)';
COMMENT ON COLUMN billrecon.ignored_vendor_accounts.reason IS 'Why it is ignored';
COMMENT ON COLUMN billrecon.ignored_vendor_accounts.ignored_by IS 'Role that ignored it';
COMMENT ON COLUMN billrecon.ignored_vendor_accounts.ignored_at IS 'When';

CREATE VIEW billrecon.client_match_suggestions AS
SELECT i.name AS integration,
       va.external_id AS vendor_account_id,
       va.name AS vendor_account_name,
       pc.external_id AS psa_company_id,
       pc.name AS psa_company_name,
       c.score,
       c.evidence,
       c.suggested_at
  FROM billrecon.client_match_candidates c
  JOIN billrecon.vendor_accounts va ON va.id = c.vendor_account_id
  JOIN billrecon.integrations i ON i.id = va.integration_id
  JOIN billrecon.psa_companies pc ON pc.id = c.psa_company_id
 WHERE va.removed_at IS NULL AND pc.removed_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM billrecon.client_mappings m WHERE m.vendor_account_id = c.vendor_account_id);
COMMENT ON VIEW billrecon.client_match_suggestions IS
  'Suggested matches of unmapped vendor accounts to PSA companies, best evidence first when ordered by score DESC. '
  'Confirm with billrecon.confirm_client_matches(min_score), fix with billrecon.map_client(), refuse with '
  'billrecon.reject_client_match().';
COMMENT ON COLUMN billrecon.client_match_suggestions.integration IS 'Vendor integration of the account';
COMMENT ON COLUMN billrecon.client_match_suggestions.vendor_account_id IS 'The vendor''s id of the account';
COMMENT ON COLUMN billrecon.client_match_suggestions.vendor_account_name IS 'The account''s name at the vendor';
COMMENT ON COLUMN billrecon.client_match_suggestions.psa_company_id IS 'The PSA''s id of the suggested company';
COMMENT ON COLUMN billrecon.client_match_suggestions.psa_company_name IS 'The suggested company''s name in the PSA';
COMMENT ON COLUMN billrecon.client_match_suggestions.score IS 'Confidence from 0 to 1; billrecon.recommended_match_threshold() is the documented default for confirming';
COMMENT ON COLUMN billrecon.client_match_suggestions.evidence IS 'Why the match was suggested, in words';
COMMENT ON COLUMN billrecon.client_match_suggestions.suggested_at IS 'When it was suggested';

-- Resolves (integration name, vendor account external id) to the account, or raises.
CREATE FUNCTION billrecon._vendor_account(integration text, vendor_account_id text)
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $va$
DECLARE
  v_integration integer := billrecon._integration_id(integration);
  v_id bigint;
BEGIN
  SELECT va.id INTO v_id FROM billrecon.vendor_accounts va
   WHERE va.integration_id = v_integration AND va.external_id = vendor_account_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704',
      MESSAGE = format('vendor account "%s" of integration "%s" does not exist', vendor_account_id, integration),
      DETAIL = 'vendor_account_id is the id the vendor uses (billrecon.vendor_accounts.external_id).',
      HINT = format('billrecon.unmapped_vendor_accounts lists the unmapped accounts of "%s"; sync it if the account is new.', integration);
  END IF;
  RETURN v_id;
END
$va$;
COMMENT ON FUNCTION billrecon._vendor_account(text, text) IS 'Internal: the vendor account with that external id in that integration, or an error';

-- The default PSA integration, or an error: clients and line items are its.
CREATE FUNCTION billrecon._default_psa()
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $dp$
DECLARE
  v_psa integer;
BEGIN
  SELECT i.id INTO v_psa FROM billrecon.integrations i WHERE i.is_default_psa;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '55000',
      MESSAGE = 'there is no default PSA',
      DETAIL = 'Clients and line items are those of the default PSA integration.',
      HINT = 'SELECT billrecon.set_default_psa(''name'') names it.';
  END IF;
  RETURN v_psa;
END
$dp$;
COMMENT ON FUNCTION billrecon._default_psa() IS 'Internal: the id of the default PSA integration, or an error';

-- Resolves a PSA company external id (in the default PSA) to its row, or raises.
CREATE FUNCTION billrecon._psa_company(psa_company_id text)
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $pc$
DECLARE
  v_psa integer := billrecon._default_psa();
  v_id bigint;
BEGIN
  SELECT c.id INTO v_id FROM billrecon.psa_companies c
   WHERE c.integration_id = v_psa AND c.external_id = psa_company_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704',
      MESSAGE = format('PSA company "%s" does not exist', psa_company_id),
      DETAIL = 'psa_company_id is the id the default PSA uses (billrecon.psa_companies.external_id).',
      HINT = 'SELECT external_id, name FROM billrecon.psa_companies lists them; sync the PSA if it is new.';
  END IF;
  RETURN v_id;
END
$pc$;
COMMENT ON FUNCTION billrecon._psa_company(text) IS 'Internal: the default PSA''s company with that external id, or an error';

CREATE FUNCTION billrecon.map_client(integration text, vendor_account_id text, psa_company_id text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $map$
DECLARE
  v_account bigint := billrecon._vendor_account(integration, vendor_account_id);
  v_company bigint := billrecon._psa_company(psa_company_id);
BEGIN
  INSERT INTO billrecon.client_mappings AS m (vendor_account_id, psa_company_id, source, score, evidence)
  VALUES (v_account, v_company, 'manual', NULL, NULL)
  ON CONFLICT ON CONSTRAINT client_mappings_pkey DO UPDATE
     SET psa_company_id = excluded.psa_company_id, source = 'manual', score = NULL, evidence = NULL,
         mapped_by = current_user, mapped_at = now();
  DELETE FROM billrecon.client_match_candidates c WHERE c.vendor_account_id = v_account;
  DELETE FROM billrecon.client_match_rejections r WHERE r.vendor_account_id = v_account AND r.psa_company_id = v_company;
END
$map$;
COMMENT ON FUNCTION billrecon.map_client(text, text, text) IS
  'Maps a vendor account (its integration''s name and the vendor''s id) to a PSA company (the default PSA''s id); '
  'replaces any mapping or suggestion of that account';

CREATE FUNCTION billrecon.unmap_client(integration text, vendor_account_id text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $unmap$
DECLARE
  v_account bigint := billrecon._vendor_account(integration, vendor_account_id);
BEGIN
  DELETE FROM billrecon.client_mappings m WHERE m.vendor_account_id = v_account;
  RETURN FOUND;
END
$unmap$;
COMMENT ON FUNCTION billrecon.unmap_client(text, text) IS
  'Removes the mapping of a vendor account; returns false when it had none. The next suggest_client_matches() may suggest it again.';

CREATE FUNCTION billrecon.reject_client_match(integration text, vendor_account_id text, psa_company_id text,
                                              reason text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $rej$
DECLARE
  v_account bigint := billrecon._vendor_account(integration, vendor_account_id);
  v_company bigint := billrecon._psa_company(psa_company_id);
BEGIN
  INSERT INTO billrecon.client_match_rejections (vendor_account_id, psa_company_id, reason)
  VALUES (v_account, v_company, reason)
  ON CONFLICT ON CONSTRAINT client_match_rejections_pkey DO UPDATE
     SET reason = excluded.reason, rejected_by = current_user, rejected_at = now();
  DELETE FROM billrecon.client_match_candidates c
   WHERE c.vendor_account_id = v_account AND c.psa_company_id = v_company;
  DELETE FROM billrecon.client_mappings m
   WHERE m.vendor_account_id = v_account AND m.psa_company_id = v_company AND m.source = 'suggestion';
END
$rej$;
COMMENT ON FUNCTION billrecon.reject_client_match(text, text, text, text) IS
  'Rejects a suggested (or confirmed) match: the pair is never suggested again, and a mapping confirmed from it is removed';

CREATE VIEW billrecon.unmapped_vendor_accounts AS
SELECT i.name AS integration, i.kind, va.external_id AS vendor_account_id, va.name AS vendor_account_name,
       count(u.id) AS usage_records,
       coalesce(sum(u.quantity), 0) AS usage_quantity,
       c.psa_company_id IS NOT NULL AS has_suggestion
  FROM billrecon.vendor_accounts va
  JOIN billrecon.integrations i ON i.id = va.integration_id
  LEFT JOIN billrecon.usage_records u ON u.account_id = va.id AND u.removed_at IS NULL
  LEFT JOIN billrecon.client_match_candidates c ON c.vendor_account_id = va.id
 WHERE va.removed_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM billrecon.client_mappings m WHERE m.vendor_account_id = va.id)
   AND NOT EXISTS (SELECT 1 FROM billrecon.ignored_vendor_accounts g WHERE g.vendor_account_id = va.id)
 GROUP BY i.name, i.kind, va.id, va.external_id, va.name, c.psa_company_id;
COMMENT ON VIEW billrecon.unmapped_vendor_accounts IS
  'Vendor accounts not mapped to a PSA company (and not ignored), with the usage they carry: clear these first, their '
  'usage cannot be reconciled. Map them (billrecon.map_client) or, when they are no client, ignore them '
  '(billrecon.ignore_vendor_account).';
COMMENT ON COLUMN billrecon.unmapped_vendor_accounts.integration IS 'Vendor integration';
COMMENT ON COLUMN billrecon.unmapped_vendor_accounts.kind IS 'Its kind';
COMMENT ON COLUMN billrecon.unmapped_vendor_accounts.vendor_account_id IS 'The vendor''s id of the account';
COMMENT ON COLUMN billrecon.unmapped_vendor_accounts.vendor_account_name IS 'The account''s name at the vendor';
COMMENT ON COLUMN billrecon.unmapped_vendor_accounts.usage_records IS 'Current usage records of the account';
COMMENT ON COLUMN billrecon.unmapped_vendor_accounts.usage_quantity IS 'Their total quantity';
COMMENT ON COLUMN billrecon.unmapped_vendor_accounts.has_suggestion IS 'A suggested match waits in billrecon.client_match_suggestions';

CREATE FUNCTION billrecon.ignore_vendor_account(integration text, vendor_account_id text, reason text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $iva$
DECLARE
  v_account bigint := billrecon._vendor_account(integration, vendor_account_id);
BEGIN
  IF EXISTS (SELECT 1 FROM billrecon.client_mappings m WHERE m.vendor_account_id = v_account) THEN
    RAISE EXCEPTION USING ERRCODE = '55000',
      MESSAGE = format('vendor account "%s" of integration "%s" is mapped to a client', vendor_account_id, integration),
      DETAIL = 'An ignored account is no client; this one is mapped to one.',
      HINT = format('SELECT billrecon.unmap_client(%L, %L) first if it really is no client.', integration, vendor_account_id);
  END IF;
  DELETE FROM billrecon.client_match_candidates c WHERE c.vendor_account_id = v_account;
  INSERT INTO billrecon.ignored_vendor_accounts AS g (vendor_account_id, reason)
  VALUES (v_account, reason)
  ON CONFLICT ON CONSTRAINT ignored_vendor_accounts_pkey DO UPDATE
     SET reason = excluded.reason, ignored_by = current_user, ignored_at = now();
END
$iva$;
COMMENT ON FUNCTION billrecon.ignore_vendor_account(text, text, text) IS
  'Marks a vendor account as no client (the MSP''s own, a lab, a deleted-devices site): it is never suggested, never '
  'listed as unmapped and its usage is never reported. A mapped account must be unmapped first.';

CREATE FUNCTION billrecon.unignore_vendor_account(integration text, vendor_account_id text)
RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $uva$
  WITH d AS (
    DELETE FROM billrecon.ignored_vendor_accounts g
     WHERE g.vendor_account_id = billrecon._vendor_account(unignore_vendor_account.integration,
                                                           unignore_vendor_account.vendor_account_id)
    RETURNING 1)
  SELECT count(*) > 0 FROM d
$uva$;
COMMENT ON FUNCTION billrecon.unignore_vendor_account(text, text) IS
  'Undoes billrecon.ignore_vendor_account(); returns false when the account was not ignored';

-- Suggested client matches and their confirmation.

CREATE FUNCTION billrecon.recommended_match_threshold()
RETURNS numeric
AS 'MODULE_PATHNAME', 'billrecon_recommended_match_threshold'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION billrecon.recommended_match_threshold() IS
  'The score from which billrecon.confirm_client_matches() confirms by default (0.9): on the labelled benchmark set '
  '(bench/run_match_bench.sh) no wrong pair scores that high, and about 99 % of right pairs do';

CREATE FUNCTION billrecon.suggest_client_matches()
RETURNS integer
AS 'MODULE_PATHNAME', 'billrecon_suggest_client_matches'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION billrecon.suggest_client_matches() IS
  'Suggests a PSA company for every unmapped vendor account of every enabled vendor integration, from normalized '
  'names (case, accents, punctuation, legal suffixes, & / and, abbreviations, typos), rare shared words and shared '
  'domains; one to one within an integration; rejected pairs are never suggested again. Replaces the earlier '
  'suggestions of unmapped accounts and returns how many were made; read them in billrecon.client_match_suggestions.';

CREATE FUNCTION billrecon.confirm_client_matches(min_score numeric DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $confirm$
DECLARE
  v_min numeric := coalesce(min_score, billrecon.recommended_match_threshold());
  v_n integer;
BEGIN
  IF v_min < 0 OR v_min > 1 THEN
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = format('invalid min_score %s', v_min),
      DETAIL = 'Scores are between 0 and 1.',
      HINT = format('Pass NULL for the recommended threshold (%s).', billrecon.recommended_match_threshold());
  END IF;
  WITH confirmed AS (
    INSERT INTO billrecon.client_mappings (vendor_account_id, psa_company_id, source, score, evidence)
    SELECT c.vendor_account_id, c.psa_company_id, 'suggestion', c.score, c.evidence
      FROM billrecon.client_match_candidates c
      JOIN billrecon.vendor_accounts va ON va.id = c.vendor_account_id AND va.removed_at IS NULL
      JOIN billrecon.psa_companies pc ON pc.id = c.psa_company_id AND pc.removed_at IS NULL
     WHERE c.score >= v_min
    ON CONFLICT ON CONSTRAINT client_mappings_pkey DO NOTHING
    RETURNING vendor_account_id
  )
  DELETE FROM billrecon.client_match_candidates c USING confirmed x WHERE c.vendor_account_id = x.vendor_account_id;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  RETURN v_n;
END
$confirm$;
COMMENT ON FUNCTION billrecon.confirm_client_matches(numeric) IS
  'Confirms every suggested client match scoring at least min_score (default: billrecon.recommended_match_threshold(), '
  '0.9) as a mapping; returns how many. Review the rest in billrecon.client_match_suggestions.';

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

-- Functions and views of service mapping.

-- The default PSA's current line item with that external id, or an error.
CREATE FUNCTION billrecon._psa_line_item(line_item_id text)
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $li$
DECLARE
  v_psa integer := billrecon._default_psa();
  v_id bigint;
BEGIN
  SELECT l.id INTO v_id FROM billrecon.psa_line_items l
   WHERE l.integration_id = v_psa AND l.external_id = line_item_id AND l.removed_at IS NULL;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704',
      MESSAGE = format('line item "%s" does not exist', line_item_id),
      DETAIL = 'line_item_id is the id the default PSA uses (billrecon.psa_line_items.external_id) of a current line.',
      HINT = 'SELECT line_item_id, company, product FROM billrecon.service_mapping lists them.';
  END IF;
  RETURN v_id;
END
$li$;
COMMENT ON FUNCTION billrecon._psa_line_item(text) IS 'Internal: the default PSA''s current line item with that external id, or an error';

-- Checks a rule: the mode fits the integration's kind, the filters fit the mode.
CREATE FUNCTION billrecon._check_rule(p_integration integer, p_mode text, p_filters jsonb, p_multiplier numeric)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $chk$
DECLARE
  v_name text;
  v_kind text;
  v_kinds text[];
  v_allowed text[];
  v_key text;
  v_value jsonb;
  v_elem jsonb;
BEGIN
  SELECT i.name, i.kind INTO v_name, v_kind FROM billrecon.integrations i WHERE i.id = p_integration;
  IF p_mode IS NULL OR p_mode NOT IN ('asset', 'licence', 'user', 'subscription', 'manual', 'custom_sql') THEN
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = format('invalid rule mode "%s"', coalesce(p_mode, 'NULL')),
      DETAIL = 'Modes: asset, licence, user, subscription, manual, custom_sql.',
      HINT = 'asset counts devices, licence licence seats, user users, subscription subscription quantities.';
  END IF;
  v_kinds := CASE p_mode
    WHEN 'asset' THEN ARRAY['ninjaone', 'dattormm', 'csv']
    WHEN 'licence' THEN ARRAY['msgraph', 'csv']
    WHEN 'user' THEN ARRAY['msgraph', 'csv']
    WHEN 'subscription' THEN ARRAY['pax8', 'partnercenter', 'csv']
    ELSE NULL END;
  IF v_kinds IS NOT NULL AND NOT v_kind = ANY (v_kinds) THEN
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = format('rule mode %s cannot count integration "%s"', p_mode, v_name),
      DETAIL = format('"%s" is a %s integration; %s rules count usage of %s integrations.', v_name, v_kind, p_mode,
                      array_to_string(v_kinds, ', ')),
      HINT = CASE v_kind
        WHEN 'ninjaone' THEN 'Devices are counted with mode ''asset''.'
        WHEN 'dattormm' THEN 'Devices are counted with mode ''asset''.'
        WHEN 'msgraph' THEN 'Microsoft 365 is counted with mode ''licence'' or ''user''.'
        WHEN 'pax8' THEN 'Pax8 is counted with mode ''subscription''.'
        WHEN 'partnercenter' THEN 'Partner Center is counted with mode ''subscription''.'
        ELSE 'Name a vendor integration that reports this kind of usage, or use mode ''manual''.' END;
  END IF;
  IF p_multiplier IS NULL OR p_multiplier <= 0 THEN
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = format('invalid multiplier %s', coalesce(p_multiplier::text, 'NULL')),
      DETAIL = 'The multiplier is the number of counted units per billed unit and must be positive.',
      HINT = 'A line "BDR (2 servers)" has multiplier 2; most lines have 1.';
  END IF;
  IF p_filters IS NULL OR jsonb_typeof(p_filters) <> 'object' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'rule filters must be a JSON object',
      DETAIL = format('Found %s.', coalesce(jsonb_typeof(p_filters), 'NULL')), HINT = 'Pass ''{}'' for no filter.';
  END IF;
  v_allowed := CASE p_mode
    WHEN 'asset' THEN ARRAY['device_class', 'os_name', 'device_name']
    WHEN 'licence' THEN ARRAY['skus', 'count']
    WHEN 'user' THEN ARRAY['users']
    WHEN 'subscription' THEN ARRAY['products']
    WHEN 'manual' THEN ARRAY['compare_with']
    ELSE ARRAY[]::text[] END;
  FOR v_key, v_value IN SELECT * FROM jsonb_each(p_filters) LOOP
    IF NOT v_key = ANY (v_allowed) THEN
      RAISE EXCEPTION USING ERRCODE = '22023',
        MESSAGE = format('unknown filter "%s" for rule mode %s', v_key, p_mode),
        DETAIL = format('%s rules take the filters: %s.', p_mode,
                        coalesce(nullif(array_to_string(v_allowed, ', '), ''), 'none')),
        HINT = 'See "Rule filters" in docs/sql-reference.md.';
    END IF;
    IF v_key IN ('device_class', 'skus', 'products') THEN
      IF jsonb_typeof(v_value) <> 'array' OR jsonb_array_length(v_value) = 0 THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
          MESSAGE = format('filter "%s" must be a non-empty array of strings', v_key),
          DETAIL = format('Found %s.', v_value::text), HINT = format('For example {"%s": [...]}.', v_key);
      END IF;
      FOR v_elem IN SELECT * FROM jsonb_array_elements(v_value) LOOP
        IF jsonb_typeof(v_elem) <> 'string' OR v_elem #>> '{}' = '' THEN
          RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('filter "%s" must be a non-empty array of strings', v_key),
            DETAIL = format('Found the element %s.', v_elem::text), HINT = 'Quote every element.';
        END IF;
        IF v_key = 'device_class' AND NOT (v_elem #>> '{}') IN ('desktop', 'laptop', 'server', 'other') THEN
          RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('invalid device class %s', v_elem::text),
            DETAIL = 'Device classes: desktop, laptop, server, other.',
            HINT = 'A vendor that cannot tell desktop from laptop reports workstations as desktop.';
        END IF;
        IF v_key = 'products' THEN
          PERFORM billrecon._check_pattern(v_key, v_elem #>> '{}');
        END IF;
      END LOOP;
    ELSIF v_key IN ('os_name', 'device_name') THEN
      IF jsonb_typeof(v_value) <> 'string' THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('filter "%s" must be a pattern string', v_key),
          DETAIL = format('Found %s.', v_value::text), HINT = 'Patterns are case-insensitive POSIX regular expressions.';
      END IF;
      PERFORM billrecon._check_pattern(v_key, v_value #>> '{}');
    ELSIF v_key = 'count' AND NOT v_value IN ('"assigned"'::jsonb, '"purchased"'::jsonb) THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'filter "count" must be "assigned" or "purchased"',
        DETAIL = format('Found %s.', v_value::text),
        HINT = 'assigned counts consumed licences (the default); purchased counts prepaid, enabled units.';
    ELSIF v_key = 'users' AND NOT v_value IN ('"licensed"'::jsonb, '"enabled"'::jsonb) THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'filter "users" must be "licensed" or "enabled"',
        DETAIL = format('Found %s.', v_value::text),
        HINT = 'licensed counts users holding a licence (the default); enabled counts every enabled user.';
    ELSIF v_key = 'compare_with' THEN
      IF jsonb_typeof(v_value) <> 'string' THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'filter "compare_with" must be an integration name',
          DETAIL = format('Found %s.', v_value::text), HINT = 'Name the integration to show beside the manual line.';
      END IF;
      PERFORM billrecon._integration_id(v_value #>> '{}');
    END IF;
  END LOOP;
END
$chk$;
COMMENT ON FUNCTION billrecon._check_rule(integer, text, jsonb, numeric) IS
  'Internal: raises when a rule''s mode does not fit its integration''s kind or its filters do not fit the mode';

CREATE FUNCTION billrecon._check_pattern(filter text, pattern text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $pat$
BEGIN
  PERFORM '' ~* pattern;
EXCEPTION WHEN invalid_regular_expression THEN
  RAISE EXCEPTION USING ERRCODE = '22023',
    MESSAGE = format('invalid pattern in filter "%s"', filter),
    DETAIL = format('%s: %s', pattern, SQLERRM),
    HINT = 'Patterns are case-insensitive POSIX regular expressions, e.g. ''^HD-'' or ''server''.';
END
$pat$;
COMMENT ON FUNCTION billrecon._check_pattern(text, text) IS 'Internal: raises 22023 when pattern is not a valid regular expression';

CREATE FUNCTION billrecon.map_line_item(line_item_id text, integration text, mode text, filters jsonb DEFAULT '{}',
                                        multiplier numeric DEFAULT 1)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $mli$
DECLARE
  v_line bigint := billrecon._psa_line_item(line_item_id);
  v_integration integer := billrecon._integration_id(integration);
  v_rule bigint;
BEGIN
  PERFORM billrecon._check_rule(v_integration, mode, coalesce(filters, '{}'), multiplier);
  UPDATE billrecon.service_rules r
     SET integration_id = v_integration, mode = map_line_item.mode, filters = coalesce(map_line_item.filters, '{}'),
         multiplier = map_line_item.multiplier, source = 'manual', preset_id = NULL, updated_at = now()
   WHERE r.line_item_id = v_line
  RETURNING r.id INTO v_rule;
  IF NOT FOUND THEN
    INSERT INTO billrecon.service_rules (line_item_id, integration_id, mode, filters, multiplier)
    VALUES (v_line, v_integration, map_line_item.mode, coalesce(map_line_item.filters, '{}'), map_line_item.multiplier)
    RETURNING id INTO v_rule;
  END IF;
  DELETE FROM billrecon.ignored_line_items g WHERE g.line_item_id = v_line;
  RETURN v_rule;
END
$mli$;
COMMENT ON FUNCTION billrecon.map_line_item(text, text, text, jsonb, numeric) IS
  'Creates or replaces the rule of one line item of the default PSA (its external id): which integration''s usage it '
  'is compared with, the mode (asset, licence, user, subscription, manual, custom_sql), the filters and the '
  'multiplier. A line''s own rule wins over its product''s. Mapping an ignored line un-ignores it. Returns the rule id.';

CREATE FUNCTION billrecon.map_product(psa_product text, integration text, mode text, filters jsonb DEFAULT '{}',
                                      multiplier numeric DEFAULT 1)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $mp$
DECLARE
  v_integration integer := billrecon._integration_id(integration);
  v_rule bigint;
BEGIN
  IF psa_product IS NULL OR btrim(psa_product) = '' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'psa_product must name a PSA product',
      DETAIL = 'It is matched, case-insensitively, against the line items'' product code and name.',
      HINT = 'SELECT DISTINCT product_code, product_name FROM billrecon.psa_line_items lists them.';
  END IF;
  PERFORM billrecon._check_rule(v_integration, mode, coalesce(filters, '{}'), multiplier);
  UPDATE billrecon.service_rules r
     SET integration_id = v_integration, mode = map_product.mode, filters = coalesce(map_product.filters, '{}'),
         multiplier = map_product.multiplier, source = 'manual', preset_id = NULL, updated_at = now()
   WHERE lower(r.psa_product) = lower(map_product.psa_product)
  RETURNING r.id INTO v_rule;
  IF NOT FOUND THEN
    INSERT INTO billrecon.service_rules (psa_product, integration_id, mode, filters, multiplier)
    VALUES (map_product.psa_product, v_integration, map_product.mode, coalesce(map_product.filters, '{}'),
            map_product.multiplier)
    RETURNING id INTO v_rule;
  END IF;
  RETURN v_rule;
END
$mp$;
COMMENT ON FUNCTION billrecon.map_product(text, text, text, jsonb, numeric) IS
  'Creates or replaces the rule for every line item of a PSA product, named by its catalog code (e.g. the ConnectWise '
  'product identifier) or name, case-insensitively. A line''s own rule wins. Returns the rule id.';

CREATE FUNCTION billrecon.delete_rule(rule_id bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $del$
BEGIN
  DELETE FROM billrecon.service_rules r WHERE r.id = rule_id;
  RETURN FOUND;
END
$del$;
COMMENT ON FUNCTION billrecon.delete_rule(bigint) IS 'Deletes a service rule; returns false when there was none. Its lines then fall back to their product''s rule, or become unmapped.';

CREATE FUNCTION billrecon.ignore_line_item(line_item_id text, reason text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $ign$
DECLARE
  v_line bigint := billrecon._psa_line_item(line_item_id);
BEGIN
  INSERT INTO billrecon.ignored_line_items AS g (line_item_id, reason) VALUES (v_line, reason)
  ON CONFLICT ON CONSTRAINT ignored_line_items_pkey DO UPDATE
     SET reason = excluded.reason, ignored_by = current_user, ignored_at = now();
END
$ign$;
COMMENT ON FUNCTION billrecon.ignore_line_item(text, text) IS
  'Marks a line item of the default PSA as ignored: it is shown, never reconciled. Undo with billrecon.unignore_line_item().';

CREATE FUNCTION billrecon.unignore_line_item(line_item_id text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $uign$
BEGIN
  DELETE FROM billrecon.ignored_line_items g WHERE g.line_item_id = billrecon._psa_line_item(unignore_line_item.line_item_id);
  RETURN FOUND;
END
$uign$;
COMMENT ON FUNCTION billrecon.unignore_line_item(text) IS 'Reconciles an ignored line item again; returns false when it was not ignored';

CREATE FUNCTION billrecon.exclude_vendor_product(integration text, product text, reason text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $exc$
DECLARE
  v_integration integer := billrecon._integration_id(integration);
BEGIN
  IF product IS NULL OR btrim(product) = '' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'product must name a vendor product or SKU',
      DETAIL = 'It is matched, case-insensitively, against usage records'' product and product name.',
      HINT = 'SELECT DISTINCT product, product_name FROM billrecon.usage_records lists them.';
  END IF;
  DELETE FROM billrecon.excluded_vendor_products e
   WHERE e.integration_id = v_integration AND lower(e.product) = lower(exclude_vendor_product.product);
  INSERT INTO billrecon.excluded_vendor_products (integration_id, product, reason)
  VALUES (v_integration, exclude_vendor_product.product, reason);
END
$exc$;
COMMENT ON FUNCTION billrecon.exclude_vendor_product(text, text, text) IS
  'Excludes a vendor product or SKU of an integration (free, trial, internal): its usage is never counted nor reported as unaccounted';

CREATE FUNCTION billrecon.include_vendor_product(integration text, product text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $inc$
BEGIN
  DELETE FROM billrecon.excluded_vendor_products e
   WHERE e.integration_id = billrecon._integration_id(integration) AND lower(e.product) = lower(include_vendor_product.product);
  RETURN FOUND;
END
$inc$;
COMMENT ON FUNCTION billrecon.include_vendor_product(text, text) IS 'Counts an excluded vendor product again; returns false when it was not excluded';

CREATE FUNCTION billrecon.link_adjustment(line_item_id text, parent_line_item_id text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $lnk$
DECLARE
  v_line bigint := billrecon._psa_line_item(line_item_id);
  v_parent bigint := billrecon._psa_line_item(parent_line_item_id);
  v_line_agreement bigint;
  v_parent_agreement bigint;
BEGIN
  IF v_line = v_parent THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a line item cannot adjust itself',
      DETAIL = format('Both ids are "%s".', line_item_id), HINT = 'Name the line the adjustment or credit is for.';
  END IF;
  SELECT l.agreement_id INTO v_line_agreement FROM billrecon.psa_line_items l WHERE l.id = v_line;
  SELECT l.agreement_id INTO v_parent_agreement FROM billrecon.psa_line_items l WHERE l.id = v_parent;
  IF v_line_agreement <> v_parent_agreement THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'an adjustment and its parent must be on one agreement',
      DETAIL = format('Line "%s" and line "%s" belong to different agreements.', line_item_id, parent_line_item_id),
      HINT = 'Link the adjustment to a line of its own agreement.';
  END IF;
  INSERT INTO billrecon.line_item_parents AS p (line_item_id, parent_line_item_id) VALUES (v_line, v_parent)
  ON CONFLICT ON CONSTRAINT line_item_parents_pkey DO UPDATE
     SET parent_line_item_id = excluded.parent_line_item_id, linked_by = current_user, linked_at = now();
END
$lnk$;
COMMENT ON FUNCTION billrecon.link_adjustment(text, text) IS
  'Links an adjustment or credit line to the line it adjusts (both external ids of the default PSA); it then nets against that line';

-- The rule that applies to a line item: its own, else its product's (the
-- product code's rule before the product name's).
CREATE FUNCTION billrecon._line_rule(l billrecon.psa_line_items)
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
RETURN coalesce(
    (SELECT r.id FROM billrecon.service_rules r WHERE r.line_item_id = l.id),
    (SELECT p.id FROM billrecon.service_rules p
      WHERE p.psa_product IS NOT NULL
        AND (lower(p.psa_product) = lower(l.product_code) OR lower(p.psa_product) = lower(l.product_name))
      ORDER BY lower(p.psa_product) = lower(l.product_code) DESC, p.id
      LIMIT 1));
COMMENT ON FUNCTION billrecon._line_rule(billrecon.psa_line_items) IS
  'Internal: id of the service rule that applies to the line item (its own, else its product''s), null when none';

-- Line items of the default PSA with the rule that applies to each.
CREATE VIEW billrecon.service_mapping AS
SELECT l.external_id AS line_item_id,
       c.external_id AS psa_company_id,
       c.name AS company,
       a.external_id AS agreement_id,
       a.name AS agreement,
       coalesce(l.product_code, l.product_name) AS product,
       l.product_name,
       l.quantity,
       l.unit_price,
       coalesce(r.id, pr.id) AS rule_id,
       CASE WHEN r.id IS NOT NULL THEN 'line' WHEN pr.id IS NOT NULL THEN 'product' END AS rule_scope,
       ri.name AS integration,
       coalesce(r.mode, pr.mode) AS mode,
       coalesce(r.filters, pr.filters) AS filters,
       coalesce(r.multiplier, pr.multiplier) AS multiplier,
       g.line_item_id IS NOT NULL AS ignored,
       g.reason AS ignore_reason,
       parent.external_id AS parent_line_item_id,
       CASE
         WHEN g.line_item_id IS NOT NULL THEN 'ignored'
         WHEN parent.id IS NOT NULL THEN 'adjustment'
         WHEN coalesce(r.id, pr.id) IS NULL THEN 'unmapped'
         ELSE 'mapped'
       END AS state
  FROM billrecon.psa_line_items l
  JOIN billrecon.integrations psa ON psa.id = l.integration_id AND psa.is_default_psa
  JOIN billrecon.psa_companies c ON c.id = l.company_id
  JOIN billrecon.psa_agreements a ON a.id = l.agreement_id
  LEFT JOIN billrecon.service_rules ar ON ar.id = billrecon._line_rule(l)
  LEFT JOIN billrecon.service_rules r ON r.id = ar.id AND r.line_item_id IS NOT NULL
  LEFT JOIN billrecon.service_rules pr ON pr.id = ar.id AND pr.line_item_id IS NULL
  LEFT JOIN billrecon.integrations ri ON ri.id = coalesce(r.integration_id, pr.integration_id)
  LEFT JOIN billrecon.ignored_line_items g ON g.line_item_id = l.id
  LEFT JOIN billrecon.line_item_parents lp ON lp.line_item_id = l.id
  LEFT JOIN billrecon.psa_line_items parent ON parent.id = coalesce(lp.parent_line_item_id, l.parent_line_item_id)
 WHERE l.removed_at IS NULL AND (l.cancel_date IS NULL OR l.cancel_date >= current_date);
COMMENT ON VIEW billrecon.service_mapping IS
  'Every current line item of the default PSA (not removed, not cancelled before today) with the rule that applies '
  '(its own, else its product''s), or why none does';
COMMENT ON COLUMN billrecon.service_mapping.line_item_id IS 'The PSA''s id of the line';
COMMENT ON COLUMN billrecon.service_mapping.psa_company_id IS 'The PSA''s id of the client';
COMMENT ON COLUMN billrecon.service_mapping.company IS 'Client name';
COMMENT ON COLUMN billrecon.service_mapping.agreement_id IS 'The PSA''s id of the agreement';
COMMENT ON COLUMN billrecon.service_mapping.agreement IS 'Agreement name';
COMMENT ON COLUMN billrecon.service_mapping.product IS 'Product code (or name when the line has no code)';
COMMENT ON COLUMN billrecon.service_mapping.product_name IS 'Product name';
COMMENT ON COLUMN billrecon.service_mapping.quantity IS 'Billed quantity';
COMMENT ON COLUMN billrecon.service_mapping.unit_price IS 'Unit price';
COMMENT ON COLUMN billrecon.service_mapping.rule_id IS 'The applying rule (billrecon.service_rules.id); null when unmapped';
COMMENT ON COLUMN billrecon.service_mapping.rule_scope IS 'line (the line''s own rule) or product (its product''s rule)';
COMMENT ON COLUMN billrecon.service_mapping.integration IS 'Integration whose usage is counted';
COMMENT ON COLUMN billrecon.service_mapping.mode IS 'Counting mode';
COMMENT ON COLUMN billrecon.service_mapping.filters IS 'Rule filters';
COMMENT ON COLUMN billrecon.service_mapping.multiplier IS 'Counted units per billed unit';
COMMENT ON COLUMN billrecon.service_mapping.ignored IS 'The line is ignored';
COMMENT ON COLUMN billrecon.service_mapping.ignore_reason IS 'Why it is ignored';
COMMENT ON COLUMN billrecon.service_mapping.parent_line_item_id IS 'For adjustments: the line they net against';
COMMENT ON COLUMN billrecon.service_mapping.state IS 'mapped, unmapped, ignored or adjustment';

CREATE VIEW billrecon.unmapped_line_items AS
SELECT m.line_item_id, m.psa_company_id, m.company, m.agreement_id, m.product, m.product_name, m.quantity,
       m.unit_price
  FROM billrecon.service_mapping m
 WHERE m.state = 'unmapped';
COMMENT ON VIEW billrecon.unmapped_line_items IS
  'Line items of the default PSA that no rule covers and that are neither ignored nor adjustments: map or ignore them before reconciling';
COMMENT ON COLUMN billrecon.unmapped_line_items.line_item_id IS 'The PSA''s id of the line';
COMMENT ON COLUMN billrecon.unmapped_line_items.psa_company_id IS 'The PSA''s id of the client';
COMMENT ON COLUMN billrecon.unmapped_line_items.company IS 'Client name';
COMMENT ON COLUMN billrecon.unmapped_line_items.agreement_id IS 'The PSA''s id of the agreement';
COMMENT ON COLUMN billrecon.unmapped_line_items.product IS 'Product code (or name)';
COMMENT ON COLUMN billrecon.unmapped_line_items.product_name IS 'Product name';
COMMENT ON COLUMN billrecon.unmapped_line_items.quantity IS 'Billed quantity';
COMMENT ON COLUMN billrecon.unmapped_line_items.unit_price IS 'Unit price';

CREATE FUNCTION billrecon.apply_presets(integration text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $pre$
DECLARE
  v_only integer := CASE WHEN integration IS NULL THEN NULL ELSE billrecon._integration_id(integration) END;
  v_created integer := 0;
  v_n integer;
  v_preset record;
BEGIN
  FOR v_preset IN
    SELECT p.*, i.id AS integration_id
      FROM billrecon.rule_presets p
      JOIN billrecon.integrations i ON i.kind = p.vendor_kind AND i.enabled
     WHERE v_only IS NULL OR i.id = v_only
     ORDER BY p.builtin, p.id, i.name   -- your own presets first, then the built-in ones
  LOOP
    INSERT INTO billrecon.service_rules (psa_product, integration_id, mode, filters, multiplier, source, preset_id)
    SELECT DISTINCT ON (lower(coalesce(m.product, '')))
           m.product, v_preset.integration_id, v_preset.mode, v_preset.filters, v_preset.multiplier, 'preset', v_preset.id
      FROM billrecon.service_mapping m
     WHERE m.state = 'unmapped' AND m.product IS NOT NULL
       AND (m.product ~* v_preset.psa_product_pattern OR coalesce(m.product_name, '') ~* v_preset.psa_product_pattern)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_created := v_created + v_n;
  END LOOP;
  RETURN v_created;
END
$pre$;
COMMENT ON FUNCTION billrecon.apply_presets(text) IS
  'Creates product rules from billrecon.rule_presets for unmapped PSA products whose code or name matches a preset of an '
  'integration''s kind (all enabled integrations, or only the one named). Existing rules are never changed. Returns the '
  'number of rules created.';

-- What no mapping covers yet, so "clear the unmapped count first" is one query.

-- A rule's filters in the form the hot loops want: patterns and SKU lists
-- taken out of the jsonb once per rule, so the per-record test below has no
-- subquery and the planner inlines it.
CREATE TYPE billrecon.rule_filter AS (
  device_classes   jsonb,    -- asset: ["desktop", ...] or null
  os_pattern       text,     -- asset: POSIX regex, case-insensitive, or null
  name_pattern     text,     -- asset: POSIX regex on the device name, or null
  skus             text[],   -- licence: SKU part numbers / ids, upper case, or null
  products_pattern text,     -- subscription: the patterns as one alternation, or null
  users            text,     -- user: licensed (default) or enabled
  count_purchased  boolean   -- licence: count purchased (prepaid) units instead of assigned
);
COMMENT ON TYPE billrecon.rule_filter IS 'Internal: a service rule''s filters, unpacked for counting';
COMMENT ON COLUMN billrecon.rule_filter.device_classes IS 'asset: the device classes counted, or null for all';
COMMENT ON COLUMN billrecon.rule_filter.os_pattern IS 'asset: case-insensitive pattern on the OS name, or null';
COMMENT ON COLUMN billrecon.rule_filter.name_pattern IS 'asset: case-insensitive pattern on the device name, or null';
COMMENT ON COLUMN billrecon.rule_filter.skus IS 'licence: SKU part numbers or ids, upper case, or null for all';
COMMENT ON COLUMN billrecon.rule_filter.products_pattern IS 'subscription: the product patterns as one alternation, or null';
COMMENT ON COLUMN billrecon.rule_filter.users IS 'user: licensed (the default) or enabled';
COMMENT ON COLUMN billrecon.rule_filter.count_purchased IS 'licence: count purchased (prepaid) units instead of assigned ones';

CREATE FUNCTION billrecon._rule_filter(filters jsonb)
RETURNS billrecon.rule_filter
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ROW(filters->'device_class', filters->>'os_name', filters->>'device_name',
           (SELECT array_agg(upper(s)) FROM jsonb_array_elements_text(filters->'skus') s),
           (SELECT string_agg('(' || p || ')', '|') FROM jsonb_array_elements_text(filters->'products') p),
           coalesce(filters->>'users', 'licensed'),
           coalesce(filters->>'count', 'assigned') = 'purchased')::billrecon.rule_filter;
COMMENT ON FUNCTION billrecon._rule_filter(jsonb) IS 'Internal: unpacks a rule''s filters (billrecon.rule_filter)';

-- Which usage records a rule addresses: asset rules devices of their classes
-- and name patterns, licence rules their SKUs, user rules users, subscription
-- rules the products their patterns match. The one definition of it: the
-- unmapped views and billrecon.reconcile() both use it.
CREATE FUNCTION billrecon._filter_captures(mode text, f billrecon.rule_filter, u billrecon.usage_records)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE mode
           WHEN 'asset' THEN u.kind = 'device'
             AND (f.device_classes IS NULL OR f.device_classes ? u.device_class)
             AND (f.os_pattern IS NULL OR coalesce(u.os_name, '') ~* f.os_pattern)
             AND (f.name_pattern IS NULL OR coalesce(u.device_name, '') ~* f.name_pattern)
           WHEN 'licence' THEN u.kind = 'licence'
             AND (f.skus IS NULL OR upper(coalesce(u.product, '')) = ANY (f.skus)
                  OR upper(coalesce(u.product_name, '')) = ANY (f.skus))
           WHEN 'user' THEN u.kind = 'user'
           WHEN 'subscription' THEN u.kind = 'subscription'
             AND (f.products_pattern IS NULL OR coalesce(u.product, '') ~* f.products_pattern
                  OR coalesce(u.product_name, '') ~* f.products_pattern)
           ELSE false
         END;
COMMENT ON FUNCTION billrecon._filter_captures(text, billrecon.rule_filter, billrecon.usage_records) IS
  'Internal: whether a rule of this mode and these (unpacked) filters addresses the usage record';

-- How much of the record a rule counts: user rules count enabled users (only
-- licensed ones unless {"users": "enabled"}), licence rules assigned units or,
-- with {"count": "purchased"}, prepaid enabled units. Zero when not captured.
CREATE FUNCTION billrecon._filter_quantity(mode text, f billrecon.rule_filter, u billrecon.usage_records)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
           WHEN NOT billrecon._filter_captures(mode, f, u) THEN 0
           WHEN mode = 'user' THEN
             CASE WHEN coalesce(u.enabled, true) AND (f.users = 'enabled' OR coalesce(u.licensed, true))
                  THEN u.quantity ELSE 0 END
           WHEN mode = 'licence' AND f.count_purchased THEN coalesce(u.purchased_quantity, 0)
           ELSE u.quantity
         END;
COMMENT ON FUNCTION billrecon._filter_quantity(text, billrecon.rule_filter, billrecon.usage_records) IS
  'Internal: the quantity a rule of this mode and these (unpacked) filters counts for the usage record (0 when it '
  'does not capture it; disabled users and, by default, unlicensed users count 0; a user whose licence state the '
  'vendor does not report counts as licensed)';

CREATE FUNCTION billrecon._rule_captures(mode text, filters jsonb, u billrecon.usage_records)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN billrecon._filter_captures(mode, billrecon._rule_filter(filters), u);
COMMENT ON FUNCTION billrecon._rule_captures(text, jsonb, billrecon.usage_records) IS
  'Internal: billrecon._filter_captures with the rule''s filters as stored';

CREATE FUNCTION billrecon._rule_quantity(mode text, filters jsonb, u billrecon.usage_records)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN billrecon._filter_quantity(mode, billrecon._rule_filter(filters), u);
COMMENT ON FUNCTION billrecon._rule_quantity(text, jsonb, billrecon.usage_records) IS
  'Internal: billrecon._filter_quantity with the rule''s filters as stored';

-- A usage record is excluded when its product (id or name) is an excluded
-- vendor product of its integration.
CREATE FUNCTION billrecon._usage_excluded(u billrecon.usage_records)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN EXISTS (
    SELECT 1 FROM billrecon.excluded_vendor_products e
     WHERE e.integration_id = u.integration_id
       AND lower(e.product) IN (lower(coalesce(u.product, '')), lower(coalesce(u.product_name, ''))));
COMMENT ON FUNCTION billrecon._usage_excluded(billrecon.usage_records) IS
  'Internal: whether the record''s product is excluded (billrecon.exclude_vendor_product) on its integration';

-- A usage record is captured when a rule on its integration addresses it.
CREATE FUNCTION billrecon._usage_captured(u billrecon.usage_records)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN EXISTS (
    SELECT 1 FROM billrecon.service_rules r
     WHERE r.integration_id = u.integration_id
       AND billrecon._rule_captures(r.mode, r.filters, u));
COMMENT ON FUNCTION billrecon._usage_captured(billrecon.usage_records) IS
  'Internal: whether any service rule on the record''s integration would count it';

CREATE VIEW billrecon.uncaptured_vendor_products AS
SELECT i.name AS integration,
       u.kind,
       CASE u.kind
         WHEN 'user' THEN CASE WHEN u.licensed THEN 'licensed users' ELSE 'unlicensed users' END
         ELSE coalesce(u.product, CASE WHEN u.kind = 'device' THEN u.device_class END, '')
       END AS product,
       max(CASE WHEN u.kind <> 'user' THEN u.product_name END) AS product_name,
       count(*) AS usage_records,
       sum(u.quantity) AS quantity,
       count(DISTINCT u.account_id) AS accounts
  FROM billrecon.usage_records u
  JOIN billrecon.integrations i ON i.id = u.integration_id
 WHERE u.removed_at IS NULL
   AND NOT billrecon._usage_excluded(u)
   AND NOT billrecon._usage_captured(u)
 GROUP BY i.name, u.kind, 3;
COMMENT ON VIEW billrecon.uncaptured_vendor_products IS
  'Vendor products (SKUs, subscriptions, device kinds, users) that no service rule counts and that are not excluded: '
  'map them (billrecon.map_product / map_line_item) or exclude them (billrecon.exclude_vendor_product)';
COMMENT ON COLUMN billrecon.uncaptured_vendor_products.integration IS 'Vendor integration';
COMMENT ON COLUMN billrecon.uncaptured_vendor_products.kind IS 'device, licence, user or subscription';
COMMENT ON COLUMN billrecon.uncaptured_vendor_products.product IS 'Product or SKU (devices without one: their class; users: licensed users or unlicensed users)';
COMMENT ON COLUMN billrecon.uncaptured_vendor_products.product_name IS 'Its name, where the vendor gives one';
COMMENT ON COLUMN billrecon.uncaptured_vendor_products.usage_records IS 'Current usage records of it';
COMMENT ON COLUMN billrecon.uncaptured_vendor_products.quantity IS 'Their total quantity';
COMMENT ON COLUMN billrecon.uncaptured_vendor_products.accounts IS 'Vendor accounts using it';

CREATE VIEW billrecon.unmapped_counts AS
SELECT i.name AS integration,
       i.kind,
       i.side,
       CASE WHEN i.side = 'vendor' THEN
         (SELECT count(*) FROM billrecon.unmapped_vendor_accounts v WHERE v.integration = i.name) END
         AS unmapped_accounts,
       CASE WHEN i.is_default_psa THEN
         (SELECT count(*) FROM billrecon.unmapped_line_items) END AS unmapped_line_items,
       CASE WHEN i.side = 'vendor' THEN
         (SELECT count(*) FROM billrecon.uncaptured_vendor_products p WHERE p.integration = i.name) END
         AS uncaptured_products,
       CASE WHEN i.side = 'vendor' THEN
         (SELECT count(*) FROM billrecon.client_match_suggestions s WHERE s.integration = i.name) END
         AS pending_suggestions
  FROM billrecon.integrations i
 WHERE i.enabled AND (i.side = 'vendor' OR i.is_default_psa);
COMMENT ON VIEW billrecon.unmapped_counts IS
  'Per integration, what is left to map before reconciling: vendor accounts without a client, line items of the '
  'default PSA without a rule, vendor products no rule counts, suggestions waiting for a decision. All zero = ready.';
COMMENT ON COLUMN billrecon.unmapped_counts.integration IS 'Integration';
COMMENT ON COLUMN billrecon.unmapped_counts.kind IS 'Its kind';
COMMENT ON COLUMN billrecon.unmapped_counts.side IS 'psa or vendor';
COMMENT ON COLUMN billrecon.unmapped_counts.unmapped_accounts IS 'Vendor accounts without a PSA client (billrecon.unmapped_vendor_accounts)';
COMMENT ON COLUMN billrecon.unmapped_counts.unmapped_line_items IS 'Default PSA only: line items no rule covers (billrecon.unmapped_line_items)';
COMMENT ON COLUMN billrecon.unmapped_counts.uncaptured_products IS 'Vendor products no rule counts and not excluded (billrecon.uncaptured_vendor_products)';
COMMENT ON COLUMN billrecon.unmapped_counts.pending_suggestions IS 'Suggested client matches waiting (billrecon.client_match_suggestions)';

-- Proration and billing-cycle arithmetic (src/reconcile, docs/proration.md):
-- pure functions, exact decimals, rounded half away from zero to cents.
-- No SET search_path: C functions that look up no object by name.

CREATE FUNCTION billrecon.prorate(unit_price numeric, qty_delta numeric, effective_date date,
                                  cycle_start date, cycle_end date)
RETURNS numeric
AS 'MODULE_PATHNAME', 'billrecon_prorate'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billrecon.prorate(numeric, numeric, date, date, date) IS
  'The prorated charge (credit when negative) of a quantity change from effective_date to the end of its billing '
  'cycle: unit_price x qty_delta x (days from effective_date to cycle_end, both included) / (days from cycle_start '
  'to cycle_end, both included), computed exactly and rounded half away from zero to 2 decimals. Effective on '
  'cycle_start: the full unit_price x qty_delta. An effective date outside the cycle, or cycle_end before '
  'cycle_start, is an error (22023). billrecon.billing_cycle() gives the cycle. See docs/proration.md.';

CREATE FUNCTION billrecon.billing_cycle(billing_cycle text, on_date date, anchor date DEFAULT NULL,
                                        OUT cycle_start date, OUT cycle_end date)
RETURNS record
AS 'MODULE_PATHNAME', 'billrecon_billing_cycle'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION billrecon.billing_cycle(text, date, date) IS
  'The billing cycle (first and last day, both included) that contains on_date. billing_cycle: monthly, quarterly or '
  'annual; with an anchor (the agreement''s start date) cycles start every 1, 3 or 12 months on the anchor''s day '
  'of month, or on the month''s last day when it is shorter (anchor Jan 31: Feb 28, Mar 31, Apr 30, ...), and '
  'continue backwards before the anchor; without one they are calendar months, quarters and years. other and '
  'unknown (cycles billrecon cannot normalize) give the calendar month containing on_date, anchor ignored: the '
  'caller should mark what it derives from them as estimated. NULL billing_cycle or on_date: NULL. '
  'See docs/proration.md.';

CREATE FUNCTION billrecon.monthly_amount(amount numeric, billing_cycle text)
RETURNS numeric
AS 'MODULE_PATHNAME', 'billrecon_monthly_amount'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billrecon.monthly_amount(numeric, text) IS
  'A billing cycle''s amount for one month: amount (monthly), amount / 3 (quarterly), amount / 12 (annual), '
  'rounded half away from zero to 2 decimals. other and unknown count as monthly (amount unchanged, rounded): '
  'the caller should mark the result as estimated. See docs/proration.md.';

-- Pure functions: every billrecon role may call them (operators and admins
-- through billrecon_reader); PUBLIC may not, as for every billrecon function.
REVOKE ALL ON FUNCTION billrecon.prorate(numeric, numeric, date, date, date),
                       billrecon.billing_cycle(text, date, date),
                       billrecon.monthly_amount(numeric, text)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION billrecon.prorate(numeric, numeric, date, date, date),
                          billrecon.billing_cycle(text, date, date),
                          billrecon.monthly_amount(numeric, text)
  TO billrecon_reader;

-- Reconciliation runs and their results. A run is kept for history: its rows
-- carry the names, ids and numbers as they were, so a later sync, rename or
-- deleted line does not rewrite what a past run reported.

CREATE TABLE billrecon.reconcile_runs (
  id                 bigserial PRIMARY KEY,
  period             date NOT NULL,
  period_start       date NOT NULL,
  period_end         date NOT NULL,
  psa_integration_id integer REFERENCES billrecon.integrations (id) ON DELETE SET NULL,
  psa_integration    text,
  started_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at        timestamptz,
  run_by             name NOT NULL,
  settings           jsonb NOT NULL DEFAULT '{}',
  line_count         integer,
  discrepancy_count  integer,
  discrepancy_amount numeric(14, 2),
  notes              text[] NOT NULL DEFAULT '{}',
  client_id          bigint REFERENCES billrecon.psa_companies (id) ON DELETE SET NULL,
  client_external_id text,
  CONSTRAINT reconcile_runs_period CHECK (period BETWEEN period_start AND period_end)
);
COMMENT ON TABLE billrecon.reconcile_runs IS
  'One row per billrecon.reconcile() call: the period reconciled, who ran it, the settings used and totals. Results '
  'are in billrecon.reconcile_results, the state of every integration at the time in billrecon.reconcile_run_inputs.';
COMMENT ON COLUMN billrecon.reconcile_runs.id IS 'Run id, returned by billrecon.reconcile()';
COMMENT ON COLUMN billrecon.reconcile_runs.period IS 'The date passed to billrecon.reconcile()';
COMMENT ON COLUMN billrecon.reconcile_runs.period_start IS 'First day of the calendar month containing period';
COMMENT ON COLUMN billrecon.reconcile_runs.period_end IS
  'Last day of that month: lines and agreements in force on this day are reconciled';
COMMENT ON COLUMN billrecon.reconcile_runs.psa_integration_id IS 'The default PSA whose line items were reconciled';
COMMENT ON COLUMN billrecon.reconcile_runs.psa_integration IS 'Its name at the time';
COMMENT ON COLUMN billrecon.reconcile_runs.started_at IS 'When the run started';
COMMENT ON COLUMN billrecon.reconcile_runs.finished_at IS 'When it finished';
COMMENT ON COLUMN billrecon.reconcile_runs.run_by IS 'Role that ran it';
COMMENT ON COLUMN billrecon.reconcile_runs.settings IS 'billrecon.* settings in effect during the run';
COMMENT ON COLUMN billrecon.reconcile_runs.line_count IS 'Result rows (line items, unmapped accounts, unaccounted usage)';
COMMENT ON COLUMN billrecon.reconcile_runs.discrepancy_count IS 'Rows that are discrepancies (see billrecon.discrepancies)';
COMMENT ON COLUMN billrecon.reconcile_runs.client_id IS 'A run of one client: its internal id; null = every client';
COMMENT ON COLUMN billrecon.reconcile_runs.client_external_id IS 'A run of one client: the PSA''s id of it';
COMMENT ON COLUMN billrecon.reconcile_runs.notes IS
  'What to keep in mind reading the run: integrations whose data is failed, stale or missing, no lines in force';
COMMENT ON COLUMN billrecon.reconcile_runs.discrepancy_amount IS
  'Sum of the discrepancies'' amounts (positive = under-billed revenue, negative = over-billed)';
CREATE INDEX reconcile_runs_period ON billrecon.reconcile_runs (period_start, id);

CREATE TABLE billrecon.reconcile_run_inputs (
  run_id           bigint NOT NULL REFERENCES billrecon.reconcile_runs (id) ON DELETE CASCADE,
  integration_id   integer REFERENCES billrecon.integrations (id) ON DELETE SET NULL,
  integration      text NOT NULL,
  kind             text NOT NULL,
  side             text NOT NULL,
  status           text NOT NULL CHECK (status IN ('green', 'yellow', 'red')),
  last_success_at  timestamptz,
  last_sync_run_id bigint,
  last_error       text,
  PRIMARY KEY (run_id, integration)
);
COMMENT ON TABLE billrecon.reconcile_run_inputs IS
  'The inputs of a reconcile run: every enabled integration with its health and the time of the successful sync '
  'whose data the run used';
COMMENT ON COLUMN billrecon.reconcile_run_inputs.run_id IS 'The reconcile run';
COMMENT ON COLUMN billrecon.reconcile_run_inputs.integration_id IS 'The integration (null once it is dropped)';
COMMENT ON COLUMN billrecon.reconcile_run_inputs.integration IS 'Its name at the time';
COMMENT ON COLUMN billrecon.reconcile_run_inputs.kind IS 'Its kind';
COMMENT ON COLUMN billrecon.reconcile_run_inputs.side IS 'psa or vendor';
COMMENT ON COLUMN billrecon.reconcile_run_inputs.status IS 'green, yellow or red, as billrecon.integration_status showed it';
COMMENT ON COLUMN billrecon.reconcile_run_inputs.last_success_at IS 'End of the last successful sync: the age of the data used';
COMMENT ON COLUMN billrecon.reconcile_run_inputs.last_sync_run_id IS 'That sync run (billrecon.sync_runs.id)';
COMMENT ON COLUMN billrecon.reconcile_run_inputs.last_error IS 'The last sync''s error, if it failed';

CREATE TABLE billrecon.reconcile_results (
  id                     bigserial PRIMARY KEY,
  run_id                 bigint NOT NULL REFERENCES billrecon.reconcile_runs (id) ON DELETE CASCADE,
  row_kind               text NOT NULL CHECK (row_kind IN ('line', 'vendor_account', 'unaccounted')),
  state                  text NOT NULL CHECK (state IN ('reconciled', 'ignored', 'custom_sql', 'manual', 'adjustment',
                                                        'unmapped', 'unaccounted')),
  type                   text CHECK (type IN ('calculated', 'estimated', 'unmapped', 'unaccounted')),
  psa_company_id         bigint REFERENCES billrecon.psa_companies (id) ON DELETE SET NULL,
  company_external_id    text,
  company                text,
  agreement_id           bigint REFERENCES billrecon.psa_agreements (id) ON DELETE SET NULL,
  agreement_external_id  text,
  agreement              text,
  billing_cycle          text,
  cycle_start            date,
  cycle_end              date,
  cycle_source           text CHECK (cycle_source IN ('hard', 'estimated')),
  line_item_id           bigint REFERENCES billrecon.psa_line_items (id) ON DELETE SET NULL,
  line_item_external_id  text,
  parent_line_item_id    bigint,
  product                text,
  product_name           text,
  description            text,
  effective_date         date,
  rule_id                bigint,
  rule_scope             text,
  integration_id         integer REFERENCES billrecon.integrations (id) ON DELETE SET NULL,
  integration            text,
  mode                   text,
  filters                jsonb,
  multiplier             numeric,
  vendor_account_id      bigint REFERENCES billrecon.vendor_accounts (id) ON DELETE SET NULL,
  vendor_account_external_id text,
  vendor_account         text,
  usage_kind             text,
  example_usage_id       bigint,
  group_line_item_id     text,
  group_size             integer,
  invoiced_qty           numeric,
  adjustment_qty         numeric,
  expected_qty           numeric,
  counted_qty            numeric,
  counted_accounts       integer,
  duplicates_counted_once integer,
  unit_price             numeric,
  variance               numeric,
  amount                 numeric(14, 2),
  monthly_amount         numeric(14, 2),
  invoiced_source        text CHECK (invoiced_source IN ('hard', 'estimated')),
  counted_source         text CHECK (counted_source IN ('hard', 'estimated')),
  price_source           text CHECK (price_source IN ('hard', 'estimated')),
  estimate_basis         text,
  input_warning          text,
  explanation            text
);
CREATE INDEX reconcile_results_run ON billrecon.reconcile_results (run_id, psa_company_id);
CREATE INDEX reconcile_results_line ON billrecon.reconcile_results (line_item_id, run_id) WHERE line_item_id IS NOT NULL;
-- BI filters by client and by integration across runs.
CREATE INDEX reconcile_results_client ON billrecon.reconcile_results (company_external_id, run_id);
CREATE INDEX reconcile_results_integration ON billrecon.reconcile_results (integration, run_id);
COMMENT ON TABLE billrecon.reconcile_results IS
  'Every result row of every reconcile run: one per PSA line item in force, one per unmapped vendor account with '
  'usage, one per unaccounted usage product of a client. Read it through billrecon.reconciled_lines and '
  'billrecon.discrepancies.';
COMMENT ON COLUMN billrecon.reconcile_results.id IS 'Result row id';
COMMENT ON COLUMN billrecon.reconcile_results.run_id IS 'The reconcile run';
COMMENT ON COLUMN billrecon.reconcile_results.row_kind IS
  'line (a PSA line item), vendor_account (usage of a vendor account mapped to no client), unaccounted (usage of a '
  'client that no rule of the client counts)';
COMMENT ON COLUMN billrecon.reconcile_results.state IS
  'reconciled (compared with usage), ignored, custom_sql and manual (shown, not reconciled), adjustment (netted into '
  'its parent line), unmapped (a rule or client mapping is missing), unaccounted';
COMMENT ON COLUMN billrecon.reconcile_results.type IS
  'Discrepancy type: calculated (every input synced), estimated (some input inferred, see estimate_basis), unmapped '
  '(a mapping is missing), unaccounted (usage no rule captures); null for lines shown but not reconciled';
COMMENT ON COLUMN billrecon.reconcile_results.psa_company_id IS 'Internal id of the PSA company (billrecon.psa_companies.id)';
COMMENT ON COLUMN billrecon.reconcile_results.company_external_id IS 'The PSA''s id of the client';
COMMENT ON COLUMN billrecon.reconcile_results.company IS 'Client name at the time of the run';
COMMENT ON COLUMN billrecon.reconcile_results.agreement_id IS 'Internal id of the agreement';
COMMENT ON COLUMN billrecon.reconcile_results.agreement_external_id IS 'The PSA''s id of the agreement';
COMMENT ON COLUMN billrecon.reconcile_results.agreement IS 'Agreement name';
COMMENT ON COLUMN billrecon.reconcile_results.billing_cycle IS 'monthly, quarterly, annual, other or unknown';
COMMENT ON COLUMN billrecon.reconcile_results.cycle_start IS 'First day of the billing cycle containing the run''s period';
COMMENT ON COLUMN billrecon.reconcile_results.cycle_end IS 'Last day of that cycle';
COMMENT ON COLUMN billrecon.reconcile_results.cycle_source IS
  'hard when the cycle and its dates come from the PSA; estimated when the cycle or the agreement start is unknown';
COMMENT ON COLUMN billrecon.reconcile_results.line_item_id IS 'Internal id of the line item';
COMMENT ON COLUMN billrecon.reconcile_results.line_item_external_id IS 'The PSA''s id of the line item';
COMMENT ON COLUMN billrecon.reconcile_results.parent_line_item_id IS 'For adjustments: internal id of the line they net against';
COMMENT ON COLUMN billrecon.reconcile_results.product IS
  'Line: product code (or name). Unaccounted / vendor account rows: the vendor product, SKU or device class';
COMMENT ON COLUMN billrecon.reconcile_results.product_name IS 'Product name';
COMMENT ON COLUMN billrecon.reconcile_results.description IS 'Line description';
COMMENT ON COLUMN billrecon.reconcile_results.effective_date IS 'Line''s effective date';
COMMENT ON COLUMN billrecon.reconcile_results.rule_id IS 'The service rule applied (billrecon.service_rules.id at the time)';
COMMENT ON COLUMN billrecon.reconcile_results.rule_scope IS 'line or product: whose rule applied';
COMMENT ON COLUMN billrecon.reconcile_results.integration_id IS 'Integration whose usage was counted';
COMMENT ON COLUMN billrecon.reconcile_results.integration IS 'Its name at the time';
COMMENT ON COLUMN billrecon.reconcile_results.mode IS 'Counting mode of the rule';
COMMENT ON COLUMN billrecon.reconcile_results.filters IS 'Rule filters at the time';
COMMENT ON COLUMN billrecon.reconcile_results.multiplier IS 'Counted units per billed unit';
COMMENT ON COLUMN billrecon.reconcile_results.vendor_account_id IS 'vendor_account rows: internal id of the unmapped account';
COMMENT ON COLUMN billrecon.reconcile_results.vendor_account_external_id IS 'The vendor''s id of that account';
COMMENT ON COLUMN billrecon.reconcile_results.vendor_account IS 'Its name';
COMMENT ON COLUMN billrecon.reconcile_results.usage_kind IS 'vendor_account and unaccounted rows: device, licence, user or subscription';
COMMENT ON COLUMN billrecon.reconcile_results.example_usage_id IS 'unaccounted rows: one usage record of the group, for drill-down';
COMMENT ON COLUMN billrecon.reconcile_results.group_line_item_id IS
  'The PSA id of the line carrying the variance of this line''s group (lines of one client under one rule are '
  'reconciled together; the variance goes on the line with the latest effective date)';
COMMENT ON COLUMN billrecon.reconcile_results.group_size IS 'Number of lines in that group';
COMMENT ON COLUMN billrecon.reconcile_results.invoiced_qty IS 'Billed quantity of the line (hard: from the PSA)';
COMMENT ON COLUMN billrecon.reconcile_results.adjustment_qty IS
  'Quantity netted in from linked adjustment lines (quantity corrections; credits with a negative price net money, not seats)';
COMMENT ON COLUMN billrecon.reconcile_results.expected_qty IS
  'Units expected from billing: (billed + adjustments) x multiplier, summed over the group on the group''s line';
COMMENT ON COLUMN billrecon.reconcile_results.counted_qty IS 'Units counted in the vendor''s usage (on the group''s line)';
COMMENT ON COLUMN billrecon.reconcile_results.counted_accounts IS 'Vendor accounts of the client whose usage was counted';
COMMENT ON COLUMN billrecon.reconcile_results.duplicates_counted_once IS
  'asset rules: device records beyond the first of one machine (one serial number) the RMM reports, not counted';
COMMENT ON COLUMN billrecon.reconcile_results.unit_price IS 'Unit price (per billed unit), hard or estimated (price_source)';
COMMENT ON COLUMN billrecon.reconcile_results.variance IS
  'counted - expected, in counted units (0 on grouped lines that do not carry the group''s variance)';
COMMENT ON COLUMN billrecon.reconcile_results.amount IS
  'variance / multiplier x unit price, per billing cycle, rounded to cents: positive = under-billed revenue, '
  'negative = over-billed';
COMMENT ON COLUMN billrecon.reconcile_results.monthly_amount IS 'amount normalized to one month (quarterly / 3, annual / 12)';
COMMENT ON COLUMN billrecon.reconcile_results.invoiced_source IS 'hard (from the PSA) or estimated';
COMMENT ON COLUMN billrecon.reconcile_results.counted_source IS
  'hard (synced usage counted by a rule) or estimated (a manual line compared with an integration)';
COMMENT ON COLUMN billrecon.reconcile_results.price_source IS 'hard (the line''s price) or estimated (see estimate_basis)';
COMMENT ON COLUMN billrecon.reconcile_results.estimate_basis IS 'What was estimated and from what, in words';
COMMENT ON COLUMN billrecon.reconcile_results.input_warning IS
  'Why the row''s inputs may be unreliable: its integration''s (or the PSA''s) last sync failed, is stale or never ran';
COMMENT ON COLUMN billrecon.reconcile_results.explanation IS 'The row''s numbers and reasoning in one sentence';

CREATE TABLE billrecon.reconcile_run_clients (
  run_id              bigint NOT NULL REFERENCES billrecon.reconcile_runs (id) ON DELETE CASCADE,
  psa_company_id      bigint REFERENCES billrecon.psa_companies (id) ON DELETE SET NULL,
  company_external_id text NOT NULL,
  company             text NOT NULL,
  seat_count          numeric NOT NULL,
  devices             numeric NOT NULL,
  users               numeric NOT NULL,
  licences            numeric NOT NULL,
  subscriptions       numeric NOT NULL,
  PRIMARY KEY (run_id, company_external_id)
);
COMMENT ON TABLE billrecon.reconcile_run_clients IS
  'Per reconcile run and client: the seats its mapped vendor accounts reported at the time (excluded products left out)';
COMMENT ON COLUMN billrecon.reconcile_run_clients.run_id IS 'The reconcile run';
COMMENT ON COLUMN billrecon.reconcile_run_clients.psa_company_id IS 'Internal id of the client';
COMMENT ON COLUMN billrecon.reconcile_run_clients.company_external_id IS 'The PSA''s id of the client';
COMMENT ON COLUMN billrecon.reconcile_run_clients.company IS 'Client name at the time';
COMMENT ON COLUMN billrecon.reconcile_run_clients.seat_count IS 'devices + users + licences + subscriptions';
COMMENT ON COLUMN billrecon.reconcile_run_clients.devices IS 'Devices reported by RMMs';
COMMENT ON COLUMN billrecon.reconcile_run_clients.users IS 'Enabled users';
COMMENT ON COLUMN billrecon.reconcile_run_clients.licences IS 'Assigned licence units';
COMMENT ON COLUMN billrecon.reconcile_run_clients.subscriptions IS 'Subscription units';

-- billrecon.reconcile(period): compares every PSA line item in force with the
-- usage its rule counts, and records the run. Set-based SQL, statement by
-- statement, so a DBA can read and EXPLAIN each step (docs/reconciliation.md).

-- The quantity a usage record stands for when no rule says how to count it
-- (unmapped accounts, unaccounted usage, manual lines compared with an
-- integration): devices, subscriptions and licences as reported, enabled users.
CREATE FUNCTION billrecon._usage_quantity(u billrecon.usage_records)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN u.kind = 'user' AND NOT coalesce(u.enabled, true) THEN 0 ELSE u.quantity END;
COMMENT ON FUNCTION billrecon._usage_quantity(billrecon.usage_records) IS
  'Internal: the quantity a usage record stands for without a rule (disabled users count 0)';

-- What a manual line compared with an integration counts: devices of an RMM,
-- subscriptions of a distributor, licensed enabled users of Microsoft 365
-- (not its licences too: that would count people twice).
CREATE FUNCTION billrecon._compare_quantity(u billrecon.usage_records)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE u.kind
         WHEN 'licence' THEN 0
         WHEN 'user' THEN CASE WHEN coalesce(u.enabled, true) AND coalesce(u.licensed, true) THEN u.quantity ELSE 0 END
         ELSE u.quantity
       END;
COMMENT ON FUNCTION billrecon._compare_quantity(billrecon.usage_records) IS
  'Internal: the quantity a manual line''s compare_with integration contributes for the usage record';

-- One machine's identity across RMMs: its serial number (placeholders such
-- as "To Be Filled By O.E.M." are no identity), else its host name without a
-- DNS suffix ("PC-01.corp.local" = "pc-01"; a name with spaces is kept whole).
CREATE FUNCTION billrecon._serial_key(serial text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
         WHEN upper(regexp_replace(coalesce(serial, ''), '\s', '', 'g'))
              IN ('', '0', 'NONE', 'N/A', 'NA', 'DEFAULTSTRING', 'SYSTEMSERIALNUMBER', 'TOBEFILLEDBYO.E.M.',
                  '0123456789', '123456789', 'CHASSISSERIALNUMBER', 'NOTAPPLICABLE') THEN NULL
         ELSE upper(regexp_replace(serial, '\s', '', 'g'))
       END;
COMMENT ON FUNCTION billrecon._serial_key(text) IS
  'Internal: a serial number normalized for comparison, null for empty or placeholder serials';

CREATE FUNCTION billrecon._host_key(device_name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
         WHEN btrim(coalesce(device_name, '')) = '' THEN NULL
         WHEN device_name ~ '^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$' THEN lower(split_part(device_name, '.', 1))
         ELSE lower(btrim(device_name))
       END;
COMMENT ON FUNCTION billrecon._host_key(text) IS
  'Internal: a device name normalized for comparison (DNS suffix dropped from host names)';

-- The name people know a vendor product by: Microsoft reports licences by
-- SKU part number and id only; billrecon.microsoft_skus knows the names.
CREATE FUNCTION billrecon._usage_display_name(u billrecon.usage_records)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN u.kind = 'licence'
            THEN coalesce((SELECT k.display_name FROM billrecon.microsoft_skus k
                            WHERE k.part_number = upper(u.product)), u.product_name)
            ELSE u.product_name END;
COMMENT ON FUNCTION billrecon._usage_display_name(billrecon.usage_records) IS
  'Internal: the product''s display name (for Microsoft licences from billrecon.microsoft_skus)';

-- Fresh planner statistics before counting: right after the first syncs
-- (or a large one) autovacuum may not have analyzed the tables yet, and a
-- plan made for empty tables is seconds slower on real ones.
CREATE FUNCTION billrecon._refresh_statistics()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $st$
DECLARE
  v_table text;
BEGIN
  FOR v_table IN
    SELECT s.relname FROM pg_stat_user_tables s
     WHERE s.schemaname = 'billrecon'
       AND s.relname IN ('psa_companies', 'psa_agreements', 'psa_line_items', 'vendor_accounts', 'usage_records',
                         'client_mappings', 'service_rules', 'reconcile_results')
       AND (coalesce(s.last_analyze, s.last_autoanalyze) IS NULL
            OR s.n_mod_since_analyze > 0.2 * greatest(s.n_live_tup, 1000))
  LOOP
    EXECUTE format('ANALYZE billrecon.%I', v_table);
  END LOOP;
END
$st$;
COMMENT ON FUNCTION billrecon._refresh_statistics() IS
  'Internal: analyzes the tables reconcile reads when they were never analyzed or changed much since';

-- The billrecon.* settings a run used, for its row.
CREATE FUNCTION billrecon._reconcile_settings()
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $set$
  SELECT coalesce(jsonb_object_agg(s.name, s.setting || coalesce(s.unit, '')), '{}')
    FROM pg_settings s
   WHERE s.name IN ('billrecon.inactive_after', 'billrecon.stale_after', 'billrecon.spot_check_min_delta',
                    'billrecon.spot_check_ratio')
$set$;
COMMENT ON FUNCTION billrecon._reconcile_settings() IS 'Internal: the billrecon.* settings recorded with a reconcile run';

-- A write-back that replaced a line (ConnectWise: the old addition ends, a
-- new one carries the quantity) hands the old line's own rule, note and
-- ignore flag to the new line once a sync has brought it in, so the review
-- done on the line stays with it.
CREATE FUNCTION billrecon._carry_over_replaced_lines()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $co$
DECLARE
  v_n integer;
  v_total integer := 0;
BEGIN
  CREATE TEMP TABLE IF NOT EXISTS billrecon_replaced_lines (old_id bigint, new_id bigint) ON COMMIT DROP;
  TRUNCATE pg_temp.billrecon_replaced_lines;
  INSERT INTO pg_temp.billrecon_replaced_lines
  SELECT DISTINCT p.line_item_id, nl.id
    FROM billrecon.proposed_changes p
    JOIN billrecon.psa_line_items nl ON nl.integration_id = p.psa_integration_id AND nl.external_id = p.push_reference
         AND nl.removed_at IS NULL
   WHERE p.status = 'pushed' AND p.line_item_id IS NOT NULL AND p.push_reference IS NOT NULL
     AND p.push_reference <> p.line_item_external_id;
  INSERT INTO billrecon.service_rules (line_item_id, integration_id, mode, filters, multiplier, round_up, source, preset_id)
  SELECT x.new_id, r.integration_id, r.mode, r.filters, r.multiplier, r.round_up, r.source, r.preset_id
    FROM pg_temp.billrecon_replaced_lines x JOIN billrecon.service_rules r ON r.line_item_id = x.old_id
  ON CONFLICT (line_item_id) WHERE line_item_id IS NOT NULL DO NOTHING;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  v_total := v_total + v_n;
  INSERT INTO billrecon.line_item_notes (line_item_id, note, tags, updated_by)
  SELECT x.new_id, n.note, n.tags, n.updated_by
    FROM pg_temp.billrecon_replaced_lines x JOIN billrecon.line_item_notes n ON n.line_item_id = x.old_id
  ON CONFLICT ON CONSTRAINT line_item_notes_pkey DO NOTHING;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  v_total := v_total + v_n;
  INSERT INTO billrecon.ignored_line_items (line_item_id, reason, ignored_by)
  SELECT x.new_id, g.reason, g.ignored_by
    FROM pg_temp.billrecon_replaced_lines x JOIN billrecon.ignored_line_items g ON g.line_item_id = x.old_id
  ON CONFLICT ON CONSTRAINT ignored_line_items_pkey DO NOTHING;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  RETURN v_total + v_n;
END
$co$;
COMMENT ON FUNCTION billrecon._carry_over_replaced_lines() IS
  'Internal: gives a line that replaced another through a write-back the old line''s own rule, note and ignore flag '
  '(called by billrecon.reconcile())';

CREATE FUNCTION billrecon.reconcile(period date DEFAULT current_date, psa_company_id text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $rec$
DECLARE
  v_company bigint;
  v_psa integer;
  v_psa_name text;
  v_run bigint;
  v_start date;
  v_end date;
  v_lines integer;
  v_count integer;
  v_amount numeric;
  v_notes text[];
BEGIN
  IF reconcile.period IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'period must not be null',
      DETAIL = 'reconcile() reconciles the billing period (calendar month) containing the date it is given.',
      HINT = 'Call billrecon.reconcile() for the current month or billrecon.reconcile(''2026-10-01'') for October.';
  END IF;
  v_psa := billrecon._default_psa();
  SELECT i.name INTO v_psa_name FROM billrecon.integrations i WHERE i.id = v_psa;
  IF reconcile.psa_company_id IS NOT NULL THEN
    v_company := billrecon._psa_company(reconcile.psa_company_id);
  END IF;
  PERFORM billrecon._carry_over_replaced_lines();
  PERFORM billrecon._refresh_statistics();
  v_start := date_trunc('month', reconcile.period)::date;
  v_end := (v_start + interval '1 month' - interval '1 day')::date;

  INSERT INTO billrecon.reconcile_runs (period, period_start, period_end, psa_integration_id, psa_integration, run_by,
                                        settings, client_id, client_external_id)
  VALUES (reconcile.period, v_start, v_end, v_psa, v_psa_name, billrecon._acting_role(), billrecon._reconcile_settings(),
          v_company, reconcile.psa_company_id)
  RETURNING id INTO v_run;

  -- Inputs: every enabled integration's health and the age of its data.
  INSERT INTO billrecon.reconcile_run_inputs (run_id, integration_id, integration, kind, side, status, last_success_at,
                                              last_sync_run_id, last_error)
  SELECT v_run, s.integration_id, s.integration, s.kind, s.side, s.status, s.last_success_at, s.last_run_id,
         s.last_error
    FROM billrecon._integration_health s
   WHERE s.enabled;

  -- 1. Every line item of the default PSA in force on the period's last day,
  --    with the rule that applies and why it is or is not reconciled.
  INSERT INTO billrecon.reconcile_results (
    run_id, row_kind, state, psa_company_id, company_external_id, company, agreement_id, agreement_external_id,
    agreement, billing_cycle, cycle_start, cycle_end, cycle_source, line_item_id, line_item_external_id,
    parent_line_item_id, product, product_name, description, effective_date, rule_id, rule_scope, integration_id,
    integration, mode, filters, multiplier, invoiced_qty, adjustment_qty, unit_price, invoiced_source, price_source)
  SELECT v_run, 'line',
         CASE
           WHEN g.line_item_id IS NOT NULL THEN 'ignored'
           WHEN parent.id IS NOT NULL THEN 'adjustment'
           WHEN r.id IS NULL THEN 'unmapped'
           WHEN r.mode = 'custom_sql' THEN 'custom_sql'
           WHEN r.mode = 'manual' AND ci.id IS NULL THEN 'manual'
           WHEN NOT EXISTS (
             SELECT 1 FROM billrecon.client_mappings m
               JOIN billrecon.vendor_accounts va ON va.id = m.vendor_account_id
              WHERE m.psa_company_id = c.id AND va.removed_at IS NULL
                AND va.integration_id = coalesce(ci.id, r.integration_id)) THEN 'unmapped'
           ELSE 'reconciled'
         END,
         c.id, c.external_id, c.name, a.id, a.external_id, a.name, a.billing_cycle, cy.cycle_start, cy.cycle_end,
         CASE WHEN a.billing_cycle = 'monthly' OR (a.billing_cycle IN ('quarterly', 'annual') AND a.start_date IS NOT NULL)
              THEN 'hard' ELSE 'estimated' END,
         l.id, l.external_id, parent.id, coalesce(l.product_code, l.product_name), l.product_name, l.description,
         l.effective_date, r.id, CASE WHEN r.id IS NULL THEN NULL WHEN r.line_item_id IS NULL THEN 'product' ELSE 'line' END,
         coalesce(ci.id, ri.id), coalesce(ci.name, ri.name), r.mode, r.filters, r.multiplier,
         l.quantity, 0, l.unit_price, 'hard', CASE WHEN l.unit_price IS NOT NULL THEN 'hard' END
    FROM billrecon.psa_line_items l
    JOIN billrecon.psa_agreements a ON a.id = l.agreement_id
    JOIN billrecon.psa_companies c ON c.id = l.company_id
    CROSS JOIN LATERAL billrecon.billing_cycle(
      CASE WHEN a.billing_cycle IN ('monthly', 'quarterly', 'annual') THEN a.billing_cycle ELSE 'monthly' END,
      reconcile.period, a.start_date) cy
    LEFT JOIN billrecon.service_rules r ON r.id = billrecon._line_rule(l)
    LEFT JOIN billrecon.integrations ri ON ri.id = r.integration_id
    LEFT JOIN billrecon.integrations ci ON r.mode = 'manual' AND ci.name = r.filters->>'compare_with'
    LEFT JOIN billrecon.ignored_line_items g ON g.line_item_id = l.id
    LEFT JOIN billrecon.line_item_parents lp ON lp.line_item_id = l.id
    LEFT JOIN billrecon.psa_line_items parent ON parent.id = coalesce(lp.parent_line_item_id, l.parent_line_item_id)
   WHERE l.integration_id = v_psa AND (v_company IS NULL OR l.company_id = v_company)
     AND l.removed_at IS NULL AND a.removed_at IS NULL AND c.removed_at IS NULL
     AND (l.effective_date IS NULL OR l.effective_date <= v_end)
     AND (l.cancel_date IS NULL OR l.cancel_date > v_end)
     AND (a.start_date IS NULL OR a.start_date <= v_end)
     AND (a.end_date IS NULL OR a.end_date >= v_end)
     AND (NOT a.cancelled OR a.cancelled_date > v_end);

  -- The run's rows are new to the planner: without statistics it plans the
  -- group joins below for a handful of rows (seconds instead of
  -- milliseconds on a large book). ANALYZE samples, so this stays cheap.
  IF v_company IS NULL THEN   -- a run of one client is small enough for any plan
    ANALYZE billrecon.reconcile_results;
  END IF;

  -- 2. Adjustments net into their parent: a quantity correction (price zero or
  --    positive) adds its signed quantity; a credit (negative price) nets
  --    money, not seats, and adds nothing.
  UPDATE billrecon.reconcile_results p
     SET adjustment_qty = adj.qty
    FROM (SELECT x.parent_line_item_id, sum(CASE WHEN coalesce(x.unit_price, 0) >= 0 THEN x.invoiced_qty ELSE 0 END) AS qty
            FROM billrecon.reconcile_results x
           WHERE x.run_id = v_run AND x.state = 'adjustment'
           GROUP BY x.parent_line_item_id) adj
   WHERE p.run_id = v_run AND p.line_item_id = adj.parent_line_item_id;

  -- 3. Missing unit prices: the same product's price on the client's other
  --    lines, else the median over every client's lines of the product.
  UPDATE billrecon.reconcile_results t
     SET unit_price = e.price, price_source = 'estimated', estimate_basis = e.basis
    FROM (SELECT x.id,
                 coalesce(own.price, med.price) AS price,
                 CASE
                   WHEN own.price IS NOT NULL THEN
                     format('unit price taken from %s other %s line(s) of this product for this client', own.n, x.billing_cycle)
                   WHEN med.price IS NOT NULL THEN
                     format('unit price is the median of %s other %s line(s) of this product', med.n, x.billing_cycle)
                   ELSE 'no unit price known for this product: amount unknown'
                 END AS basis
            FROM billrecon.reconcile_results x
            LEFT JOIN LATERAL (
              SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY o.unit_price) AS price, count(*) AS n
                FROM billrecon.psa_line_items o
                JOIN billrecon.psa_agreements oa ON oa.id = o.agreement_id AND oa.billing_cycle = x.billing_cycle
               WHERE o.company_id = x.psa_company_id AND o.removed_at IS NULL AND o.unit_price IS NOT NULL
                 AND o.id <> x.line_item_id AND coalesce(o.product_code, o.product_name) = x.product
              HAVING count(*) > 0) own ON true
            LEFT JOIN LATERAL (
              SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY o.unit_price) AS price, count(*) AS n
                FROM billrecon.psa_line_items o
                JOIN billrecon.psa_agreements oa ON oa.id = o.agreement_id AND oa.billing_cycle = x.billing_cycle
               WHERE o.integration_id = v_psa AND o.removed_at IS NULL AND o.unit_price IS NOT NULL
                 AND o.id <> x.line_item_id AND coalesce(o.product_code, o.product_name) = x.product
              HAVING count(*) > 0) med ON own.price IS NULL
           WHERE x.run_id = v_run AND x.row_kind = 'line' AND x.state = 'reconciled' AND x.unit_price IS NULL) e
   WHERE t.id = e.id;

  -- 4. Count. Lines of one client under one rule form a group: expected is the
  --    sum of (billed + adjustments) x multiplier; the variance goes on the
  --    line with the latest effective date, priced at its unit price.
  WITH grp AS (
    SELECT x.psa_company_id, x.rule_id, x.integration_id, x.mode, x.filters, x.multiplier,
           billrecon._rule_filter(x.filters) AS f,
           sum((x.invoiced_qty + x.adjustment_qty) * x.multiplier) AS expected,
           count(*) AS n,
           (array_agg(x.id ORDER BY x.effective_date DESC NULLS LAST, x.line_item_id DESC))[1] AS report_id,
           (array_agg(x.line_item_external_id ORDER BY x.effective_date DESC NULLS LAST, x.line_item_id DESC))[1]
             AS report_line
      FROM billrecon.reconcile_results x
     WHERE x.run_id = v_run AND x.state = 'reconciled'
     GROUP BY x.psa_company_id, x.rule_id, x.integration_id, x.mode, x.filters, x.multiplier
  ), counted AS (
    SELECT g.*,
           -- A machine the RMM reports twice (one serial number) is one seat.
           CASE WHEN g.mode = 'asset' THEN k.machines ELSE k.qty END AS qty,
           CASE WHEN g.mode = 'asset' THEN k.qty - k.machines ELSE 0 END AS duplicates,
           k.accounts
      FROM grp g
      CROSS JOIN LATERAL (
        SELECT coalesce(sum(CASE WHEN g.mode = 'manual' THEN billrecon._compare_quantity(u)
                                 ELSE billrecon._filter_quantity(g.mode, g.f, u) END), 0) AS qty,
               count(DISTINCT coalesce(billrecon._serial_key(u.serial_number), 'record ' || u.id))
                 FILTER (WHERE g.mode = 'asset' AND billrecon._filter_captures(g.mode, g.f, u)) AS machines,
               count(DISTINCT va.id) AS accounts
          FROM billrecon.client_mappings m
          JOIN billrecon.vendor_accounts va ON va.id = m.vendor_account_id
               AND va.integration_id = g.integration_id AND va.removed_at IS NULL
          LEFT JOIN billrecon.usage_records u ON u.account_id = va.id AND u.removed_at IS NULL
               -- (billrecon._usage_excluded, written out: a function with a
               -- subquery is not inlined, and this runs once per record)
               AND NOT EXISTS (SELECT 1 FROM billrecon.excluded_vendor_products e
                                WHERE e.integration_id = u.integration_id
                                  AND lower(e.product) IN (lower(coalesce(u.product, '')),
                                                           lower(coalesce(u.product_name, ''))))
         WHERE m.psa_company_id = g.psa_company_id) k
  )
  UPDATE billrecon.reconcile_results t
     SET group_line_item_id = c.report_line,
         group_size = c.n,
         expected_qty = CASE WHEN t.id = c.report_id THEN c.expected
                             ELSE (t.invoiced_qty + t.adjustment_qty) * t.multiplier END,
         counted_qty = CASE WHEN t.id = c.report_id THEN c.qty END,
         counted_accounts = c.accounts,
         duplicates_counted_once = CASE WHEN t.id = c.report_id AND c.duplicates > 0 THEN c.duplicates END,
         variance = CASE WHEN t.id = c.report_id THEN c.qty - c.expected ELSE 0 END,
         counted_source = CASE WHEN t.mode = 'manual' THEN 'estimated' ELSE 'hard' END
    FROM counted c
   WHERE t.run_id = v_run AND t.state = 'reconciled'
     AND t.psa_company_id = c.psa_company_id AND t.rule_id = c.rule_id AND t.integration_id = c.integration_id;

  UPDATE billrecon.reconcile_results t
     SET amount = round(t.variance / t.multiplier * t.unit_price, 2),
         monthly_amount = billrecon.monthly_amount(round(t.variance / t.multiplier * t.unit_price, 2),
                                                   CASE WHEN t.billing_cycle IN ('quarterly', 'annual')
                                                        THEN t.billing_cycle ELSE 'monthly' END),
         type = CASE WHEN t.price_source = 'estimated' OR t.unit_price IS NULL OR t.counted_source = 'estimated'
                       OR t.cycle_source = 'estimated'
                     THEN 'estimated' ELSE 'calculated' END,
         estimate_basis = nullif(concat_ws('; ', t.estimate_basis,
                                    CASE WHEN t.counted_source = 'estimated' THEN
                                      format('manual line compared with %s', t.integration) END,
                                    CASE WHEN t.cycle_source = 'estimated' THEN
                                      CASE WHEN t.billing_cycle IN ('quarterly', 'annual')
                                           THEN format('%s cycle without an agreement start date: calendar %s assumed',
                                                       t.billing_cycle,
                                                       CASE t.billing_cycle WHEN 'quarterly' THEN 'quarter' ELSE 'year' END)
                                           ELSE format('billing cycle %s: monthly assumed', t.billing_cycle) END END), '')
   WHERE t.run_id = v_run AND t.state = 'reconciled';

  UPDATE billrecon.reconcile_results t
     SET type = 'unmapped'
   WHERE t.run_id = v_run AND t.state = 'unmapped';

  -- 5. Usage of vendor accounts mapped to no client (and not ignored as no
  --    client): unmapped, per account and kind.
  INSERT INTO billrecon.reconcile_results (
    run_id, row_kind, state, type, integration_id, integration, vendor_account_id, vendor_account_external_id,
    vendor_account, usage_kind, product, counted_qty, counted_source, example_usage_id)
  SELECT v_run, 'vendor_account', 'unmapped', 'unmapped', i.id, i.name, va.id, va.external_id, va.name, u.kind,
         CASE u.kind WHEN 'device' THEN 'devices' WHEN 'licence' THEN 'licences' WHEN 'user' THEN 'users'
                     ELSE 'subscriptions' END,
         sum(billrecon._usage_quantity(u)), 'hard', min(u.id)
    FROM billrecon.vendor_accounts va
    JOIN billrecon.integrations i ON i.id = va.integration_id AND i.enabled
    JOIN billrecon.usage_records u ON u.account_id = va.id AND u.removed_at IS NULL
   WHERE va.removed_at IS NULL AND v_company IS NULL   -- a run of one client leaves them out
     AND NOT EXISTS (SELECT 1 FROM billrecon.client_mappings m WHERE m.vendor_account_id = va.id)
     AND NOT EXISTS (SELECT 1 FROM billrecon.ignored_vendor_accounts g WHERE g.vendor_account_id = va.id)
     AND NOT billrecon._usage_excluded(u)
   GROUP BY i.id, i.name, va.id, va.external_id, va.name, u.kind
  HAVING sum(billrecon._usage_quantity(u)) > 0;

  -- 6. Usage of a mapped client that no rule of the client captures (and no
  --    exclusion covers): unaccounted, per client, integration and product.
  --    A custom_sql rule captures all of its integration's usage for the
  --    client (the PSA counts it); a manual line compared with an
  --    integration captures nothing. The same seats seen by a second system
  --    are not new revenue: a device another RMM reports (same serial or host
  --    name) and a rule of the client counts there; a licence or
  --    subscription of a product a line of the client bills by name; a
  --    distributor's subscription of a product the client's tenant reports as
  --    licences (the licences speak for them); users, where the tenant reports
  --    licences (the licences are what is billed), and unlicensed users.
  INSERT INTO billrecon.reconcile_results (
    run_id, row_kind, state, type, psa_company_id, company_external_id, company, integration_id, integration,
    usage_kind, product, product_name, counted_qty, counted_accounts, counted_source, variance, example_usage_id)
  WITH lines AS MATERIALIZED (   -- the run's lines with their filters unpacked once
    SELECT x.psa_company_id, x.integration_id, x.mode, billrecon._rule_filter(x.filters) AS f
      FROM billrecon.reconcile_results x
     WHERE x.run_id = v_run AND x.row_kind = 'line' AND x.state IN ('reconciled', 'ignored', 'custom_sql', 'unmapped')
       AND x.integration_id IS NOT NULL
  )
  SELECT v_run, 'unaccounted', 'unaccounted', 'unaccounted', c.id, c.external_id, c.name, i.id, i.name, u.kind,
         CASE u.kind WHEN 'device' THEN coalesce(u.device_class, u.product, 'other')
                     WHEN 'user' THEN 'licensed users'
                     ELSE coalesce(u.product, u.product_name, '') END,
         max(CASE WHEN u.kind IN ('licence', 'subscription') THEN billrecon._usage_display_name(u) END),
         sum(billrecon._usage_quantity(u)), count(DISTINCT va.id), 'hard', sum(billrecon._usage_quantity(u)), min(u.id)
    FROM billrecon.client_mappings m
    JOIN billrecon.psa_companies c ON c.id = m.psa_company_id AND c.removed_at IS NULL
    JOIN billrecon.vendor_accounts va ON va.id = m.vendor_account_id AND va.removed_at IS NULL
    JOIN billrecon.integrations i ON i.id = va.integration_id AND i.enabled
    JOIN billrecon.usage_records u ON u.account_id = va.id AND u.removed_at IS NULL
   WHERE (v_company IS NULL OR m.psa_company_id = v_company)
     AND NOT EXISTS (SELECT 1 FROM billrecon.excluded_vendor_products e
                      WHERE e.integration_id = u.integration_id
                        AND lower(e.product) IN (lower(coalesce(u.product, '')), lower(coalesce(u.product_name, ''))))
     AND (u.kind <> 'user' OR (coalesce(u.licensed, true) AND NOT EXISTS (
            SELECT 1 FROM billrecon.usage_records l
             WHERE l.account_id = va.id AND l.kind = 'licence' AND l.removed_at IS NULL
               AND NOT billrecon._usage_excluded(l))))
     AND NOT (u.kind = 'device' AND EXISTS (
            SELECT 1 FROM billrecon.client_mappings m2
              JOIN billrecon.vendor_accounts va2 ON va2.id = m2.vendor_account_id AND va2.removed_at IS NULL
                   AND va2.integration_id <> i.id
              JOIN billrecon.usage_records d ON d.account_id = va2.id AND d.removed_at IS NULL AND d.kind = 'device'
             WHERE m2.psa_company_id = c.id
               AND (billrecon._serial_key(d.serial_number) = billrecon._serial_key(u.serial_number)
                    OR (billrecon._host_key(d.device_name) = billrecon._host_key(u.device_name)
                        AND (billrecon._serial_key(d.serial_number) IS NULL
                             OR billrecon._serial_key(u.serial_number) IS NULL)))
               AND EXISTS (SELECT 1 FROM billrecon.reconcile_results x
                            WHERE x.run_id = v_run AND x.row_kind = 'line' AND x.psa_company_id = c.id
                              AND x.integration_id = d.integration_id
                              AND x.state IN ('reconciled', 'ignored', 'custom_sql', 'unmapped')
                              AND (x.mode = 'custom_sql' OR billrecon._rule_captures(x.mode, x.filters, d)))))
     AND NOT (u.kind IN ('licence', 'subscription') AND billrecon._usage_display_name(u) IS NOT NULL AND EXISTS (
            SELECT 1 FROM billrecon.reconcile_results x
             WHERE x.run_id = v_run AND x.row_kind = 'line' AND x.psa_company_id = c.id
               AND x.state IN ('reconciled', 'ignored', 'custom_sql', 'unmapped')
               AND strpos(lower(coalesce(x.product_name, '')), lower(billrecon._usage_display_name(u))) > 0))
     AND NOT (u.kind = 'subscription' AND u.product_name IS NOT NULL AND EXISTS (
            SELECT 1 FROM billrecon.client_mappings m2
              JOIN billrecon.vendor_accounts va2 ON va2.id = m2.vendor_account_id AND va2.removed_at IS NULL
              JOIN billrecon.usage_records l ON l.account_id = va2.id AND l.removed_at IS NULL AND l.kind = 'licence'
             WHERE m2.psa_company_id = c.id
               AND lower(billrecon._usage_display_name(l)) = lower(u.product_name)))
     AND NOT EXISTS (
           SELECT 1 FROM lines x
            WHERE x.psa_company_id = c.id AND x.integration_id = i.id
              AND (x.mode = 'custom_sql' OR billrecon._filter_captures(x.mode, x.f, u)))
   GROUP BY c.id, c.external_id, c.name, i.id, i.name, u.kind, 11
  HAVING sum(billrecon._usage_quantity(u)) > 0;

  -- Unaccounted usage is priced like the lines that bill the same kind of
  -- usage (their rule would count it, whatever the vendor; the client's own
  -- lines included): the median of their monthly price per counted unit.
  UPDATE billrecon.reconcile_results t
     SET unit_price = e.price, price_source = 'estimated', billing_cycle = 'monthly',
         amount = round(t.counted_qty * e.price, 2), monthly_amount = round(t.counted_qty * e.price, 2),
         estimate_basis = CASE WHEN e.price IS NULL
                               THEN 'no line of any client bills this usage: amount unknown'
                               ELSE format('priced at the median monthly unit price of %s line(s) whose rule would '
                                           'count this usage', e.n) END
    FROM (WITH rules AS MATERIALIZED (   -- each distinct rule once, with its lines' monthly unit prices
            SELECT o.mode, billrecon._rule_filter(o.filters) AS f,
                   array_agg(billrecon.monthly_amount(o.unit_price / o.multiplier, 'monthly'))
                     FILTER (WHERE o.billing_cycle = 'monthly') AS monthly_lines,
                   array_agg(billrecon.monthly_amount(o.unit_price / o.multiplier,
                               CASE WHEN o.billing_cycle IN ('quarterly', 'annual') THEN o.billing_cycle
                                    ELSE 'monthly' END)) AS all_lines
              FROM billrecon.reconcile_results o
             WHERE o.run_id = v_run AND o.row_kind = 'line' AND o.state = 'reconciled'
               AND o.price_source = 'hard' AND o.mode <> 'manual'
             GROUP BY o.mode, o.filters)
          SELECT x.id, p.price, p.n
            FROM billrecon.reconcile_results x
            JOIN billrecon.usage_records u ON u.id = x.example_usage_id
            LEFT JOIN LATERAL (
              -- monthly lines when there are any: they price a month directly
              SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY v.price) AS price, count(*) AS n
                FROM (SELECT CASE WHEN bool_or(r.monthly_lines IS NOT NULL) OVER () THEN r.monthly_lines
                                  ELSE r.all_lines END AS prices
                        FROM rules r
                       WHERE billrecon._filter_captures(r.mode, r.f, u)) m
                CROSS JOIN LATERAL unnest(m.prices) AS v(price)
              HAVING count(*) > 0) p ON true
           WHERE x.run_id = v_run AND x.row_kind = 'unaccounted') e
   WHERE t.id = e.id;

  -- Seats per client, kept with the run.
  INSERT INTO billrecon.reconcile_run_clients (run_id, psa_company_id, company_external_id, company, seat_count,
                                               devices, users, licences, subscriptions)
  SELECT v_run, c.id, c.external_id, c.name, coalesce(sum(billrecon._usage_quantity(u)), 0),
         coalesce(sum(billrecon._usage_quantity(u)) FILTER (WHERE u.kind = 'device'), 0),
         coalesce(sum(billrecon._usage_quantity(u)) FILTER (WHERE u.kind = 'user'), 0),
         coalesce(sum(billrecon._usage_quantity(u)) FILTER (WHERE u.kind = 'licence'), 0),
         coalesce(sum(billrecon._usage_quantity(u)) FILTER (WHERE u.kind = 'subscription'), 0)
    FROM billrecon.psa_companies c
    LEFT JOIN billrecon.client_mappings m ON m.psa_company_id = c.id
    LEFT JOIN billrecon.vendor_accounts va ON va.id = m.vendor_account_id AND va.removed_at IS NULL
    LEFT JOIN billrecon.integrations i ON i.id = va.integration_id AND i.enabled
    LEFT JOIN billrecon.usage_records u ON u.account_id = va.id AND i.id IS NOT NULL AND u.removed_at IS NULL
         AND NOT billrecon._usage_excluded(u)
   WHERE c.id IN (SELECT x.psa_company_id FROM billrecon.reconcile_results x WHERE x.run_id = v_run)
     AND (v_company IS NULL OR c.id = v_company)
   GROUP BY c.id, c.external_id, c.name;

  -- Inputs that may be unreliable: said once in a WARNING and the run's
  -- notes, and on every row that depends on them.
  UPDATE billrecon.reconcile_results t
     SET input_warning = w.warning
    FROM (SELECT x.id,
                 string_agg(format('%s is %s: %s', i.integration, i.status,
                                   coalesce(s.status_reason, 'no sync')), '; ' ORDER BY i.integration) AS warning
            FROM billrecon.reconcile_results x
            JOIN billrecon.reconcile_run_inputs i ON i.run_id = v_run AND i.status <> 'green'
                 AND (i.integration_id = x.integration_id OR (x.row_kind = 'line' AND i.integration_id = v_psa))
            LEFT JOIN billrecon._integration_health s ON s.integration_id = i.integration_id
           WHERE x.run_id = v_run
           GROUP BY x.id) w
   WHERE t.id = w.id;
  SELECT array_agg(format('%s (%s) is %s: %s', i.integration, i.kind, i.status,
                          coalesce(s.status_reason, 'no sync')) ORDER BY i.integration)
    INTO v_notes
    FROM billrecon.reconcile_run_inputs i
    LEFT JOIN billrecon._integration_health s ON s.integration_id = i.integration_id
   WHERE i.run_id = v_run AND i.status <> 'green';
  IF NOT EXISTS (SELECT 1 FROM billrecon.reconcile_results x WHERE x.run_id = v_run AND x.row_kind = 'line') THEN
    v_notes := coalesce(v_notes, '{}') ||
               format('no line item of %s is in force on %s: nothing billed to compare (has it been synced?)',
                      v_psa_name, v_end);
  END IF;
  IF v_notes IS NOT NULL AND cardinality(v_notes) > 0 THEN
    RAISE WARNING 'reconcile run % used data that may be incomplete', v_run
      USING DETAIL = array_to_string(v_notes, E'\n'),
            HINT = 'Sync the integrations named (billrecon.sync or billrecon.sync_async) and reconcile again; '
                   'the affected rows say so in input_warning.';
  END IF;

  PERFORM billrecon._explain_results(v_run);

  SELECT count(*),
         count(*) FILTER (WHERE billrecon._is_discrepancy(x.type, x.variance)),
         coalesce(sum(x.amount) FILTER (WHERE billrecon._is_discrepancy(x.type, x.variance)), 0)
    INTO v_lines, v_count, v_amount
    FROM billrecon.reconcile_results x WHERE x.run_id = v_run;
  UPDATE billrecon.reconcile_runs
     SET finished_at = clock_timestamp(), line_count = v_lines, discrepancy_count = v_count,
         discrepancy_amount = v_amount, notes = coalesce(v_notes, '{}')
   WHERE id = v_run;

  PERFORM billrecon._raise_change_cards(v_run);
  RETURN v_run;
END
$rec$;
COMMENT ON FUNCTION billrecon.reconcile(date, text) IS
  'Reconciles the billing period (calendar month) containing period: every line item of the default PSA in force on '
  'the month''s last day is compared with the usage its service rule counts for the client; unmapped accounts and '
  'unaccounted usage are recorded too. Stores the run and raises change cards; returns the run id. Read the results '
  'in billrecon.discrepancies and billrecon.reconciled_invoices. With psa_company_id (the PSA''s id of a client) '
  'only that client is reconciled (a quick re-check after a fix; unaccounted usage is then priced from its own '
  'lines, and unmapped vendor accounts are left out).';

-- One sentence per result row saying what was compared and what it means.
CREATE FUNCTION billrecon._explain_results(run_id bigint)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $exp$
  UPDATE billrecon.reconcile_results t
     SET explanation = CASE
       WHEN t.state = 'reconciled' AND t.counted_qty IS NULL THEN
         format('Reconciled with %s other line(s) of the same rule for this client; the group''s variance is on line %s.',
                t.group_size - 1, t.group_line_item_id)
       WHEN t.state = 'reconciled' THEN
         format('Counted %s in %s (%s%s) for %s account(s); billed %s%s%s = %s expected%s. %s',
                trim_scale(t.counted_qty), t.integration, t.mode,
                CASE WHEN t.filters IS NOT NULL AND t.filters <> '{}' THEN ' ' || t.filters::text ELSE '' END,
                t.counted_accounts,
                CASE WHEN t.group_size > 1 THEN format('%s lines, ', t.group_size) ELSE '' END,
                CASE WHEN t.group_size > 1 THEN format('%s', trim_scale(t.expected_qty / t.multiplier))
                     ELSE trim_scale(t.invoiced_qty + t.adjustment_qty)::text END,
                CASE WHEN t.multiplier <> 1 THEN format(' x %s', trim_scale(t.multiplier)) ELSE '' END,
                trim_scale(t.expected_qty),
                CASE WHEN t.adjustment_qty <> 0 THEN format(' (adjustments %s)', trim_scale(t.adjustment_qty)) ELSE '' END
                  || CASE WHEN t.duplicates_counted_once > 0
                          THEN format('; %s device record(s) of machines reported twice counted once',
                                      t.duplicates_counted_once) ELSE '' END,
                CASE
                  WHEN t.variance = 0 THEN 'No discrepancy.'
                  WHEN t.unit_price IS NULL THEN
                    format('%s by %s; amount unknown: no unit price.',
                           CASE WHEN t.variance > 0 THEN 'Under-billed' ELSE 'Over-billed' END, trim_scale(abs(t.variance)))
                  ELSE format('%s by %s: %s%s x %s = %s per %s cycle%s.',
                              CASE WHEN t.variance > 0 THEN 'Under-billed' ELSE 'Over-billed' END,
                              trim_scale(abs(t.variance)), trim_scale(t.variance),
                              CASE WHEN t.multiplier <> 1 THEN format(' / %s', trim_scale(t.multiplier)) ELSE '' END,
                              trim_scale(t.unit_price), t.amount,
                              CASE WHEN t.billing_cycle IN ('quarterly', 'annual') THEN t.billing_cycle ELSE 'monthly' END,
                              CASE WHEN t.monthly_amount IS DISTINCT FROM t.amount
                                   THEN format(' (%s a month)', t.monthly_amount) ELSE '' END)
                END)
       WHEN t.state = 'ignored' THEN
         'Ignored' || coalesce(': ' || (SELECT g.reason FROM billrecon.ignored_line_items g
                                         WHERE g.line_item_id = t.line_item_id), '') || '. Never reconciled.'
       WHEN t.state = 'custom_sql' THEN
         'The PSA computes this quantity itself (custom_sql rule): shown, never reconciled nor written back.'
       WHEN t.state = 'manual' THEN 'Manual line: no automatic count (add compare_with to compare it with an integration).'
       WHEN t.state = 'adjustment' THEN
         CASE WHEN coalesce(t.unit_price, 0) < 0
              THEN format('Credit of %s x %s on line %s: nets money, not seats.', trim_scale(t.invoiced_qty),
                          trim_scale(t.unit_price), (SELECT p.external_id FROM billrecon.psa_line_items p
                                                     WHERE p.id = t.parent_line_item_id))
              ELSE format('Adjustment of line %s: nets %s units into it.',
                          (SELECT p.external_id FROM billrecon.psa_line_items p WHERE p.id = t.parent_line_item_id),
                          trim_scale(t.invoiced_qty)) END
       WHEN t.state = 'unmapped' AND t.row_kind = 'line' AND t.rule_id IS NULL THEN
         'No service rule covers this line: map it (billrecon.map_line_item or billrecon.map_product) or ignore it.'
       WHEN t.state = 'unmapped' AND t.row_kind = 'line' THEN
         format('The client has no vendor account mapped on %s, so its usage cannot be counted: map one with '
                'billrecon.map_client() (not counted 0 and over-billed).', t.integration)
       WHEN t.row_kind = 'vendor_account' THEN
         format('%s %s reported by %s for vendor account "%s" (%s), which is mapped to no client: map it with '
                'billrecon.map_client() or confirm a suggestion.', trim_scale(t.counted_qty), t.product, t.integration,
                t.vendor_account, t.vendor_account_external_id)
       WHEN t.row_kind = 'unaccounted' THEN
         format('%s in %s for this client, counted by no rule of the client: %s. Bill it (map a line to a rule '
                'that counts it) or exclude the product (billrecon.exclude_vendor_product).',
                concat_ws(' ', trim_scale(t.counted_qty), coalesce(t.product_name, t.product),
                          CASE t.usage_kind WHEN 'device' THEN 'device(s)' WHEN 'licence' THEN 'licence(s)'
                                            WHEN 'subscription' THEN 'subscription unit(s)' END),
                t.integration,
                CASE WHEN t.amount IS NULL THEN 'unbilled usage, price unknown'
                     ELSE format('about %s a month of unbilled usage at %s each', t.amount, trim_scale(t.unit_price)) END)
     END || coalesce(' Caution: ' || t.input_warning || '.', '')
   WHERE t.run_id = _explain_results.run_id
$exp$;
COMMENT ON FUNCTION billrecon._explain_results(bigint) IS 'Internal: writes the explanation of every result row of a run';

-- Whether a result row is a discrepancy: a missing mapping, unaccounted usage,
-- or a reconciled line whose count differs from its billing.
CREATE FUNCTION billrecon._is_discrepancy(type text, variance numeric)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN type IN ('unmapped', 'unaccounted') OR (type IN ('calculated', 'estimated') AND variance <> 0);
COMMENT ON FUNCTION billrecon._is_discrepancy(text, numeric) IS
  'Internal: whether a result row of this type and variance is a discrepancy';

-- Report views over reconcile runs (history) and over the current synced data.
-- Money columns are numeric rounded to cents; ids are the source systems' ids
-- as text; enums are text. Filter by run_id (billrecon.last_run_id() is the
-- newest run), psa_company_id, integration and type.

CREATE FUNCTION billrecon.last_run_id()
RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $lr$
  SELECT r.id FROM billrecon.reconcile_runs r
   WHERE r.finished_at IS NOT NULL AND r.client_external_id IS NULL
   ORDER BY r.period_start DESC, r.id DESC
   LIMIT 1
$lr$;
COMMENT ON FUNCTION billrecon.last_run_id() IS
  'Id of the newest finished reconcile run of every client for the latest period reconciled (null before the first; '
  'runs of one client and re-runs of past months left out): WHERE run_id = billrecon.last_run_id()';

CREATE VIEW billrecon.reconciled_lines AS
SELECT t.run_id,
       r.period_start,
       t.company_external_id AS psa_company_id,
       t.company,
       t.agreement_external_id AS agreement_id,
       t.agreement,
       t.line_item_external_id AS line_item_id,
       t.product,
       t.product_name,
       t.integration,
       t.mode,
       t.state,
       t.type,
       t.invoiced_qty,
       t.adjustment_qty,
       t.multiplier,
       t.expected_qty,
       t.counted_qty,
       round(t.unit_price, 2)::numeric(14, 2) AS unit_price,
       t.variance,
       t.amount,
       t.monthly_amount,
       t.billing_cycle,
       t.cycle_start,
       t.cycle_end,
       t.invoiced_source,
       t.counted_source,
       t.price_source,
       t.cycle_source,
       t.estimate_basis,
       t.input_warning,
       t.explanation,
       t.row_kind,
       t.usage_kind,
       t.vendor_account_external_id AS vendor_account_id,
       t.vendor_account,
       t.group_line_item_id,
       t.group_size,
       t.id AS result_id
  FROM billrecon.reconcile_results t
  JOIN billrecon.reconcile_runs r ON r.id = t.run_id;
COMMENT ON VIEW billrecon.reconciled_lines IS
  'Every result row of every reconcile run, discrepancy or not: each PSA line item in force (reconciled, or shown as '
  'ignored / custom_sql / manual / adjustment / unmapped), each unmapped vendor account with usage, each unaccounted '
  'usage product. billrecon.discrepancies is the subset that needs attention.';

CREATE VIEW billrecon.discrepancies AS
SELECT l.run_id, l.psa_company_id, l.company, l.agreement_id, l.line_item_id, l.product, l.integration, l.mode,
       l.invoiced_qty, l.counted_qty, l.unit_price, l.variance, l.amount, l.type,
       l.monthly_amount, l.expected_qty, l.multiplier, l.agreement, l.product_name, l.billing_cycle,
       l.invoiced_source, l.counted_source, l.price_source, l.estimate_basis, l.input_warning, l.explanation,
       l.vendor_account_id, l.vendor_account, l.usage_kind, l.period_start, l.result_id
  FROM billrecon.reconciled_lines l
 WHERE billrecon._is_discrepancy(l.type, l.variance);
COMMENT ON VIEW billrecon.discrepancies IS
  'Discrepancies of every run, one row per line (or unmapped account, or unaccounted product): counted usage differs '
  'from billing (calculated / estimated), a mapping is missing (unmapped), or usage is billed by no line '
  '(unaccounted). amount > 0 is under-billed revenue, < 0 over-billed. Filter by run_id, psa_company_id, integration, '
  'type; order by abs(amount) DESC for the biggest first.';

-- Grouped views: by client account, by service (product), by contract.
CREATE VIEW billrecon.discrepancies_by_client AS
SELECT d.run_id, d.psa_company_id, d.company,
       count(*) AS discrepancy_count,
       sum(d.amount)::numeric(14, 2) AS amount,
       sum(abs(d.amount))::numeric(14, 2) AS absolute_amount,
       sum(d.monthly_amount)::numeric(14, 2) AS monthly_amount,
       count(*) FILTER (WHERE d.type = 'calculated') AS calculated,
       count(*) FILTER (WHERE d.type = 'estimated') AS estimated,
       count(*) FILTER (WHERE d.type = 'unmapped') AS unmapped,
       count(*) FILTER (WHERE d.type = 'unaccounted') AS unaccounted
  FROM billrecon.discrepancies d
 GROUP BY d.run_id, d.psa_company_id, d.company;
COMMENT ON VIEW billrecon.discrepancies_by_client IS
  'Discrepancies per run and client (account): count by type and amounts. Unmapped vendor accounts have no client '
  'and form one row with psa_company_id null.';

CREATE VIEW billrecon.discrepancies_by_service AS
SELECT d.run_id, d.product, max(d.product_name) AS product_name, d.integration,
       count(*) AS discrepancy_count,
       count(DISTINCT d.psa_company_id) AS clients,
       sum(d.variance) AS variance,
       sum(d.amount)::numeric(14, 2) AS amount,
       sum(abs(d.amount))::numeric(14, 2) AS absolute_amount,
       sum(d.monthly_amount)::numeric(14, 2) AS monthly_amount
  FROM billrecon.discrepancies d
 GROUP BY d.run_id, d.product, d.integration;
COMMENT ON VIEW billrecon.discrepancies_by_service IS
  'Discrepancies per run, service (PSA product, or vendor product for unaccounted usage) and integration';

CREATE VIEW billrecon.discrepancies_by_contract AS
SELECT d.run_id, d.psa_company_id, d.company, d.agreement_id, d.agreement, max(d.billing_cycle) AS billing_cycle,
       count(*) AS discrepancy_count,
       sum(d.amount)::numeric(14, 2) AS amount,
       sum(abs(d.amount))::numeric(14, 2) AS absolute_amount,
       sum(d.monthly_amount)::numeric(14, 2) AS monthly_amount
  FROM billrecon.discrepancies d
 WHERE d.agreement_id IS NOT NULL
 GROUP BY d.run_id, d.psa_company_id, d.company, d.agreement_id, d.agreement;
COMMENT ON VIEW billrecon.discrepancies_by_contract IS
  'Discrepancies of PSA lines per run and agreement (contract); unaccounted usage and unmapped accounts have no '
  'agreement and are not in this view';

CREATE VIEW billrecon.reconciled_invoices AS
WITH per_client AS (
  SELECT t.run_id, t.psa_company_id AS company_key, max(t.company_external_id) AS psa_company_id,
         max(t.company) AS company,
         count(*) FILTER (WHERE t.row_kind = 'line') AS service_count,
         count(*) FILTER (WHERE billrecon._is_discrepancy(t.type, t.variance)) AS discrepancy_count,
         coalesce(sum(t.amount) FILTER (WHERE billrecon._is_discrepancy(t.type, t.variance)), 0) AS discrepancy_amount,
         coalesce(sum(abs(t.amount)) FILTER (WHERE billrecon._is_discrepancy(t.type, t.variance)), 0) AS absolute_amount,
         coalesce(sum(t.monthly_amount) FILTER (WHERE billrecon._is_discrepancy(t.type, t.variance)), 0) AS monthly_amount,
         string_agg(DISTINCT t.billing_cycle, ', ' ORDER BY t.billing_cycle) FILTER (WHERE t.row_kind = 'line')
           AS billing_cycle,
         array_agg(DISTINCT t.integration ORDER BY t.integration) FILTER (WHERE t.integration IS NOT NULL) AS integrations
    FROM billrecon.reconcile_results t
   WHERE t.psa_company_id IS NOT NULL OR t.company_external_id IS NOT NULL
   GROUP BY t.run_id, t.psa_company_id
)
SELECT c.run_id, c.psa_company_id, c.company, coalesce(rc.seat_count, 0) AS seat_count, c.service_count, c.discrepancy_count,
       c.discrepancy_amount::numeric(14, 2) AS discrepancy_amount,
       c.absolute_amount::numeric(14, 2) AS absolute_amount,
       c.monthly_amount::numeric(14, 2) AS monthly_amount,
       c.billing_cycle,
       array_to_string(c.integrations, ', ') AS integrations,
       coalesce((SELECT CASE max(CASE i.status WHEN 'red' THEN 3 WHEN 'yellow' THEN 2 ELSE 1 END)
                          WHEN 3 THEN 'red' WHEN 2 THEN 'yellow' ELSE 'green' END
                   FROM billrecon.reconcile_run_inputs i
                  WHERE i.run_id = c.run_id
                    AND (i.integration = ANY (c.integrations) OR i.integration = r.psa_integration)), 'green')
         AS worst_integration_status,
       r.period_start
  FROM per_client c
  JOIN billrecon.reconcile_runs r ON r.id = c.run_id
  LEFT JOIN billrecon.reconcile_run_clients rc ON rc.run_id = c.run_id AND rc.company_external_id = c.psa_company_id;
COMMENT ON VIEW billrecon.reconciled_invoices IS
  'One row per client per reconcile run: what its invoice looks like against usage. Sort by absolute_amount DESC to '
  'see where the money is.';

CREATE VIEW billrecon.reconcile_run_comparison AS
WITH ranked AS (
  SELECT i.*, row_number() OVER (PARTITION BY i.psa_company_id ORDER BY i.run_id DESC) AS n
    FROM billrecon.reconciled_invoices i
)
SELECT cur.psa_company_id, cur.company,
       cur.run_id AS last_run_id, prev.run_id AS previous_run_id,
       cur.period_start AS last_period, prev.period_start AS previous_period,
       cur.discrepancy_count AS last_discrepancy_count, prev.discrepancy_count AS previous_discrepancy_count,
       cur.discrepancy_amount AS last_discrepancy_amount, prev.discrepancy_amount AS previous_discrepancy_amount,
       (cur.discrepancy_amount - coalesce(prev.discrepancy_amount, 0))::numeric(14, 2) AS amount_change,
       cur.seat_count AS last_seat_count, prev.seat_count AS previous_seat_count,
       cur.seat_count - coalesce(prev.seat_count, 0) AS seat_change
  FROM ranked cur
  LEFT JOIN ranked prev ON prev.psa_company_id = cur.psa_company_id AND prev.n = 2
 WHERE cur.n = 1;
COMMENT ON VIEW billrecon.reconcile_run_comparison IS
  'Each client''s last reconcile run beside its previous one: discrepancies, amounts and seats, and how they changed';

-- Per-client tabs over the current data.
CREATE VIEW billrecon.client_integrations AS
SELECT c.external_id AS psa_company_id, c.name AS company, i.name AS integration, i.kind,
       va.external_id AS vendor_account_id, va.name AS vendor_account, m.source AS mapped_by,
       (SELECT count(*) FROM billrecon.usage_records u WHERE u.account_id = va.id AND u.removed_at IS NULL) AS seats,
       s.status, s.last_success_at
  FROM billrecon.client_mappings m
  JOIN billrecon.psa_companies c ON c.id = m.psa_company_id
  JOIN billrecon.vendor_accounts va ON va.id = m.vendor_account_id AND va.removed_at IS NULL
  JOIN billrecon.integrations i ON i.id = va.integration_id
  LEFT JOIN billrecon._integration_health s ON s.integration_id = i.id;
COMMENT ON VIEW billrecon.client_integrations IS
  'Per client: the vendor accounts mapped to it, the integration each comes from, its seats and the integration''s health';

CREATE VIEW billrecon.client_seats AS
SELECT c.external_id AS psa_company_id, c.name AS company, i.name AS integration,
       va.external_id AS vendor_account_id, u.external_id AS seat_id,
       coalesce(u.device_name, u.user_name, u.product_name, u.product, u.external_id) AS seat,
       u.kind, u.product, u.product_name, u.quantity, u.device_class, u.os_name, u.serial_number,
       u.licensed, u.enabled, u.last_active_at,
       billrecon._usage_excluded(u) AS excluded
  FROM billrecon.client_mappings m
  JOIN billrecon.psa_companies c ON c.id = m.psa_company_id
  JOIN billrecon.vendor_accounts va ON va.id = m.vendor_account_id AND va.removed_at IS NULL
  JOIN billrecon.integrations i ON i.id = va.integration_id
  JOIN billrecon.usage_records u ON u.account_id = va.id AND u.removed_at IS NULL;
COMMENT ON VIEW billrecon.client_seats IS
  'Per client: every seat (device, licence, user, subscription) its mapped vendor accounts report';

CREATE VIEW billrecon.client_services AS
SELECT m.psa_company_id, m.company, m.agreement_id, m.agreement, a.billing_cycle, m.line_item_id, m.product,
       m.product_name, m.quantity, round(m.unit_price, 2)::numeric(14, 2) AS unit_price, m.integration, m.mode, m.multiplier, m.state
  FROM billrecon.service_mapping m
  JOIN billrecon.integrations psa ON psa.is_default_psa
  JOIN billrecon.psa_agreements a ON a.integration_id = psa.id AND a.external_id = m.agreement_id;
COMMENT ON VIEW billrecon.client_services IS
  'Per client: the PSA line items (services) it is billed for, with the rule that counts each';

-- Services whose billing data itself looks wrong.
CREATE VIEW billrecon.flagged_services AS
WITH lines AS (
  SELECT l.*, c.external_id AS company_ext, c.name AS company, a.external_id AS agreement_ext,
         coalesce(l.product_code, l.product_name) AS product,
         (lp.line_item_id IS NOT NULL OR l.parent_line_item_id IS NOT NULL) AS linked,
         (lp.line_item_id IS NOT NULL OR l.parent_line_item_id IS NOT NULL OR l.unit_price < 0) AS adjustment
    FROM billrecon.psa_line_items l
    JOIN billrecon.integrations psa ON psa.id = l.integration_id AND psa.is_default_psa
    JOIN billrecon.psa_agreements a ON a.id = l.agreement_id AND a.removed_at IS NULL AND NOT a.cancelled
    JOIN billrecon.psa_companies c ON c.id = l.company_id
    LEFT JOIN billrecon.line_item_parents lp ON lp.line_item_id = l.id
   WHERE l.removed_at IS NULL
     AND (l.cancel_date IS NULL OR l.cancel_date > current_date)
), flags AS (
  SELECT x.id, 'missing_unit_price' AS flag, 'the line has no unit price: amounts are estimated' AS detail
    FROM lines x WHERE x.unit_price IS NULL AND NOT x.adjustment
  UNION ALL
  SELECT x.id, 'inconsistent_price',
         format('%s lines of %s on this agreement have %s different unit prices (%s)', p.n, x.product, p.prices, p.list)
    FROM lines x
    JOIN (SELECT y.agreement_id, y.product, count(*) AS n, count(DISTINCT y.unit_price) AS prices,
                 string_agg(DISTINCT trim_scale(y.unit_price)::text, ', ') AS list
            FROM lines y WHERE NOT y.adjustment AND y.unit_price IS NOT NULL
           GROUP BY y.agreement_id, y.product HAVING count(DISTINCT y.unit_price) > 1) p
      ON p.agreement_id = x.agreement_id AND p.product = x.product
   WHERE NOT x.adjustment AND x.unit_price IS NOT NULL
  UNION ALL
  SELECT x.id, 'negative_quantity', format('quantity %s on a line that is not an adjustment', trim_scale(x.quantity))
    FROM lines x WHERE x.quantity < 0 AND NOT x.adjustment
  UNION ALL
  SELECT x.id, 'orphan_adjustment',
         format('credit line (unit price %s) linked to no parent: link it with billrecon.link_adjustment()',
                trim_scale(x.unit_price))
    FROM lines x WHERE x.unit_price < 0 AND NOT x.linked
  UNION ALL
  SELECT x.id, 'duplicate_line', format('%s identical lines (product, quantity, price, description) on this agreement', d.n)
    FROM lines x
    JOIN (SELECT y.agreement_id, y.product, y.quantity, y.unit_price, y.description, y.effective_date, count(*) AS n
            FROM lines y
           GROUP BY y.agreement_id, y.product, y.quantity, y.unit_price, y.description, y.effective_date
          HAVING count(*) > 1) d
      ON d.agreement_id = x.agreement_id AND d.product IS NOT DISTINCT FROM x.product AND d.quantity = x.quantity
     AND d.unit_price IS NOT DISTINCT FROM x.unit_price AND d.description IS NOT DISTINCT FROM x.description
     AND d.effective_date IS NOT DISTINCT FROM x.effective_date
)
SELECT x.company_ext AS psa_company_id, x.agreement_ext AS agreement_id, x.external_id AS line_item_id, x.product,
       f.flag, x.company, x.product_name, x.quantity, round(x.unit_price, 2)::numeric(14, 2) AS unit_price, f.detail
  FROM flags f
  JOIN lines x ON x.id = f.id;
COMMENT ON VIEW billrecon.flagged_services IS
  'Current PSA lines whose billing data looks wrong: missing_unit_price, inconsistent_price (one product at several '
  'prices on one agreement), negative_quantity (outside adjustments), orphan_adjustment (a credit linked to no '
  'line), duplicate_line. A line can carry several flags.';

-- Seats without activity for longer than billrecon.inactive_after.
CREATE VIEW billrecon.inactive_seats AS
WITH s AS (
  SELECT coalesce(nullif(current_setting('billrecon.inactive_after', true), ''), '21d')::interval AS inactive_after
)
SELECT i.name AS integration, va.external_id AS vendor_account_id, c.external_id AS psa_company_id,
       coalesce(u.device_name, u.user_name, u.product_name, u.product, u.external_id) AS seat,
       u.kind, u.last_active_at,
       (current_date - u.last_active_at::date) AS days_inactive,
       c.name AS company, u.product, u.device_class, u.external_id AS seat_id,
       p.monthly_cost, p.line_item_id AS billed_on_line_item_id
  FROM billrecon.usage_records u
  CROSS JOIN s
  JOIN billrecon.vendor_accounts va ON va.id = u.account_id AND va.removed_at IS NULL
  JOIN billrecon.integrations i ON i.id = u.integration_id
  LEFT JOIN billrecon.client_mappings m ON m.vendor_account_id = va.id
  LEFT JOIN billrecon.psa_companies c ON c.id = m.psa_company_id
  LEFT JOIN LATERAL (
    SELECT billrecon.monthly_amount(x.unit_price / x.multiplier,
             CASE WHEN x.billing_cycle IN ('quarterly', 'annual') THEN x.billing_cycle ELSE 'monthly' END)::numeric(14, 2)
             AS monthly_cost,
           x.line_item_external_id AS line_item_id
      FROM billrecon.reconcile_results x
     WHERE x.run_id = billrecon.last_run_id() AND x.psa_company_id = c.id AND x.integration_id = u.integration_id
       AND x.state = 'reconciled' AND x.unit_price IS NOT NULL AND x.mode <> 'manual'
       AND billrecon._rule_quantity(x.mode, x.filters, u) > 0
     ORDER BY x.effective_date DESC NULLS LAST, x.id DESC
     LIMIT 1) p ON true
 WHERE u.removed_at IS NULL AND u.kind IN ('device', 'user')
   AND u.last_active_at < now() - s.inactive_after
   AND NOT (u.kind = 'user' AND NOT coalesce(u.enabled, true));
COMMENT ON VIEW billrecon.inactive_seats IS
  'Devices and enabled users with no activity for longer than billrecon.inactive_after (default 21 days), with the '
  'monthly cost each carries (the monthly unit price of the line that bills it in the last reconcile run)';

-- The same machine reported twice: by serial number, else by host name.
CREATE VIEW billrecon.duplicate_seats AS
WITH d AS (
  SELECT u.*, m.psa_company_id,
         billrecon._serial_key(u.serial_number) AS serial_key,
         billrecon._host_key(u.device_name) AS host_key,
         coalesce(m.psa_company_id::text, 'account:' || u.account_id) AS owner
    FROM billrecon.usage_records u
    LEFT JOIN billrecon.client_mappings m ON m.vendor_account_id = u.account_id
   WHERE u.removed_at IS NULL AND u.kind = 'device'
), keyed AS (
  SELECT d.*, 'serial' AS match_on, d.serial_key AS match_value FROM d WHERE d.serial_key IS NOT NULL
  UNION ALL
  SELECT d.*, 'hostname', d.host_key FROM d WHERE d.host_key IS NOT NULL
), groups AS (
  SELECT k.owner, k.match_on, k.match_value, count(*) AS seats,
         count(DISTINCT k.integration_id) AS integrations_count,
         count(DISTINCT k.serial_key) AS serials, count(k.serial_key) AS with_serial,
         array_agg(k.id ORDER BY k.id) AS ids
    FROM keyed k
   GROUP BY k.owner, k.match_on, k.match_value
  HAVING count(*) > 1
)
SELECT c.external_id AS psa_company_id, c.name AS company, g.match_on, g.match_value, g.seats,
       g.seats - 1 AS extra_seats,
       (SELECT string_agg(DISTINCT i.name, ', ') FROM billrecon.usage_records u
          JOIN billrecon.integrations i ON i.id = u.integration_id WHERE u.id = ANY (g.ids)) AS integrations,
       (SELECT string_agg(coalesce(u.device_name, u.external_id), ', ' ORDER BY u.id) FROM billrecon.usage_records u
         WHERE u.id = ANY (g.ids)) AS devices,
       (SELECT array_agg(u.external_id ORDER BY u.id) FROM billrecon.usage_records u WHERE u.id = ANY (g.ids))
         AS seat_ids,
       CASE WHEN g.integrations_count > 1 THEN 'reported by several RMMs' ELSE 'reported twice by one RMM' END AS detail
  FROM groups g
  LEFT JOIN billrecon.psa_companies c ON g.owner = c.id::text
 -- A shared host name is evidence only where serials do not tell the
 -- machines apart (none, or one serial beside records without any).
 WHERE g.match_on = 'serial' OR g.serials = 0 OR (g.serials = 1 AND g.with_serial < g.seats);
COMMENT ON VIEW billrecon.duplicate_seats IS
  'One device reported more than once for one client (or one unmapped account), in one RMM or in two: same serial '
  'number, or same host name where serials do not already explain it. extra_seats is what would be billed twice.';

-- Vendor cost beside PSA price.
CREATE VIEW billrecon.margin AS
SELECT m.psa_company_id, m.company, m.agreement_id, m.line_item_id, m.product, m.integration,
       m.quantity, m.multiplier, round(m.unit_price, 2)::numeric(14, 2) AS unit_price,
       round(l.unit_cost, 2)::numeric(14, 2) AS psa_unit_cost,
       round(k.cost / k.units, 4) AS vendor_unit_cost,
       k.units AS vendor_units,
       round(m.unit_price - m.multiplier * k.cost / k.units, 2)::numeric(14, 2) AS margin_per_unit,
       round(m.quantity * (m.unit_price - m.multiplier * k.cost / k.units), 2)::numeric(14, 2) AS margin,
       CASE WHEN m.unit_price <> 0
            THEN round(100 * (m.unit_price - m.multiplier * k.cost / k.units) / m.unit_price, 1) END AS margin_percent,
       m.unit_price <= m.multiplier * k.cost / k.units AS at_or_below_cost
  FROM billrecon.service_mapping m
  JOIN billrecon.integrations psa ON psa.is_default_psa
  JOIN billrecon.psa_line_items l ON l.integration_id = psa.id AND l.external_id = m.line_item_id
  JOIN billrecon.service_rules r ON r.id = m.rule_id
  CROSS JOIN LATERAL (
    SELECT sum(u.unit_cost * billrecon._rule_quantity(r.mode, r.filters, u)) AS cost,
           sum(billrecon._rule_quantity(r.mode, r.filters, u)) AS units
      FROM billrecon.client_mappings cm
      JOIN billrecon.vendor_accounts va ON va.id = cm.vendor_account_id AND va.integration_id = r.integration_id
           AND va.removed_at IS NULL
      JOIN billrecon.usage_records u ON u.account_id = va.id AND u.removed_at IS NULL AND u.unit_cost IS NOT NULL
     WHERE cm.psa_company_id = l.company_id) k
 WHERE m.state = 'mapped' AND m.unit_price IS NOT NULL AND k.units > 0;
COMMENT ON VIEW billrecon.margin IS
  'Lines whose usage comes with a vendor cost (Pax8 partner cost, Partner Center price): the PSA unit price beside the '
  'vendor''s cost per billed unit (unit cost x multiplier), the margin, and whether the line is sold at or below cost';

-- Change cards: what a reconcile run proposes to change in the PSA, and the
-- decisions taken on it (docs/workflow.md).

CREATE TABLE billrecon.proposed_changes (
  id                    bigserial PRIMARY KEY,
  kind                  text NOT NULL CHECK (kind IN ('quantity', 'new_revenue', 'revert')),
  run_id                bigint REFERENCES billrecon.reconcile_runs (id) ON DELETE SET NULL,
  last_run_id           bigint REFERENCES billrecon.reconcile_runs (id) ON DELETE SET NULL,
  result_id             bigint,
  psa_integration_id    integer REFERENCES billrecon.integrations (id) ON DELETE SET NULL,
  psa_company_id        bigint REFERENCES billrecon.psa_companies (id) ON DELETE SET NULL,
  company_external_id   text,
  company               text,
  line_item_id          bigint REFERENCES billrecon.psa_line_items (id) ON DELETE SET NULL,
  line_item_external_id text,
  agreement_external_id text,
  product               text,
  product_name          text,
  vendor_integration_id integer REFERENCES billrecon.integrations (id) ON DELETE SET NULL,
  usage_kind            text,
  type                  text CHECK (type IN ('calculated', 'estimated', 'unaccounted')),
  current_qty           numeric NOT NULL,
  proposed_qty          numeric NOT NULL CHECK (proposed_qty >= 0),
  delta                 numeric GENERATED ALWAYS AS (proposed_qty - current_qty) STORED,
  unit_price            numeric,
  amount                numeric(14, 2),
  monthly_amount        numeric(14, 2),
  billing_cycle         text,
  status                text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'approved', 'dismissed', 'pushed', 'failed')),
  effective_date        date,
  flags                 text[] NOT NULL DEFAULT '{}',
  explanation           text,
  dismiss_reason        text,
  decided_by            name,
  decided_at            timestamptz,
  push_attempts         integer NOT NULL DEFAULT 0,
  pushed_at             timestamptz,
  pushed_by             name,
  push_error            text,
  push_reference        text,
  push_note             text,
  reverts_card_id       bigint REFERENCES billrecon.proposed_changes (id) ON DELETE SET NULL,
  reverted_by_card_id   bigint REFERENCES billrecon.proposed_changes (id) ON DELETE SET NULL,
  note                  text,
  tags                  text[] NOT NULL DEFAULT '{}',
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  card_key              text GENERATED ALWAYS AS (
                          CASE kind WHEN 'new_revenue'
                               THEN 'n:' || psa_company_id || ':' || vendor_integration_id || ':' || product
                               ELSE 'q:' || line_item_id END) STORED
);
CREATE INDEX proposed_changes_line ON billrecon.proposed_changes (line_item_id, status);
CREATE INDEX proposed_changes_key ON billrecon.proposed_changes (card_key, status);
CREATE INDEX proposed_changes_run ON billrecon.proposed_changes (run_id);
CREATE INDEX proposed_changes_client ON billrecon.proposed_changes (company_external_id, status);
CREATE INDEX proposed_changes_status ON billrecon.proposed_changes (status, effective_date);
CREATE INDEX proposed_changes_new_revenue ON billrecon.proposed_changes (psa_company_id, vendor_integration_id, product)
  WHERE kind = 'new_revenue';
COMMENT ON TABLE billrecon.proposed_changes IS
  'Proposed changes to PSA quantities raised by reconcile runs (one card per line with a calculated or estimated '
  'discrepancy, one new_revenue card per unaccounted usage product), and what was decided and pushed. Read through '
  'billrecon.change_cards; change only through billrecon.approve / dismiss / set_effective_date / '
  'push_changes / revert_change / note_card.';
COMMENT ON COLUMN billrecon.proposed_changes.id IS 'Card id (card_id in the functions)';
COMMENT ON COLUMN billrecon.proposed_changes.kind IS
  'quantity (change a line''s quantity), new_revenue (usage no line bills: add a line in the PSA), revert (puts a '
  'pushed change back)';
COMMENT ON COLUMN billrecon.proposed_changes.run_id IS 'Reconcile run that raised the card';
COMMENT ON COLUMN billrecon.proposed_changes.last_run_id IS 'Last reconcile run that still found the discrepancy';
COMMENT ON COLUMN billrecon.proposed_changes.result_id IS 'The discrepancy (billrecon.reconcile_results.id) of that run';
COMMENT ON COLUMN billrecon.proposed_changes.psa_integration_id IS 'The PSA the change is written to';
COMMENT ON COLUMN billrecon.proposed_changes.psa_company_id IS 'Internal id of the client';
COMMENT ON COLUMN billrecon.proposed_changes.company_external_id IS 'The PSA''s id of the client';
COMMENT ON COLUMN billrecon.proposed_changes.company IS 'Client name';
COMMENT ON COLUMN billrecon.proposed_changes.line_item_id IS 'Internal id of the line to change (null for new_revenue)';
COMMENT ON COLUMN billrecon.proposed_changes.line_item_external_id IS 'The PSA''s id of that line';
COMMENT ON COLUMN billrecon.proposed_changes.agreement_external_id IS 'The PSA''s id of the line''s agreement';
COMMENT ON COLUMN billrecon.proposed_changes.product IS 'PSA product (quantity cards) or vendor product (new_revenue)';
COMMENT ON COLUMN billrecon.proposed_changes.product_name IS 'Product name (the vendor''s, for new_revenue)';
COMMENT ON COLUMN billrecon.proposed_changes.vendor_integration_id IS 'new_revenue: the integration reporting the usage';
COMMENT ON COLUMN billrecon.proposed_changes.usage_kind IS 'new_revenue: device, licence, user or subscription';
COMMENT ON COLUMN billrecon.proposed_changes.type IS 'Type of the discrepancy behind the card';
COMMENT ON COLUMN billrecon.proposed_changes.current_qty IS 'Quantity the PSA bills now';
COMMENT ON COLUMN billrecon.proposed_changes.proposed_qty IS
  'Quantity that makes the variance zero, rounded up to whole units when the rule says so (the default)';
COMMENT ON COLUMN billrecon.proposed_changes.delta IS 'proposed_qty - current_qty';
COMMENT ON COLUMN billrecon.proposed_changes.unit_price IS 'Unit price of the line (or the estimate, for new_revenue)';
COMMENT ON COLUMN billrecon.proposed_changes.amount IS 'delta x unit price per billing cycle, rounded to cents';
COMMENT ON COLUMN billrecon.proposed_changes.monthly_amount IS 'amount normalized to one month';
COMMENT ON COLUMN billrecon.proposed_changes.billing_cycle IS 'Billing cycle of the line''s agreement';
COMMENT ON COLUMN billrecon.proposed_changes.status IS 'pending, approved, dismissed, pushed or failed';
COMMENT ON COLUMN billrecon.proposed_changes.effective_date IS
  'When the new quantity starts; set on approval (default: first day of the next month) or by set_effective_date';
COMMENT ON COLUMN billrecon.proposed_changes.flags IS
  'Spot-check flags: out_of_proportion (|delta| >= max(billrecon.spot_check_min_delta, billrecon.spot_check_ratio x '
  'current quantity)), new_revenue. Flagged cards need force => true in billrecon.approve().';
COMMENT ON COLUMN billrecon.proposed_changes.explanation IS 'The discrepancy''s explanation from the run';
COMMENT ON COLUMN billrecon.proposed_changes.dismiss_reason IS 'Why it was dismissed';
COMMENT ON COLUMN billrecon.proposed_changes.decided_by IS 'Role that approved or dismissed it';
COMMENT ON COLUMN billrecon.proposed_changes.decided_at IS 'When';
COMMENT ON COLUMN billrecon.proposed_changes.push_attempts IS 'Write-back attempts (billrecon.change_card_pushes has each)';
COMMENT ON COLUMN billrecon.proposed_changes.pushed_at IS 'When the PSA accepted the change';
COMMENT ON COLUMN billrecon.proposed_changes.pushed_by IS 'Role that pushed it';
COMMENT ON COLUMN billrecon.proposed_changes.push_error IS 'The PSA''s message when the last push failed';
COMMENT ON COLUMN billrecon.proposed_changes.push_reference IS 'The PSA''s id of what was written';
COMMENT ON COLUMN billrecon.proposed_changes.push_note IS 'How the change was written';
COMMENT ON COLUMN billrecon.proposed_changes.reverts_card_id IS 'revert cards: the card whose change it puts back';
COMMENT ON COLUMN billrecon.proposed_changes.reverted_by_card_id IS 'The revert card that put this change back';
COMMENT ON COLUMN billrecon.proposed_changes.note IS 'Reviewer''s note (billrecon.note_card)';
COMMENT ON COLUMN billrecon.proposed_changes.tags IS 'Reviewer''s tags';
COMMENT ON COLUMN billrecon.proposed_changes.created_at IS 'When the card was raised';
COMMENT ON COLUMN billrecon.proposed_changes.updated_at IS 'Last change';
COMMENT ON COLUMN billrecon.proposed_changes.card_key IS
  'What the card is about: q:<line> for a line''s quantity, n:<client>:<integration>:<product> for new revenue; a '
  'run refreshes or skips the card of the same key instead of raising another';

CREATE TABLE billrecon.change_card_pushes (
  id              bigserial PRIMARY KEY,
  card_id         bigint NOT NULL REFERENCES billrecon.proposed_changes (id) ON DELETE CASCADE,
  attempt         integer NOT NULL,
  started_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at     timestamptz,
  pushed_by       name NOT NULL,
  integration     text,
  line_item_id    text,
  quantity        numeric,
  effective_date  date,
  status          text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'pushed', 'failed')),
  quantity_before numeric,
  quantity_after  numeric,
  reference       text,
  note            text,
  error           text,
  requests        bigint
);
CREATE INDEX change_card_pushes_card ON billrecon.change_card_pushes (card_id);
COMMENT ON TABLE billrecon.change_card_pushes IS
  'Every attempt to write a card''s quantity to the PSA, with what the PSA answered';
COMMENT ON COLUMN billrecon.change_card_pushes.id IS 'Attempt id';
COMMENT ON COLUMN billrecon.change_card_pushes.card_id IS 'The card';
COMMENT ON COLUMN billrecon.change_card_pushes.attempt IS '1 for the first attempt, 2 for the first retry, ...';
COMMENT ON COLUMN billrecon.change_card_pushes.started_at IS 'When the attempt started';
COMMENT ON COLUMN billrecon.change_card_pushes.finished_at IS 'When it ended';
COMMENT ON COLUMN billrecon.change_card_pushes.pushed_by IS 'Role that ran billrecon.push_changes()';
COMMENT ON COLUMN billrecon.change_card_pushes.integration IS 'PSA integration written to';
COMMENT ON COLUMN billrecon.change_card_pushes.line_item_id IS 'The PSA''s id of the line';
COMMENT ON COLUMN billrecon.change_card_pushes.quantity IS 'Quantity written';
COMMENT ON COLUMN billrecon.change_card_pushes.effective_date IS 'From when';
COMMENT ON COLUMN billrecon.change_card_pushes.status IS 'running, pushed or failed';
COMMENT ON COLUMN billrecon.change_card_pushes.quantity_before IS 'Quantity billrecon had synced for the line';
COMMENT ON COLUMN billrecon.change_card_pushes.quantity_after IS 'Quantity the PSA reported afterwards';
COMMENT ON COLUMN billrecon.change_card_pushes.reference IS 'The PSA''s id of what was written';
COMMENT ON COLUMN billrecon.change_card_pushes.note IS 'How it was written (or that the PSA already held the quantity)';
COMMENT ON COLUMN billrecon.change_card_pushes.error IS 'The PSA''s message when it failed';
COMMENT ON COLUMN billrecon.change_card_pushes.requests IS 'API requests the attempt made';

CREATE TABLE billrecon.line_item_notes (
  line_item_id bigint PRIMARY KEY REFERENCES billrecon.psa_line_items (id) ON DELETE CASCADE,
  note         text,
  tags         text[] NOT NULL DEFAULT '{}',
  updated_by   name NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE billrecon.line_item_notes IS
  'Reviewer''s note and tags on a PSA line item; they stay with the line from month to month and show on its cards';
COMMENT ON COLUMN billrecon.line_item_notes.line_item_id IS 'Internal id of the line';
COMMENT ON COLUMN billrecon.line_item_notes.note IS 'The note';
COMMENT ON COLUMN billrecon.line_item_notes.tags IS 'Tags';
COMMENT ON COLUMN billrecon.line_item_notes.updated_by IS 'Role that wrote it';
COMMENT ON COLUMN billrecon.line_item_notes.updated_at IS 'When';

-- Raising cards from a run, deciding on them, proration preview, write-back.

-- The spot-check flags of a quantity change.
CREATE FUNCTION billrecon._spot_check_flags(current_qty numeric, delta numeric)
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $sc$
  SELECT CASE WHEN abs(delta) >= greatest(
                coalesce(nullif(current_setting('billrecon.spot_check_min_delta', true), '')::numeric, 10),
                coalesce(nullif(current_setting('billrecon.spot_check_ratio', true), '')::numeric, 0.5)
                  * abs(current_qty))
              THEN ARRAY['out_of_proportion'] ELSE ARRAY[]::text[] END
$sc$;
COMMENT ON FUNCTION billrecon._spot_check_flags(numeric, numeric) IS
  'Internal: {out_of_proportion} when |delta| >= max(billrecon.spot_check_min_delta, billrecon.spot_check_ratio x '
  'current quantity), else {}';

-- First day of the month after today: the default effective date.
CREATE FUNCTION billrecon._default_effective_date()
RETURNS date
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $de$ SELECT (date_trunc('month', current_date) + interval '1 month')::date $de$;
COMMENT ON FUNCTION billrecon._default_effective_date() IS
  'Internal: the default effective date of a change, the first day of the next month';

-- Turns a run's discrepancies into cards. A card already decided (approved,
-- failed, or pushed but not yet seen by a sync) is not raised again; a
-- dismissed card comes back only when its numbers change; a pending card is
-- refreshed; pending cards whose discrepancy is gone are withdrawn.
CREATE FUNCTION billrecon._raise_change_cards(run_id bigint)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $rc$
DECLARE
  v_run billrecon.reconcile_runs;
  v_raised integer;
  v_n integer;
BEGIN
  SELECT * INTO v_run FROM billrecon.reconcile_runs r WHERE r.id = _raise_change_cards.run_id;
  -- A re-run of a past month reports, but proposes nothing: its cards would
  -- undo or duplicate the newer month's.
  IF EXISTS (SELECT 1 FROM billrecon.reconcile_runs r
              WHERE r.period_start > v_run.period_start AND r.finished_at IS NOT NULL AND r.id <> v_run.id) THEN
    RETURN 0;
  END IF;

  CREATE TEMP TABLE IF NOT EXISTS billrecon_card_candidates (
    result_id bigint, kind text, psa_company_id bigint, company_external_id text, company text,
    line_item_id bigint, line_item_external_id text, agreement_external_id text, product text, product_name text,
    vendor_integration_id integer, usage_kind text, type text, current_qty numeric, proposed_qty numeric,
    unit_price numeric, billing_cycle text, explanation text, card_key text) ON COMMIT DROP;
  TRUNCATE pg_temp.billrecon_card_candidates;

  -- Quantity cards: the billed quantity that zeroes the group's variance,
  -- rounded up to whole units unless the rule says otherwise. More usage is
  -- added to the group's line (the latest); less usage is taken off the
  -- group's lines from the latest back, each down to zero at most, so a
  -- group whose newest line is too small to absorb a drop still gets cards.
  INSERT INTO pg_temp.billrecon_card_candidates
  SELECT x.id, 'quantity', x.psa_company_id, x.company_external_id, x.company, x.line_item_id,
         x.line_item_external_id, x.agreement_external_id, x.product, x.product_name, NULL, NULL, x.type,
         x.invoiced_qty,
         CASE WHEN coalesce(sr.round_up, true)
              THEN ceil(x.invoiced_qty + x.variance / x.multiplier)
              ELSE x.invoiced_qty + x.variance / x.multiplier END,
         x.unit_price, x.billing_cycle, x.explanation
    FROM billrecon.reconcile_results x
    LEFT JOIN billrecon.service_rules sr ON sr.id = x.rule_id
   WHERE x.run_id = v_run.id AND x.state = 'reconciled' AND x.counted_qty IS NOT NULL
     AND x.type IN ('calculated', 'estimated') AND x.variance > 0;
  INSERT INTO pg_temp.billrecon_card_candidates
  SELECT y.id, 'quantity', y.psa_company_id, y.company_external_id, y.company, y.line_item_id,
         y.line_item_external_id, y.agreement_external_id, y.product, y.product_name, NULL, NULL, y.type,
         y.invoiced_qty,
         CASE WHEN y.round_up THEN ceil(y.invoiced_qty - y.take) ELSE y.invoiced_qty - y.take END,
         y.unit_price, y.billing_cycle,
         CASE WHEN y.line_item_id = y.report_line THEN y.explanation
              ELSE format('Part of the group reported on line %s: %s', y.group_line_item_id, y.group_explanation) END
    FROM (SELECT z.*, least(greatest(z.invoiced_qty, 0), greatest(0, z.reduce - (z.before_this))) AS take
            FROM (SELECT l.*, g.reduce, g.report_line, g.group_explanation, g.type AS group_type,
                         coalesce(sr.round_up, true) AS round_up,
                         coalesce(sum(greatest(l.invoiced_qty, 0)) OVER (
                           PARTITION BY g.report_id ORDER BY l.effective_date DESC NULLS LAST, l.line_item_id DESC
                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before_this
                    FROM (SELECT x.id AS report_id, x.line_item_id AS report_line, x.psa_company_id, x.rule_id,
                                 x.integration_id, -(x.variance / x.multiplier) AS reduce, x.explanation AS group_explanation,
                                 x.type
                            FROM billrecon.reconcile_results x
                           WHERE x.run_id = v_run.id AND x.state = 'reconciled' AND x.counted_qty IS NOT NULL
                             AND x.type IN ('calculated', 'estimated') AND x.variance < 0) g
                    JOIN billrecon.reconcile_results l ON l.run_id = v_run.id AND l.state = 'reconciled'
                         AND l.psa_company_id = g.psa_company_id AND l.rule_id = g.rule_id
                         AND l.integration_id = g.integration_id
                    LEFT JOIN billrecon.service_rules sr ON sr.id = l.rule_id) z) y
   WHERE y.take > 0;
  UPDATE pg_temp.billrecon_card_candidates c SET type = r.type
    FROM billrecon.reconcile_results r
   WHERE c.kind = 'quantity' AND r.id = c.result_id AND c.type IS NULL;
  DELETE FROM pg_temp.billrecon_card_candidates c WHERE c.kind = 'quantity' AND c.proposed_qty = c.current_qty;

  -- New revenue: unaccounted usage, whole units.
  INSERT INTO pg_temp.billrecon_card_candidates
  SELECT x.id, 'new_revenue', x.psa_company_id, x.company_external_id, x.company, NULL, NULL, NULL, x.product,
         x.product_name, x.integration_id, x.usage_kind, 'unaccounted', 0, ceil(x.counted_qty), x.unit_price, 'monthly', x.explanation
    FROM billrecon.reconcile_results x
   WHERE x.run_id = v_run.id AND x.row_kind = 'unaccounted' AND x.counted_qty > 0;
  -- One key per card identity (proposed_changes.card_key), so every match
  -- below is an equi-join.
  UPDATE pg_temp.billrecon_card_candidates c
     SET card_key = CASE c.kind WHEN 'new_revenue'
                                THEN 'n:' || c.psa_company_id || ':' || c.vendor_integration_id || ':' || c.product
                                ELSE 'q:' || c.line_item_id END;
  ANALYZE pg_temp.billrecon_card_candidates;

  -- Skip what is already decided or waiting for a sync to show the push.
  DELETE FROM pg_temp.billrecon_card_candidates c
   USING billrecon.proposed_changes p
   WHERE p.kind = c.kind AND p.status IN ('approved', 'failed')
     AND p.card_key = c.card_key;
  DELETE FROM pg_temp.billrecon_card_candidates c
   USING billrecon.proposed_changes p, billrecon.psa_line_items l
   WHERE c.kind = 'quantity' AND p.kind IN ('quantity', 'revert') AND p.status = 'pushed'
     AND p.line_item_id = c.line_item_id AND l.id = c.line_item_id AND l.last_seen_at < p.pushed_at;
  -- A dismissed card stays dismissed while its numbers stay the same.
  DELETE FROM pg_temp.billrecon_card_candidates c
   WHERE EXISTS (
     SELECT 1 FROM billrecon.proposed_changes p
      WHERE p.kind = c.kind AND p.status = 'dismissed'
        AND p.current_qty = c.current_qty AND p.proposed_qty = c.proposed_qty
        AND p.card_key = c.card_key);

  -- Refresh pending cards of the same line / product.
  UPDATE billrecon.proposed_changes p
     SET last_run_id = v_run.id, result_id = c.result_id, type = c.type, current_qty = c.current_qty,
         proposed_qty = c.proposed_qty, unit_price = c.unit_price,
         amount = round((c.proposed_qty - c.current_qty) * c.unit_price, 2),
         monthly_amount = billrecon.monthly_amount(round((c.proposed_qty - c.current_qty) * c.unit_price, 2),
                            CASE WHEN c.billing_cycle IN ('quarterly', 'annual') THEN c.billing_cycle ELSE 'monthly' END),
         billing_cycle = c.billing_cycle, explanation = c.explanation,
         flags = CASE WHEN c.kind = 'new_revenue' THEN ARRAY['new_revenue']
                      ELSE billrecon._spot_check_flags(c.current_qty, c.proposed_qty - c.current_qty) END,
         updated_at = now()
    FROM pg_temp.billrecon_card_candidates c
   WHERE p.status = 'pending' AND p.kind = c.kind
     AND p.card_key = c.card_key
     AND (p.current_qty, p.proposed_qty, p.unit_price, p.last_run_id)
         IS DISTINCT FROM (c.current_qty, c.proposed_qty, c.unit_price, v_run.id);
  DELETE FROM pg_temp.billrecon_card_candidates c
   USING billrecon.proposed_changes p
   WHERE p.status = 'pending' AND p.kind = c.kind
     AND p.card_key = c.card_key;

  -- Withdraw pending cards this run no longer supports (not for runs of an
  -- older period than the card's, which must not undo a newer month's work).
  DELETE FROM billrecon.proposed_changes p
   USING billrecon.reconcile_runs lr
   WHERE p.status = 'pending' AND p.kind IN ('quantity', 'new_revenue')
     AND lr.id = p.last_run_id AND lr.period_start <= v_run.period_start AND p.last_run_id <> v_run.id
     AND p.psa_integration_id IS NOT DISTINCT FROM v_run.psa_integration_id
     AND (v_run.client_id IS NULL OR p.psa_company_id = v_run.client_id);

  INSERT INTO billrecon.proposed_changes (
    kind, run_id, last_run_id, result_id, psa_integration_id, psa_company_id, company_external_id, company,
    line_item_id, line_item_external_id, agreement_external_id, product, product_name, vendor_integration_id,
    usage_kind, type, current_qty, proposed_qty, unit_price, amount, monthly_amount, billing_cycle, flags, explanation,
    note, tags)
  SELECT c.kind, v_run.id, v_run.id, c.result_id, v_run.psa_integration_id, c.psa_company_id, c.company_external_id,
         c.company, c.line_item_id, c.line_item_external_id, c.agreement_external_id, c.product, c.product_name,
         c.vendor_integration_id, c.usage_kind, c.type, c.current_qty, c.proposed_qty, c.unit_price,
         round((c.proposed_qty - c.current_qty) * c.unit_price, 2),
         billrecon.monthly_amount(round((c.proposed_qty - c.current_qty) * c.unit_price, 2),
                                  CASE WHEN c.billing_cycle IN ('quarterly', 'annual') THEN c.billing_cycle
                                       ELSE 'monthly' END),
         c.billing_cycle,
         CASE WHEN c.kind = 'new_revenue' THEN ARRAY['new_revenue']
              ELSE billrecon._spot_check_flags(c.current_qty, c.proposed_qty - c.current_qty) END,
         c.explanation, n.note, coalesce(n.tags, '{}')
    FROM pg_temp.billrecon_card_candidates c
    LEFT JOIN billrecon.line_item_notes n ON n.line_item_id = c.line_item_id
   ORDER BY c.company, c.kind DESC, c.line_item_external_id, c.product;
  GET DIAGNOSTICS v_raised = ROW_COUNT;

  -- Decided cards seen again keep their decision; remember the run saw them.
  UPDATE billrecon.proposed_changes p
     SET last_run_id = v_run.id
    FROM billrecon.reconcile_results x
   WHERE x.run_id = v_run.id AND p.status IN ('approved', 'failed') AND p.last_run_id IS DISTINCT FROM v_run.id
     AND p.kind = 'quantity' AND x.line_item_id = p.line_item_id AND x.state = 'reconciled' AND x.variance <> 0;
  UPDATE billrecon.proposed_changes p
     SET last_run_id = v_run.id
    FROM billrecon.reconcile_results x
   WHERE x.run_id = v_run.id AND p.status IN ('approved', 'failed') AND p.last_run_id IS DISTINCT FROM v_run.id
     AND p.kind = 'new_revenue' AND x.row_kind = 'unaccounted' AND x.psa_company_id = p.psa_company_id
     AND x.integration_id = p.vendor_integration_id AND x.product = p.product;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  RETURN v_raised;
END
$rc$;
COMMENT ON FUNCTION billrecon._raise_change_cards(bigint) IS
  'Internal: raises change cards from a reconcile run''s discrepancies (called by billrecon.reconcile())';

CREATE VIEW billrecon.change_cards AS
SELECT p.id AS card_id, p.run_id, p.company_external_id AS psa_company_id, p.line_item_external_id AS line_item_id,
       p.current_qty, p.proposed_qty, p.delta, p.amount, p.status,
       coalesce(p.effective_date, CASE WHEN p.status IN ('pending', 'approved', 'failed')
                                       THEN billrecon._default_effective_date() END) AS effective_date,
       p.flags,
       p.kind, p.company, p.agreement_external_id AS agreement_id, p.product, p.product_name, p.type,
       round(p.unit_price, 2)::numeric(14, 2) AS unit_price,
       p.monthly_amount, p.billing_cycle, vi.name AS vendor_integration, p.usage_kind, p.explanation,
       p.dismiss_reason, p.decided_by, p.decided_at, p.push_attempts, p.pushed_at, p.push_error,
       p.reverts_card_id, p.reverted_by_card_id, p.last_run_id,
       coalesce(p.note, n.note) AS note,
       ARRAY(SELECT DISTINCT t FROM unnest(p.tags || coalesce(n.tags, '{}')) AS t ORDER BY t) AS tags,
       p.created_at, p.updated_at
  FROM billrecon.proposed_changes p
  LEFT JOIN billrecon.integrations vi ON vi.id = p.vendor_integration_id
  LEFT JOIN billrecon.line_item_notes n ON n.line_item_id = p.line_item_id;
COMMENT ON VIEW billrecon.change_cards IS
  'Change cards: one per line whose billed quantity differs from the counted usage (calculated or estimated '
  'discrepancies) and one per unaccounted usage product (kind new_revenue), with status pending / approved / dismissed '
  '/ pushed / failed. Decide with billrecon.approve(), dismiss(), set_effective_date(); write back with '
  'billrecon.push_changes().';

-- Which of these ids exist; raises for any that does not.
CREATE FUNCTION billrecon._check_card_ids(card_ids bigint[])
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $ci$
DECLARE
  v_missing bigint[];
BEGIN
  IF card_ids IS NULL OR cardinality(card_ids) = 0 THEN
    RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'no card ids given',
      DETAIL = 'The function takes an array of change card ids.',
      HINT = 'SELECT array_agg(card_id) FROM billrecon.change_cards WHERE status = ''pending'' AND ... gives them.';
  END IF;
  SELECT array_agg(DISTINCT i ORDER BY i) INTO v_missing
    FROM unnest(card_ids) AS u(i)
   WHERE i IS NULL OR NOT EXISTS (SELECT 1 FROM billrecon.proposed_changes p WHERE p.id = u.i);
  IF v_missing IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42704',
      MESSAGE = format('change card(s) %s do not exist', array_to_string(v_missing, ', ', 'NULL')),
      DETAIL = 'Nothing was changed.',
      HINT = 'billrecon.change_cards lists the cards and their ids (card_id).';
  END IF;
END
$ci$;
COMMENT ON FUNCTION billrecon._check_card_ids(bigint[]) IS 'Internal: raises unless every id is an existing card';

CREATE FUNCTION billrecon.approve(card_ids bigint[], effective_date date DEFAULT NULL, force boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $ap$
DECLARE
  v_role name := billrecon._acting_role();
  v_held text;
  v_held_n integer;
  v_skipped text;
  v_n integer;
BEGIN
  PERFORM billrecon._check_card_ids(card_ids);
  SELECT string_agg(format('%s (%s)', p.id, p.status), ', ' ORDER BY p.id) INTO v_skipped
    FROM billrecon.proposed_changes p
   WHERE p.id = ANY (card_ids) AND p.status NOT IN ('pending', 'dismissed');
  IF NOT coalesce(force, false) THEN
    -- One line per reason: "out_of_proportion: 3 card(s) (12, 15, 31); ..."
    SELECT string_agg(format('%s: %s card(s) (%s)', r.reason, r.n, r.ids), '; ' ORDER BY r.reason),
           coalesce(sum(r.n), 0)
      INTO v_held, v_held_n
      FROM (SELECT f.reason, count(*) AS n,
                   CASE WHEN count(*) <= 20 THEN string_agg(f.id::text, ', ' ORDER BY f.id)
                        ELSE string_agg(f.id::text, ', ' ORDER BY f.id) FILTER (WHERE f.rn <= 20) || ', ...' END AS ids
              FROM (SELECT p.id, CASE WHEN 'new_revenue' = ANY (p.flags) THEN 'new_revenue (no line bills this usage yet)'
                                      ELSE 'out_of_proportion (|delta| large for the current quantity)' END AS reason,
                           row_number() OVER (PARTITION BY 'new_revenue' = ANY (p.flags) ORDER BY p.id) AS rn
                      FROM billrecon.proposed_changes p
                     WHERE p.id = ANY (card_ids) AND p.status IN ('pending', 'dismissed')
                       AND cardinality(p.flags) > 0) f
             GROUP BY f.reason) r;
  END IF;
  UPDATE billrecon.proposed_changes p
     SET status = 'approved',
         effective_date = coalesce(approve.effective_date, p.effective_date, billrecon._default_effective_date()),
         decided_by = v_role, decided_at = now(), dismiss_reason = NULL, updated_at = now()
   WHERE p.id = ANY (card_ids) AND p.status IN ('pending', 'dismissed')
     AND (coalesce(force, false) OR cardinality(p.flags) = 0);
  GET DIAGNOSTICS v_n = ROW_COUNT;
  IF v_held IS NOT NULL THEN
    RAISE NOTICE 'held back % flagged card(s): %', v_held_n, v_held
      USING DETAIL = 'Flagged cards are not approved in bulk.',
            HINT = 'Check them, then billrecon.approve(ARRAY[...], force => true) approves them.';
  END IF;
  IF v_skipped IS NOT NULL THEN
    RAISE NOTICE 'skipped card(s) already decided: %', v_skipped
      USING HINT = 'Only pending and dismissed cards can be approved.';
  END IF;
  RETURN v_n;
END
$ap$;
COMMENT ON FUNCTION billrecon.approve(bigint[], date, boolean) IS
  'Approves pending (or dismissed) change cards with an effective date (default: the card''s, else the first day of '
  'next month). Cards flagged out_of_proportion or new_revenue are held back unless force => true; a NOTICE says '
  'which and why. Returns the number approved.';

CREATE FUNCTION billrecon.dismiss(card_ids bigint[], reason text)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $di$
DECLARE
  v_n integer;
  v_skipped text;
BEGIN
  IF reason IS NULL OR btrim(reason) = '' THEN
    RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'a reason is required to dismiss a card',
      DETAIL = 'The reason stays with the card and is shown next month if the card comes back.',
      HINT = 'For example billrecon.dismiss(ARRAY[12], ''client prepaid 5 spare seats'').';
  END IF;
  PERFORM billrecon._check_card_ids(card_ids);
  SELECT string_agg(format('%s (%s)', p.id, p.status), ', ' ORDER BY p.id) INTO v_skipped
    FROM billrecon.proposed_changes p WHERE p.id = ANY (card_ids) AND p.status IN ('pushed', 'dismissed');
  UPDATE billrecon.proposed_changes p
     SET status = 'dismissed', dismiss_reason = reason, decided_by = billrecon._acting_role(), decided_at = now(),
         updated_at = now()
   WHERE p.id = ANY (card_ids) AND p.status IN ('pending', 'approved', 'failed');
  GET DIAGNOSTICS v_n = ROW_COUNT;
  IF v_skipped IS NOT NULL THEN
    RAISE NOTICE 'skipped card(s) already pushed or dismissed: %', v_skipped
      USING HINT = CASE WHEN v_skipped LIKE '%(pushed)%'
                        THEN 'A pushed card is undone with billrecon.revert_change(card_id).'
                        ELSE 'A dismissed card stays dismissed; approve it to change your mind.' END;
  END IF;
  RETURN v_n;
END
$di$;
COMMENT ON FUNCTION billrecon.dismiss(bigint[], text) IS
  'Dismisses pending, approved or failed change cards with a reason. A dismissed card is not raised again while its '
  'numbers stay the same. Returns the number dismissed.';

CREATE FUNCTION billrecon.set_effective_date(card_ids bigint[], effective_date date)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $se$
DECLARE
  v_n integer;
BEGIN
  IF effective_date IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'effective_date must not be null',
      DETAIL = 'The effective date is the day the new quantity starts.',
      HINT = 'Approving without a date uses the first day of next month.';
  END IF;
  PERFORM billrecon._check_card_ids(card_ids);
  UPDATE billrecon.proposed_changes p
     SET effective_date = set_effective_date.effective_date, updated_at = now()
   WHERE p.id = ANY (card_ids) AND p.status IN ('pending', 'approved', 'failed');
  GET DIAGNOSTICS v_n = ROW_COUNT;
  RETURN v_n;
END
$se$;
COMMENT ON FUNCTION billrecon.set_effective_date(bigint[], date) IS
  'Sets the effective date of pending, approved or failed cards without approving them; returns the number changed';

CREATE FUNCTION billrecon.note_card(card_ids bigint[], note text, tags text[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $nc$
DECLARE
  v_n integer;
BEGIN
  PERFORM billrecon._check_card_ids(card_ids);
  UPDATE billrecon.proposed_changes p
     SET note = note_card.note, tags = coalesce(note_card.tags, p.tags), updated_at = now()
   WHERE p.id = ANY (card_ids);
  GET DIAGNOSTICS v_n = ROW_COUNT;
  RETURN v_n;
END
$nc$;
COMMENT ON FUNCTION billrecon.note_card(bigint[], text, text[]) IS
  'Sets the reviewer''s note (and tags, when given) on change cards; returns the number changed';

CREATE FUNCTION billrecon.note_line_item(line_item_id text, note text, tags text[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $nl$
BEGIN
  INSERT INTO billrecon.line_item_notes AS n (line_item_id, note, tags, updated_by)
  VALUES (billrecon._psa_line_item(note_line_item.line_item_id), note_line_item.note,
          coalesce(note_line_item.tags, '{}'), billrecon._acting_role())
  ON CONFLICT ON CONSTRAINT line_item_notes_pkey DO UPDATE
     SET note = excluded.note, tags = coalesce(note_line_item.tags, n.tags), updated_by = excluded.updated_by,
         updated_at = now();
END
$nl$;
COMMENT ON FUNCTION billrecon.note_line_item(text, text, text[]) IS
  'Sets the reviewer''s note (and tags, when given) on a PSA line item (its external id); they stay with the line '
  'month after month and show on its change cards';

-- Proration preview of approved cards.
CREATE VIEW billrecon.change_card_proration AS
SELECT p.id AS card_id, p.company_external_id AS psa_company_id, p.company, p.line_item_external_id AS line_item_id,
       p.product, a.external_id AS agreement_id, a.billing_cycle, p.effective_date, cy.cycle_start, cy.cycle_end,
       round(p.unit_price, 2)::numeric(14, 2) AS unit_price, p.delta,
       s.supported AS proration_supported,
       CASE WHEN s.supported AND p.effective_date BETWEEN cy.cycle_start AND cy.cycle_end
            THEN billrecon.prorate(p.unit_price, p.delta, p.effective_date, cy.cycle_start, cy.cycle_end)::numeric(14, 2)
            ELSE 0::numeric(14, 2) END AS prorated_amount,
       CASE WHEN NOT s.supported THEN s.reason || ': the change starts with the next cycle'
            WHEN p.effective_date = cy.cycle_start THEN 'effective on the cycle start: the full cycle'
            ELSE format('%s of %s days of the cycle', cy.cycle_end - p.effective_date + 1,
                        cy.cycle_end - cy.cycle_start + 1) END AS basis
  FROM billrecon.proposed_changes p
  JOIN billrecon.psa_line_items l ON l.id = p.line_item_id
  JOIN billrecon.psa_agreements a ON a.id = l.agreement_id
  JOIN billrecon.integrations i ON i.id = l.integration_id
  CROSS JOIN LATERAL billrecon.billing_cycle(
    CASE WHEN a.billing_cycle IN ('monthly', 'quarterly', 'annual') THEN a.billing_cycle ELSE 'monthly' END,
    p.effective_date, a.start_date) cy
  CROSS JOIN LATERAL (
    SELECT CASE
             WHEN a.prorate IS FALSE THEN false
             WHEN i.kind = 'connectwise' THEN coalesce(a.prorate, false)
             ELSE true
           END AS supported,
           CASE
             WHEN a.prorate IS FALSE THEN 'the agreement does not prorate'
             WHEN i.kind = 'connectwise' AND a.prorate IS NULL THEN 'the agreement''s proration flag is unknown'
           END AS reason) s
 WHERE p.status = 'approved' AND p.kind IN ('quantity', 'revert') AND p.unit_price IS NOT NULL;
COMMENT ON VIEW billrecon.change_card_proration IS
  'For approved cards: the prorated charge (or credit) of the change from its effective date to the end of the '
  'agreement''s billing cycle (billrecon.prorate); zero where the agreement (ConnectWise prorateFlag, or prorate = '
  'false on any PSA) does not prorate, the change then starting with the next cycle';

-- Writing approved cards back to the PSA, and putting a pushed change back.
--
-- Exactly once: every write first reads the PSA's quantity for the line on
-- the effective date and sends nothing when it already holds the new one
-- (billrecon._write_back_quantity with check_first). A push interrupted after
-- the PSA applied it (crash, timeout, cancelled statement) leaves the card
-- approved or failed; the retry finds the quantity in place and only marks
-- the card pushed. Card rows are locked while they are pushed, so two
-- sessions never push one card at once.

CREATE FUNCTION billrecon.push_changes(include_future boolean DEFAULT false, card_ids bigint[] DEFAULT NULL)
RETURNS TABLE (card_id bigint, status text, error text, quantity_before numeric, quantity_after numeric, note text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $pc$
DECLARE
  v_role name := billrecon._acting_role();
  v_card billrecon.proposed_changes;
  v_psa text;
  v_line text;
  v_attempt bigint;
  v_wb record;
  v_msg text;
  v_detail text;
  v_hint text;
BEGIN
  IF card_ids IS NOT NULL THEN
    PERFORM billrecon._check_card_ids(card_ids);
  END IF;
  FOR v_card IN
    SELECT p.* FROM billrecon.proposed_changes p
     WHERE p.status IN ('approved', 'failed') AND p.kind IN ('quantity', 'revert')
       AND p.psa_integration_id IS NOT NULL   -- the PSA was dropped: nothing to write to
       AND (push_changes.card_ids IS NULL OR p.id = ANY (push_changes.card_ids))
       AND (coalesce(include_future, false) OR push_changes.card_ids IS NOT NULL
            OR coalesce(p.effective_date, billrecon._default_effective_date()) <= current_date)
     ORDER BY p.id
       FOR UPDATE SKIP LOCKED
  LOOP
    SELECT i.name, l.external_id INTO v_psa, v_line
      FROM billrecon.psa_line_items l JOIN billrecon.integrations i ON i.id = l.integration_id
     WHERE l.id = v_card.line_item_id AND l.removed_at IS NULL;
    INSERT INTO billrecon.change_card_pushes (card_id, attempt, pushed_by, integration, line_item_id, quantity,
                                              effective_date)
    VALUES (v_card.id, v_card.push_attempts + 1, v_role, v_psa, coalesce(v_line, v_card.line_item_external_id),
            v_card.proposed_qty, coalesce(v_card.effective_date, billrecon._default_effective_date()))
    RETURNING id INTO v_attempt;
    BEGIN
      IF v_line IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '55000',
          MESSAGE = format('line item %s no longer exists', v_card.line_item_external_id),
          DETAIL = 'The PSA no longer has the line this card changes (it was deleted there and a sync removed it).',
          HINT = 'Dismiss the card; the next reconcile shows the client''s lines as they are now.';
      END IF;
      SELECT * INTO v_wb
        FROM billrecon._write_back_quantity(v_psa, v_line, v_card.proposed_qty,
                                            coalesce(v_card.effective_date, billrecon._default_effective_date()), true);
      IF v_wb.quantity_after IS DISTINCT FROM v_card.proposed_qty THEN
        RAISE EXCEPTION USING ERRCODE = '55000',
          MESSAGE = format('the PSA reports quantity %s after the change, not %s', trim_scale(v_wb.quantity_after),
                           trim_scale(v_card.proposed_qty)),
          DETAIL = coalesce(v_wb.note, ''),
          HINT = 'Check the line in the PSA; push_changes() again reads its quantity first and writes only what is missing.';
      END IF;
      UPDATE billrecon.change_card_pushes a
         SET status = 'pushed', finished_at = clock_timestamp(), quantity_before = v_wb.quantity_before,
             quantity_after = v_wb.quantity_after, reference = v_wb.reference, note = v_wb.note, requests = v_wb.requests
       WHERE a.id = v_attempt;
      UPDATE billrecon.proposed_changes p
         SET status = 'pushed', pushed_at = now(), pushed_by = v_role, push_error = NULL,
             push_reference = v_wb.reference, push_note = v_wb.note, push_attempts = p.push_attempts + 1,
             effective_date = coalesce(p.effective_date, billrecon._default_effective_date()), updated_at = now()
       WHERE p.id = v_card.id;
      card_id := v_card.id; status := 'pushed'; error := NULL;
      quantity_before := v_wb.quantity_before; quantity_after := v_wb.quantity_after; note := v_wb.note;
    EXCEPTION
      WHEN query_canceled THEN RAISE;
      WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_msg = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
        v_msg := v_msg || coalesce(nullif(': ' || v_detail, ': '), '');
        UPDATE billrecon.change_card_pushes a
           SET status = 'failed', finished_at = clock_timestamp(), error = v_msg
         WHERE a.id = v_attempt;
        UPDATE billrecon.proposed_changes p
           SET status = 'failed', push_error = v_msg, push_attempts = p.push_attempts + 1, updated_at = now()
         WHERE p.id = v_card.id;
        card_id := v_card.id; status := 'failed'; error := v_msg;
        quantity_before := NULL; quantity_after := NULL; note := v_hint;
    END;
    RETURN NEXT;
  END LOOP;
END
$pc$;
COMMENT ON FUNCTION billrecon.push_changes(boolean, bigint[]) IS
  'Writes approved (and retries failed) quantity cards to the PSA through its API: those whose effective date has '
  'come, or all with include_future => true, or exactly card_ids. Each card becomes pushed, or failed with the PSA''s '
  'message (retry by calling again). Safe to repeat: a change the PSA already holds is not sent twice. new_revenue '
  'cards are never pushed (add the line in the PSA). Returns one row per card attempted.';

CREATE FUNCTION billrecon.revert_change(card_id bigint, effective_date date DEFAULT NULL)
RETURNS TABLE (revert_card_id bigint, status text, error text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $rv$
DECLARE
  v_card billrecon.proposed_changes;
  v_new bigint;
BEGIN
  SELECT * INTO v_card FROM billrecon.proposed_changes p WHERE p.id = revert_change.card_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('change card %s does not exist', revert_change.card_id),
      HINT = 'billrecon.change_cards lists the cards.';
  END IF;
  IF v_card.status <> 'pushed' OR v_card.kind NOT IN ('quantity', 'revert') THEN
    RAISE EXCEPTION USING ERRCODE = '55000',
      MESSAGE = format('change card %s cannot be reverted', v_card.id),
      DETAIL = format('It is a %s card with status %s; only pushed quantity changes can be reverted.', v_card.kind,
                      v_card.status),
      HINT = 'Dismiss a card that was not pushed yet.';
  END IF;
  IF v_card.reverted_by_card_id IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '55000',
      MESSAGE = format('change card %s is already reverted', v_card.id),
      DETAIL = format('Card %s put it back.', v_card.reverted_by_card_id),
      HINT = 'Revert that card to apply the change again.';
  END IF;
  INSERT INTO billrecon.proposed_changes (
    kind, run_id, last_run_id, psa_integration_id, psa_company_id, company_external_id, company, line_item_id,
    line_item_external_id, agreement_external_id, product, type, current_qty, proposed_qty, unit_price, amount,
    monthly_amount, billing_cycle, status, effective_date, flags, explanation, decided_by, decided_at, reverts_card_id)
  VALUES ('revert', v_card.run_id, v_card.last_run_id, v_card.psa_integration_id, v_card.psa_company_id,
          v_card.company_external_id, v_card.company, v_card.line_item_id, v_card.line_item_external_id,
          v_card.agreement_external_id, v_card.product, v_card.type, v_card.proposed_qty, v_card.current_qty,
          v_card.unit_price, -v_card.amount, -v_card.monthly_amount, v_card.billing_cycle, 'approved',
          coalesce(revert_change.effective_date, v_card.effective_date), '{}',
          format('Reverts card %s: %s back to %s.', v_card.id, trim_scale(v_card.proposed_qty),
                 trim_scale(v_card.current_qty)),
          billrecon._acting_role(), now(), v_card.id)
  RETURNING id INTO v_new;
  UPDATE billrecon.proposed_changes p SET reverted_by_card_id = v_new, updated_at = now() WHERE p.id = v_card.id;
  RETURN QUERY SELECT r.card_id, r.status, r.error FROM billrecon.push_changes(card_ids => ARRAY[v_new]) r;
END
$rv$;
COMMENT ON FUNCTION billrecon.revert_change(bigint, date) IS
  'Puts a pushed change back: records a revert card (previous quantity, same effective date unless one is given) '
  'linked to the original and pushes it at once. Returns the revert card''s push result; a failed revert stays '
  'approved-to-retry as a failed card.';

-- Audit: every change to change cards, mappings, rules and integration
-- settings, with the role that made it, when, and the row before and after.
-- Written by triggers (so a change made around the functions is audited
-- too); only billrecon_admin may delete from it, no one may update it.

CREATE TABLE billrecon.audit_log (
  id           bigserial PRIMARY KEY,
  at           timestamptz NOT NULL DEFAULT clock_timestamp(),
  role         name NOT NULL,
  session_role name NOT NULL DEFAULT session_user,
  action       text NOT NULL CHECK (action IN ('insert', 'update', 'delete')),
  object       text NOT NULL,
  object_id    text,
  changed      text[],
  before       jsonb,
  after        jsonb,
  transaction  bigint NOT NULL DEFAULT txid_current()
);
CREATE INDEX audit_log_object ON billrecon.audit_log (object, object_id, at);
CREATE INDEX audit_log_at ON billrecon.audit_log (at);
COMMENT ON TABLE billrecon.audit_log IS
  'Every change to change cards, card pushes, client mappings and rejections, service rules, ignored lines, excluded '
  'products, adjustment links, notes, presets, integrations and (without their values) credentials: who, when, what, '
  'before and after. Written by triggers; nobody may update it, only billrecon_admin may delete (prune) rows.';
COMMENT ON COLUMN billrecon.audit_log.id IS 'Entry id';
COMMENT ON COLUMN billrecon.audit_log.at IS 'When the change was made';
COMMENT ON COLUMN billrecon.audit_log.role IS 'Role that made it (the role acted as, SET ROLE included)';
COMMENT ON COLUMN billrecon.audit_log.session_role IS 'Role the session logged in as';
COMMENT ON COLUMN billrecon.audit_log.action IS 'insert, update or delete';
COMMENT ON COLUMN billrecon.audit_log.object IS 'Table changed (billrecon.<object>)';
COMMENT ON COLUMN billrecon.audit_log.object_id IS 'Key of the row changed';
COMMENT ON COLUMN billrecon.audit_log.changed IS 'update: the columns whose value changed';
COMMENT ON COLUMN billrecon.audit_log.before IS 'The row before (update, delete); credentials show only their keys';
COMMENT ON COLUMN billrecon.audit_log.after IS 'The row after (insert, update); credentials show only their keys';
COMMENT ON COLUMN billrecon.audit_log.transaction IS 'Transaction id: entries of one statement or call share it';

CREATE FUNCTION billrecon._audit_row()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $au$
DECLARE
  v_before jsonb := CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END;
  v_after jsonb := CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END;
  v_changed text[];
  v_row jsonb;
BEGIN
  -- pg_restore (or psql) loading a dump: the rows and their audit trail come
  -- from the dump itself; auditing the load again would collide with the
  -- restored audit rows. Only a superuser's COPY ... FROM qualifies.
  IF current_setting('session_replication_role') = 'replica'
     OR (current_query() ~* '^\s*COPY\s' AND current_query() ~* '\sFROM\s+stdin'
         AND (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user)) THEN
    RETURN NULL;
  END IF;
  IF TG_TABLE_NAME = 'integration_credentials' THEN
    -- Never a secret in the audit: which keys, not their values.
    v_before := v_before - 'credentials'
                || CASE WHEN v_before IS NOT NULL THEN jsonb_build_object('credential_keys',
                     (SELECT jsonb_agg(k ORDER BY k) FROM jsonb_object_keys(OLD.credentials) k)) END;
    v_after := v_after - 'credentials'
               || CASE WHEN v_after IS NOT NULL THEN jsonb_build_object('credential_keys',
                    (SELECT jsonb_agg(k ORDER BY k) FROM jsonb_object_keys(NEW.credentials) k)) END;
    IF TG_OP = 'UPDATE' AND OLD.credentials IS DISTINCT FROM NEW.credentials THEN
      v_changed := ARRAY['credentials'];
    END IF;
  END IF;
  IF TG_OP = 'UPDATE' THEN
    SELECT coalesce(v_changed, '{}') || coalesce(array_agg(n.key ORDER BY n.key), '{}') INTO v_changed
      FROM jsonb_each(v_after) n
     -- Bookkeeping a reconcile run refreshes is not a change anyone made.
     WHERE n.key NOT IN ('updated_at', 'last_run_id', 'result_id', 'explanation', 'card_key')
       AND n.value IS DISTINCT FROM v_before -> n.key;
    IF cardinality(v_changed) = 0 THEN
      RETURN NULL;   -- nothing a reviewer would call a change
    END IF;
  END IF;
  v_row := coalesce(v_after, v_before);
  INSERT INTO billrecon.audit_log (role, action, object, object_id, changed, before, after)
  VALUES (billrecon._acting_role(), lower(TG_OP), TG_TABLE_NAME,
          coalesce(v_row ->> 'id', v_row ->> 'vendor_account_id', v_row ->> 'line_item_id', v_row ->> 'integration_id',
                   v_row ->> 'part_number')
            || CASE WHEN TG_TABLE_NAME = 'client_match_rejections' THEN '/' || (v_row ->> 'psa_company_id')
                    WHEN TG_TABLE_NAME = 'excluded_vendor_products' THEN '/' || (v_row ->> 'product')
                    ELSE '' END,
          v_changed, v_before, v_after);
  RETURN NULL;
END
$au$;
COMMENT ON FUNCTION billrecon._audit_row() IS 'Internal: trigger writing billrecon.audit_log';

CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.proposed_changes
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.change_card_pushes
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.client_mappings
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.client_match_rejections
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.ignored_vendor_accounts
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.service_rules
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.ignored_line_items
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.excluded_vendor_products
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.line_item_parents
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.line_item_notes
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.rule_presets
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.integrations
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.integration_credentials
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();

-- Built-in presets and SKU names ship with the extension and are not dumped:
-- a change to them would silently come back as shipped after a restore.
CREATE FUNCTION billrecon._keep_builtin_rows()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $kb$
BEGIN
  IF OLD.builtin AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
    RAISE EXCEPTION USING ERRCODE = '55000',
      MESSAGE = format('built-in rows of billrecon.%s cannot be changed or deleted', TG_TABLE_NAME),
      DETAIL = 'They ship with billrecon and are recreated as shipped by every install and restore.',
      HINT = 'Add your own row (builtin = false); for presets, yours are applied before the built-in ones.';
  END IF;
  RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$kb$;
COMMENT ON FUNCTION billrecon._keep_builtin_rows() IS 'Internal: trigger refusing changes to built-in rows';
CREATE TRIGGER keep_builtin BEFORE UPDATE OR DELETE ON billrecon.rule_presets
  FOR EACH ROW EXECUTE FUNCTION billrecon._keep_builtin_rows();
CREATE TRIGGER keep_builtin BEFORE UPDATE OR DELETE ON billrecon.microsoft_skus
  FOR EACH ROW EXECUTE FUNCTION billrecon._keep_builtin_rows();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON billrecon.microsoft_skus
  FOR EACH ROW EXECUTE FUNCTION billrecon._audit_row();

-- Background sync: billrecon.sync_async() queues a job (one task per
-- integration); background workers of this database run the tasks in
-- parallel through billrecon.sync() and record the same sync-run rows a
-- foreground sync does (docs/architecture.md, "Background sync").

CREATE TABLE billrecon.sync_jobs_queue (
  id           bigserial PRIMARY KEY,
  integration  text,
  mode         text NOT NULL CHECK (mode IN ('full', 'quick')),
  requested_by name NOT NULL,
  requested_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
COMMENT ON TABLE billrecon.sync_jobs_queue IS
  'Background sync jobs queued by billrecon.sync_async() (one row per call); their integrations are in '
  'billrecon.sync_job_tasks, their progress in billrecon.sync_jobs';
COMMENT ON COLUMN billrecon.sync_jobs_queue.id IS 'Job id, returned by billrecon.sync_async()';
COMMENT ON COLUMN billrecon.sync_jobs_queue.integration IS 'The integration asked for; null = every enabled integration';
COMMENT ON COLUMN billrecon.sync_jobs_queue.mode IS 'quick or full';
COMMENT ON COLUMN billrecon.sync_jobs_queue.requested_by IS 'Role that queued it; the syncs run as this role';
COMMENT ON COLUMN billrecon.sync_jobs_queue.requested_at IS 'When it was queued';

CREATE TABLE billrecon.sync_job_tasks (
  id             bigserial PRIMARY KEY,
  job_id         bigint NOT NULL REFERENCES billrecon.sync_jobs_queue (id) ON DELETE CASCADE,
  integration_id integer REFERENCES billrecon.integrations (id) ON DELETE SET NULL,
  integration    text NOT NULL,
  status         text NOT NULL DEFAULT 'queued'
                 CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  worker_pid     integer,
  started_at     timestamptz,
  finished_at    timestamptz,
  records        bigint,
  error          text,
  sync_run_id    bigint REFERENCES billrecon.sync_runs (id) ON DELETE SET NULL
);
CREATE INDEX sync_job_tasks_queued ON billrecon.sync_job_tasks (id) WHERE status IN ('queued', 'running');
CREATE INDEX sync_job_tasks_job ON billrecon.sync_job_tasks (job_id);
COMMENT ON TABLE billrecon.sync_job_tasks IS 'One integration of a background sync job, claimed and run by one worker';
COMMENT ON COLUMN billrecon.sync_job_tasks.id IS 'Task id';
COMMENT ON COLUMN billrecon.sync_job_tasks.job_id IS 'The job';
COMMENT ON COLUMN billrecon.sync_job_tasks.integration_id IS 'The integration';
COMMENT ON COLUMN billrecon.sync_job_tasks.integration IS 'Its name';
COMMENT ON COLUMN billrecon.sync_job_tasks.status IS 'queued, running, succeeded, failed or cancelled';
COMMENT ON COLUMN billrecon.sync_job_tasks.worker_pid IS 'Process id of the worker that ran it';
COMMENT ON COLUMN billrecon.sync_job_tasks.started_at IS 'When a worker started it';
COMMENT ON COLUMN billrecon.sync_job_tasks.finished_at IS 'When it ended';
COMMENT ON COLUMN billrecon.sync_job_tasks.records IS 'Records stored';
COMMENT ON COLUMN billrecon.sync_job_tasks.error IS 'Why it failed or was cancelled';
COMMENT ON COLUMN billrecon.sync_job_tasks.sync_run_id IS 'The sync run it recorded (billrecon.sync_runs.id)';

CREATE FUNCTION billrecon._sync_workers_available()
RETURNS boolean
AS 'MODULE_PATHNAME', 'billrecon_sync_workers_available'
LANGUAGE C STABLE;
COMMENT ON FUNCTION billrecon._sync_workers_available() IS
  'Internal: whether billrecon was loaded through shared_preload_libraries, so background workers can run';

CREATE FUNCTION billrecon._wake_sync_workers(tasks integer)
RETURNS void
AS 'MODULE_PATHNAME', 'billrecon_wake_sync_workers'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION billrecon._wake_sync_workers(integer) IS
  'Internal: when the transaction commits, wakes this database''s sync workers and starts more for the queued tasks';

CREATE FUNCTION billrecon._sync_progress()
RETURNS TABLE (pid integer, task_id bigint, job_id bigint, integration text, phase text, pages bigint, records bigint,
               task_started timestamptz)
AS 'MODULE_PATHNAME', 'billrecon_sync_progress'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION billrecon._sync_progress() IS
  'Internal: live progress of this database''s sync workers, from shared memory (one row per worker)';

CREATE FUNCTION billrecon._cancel_sync_task(task_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'billrecon_cancel_sync_task'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION billrecon._cancel_sync_task(bigint) IS
  'Internal: interrupts the worker running the task (its sync rolls back); false when no worker runs it';

CREATE FUNCTION billrecon.sync_async(integration text DEFAULT NULL, mode text DEFAULT 'quick')
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $sa$
DECLARE
  v_job bigint;
  v_tasks integer;
BEGIN
  IF NOT billrecon._sync_workers_available() THEN
    RAISE EXCEPTION USING ERRCODE = '55000',
      MESSAGE = 'background sync is not available',
      DETAIL = 'billrecon was not loaded at server start, so it cannot run background workers.',
      HINT = 'Add billrecon to shared_preload_libraries in postgresql.conf (shared_preload_libraries = '
             '''billrecon,pg_cron'') and restart the server; meanwhile billrecon.sync() syncs in this session.';
  END IF;
  IF mode IS NULL OR mode NOT IN ('quick', 'full') THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('invalid sync mode "%s"', coalesce(mode, 'NULL')),
      DETAIL = 'The mode must be "full" or "quick".',
      HINT = 'Use ''quick'' for the daily refresh and ''full'' after large changes in the source system.';
  END IF;
  IF integration IS NOT NULL THEN
    PERFORM billrecon._integration_id(integration);
  END IF;
  INSERT INTO billrecon.sync_jobs_queue (integration, mode, requested_by)
  VALUES (integration, mode, billrecon._acting_role())
  RETURNING id INTO v_job;
  INSERT INTO billrecon.sync_job_tasks (job_id, integration_id, integration)
  SELECT v_job, i.id, i.name FROM billrecon.integrations i
   WHERE (sync_async.integration IS NULL AND i.enabled) OR i.name = sync_async.integration
   ORDER BY i.is_default_psa DESC, i.name;
  GET DIAGNOSTICS v_tasks = ROW_COUNT;
  IF v_tasks > 0 THEN
    PERFORM billrecon._wake_sync_workers(v_tasks);
  END IF;
  RETURN v_job;
END
$sa$;
COMMENT ON FUNCTION billrecon.sync_async(text, text) IS
  'Queues a sync of one integration, or of every enabled one when null, and returns the job id at once. Background '
  'workers run the integrations in parallel (billrecon.max_sync_workers at a time) once the calling transaction '
  'commits; follow them in billrecon.sync_jobs, stop them with billrecon.cancel_sync(job_id). Each sync records the '
  'same billrecon.sync_runs row as billrecon.sync(). Needs billrecon in shared_preload_libraries.';

CREATE FUNCTION billrecon.cancel_sync(job_id bigint)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $cs$
DECLARE
  v_n integer := 0;
  v_m integer;
  v_task bigint;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM billrecon.sync_jobs_queue j WHERE j.id = cancel_sync.job_id) THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('sync job %s does not exist', cancel_sync.job_id),
      HINT = 'billrecon.sync_jobs lists the jobs.';
  END IF;
  UPDATE billrecon.sync_job_tasks t
     SET status = 'cancelled', finished_at = clock_timestamp(), error = 'cancelled before it started'
   WHERE t.job_id = cancel_sync.job_id AND t.status = 'queued';
  GET DIAGNOSTICS v_m = ROW_COUNT;
  v_n := v_m;
  FOR v_task IN SELECT t.id FROM billrecon.sync_job_tasks t
                 WHERE t.job_id = cancel_sync.job_id AND t.status = 'running' LOOP
    IF billrecon._cancel_sync_task(v_task) THEN
      v_n := v_n + 1;
    END IF;
  END LOOP;
  RETURN v_n;
END
$cs$;
COMMENT ON FUNCTION billrecon.cancel_sync(bigint) IS
  'Cancels a background sync job: its queued integrations never start, its running ones stop at the next page and '
  'roll back (the previous data stays; the sync run is recorded as cancelled). Returns the number of integrations '
  'cancelled.';

CREATE VIEW billrecon.sync_jobs AS
SELECT j.id AS job_id,
       t.integration,
       j.mode,
       t.status,
       CASE WHEN t.status = 'running' THEN p.phase END AS phase,
       CASE WHEN t.status = 'running' THEN p.pages ELSE r.pages END AS pages,
       CASE WHEN t.status = 'running' THEN p.records ELSE coalesce(t.records, r.records) END AS records,
       CASE WHEN t.started_at IS NOT NULL THEN coalesce(t.finished_at, clock_timestamp()) - t.started_at END AS elapsed,
       t.error,
       j.requested_by,
       j.requested_at,
       t.started_at,
       t.finished_at,
       t.sync_run_id AS run_id,
       t.id AS task_id,
       t.worker_pid
  FROM billrecon.sync_jobs_queue j
  JOIN billrecon.sync_job_tasks t ON t.job_id = j.id
  LEFT JOIN billrecon._sync_progress() p ON p.task_id = t.id
  LEFT JOIN billrecon.sync_runs r ON r.id = t.sync_run_id;
COMMENT ON VIEW billrecon.sync_jobs IS
  'Background sync jobs, one row per integration: queued, running (with live phase, pages and records so far) or '
  'finished (succeeded, failed, cancelled) with the error. Newest first: ORDER BY job_id DESC.';
COMMENT ON COLUMN billrecon.sync_jobs.job_id IS 'Job id (billrecon.sync_async() returned it)';
COMMENT ON COLUMN billrecon.sync_jobs.integration IS 'Integration';
COMMENT ON COLUMN billrecon.sync_jobs.mode IS 'quick or full';
COMMENT ON COLUMN billrecon.sync_jobs.status IS 'queued, running, succeeded, failed or cancelled';
COMMENT ON COLUMN billrecon.sync_jobs.phase IS 'What a running sync fetches now (companies, devices, licences, ...)';
COMMENT ON COLUMN billrecon.sync_jobs.pages IS 'Pages fetched (so far, while running)';
COMMENT ON COLUMN billrecon.sync_jobs.records IS 'Records fetched so far while running; stored, once finished';
COMMENT ON COLUMN billrecon.sync_jobs.elapsed IS 'Time since the worker started it (until it finished)';
COMMENT ON COLUMN billrecon.sync_jobs.error IS 'Why it failed or was cancelled';
COMMENT ON COLUMN billrecon.sync_jobs.requested_by IS 'Role that queued the job';
COMMENT ON COLUMN billrecon.sync_jobs.requested_at IS 'When it was queued';
COMMENT ON COLUMN billrecon.sync_jobs.started_at IS 'When a worker started this integration';
COMMENT ON COLUMN billrecon.sync_jobs.finished_at IS 'When it ended';
COMMENT ON COLUMN billrecon.sync_jobs.run_id IS 'The sync run recorded (billrecon.sync_history)';
COMMENT ON COLUMN billrecon.sync_jobs.task_id IS 'Task id';
COMMENT ON COLUMN billrecon.sync_jobs.worker_pid IS 'Process id of the worker';

GRANT EXECUTE ON FUNCTION billrecon.sync_async(text, text), billrecon.cancel_sync(bigint) TO billrecon_operator;
GRANT SELECT ON billrecon.sync_jobs, billrecon.sync_jobs_queue, billrecon.sync_job_tasks TO billrecon_reader;
GRANT EXECUTE ON FUNCTION billrecon._sync_progress() TO billrecon_reader;
SELECT pg_catalog.pg_extension_config_dump('billrecon.sync_jobs_queue', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.sync_jobs_queue_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.sync_job_tasks', '');
SELECT pg_catalog.pg_extension_config_dump('billrecon.sync_job_tasks_id_seq', '');

-- Scheduled syncs through pg_cron (docs/scheduling.md).
--
-- pg_cron lives in one database of the cluster (cron.database_name) and its
-- functions can be called only there, so billrecon does not require it.
-- Nothing here names cron.* statically: CREATE EXTENSION billrecon works
-- without pg_cron, and every call into pg_cron goes through EXECUTE.
--
-- A scheduled job only enqueues: its command is
--   SELECT billrecon.sync_async(<integration or NULL>, '<mode>')
-- and a background worker runs the sync. Job names are deterministic,
-- 'billrecon sync <integration|all> <mode>' (plus ' in <database>' for a job
-- that pg_cron's database runs in another database), so scheduling the same
-- sync again replaces its schedule: pg_cron's cron.schedule() updates the
-- job of that name and user, and keeps its id.

-- pg_cron's database (cron.database_name), or NULL when the pg_cron library is
-- not loaded. A setting of that name written in postgresql.conf without the
-- library is only a placeholder, which pg_settings does not list.
CREATE FUNCTION billrecon._cron_database()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $cdb$
  SELECT s.setting FROM pg_catalog.pg_settings s WHERE s.name OPERATOR(pg_catalog.=) 'cron.database_name'
$cdb$;
COMMENT ON FUNCTION billrecon._cron_database() IS
  'Internal: pg_cron''s database (the cron.database_name setting), or null when the pg_cron library is not loaded';

-- Raises the error that says why pg_cron cannot be used from here, or returns
-- when it can. Takes the facts as arguments so that tests can try every case.
CREATE FUNCTION billrecon._cron_assert(action text, statement text, cron_database text, installed_here boolean,
                                       available boolean, preload text, detail text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $ca$
DECLARE
  v_db text := pg_catalog.current_database();
  v_preload text;
BEGIN
  IF cron_database IS NULL THEN
    v_preload := CASE WHEN coalesce(pg_catalog.btrim(preload), '') OPERATOR(pg_catalog.=) '' THEN 'billrecon,pg_cron'
                      WHEN preload OPERATOR(pg_catalog.~) '(^|[,\s/"])pg_cron\M' THEN preload
                      ELSE preload OPERATOR(pg_catalog.||) ',pg_cron' END;
    RAISE EXCEPTION USING ERRCODE = '55000',
      MESSAGE = format('cannot %s: pg_cron is not loaded', action),
      DETAIL = CASE WHEN available
                    THEN 'pg_cron is installed on this server but not in shared_preload_libraries, so its scheduler '
                         'does not run; billrecon schedules syncs through pg_cron.'
                    ELSE 'pg_cron is not installed on this server (pg_available_extensions has no pg_cron); billrecon '
                         'schedules syncs through pg_cron.' END,
      HINT = CASE WHEN available THEN ''
                  ELSE format('Install pg_cron (Debian and Ubuntu: apt install postgresql-%s-cron). ',
                              pg_catalog.current_setting('server_version_num')::integer OPERATOR(pg_catalog./) 10000) END
             OPERATOR(pg_catalog.||)
             format('In postgresql.conf set shared_preload_libraries = %L and cron.database_name = %L, restart '
                    'PostgreSQL, then run CREATE EXTENSION pg_cron; in database "%s". See docs/scheduling.md.',
                    v_preload, v_db, v_db);
  END IF;
  IF cron_database OPERATOR(pg_catalog.<>) v_db THEN
    RAISE EXCEPTION USING ERRCODE = '55000',
      MESSAGE = format('cannot %s from database "%s"', action, v_db),
      DETAIL = format('pg_cron runs in database "%s" (cron.database_name) and its functions can be called only there.',
                      cron_database) OPERATOR(pg_catalog.||) coalesce(' ' OPERATOR(pg_catalog.||) detail, ''),
      HINT = format('Run in database "%s": %s', cron_database, statement);
  END IF;
  IF NOT installed_here THEN
    RAISE EXCEPTION USING ERRCODE = '55000',
      MESSAGE = format('cannot %s: the pg_cron extension does not exist in database "%s"', action, v_db),
      DETAIL = format('pg_cron is loaded and cron.database_name names this database, but CREATE EXTENSION pg_cron '
                      'has not been run in it.'),
      HINT = format('Run CREATE EXTENSION pg_cron; in database "%s" as a superuser, then try again.', v_db);
  END IF;
END
$ca$;
COMMENT ON FUNCTION billrecon._cron_assert(text, text, text, boolean, boolean, text, text) IS
  'Internal: raises 55000 with a HINT saying what to do when pg_cron is not loaded (cron_database null), lives in '
  'another database (the HINT gives statement to run there) or is not created in this one; returns otherwise';

CREATE FUNCTION billrecon._cron_require(action text, statement text, detail text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $cr$
BEGIN
  PERFORM billrecon._cron_assert(
    action, statement, billrecon._cron_database(),
    EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'pg_cron'),
    EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions a WHERE a.name OPERATOR(pg_catalog.=) 'pg_cron'),
    pg_catalog.current_setting('shared_preload_libraries'), detail);
END
$cr$;
COMMENT ON FUNCTION billrecon._cron_require(text, text, text) IS
  'Internal: returns when pg_cron can be called from this database, else raises billrecon._cron_assert''s error';

-- The job's database when it is not pg_cron's own, else null.
CREATE FUNCTION billrecon._cron_job_database()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $cjd$
  SELECT CASE WHEN billrecon._cron_database() OPERATOR(pg_catalog.=) pg_catalog.current_database() THEN NULL
              ELSE pg_catalog.current_database()::text END
$cjd$;
COMMENT ON FUNCTION billrecon._cron_job_database() IS
  'Internal: null in pg_cron''s database, else this database''s name (it goes into the job name)';

-- pg_cron's job names are of type name (63 bytes). A longer name keeps its
-- start and ends with 8 hex digits of its md5, so that it stays unique.
CREATE FUNCTION billrecon._sync_job_name(integration text, mode text, job_database text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $jn$
DECLARE
  v_name text := format('billrecon sync %s %s', coalesce(integration, 'all'), mode)
                 OPERATOR(pg_catalog.||) coalesce(' in ' OPERATOR(pg_catalog.||) job_database, '');
  v_short text := v_name;
BEGIN
  IF pg_catalog.octet_length(v_name) OPERATOR(pg_catalog.<=) 63 THEN
    RETURN v_name;
  END IF;
  WHILE pg_catalog.octet_length(v_short) OPERATOR(pg_catalog.>) 54 LOOP
    v_short := pg_catalog.left(v_short, -1);
  END LOOP;
  RETURN v_short OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) pg_catalog.left(pg_catalog.md5(v_name), 8);
END
$jn$;
COMMENT ON FUNCTION billrecon._sync_job_name(text, text, text) IS
  'Internal: the pg_cron job name of a scheduled sync: billrecon sync <integration|all> <mode>[ in <database>], '
  'at most 63 bytes (longer names are cut and end with 8 hex digits of their md5)';

CREATE FUNCTION billrecon._sync_job_command(integration text, mode text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $jc$
  SELECT format('SELECT billrecon.sync_async(%L, %L)', integration, mode)
$jc$;
COMMENT ON FUNCTION billrecon._sync_job_command(text, text) IS
  'Internal: the command of a scheduled sync job, SELECT billrecon.sync_async(<integration or NULL>, <mode>)';

CREATE FUNCTION billrecon._check_sync_mode(mode text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $cm$
BEGIN
  IF mode IS NULL OR mode NOT IN ('quick', 'full') THEN
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = format('invalid sync mode "%s"', pg_catalog.left(coalesce(mode, 'NULL'), 40)),
      DETAIL = 'The mode must be "full" or "quick".',
      HINT = 'Use ''quick'' for the daily refresh and ''full'' after large changes in the source system.';
  END IF;
END
$cm$;
COMMENT ON FUNCTION billrecon._check_sync_mode(text) IS 'Internal: raises 22023 unless mode is quick or full';

CREATE FUNCTION billrecon.schedule_sync(schedule text, integration text DEFAULT NULL, mode text DEFAULT 'quick')
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $ss$
DECLARE
  v_command text;
  v_name text;
  v_job_db text;
  v_jobid bigint;
  v_message text;
BEGIN
  PERFORM billrecon._check_sync_mode(schedule_sync.mode);
  IF schedule_sync.integration IS NOT NULL THEN
    PERFORM billrecon._integration_id(schedule_sync.integration);
  END IF;
  IF schedule_sync.schedule IS NULL OR pg_catalog.btrim(schedule_sync.schedule) OPERATOR(pg_catalog.=) '' THEN
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = 'the schedule must not be empty',
      DETAIL = 'The schedule says when pg_cron runs the sync, in cron syntax: minute hour day-of-month month day-of-week.',
      HINT = 'For example ''0 6 * * *'' (every day at 06:00) or ''*/30 * * * *'' (every 30 minutes).';
  END IF;

  v_command := billrecon._sync_job_command(schedule_sync.integration, schedule_sync.mode);
  v_job_db := billrecon._cron_job_database();
  v_name := billrecon._sync_job_name(schedule_sync.integration, schedule_sync.mode, v_job_db);
  -- The command holds only an integration name ([A-Za-z0-9_.-]) and the mode,
  -- so dollar quotes are safe around it; everything else is a literal.
  PERFORM billrecon._cron_require('schedule a sync',
    format('SELECT cron.schedule_in_database(%L, %L, $$%s$$, %L);',
           v_name, schedule_sync.schedule, v_command, pg_catalog.current_database()),
    format('That statement creates (or replaces) the job %L, which runs %s in database "%s" as the user who runs '
           'the statement. pg_cron checks the schedule there.', v_name, v_command, pg_catalog.current_database()));

  BEGIN
    EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO v_jobid USING v_name, schedule_sync.schedule, v_command;
  EXCEPTION WHEN invalid_parameter_value THEN
    GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT;
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = v_message,
      DETAIL = format('pg_cron did not accept the schedule %L for the job %L.', schedule_sync.schedule, v_name),
      HINT = 'Use cron syntax, minute hour day-of-month month day-of-week, for example ''0 6 * * *'' (every day at '
             '06:00; pg_cron reads times in GMT unless cron.timezone says otherwise) or ''*/30 * * * *'' (every 30 '
             'minutes).';
  END;
  RETURN v_jobid;
END
$ss$;
COMMENT ON FUNCTION billrecon.schedule_sync(text, text, text) IS
  'Schedules a sync with pg_cron and returns pg_cron''s job id. schedule: cron syntax, e.g. ''0 6 * * *'' (daily at '
  '06:00, pg_cron''s time zone) or ''*/30 * * * *''; integration: a name, or null for every enabled one; mode: '
  'quick or full. The job runs SELECT billrecon.sync_async(integration, mode), which queues the sync for the '
  'background worker. The job is named ''billrecon sync <integration|all> <mode>'': scheduling the same '
  'integration and mode again replaces the schedule and keeps the job id. It runs as the owner of this function '
  '(the extension''s owner, usually a superuser), whoever scheduled it. Works in pg_cron''s database '
  '(cron.database_name); from any other database it raises 55000 whose HINT is the exact '
  'cron.schedule_in_database() statement to run in pg_cron''s database (then the job runs as the user who runs it). '
  'See docs/scheduling.md.';

CREATE FUNCTION billrecon.unschedule_sync(job_id bigint)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $uj$
DECLARE
  v_ours boolean;
BEGIN
  IF job_id IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22004',
      MESSAGE = 'job_id must not be null',
      DETAIL = 'billrecon.unschedule_sync(job_id) removes one pg_cron job by its id.',
      HINT = 'SELECT * FROM billrecon.sync_schedules() lists the scheduled syncs and their ids; '
             'billrecon.unschedule_sync(integration, mode) removes one by integration and mode.';
  END IF;
  PERFORM billrecon._cron_require('unschedule a sync', format('SELECT cron.unschedule(%s);', job_id));

  EXECUTE 'SELECT j.database OPERATOR(pg_catalog.=) pg_catalog.current_database() '
          '       AND pg_catalog.starts_with(j.jobname, ''billrecon sync '') '
          '       AND pg_catalog.starts_with(j.command, ''SELECT billrecon.sync_async('') '
          '  FROM cron.job j WHERE j.jobid OPERATOR(pg_catalog.=) $1'
     INTO v_ours USING job_id;
  IF v_ours IS NULL THEN
    RETURN false;
  END IF;
  IF NOT v_ours THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('pg_cron job %s is not a scheduled sync of this database', job_id),
      DETAIL = 'billrecon.unschedule_sync() removes only jobs that sync this database: named ''billrecon sync ...'' '
               'with the command SELECT billrecon.sync_async(...), as billrecon.schedule_sync() creates them.',
      HINT = 'SELECT * FROM billrecon.sync_schedules() lists them; other pg_cron jobs are removed with '
             'cron.unschedule() by their owner.';
  END IF;
  EXECUTE 'SELECT cron.unschedule($1)' USING job_id;
  RETURN true;
END
$uj$;
COMMENT ON FUNCTION billrecon.unschedule_sync(bigint) IS
  'Removes a scheduled sync by its pg_cron job id (as billrecon.sync_schedules() lists them). Returns true when '
  'removed, false when no such job exists. Refuses (42501) any job that is not a billrecon sync of this database. '
  'Works in pg_cron''s database; from another one it raises 55000 whose HINT is the statement to run there.';

CREATE FUNCTION billrecon.unschedule_sync(integration text, mode text DEFAULT 'quick')
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $un$
DECLARE
  v_name text;
  v_jobids bigint[];
  v_jobid bigint;
BEGIN
  PERFORM billrecon._check_sync_mode(unschedule_sync.mode);
  v_name := billrecon._sync_job_name(unschedule_sync.integration, unschedule_sync.mode,
                                     billrecon._cron_job_database());
  PERFORM billrecon._cron_require('unschedule a sync', format('SELECT cron.unschedule(%L);', v_name));

  -- pg_cron names are unique per user: one job from schedule_sync (the
  -- owner's), and maybe one a user made with the same name and command.
  EXECUTE 'SELECT pg_catalog.array_agg(j.jobid ORDER BY j.jobid) FROM cron.job j '
          ' WHERE j.jobname OPERATOR(pg_catalog.=) $1 '
          '   AND j.database OPERATOR(pg_catalog.=) pg_catalog.current_database() '
          '   AND pg_catalog.starts_with(j.command, ''SELECT billrecon.sync_async('')'
     INTO v_jobids USING v_name;
  IF v_jobids IS NULL THEN
    RETURN false;
  END IF;
  FOREACH v_jobid IN ARRAY v_jobids LOOP
    EXECUTE 'SELECT cron.unschedule($1)' USING v_jobid;
  END LOOP;
  RETURN true;
END
$un$;
COMMENT ON FUNCTION billrecon.unschedule_sync(text, text) IS
  'Removes the scheduled sync of this integration (null: the one of every enabled integration) and mode: the jobs '
  'of this database named as billrecon.schedule_sync() names them, with a billrecon.sync_async command. Returns '
  'true when removed, false when there was none. The integration need not exist any more. Works in pg_cron''s database; from another one it raises 55000 whose HINT is the '
  'cron.unschedule() statement to run there.';

CREATE FUNCTION billrecon.sync_schedules()
RETURNS TABLE (jobid bigint, jobname text, schedule text, command text, active boolean, username text,
               last_status text, last_start_time timestamptz, last_end_time timestamptz, last_message text)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $sl$
BEGIN
  PERFORM billrecon._cron_require('list scheduled syncs',
    format('SELECT jobid, jobname, schedule, command, active, username FROM cron.job WHERE database = %L '
           'AND jobname LIKE ''billrecon sync %%'' ORDER BY jobid;', pg_catalog.current_database()));
  IF pg_catalog.to_regclass('cron.job_run_details') IS NULL THEN   -- pg_cron before 1.3
    RETURN QUERY EXECUTE
      'SELECT j.jobid, j.jobname::text, j.schedule, j.command, j.active, j.username::text, '
      '       NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::text '
      '  FROM cron.job j '
      ' WHERE j.database OPERATOR(pg_catalog.=) pg_catalog.current_database() '
      '   AND pg_catalog.starts_with(j.jobname, ''billrecon sync '') '
      '   AND pg_catalog.starts_with(j.command, ''SELECT billrecon.sync_async('') '
      ' ORDER BY j.jobid';
    RETURN;
  END IF;
  RETURN QUERY EXECUTE
    'WITH jobs AS ( '
    '  SELECT j.* FROM cron.job j '
    '   WHERE j.database OPERATOR(pg_catalog.=) pg_catalog.current_database() '
    '     AND pg_catalog.starts_with(j.jobname, ''billrecon sync '') '
    '     AND pg_catalog.starts_with(j.command, ''SELECT billrecon.sync_async('') '
    '), last_run AS ( '
    '  SELECT DISTINCT ON (d.jobid) d.jobid, d.status, d.start_time, d.end_time, d.return_message '
    '    FROM cron.job_run_details d '
    '   WHERE d.jobid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT jobs.jobid FROM jobs)) '
    '   ORDER BY d.jobid, d.runid DESC '
    ') '
    'SELECT j.jobid, j.jobname::text, j.schedule, j.command, j.active, j.username::text, '
    '       r.status, r.start_time, r.end_time, r.return_message '
    '  FROM jobs j LEFT JOIN last_run r ON r.jobid OPERATOR(pg_catalog.=) j.jobid '
    ' ORDER BY j.jobid';
END
$sl$;
COMMENT ON FUNCTION billrecon.sync_schedules() IS
  'The scheduled syncs of this database: pg_cron''s jobid, jobname, schedule, command, active, username (the role '
  'the job runs as) and its last run from cron.job_run_details (last_status: starting, running, succeeded or '
  'failed; last_start_time, last_end_time, last_message), null when it never ran or cron.log_run is off. Works in '
  'pg_cron''s database; from another one it raises 55000 whose HINT is the query to run there.';

REVOKE ALL ON FUNCTION billrecon._cron_database(), billrecon._cron_assert(text, text, text, boolean, boolean, text, text),
                       billrecon._cron_require(text, text, text), billrecon._cron_job_database(),
                       billrecon._sync_job_name(text, text, text), billrecon._sync_job_command(text, text),
                       billrecon._check_sync_mode(text),
                       billrecon.schedule_sync(text, text, text), billrecon.unschedule_sync(bigint),
                       billrecon.unschedule_sync(text, text), billrecon.sync_schedules()
  FROM PUBLIC;
-- The functions run with the owner's rights (pg_cron's jobs are the owner's);
-- the internal helpers are called only from them.
GRANT EXECUTE ON FUNCTION billrecon.schedule_sync(text, text, text), billrecon.unschedule_sync(bigint),
                          billrecon.unschedule_sync(text, text)
  TO billrecon_operator;
GRANT EXECUTE ON FUNCTION billrecon.sync_schedules() TO billrecon_reader;

-- Column comments of the report views (what \d+ shows a BI user). One
-- dictionary: a column name means the same thing in every report view; the
-- few that differ are listed per view first.

CREATE TEMP TABLE billrecon_view_column_comments (view_name text, column_name text, comment text);
INSERT INTO billrecon_view_column_comments (view_name, column_name, comment) VALUES
  -- Per view, where a name means something particular there.
  ('client_seats', 'quantity', 'Units the record stands for (1 for a device or user)'),
  ('client_services', 'quantity', 'Billed quantity of the line'),
  ('client_services', 'state', 'mapped, unmapped, ignored or adjustment (see billrecon.service_mapping)'),
  ('flagged_services', 'quantity', 'Billed quantity of the line'),
  ('margin', 'quantity', 'Billed quantity of the line'),
  ('margin', 'margin', 'Margin of the whole line per billing cycle: quantity x margin_per_unit'),
  ('client_integrations', 'seats', 'Usage records the account reports'),
  ('duplicate_seats', 'seats', 'How many records report this one device'),
  ('discrepancies_by_service', 'clients', 'Clients with a discrepancy on this service'),
  ('discrepancies_by_service', 'variance', 'Sum of the variances, in counted units'),
  ('reconcile_run_comparison', 'amount_change', 'last_discrepancy_amount - previous_discrepancy_amount'),
  ('change_card_proration', 'delta', 'Quantity change of the card'),
  ('change_card_proration', 'basis', 'How the prorated amount was reached, or why it is zero'),
  ('change_cards', 'effective_date',
   'When the new quantity starts: set on approval, else the default (first day of next month) for open cards'),
  ('change_cards', 'tags', 'Tags of the card and of its line item'),
  ('change_cards', 'note', 'Reviewer''s note on the card, else on its line item'),
  -- Every report view.
  (NULL, 'run_id', 'Reconcile run (billrecon.reconcile_runs.id; billrecon.last_run_id() is the newest)'),
  (NULL, 'result_id', 'Result row (billrecon.reconcile_results.id)'),
  (NULL, 'period_start', 'First day of the month the run reconciled'),
  (NULL, 'psa_company_id', 'The PSA''s id of the client'),
  (NULL, 'company', 'Client name'),
  (NULL, 'agreement_id', 'The PSA''s id of the agreement (contract)'),
  (NULL, 'agreement', 'Agreement name'),
  (NULL, 'line_item_id', 'The PSA''s id of the line item'),
  (NULL, 'product', 'Product code (or name) of the line; for unaccounted usage the vendor product, SKU or device class'),
  (NULL, 'product_name', 'Product name'),
  (NULL, 'integration', 'Integration (by name)'),
  (NULL, 'vendor_integration', 'Integration reporting the usage (new_revenue cards)'),
  (NULL, 'integrations', 'Integrations involved, comma-separated'),
  (NULL, 'kind', 'Kind: device, licence, user or subscription for seats; quantity, new_revenue or revert for cards'),
  (NULL, 'usage_kind', 'device, licence, user or subscription'),
  (NULL, 'mode', 'Counting mode of the rule: asset, licence, user, subscription, manual, custom_sql'),
  (NULL, 'multiplier', 'Counted units per billed unit'),
  (NULL, 'state', 'reconciled, ignored, custom_sql, manual, adjustment, unmapped or unaccounted'),
  (NULL, 'type', 'Discrepancy type: calculated, estimated, unmapped or unaccounted'),
  (NULL, 'row_kind', 'line, vendor_account (unmapped account) or unaccounted'),
  (NULL, 'invoiced_qty', 'Billed quantity of the line (hard: from the PSA)'),
  (NULL, 'adjustment_qty', 'Quantity netted in from linked adjustment lines'),
  (NULL, 'expected_qty', 'Units expected from billing: (billed + adjustments) x multiplier, over the line''s group'),
  (NULL, 'counted_qty', 'Units counted in the vendor''s usage'),
  (NULL, 'unit_price', 'Unit price per billed unit, rounded to cents'),
  (NULL, 'variance', 'counted - expected, in counted units'),
  (NULL, 'amount', 'Money per billing cycle, rounded to cents: positive = under-billed revenue, negative = over-billed'),
  (NULL, 'monthly_amount', 'amount normalized to one month (quarterly / 3, annual / 12)'),
  (NULL, 'absolute_amount', 'Sum of the absolute amounts: how much money is wrong either way'),
  (NULL, 'discrepancy_amount', 'Sum of the discrepancies'' amounts (signed)'),
  (NULL, 'discrepancy_count', 'Number of discrepancies'),
  (NULL, 'calculated', 'Discrepancies from hard values only'),
  (NULL, 'estimated', 'Discrepancies with an estimated input'),
  (NULL, 'unmapped', 'Discrepancies caused by a missing mapping'),
  (NULL, 'unaccounted', 'Usage billed by no line'),
  (NULL, 'billing_cycle', 'Billing cycle: monthly, quarterly, annual, other or unknown'),
  (NULL, 'cycle_start', 'First day of the billing cycle'),
  (NULL, 'cycle_end', 'Last day of the billing cycle'),
  (NULL, 'invoiced_source', 'hard (from the PSA) or estimated'),
  (NULL, 'counted_source', 'hard (synced usage) or estimated (a manual line compared with an integration)'),
  (NULL, 'price_source', 'hard (the line''s price) or estimated (see estimate_basis)'),
  (NULL, 'cycle_source', 'hard, or estimated when the cycle or the agreement start is unknown'),
  (NULL, 'estimate_basis', 'What was estimated and from what'),
  (NULL, 'explanation', 'The numbers and reasoning in one sentence'),
  (NULL, 'input_warning', 'Why the inputs may be unreliable (an integration failed, stale or never synced), else null'),
  (NULL, 'vendor_account_id', 'The vendor''s id of the account'),
  (NULL, 'vendor_account', 'Vendor account name'),
  (NULL, 'group_line_item_id', 'The line carrying the variance of this line''s group'),
  (NULL, 'group_size', 'Lines in the group'),
  (NULL, 'seat_count', 'Seats (devices, enabled users, licence and subscription units) of the client''s mapped accounts'),
  (NULL, 'service_count', 'PSA line items (services) of the client in force'),
  (NULL, 'worst_integration_status', 'Worst health (green / yellow / red) among the integrations involved, at the run'),
  (NULL, 'last_run_id', 'The client''s newest run'),
  (NULL, 'previous_run_id', 'The run before it'),
  (NULL, 'last_period', 'Month of the newest run'),
  (NULL, 'previous_period', 'Month of the run before'),
  (NULL, 'last_discrepancy_count', 'Discrepancies in the newest run'),
  (NULL, 'previous_discrepancy_count', 'Discrepancies in the run before'),
  (NULL, 'last_discrepancy_amount', 'Discrepancy amount in the newest run'),
  (NULL, 'previous_discrepancy_amount', 'Discrepancy amount in the run before'),
  (NULL, 'last_seat_count', 'Seats in the newest run'),
  (NULL, 'previous_seat_count', 'Seats in the run before'),
  (NULL, 'seat_change', 'last_seat_count - previous_seat_count'),
  (NULL, 'mapped_by', 'manual or suggestion: how the account was mapped'),
  (NULL, 'status', 'Integration health (green / yellow / red), or card status (pending, approved, dismissed, pushed, failed)'),
  (NULL, 'last_success_at', 'End of the integration''s last successful sync'),
  (NULL, 'seat_id', 'The vendor''s id of the seat (usage record)'),
  (NULL, 'seat', 'Device name, user name or product of the seat'),
  (NULL, 'device_class', 'desktop, laptop, server or other'),
  (NULL, 'os_name', 'Operating system'),
  (NULL, 'serial_number', 'Serial number'),
  (NULL, 'licensed', 'The user holds a licence'),
  (NULL, 'enabled', 'The user is enabled'),
  (NULL, 'last_active_at', 'Last activity the vendor reports'),
  (NULL, 'excluded', 'Its product is excluded (never counted)'),
  (NULL, 'days_inactive', 'Days since the last activity'),
  (NULL, 'monthly_cost', 'Monthly unit price of the line billing this seat in the last run (null when none does)'),
  (NULL, 'billed_on_line_item_id', 'The PSA line that bills this seat in the last run'),
  (NULL, 'flag', 'missing_unit_price, inconsistent_price, negative_quantity, orphan_adjustment or duplicate_line'),
  (NULL, 'detail', 'What was found, in words'),
  (NULL, 'match_on', 'serial or hostname: what identifies the device'),
  (NULL, 'match_value', 'The serial number or host name shared'),
  (NULL, 'extra_seats', 'Records beyond the first: what would be billed twice'),
  (NULL, 'devices', 'Device names of the records'),
  (NULL, 'seat_ids', 'The vendors'' ids of the records'),
  (NULL, 'psa_unit_cost', 'Unit cost the PSA holds for the line'),
  (NULL, 'vendor_unit_cost', 'Vendor''s cost per counted unit (weighted average)'),
  (NULL, 'vendor_units', 'Counted units that carry a vendor cost'),
  (NULL, 'margin_per_unit', 'unit_price - multiplier x vendor_unit_cost'),
  (NULL, 'margin_percent', 'margin_per_unit as a percentage of unit_price'),
  (NULL, 'at_or_below_cost', 'The line is sold at or below the vendor''s cost'),
  (NULL, 'card_id', 'Change card id'),
  (NULL, 'current_qty', 'Quantity the PSA bills now'),
  (NULL, 'proposed_qty', 'Quantity that makes the variance zero, in whole units'),
  (NULL, 'delta', 'proposed_qty - current_qty'),
  (NULL, 'effective_date', 'When the new quantity starts'),
  (NULL, 'flags', 'Spot-check flags: out_of_proportion, new_revenue'),
  (NULL, 'dismiss_reason', 'Why the card was dismissed'),
  (NULL, 'decided_by', 'Role that approved or dismissed it'),
  (NULL, 'decided_at', 'When'),
  (NULL, 'push_attempts', 'Write-back attempts'),
  (NULL, 'pushed_at', 'When the PSA accepted the change'),
  (NULL, 'push_error', 'The PSA''s message when the last push failed'),
  (NULL, 'reverts_card_id', 'revert cards: the card whose change it puts back'),
  (NULL, 'reverted_by_card_id', 'The revert card that put this change back'),
  (NULL, 'note', 'Reviewer''s note'),
  (NULL, 'tags', 'Reviewer''s tags'),
  (NULL, 'created_at', 'When the card was raised'),
  (NULL, 'updated_at', 'Last change'),
  (NULL, 'proration_supported', 'Whether the PSA and the agreement prorate mid-cycle changes'),
  (NULL, 'prorated_amount', 'Charge (or credit) from the effective date to the cycle end, rounded to cents; 0 when not prorated'),
  (NULL, 'quantity', 'Quantity');

DO $cc$
DECLARE
  v record;
BEGIN
  FOR v IN
    SELECT c.relname, a.attname,
           coalesce((SELECT d.comment FROM billrecon_view_column_comments d
                      WHERE d.view_name = c.relname AND d.column_name = a.attname),
                    (SELECT d.comment FROM billrecon_view_column_comments d
                      WHERE d.view_name IS NULL AND d.column_name = a.attname)) AS comment
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'billrecon'
      JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
     WHERE c.relkind = 'v' AND pg_catalog.col_description(c.oid, a.attnum) IS NULL
  LOOP
    IF v.comment IS NULL THEN
      RAISE EXCEPTION 'billrecon install: column %.% of a view has no comment', v.relname, v.attname;
    END IF;
    EXECUTE pg_catalog.format('COMMENT ON COLUMN billrecon.%I.%I IS %L', v.relname, v.attname, v.comment);
  END LOOP;
END
$cc$;
DROP TABLE billrecon_view_column_comments;

-- The monthly report as one self-contained HTML page, for the billing lead
-- who never opens psql: billrecon.report_html(run_id). No external assets
-- (inline CSS, inline SVG charts, no script), every text from the data
-- HTML-escaped, money with 2 decimals and thousands separators. It reads the
-- report views with the caller's rights, so billrecon_reader may run it.
-- The source stays ASCII (a database in another encoding must be able to
-- install it): non-ASCII characters of the page are numeric entities.

CREATE FUNCTION billrecon._html_escape(value text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN coalesce(
         replace(replace(replace(replace(replace(
           value, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;'),
         '');
COMMENT ON FUNCTION billrecon._html_escape(text) IS
  'Internal: text made safe for HTML element content and quoted attributes (& < > " and '' as entities); '
  'null gives an empty string';

-- 1234567.5 -> '1,234,567.50' (signed: '+1,234,567.50'); null -> an en dash.
-- The pattern's "," and "." are literal, whatever lc_numeric says.
CREATE FUNCTION billrecon._report_money(amount numeric, signed boolean DEFAULT false)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE
         WHEN amount IS NULL THEN '&#8211;'
         ELSE (CASE WHEN signed AND amount > 0 THEN '+' ELSE '' END)
              || to_char(round(amount, 2), 'FM999,999,999,999,990.00')
       END;
COMMENT ON FUNCTION billrecon._report_money(numeric, boolean) IS
  'Internal: money as report text, 2 decimals and thousands separators (1,234.50; signed adds + to positive '
  'amounts); null gives an en dash entity';

-- A horizontal bar chart as inline SVG: one row per label, the negative part
-- drawn left of a zero axis, the positive part right of it.
CREATE FUNCTION billrecon._report_bars(labels text[], positive numeric[], negative numeric[], notes text[])
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $rb$
DECLARE
  k_width   constant integer := 1000;
  k_plot_x  constant integer := 270;    -- labels end here
  k_plot_w  constant integer := 500;
  k_note_x  constant integer := 786;
  k_row_h   constant integer := 26;
  k_top     constant integer := 8;
  v_n       integer := coalesce(cardinality(labels), 0);
  v_pos_max numeric;
  v_neg_max numeric;
  v_scale   numeric;
  v_x0      numeric;
  v_height  integer;
  v_y       integer;
  v_w       numeric;
  v_label   text;
  v_svg     text;
BEGIN
  IF v_n = 0 THEN
    RETURN '<p class="empty">Nothing to chart.</p>';
  END IF;
  SELECT coalesce(max(p), 0) INTO v_pos_max FROM unnest(positive) AS u(p) WHERE p > 0;
  SELECT coalesce(max(-m), 0) INTO v_neg_max FROM unnest(negative) AS u(m) WHERE m < 0;
  v_pos_max := coalesce(v_pos_max, 0);
  v_neg_max := coalesce(v_neg_max, 0);
  IF v_pos_max + v_neg_max = 0 THEN
    v_scale := 0;
    v_x0 := k_plot_x + k_plot_w / 2;
  ELSE
    v_scale := k_plot_w / (v_pos_max + v_neg_max);
    v_x0 := k_plot_x + v_neg_max * v_scale;
  END IF;
  v_height := k_top + v_n * k_row_h + 8;
  v_svg := format(
    '<svg class="chart" viewBox="0 0 %s %s" width="100%%" preserveAspectRatio="xMinYMin meet" role="img">',
    k_width, v_height);
  FOR i IN 1 .. v_n LOOP
    v_y := k_top + (i - 1) * k_row_h;
    v_label := coalesce(labels[i], '');
    v_svg := v_svg || format('<g><title>%s: %s</title>', billrecon._html_escape(v_label),
                                        billrecon._html_escape(notes[i]));
    IF i % 2 = 0 THEN
      v_svg := v_svg || format('<rect class="stripe" x="0" y="%s" width="%s" height="%s"/>',
                                          v_y, k_width, k_row_h);
    END IF;
    v_svg := v_svg || format('<text class="lbl" x="%s" y="%s" text-anchor="end">%s</text>',
      k_plot_x - 8, v_y + 17,
      CASE WHEN length(v_label) > 36
           THEN billrecon._html_escape(left(v_label, 35)) || '&#8230;'
           ELSE billrecon._html_escape(v_label) END);
    IF negative[i] < 0 THEN
      v_w := greatest(-negative[i] * v_scale, 1);
      v_svg := v_svg || format('<rect class="neg" x="%s" y="%s" width="%s" height="%s"/>',
        round(v_x0 - v_w, 1), v_y + 5, round(v_w, 1), k_row_h - 10);
    END IF;
    IF positive[i] > 0 THEN
      v_w := greatest(positive[i] * v_scale, 1);
      v_svg := v_svg || format('<rect class="pos" x="%s" y="%s" width="%s" height="%s"/>',
        round(v_x0, 1), v_y + 5, round(v_w, 1), k_row_h - 10);
    END IF;
    v_svg := v_svg || format('<text class="val" x="%s" y="%s">%s</text></g>',
      k_note_x, v_y + 17, billrecon._html_escape(notes[i]));
  END LOOP;
  v_svg := v_svg || format('<line class="axis" x1="%s" y1="%s" x2="%s" y2="%s"/></svg>',
    round(v_x0, 1), k_top - 4, round(v_x0, 1), v_height - 4);
  RETURN v_svg;
END
$rb$;
COMMENT ON FUNCTION billrecon._report_bars(text[], numeric[], numeric[], text[]) IS
  'Internal: an inline SVG horizontal bar chart for billrecon.report_html(): per label, the negative amount '
  'drawn left of a zero axis (class neg), the positive one right of it (class pos), and a note; labels and notes '
  'are HTML-escaped';

CREATE FUNCTION billrecon.report_html(run_id bigint DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $rh$
#variable_conflict use_column
DECLARE
  v_id        bigint := report_html.run_id;
  v_run       record;
  v_last      bigint;
  v_sum       record;
  v_clients   bigint;
  v_cards     record;
  v_inactive  record;
  v_labels    text[];
  v_pos       numeric[];
  v_neg       numeric[];
  v_notes     text[];
  v_rows      text;
  v_current   text;
  v_client    text;
  v_title     text;
  v_flags     text;
  v_section   text;
  h           text;
BEGIN
  v_last := billrecon.last_run_id();
  IF v_id IS NULL THEN
    v_id := v_last;
    IF v_id IS NULL THEN
      RAISE EXCEPTION USING ERRCODE = '55000', MESSAGE = 'there is no reconcile run to report on yet',
        DETAIL = 'billrecon.reconcile_runs holds no finished run of every client.',
        HINT = 'Reconcile first: SELECT billrecon.reconcile(); (as billrecon_operator), then '
               'SELECT billrecon.report_html(); or pass the id of a one-client run.';
    END IF;
  END IF;

  SELECT r.* INTO v_run FROM billrecon.reconcile_runs r WHERE r.id = v_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('reconcile run %s does not exist', v_id),
      DETAIL = format('billrecon.reconcile_runs has no run with id %s; the newest finished run is %s.',
                      v_id, coalesce(v_last::text, 'none')),
      HINT = 'SELECT id, period_start, finished_at FROM billrecon.reconcile_runs ORDER BY id DESC; lists the runs; '
             'billrecon.report_html() without an argument reports on the newest.';
  END IF;

  v_client := v_run.client_external_id;    -- a run of one client: its current data only
  v_title := format('Billing reconciliation %s, run %s', to_char(v_run.period_start, 'FMMonth YYYY'), v_id);
  v_current := CASE WHEN v_id IS DISTINCT FROM v_last
                    THEN ' <span class="note">(current data, not as of run ' || v_id || ')</span>' ELSE '' END;

  -- Head and style. Colours: under-billed (revenue to recover) blue, over-billed (credits owed) orange.
  h := '<!DOCTYPE html>' || E'\n'
    || '<html lang="en"><head><meta charset="utf-8">'
    || '<meta name="viewport" content="width=device-width, initial-scale=1">'
    || '<meta name="generator" content="' || billrecon._html_escape(billrecon.version()) || '">'
    || '<title>' || billrecon._html_escape(v_title) || '</title>' || E'\n'
    || '<style>' || E'\n'
    || ':root{--pos:#1f6fb2;--neg:#d9480f;--ink:#1f2933;--muted:#616e7c;--line:#d9dee3;--bg:#f5f7fa}' || E'\n'
    || '*{box-sizing:border-box}' || E'\n'
    || 'body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 "Segoe UI",Roboto,"Helvetica Neue",'
    || 'Arial,sans-serif}' || E'\n'
    || 'header,main,footer{max-width:1180px;margin:0 auto;padding:0 24px}' || E'\n'
    || 'header{padding-top:24px}h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:0 0 10px}' || E'\n'
    || 'h3{font-size:15px;margin:14px 0 6px}.sub{color:var(--muted);margin:0}' || E'\n'
    || 'section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 20px;'
    || 'margin:16px 0}' || E'\n'
    || 'table{border-collapse:collapse;width:100%;font-size:13px}' || E'\n'
    || 'th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}' || E'\n'
    || 'th{background:#eef1f4;font-weight:600}td.num,th.num{text-align:right;white-space:nowrap;'
    || 'font-variant-numeric:tabular-nums}' || E'\n'
    || 'td.why{color:#3e4c59;min-width:340px;max-width:480px}table.narrow{width:auto;min-width:50%}' || E'\n'
    || '.small{font-size:12px;color:var(--muted)}' || E'\n'
    || '.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:12px;'
    || 'margin-bottom:14px}' || E'\n'
    || '.card{border:1px solid var(--line);border-radius:8px;padding:10px 12px;background:#fafbfc}' || E'\n'
    || '.card .k{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}' || E'\n'
    || '.card .v{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums}' || E'\n'
    || '.pos{color:var(--pos)}.neg{color:var(--neg)}.note{color:var(--muted);font-weight:400;font-size:13px}' || E'\n'
    || '.pill{display:inline-block;padding:1px 9px;border-radius:10px;font-size:12px;font-weight:600;'
    || 'color:#fff}' || E'\n'
    || '.green{background:#2f9e44}.yellow{background:#e8a200}.red{background:#c92a2a}' || E'\n'
    || '.flag{display:inline-block;padding:0 6px;border-radius:4px;background:#fff3bf;font-size:12px;'
    || 'margin-right:3px}' || E'\n'
    || '.warn{background:#fff8e1;border-left:4px solid #e8a200;padding:6px 10px;margin:4px 0;list-style:none}' || E'\n'
    || 'ul.notes{padding:0;margin:10px 0 0}.ok{color:#2f9e44;font-weight:600}.empty{color:var(--muted)}' || E'\n'
    || '.charts{display:grid;grid-template-columns:1fr;gap:8px}' || E'\n'
    || 'svg.chart{display:block;font-size:13px}svg.chart rect.pos{fill:var(--pos)}' || E'\n'
    || 'svg.chart rect.neg{fill:var(--neg)}' || E'\n'
    || 'svg.chart rect.stripe{fill:#f5f7fa}svg.chart .lbl{fill:var(--ink)}svg.chart .val{fill:var(--muted)}' || E'\n'
    || 'svg.chart line.axis{stroke:#7b8794;stroke-width:1}' || E'\n'
    || '.legend span{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px;'
    || 'margin:0 4px 0 12px}.legend .lp{background:var(--pos)}.legend .ln{background:var(--neg)}' || E'\n'
    || 'footer{color:var(--muted);font-size:12.5px;padding-bottom:32px}' || E'\n'
    || 'footer dt{font-weight:600;color:var(--ink)}' || E'\n'
    || 'footer dd{margin:0 0 6px 0}' || E'\n'
    || '@media print{body{background:#fff}section{break-inside:avoid;border-color:#bbb}}' || E'\n'
    || '</style></head>' || E'\n' || '<body>' || E'\n';

  -- Title: the period, the run, the dates.
  h := h || format(
      '<header><h1>%s</h1><p class="sub">Run <b>%s</b> &#183; period %s to %s%s &#183; PSA %s &#183; '
      'reconciled %s by %s &#183; report of %s</p></header>' || E'\n' || '<main>' || E'\n',
      billrecon._html_escape(v_title), v_id, to_char(v_run.period_start, 'YYYY-MM-DD'),
      to_char(v_run.period_end, 'YYYY-MM-DD'),
      CASE WHEN v_run.client_external_id IS NOT NULL
           THEN ' &#183; one client only (PSA id ' || billrecon._html_escape(v_run.client_external_id) || ')'
           ELSE '' END,
      billrecon._html_escape(coalesce(v_run.psa_integration, 'none')),
      to_char(v_run.started_at, 'YYYY-MM-DD HH24:MI TZ'), billrecon._html_escape(v_run.run_by),
      to_char(now(), 'YYYY-MM-DD HH24:MI TZ'));

  -- Data health: the inputs the run used, and its notes.
  SELECT string_agg(format(
           '<tr><td>%s</td><td>%s</td><td>%s</td><td><span class="pill %s">%s</span></td><td>%s</td><td>%s</td></tr>',
           billrecon._html_escape(i.integration), billrecon._html_escape(i.kind), billrecon._html_escape(i.side),
           CASE WHEN i.status IN ('green', 'yellow', 'red') THEN i.status ELSE 'yellow' END,
           billrecon._html_escape(i.status),
           coalesce(to_char(i.last_success_at, 'YYYY-MM-DD HH24:MI TZ'), 'never'),
           billrecon._html_escape(i.last_error)),
           E'\n' ORDER BY i.side, i.integration)
    INTO v_rows
    FROM billrecon.reconcile_run_inputs i WHERE i.run_id = v_id;
  h := h || '<section id="health"><h2>Data health at the time of the run</h2>'
    || CASE WHEN v_rows IS NULL THEN '<p class="empty">The run recorded no integration.</p>'
            ELSE '<table><thead><tr><th>Integration</th><th>Kind</th><th>Side</th><th>Status</th>'
                 || '<th>Last successful sync</th><th>Last error</th></tr></thead><tbody>' || E'\n'
                 || v_rows || '</tbody></table>' END
    || CASE WHEN cardinality(v_run.notes) > 0
            THEN '<ul class="notes">'
                 || (SELECT string_agg('<li class="warn">' || billrecon._html_escape(n) || '</li>', '' ORDER BY o)
                       FROM unnest(v_run.notes) WITH ORDINALITY AS x(n, o))
                 || '</ul>'
            ELSE '<p class="ok">No warning: every input was green when the run was made.</p>' END
    || '</section>' || E'\n';

  -- Summary figures.
  SELECT count(*) AS n,
         count(d.amount) AS priced,
         coalesce(sum(d.amount) FILTER (WHERE d.amount > 0), 0) AS under,
         count(*) FILTER (WHERE d.amount > 0) AS n_under,
         coalesce(sum(d.amount) FILTER (WHERE d.amount < 0), 0) AS over,
         count(*) FILTER (WHERE d.amount < 0) AS n_over,
         coalesce(sum(d.amount), 0) AS net,
         coalesce(sum(abs(d.amount)), 0) AS absolute,
         coalesce(sum(d.monthly_amount), 0) AS monthly,
         count(DISTINCT d.psa_company_id) AS clients
    INTO v_sum
    FROM billrecon.discrepancies d WHERE d.run_id = v_id;
  SELECT count(*) INTO v_clients FROM billrecon.reconciled_invoices c WHERE c.run_id = v_id;

  h := h || '<section id="summary"><h2>Summary</h2><div class="cards">'
    || format('<div class="card"><div class="k">Under-billed</div><div class="v pos">%s</div>'
              '<div class="small">%s discrepancies: revenue to recover</div></div>',
              billrecon._report_money(v_sum.under), v_sum.n_under)
    || format('<div class="card"><div class="k">Over-billed</div><div class="v neg">%s</div>'
              '<div class="small">%s discrepancies: credits owed</div></div>',
              billrecon._report_money(v_sum.over), v_sum.n_over)
    || format('<div class="card"><div class="k">Net</div><div class="v %s">%s</div>'
              '<div class="small">%s a month</div></div>',
              CASE WHEN v_sum.net < 0 THEN 'neg' WHEN v_sum.net > 0 THEN 'pos' ELSE '' END,
              billrecon._report_money(v_sum.net, true),
              billrecon._report_money(v_sum.monthly, true))
    || format('<div class="card"><div class="k">Absolute</div><div class="v">%s</div>'
              '<div class="small">money in question either way</div></div>',
              billrecon._report_money(v_sum.absolute))
    || format('<div class="card"><div class="k">Discrepancies</div><div class="v">%s</div>'
              '<div class="small">%s with an amount</div></div>', v_sum.n, v_sum.priced)
    || format('<div class="card"><div class="k">Clients</div><div class="v">%s</div>'
              '<div class="small">with a discrepancy, of %s reconciled</div></div>',
              v_sum.clients, v_clients)
    || '</div>';
  SELECT string_agg(format(
           '<tr><td>%s</td><td class="num">%s</td><td class="num">%s</td><td class="num pos">%s</td>'
           '<td class="num neg">%s</td><td class="num">%s</td></tr>',
           t.type, t.n, t.priced, billrecon._report_money(t.under), billrecon._report_money(t.over),
           billrecon._report_money(t.net, true)), E'\n' ORDER BY t.o)
    INTO v_rows
    FROM (SELECT k.type, k.o, count(d.run_id) AS n, count(d.amount) AS priced,
                 coalesce(sum(d.amount) FILTER (WHERE d.amount > 0), 0) AS under,
                 coalesce(sum(d.amount) FILTER (WHERE d.amount < 0), 0) AS over,
                 sum(d.amount) AS net
            FROM unnest(ARRAY['calculated', 'estimated', 'unmapped', 'unaccounted'])
                 WITH ORDINALITY AS k(type, o)
            LEFT JOIN billrecon.discrepancies d ON d.run_id = v_id AND d.type = k.type
           GROUP BY k.type, k.o) t;
  h := h || '<h3>By type</h3><table><thead><tr><th>Type</th><th class="num">Discrepancies</th>'
    || '<th class="num">With an amount</th><th class="num">Under-billed</th><th class="num">Over-billed</th>'
    || '<th class="num">Net</th></tr></thead><tbody>' || E'\n' || v_rows || '</tbody></table></section>' || E'\n';

  -- Charts: by client (top 15 by money in question) and by type.
  SELECT array_agg(c.company ORDER BY c.absolute DESC, c.company, c.psa_company_id),
         array_agg(c.under ORDER BY c.absolute DESC, c.company, c.psa_company_id),
         array_agg(c.over ORDER BY c.absolute DESC, c.company, c.psa_company_id),
         array_agg(format('net %s (%s rows)', billrecon._report_money(c.net, true), c.n)
                   ORDER BY c.absolute DESC, c.company, c.psa_company_id)
    INTO v_labels, v_pos, v_neg, v_notes
    FROM (SELECT d.psa_company_id, max(d.company) AS company, count(*) AS n,
                 coalesce(sum(d.amount) FILTER (WHERE d.amount > 0), 0) AS under,
                 coalesce(sum(d.amount) FILTER (WHERE d.amount < 0), 0) AS over,
                 coalesce(sum(d.amount), 0) AS net,
                 sum(abs(d.amount)) AS absolute
            FROM billrecon.discrepancies d
           WHERE d.run_id = v_id AND d.psa_company_id IS NOT NULL
           GROUP BY d.psa_company_id
          HAVING sum(abs(d.amount)) > 0
           ORDER BY absolute DESC, company, d.psa_company_id
           LIMIT 15) c;
  h := h || '<section id="charts"><h2>Where the money is</h2>'
    || '<p class="legend small">Bars: <span class="lp"></span>under-billed (amount &gt; 0) '
    || '<span class="ln"></span>over-billed (amount &lt; 0), per billing cycle; net = their sum.</p>'
    || '<div class="charts"><div><h3>By client (the 15 with the most money in question)</h3>'
    || billrecon._report_bars(v_labels, v_pos, v_neg, v_notes) || '</div>';
  SELECT array_agg(t.type ORDER BY t.o), array_agg(t.under ORDER BY t.o),
         array_agg(t.over ORDER BY t.o),
         array_agg(CASE WHEN t.priced = 0 THEN format('%s rows, no amount', t.n)
                        ELSE format('net %s (%s rows)', billrecon._report_money(t.net, true), t.n) END
                   ORDER BY t.o)
    INTO v_labels, v_pos, v_neg, v_notes
    FROM (SELECT k.type, k.o, count(d.run_id) AS n, count(d.amount) AS priced,
                 coalesce(sum(d.amount) FILTER (WHERE d.amount > 0), 0) AS under,
                 coalesce(sum(d.amount) FILTER (WHERE d.amount < 0), 0) AS over,
                 coalesce(sum(d.amount), 0) AS net
            FROM unnest(ARRAY['calculated', 'estimated', 'unmapped', 'unaccounted'])
                 WITH ORDINALITY AS k(type, o)
            LEFT JOIN billrecon.discrepancies d ON d.run_id = v_id AND d.type = k.type
           GROUP BY k.type, k.o) t;
  h := h || '<div><h3>By type</h3>' || billrecon._report_bars(v_labels, v_pos, v_neg, v_notes)
    || '</div></div></section>' || E'\n';

  -- The top 20 discrepancies, with their explanation.
  SELECT string_agg(format(
           '<tr><td class="num">%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class="num">%s</td>'
           '<td class="num">%s</td><td class="num">%s</td><td class="num %s">%s</td><td class="why">%s%s</td></tr>',
           x.n,
           CASE WHEN x.company IS NOT NULL THEN billrecon._html_escape(x.company)
                ELSE 'vendor account ' || billrecon._html_escape(x.vendor_account)
                     || ' <span class="small">(no client)</span>'
           END,
           CASE WHEN x.line_item_id IS NOT NULL
                THEN billrecon._html_escape(coalesce(x.product_name, x.product))
                     || ' <span class="small">line ' || billrecon._html_escape(x.line_item_id) || '</span>'
                ELSE billrecon._html_escape(coalesce(x.product_name, x.product, x.usage_kind)) END,
           billrecon._html_escape(x.integration), billrecon._html_escape(x.type),
           coalesce(trim_scale(x.invoiced_qty)::text, ''),
           coalesce(trim_scale(x.counted_qty)::text, ''),
           coalesce(trim_scale(x.variance)::text, ''),
           CASE WHEN x.amount < 0 THEN 'neg' WHEN x.amount > 0 THEN 'pos' ELSE '' END,
           billrecon._report_money(x.amount, true),
           billrecon._html_escape(x.explanation),
           CASE WHEN x.estimate_basis IS NOT NULL
                THEN '<br><span class="small">Estimated: ' || billrecon._html_escape(x.estimate_basis) || '</span>'
                ELSE '' END),
           E'\n' ORDER BY x.n)
    INTO v_rows
    FROM (SELECT d.*, row_number() OVER (ORDER BY abs(d.amount) DESC NULLS LAST, d.company, d.line_item_id,
                                                  d.result_id) AS n
            FROM billrecon.discrepancies d WHERE d.run_id = v_id
           ORDER BY abs(d.amount) DESC NULLS LAST, d.company, d.line_item_id, d.result_id
           LIMIT 20) x;
  h := h || '<section id="top"><h2>The 20 biggest discrepancies</h2>'
    || CASE WHEN v_rows IS NULL THEN '<p class="ok">No discrepancy: billing matches usage.</p>'
            ELSE '<table><thead><tr><th class="num">#</th><th>Client</th><th>Service</th><th>Integration</th>'
                 || '<th>Type</th><th class="num">Billed</th><th class="num">Counted</th><th class="num">Variance</th>'
                 || '<th class="num">Amount</th><th>Why</th></tr></thead><tbody>' || E'\n' || v_rows
                 || '</tbody></table>' END
    || '</section>' || E'\n';

  -- Change cards of this run (raised by it, or still found by it).
  SELECT count(*) FILTER (WHERE c.status = 'pending') AS pending,
         coalesce(sum(c.amount) FILTER (WHERE c.status = 'pending'), 0) AS pending_amount,
         count(*) FILTER (WHERE c.status = 'pending' AND cardinality(c.flags) > 0) AS flagged,
         coalesce(sum(c.amount) FILTER (WHERE c.status = 'pending' AND cardinality(c.flags) > 0), 0) AS flagged_amount,
         count(*) FILTER (WHERE c.status = 'pending' AND c.kind = 'new_revenue') AS new_revenue,
         count(*) FILTER (WHERE c.status = 'approved') AS approved,
         count(*) FILTER (WHERE c.status = 'pushed') AS pushed,
         count(*) FILTER (WHERE c.status = 'failed') AS failed,
         count(*) FILTER (WHERE c.status = 'dismissed') AS dismissed
    INTO v_cards
    FROM billrecon.change_cards c WHERE c.run_id = v_id OR c.last_run_id = v_id;
  SELECT string_agg(format(
           '<tr><td class="num">%s</td><td>%s</td><td>%s</td><td>%s</td><td class="num">%s</td><td class="num">%s</td>'
           '<td class="num %s">%s</td><td>%s</td></tr>',
           x.card_id, billrecon._html_escape(x.company),
           billrecon._html_escape(coalesce(x.product_name, x.product))
             || CASE WHEN x.line_item_id IS NOT NULL
                     THEN ' <span class="small">line ' || billrecon._html_escape(x.line_item_id) || '</span>'
                     ELSE '' END,
           billrecon._html_escape(x.kind), trim_scale(x.current_qty), trim_scale(x.proposed_qty),
           CASE WHEN x.amount < 0 THEN 'neg' WHEN x.amount > 0 THEN 'pos' ELSE '' END,
           billrecon._report_money(x.amount, true),
           (SELECT string_agg('<span class="flag">' || billrecon._html_escape(f) || '</span>', '')
              FROM unnest(x.flags) AS f)),
           E'\n' ORDER BY abs(x.amount) DESC NULLS LAST, x.card_id)
    INTO v_rows
    FROM (SELECT c.* FROM billrecon.change_cards c
           WHERE (c.run_id = v_id OR c.last_run_id = v_id) AND c.status = 'pending'
           ORDER BY abs(c.amount) DESC NULLS LAST, c.card_id LIMIT 10) x;
  h := h || '<section id="cards"><h2>Change cards waiting for a decision</h2><div class="cards">'
    || format('<div class="card"><div class="k">Pending</div><div class="v">%s</div>'
              '<div class="small">%s of them new revenue</div></div>', v_cards.pending, v_cards.new_revenue)
    || format('<div class="card"><div class="k">Pending amount</div><div class="v">%s</div>'
              '<div class="small">per billing cycle</div></div>',
              billrecon._report_money(v_cards.pending_amount, true))
    || format('<div class="card"><div class="k">Flagged for a spot check</div><div class="v">%s</div>'
              '<div class="small">%s; approve with force</div></div>',
              v_cards.flagged, billrecon._report_money(v_cards.flagged_amount, true))
    || format('<div class="card"><div class="k">Decided</div><div class="v">%s</div>'
              '<div class="small">%s approved, %s pushed, %s failed, %s dismissed</div></div>',
              v_cards.approved + v_cards.pushed + v_cards.failed + v_cards.dismissed,
              v_cards.approved, v_cards.pushed, v_cards.failed, v_cards.dismissed)
    || '</div>'
    || CASE WHEN v_rows IS NULL THEN '<p class="ok">No card is pending.</p>'
            ELSE '<h3>The 10 biggest pending cards</h3><table><thead><tr><th class="num">Card</th><th>Client</th>'
                 || '<th>Service</th><th>Kind</th><th class="num">Now</th><th class="num">Proposed</th>'
                 || '<th class="num">Amount</th><th>Flags</th></tr></thead><tbody>' || E'\n' || v_rows
                 || '</tbody></table>' END
    || '</section>' || E'\n';

  -- Inactive seats (current data).
  SELECT count(*) AS n, count(s.psa_company_id) AS mapped, count(DISTINCT s.psa_company_id) AS clients,
         count(s.monthly_cost) AS billed, coalesce(sum(s.monthly_cost), 0) AS cost
    INTO v_inactive
    FROM billrecon.inactive_seats s WHERE v_client IS NULL OR s.psa_company_id = v_client;
  SELECT string_agg(format(
           '<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class="num">%s</td><td class="num">%s</td>'
           '<td>%s</td></tr>',
           CASE WHEN x.company IS NOT NULL THEN billrecon._html_escape(x.company)
                ELSE '<span class="small">no client (account ' || billrecon._html_escape(x.vendor_account_id)
                     || ')</span>' END,
           billrecon._html_escape(x.integration), billrecon._html_escape(x.seat),
           billrecon._html_escape(x.kind || coalesce(' (' || x.device_class || ')', '')),
           coalesce(to_char(x.last_active_at, 'YYYY-MM-DD'), ''), x.days_inactive,
           billrecon._report_money(x.monthly_cost), billrecon._html_escape(x.billed_on_line_item_id)),
           E'\n' ORDER BY x.o)
    INTO v_rows
    FROM (SELECT s.*, row_number() OVER (ORDER BY s.monthly_cost DESC NULLS LAST, s.days_inactive DESC,
                                                  s.company, s.seat, s.seat_id) AS o
            FROM billrecon.inactive_seats s WHERE v_client IS NULL OR s.psa_company_id = v_client
           ORDER BY s.monthly_cost DESC NULLS LAST, s.days_inactive DESC, s.company, s.seat, s.seat_id
           LIMIT 10) x;
  h := h || '<section id="inactive"><h2>Inactive seats' || v_current || '</h2>'
    || format('<p>%s devices and users with no activity for more than %s, %s of them at %s client(s); '
              '%s billed on a line, carrying <b>%s</b> a month.</p>',
              v_inactive.n,
              billrecon._html_escape(coalesce(
                nullif(current_setting('billrecon.inactive_after', true), ''), '21d')::interval::text),
              v_inactive.mapped, v_inactive.clients, v_inactive.billed, billrecon._report_money(v_inactive.cost))
    || CASE WHEN v_rows IS NULL THEN ''
            ELSE '<table><thead><tr><th>Client</th><th>Integration</th><th>Seat</th><th>Kind</th><th>Last active</th>'
                 || '<th class="num">Days inactive</th><th class="num">Monthly cost</th><th>Billed on line</th></tr>'
                 || '</thead><tbody>' || E'\n' || v_rows || '</tbody></table>' END
    || '</section>' || E'\n';

  -- Flagged services (current data).
  SELECT string_agg(format('<span class="flag">%s</span> %s', billrecon._html_escape(f.flag), f.n),
                               ' &#183; ' ORDER BY f.flag)
    INTO v_flags
    FROM (SELECT s.flag, count(*) AS n FROM billrecon.flagged_services s
           WHERE v_client IS NULL OR s.psa_company_id = v_client GROUP BY s.flag) f;
  SELECT string_agg(format(
           '<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class="num">%s</td><td class="num">%s</td>'
           '<td><span class="flag">%s</span></td><td>%s</td></tr>',
           billrecon._html_escape(x.company), billrecon._html_escape(x.agreement_id),
           billrecon._html_escape(x.line_item_id), billrecon._html_escape(coalesce(x.product_name, x.product)),
           coalesce(trim_scale(x.quantity)::text, ''), billrecon._report_money(x.unit_price),
           billrecon._html_escape(x.flag), billrecon._html_escape(x.detail)),
           E'\n' ORDER BY x.company, x.agreement_id, x.line_item_id, x.flag)
    INTO v_rows
    FROM (SELECT s.* FROM billrecon.flagged_services s WHERE v_client IS NULL OR s.psa_company_id = v_client
           ORDER BY s.company, s.agreement_id, s.line_item_id, s.flag LIMIT 25) x;
  h := h || '<section id="flagged"><h2>Flagged services' || v_current || '</h2>'
    || CASE WHEN v_rows IS NULL THEN '<p class="ok">No PSA line looks wrong.</p>'
            ELSE '<p>PSA lines whose billing data itself looks wrong: ' || v_flags || '.</p>'
                 || '<table><thead><tr><th>Client</th><th>Agreement</th><th>Line</th><th>Product</th>'
                 || '<th class="num">Quantity</th><th class="num">Unit price</th><th>Flag</th><th>Detail</th></tr>'
                 || '</thead><tbody>' || E'\n' || v_rows || '</tbody></table>' END
    || '</section>' || E'\n';

  -- Duplicate seats (current data): one machine reported twice. A role that
  -- may not read the view still gets the rest of the report.
  BEGIN
    SELECT string_agg(format('<tr><td>%s</td><td class="num">%s</td><td class="num">%s</td></tr>',
                             billrecon._html_escape(g.detail), g.machines, g.extra),
                      E'\n' ORDER BY g.extra DESC, g.detail)
      INTO v_rows
      FROM (SELECT s.detail, count(*) AS machines, sum(s.extra_seats) AS extra
              FROM billrecon.duplicate_seats s WHERE v_client IS NULL OR s.psa_company_id = v_client
             GROUP BY s.detail) g;
    SELECT string_agg(format('<tr><td>%s</td><td class="num">%s</td><td class="num">%s</td></tr>',
                             CASE WHEN c.company IS NULL THEN '<span class="small">accounts mapped to no client</span>'
                                  ELSE billrecon._html_escape(c.company) END, c.machines, c.extra),
                      E'\n' ORDER BY c.extra DESC, c.company)
      INTO v_flags
      FROM (SELECT s.company, count(*) AS machines, sum(s.extra_seats) AS extra
              FROM billrecon.duplicate_seats s WHERE v_client IS NULL OR s.psa_company_id = v_client
             GROUP BY s.psa_company_id, s.company
             ORDER BY extra DESC, s.company LIMIT 5) c;
    v_section := CASE WHEN v_rows IS NULL THEN '<p class="ok">No device is reported twice.</p>'
                      ELSE '<table class="narrow"><thead><tr><th>What</th><th class="num">Machines</th>'
                           || '<th class="num">Extra seats</th></tr></thead><tbody>' || E'\n' || v_rows
                           || '</tbody></table><h3>Most affected clients</h3><table class="narrow"><thead><tr>'
                           || '<th>Client</th><th class="num">Machines</th><th class="num">Extra seats</th></tr>'
                           || '</thead><tbody>' || E'\n' || v_flags || '</tbody></table>' END;
  EXCEPTION WHEN insufficient_privilege THEN
    v_section := format('<p class="empty">Not shown: %s (role %s).</p>', billrecon._html_escape(SQLERRM),
                        billrecon._html_escape(current_user));
  END;
  h := h || '<section id="duplicates"><h2>Duplicate seats' || v_current || '</h2>' || v_section
    || '</section>' || E'\n' || '</main>' || E'\n';

  -- Footer: how to read the numbers.
  h := h || '<footer><h2>How to read this report</h2><dl>'
    || '<dt>Signs</dt><dd>An amount &gt; 0 is <span class="pos">under-billed</span>: the client uses more than '
    || 'it pays for (revenue to recover). An amount &lt; 0 is <span class="neg">over-billed</span>: the client '
    || 'pays for more than it uses (a credit waiting to happen). Amounts are per billing cycle of the line; '
    || '&#8220;a month&#8221; figures are normalized (quarterly / 3, annual / 12).</dd>'
    || '<dt>calculated</dt><dd>Every input is a hard value synced from the PSA and the vendors.</dd>'
    || '<dt>estimated</dt><dd>Some input was inferred (a missing unit price, an assumed billing cycle, a manual '
    || 'line compared with an integration); the row says what.</dd>'
    || '<dt>unmapped</dt><dd>Usage or billing that cannot be tied to its counterpart because a mapping is '
    || 'missing (a vendor account mapped to no client, a line with no service rule): no amount until it is '
    || 'mapped.</dd>'
    || '<dt>unaccounted</dt><dd>Usage of a client that no line bills: usually new revenue, priced at what '
    || 'similar lines charge.</dd>'
    || '<dt>Current data</dt><dd>Inactive seats, flagged services and duplicate seats describe the data as synced '
    || 'now; the rest is the run as it was made.</dd></dl>'
    || format('<p>Generated by %s with billrecon.report_html(%s). Details: billrecon.discrepancies, '
              'billrecon.reconciled_invoices and billrecon.change_cards WHERE run_id = %s.</p>',
              billrecon._html_escape(billrecon.version()), v_id, v_id)
    || '</footer>' || E'\n' || '</body></html>' || E'\n';
  RETURN h;
END
$rh$;
COMMENT ON FUNCTION billrecon.report_html(bigint) IS
  'The monthly report of a reconcile run (null = billrecon.last_run_id()) as one self-contained HTML page for the '
  'billing lead: data health, summary figures, charts by client and by type, the top 20 discrepancies with their '
  'explanation, pending change cards, inactive seats, flagged services and duplicate seats. No external asset or '
  'script. psql -At -c ''SELECT billrecon.report_html()'' > report.html';

GRANT EXECUTE ON FUNCTION billrecon.report_html(bigint), billrecon._html_escape(text),
                          billrecon._report_money(numeric, boolean),
                          billrecon._report_bars(text[], numeric[], numeric[], text[])
  TO billrecon_reader;

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

