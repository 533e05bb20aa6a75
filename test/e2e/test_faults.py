"""Every fault kind of the mocks against both connectors.

Each case is one test per connector (test_cw_<case>, test_nj_<case>). Faults
hit the second request of a paged list (after=1): ConnectWise's companies,
NinjaOne's devices. Success cases check the data is complete and the retries
counted; failure cases check the run says failed with a useful message, the
integration turns red, and the data of the previous successful sync is still
there, row for row.
"""

import json
import re

from e2e_lib import BASE_OPTIONS, CW_CREDS, NJ_CREDS, NJ_PAGE, Ctx, E2ETestCase, connect, scalar

VENDORS = {
    "cw": {"kind": "connectwise", "match": r"/company/companies", "word": r"compan", "mock": "cw",
           "counts": "cw_counts"},
    "nj": {"kind": "ninjaone", "match": r"/v2/devices", "word": r"device", "mock": "nj", "counts": "nj_counts"},
}
ATTEMPTS = BASE_OPTIONS["max_retries"] + 1

# name: (fault, options, minimum retries)
SUCCESS = {
    "rate_limit_retry_after": ({"kind": "rate_limit", "retry_after": 1, "times": 2, "after": 1},
                               {"retry_max_delay_ms": 3000}, 2),
    "rate_limit_without_retry_after": ({"kind": "rate_limit", "times": 1, "after": 1}, {}, 1),
    "status_500_burst": ({"kind": "status", "status": 500, "times": 2, "after": 1}, {}, 2),
    "status_502_once": ({"kind": "status", "status": 502, "times": 1, "after": 1}, {}, 1),
    "slow_once_past_timeout": ({"kind": "slow", "delay_s": 2.0, "times": 1, "after": 1}, {"timeout_ms": 700}, 1),
    "drop_once": ({"kind": "drop", "times": 1, "after": 1}, {}, 1),
}
# name: (fault, options, error pattern, endpoint named in the error, attempts on the faulted request)
FAILURE = {
    "status_500_forever": ({"kind": "status", "status": 500, "times": -1, "after": 1}, {}, r"\b500\b", True,
                           ATTEMPTS),
    "status_404_forever": ({"kind": "status", "status": 404, "times": -1, "after": 1}, {}, r"\b404\b", True, 1),
    "slow_forever_past_timeout": ({"kind": "slow", "delay_s": 2.0, "times": -1, "after": 1}, {"timeout_ms": 700},
                                  r"time[sd]?[ -]?out", False, None),
    "drop_forever": ({"kind": "drop", "times": -1, "after": 1}, {}, None, False, None),
    "malformed_json": ({"kind": "malformed", "times": -1, "after": 1}, {}, r"json|pars", False, None),
    "truncated_json": ({"kind": "truncated", "times": -1, "after": 1}, {}, r"json|pars|truncat|incomplete", False,
                       None),
    "unauthorized_forever": ({"kind": "unauthorized", "times": -1, "after": 1}, {}, r"authenticat|unauthori", False,
                             None),
    "pagination_loop": ({"kind": "loop", "times": -1, "after": 1}, {}, r"loop", False, None),
    "huge_response": ({"kind": "huge", "size_mb": 3, "times": -1, "after": 1}, {"max_response_mb": 1},
                      r"size|large|limit|exceed|MB|bytes", False, None),
}


class Faults(E2ETestCase):

    def _vendor(self, key):
        v = VENDORS[key]
        return v, getattr(self, v["mock"]), getattr(self, v["counts"])()

    def _success_case(self, key, case):
        spec, options, min_retries = SUCCESS[case]
        v, mock, counts = self._vendor(key)
        name, iid = self.add(v["kind"], options=options)
        mock.fault(match=v["match"], **spec)
        row = self.sync(name, "full")
        self.assert_succeeded(row)
        self.assert_counts(iid, counts)
        self.assertGreaterEqual(row["retries"], min_retries, "retries counted")
        self.assertEqual(self.run_row(row["run_id"])["retries"], row["retries"])
        self.assertEqual(self.status(name)["status"], "green")
        if spec["kind"] == "rate_limit" and spec.get("retry_after"):
            log = mock.requests()
            for i, e in enumerate(log):
                if e["status"] == 429:
                    nxt = next(x for x in log[i + 1:] if x["path"] == e["path"])
                    self.assertGreaterEqual(nxt["time"] - e["time"], 0.9, "Retry-After: 1 honoured")

    def _failure_case(self, key, case):
        spec, options, pattern, names_endpoint, attempts = FAILURE[case]
        v, mock, counts = self._vendor(key)
        name, iid = self.add(v["kind"], options=options)
        self.assert_succeeded(self.sync(name, "full"))
        before = self.snapshot(iid)
        mock.ctl("DELETE", "requests")
        mock.fault(match=v["match"], **spec)
        row = self.sync(name, "full")
        self.assert_failed(row, pattern)
        if names_endpoint:
            self.assertRegex(row["error"], re.compile(v["word"], re.I), "the error names the endpoint")
        self.assert_same_snapshot(before, self.snapshot(iid), "after a failed sync")
        run = self.run_row(row["run_id"])
        self.assertEqual(run["status"], "failed")
        self.assertTrue(run["error"] and row["error"].startswith(run["error"]),
                        "sync_runs.error %r vs the returned error %r" % (run["error"], row["error"]))
        self.assertIsNotNone(run["finished_at"])
        st = self.status(name)
        self.assertEqual(st["status"], "red")
        self.assertTrue(st["last_error"] and st["last_error"].startswith(run["error"]),
                        "integration_status.last_error %r" % st["last_error"])
        log = mock.requests()
        faulted = [e for e in log if e["fault"] == spec["kind"]]
        if attempts is not None:
            self.assertEqual(len(faulted), attempts, "attempts on the failing request")
        self.assertLess(len(log), 60, "the connector kept going after a fatal error")
        # The next good sync heals the status.
        mock.ctl("DELETE", "faults")
        self.assert_succeeded(self.sync(name, "full"))
        self.assertEqual(self.status(name)["status"], "green")

    # -- empty pages: the two APIs end a listing differently ----------------------------
    def test_cw_empty_page_with_next_link_continues(self):
        """An empty ConnectWise page that still carries Link rel="next" is not
        the end: the connector follows the link and stores the rest. (Real
        ConnectWise pages can come back short or empty when member security
        filters records after paging, so this is not an error.)"""
        name, iid = self.add("connectwise")
        self.cw.fault(match=r"/finance/agreements\?", kind="empty_page", after=1, times=1)
        row = self.sync(name, "full")
        self.assert_succeeded(row)
        pages = [int(e["params"].get("page", "1")) for e in self.cw.requests()
                 if e["path"].endswith("/finance/agreements")]
        last = -(-len(self.ds.agreements) // 4)
        self.assertEqual(sorted(pages), list(range(1, last + 1)), "every page after the empty one was fetched")
        missing = {a.id for a in self.ds.agreements[4:8]}
        stored = {int(r["external_id"]) for r in self.current("psa_agreements", iid)}
        self.assertEqual(stored, {a.id for a in self.ds.agreements} - missing)
        self.assertIn(self.status(name)["status"], ("green", "yellow"))

    def test_nj_empty_page_ends_listing(self):
        """NinjaOne lists end at the first short page, so an empty page ends
        the listing: only the first page's devices are stored (the API gives
        no way to tell; a later full sync repairs it)."""
        name, iid = self.add("ninjaone")
        self.nj.fault(match=r"/v2/devices", kind="empty_page", after=1, times=1)
        row = self.sync(name, "full")
        self.assert_succeeded(row)
        self.assertEqual(self.count("usage_records", iid), NJ_PAGE)
        device_requests = [e for e in self.nj.requests() if "devices" in e["path"]]
        self.assertEqual(len(device_requests), 2, "no request after the empty page")
        self.nj.ctl("DELETE", "faults")
        self.assert_succeeded(self.sync(name, "full"))
        self.assert_counts(iid, self.nj_counts())

    # -- credentials --------------------------------------------------------------------------
    def _quiet_add(self, kind, creds):
        """add_integration on a connection that does not echo statements into
        the server log, so the log check below sees only what billrecon writes."""
        conn = connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SET log_statement = 'none'")
                cur.execute("SET log_min_error_statement = 'panic'")
                cur.execute("SET log_min_duration_statement = -1")
            name = self.unique_name(kind[:2] + "-badcreds")
            url = self.mocks.cw_base_url if kind == "connectwise" else self.mocks.nj_base_url
            opts = dict(BASE_OPTIONS, page_size=4 if kind == "connectwise" else NJ_PAGE)
            iid = scalar(conn, "SELECT billrecon.add_integration(%s, %s, %s, %s::jsonb, %s::jsonb)",
                         (name, kind, url, json.dumps(creds), json.dumps(opts)))
        finally:
            conn.close()
        return name, iid

    def _assert_secret_nowhere(self, name, run_id, secrets):
        texts = {
            "sync_runs": self.q("SELECT * FROM billrecon.sync_runs WHERE id = %s", (run_id,)),
            "integration_status": self.q("SELECT * FROM billrecon.integration_status WHERE integration = %s", (name,)),
        }
        if self.scalar("SELECT to_regclass('billrecon.sync_run_messages') IS NOT NULL"):
            texts["sync_run_messages"] = self.q("SELECT * FROM billrecon.sync_run_messages WHERE run_id = %s",
                                                (run_id,))
        log = Ctx.pglog.read_from(self._log_start) if Ctx.pglog else ""
        for s in secrets:
            for where, rows in texts.items():
                self.assertNotIn(s, json.dumps(rows, default=str), "secret in %s" % where)
            self.assertNotIn(s, log, "secret in the server log")

    def test_cw_wrong_credentials(self):
        import base64
        import uuid
        secret = "cw-secret-%s" % uuid.uuid4().hex
        name, iid = self._quiet_add("connectwise", dict(CW_CREDS, private_key=secret))
        row = self.sync(name, "full")
        self.assert_failed(row, r"authenticat|unauthori|credential")
        self.assertEqual(self.status(name)["status"], "red")
        self.assertEqual(self.count("psa_companies", iid, current=False), 0)
        basic = base64.b64encode(("%s+%s:%s" % (CW_CREDS["company_id"], CW_CREDS["public_key"], secret)).encode())
        self._assert_secret_nowhere(name, row["run_id"], [secret, basic.decode()])
        self.assertLessEqual(len(self.cw.requests()), ATTEMPTS, "401 with static credentials is not worth retrying")

    def test_nj_wrong_credentials(self):
        import uuid
        secret = "nj-secret-%s" % uuid.uuid4().hex
        name, iid = self._quiet_add("ninjaone", dict(NJ_CREDS, client_secret=secret))
        row = self.sync(name, "full")
        self.assert_failed(row, r"authenticat|unauthori|credential|invalid_client")
        self.assertEqual(self.status(name)["status"], "red")
        self.assertEqual(self.count("vendor_accounts", iid, current=False), 0)
        self._assert_secret_nowhere(name, row["run_id"], [secret])
        self.assertTrue(all(e["path"].endswith("/oauth/token") for e in self.nj.requests()),
                        "no API call without a token")

    def test_nj_unauthorized_forever_refreshes_once(self):
        name, iid = self.add("ninjaone")
        self.nj.fault(match=r"/v2/devices", kind="unauthorized", after=1, times=-1)
        row = self.sync(name, "full")
        self.assert_failed(row, r"authenticat|unauthori")
        tokens = [e for e in self.nj.requests() if e["path"].endswith("/oauth/token")]
        self.assertIn(len(tokens), (2, 3), "a 401 is worth one fresh token, not a loop")


def _make(key, case, fn):
    def test(self):
        fn(self, key, case)
    test.__name__ = "test_%s_%s" % (key, case)
    test.__doc__ = "%s: %s" % (VENDORS[key]["kind"], case.replace("_", " "))
    return test


for _key in VENDORS:
    for _case in SUCCESS:
        setattr(Faults, "test_%s_%s" % (_key, _case), _make(_key, _case, Faults._success_case))
    for _case in FAILURE:
        setattr(Faults, "test_%s_%s" % (_key, _case), _make(_key, _case, Faults._failure_case))
