"""Injection: hostile text everywhere billrecon takes text (issue 8;
docs/security.md).

HOSTILE holds quotes and SQL ('); DROP TABLE ...; --), double quotes,
dollar quotes ($$, $q$), backslashes, format() directives (%s %I %L),
newlines and CR, RTL overrides, emoji with joiners, combining marks, markup,
a spreadsheet formula (=cmd|...) and a 5,000-character string. Each goes
through:

- integration names: add, update, drop, sync, sync_async, schedule_sync
  (names are validated: 22023; unknown: 42704; pg_cron elsewhere: 55000),
  and the pg_cron command text built for any name (a quoted literal in a
  fully qualified call);
- names a vendor API sends: ConnectWise company names, addition
  descriptions and product identifiers, NinjaOne organization names and
  device names; a JSON \\u0000 fails the sync with 22P02 naming it
  (PostgreSQL text cannot hold NUL; it used to cut the value short);
- rule filters: patterns with quotes stored verbatim; an invalid regular
  expression refused with 22023 naming the filter;
- reasons, notes and tags (ignore_line_item, ignore_vendor_account,
  exclude_vendor_product, reject_client_match, note_line_item);
- CSV cells of import_usage_csv (quoted commas, embedded newlines, quotes,
  formula-looking cells stored as written).

After each: every value reads back byte for byte, no other error than the
documented validation errors, and billrecon's schema and every table but
the ones the call was meant to change are unchanged (fingerprint below).
report_html's escaping of every text field is in test_report_html.py
(test_every_text_field_is_escaped)."""

import json

import psycopg2

from e2e_lib import E2ETestCase, CW_PREFIX  # noqa: F401

HOSTILE = [
    "'); DROP TABLE billrecon.integrations; --",
    'Robert"); DROP TABLE billrecon.integrations;--',
    '"', "$$", "$q$ SELECT 1 $q$", "\\", "back\\slash\\n\\'", "%s %I %L %% %1$s",
    "line one\nline two", "cr\rcrlf\r\nend", "tab\there",
    "\u202eRTL override \u05e9\u05dc\u05d5\u05dd \u0627\u0644\u0633\u0644\u0627\u0645",
    "emoji \U0001F4A9 family \U0001F468\u200D\U0001F469\u200D\U0001F467",
    "combining e\u0301\u0308 a\u0300\u0323",
    "<script>alert(1)</script> & \"Co\"",
    "=cmd|' /C calc'!A0", "+SUM(1+1)", "@HYPERLINK(\"http://x\")",
    "x" * 5000,
]
# Valid as names of nothing: what add_integration and friends must refuse.
NAME_ERRORS = {"22023", "42704", "55000"}


class Injection(E2ETestCase):
    def add(self, kind, **kw):
        """Every integration of a test is dropped after it (one is the default PSA)."""
        name, iid = super().add(kind, **kw)
        self.addCleanup(self.execute, "SELECT billrecon.drop_integration(%s)", (name,))
        return name, iid

    def fingerprint(self, skip=()):
        """The schema's objects and every table's content (md5 per table)."""
        objs = self.scalar("""SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
                                SELECT c.oid::regclass::text || ':' || c.relkind::text AS x FROM pg_class c
                                 WHERE c.relnamespace = 'billrecon'::regnamespace
                                UNION ALL SELECT p.oid::regprocedure::text FROM pg_proc p
                                 WHERE p.pronamespace = 'billrecon'::regnamespace) s""")
        tables = {}
        for t in self.q("""SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'billrecon'::regnamespace
                            AND c.relkind IN ('r', 'p') AND c.relname NOT LIKE '\\_stage%%' ORDER BY 1"""):
            name = t["relname"]
            if name in skip:
                continue
            tables[name] = self.scalar("SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) "
                                       "FROM billrecon.%s t" % name)
        return objs, tables

    def assert_unchanged(self, before, what, skip=()):
        after = self.fingerprint(skip)
        self.assertEqual(after[0], before[0], "%s changed billrecon's schema" % what)
        changed = [t for t in before[1] if t not in skip and before[1][t] != after[1].get(t)]
        self.assertEqual(changed, [], "%s changed these tables" % what)

    def call_error(self, sql, params):
        """The SQLSTATE of the call's error, or None when it succeeded."""
        try:
            self.execute(sql, params)
            return None
        except psycopg2.Error as e:
            return e.pgcode

    # -- integration names ---------------------------------------------------------------------
    def test_hostile_integration_names(self):
        url = self.mocks.nj_base_url
        before = self.fingerprint()
        for h in HOSTILE:
            with self.subTest(name=h[:40]):
                calls = [
                    ("SELECT billrecon.add_integration(%s, 'ninjaone', %s, '{\"client_id\":\"a\",\"client_secret\":\"b\"}')",
                     (h, url)),
                    ("SELECT billrecon.update_integration(%s, enabled => false)", (h,)),
                    ("SELECT billrecon.drop_integration(%s)", (h,)),
                    ("SELECT * FROM billrecon.sync(%s)", (h,)),
                    ("SELECT billrecon.sync_async(%s)", (h,)),
                    ("SELECT billrecon.schedule_sync('0 6 29 2 *', %s)", (h,)),
                    ("SELECT billrecon.unschedule_sync(%s, 'quick')", (h,)),
                    ("SELECT billrecon.import_usage_csv(%s, '')", (h,)),
                    ("SELECT billrecon.map_client(%s, %s, %s)", (h, h, h)),
                    ("SELECT billrecon.apply_presets(%s)", (h,)),
                ]
                for sql, params in calls:
                    self.assertIn(self.call_error(sql, params), NAME_ERRORS, sql)
                # The pg_cron command for any name is a literal in a qualified call.
                cmd = self.scalar("SELECT billrecon._sync_job_command(%s, 'quick')", (h,))
                self.assertEqual(cmd, "SELECT billrecon.sync_async(%s, 'quick')"
                                 % self.scalar("SELECT quote_literal(%s)", (h,)))
                self.assertEqual(self.scalar("SELECT (regexp_match(%s, '^SELECT billrecon\\.sync_async\\((.*), ''quick''\\)$'))[1]",
                                             (cmd,)), self.scalar("SELECT quote_literal(%s)", (h,)))
        # A hostile schedule is pg_cron's to refuse; here it never reaches it.
        name, _ = self.add("ninjaone")
        self.assertEqual(self.call_error("SELECT billrecon.schedule_sync(%s, %s)", (HOSTILE[0], name)), "55000")
        self.assert_unchanged(before, "hostile integration names", skip=("integrations", "integration_credentials",
                                                                         "audit_log"))

    # -- names from vendor APIs ----------------------------------------------------------------
    def test_hostile_names_from_vendor_apis_round_trip(self):
        cw, cw_id = self.add("connectwise")
        nj, nj_id = self.add("ninjaone", options={"page_size": 1000})
        companies = [c.id for c in self.ds.companies][:len(HOSTILE)]
        additions = [a.id for a in self.ds.additions][:len(HOSTILE)]
        orgs = [o.id for o in self.ds.organizations][:len(HOSTILE)]
        devices = [d.id for d in self.ds.devices][:len(HOSTILE)]
        for h, c, a, o, d in zip(HOSTILE, companies, additions, orgs, devices):
            self.cw.mutate(entity="company", id=c, set={"name": h})
            self.cw.mutate(entity="addition", id=a, set={"description": h, "product/identifier": h[:200]})
            self.nj.mutate(entity="organization", id=o, set={"name": h})
            self.nj.mutate(entity="device", id=d, set={"displayName": h, "systemName": h})
        before = self.fingerprint()
        self.assert_succeeded(self.sync(cw, "full"))
        self.assert_succeeded(self.sync(nj, "full"))
        for h, c, a, o, d in zip(HOSTILE, companies, additions, orgs, devices):
            with self.subTest(value=h[:40]):
                self.assertEqual(self.scalar("SELECT name FROM billrecon.psa_companies WHERE integration_id = %s "
                                             "AND external_id = %s", (cw_id, str(c))), h)
                line = self.one("SELECT description, product_code FROM billrecon.psa_line_items "
                                "WHERE integration_id = %s AND external_id = %s", (cw_id, str(a)))
                self.assertEqual(line["description"], h)
                self.assertEqual(line["product_code"], h[:200])
                self.assertEqual(self.scalar("SELECT name FROM billrecon.vendor_accounts WHERE integration_id = %s "
                                             "AND external_id = %s", (nj_id, str(o))), h)
                self.assertEqual(self.scalar("SELECT device_name FROM billrecon.usage_records WHERE integration_id = %s "
                                             "AND external_id = %s", (nj_id, str(d))), h)
        touched = ("psa_companies", "psa_agreements", "psa_line_items", "vendor_accounts", "usage_records",
                   "sync_runs", "sync_run_messages")
        self.assert_unchanged(before, "a sync of hostile names", skip=touched)

    def test_a_nul_character_from_a_vendor_fails_clearly(self):
        # PostgreSQL text cannot hold NUL; kept, \u0000 would cut the value short
        # where it is stored. The run fails red naming it, the data stays.
        cw, cw_id = self.add("connectwise")
        self.assert_succeeded(self.sync(cw, "full"))
        before = self.snapshot(cw_id)
        self.cw.mutate(entity="company", id=self.ds.companies[0].id, set={"name": "before\u0000after"})
        row = self.sync(cw, "full")
        self.assert_failed(row, r"^malformed JSON in vendor response")
        self.assertIn("\\u0000 (NUL)", self.run_row(row["run_id"])["error_detail"])
        self.assertEqual(self.run_row(row["run_id"])["error_sqlstate"], "22P02")
        self.assert_same_snapshot(before, self.snapshot(cw_id), "after a NUL")

    # -- rules, reasons, notes --------------------------------------------------------------------
    def test_hostile_filters_reasons_and_notes_round_trip(self):
        cw, cw_id = self.add("connectwise")
        nj, nj_id = self.add("ninjaone", options={"page_size": 1000})
        self.assert_succeeded(self.sync(cw, "full"))
        self.assert_succeeded(self.sync(nj, "full"))
        lines = [r["external_id"] for r in self.q(
            "SELECT external_id FROM billrecon.psa_line_items WHERE integration_id = %s AND removed_at IS NULL "
            "ORDER BY id LIMIT %s", (cw_id, len(HOSTILE)))]
        account = self.scalar("SELECT external_id FROM billrecon.vendor_accounts WHERE integration_id = %s "
                              "ORDER BY id LIMIT 1", (nj_id,))
        company = self.scalar("SELECT external_id FROM billrecon.psa_companies WHERE integration_id = %s "
                              "ORDER BY id LIMIT 1", (cw_id,))
        self.execute("SELECT billrecon.set_default_psa(%s)", (cw,))
        for h, line in zip(HOSTILE, lines):
            with self.subTest(value=h[:40]):
                before = self.fingerprint()
                # A pattern is a regular expression: valid ones are stored verbatim,
                # invalid ones refused with 22023 naming the filter.
                filters = {"device_name": h, "os_name": "^(Windows|'Linux'|\"mac\"); --$"}
                err = self.call_error("SELECT billrecon.map_line_item(%s, %s, 'asset', %s::jsonb)",
                                      (line, nj, json.dumps(filters)))
                if err is None:
                    self.assertEqual(self.scalar("SELECT filters FROM billrecon.service_rules r JOIN "
                                                 "billrecon.psa_line_items l ON l.id = r.line_item_id "
                                                 "WHERE l.integration_id = %s AND l.external_id = %s",
                                                 (cw_id, line)), filters)
                else:
                    self.assertEqual(err, "22023", "only an invalid pattern is refused")
                    self.assertTrue(self.pattern_invalid(h), "%r is a valid pattern, yet refused" % h)
                self.execute("SELECT billrecon.note_line_item(%s, %s, ARRAY[%s, 'ok'])", (line, h, h))
                note = self.one("SELECT n.note, n.tags FROM billrecon.line_item_notes n JOIN billrecon.psa_line_items l "
                                "ON l.id = n.line_item_id WHERE l.integration_id = %s AND l.external_id = %s",
                                (cw_id, line))
                self.assertEqual((note["note"], note["tags"]), (h, [h, "ok"]))
                self.execute("SELECT billrecon.ignore_line_item(%s, %s)", (line, h))
                self.assertEqual(self.scalar("SELECT g.reason FROM billrecon.ignored_line_items g JOIN "
                                             "billrecon.psa_line_items l ON l.id = g.line_item_id "
                                             "WHERE l.integration_id = %s AND l.external_id = %s", (cw_id, line)), h)
                self.execute("SELECT billrecon.ignore_vendor_account(%s, %s, %s)", (nj, account, h))
                self.execute("SELECT billrecon.unignore_vendor_account(%s, %s)", (nj, account))
                self.execute("SELECT billrecon.exclude_vendor_product(%s, %s, %s)", (nj, h, h))
                self.assertEqual(self.scalar("SELECT reason FROM billrecon.excluded_vendor_products "
                                             "WHERE integration_id = %s AND product = %s", (nj_id, h)), h)
                self.assertTrue(self.scalar("SELECT billrecon.include_vendor_product(%s, %s)", (nj, h)))
                self.execute("SELECT billrecon.reject_client_match(%s, %s, %s, %s)", (nj, account, company, h))
                self.assert_unchanged(before, "hostile rules, reasons and notes",
                                      skip=("service_rules", "line_item_notes", "ignored_line_items", "audit_log",
                                            "excluded_vendor_products", "ignored_vendor_accounts",
                                            "client_match_rejections", "client_mappings", "client_match_suggestions"))

    def test_invalid_patterns_fail_with_a_clear_error(self):
        nj, _ = self.add("ninjaone")
        cw, cw_id = self.add("connectwise")
        self.assert_succeeded(self.sync(cw, "full"))
        self.execute("SELECT billrecon.set_default_psa(%s)", (cw,))
        line = self.scalar("SELECT external_id FROM billrecon.psa_line_items WHERE integration_id = %s "
                           "AND removed_at IS NULL ORDER BY id LIMIT 1", (cw_id,))
        before = self.fingerprint()
        for pattern in ("(unclosed", "[z-a]", "\\", "a{2,1}", "*'); DROP TABLE billrecon.integrations; --"):
            for fn, target in (("map_line_item", line), ("map_product", "AV-EDR")):
                with self.subTest(pattern=pattern, function=fn):
                    with self.assertRaises(psycopg2.Error) as cm:
                        self.execute("SELECT billrecon.%s(%%s, %%s, 'asset', %%s::jsonb)" % fn,
                                     (target, nj, json.dumps({"device_name": pattern})))
                    e = cm.exception
                    self.assertEqual(e.pgcode, "22023", str(e))
                    self.assertIn('invalid pattern in filter "device_name"', e.diag.message_primary)
                    self.assertIn(pattern, e.diag.message_detail)
        self.assert_unchanged(before, "invalid patterns")

    # -- CSV ---------------------------------------------------------------------------------------
    def test_hostile_csv_cells_are_stored_verbatim(self):
        name, iid = self.add_csv()
        rows, expect = [], []
        for i, h in enumerate(HOSTILE):
            h = h[:1000]
            account = "A%d" % i
            rows.append([account, h, "subscription", h, "%d.5" % i, "", h, h, "2026-11-01"])
            expect.append((account, h))
        text = "account_id,account_name,kind,product,quantity,device_class,os_name,device_name,last_active_at\r\n"
        text += "".join(",".join(csv_cell(c) for c in r) + "\r\n" for r in rows)
        before = self.fingerprint()
        self.assertEqual(self.scalar("SELECT billrecon.import_usage_csv(%s, %s)", (name, text)), len(rows))
        for account, h in expect:
            with self.subTest(value=h[:40]):
                self.assertEqual(self.scalar("SELECT name FROM billrecon.vendor_accounts WHERE integration_id = %s "
                                             "AND external_id = %s", (iid, account)), h)
                u = self.one("SELECT u.product, u.product_name, u.os_name, u.device_name FROM billrecon.usage_records u "
                             "JOIN billrecon.vendor_accounts a ON a.id = u.account_id "
                             "WHERE u.integration_id = %s AND a.external_id = %s", (iid, account))
                self.assertEqual(u["product"], h)
                self.assertEqual(u["os_name"], h)
                self.assertEqual(u["device_name"], h)
        self.assert_unchanged(before, "a CSV of hostile cells",
                              skip=("vendor_accounts", "usage_records", "sync_runs", "sync_run_messages"))
        # A malformed file (a quote left open) is refused whole, with the line.
        with self.assertRaises(psycopg2.Error) as cm:
            self.execute("SELECT billrecon.import_usage_csv(%s, %s)",
                         (name, text + 'B1,"never closed,device,,,,,,\n'))
        self.assertEqual(cm.exception.pgcode, "22P02")
        self.assertRegex(cm.exception.diag.message_detail, r"line \d+")

    def pattern_invalid(self, pattern):
        try:
            self.execute("SELECT '' ~* %s", (pattern,))
            return False
        except psycopg2.Error as e:
            return e.pgcode == "2201B"

    def add_csv(self):
        name = self.unique_name("csv-injection")
        iid = self.scalar("SELECT billrecon.add_integration(%s, 'csv', '', '{}')", (name,))
        self.addCleanup(self.execute, "SELECT billrecon.drop_integration(%s)", (name,))
        return name, iid


def csv_cell(value):
    """RFC 4180: quoted, with "" for a quote."""
    return '"' + value.replace('"', '""') + '"'
