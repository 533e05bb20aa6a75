"""Shared machinery of the end-to-end tests: the mock servers (a server.py
subprocess), the database (psycopg2 with libpq's PG* environment), the
generator's view of the same dataset, and a TestCase base class."""

import calendar
import datetime
import decimal
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
MOCK_DIR = os.path.join(os.path.dirname(HERE), "mock_api")
if MOCK_DIR not in sys.path:
    sys.path.insert(0, MOCK_DIR)

import msp_generator  # noqa: E402

try:
    import psycopg2
    import psycopg2.extras
except ImportError:  # Debian's python3-psycopg2 lives outside pyenv's path
    sys.path.append("/usr/lib/python3/dist-packages")
    import psycopg2
    import psycopg2.extras

DB_NAME = "billrecon_e2e"
# Another name keeps parallel runs (two engineers, one cluster) apart.
DB_NAME = os.environ.get("BILLRECON_E2E_DB") or DB_NAME
SEED = 44
CLIENTS = 10
CW_PAGE = 4          # small pages so every list spans several of them
NJ_PAGE = 40
CW_PREFIX = "/v4_6_release/apis/3.0"
CW_CREDS = {"company_id": "billrecon", "public_key": "pubkey", "private_key": "privkey",
            "client_id": "00000000-0000-4000-8000-000000000001"}
NJ_CREDS = {"client_id": "billrecon-ninja-client", "client_secret": "billrecon-ninja-secret"}
# Fast retries so fault tests stay quick; each test may override.
BASE_OPTIONS = {"max_retries": 2, "retry_base_delay_ms": 20, "retry_max_delay_ms": 200, "timeout_ms": 5000,
                "connect_timeout_ms": 2000}
# The other kinds, against their mocks (the mocks' default credentials).
HALO_CREDS = {"client_id": "billrecon-halo-client", "client_secret": "billrecon-halo-secret"}
AT_CREDS = {"integration_code": "BILLRECON-AT-TRACKING", "username": "billrecon-api@example.com",
            "secret": "billrecon-at-secret"}
PAX8_CREDS = {"client_id": "billrecon-pax8-client", "client_secret": "billrecon-pax8-secret"}
GRAPH_APP = {"client_id": "billrecon-graph-app", "client_secret": "billrecon-graph-secret"}
PC_APP = {"client_id": "billrecon-pc-app", "client_secret": "billrecon-pc-secret"}
DATTO_CREDS = {"api_key": "billrecon-datto-key", "api_secret": "billrecon-datto-secret"}
# Small pages so that every list spans several of them.
KIND_PAGE = {"connectwise": CW_PAGE, "ninjaone": NJ_PAGE, "halopsa": 4, "autotask": 5, "pax8": 2,
             "partnercenter": 1, "dattormm": 10}
# Mock vendor name and Mocks attribute of each kind.
KIND_MOCK = {"connectwise": "cw", "ninjaone": "nj", "halopsa": "halo", "autotask": "at", "pax8": "pax8",
             "msgraph": "graph", "partnercenter": "pc", "dattormm": "datto"}
MOCK_VENDORS = ("connectwise", "ninjaone", "halopsa", "autotask", "pax8", "msgraph", "partnercenter", "dattormm")


def base_epoch():
    """2026-11-01T00:00:00Z, unless the machine's clock is not well past it:
    generated lastUpdated values must lie before any real sync time."""
    default = msp_generator.DEFAULT_BASE_EPOCH
    now = time.time()
    if now - default > 3 * 86400:
        return default
    t = time.gmtime(now - 30 * 86400)
    return calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0))


# ---------------------------------------------------------------------------
# Mock servers

class MockVendor:
    def __init__(self, name, port):
        self.name = name
        self.port = port
        self.url = "http://127.0.0.1:%d" % port

    def ctl(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + "/_mock/" + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read().decode() or "null")
        except urllib.error.HTTPError as e:
            raise AssertionError("mock control %s %s: HTTP %d %s" % (method, path, e.code, e.read()[:300]))

    def reset(self):
        return self.ctl("POST", "reset")

    def fault(self, **spec):
        return self.ctl("POST", "faults", {"faults": [spec]})

    def requests(self, path=None, method=None):
        q = {}
        if path:
            q["path"] = path
        if method:
            q["method"] = method
        return self.ctl("GET", "requests" + ("?" + urllib.parse.urlencode(q) if q else ""))

    def mutate(self, **change):
        return self.ctl("POST", "mutate", change)["results"][0]

    def clock(self, **body):
        return self.ctl("POST", "clock", body)

    def config(self, **kv):
        return self.ctl("POST", "config", kv)


class Mocks:
    def __init__(self, seed=SEED, clients=CLIENTS):
        self.seed = seed
        self.clients = clients
        self.base = base_epoch()
        self.proc = None

    def start(self):
        self.tmp = tempfile.mkdtemp(prefix="billrecon-e2e-")
        port_file = os.path.join(self.tmp, "ports.json")
        self.log_path = os.path.join(self.tmp, "mock.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(MOCK_DIR, "server.py"), "--seed", str(self.seed), "--clients",
             str(self.clients), "--base-epoch", str(self.base), "--vendors", ",".join(MOCK_VENDORS),
             "--port-file", port_file],
            stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("mock servers did not start; see %s" % self.log_path)
            time.sleep(0.05)
        with open(port_file) as f:
            ports = json.load(f)
        self.vendors = {}
        for vendor, attr in ((v, KIND_MOCK[v]) for v in MOCK_VENDORS):
            self.vendors[vendor] = MockVendor(vendor, ports[vendor])
            setattr(self, attr, self.vendors[vendor])
        for v in self.vendors.values():
            while True:
                try:
                    if v.ctl("GET", "health")["status"] == "ok":
                        break
                except (OSError, AssertionError):
                    if time.time() > deadline:
                        raise
                    time.sleep(0.05)
        self.ds = msp_generator.generate(self.seed, self.clients, self.base)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def reset(self):
        for v in self.vendors.values():
            v.reset()

    @property
    def cw_base_url(self):
        return self.cw.url + CW_PREFIX

    @property
    def nj_base_url(self):
        return self.nj.url

    def client_tenants(self):
        """The customer tenants of the dataset (the MSP's own partner tenant left out)."""
        return [t.id for t in self.ds.ms_tenants if t.client >= 0]

    def integration(self, kind):
        """(base_url, credentials, options) of an integration of this kind against its mock."""
        partner = self.ds.ground_truth["partner_tenant_id"]
        if kind == "connectwise":
            return self.cw_base_url, CW_CREDS, {}
        if kind == "ninjaone":
            return self.nj_base_url, NJ_CREDS, {}
        if kind == "halopsa":
            return self.halo.url, HALO_CREDS, {}
        if kind == "autotask":
            # The kind defaults to 10,000 requests an hour (2.78 a second): far too slow for tests.
            return self.at.url + "/ATServicesRest", AT_CREDS, {"requests_per_second": 200}
        if kind == "pax8":
            return self.pax8.url, PAX8_CREDS, {"token_url": self.pax8.url + "/v1/token"}
        if kind == "msgraph":
            return (self.graph.url, dict(GRAPH_APP, tenant_id=partner),
                    {"customer_tenants": self.client_tenants(),
                     "token_url": self.graph.url + "/{tenant}/oauth2/v2.0/token"})
        if kind == "partnercenter":
            return (self.pc.url, dict(PC_APP, tenant_id=partner),
                    {"token_url": self.pc.url + "/{tenant}/oauth2/v2.0/token"})
        if kind == "dattormm":
            return self.datto.url, DATTO_CREDS, {"token_url": self.datto.url + "/auth/oauth/token",
                                                 "requests_per_second": 200}
        raise ValueError("no mock for kind %r" % kind)


# ---------------------------------------------------------------------------
# Database

def connect(dbname=DB_NAME):
    conn = psycopg2.connect(dbname=dbname, application_name="billrecon-e2e", connect_timeout=10)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SET billrecon.allow_http = on")
        cur.execute("SET statement_timeout = '90s'")
    return conn


def create_database():
    admin = psycopg2.connect(dbname=os.environ.get("BILLRECON_E2E_ADMIN_DB", "postgres"), connect_timeout=10)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB_NAME)
        cur.execute("CREATE DATABASE %s" % DB_NAME)
    admin.close()
    conn = connect()
    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION billrecon")
    conn.close()


def query(conn, sql, params=None):
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(sql, params)
        return [dict(r) for r in cur.fetchall()] if cur.description else []


def one(conn, sql, params=None):
    rows = query(conn, sql, params)
    if len(rows) != 1:
        raise AssertionError("expected one row, got %d: %s" % (len(rows), sql))
    return rows[0]


def scalar(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


# ---------------------------------------------------------------------------
# Server log scanning (style.md section 15: crashes fail the run)

class PgLog:
    """The server log named by BILLRECON_PG_LOG. A "terminated by signal" or
    "PANIC" line is a crash, except the line of a process a test killed on
    purpose (test_crash_loop.py): such a test calls expect_kill(pid, signal)
    before the kill, which appends "pid signal" to the file KILLED_SUFFIX
    names next to the log (test/bin/run-tests reads it too). Only the exact
    pid and signal are excused; PANIC never is."""
    BAD = re.compile(r"terminated by signal|PANIC")
    KILLED_LINE = re.compile(r"\(PID (\d+)\) was terminated by signal (\d+)")
    KILLED_SUFFIX = ".killed"

    def __init__(self):
        self.path = os.environ.get("BILLRECON_PG_LOG")
        self.offset = os.path.getsize(self.path) if self.path and os.path.exists(self.path) else 0
        self.killed = set()     # (pid, signal) killed on purpose by this run

    @property
    def killed_path(self):
        return self.path + self.KILLED_SUFFIX if self.path else None

    def expect_kill(self, pid, signum):
        """Records that this run is about to kill `pid` with `signum` on purpose."""
        self.killed.add((int(pid), int(signum)))
        if self.killed_path:
            with open(self.killed_path, "a", encoding="ascii") as f:
                f.write("%d %d\n" % (pid, signum))

    def expected_kills(self):
        kills = set(self.killed)
        if self.killed_path and os.path.exists(self.killed_path):
            with open(self.killed_path, "r", encoding="ascii", errors="replace") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                        kills.add((int(parts[0]), int(parts[1])))
        return kills

    def read_new(self):
        if not self.path or not os.path.exists(self.path):
            return ""
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        return data.decode("utf-8", "replace")

    def read_from(self, offset):
        if not self.path or not os.path.exists(self.path):
            return ""
        with open(self.path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")

    def crashes(self, text):
        expected = None
        out = []
        for line in text.splitlines():
            if not self.BAD.search(line):
                continue
            m = self.KILLED_LINE.search(line)
            if m and "PANIC" not in line:
                if expected is None:
                    expected = self.expected_kills()
                if (int(m.group(1)), int(m.group(2))) in expected:
                    continue
            out.append(line)
        return out


# ---------------------------------------------------------------------------
# Test base class

class Ctx:
    """Process-wide state the runner fills in."""
    mocks = None
    pglog = None
    counter = 0


def d(x):
    """float from the generator -> the exact decimal its JSON text denotes."""
    return None if x is None else decimal.Decimal(repr(float(x)))


def date_of(iso):
    return None if not iso else datetime.date.fromisoformat(iso[:10])


class E2ETestCase(unittest.TestCase):
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        cls.mocks = Ctx.mocks
        cls.ds = Ctx.mocks.ds
        cls.conn = connect()

    @classmethod
    def tearDownClass(cls):
        cls.conn.close()

    def setUp(self):
        self.mocks.reset()
        self.cw = self.mocks.cw
        self.nj = self.mocks.nj
        self._log_start = Ctx.pglog.offset if Ctx.pglog else 0

    def tearDown(self):
        if Ctx.pglog:
            bad = Ctx.pglog.crashes(Ctx.pglog.read_new())
            if bad:
                self.fail("PostgreSQL server log after %s: %s" % (self.id(), "; ".join(bad[:3])))

    # -- helpers -------------------------------------------------------------------
    def q(self, sql, params=None):
        return query(self.conn, sql, params)

    def one(self, sql, params=None):
        return one(self.conn, sql, params)

    def scalar(self, sql, params=None):
        return scalar(self.conn, sql, params)

    def execute(self, sql, params=None):
        with self.conn.cursor() as cur:
            cur.execute(sql, params)

    def unique_name(self, prefix):
        Ctx.counter += 1
        return ("%s-%d" % (prefix, Ctx.counter))[:63]

    def add(self, kind, name=None, options=None, creds=None, base_url=None):
        name = name or self.unique_name(kind[:2] + "-" + self._testMethodName.replace("test_", "")[:40])
        url, kind_creds, kind_opts = self.mocks.integration(kind)
        opts = dict(BASE_OPTIONS)
        if kind in KIND_PAGE:
            opts["page_size"] = KIND_PAGE[kind]
        opts.update(kind_opts)
        opts.update(options or {})
        url = base_url or url
        creds = creds or kind_creds
        iid = self.scalar("SELECT billrecon.add_integration(%s, %s, %s, %s::jsonb, %s::jsonb)",
                          (name, kind, url, json.dumps(creds), json.dumps(opts)))
        return name, iid

    def sync(self, name, mode="full"):
        rows = self.q("SELECT * FROM billrecon.sync(%s, %s)", (name, mode))
        self.assertEqual(len(rows), 1, "billrecon.sync(%s) returned %d rows" % (name, len(rows)))
        return rows[0]

    def assert_succeeded(self, row):
        self.assertEqual(row["status"], "succeeded", "sync failed: %s" % row.get("error"))
        self.assertIsNone(row["error"])

    def assert_failed(self, row, pattern=None):
        self.assertEqual(row["status"], "failed", "sync should have failed: %r" % row)
        self.assertTrue(row["error"], "a failed run has an error text")
        if pattern:
            self.assertRegex(row["error"], re.compile(pattern, re.I))

    def status(self, name):
        return self.one("SELECT * FROM billrecon.integration_status WHERE integration = %s", (name,))

    TABLES = ("psa_companies", "psa_agreements", "psa_line_items", "vendor_accounts", "usage_records")

    def snapshot(self, iid):
        """Every row of the integration's data tables, all columns."""
        return {t: self.q("SELECT * FROM billrecon.%s WHERE integration_id = %%s ORDER BY id" % t, (iid,))
                for t in self.TABLES}

    def current(self, table, iid):
        return self.q("SELECT * FROM billrecon.%s WHERE integration_id = %%s AND removed_at IS NULL ORDER BY id"
                      % table, (iid,))

    def count(self, table, iid, current=True):
        return self.scalar("SELECT count(*) FROM billrecon.%s WHERE integration_id = %%s%s"
                           % (table, " AND removed_at IS NULL" if current else ""), (iid,))

    def assert_same_snapshot(self, before, after, what="data"):
        for t in self.TABLES:
            self.assertEqual(len(after[t]), len(before[t]), "%s: %s row count changed" % (what, t))
            for a, b in zip(before[t], after[t]):
                self.assertEqual(b, a, "%s: %s row %s changed" % (what, t, a.get("id")))

    def run_row(self, run_id):
        return self.one("SELECT * FROM billrecon.sync_runs WHERE id = %s", (run_id,))

    # expected counts of the dataset
    def cw_counts(self):
        ds = self.ds
        return {"psa_companies": len(ds.companies), "psa_agreements": len(ds.agreements),
                "psa_line_items": len(ds.additions)}

    def nj_counts(self):
        return {"vendor_accounts": len(self.ds.organizations), "usage_records": len(self.ds.devices)}

    def assert_counts(self, iid, expected):
        got = {t: self.count(t, iid) for t in expected}
        self.assertEqual(got, expected, "current rows per table")

    def usage_counts(self, iid):
        """Current usage records of an integration per kind."""
        return {r["kind"]: r["n"] for r in self.q(
            "SELECT kind, count(*) AS n FROM billrecon.usage_records WHERE integration_id = %s "
            "AND removed_at IS NULL GROUP BY kind", (iid,))}


# ---------------------------------------------------------------------------
# Kinds whose connector may not be built yet

_KIND_BUILT = {}


def kind_built(kind):
    """Whether add_integration accepts the kind (0A000 = connector not built
    yet). Probed once per run, in a transaction that is rolled back."""
    pretend = [k.strip() for k in os.environ.get("BILLRECON_E2E_UNBUILT", "").split(",")]
    if kind in pretend:     # to exercise the skips: BILLRECON_E2E_UNBUILT=halopsa,pax8
        return False
    if kind not in _KIND_BUILT:
        url, creds, opts = Ctx.mocks.integration(kind)
        conn = connect()
        conn.autocommit = False
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT billrecon.add_integration(%s, %s, %s, %s::jsonb, %s::jsonb)",
                            ("probe-" + kind, kind, url, json.dumps(creds), json.dumps(opts)))
            _KIND_BUILT[kind] = True
        except psycopg2.Error as e:
            if e.pgcode != "0A000":
                raise
            _KIND_BUILT[kind] = False
        finally:
            conn.rollback()
            conn.close()
    return _KIND_BUILT[kind]


class KindTestCase(E2ETestCase):
    """Tests of one kind (KIND); every test skips while add_integration
    refuses the kind with 0A000 (its connector is not built yet)."""
    KIND = None

    def setUp(self):
        if not kind_built(self.KIND):
            self.skipTest("the %s connector is not built yet (add_integration: 0A000)" % self.KIND)
        super().setUp()
        self.mock = getattr(self.mocks, KIND_MOCK[self.KIND])


class VendorFaults:
    """The failure cases every new kind shares; mixed into a KindTestCase
    that sets:

    KIND, MATCH (regex of the faulted list request), WORD (names the
    endpoint in errors), COUNTS (method name: expected current rows),
    ERROR_LOCATION (regex the error of the wrong-typed field must match),
    and wrong_type(): mutates one record so that a required field has the
    wrong type; returns (description, the record's ids)."""

    MATCH = None
    WORD = None
    COUNTS = None
    CLEAN_STATUS = "green"     # the integration status after a clean full sync

    def expected(self):
        return getattr(self, self.COUNTS)()

    def full_sync_ok(self, options=None):
        name, iid = self.add(self.KIND, options=options)
        row = self.sync(name, "full")
        self.assert_succeeded(row)
        self.assert_counts(iid, self.expected())
        return name, iid, row

    def test_wrong_credentials(self):
        import uuid
        url, creds, opts = self.mocks.integration(self.KIND)
        secret_key = next(k for k in creds if "secret" in k)
        secret = "e2e-%s-%s" % (self.KIND, uuid.uuid4().hex)
        name, iid = self.add(self.KIND, creds=dict(creds, **{secret_key: secret}))
        row = self.sync(name, "full")
        self.assert_failed(row, r"authenticat|unauthori|credential|invalid_client|invalid_grant|access_denied|"
                                r"401|403")
        self.assertEqual(self.status(name)["status"], "red")
        for t in self.TABLES:
            self.assertEqual(self.count(t, iid, current=False), 0, "nothing stored in %s" % t)
        texts = json.dumps([self.run_row(row["run_id"]), self.status(name)], default=str)
        self.assertNotIn(secret, texts, "the secret shows in the run or the status")
        self.assertLess(len(self.mock.requests()), 10, "a credentials failure is not worth many retries")

    def test_rate_limit_429_is_retried(self):
        name, iid = self.add(self.KIND, options={"retry_max_delay_ms": 1500})
        self.mock.fault(match=self.MATCH, kind="rate_limit", times=2, after=1)
        row = self.sync(name, "full")
        self.assert_succeeded(row)
        self.assert_counts(iid, self.expected())
        self.assertGreaterEqual(row["retries"], 2, "429s counted as retries")
        self.assertEqual(len([e for e in self.mock.requests() if e["status"] == 429]), 2)

    def test_status_500_burst_is_retried(self):
        name, iid = self.add(self.KIND)
        self.mock.fault(match=self.MATCH, kind="status", status=500, times=2, after=1)
        row = self.sync(name, "full")
        self.assert_succeeded(row)
        self.assert_counts(iid, self.expected())
        self.assertGreaterEqual(row["retries"], 2)

    def _assert_failed_keeps_data(self, name, iid, before, pattern=None):
        row = self.sync(name, "full")
        self.assert_failed(row, pattern)
        self.assert_same_snapshot(before, self.snapshot(iid), "after a failed sync")
        self.assertEqual(self.status(name)["status"], "red")
        return row

    def test_malformed_json_fails_and_keeps_data(self):
        name, iid, _ = self.full_sync_ok()
        before = self.snapshot(iid)
        self.mock.fault(match=self.MATCH, kind="malformed", times=-1, after=1)
        self._assert_failed_keeps_data(name, iid, before, r"json|pars")
        self.mock.ctl("DELETE", "faults")
        self.assert_succeeded(self.sync(name, "full"))
        self.assertEqual(self.status(name)["status"], self.CLEAN_STATUS, "a good sync heals the status")

    def test_wrong_typed_required_field_fails_and_keeps_data(self):
        name, iid, _ = self.full_sync_ok()
        before = self.snapshot(iid)
        field, ids = self.wrong_type()
        row = self._assert_failed_keeps_data(name, iid, before)
        err = row["error"]
        self.assertRegex(err, re.compile(self.WORD, re.I), "the error names the endpoint")
        self.assertIn(field, err, "the error names the field")
        self.assertTrue(any(str(i).lower() in err.lower() for i in ids),
                        "the error names the record (one of %r): %s" % (ids, err))
