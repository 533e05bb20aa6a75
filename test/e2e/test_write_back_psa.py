"""Write-back to HaloPSA and Autotask through billrecon._write_back_quantity,
against their mocks: the change lands the way each API takes it (Halo: the
whole recurring invoice posted with the new qty_order; Autotask: a contract
service adjustment), the next sync sees the new quantity, and a retry of an
applied change sends nothing."""

import datetime

import psycopg2

from e2e_lib import KindTestCase


class PsaWriteBack:
    WRITE_METHOD = "POST"
    WRITE_PATH = None   # regex of the write request's path

    def synced_line(self):
        name, iid = self.add(self.KIND)
        self.assert_succeeded(self.sync(name, "full"))
        line = self.one("""SELECT l.external_id, l.quantity FROM billrecon.psa_line_items l
                            WHERE l.integration_id = %s AND l.removed_at IS NULL AND l.cancel_date IS NULL
                              AND l.quantity > 0 AND coalesce(l.unit_price, 0) > 0
                            ORDER BY l.id LIMIT 1""", (iid,))
        self.assertIsNotNone(line, "the generated MSP has an open, priced line")
        return name, iid, line

    def writes(self):
        return [r for r in self.mock.requests() if r["method"] in ("POST", "PATCH", "PUT")
                and "oauth" not in r["path"] and "/auth/token" not in r["path"] and not r["path"].endswith("/query")]

    def test_change_lands_and_the_next_sync_sees_it(self):
        name, iid, line = self.synced_line()
        new_qty = line["quantity"] + 2
        today = datetime.date.today()
        self.mock.ctl("DELETE", "requests")
        row = self.one("SELECT * FROM billrecon._write_back_quantity(%s, %s, %s, %s)",
                       (name, line["external_id"], new_qty, today))
        self.assertEqual(row["quantity_before"], line["quantity"])
        self.assertEqual(row["quantity_after"], new_qty)
        self.assertTrue(row["note"])
        writes = self.writes()
        self.assertEqual(len(writes), 1, "one write: %r" % [(w["method"], w["path"]) for w in writes])
        self.assertRegex(writes[0]["path"], self.WRITE_PATH)
        self.assert_succeeded(self.sync(name, "full"))
        after = self.scalar("SELECT quantity FROM billrecon.psa_line_items WHERE integration_id = %s "
                            "AND external_id = %s", (iid, line["external_id"]))
        self.assertEqual(after, new_qty, "the PSA holds the new quantity")

    def test_retry_of_an_applied_change_sends_nothing(self):
        name, iid, line = self.synced_line()
        new_qty = line["quantity"] + 1
        today = datetime.date.today()
        self.one("SELECT * FROM billrecon._write_back_quantity(%s, %s, %s, %s)",
                 (name, line["external_id"], new_qty, today))
        self.mock.ctl("DELETE", "requests")
        again = self.one("SELECT * FROM billrecon._write_back_quantity(%s, %s, %s, %s)",
                         (name, line["external_id"], new_qty, today))
        self.assertEqual(again["quantity_after"], new_qty)
        self.assertIn("nothing sent", again["note"])
        self.assertEqual(self.writes(), [], "no write on retry")

    def test_refusal_raises_with_the_psa_message_and_changes_nothing(self):
        name, iid, line = self.synced_line()
        before = self.snapshot(iid)
        self.mock.fault(match=self.WRITE_PATH, method=self.WRITE_METHOD, kind="status", status=400,
                        body={"errors": ["Quantity is locked for this period"],
                              "message": "Quantity is locked for this period"}, times=-1)
        with self.assertRaises(psycopg2.Error) as cm:
            self.one("SELECT * FROM billrecon._write_back_quantity(%s, %s, %s, %s)",
                     (name, line["external_id"], line["quantity"] + 3, datetime.date.today()))
        self.assertIn("Quantity is locked", str(cm.exception))
        self.assert_same_snapshot(before, self.snapshot(iid))


class HaloWriteBack(PsaWriteBack, KindTestCase):
    KIND = "halopsa"
    WRITE_PATH = r"/api/RecurringInvoice"


class AutotaskWriteBack(PsaWriteBack, KindTestCase):
    KIND = "autotask"
    WRITE_PATH = r"/ContractServiceAdjustments"
