"""HaloPSA connector against the mock: full sync values, quick -> full, and
the shared failure cases (credentials, 429, 500 burst, malformed JSON,
wrong-typed field). Skipped while the connector is not built."""

import datetime

from e2e_lib import HALO_CREDS, KIND_PAGE, KindTestCase, VendorFaults, d
from msp_generator import HALO_PERIODS


def day(epoch):
    return None if epoch is None else datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).date()


def web_domain(website):
    if not website:
        return None
    w = website.lower().split("://")[-1].split("/")[0]
    return w[4:] if w.startswith("www.") else w


def contact_domains(ds):
    """ConnectWise company id -> the domains of its active contacts'
    addresses, free mail and malformed ones left out (ground truth)."""
    gt = ds.ground_truth
    return {c["psa_company_id"]: c.get("contact_domains", []) for c in gt["clients"] + gt["non_clients"]
            if c.get("psa_company_id") is not None}


class HaloPSASync(VendorFaults, KindTestCase):
    KIND = "halopsa"
    MATCH = r"/api/RecurringInvoice"
    WORD = r"RecurringInvoice"
    COUNTS = "halo_counts"

    def halo_counts(self):
        ds = self.ds
        return {"psa_companies": len(ds.halo_clients), "psa_agreements": len(ds.halo_invoices),
                "psa_line_items": len(ds.halo_lines)}

    def wrong_type(self):
        ln = self.ds.halo_lines[len(self.ds.halo_lines) // 2]
        self.mock.mutate(entity="line", id=ln.id, set={"qty_order": "twelve"})
        return "qty_order", [ln.id, ln.invoice_id]

    def test_full_sync_counts_and_values(self):
        ds = self.ds
        name, iid = self.add(self.KIND)
        row = self.sync(name, "full")
        self.assert_succeeded(row)
        counts = self.halo_counts()
        self.assert_counts(iid, counts)
        self.assertEqual(row["records"], sum(counts.values()))
        log = self.mock.requests()
        self.assertEqual(row["requests"], len(log), "requests counted = requests the mock saw")
        tokens = [e for e in log if e["path"].lower() == "/auth/token"]
        self.assertEqual(len(tokens), 1, "one token for the sync")
        self.assertEqual(tokens[0]["body"].get("grant_type"), "client_credentials")
        self.assertEqual(tokens[0]["body"].get("client_id"), HALO_CREDS["client_id"])
        api = [e for e in log if e not in tokens]
        self.assertTrue(all(e["headers"].get("Authorization") == "Bearer [redacted]" for e in api))
        pages = [e for e in api if e["path"] == "/api/Client"]
        self.assertTrue(all(e["params"].get("pageinate") == "true" and e["params"].get("page_size") ==
                            str(KIND_PAGE[self.KIND]) for e in pages), "pageinate=true&page_size on every page")
        self.assertEqual(sorted(int(e["params"]["page_no"]) for e in pages),
                         list(range(1, -(-len(ds.halo_clients) // KIND_PAGE[self.KIND]) + 1)),
                         "pages counted from record_count")

        companies = {r["external_id"]: r for r in self.current("psa_companies", iid)}
        for c in ds.halo_clients:
            r = companies[str(c.id)]
            self.assertEqual(r["name"], c.name)
            self.assertEqual(r["status"], "Inactive" if c.inactive else "Active", "status of client %d" % c.id)
            self.assertEqual(r["website"] or "", c.website or "")
        self.assertTrue(any(c.inactive for c in ds.halo_clients), "the dataset has inactive clients")

        # Domains: the website's, then the e-mail domains of the clients' active users.
        truth = contact_domains(ds)
        for c in ds.halo_clients:
            web = web_domain(c.website)
            want = ([web] if web else []) + [d for d in truth.get(c.cw_company_id, []) if d != web]
            self.assertEqual(sorted(companies[str(c.id)]["domains"]), sorted(want), "domains of client %d" % c.id)
        self.assertTrue(any(not c.website and companies[str(c.id)]["domains"] for c in ds.halo_clients),
                        "a client without a website has its users' domains")
        users = [e for e in api if e["path"] == "/api/Users"]
        active = sum(1 for x in ds.contacts if x.halo_user_id is not None and not x.inactive)
        self.assertEqual(sorted(int(e["params"]["page_no"]) for e in users),
                         list(range(1, -(-active // KIND_PAGE[self.KIND]) + 1)), "users paged by record_count")

        agreements = {r["external_id"]: r for r in self.current("psa_agreements", iid)}
        company_of = {r["id"]: r["external_id"] for r in companies.values()}
        for h in ds.halo_invoices:
            r = agreements[str(h.id)]
            self.assertEqual(company_of[r["company_id"]], str(h.client_id))
            self.assertEqual(r["name"], h.reference)
            if h.period == 2:
                self.assertEqual(r["billing_cycle"], "monthly", "period 2 is monthly")
            else:
                # Only code 2 is confirmed; a connector may leave the others unmapped.
                self.assertIn(r["billing_cycle"], ("other", "unknown", {3: "quarterly", 5: "annual"}.get(h.period)),
                              "period %d (%s)" % (h.period, HALO_PERIODS.get(h.period)))
            self.assertEqual(r["start_date"], day(h.start))
            self.assertEqual(r["end_date"], day(h.end))
            self.assertEqual(r["cancelled"], bool(h.disabled), "disabled invoice %d" % h.id)
        self.assertTrue(all(h.id < 0 for h in ds.halo_invoices), "negative ids")

        lines = {r["external_id"]: r for r in self.current("psa_line_items", iid)}
        agreement_of = {r["id"]: r["external_id"] for r in agreements.values()}
        for ln in ds.halo_lines:
            r = lines[str(ln.id)]
            self.assertEqual(agreement_of[r["agreement_id"]], str(ln.invoice_id))
            self.assertEqual(r["product_code"], ln.item_code)
            self.assertEqual(r["product_name"], ln.short_desc)
            self.assertEqual(r["description"], ln.long_desc)
            self.assertEqual(r["quantity"], d(ln.qty), "qty_order of line %d" % ln.id)
            self.assertEqual(r["unit_price"], d(ln.unit_price))
            self.assertEqual(r["unit_cost"], d(ln.unit_cost))
            if ln.startdate is not None:
                self.assertEqual(r["effective_date"], day(ln.startdate), "startdate of line %d" % ln.id)
            if ln.enddate is not None:
                self.assertEqual(r["cancel_date"], day(ln.enddate), "enddate of line %d" % ln.id)
        self.assertTrue(any(ln.enddate for ln in ds.halo_lines), "the dataset has ended lines")
        self.assertTrue(any(ln.qty != int(ln.qty) for ln in ds.halo_lines), "fractional quantities")
        self.assertEqual(self.status(name)["status"], "green")

    def test_quick_sync_runs_full(self):
        name, iid = self.add(self.KIND)
        self.assert_succeeded(self.sync(name, "full"))
        ln = self.ds.halo_lines[5]
        self.mock.mutate(entity="line", id=ln.id, set={"qty_order": 31.5})
        row = self.sync(name, "quick")
        self.assert_succeeded(row)
        run = self.run_row(row["run_id"])
        self.assertEqual((run["requested_mode"], run["mode"]), ("quick", "full"),
                         "HaloPSA has no modified-since filter: quick runs full")
        self.assertEqual(self.scalar("SELECT quantity FROM billrecon.psa_line_items WHERE integration_id = %s "
                                     "AND external_id = %s", (iid, str(ln.id))), d(31.5))
        self.mock.mutate(entity="line", id=ln.id, op="remove")
        self.assert_succeeded(self.sync(name, "quick"))
        self.assertIsNotNone(self.scalar("SELECT removed_at FROM billrecon.psa_line_items WHERE integration_id = %s "
                                         "AND external_id = %s", (iid, str(ln.id))),
                             "a quick sync that ran full marks removals")

    def test_tenant_query_parameter(self):
        self.mock.config(tenant="acme")
        name, iid = self.add(self.KIND, creds=dict(HALO_CREDS, tenant="acme"))
        self.assert_succeeded(self.sync(name, "full"))
        tokens = [e for e in self.mock.requests() if e["path"].lower() == "/auth/token"]
        self.assertEqual(tokens[0]["params"].get("tenant"), "acme", "?tenant= on the token request")
