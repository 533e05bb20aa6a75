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
COMMENT ON COLUMN billrecon.reconcile_run_inputs.kind IS 'The integration''s kind (connectwise, ninjaone, msgraph, ...)';
COMMENT ON COLUMN billrecon.reconcile_run_inputs.side IS 'psa or vendor';
COMMENT ON COLUMN billrecon.reconcile_run_inputs.status IS 'green, yellow or red, as billrecon.integration_status showed it';
COMMENT ON COLUMN billrecon.reconcile_run_inputs.last_success_at IS 'End of the last successful sync: the age of the data used';
COMMENT ON COLUMN billrecon.reconcile_run_inputs.last_sync_run_id IS 'That sync run (billrecon.sync_runs.id)';
COMMENT ON COLUMN billrecon.reconcile_run_inputs.last_error IS 'The last sync''s error, if it failed';

CREATE TABLE billrecon.reconcile_results (
  id                     bigserial PRIMARY KEY,
  run_id                 bigint NOT NULL,   -- (no foreign key: see billrecon._cascade_deleted_runs)
  row_kind               text NOT NULL CHECK (row_kind IN ('line', 'vendor_account', 'unaccounted')),
  state                  text NOT NULL CHECK (state IN ('reconciled', 'ignored', 'custom_sql', 'manual', 'adjustment',
                                                        'unmapped', 'unaccounted')),
  type                   text CHECK (type IN ('calculated', 'estimated', 'unmapped', 'unaccounted')),
  psa_company_id         bigint,   -- (no foreign keys to synced data: see billrecon._detach_reconcile_results)
  company_external_id    text,
  company                text,
  agreement_id           bigint,
  agreement_external_id  text,
  agreement              text,
  billing_cycle          text,
  cycle_start            date,
  cycle_end              date,
  cycle_source           text CHECK (cycle_source IN ('hard', 'estimated')),
  line_item_id           bigint,
  line_item_external_id  text,
  parent_line_item_id    bigint,
  product                text,
  product_name           text,
  description            text,
  effective_date         date,
  rule_id                bigint,
  rule_scope             text,
  integration_id         integer,
  integration            text,
  mode                   text,
  filters                jsonb,
  multiplier             numeric,
  vendor_account_id      bigint,
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
-- A run's rows keep the ids of the PSA and vendor objects they were computed
-- from, beside their names (a snapshot). They carry no foreign keys: five
-- checks per row were half the cost of writing a run. Synced rows are never
-- deleted, only marked removed; when an integration is dropped (which deletes
-- its synced rows), this trigger sets the ids that pointed to them to null,
-- as ON DELETE SET NULL did.
CREATE FUNCTION billrecon._detach_reconcile_results()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $det$
BEGIN
  UPDATE billrecon.reconcile_results x
     SET psa_company_id = NULL
   WHERE x.psa_company_id IN (SELECT c.id FROM billrecon.psa_companies c WHERE c.integration_id = OLD.id);
  UPDATE billrecon.reconcile_results x
     SET agreement_id = NULL
   WHERE x.agreement_id IN (SELECT a.id FROM billrecon.psa_agreements a WHERE a.integration_id = OLD.id);
  UPDATE billrecon.reconcile_results x
     SET line_item_id = NULL
   WHERE x.line_item_id IN (SELECT l.id FROM billrecon.psa_line_items l WHERE l.integration_id = OLD.id);
  UPDATE billrecon.reconcile_results x
     SET vendor_account_id = NULL
   WHERE x.vendor_account_id IN (SELECT va.id FROM billrecon.vendor_accounts va WHERE va.integration_id = OLD.id);
  UPDATE billrecon.reconcile_results x SET integration_id = NULL WHERE x.integration_id = OLD.id;
  UPDATE billrecon.reconcile_run_clients x
     SET psa_company_id = NULL
   WHERE x.psa_company_id IN (SELECT c.id FROM billrecon.psa_companies c WHERE c.integration_id = OLD.id);
  RETURN OLD;
END
$det$;
COMMENT ON FUNCTION billrecon._detach_reconcile_results() IS
  'Internal trigger: when an integration is dropped, sets the ids reconcile results (and run clients) kept of its '
  'synced rows to null';
CREATE TRIGGER detach_reconcile_results BEFORE DELETE ON billrecon.integrations
  FOR EACH ROW EXECUTE FUNCTION billrecon._detach_reconcile_results();
REVOKE ALL ON FUNCTION billrecon._detach_reconcile_results() FROM PUBLIC;

-- Nor a foreign key to its run (nor have the run's clients, or a card's
-- last_run_id): reconcile() (the only writer, SECURITY DEFINER) creates the
-- run before its rows, and a check per row was a third of writing a run of
-- 50,000 rows (and 5,000 checks per run for the cards it refreshes). What
-- the keys did on delete, these triggers do: a deleted (or truncated) run's
-- result rows and clients go with it, as ON DELETE CASCADE did, and the
-- cards it last saw forget it, as ON DELETE SET NULL did.
CREATE FUNCTION billrecon._cascade_deleted_runs()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $cdr$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    TRUNCATE billrecon.reconcile_results, billrecon.reconcile_run_clients;
    UPDATE billrecon.proposed_changes p SET last_run_id = NULL WHERE p.last_run_id IS NOT NULL;
  ELSE
    DELETE FROM billrecon.reconcile_results x WHERE x.run_id IN (SELECT g.id FROM deleted_runs g);
    DELETE FROM billrecon.reconcile_run_clients x WHERE x.run_id IN (SELECT g.id FROM deleted_runs g);
    UPDATE billrecon.proposed_changes p SET last_run_id = NULL
     WHERE p.last_run_id IN (SELECT g.id FROM deleted_runs g);
  END IF;
  RETURN NULL;
END
$cdr$;
COMMENT ON FUNCTION billrecon._cascade_deleted_runs() IS
  'Internal trigger: deletes the result rows and clients of deleted reconcile runs (truncates them with the runs) '
  'and nulls the cards'' last_run_id that named them, as foreign keys'' ON DELETE CASCADE / SET NULL would';
CREATE TRIGGER cascade_deleted_runs AFTER DELETE ON billrecon.reconcile_runs
  REFERENCING OLD TABLE AS deleted_runs
  FOR EACH STATEMENT EXECUTE FUNCTION billrecon._cascade_deleted_runs();
CREATE TRIGGER cascade_truncated_runs AFTER TRUNCATE ON billrecon.reconcile_runs
  FOR EACH STATEMENT EXECUTE FUNCTION billrecon._cascade_deleted_runs();
REVOKE ALL ON FUNCTION billrecon._cascade_deleted_runs() FROM PUBLIC;

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
  run_id              bigint NOT NULL,   -- (no foreign keys: see billrecon._cascade_deleted_runs)
  psa_company_id      bigint,
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
