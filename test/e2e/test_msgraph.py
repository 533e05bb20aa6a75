"""Microsoft Graph connector against the mock: one token per customer
tenant, organization / subscribedSkus / users per tenant, nextLink paging,
signInActivity only where the tenant has Entra ID P1, quick -> full, and the
shared failure cases. Skipped while the connector is not built."""

import collections
import json

from e2e_lib import GRAPH_APP, KindTestCase, VendorFaults, d

ENABLED = {"Enabled": True, "Warning": True, "Suspended": False}


class MsGraphSync(VendorFaults, KindTestCase):
    KIND = "msgraph"
    MATCH = r"/v1.0/users"
    WORD = r"users|subscribedSkus|organization"
    COUNTS = "graph_counts"
    # Tenants without Entra ID P1 refuse signInActivity: the sync warns, hence yellow.
    CLEAN_STATUS = "yellow"

    def tenants(self):
        return [t for t in self.ds.ms_tenants if t.client >= 0]

    def graph_counts(self):
        ids = {t.id for t in self.tenants()}
        return {"vendor_accounts": len(ids),
                "usage_records": sum(1 for s in self.ds.ms_skus if s.tenant_id in ids)
                + sum(1 for u in self.ds.ms_users if u.tenant_id in ids)}

    def wrong_type(self):
        ids = {t.id for t in self.tenants()}
        s = next(x for x in self.ds.ms_skus if x.tenant_id in ids)
        self.mock.mutate(entity="sku", id=s.id, set={"consumedUnits": "many"})
        return "consumedUnits", [s.id, s.sku_id, s.tenant_id]

    def test_full_sync_counts_and_values(self):
        ds = self.ds
        self.mock.config(server_page_size=5)        # Graph may page below $top: nextLink paging
        name, iid = self.add(self.KIND)
        row = self.sync(name, "full")
        self.assert_succeeded(row)
        self.assert_counts(iid, self.graph_counts())
        tenants = self.tenants()
        ids = {t.id for t in tenants}
        self.assertEqual(self.usage_counts(iid), {
            "licence": sum(1 for s in ds.ms_skus if s.tenant_id in ids),
            "user": sum(1 for u in ds.ms_users if u.tenant_id in ids)})
        log = self.mock.requests()
        self.assertEqual(row["requests"], len(log))
        tokens = [e for e in log if "/oauth2/" in e["path"]]
        self.assertEqual(sorted(e["path"].split("/")[1] for e in tokens), sorted(ids), "one token per tenant")
        self.assertTrue(all(e["body"].get("scope") == "https://graph.microsoft.com/.default" and
                            e["body"].get("client_id") == GRAPH_APP["client_id"] for e in tokens))
        users_pages = [e for e in log if e["path"] == "/v1.0/users"]
        self.assertGreater(len(users_pages), len(tenants), "nextLink followed")

        accounts = {r["external_id"]: r for r in self.current("vendor_accounts", iid)}
        for t in tenants:
            r = accounts[t.id.lower()]
            self.assertEqual(r["name"], t.name)
            self.assertTrue({x.lower() for x in t.domains} | {t.initial_domain} <= set(r["domains"]),
                            "verified domains of %s: %r" % (t.name, r["domains"]))
        account_of = {r["id"]: r["external_id"] for r in accounts.values()}
        usage = self.current("usage_records", iid)
        licences = {(account_of[r["account_id"]], r["product"]): r for r in usage if r["kind"] == "licence"}
        for s in ds.ms_skus:
            if s.tenant_id not in ids:
                continue
            r = licences[(s.tenant_id.lower(), s.part_number)]
            self.assertEqual(r["quantity"], d(s.consumed), "consumedUnits of %s" % s.part_number)
            self.assertEqual(r["enabled"], ENABLED[s.status], "capabilityStatus %s" % s.status)
        users = {r["external_id"]: r for r in usage if r["kind"] == "user"}
        premium = {t.id: t.premium for t in tenants}
        checked = collections.Counter()
        for u in ds.ms_users:
            if u.tenant_id not in ids:
                continue
            r = users[u.id]
            self.assertEqual(account_of[r["account_id"]], u.tenant_id.lower())
            self.assertEqual(r["quantity"], 1)
            self.assertEqual(r["enabled"], bool(u.enabled), "accountEnabled of %s" % u.upn)
            self.assertEqual(r["licensed"], bool(u.skus), "licensed %s" % u.upn)
            if premium[u.tenant_id]:
                last = max([x for x in (u.last_sign_in, u.last_non_interactive) if x is not None], default=None)
                if last is None:
                    self.assertIsNone(r["last_active_at"])
                else:
                    self.assertAlmostEqual(r["last_active_at"].timestamp(), last, delta=1,
                                           msg="last sign-in of %s" % u.upn)
                checked["premium"] += 1
            else:
                self.assertIsNone(r["last_active_at"], "no signInActivity without Entra ID P1")
                checked["basic"] += 1
        self.assertTrue(checked["premium"] and checked["basic"], "both kinds of tenant: %r" % checked)
        denied = [e for e in log if e["status"] == 403]
        self.assertEqual(len(denied), sum(1 for t in tenants if not t.premium),
                         "one refused signInActivity request per tenant without P1")
        self.assertGreaterEqual(row["warnings"], 1, "users without last sign-in are a warning")
        self.assertEqual(self.status(name)["status"], "yellow")

    def test_token_is_per_tenant(self):
        """A token answers for its own tenant only: every tenant's users land
        on that tenant's account."""
        name, iid = self.add(self.KIND)
        self.assert_succeeded(self.sync(name, "full"))
        rows = self.q("SELECT a.external_id AS tenant, u.external_id AS user_id FROM billrecon.usage_records u "
                      "JOIN billrecon.vendor_accounts a ON a.id = u.account_id WHERE u.integration_id = %s "
                      "AND u.kind = 'user'", (iid,))
        owner = {u.id: u.tenant_id.lower() for u in self.ds.ms_users}
        self.assertTrue(rows and all(owner[r["user_id"]] == r["tenant"] for r in rows))

    def test_unconsented_tenant_fails(self):
        t = self.tenants()[0]
        self.mock.config(unconsented_tenants=[t.id])
        name, iid = self.add(self.KIND)
        row = self.sync(name, "full")
        self.assert_failed(row, r"unauthorized_client|700016|consent|401|400|authenticat|token")

    def test_quick_sync_runs_full(self):
        name, iid = self.add(self.KIND)
        self.assert_succeeded(self.sync(name, "full"))
        u = next(x for x in self.ds.ms_users if x.enabled and x.tenant_id in {t.id for t in self.tenants()})
        self.mock.mutate(entity="user", id=u.id, set={"accountEnabled": False})
        row = self.sync(name, "quick")
        self.assert_succeeded(row)
        run = self.run_row(row["run_id"])
        self.assertEqual((run["requested_mode"], run["mode"]), ("quick", "full"))
        self.assertFalse(self.scalar("SELECT enabled FROM billrecon.usage_records WHERE integration_id = %s AND "
                                     "external_id = %s", (iid, u.id)))


class MsGraphTenantsFromPartnerCenter(KindTestCase):
    """Issue 3: without options.customer_tenants, the tenants are the customers
    a Partner Center integration has synced."""
    KIND = "msgraph"

    def test_tenants_come_from_partner_center(self):
        pc_name, pc_id = self.add("partnercenter")
        url, creds, opts = self.mocks.integration("msgraph")
        opts = {k: v for k, v in opts.items() if k != "customer_tenants"}
        name = self.unique_name("ms-from-pc")
        iid = self.scalar("SELECT billrecon.add_integration(%s, 'msgraph', %s, %s::jsonb, %s::jsonb)",
                          (name, url, json.dumps(creds), json.dumps(opts)))
        # Before Partner Center has synced there is nothing to read: a clear failure.
        self.execute("UPDATE billrecon.integrations SET enabled = false WHERE kind = 'partnercenter' AND id <> %s",
                     (pc_id,))
        try:
            row = self.sync(name, "full")
            self.assert_failed(row, r"no customer tenants")
            self.assert_succeeded(self.sync(pc_name, "full"))
            row = self.sync(name, "full")
            self.assert_succeeded(row)
        finally:
            self.execute("UPDATE billrecon.integrations SET enabled = true WHERE kind = 'partnercenter'")
        customers = {r["external_id"].lower() for r in self.current("vendor_accounts", pc_id)}
        tenants = {r["external_id"] for r in self.current("vendor_accounts", iid)}
        self.assertTrue(customers, "Partner Center has customers")
        self.assertEqual(tenants, customers, "every Partner Center customer's tenant is read, and no other")
        tokens = {e["path"].split("/")[1] for e in self.mock.requests() if "/oauth2/" in e["path"]}
        self.assertEqual(tokens, customers, "one token per customer tenant")
