"""Redirects never carry credentials to another host (issue 8;
docs/security.md).

The mocks answer 301, 302, 303, 307 and 308 with a Location on another
loopback port, where a trap server records every request it receives. For a
PSA with Basic authentication (ConnectWise), an OAuth2 vendor's API call
with its bearer token (NinjaOne), NinjaOne's token endpoint (the client
secret in the form body) and Pax8's (the secret in a JSON body): the sync
fails red with "unexpected redirect from <host> (HTTP n)" and its hint, the
stored data is unchanged, the trap received nothing at all, and neither the
run nor the error carries a secret. A base URL or token_url with a
user:password@ part is refused without echoing it: test_secrets.py
(test_secret_in_a_url_is_refused_without_echo)."""

import http.server
import json
import threading

from e2e_lib import CW_PREFIX, E2ETestCase

STATUSES = (301, 302, 303, 307, 308)
SQLSTATE = "22000"    # docs/errors.md: a vendor answer billrecon cannot use
# kind -> (regex of the redirected request, method, secrets that must never travel)
CASES = {
    "connectwise api": ("connectwise", CW_PREFIX + "/company/companies", "GET", ("privkey",)),
    "ninjaone api": ("ninjaone", r"^/v2/organizations", "GET", ("billrecon-ninja-secret",)),
    "ninjaone token": ("ninjaone", r"oauth/token", "POST", ("billrecon-ninja-secret",)),
    "pax8 token": ("pax8", r"^/v1/token", "POST", ("billrecon-pax8-secret",)),
}


class Trap(http.server.ThreadingHTTPServer):
    def __init__(self):
        self.seen = []
        super().__init__(("127.0.0.1", 0), TrapHandler)


class TrapHandler(http.server.BaseHTTPRequestHandler):
    def _record(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.server.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                 "body": self.rfile.read(n).decode("latin-1") if n else ""})
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _record

    def log_message(self, *args):
        pass


class Redirects(E2ETestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.trap = Trap()
        cls.thread = threading.Thread(target=cls.trap.serve_forever, daemon=True)
        cls.thread.start()
        cls.trap_url = "http://127.0.0.1:%d" % cls.trap.server_address[1]

    @classmethod
    def tearDownClass(cls):
        cls.trap.shutdown()
        cls.trap.server_close()
        super().tearDownClass()

    def test_no_redirect_is_followed_and_nothing_reaches_the_other_host(self):
        for case, (kind, match, method, secrets) in CASES.items():
            mock = self.mocks.vendors[kind]
            name, iid = self.add(kind)
            self.addCleanup(self.execute, "SELECT billrecon.drop_integration(%s)", (name,))
            before = self.snapshot(iid)
            for status in STATUSES:
                with self.subTest(case=case, status=status):
                    mock.reset()
                    del self.trap.seen[:]
                    location = "%s/steal/%s/%d?next=%s" % (self.trap_url, kind, status, match)
                    mock.fault(match=match, method=method, kind="status", status=status, body="",
                               headers={"Location": location})
                    row = self.sync(name, "full")
                    self.assert_failed(row, r"^unexpected redirect from 127\.0\.0\.1:%d \(HTTP %d\)"
                                       % (mock.port, status))
                    run = self.run_row(row["run_id"])
                    self.assertEqual(run["error_sqlstate"], SQLSTATE)
                    self.assertEqual(self.trap.seen, [], "the other host received a request")
                    redirected = [r for r in mock.requests() if r["status"] == status]
                    self.assertEqual(len(redirected), 1, "the redirect is not retried either")
                    self.assertEqual(self.status(name)["status"], "red")
                    self.assert_same_snapshot(before, self.snapshot(iid), "after a redirect")
                    texts = json.dumps([run, self.status(name)], default=str)
                    for s in secrets:
                        self.assertNotIn(s, texts, "a secret in the failed run")
