"""Autotask connector against the mock: full sync values (units of the
current period), quick sync by lastTrackedModifiedDateTime, zone discovery,
and the shared failure cases. Skipped while the connector is not built."""

import calendar
import datetime
import json
import time

from e2e_lib import AT_CREDS, KIND_PAGE, KindTestCase, VendorFaults, d
from msp_generator import AT_PERIODS, autotask_units_on, iso_z

CYCLE = {"Monthly": "monthly", "Quarterly": "quarterly", "Yearly": "annual"}


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


def today_epoch():
    t = time.gmtime()
    return calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0))


class AutotaskSync(VendorFaults, KindTestCase):
    KIND = "autotask"
    MATCH = r"/Companies/query"
    WORD = r"Companies"
    COUNTS = "at_counts"

    def at_counts(self):
        ds = self.ds
        return {"psa_companies": len(ds.at_companies), "psa_agreements": len(ds.at_contracts),
                "psa_line_items": len(ds.at_contract_services)}

    def wrong_type(self):
        c = self.ds.at_companies[3]
        self.mock.mutate(entity="Companies", id=c.id, set={"companyName": 12345})
        return "companyName", [c.id]

    def test_full_sync_counts_and_values(self):
        ds = self.ds
        today = today_epoch()
        name, iid = self.add(self.KIND)
        row = self.sync(name, "full")
        self.assert_succeeded(row)
        counts = self.at_counts()
        self.assert_counts(iid, counts)
        log = self.mock.requests()
        self.assertEqual(row["requests"], len(log), "requests counted = requests the mock saw")
        for e in log:
            if "zoneinformation" in e["path"].lower():
                continue
            h = {k.lower(): v for k, v in e["headers"].items()}
            self.assertEqual(h.get("username"), AT_CREDS["username"], e["path"])
            self.assertEqual(h.get("secret"), "[redacted]", "Secret header sent (redacted in the log)")
            self.assertIn("apiintegrationcode", h)
        queries = [e for e in log if e["path"].endswith("/Companies/query")]
        self.assertEqual(queries[0]["method"], "POST")
        self.assertEqual(queries[0]["body"].get("MaxRecords"), KIND_PAGE[self.KIND])
        self.assertTrue(queries[0]["body"].get("filter"), "a query carries a filter")
        self.assertEqual(len(queries), -(-len(ds.at_companies) // KIND_PAGE[self.KIND]),
                         "nextPageUrl followed until null")
        self.assertTrue(all(e["method"] == "GET" and "paging" in e["params"] for e in queries[1:]),
                        "next pages are GETs of nextPageUrl")

        companies = {r["external_id"]: r for r in self.current("psa_companies", iid)}
        for c in ds.at_companies:
            r = companies[str(c.id)]
            self.assertEqual(r["name"], c.name)
            self.assertEqual(r["identifier"], c.number)
            self.assertEqual(r["status"], "Active" if c.active else "Inactive")
            self.assertEqual(r["website"] or None, c.web or None)
        self.assertIn("0", companies, "Autotask's own company has id 0")

        # Domains: the webAddress's, then the e-mail domains of the active contacts.
        truth = contact_domains(ds)
        for c in ds.at_companies:
            web = web_domain(c.web)
            want = ([web] if web else []) + [d for d in truth.get(c.cw_company_id, []) if d != web]
            self.assertEqual(sorted(companies[str(c.id)]["domains"]), sorted(want), "domains of company %d" % c.id)
        self.assertTrue(any(not c.web and companies[str(c.id)]["domains"] for c in ds.at_companies),
                        "a company without a web address has its contacts' domains")
        contacts = [e for e in log if e["path"].endswith("/Contacts/query")]
        self.assertEqual(len(contacts), -(-len(ds.contacts) // KIND_PAGE[self.KIND]), "contacts: nextPageUrl followed")
        self.assertEqual(set(contacts[0]["body"].get("IncludeFields", [])),
                         {"id", "companyID", "isActive", "emailAddress", "emailAddress2", "emailAddress3"},
                         "IncludeFields keeps the payload small")

        agreements = {r["external_id"]: r for r in self.current("psa_agreements", iid)}
        company_of = {r["id"]: r["external_id"] for r in companies.values()}
        for k in ds.at_contracts:
            r = agreements[str(k.id)]
            self.assertEqual(company_of[r["company_id"]], str(k.company_id))
            self.assertEqual(r["name"], k.name)
            label = AT_PERIODS[k.period_type]
            self.assertEqual(r["billing_cycle_label"], label, "the picklist label of the period type")
            self.assertEqual(r["billing_cycle"], CYCLE.get(label, "other"), "cycle of contract %d" % k.id)
            self.assertEqual(r["start_date"], day(k.start))
            self.assertEqual(r["end_date"], day(k.end))
            self.assertEqual(r["status"], "Active" if k.status == 1 else "Inactive")
            self.assertEqual(r["cancelled"], k.status != 1)

        contracts = {k.id: k for k in ds.at_contracts}
        services = {s.id: s for s in ds.at_services}
        lines = {r["external_id"]: r for r in self.current("psa_line_items", iid)}
        agreement_of = {r["id"]: r["external_id"] for r in agreements.values()}
        zero = 0
        for cs in ds.at_contract_services:
            r = lines[str(cs.id)]
            self.assertEqual(agreement_of[r["agreement_id"]], str(cs.contract_id))
            self.assertEqual(r["product_code"], str(cs.service_id))
            self.assertEqual(r["product_name"], services[cs.service_id].name)
            self.assertEqual(r["description"], cs.invoice_description)
            self.assertEqual(r["unit_price"], d(cs.unit_price), "unitPrice of %d" % cs.id)
            self.assertEqual(r["unit_cost"], d(cs.unit_cost))
            units = autotask_units_on(contracts[cs.contract_id], cs, ds.base_epoch, today)
            self.assertEqual(r["quantity"], units or 0, "units of contract service %d today" % cs.id)
            zero += units is None
        self.assertTrue(zero, "some services have no period today (expired contracts)")
        self.assertEqual(self.status(name)["status"], "green")

    def test_quick_sync_filters_companies_by_modification(self):
        name, iid = self.add(self.KIND)
        self.assert_succeeded(self.sync(name, "full"))
        before = self.snapshot(iid)
        c = self.ds.at_companies[5]
        # A little in the future of the full sync, so that the stamps cannot tie.
        self.mock.clock(now=iso_z(time.time() + 5))
        self.mock.mutate(entity="Companies", id=c.id, set={"companyName": "Renamed by quick"})
        self.mock.ctl("DELETE", "requests")
        row = self.sync(name, "quick")
        self.assert_succeeded(row)
        run = self.run_row(row["run_id"])
        self.assertEqual((run["requested_mode"], run["mode"]), ("quick", "quick"))
        first = next(e for e in self.mock.requests() if e["path"].endswith("/Companies/query"))
        self.assertIn("lasttrackedmodifieddatetime", json.dumps(first["body"]).lower(),
                      "the quick Companies query filters by lastTrackedModifiedDateTime")
        after = self.snapshot(iid)
        renamed = [r for r in after["psa_companies"] if r["external_id"] == str(c.id)]
        self.assertEqual(renamed[0]["name"], "Renamed by quick")
        old = [r for r in before["psa_companies"] if r["external_id"] == str(c.id)]
        self.assertEqual(renamed[0]["domains"], old[0]["domains"], "the re-stored company keeps its contacts' domains")
        self.assertTrue(any(e["path"].endswith("/Contacts/query") for e in self.mock.requests()),
                        "contacts are read when a company is re-stored")
        for b, a in zip(before["psa_companies"], after["psa_companies"]):
            if a["external_id"] != str(c.id):
                self.assertEqual(a, b, "an unchanged company was rewritten by the quick sync")
        self.assertEqual(len(after["psa_line_items"]), len(before["psa_line_items"]))

    def test_zone_discovery(self):
        name, iid = self.add(self.KIND, options={"zone_lookup": 1})
        self.assert_succeeded(self.sync(name, "full"))
        zone = [e for e in self.mock.requests() if "zoneinformation" in e["path"].lower()]
        self.assertEqual(len(zone), 1, "one zoneInformation call")
        self.assertEqual(zone[0]["params"].get("user"), AT_CREDS["username"])
        self.assert_counts(iid, self.at_counts())
