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
