"""ConnectWise Manage connector against the mock: full sync values, quick
sync, removals."""

import math
import time
import urllib.parse

from e2e_lib import CW_CREDS, CW_PAGE, E2ETestCase, d, date_of
from msp_generator import AGREEMENT_TYPES, BILLING_CYCLES, iso_z

CYCLE_MAP = {"Monthly": "monthly", "Quarterly": "quarterly", "Annual": "annual"}


def bare_domain(website):
    if not website:
        return None
    w = website.lower()
    for p in ("https://", "http://"):
        if w.startswith(p):
            w = w[len(p):]
    w = w.split("/")[0]
    return w[4:] if w.startswith("www.") else w


def contact_domains(ds):
    """ConnectWise company id -> the domains of its active contacts'
    addresses, free mail and malformed ones left out (ground truth)."""
    gt = ds.ground_truth
    return {c["psa_company_id"]: c.get("contact_domains", []) for c in gt["clients"] + gt["non_clients"]
            if c.get("psa_company_id") is not None}


def expected_domains(website, contacts):
    """The website's domain first, then the contacts' domains, once each."""
    out = [bare_domain(website)] if website else []
    return out + [d for d in contacts if d not in out]


class ConnectWiseSync(E2ETestCase):

    def test_full_sync_counts_and_values(self):
        name, iid = self.add("connectwise")
        row = self.sync(name, "full")
        self.assert_succeeded(row)
        self.assertEqual(row["mode"], "full")
        counts = self.cw_counts()
        self.assert_counts(iid, counts)
        self.assertEqual(row["records"], sum(counts.values()), "records = rows stored")
        log = self.cw.requests()
        self.assertEqual(row["requests"], len(log), "requests counted = requests the mock saw")
        self.assertEqual(row["retries"], 0)
        self.assertGreaterEqual(row["pages"], math.ceil(len(self.ds.companies) / CW_PAGE)
                                + math.ceil(len(self.ds.agreements) / CW_PAGE))

        # Every API call authenticated the ConnectWise way.
        for e in log:
            self.assertEqual(e["headers"].get("Authorization"), "Basic [redacted]", e["path"])
            client_id = {k.lower(): v for k, v in e["headers"].items()}.get("clientid")
            self.assertEqual(client_id, CW_CREDS["client_id"], "clientId header on %s" % e["path"])
        # Link rel=next followed page by page with the configured page size.
        pages = [e["params"].get("page", "1") for e in log if e["path"].endswith("/company/companies")]
        self.assertEqual(sorted(pages, key=int), [str(p) for p in range(1, math.ceil(len(self.ds.companies) / CW_PAGE) + 1)])
        self.assertTrue(all(e["params"].get("pageSize") == str(CW_PAGE) for e in log
                            if e["path"].endswith("/company/companies")))

        companies = {r["external_id"]: r for r in self.current("psa_companies", iid)}
        for c in self.ds.companies:
            r = companies[str(c.id)]
            self.assertEqual(r["name"], c.name)
            self.assertEqual(r["identifier"], c.identifier)
            self.assertEqual(r["status"], c.status)
            self.assertEqual(r["website"], c.website)
            self.assertEqual(r["deleted"], bool(c.deleted), "deleted flag of %s" % c.name)
            if c.website:
                self.assertIn(bare_domain(c.website), r["domains"], "web domain of %s" % c.name)
        self.assertTrue(any(c.deleted for c in self.ds.companies), "dataset has a deleted company")

        # Domains: the website's, then the e-mail domains of the active contacts.
        truth = contact_domains(self.ds)
        for c in self.ds.companies:
            r = companies[str(c.id)]
            self.assertEqual(sorted(r["domains"]), sorted(expected_domains(c.website, truth.get(c.id, []))),
                             "domains of %s (website %s)" % (c.name, c.website))
            if c.website:
                self.assertEqual(r["domains"][0], bare_domain(c.website), "the website's domain comes first")
        self.assertTrue(any(not c.website and companies[str(c.id)]["domains"] for c in self.ds.companies),
                        "a company without a website has its contacts' domains")
        free = {"gmail.com", "outlook.com", "hotmail.com", "yahoo.com", "icloud.com", "aol.com", "gmx.de"}
        self.assertFalse(free & {d for r in companies.values() for d in r["domains"]}, "no free-mail domain")
        contact_pages = [e for e in log if e["path"].endswith("/company/contacts")]
        active = sum(1 for x in self.ds.contacts if not x.inactive)
        self.assertEqual(len(contact_pages), math.ceil(active / CW_PAGE), "contacts paged by Link rel=next")
        for e in contact_pages:
            self.assertEqual(e["params"].get("pageSize"), str(CW_PAGE))
            self.assertIn("inactiveflag", urllib.parse.unquote_plus(e["params"].get("conditions", "")).lower(),
                          "only active contacts are asked for")
            self.assertIn("communicationItems", e["params"].get("fields", ""), "fields= keeps the payload small")

        agreements = {r["external_id"]: r for r in self.current("psa_agreements", iid)}
        company_of = {r["id"]: r["external_id"] for r in companies.values()}
        for a in self.ds.agreements:
            r = agreements[str(a.id)]
            self.assertEqual(company_of[r["company_id"]], str(a.company_id))
            self.assertEqual(r["name"], a.name)
            self.assertEqual(r["type"], AGREEMENT_TYPES[a.type_id])
            label = BILLING_CYCLES[a.billing_cycle_id]
            self.assertEqual(r["billing_cycle_label"], label)
            if label in CYCLE_MAP:
                self.assertEqual(r["billing_cycle"], CYCLE_MAP[label], "cycle of agreement %d" % a.id)
            else:
                self.assertIn(r["billing_cycle"], ("other", "unknown"))
            self.assertEqual(r["start_date"], date_of(a.start))
            self.assertEqual(r["end_date"], date_of(a.end))
            self.assertEqual(r["prorate"], bool(a.prorate))
            self.assertEqual(r["status"], a.status)
            self.assertEqual(r["cancelled"], bool(a.cancelled))
            self.assertEqual(r["cancelled_date"], date_of(a.date_cancelled))
        cycles = {BILLING_CYCLES[a.billing_cycle_id] for a in self.ds.agreements}
        self.assertTrue({"Monthly", "Quarterly", "Annual"} <= cycles, "dataset covers the cycles: %r" % cycles)

        lines = {r["external_id"]: r for r in self.current("psa_line_items", iid)}
        agreement_of = {r["id"]: r["external_id"] for r in agreements.values()}
        catalog = {c.id: c for c in self.ds.catalog}
        agreement_company = {a.id: a.company_id for a in self.ds.agreements}
        for x in self.ds.additions:
            r = lines[str(x.id)]
            item = catalog[x.product_id]
            self.assertEqual(agreement_of[r["agreement_id"]], str(x.agreement_id))
            self.assertEqual(company_of[r["company_id"]], str(agreement_company[x.agreement_id]))
            self.assertEqual(r["product_code"], item.identifier)
            self.assertEqual(r["product_name"], item.description)
            self.assertEqual(r["description"], x.description)
            self.assertEqual(r["quantity"], d(x.quantity), "quantity of addition %d" % x.id)
            self.assertEqual(r["unit_price"], d(x.unit_price), "unit price of addition %d" % x.id)
            self.assertEqual(r["unit_cost"], d(x.unit_cost))
            self.assertEqual(r["billing_type"], x.bill_customer)
            self.assertEqual(r["effective_date"], date_of(x.effective))
            self.assertEqual(r["cancel_date"], date_of(x.cancelled))
        self.assertTrue(any(x.unit_price is None for x in self.ds.additions), "dataset has a missing unitPrice")
        self.assertTrue(any(x.quantity != int(x.quantity) for x in self.ds.additions), "dataset has 2.5-like quantities")
        self.assertTrue(any(x.cancelled for x in self.ds.additions), "dataset has cancelled additions")

        st = self.status(name)
        self.assertEqual(st["status"], "green")
        self.assertIsNotNone(st["last_success_at"])
        self.assertIsNone(st["last_error"])

    def test_quick_sync_fetches_only_changes(self):
        name, iid = self.add("connectwise")
        self.assert_succeeded(self.sync(name, "full"))
        before = self.snapshot(iid)
        x = self.ds.additions[len(self.ds.additions) // 2]
        # Stamp the change a little in the future of the full sync's start, so
        # that second-precision lastUpdated values cannot tie with it.
        self.cw.clock(now=iso_z(time.time() + 5))
        self.cw.mutate(entity="addition", id=x.id, set={"quantity": 12.5})
        self.cw.ctl("DELETE", "requests")

        row = self.sync(name, "quick")
        self.assert_succeeded(row)
        self.assertEqual(row["mode"], "quick")
        run = self.run_row(row["run_id"])
        self.assertEqual((run["requested_mode"], run["mode"]), ("quick", "quick"))
        self.assertIsNotNone(run["changes_since"])

        log = self.cw.requests()
        conditions = [urllib.parse.unquote_plus(e["params"].get("conditions", "")) for e in log
                      if e["path"].endswith("/company/companies") or e["path"].endswith("/additions")]
        self.assertTrue(conditions and all("lastupdated" in c.lower() for c in conditions),
                        "quick sync filters companies and additions by lastUpdated: %r" % conditions[:3])
        self.assertTrue(any("[" in c for c in conditions), "datetime literal in brackets: %r" % conditions[:1])
        self.assertGreaterEqual(row["records"], 1)
        self.assertLess(row["records"], sum(self.cw_counts().values()), "quick sync fetched everything")

        after = self.snapshot(iid)
        for t in self.TABLES:
            self.assertEqual(len(after[t]), len(before[t]), "row count of %s" % t)
        changed = 0
        for b, a in zip(before["psa_line_items"], after["psa_line_items"]):
            if a["external_id"] == str(x.id):
                changed += 1
                self.assertEqual(a["quantity"], d(12.5))
                self.assertEqual(a["last_sync_run_id"], row["run_id"])
                self.assertIsNone(a["removed_at"])
            else:
                self.assertEqual(a, b, "unchanged line %s was rewritten by the quick sync" % a["external_id"])
        self.assertEqual(changed, 1)
        for t in ("psa_companies", "psa_agreements"):
            self.assertEqual(after[t], before[t], "%s changed in a quick sync without changes" % t)
        self.assertEqual(self.status(name)["status"], "green")

    def test_quick_sync_keeps_contact_domains_of_a_changed_company(self):
        name, iid = self.add("connectwise")
        self.assert_succeeded(self.sync(name, "full"))
        truth = contact_domains(self.ds)
        c = next(c for c in self.ds.companies if not c.website and truth.get(c.id))
        before = self.one("SELECT name, domains FROM billrecon.psa_companies WHERE integration_id = %s "
                          "AND external_id = %s", (iid, str(c.id)))
        self.assertEqual(sorted(before["domains"]), truth[c.id])
        self.cw.clock(now=iso_z(time.time() + 5))
        self.cw.mutate(entity="company", id=c.id, set={"name": c.name + " (renamed)"})
        self.cw.ctl("DELETE", "requests")
        row = self.sync(name, "quick")
        self.assert_succeeded(row)
        self.assertEqual(row["mode"], "quick")
        after = self.one("SELECT name, domains FROM billrecon.psa_companies WHERE integration_id = %s "
                         "AND external_id = %s", (iid, str(c.id)))
        self.assertEqual(after["name"], c.name + " (renamed)")
        self.assertEqual(after["domains"], before["domains"], "the re-stored company keeps its contacts' domains")
        contacts = [e for e in self.cw.requests() if e["path"].endswith("/company/contacts")]
        self.assertEqual(len(contacts), math.ceil(sum(1 for x in self.ds.contacts if not x.inactive) / CW_PAGE),
                         "every active contact is read when a company is re-stored")
        self.assertFalse(any("lastupdated" in urllib.parse.unquote_plus(e["params"].get("conditions", "")).lower()
                             for e in contacts), "contacts are not filtered by lastUpdated")

    def test_removed_addition_marked_by_full_sync_only(self):
        name, iid = self.add("connectwise")
        self.assert_succeeded(self.sync(name, "full"))
        x = self.ds.additions[3]
        self.cw.mutate(entity="addition", id=x.id, op="remove")

        self.assert_succeeded(self.sync(name, "quick"))
        self.assertIsNone(self.scalar("SELECT removed_at FROM billrecon.psa_line_items WHERE integration_id = %s "
                                      "AND external_id = %s", (iid, str(x.id))), "quick sync marked a removal")

        row = self.sync(name, "full")
        self.assert_succeeded(row)
        removed = self.q("SELECT external_id FROM billrecon.psa_line_items WHERE integration_id = %s "
                         "AND removed_at IS NOT NULL", (iid,))
        self.assertEqual([r["external_id"] for r in removed], [str(x.id)])
        self.assertEqual(self.count("psa_line_items", iid), len(self.ds.additions) - 1)
        self.assertEqual(self.count("psa_line_items", iid, current=False), len(self.ds.additions),
                         "removed rows are kept")

        # It comes back: the row is current again.
        self.cw.reset()
        self.assert_succeeded(self.sync(name, "full"))
        self.assertEqual(self.count("psa_line_items", iid), len(self.ds.additions))

    def test_removed_agreement_and_company(self):
        name, iid = self.add("connectwise")
        self.assert_succeeded(self.sync(name, "full"))
        a = next(a for a in self.ds.agreements if any(x.agreement_id == a.id for x in self.ds.additions))
        self.cw.mutate(entity="agreement", id=a.id, op="remove")
        idle = next(c for c in self.ds.companies
                        if not any(ag.company_id == c.id for ag in self.ds.agreements))
        self.cw.mutate(entity="company", id=idle.id, op="remove")
        self.assert_succeeded(self.sync(name, "full"))
        self.assertIsNotNone(self.scalar("SELECT removed_at FROM billrecon.psa_agreements WHERE integration_id = %s "
                                         "AND external_id = %s", (iid, str(a.id))))
        gone = {x.id for x in self.ds.additions if x.agreement_id == a.id}
        removed = {int(r["external_id"]) for r in self.q(
            "SELECT external_id FROM billrecon.psa_line_items WHERE integration_id = %s AND removed_at IS NOT NULL",
            (iid,))}
        self.assertEqual(removed, gone, "additions of a removed agreement are removed too")
        self.assertIsNotNone(self.scalar("SELECT removed_at FROM billrecon.psa_companies WHERE integration_id = %s "
                                         "AND external_id = %s", (iid, str(idle.id))))

    def test_quick_sync_without_earlier_success_runs_full(self):
        name, iid = self.add("connectwise")
        row = self.sync(name, "quick")
        self.assert_succeeded(row)
        self.assertEqual(row["mode"], "full")
        self.assert_counts(iid, self.cw_counts())
        self.assertFalse(any("conditions" in e["params"] for e in self.cw.requests()
                             if e["path"].endswith("/company/companies")))
