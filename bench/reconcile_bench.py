#!/usr/bin/env python3
"""Reconcile benchmark (issues 5 and 9).

Builds, inside PostgreSQL, a book of business of --clients clients (default
5,000) with --lines-per-client line items each (default 10: 50,000) under
product rules, and --devices-per-client devices each (default 200: 1,000,000
usage records), every client mapped to its RMM organization. Then prints, in
the same run and on the same data, min / median / max over --runs runs of:

  - billrecon.reconcile(): the whole run (lines, groups, counting, prices,
    unmapped and unaccounted usage, cards, explanations);
  - the reference: one plain SQL statement that counts the same usage per
    line (the join a DBA would write; no groups, prices or explanations);
  - the ratio of the two (target: reconcile < 1 s and <= 1.5 x the join);
  - a run of one client, reconcile(period, psa_company_id) (target < 20 ms).

Never fails on time. Needs a PostgreSQL 15 server with billrecon installed,
reachable through libpq's environment (a superuser); bench/run_reconcile_bench.sh
starts one.
"""

import argparse
import statistics
import sys
import time

import psycopg2

DB = "billrecon_reconcile_bench"

PRODUCTS = [
    # code, rule filters (asset), unit price
    ("MS-WKS", '{"device_class": ["desktop", "laptop"]}', "55.00"),
    ("MS-SRV", '{"device_class": ["server"]}', "150.00"),
    ("AV-EDR", '{"device_class": ["desktop", "laptop", "server"]}', "6.50"),
    ("PATCH-WIN", '{"os_name": "windows"}', "3.00"),
    ("PATCH-MAC", '{"os_name": "mac"}', "3.50"),
    ("BDR", '{"device_class": ["server"]}', "95.00"),
    ("MON-NET", '{"device_class": ["other"]}', "4.00"),
    ("SRV-WIN", '{"device_class": ["server"], "os_name": "windows server"}', "12.00"),
    ("LT-ENC", '{"device_class": ["laptop"]}', "2.25"),
    ("KIOSK", '{"device_name": "^kiosk"}', "8.00"),
]

SETUP = """
SELECT billrecon.add_integration('cw', 'connectwise', 'https://api-na.myconnectwise.net/v4_6_release/apis/3.0',
  '{"company_id":"a","public_key":"b","private_key":"c","client_id":"d"}', is_default_psa => true);
SELECT billrecon.add_integration('ninja', 'ninjaone', 'https://app.ninjarmm.com', '{"client_id":"a","client_secret":"b"}');
INSERT INTO billrecon.psa_companies (integration_id, external_id, name, first_seen_at, last_seen_at)
SELECT i.id, g::text, 'Client ' || g, now(), now() FROM billrecon.integrations i, generate_series(1, %(clients)s) g
 WHERE i.name = 'cw';
INSERT INTO billrecon.psa_agreements (integration_id, external_id, company_id, name, billing_cycle, start_date,
                                      first_seen_at, last_seen_at)
SELECT c.integration_id, 'A' || c.external_id, c.id, 'Managed Services', 'monthly', '2024-01-01', now(), now()
  FROM billrecon.psa_companies c;
INSERT INTO billrecon.psa_line_items (integration_id, external_id, agreement_id, company_id, product_code,
                                      product_name, quantity, unit_price, effective_date, first_seen_at, last_seen_at)
SELECT a.integration_id, a.external_id || '-' || p.n, a.id, a.company_id, p.code, p.code, (a.id * 7 + p.n * 13) %% 40,
       p.price, '2024-01-01', now(), now()
  FROM billrecon.psa_agreements a
  JOIN unnest(%(codes)s::text[], %(prices)s::numeric[]) WITH ORDINALITY AS p(code, price, n) ON p.n <= %(lines)s;
INSERT INTO billrecon.vendor_accounts (integration_id, external_id, name, first_seen_at, last_seen_at)
SELECT i.id, 'org' || g, 'Client ' || g, now(), now() FROM billrecon.integrations i, generate_series(1, %(clients)s) g
 WHERE i.name = 'ninja';
INSERT INTO billrecon.client_mappings (vendor_account_id, psa_company_id, source)
SELECT va.id, c.id, 'manual' FROM billrecon.vendor_accounts va
  JOIN billrecon.psa_companies c ON 'org' || c.external_id = va.external_id;
INSERT INTO billrecon.usage_records (integration_id, external_id, account_id, kind, quantity, device_class, os_name,
                                     device_name, serial_number, last_active_at, first_seen_at, last_seen_at)
SELECT va.integration_id, va.external_id || '-' || d, va.id, 'device', 1,
       (ARRAY['desktop', 'desktop', 'laptop', 'server', 'other'])[1 + (d * 7 + va.id) %% 5],
       (ARRAY['Windows 11 Pro', 'Windows Server 2022', 'macOS 14', 'Ubuntu 22.04'])[1 + (d * 3 + va.id) %% 4],
       CASE WHEN d %% 50 = 0 THEN 'KIOSK-' ELSE 'PC-' END || va.id || '-' || d,
       'SN' || va.id || '-' || d, now() - make_interval(days => ((d * 11 + va.id) %% 60)::int), now(), now()
  FROM billrecon.vendor_accounts va, generate_series(1, %(devices)s) d;
-- Both integrations synced a moment ago (green inputs, as after the month's syncs).
INSERT INTO billrecon.sync_runs (integration_id, requested_mode, mode, status, started_at, finished_at)
SELECT i.id, 'full', 'full', 'succeeded', now(), now() FROM billrecon.integrations i;
ANALYZE;
"""

# A book where most lines are billed right: %(right)s in 10 lines carry the
# quantity their rule counts (the rest keep the generated one, off by some).
MOSTLY_RIGHT = """
UPDATE billrecon.psa_line_items l SET quantity = j.n
  FROM (%(join)s) j(id, n)
 WHERE l.id = j.id AND l.id %% 10 < %(right)s
"""

# The reference: the usage each line's rule counts, in one plain join.
JOIN = """
SELECT l.id, count(u.id)
  FROM billrecon.psa_line_items l
  JOIN billrecon.service_rules r ON r.psa_product = l.product_code
  JOIN billrecon.client_mappings m ON m.psa_company_id = l.company_id
  JOIN billrecon.vendor_accounts va ON va.id = m.vendor_account_id AND va.integration_id = r.integration_id
  JOIN billrecon.usage_records u ON u.account_id = va.id AND u.removed_at IS NULL AND u.kind = 'device'
   AND (NOT r.filters ? 'device_class' OR r.filters->'device_class' ? u.device_class)
   AND (NOT r.filters ? 'os_name' OR u.os_name ~* (r.filters->>'os_name'))
   AND (NOT r.filters ? 'device_name' OR u.device_name ~* (r.filters->>'device_name'))
 GROUP BY l.id
"""


def connect(db):
    conn = psycopg2.connect(dbname=db, application_name="billrecon-bench")
    conn.autocommit = True
    return conn


def timed(cur, sql, params=None):
    t0 = time.time()
    cur.execute(sql, params)
    if cur.description:
        cur.fetchall()
    return time.time() - t0


def stats(xs):
    return "min %.3f s  median %.3f s  max %.3f s" % (min(xs), statistics.median(xs), max(xs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=5000)
    ap.add_argument("--lines-per-client", type=int, default=10)
    ap.add_argument("--devices-per-client", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", action="store_true",
                    help="leave the database %s behind for EXPLAIN and profiling (dropped by default)" % DB)
    ap.add_argument("--right-per-10", type=int, default=9,
                    help="lines in 10 billed exactly what is counted (default 9: one line in ten is a discrepancy)")
    args = ap.parse_args()

    admin = connect("postgres")
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)
        cur.execute("CREATE DATABASE %s" % DB)
    try:
        conn = connect(DB)
        cur = conn.cursor()
        cur.execute("SET client_min_messages = error")
        cur.execute("CREATE EXTENSION billrecon")
        t0 = time.time()
        products = PRODUCTS[:args.lines_per_client]
        cur.execute(SETUP, {"clients": args.clients, "lines": args.lines_per_client, "devices": args.devices_per_client,
                            "codes": [p[0] for p in products], "prices": [p[2] for p in products]})
        for code, filters, _ in products:
            cur.execute("SELECT billrecon.map_product(%s, 'ninja', 'asset', %s::jsonb)", (code, filters))
        cur.execute(MOSTLY_RIGHT % {"join": JOIN, "right": args.right_per_10})
        cur.execute("ANALYZE")
        cur.execute("SELECT (SELECT count(*) FROM billrecon.psa_line_items), (SELECT count(*) FROM billrecon.usage_records)")
        lines, usage = cur.fetchone()
        print("reconcile: %d clients, %d line items, %d usage records, %d in 10 lines billed right (built in %.1f s)"
              % (args.clients, lines, usage, args.right_per_10, time.time() - t0))
        join_t, rec_t = [], []
        for _ in range(args.runs):
            join_t.append(timed(cur, JOIN))
            rec_t.append(timed(cur, "SELECT billrecon.reconcile('2026-11-15')"))
        cur.execute("SELECT line_count, discrepancy_count FROM billrecon.reconcile_runs "
                    "WHERE client_external_id IS NULL ORDER BY id DESC LIMIT 1")
        rows, discrepancies = cur.fetchone()
        one_t = [timed(cur, "SELECT billrecon.reconcile('2026-11-15', %s)", (str(1 + i % args.clients),))
                 for i in range(max(5, args.runs))]
        print("plain SQL join counting the same usage (reference): %s" % stats(join_t))
        print("billrecon.reconcile() (%d result rows, %d discrepancies):  %s" % (rows, discrepancies, stats(rec_t)))
        print("billrecon.reconcile(period, one client) (target < 20 ms): %s"
              % stats(one_t))
        ratio = statistics.median(rec_t) / statistics.median(join_t)
        print("ratio reconcile / join: %.2f (target <= 1.5); reconcile %.2f s (target < 1 s): %s"
              % (ratio, statistics.median(rec_t),
                 "met" if ratio <= 1.5 and statistics.median(rec_t) < 1 else "NOT met (see docs/performance.md)"))
        conn.close()
    finally:
        if args.keep:
            print("database %s kept (--keep)" % DB)
        else:
            with admin.cursor() as cur:
                cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)
        admin.close()


if __name__ == "__main__":
    sys.exit(main())
