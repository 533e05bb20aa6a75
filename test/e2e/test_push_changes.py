"""The change workflow end to end against each PSA mock (ConnectWise,
HaloPSA, Autotask) with NinjaOne counting the devices: sync, map, rules,
billrecon.reconcile(), change cards, approve, billrecon.push_changes(),
revert_change(); what the PSA received, what the next sync and reconcile
see, and that a change is applied exactly once however the push ends
(cut off after the PSA applied it, statement cancelled mid-way, refused,
line deleted meanwhile).

Every test builds its own integrations (PSA + NinjaOne, the only enabled
ones while it runs) and drops them afterwards, cards included."""

import collections
import datetime
import decimal
import json
import re
import threading
import time

import psycopg2

from e2e_lib import KindTestCase, connect

PSA_PAGE = 100     # large pages: the paging itself is tested elsewhere
OPERATOR = "billrecon_operator"


def plain_number(d):
    """Decimal('10.00') -> '10', as trim_scale() prints it."""
    return "{:f}".format(d.normalize())


class PushChanges:
    """Mixed into a KindTestCase that sets KIND, TRUTH (ground-truth field of
    the PSA's company id), WRITE (method, regex of the path) of the request
    that carries a change, REJECT_STATUS, and card_writes()."""

    KIND = None
    TRUTH = None
    WRITE = None
    REJECT_STATUS = 400
    WRITES_PER_CHANGE = 1

    # -- fixture ----------------------------------------------------------------------------
    def setUp(self):
        super().setUp()
        # Only this test's integrations are enabled (reconcile, presets and
        # suggestions look at every enabled one); put the flags back after.
        saved = self.q("SELECT id, enabled, is_default_psa FROM billrecon.integrations")
        self.addCleanup(self._restore_flags, saved)
        self.execute("UPDATE billrecon.integrations SET enabled = false, is_default_psa = false")

        self.psa, self.psa_id = self.add(self.KIND, options={"page_size": PSA_PAGE})
        self.addCleanup(self._drop, self.psa, self.psa_id)
        self.execute("SELECT billrecon.set_default_psa(%s)", (self.psa,))
        self.assert_succeeded(self.sync(self.psa, "full"))
        self.nj, self.nj_id = self.add("ninjaone", options={"page_size": 1000})
        self.addCleanup(self._drop, self.nj, None)
        self.assert_succeeded(self.sync(self.nj, "full"))
        self.today = self.scalar("SELECT current_date")
        self.addCleanup(self._reset_session)   # runs first: the drops need the superuser back

    def _restore_flags(self, saved):
        for r in saved:
            self.execute("UPDATE billrecon.integrations SET enabled = %s, is_default_psa = %s WHERE id = %s",
                         (r["enabled"], r["is_default_psa"], r["id"]))

    def _reset_session(self):
        self.execute("RESET ROLE")
        self.execute("RESET billrecon.spot_check_min_delta")

    def _drop(self, name, psa_id):
        if psa_id is not None:
            # Cards outlive their integration (ids set null); left approved
            # they would be tried by every later push_changes().
            self.execute("DELETE FROM billrecon.proposed_changes WHERE psa_integration_id = %s", (psa_id,))
        self.execute("SELECT billrecon.drop_integration(%s)", (name,))

    def map_clients(self, suggestions=False):
        """Maps the NinjaOne organizations to the PSA's companies: confirmed
        suggestions first (when asked), then the generator's ground truth for
        every pair (which also corrects any wrong suggestion)."""
        if suggestions:
            self.assertGreater(self.scalar("SELECT billrecon.suggest_client_matches()"), 0)
            self.assertGreater(self.scalar("SELECT billrecon.confirm_client_matches()"), 0)
        pairs = [(c["ninja_org_id"], c.get(self.TRUTH))
                 for c in self.ds.ground_truth["clients"] + self.ds.ground_truth["internal_orgs"]]
        n = 0
        for org, company in pairs:
            if org is not None and company is not None:
                self.execute("SELECT billrecon.map_client(%s, %s, %s)", (self.nj, str(org), str(company)))
                n += 1
        self.assertGreater(n, 3, "the generated MSP has clients in both systems")

    def prepare(self, suggestions=False):
        """Mapping, preset rules, a reconcile run; returns the run id."""
        self.map_clients(suggestions)
        self.assertGreater(self.scalar("SELECT billrecon.apply_presets(%s)", (self.nj,)), 0,
                           "the presets give the workstation and server products rules")
        return self.scalar("SELECT billrecon.reconcile()")

    # -- cards -------------------------------------------------------------------------------
    CARD_SQL = """SELECT c.*, p.line_item_id AS line_row_id, p.pushed_by, p.push_note, p.push_reference
                    FROM billrecon.change_cards c JOIN billrecon.proposed_changes p ON p.id = c.card_id
                   WHERE p.psa_integration_id = %s"""

    def cards(self, where="true", params=()):
        return self.q(self.CARD_SQL + " AND (" + where + ") ORDER BY c.card_id", (self.psa_id,) + tuple(params))

    def card(self, card_id):
        rows = self.cards("c.card_id = %s", (card_id,))
        self.assertEqual(len(rows), 1)
        return rows[0]

    def pick(self, n, run_id=None):
        """n pending quantity cards without flags, on n different agreements."""
        rows = self.cards("c.kind = 'quantity' AND c.status = 'pending' AND cardinality(c.flags) = 0"
                          + ("" if run_id is None else " AND c.run_id = %d" % run_id))
        chosen, agreements = [], set()
        for r in rows:
            if r["agreement_id"] not in agreements:
                chosen.append(r)
                agreements.add(r["agreement_id"])
            if len(chosen) == n:
                break
        self.assertEqual(len(chosen), n, "the run raised %d plain quantity cards on different agreements: %r"
                         % (n, [(r["card_id"], r["agreement_id"]) for r in rows]))
        return chosen

    def approve_today(self, cards):
        ids = [c["card_id"] for c in cards]
        n = self.scalar("SELECT billrecon.approve(%s::bigint[], effective_date => current_date)", (ids,))
        self.assertEqual(n, len(ids))
        return ids

    def push(self, **kw):
        """billrecon.push_changes(...) -> {card_id: row}."""
        if kw:
            named = ", ".join("%s => %%(%s)s" % (k, k) for k in kw)
            rows = self.q("SELECT * FROM billrecon.push_changes(%s)" % named, kw)
        else:
            rows = self.q("SELECT * FROM billrecon.push_changes()")
        by_id = {r["card_id"]: r for r in rows}
        self.assertEqual(len(by_id), len(rows), "one row per card")
        return by_id

    def attempts(self, card_id):
        return self.q("SELECT * FROM billrecon.change_card_pushes WHERE card_id = %s ORDER BY attempt", (card_id,))

    # -- what the PSA holds -------------------------------------------------------------------
    def billed_on(self, card, date=None):
        """What billrecon's last sync says the card's agreement bills for the
        card's product on `date` (default today): the sum over its lines in
        force then. A dated ConnectWise change ends one line and starts
        another; applied twice, it would show here."""
        date = date or self.today
        return self.scalar(
            """SELECT coalesce(sum(l.quantity), 0)
                 FROM billrecon.psa_line_items l JOIN billrecon.psa_agreements a ON a.id = l.agreement_id
                WHERE l.integration_id = %s AND a.external_id = %s AND l.removed_at IS NULL
                  AND coalesce(l.product_code, l.product_name) = %s
                  AND (l.effective_date IS NULL OR l.effective_date <= %s)
                  AND (l.cancel_date IS NULL OR l.cancel_date >= %s)""",
            (self.psa_id, card["agreement_id"], card["product"], date, date))

    def writes(self):
        """Requests to the PSA mock that may change something (token and query POSTs left out)."""
        return [r for r in self.mock.requests() if r["method"] in ("POST", "PATCH", "PUT", "DELETE")
                and not re.search(r"(?i)oauth|/auth/token|/query(/count)?$", r["path"])]

    def assert_one_change_each(self, cards, writes=None, what="the push"):
        """Every card's change reached the PSA in exactly one write (a
        ConnectWise dated change: one cancel and one new addition), and
        nothing else was written."""
        writes = self.writes() if writes is None else writes
        for c in cards:
            mine = self.card_writes(writes, c)
            self.assertEqual(len(mine), self.WRITES_PER_CHANGE,
                             "%s: card %s (line %s) written %d time(s), %d expected: %s"
                             % (what, c["card_id"], c["line_item_id"], len(mine), self.WRITES_PER_CHANGE,
                                [(w["method"], w["path"], w.get("status"), w.get("fault")) for w in mine]))
        self.assertEqual(len(writes), self.WRITES_PER_CHANGE * len(cards),
                         "%s: nothing else written: %r" % (what, [(w["method"], w["path"]) for w in writes]))

    def check_landed(self, card, before):
        """After a full sync: the PSA bills the proposed quantity from today on."""
        self.assertEqual(self.billed_on(card), before + card["delta"],
                         "card %s: the agreement's %s lines bill %s + %s after the sync"
                         % (card["card_id"], card["product"], before, card["delta"]))

    def wait_logged(self, fault, timeout=10):
        """Waits until the mock has logged a request that met this fault
        (a request is logged once its answer is sent or abandoned)."""
        deadline = time.time() + timeout
        while not any(r["fault"] == fault for r in self.mock.requests()):
            self.assertLess(time.time(), deadline, "the mock never logged the %s request" % fault)
            time.sleep(0.05)

    def cancel_when_applied(self, fault):
        """A thread that cancels this session's statement (pg_cancel_backend,
        SQLSTATE 57014 like a statement_timeout) once the mock has let the
        request meeting `fault` through to its handler: the PSA has applied
        the write, its answer is still held back. Deterministic, however slow
        the machine."""
        pid = self.scalar("SELECT pg_backend_pid()")

        def watch():
            other = connect()
            try:
                deadline = time.time() + 30
                while time.time() < deadline:
                    if any(f["kind"] == fault and f["applied"] for f in self.mock.ctl("GET", "faults")["faults"]):
                        time.sleep(0.2)    # the handler runs at once; its answer waits delay_s
                        with other.cursor() as cur:
                            cur.execute("SELECT pg_cancel_backend(%s)", (pid,))
                        return
                    time.sleep(0.02)
            finally:
                other.close()

        t = threading.Thread(target=watch, daemon=True)
        t.start()
        return t

    def fault_write(self, **spec):
        method, path = self.WRITE
        spec.setdefault("method", method)
        spec.setdefault("match", path)
        return self.mock.fault(**spec)

    # =========================================================================================
    # 1. The whole path

    def test_full_path_reconcile_approve_push_sync(self):
        run = self.prepare(suggestions=True)
        all_cards = self.cards("c.run_id = %s", (run,))
        self.assertTrue(all_cards, "the run raised cards")
        self.assertTrue(all(c["status"] == "pending" for c in all_cards))
        self.assertTrue(all(c["current_qty"] + c["delta"] == c["proposed_qty"] for c in all_cards))
        self.assertTrue(any(c["kind"] == "new_revenue" for c in all_cards), "unaccounted devices: new revenue")
        chosen = self.pick(3, run)
        before = {c["card_id"]: self.billed_on(c) for c in chosen}
        ids = self.approve_today(chosen)
        others = [c["card_id"] for c in all_cards if c["card_id"] not in ids]

        self.mock.ctl("DELETE", "requests")
        rows = self.push()
        self.assertEqual(sorted(rows), ids, "exactly the approved, due cards are pushed")
        for c in chosen:
            r = rows[c["card_id"]]
            self.assertEqual(r["status"], "pushed", r)
            self.assertIsNone(r["error"])
            self.assertEqual(r["quantity_before"], c["current_qty"])
            self.assertEqual(r["quantity_after"], c["proposed_qty"])
            self.assertTrue(r["note"])
            after = self.card(c["card_id"])
            self.assertEqual(after["status"], "pushed")
            self.assertIsNotNone(after["pushed_at"])
            self.assertEqual(after["push_attempts"], 1)
            self.assertEqual(after["effective_date"], self.today)
            self.assertIsNone(after["push_error"])
            a = self.attempts(c["card_id"])
            self.assertEqual([(x["attempt"], x["status"]) for x in a], [(1, "pushed")])
            self.assertEqual(a[0]["quantity"], c["proposed_qty"])
            self.assertGreater(a[0]["requests"], 0)
        self.assertTrue(all(self.card(i)["status"] == "pending" for i in others), "the rest stay pending")
        self.assert_one_change_each(chosen)

        # Again: nothing to do, nothing sent.
        self.mock.ctl("DELETE", "requests")
        self.assertEqual(self.push(), {}, "a second push_changes() finds nothing to push")
        self.assertEqual(self.push(card_ids=ids), {}, "naming the pushed cards pushes nothing either")
        self.assertEqual(self.writes(), [], "nothing written on the second push")

        # A reconcile before the sync has seen the change raises no new card
        # for the pushed lines (billrecon still has the old quantity).
        run2 = self.scalar("SELECT billrecon.reconcile()")
        lines = [c["line_row_id"] for c in chosen]
        again = self.cards("p.line_item_id = ANY(%s) AND c.card_id <> ALL(%s)", (lines, ids))
        self.assertEqual(again, [], "no card for a line whose pushed quantity no sync has seen yet")
        self.assertEqual({(self.card(i)["status"], self.card(i)["last_run_id"]) for i in others}, {("pending", run2)},
                         "the other cards are still pending, seen by the new run")

        # The next full sync shows the new quantities; the next run is clean for them.
        self.assert_succeeded(self.sync(self.psa, "full"))
        for c in chosen:
            self.check_landed(self.card(c["card_id"]), before[c["card_id"]])
        run3 = self.scalar("SELECT billrecon.reconcile()")
        agreements = [c["agreement_id"] for c in chosen]
        products = [c["product"] for c in chosen]
        leftover = self.q("""SELECT x.line_item_external_id, x.variance FROM billrecon.reconcile_results x
                              WHERE x.run_id = %s AND x.state = 'reconciled' AND x.variance <> 0
                                AND (x.agreement_external_id, x.product) IN
                                    (SELECT * FROM unnest(%s::text[], %s::text[]))""",
                          (run3, agreements, products))
        self.assertEqual(leftover, [], "the pushed lines reconcile without variance")
        pending = self.cards("c.status = 'pending' AND c.last_run_id = %s", (run3,))
        self.assertEqual([(c["card_id"], c["agreement_id"], c["product"]) for c in pending
                          if (c["agreement_id"], c["product"]) in set(zip(agreements, products))], [],
                         "no card for the pushed lines")

    # =========================================================================================
    # 2. Interrupted after the PSA applied the change, then retried

    def test_connection_cut_after_the_psa_applied_it_then_retry_sends_nothing(self):
        # No HTTP-level retries here: the push itself must fail, and the retry
        # is push_changes() called again.
        opts = self.scalar("SELECT options FROM billrecon.integrations WHERE id = %s", (self.psa_id,))
        self.execute("SELECT billrecon.update_integration(%s, options => %s::jsonb)",
                     (self.psa, json.dumps(dict(opts, max_retries=0))))
        self.prepare()
        chosen = self.pick(2)
        before = {c["card_id"]: self.billed_on(c) for c in chosen}
        ids = self.approve_today(chosen)
        self.mock.ctl("DELETE", "requests")
        # The first card's write is applied by the PSA, then the connection is reset.
        self.fault_write(kind="drop", mode="reset", fraction=0.0, times=1)
        rows = self.push()
        self.assertEqual(rows[ids[0]]["status"], "failed", rows[ids[0]])
        self.assertTrue(rows[ids[0]]["error"])
        self.assertEqual(rows[ids[1]]["status"], "pushed", "the next card still goes through: %r" % rows[ids[1]])
        failed = self.card(ids[0])
        self.assertEqual(failed["status"], "failed")
        self.assertEqual(failed["push_error"], rows[ids[0]]["error"])
        self.assertEqual([(a["attempt"], a["status"]) for a in self.attempts(ids[0])], [(1, "failed")])
        first = self.writes()
        self.assert_one_change_each(chosen, first, "the interrupted push")

        self.mock.ctl("DELETE", "faults")
        self.mock.ctl("DELETE", "requests")
        rows = self.push()
        self.assertEqual(sorted(rows), [ids[0]], "only the failed card is tried again")
        r = rows[ids[0]]
        self.assertEqual(r["status"], "pushed", r)
        self.assertEqual(r["quantity_after"], chosen[0]["proposed_qty"])
        self.assertRegex(r["note"], r"(?i)already|nothing sent", "the retry found the change in place")
        self.assertEqual(self.writes(), [], "the retry writes nothing: the PSA already holds the quantity")
        self.assertEqual([(a["attempt"], a["status"]) for a in self.attempts(ids[0])], [(1, "failed"), (2, "pushed")])
        self.assertEqual(self.card(ids[0])["push_attempts"], 2)
        self.assertIsNone(self.card(ids[0])["push_error"])

        self.assert_succeeded(self.sync(self.psa, "full"))
        for c in chosen:
            self.check_landed(self.card(c["card_id"]), before[c["card_id"]])

    def test_statement_cancelled_mid_push_then_retry_applies_each_change_once(self):
        self.prepare()
        chosen = self.pick(3)
        before = {c["card_id"]: self.billed_on(c) for c in chosen}
        ids = self.approve_today(chosen)
        self.mock.ctl("DELETE", "requests")
        # The second card's write is applied, then its answer hangs; the
        # statement is cancelled meanwhile (as a statement_timeout would):
        # the whole push rolls back, the first card's "pushed" included.
        self.fault_write(kind="slow_after", delay_s=1.0, after=1, times=1)
        watcher = self.cancel_when_applied("slow_after")
        try:
            with self.assertRaises(psycopg2.Error) as cm:
                self.push()
        finally:
            watcher.join()
        self.assertEqual(cm.exception.pgcode, "57014", str(cm.exception))   # query_canceled
        self.wait_logged("slow_after")     # the held-back answer of the applied write
        for i in ids:
            c = self.card(i)
            self.assertEqual((c["status"], c["push_attempts"], c["pushed_at"]), ("approved", 0, None),
                             "card %s: the cancelled push left no trace" % i)
            self.assertEqual(self.attempts(i), [])
        applied = self.writes()
        self.assert_one_change_each(chosen[:2], applied, "the cancelled push")

        self.mock.ctl("DELETE", "faults")
        self.mock.ctl("DELETE", "requests")
        rows = self.push()
        self.assertEqual(sorted(rows), ids)
        for c in chosen:
            self.assertEqual(rows[c["card_id"]]["status"], "pushed", rows[c["card_id"]])
            self.assertEqual(rows[c["card_id"]]["quantity_after"], c["proposed_qty"])
        for c in chosen[:2]:
            self.assertRegex(rows[c["card_id"]]["note"], r"(?i)already|nothing sent",
                             "card %s was applied before the cancel" % c["card_id"])
        self.assert_one_change_each(chosen[2:], None, "the retry")   # only the third card is written
        self.assert_succeeded(self.sync(self.psa, "full"))
        for c in chosen:
            self.check_landed(self.card(c["card_id"]), before[c["card_id"]])

    def test_write_answered_5xx_after_it_was_applied_is_not_applied_twice(self):
        # Default retries: an HTTP client that re-sends the write after a 5xx
        # (or a reset, or a timeout) applies a non-idempotent change twice.
        self.prepare()
        [card] = self.pick(1)
        before = self.billed_on(card)
        ids = self.approve_today([card])
        self.mock.ctl("DELETE", "requests")
        self.fault_write(kind="status_after", status=503, times=1,
                         body={"message": "Service Unavailable", "code": "ServiceUnavailable"})
        rows = self.push()
        if rows[ids[0]]["status"] == "failed":
            self.mock.ctl("DELETE", "faults")
            rows = self.push()
        self.assertEqual(rows[ids[0]]["status"], "pushed", rows[ids[0]])
        self.assert_succeeded(self.sync(self.psa, "full"))
        self.check_landed(self.card(card["card_id"]), before)
        applied = [w for w in self.writes() if w["status"] is not None and (w["status"] < 300 or w["fault"])]
        self.assert_one_change_each([card], applied, "a write answered 503 after it was applied")
        self.assertEqual(rows[ids[0]]["quantity_after"], card["proposed_qty"],
                         "a card is pushed when the PSA holds the proposed quantity")

    # =========================================================================================
    # 3. The PSA refuses the change

    def test_psa_refusal_fails_the_card_with_its_message_others_go_through_retry_succeeds(self):
        self.prepare()
        chosen = self.pick(3)
        before = {c["card_id"]: self.billed_on(c) for c in chosen}
        ids = self.approve_today(chosen)
        message = "Agreement %s is locked for invoicing" % chosen[0]["agreement_id"]
        self.mock.ctl("DELETE", "requests")
        self.fault_write(kind="status", status=self.REJECT_STATUS, times=1,
                         body={"code": "Conflict", "message": message, "errors": [{"message": message}]})
        rows = self.push()
        self.assertEqual(sorted(rows), ids)
        r = rows[ids[0]]
        self.assertEqual(r["status"], "failed", r)
        self.assertIn(message, r["error"], "push_changes' error carries the PSA's message")
        self.assertIsNone(r["quantity_after"])
        failed = self.card(ids[0])
        self.assertEqual(failed["status"], "failed")
        self.assertIn(message, failed["push_error"])
        self.assertEqual(failed["push_attempts"], 1)
        a = self.attempts(ids[0])
        self.assertEqual([(x["attempt"], x["status"]) for x in a], [(1, "failed")])
        self.assertIn(message, a[0]["error"])
        self.assertIsNotNone(a[0]["finished_at"])
        for i in ids[1:]:
            self.assertEqual(rows[i]["status"], "pushed", "the other cards go through: %r" % rows[i])
        refused = [w for w in self.writes() if w["fault"]]
        self.assertEqual(len(refused), 1, "one write refused")
        self.assert_one_change_each(chosen[1:], [w for w in self.writes() if not w["fault"]], "the push")

        # The PSA changed nothing for the refused card; a retry without the fault succeeds.
        self.mock.ctl("DELETE", "faults")
        self.mock.ctl("DELETE", "requests")
        rows = self.push()
        self.assertEqual(sorted(rows), [ids[0]])
        self.assertEqual(rows[ids[0]]["status"], "pushed", rows[ids[0]])
        self.assertEqual(rows[ids[0]]["quantity_after"], chosen[0]["proposed_qty"])
        self.assertEqual([(x["attempt"], x["status"]) for x in self.attempts(ids[0])], [(1, "failed"), (2, "pushed")])
        self.assertIsNone(self.card(ids[0])["push_error"])
        self.assert_one_change_each(chosen[:1], None, "the retry")
        self.assert_succeeded(self.sync(self.psa, "full"))
        for c in chosen:
            self.check_landed(self.card(c["card_id"]), before[c["card_id"]])

    # =========================================================================================
    # 4. The line was deleted in the PSA meanwhile

    def test_line_deleted_in_the_psa_fails_clearly_and_writes_nothing(self):
        self.prepare()
        [card] = self.pick(1)
        ids = self.approve_today([card])
        self.delete_line(card)
        self.mock.ctl("DELETE", "requests")
        rows = self.push()
        r = rows[ids[0]]
        self.assertEqual(r["status"], "failed", r)
        self.assertIn(card["line_item_id"], r["error"], "the error names the line")
        self.assertRegex(r["error"], r"(?i)not found|does not exist|no longer|removed|deleted",
                         "the error says the line is gone: %s" % r["error"])
        self.assertEqual(self.writes(), [], "nothing written")
        self.assertEqual(self.card(ids[0])["status"], "failed")

        # After a full sync billrecon knows the line is gone too.
        self.assert_succeeded(self.sync(self.psa, "full"))
        self.assertIsNotNone(self.scalar("SELECT removed_at FROM billrecon.psa_line_items WHERE id = %s",
                                         (card["line_row_id"],)), "the sync marks the line removed")
        self.mock.ctl("DELETE", "requests")
        rows = self.push()
        r = rows[ids[0]]
        self.assertEqual(r["status"], "failed", r)
        self.assertIn(card["line_item_id"], r["error"])
        self.assertRegex(r["error"], r"(?i)not found|does not exist|no longer|removed|deleted")
        self.assertRegex(r["note"] or "", r"(?i)dismiss",
                         "the hint says what to do with a card whose line is gone (not: sync first)")
        self.assertEqual([w for w in self.mock.requests() if "oauth" not in w["path"]
                          and "/auth/token" not in w["path"]
                          and not re.search(r"(?i)zoneinformation|versioninformation", w["path"])], [],
                         "a line billrecon knows is gone is not even read")
        self.assertEqual([a["status"] for a in self.attempts(ids[0])], ["failed", "failed"])

    # =========================================================================================
    # 5. Revert, audited with role names

    def test_revert_puts_the_previous_quantity_back_and_everything_is_audited(self):
        run = self.prepare()
        [card] = self.pick(1, run)
        before = self.billed_on(card)
        audit_from = self.scalar("SELECT coalesce(max(id), 0) FROM billrecon.audit_log")
        self.execute("SET ROLE " + OPERATOR)
        try:
            self.approve_today([card])
            rows = self.push()
            self.assertEqual(rows[card["card_id"]]["status"], "pushed", rows[card["card_id"]])
            self.mock.ctl("DELETE", "requests")
            rev = self.q("SELECT * FROM billrecon.revert_change(%s)", (card["card_id"],))
        finally:
            self.execute("RESET ROLE")
        self.assertEqual(len(rev), 1)
        self.assertEqual(rev[0]["status"], "pushed", rev[0])
        self.assertIsNone(rev[0]["error"])
        revert_id = rev[0]["revert_card_id"]

        original, revert = self.card(card["card_id"]), self.card(revert_id)
        self.assertEqual(original["status"], "pushed")
        self.assertEqual(original["reverted_by_card_id"], revert_id)
        self.assertEqual(revert["reverts_card_id"], card["card_id"])
        self.assertEqual((revert["kind"], revert["status"]), ("revert", "pushed"))
        self.assertEqual((revert["current_qty"], revert["proposed_qty"]), (card["proposed_qty"], card["current_qty"]))
        self.assertEqual(revert["effective_date"], self.today)
        self.assertEqual(revert["decided_by"], OPERATOR)
        self.assertEqual(revert["pushed_by"], OPERATOR)
        self.assertEqual(len(self.writes()), 1, "the revert is one write: %r"
                         % [(w["method"], w["path"]) for w in self.writes()])
        with self.assertRaises(psycopg2.Error) as cm:
            self.q("SELECT * FROM billrecon.revert_change(%s)", (card["card_id"],))
        self.assertEqual(cm.exception.pgcode, "55000", "a card is reverted once")

        self.assert_succeeded(self.sync(self.psa, "full"))
        self.assertEqual(self.billed_on(card), before, "the PSA bills the previous quantity again")

        audit = self.q("""SELECT role, action, object, object_id, changed, after->>'status' AS status
                            FROM billrecon.audit_log
                           WHERE id > %s AND object IN ('proposed_changes', 'change_card_pushes')
                           ORDER BY id""", (audit_from,))
        mine = {str(card["card_id"]), str(revert_id)}

        def entries(obj, action, status=None, object_id=None):
            return [a for a in audit if a["object"] == obj and a["action"] == action
                    and (status is None or a["status"] == status)
                    and (object_id is None or a["object_id"] == object_id)]

        approved = entries("proposed_changes", "update", "approved", str(card["card_id"]))
        self.assertEqual([a["role"] for a in approved], [OPERATOR], "the approval, by the operator")
        self.assertIn("status", approved[0]["changed"])
        pushed = [a for a in entries("proposed_changes", "update", "pushed")
                  if a["object_id"] in mine and "status" in a["changed"]]
        self.assertEqual(sorted(a["object_id"] for a in pushed), sorted(mine), "both pushes audited")
        self.assertTrue(all(a["role"] == OPERATOR for a in pushed))
        inserted = entries("proposed_changes", "insert", "approved", str(revert_id))
        self.assertEqual([a["role"] for a in inserted], [OPERATOR], "the revert card's creation")
        link = [a for a in entries("proposed_changes", "update", None, str(card["card_id"]))
                if "reverted_by_card_id" in (a["changed"] or [])]
        self.assertEqual(len(link), 1, "the link from the original to its revert")
        attempts = entries("change_card_pushes", "insert")
        self.assertEqual(len(attempts), 2, "one push attempt per card")
        self.assertTrue(all(a["role"] == OPERATOR for a in attempts))
        self.assertTrue(all(a["role"] == OPERATOR for a in audit), "every entry names the operator: %r"
                        % sorted({a["role"] for a in audit}))

    # =========================================================================================
    # 6. Spot check

    def test_bulk_approval_holds_back_flagged_cards_unless_forced(self):
        self.prepare()
        # Flag at |delta| >= max(2, 50 % of the current quantity) so that the
        # small generated MSP has out-of-proportion cards.
        self.execute("SET billrecon.spot_check_min_delta = 2")
        run = self.scalar("SELECT billrecon.reconcile()")
        cards = self.cards("c.status = 'pending' AND c.last_run_id = %s", (run,))
        for c in cards:
            if c["kind"] == "quantity":
                expect = (["out_of_proportion"] if abs(c["delta"]) >= max(2, decimal.Decimal("0.5") * c["current_qty"])
                          else [])
                self.assertEqual(c["flags"], expect, "card %s: %s -> %s" % (c["card_id"], c["current_qty"],
                                                                           c["proposed_qty"]))
            else:
                self.assertEqual(c["flags"], ["new_revenue"])
        flagged = [c for c in cards if c["flags"]]
        plain = [c for c in cards if not c["flags"]]
        kinds = collections.Counter(f for c in flagged for f in c["flags"])
        self.assertGreater(kinds["out_of_proportion"], 0)
        self.assertGreater(kinds["new_revenue"], 0)
        self.assertTrue(plain)

        del self.conn.notices[:]
        n = self.scalar("SELECT billrecon.approve(%s::bigint[])", ([c["card_id"] for c in cards],))
        self.assertEqual(n, len(plain), "the unflagged cards are approved")
        notice = " ".join(self.conn.notices)
        self.assertRegex(notice, r"held back %d flagged card" % len(flagged))
        # One group per reason: "new_revenue (...): 5 card(s) (308, 309, ...)".
        groups = {m.group(1): m.group(2).split(", ")
                  for m in re.finditer(r"(new_revenue|out_of_proportion) \([^)]*\): \d+ card\(s\) \(([^)]*)\)", notice)}
        for c in flagged:
            reason = "new_revenue" if c["kind"] == "new_revenue" else "out_of_proportion"
            ids = groups.get(reason, [])
            self.assertTrue(str(c["card_id"]) in ids or "..." in ids,
                            "card %d held back for %s: %s" % (c["card_id"], reason, notice))
        listed = {i for ids in groups.values() for i in ids}
        for c in plain:
            self.assertNotIn(str(c["card_id"]), listed)
        self.assertTrue(all(self.card(c["card_id"])["status"] == "pending" for c in flagged))
        approved = [self.card(c["card_id"]) for c in plain]
        self.assertTrue(all(a["status"] == "approved" and a["decided_by"] for a in approved))
        next_month = (self.today.replace(day=1) + datetime.timedelta(days=32)).replace(day=1)
        self.assertTrue(all(a["effective_date"] == next_month for a in approved),
                        "the effective date defaults to the first day of next month")

        del self.conn.notices[:]
        n = self.scalar("SELECT billrecon.approve(%s::bigint[], force => true)", ([c["card_id"] for c in flagged],))
        self.assertEqual(n, len(flagged))
        self.assertFalse([x for x in self.conn.notices if "held back" in x])
        self.assertTrue(all(self.card(c["card_id"])["status"] == "approved" for c in flagged))

        # None is due yet (next month), and new_revenue cards are never pushed.
        self.mock.ctl("DELETE", "requests")
        self.assertEqual(self.push(), {})
        self.assertEqual(self.writes(), [])


# ---------------------------------------------------------------------------------------------
# The three PSAs

class ConnectWisePush(PushChanges, KindTestCase):
    KIND = "connectwise"
    TRUTH = "psa_company_id"
    WRITE = ("POST", r"/finance/agreements/\d+/additions$")    # the new dated addition
    REJECT_STATUS = 409
    WRITES_PER_CHANGE = 2      # cancel the addition the day before, add the new one

    def card_writes(self, writes, card):
        product = str(self.mock.ctl("GET", "data/additions?id=%s" % card["line_item_id"])[0]["product"]["id"])
        out = []
        for w in writes:
            body = w.get("body")
            if w["method"] == "PATCH" and w["path"].endswith("/additions/%s" % card["line_item_id"]):
                out.append(w)
            elif (w["method"] == "POST" and w["path"].endswith("/agreements/%s/additions" % card["agreement_id"])
                  and isinstance(body, dict) and str((body.get("product") or {}).get("id")) == product):
                out.append(w)
        return out

    def fault_write(self, **spec):
        # A refusal comes on the first write of a change: the cancel.
        if spec.get("kind") == "status":
            spec.setdefault("method", "PATCH")
            spec.setdefault("match", r"/finance/agreements/\d+/additions/\d+$")
        return super().fault_write(**spec)

    def check_landed(self, card, before):
        super().check_landed(card, before)
        # The old addition ends the day before; the new one starts today.
        old = self.one("SELECT quantity, cancel_date FROM billrecon.psa_line_items WHERE id = %s",
                       (card["line_row_id"],))
        new = self.q("""SELECT l.external_id, l.quantity FROM billrecon.psa_line_items l
                         JOIN billrecon.psa_agreements a ON a.id = l.agreement_id
                        WHERE l.integration_id = %s AND a.external_id = %s AND l.removed_at IS NULL
                          AND coalesce(l.product_code, l.product_name) = %s AND l.effective_date = %s""",
                     (self.psa_id, card["agreement_id"], card["product"], self.today))
        self.assertEqual(old["cancel_date"], self.today - datetime.timedelta(days=1))
        self.assertEqual(old["quantity"], card["current_qty"], "the old addition keeps its quantity")
        self.assertEqual([n["quantity"] for n in new], [card["proposed_qty"]], "one new addition from today")
        if card["push_reference"]:
            self.assertEqual(new[0]["external_id"], card["push_reference"], "the card names the new addition")

    def delete_line(self, card):
        self.mock.mutate(entity="addition", id=int(card["line_item_id"]), op="remove")


class HaloPush(PushChanges, KindTestCase):
    KIND = "halopsa"
    TRUTH = "halo_client_id"
    WRITE = ("POST", r"/api/RecurringInvoice$")
    REJECT_STATUS = 403

    def card_writes(self, writes, card):
        out = []
        for w in writes:
            if w["method"] != "POST" or not re.search(r"(?i)/api/RecurringInvoice$", w["path"]):
                continue
            body = w.get("body")
            invoices = body if isinstance(body, list) else [body]
            if any(isinstance(i, dict) and str(i.get("id")) == card["agreement_id"] for i in invoices):
                out.append(w)
        return out

    def check_landed(self, card, before):
        super().check_landed(card, before)
        q = self.scalar("SELECT quantity FROM billrecon.psa_line_items WHERE id = %s", (card["line_row_id"],))
        self.assertEqual(q, card["proposed_qty"], "qty_order of the line")

    def delete_line(self, card):
        self.mock.mutate(entity="line", id=int(card["line_item_id"]), op="remove")


class AutotaskPush(PushChanges, KindTestCase):
    KIND = "autotask"
    TRUTH = "autotask_company_id"
    WRITE = ("POST", r"(?i)/ContractServiceAdjustments$")
    REJECT_STATUS = 400

    def card_writes(self, writes, card):
        out = []
        for w in writes:
            body = w.get("body")
            if (w["method"] == "POST" and re.search(r"(?i)/ContractServiceAdjustments$", w["path"])
                    and isinstance(body, dict) and str(body.get("contractServiceID")) == card["line_item_id"]):
                self.assertEqual(decimal.Decimal(str(body.get("unitChange"))), card["delta"], "unitChange")
                out.append(w)
        return out

    def check_landed(self, card, before):
        super().check_landed(card, before)
        q = self.scalar("SELECT quantity FROM billrecon.psa_line_items WHERE id = %s", (card["line_row_id"],))
        self.assertEqual(q, card["proposed_qty"], "units of the contract service today")

    def delete_line(self, card):
        self.mock.mutate(entity="ContractServices", id=int(card["line_item_id"]), op="remove")
