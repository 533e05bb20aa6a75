"""pg_dump / pg_restore round trip of a fully used billrecon (issue 8,
docs/security.md): a fresh database gets integrations with credentials,
ConnectWise and NinjaOne syncs from the mocks (one failing, one in the
background), client mappings (suggested, confirmed, by hand, a rejection, an
ignored account), rules (presets, a line rule, an ignored line, an excluded
product, a preset and a SKU of the user's own), two reconcile runs, change
cards (approved and pushed, dismissed, noted), line notes and the audit rows
all this wrote. `pg_dump -Fc` of it is restored with `pg_restore` into a
second fresh database (the dump recreates the extension), and then:

- every table registered with pg_extension_config_dump is identical, row by
  row; the others are only the staging tables, and they are empty;
- the built-in presets and SKUs are there once (they are dumped WHERE NOT
  builtin and recreated by CREATE EXTENSION), and a built-in row the admin
  edited or deleted stays edited or deleted;
- the restore itself adds no audit row (restoring data is no change anyone
  made);
- every sequence continues after the highest id it serves;
- the restored database works: a sync with the restored credentials, a
  reconcile, an audited change.

Both databases are dropped at the end."""

import json
import os
import subprocess
import tempfile
import time

import psycopg2

from e2e_lib import BASE_OPTIONS, DB_NAME, NJ_PAGE, Ctx, E2ETestCase, connect, query, scalar

# Named after the e2e database, so parallel runs on one cluster stay apart.
SOURCE_DB = DB_NAME + "_dump"
RESTORED_DB = DB_NAME + "_dump_restored"
PG_BIN = os.environ.get("BILLRECON_PG_BIN", "/usr/lib/postgresql/15/bin")
# Not user data: written and emptied by every sync, unlogged, not dumped.
TRANSIENT = {"_stage_companies", "_stage_agreements", "_stage_line_items", "_stage_vendor_accounts",
             "_stage_usage_records"}
FINISHED = ("succeeded", "failed", "cancelled")


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


def tables(conn):
    """{table: registered for pg_dump?} for every table of schema billrecon."""
    rows = query(conn, """
        SELECT c.relname AS t,
               c.oid = ANY (coalesce((SELECT e.extconfig FROM pg_extension e WHERE e.extname = 'billrecon'), '{}'))
                 AS dumped
          FROM pg_class c
         WHERE c.relnamespace = 'billrecon'::regnamespace AND c.relkind IN ('r', 'p')""")
    return {r["t"]: r["dumped"] for r in rows}


def table_rows(conn, table):
    """Every row of a table as text, ordered by its first column (then by the row)."""
    first = scalar(conn, """SELECT quote_ident(attname) FROM pg_attribute
                             WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped
                             ORDER BY attnum LIMIT 1""", ("billrecon." + table,))
    with conn.cursor() as cur:
        cur.execute("SELECT t::text FROM billrecon.%s t ORDER BY t.%s, 1" % (table, first))
        return [r[0] for r in cur.fetchall()]


def sequences(conn):
    """{sequence: (last_value, is_called)} for every sequence of schema billrecon but staging's."""
    out = {}
    for r in query(conn, "SELECT c.relname AS s FROM pg_class c WHERE c.relnamespace = 'billrecon'::regnamespace "
                         "AND c.relkind = 'S' AND c.relname NOT LIKE '\\_stage\\_%%'"):
        out[r["s"]] = tuple(query(conn, "SELECT last_value, is_called FROM billrecon.%s" % r["s"])[0].values())
    return out


def row_diff(before, after, show=True):
    """None when equal, else a short account: counts, the first missing and extra
    rows (not shown with show=False: credentials stay out of test output)."""
    if before == after:
        return None
    missing = [r for r in before if r not in after]
    extra = [r for r in after if r not in before]
    first = lambda rows: (rows[0][:200] if show else "(not shown)") if rows else "-"     # noqa: E731
    return "%d rows before, %d after; %d missing (first: %s); %d extra (first: %s)" % (
        len(before), len(after), len(missing), first(missing), len(extra), first(extra))


def snapshot(conn):
    return {"tables": {t: table_rows(conn, t) for t in tables(conn)}, "registered": tables(conn),
            "sequences": sequences(conn),
            "builtin": {t: (scalar(conn, "SELECT count(*) FROM billrecon.%s WHERE builtin" % t),
                            scalar(conn, "SELECT count(*) FROM billrecon.%s WHERE NOT builtin" % t))
                        for t in ("rule_presets", "microsoft_skus")},
            "audit_objects": {r["object"]: r["n"] for r in query(
                conn, "SELECT object, count(*) AS n FROM billrecon.audit_log GROUP BY object")}}


class DumpRestore(E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dump_dir = tempfile.mkdtemp(prefix="billrecon-dump-")
        cls.dump_file = os.path.join(cls.dump_dir, "billrecon.dump")
        cls.restore_log = ""
        try:
            Ctx.mocks.reset()
            create_database(SOURCE_DB)
            cls.src = connect(SOURCE_DB)
            cls.build(cls.src)
            cls.before = snapshot(cls.src)
            cls.src.close()
            cls.src = None
            cls.dump_and_restore()
            cls.dst = connect(RESTORED_DB)
            cls.after = snapshot(cls.dst)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for attr in ("src", "dst"):
            c = getattr(cls, attr, None)
            if c is not None and not c.closed:
                c.close()
        drop_database(RESTORED_DB)
        drop_database(SOURCE_DB)
        if os.path.exists(cls.dump_file):
            os.remove(cls.dump_file)
        os.rmdir(cls.dump_dir)
        Ctx.mocks.reset()
        super().tearDownClass()

    # -- the fully used database ------------------------------------------------------
    @classmethod
    def build(cls, db):
        mocks = Ctx.mocks
        ds = mocks.ds
        run = lambda sql, params=None: execute(db, sql, params)      # noqa: E731
        val = lambda sql, params=None: scalar(db, sql, params)        # noqa: E731
        run("CREATE EXTENSION billrecon")
        # The background workers read the database's settings.
        run("ALTER DATABASE %s SET billrecon.allow_http = on" % SOURCE_DB)

        def add(name, kind, creds=None, page=None):
            url, kind_creds, opts = mocks.integration(kind)
            options = dict(BASE_OPTIONS, **opts)
            if page:
                options["page_size"] = page
            return val("SELECT billrecon.add_integration(%s, %s, %s, %s::jsonb, %s::jsonb)",
                       (name, kind, url, json.dumps(creds or kind_creds), json.dumps(options)))

        def sync(name, mode="full"):
            return query(db, "SELECT * FROM billrecon.sync(%s, %s)", (name, mode))[0]

        add("cw", "connectwise", page=100)     # large pages: paging is tested elsewhere
        add("nj", "ninjaone", page=NJ_PAGE)
        add("nj-broken", "ninjaone", creds={"client_id": "billrecon-ninja-client", "client_secret": "wrong"})
        run("SELECT billrecon.set_default_psa('cw')")
        for name, mode in (("cw", "full"), ("nj", "full"), ("nj", "quick")):
            r = sync(name, mode)
            assert r["status"] == "succeeded", r
        assert sync("nj-broken")["status"] == "failed"
        # A background sync: a job and its task.
        job = val("SELECT billrecon.sync_async('nj', 'quick')")
        deadline = time.time() + 60
        while True:
            tasks = query(db, "SELECT status FROM billrecon.sync_jobs WHERE job_id = %s", (job,))
            if tasks and all(t["status"] in FINISHED for t in tasks):
                break
            if time.time() > deadline:
                raise AssertionError("the background sync did not finish: %r" % tasks)
            time.sleep(0.05)

        # Client mappings: suggestions confirmed, the rest by hand, a rejection, an ignored account.
        assert val("SELECT billrecon.suggest_client_matches()") > 0
        assert val("SELECT billrecon.confirm_client_matches()") > 0
        truth = [(str(c["ninja_org_id"]), str(c["psa_company_id"])) for c in ds.ground_truth["clients"]
                 if c.get("ninja_org_id") and c.get("psa_company_id")]
        for org, company in truth:
            run("SELECT billrecon.map_client('nj', %s, %s)", (org, company))
        wrong = next(company for _, company in truth if company != truth[0][1])
        run("SELECT billrecon.reject_client_match('nj', %s, %s, 'another client')", (truth[0][0], wrong))
        mapped = {org for org, _ in truth}
        spare = val("SELECT v.external_id FROM billrecon.vendor_accounts v JOIN billrecon.integrations i "
                    "ON i.id = v.integration_id WHERE i.name = 'nj' AND NOT v.external_id = ANY (%s) "
                    "ORDER BY v.external_id LIMIT 1", (list(mapped),))
        if spare is not None:
            run("SELECT billrecon.ignore_vendor_account('nj', %s, 'our own lab')", (spare,))

        # Rules: a preset and a SKU of the user's own, the presets, a line rule, an ignore, an exclusion.
        run("INSERT INTO billrecon.rule_presets (vendor_kind, psa_product_pattern, mode, filters, description) "
            "VALUES ('ninjaone', 'backup appliance', 'asset', '{\"device_class\": [\"server\"]}', "
            "'the user''s own preset')")
        run("INSERT INTO billrecon.microsoft_skus (part_number, display_name) VALUES ('BILLRECON_E2E_SKU', "
            "'A SKU of the user''s own')")
        assert val("SELECT billrecon.apply_presets('nj')") > 0
        lines = [r["external_id"] for r in query(
            db, "SELECT l.external_id FROM billrecon.psa_line_items l WHERE l.removed_at IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM billrecon.service_mapping s WHERE s.line_item_id = l.external_id "
                "AND s.integration IS NOT NULL) ORDER BY l.id LIMIT 3")]
        assert len(lines) >= 2, "lines without a rule to map and ignore"
        run("SELECT billrecon.map_line_item(%s, 'nj', 'asset', '{\"device_class\": [\"server\"]}', 1)", (lines[0],))
        run("SELECT billrecon.ignore_line_item(%s, 'billed by hand')", (lines[1],))
        product = val("SELECT u.product FROM billrecon.usage_records u JOIN billrecon.integrations i "
                      "ON i.id = u.integration_id WHERE i.name = 'nj' AND u.product IS NOT NULL "
                      "ORDER BY u.product DESC LIMIT 1")
        run("SELECT billrecon.exclude_vendor_product('nj', %s, 'not billed')", (product,))

        # Reconcile, cards: one approved and pushed, one dismissed, notes; a second run.
        val("SELECT billrecon.reconcile()")
        cards = [r["card_id"] for r in query(
            db, "SELECT card_id FROM billrecon.change_cards WHERE status = 'pending' AND kind = 'quantity' "
                "ORDER BY card_id")]
        assert len(cards) >= 3, "the generated MSP has discrepancies: %r" % cards
        run("SELECT billrecon.approve(ARRAY[%s]::bigint[], NULL, true)", (cards[0],))
        pushed = query(db, "SELECT * FROM billrecon.push_changes(card_ids => ARRAY[%s]::bigint[])", (cards[0],))
        assert [p["status"] for p in pushed] == ["pushed"], pushed
        run("SELECT billrecon.dismiss(ARRAY[%s]::bigint[], 'the client pays for this elsewhere')", (cards[1],))
        run("SELECT billrecon.note_card(ARRAY[%s]::bigint[], 'asked the client', ARRAY['follow-up'])", (cards[2],))
        line = val("SELECT line_item_id FROM billrecon.change_cards WHERE card_id = %s", (cards[2],))
        run("SELECT billrecon.note_line_item(%s, 'price agreed in the contract', ARRAY['contract'])", (line,))
        val("SELECT billrecon.reconcile()")
        # The admin prunes the oldest audit entry (an id gap the restore must keep).
        run("DELETE FROM billrecon.audit_log WHERE id = (SELECT min(id) FROM billrecon.audit_log)")
        assert val("SELECT count(*) FROM billrecon.audit_log") > 10

    @classmethod
    def dump_and_restore(cls):
        dump = subprocess.run([os.path.join(PG_BIN, "pg_dump"), "-Fc", "-f", cls.dump_file, "-d", SOURCE_DB],
                              capture_output=True, text=True, timeout=300)
        if dump.returncode != 0:
            raise AssertionError("pg_dump failed (%d): %s" % (dump.returncode, dump.stderr))
        create_database(RESTORED_DB)
        restore = subprocess.run([os.path.join(PG_BIN, "pg_restore"), "-d", RESTORED_DB, cls.dump_file],
                                 capture_output=True, text=True, timeout=300)
        cls.restore_rc = restore.returncode
        cls.restore_log = restore.stderr

    # -- the comparisons ---------------------------------------------------------------
    def test_pg_restore_reports_no_error(self):
        if self.restore_rc != 0 or self.restore_log:
            self.fail("pg_restore exited with %d; %d error(s), the first:\n%s" % (
                self.restore_rc, self.restore_log.count("pg_restore: error:"), self.restore_log[:1500]))

    def test_the_source_was_fully_used(self):
        t = self.before["tables"]
        for table in ("integrations", "integration_credentials", "sync_runs", "psa_companies", "psa_agreements",
                      "psa_line_items", "vendor_accounts", "usage_records", "sync_jobs_queue", "sync_job_tasks",
                      "client_mappings", "client_match_rejections",
                      "ignored_vendor_accounts", "service_rules", "ignored_line_items", "excluded_vendor_products",
                      "reconcile_runs", "reconcile_run_inputs", "reconcile_results", "reconcile_run_clients",
                      "proposed_changes", "change_card_pushes", "line_item_notes", "audit_log"):
            self.assertTrue(t[table], "the source database has rows in %s" % table)

    def test_every_table_is_registered_for_dump_or_transient(self):
        unregistered = sorted(t for t, dumped in self.before["registered"].items() if not dumped and t not in TRANSIENT)
        self.assertEqual(unregistered, [], "tables pg_dump would leave out (pg_extension_config_dump missing)")
        self.assertEqual({t: rows for t, rows in self.after["tables"].items() if t in TRANSIENT},
                         {t: [] for t in TRANSIENT}, "staging is empty after a restore")

    def test_every_table_identical_row_by_row(self):
        differ = {}
        for table, rows in sorted(self.before["tables"].items()):
            if table in TRANSIENT or table == "audit_log":     # the audit log: its own test below
                continue
            d = row_diff(rows, self.after["tables"].get(table, []), show=table != "integration_credentials")
            if d:
                differ[table] = d
        if differ:
            self.fail("%d table(s) differ after pg_dump / pg_restore:\n%s" % (
                len(differ), "\n".join("  %s: %s" % kv for kv in differ.items())))

    def test_builtin_presets_and_skus_are_not_duplicated(self):
        for table, key in (("rule_presets", "vendor_kind, psa_product_pattern, mode"),
                           ("microsoft_skus", "part_number")):
            dupes = query(self.dst, "SELECT %s, count(*) FROM billrecon.%s GROUP BY %s HAVING count(*) > 1"
                          % (key, table, key))
            self.assertEqual(dupes, [], "restored: duplicated rows in %s" % table)
            (builtin_before, own_before), (builtin_after, own_after) = (self.before["builtin"][table],
                                                                        self.after["builtin"][table])
            self.assertGreater(builtin_before, 0)
            self.assertEqual(builtin_after, builtin_before, "%s: the built-in rows, once" % table)
            self.assertEqual((own_before, own_after), (1, 1), "%s: the user's own row came back, once" % table)

    def test_restore_adds_no_audit_rows(self):
        before, after = self.before["tables"]["audit_log"], self.after["tables"]["audit_log"]
        extra = [r for r in after if r not in before]
        more = {o: n - self.before["audit_objects"].get(o, 0) for o, n in sorted(self.after["audit_objects"].items())
                if n != self.before["audit_objects"].get(o, 0)}
        self.assertEqual((len(after), extra[:2]), (len(before), []),
                         "the restore wrote %d audit rows of its own (per object: %s); restoring data is no change "
                         "anyone made" % (len(extra), more))

    def test_sequences_continue_after_the_highest_id(self):
        self.assertEqual(self.after["sequences"], self.before["sequences"], "sequence positions restored")
        behind = []
        for r in query(self.dst, """
            SELECT c.relname AS t, a.attname AS col, pg_get_serial_sequence(format('billrecon.%I', c.relname),
                   a.attname) AS seq
              FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE c.relnamespace = 'billrecon'::regnamespace AND c.relkind = 'r'
               AND pg_get_serial_sequence(format('billrecon.%I', c.relname), a.attname) IS NOT NULL"""):
            top = scalar(self.dst, "SELECT max(%s) FROM billrecon.%s" % (r["col"], r["t"]))
            last = scalar(self.dst, "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM %s"
                          % r["seq"])
            if top is not None and last < top:
                behind.append("%s.%s: sequence at %s, highest id %s" % (r["t"], r["col"], last, top))
        self.assertEqual(behind, [], "a sequence behind its table's ids: the next insert fails on the key")

    def test_builtin_rows_cannot_be_edited_so_a_restore_cannot_undo_an_edit(self):
        # Built-in presets and SKU names are dumped WHERE NOT builtin and recreated
        # as shipped by CREATE EXTENSION: an edit would silently come back as
        # shipped after a restore, so the admin may not edit them (only add).
        src_db = SOURCE_DB + "_builtin"
        self.addCleanup(drop_database, src_db)
        create_database(src_db)
        src = connect(src_db)
        self.addCleanup(src.close)
        execute(src, "CREATE EXTENSION billrecon")
        execute(src, "SET ROLE billrecon_admin")
        for sql in ("UPDATE billrecon.rule_presets SET psa_product_pattern = 'managed pc' "
                    "WHERE id = (SELECT min(id) FROM billrecon.rule_presets WHERE builtin)",
                    "DELETE FROM billrecon.rule_presets WHERE id = (SELECT max(id) FROM billrecon.rule_presets "
                    "WHERE builtin)",
                    "UPDATE billrecon.microsoft_skus SET display_name = 'Business Premium (our name)' "
                    "WHERE part_number = 'SPB'"):
            with self.assertRaises(psycopg2.Error) as ctx:
                execute(src, sql)
            self.assertEqual(ctx.exception.pgcode, "55000", sql)
            self.assertIn("Add your own row", ctx.exception.diag.message_hint or "")
        # Their own rows are theirs to change.
        execute(src, "INSERT INTO billrecon.microsoft_skus (part_number, display_name) VALUES ('CUSTOM_SKU', 'Ours')")
        execute(src, "UPDATE billrecon.microsoft_skus SET display_name = 'Ours, renamed' WHERE part_number = 'CUSTOM_SKU'")
        execute(src, "RESET ROLE")

    def test_zz_restored_database_works(self):
        # Runs last (name): it changes the restored database.
        execute(self.dst, "SET billrecon.allow_http = on")
        self.assertEqual(scalar(self.dst, "SELECT count(*) FROM billrecon.integrations WHERE name = 'nj'"), 1,
                         "the integrations were restored")
        run = query(self.dst, "SELECT * FROM billrecon.sync('nj', 'quick')")[0]
        self.assertEqual(run["status"], "succeeded", "a sync with the restored credentials: %r" % run)
        self.assertIsNotNone(scalar(self.dst, "SELECT billrecon.reconcile()"))
        line = scalar(self.dst, "SELECT line_item_id FROM billrecon.change_cards ORDER BY card_id LIMIT 1")
        n = scalar(self.dst, "SELECT count(*) FROM billrecon.audit_log")
        execute(self.dst, "SELECT billrecon.note_line_item(%s, 'after the restore')", (line,))
        self.assertGreater(scalar(self.dst, "SELECT count(*) FROM billrecon.audit_log"), n, "audited")
