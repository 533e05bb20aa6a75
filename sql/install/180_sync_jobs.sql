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
