-- Change cards: what a reconcile run proposes to change in the PSA, and the
-- decisions taken on it (docs/workflow.md).

CREATE TABLE billrecon.proposed_changes (
  id                    bigserial PRIMARY KEY,
  kind                  text NOT NULL CHECK (kind IN ('quantity', 'new_revenue', 'revert')),
  run_id                bigint REFERENCES billrecon.reconcile_runs (id) ON DELETE SET NULL,
  last_run_id           bigint,   -- (no foreign key: see billrecon._cascade_deleted_runs)
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
-- A run of one client withdraws that client's pending cards it no longer
-- supports (billrecon._raise_change_cards): without it, a scan of every card.
CREATE INDEX proposed_changes_pending_client ON billrecon.proposed_changes (psa_company_id) WHERE status = 'pending';
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
