"""NinjaOne connector against the mock: full sync values, quick -> full,
removals, OAuth2 token refresh and expiry, request rate."""

from e2e_lib import NJ_PAGE, E2ETestCase

SERVER = {"WINDOWS_SERVER", "LINUX_SERVER", "MAC_SERVER"}
WORKSTATION = {"WINDOWS_WORKSTATION", "MAC", "LINUX_WORKSTATION"}


def expected_class(dev):
    """The device class every reasonable mapping agrees on; None where the
    choice is the connector's (VM hosts and guests, VM workstations)."""
    if dev.node_class in SERVER:
        return "server"
    if dev.node_class in WORKSTATION:
        return {"LAPTOP": "laptop", "DESKTOP": "desktop"}.get(dev.chassis)
    if dev.node_class == "ANDROID" or dev.node_class.startswith("NMS_"):
        return "other"
    return None


class NinjaOneSync(E2ETestCase):

    def test_full_sync_counts_and_values(self):
        name, iid = self.add("ninjaone")
        row = self.sync(name, "full")
        self.assert_succeeded(row)
        self.assertEqual(row["mode"], "full")
        counts = self.nj_counts()
        self.assert_counts(iid, counts)
        self.assertEqual(row["records"], sum(counts.values()), "records = rows stored")
        log = self.nj.requests()
        self.assertEqual(row["requests"], len(log), "requests counted = requests the mock saw (token included)")
        tokens = [e for e in log if e["path"].endswith("/oauth/token")]
        self.assertEqual(len(tokens), 1, "one token for the whole sync")
        self.assertEqual(tokens[0]["body"].get("grant_type"), "client_credentials")
        self.assertIn("monitoring", tokens[0]["body"].get("scope", ""))
        api = [e for e in log if not e["path"].endswith("/oauth/token")]
        self.assertTrue(all(e["headers"].get("Authorization") == "Bearer [redacted]" for e in api))
        device_pages = [e for e in api if "devices" in e["path"]]
        self.assertEqual(len(device_pages), len(self.ds.devices) // NJ_PAGE + 1, "pages of %d devices" % NJ_PAGE)
        self.assertTrue(all(e["params"].get("pageSize") == str(NJ_PAGE) for e in device_pages))

        accounts = {r["external_id"]: r for r in self.current("vendor_accounts", iid)}
        for o in self.ds.organizations:
            self.assertEqual(accounts[str(o.id)]["name"], o.name)
        org_of = {r["id"]: r["external_id"] for r in accounts.values()}

        usage = {r["external_id"]: r for r in self.current("usage_records", iid)}
        checked_classes = set()
        for dev in self.ds.devices:
            r = usage[str(dev.id)]
            self.assertEqual(org_of[r["account_id"]], str(dev.org_id))
            self.assertEqual(r["kind"], "device")
            self.assertEqual(r["quantity"], 1)
            self.assertEqual(r["product"], dev.node_class)
            want = expected_class(dev)
            if want:
                self.assertEqual(r["device_class"], want, "class of %s %s/%s" % (dev.id, dev.node_class, dev.chassis))
                checked_classes.add(want)
            else:
                self.assertIn(r["device_class"], ("desktop", "laptop", "server", "other"))
            self.assertEqual(r["os_name"], dev.os_name)
            self.assertIn(r["device_name"], {dev.display_name, dev.system_name} - {None})
            self.assertEqual(r["serial_number"], dev.serial)
            self.assertEqual(r["online"], not dev.offline)
            self.assertEqual(r["enabled"], dev.approval == "APPROVED", "approved -> enabled (%s)" % dev.id)
            self.assertIsNotNone(r["last_active_at"])
            self.assertAlmostEqual(r["last_active_at"].timestamp(), dev.last_contact_ms / 1000.0, delta=0.0015,
                                   msg="last_active_at of device %d" % dev.id)
        self.assertEqual(checked_classes, {"desktop", "laptop", "server", "other"})
        self.assertTrue(any(dv.approval == "PENDING" for dv in self.ds.devices), "dataset has PENDING devices")
        self.assertTrue(self.ds.ground_truth["duplicate_serials"], "dataset has a serial seen twice")
        self.assertEqual(self.status(name)["status"], "green")

    def test_quick_is_full(self):
        name, iid = self.add("ninjaone")
        self.assert_succeeded(self.sync(name, "full"))
        row = self.sync(name, "quick")
        self.assert_succeeded(row)
        self.assertEqual(row["mode"], "full", "NinjaOne cannot filter by modification time")
        run = self.run_row(row["run_id"])
        self.assertEqual((run["requested_mode"], run["mode"]), ("quick", "full"))
        self.assert_counts(iid, self.nj_counts())

    def test_removed_device_and_organization(self):
        name, iid = self.add("ninjaone")
        self.assert_succeeded(self.sync(name, "full"))
        dev = self.ds.devices[7]
        self.nj.mutate(entity="device", id=dev.id, op="remove")
        lab = next(o for o in self.ds.organizations if o.name == "Lab / Staging")
        self.nj.mutate(entity="organization", id=lab.id, op="remove")
        lab_devices = {dv.id for dv in self.ds.devices if dv.org_id == lab.id}
        self.assert_succeeded(self.sync(name, "quick"))   # runs full for NinjaOne
        removed = {int(r["external_id"]) for r in self.q(
            "SELECT external_id FROM billrecon.usage_records WHERE integration_id = %s AND removed_at IS NOT NULL",
            (iid,))}
        self.assertEqual(removed, lab_devices | {dev.id})
        self.assertIsNotNone(self.scalar("SELECT removed_at FROM billrecon.vendor_accounts WHERE integration_id = %s "
                                         "AND external_id = %s", (iid, str(lab.id))))
        self.nj.reset()
        self.assert_succeeded(self.sync(name, "full"))
        self.assert_counts(iid, self.nj_counts())

    def test_changed_device_updated(self):
        name, iid = self.add("ninjaone")
        self.assert_succeeded(self.sync(name, "full"))
        dev = next(dv for dv in self.ds.devices if not dv.offline and dv.approval == "APPROVED" and dv.serial)
        self.nj.mutate(entity="device", id=dev.id, set={"offline": True, "system/serialNumber": "CHANGED-1",
                                                         "lastContact": 1790000000.25})
        self.assert_succeeded(self.sync(name, "full"))
        r = self.one("SELECT * FROM billrecon.usage_records WHERE integration_id = %s AND external_id = %s",
                     (iid, str(dev.id)))
        self.assertEqual((r["online"], r["serial_number"]), (False, "CHANGED-1"))
        self.assertAlmostEqual(r["last_active_at"].timestamp(), 1790000000.25, delta=0.0015)

    def test_empty_page_mid_listing_is_refused(self):
        """A bare-array listing ends at the first short page: an empty page in
        the middle looks like the end, and the devices after it would all be
        marked removed. The mass-removal guard (billrecon.max_removed_share)
        refuses that full sync instead and leaves every stored row as it was;
        with the guard lifted for the session the same sync goes through."""
        name, iid = self.add("ninjaone")
        self.assert_succeeded(self.sync(name, "full"))
        devices = self.count("usage_records", iid)
        self.assertGreater(devices, 3 * NJ_PAGE, "the dataset spans several pages")
        before = self.snapshot(iid)

        self.nj.fault(match=r"/v2/devices", kind="empty_page", after=1, times=1)
        row = self.sync(name, "full")
        self.assert_failed(row, r"full sync would mark \d+ of %d current usage records removed" % devices)
        run = self.run_row(row["run_id"])
        self.assertEqual(run["status"], "failed")
        self.assertEqual(run["error_sqlstate"], "22000")
        kept = NJ_PAGE
        self.assertIn("returned %d of the integration's %d current usage records" % (kept, devices),
                      run["error_detail"])
        self.assertIn("billrecon.max_removed_share = 0.5", run["error_detail"])
        self.assertEqual(self.status(name)["status"], "red")
        self.assert_same_snapshot(before, self.snapshot(iid), "after the refused sync")
        self.nj.ctl("DELETE", "faults")

        # The guard's HINT: lift it for one sync when the records really are gone.
        self.nj.fault(match=r"/v2/devices", kind="empty_page", after=1, times=1)
        self.execute("SET billrecon.max_removed_share = 1")
        try:
            self.assert_succeeded(self.sync(name, "full"))
        finally:
            self.execute("RESET billrecon.max_removed_share")
        self.assertEqual(self.count("usage_records", iid), kept)
        self.nj.ctl("DELETE", "faults")
        self.assert_succeeded(self.sync(name, "full"))
        self.assertEqual(self.count("usage_records", iid), devices, "the next good sync restores them")

    def test_token_revoked_mid_sync_is_refreshed(self):
        name, iid = self.add("ninjaone")
        self.nj.fault(match=r"/v2/devices", kind="token_revoke", after=1, times=1)
        row = self.sync(name, "full")
        self.assert_succeeded(row)
        self.assert_counts(iid, self.nj_counts())
        log = self.nj.requests()
        self.assertEqual(len([e for e in log if e["path"].endswith("/oauth/token")]), 2, "one refresh")
        self.assertEqual([e["status"] for e in log if e["status"] == 401], [401], "one 401")

    def test_token_expiry_and_request_rate(self):
        self.nj.config(token_ttl_s=1)
        rate = 4
        name, iid = self.add("ninjaone", options={"requests_per_second": rate, "page_size": 20})
        row = self.sync(name, "full")
        self.assert_succeeded(row)
        self.assert_counts(iid, self.nj_counts())
        log = self.nj.requests()
        self.assertGreaterEqual(len([e for e in log if e["path"].endswith("/oauth/token")]), 2,
                                "a sync longer than the token lifetime gets a new token")
        self.assertTrue(all(e["status"] in (200, 401) for e in log))
        # A token bucket may let one second's worth through at once; beyond
        # that, requests are spaced 1/rate apart: no second holds more than
        # 2 x rate requests, and the whole sync takes (n - rate) / rate at least.
        times = sorted(e["time"] for e in log)
        busiest = max(sum(1 for t in times if t0 <= t < t0 + 1.0) for t0 in times)
        self.assertLessEqual(busiest, 2 * rate, "requests_per_second not honoured")
        self.assertGreaterEqual(times[-1] - times[0], (len(times) - rate) / rate * 0.85,
                                "%d requests in %.2f s" % (len(times), times[-1] - times[0]))
