"""add_integration input checking (SQLSTATEs, nothing stored) and the
integration_status colours."""

import json
import os
import time

import psycopg2

from e2e_lib import CW_CREDS, NJ_CREDS, E2ETestCase

# Product kinds not built yet must say so (0A000); credentials are what
# product.md lists, so a kind that gets built later simply succeeds.
# The other kinds with the credentials and required options product.md lists
# (URLs of the real services: these integrations are added, never synced).
OTHER_KINDS = {
    "halopsa": ("https://acme.halopsa.com", {"client_id": "a", "client_secret": "b"}, {}),
    "autotask": ("https://webservices5.autotask.net/ATServicesRest", {"integration_code": "a", "username": "u@x.com",
                                                                      "secret": "s"}, {}),
    "pax8": ("https://api.pax8.com", {"client_id": "a", "client_secret": "b"}, {}),
    "msgraph": ("https://graph.microsoft.com", {"tenant_id": "00000000-0000-0000-0000-000000000001",
                                                "client_id": "a", "client_secret": "b"},
                {"customer_tenants": ["00000000-0000-0000-0000-000000000002"]}),
    "partnercenter": ("https://api.partnercenter.microsoft.com", {"tenant_id": "00000000-0000-0000-0000-000000000001",
                                                                  "client_id": "a", "client_secret": "b"}, {}),
    "dattormm": ("https://merlot-api.centrastage.net", {"api_key": "a", "api_secret": "b"}, {}),
}


class AddIntegrationInput(E2ETestCase):

    def _exists(self, name):
        return self.scalar("SELECT count(*) FROM billrecon.integration_status WHERE integration = %s", (name,)) > 0

    def assert_rejected(self, sqlstate, name, kind, url, creds, options=None, default_psa=False):
        with self.assertRaises(psycopg2.Error) as cm:
            self.scalar("SELECT billrecon.add_integration(%s, %s, %s, %s::jsonb, %s::jsonb, %s)",
                        (name, kind, url, json.dumps(creds) if creds is not None else None,
                         json.dumps(options or {}), default_psa))
        self.assertEqual(cm.exception.pgcode, sqlstate, "%s/%s: %s" % (kind, url, cm.exception))
        self.assertTrue(str(cm.exception).strip(), "an error message")
        if name:
            self.assertFalse(self._exists(name), "nothing stored after %s" % sqlstate)
        return cm.exception

    def test_unknown_kind(self):
        e = self.assert_rejected("22023", self.unique_name("bad-kind"), "frobnicator", self.mocks.cw_base_url, CW_CREDS)
        self.assertIn("frobnicator", str(e))

    def test_every_kind_takes_its_documented_credentials(self):
        for kind, (url, creds, options) in sorted(OTHER_KINDS.items()):
            name = self.unique_name("kind-" + kind)
            self.scalar("SELECT billrecon.add_integration(%s, %s, %s, %s::jsonb, %s::jsonb)",
                        (name, kind, url, json.dumps(creds), json.dumps(options)))
            self.assertTrue(self._exists(name), kind)
            self.scalar("SELECT billrecon.drop_integration(%s) IS NULL", (name,))
            for missing in sorted(creds):
                partial = {k: v for k, v in creds.items() if k != missing}
                e = self.assert_rejected("22023", self.unique_name("kind-" + kind), kind, url, partial, options)
                self.assertIn(missing, str(e), "%s without %s" % (kind, missing))

    def test_malformed_base_urls(self):
        for url in ("not a url", "ftp://127.0.0.1/x", "http://", "", "127.0.0.1:8080/v4_6_release/apis/3.0",
                    "http://127.0.0.1:99999/x", "http://exa mple.com/"):
            self.assert_rejected("22023", self.unique_name("bad-url"), "connectwise", url, CW_CREDS)

    def test_missing_credentials(self):
        secret = "S3cret-%d-value" % os.getpid()
        cw = dict(CW_CREDS, private_key=secret)
        for kind, creds in (("connectwise", {k: v for k, v in cw.items() if k != "public_key"}),
                            ("connectwise", {k: v for k, v in cw.items() if k != "client_id"}),
                            ("connectwise", {k: v for k, v in CW_CREDS.items() if k != "private_key"}),
                            ("connectwise", dict(cw, company_id="")),
                            ("connectwise", dict(cw, public_key=42)),
                            ("ninjaone", {"client_secret": secret}),
                            ("ninjaone", {"client_id": NJ_CREDS["client_id"]}),
                            ("ninjaone", {}),
                            ("ninjaone", None),
                            ("ninjaone", ["client_id", "client_secret"])):
            url = self.mocks.cw_base_url if kind == "connectwise" else self.mocks.nj_base_url
            e = self.assert_rejected("22023", self.unique_name("bad-creds"), kind, url, creds)
            self.assertNotIn(secret, str(e), "a secret is echoed in the error")

    def test_http_refused_unless_allowed(self):
        name = self.unique_name("no-http")
        self.execute("SET billrecon.allow_http = off")
        try:
            self.assert_rejected("22023", name, "connectwise", self.mocks.cw_base_url, CW_CREDS)
            self.assert_rejected("22023", name, "ninjaone", self.mocks.nj_base_url, NJ_CREDS)
        finally:
            self.execute("SET billrecon.allow_http = on")
        name2, _ = self.add("ninjaone")
        self.assertTrue(self._exists(name2), "http accepted once allowed")

    def test_second_default_psa(self):
        # In a transaction rolled back at the end: other tests must not inherit a default PSA.
        self.conn.autocommit = False
        try:
            first, second = self.unique_name("psa-one"), self.unique_name("psa-two")
            cur = self.conn.cursor()
            cur.execute("SELECT billrecon.add_integration(%s, 'connectwise', %s, %s::jsonb, '{}', true)",
                        (first, self.mocks.cw_base_url, json.dumps(CW_CREDS)))
            cur.execute("SAVEPOINT s")
            with self.assertRaises(psycopg2.Error) as cm:
                cur.execute("SELECT billrecon.add_integration(%s, 'connectwise', %s, %s::jsonb, '{}', true)",
                            (second, self.mocks.cw_base_url, json.dumps(CW_CREDS)))
            self.assertEqual(cm.exception.pgcode, "23505")
            cur.execute("ROLLBACK TO SAVEPOINT s")
            cur.execute("SELECT count(*) FROM billrecon.integration_status WHERE integration IN (%s, %s)",
                        (first, second))
            self.assertEqual(cur.fetchone()[0], 1, "the second default PSA was not stored")
        finally:
            self.conn.rollback()
            self.conn.autocommit = True
        self.assertFalse(self._exists(first))

    def test_duplicate_and_invalid_names(self):
        name, _ = self.add("connectwise")
        with self.assertRaises(psycopg2.Error) as cm:
            self.scalar("SELECT billrecon.add_integration(%s, 'ninjaone', %s, %s::jsonb)",
                        (name, self.mocks.nj_base_url, json.dumps(NJ_CREDS)))
        self.assertEqual(cm.exception.pgcode, "23505")
        self.assertEqual(self.one("SELECT kind FROM billrecon.integration_status WHERE integration = %s",
                                  (name,))["kind"], "connectwise", "the first one is untouched")
        self.assert_rejected("22023", "bad name!", "connectwise", self.mocks.cw_base_url, CW_CREDS)

    def test_bad_options(self):
        for opts in ({"page_size": 5000}, {"page_size": 0}, {"timeout_ms": -1}, {"max_retries": "many"}):
            self.assert_rejected("22023", self.unique_name("bad-opts"), "connectwise", self.mocks.cw_base_url,
                                 CW_CREDS, options=opts)


class IntegrationStatus(E2ETestCase):

    def test_never_synced_is_yellow(self):
        name, _ = self.add("connectwise")
        st = self.status(name)
        self.assertEqual((st["kind"], st["status"]), ("connectwise", "yellow"))
        self.assertIsNone(st["last_success_at"])
        self.assertIsNone(st["last_error"])
        self.assertIsNone(st["last_sync_at"])

    def test_green_red_green(self):
        name, _ = self.add("ninjaone")
        self.assert_succeeded(self.sync(name, "full"))
        st = self.status(name)
        self.assertEqual(st["status"], "green")
        ok_at = st["last_success_at"]
        self.assertIsNotNone(ok_at)
        self.nj.fault(match="organizations", kind="status", status=500, times=-1)
        row = self.sync(name, "full")
        self.assert_failed(row, r"500")
        st = self.status(name)
        self.assertEqual(st["status"], "red")
        self.assertEqual(st["last_error"], row["error"])
        self.assertEqual(st["last_success_at"], ok_at, "last success time kept")
        self.assertGreaterEqual(st["last_sync_at"], ok_at)
        self.nj.ctl("DELETE", "faults")
        self.assert_succeeded(self.sync(name, "full"))
        st = self.status(name)
        self.assertEqual((st["status"], st["last_error"]), ("green", None))
        self.assertGreater(st["last_success_at"], ok_at)

    def test_stale_after(self):
        name, _ = self.add("ninjaone")
        self.assert_succeeded(self.sync(name, "full"))
        self.assertEqual(self.status(name)["status"], "green")
        try:
            self.execute("SET billrecon.stale_after = '1s'")
            time.sleep(1.3)
            self.assertEqual(self.status(name)["status"], "yellow", "older than stale_after")
            self.execute("SET billrecon.stale_after = '1h'")
            self.assertEqual(self.status(name)["status"], "green")
        finally:
            self.execute("RESET billrecon.stale_after")
        self.assertEqual(self.status(name)["status"], "green", "default 24h")

    def test_sync_unknown_integration(self):
        with self.assertRaises(psycopg2.Error) as cm:
            self.q("SELECT * FROM billrecon.sync('no-such-integration', 'full')")
        self.assertEqual(cm.exception.pgcode, "42704")
        with self.assertRaises(psycopg2.Error) as cm:
            name, _ = self.add("ninjaone")
            self.q("SELECT * FROM billrecon.sync(%s, 'sideways')", (name,))
        self.assertEqual(cm.exception.pgcode, "22023")
