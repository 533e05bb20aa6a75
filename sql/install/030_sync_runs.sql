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
