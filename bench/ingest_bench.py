#!/usr/bin/env python3
"""Ingest benchmark (issue 9, items 1 and 6).

--records NinjaOne detailed devices (default 1,000,000; about 500 bytes of
JSON each) served in pages of --page-size (default 1,000) by bench/ninja_pages.py,
which renders every device once and then serves bytes with the real API's
auth and paging (OAuth2 client credentials, pageSize + after=<last id>, bare
arrays, a short page ends the listing). Prints, in the same run and on the
same pages, min / median / max over --runs runs (default 3) of:

  billrecon   billrecon.sync('<integration>', 'full') into an empty
              integration: OAuth, every page, parse, map, store as
              billrecon.usage_records (the first sync of a new RMM);
  re-sync     the same full sync again with every row already stored
              (the nightly case: 1,000,000 upserts), for scale;
  (a) jsonb   the way a DBA would do it without billrecon: every page body
              into a text column (one keep-alive HTTP connection from a
              script, one INSERT per page), then one INSERT ... SELECT over
              jsonb_to_recordset into a typed table;
  (b) COPY    COPY ... FROM STDIN (CSV) of the same rows billrecon stored, into
              a table shaped and indexed like billrecon.usage_records;
  (c) curl    a bare download of the same pages with one keep-alive curl;

the floor max(b, c) (receiving the pages and storing the rows, perfectly
overlapped), the ratios billrecon / floor (target <= 1.5) and (a) / billrecon
(target >= 6), and the peak RSS (VmHWM) of the backend that ran the sync
(target <= 200 MB). Never fails on time; exits non-zero when a sync fails or
stores the wrong number of rows.

Needs a PostgreSQL 15 server with billrecon in shared_preload_libraries,
reachable through libpq's environment (PGHOST, PGPORT, PGUSER: a superuser)
on this machine (the RSS is read from /proc). bench/run_ingest_bench.sh
starts one when none is running.
"""

import argparse
import http.client
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import psycopg2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DB = "billrecon_ingest_bench"
CREDS = {"client_id": "billrecon-ninja-client", "client_secret": "billrecon-ninja-secret"}
NAME = "ninja-bench"


def start_server(records, orgs):
    tmp = tempfile.mkdtemp(prefix="billrecon-ingest-")
    port_file = os.path.join(tmp, "port.json")
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "bench", "ninja_pages.py"), "--devices", str(records),
                             "--orgs", str(orgs), "--port-file", port_file])
    deadline = time.time() + 600
    while time.time() < deadline:
        if os.path.exists(port_file):
            with open(port_file) as f:
                info = json.load(f)
            shutil.rmtree(tmp, ignore_errors=True)
            return proc, info
        if proc.poll() is not None:
            sys.exit("ingest: bench/ninja_pages.py exited with %s" % proc.returncode)
        time.sleep(0.1)
    proc.kill()
    sys.exit("ingest: bench/ninja_pages.py did not start")


def connect(db):
    conn = psycopg2.connect(dbname=db, application_name="billrecon-ingest-bench")
    conn.autocommit = True
    return conn


def token(url):
    body = urllib.parse.urlencode(dict(CREDS, grant_type="client_credentials", scope="monitoring management"))
    with urllib.request.urlopen(url + "/ws/oauth/token", data=body.encode(), timeout=30) as r:
        return json.load(r)["access_token"]


def post(url, path, obj):
    req = urllib.request.Request(url + path, data=json.dumps(obj).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def bench_stats(url):
    with urllib.request.urlopen(url + "/_bench/stats", timeout=30) as r:
        return json.load(r)


def page_urls(url, records, page_size):
    """The device pages as the connector requests them (ids are 1..records)."""
    out = []
    after = None
    n = 0
    while True:
        out.append("%s/v2/devices-detailed?pageSize=%d%s" % (url, page_size, "" if after is None else "&after=%d" % after))
        got = min(page_size, records - n)
        n += got
        if got < page_size:
            return out
        after = n


def vm_hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def stats(xs, unit="s", fmt="%.2f"):
    f = fmt + " " + unit
    return ("min " + f + "  median " + f + "  max " + f) % (min(xs), statistics.median(xs), max(xs))


# ------------------------------------------------------------------ the five paths

def run_billrecon(cur_admin, url, expect):
    """One full sync on a fresh connection; returns (seconds, VmHWM kB, result row)."""
    conn = connect(DB)
    cur = conn.cursor()
    cur.execute("SET billrecon.progress_notices = off")
    cur.execute("SELECT pg_backend_pid()")
    pid = cur.fetchone()[0]
    t0 = time.perf_counter()
    cur.execute("SELECT status, records, pages, requests, error FROM billrecon.sync(%s, 'full')", (NAME,))
    row = cur.fetchone()
    elapsed = time.perf_counter() - t0
    hwm = vm_hwm_kb(pid)
    conn.close()
    if row[0] != "succeeded":
        sys.exit("ingest: billrecon.sync %s: %s" % (row[0], row[4]))
    cur_admin.execute("SELECT count(*) FROM billrecon.usage_records WHERE removed_at IS NULL")
    stored = cur_admin.fetchone()[0]
    if stored != expect:
        sys.exit("ingest: billrecon stored %d current usage records, expected %d" % (stored, expect))
    return elapsed, hwm, row


def reset_billrecon(cur):
    # Not timed: an empty integration for the next first sync.
    cur.execute("TRUNCATE billrecon.usage_records, billrecon.vendor_accounts, billrecon.sync_runs CASCADE")
    cur.execute("VACUUM billrecon.usage_records, billrecon.vendor_accounts")


DBA_TABLE = """
DROP TABLE IF EXISTS bench.raw_pages, bench.devices;
CREATE TABLE bench.raw_pages (page serial PRIMARY KEY, body text NOT NULL);
CREATE TABLE bench.devices (
  id bigint PRIMARY KEY, "organizationId" bigint, "nodeClass" text, "approvalStatus" text, offline boolean,
  "displayName" text, "lastContact" double precision, "lastUpdate" double precision, os jsonb, system jsonb);
"""
DBA_EXPAND = """
INSERT INTO bench.devices
SELECT d.* FROM bench.raw_pages p,
       jsonb_to_recordset(p.body::jsonb) AS d(id bigint, "organizationId" bigint, "nodeClass" text,
         "approvalStatus" text, offline boolean, "displayName" text, "lastContact" double precision,
         "lastUpdate" double precision, os jsonb, system jsonb)
"""


def run_dba(cur, url, page_size):
    """(a): a script pages through the API on one keep-alive connection and
    stores each body in a text column; SQL expands them with jsonb_to_recordset."""
    cur.execute(DBA_TABLE)
    u = urllib.parse.urlsplit(url)
    t0 = time.perf_counter()
    tok = token(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    headers = {"Authorization": "Bearer " + tok, "Accept": "application/json"}
    after = None
    while True:
        path = "/v2/devices-detailed?pageSize=%d%s" % (page_size, "" if after is None else "&after=%d" % after)
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            sys.exit("ingest (a): HTTP %d on %s" % (resp.status, path))
        if body == b"[]":
            break
        # The cursor (last id) and the page length come back from SQL.
        cur.execute("INSERT INTO bench.raw_pages (body) VALUES (%s) RETURNING"
                    " (SELECT ARRAY[(j -> -1 ->> 'id')::bigint, jsonb_array_length(j)] FROM (SELECT body::jsonb) s(j))",
                    (body.decode(),))
        after, n = cur.fetchone()[0]
        if n < page_size:
            break
    conn.close()
    t1 = time.perf_counter()
    cur.execute(DBA_EXPAND)
    rows = cur.rowcount
    t2 = time.perf_counter()
    return t2 - t0, t1 - t0, t2 - t1, rows


COPY_COLS = ("integration_id, external_id, account_id, kind, product, product_name, quantity, device_class, os_name, "
             "device_name, serial_number, licensed, enabled, online, last_active_at, unit_cost, purchased_quantity, "
             "status, billing_term, term_end_date, user_name, source_updated_at, first_seen_at, last_seen_at, "
             "removed_at, last_sync_run_id")


def csv_of_billrecon_rows(cur):
    buf = io.StringIO()
    cur.copy_expert("COPY (SELECT %s FROM billrecon.usage_records) TO STDOUT (FORMAT csv)" % COPY_COLS, buf)
    return buf.getvalue()


def run_copy(cur, csv_text):
    """(b): COPY of the same rows into a table like billrecon.usage_records
    (same columns, defaults, checks and indexes; no foreign keys)."""
    cur.execute("DROP TABLE IF EXISTS bench.usage_copy")
    cur.execute("CREATE TABLE bench.usage_copy (LIKE billrecon.usage_records INCLUDING DEFAULTS "
                "INCLUDING CONSTRAINTS INCLUDING INDEXES)")
    data = io.StringIO(csv_text)
    t0 = time.perf_counter()
    cur.copy_expert("COPY bench.usage_copy (%s) FROM STDIN (FORMAT csv)" % COPY_COLS, data)
    return time.perf_counter() - t0


def run_curl(url, urls, tmpdir):
    """(c): one curl, one keep-alive connection, every page (token included)."""
    cfg = os.path.join(tmpdir, "curl.cfg")
    t0 = time.perf_counter()
    tok = token(url)
    with open(cfg, "w") as f:
        f.write('header = "Authorization: Bearer %s"\n' % tok)
        for u in urls:
            f.write('url = "%s"\noutput = "/dev/null"\n' % u)
    subprocess.run(["curl", "-sS", "--fail", "-K", cfg], check=True)
    return time.perf_counter() - t0


# ------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1000000)
    ap.add_argument("--orgs", type=int, default=5000)
    ap.add_argument("--page-size", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-resync", action="store_true", help="skip the re-sync figure")
    args = ap.parse_args()
    if shutil.which("curl") is None:
        sys.exit("ingest: curl is not installed (Debian package curl)")

    print("ingest: rendering %d NinjaOne devices in %d organizations (bench/ninja_pages.py) ..."
          % (args.records, args.orgs), flush=True)
    proc, info = start_server(args.records, args.orgs)
    url = "http://127.0.0.1:%d" % info["port"]
    tmpdir = tempfile.mkdtemp(prefix="billrecon-ingest-")
    admin = connect("postgres")
    try:
        with admin.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)
            cur.execute("CREATE DATABASE %s" % DB)
            cur.execute("ALTER DATABASE %s SET billrecon.allow_http = on" % DB)
        conn = connect(DB)
        cur = conn.cursor()
        cur.execute("CREATE EXTENSION billrecon")
        cur.execute("CREATE SCHEMA bench")
        cur.execute("SELECT billrecon.add_integration(%s, 'ninjaone', %s, %s::jsonb, %s::jsonb)",
                    (NAME, url, json.dumps(CREDS), json.dumps({"page_size": args.page_size})))
        urls = page_urls(url, args.records, args.page_size)
        mb = info["device_bytes"] / 1e6
        print("ingest: %d devices, %.0f MB of JSON in %d pages of %d (+ %d organizations), rendered in %.1f s"
              % (args.records, mb, len(urls), args.page_size, args.orgs, info["render_s"]))
        cur.execute("SHOW shared_buffers")
        sb = cur.fetchone()[0]

        ours, resync, dba, dba_fetch, dba_expand, copy, curl, hwm, hwm_resync = [], [], [], [], [], [], [], [], []
        requests = None
        csv_text = None
        for run in range(args.runs):
            reset_billrecon(cur)
            post(url, "/_bench/reset-stats", {})
            t, kb, row = run_billrecon(cur, url, args.records)
            requests = bench_stats(url)["requests"]
            ours.append(t)
            hwm.append(kb / 1024.0)
            if not args.no_resync:
                t2, kb2, _ = run_billrecon(cur, url, args.records)
                resync.append(t2)
                hwm_resync.append(kb2 / 1024.0)
            if csv_text is None:
                csv_text = csv_of_billrecon_rows(cur)
            b = run_copy(cur, csv_text)
            copy.append(b)
            c = run_curl(url, urls, tmpdir)
            curl.append(c)
            a, af, ae, arows = run_dba(cur, url, args.page_size)
            if arows != args.records:
                sys.exit("ingest (a): expanded %d rows, expected %d" % (arows, args.records))
            dba.append(a)
            dba_fetch.append(af)
            dba_expand.append(ae)
            print("  run %d: billrecon %.2f s (%d pages, %d requests at the server, VmHWM %.0f MB)%s; "
                  "(a) jsonb %.2f s; (b) COPY %.2f s; (c) curl %.2f s"
                  % (run + 1, t, row[2], requests, kb / 1024.0,
                     "" if args.no_resync else ", re-sync %.2f s" % resync[-1], a, b, c), flush=True)
            cur.execute("DROP TABLE IF EXISTS bench.raw_pages, bench.devices, bench.usage_copy")

        floor = [max(b, c) for b, c in zip(copy, curl)]
        m_ours, m_floor, m_dba = statistics.median(ours), statistics.median(floor), statistics.median(dba)
        print("ingest: %d NinjaOne devices (%.0f MB JSON, pages of %d), %d runs, shared_buffers %s"
              % (args.records, mb, args.page_size, args.runs, sb))
        print("  billrecon full sync (first):  %s  (%.0f records/s)" % (stats(ours), args.records / m_ours))
        if resync:
            print("  billrecon full sync (re-sync): %s" % stats(resync))
        print("  (a) jsonb_to_recordset:       %s  (download + store bodies %.2f s, expand %.2f s, medians)"
              % (stats(dba), statistics.median(dba_fetch), statistics.median(dba_expand)))
        print("  (b) COPY csv:                 %s" % stats(copy))
        print("  (c) curl keep-alive download: %s" % stats(curl))
        print("  floor max(b, c):              %s" % stats(floor))
        r1 = m_ours / m_floor
        r2 = m_dba / m_ours
        print("  ratio billrecon / floor: %.2f (target <= 1.5) %s" % (r1, "met" if r1 <= 1.5 else "NOT met"))
        print("  ratio (a) / billrecon:   %.2f (target >= 6) %s" % (r2, "met" if r2 >= 6 else "NOT met"))
        peak = max(hwm + hwm_resync)
        print("  peak RSS (VmHWM) of the syncing backend: %s, re-sync %s; max %.0f MB (target <= 200 MB) %s"
              % (stats(hwm, "MB", "%.0f"), stats(hwm_resync, "MB", "%.0f") if hwm_resync else "-",
                 peak, "met" if peak <= 200 else "NOT met"))
        print("  requests per full sync at the server: %d (token + organizations + device pages)" % requests)
        conn.close()
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(tmpdir, ignore_errors=True)
        with admin.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)
        admin.close()


if __name__ == "__main__":
    main()
