"""The report views as a BI tool sees them, through a real client library
(psycopg2, Debian's python3-psycopg2), on a reconciled run of the generated
MSP (the fixture of test_push_changes): the column types the protocol
announces (money numeric(14,2), dates as date, external ids and enums as
text), the values that come back (Decimal with exactly 2 places, date), and
that the filters a dashboard applies to a run -- client, integration, type --
are served by an index of reconcile_results, never a sequential scan."""

import datetime
import decimal
import json

from e2e_lib import KindTestCase
from test_push_changes import PushChanges

# PostgreSQL type oids (pg_type.oid) as psycopg2's cursor.description reports them.
INT8, TEXT, NUMERIC, DATE, TIMESTAMPTZ, INT4 = 20, 25, 1700, 1082, 1184, 23
CENTS = decimal.Decimal("0.01").as_tuple().exponent

VIEWS = ("discrepancies", "reconciled_invoices", "flagged_services", "inactive_seats", "change_cards")

# Money a view declares as numeric(14,2): what a BI tool reads as a fixed
# 2-decimal currency column.
MONEY = {
    "discrepancies": ("amount", "monthly_amount", "unit_price"),
    "reconciled_invoices": ("discrepancy_amount", "absolute_amount", "monthly_amount"),
    "change_cards": ("amount", "monthly_amount"),
}
# Money rounded to cents whose column is a plain numeric (no typmod): the
# values have 2 places, the declared type does not say so. Reported in issue
# 10; move a column into MONEY once its view casts it to numeric(14, 2).
MONEY_UNTYPED = {
    "change_cards": ("unit_price",),
    "flagged_services": ("unit_price",),
    "inactive_seats": ("monthly_cost",),
}
DATES = {
    "discrepancies": ("period_start",),
    "reconciled_invoices": ("period_start",),
    "change_cards": ("effective_date",),
}
TIMESTAMPS = {
    "inactive_seats": ("last_active_at",),
    "change_cards": ("decided_at", "pushed_at", "created_at", "updated_at"),
}
# Ids of the source systems and enums: text, never a number or a varchar(n).
TEXTS = {
    "discrepancies": ("psa_company_id", "company", "agreement_id", "line_item_id", "product", "integration", "mode",
                      "type", "billing_cycle", "invoiced_source", "counted_source", "price_source",
                      "vendor_account_id", "usage_kind", "explanation"),
    "reconciled_invoices": ("psa_company_id", "company", "billing_cycle", "integrations", "worst_integration_status"),
    "flagged_services": ("psa_company_id", "agreement_id", "line_item_id", "product", "flag", "company", "detail"),
    "inactive_seats": ("integration", "vendor_account_id", "psa_company_id", "seat", "kind", "company", "product",
                       "device_class", "seat_id", "billed_on_line_item_id"),
    "change_cards": ("psa_company_id", "line_item_id", "status", "kind", "company", "agreement_id", "product", "type",
                     "billing_cycle", "vendor_integration", "usage_kind"),
}
BIGINTS = {
    "discrepancies": ("run_id", "result_id"),
    "reconciled_invoices": ("run_id", "discrepancy_count"),
    "change_cards": ("card_id", "run_id", "last_run_id"),
}
# The rows read: the run's, or every row of the views over the current data.
WHERE = {
    "discrepancies": "run_id = %(run)s",
    "reconciled_invoices": "run_id = %(run)s",
    "change_cards": "run_id = %(run)s OR last_run_id = %(run)s",
    "flagged_services": "true",
    "inactive_seats": "true",
}


def plan_nodes(node):
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


class BiViews(PushChanges, KindTestCase):
    KIND = "connectwise"
    TRUTH = "psa_company_id"

    def setUp(self):
        super().setUp()
        self.run = self.prepare()
        # Something in every view: an approved card (a date), an inconsistent price.
        card = self.pick(1, self.run)[0]
        self.scalar("SELECT billrecon.approve(ARRAY[%s]::bigint[])", (card["card_id"],))

    def described(self, view):
        """{column: psycopg2 Column} of SELECT * FROM the view, and its rows."""
        with self.conn.cursor() as cur:
            cur.execute("SELECT * FROM billrecon.%s WHERE %s" % (view, WHERE[view]), {"run": self.run})
            cols = {c.name: c for c in cur.description}
            rows = [dict(zip(cols, r)) for r in cur.fetchall()]
        return cols, rows

    def test_types_bi_tools_see(self):
        for view in VIEWS:
            cols, rows = self.described(view)
            catalog = {r["column_name"]: r for r in self.q(
                """SELECT column_name, data_type, numeric_precision, numeric_scale
                     FROM information_schema.columns WHERE table_schema = 'billrecon' AND table_name = %s""",
                (view,))}
            self.assertEqual(set(cols), set(catalog), view)
            self.assertTrue(rows, "%s has rows for the run" % view)
            for name in MONEY.get(view, ()):
                c = cols[name]
                self.assertEqual((c.type_code, c.precision, c.scale), (NUMERIC, 14, 2),
                                 "%s.%s: numeric(14,2) on the wire" % (view, name))
                self.assertEqual((catalog[name]["data_type"], catalog[name]["numeric_precision"],
                                  catalog[name]["numeric_scale"]), ("numeric", 14, 2), "%s.%s" % (view, name))
            for name in MONEY.get(view, ()) + MONEY_UNTYPED.get(view, ()):
                self.assertEqual(cols[name].type_code, NUMERIC, "%s.%s is numeric" % (view, name))
                values = [r[name] for r in rows if r[name] is not None]
                self.assertTrue(values or name in ("unit_price", "monthly_cost"), "%s.%s: some values" % (view, name))
                for v in values:
                    self.assertIsInstance(v, decimal.Decimal, "%s.%s" % (view, name))
                    self.assertEqual(v.as_tuple().exponent, CENTS, "%s.%s = %s: 2 decimals" % (view, name, v))
            for name in DATES.get(view, ()):
                self.assertEqual(cols[name].type_code, DATE, "%s.%s is a date" % (view, name))
                self.assertEqual(catalog[name]["data_type"], "date")
                for r in rows:
                    if r[name] is not None:
                        self.assertIs(type(r[name]), datetime.date, "%s.%s" % (view, name))
            for name in TIMESTAMPS.get(view, ()):
                self.assertEqual(cols[name].type_code, TIMESTAMPTZ, "%s.%s is a timestamptz" % (view, name))
                for r in rows:
                    if r[name] is not None:
                        self.assertIsNotNone(r[name].tzinfo, "%s.%s carries its time zone" % (view, name))
            for name in TEXTS.get(view, ()):
                self.assertEqual(cols[name].type_code, TEXT, "%s.%s is text" % (view, name))
                for r in rows:
                    self.assertIsInstance(r[name], (str, type(None)), "%s.%s" % (view, name))
            for name in BIGINTS.get(view, ()):
                self.assertEqual(cols[name].type_code, INT8, "%s.%s is a bigint" % (view, name))

        # The days inactive are a whole number; a card's flags are a text array.
        cols, rows = self.described("inactive_seats")
        self.assertEqual(cols["days_inactive"].type_code, INT4)
        self.assertTrue(all(isinstance(r["days_inactive"], int) for r in rows))
        cols, rows = self.described("change_cards")
        self.assertTrue(all(isinstance(r["flags"], list) and all(isinstance(f, str) for f in r["flags"]) for r in rows))
        self.assertIn(datetime.date, {type(r["effective_date"]) for r in rows}, "an approved card has a date")

    def test_values_match_the_run(self):
        """What the client reads is what the run stored, to the cent."""
        _, rows = self.described("discrepancies")
        stored = {r["id"]: r for r in self.q("SELECT * FROM billrecon.reconcile_results WHERE run_id = %s",
                                              (self.run,))}
        for r in rows:
            s = stored[r["result_id"]]
            self.assertEqual(r["amount"], s["amount"])
            if s["unit_price"] is not None:
                self.assertEqual(r["unit_price"], s["unit_price"].quantize(decimal.Decimal("0.01"),
                                                                           decimal.ROUND_HALF_UP))
            self.assertEqual(r["psa_company_id"], s["company_external_id"])
        _, invoices = self.described("reconciled_invoices")
        run_total = self.scalar("SELECT discrepancy_amount FROM billrecon.reconcile_runs WHERE id = %s", (self.run,))
        self.assertEqual(sum(i["discrepancy_amount"] for i in invoices), run_total)
        self.assertEqual(sum(r["amount"] or 0 for r in rows), run_total)

    # -- filters ------------------------------------------------------------------------------
    def plan(self, sql, params=()):
        """The JSON plan of a query with sequential scans priced out: a
        sequential scan left in it means no index can serve the filter."""
        self.execute("SET enable_seqscan = off")
        try:
            return self.scalar("EXPLAIN (FORMAT JSON) " + sql, params)[0]["Plan"]
        finally:
            self.execute("RESET enable_seqscan")

    def assert_run_index(self, sql, params=()):
        """Every read of reconcile_results in the plan goes through an index
        condition on run_id (a full index scan filtering every row is no better
        than a sequential scan)."""
        nodes = [n for n in plan_nodes(self.plan(sql, params)) if n.get("Relation Name") == "reconcile_results"
                 or (n.get("Index Name") or "").startswith("reconcile_results")]
        self.assertTrue(nodes, "the plan reads reconcile_results: %s" % sql)
        for n in nodes:
            kind = n["Node Type"]
            self.assertNotEqual(kind, "Seq Scan", "sequential scan of reconcile_results for: %s" % sql)
            if kind in ("Index Scan", "Index Only Scan", "Bitmap Index Scan"):
                self.assertIn("run_id", n.get("Index Cond", ""),
                              "%s of %s without a run_id condition for: %s\n%s"
                              % (kind, n.get("Index Name"), sql, json.dumps(n, indent=1)[:2000]))

    def test_filters_are_served_by_an_index(self):
        self.execute("ANALYZE billrecon.reconcile_results")
        some = self.one("""SELECT psa_company_id, integration, type FROM billrecon.discrepancies
                            WHERE run_id = %s AND psa_company_id IS NOT NULL AND integration IS NOT NULL
                            ORDER BY abs(amount) DESC NULLS LAST LIMIT 1""", (self.run,))
        run = self.run
        for where, params in (
                ("run_id = %s", (run,)),
                ("run_id = billrecon.last_run_id()", ()),
                ("run_id = %s AND psa_company_id = %s", (run, some["psa_company_id"])),
                ("run_id = %s AND integration = %s", (run, some["integration"])),
                ("run_id = %s AND type = %s", (run, some["type"])),
                ("run_id = %s AND type IN ('calculated', 'estimated')", (run,)),
                ("run_id = %s AND psa_company_id = %s AND integration = %s AND type = %s",
                 (run, some["psa_company_id"], some["integration"], some["type"]))):
            self.assert_run_index("SELECT * FROM billrecon.discrepancies WHERE " + where, params)
            self.assert_run_index("SELECT * FROM billrecon.reconciled_lines WHERE " + where, params)
        for where, params in (("run_id = %s", (run,)),
                              ("run_id = %s AND psa_company_id = %s", (run, some["psa_company_id"]))):
            self.assert_run_index("SELECT * FROM billrecon.reconciled_invoices WHERE " + where, params)
            self.assert_run_index("SELECT * FROM billrecon.discrepancies_by_client WHERE " + where, params)
        self.assert_run_index("SELECT * FROM billrecon.discrepancies_by_service WHERE run_id = %s", (run,))
        # Inactive seats price each seat from the newest run, through the index.
        self.assert_run_index("SELECT * FROM billrecon.inactive_seats WHERE psa_company_id = %s",
                              (some["psa_company_id"],))


# The fixture comes from PushChanges; its own tests run in test_push_changes.
for _name in dir(PushChanges):
    if _name.startswith("test_"):
        setattr(BiViews, _name, None)
