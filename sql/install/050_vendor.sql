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
  UNIQUE (integration_id, external_id),
  -- The target of usage_records' (integration_id, account_id) key: a usage
  -- record's account belongs to the same integration.
  UNIQUE (integration_id, id)
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

-- One foreign key per stored row is checked by a trigger, row by row: with
-- a million devices per sync that is the cost of the load. So usage records
-- carry one composite key, (integration_id, account_id) to the account of
-- the same integration (which reaches the integration through the account,
-- ON DELETE CASCADE both ways), and last_sync_run_id is not a foreign key
-- (sync runs are deleted only with their integration, and its rows with it).
CREATE TABLE billrecon.usage_records (
  id                  bigserial PRIMARY KEY,
  integration_id      integer NOT NULL,
  external_id         text NOT NULL,
  account_id          bigint NOT NULL,
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
  last_sync_run_id    bigint,
  UNIQUE (integration_id, external_id),
  FOREIGN KEY (integration_id, account_id) REFERENCES billrecon.vendor_accounts (integration_id, id) ON DELETE CASCADE
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
COMMENT ON COLUMN billrecon.usage_records.last_seen_at IS 'Last sync that returned the record changed (a sync that returns it unchanged leaves the row alone; every current record was returned by the integration''s last successful full sync)';
COMMENT ON COLUMN billrecon.usage_records.removed_at IS 'Set by a full sync when the vendor stopped returning the record; null for current rows';
COMMENT ON COLUMN billrecon.usage_records.last_sync_run_id IS 'Sync run that last wrote the row (billrecon.sync_runs.id; not a foreign key, see the table''s DDL); a sync that returns the record unchanged does not write it';
