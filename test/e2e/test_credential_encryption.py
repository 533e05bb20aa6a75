"""At-rest encryption of credentials (issue 8, docs/security.md).

A key file made by the test (64 hex digits, owned by the server's OS user,
mode 0600, in a directory of its own under the system's temporary directory,
outside the data directory) is named by billrecon.credential_key_file
(ALTER SYSTEM + pg_reload_conf: the setting is PGC_SIGHUP). Then:

- new credentials are stored encrypted: the row holds no clear credentials,
  and neither the row's bytes, the table's file on disk nor a plain pg_dump
  holds a secret; syncs (foreground and background) against the mocks work;
- another key: the sync fails red with 55000 "encrypted with another key"
  naming both key ids, and nothing anywhere holds a secret or the key;
- no key: the sync fails red naming billrecon.credential_key_file; new
  credentials are stored in clear, exactly as without the feature;
- billrecon.encrypt_credentials() encrypts rows stored in clear,
  billrecon.rotate_credential_key(old) re-encrypts with the new key, and
  billrecon.decrypt_credentials(key) is the way back;
- a group-readable key file is refused (F0000) and nothing is stored;
- pg_dump / pg_restore keeps encrypted rows encrypted and usable with the key;
- only the admin may use the functions and the status view, and reading a key
  file named in a call needs superuser or pg_read_server_files;
- the audit log records credential names only.

Needs a superuser connection, and to run as root or as the server's OS user
(the key file must belong to the server's user)."""

import os
import shutil
import stat
import subprocess
import tempfile
import time
import uuid

import psycopg2

from e2e_lib import CW_CREDS, DB_NAME, NJ_CREDS, E2ETestCase, connect, query

SETTING = "billrecon.credential_key_file"
RESTORED_DB = DB_NAME + "_crypt_restored"
PG_BIN = os.environ.get("BILLRECON_PG_BIN", "/usr/lib/postgresql/15/bin")
FINISHED = ("succeeded", "failed", "cancelled")


def error_text(e):
    d = e.diag
    return "\n".join(str(x) for x in (e.pgerror, d.message_primary, d.message_detail, d.message_hint,
                                         d.context) if x)


class CredentialEncryptionTest(E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        data_dir = query(cls.conn, "SELECT current_setting('data_directory') AS d")[0]["d"]
        cls.data_dir = data_dir
        cls.server_uid = os.stat(data_dir).st_uid
        cls.can_own = os.geteuid() in (0, cls.server_uid)
        cls.key_dir = None
        if cls.can_own:
            cls.key_dir = tempfile.mkdtemp(prefix="billrecon-keys-")
            os.chmod(cls.key_dir, 0o700)
            os.chown(cls.key_dir, cls.server_uid, -1)
        with cls.conn.cursor() as cur:
            # Background workers read the database's settings, not this session's.
            cur.execute("ALTER DATABASE %s SET billrecon.allow_http = on" % DB_NAME)

    @classmethod
    def tearDownClass(cls):
        with cls.conn.cursor() as cur:
            cur.execute("ALTER SYSTEM RESET %s" % SETTING)
            cur.execute("SELECT pg_reload_conf()")
            cur.execute("ALTER DATABASE %s RESET billrecon.allow_http" % DB_NAME)
        if cls.key_dir:
            shutil.rmtree(cls.key_dir, ignore_errors=True)
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        if not self.can_own:
            self.skipTest("the key file must be owned by the server's OS user: run as root or as that user")
        self.log_path = os.environ.get("BILLRECON_PG_LOG")
        self.log_offset = os.path.getsize(self.log_path) if self.log_path and os.path.exists(self.log_path) else 0
        self.tag = uuid.uuid4().hex[:20]
        self.secret = {"cw": "cwPriv-%s-enc" % self.tag, "nj": "njSecret-%s-enc" % self.tag}
        self.cw.config(private_key=self.secret["cw"])
        self.nj.config(client_secret=self.secret["nj"])
        self.addCleanup(self.mocks.reset)
        self.keys = {}
        self.sessions = []
        self.addCleanup(self.close_sessions)
        # Every test starts and ends without a key (later test modules expect clear credentials).
        self.addCleanup(self.set_key, None)
        self.set_key(None)

    def close_sessions(self):
        for c in self.sessions:
            c.close()
        deadline = time.time() + 15
        while self.scalar("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'billrecon sync worker' "
                          "AND datname = current_database()") and time.time() < deadline:
            time.sleep(0.1)

    # -- helpers -----------------------------------------------------------------------
    def make_key(self, name, mode=0o600):
        # Named without the secrets' tag: paths appear in messages and the log.
        path = os.path.join(self.key_dir, "%s-%s.key" % (name, uuid.uuid4().hex[:8]))
        key = os.urandom(32).hex()
        with open(path, "w") as f:
            f.write(key + "\n")
        os.chown(path, self.server_uid, -1)
        os.chmod(path, mode)
        self.keys[path] = key
        self.addCleanup(lambda: os.path.exists(path) and os.remove(path))
        return path

    def set_key(self, path):
        """ALTER SYSTEM + reload, then wait until this session sees it."""
        with self.conn.cursor() as cur:
            if path is None:
                cur.execute("ALTER SYSTEM RESET %s" % SETTING)
            else:
                cur.execute("ALTER SYSTEM SET %s = %%s" % SETTING, (path,))
            cur.execute("SELECT pg_reload_conf()")
        want = path or ""
        deadline = time.time() + 10
        while self.scalar("SELECT current_setting(%s)", (SETTING,)) != want:
            if time.time() > deadline:
                self.fail("%s did not become %r after pg_reload_conf()" % (SETTING, want))
            time.sleep(0.05)
        # Other sessions handle the reload signal just as soon; give them a moment.
        time.sleep(0.2)

    def session(self, role=None):
        c = connect()
        if role:
            with c.cursor() as cur:
                cur.execute("SET ROLE %s" % role)
        self.sessions.append(c)
        return c

    def add_pair(self):
        """A ConnectWise and a NinjaOne integration with the distinctive secrets."""
        made = {}
        for key, kind, creds in (("cw", "connectwise", dict(CW_CREDS, private_key=self.secret["cw"])),
                                 ("nj", "ninjaone", dict(NJ_CREDS, client_secret=self.secret["nj"]))):
            made[key] = self.add(kind, name=self.unique_name("enc-" + key), creds=creds)
            self.addCleanup(self.execute, "SELECT billrecon.drop_integration(name) FROM billrecon.integrations "
                                          "WHERE name = %s", (made[key][0],))
        return made

    def stored(self, iid):
        return self.one("SELECT credentials, encrypted_credentials, credential_key_id, credential_keys "
                        "FROM billrecon.integration_credentials WHERE integration_id = %s", (iid,))

    def key_id(self):
        return self.one("SELECT * FROM billrecon.credential_key_status()")["key_id"]

    def needles(self):
        return [self.tag] + list(self.secret.values()) + list(self.keys.values())

    def assert_no_secret(self, where, text):
        text = text if isinstance(text, str) else repr(text)
        for n in self.needles():
            self.assertNotIn(n, text, "%s holds a secret or the key" % where)

    def server_log(self):
        """The server log since the test began, less the STATEMENT lines of
        failed statements: a statement with secrets as literals is logged as
        sent (docs/security.md, "Caveats"), which is no message of billrecon's."""
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(self.log_offset)
            text = f.read().decode("utf-8", "replace")
        kept, in_statement = [], False
        for line in text.splitlines():
            if " STATEMENT:  " in line:
                in_statement = True
            elif not line.startswith("\t"):
                in_statement = False
            if not in_statement:
                kept.append(line)
        return "\n".join(kept)

    def sync_as_operator(self, name):
        op = self.session("billrecon_operator")
        rows = query(op, "SELECT * FROM billrecon.sync(%s, 'full')", (name,))
        self.assertEqual(len(rows), 1)
        return rows[0]

    def sync_in_background(self, name):
        op = self.session("billrecon_operator")
        job = query(op, "SELECT billrecon.sync_async(%s, 'full') AS j", (name,))[0]["j"]
        deadline = time.time() + 60
        while True:
            tasks = self.q("SELECT * FROM billrecon.sync_jobs WHERE job_id = %s", (job,))
            if tasks and all(t["status"] in FINISHED for t in tasks):
                return tasks[0]
            if time.time() > deadline:
                self.fail("background sync did not finish: %r" % tasks)
            time.sleep(0.05)

    def relation_bytes(self):
        """The heap file of integration_credentials as it is on disk now."""
        self.execute("CHECKPOINT")
        rel = self.scalar("SELECT pg_relation_filepath('billrecon.integration_credentials')")
        path = os.path.join(self.data_dir, rel)
        data = b""
        for p in [path] + ["%s.%d" % (path, i) for i in range(1, 4)]:
            if os.path.exists(p):
                with open(p, "rb") as f:
                    data += f.read()
        return data

    # -- tests -------------------------------------------------------------------------
    def test_new_credentials_are_encrypted_and_syncs_work(self):
        key = self.make_key("k1")
        self.set_key(key)
        self.assertEqual(self.one("SELECT * FROM billrecon.credential_key_status()"),
                         {"configured": True, "key_file": key, "key_id": self.key_id(), "problem": None})
        made = self.add_pair()
        for k, (name, iid) in made.items():
            row = self.stored(iid)
            self.assertIsNone(row["credentials"], "no credentials in clear")
            envelope = bytes(row["encrypted_credentials"])
            self.assertEqual(envelope[:4], b"BRC1")
            self.assertEqual(row["credential_key_id"], self.key_id())
            self.assertNotIn(self.secret[k].encode(), envelope)
            self.assertNotIn(self.tag.encode(), envelope)
            self.assertNotIn(b"client_id", envelope, "not even the credential names are in clear in the envelope")
            self.assertIn("client_id", row["credential_keys"], "the names are kept beside it, for the audit")
        # The table's file on disk: the secrets were encrypted before the row was first written.
        disk = self.relation_bytes()
        self.assertGreater(len(disk), 0)
        for n in [self.tag] + list(self.secret.values()):
            self.assertNotIn(n.encode(), disk, "integration_credentials' file on disk holds a secret")
        status = {r["integration"]: r for r in self.q("SELECT * FROM billrecon.credential_encryption")}
        for name, _ in made.values():
            self.assertEqual((status[name]["encrypted"], status[name]["status"], status[name]["key_id"]),
                             (True, "encrypted", self.key_id()))
        # Syncs decrypt in memory: foreground as the operator, and a background worker.
        for name, _ in made.values():
            self.assert_succeeded(self.sync_as_operator(name))
        self.assertEqual(self.sync_in_background(made["nj"][0])["status"], "succeeded")
        self.assertGreater(self.count("psa_companies", made["cw"][1]), 0)
        # A rotation of the credentials themselves is encrypted too, and audited by name.
        self.execute("SELECT billrecon.update_integration(%s, credentials => %s::jsonb)",
                     (made["nj"][0], '{"client_id": "%s", "client_secret": "%s"}' % (NJ_CREDS["client_id"],
                                                                                      self.secret["nj"])))
        self.assertIsNone(self.stored(made["nj"][1])["credentials"])
        audit = self.q("SELECT * FROM billrecon.audit_log WHERE object = 'integration_credentials' "
                       "AND object_id = ANY (%s) ORDER BY id", ([str(i) for _, i in made.values()],))
        self.assertGreaterEqual(len(audit), 3)
        for a in audit:
            self.assert_no_secret("audit row", a)
            self.assertNotIn("encrypted_credentials", repr(a["after"]) + repr(a["before"]))
            self.assertIn("client_id", (a["after"] or a["before"])["credential_keys"])
        self.assertEqual(audit[-1]["changed"], ["credentials"])
        # update_integration without new credentials still works on encrypted ones.
        self.execute("SELECT billrecon.update_integration(%s, options => %s::jsonb)",
                     (made["cw"][0], '{"page_size": 4, "max_retries": 2, "retry_base_delay_ms": 20}'))
        self.assert_succeeded(self.sync(made["cw"][0]))
        self.assert_no_secret("server log", self.server_log())

    def test_wrong_key_fails_red_without_leaking(self):
        k1, k2 = self.make_key("k1"), self.make_key("k2")
        self.set_key(k1)
        id1 = self.key_id()
        made = self.add_pair()
        self.set_key(k2)
        id2 = self.key_id()
        self.assertNotEqual(id1, id2)
        name, iid = made["cw"]
        before = self.snapshot(iid)
        row = self.sync_as_operator(name)
        self.assert_failed(row, "encrypted with another key")
        self.assertIn(id1, row["error"])
        self.assertIn(id2, row["error"])
        run = self.run_row(row["run_id"])
        self.assertEqual(run["error_sqlstate"], "55000")
        self.assertEqual(self.status(name)["status"], "red")
        self.assertEqual(self.snapshot(iid), before, "a failed sync changes no data")
        self.assertEqual(self.cw.requests(), [], "nothing was sent to the PSA")
        # The background worker sees the same key and fails the same way.
        task = self.sync_in_background(made["nj"][0])
        self.assertEqual(task["status"], "failed")
        self.assertIn("encrypted with another key", task["error"])
        status = {r["integration"]: r["status"] for r in self.q("SELECT * FROM billrecon.credential_encryption")}
        self.assertEqual(status[name], "encrypted, other key")
        for where, text in (("sync row", row), ("run row", run), ("task", task), ("server log", self.server_log())):
            self.assert_no_secret(where, text)

    def test_no_key_fails_red_naming_the_setting_and_stores_new_ones_in_clear(self):
        self.set_key(self.make_key("k1"))
        name, iid = self.add_pair()["cw"]
        self.set_key(None)
        row = self.sync(name)
        self.assert_failed(row, "encrypted, but no credential key is configured")
        self.assertIn(SETTING, row["error"])
        self.assertEqual(self.run_row(row["run_id"])["error_sqlstate"], "55000")
        self.assertEqual(self.status(name)["status"], "red")
        self.assertEqual({r["integration"]: r["status"] for r in self.q("SELECT * FROM billrecon.credential_encryption")}
                         [name], "encrypted, no key configured")
        self.assertEqual(self.one("SELECT * FROM billrecon.credential_key_status()"),
                         {"configured": False, "key_file": None, "key_id": None, "problem": None})
        # Without a key: exactly as before the feature.
        plain_name, plain_iid = self.add("connectwise", creds=dict(CW_CREDS, private_key=self.secret["cw"]))
        self.addCleanup(self.execute, "SELECT billrecon.drop_integration(%s)", (plain_name,))
        stored = self.stored(plain_iid)
        self.assertEqual(stored["credentials"]["private_key"], self.secret["cw"])
        self.assertIsNone(stored["encrypted_credentials"])
        self.assert_succeeded(self.sync(plain_name))
        with self.assertRaises(psycopg2.Error) as cm:
            self.execute("SELECT billrecon.encrypt_credentials()")
        self.assertEqual(cm.exception.pgcode, "55000")
        self.assertIn(SETTING, cm.exception.diag.message_detail)

    def test_encrypt_existing_rotate_and_decrypt(self):
        made = self.add_pair()   # in clear: no key yet
        ids = [iid for _, iid in made.values()]
        k1, k2 = self.make_key("k1"), self.make_key("k2")
        self.set_key(k1)
        status = {r["integration"]: r["status"] for r in self.q("SELECT * FROM billrecon.credential_encryption")}
        self.assertEqual(status[made["cw"][0]], "clear, to encrypt")
        self.assertGreaterEqual(self.scalar("SELECT billrecon.encrypt_credentials()"), 2)
        self.assertEqual(self.scalar("SELECT billrecon.encrypt_credentials()"), 0, "nothing left in clear")
        id1 = self.key_id()
        for iid in ids:
            self.assertEqual(self.stored(iid)["credential_key_id"], id1)
        self.assert_succeeded(self.sync(made["cw"][0]))

        # Rotation: the new key is configured, the old one passed by file.
        self.set_key(k2)
        id2 = self.key_id()
        envelopes = {iid: bytes(self.stored(iid)["encrypted_credentials"]) for iid in ids}
        self.assertGreaterEqual(self.scalar("SELECT billrecon.rotate_credential_key(%s)", (k1,)), 2)
        self.assertEqual(self.scalar("SELECT billrecon.rotate_credential_key(%s)", (k1,)), 0, "all rotated")
        for iid in ids:
            row = self.stored(iid)
            self.assertEqual(row["credential_key_id"], id2)
            self.assertNotEqual(bytes(row["encrypted_credentials"]), envelopes[iid])
        for name, _ in made.values():
            self.assert_succeeded(self.sync(name))
        with self.assertRaises(psycopg2.Error) as cm:
            self.execute("SELECT billrecon.rotate_credential_key(%s)", (k2,))
        self.assertEqual(cm.exception.pgcode, "22023")   # the old key is the configured one
        audit = self.q("SELECT changed, after FROM billrecon.audit_log WHERE object = 'integration_credentials' "
                       "AND object_id = %s ORDER BY id DESC LIMIT 1", (str(made["cw"][1]),))[0]
        self.assertEqual(audit["after"]["credential_key_id"], id2)
        self.assertIn("credentials", audit["changed"])
        # The old key no longer opens them.
        self.set_key(k1)
        self.assert_failed(self.sync(made["cw"][0]), "encrypted with another key")

        # The way back: no key configured, then decrypt with the key file.
        self.set_key(k2)
        with self.assertRaises(psycopg2.Error) as cm:
            self.execute("SELECT billrecon.decrypt_credentials(%s)", (k2,))
        self.assertEqual(cm.exception.pgcode, "55000")
        self.set_key(None)
        self.assertGreaterEqual(self.scalar("SELECT billrecon.decrypt_credentials(%s)", (k2,)), 2)
        for k, (name, iid) in made.items():
            row = self.stored(iid)
            self.assertIsNone(row["encrypted_credentials"])
            self.assertIn(self.secret[k], repr(row["credentials"]))
        self.assert_succeeded(self.sync(made["nj"][0]))

    def test_only_the_admin_and_file_readers_may_use_it(self):
        k1 = self.make_key("k1")
        self.set_key(k1)
        for role in ("billrecon_reader", "billrecon_operator"):
            s = self.session(role)
            for sql in ("SELECT * FROM billrecon.credential_encryption",
                        "SELECT * FROM billrecon.credential_key_status()",
                        "SELECT billrecon.encrypt_credentials()",
                        "SELECT billrecon.rotate_credential_key('%s')" % k1,
                        "SELECT billrecon.decrypt_credentials('%s')" % k1):
                with self.assertRaises(psycopg2.Error, msg="%s: %s" % (role, sql)) as cm:
                    with s.cursor() as cur:
                        cur.execute(sql)
                self.assertEqual(cm.exception.pgcode, "42501", "%s: %s" % (role, sql))
        admin = self.session("billrecon_admin")
        self.assertEqual(query(admin, "SELECT key_id FROM billrecon.credential_key_status()")[0]["key_id"],
                         self.key_id())
        query(admin, "SELECT * FROM billrecon.credential_encryption")
        self.assertEqual(query(admin, "SELECT billrecon.encrypt_credentials() AS n")[0]["n"] >= 0, True)
        # Reading a file named in the call: superuser or pg_read_server_files, as for pg_read_file().
        for fn in ("rotate_credential_key", "decrypt_credentials"):
            with self.assertRaises(psycopg2.Error) as cm:
                query(admin, "SELECT billrecon.%s(%%s)" % fn, (k1,))
            self.assertEqual(cm.exception.pgcode, "42501")
            self.assertIn("pg_read_server_files", cm.exception.diag.message_detail)

    def test_group_readable_key_file_is_refused(self):
        good = self.make_key("k1")
        self.set_key(good)
        name, iid = self.add_pair()["cw"]
        loose = self.make_key("loose", mode=0o640)
        self.set_key(loose)
        problem = self.one("SELECT * FROM billrecon.credential_key_status()")["problem"]
        self.assertIn("has group or world access", problem)
        with self.assertRaises(psycopg2.Error) as cm:
            self.add("connectwise", name=self.unique_name("enc-loose"),
                     creds=dict(CW_CREDS, private_key=self.secret["cw"]))
        e = cm.exception
        self.assertEqual(e.pgcode, "F0000")
        self.assertIn("has group or world access", e.diag.message_primary)
        self.assertIn("chmod 600", e.diag.message_hint)
        self.assert_no_secret("error", error_text(e))
        self.assertEqual(self.scalar("SELECT count(*) FROM billrecon.integrations WHERE name LIKE 'enc-loose%%'"), 0,
                         "nothing is stored")
        row = self.sync(name)
        self.assert_failed(row, "has group or world access")
        self.assertEqual({r["integration"]: r["status"] for r in self.q("SELECT * FROM billrecon.credential_encryption")}
                         [name], "encrypted, key file unusable")
        with self.assertRaises(psycopg2.Error) as cm:
            self.execute("SELECT billrecon.encrypt_credentials()")
        self.assertEqual(cm.exception.pgcode, "F0000")
        # A relative path is refused by the setting itself.
        with self.assertRaises(psycopg2.Error) as cm:
            self.execute("ALTER SYSTEM SET %s = 'relative/key'" % SETTING)
        self.assertIn("absolute path", error_text(cm.exception))
        self.assert_no_secret("server log", self.server_log())

    def test_dump_and_restore_keep_them_encrypted_and_usable(self):
        key = self.make_key("k1")
        self.set_key(key)
        made = self.add_pair()
        before = {iid: bytes(self.stored(iid)["encrypted_credentials"]) for _, iid in made.values()}
        dump_dir = tempfile.mkdtemp(prefix="billrecon-dump-")
        self.addCleanup(shutil.rmtree, dump_dir, True)
        plain_dump = os.path.join(dump_dir, "dump.sql")
        out = subprocess.run([os.path.join(PG_BIN, "pg_dump"), "-Fp", "-f", plain_dump, "-d", DB_NAME],
                             capture_output=True, text=True, timeout=300)
        self.assertEqual(out.returncode, 0, out.stderr)
        with open(plain_dump, encoding="utf-8", errors="replace") as f:
            self.assert_no_secret("plain pg_dump", f.read())
        dump = os.path.join(dump_dir, "dump.custom")
        out = subprocess.run([os.path.join(PG_BIN, "pg_dump"), "-Fc", "-f", dump, "-d", DB_NAME],
                             capture_output=True, text=True, timeout=300)
        self.assertEqual(out.returncode, 0, out.stderr)
        admin = psycopg2.connect(dbname=os.environ.get("BILLRECON_E2E_ADMIN_DB", "postgres"), connect_timeout=10)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % RESTORED_DB)
            cur.execute("CREATE DATABASE %s" % RESTORED_DB)

        def drop_restored():
            with admin.cursor() as cur:
                cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % RESTORED_DB)
            admin.close()
        self.addCleanup(drop_restored)
        out = subprocess.run([os.path.join(PG_BIN, "pg_restore"), "-d", RESTORED_DB, dump],
                             capture_output=True, text=True, timeout=300)
        self.assertNotIn("pg_restore: error:", out.stderr)
        restored = connect(RESTORED_DB)
        self.sessions.append(restored)
        for name, iid in made.values():
            row = query(restored, "SELECT credentials, encrypted_credentials, credential_key_id FROM "
                                  "billrecon.integration_credentials WHERE integration_id = %s", (iid,))[0]
            self.assertIsNone(row["credentials"], "still encrypted after the restore")
            self.assertEqual(bytes(row["encrypted_credentials"]), before[iid], "the same bytes")
            self.assertEqual(row["credential_key_id"], self.key_id())
        rows = query(restored, "SELECT * FROM billrecon.sync(%s, 'full')", (made["nj"][0],))
        self.assert_succeeded(rows[0])
        self.assertEqual(query(restored, "SELECT count(*) AS n FROM billrecon.audit_log WHERE object = "
                                         "'integration_credentials'")[0]["n"],
                         self.scalar("SELECT count(*) FROM billrecon.audit_log WHERE object = "
                                     "'integration_credentials'"), "the restore audits nothing of its own")
