"""ALTER EXTENSION billrecon UPDATE from the first released version, compared
with a fresh install (issue 8; docs/upgrading.md).

One database gets `CREATE EXTENSION billrecon VERSION '0.1.0'` (the frozen
sql/upgrade/billrecon--0.1.0.sql, run against today's billrecon.so: the
library must still carry every C symbol that script names), then real data
through the 0.1.0 SQL surface only (integrations with credentials, full
syncs from the ConnectWise and NinjaOne mocks and a failing one, client
matches confirmed and made by hand, presets, an ignored line, a reconcile,
change cards approved, dismissed and noted, a line note, the audit rows all
this wrote), then `ALTER EXTENSION billrecon UPDATE`. A second database gets a
fresh `CREATE EXTENSION billrecon` and the same data. Then:

- the schemas are the same: test/bin/schema-fingerprint.sql (every object of
  the extension with its full definition, comments, ACLs, config-dump
  registrations and membership, one fact a line) of both databases, diffed;
  a failure prints the differing lines ("-" fresh install, "+" updated);
- the fingerprint does see each kind of difference it claims to (a change of
  each kind, made and rolled back in the fresh database);
- every row of every table survived the update (the columns 0.1.0 had);
- the updated database still syncs and reconciles, to the figures the fresh
  one reconciles the same data to.

The same comparison by hand, without data: `bash test/bin/schema-diff --update`.
Both databases are dropped at the end. Between the restart on a new library
and the ALTER EXTENSION UPDATE a server runs the new billrecon.so against the
old schema, as here while the data goes in: if that stops working, this test
says so at the data step (docs/upgrading.md)."""

import difflib
import json
import os
import re

import psycopg2

from e2e_lib import BASE_OPTIONS, DB_NAME, NJ_PAGE, Ctx, E2ETestCase, connect, query, scalar

FROM_VERSION = "0.1.0"
UPDATED_DB = DB_NAME + "_upgrade_updated"
FRESH_DB = DB_NAME + "_upgrade_fresh"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FINGERPRINT_SQL = os.path.join(ROOT, "test", "bin", "schema-fingerprint.sql")
SECRET_TABLES = {"integration_credentials"}     # rows never printed
# Undefined column, function, table; datatype mismatch; internal error: what a
# library expecting a newer schema runs into.
SCHEMA_ERRORS = {"42703", "42883", "42P01", "42804", "XX000"}


def admin_connect():
    conn = psycopg2.connect(dbname=os.environ.get("BILLRECON_E2E_ADMIN_DB", "postgres"), connect_timeout=10)
    conn.autocommit = True
    return conn


def drop_database(name):
    conn = admin_connect()
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
    conn.close()


def create_database(name):
    drop_database(name)
    conn = admin_connect()
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE %s" % name)
    conn.close()


def execute(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)


def fingerprint(conn):
    with open(FINGERPRINT_SQL, encoding="utf-8") as f:
        sql = f.read()
    with conn.cursor() as cur:
        cur.execute(sql)
        return [r[0] for r in cur.fetchall()]


def schema_diff(fresh, updated, fresh_label="fresh install", updated_label="updated"):
    return [l.rstrip("\n") for l in difflib.unified_diff(fresh, updated, fresh_label, updated_label, n=1, lineterm="")]


def fill(db, mocks, label):
    """A month's use of billrecon through the 0.1.0 SQL surface only (this runs
    against a 0.1.0 schema: no function or column added later may appear here)."""
    ds = mocks.ds
    val = lambda sql, params=None: scalar(db, sql, params)       # noqa: E731

    def step(what, sql, params=None):
        try:
            return query(db, sql, params)
        except psycopg2.Error as e:
            raise AssertionError("%s: %s failed: %s (%s)%s" % (
                label, what, e.pgerror, e.pgcode,
                "\nbillrecon.so runs against the schema of version %s until ALTER EXTENSION billrecon UPDATE; "
                "see docs/upgrading.md" % FROM_VERSION if "updated" in label and e.pgcode in SCHEMA_ERRORS else "")) from None

    def add(name, kind, creds=None, page=None):
        url, kind_creds, opts = mocks.integration(kind)
        options = dict(BASE_OPTIONS, **opts)
        if page:
            options["page_size"] = page
        return step("add_integration(%s)" % name, "SELECT billrecon.add_integration(%s, %s, %s, %s::jsonb, %s::jsonb)",
                    (name, kind, url, json.dumps(creds or kind_creds), json.dumps(options)))

    add("cw", "connectwise", page=100)
    add("nj", "ninjaone", page=NJ_PAGE)
    add("nj-broken", "ninjaone", creds={"client_id": "billrecon-ninja-client", "client_secret": "wrong"})
    step("set_default_psa", "SELECT billrecon.set_default_psa('cw')")
    for name, want in (("cw", "succeeded"), ("nj", "succeeded"), ("nj-broken", "failed")):
        r = step("sync(%s)" % name, "SELECT * FROM billrecon.sync(%s, 'full')", (name,))[0]
        assert r["status"] == want, "%s: sync(%s): %r" % (label, name, r)
    step("suggest_client_matches", "SELECT billrecon.suggest_client_matches()")
    step("confirm_client_matches", "SELECT billrecon.confirm_client_matches()")
    for c in ds.ground_truth["clients"]:
        if c.get("ninja_org_id") and c.get("psa_company_id"):
            step("map_client", "SELECT billrecon.map_client('nj', %s, %s)",
                 (str(c["ninja_org_id"]), str(c["psa_company_id"])))
    step("apply_presets", "SELECT billrecon.apply_presets('nj')")
    line = val("SELECT l.external_id FROM billrecon.psa_line_items l WHERE l.removed_at IS NULL AND NOT EXISTS "
               "(SELECT 1 FROM billrecon.service_mapping s WHERE s.line_item_id = l.external_id "
               "AND s.integration IS NOT NULL) ORDER BY l.external_id LIMIT 1")
    if line is not None:
        step("ignore_line_item", "SELECT billrecon.ignore_line_item(%s, 'billed by hand')", (line,))
    step("reconcile", "SELECT billrecon.reconcile()")
    cards = [r["card_id"] for r in step("change_cards", "SELECT card_id FROM billrecon.change_cards "
                                                        "WHERE status = 'pending' AND kind = 'quantity' ORDER BY card_id")]
    assert len(cards) >= 3, "%s: the generated MSP has discrepancies: %r" % (label, cards)
    step("approve", "SELECT billrecon.approve(ARRAY[%s]::bigint[], NULL, true)", (cards[0],))
    step("dismiss", "SELECT billrecon.dismiss(ARRAY[%s]::bigint[], 'paid elsewhere')", (cards[1],))
    step("note_card", "SELECT billrecon.note_card(ARRAY[%s]::bigint[], 'asked the client', ARRAY['follow-up'])",
         (cards[2],))
    card_line = val("SELECT line_item_id FROM billrecon.change_cards WHERE card_id = %s", (cards[2],))
    step("note_line_item", "SELECT billrecon.note_line_item(%s, 'price agreed', ARRAY['contract'])", (card_line,))


def table_columns(conn):
    """{table: [column, ...]} of every table in schema billrecon, live columns in order."""
    out = {}
    for r in query(conn, """
            SELECT c.relname AS t, a.attname AS col
              FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE c.relnamespace = 'billrecon'::regnamespace AND c.relkind IN ('r', 'p')
             ORDER BY c.relname, a.attnum"""):
        out.setdefault(r["t"], []).append(r["col"])
    return out


def table_rows(conn, table, columns):
    """The rows of a table as text, only the columns named, sorted."""
    cols = ", ".join('t."%s"' % c.replace('"', '""') for c in columns)
    with conn.cursor() as cur:
        cur.execute('SELECT ROW(%s)::text AS r FROM billrecon."%s" t ORDER BY 1' % (cols, table))
        return [r[0] for r in cur.fetchall()]


def data_snapshot(conn, columns):
    return {t: table_rows(conn, t, cols) for t, cols in columns.items()}


def results(conn):
    """The last run's discrepancies, by what they are (not by ids)."""
    return [tuple(r.values()) for r in query(conn, """
        SELECT company, line_item_id, product, type, invoiced_qty::text, counted_qty::text, amount::text, explanation
          FROM billrecon.discrepancies WHERE run_id = billrecon.last_run_id()
         ORDER BY 1, 2, 3, 4, 5, 6, 7, 8""")]


class Upgrade(E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.upd = cls.fresh = None
        try:
            mocks = Ctx.mocks
            mocks.reset()
            create_database(UPDATED_DB)
            cls.upd = connect(UPDATED_DB)
            try:
                execute(cls.upd, "CREATE EXTENSION billrecon VERSION %s CASCADE", (FROM_VERSION,))
            except psycopg2.Error as e:
                raise AssertionError("CREATE EXTENSION billrecon VERSION '%s' failed with this build: %s (%s). The "
                                     "frozen script sql/upgrade/billrecon--%s.sql must install against the current "
                                     "billrecon.so: keep every C symbol it names (nm -D billrecon.so)" % (
                                         FROM_VERSION, e.pgerror, e.pgcode, FROM_VERSION)) from None
            cls.installed_version = scalar(cls.upd, "SELECT extversion FROM pg_extension WHERE extname = 'billrecon'")
            fill(cls.upd, mocks, "the %s database (to be updated)" % FROM_VERSION)
            cls.columns_before = table_columns(cls.upd)
            cls.data_before = data_snapshot(cls.upd, cls.columns_before)
            cls.upd.notices.clear()
            execute(cls.upd, "ALTER EXTENSION billrecon UPDATE")
            cls.update_notices = list(cls.upd.notices)
            cls.data_after = data_snapshot(cls.upd, cls.columns_before)
            cls.updated_version = scalar(cls.upd, "SELECT extversion FROM pg_extension WHERE extname = 'billrecon'")
            cls.fp_updated = fingerprint(cls.upd)

            mocks.reset()
            create_database(FRESH_DB)
            cls.fresh = connect(FRESH_DB)
            execute(cls.fresh, "CREATE EXTENSION billrecon")
            fill(cls.fresh, mocks, "the freshly installed database")
            cls.fp_fresh = fingerprint(cls.fresh)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for c in (cls.upd, cls.fresh):
            if c is not None and not c.closed:
                c.close()
        drop_database(UPDATED_DB)
        drop_database(FRESH_DB)
        Ctx.mocks.reset()
        super().tearDownClass()

    def test_update_path_from_every_frozen_version(self):
        default = scalar(self.fresh, "SELECT default_version FROM pg_available_extensions WHERE name = 'billrecon'")
        self.assertEqual(self.installed_version, FROM_VERSION)
        self.assertEqual(self.updated_version, default, "ALTER EXTENSION UPDATE reaches the default version")
        frozen = sorted(f[len("billrecon--"):-len(".sql")] for f in os.listdir(os.path.join(ROOT, "sql", "upgrade"))
                        if re.fullmatch(r"billrecon--[^-]+(-[^-]+)*\.sql", f) and f.count("--") == 1)
        self.assertIn(FROM_VERSION, frozen)
        paths = {r["source"]: r["path"] for r in query(
            self.fresh, "SELECT source, path FROM pg_extension_update_paths('billrecon') WHERE target = %s",
            (default,))}
        missing = [v for v in frozen if v != default and paths.get(v) is None]
        self.assertEqual(missing, [], "released versions without an update path to %s (sql/upgrade/billrecon--"
                                      "<from>--<to>.sql)" % default)

    def test_update_raises_no_warning(self):
        self.assertEqual([n for n in self.update_notices if "WARNING" in n], [])

    def test_fingerprint_covers_the_extension(self):
        fp = self.fp_fresh
        kinds = {"extension billrecon": 1, "extension config dump": 10, "member: function": 50, "member: table": 20,
                 "member: view": 10, "table billrecon.": 20, "column billrecon.": 300, "constraint ": 50,
                 "index on ": 20, "trigger on ": 5, "view billrecon.": 10, "function billrecon.": 50,
                 "sequence billrecon.": 10, "comment on table column": 200, "comment on view column": 200,
                 "comment on function": 50, "init privs on": 50, "schema billrecon": 1, "type billrecon.": 1}
        short = {k: n for k, n in kinds.items() if sum(1 for l in fp if l.startswith(k)) < n}
        self.assertEqual(short, {}, "fingerprint lines fewer than expected (kind: at least)")
        self.assertTrue(any("SECURITY DEFINER" in l for l in fp) and any("SET search_path" in l for l in fp))
        self.assertTrue(any(" acl {" in l and "billrecon_reader" in l for l in fp))

    def test_schema_identical_to_a_fresh_install(self):
        diff = schema_diff(self.fp_fresh, self.fp_updated, "fresh install (CREATE EXTENSION billrecon)",
                           "updated from %s (ALTER EXTENSION billrecon UPDATE)" % FROM_VERSION)
        if diff:
            changed = [l for l in diff if l[:1] in "+-" and not l.startswith(("+++", "---"))]
            self.fail("after ALTER EXTENSION billrecon UPDATE the schema differs from a fresh install in %d line(s); "
                      "add what is missing to the update script (docs/upgrading.md):\n%s%s" % (
                          len(changed), "\n".join(diff[:400]),
                          "\n... (%d more diff lines)" % (len(diff) - 400) if len(diff) > 400 else ""))

    def test_fingerprint_sees_every_kind_of_difference(self):
        # Each change is made in the fresh database inside a transaction and
        # rolled back; the fingerprint must differ, in a line that names it.
        view_def = scalar(self.fresh, "SELECT pg_get_viewdef('billrecon.unmapped_counts'::regclass)").rstrip().rstrip(";")
        changes = [
            ("COMMENT ON COLUMN billrecon.integrations.name IS 'changed'", "integrations.name: changed"),
            ("COMMENT ON FUNCTION billrecon.version() IS 'changed'", "billrecon.version(): changed"),
            ("COMMENT ON VIEW billrecon.discrepancies IS NULL", "comment on view billrecon.discrepancies:"),
            ("ALTER TABLE billrecon.integrations ADD COLUMN extra integer", "integrations.extra"),
            ("ALTER TABLE billrecon.integrations ALTER COLUMN options SET DEFAULT '{\"x\": 1}'",
             "integrations.options"),
            ("ALTER TABLE billrecon.psa_companies ALTER COLUMN name DROP NOT NULL", "psa_companies.name"),
            ("ALTER TABLE billrecon.psa_companies ALTER COLUMN website TYPE varchar(300)", "psa_companies.website"),
            ("ALTER TABLE billrecon.integrations ADD CONSTRAINT extra_check CHECK (id > 0)", "extra_check"),
            ("CREATE INDEX extra_index ON billrecon.sync_runs (error)", "extra_index"),
            ("CREATE TRIGGER extra_trigger BEFORE UPDATE ON billrecon.integrations FOR EACH ROW "
             "EXECUTE FUNCTION billrecon._audit_row()", "extra_trigger"),
            ("ALTER TABLE billrecon.integrations ENABLE ROW LEVEL SECURITY", "table billrecon.integrations: "),
            ("CREATE POLICY extra_policy ON billrecon.integrations USING (true)", "extra_policy"),
            ("CREATE OR REPLACE VIEW billrecon.unmapped_counts AS SELECT * FROM (%s) s WHERE false" % view_def,
             "view billrecon.unmapped_counts |"),
            ("ALTER FUNCTION billrecon.version() SECURITY DEFINER", "SECURITY DEFINER"),
            ("ALTER FUNCTION billrecon.last_run_id() SET search_path = public", "search_path"),
            ("ALTER FUNCTION billrecon.version() VOLATILE", "billrecon.version() |"),
            ("ALTER FUNCTION billrecon.version() PARALLEL UNSAFE", "billrecon.version() |"),
            ("CREATE OR REPLACE FUNCTION billrecon.monthly_amount(amount numeric, billing_cycle text) RETURNS numeric "
             "LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS 'SELECT 0::numeric'", "billrecon.monthly_amount"),
            ("CREATE FUNCTION billrecon.extra_function() RETURNS integer LANGUAGE sql AS 'SELECT 1'",
             "extra_function"),
            ("GRANT SELECT ON billrecon.sync_runs TO PUBLIC", "table billrecon.sync_runs: "),
            ("GRANT UPDATE (name) ON billrecon.integrations TO billrecon_reader", "integrations.name"),
            ("REVOKE EXECUTE ON FUNCTION billrecon.version() FROM billrecon_reader", "function billrecon.version()"),
            ("GRANT CREATE ON SCHEMA billrecon TO billrecon_reader", "schema billrecon"),
            ("ALTER DEFAULT PRIVILEGES IN SCHEMA billrecon GRANT SELECT ON TABLES TO billrecon_reader",
             "default privileges"),
            ("ALTER SEQUENCE billrecon.service_rules_id_seq INCREMENT BY 2", "service_rules_id_seq"),
            ("ALTER TABLE billrecon._stage_companies SET LOGGED", "_stage_companies"),
            ("ALTER TYPE billrecon.rule_filter ADD ATTRIBUTE extra integer", "rule_filter.extra"),
            ("ALTER EXTENSION billrecon DROP FUNCTION billrecon.version()", "member: function billrecon.version()"),
            ("UPDATE pg_catalog.pg_extension SET extcondition[1] = 'WHERE false' WHERE extname = 'billrecon'",
             "extension config dump"),
            ("DELETE FROM pg_catalog.pg_init_privs WHERE objoid = 'billrecon.version()'::regprocedure",
             "init privs on function billrecon.version()"),
        ]
        conn = connect(FRESH_DB)
        self.addCleanup(conn.close)
        conn.autocommit = False
        blind = []
        try:
            for sql, expect in changes:
                execute(conn, "SAVEPOINT change")
                execute(conn, sql)
                diff = [l for l in schema_diff(self.fp_fresh, fingerprint(conn))
                        if l[:1] in "+-" and not l.startswith(("+++", "---"))]
                execute(conn, "ROLLBACK TO SAVEPOINT change")
                if not any(expect in l for l in diff):
                    blind.append("%s: %s" % (sql[:90], "no line differs" if not diff else
                                             "%d lines differ, none with %r: %s" % (len(diff), expect, diff[:2])))
        finally:
            conn.rollback()
        self.assertEqual(blind, [], "changes the fingerprint did not see")

    def test_every_row_survived_the_update(self):
        self.assertEqual(sorted(set(self.columns_before) - set(self.data_after)), [], "tables gone")
        for table in ("integrations", "integration_credentials", "sync_runs", "psa_companies", "psa_line_items",
                      "vendor_accounts", "usage_records", "client_mappings", "service_rules", "ignored_line_items",
                      "reconcile_runs", "reconcile_results", "proposed_changes", "line_item_notes", "audit_log"):
            self.assertTrue(self.data_before.get(table), "the %s database had rows in %s" % (FROM_VERSION, table))
        differ = []
        for table, before in sorted(self.data_before.items()):
            after = self.data_after[table]
            if before != after:
                missing = [r for r in before if r not in after]
                extra = [r for r in after if r not in before]
                shown = (lambda rows: "(not shown)") if table in SECRET_TABLES else (
                    lambda rows: rows[0][:200] if rows else "-")
                differ.append("%s: %d rows before, %d after; missing (first: %s); extra (first: %s)" % (
                    table, len(before), len(after), shown(missing), shown(extra)))
        self.assertEqual(differ, [], "tables changed by ALTER EXTENSION billrecon UPDATE")

    def test_zz_updated_database_syncs_and_reconciles_like_a_fresh_one(self):
        # Last (name): it changes both databases.
        for conn in (self.upd, self.fresh):
            for name in ("cw", "nj"):
                r = query(conn, "SELECT * FROM billrecon.sync(%s, 'full')", (name,))[0]
                self.assertEqual(r["status"], "succeeded", "sync(%s) after the update: %r" % (name, r))
            self.assertIsNotNone(scalar(conn, "SELECT billrecon.reconcile()"))
        updated, fresh = results(self.upd), results(self.fresh)
        self.assertTrue(fresh, "the fresh database has discrepancies to compare")
        self.assertEqual(updated, fresh, "the updated database reconciles the same data to other figures")
        card = scalar(self.upd, "SELECT min(card_id) FROM billrecon.change_cards WHERE status = 'pending'")
        self.assertEqual(scalar(self.upd, "SELECT billrecon.approve(ARRAY[%s]::bigint[], NULL, true)", (card,)), 1)
