"""Writing a quantity back to ConnectWise through billrecon._write_back_quantity:
the dated change the way ConnectWise models it, retry safety, failures that
name the PSA's answer and leave billrecon's data alone."""

import datetime

import psycopg2

from e2e_lib import E2ETestCase


class ConnectWiseWriteBack(E2ETestCase):

    def synced_line(self):
        name, iid = self.add("connectwise")
        self.assert_succeeded(self.sync(name, "full"))
        line = self.one("""SELECT l.external_id, l.quantity, l.effective_date, a.external_id AS agreement
                             FROM billrecon.psa_line_items l JOIN billrecon.psa_agreements a ON a.id = l.agreement_id
                            WHERE l.integration_id = %s AND l.removed_at IS NULL AND l.cancel_date IS NULL
                              AND l.effective_date < DATE '2026-01-01'
                            ORDER BY l.id LIMIT 1""", (iid,))
        self.assertIsNotNone(line, "the generated MSP has an open line item")
        return name, iid, line

    def test_dated_change_cancels_and_adds_then_sync_sees_it(self):
        name, iid, line = self.synced_line()
        new_qty = line["quantity"] + 3
        row = self.one("SELECT * FROM billrecon._write_back_quantity(%s, %s, %s, DATE '2026-12-01')",
                       (name, line["external_id"], new_qty))
        self.assertEqual(row["quantity_before"], line["quantity"])
        self.assertEqual(row["quantity_after"], new_qty)
        self.assertTrue(row["reference"], "the new addition's id")
        self.assertIn("cancelled on 2026-11-30", row["note"])

        patches = self.cw.requests(method="PATCH")
        posts = self.cw.requests(method="POST")
        self.assertEqual(len(patches), 1, "one PATCH: the old addition's cancelledDate")
        self.assertTrue(patches[0]["path"].endswith("/additions/%s" % line["external_id"]))
        self.assertEqual(len(posts), 1, "one POST: the new dated addition")

        # The next sync shows both: the old line ending, the new one starting.
        self.assert_succeeded(self.sync(name, "full"))
        old = self.one("SELECT quantity, cancel_date FROM billrecon.psa_line_items WHERE integration_id = %s "
                       "AND external_id = %s", (iid, line["external_id"]))
        self.assertEqual(old["cancel_date"], datetime.date(2026, 11, 30))
        self.assertEqual(old["quantity"], line["quantity"], "the old addition keeps its quantity")
        new = self.one("SELECT quantity, effective_date FROM billrecon.psa_line_items WHERE integration_id = %s "
                       "AND external_id = %s", (iid, row["reference"]))
        self.assertEqual(new["quantity"], new_qty)
        self.assertEqual(new["effective_date"], datetime.date(2026, 12, 1))

    def test_retry_after_success_sends_nothing(self):
        name, iid, line = self.synced_line()
        new_qty = line["quantity"] + 1
        first = self.one("SELECT * FROM billrecon._write_back_quantity(%s, %s, %s, DATE '2026-12-01')",
                         (name, line["external_id"], new_qty))
        self.cw.ctl("DELETE", "requests")
        again = self.one("SELECT * FROM billrecon._write_back_quantity(%s, %s, %s, DATE '2026-12-01')",
                         (name, line["external_id"], new_qty))
        self.assertEqual(again["quantity_after"], new_qty)
        self.assertIn("nothing sent", again["note"])
        writes = [r for r in self.cw.requests() if r["method"] in ("PATCH", "POST", "PUT")]
        self.assertEqual(writes, [], "a retry of an applied change writes nothing")
        self.assertTrue(first["reference"])

    def test_psa_refusal_raises_with_its_message_and_changes_nothing(self):
        name, iid, line = self.synced_line()
        before = self.snapshot(iid)
        self.cw.fault(match=r"/additions", method="PATCH", kind="status", status=400,
                      body={"code": "InvalidObject", "message": "Quantity cannot be changed on a cancelled agreement"},
                      times=-1)
        with self.assertRaises(psycopg2.Error) as cm:
            self.one("SELECT * FROM billrecon._write_back_quantity(%s, %s, %s, DATE '2026-12-01')",
                     (name, line["external_id"], line["quantity"] + 2))
        self.assertIn("Quantity cannot be changed", str(cm.exception))
        self.assertNotIn("privkey", str(cm.exception))
        self.assertEqual([r for r in self.cw.requests() if r["method"] == "POST"], [],
                         "no new addition after the cancel was refused")
        self.assert_same_snapshot(before, self.snapshot(iid))

    def test_vendor_integrations_have_no_write_back(self):
        name, iid = self.add("ninjaone")
        self.assert_succeeded(self.sync(name, "full"))
        with self.assertRaises(psycopg2.Error) as cm:
            self.one("SELECT * FROM billrecon._write_back_quantity(%s, %s, 1)", (name, "1"))
        self.assertEqual(cm.exception.pgcode, "42704", str(cm.exception))  # vendors have no line items

    def test_unknown_line_and_bad_quantity(self):
        name, iid, line = self.synced_line()
        with self.assertRaises(psycopg2.Error) as cm:
            self.one("SELECT * FROM billrecon._write_back_quantity(%s, %s, 5)", (name, "no-such-line"))
        self.assertEqual(cm.exception.pgcode, "42704")
        with self.assertRaises(psycopg2.Error) as cm:
            self.one("SELECT * FROM billrecon._write_back_quantity(%s, %s, -1)", (name, line["external_id"]))
        self.assertEqual(cm.exception.pgcode, "22023")
