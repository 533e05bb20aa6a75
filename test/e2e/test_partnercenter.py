"""Partner Center connector against the mock: customers by seek paging
(links.next + MS-ContinuationToken), their subscriptions, the MS-RequestId /
MS-CorrelationId headers, quick -> full, and the shared failure cases.
Skipped while the connector is not built."""

import re

from e2e_lib import KindTestCase, VendorFaults, d

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


class PartnerCenterSync(VendorFaults, KindTestCase):
    KIND = "partnercenter"
    MATCH = r"/v1/customers"
    WORD = r"customers|subscriptions"
    COUNTS = "pc_counts"

    def pc_counts(self):
        return {"vendor_accounts": len(self.ds.pc_customers), "usage_records": len(self.ds.pc_subscriptions)}

    def wrong_type(self):
        s = self.ds.pc_subscriptions[-1]
        self.mock.mutate(entity="subscription", id=s.id, set={"quantity": "lots"})
        return "quantity", [s.id, s.customer_id]

    def test_full_sync_counts_and_values(self):
        ds = self.ds
        name, iid = self.add(self.KIND)
        row = self.sync(name, "full")
        self.assert_succeeded(row)
        self.assert_counts(iid, self.pc_counts())
        log = self.mock.requests()
        self.assertEqual(row["requests"], len(log))
        tokens = [e for e in log if "/oauth2/" in e["path"]]
        self.assertEqual(len(tokens), 1)
        self.assertEqual(tokens[0]["path"], "/%s/oauth2/v2.0/token" % ds.ground_truth["partner_tenant_id"],
                         "the partner tenant's token")
        self.assertEqual(tokens[0]["body"].get("scope"), "https://api.partnercenter.microsoft.com/.default")
        api = [e for e in log if e not in tokens]
        correlation = {e["headers"].get("MS-CorrelationId") for e in api}
        self.assertEqual(len(correlation), 1, "one MS-CorrelationId for the sync")
        self.assertTrue(all(GUID.match(e["headers"].get("MS-RequestId") or "") for e in api), "MS-RequestId GUIDs")
        self.assertEqual(len({e["headers"]["MS-RequestId"] for e in api}), len(api), "a fresh MS-RequestId each")
        pages = [e for e in api if e["path"] == "/v1/customers"]
        self.assertEqual(len(pages), len(ds.pc_customers), "one customer per page (page_size 1)")
        self.assertTrue(all(e["headers"].get("MS-ContinuationToken") for e in pages[1:]),
                        "later pages carry MS-ContinuationToken")
        self.assertTrue(all(e["params"].get("seekOperation") == "Next" for e in pages[1:]))

        accounts = {r["external_id"]: r for r in self.current("vendor_accounts", iid)}
        for c in ds.pc_customers:
            r = accounts[c.id.lower()]
            self.assertEqual(r["name"], c.company_name)
            self.assertIn(c.domain.lower(), r["domains"])
        account_of = {r["id"]: r["external_id"] for r in accounts.values()}
        usage = {r["external_id"]: r for r in self.current("usage_records", iid)}
        for s in ds.pc_subscriptions:
            r = usage[s.id]
            self.assertEqual(account_of[r["account_id"]], s.customer_id.lower())
            self.assertEqual(r["kind"], "subscription")
            self.assertEqual(r["product"], s.offer_id)
            self.assertEqual(r["product_name"], s.offer_name)
            self.assertEqual(r["quantity"], d(s.quantity))
            self.assertEqual(r["enabled"], s.status == "active", "status %s" % s.status)
        self.assertEqual(self.status(name)["status"], "green")

    def test_customer_ids_equal_graph_tenant_ids(self):
        tenants = {t.id for t in self.ds.ms_tenants}
        self.assertTrue(self.ds.pc_customers and all(c.id in tenants for c in self.ds.pc_customers),
                        "a Partner Center customer is a Microsoft tenant of the same client")

    def test_quick_sync_runs_full(self):
        name, iid = self.add(self.KIND)
        self.assert_succeeded(self.sync(name, "full"))
        s = self.ds.pc_subscriptions[0]
        self.mock.mutate(entity="subscription", id=s.id, set={"quantity": s.quantity + 4})
        row = self.sync(name, "quick")
        self.assert_succeeded(row)
        run = self.run_row(row["run_id"])
        self.assertEqual((run["requested_mode"], run["mode"]), ("quick", "full"))
        self.assertEqual(self.scalar("SELECT quantity FROM billrecon.usage_records WHERE integration_id = %s AND "
                                     "external_id = %s", (self.add_iid(name), s.id)), s.quantity + 4)

    def add_iid(self, name):
        return self.scalar("SELECT id FROM billrecon.integrations WHERE name = %s", (name,))
