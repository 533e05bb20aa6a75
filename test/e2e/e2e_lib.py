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
             str(self.clients), "--base-epoch", str(self.base), "--vendors", "connectwise,ninjaone",
             "--port-file", port_file],
            stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("mock servers did not start; see %s" % self.log_path)
            time.sleep(0.05)
        with open(port_file) as f:
            ports = json.load(f)
        self.cw = MockVendor("connectwise", ports["connectwise"])
        self.nj = MockVendor("ninjaone", ports["ninjaone"])
        for v in (self.cw, self.nj):
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
        self.cw.reset()
        self.nj.reset()

    @property
    def cw_base_url(self):
        return self.cw.url + CW_PREFIX

    @property
    def nj_base_url(self):
        return self.nj.url


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
    BAD = re.compile(r"terminated by signal|PANIC")

    def __init__(self):
        self.path = os.environ.get("BILLRECON_PG_LOG")
        self.offset = os.path.getsize(self.path) if self.path and os.path.exists(self.path) else 0

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
        return [line for line in text.splitlines() if self.BAD.search(line)]


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
        opts = dict(BASE_OPTIONS)
        opts["page_size"] = CW_PAGE if kind == "connectwise" else NJ_PAGE
        opts.update(options or {})
        if kind == "connectwise":
            url = base_url or self.mocks.cw_base_url
            creds = creds or CW_CREDS
        else:
            url = base_url or self.mocks.nj_base_url
            creds = creds or NJ_CREDS
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
