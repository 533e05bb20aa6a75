"""The fault matrix: every HTTP connector kind x every fault of the mocks.

Each cell is: a fresh integration of the kind, a first clean full sync (the
data to compare with), then the fault armed on the kind's main paged list
(the second matching request, after=1, so one page is already read) and a
second full sync. A cell passes when its expectation holds:

  ok-retried    the sync succeeded after retries (429, 500 burst, 401 then a
                fresh token) and every stored row equals the clean sync's
                (all columns but last_seen_at and last_sync_run_id, which a
                sync stamps);
  ok-failed     the sync failed (sync_runs.status 'failed', the integration
                red) with an error naming the status / cause and the
                endpoint, and every stored row of the integration, every
                column, is identical before and after;
  ok-tolerated  (only "empty page in the middle") the connector legitimately
                accepts an empty page: the sync succeeded and stored nothing
                the clean sync did not (the records of the emptied page may
                be missing until the next good sync);
  ok-refused    (only "empty page in the middle" of NinjaOne) the listing
                ended early and the full sync would have marked most rows
                removed: the mass-removal guard (billrecon.max_removed_share,
                060_staging.sql) failed it (SQLSTATE 22000, the counts in
                DETAIL) and every stored row is identical.

Anything else is "FAIL: reason". One test method per fault runs the eight
kinds in parallel (one thread and one database connection per kind: each
kind has its own mock server, so faults and request logs do not mix),
collects every cell, then asserts; tearDownClass prints the matrix.

What the cells mean where a kind differs:

- "401 then token refresh": the mock revokes every token it issued
  (token_revoke), so the faulted request meets a 401 and the HTTP client
  must fetch a new token and repeat the request (http/client.cpp, Verdict
  kAuth). ConnectWise (Basic auth) and Autotask (ApiIntegrationcode /
  UserName / Secret headers) have no token: the same fault is then one plain
  401 followed by success, and the client's rule for static credentials is
  not to retry a 401 (auth.cpp: Invalidate() is false, so Fail) -- a wrong
  key does not become right by asking again. Expected: ok-failed.
- "empty page in the middle" (the page's items emptied, its paging
  metadata kept), per connector (src/connectors/*.cpp):
    connectwise    Link rel="next" is followed past an empty page (real CW
                   pages come back short or empty when member security
                   filters after paging) -> ok-tolerated
    autotask       pageDetails.nextPageUrl is followed -> ok-tolerated
    halopsa        record_count promises more than was read: FetchPaged
                   throws "incomplete list in vendor response" -> ok-failed
    msgraph        @odata.nextLink is followed -> ok-tolerated
    partnercenter  links.next is followed -> ok-tolerated
    pax8           page.number + 1 < totalPages: the next page is read ->
                   ok-tolerated
    ninjaone       bare arrays end at the first short page: the listing ends
                   there (the API gives no way to tell), so the full sync would
                   mark every later device removed; the mass-removal guard
                   refuses it -> ok-refused
    dattormm       pageDetails.nextPageUrl is followed -> ok-tolerated
"""

import json
import re
import sys
import threading
import time

from e2e_lib import BASE_OPTIONS, KIND_MOCK, KIND_PAGE, Ctx, E2ETestCase, connect, kind_built, query, scalar

KINDS = ("connectwise", "halopsa", "autotask", "msgraph", "partnercenter", "pax8", "ninjaone", "dattormm")
SHORT = {"connectwise": "cw", "halopsa": "halo", "autotask": "at", "msgraph": "graph", "partnercenter": "pc",
         "pax8": "pax8", "ninjaone": "nj", "dattormm": "datto"}
# The faulted list of each kind (regex on path+query) and a word of the
# endpoint every error about it must name.
MATCH = {
    "connectwise": (r"/company/companies", r"compan"),
    "halopsa": (r"/api/RecurringInvoice", r"RecurringInvoice"),
    "autotask": (r"/Companies/query", r"Companies"),
    "msgraph": (r"/v1.0/users", r"users"),
    "partnercenter": (r"/v1/customers", r"customers|subscriptions"),
    "pax8": (r"/v1/subscriptions", r"subscriptions"),
    "ninjaone": (r"/v2/devices", r"device"),
    "dattormm": (r"/api/v2/account/devices", r"devices"),
}
# Graph has no page_size option; the mock pages below $top instead, so that
# every tenant's users span several pages (@odata.nextLink paging).
KIND_MOCK_CONFIG = {"msgraph": {"server_page_size": 3}}
STATIC_AUTH = {"connectwise", "autotask"}         # no OAuth token to refresh
EMPTY_PAGE_FAILS = {"halopsa"}                    # see the module docstring
EMPTY_PAGE_REFUSED = {"ninjaone"}                 # the mass-removal guard
REFUSED = r"full sync would mark \d+ of \d+ current .* removed"

ROWS_VOLATILE = ("last_seen_at", "last_sync_run_id")
TABLES = ("psa_companies", "psa_agreements", "psa_line_items", "vendor_accounts", "usage_records")

# Columns, in order: name, title, fault spec, extra options, expectation
# ("retried", "failed", "empty"), error pattern of a failure.
FAULTS = [
    ("rate_limit", "429+Retry-After", {"kind": "rate_limit", "retry_after": 1, "times": 1},
     {"retry_max_delay_ms": 3000}, "retried", None),
    ("burst_500", "500 burst", {"kind": "status", "status": 500, "times": 2}, {}, "retried", None),
    ("forever_500", "500 forever", {"kind": "status", "status": 500, "times": -1}, {}, "failed", r"\b500\b"),
    ("slow", "slow>timeout", {"kind": "slow", "delay_s": 1.5, "times": -1}, {"timeout_ms": 500}, "failed",
     r"time[sd]?[ -]?out"),
    ("reset", "reset mid-body", {"kind": "drop", "mode": "reset", "times": -1}, {}, "failed",
     r"reset|connection|closed|partial|transfer|receiv|recv"),
    ("malformed", "malformed JSON", {"kind": "malformed", "times": -1}, {}, "failed", r"json|pars"),
    ("truncated", "truncated page", {"kind": "truncated", "times": -1}, {}, "failed",
     r"json|pars|truncat|incomplete|end of"),
    ("refresh_401", "401->refresh", {"kind": "token_revoke", "times": 1}, {}, "retried", None),
    ("forever_401", "401 forever", {"kind": "unauthorized", "times": -1}, {}, "failed",
     r"authenticat|unauthori|\b401\b"),
    ("loop", "page loop", {"kind": "loop", "times": -1}, {}, "failed", r"loop"),
    ("huge", "too large", {"kind": "huge", "size_mb": 3, "times": -1}, {"max_response_mb": 1}, "failed",
     r"size|large|limit|exceed|MB|bytes"),
    ("empty_page", "empty page", {"kind": "empty_page", "times": 1}, {}, "empty", None),
]
AUTH_FAIL = r"authenticat|unauthori|\b401\b"
EMPTY_FAIL = r"incomplete|record_count"


def expectation(kind, fault):
    """(expected outcome, error pattern) of one cell."""
    name, _, _, _, expect, pattern = fault
    if name == "refresh_401" and kind in STATIC_AUTH:
        return "failed", AUTH_FAIL
    if name == "empty_page":
        if kind in EMPTY_PAGE_REFUSED:
            return "refused", REFUSED
        return ("failed", EMPTY_FAIL) if kind in EMPTY_PAGE_FAILS else ("tolerated", None)
    return expect, pattern


class CellFailure(Exception):
    pass


class Cell:
    """One kind x one fault, on its own database connection."""

    def __init__(self, mocks, kind, fault, counter):
        self.mocks = mocks
        self.kind = kind
        self.fault = fault
        self.counter = counter
        self.mock = getattr(mocks, KIND_MOCK[kind])
        self.detail = None

    def check(self, cond, msg):
        if not cond:
            raise CellFailure(msg)

    def add(self, conn, options):
        url, creds, kind_opts = self.mocks.integration(self.kind)
        opts = dict(BASE_OPTIONS)
        if self.kind in KIND_PAGE:
            opts["page_size"] = KIND_PAGE[self.kind]
        opts.update(kind_opts)
        opts.update(options)
        name = ("fm-%s-%s-%d" % (SHORT[self.kind], self.fault[0], self.counter))[:63]
        iid = scalar(conn, "SELECT billrecon.add_integration(%s, %s, %s, %s::jsonb, %s::jsonb)",
                     (name, self.kind, url, json.dumps(creds), json.dumps(opts)))
        return name, iid

    @staticmethod
    def sync(conn, name):
        rows = query(conn, "SELECT * FROM billrecon.sync(%s, 'full')", (name,))
        if len(rows) != 1:
            raise CellFailure("billrecon.sync returned %d rows" % len(rows))
        return rows[0]

    @staticmethod
    def snapshot(conn, iid):
        return {t: query(conn, "SELECT * FROM billrecon.%s WHERE integration_id = %%s ORDER BY id" % t, (iid,))
                for t in TABLES}

    def compare(self, before, after, volatile, what):
        """First difference of two snapshots, or None."""
        for t in TABLES:
            if len(before[t]) != len(after[t]):
                return "%s: %s has %d rows, was %d" % (what, t, len(after[t]), len(before[t]))
            for a, b in zip(before[t], after[t]):
                a = {k: v for k, v in a.items() if k not in volatile}
                b = {k: v for k, v in b.items() if k not in volatile}
                if a != b:
                    cols = sorted(k for k in a if a[k] != b.get(k))
                    return "%s: %s row %s differs in %s" % (what, t, a.get("id"), ", ".join(cols))
        return None

    def run(self):
        name_, _, spec, options, _, _ = self.fault
        expect, pattern = expectation(self.kind, self.fault)
        match, word = MATCH[self.kind]
        conn = connect()
        try:
            if self.kind in KIND_MOCK_CONFIG:
                self.mock.config(**KIND_MOCK_CONFIG[self.kind])
            name, iid = self.add(conn, options)
            first = self.sync(conn, name)
            self.check(first["status"] == "succeeded", "the clean first sync failed: %s" % first.get("error"))
            before = self.snapshot(conn, iid)
            self.check(any(before[t] for t in TABLES), "the clean sync stored nothing")
            self.mock.ctl("DELETE", "requests")
            self.mock.fault(match=match, after=1, **spec)
            t0 = time.time()
            row = self.sync(conn, name)
            took = time.time() - t0
            after = self.snapshot(conn, iid)
            log = self.mock.requests()
            faulted = [e for e in log if e["fault"] == spec["kind"]]
            self.check(faulted, "the fault never fired (no request matched %r after the first)" % match)
            run = query(conn, "SELECT * FROM billrecon.sync_runs WHERE id = %s", (row["run_id"],))[0]
            status = query(conn, "SELECT * FROM billrecon.integration_status WHERE integration = %s", (name,))[0]
            err = row.get("error") or ""
            if expect == "refused":
                self.check(row["status"] == "failed", "sync %s, expected the mass-removal guard to refuse it"
                           % row["status"])
                self.check(run["error_sqlstate"] == "22000", "sqlstate %r, expected 22000" % run["error_sqlstate"])
                self.check(re.search(pattern, err, re.I), "error does not match /%s/: %s" % (pattern, err[:300]))
                self.check("billrecon.max_removed_share" in (run["error_detail"] or ""),
                           "DETAIL does not name billrecon.max_removed_share: %r" % run["error_detail"])
                self.check(status["status"] == "red", "integration status %r, expected red" % status["status"])
                diff = self.compare(before, after, (), "after the refused sync")
                self.check(diff is None, diff)
                self.detail = err.splitlines()[0][:200]
                return "ok-refused", took
            if expect == "failed":
                self.check(row["status"] == "failed", "sync %s, expected failed (retries %s)"
                           % (row["status"], row["retries"]))
                self.check(run["status"] == "failed", "sync_runs.status %r" % run["status"])
                self.check(run["finished_at"] is not None, "sync_runs.finished_at not set")
                self.check(status["status"] == "red", "integration status %r, expected red" % status["status"])
                self.check(err, "a failed sync without an error text")
                self.check(re.search(pattern, err, re.I), "error does not match /%s/: %s" % (pattern, err[:300]))
                self.check(re.search(word, err, re.I), "error does not name the endpoint (/%s/): %s"
                           % (word, err[:300]))
                diff = self.compare(before, after, (), "after the failed sync")
                self.check(diff is None, diff)
                self.check(len(log) < 80, "%d requests: the connector kept going after a fatal error" % len(log))
                self.detail = err.splitlines()[0][:200]
                return "ok-failed", took
            self.check(row["status"] == "succeeded", "sync %s, expected success: %s" % (row["status"], err[:300]))
            if expect == "tolerated":
                keys_before = {t: {r["external_id"] for r in before[t]} for t in TABLES}
                for t in TABLES:
                    extra = {r["external_id"] for r in after[t] if r["removed_at"] is None} - keys_before[t]
                    self.check(not extra, "%s: rows the clean sync did not have: %s" % (t, sorted(extra)[:5]))
                missing = {t: len(before[t]) - sum(1 for r in after[t] if r["removed_at"] is None) for t in TABLES}
                self.detail = "succeeded; current rows missing until the next good sync: %s" % (
                    ", ".join("%s %d" % (t, n) for t, n in missing.items() if n) or "none")
                return "ok-tolerated", took
            self.check(row["retries"] >= len(faulted), "retries %s < %d faulted responses"
                       % (row["retries"], len(faulted)))
            diff = self.compare(before, after, ROWS_VOLATILE, "after the retried sync")
            self.check(diff is None, diff)
            if spec["kind"] == "rate_limit":
                for i, e in enumerate(log):
                    if e["fault"] == "rate_limit":
                        nxt = next((x for x in log[i + 1:] if x["path"] == e["path"]), None)
                        self.check(nxt is not None, "the rate-limited request was not repeated")
                        self.check(nxt["time"] - e["time"] >= 0.9, "Retry-After: 1 not honoured (%.2fs)"
                                   % (nxt["time"] - e["time"]))
            if spec["kind"] == "token_revoke":
                t_fault = faulted[0]["time"]
                tokens = [e for e in log if "token" in e["path"].lower() and e["time"] >= t_fault]
                self.check(tokens, "no token request after the 401")
            self.detail = "succeeded, %s retries" % row["retries"]
            return "ok-retried", took
        except CellFailure as e:
            return "FAIL: %s" % e, None
        except Exception as e:  # noqa: BLE001 - a cell reports, the matrix goes on
            return "FAIL: %s: %s" % (type(e).__name__, str(e)[:300]), None
        finally:
            try:
                self.mock.ctl("DELETE", "faults")
            except Exception:  # noqa: BLE001
                pass
            conn.close()


class FaultMatrix(E2ETestCase):
    """One test per fault column; each runs every kind (in parallel)."""

    results = {}     # (kind, fault name) -> cell text
    timings = {}
    details = {}     # (kind, fault name) -> the run's error (or what succeeded)

    @classmethod
    def tearDownClass(cls):
        cls.print_matrix()
        super().tearDownClass()

    @classmethod
    def print_matrix(cls):
        if not cls.results:
            return
        cols = [f for f in FAULTS if any((k, f[0]) in cls.results for k in KINDS)]
        width = {f[0]: max(len(f[1]), 12) for f in cols}
        out = ["", "fault matrix (rows: kinds, columns: faults)"]
        out.append("%-14s | " % "kind" + " | ".join("%-*s" % (width[f[0]], f[1]) for f in cols))
        out.append("-" * len(out[-1]))
        notes = []
        for k in KINDS:
            cells = []
            for f in cols:
                r = cls.results.get((k, f[0]), "-")
                if r.startswith("FAIL"):
                    notes.append("  %s x %s: %s" % (k, f[1], r))
                    r = "FAIL (see below)"
                cells.append("%-*s" % (width[f[0]], r))
            out.append("%-14s | " % k + " | ".join(cells))
        n = len(cls.results)
        bad = sum(1 for r in cls.results.values() if r.startswith("FAIL"))
        out.append("%d cells, %d passing, %d failing" % (n, n - bad, bad))
        if notes:
            out.append("failing cells:")
            out.extend(notes)
        out.append("what each passing cell saw (the error of a failed sync):")
        for f in cols:
            for k in KINDS:
                d = cls.details.get((k, f[0]))
                if d:
                    out.append("  %-13s %-15s %s" % (k, f[1], d))
        print("\n".join(out), flush=True)
        sys.stdout.flush()

    def run_column(self, fault):
        kinds = [k for k in KINDS if kind_built(k)]
        out = {}
        threads = []
        for k in kinds:
            Ctx.counter += 1
            cell = Cell(self.mocks, k, fault, Ctx.counter)

            def work(cell=cell, k=k):
                out[k] = cell.run() + (cell.detail,)
            threads.append(threading.Thread(target=work, name="fm-" + k))
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        failures = []
        for k in kinds:
            text, took, detail = out.get(k, ("FAIL: the cell did not finish in 120 s", None, None))
            type(self).results[(k, fault[0])] = text
            type(self).details[(k, fault[0])] = detail
            type(self).timings[(k, fault[0])] = took
            if text.startswith("FAIL"):
                failures.append("%s: %s" % (k, text))
        for k in KINDS:
            if k not in kinds:
                type(self).results[(k, fault[0])] = "skipped (not built)"
        if failures:
            self.fail("%s: %d failing cell(s):\n  %s" % (fault[1], len(failures), "\n  ".join(failures)))


def _make(fault):
    def test(self):
        self.run_column(fault)
    test.__doc__ = "every kind x %s" % fault[1]
    return test


for _i, _fault in enumerate(FAULTS):
    # Numbered: the loader sorts test names, and the columns keep this order.
    setattr(FaultMatrix, "test_%02d_%s" % (_i + 1, _fault[0]), _make(_fault))
