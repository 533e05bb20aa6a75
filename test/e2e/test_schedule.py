"""Scheduled syncs through pg_cron (docs/scheduling.md).

billrecon_e2e is not pg_cron's database; the test cluster's cron.database_name
is 'postgres'. These tests open a second connection to pg_cron's database,
create pg_cron and billrecon there when missing (and drop what they created
at the end), and check:
  - in pg_cron's database: schedule_sync creates the cron.job row with the
    right name, command, database and user, scheduling again replaces it,
    unschedule_sync by name and by id, refusal of other jobs, errors;
  - from billrecon_e2e: the statement each HINT gives, run as is in pg_cron's
    database, does what it says (copy-paste correctness).
No job fires during the tests: their schedules are on 29 February, and the
command only queues a background sync (billrecon.sync_async)."""

import psycopg2

import e2e_lib
from e2e_lib import E2ETestCase

LEAP = "0 6 29 2 *"         # a valid schedule that fires once in four years
LEAP2 = "30 5 29 2 *"
OPERATOR_ROLE = "billrecon_e2e_sched_operator"


def cron_database(conn):
    """cron.database_name, or None when the pg_cron library is not loaded."""
    with conn.cursor() as cur:
        cur.execute("SELECT setting FROM pg_settings WHERE name = 'cron.database_name'")
        row = cur.fetchone()
    return row[0] if row else None


def execute(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)


def extension_exists(conn, name):
    return e2e_lib.scalar(conn, "SELECT count(*) FROM pg_extension WHERE extname = %s", (name,)) > 0


class ScheduleSync(E2ETestCase):
    cron = None                 # connection to pg_cron's database
    cron_db = None
    created = ()                # extensions this class created in pg_cron's database
    not_created_error = None    # schedule_sync's error there before CREATE EXTENSION pg_cron

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cron_db = cron_database(cls.conn)
        cls.created = []
        if cls.cron_db is None or cls.cron_db == e2e_lib.DB_NAME:
            return
        cls.cron = e2e_lib.connect(cls.cron_db)
        if not extension_exists(cls.cron, "billrecon"):
            execute(cls.cron, "CREATE EXTENSION billrecon")
            cls.created.append("billrecon")
        if not extension_exists(cls.cron, "pg_cron"):
            try:
                e2e_lib.scalar(cls.cron, "SELECT billrecon.schedule_sync(%s)", (LEAP,))
            except psycopg2.Error as e:
                cls.not_created_error = e
            execute(cls.cron, "CREATE EXTENSION pg_cron")
            cls.created.append("pg_cron")
        with cls.cron.cursor() as cur:
            cur.execute("SELECT billrecon.add_integration('sched-csv', 'csv', '', '{}') "
                        "WHERE NOT EXISTS (SELECT 1 FROM billrecon.integrations WHERE name = 'sched-csv')")
            cur.execute("DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%s') THEN "
                        "CREATE ROLE %s NOLOGIN IN ROLE billrecon_operator; END IF; END$$"
                        % (OPERATOR_ROLE, OPERATOR_ROLE))
        cls.owner = e2e_lib.scalar(cls.cron, "SELECT extowner::regrole::text FROM pg_extension "
                                             "WHERE extname = 'billrecon'")

    @classmethod
    def tearDownClass(cls):
        if cls.cron is not None:
            with cls.cron.cursor() as cur:
                cur.execute("RESET ROLE")
                # Our jobs: billrecon's in pg_cron's database and those the HINTs made for billrecon_e2e.
                cur.execute("SELECT cron.unschedule(jobid) FROM cron.job "
                            "WHERE (jobname LIKE 'billrecon sync %%' AND database IN (%s, %s)) "
                            "   OR jobname LIKE 'e2e schedule %%'", (cls.cron_db, e2e_lib.DB_NAME))
                if "billrecon" in cls.created:
                    cur.execute("DROP EXTENSION billrecon")
                else:
                    cur.execute("DELETE FROM billrecon.integrations WHERE name = 'sched-csv'")
                if "pg_cron" in cls.created:
                    cur.execute("DROP EXTENSION pg_cron")
                cur.execute("DROP ROLE IF EXISTS %s" % OPERATOR_ROLE)
            cls.cron.close()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        if self.cron is None and not self._testMethodName.startswith("test_not_loaded"):
            self.skipTest("pg_cron is not loaded, or billrecon_e2e is its database")

    # -- helpers -------------------------------------------------------------------
    def c_scalar(self, sql, params=None):
        return e2e_lib.scalar(self.cron, sql, params)

    def c_query(self, sql, params=None):
        return e2e_lib.query(self.cron, sql, params)

    def jobs(self, name):
        return self.c_query("SELECT jobid, jobname, schedule, command, database, username, active FROM cron.job "
                            "WHERE jobname = %s ORDER BY jobid", (name,))

    def error_of(self, conn, sql, params=None, sqlstate=None):
        with self.assertRaises(psycopg2.Error) as cm:
            e2e_lib.scalar(conn, sql, params)
        if sqlstate:
            self.assertEqual(cm.exception.pgcode, sqlstate, str(cm.exception))
        return cm.exception

    def hint_statement(self, sql, params=None):
        """The statement of the 55000 HINT that a call from billrecon_e2e gets."""
        e = self.error_of(self.conn, sql, params, "55000")
        prefix = 'Run in database "%s": ' % self.cron_db
        hint = e.diag.message_hint
        self.assertTrue(hint and hint.startswith(prefix), "HINT: %r" % hint)
        return hint[len(prefix):]

    # -- in pg_cron's database -----------------------------------------------------
    def test_schedule_creates_the_job(self):
        jobid = self.c_scalar("SELECT billrecon.schedule_sync(%s)", (LEAP,))
        self.assertEqual(self.jobs("billrecon sync all quick"), [
            {"jobid": jobid, "jobname": "billrecon sync all quick", "schedule": LEAP,
             "command": "SELECT billrecon.sync_async(NULL, 'quick')", "database": self.cron_db,
             "username": self.owner, "active": True}])
        listed = self.c_query("SELECT * FROM billrecon.sync_schedules() WHERE jobid = %s", (jobid,))
        self.assertEqual(len(listed), 1)
        self.assertEqual((listed[0]["jobname"], listed[0]["schedule"], listed[0]["username"]),
                         ("billrecon sync all quick", LEAP, self.owner))
        self.assertTrue(self.c_scalar("SELECT billrecon.unschedule_sync(NULL)"))
        self.assertEqual(self.jobs("billrecon sync all quick"), [])

    def test_schedule_again_replaces_the_job(self):
        first = self.c_scalar("SELECT billrecon.schedule_sync(%s, 'sched-csv', 'full')", (LEAP,))
        again = self.c_scalar("SELECT billrecon.schedule_sync(%s, 'sched-csv', 'full')", (LEAP2,))
        self.assertEqual(again, first, "the same integration and mode keep their job id")
        rows = self.jobs("billrecon sync sched-csv full")
        self.assertEqual([(r["jobid"], r["schedule"], r["command"]) for r in rows],
                         [(first, LEAP2, "SELECT billrecon.sync_async('sched-csv', 'full')")])
        other = self.c_scalar("SELECT billrecon.schedule_sync(%s, 'sched-csv')", (LEAP,))
        self.assertNotEqual(other, first, "another mode is another job")
        self.assertEqual(self.c_scalar("SELECT count(*) FROM billrecon.sync_schedules() WHERE jobid IN (%s, %s)",
                                       (first, other)), 2)
        self.assertTrue(self.c_scalar("SELECT billrecon.unschedule_sync('sched-csv', 'full')"))
        self.assertTrue(self.c_scalar("SELECT billrecon.unschedule_sync(%s)", (other,)))

    def test_unschedule_by_name_and_by_id(self):
        self.c_scalar("SELECT billrecon.schedule_sync(%s, 'sched-csv', 'full')", (LEAP,))
        self.assertTrue(self.c_scalar("SELECT billrecon.unschedule_sync('sched-csv', 'full')"))
        self.assertFalse(self.c_scalar("SELECT billrecon.unschedule_sync('sched-csv', 'full')"), "already gone")
        self.assertEqual(self.jobs("billrecon sync sched-csv full"), [])
        jobid = self.c_scalar("SELECT billrecon.schedule_sync(%s, 'sched-csv', 'full')", (LEAP,))
        self.assertTrue(self.c_scalar("SELECT billrecon.unschedule_sync(%s::bigint)", (jobid,)))
        self.assertFalse(self.c_scalar("SELECT billrecon.unschedule_sync(%s::bigint)", (jobid,)), "already gone")
        self.assertEqual(self.c_scalar("SELECT count(*) FROM cron.job WHERE jobid = %s", (jobid,)), 0)

    def test_unschedule_refuses_other_jobs(self):
        plain = self.c_scalar("SELECT cron.schedule('e2e schedule plain', %s, 'SELECT 1')", (LEAP,))
        lookalike = self.c_scalar("SELECT cron.schedule('billrecon sync lookalike quick', %s, 'SELECT 1')", (LEAP,))
        for jobid in (plain, lookalike):
            e = self.error_of(self.cron, "SELECT billrecon.unschedule_sync(%s::bigint)", (jobid,), "42501")
            self.assertEqual(e.diag.message_primary, "pg_cron job %d is not a scheduled sync of this database" % jobid)
            self.assertEqual(self.c_scalar("SELECT count(*) FROM cron.job WHERE jobid = %s", (jobid,)), 1, "kept")
        self.assertEqual(self.c_scalar("SELECT count(*) FROM billrecon.sync_schedules() WHERE jobid IN (%s, %s)",
                                       (plain, lookalike)), 0, "sync_schedules() lists billrecon's jobs only")
        self.c_scalar("SELECT cron.unschedule(%s)", (plain,))
        self.c_scalar("SELECT cron.unschedule(%s)", (lookalike,))

    def test_errors_in_the_cron_database(self):
        before = self.c_scalar("SELECT count(*) FROM cron.job")
        e = self.error_of(self.cron, "SELECT billrecon.schedule_sync('0 6 *', 'sched-csv')", sqlstate="22023")
        self.assertEqual(e.diag.message_primary, "invalid schedule: 0 6 *")
        self.assertEqual(e.diag.message_detail,
                         "pg_cron did not accept the schedule '0 6 *' for the job 'billrecon sync sched-csv quick'.")
        self.assertIn("'0 6 * * *'", e.diag.message_hint)
        self.assertIn("'*/30 * * * *'", e.diag.message_hint)
        self.error_of(self.cron, "SELECT billrecon.schedule_sync('61 6 * * *')", sqlstate="22023")
        self.error_of(self.cron, "SELECT billrecon.schedule_sync(%s, 'no-such-integration')", (LEAP,), "42704")
        self.error_of(self.cron, "SELECT billrecon.schedule_sync(%s, NULL, 'hourly')", (LEAP,), "22023")
        self.error_of(self.cron, "SELECT billrecon.schedule_sync('')", sqlstate="22023")
        self.assertEqual(self.c_scalar("SELECT count(*) FROM cron.job"), before, "no job created")

    def test_an_operator_schedules_and_the_job_runs_as_the_owner(self):
        with self.cron.cursor() as cur:
            cur.execute("SET ROLE %s" % OPERATOR_ROLE)
            try:
                cur.execute("SELECT billrecon.schedule_sync(%s, 'sched-csv', 'full')", (LEAP,))
                jobid = cur.fetchone()[0]
                cur.execute("SELECT count(*) FROM billrecon.sync_schedules() WHERE jobid = %s", (jobid,))
                self.assertEqual(cur.fetchone()[0], 1, "the operator sees it in sync_schedules()")
                with self.assertRaises(psycopg2.Error) as cm:
                    cur.execute("SELECT cron.schedule('e2e schedule direct', %s, 'SELECT 1')", (LEAP,))
                self.assertEqual(cm.exception.pgcode, "42501", "the operator has no direct access to pg_cron")
            finally:
                cur.execute("RESET ROLE")
        self.assertEqual([(r["jobid"], r["username"]) for r in self.jobs("billrecon sync sched-csv full")],
                         [(jobid, self.owner)], "the job belongs to (and runs as) the function's owner")
        with self.cron.cursor() as cur:
            cur.execute("SET ROLE %s" % OPERATOR_ROLE)
            try:
                cur.execute("SELECT billrecon.unschedule_sync(%s::bigint)", (jobid,))
                self.assertTrue(cur.fetchone()[0])
            finally:
                cur.execute("RESET ROLE")

    def test_pg_cron_not_created_in_its_database(self):
        if "pg_cron" not in self.created:
            self.skipTest("pg_cron already existed in %s" % self.cron_db)
        e = self.not_created_error
        self.assertIsNotNone(e, "schedule_sync worked before CREATE EXTENSION pg_cron")
        self.assertEqual(e.pgcode, "55000")
        self.assertEqual(e.diag.message_primary,
                         'cannot schedule a sync: the pg_cron extension does not exist in database "%s"' % self.cron_db)
        self.assertEqual(e.diag.message_hint,
                         'Run CREATE EXTENSION pg_cron; in database "%s" as a superuser, then try again.' % self.cron_db)

    def test_not_loaded(self):
        if self.cron_db is not None:
            self.skipTest("pg_cron is loaded on this cluster")
        e = self.error_of(self.conn, "SELECT billrecon.schedule_sync(%s)", (LEAP,), "55000")
        self.assertEqual(e.diag.message_primary, "cannot schedule a sync: pg_cron is not loaded")
        self.assertIn("pg_cron", e.diag.message_detail)
        self.assertIn("cron.database_name = '%s'" % e2e_lib.DB_NAME, e.diag.message_hint)
        self.assertIn('CREATE EXTENSION pg_cron; in database "%s"' % e2e_lib.DB_NAME, e.diag.message_hint)
        self.assertRegex(e.diag.message_hint, r"shared_preload_libraries = '[^']*pg_cron'")

    # -- from another database: the HINTs, run as they are -------------------------
    def test_hint_statements_work_in_the_cron_database(self):
        db = e2e_lib.DB_NAME
        with self.conn.cursor() as cur:
            cur.execute("SELECT billrecon.add_integration('sched-other', 'csv', '', '{}') "
                        "WHERE NOT EXISTS (SELECT 1 FROM billrecon.integrations WHERE name = 'sched-other')")
        name = "billrecon sync sched-other full in %s" % db
        schedule = self.hint_statement("SELECT billrecon.schedule_sync(%s, 'sched-other', 'full')", (LEAP,))
        self.assertEqual(schedule, "SELECT cron.schedule_in_database('%s', '%s', "
                                   "$$SELECT billrecon.sync_async('sched-other', 'full')$$, '%s');" % (name, LEAP, db))
        jobid = self.c_scalar(schedule)
        self.assertEqual(self.jobs(name), [
            {"jobid": jobid, "jobname": name, "schedule": LEAP,
             "command": "SELECT billrecon.sync_async('sched-other', 'full')", "database": db,
             "username": self.c_scalar("SELECT current_user"), "active": True}])
        self.assertEqual(self.c_scalar(schedule), jobid, "running it again keeps the job")
        self.assertEqual(len(self.jobs(name)), 1)

        listing = self.hint_statement("SELECT * FROM billrecon.sync_schedules()")
        self.assertEqual([r["jobid"] for r in self.c_query(listing)], [jobid], "the listing HINT finds it")
        self.assertEqual(self.c_scalar("SELECT count(*) FROM billrecon.sync_schedules() WHERE jobid = %s", (jobid,)),
                         0, "pg_cron's database lists only its own syncs")

        by_name = self.hint_statement("SELECT billrecon.unschedule_sync('sched-other', 'full')")
        self.assertEqual(by_name, "SELECT cron.unschedule('%s');" % name)
        self.assertTrue(self.c_scalar(by_name))
        self.assertEqual(self.jobs(name), [])

        # All integrations, quick; then unschedule by id.
        all_name = "billrecon sync all quick in %s" % db
        jobid = self.c_scalar(self.hint_statement("SELECT billrecon.schedule_sync(%s)", (LEAP2,)))
        self.assertEqual([(r["jobid"], r["command"], r["database"]) for r in self.jobs(all_name)],
                         [(jobid, "SELECT billrecon.sync_async(NULL, 'quick')", db)])
        by_id = self.hint_statement("SELECT billrecon.unschedule_sync(%s::bigint)", (jobid,))
        self.assertEqual(by_id, "SELECT cron.unschedule(%d);" % jobid)
        self.assertTrue(self.c_scalar(by_id))
        self.assertEqual(self.jobs(all_name), [])

    def test_hint_quotes_an_odd_schedule(self):
        # A schedule pg_cron rejects, with a quote and a backslash: the HINT
        # still parses, and pg_cron's own error is what comes back.
        odd = "0 6 * * 'x\\"
        statement = self.hint_statement("SELECT billrecon.schedule_sync(%s)", (odd,))
        e = self.error_of(self.cron, statement, sqlstate="22023")
        self.assertEqual(e.diag.message_primary, "invalid schedule: %s" % odd)
