"""Background sync: billrecon.sync_async() queues, the workers sync in
parallel and record the same sync runs as billrecon.sync(), billrecon.sync_jobs
shows live progress, billrecon.cancel_sync() stops a running sync and keeps the
previous data, one integration never syncs twice at once, and a killed worker
is replaced and its task marked interrupted."""

import time

from e2e_lib import DB_NAME, E2ETestCase

FINISHED = ("succeeded", "failed", "cancelled")


class SyncAsyncTest(E2ETestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The workers' sessions read the database's settings, not ours.
        with cls.conn.cursor() as cur:
            cur.execute("ALTER DATABASE %s SET billrecon.allow_http = on" % DB_NAME)

    @classmethod
    def tearDownClass(cls):
        with cls.conn.cursor() as cur:
            cur.execute("ALTER DATABASE %s RESET billrecon.allow_http" % DB_NAME)
        super().tearDownClass()

    def queue(self, name, mode="full"):
        return self.scalar("SELECT billrecon.sync_async(%s, %s)", (name, mode))

    def tasks(self, job):
        return self.q("SELECT * FROM billrecon.sync_jobs WHERE job_id = %s ORDER BY task_id", (job,))

    def wait(self, job, until=FINISHED, timeout=60):
        deadline = time.time() + timeout
        while True:
            rows = self.tasks(job)
            if rows and all(r["status"] in until for r in rows):
                return rows
            if time.time() > deadline:
                self.fail("job %s did not reach %s: %r" % (job, until, rows))
            time.sleep(0.05)

    def wait_running(self, job, pages=1, timeout=30):
        deadline = time.time() + timeout
        while True:
            rows = self.tasks(job)
            if rows and rows[0]["status"] == "running" and (rows[0]["pages"] or 0) >= pages:
                return rows[0]
            if rows and rows[0]["status"] in FINISHED:
                self.fail("job %s finished before it could be observed running: %r" % (job, rows))
            if time.time() > deadline:
                self.fail("job %s never ran: %r" % (job, rows))
            time.sleep(0.02)

    def test_a_queued_sync_runs_in_the_background_and_records_its_run(self):
        name, iid = self.add("ninjaone")
        t0 = time.time()
        job = self.queue(name)
        self.assertLess(time.time() - t0, 1.0, "sync_async returns at once")
        rows = self.wait(job)
        self.assertEqual([r["status"] for r in rows], ["succeeded"])
        row = rows[0]
        self.assertEqual(row["integration"], name)
        self.assertGreater(row["records"], 0)
        self.assertIsNotNone(row["elapsed"])
        run = self.run_row(row["run_id"])
        self.assertEqual(run["status"], "succeeded")
        self.assertEqual(run["started_by"], self.scalar("SELECT current_user"),
                         "the run names the role that queued it, as a foreground sync would")
        self.assertGreater(self.count("usage_records", iid), 0)
        self.assertEqual(self.status(name)["status"], "green")

    def test_integrations_of_a_job_sync_in_parallel(self):
        names = [self.add("ninjaone")[0] for _ in range(4)]
        # Every NinjaOne response takes 0.3 s: a full sync is a handful of requests.
        self.nj.fault(kind="slow", delay_s=0.3, match="/v2/")
        t0 = time.time()
        self.assert_succeeded(self.sync(names[0]))
        single = time.time() - t0
        t0 = time.time()
        jobs = [self.queue(n) for n in names]
        for j in jobs:
            self.assertEqual([r["status"] for r in self.wait(j)], ["succeeded"])
        together = time.time() - t0
        # One after another would take 4 x single.
        self.assertLess(together, 2.0 * single + 1.0,
                        "4 integrations took %.2f s, one alone %.2f s" % (together, single))

    def test_progress_is_live_and_cancel_keeps_the_previous_data(self):
        name, iid = self.add("ninjaone")
        self.assert_succeeded(self.sync(name))
        before = self.snapshot(iid)
        runs_before = self.scalar("SELECT count(*) FROM billrecon.sync_runs WHERE integration_id = %s", (iid,))
        self.nj.fault(kind="slow", delay_s=1.0, match="devices")
        job = self.queue(name)
        running = self.wait_running(job)
        self.assertTrue(running["phase"], "a running task shows its phase")
        self.assertGreaterEqual(running["pages"], 1)
        self.assertIsNotNone(running["worker_pid"])
        self.assertEqual(self.scalar("SELECT billrecon.cancel_sync(%s)", (job,)), 1)
        row = self.wait(job)[0]
        self.assertEqual(row["status"], "cancelled")
        self.assertRegex(row["error"], "cancel")
        run = self.run_row(row["run_id"])
        self.assertEqual(run["status"], "cancelled")
        self.assertEqual(self.scalar("SELECT count(*) FROM billrecon.sync_runs WHERE integration_id = %s", (iid,)),
                         runs_before + 1)
        self.assert_same_snapshot(before, self.snapshot(iid), "after a cancelled background sync")
        self.assertEqual(self.scalar("SELECT billrecon.cancel_sync(%s)", (job,)), 0, "nothing left to cancel")

    def test_one_integration_never_syncs_twice_at_once(self):
        name, _ = self.add("ninjaone")
        self.nj.fault(kind="slow", delay_s=0.4, match="devices")
        first, second = self.queue(name), self.queue(name)
        self.wait_running(first)
        self.assertEqual(self.tasks(second)[0]["status"], "queued", "the second waits for the first")
        fg = self.sync(name)
        self.assert_failed(fg, "another sync")
        a, b = self.wait(first)[0], self.wait(second)[0]
        self.assertEqual((a["status"], b["status"]), ("succeeded", "succeeded"))
        self.assertLessEqual(a["finished_at"], b["started_at"], "no overlap")

    def test_a_queued_job_can_be_cancelled_before_it_starts(self):
        name, _ = self.add("ninjaone")
        self.nj.fault(kind="slow", delay_s=0.5, match="devices")
        first, second = self.queue(name), self.queue(name)
        self.wait_running(first)
        self.assertEqual(self.scalar("SELECT billrecon.cancel_sync(%s)", (second,)), 1)
        self.assertEqual(self.tasks(second)[0]["status"], "cancelled")
        self.assertEqual(self.wait(first)[0]["status"], "succeeded")
        self.assertIsNone(self.tasks(second)[0]["started_at"], "it never started")

    def test_a_killed_worker_is_replaced_and_its_task_marked_interrupted(self):
        name, iid = self.add("ninjaone")
        self.assert_succeeded(self.sync(name))
        before = self.snapshot(iid)
        self.nj.fault(kind="slow", delay_s=1.0, match="devices")
        job = self.queue(name)
        pid = self.wait_running(job)["worker_pid"]
        self.assertTrue(self.scalar("SELECT pg_terminate_backend(%s)", (pid,)))
        row = self.wait(job, timeout=30)[0]
        self.assertEqual(row["status"], "failed")
        self.assertRegex(row["error"], "interrupted")
        run = self.run_row(row["run_id"])     # the interrupted sync is in the history, failed
        self.assertEqual((run["status"], run["error_sqlstate"]), ("failed", "57000"))
        self.assertRegex(run["error"], "interrupted")
        self.assertEqual(self.status(name)["status"], "red")
        self.assert_same_snapshot(before, self.snapshot(iid), "after a killed background sync")
        self.mocks.reset()
        again = self.queue(name)
        self.assertEqual(self.wait(again)[0]["status"], "succeeded", "the queue goes on")

    def test_bad_input(self):
        with self.assertRaisesRegex(Exception, "invalid sync mode"):
            self.queue(self.add("ninjaone")[0], "sometimes")
        with self.assertRaisesRegex(Exception, "does not exist"):
            self.queue("no-such-integration")
        with self.assertRaisesRegex(Exception, "does not exist"):
            self.scalar("SELECT billrecon.cancel_sync(-1)")


class ProgressNoticeTest(E2ETestCase):
    """A long foreground sync reports its progress: no NOTICE in its first 5
    seconds, then at most one every 5 seconds."""

    def test_a_long_foreground_sync_reports_progress(self):
        name, _ = self.add("ninjaone", options={"page_size": 25})
        self.nj.fault(kind="slow", delay_s=0.8, match="devices")
        del self.conn.notices[:]
        t0 = time.time()
        row = self.sync(name)
        self.assert_succeeded(row)
        self.assertGreater(time.time() - t0, 5.5, "the sync is long enough to report: %r" % row)
        progress = [n for n in self.conn.notices if "billrecon: syncing" in n]
        self.assertTrue(progress, "a sync of more than 5 seconds says how far it is: %r" % self.conn.notices)
        self.assertRegex(progress[0], r"billrecon: syncing %s: \w+, \d+ page\(s\) and \d+ record\(s\) so far" % name)
        self.assertLessEqual(len(progress), 2, "at most one every 5 seconds")
