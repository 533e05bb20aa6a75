#!/usr/bin/env python3
"""Parallel background sync benchmark (issue 7).

Eight NinjaOne integrations against the bundled mock, every response held back
50 ms (the mock's "slow" fault). Prints, in the same run and on the same data:
  - each integration synced alone in the foreground (billrecon.sync), and the
    slowest of them: the reference;
  - all eight queued at once with billrecon.sync_async and run by the
    background workers, until the last one finishes;
  - the ratio of the two (target <= 1.2) and, for scale, the sum of the single
    times (what a sequential sync of all eight costs).
min / median / max over --runs runs (default 3). Never fails on time.

Needs a PostgreSQL 15 server with billrecon in shared_preload_libraries,
reachable through libpq's environment (PGHOST, PGPORT, PGUSER: a superuser).
bench/run_parallel_sync_bench.sh starts one.
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
DB = "billrecon_bench"
NJ = {"client_id": "billrecon-ninja-client", "client_secret": "billrecon-ninja-secret"}


def start_mock(seed, clients):
    tmp = tempfile.mkdtemp(prefix="billrecon-bench-")
    ports = os.path.join(tmp, "ports.json")
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "test/mock_api/server.py"), "--seed", str(seed),
                             "--clients", str(clients), "--vendors", "ninjaone", "--port-file", ports],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if os.path.exists(ports) and os.path.getsize(ports) > 0:
            with open(ports) as f:
                return proc, "http://127.0.0.1:%d" % json.load(f)["ninjaone"]
        time.sleep(0.05)
    proc.kill()
    sys.exit("parallel_sync: the mock did not start")


def ctl(url, path, body):
    req = urllib.request.Request(url + "/_mock/" + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()


def connect(db):
    conn = psycopg2.connect(dbname=db, application_name="billrecon-bench")
    conn.autocommit = True
    return conn


def stats(xs):
    return "min %.2f s  median %.2f s  max %.2f s" % (min(xs), statistics.median(xs), max(xs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--integrations", type=int, default=8)
    ap.add_argument("--latency-ms", type=int, default=50)
    ap.add_argument("--clients", type=int, default=25)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=8, help="billrecon.max_sync_workers for the run")
    args = ap.parse_args()

    admin = connect("postgres")
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)
        cur.execute("CREATE DATABASE %s" % DB)
        cur.execute("ALTER DATABASE %s SET billrecon.allow_http = on" % DB)
        cur.execute("SHOW billrecon.max_sync_workers")
        old_workers = cur.fetchone()[0]
        cur.execute("ALTER SYSTEM SET billrecon.max_sync_workers = %s", (args.workers,))
        cur.execute("SELECT pg_reload_conf()")
        cur.execute("SHOW max_worker_processes")
        mwp = int(cur.fetchone()[0])
    proc, url = start_mock(42, args.clients)
    try:
        conn = connect(DB)
        cur = conn.cursor()
        cur.execute("CREATE EXTENSION billrecon")
        names = []
        for i in range(args.integrations):
            name = "ninja-%d" % (i + 1)
            cur.execute("SELECT billrecon.add_integration(%s, 'ninjaone', %s, %s::jsonb)", (name, url, json.dumps(NJ)))
            names.append(name)
        ctl(url, "faults", {"faults": [{"kind": "slow", "delay_s": args.latency_ms / 1000.0, "match": "/v2/"}]})
        cur.execute("SELECT count(*) FROM billrecon.sync(%s, 'full')", (names[0],))   # warm-up: token, caches
        print("parallel sync: %d NinjaOne integrations, %d ms per response, %d clients, max_sync_workers %d "
              "(max_worker_processes %d)" % (args.integrations, args.latency_ms, args.clients, args.workers, mwp))
        slowest, together, sums = [], [], []
        for run in range(args.runs):
            singles = []
            for n in names:
                t0 = time.time()
                cur.execute("SELECT status FROM billrecon.sync(%s, 'full')", (n,))
                status = cur.fetchone()[0]
                singles.append(time.time() - t0)
                if status != "succeeded":
                    sys.exit("parallel sync: the foreground sync of %s %s" % (n, status))
            t0 = time.time()
            jobs = []
            for n in names:
                cur.execute("SELECT billrecon.sync_async(%s, 'full')", (n,))
                jobs.append(cur.fetchone()[0])
            while True:
                cur.execute("SELECT count(*) FILTER (WHERE status IN ('queued', 'running')),"
                            "       count(*) FILTER (WHERE status <> 'succeeded' AND status NOT IN ('queued', 'running'))"
                            "  FROM billrecon.sync_jobs WHERE job_id = ANY (%s)", (jobs,))
                open_, bad = cur.fetchone()
                if open_ == 0:
                    break
                time.sleep(0.01)
            elapsed = time.time() - t0
            if bad:
                sys.exit("parallel sync: %d background syncs did not succeed" % bad)
            slowest.append(max(singles))
            sums.append(sum(singles))
            together.append(elapsed)
            print("  run %d: slowest single %.2f s, all %d in the background %.2f s, one after another %.2f s"
                  % (run + 1, max(singles), len(names), elapsed, sum(singles)))
        if os.environ.get("BENCH_DEBUG"):
            cur.execute("SELECT integration, started_at - requested_at, elapsed FROM billrecon.sync_jobs"
                        " WHERE job_id = ANY (%s) ORDER BY task_id", (jobs,))
            for r in cur.fetchall():
                print("    %s: waited %s, ran %s" % r)
        ratio = statistics.median(together) / statistics.median(slowest)
        print("slowest single integration (reference): %s" % stats(slowest))
        print("all %d in parallel (billrecon):         %s" % (len(names), stats(together)))
        print("sequential, for scale:                  %s" % stats(sums))
        print("ratio parallel / slowest single: %.2f (target <= 1.2) %s"
              % (ratio, "met" if ratio <= 1.2 else "NOT met (see docs/architecture.md, Background sync)"))
        conn.close()
    finally:
        proc.kill()
        with admin.cursor() as cur:
            cur.execute("ALTER SYSTEM SET billrecon.max_sync_workers = %s", (old_workers,))
            cur.execute("SELECT pg_reload_conf()")
            cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)
        admin.close()


if __name__ == "__main__":
    main()
