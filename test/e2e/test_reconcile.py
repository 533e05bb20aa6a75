"""billrecon.reconcile() on the generated MSP (ConnectWise + NinjaOne, mapped
from the generator's ground truth, rules from the presets): properties that
must hold whatever the data — every number re-derived independently, a
client's total is the sum of its lines, re-running on unchanged data gives the
same results — and the bad-input rules (an integration red or never synced, a
month with nothing in force: reconcile still runs and says so)."""

import decimal

import psycopg2

from e2e_lib import KindTestCase
from test_push_changes import PushChanges

D = decimal.Decimal
CENT = D("0.01")


def money(x):
    return x.quantize(CENT, rounding=decimal.ROUND_HALF_EVEN) if x is not None else None


# The counting of reconcile() written out in plain SQL, record by rule, with
# the same SQL functions the views use (billrecon._rule_quantity,
# _rule_captures, _usage_excluded, _serial_key): the definition the C++
# counting pass (billrecon._count_usage) must reproduce exactly.
SQL_GROUP_COUNTS = """
SELECT g.psa_company_id, g.rule_id, g.integration_id, g.mode,
       coalesce(sum(CASE WHEN g.mode = 'manual' THEN billrecon._compare_quantity(u)
                         ELSE billrecon._rule_quantity(g.mode, g.filters, u) END), 0) AS qty,
       count(DISTINCT coalesce(billrecon._serial_key(u.serial_number), 'record ' || u.id))
         FILTER (WHERE g.mode = 'asset' AND billrecon._rule_captures(g.mode, g.filters, u)) AS machines
  FROM (SELECT DISTINCT x.psa_company_id, x.rule_id, x.integration_id, x.mode, x.filters
          FROM billrecon.reconcile_results x WHERE x.run_id = %(run)s AND x.state = 'reconciled') g
  JOIN billrecon.client_mappings m ON m.psa_company_id = g.psa_company_id
  JOIN billrecon.vendor_accounts va ON va.id = m.vendor_account_id AND va.integration_id = g.integration_id
       AND va.removed_at IS NULL
  LEFT JOIN billrecon.usage_records u ON u.account_id = va.id AND u.removed_at IS NULL
       AND NOT billrecon._usage_excluded(u)
 GROUP BY 1, 2, 3, 4
"""

SQL_UNACCOUNTED = """
  WITH lines AS MATERIALIZED (   -- the run's lines with their filters unpacked once
    SELECT x.psa_company_id, x.integration_id, x.mode, billrecon._rule_filter(x.filters) AS f
      FROM billrecon.reconcile_results x
     WHERE x.run_id = %(run)s AND x.row_kind = 'line' AND x.state IN ('reconciled', 'ignored', 'custom_sql', 'unmapped')
       AND x.integration_id IS NOT NULL
  )
  SELECT c.id AS psa_company_id, i.id AS integration_id, u.kind AS usage_kind,
         CASE u.kind WHEN 'device' THEN coalesce(u.device_class, u.product, 'other')
                     WHEN 'user' THEN 'licensed users'
                     ELSE coalesce(u.product, u.product_name, '') END AS product,
         max(CASE WHEN u.kind IN ('licence', 'subscription') THEN billrecon._usage_display_name(u) END) AS product_name,
         sum(billrecon._usage_quantity(u)) AS counted_qty, count(DISTINCT va.id) AS counted_accounts,
         min(u.id) AS example_usage_id
    FROM billrecon.client_mappings m
    JOIN billrecon.psa_companies c ON c.id = m.psa_company_id AND c.removed_at IS NULL
    JOIN billrecon.vendor_accounts va ON va.id = m.vendor_account_id AND va.removed_at IS NULL
    JOIN billrecon.integrations i ON i.id = va.integration_id AND i.enabled
    JOIN billrecon.usage_records u ON u.account_id = va.id AND u.removed_at IS NULL
   WHERE (%(company)s::bigint IS NULL OR m.psa_company_id = %(company)s::bigint)
     AND NOT EXISTS (SELECT 1 FROM billrecon.excluded_vendor_products e
                      WHERE e.integration_id = u.integration_id
                        AND lower(e.product) IN (lower(coalesce(u.product, '')), lower(coalesce(u.product_name, ''))))
     AND (u.kind <> 'user' OR (coalesce(u.licensed, true) AND NOT EXISTS (
            SELECT 1 FROM billrecon.usage_records l
             WHERE l.account_id = va.id AND l.kind = 'licence' AND l.removed_at IS NULL
               AND NOT billrecon._usage_excluded(l))))
     AND NOT (u.kind = 'device' AND EXISTS (
            SELECT 1 FROM billrecon.client_mappings m2
              JOIN billrecon.vendor_accounts va2 ON va2.id = m2.vendor_account_id AND va2.removed_at IS NULL
                   AND va2.integration_id <> i.id
              JOIN billrecon.usage_records d ON d.account_id = va2.id AND d.removed_at IS NULL AND d.kind = 'device'
             WHERE m2.psa_company_id = c.id
               AND (billrecon._serial_key(d.serial_number) = billrecon._serial_key(u.serial_number)
                    OR (billrecon._host_key(d.device_name) = billrecon._host_key(u.device_name)
                        AND (billrecon._serial_key(d.serial_number) IS NULL
                             OR billrecon._serial_key(u.serial_number) IS NULL)))
               AND EXISTS (SELECT 1 FROM billrecon.reconcile_results x
                            WHERE x.run_id = %(run)s AND x.row_kind = 'line' AND x.psa_company_id = c.id
                              AND x.integration_id = d.integration_id
                              AND x.state IN ('reconciled', 'ignored', 'custom_sql', 'unmapped')
                              AND (x.mode = 'custom_sql' OR billrecon._rule_captures(x.mode, x.filters, d)))))
     AND NOT (u.kind IN ('licence', 'subscription') AND billrecon._usage_display_name(u) IS NOT NULL AND EXISTS (
            SELECT 1 FROM billrecon.reconcile_results x
             WHERE x.run_id = %(run)s AND x.row_kind = 'line' AND x.psa_company_id = c.id
               AND x.state IN ('reconciled', 'ignored', 'custom_sql', 'unmapped')
               AND strpos(lower(coalesce(x.product_name, '')), lower(billrecon._usage_display_name(u))) > 0))
     AND NOT (u.kind = 'subscription' AND u.product_name IS NOT NULL AND EXISTS (
            SELECT 1 FROM billrecon.client_mappings m2
              JOIN billrecon.vendor_accounts va2 ON va2.id = m2.vendor_account_id AND va2.removed_at IS NULL
              JOIN billrecon.usage_records l ON l.account_id = va2.id AND l.removed_at IS NULL AND l.kind = 'licence'
             WHERE m2.psa_company_id = c.id
               AND lower(billrecon._usage_display_name(l)) = lower(u.product_name)))
     AND NOT EXISTS (
           SELECT 1 FROM lines x
            WHERE x.psa_company_id = c.id AND x.integration_id = i.id
              AND (x.mode = 'custom_sql' OR billrecon._filter_captures(x.mode, x.f, u)))
   GROUP BY c.id, i.id, u.kind, 4
  HAVING sum(billrecon._usage_quantity(u)) > 0;
"""


def assert_counting_matches_sql(case, run):
    """The run's counted quantities and unaccounted rows equal the plain-SQL definition."""
    reps = {(r["psa_company_id"], r["rule_id"], r["integration_id"]): r
            for r in case.q("SELECT * FROM billrecon.reconcile_results WHERE run_id = %s AND state = 'reconciled' "
                            "AND counted_qty IS NOT NULL", (run,))}
    ref = case.q(SQL_GROUP_COUNTS, {"run": run})
    case.assertEqual(len(ref), len(reps))
    for g in ref:
        rep = reps[(g["psa_company_id"], g["rule_id"], g["integration_id"])]
        counted = g["machines"] if g["mode"] == "asset" else g["qty"]
        duplicates = g["qty"] - g["machines"] if g["mode"] == "asset" else 0
        case.assertEqual(rep["counted_qty"], counted, rep["line_item_external_id"])
        case.assertEqual(rep["duplicates_counted_once"] or 0, duplicates, rep["line_item_external_id"])
    key = lambda r: (r["psa_company_id"], r["integration_id"], r["usage_kind"], r["product"])
    cols = ("product_name", "counted_qty", "counted_accounts", "example_usage_id")
    got = {key(r): tuple(r[c] for c in cols)
           for r in case.q("SELECT * FROM billrecon.reconcile_results WHERE run_id = %s AND row_kind = 'unaccounted'",
                           (run,))}
    company = case.scalar("SELECT client_id FROM billrecon.reconcile_runs WHERE id = %s", (run,))
    want = {key(r): tuple(r[c] for c in cols) for r in case.q(SQL_UNACCOUNTED, {"run": run, "company": company})}
    case.assertEqual(got, want)
    return len(ref), len(want)


class ReconcileProperties(PushChanges, KindTestCase):
    KIND = "connectwise"
    TRUTH = "psa_company_id"

    def results(self, run):
        return self.q("SELECT * FROM billrecon.reconcile_results WHERE run_id = %s ORDER BY id", (run,))

    def test_every_number_is_rederived_and_totals_add_up(self):
        run = self.prepare()
        rows = self.results(run)
        self.assertTrue(any(r["type"] == "calculated" and r["variance"] != 0 for r in rows))
        groups = {}
        for r in rows:
            if r["state"] != "reconciled":
                continue
            groups.setdefault((r["psa_company_id"], r["rule_id"], r["integration_id"]), []).append(r)
        for key, lines in groups.items():
            reporting = [r for r in lines if r["counted_qty"] is not None]
            self.assertEqual(len(reporting), 1, "one line of a group carries its variance: %r" % (key,))
            rep = reporting[0]
            latest = max(lines, key=lambda r: (r["effective_date"] is not None, r["effective_date"], r["line_item_id"]))
            self.assertEqual(rep["id"], latest["id"], "the variance is on the line with the latest effective date")
            expected = sum((r["invoiced_qty"] + r["adjustment_qty"]) * r["multiplier"] for r in lines)
            self.assertEqual(rep["expected_qty"], expected)
            self.assertEqual(rep["variance"], rep["counted_qty"] - expected)
            for r in lines:
                if r is not rep:
                    self.assertEqual(r["variance"], 0)
            if rep["unit_price"] is not None:
                self.assertEqual(rep["amount"], money(rep["variance"] / rep["multiplier"] * rep["unit_price"]))
            # Counted independently: the client's mapped NinjaOne devices of the rule's classes.
            classes = (rep["filters"] or {}).get("device_class")
            if rep["mode"] == "asset" and classes and set(rep["filters"]) == {"device_class"}:
                # One machine reported twice (one serial number) is one seat.
                n = self.scalar("""SELECT count(DISTINCT coalesce(billrecon._serial_key(u.serial_number), u.id::text))
                                     FROM billrecon.usage_records u
                                     JOIN billrecon.client_mappings m ON m.vendor_account_id = u.account_id
                                    WHERE m.psa_company_id = %s AND u.integration_id = %s AND u.removed_at IS NULL
                                      AND u.kind = 'device' AND u.device_class = ANY (%s)""",
                                (rep["psa_company_id"], rep["integration_id"], classes))
                self.assertEqual(rep["counted_qty"], n, "counted devices of %s" % rep["line_item_external_id"])
        # A client's amount is the sum of its discrepancies' amounts; the run's, the sum of all.
        for inv in self.q("SELECT * FROM billrecon.reconciled_invoices WHERE run_id = %s", (run,)):
            lines = self.q("SELECT amount FROM billrecon.discrepancies WHERE run_id = %s AND psa_company_id = %s",
                           (run, inv["psa_company_id"]))
            self.assertEqual(inv["discrepancy_amount"], sum((l["amount"] or 0) for l in lines))
            self.assertEqual(inv["discrepancy_count"], len(lines))
        total = self.scalar("SELECT coalesce(sum(amount), 0) FROM billrecon.discrepancies WHERE run_id = %s", (run,))
        self.assertEqual(self.scalar("SELECT discrepancy_amount FROM billrecon.reconcile_runs WHERE id = %s", (run,)),
                         total)
        # Monthly normalization.
        for r in rows:
            if r["amount"] is not None and r["billing_cycle"] in ("quarterly", "annual"):
                months = 3 if r["billing_cycle"] == "quarterly" else 12
                self.assertEqual(r["monthly_amount"], (r["amount"] / months).quantize(CENT, decimal.ROUND_HALF_UP)
                                 if r["amount"] >= 0 else -((-r["amount"]) / months).quantize(CENT, decimal.ROUND_HALF_UP))

    def test_the_counting_pass_equals_the_sql_definition(self):
        run = self.prepare()
        groups, unaccounted = assert_counting_matches_sql(self, run)
        self.assertGreater(groups, 0)
        # Unaccounted usage too: drop a rule, so its devices count for no line.
        self.execute("DELETE FROM billrecon.service_rules WHERE id = (SELECT min(id) FROM billrecon.service_rules)")
        run = self.scalar("SELECT billrecon.reconcile()")
        groups, unaccounted = assert_counting_matches_sql(self, run)
        self.assertGreater(unaccounted, 0)
        # And a run of one client counts that client alike.
        client = self.scalar("SELECT company_external_id FROM billrecon.reconcile_results WHERE run_id = %s "
                             "AND row_kind = 'line' ORDER BY id LIMIT 1", (run,))
        assert_counting_matches_sql(self, self.scalar("SELECT billrecon.reconcile(current_date, %s)", (client,)))

    def test_a_quantity_beyond_exact_counting_is_refused_with_its_own_error(self):
        """The counting pass runs inside the scan's executor (a DestReceiver of
        ours): a record it cannot count exactly stops the scan, and the caller
        sees the counting pass's own error (SQLSTATE, detail, hint), not a
        wrong number and not the scan's stop; nothing of the run is kept."""
        first = self.prepare()
        runs = self.scalar("SELECT count(*) FROM billrecon.reconcile_runs")
        usage = self.scalar("SELECT max(u.id) FROM billrecon.usage_records u JOIN billrecon.client_mappings m "
                            "ON m.vendor_account_id = u.account_id WHERE u.kind = 'device'")
        self.execute("UPDATE billrecon.usage_records SET quantity = 1e40 WHERE id = %s", (usage,))
        with self.assertRaises(psycopg2.Error) as cm:
            self.scalar("SELECT billrecon.reconcile()")
        self.assertEqual(cm.exception.pgcode, "22003", str(cm.exception))
        self.assertIn("out of range for counting", cm.exception.diag.message_primary)
        self.assertIn("usage_records.quantity", cm.exception.diag.message_hint)
        self.assertEqual(self.scalar("SELECT count(*) FROM billrecon.reconcile_runs"), runs)
        # Corrected, the next run counts as before.
        self.execute("UPDATE billrecon.usage_records SET quantity = 1 WHERE id = %s", (usage,))
        again = self.scalar("SELECT billrecon.reconcile()")
        self.assertEqual(self.scalar("SELECT line_count FROM billrecon.reconcile_runs WHERE id = %s", (again,)),
                         self.scalar("SELECT line_count FROM billrecon.reconcile_runs WHERE id = %s", (first,)))

    def test_plain_patterns_and_non_ascii_values_count_as_the_sql_definition(self):
        """Plain-text patterns (^kiosk, windows server, -lt$) are decided by the
        counting pass without the regex engine for ASCII values, with the
        database's case classes, and by PostgreSQL's engine otherwise; case
        mapping of serials and names likewise: the same numbers as ~*, upper()
        and lower() in SQL, whatever the letters."""
        first = self.prepare()
        # The asset rules that count the most devices first: the '^kiosk' rule
        # then sees many names (which rule that is depends on the generated book).
        rules = [r["rule_id"] for r in self.q(
            "SELECT x.rule_id FROM billrecon.reconcile_results x WHERE x.run_id = %s AND x.state = 'reconciled' "
            "AND x.mode = 'asset' GROUP BY x.rule_id ORDER BY coalesce(sum(x.counted_qty), 0) DESC, x.rule_id",
            (first,))]
        self.assertGreaterEqual(len(rules), 2)
        for rule, filters in zip(rules, ('{"device_name": "^kiosk"}', '{"os_name": "windows server"}',
                                         '{"device_name": "-lt$", "device_class": ["laptop", "desktop"]}')):
            self.execute("UPDATE billrecon.service_rules SET filters = %s::jsonb WHERE id = %s", (filters, rule))
        # Names in every case, with non-ASCII letters before, inside and after
        # the pattern's text, and serials that upper() changes.
        self.execute("""
            UPDATE billrecon.usage_records
               SET device_name = CASE id % 8 WHEN 0 THEN 'KIOSK-FRONT-DESK-' || id WHEN 1 THEN 'kİosk-' || id
                                             WHEN 2 THEN 'Kiosk-Ünit-' || id WHEN 3 THEN 'Ärzte-kiosk-' || id
                                             WHEN 4 THEN 'acme-branch-' || id || '-LT' WHEN 5 THEN 'acme-lt-' || id
                                             WHEN 6 THEN 'lobby-kiosk-' || id ELSE 'Kiosk' END,
                   os_name = CASE id % 4 WHEN 0 THEN 'Microsoft WINDOWS Server 2022' WHEN 1 THEN 'Windows Sérver'
                                         WHEN 2 THEN 'windows server' ELSE os_name END,
                   serial_number = CASE WHEN id % 5 = 0 THEN 'sn-' || (id / 2) WHEN id % 5 = 1 THEN 'SN-' || (id / 2)
                                        WHEN id % 5 = 2 THEN 'sé-' || id ELSE serial_number END
             WHERE kind = 'device'""")
        run = self.scalar("SELECT billrecon.reconcile()")
        groups, _ = assert_counting_matches_sql(self, run)
        self.assertGreater(groups, 0)
        kiosks = self.scalar("SELECT sum(counted_qty) FROM billrecon.reconcile_results WHERE run_id = %s "
                             "AND rule_id = %s AND group_line_item_id IS NOT NULL AND counted_qty IS NOT NULL",
                             (run, rules[0]))
        self.assertGreater(kiosks or 0, 0, "some devices are kiosks")

    def test_reconciling_unchanged_data_again_gives_the_same_results(self):
        first = self.prepare()
        second = self.scalar("SELECT billrecon.reconcile()")
        skip = {"id", "run_id", "example_usage_id"}
        a = [{k: v for k, v in r.items() if k not in skip} for r in self.results(first)]
        b = [{k: v for k, v in r.items() if k not in skip} for r in self.results(second)]
        key = lambda r: (str(r["row_kind"]), str(r["line_item_external_id"]), str(r["vendor_account_external_id"]),
                         str(r["company_external_id"]), str(r["integration"]), str(r["product"]))
        self.assertEqual(sorted(a, key=key), sorted(b, key=key))
        # And no card is raised twice.
        dup = self.scalar("""SELECT count(*) FROM (SELECT line_item_id FROM billrecon.proposed_changes
                                                     WHERE kind = 'quantity' AND status = 'pending'
                                                       AND psa_integration_id = %s
                                                     GROUP BY line_item_id HAVING count(*) > 1) d""", (self.psa_id,))
        self.assertEqual(dup, 0)

    def test_a_red_integration_and_an_empty_month_are_said_not_hidden(self):
        self.map_clients()
        self.scalar("SELECT billrecon.apply_presets(%s)", (self.nj,))
        self.nj_mock = self.mocks.nj
        self.nj_mock.fault(kind="status", status=500, match="/v2/")
        self.execute("SELECT billrecon.update_integration(%s, options => %s::jsonb)",
                     (self.nj, '{"max_retries": 0, "page_size": 1000}'))
        self.assert_failed(self.sync(self.nj, "full"))
        del self.conn.notices[:]
        run = self.scalar("SELECT billrecon.reconcile()")
        notice = " ".join(self.conn.notices)
        self.assertRegex(notice, "WARNING:  reconcile run %d used data that may be incomplete" % run)
        self.assertIn(self.nj, notice)
        notes = self.scalar("SELECT notes FROM billrecon.reconcile_runs WHERE id = %s", (run,))
        self.assertTrue(any(self.nj in n and "red" in n for n in notes), notes)
        flagged = self.q("""SELECT input_warning, explanation FROM billrecon.reconcile_results
                             WHERE run_id = %s AND integration = %s AND state = 'reconciled'""", (run, self.nj))
        self.assertTrue(flagged)
        self.assertTrue(all("red" in r["input_warning"] and "Caution" in r["explanation"] for r in flagged))
        # The previous data is still what is counted: a failed sync changed nothing.
        self.assertTrue(any(r["explanation"].startswith("Counted") for r in flagged))

        del self.conn.notices[:]
        empty = self.scalar("SELECT billrecon.reconcile('1990-01-15')")
        notice = " ".join(self.conn.notices)
        self.assertRegex(notice, "no line item of %s is in force on 1990-01-31" % self.psa)
        self.assertEqual(self.scalar("SELECT count(*) FROM billrecon.reconcile_results WHERE run_id = %s "
                                     "AND row_kind = 'line'", (empty,)), 0)


# The fixture comes from PushChanges; its own tests run in test_push_changes.
for _name in dir(PushChanges):
    if _name.startswith("test_"):
        setattr(ReconcileProperties, _name, None)
