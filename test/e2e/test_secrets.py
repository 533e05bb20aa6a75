"""Secrets (issue 8, docs/security.md): a credential is readable by
billrecon_admin alone, and no view, table, sync-run row, audit entry, error,
NOTICE, server log line or pg_stat_activity query text produced by billrecon
shows one.

Every secret here is distinctive: it carries a random tag that appears nowhere
else, so finding the tag anywhere (the whole secret, a truncated piece of it)
is a leak. For ConnectWise the Basic authorization value (base64 of
company+public:private) is searched too, and for NinjaOne the bearer tokens
the mock issues (mock-<32 characters>), which are secrets as well.

The mocks are configured to accept the distinctive "good" secrets; the "bad"
integrations hold another distinctive secret and fail on 401."""

import base64
import collections
import json
import os
import re
import threading
import time
import uuid

import psycopg2

from e2e_lib import CW_CREDS, DB_NAME, NJ_CREDS, E2ETestCase, connect

NOBODY = DB_NAME + "_nobody"        # a role with no grants: what PUBLIC may do
ROLES = ("billrecon_reader", "billrecon_operator", "billrecon_admin")
FINISHED = ("succeeded", "failed", "cancelled")
BEARER = re.compile(r"mock-[A-Za-z0-9_-]{32}")


def rows_text(conn, sql, params=None):
    """The rows of a query, each as one text (record output: every column)."""
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return [r[0] for r in cur.fetchall()]


def error_text(e):
    """Everything an error carries to the client."""
    d = e.diag
    return "\n".join(str(x) for x in (e.pgerror, d.message_primary, d.message_detail, d.message_hint,
                                         d.context, d.internal_query) if x)


class SecretsTest(E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with cls.conn.cursor() as cur:
            # Background workers read the database's settings, not this session's.
            cur.execute("ALTER DATABASE %s SET billrecon.allow_http = on" % DB_NAME)
            cur.execute("DROP ROLE IF EXISTS %s" % NOBODY)
            cur.execute("CREATE ROLE %s NOLOGIN" % NOBODY)

    @classmethod
    def tearDownClass(cls):
        with cls.conn.cursor() as cur:
            cur.execute("ALTER DATABASE %s RESET billrecon.allow_http" % DB_NAME)
            cur.execute("DROP ROLE IF EXISTS %s" % NOBODY)
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.log_path = os.environ.get("BILLRECON_PG_LOG")
        if not self.log_path or not os.path.exists(self.log_path):
            self.fail("BILLRECON_PG_LOG does not name the server log: the log cannot be checked for secrets")
        self.log_offset = os.path.getsize(self.log_path)
        self.tag = uuid.uuid4().hex[:20]
        self.secret = {
            "cw_good": "cwPriv-%s-good" % self.tag, "nj_good": "njSecret-%s-good" % self.tag,
            "cw_bad": "cwPriv-%s-wrong" % self.tag, "nj_bad": "njSecret-%s-wrong" % self.tag,
        }
        # The mocks accept the good secrets (setUp of the next test resets them).
        self.cw.config(private_key=self.secret["cw_good"])
        self.nj.config(client_secret=self.secret["nj_good"])
        self.addCleanup(self.mocks.reset)
        self.needles = [self.tag] + list(self.secret.values())
        for key in ("cw_good", "cw_bad"):
            basic = "%s+%s:%s" % (CW_CREDS["company_id"], CW_CREDS["public_key"], self.secret[key])
            self.needles.append(base64.b64encode(basic.encode()).decode())
        self.sessions = []

    def tearDown(self):
        for c in self.sessions:
            c.close()
        # Background workers leave after 2 s idle; the next test starts without ours.
        deadline = time.time() + 15
        while self.scalar("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'billrecon sync worker' "
                          "AND datname = current_database()") and time.time() < deadline:
            time.sleep(0.1)
        super().tearDown()

    # -- helpers -----------------------------------------------------------------------
    def session(self, role=None, debug=False):
        """A second connection, acting as `role`; with debug, PostgreSQL logs and
        sends everything down to DEBUG1 (a DBA turning logging up must not see
        secrets either)."""
        c = connect()
        c.notices = collections.deque()
        with c.cursor() as cur:
            if debug:
                cur.execute("SET log_min_messages = debug1")
                cur.execute("SET client_min_messages = debug1")
            if role:
                cur.execute("SET ROLE %s" % role)
        self.sessions.append(c)
        return c

    def leaks(self, where, texts):
        """[(where, needle, excerpt)] for every needle found in texts."""
        found = []
        for t in texts:
            t = t if isinstance(t, str) else json.dumps(t, default=str)
            for n in self.needles:
                i = t.find(n)
                if i >= 0:
                    found.append((where, n, t[max(0, i - 80):i + len(n) + 40]))
            m = BEARER.search(t)
            if m:
                found.append((where, "bearer token", t[max(0, m.start() - 80):m.end() + 20]))
        return found

    def assert_no_leaks(self, found):
        unique = list(dict.fromkeys(found))
        if unique:
            self.fail("%d secret(s) found:\n%s" % (len(unique), "\n".join("  %s: %r in ...%s..." % f
                                                                          for f in unique[:20])))

    def server_log(self):
        with open(self.log_path, "rb") as f:
            f.seek(self.log_offset)
            return f.read().decode("utf-8", "replace")

    def add_secret_integrations(self):
        """Four integrations: ConnectWise and NinjaOne, each with the good and a
        wrong distinctive secret. Returns {key: (name, id)}."""
        made = {}
        for key, kind, creds in (("cw_good", "connectwise", dict(CW_CREDS, private_key=self.secret["cw_good"])),
                                 ("nj_good", "ninjaone", dict(NJ_CREDS, client_secret=self.secret["nj_good"])),
                                 ("cw_bad", "connectwise", dict(CW_CREDS, private_key=self.secret["cw_bad"])),
                                 ("nj_bad", "ninjaone", dict(NJ_CREDS, client_secret=self.secret["nj_bad"]))):
            made[key] = self.add(kind, name=self.unique_name("sec-" + key.replace("_", "-")), creds=creds)
            # Gone afterwards: later tests that sync every enabled integration must not meet them.
            self.addCleanup(self.execute, "SELECT billrecon.drop_integration(name) FROM billrecon.integrations "
                                          "WHERE name = %s", (made[key][0],))
        # The secrets are really stored: otherwise "absent everywhere" proves nothing.
        stored = json.dumps(self.q("SELECT credentials FROM billrecon.integration_credentials WHERE integration_id "
                                   "= ANY (%s)", ([iid for _, iid in made.values()],)))
        for s in self.secret.values():
            self.assertIn(s, stored)
        self.execute("SELECT 1")   # this session's last query text no longer holds a secret
        return made

    def sync_all(self, made):
        """Syncs the four as billrecon_operator (with logging at DEBUG1) and the two
        bad ones once more in the background; returns what the client saw."""
        op = self.session("billrecon_operator", debug=True)
        seen = []
        runs = {}
        with op.cursor() as cur:
            for key, (name, _) in made.items():
                cur.execute("SELECT * FROM billrecon.sync(%s, 'full')", (name,))
                cols = [d[0] for d in cur.description]
                row = dict(zip(cols, cur.fetchone()))
                runs[key] = row
                seen.append(row)
        for key in ("cw_good", "nj_good"):
            self.assertEqual(runs[key]["status"], "succeeded", "%s: %r" % (key, runs[key]))
        for key in ("cw_bad", "nj_bad"):
            self.assertEqual(runs[key]["status"], "failed", "%s: %r" % (key, runs[key]))
            self.assertRegex(runs[key]["error"] or "", re.compile(r"401|authenticat|unauthori|credential|"
                                                                  r"invalid_client", re.I))
        # The background path: the worker records the outcome in sync_job_tasks.
        with op.cursor() as cur:
            cur.execute("SELECT billrecon.sync_async(%s, 'full'), billrecon.sync_async(%s, 'full')",
                        (made["cw_bad"][0], made["nj_bad"][0]))
            jobs = list(cur.fetchone())
        deadline = time.time() + 60
        while True:
            tasks = self.q("SELECT * FROM billrecon.sync_jobs WHERE job_id = ANY (%s)", (jobs,))
            if tasks and all(t["status"] in FINISHED for t in tasks):
                break
            if time.time() > deadline:
                self.fail("background syncs did not finish: %r" % tasks)
            time.sleep(0.05)
        self.assertEqual(sorted(t["status"] for t in tasks), ["failed", "failed"], tasks)
        seen.extend(tasks)
        seen.extend(op.notices)
        return seen

    # -- (a) who can read credentials ------------------------------------------------
    def test_credentials_unreadable_but_by_the_admin(self):
        made = self.add_secret_integrations()
        for role in ("billrecon_reader", "billrecon_operator", NOBODY):
            c = self.session(role)
            for sql in ("SELECT * FROM billrecon.integration_credentials",
                        "SELECT credentials FROM billrecon.integration_credentials",
                        "SELECT count(*) FROM billrecon.integration_credentials",
                        "SELECT credentials->>'private_key' FROM billrecon.integration_credentials "
                        "WHERE integration_id = %d" % made["cw_good"][1]):
                with self.subTest(role=role, sql=sql):
                    with self.assertRaises(psycopg2.Error) as cm, c.cursor() as cur:
                        cur.execute(sql)
                    self.assertEqual(cm.exception.pgcode, "42501", error_text(cm.exception))
                    self.assert_no_leaks(self.leaks("error to %s" % role, [error_text(cm.exception)]))
        admin = self.session("billrecon_admin")
        with admin.cursor() as cur:
            cur.execute("SELECT credentials->>'private_key' FROM billrecon.integration_credentials "
                        "WHERE integration_id = %s", (made["cw_good"][1],))
            self.assertEqual(cur.fetchone()[0], self.secret["cw_good"], "the admin reads credentials")

    def test_no_view_shows_a_secret_to_any_role(self):
        made = self.add_secret_integrations()
        self.sync_all(made)
        views = [r["v"] for r in self.q("SELECT c.relname AS v FROM pg_class c WHERE c.relnamespace = "
                                         "'billrecon'::regnamespace AND c.relkind IN ('v', 'm') ORDER BY 1")]
        self.assertGreater(len(views), 20)
        found = []
        # The extension owner sees every view (the internal ones too).
        for v in views:
            found += self.leaks("view %s (superuser)" % v, rows_text(self.conn, "SELECT t::text FROM billrecon.%s t" % v))
        read_as = {}
        for role in ROLES:
            c = self.session(role)
            readable = [v for v in views if self.scalar("SELECT has_table_privilege(%s, %s, 'SELECT')",
                                                        (role, "billrecon." + v))]
            read_as[role] = len(readable)
            for v in readable:
                try:
                    texts = rows_text(c, "SELECT t::text FROM billrecon.%s t" % v)
                except psycopg2.errors.InsufficientPrivilege:
                    # Granted but unusable (a helper function not granted): the roles
                    # matrix (test/pgtap/020_role_matrix.sql) reports it; the
                    # superuser pass above has read the rows.
                    continue
                found += self.leaks("view %s as %s" % (v, role), texts)
        self.assertGreater(read_as["billrecon_reader"], 20, "the reader reads the report views")
        # The integrations' status really shows the failures (the views were not empty).
        st = self.q("SELECT integration, status, last_error FROM billrecon.integration_status WHERE integration = "
                    "ANY (%s)", ([made[k][0] for k in ("cw_bad", "nj_bad")],))
        self.assertEqual(len(st), 2)
        self.assertTrue(all(r["status"] == "red" and r["last_error"] for r in st), st)
        self.assert_no_leaks(found)

    # -- (b) syncs, failed and succeeded ------------------------------------------------
    def test_syncs_leave_no_secret_in_runs_audit_errors_or_log(self):
        made = self.add_secret_integrations()
        seen = self.sync_all(made)
        ids = [iid for _, iid in made.values()]
        found = self.leaks("what sync()/sync_async() returned, NOTICEs", seen)
        found += self.leaks("sync_runs", rows_text(self.conn, "SELECT r::text FROM billrecon.sync_runs r "
                                                              "WHERE integration_id = ANY (%s)", (ids,)))
        found += self.leaks("sync_run_messages", rows_text(
            self.conn, "SELECT m::text FROM billrecon.sync_run_messages m JOIN billrecon.sync_runs r ON r.id = m.run_id "
                       "WHERE r.integration_id = ANY (%s)", (ids,)))
        found += self.leaks("audit_log", rows_text(self.conn, "SELECT a::text FROM billrecon.audit_log a"))
        # Every other table of the schema, staging and the job queue included.
        tables = [r["t"] for r in self.q("SELECT c.relname AS t FROM pg_class c WHERE c.relnamespace = "
                                          "'billrecon'::regnamespace AND c.relkind IN ('r', 'p') "
                                          "AND c.relname <> 'integration_credentials' ORDER BY 1")]
        for t in tables:
            found += self.leaks("table %s" % t, rows_text(self.conn, "SELECT t::text FROM billrecon.%s t" % t))
        found += self.leaks("server log", self.server_log().splitlines())
        self.assert_no_leaks(found)
        # Credentials are audited as key names only.
        audit = self.q("SELECT action, before, after FROM billrecon.audit_log WHERE object = 'integration_credentials' "
                       "AND object_id = ANY (%s) ORDER BY id", ([str(i) for i in ids],))
        self.assertEqual(len(audit), 4, "one insert per integration")
        for a in audit:
            self.assertNotIn("credentials", a["after"])
            self.assertIn(a["after"]["credential_keys"], (sorted(CW_CREDS), sorted(NJ_CREDS)))

    def test_credential_changes_audited_as_key_names_only(self):
        made = self.add_secret_integrations()
        name, iid = made["cw_good"]
        rotated = "cwPriv-%s-rotated" % self.tag
        self.needles.append(rotated)
        admin = self.session("billrecon_admin")
        with admin.cursor() as cur:
            cur.execute("SELECT billrecon.update_integration(%s, credentials => %s::jsonb)",
                        (name, json.dumps(dict(CW_CREDS, private_key=rotated))))
            cur.execute("SELECT billrecon.drop_integration(%s)", (name,))
        audit = self.q("SELECT action, changed, before, after FROM billrecon.audit_log "
                       "WHERE object = 'integration_credentials' AND object_id = %s ORDER BY id", (str(iid),))
        self.assertEqual([a["action"] for a in audit], ["insert", "update", "delete"])
        self.assertEqual(audit[1]["changed"], ["credentials"], "a rotation is visible as such")
        for a in audit:
            for side in ("before", "after"):
                if a[side] is not None:
                    self.assertNotIn("credentials", a[side])
                    self.assertEqual(a[side]["credential_keys"], sorted(CW_CREDS))
        self.assert_no_leaks(self.leaks("audit_log", [audit]) + self.leaks("server log", self.server_log().splitlines()))

    def test_no_secret_in_pg_stat_activity_while_syncs_run(self):
        made = self.add_secret_integrations()
        name = made["nj_good"][0]
        # Each device page waits a second: the sync stays in flight long enough to be watched.
        self.nj.fault(match=r"/v2/devices", kind="slow", delay_s=1.0, times=2)
        op = self.session("billrecon_operator")
        op_pid = op.get_backend_pid()
        result = {}

        def run():
            try:
                with op.cursor() as cur:
                    cur.execute("SELECT status FROM billrecon.sync(%s, 'full')", (name,))
                    result["status"] = cur.fetchone()[0]
            except Exception as e:  # noqa: BLE001 - reported below
                result["error"] = e

        found, saw_sync, saw_worker = [], False, False
        t = threading.Thread(target=run)
        t.start()
        while t.is_alive():
            for r in self.q("SELECT pid, backend_type, state, query FROM pg_stat_activity WHERE pid <> pg_backend_pid()"):
                found += self.leaks("pg_stat_activity pid %s (%s)" % (r["pid"], r["backend_type"]), [r["query"] or ""])
                if r["pid"] == op_pid and r["state"] == "active" and "billrecon.sync(" in (r["query"] or ""):
                    saw_sync = True
            time.sleep(0.02)
        t.join()
        self.assertNotIn("error", result)
        self.assertEqual(result.get("status"), "succeeded")
        self.assertTrue(saw_sync, "the sync's own session was seen running in pg_stat_activity")
        # The same in the background: the worker's session.
        self.nj.fault(match=r"/v2/devices", kind="slow", delay_s=1.0, times=2)
        with op.cursor() as cur:
            cur.execute("SELECT billrecon.sync_async(%s, 'full')", (name,))
            job = cur.fetchone()[0]
        deadline = time.time() + 60
        while True:
            for r in self.q("SELECT pid, backend_type, state, query FROM pg_stat_activity WHERE pid <> pg_backend_pid()"):
                found += self.leaks("pg_stat_activity pid %s (%s)" % (r["pid"], r["backend_type"]), [r["query"] or ""])
                if r["backend_type"] == "billrecon sync worker" and r["state"] == "active":
                    saw_worker = True
            tasks = self.q("SELECT status FROM billrecon.sync_jobs WHERE job_id = %s", (job,))
            if tasks and all(x["status"] in FINISHED for x in tasks):
                break
            if time.time() > deadline:
                self.fail("background sync did not finish: %r" % tasks)
            time.sleep(0.02)
        self.assertEqual([x["status"] for x in tasks], ["succeeded"])
        self.assertTrue(saw_worker, "the background worker was seen running in pg_stat_activity")
        self.assert_no_leaks(found)

    # -- (c) a secret in a URL ---------------------------------------------------------
    def test_secret_in_a_url_is_refused_without_echo(self):
        s = "urlSecret-%s" % self.tag
        nj_url = self.mocks.nj_base_url
        host_port = nj_url.split("://", 1)[1]
        cases = [
            ("connectwise", "https://cwuser:%s@api-na.myconnectwise.net/v4_6_release/apis/3.0" % s, CW_CREDS, {}),
            ("connectwise", "http://cwuser:%s@%s/v4_6_release/apis/3.0" % (s, host_port), CW_CREDS, {}),
            ("ninjaone", "https://%s@app.ninjarmm.com" % s, NJ_CREDS, {}),
            ("ninjaone", "https://user:%s@app.ninjarmm.com/" % s, NJ_CREDS, {}),
            ("ninjaone", nj_url, NJ_CREDS, {"token_url": "https://user:%s@app.ninjarmm.com/ws/oauth/token" % s}),
        ]
        admin = self.session("billrecon_admin")
        for kind, url, creds, options in cases:
            name = self.unique_name("sec-url")
            with self.subTest(kind=kind, url=url, options=options):
                with self.assertRaises(psycopg2.Error) as cm, admin.cursor() as cur:
                    cur.execute("SELECT billrecon.add_integration(%s, %s, %s, %s::jsonb, %s::jsonb)",
                                (name, kind, url, json.dumps(creds), json.dumps(options)))
                self.assertEqual(cm.exception.pgcode, "22023", error_text(cm.exception))
                self.assertRegex(error_text(cm.exception), re.compile(r"user name or password|credentials", re.I),
                                 "the error says why")
                self.assert_no_leaks(self.leaks("add_integration error", [error_text(cm.exception)]))
                self.assertEqual(self.scalar("SELECT count(*) FROM billrecon.integrations WHERE name = %s", (name,)), 0)
        # update_integration refuses it the same way and changes nothing.
        name, iid = self.add("ninjaone", name=self.unique_name("sec-url-upd"))
        before = self.one("SELECT base_url, options FROM billrecon.integrations WHERE id = %s", (iid,))
        for args in ({"base_url": "https://user:%s@app.ninjarmm.com" % s},
                     {"options": json.dumps({"token_url": "https://user:%s@app.ninjarmm.com/ws/oauth/token" % s})}):
            with self.subTest(update=args):
                with self.assertRaises(psycopg2.Error) as cm, admin.cursor() as cur:
                    cur.execute("SELECT billrecon.update_integration(%s, base_url => %s, options => %s::jsonb)",
                                (name, args.get("base_url"), args.get("options")))
                self.assertEqual(cm.exception.pgcode, "22023", error_text(cm.exception))
                self.assert_no_leaks(self.leaks("update_integration error", [error_text(cm.exception)]))
        self.assertEqual(self.one("SELECT base_url, options FROM billrecon.integrations WHERE id = %s", (iid,)), before)
        # The server log: billrecon's lines (ERROR, DETAIL, HINT) hold no secret. The
        # STATEMENT lines are PostgreSQL echoing the caller's own SQL text
        # (log_min_error_statement), literal secret included: docs/security.md.
        own = [line for line in self.server_log().splitlines() if " STATEMENT: " not in line]
        self.assert_no_leaks(self.leaks("server log", own))
