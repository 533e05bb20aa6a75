#!/usr/bin/env python3
"""Quick sync benchmark (issue 9, item 3): requests of a quick sync after 1 %
of the records changed, against the full sync's, counted at the mock.

Only kinds with a modified-since filter run quick syncs (registry.cpp
supports_quick: ConnectWise and Autotask). NinjaOne's API has none
(vendor-apis.md section 7: devices-detailed pages by after=<id> only), so
its quick sync runs as a full sync; it is measured too, to show that. The
bulk of a PSA is its line items, so the change is 1 % of ConnectWise's
agreement additions (a quantity change, stamped by the mock's lastUpdated).

For each of --runs runs (default 3): a full sync, then 1 % of the additions
change, then a quick sync; prints both request counts, min / median / max,
and the ratio quick / full (target <= 5 %). Never fails on the ratio; exits
non-zero when a sync fails or the quick sync misses a change.

Needs a PostgreSQL 15 server with billrecon, reachable through libpq's
environment (a superuser); bench/run_quick_sync_bench.sh starts one.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import psycopg2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test", "mock_api"))
from framework import iso_z  # noqa: E402

DB = "billrecon_quick_bench"
CW_PREFIX = "/v4_6_release/apis/3.0"
CW_CREDS = {"company_id": "billrecon", "public_key": "pubkey", "private_key": "privkey",
            "client_id": "00000000-0000-4000-8000-000000000001"}
NJ_CREDS = {"client_id": "billrecon-ninja-client", "client_secret": "billrecon-ninja-secret"}


class Mock:
    def __init__(self, url):
        self.url = url

    def ctl(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + "/_mock/" + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read().decode() or "null")

    def api_requests(self):
        return len([e for e in self.ctl("GET", "requests") if not e["path"].startswith("/_mock")])


def start_mock(seed, clients):
    tmp = tempfile.mkdtemp(prefix="billrecon-quick-")
    ports = os.path.join(tmp, "ports.json")
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "test/mock_api/server.py"), "--seed", str(seed),
                             "--clients", str(clients), "--vendors", "connectwise,ninjaone", "--port-file", ports],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(1200):
        if os.path.exists(ports) and os.path.getsize(ports) > 0:
            with open(ports) as f:
                p = json.load(f)
            return proc, "http://127.0.0.1:%d" % p["connectwise"], "http://127.0.0.1:%d" % p["ninjaone"]
        time.sleep(0.05)
    proc.kill()
    sys.exit("quick sync: the mock did not start")


def connect(db):
    conn = psycopg2.connect(dbname=db, application_name="billrecon-quick-bench")
    conn.autocommit = True
    return conn


def sync(cur, name, mode):
    cur.execute("SELECT status, records, requests, mode, error FROM billrecon.sync(%s, %s)", (name, mode))
    row = cur.fetchone()
    if row[0] != "succeeded":
        sys.exit("quick sync: %s sync of %s %s: %s" % (mode, name, row[0], row[4]))
    return row


def stats(xs):
    return "min %d  median %d  max %d" % (min(xs), statistics.median(xs), max(xs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--share", type=float, default=0.01, help="share of the additions changed (default 0.01)")
    args = ap.parse_args()

    admin = connect("postgres")
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)
        cur.execute("CREATE DATABASE %s" % DB)
        cur.execute("ALTER DATABASE %s SET billrecon.allow_http = on" % DB)
    proc, cw_url, nj_url = start_mock(args.seed, args.clients)
    cw, nj = Mock(cw_url), Mock(nj_url)
    try:
        conn = connect(DB)
        cur = conn.cursor()
        cur.execute("CREATE EXTENSION billrecon")
        cur.execute("SET billrecon.progress_notices = off")
        cur.execute("SELECT billrecon.add_integration('cw', 'connectwise', %s, %s::jsonb, '{}'::jsonb, true)",
                    (cw_url + CW_PREFIX, json.dumps(CW_CREDS)))
        cur.execute("SELECT billrecon.add_integration('nj', 'ninjaone', %s, %s::jsonb)", (nj_url, json.dumps(NJ_CREDS)))
        sync(cur, "cw", "full")
        cur.execute("SELECT count(*) FILTER (WHERE t = 'c'), count(*) FILTER (WHERE t = 'a'), count(*) FILTER (WHERE t = 'l')"
                    "  FROM (SELECT 'c' t FROM billrecon.psa_companies UNION ALL SELECT 'a' FROM billrecon.psa_agreements"
                    "        UNION ALL SELECT 'l' FROM billrecon.psa_line_items) s")
        companies, agreements, lines = cur.fetchone()
        cur.execute("SELECT external_id FROM billrecon.psa_line_items WHERE removed_at IS NULL ORDER BY id")
        line_ids = [int(r[0]) for r in cur.fetchall()]
        n_change = max(1, int(round(len(line_ids) * args.share)))
        print("quick sync: ConnectWise mock, %d clients: %d companies, %d agreements, %d additions; %d additions "
              "(%.1f %%) change per run" % (args.clients, companies, agreements, lines, n_change, 100.0 * n_change / len(line_ids)))

        full_req, quick_req, quick_rec = [], [], []
        for run in range(args.runs):
            cw.ctl("DELETE", "requests")
            sync(cur, "cw", "full")
            full_req.append(cw.api_requests())
            # Stamp the changes after the full sync's start (whole seconds in CW's conditions).
            cw.ctl("POST", "clock", {"now": iso_z(time.time() + 5)})
            step = max(1, len(line_ids) // n_change)
            changed = line_ids[run::step][:n_change]
            qty = 100 + run
            for i in changed:
                cw.ctl("POST", "mutate", {"entity": "addition", "id": i, "set": {"quantity": qty}})
            time.sleep(1.1)
            cw.ctl("DELETE", "requests")
            row = sync(cur, "cw", "quick")
            if row[3] != "quick":
                sys.exit("quick sync: ran as %s" % row[3])
            quick_req.append(cw.api_requests())
            quick_rec.append(row[1])
            cur.execute("SELECT count(*) FROM billrecon.psa_line_items WHERE external_id = ANY (%s) AND quantity = %s",
                        ([str(i) for i in changed], qty))
            got = cur.fetchone()[0]
            if got != len(changed):
                sys.exit("quick sync: %d of %d changed additions stored" % (got, len(changed)))
            print("  run %d: full sync %d requests, quick sync %d requests (%d records)"
                  % (run + 1, full_req[-1], quick_req[-1], row[1]))

        # NinjaOne: no modified-since filter, quick runs as full.
        sync(cur, "nj", "full")
        nj.ctl("DELETE", "requests")
        sync(cur, "nj", "full")
        nj_full = nj.api_requests()
        nj.ctl("DELETE", "requests")
        row = sync(cur, "nj", "quick")
        nj_quick = nj.api_requests()

        ratio = statistics.median(quick_req) / statistics.median(full_req)
        print("quick sync: requests counted at the mock, %d runs" % args.runs)
        print("  ConnectWise full sync:  %s" % stats(full_req))
        print("  ConnectWise quick sync: %s" % stats(quick_req))
        print("  ratio quick / full: %.1f %% (target <= 5 %%) %s" % (100 * ratio, "met" if ratio <= 0.05 else
              "NOT met: ConnectWise has no list of all additions; a quick sync still asks every agreement for its "
              "changed additions (one request each), see docs/performance.md"))
        print("  NinjaOne (no modified-since filter): full %d requests, quick %d requests (ran as %s)"
              % (nj_full, nj_quick, row[3]))
        conn.close()
    finally:
        proc.kill()
        with admin.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)
        admin.close()


if __name__ == "__main__":
    main()
