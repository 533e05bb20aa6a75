"""Datto RMM connector against the mock: sites and devices, page/max paging
with nextPageUrl, device classes, epoch-millisecond and ISO timestamps,
quick -> full, and the shared failure cases. Skipped while the connector is
not built."""

from e2e_lib import KIND_PAGE, KindTestCase, VendorFaults

CLASS = {"desktop": "desktop", "laptop": "laptop", "server": "server", "esxi host": "server"}


class DattoRMMSync(VendorFaults, KindTestCase):
    KIND = "dattormm"
    MATCH = r"/api/v2/account/devices"
    WORD = r"devices"
    COUNTS = "datto_counts"

    def datto_counts(self):
        return {"vendor_accounts": len(self.ds.datto_sites), "usage_records": len(self.ds.datto_devices)}

    def wrong_type(self):
        dv = self.ds.datto_devices[len(self.ds.datto_devices) // 2]
        site = next(x for x in self.ds.datto_sites if x.id == dv.site_id)
        # An object where the site's uid string belongs (a number might pass as text).
        self.mock.mutate(entity="device", id=dv.id, set={"siteUid": {"uid": site.uid}})
        return "siteUid", [dv.uid, dv.id]

    def check_devices(self, iid):
        ds = self.ds
        accounts = {r["external_id"]: r for r in self.current("vendor_accounts", iid)}
        for s in ds.datto_sites:
            self.assertEqual(accounts[s.uid]["name"], s.name)
        account_of = {r["id"]: r["external_id"] for r in accounts.values()}
        site_uid = {s.id: s.uid for s in ds.datto_sites}
        usage = {r["external_id"]: r for r in self.current("usage_records", iid)}
        for dv in ds.datto_devices:
            r = usage[dv.uid]
            self.assertEqual(account_of[r["account_id"]], site_uid[dv.site_id])
            self.assertEqual((r["kind"], r["quantity"]), ("device", 1))
            self.assertEqual(r["product"], dv.category)
            self.assertEqual(r["device_class"], CLASS.get(dv.category.lower(), "other"), "class of %s" % dv.category)
            self.assertEqual(r["device_name"], dv.hostname)
            self.assertEqual(r["os_name"], dv.os)
            self.assertEqual(r["online"], bool(dv.online))
            self.assertEqual(r["enabled"], not (dv.deleted or dv.suspended), "deleted/suspended %s" % dv.uid)
            self.assertAlmostEqual(r["last_active_at"].timestamp(), dv.last_seen_ms / 1000.0, delta=1.0,
                                   msg="lastSeen of %s" % dv.uid)
        self.assertTrue(any(dv.deleted for dv in ds.datto_devices), "the dataset has deleted devices")
        self.assertTrue({"Desktop", "Laptop", "Server"} <= {dv.category for dv in ds.datto_devices})

    def test_full_sync_counts_and_values(self):
        ds = self.ds
        name, iid = self.add(self.KIND)
        row = self.sync(name, "full")
        self.assert_succeeded(row)
        self.assert_counts(iid, self.datto_counts())
        log = self.mock.requests()
        self.assertEqual(row["requests"], len(log))
        tokens = [e for e in log if e["path"] == "/auth/oauth/token"]
        self.assertEqual(len(tokens), 1)
        self.assertEqual(tokens[0]["headers"].get("Authorization"), "Basic [redacted]", "Basic public-client")
        self.assertEqual(tokens[0]["body"].get("grant_type"), "password")
        self.assertEqual(tokens[0]["body"].get("username"), "billrecon-datto-key")
        pages = [e for e in log if e["path"] == "/api/v2/account/devices"]
        size = KIND_PAGE[self.KIND]
        self.assertEqual(sorted(int(e["params"]["page"]) for e in pages),
                         list(range(-(-len(ds.datto_devices) // size))), "0-based pages until nextPageUrl is null")
        self.check_devices(iid)
        self.assertEqual(self.status(name)["status"], "green")

    def test_iso_timestamps(self):
        self.mock.config(timestamp_format="iso")
        name, iid = self.add(self.KIND)
        self.assert_succeeded(self.sync(name, "full"))
        self.check_devices(iid)

    def test_quick_sync_runs_full(self):
        name, iid = self.add(self.KIND)
        self.assert_succeeded(self.sync(name, "full"))
        dv = self.ds.datto_devices[0]
        self.mock.mutate(entity="device", id=dv.id, op="remove")
        row = self.sync(name, "quick")
        self.assert_succeeded(row)
        run = self.run_row(row["run_id"])
        self.assertEqual((run["requested_mode"], run["mode"]), ("quick", "full"))
        self.assertIsNotNone(self.scalar("SELECT removed_at FROM billrecon.usage_records WHERE integration_id = %s "
                                         "AND external_id = %s", (iid, dv.uid)))
