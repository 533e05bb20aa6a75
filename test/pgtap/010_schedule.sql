-- Scheduled syncs (docs/scheduling.md). This database is not pg_cron's: the
-- test cluster preloads pg_cron with cron.database_name = 'postgres', so every
-- call ends in 55000 whose HINT is the exact statement to run there
-- (test/e2e/test_schedule.py runs those statements in pg_cron's database and
-- covers scheduling in it). The other cases of the pg_cron check (not loaded,
-- not created) go through billrecon._cron_assert, which takes the facts.
BEGIN;
SELECT plan(68);

-- error fields of a statement: {sqlstate, message, detail, hint}, or null when it succeeds
CREATE FUNCTION pg_temp.err(statement text) RETURNS text[] LANGUAGE plpgsql AS $err$
DECLARE
  v_state text;
  v_message text;
  v_detail text;
  v_hint text;
BEGIN
  EXECUTE statement;
  RETURN NULL;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL,
                          v_hint = PG_EXCEPTION_HINT;
  RETURN ARRAY[v_state, v_message, v_detail, v_hint];
END
$err$;

-- ---------------------------------------------------------------- the objects
SELECT has_function('billrecon', 'schedule_sync', ARRAY['text', 'text', 'text']);
SELECT has_function('billrecon', 'unschedule_sync', ARRAY['bigint']);
SELECT has_function('billrecon', 'unschedule_sync', ARRAY['text', 'text']);
SELECT has_function('billrecon', 'sync_schedules', ARRAY[]::text[]);
SELECT function_returns('billrecon', 'schedule_sync', ARRAY['text', 'text', 'text'], 'bigint');
SELECT function_returns('billrecon', 'unschedule_sync', ARRAY['bigint'], 'boolean');
SELECT function_returns('billrecon', 'unschedule_sync', ARRAY['text', 'text'], 'boolean');
SELECT is((SELECT pg_get_function_arguments('billrecon.schedule_sync(text, text, text)'::regprocedure)),
          'schedule text, integration text DEFAULT NULL::text, mode text DEFAULT ''quick''::text',
          'schedule_sync: argument names and defaults of the stable SQL surface');
SELECT is((SELECT pg_get_function_arguments('billrecon.unschedule_sync(text, text)'::regprocedure)),
          'integration text, mode text DEFAULT ''quick''::text', 'unschedule_sync(integration, mode) arguments');
SELECT is((SELECT pg_get_function_result('billrecon.sync_schedules()'::regprocedure)),
          'TABLE(jobid bigint, jobname text, schedule text, command text, active boolean, username text, '
          'last_status text, last_start_time timestamp with time zone, last_end_time timestamp with time zone, '
          'last_message text)', 'sync_schedules() columns');
SELECT is_definer('billrecon', 'schedule_sync', ARRAY['text', 'text', 'text']);
SELECT is_definer('billrecon', 'unschedule_sync', ARRAY['bigint']);
SELECT is_definer('billrecon', 'unschedule_sync', ARRAY['text', 'text']);
SELECT is_definer('billrecon', 'sync_schedules', ARRAY[]::text[]);
SELECT is((SELECT count(*)::int FROM pg_proc p
            WHERE p.pronamespace = 'billrecon'::regnamespace
              AND p.proname IN ('schedule_sync', 'unschedule_sync', 'sync_schedules', '_cron_database', '_cron_assert',
                                '_cron_require', '_cron_job_database', '_sync_job_name', '_sync_job_command',
                                '_check_sync_mode')
              AND p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp']),
          11, 'every scheduling function pins search_path = pg_catalog, pg_temp');
SELECT is((SELECT count(*)::int FROM pg_proc p
            WHERE p.pronamespace = 'billrecon'::regnamespace
              AND p.proname IN ('schedule_sync', 'unschedule_sync', 'sync_schedules', '_cron_database', '_cron_assert',
                                '_cron_require', '_cron_job_database', '_sync_job_name', '_sync_job_command',
                                '_check_sync_mode')
              AND coalesce(obj_description(p.oid, 'pg_proc'), '') = ''),
          0, 'every scheduling function has a COMMENT');
SELECT hasnt_schema('cron', 'no cron schema here: billrecon was created without pg_cron in its database');

-- ---------------------------------------------------------------- privileges
SELECT function_privs_are('billrecon', 'schedule_sync', ARRAY['text', 'text', 'text'], 'billrecon_operator',
                          ARRAY['EXECUTE']);
SELECT function_privs_are('billrecon', 'schedule_sync', ARRAY['text', 'text', 'text'], 'billrecon_reader',
                          ARRAY[]::text[]);
SELECT function_privs_are('billrecon', 'schedule_sync', ARRAY['text', 'text', 'text'], 'public', ARRAY[]::text[]);
SELECT function_privs_are('billrecon', 'unschedule_sync', ARRAY['bigint'], 'billrecon_operator', ARRAY['EXECUTE']);
SELECT function_privs_are('billrecon', 'unschedule_sync', ARRAY['text', 'text'], 'billrecon_operator',
                          ARRAY['EXECUTE']);
SELECT function_privs_are('billrecon', 'unschedule_sync', ARRAY['bigint'], 'billrecon_reader', ARRAY[]::text[]);
SELECT function_privs_are('billrecon', 'sync_schedules', ARRAY[]::text[], 'billrecon_reader', ARRAY['EXECUTE']);
SELECT function_privs_are('billrecon', 'sync_schedules', ARRAY[]::text[], 'public', ARRAY[]::text[]);
SELECT function_privs_are('billrecon', '_cron_assert', ARRAY['text', 'text', 'text', 'boolean', 'boolean', 'text', 'text'],
                          'billrecon_operator', ARRAY[]::text[], 'the internal helpers are not granted');

-- ---------------------------------------------------------------- arguments, checked first
SELECT throws_ok($$SELECT billrecon.schedule_sync('0 6 * * *', NULL, 'weekly')$$, '22023', 'invalid sync mode "weekly"',
                 'schedule_sync: unknown mode');
SELECT is((pg_temp.err($$SELECT billrecon.schedule_sync('0 6 * * *', NULL, 'weekly')$$))[4],
          'Use ''quick'' for the daily refresh and ''full'' after large changes in the source system.',
          'schedule_sync: the mode error has a HINT');
SELECT throws_ok($$SELECT billrecon.schedule_sync('0 6 * * *', NULL, NULL)$$, '22023', 'invalid sync mode "NULL"',
                 'schedule_sync: null mode');
SELECT throws_ok($$SELECT billrecon.schedule_sync('0 6 * * *', 'nope')$$, '42704', 'integration "nope" does not exist',
                 'schedule_sync: unknown integration');
SELECT throws_ok($$SELECT billrecon.schedule_sync('  ')$$, '22023', 'the schedule must not be empty',
                 'schedule_sync: blank schedule');
SELECT throws_ok($$SELECT billrecon.schedule_sync(NULL)$$, '22023', 'the schedule must not be empty',
                 'schedule_sync: null schedule');
SELECT is((pg_temp.err($$SELECT billrecon.schedule_sync('')$$))[4],
          'For example ''0 6 * * *'' (every day at 06:00) or ''*/30 * * * *'' (every 30 minutes).',
          'schedule_sync: the empty schedule HINT gives examples');
SELECT throws_ok($$SELECT billrecon.unschedule_sync('cw', 'weekly')$$, '22023', 'invalid sync mode "weekly"',
                 'unschedule_sync: unknown mode');
SELECT throws_ok($$SELECT billrecon.unschedule_sync(NULL::bigint)$$, '22004', 'job_id must not be null',
                 'unschedule_sync: null job id');

-- ---------------------------------------------------------------- from a database that is not pg_cron's
SELECT isnt(billrecon._cron_database(), current_database()::text, 'pg_cron lives in another database of the cluster');
SELECT is(billrecon._cron_database(), current_setting('cron.database_name'),
          '_cron_database() is cron.database_name while pg_cron is loaded');

SELECT throws_ok($$SELECT billrecon.schedule_sync('0 6 * * *')$$, '55000',
                 format('cannot schedule a sync from database "%s"', current_database()),
                 'schedule_sync from another database: 55000');
SELECT is(pg_temp.err($$SELECT billrecon.schedule_sync('0 6 * * *')$$),
          ARRAY['55000',
                format('cannot schedule a sync from database "%s"', current_database()),
                format('pg_cron runs in database "%s" (cron.database_name) and its functions can be called only '
                       'there. That statement creates (or replaces) the job ''billrecon sync all quick in %s'', '
                       'which runs SELECT billrecon.sync_async(NULL, ''quick'') in database "%s" as the user who '
                       'runs the statement. pg_cron checks the schedule there.',
                       current_setting('cron.database_name'), current_database(), current_database()),
                format('Run in database "%s": SELECT cron.schedule_in_database(''billrecon sync all quick in %s'', '
                       '''0 6 * * *'', $$SELECT billrecon.sync_async(NULL, ''quick'')$$, ''%s'');',
                       current_setting('cron.database_name'), current_database(), current_database())],
          'schedule_sync from another database: message, detail and the exact statement in the HINT');

SELECT lives_ok($$SELECT billrecon.add_integration('cw-eu.1', 'csv', '', '{}')$$, 'an integration to schedule');
SELECT is((pg_temp.err($$SELECT billrecon.schedule_sync('*/30 * * * *', 'cw-eu.1', 'full')$$))[4],
          format('Run in database "%s": SELECT cron.schedule_in_database(''billrecon sync cw-eu.1 full in %s'', '
                 '''*/30 * * * *'', $$SELECT billrecon.sync_async(''cw-eu.1'', ''full'')$$, ''%s'');',
                 current_setting('cron.database_name'), current_database(), current_database()),
          'the HINT names the integration and the mode');
SELECT is((pg_temp.err($$SELECT billrecon.schedule_sync(E'0 6 * * \'x\\', 'cw-eu.1')$$))[4],
          format('Run in database "%s": SELECT cron.schedule_in_database(''billrecon sync cw-eu.1 quick in %s'', '
                 'E''0 6 * * ''''x\\'', $$SELECT billrecon.sync_async(''cw-eu.1'', ''quick'')$$, ''%s'');',
                 current_setting('cron.database_name'), current_database(), current_database()),
          'quotes and backslashes in the schedule are quoted in the HINT');

SELECT is(pg_temp.err($$SELECT billrecon.unschedule_sync(42)$$),
          ARRAY['55000', format('cannot unschedule a sync from database "%s"', current_database()),
                format('pg_cron runs in database "%s" (cron.database_name) and its functions can be called only there.',
                       current_setting('cron.database_name')),
                format('Run in database "%s": SELECT cron.unschedule(42);', current_setting('cron.database_name'))],
          'unschedule_sync(job_id) from another database: the HINT is the cron.unschedule() to run there');
SELECT is((pg_temp.err($$SELECT billrecon.unschedule_sync('cw-eu.1', 'full')$$))[4],
          format('Run in database "%s": SELECT cron.unschedule(''billrecon sync cw-eu.1 full in %s'');',
                 current_setting('cron.database_name'), current_database()),
          'unschedule_sync(integration, mode) from another database: the HINT unschedules by job name');
SELECT is((pg_temp.err($$SELECT billrecon.unschedule_sync(NULL)$$))[4],
          format('Run in database "%s": SELECT cron.unschedule(''billrecon sync all quick in %s'');',
                 current_setting('cron.database_name'), current_database()),
          'unschedule_sync(NULL): the sync of all integrations');
SELECT is((pg_temp.err($$SELECT billrecon.unschedule_sync('dropped-long-ago')$$))[1], '55000',
          'unschedule_sync: the integration need not exist any more');
SELECT is(pg_temp.err($$SELECT * FROM billrecon.sync_schedules()$$),
          ARRAY['55000', format('cannot list scheduled syncs from database "%s"', current_database()),
                format('pg_cron runs in database "%s" (cron.database_name) and its functions can be called only there.',
                       current_setting('cron.database_name')),
                format('Run in database "%s": SELECT jobid, jobname, schedule, command, active, username FROM cron.job '
                       'WHERE database = ''%s'' AND jobname LIKE ''billrecon sync %%'' ORDER BY jobid;',
                       current_setting('cron.database_name'), current_database())],
          'sync_schedules() from another database: the HINT is the query to run there');

-- Roles: the operator may schedule (and gets the same answer), the reader may only list.
SET LOCAL ROLE billrecon_operator;
SELECT throws_ok($$SELECT billrecon.schedule_sync('0 6 * * *', 'cw-eu.1')$$, '55000', NULL,
                 'an operator reaches the pg_cron check (EXECUTE granted, runs as the owner)');
SELECT throws_ok($$SELECT billrecon.unschedule_sync(7)$$, '55000', NULL, 'an operator may unschedule');
RESET ROLE;
SET LOCAL ROLE billrecon_reader;
SELECT throws_ok($$SELECT billrecon.schedule_sync('0 6 * * *')$$, '42501', NULL, 'a reader cannot schedule');
SELECT throws_ok($$SELECT billrecon.unschedule_sync(7)$$, '42501', NULL, 'a reader cannot unschedule');
SELECT throws_ok($$SELECT * FROM billrecon.sync_schedules()$$, '55000', NULL, 'a reader may list');
RESET ROLE;

-- ---------------------------------------------------------------- pg_cron not loaded / not created
SELECT is(pg_temp.err($$SELECT billrecon._cron_assert('schedule a sync', 'SELECT 1;', NULL, false, false, 'billrecon')$$),
          ARRAY['55000', 'cannot schedule a sync: pg_cron is not loaded',
                'pg_cron is not installed on this server (pg_available_extensions has no pg_cron); billrecon schedules '
                'syncs through pg_cron.',
                format('Install pg_cron (Debian and Ubuntu: apt install postgresql-%s-cron). In postgresql.conf set '
                       'shared_preload_libraries = ''billrecon,pg_cron'' and cron.database_name = ''%s'', restart '
                       'PostgreSQL, then run CREATE EXTENSION pg_cron; in database "%s". See docs/scheduling.md.',
                       current_setting('server_version_num')::int / 10000, current_database(), current_database())],
          'pg_cron not installed: how to install, preload and create it');
SELECT is(pg_temp.err($$SELECT billrecon._cron_assert('list scheduled syncs', 'SELECT 1;', NULL, false, true, '')$$),
          ARRAY['55000', 'cannot list scheduled syncs: pg_cron is not loaded',
                'pg_cron is installed on this server but not in shared_preload_libraries, so its scheduler does not '
                'run; billrecon schedules syncs through pg_cron.',
                format('In postgresql.conf set shared_preload_libraries = ''billrecon,pg_cron'' and cron.database_name '
                       '= ''%s'', restart PostgreSQL, then run CREATE EXTENSION pg_cron; in database "%s". See '
                       'docs/scheduling.md.', current_database(), current_database())],
          'pg_cron installed but not preloaded: the two postgresql.conf lines');
SELECT matches((pg_temp.err($$SELECT billrecon._cron_assert('x', 'y', NULL, false, true, 'billrecon, auto_explain')$$))[4],
               'shared_preload_libraries = ''billrecon, auto_explain,pg_cron''',
               'the suggested shared_preload_libraries keeps what is preloaded now');
SELECT matches((pg_temp.err($$SELECT billrecon._cron_assert('x', 'y', NULL, false, true, '$libdir/pg_cron')$$))[4],
               'shared_preload_libraries = ''\$libdir/pg_cron'' ',
               'pg_cron already listed: not added twice');
SELECT matches((pg_temp.err($$SELECT billrecon._cron_assert('x', 'y', NULL, false, true, 'pg_cronish')$$))[4],
               'shared_preload_libraries = ''pg_cronish,pg_cron'' ', 'another library named like pg_cron');
SELECT is(pg_temp.err(format($$SELECT billrecon._cron_assert('schedule a sync', 'SELECT 1;', %L, false, true, '')$$,
                             current_database())),
          ARRAY['55000', format('cannot schedule a sync: the pg_cron extension does not exist in database "%s"',
                                current_database()),
                'pg_cron is loaded and cron.database_name names this database, but CREATE EXTENSION pg_cron has not '
                'been run in it.',
                format('Run CREATE EXTENSION pg_cron; in database "%s" as a superuser, then try again.',
                       current_database())],
          'pg_cron loaded for this database but not created: CREATE EXTENSION pg_cron');
SELECT lives_ok(format($$SELECT billrecon._cron_assert('schedule a sync', 'SELECT 1;', %L, true, true, '')$$,
                       current_database()),
                'pg_cron loaded and created here: no error');
SELECT is((pg_temp.err($$SELECT billrecon._cron_assert('x', 'SELECT 1;', 'elsewhere', false, true, '', 'More.')$$))[3],
          'pg_cron runs in database "elsewhere" (cron.database_name) and its functions can be called only there. More.',
          'the caller''s detail follows');

-- ---------------------------------------------------------------- job names and commands
SELECT is(billrecon._sync_job_name(NULL, 'quick', NULL), 'billrecon sync all quick', 'all integrations, quick');
SELECT is(billrecon._sync_job_name('cw-eu.1', 'full', NULL), 'billrecon sync cw-eu.1 full', 'one integration, full');
SELECT is(billrecon._sync_job_name('cw', 'quick', 'my db'), 'billrecon sync cw quick in my db',
          'a job of another database names it');
SELECT is(billrecon._cron_job_database(), current_database()::text,
          'jobs scheduled for this database carry its name (it is not pg_cron''s)');
SELECT ok(octet_length(billrecon._sync_job_name(repeat('a', 63), 'full', repeat('é', 40))) <= 63
          AND billrecon._sync_job_name(repeat('a', 63), 'full', repeat('é', 40)) LIKE 'billrecon sync aaa%',
          'a long name fits pg_cron''s 63 bytes and keeps its start');
SELECT isnt(billrecon._sync_job_name(repeat('a', 63), 'full', NULL), billrecon._sync_job_name(repeat('a', 63), 'quick', NULL),
            'long names that differ only at the end stay different');
SELECT is(billrecon._sync_job_command(NULL, 'quick'), $$SELECT billrecon.sync_async(NULL, 'quick')$$,
          'the command of all integrations');
SELECT is(billrecon._sync_job_command('cw-eu.1', 'full'), $$SELECT billrecon.sync_async('cw-eu.1', 'full')$$,
          'the command of one integration');

SELECT * FROM finish();
ROLLBACK;
