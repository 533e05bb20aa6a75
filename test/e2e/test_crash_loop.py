"""Crash safety (issue 8): the backend or the worker killed at random points
of a sync, a reconcile and a push, in a loop; afterwards no partial data, no
duplicated push, every interrupted run marked.

One test runs a seeded plan of kills (BILLRECON_CRASH_SEED=n replays one;
the seed is printed): foreground billrecon.sync() backends and background
sync workers (billrecon.sync_async()) of a ConnectWise and a NinjaOne
integration, billrecon.reconcile() backends and billrecon.push_changes()
backends writing to the ConnectWise mock. Each kill is kill -9 (the
postmaster then resets every session: crash recovery) or SIGTERM
(pg_terminate_backend), at a random point: after the n-th request the mock
received plus a few milliseconds (the mock answers every request late, so
the point falls inside a page, between pages, or in the final apply), or a
random delay into a reconcile. After each kill, on a new connection:

- every table of schema billrecon is, row by row, exactly as before the
  killed call (or, when the call finished before the kill, holds its whole
  result); the staging tables are empty;
- nothing is left 'running': no sync run, no background task (an interrupted
  task is marked failed, "interrupted", with a failed sync run), no push
  attempt, no unfinished reconcile run;
- a killed push wrote each card's change to the PSA at most once, and
  push_changes() called again completes every card while writing only what
  is missing (ConnectWise: one cancel and one new addition per card, in all);
- a sync after a killed one brings the whole new state.

At the end a full sync shows the PSA billing every pushed quantity exactly
once, and the table of kills is printed (target, point, signal, outcome).

The kills land in the server log as "terminated by signal 9"; the test
records each pid it kills (e2e_lib.PgLog.expect_kill), so only those lines
are excused."""

import os
import random
import signal
import threading
import time

import psycopg2

from e2e_lib import DB_NAME, Ctx, E2ETestCase, connect, query, scalar

# How many kills of each target; about a third of them kill -9.
PLAN = {"sync": 5, "sync_async": 5, "reconcile": 7, "push": 7}
CARDS_PER_PUSH = 2
DELAY_S = 0.03           # the mock answers every request this late while a kill is aimed
MAX_TRIES = 4            # a call that keeps finishing before its kill is tried this often
STAGE_TABLES = ("_stage_companies", "_stage_agreements", "_stage_line_items", "_stage_vendor_accounts",
                "_stage_usage_records")
# Rows a background sync adds however it ends (checked on their own).
JOB_TABLES = ("sync_jobs_queue", "sync_job_tasks", "sync_runs", "sync_run_messages")
SIGNAL_NAMES = {signal.SIGKILL: "SIGKILL", signal.SIGTERM: "SIGTERM"}


class Call(threading.Thread):
    """One statement on its own connection, in a thread."""

    def __init__(self, sql, params=None):
        super().__init__(daemon=True)
        self.sql, self.params = sql, params
        self.conn = connect()
        self.pid = scalar(self.conn, "SELECT pg_backend_pid()")
        self.rows = None
        self.error = None
        self.finished_at = None

    def run(self):
        try:
            self.rows = query(self.conn, self.sql, self.params)
        except psycopg2.Error as e:
            self.error = e
        finally:
            self.finished_at = time.time()
            try:
                self.conn.close()
            except psycopg2.Error:
                pass


class CrashLoopTest(E2ETestCase):

    # -- fixture --------------------------------------------------------------------------
    def setUp(self):
        super().setUp()
        self.conn = connect()
        self.addCleanup(lambda: self.conn.close())
        if not self.scalar("SELECT billrecon._sync_workers_available()"):
            self.skipTest("billrecon is not in shared_preload_libraries: no background sync to kill")
        seed = os.environ.get("BILLRECON_CRASH_SEED")
        self.seed = int(seed) if seed else random.SystemRandom().randrange(1, 1 << 31)
        self.rng = random.Random(self.seed)
        print("\ncrash loop: seed %d (BILLRECON_CRASH_SEED=%d replays it)" % (self.seed, self.seed), flush=True)
        self.kills = []
        # The workers' sessions read the database's settings, not ours.
        self.execute("ALTER DATABASE %s SET billrecon.allow_http = on" % DB_NAME)
        self.addCleanup(self._sql_after, "ALTER DATABASE %s RESET billrecon.allow_http" % DB_NAME)
        # With synchronous_commit = off (test/bin/lib.sh's cluster) a kill -9
        # loses the commits of the last few hundred milliseconds: whole
        # transactions, so the data stays consistent, but not the state this
        # test read just before the kill. Every session here commits durably.
        self.execute("ALTER DATABASE %s SET synchronous_commit = on" % DB_NAME)
        self.addCleanup(self._sql_after, "ALTER DATABASE %s RESET synchronous_commit" % DB_NAME)
        self.execute("SET synchronous_commit = on")
        saved = self.q("SELECT id, enabled, is_default_psa FROM billrecon.integrations")
        self.addCleanup(self._restore_flags, saved)
        self.execute("UPDATE billrecon.integrations SET enabled = false, is_default_psa = false")
        self.psa, self.psa_id = self.add("connectwise")
        self.addCleanup(self._drop, self.psa, self.psa_id)
        self.execute("SELECT billrecon.set_default_psa(%s)", (self.psa,))
        self.nj_name, self.nj_id = self.add("ninjaone", options={"page_size": 10})
        self.addCleanup(self._drop, self.nj_name, None)
        self.requests_per_sync = {}
        for name, mock in ((self.psa, self.cw), (self.nj_name, self.nj)):
            mock.ctl("DELETE", "requests")
            self.assert_succeeded(self.sync(name, "full"))
            self.requests_per_sync[name] = len(mock.requests())
        self.today = self.scalar("SELECT current_date")

    def _sql_after(self, sql):
        self.reconnect_if_broken()
        self.execute(sql)

    def _restore_flags(self, saved):
        self.reconnect_if_broken()
        for r in saved:
            self.execute("UPDATE billrecon.integrations SET enabled = %s, is_default_psa = %s WHERE id = %s",
                         (r["enabled"], r["is_default_psa"], r["id"]))

    def _drop(self, name, psa_id):
        self.reconnect_if_broken()
        if psa_id is not None:
            self.execute("DELETE FROM billrecon.proposed_changes WHERE psa_integration_id = %s", (psa_id,))
        self.execute("SELECT billrecon.drop_integration(%s)", (name,))

    def map_clients(self):
        n = 0
        for c in self.ds.ground_truth["clients"] + self.ds.ground_truth["internal_orgs"]:
            org, company = c["ninja_org_id"], c.get("psa_company_id")
            if org is not None and company is not None:
                self.execute("SELECT billrecon.map_client(%s, %s, %s)", (self.nj_name, str(org), str(company)))
                n += 1
        self.assertGreater(n, 3)
        self.assertGreater(self.scalar("SELECT billrecon.apply_presets(%s)", (self.nj_name,)), 0)

    # -- connections, kills -------------------------------------------------------------------
    def reconnect_if_broken(self):
        try:
            scalar(self.conn, "SELECT 1")
            return
        except psycopg2.Error:
            pass
        try:
            self.conn.close()
        except psycopg2.Error:
            pass
        deadline = time.time() + 60
        while True:
            try:
                self.conn = connect()
                scalar(self.conn, "SELECT 1")
                return
            except psycopg2.OperationalError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)

    def wait_for_restart(self):
        """After a kill -9 the postmaster ends every session and recovers:
        wait for ours to go, then for the server to take connections."""
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                scalar(self.conn, "SELECT 1")
            except psycopg2.Error:
                break
            time.sleep(0.02)
        else:
            self.fail("the server did not reset the sessions after a kill -9")
        self.reconnect_if_broken()

    def kill(self, pid, sig):
        """SIGKILL from here (or through COPY TO PROGRAM when the server runs
        as another user); SIGTERM the PostgreSQL way, pg_terminate_backend.
        False when the process was already gone (its call just ended)."""
        if sig == signal.SIGTERM:
            return bool(self.scalar("SELECT pg_terminate_backend(%s)", (pid,)))
        if Ctx.pglog:
            Ctx.pglog.expect_kill(pid, signal.SIGKILL)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        except PermissionError:
            if not self.alive(pid):
                return False
            try:
                self.execute("COPY (SELECT 1) TO PROGRAM %s", ("kill -9 %d" % pid,))
            except psycopg2.OperationalError:
                pass    # the reset reached this session first
        return True

    def alive(self, pid):
        return bool(self.scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)))

    def slow(self, mock):
        mock.ctl("DELETE", "faults")
        mock.ctl("DELETE", "requests")
        mock.fault(kind="slow", delay_s=DELAY_S)

    def seen(self, mock):
        faults = mock.ctl("GET", "faults")["faults"]
        return faults[0]["seen"] if faults else 0

    def settle(self, mock):
        """Waits until every request the mock received has been answered (the
        late answers of a killed call included): the PSA is done with them."""
        deadline = time.time() + 10
        settled_at = None   # and nothing new for 150 ms: a request the killed
        while True:         # backend wrote just before it died may still be in flight
            faults = mock.ctl("GET", "faults")["faults"]
            seen = faults[0]["seen"] if faults else None
            if seen is None or len(mock.requests()) >= seen:
                if settled_at is not None and settled_at[0] == seen and time.time() - settled_at[1] >= 0.15:
                    break
                if settled_at is None or settled_at[0] != seen:
                    settled_at = (seen, time.time())
            else:
                settled_at = None
            self.assertLess(time.time(), deadline, "the mock never answered every request")
            time.sleep(0.02)
        mock.ctl("DELETE", "faults")

    def aim(self, is_running, mocks, n, jitter_ms, timeout=30):
        """Waits until the mocks have received n requests (or the call ended),
        then jitter_ms more. Returns False when the call ended first."""
        deadline = time.time() + timeout
        mocks = mocks if isinstance(mocks, tuple) else (mocks,)
        while is_running() and sum(self.seen(m) for m in mocks) < n:
            self.assertLess(time.time(), deadline, "the call never reached request %d" % n)
            time.sleep(0.003)
        time.sleep(jitter_ms / 1000.0)
        return is_running()

    # -- state ------------------------------------------------------------------------------
    def tables(self):
        return [r["relname"] for r in self.q(
            """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'billrecon' AND c.relkind = 'r' ORDER BY 1""")]

    def state(self, exclude=()):
        """Every row of every billrecon table, in a stable order."""
        return {t: self.q("SELECT * FROM billrecon.%s x ORDER BY x::text" % t)
                for t in self.tables() if t not in exclude}

    def assert_same_state(self, before, after, what):
        for t in sorted(set(before) | set(after)):
            b, a = before.get(t), after.get(t)
            if b == a:
                continue
            if b is None or a is None:
                self.fail("%s: table %s appeared or disappeared" % (what, t))
            extra = [r for r in a if r not in b][:2]
            gone = [r for r in b if r not in a][:2]
            self.fail("%s: billrecon.%s differs from before the killed call (%d rows before, %d after); "
                      "new or changed: %r; gone or changed: %r" % (what, t, len(b), len(a), extra, gone))

    def assert_nothing_left_running(self, what):
        left = self.one("""SELECT
            (SELECT count(*) FROM billrecon.sync_runs WHERE status = 'running') AS sync_runs,
            (SELECT count(*) FROM billrecon.sync_job_tasks WHERE status = 'running') AS sync_job_tasks,
            (SELECT count(*) FROM billrecon.change_card_pushes WHERE status = 'running') AS pushes,
            (SELECT count(*) FROM billrecon.reconcile_runs WHERE finished_at IS NULL) AS reconcile_runs""")
        self.assertEqual(left, {"sync_runs": 0, "sync_job_tasks": 0, "pushes": 0, "reconcile_runs": 0},
                         "%s: left running" % what)
        staged = {t: self.scalar("SELECT count(*) FROM billrecon.%s" % t) for t in STAGE_TABLES}
        self.assertEqual(set(staged.values()), {0}, "%s: staged rows left behind: %r" % (what, staged))

    def wait_task_ended(self, task_id, timeout=30):
        deadline = time.time() + timeout
        while True:
            try:
                row = self.one("SELECT * FROM billrecon.sync_job_tasks WHERE id = %s", (task_id,))
                if row["status"] != "running":
                    return row
            except psycopg2.OperationalError:
                self.reconnect_if_broken()
            if time.time() > deadline:
                self.fail("task %s is still 'running' %d s after its worker was killed: %r"
                          % (task_id, timeout, row))
            time.sleep(0.05)

    # -- one kill -----------------------------------------------------------------------------
    def record(self, target, point, sig, outcome):
        now = time.time()
        self.kills.append((target, point, SIGNAL_NAMES[sig], "%.1f" % (now - self.last_t), outcome))
        self.last_t = now
        print("  %-3d %-14s %-24s %-7s %4s s  %s" % ((len(self.kills),) + self.kills[-1]), flush=True)

    def after_kill(self, sig, call=None):
        if call is not None:
            call.join(60)
            self.assertFalse(call.is_alive(), "the killed call never returned")
        if sig == signal.SIGKILL:
            self.wait_for_restart()
        self.reconnect_if_broken()
        if call is not None and sig != signal.SIGKILL and getattr(call, "pid", None):
            # A terminated backend sends its FATAL to the client before it
            # releases its locks: the retry must not start while the killed
            # push still holds its card rows (push_changes skips locked cards).
            deadline = time.time() + 30
            while time.time() < deadline and self.scalar(
                    "SELECT count(*) FROM pg_stat_activity a FULL JOIN pg_locks l ON l.pid = a.pid "
                    "WHERE coalesce(a.pid, l.pid) = %s", (call.pid,)):
                time.sleep(0.02)

    def integration_state(self, iid):
        """The data of one integration (what a sync of it writes) and its runs."""
        return {t: self.q("SELECT * FROM billrecon.%s x WHERE integration_id = %%s ORDER BY x::text" % t, (iid,))
                for t in self.TABLES + ("sync_runs",)}

    def mutate_source(self, mock):
        """A change in the source, so the whole after-state differs from before."""
        if mock is self.cw:
            c = self.rng.choice(self.ds.companies)
            mock.mutate(entity="company", id=c.id, set={"name": "%s #%d" % (c.name[:40], len(self.kills))})
        else:
            dv = self.rng.choice(self.ds.devices)
            mock.mutate(entity="device", id=dv.id, set={"systemName": "CRASH-%d-%d" % (dv.id, len(self.kills))})

    def kill_sync(self, background, sig):
        """One integration, or both (sync(NULL): one transaction; sync_async(NULL):
        a job of two tasks on two workers, one of them killed)."""
        both = [(self.psa, self.psa_id, self.cw), (self.nj_name, self.nj_id, self.nj)]
        pick = self.rng.choice(both + [None])
        syncs = both if pick is None else [pick]
        # The killed worker's (or, foreground, the session's) integration: the point counts its requests.
        name, iid, mock = self.rng.choice(syncs) if background else (pick or both[0])
        label = "all" if pick is None else ("cw" if mock is self.cw else "nj")
        target = "%s %s" % ("sync_async" if background else "sync", label)
        for _, _, m in syncs:
            self.mutate_source(m)
        total = self.requests_per_sync[name] if (background or pick) else sum(self.requests_per_sync.values())
        for _ in range(MAX_TRIES):
            n = self.rng.randint(1, total)
            jitter = self.rng.randint(0, int(DELAY_S * 1500))
            point = "request %d/%d +%d ms" % (n, total, jitter)
            what = "%s killed at %s (%s)" % (target, point, SIGNAL_NAMES[sig])
            before = self.state(exclude=JOB_TABLES if background else ())
            before_of = {i: self.integration_state(i) for _, i, _ in syncs}
            runs_before = self.scalar("SELECT coalesce(max(id), 0) FROM billrecon.sync_runs")
            for _, _, m in both:
                self.slow(m)
            if background:
                job = self.scalar("SELECT billrecon.sync_async(%s, 'full')", (None if pick is None else name,))
                deadline = time.time() + 30
                while True:
                    task = self.one("SELECT * FROM billrecon.sync_job_tasks WHERE job_id = %s AND integration_id = %s",
                                    (job, iid))
                    if task["status"] == "running" and task["worker_pid"]:
                        break
                    self.assertNotIn(task["status"], ("succeeded", "failed", "cancelled"), task)
                    self.assertLess(time.time(), deadline, "the background task never started: %r" % task)
                    time.sleep(0.005)
                pid = task["worker_pid"]

                def running():
                    return self.scalar("SELECT status FROM billrecon.sync_job_tasks WHERE id = %s",
                                       (task["id"],)) == "running"
                call = None
            else:
                call = Call("SELECT * FROM billrecon.sync(%s, 'full')", (None if pick is None else name,))
                pid = call.pid
                call.start()
                running = call.is_alive
                # sync(NULL) syncs the PSA first: count both mocks' requests.
            hit = self.aim(running, (mock,) if (background or pick) else (self.cw, self.nj), n, jitter)
            hit = hit and self.kill(pid, sig)
            self.after_kill(sig if hit else None, call)
            for _, _, m in both:
                self.settle(m)
            if background:
                tasks = {t["integration_id"]: self.wait_task_ended(t["id"]) for t in
                         self.q("SELECT * FROM billrecon.sync_job_tasks WHERE job_id = %s", (job,))}
                interrupted = tasks[iid]["status"] != "succeeded"
            else:
                interrupted = call.error is not None
            self.assert_nothing_left_running(what)
            if not interrupted:
                self.check_sync_done([i for _, i, _ in syncs], runs_before, what)
                self.record(target, point, sig, "finished first: whole after-state")
                continue
            self.assertTrue(hit, "%s failed without a kill: %s" % (target, call.error if call else tasks))
            if background:
                outcome = self.check_tasks_marked(tasks, before, before_of, runs_before, what)
            else:
                # A foreground sync is one transaction (sync(NULL) too: every
                # integration of the call): its run rows went with it.
                self.assert_same_state(before, self.state(), what)
                outcome = "rolled back whole"
            # The next sync brings the whole after-state.
            for n_, i, _ in syncs:
                self.assert_succeeded(self.sync(n_, "full"))
                self.assertNotEqual(self.integration_state(i), before_of[i], "%s: the next sync of %s" % (what, n_))
            self.record(target, point, sig, "interrupted; %s; next sync ok" % outcome)
            return True
        return False

    def check_sync_done(self, iids, runs_before, what):
        for iid in iids:
            run = self.one("SELECT * FROM billrecon.sync_runs WHERE id > %s AND integration_id = %s ORDER BY id DESC "
                           "LIMIT 1", (runs_before, iid))
            self.assertEqual(run["status"], "succeeded", what)

    def check_tasks_marked(self, tasks, before, before_of, runs_before, what):
        """Background: each interrupted task is marked failed ("interrupted")
        with a failed sync run of its own, the integration shows it, and its
        data is as before; a task that went on (SIGTERM kills one worker)
        succeeded."""
        failed = []
        for iid, task in sorted(tasks.items()):
            new_runs = self.q("SELECT * FROM billrecon.sync_runs WHERE id > %s AND integration_id = %s ORDER BY id",
                              (runs_before, iid))
            if task["status"] == "succeeded":
                self.assertEqual([r["status"] for r in new_runs], ["succeeded"], what)
                continue
            failed.append(iid)
            self.assertEqual(task["status"], "failed", "%s: %r" % (what, task))
            self.assertRegex(task["error"] or "", "interrupted", what)
            self.assertIsNotNone(task["sync_run_id"], "%s: the interrupted task has a sync run: %r" % (what, task))
            self.assertEqual([(r["id"], r["status"]) for r in new_runs], [(task["sync_run_id"], "failed")], what)
            self.assertRegex(new_runs[0]["error"], "interrupted", what)
            self.assertIsNotNone(new_runs[0]["finished_at"], what)
            self.assertEqual(self.q("SELECT level, message FROM billrecon.sync_run_messages WHERE run_id = %s",
                                    (task["sync_run_id"],)), [{"level": "error", "message": new_runs[0]["error"]}])
            status = self.one("SELECT h.status, h.last_run_id FROM billrecon.integration_status h "
                              "JOIN billrecon.integrations i ON i.name = h.integration WHERE i.id = %s", (iid,))
            self.assertEqual((status["status"], status["last_run_id"]), ("red", task["sync_run_id"]),
                             "%s: the integration shows the interrupted sync" % what)
            mine = self.integration_state(iid)
            mine["sync_runs"] = [r for r in mine["sync_runs"] if r["id"] <= runs_before]
            self.assert_same_state(before_of[iid], mine, what)
        if len(failed) == len(tasks):
            self.assert_same_state(before, self.state(exclude=JOB_TABLES), what)
        return "%d/%d task(s) and run(s) marked failed, data as before" % (len(failed), len(tasks))

    def kill_reconcile(self, sig):
        for _ in range(MAX_TRIES):
            delay = self.rng.uniform(0.0, 0.9) * self.reconcile_s
            point = "%d ms of ~%d ms" % (delay * 1000, self.reconcile_s * 1000)
            before = self.state()
            runs_before = self.scalar("SELECT coalesce(max(id), 0) FROM billrecon.reconcile_runs")
            call = Call("SELECT billrecon.reconcile()")
            call.start()
            t0 = time.time()
            deadline = t0 + 10
            while call.is_alive() and not self.scalar(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND state = 'active'", (call.pid,)):
                self.assertLess(time.time(), deadline)
                time.sleep(0.001)
            time.sleep(max(0.0, delay - (time.time() - t0)))
            hit = call.is_alive()
            hit = hit and self.kill(call.pid, sig)
            self.after_kill(sig if hit else None, call)
            what = "reconcile killed at %s (%s)" % (point, SIGNAL_NAMES[sig])
            self.assert_nothing_left_running(what)
            if call.error is None:
                run = self.one("SELECT * FROM billrecon.reconcile_runs WHERE id > %s", (runs_before,))
                self.assertEqual(run["line_count"], self.scalar(
                    "SELECT count(*) FROM billrecon.reconcile_results WHERE run_id = %s", (run["id"],)), what)
                self.record("reconcile", point, sig, "finished first: whole run")
                continue
            self.assertTrue(hit, "reconcile failed without a kill: %s" % call.error)
            self.assert_same_state(before, self.state(), what)
            self.record("reconcile", point, sig, "interrupted; rolled back whole")
            return True
        return False

    def kill_push(self, sig):
        for _ in range(MAX_TRIES):
            cards = self.free_cards[:CARDS_PER_PUSH]
            del self.free_cards[:CARDS_PER_PUSH]
            self.assertEqual(len(cards), CARDS_PER_PUSH, "enough plain quantity cards for every push")
            ids = [c["card_id"] for c in cards]
            self.assertEqual(self.scalar("SELECT billrecon.approve(%s::bigint[], effective_date => current_date)",
                                         (ids,)), len(ids))
            self.pushed.extend(cards)
            total = 5 * CARDS_PER_PUSH      # ConnectWise: about five requests per card
            n = self.rng.randint(1, total)
            jitter = self.rng.randint(0, int(DELAY_S * 1500))
            point = "request %d/~%d +%d ms" % (n, total, jitter)
            what = "push killed at %s (%s)" % (point, SIGNAL_NAMES[sig])
            before = self.state()
            self.slow(self.cw)
            call = Call("SELECT * FROM billrecon.push_changes()")
            call.start()
            hit = self.aim(call.is_alive, self.cw, n, jitter)
            hit = hit and self.kill(call.pid, sig)
            self.after_kill(sig if hit else None, call)
            self.settle(self.cw)
            self.assert_nothing_left_running(what)
            first = self.writes()
            self.assert_at_most_once(cards, first, what)
            if call.error is None:
                self.assertEqual(sorted(r["card_id"] for r in call.rows), ids, what)
                self.assertEqual({r["status"] for r in call.rows}, {"pushed"}, what)
                self.assert_exactly_once(cards, first, what)
                self.record("push", point, sig, "finished first: all pushed once")
                continue
            self.assertTrue(hit, "push failed without a kill: %s" % call.error)
            self.assert_same_state(before, self.state(), what)
            applied = [c["card_id"] for c in cards if len(self.card_writes(first, c)) == 2]
            half = [c["card_id"] for c in cards if len(self.card_writes(first, c)) == 1]
            # push_changes() again: every card pushed, only what was missing written.
            self.cw.ctl("DELETE", "requests")
            rows = {r["card_id"]: r for r in self.q("SELECT * FROM billrecon.push_changes()")}
            self.assertEqual(sorted(rows), ids, "%s: the retry pushes exactly the round's cards" % what)
            for c in cards:
                r = rows[c["card_id"]]
                self.assertEqual((r["status"], r["quantity_after"]), ("pushed", c["proposed_qty"]), "%s: %r" % (what, r))
                if c["card_id"] in applied:
                    self.assertRegex(r["note"], r"(?i)already|nothing sent", what)
                self.assertEqual([(a["attempt"], a["status"]) for a in self.q(
                    "SELECT * FROM billrecon.change_card_pushes WHERE card_id = %s ORDER BY attempt",
                    (c["card_id"],))], [(1, "pushed")], "%s: the killed attempt left no trace" % what)
            self.assert_exactly_once(cards, first + self.writes(), what)
            self.record("push", point, sig, "interrupted; rolled back; PSA had %d/%d%s; retry wrote the rest once"
                        % (len(applied), len(cards), " (+%d half)" % len(half) if half else ""))
            return True
        return False

    # -- the PSA's record of writes ----------------------------------------------------------
    def writes(self):
        return [r for r in self.cw.requests() if r["method"] in ("POST", "PATCH", "PUT", "DELETE")]

    def card_writes(self, writes, card):
        """ConnectWise writes of a card: the cancel of its addition (PATCH) and
        the new dated addition of its product (POST)."""
        out = []
        for w in writes:
            body = w.get("body")
            if w["method"] == "PATCH" and w["path"].endswith("/additions/%s" % card["line_item_id"]):
                out.append(w)
            elif (w["method"] == "POST" and w["path"].endswith("/agreements/%s/additions" % card["agreement_id"])
                  and isinstance(body, dict) and str((body.get("product") or {}).get("id")) == card["cw_product"]):
                out.append(w)
        return out

    def assert_at_most_once(self, cards, writes, what):
        for c in cards:
            mine = self.card_writes(writes, c)
            self.assertLessEqual(sorted(w["method"] for w in mine), ["PATCH", "POST"][:len(mine)], what)
            self.assertEqual(len(mine), len({w["method"] for w in mine}),
                             "%s: card %s written twice: %r" % (what, c["card_id"], mine))
        mine = sum(len(self.card_writes(writes, c)) for c in cards)
        self.assertEqual(len(writes), mine, "%s: nothing but the round's cards written: %r" % (what, writes))

    def assert_exactly_once(self, cards, writes, what):
        for c in cards:
            mine = sorted(w["method"] for w in self.card_writes(writes, c))
            self.assertEqual(mine, ["PATCH", "POST"], "%s: card %s: one cancel, one new addition in all: %r"
                             % (what, c["card_id"], self.card_writes(writes, c)))
        self.assertEqual(len(writes), 2 * len(cards), "%s: nothing else written" % what)

    def billed_on(self, card):
        return self.scalar(
            """SELECT coalesce(sum(l.quantity), 0)
                 FROM billrecon.psa_line_items l JOIN billrecon.psa_agreements a ON a.id = l.agreement_id
                WHERE l.integration_id = %s AND a.external_id = %s AND l.removed_at IS NULL
                  AND coalesce(l.product_code, l.product_name) = %s
                  AND (l.effective_date IS NULL OR l.effective_date <= %s)
                  AND (l.cancel_date IS NULL OR l.cancel_date >= %s)""",
            (self.psa_id, card["agreement_id"], card["product"], self.today, self.today))

    def plain_cards(self):
        """Pending quantity cards without flags, one per (agreement, product)."""
        rows = self.q("""SELECT c.* FROM billrecon.change_cards c JOIN billrecon.proposed_changes p ON p.id = c.card_id
                          WHERE p.psa_integration_id = %s AND c.kind = 'quantity' AND c.status = 'pending'
                            AND cardinality(c.flags) = 0 ORDER BY c.card_id""", (self.psa_id,))
        out, seen = [], set()
        for r in rows:
            key = (r["agreement_id"], r["product"])
            if key in seen:
                continue
            seen.add(key)
            r["cw_product"] = str(self.cw.ctl("GET", "data/additions?id=%s" % r["line_item_id"])[0]["product"]["id"])
            r["billed_before"] = self.billed_on(r)
            out.append(r)
        return out

    # =========================================================================================
    def test_crash_loop(self):
        t0 = self.last_t = time.time()
        print("  %-3s %-14s %-24s %-7s %6s  %s" % ("#", "target", "point", "signal", "time", "outcome"))
        kinds = []
        for target, n in PLAN.items():
            sigs = ([signal.SIGKILL, signal.SIGTERM] * 2)[:n] + [self.rng.choice([signal.SIGKILL, signal.SIGTERM,
                                                                             signal.SIGTERM])
                                                           for _ in range(n - 4)]
            self.rng.shuffle(sigs)
            kinds.append([(target, s) for s in sigs])

        # 1. Syncs, foreground and background, interleaved.
        syncs = kinds[0] + kinds[1]
        self.rng.shuffle(syncs)
        for target, sig in syncs:
            self.assertTrue(self.kill_sync(target == "sync_async", sig),
                            "%s kept finishing before its kill" % target)

        # 2. Reconciles.
        self.map_clients()
        t = time.time()
        self.assertTrue(self.scalar("SELECT billrecon.reconcile()"))
        self.reconcile_s = max(time.time() - t, 0.05)
        for target, sig in kinds[2]:
            self.assertTrue(self.kill_reconcile(sig), "reconcile kept finishing before its kill")
        run = self.scalar("SELECT billrecon.reconcile()")

        # 3. Pushes. More cards first: lines that reconcile without variance
        # get another quantity in the PSA, so the next run proposes to fix them.
        for r in self.q("""SELECT DISTINCT line_item_external_id FROM billrecon.reconcile_results
                            WHERE run_id = %s AND state = 'reconciled' AND variance = 0
                              AND line_item_external_id IS NOT NULL ORDER BY 1""", (run,)):
            addition = self.cw.ctl("GET", "data/additions?id=%s" % r["line_item_external_id"])[0]
            self.cw.mutate(entity="addition", id=int(r["line_item_external_id"]),
                           set={"quantity": addition["quantity"] + self.rng.randint(1, 5)})
        self.assert_succeeded(self.sync(self.psa, "full"))
        run = self.scalar("SELECT billrecon.reconcile()")
        self.free_cards = self.plain_cards()
        self.pushed = []
        for target, sig in kinds[3]:
            self.assertTrue(self.kill_push(sig))
        # What the PSA bills now: every pushed quantity, applied once.
        self.assert_succeeded(self.sync(self.psa, "full"))
        for c in self.pushed:
            self.assertEqual(self.billed_on(c), c["billed_before"] + c["delta"],
                             "card %s: agreement %s bills %s once" % (c["card_id"], c["agreement_id"], c["product"]))
        self.assert_nothing_left_running("at the end")
        self.assertTrue(run)

        interrupted = [k for k in self.kills if k[4].startswith("interrupted")]
        by_target = {}
        for k in interrupted:
            by_target[k[0].split()[0]] = by_target.get(k[0].split()[0], 0) + 1
        print("\ncrash loop, seed %d: %d kills, %d interrupted a call (%s), %.0f s" % (
            self.seed, len(self.kills), len(interrupted),
            ", ".join("%s %d" % kv for kv in sorted(by_target.items())), time.time() - t0))
        self.assertGreaterEqual(len(interrupted), 20)
        self.assertGreaterEqual(by_target.get("sync", 0) + by_target.get("sync_async", 0), 8)
        self.assertGreaterEqual(by_target.get("reconcile", 0), 6)
        self.assertGreaterEqual(by_target.get("push", 0), 6)
        self.assertGreaterEqual(sum(1 for k in interrupted if k[2] == "SIGKILL"), 6)
