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
