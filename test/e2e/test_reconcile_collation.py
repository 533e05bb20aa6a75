"""reconcile()'s counting pass under a collation whose case rules are not
ASCII's: a database whose default collation is ICU Turkish, where upper('i')
is 'İ' and lower('I') is 'ı'. The pass maps ASCII texts itself only when the
database maps ASCII plainly (it does not here), and decides plain-text rule
patterns with the case classes PostgreSQL's own regex gives each character;
so its counts must equal the plain-SQL definition (~*, upper(), lower(),
billrecon._serial_key) letter for letter. Skipped when the server has no ICU."""

import os
import unittest

import psycopg2

import e2e_lib

DB = "billrecon_e2e_tr"

BOOK = """
SELECT billrecon.add_integration('cw', 'connectwise', 'https://api-na.myconnectwise.net/v4_6_release/apis/3.0',
  '{"company_id":"a","public_key":"b","private_key":"c","client_id":"d"}', is_default_psa => true);
SELECT billrecon.add_integration('ninja', 'ninjaone', 'https://app.ninjarmm.com', '{"client_id":"a","client_secret":"b"}');
INSERT INTO billrecon.psa_companies (integration_id, external_id, name, first_seen_at, last_seen_at)
SELECT i.id, g::text, 'Client ' || g, now(), now() FROM billrecon.integrations i, generate_series(1, 3) g
 WHERE i.name = 'cw';
INSERT INTO billrecon.psa_agreements (integration_id, external_id, company_id, name, billing_cycle, start_date,
                                      first_seen_at, last_seen_at)
SELECT c.integration_id, 'A' || c.external_id, c.id, 'Managed', 'monthly', '2024-01-01', now(), now()
  FROM billrecon.psa_companies c;
INSERT INTO billrecon.psa_line_items (integration_id, external_id, agreement_id, company_id, product_code,
                                      product_name, quantity, unit_price, effective_date, first_seen_at, last_seen_at)
SELECT a.integration_id, a.external_id || '-' || p.code, a.id, a.company_id, p.code, p.code, 1, 10, '2024-01-01',
       now(), now()
  FROM billrecon.psa_agreements a, unnest(ARRAY['KIOSK', 'WIN', 'LT', 'ALL']) p(code);
INSERT INTO billrecon.vendor_accounts (integration_id, external_id, name, first_seen_at, last_seen_at)
SELECT i.id, 'org' || g, 'Client ' || g, now(), now() FROM billrecon.integrations i, generate_series(1, 3) g
 WHERE i.name = 'ninja';
INSERT INTO billrecon.client_mappings (vendor_account_id, psa_company_id, source)
SELECT va.id, c.id, 'manual' FROM billrecon.vendor_accounts va
  JOIN billrecon.psa_companies c ON 'org' || c.external_id = va.external_id;
-- Names, OS names and serials where Turkish case rules and ASCII's differ:
-- 'i' / 'I' in every position, dotted and dotless letters, duplicates by serial
-- that only upper() makes equal.
INSERT INTO billrecon.usage_records (integration_id, external_id, account_id, kind, quantity, device_class, os_name,
                                     device_name, serial_number, last_active_at, first_seen_at, last_seen_at)
SELECT va.integration_id, va.external_id || '-' || d, va.id, 'device', 1,
       (ARRAY['desktop', 'laptop', 'server'])[1 + d % 3],
       (ARRAY['Windows 11', 'WINDOWS Server', 'wİndows 10', 'WIndows', 'macOS'])[1 + d % 5],
       (ARRAY['KIOSK-1', 'kiosk-2', 'Kİosk-3', 'KIosk-4', 'kıosk-5', 'office-LT', 'office-lt', 'offİce-LI', 'lobby-kiosk'])
         [1 + d % 9] || '-' || d,
       (ARRAY['sn-i' || (d / 2), 'SN-I' || (d / 2), 'sn-İ' || (d / 2), 'sn-ı' || d, 'ABC' || d])[1 + d % 5],
       now(), now(), now()
  FROM billrecon.vendor_accounts va, generate_series(1, 60) d;
INSERT INTO billrecon.sync_runs (integration_id, requested_mode, mode, status, started_at, finished_at)
SELECT i.id, 'full', 'full', 'succeeded', now(), now() FROM billrecon.integrations i;
SELECT billrecon.map_product('KIOSK', 'ninja', 'asset', '{"device_name": "^kiosk"}');
SELECT billrecon.map_product('WIN', 'ninja', 'asset', '{"os_name": "windows"}');
SELECT billrecon.map_product('LT', 'ninja', 'asset', '{"device_name": "-li?t"}');
SELECT billrecon.map_product('ALL', 'ninja', 'asset', '{}');
"""

# What each group counts, by the SQL definition (as test_reconcile.SQL_GROUP_COUNTS).
REFERENCE = """
SELECT g.psa_company_id, g.rule_id,
       count(DISTINCT coalesce(billrecon._serial_key(u.serial_number), 'record ' || u.id))
         FILTER (WHERE billrecon._rule_captures(g.mode, g.filters, u)) AS machines
  FROM (SELECT DISTINCT x.psa_company_id, x.rule_id, x.integration_id, x.mode, x.filters
          FROM billrecon.reconcile_results x WHERE x.run_id = %s AND x.state = 'reconciled') g
  JOIN billrecon.client_mappings m ON m.psa_company_id = g.psa_company_id
  JOIN billrecon.vendor_accounts va ON va.id = m.vendor_account_id AND va.integration_id = g.integration_id
  LEFT JOIN billrecon.usage_records u ON u.account_id = va.id AND u.removed_at IS NULL
 GROUP BY 1, 2
"""


class TurkishCollation(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.admin = psycopg2.connect(dbname=os.environ.get("BILLRECON_E2E_ADMIN_DB", "postgres"), connect_timeout=10)
        cls.admin.autocommit = True
        with cls.admin.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)
            try:
                cur.execute("CREATE DATABASE %s TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu "
                            "ICU_LOCALE 'tr-TR' LOCALE 'C.UTF-8'" % DB)
            except psycopg2.Error as e:
                cls.admin.close()
                raise unittest.SkipTest("no ICU Turkish collation on this server: %s" % e)
        cls.conn = e2e_lib.connect(DB)
        with cls.conn.cursor() as cur:
            cur.execute("SET client_min_messages = warning")
            cur.execute("CREATE EXTENSION billrecon")
            cur.execute(BOOK)

    @classmethod
    def tearDownClass(cls):
        cls.conn.close()
        with cls.admin.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)
        cls.admin.close()

    def q(self, sql, params=None):
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    def test_the_database_maps_case_the_turkish_way(self):
        self.assertEqual(self.q("SELECT upper('i'), lower('I'), 'KIOSK' ~* '^kiosk', 'kıosk' ~* 'kiosk'"),
                         [("İ", "ı", True, False)])

    def test_counts_equal_the_sql_definition(self):
        run = self.q("SELECT billrecon.reconcile('2026-11-15')")[0][0]
        got = {(c, r): n for c, r, n in self.q(
            "SELECT psa_company_id, rule_id, counted_qty FROM billrecon.reconcile_results "
            "WHERE run_id = %s AND state = 'reconciled' AND counted_qty IS NOT NULL", (run,))}
        want = {(c, r): n for c, r, n in self.q(REFERENCE, (run,))}
        self.assertEqual(len(want), 12, "3 clients x 4 rules")
        self.assertEqual(got, want)
        # The book is built so that the Turkish rules matter: upper() makes
        # 'sn-i7' and 'SN-I7' two machines here (İ vs I), and ~* still
        # matches ASCII 'KIOSK' to '^kiosk' but never 'kıosk'.
        kiosks = sum(n for (c, r), n in got.items()
                     if r == self.q("SELECT rule_id FROM billrecon.reconcile_results WHERE run_id = %s "
                                    "AND product = 'KIOSK' LIMIT 1", (run,))[0][0])
        self.assertGreater(kiosks, 0)
        machines_all = sum(n for (c, r), n in got.items()
                           if r == self.q("SELECT rule_id FROM billrecon.reconcile_results WHERE run_id = %s "
                                          "AND product = 'ALL' LIMIT 1", (run,))[0][0])
        self.assertEqual(machines_all, self.q(
            "SELECT sum(n) FROM (SELECT count(DISTINCT coalesce(billrecon._serial_key(serial_number), 'record ' || id)) n"
            "  FROM billrecon.usage_records GROUP BY account_id) a")[0][0])
        self.assertEqual(self.q("SELECT billrecon._serial_key('sn-i1') = billrecon._serial_key('SN-I1'), "
                                "billrecon._serial_key('sn-i1') = billrecon._serial_key('SN-İ1')")[0], (False, True),
                         "upper() is Turkish here: the book's serials pair up differently than under ASCII rules")
