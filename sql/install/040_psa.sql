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
