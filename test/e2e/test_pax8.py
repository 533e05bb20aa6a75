"""Pax8 connector against the mock: companies and subscriptions, paging by
page/size, both token endpoints, quick -> full, and the shared failure
cases. Skipped while the connector is not built."""

from e2e_lib import KIND_PAGE, PAX8_CREDS, KindTestCase, VendorFaults, d


def web_domain(website):
    if not website:
        return None
    w = website.lower()
    for p in ("https://", "http://"):
        if w.startswith(p):
            w = w[len(p):]
    w = w.split("/")[0]
    return w[4:] if w.startswith("www.") else w


class Pax8Sync(VendorFaults, KindTestCase):
    KIND = "pax8"
    MATCH = r"/v1/subscriptions"
    WORD = r"subscriptions"
    COUNTS = "pax8_counts"

    def pax8_counts(self):
        return {"vendor_accounts": len(self.ds.pax8_companies), "usage_records": len(self.ds.pax8_subscriptions)}

    def wrong_type(self):
        s = self.ds.pax8_subscriptions[len(self.ds.pax8_subscriptions) // 2]
        self.mock.mutate(entity="subscription", id=s.id, set={"quantity": "ten"})
        return "quantity", [s.id]

    def test_full_sync_counts_and_values(self):
        ds = self.ds
        # A small dataset may lack a cancelled subscription: cancel one.
        cancelled = ds.pax8_subscriptions[1]
        self.mock.mutate(entity="subscription", id=cancelled.id, set={"status": "Cancelled"})
        status_of = {s.id: s.status for s in ds.pax8_subscriptions}
        status_of[cancelled.id] = "Cancelled"
        name, iid = self.add(self.KIND)
        row = self.sync(name, "full")
        self.assert_succeeded(row)
        self.assert_counts(iid, self.pax8_counts())
        self.assertEqual(self.usage_counts(iid), {"subscription": len(ds.pax8_subscriptions)})
        log = self.mock.requests()
        self.assertEqual(row["requests"], len(log))
        tokens = [e for e in log if e["path"] == "/v1/token"]
        self.assertEqual(len(tokens), 1, "one token")
        self.assertEqual((tokens[0]["body"].get("audience"), tokens[0]["body"].get("grant_type"),
                          tokens[0]["body"].get("client_id")),
                         ("https://api.pax8.com", "client_credentials", PAX8_CREDS["client_id"]), "JSON token body")
        pages = [e for e in log if e["path"] == "/v1/companies"]
        size = KIND_PAGE[self.KIND]
        self.assertEqual(sorted(int(e["params"]["page"]) for e in pages),
                         list(range(-(-len(ds.pax8_companies) // size))), "0-based pages until totalPages")
        self.assertTrue(all(e["params"].get("size") == str(size) for e in pages))

        accounts = {r["external_id"]: r for r in self.current("vendor_accounts", iid)}
        for c in ds.pax8_companies:
            r = accounts[c.id]
            self.assertEqual(r["name"], c.name)
            if c.website:
                self.assertIn(web_domain(c.website), r["domains"], "domain of %s" % c.website)
            self.assertEqual(r["status"], c.status)
        account_of = {r["id"]: r["external_id"] for r in accounts.values()}
        products = {p.id: p for p in ds.pax8_products}
        usage = {r["external_id"]: r for r in self.current("usage_records", iid)}
        for s in ds.pax8_subscriptions:
            r = usage[s.id]
            self.assertEqual(account_of[r["account_id"]], s.company_id)
            self.assertEqual(r["kind"], "subscription")
            self.assertEqual(r["product"], s.product_id)
            self.assertEqual(r["product_name"], products[s.product_id].name)
            self.assertEqual(r["quantity"], d(s.quantity))
            self.assertEqual(r["unit_cost"], d(s.partner_cost), "partnerCost of %s" % s.id)
            self.assertEqual(r["enabled"], status_of[s.id] == "Active", "status %s" % status_of[s.id])
        self.assertTrue({"Active", "Cancelled"} <= set(status_of.values()), "both statuses")
        self.assertEqual(self.status(name)["status"], "green")

    def test_legacy_token_endpoint(self):
        name, iid = self.add(self.KIND, options={"token_url": self.mock.url + "/oauth/token",
                                                 "audience": "api://p8p.client"})
        self.assert_succeeded(self.sync(name, "full"))
        tokens = [e for e in self.mock.requests() if e["path"] == "/oauth/token"]
        self.assertEqual(tokens[0]["body"].get("audience"), "api://p8p.client")
        self.assert_counts(iid, self.pax8_counts())

    def test_quick_sync_runs_full(self):
        name, iid = self.add(self.KIND)
        self.assert_succeeded(self.sync(name, "full"))
        s = self.ds.pax8_subscriptions[0]
        self.mock.mutate(entity="subscription", id=s.id, op="remove")
        row = self.sync(name, "quick")
        self.assert_succeeded(row)
        run = self.run_row(row["run_id"])
        self.assertEqual((run["requested_mode"], run["mode"]), ("quick", "full"), "no modified-since filter")
        self.assertIsNotNone(self.scalar("SELECT removed_at FROM billrecon.usage_records WHERE integration_id = %s "
                                         "AND external_id = %s", (iid, s.id)))
