"""Datto RMM API v2 mock (vendor-apis.md section 8).

Token: POST /auth/oauth/token, HTTP Basic public-client:public, form body
grant_type=password&username=<API key>&password=<API secret> ->
{access_token, token_type: "bearer", expires_in (100 h), scope, jti}. Wrong
Basic client -> 401 unauthorized; wrong key or secret -> 400 invalid_grant
"Bad credentials". API calls: Bearer; expired or revoked tokens -> 401.

GET /api/v2/account, /api/v2/account/sites (siteName), /api/v2/site/{uid},
/api/v2/site/{uid}/devices, /api/v2/account/devices (hostname, deviceType,
operatingSystem, siteName), /api/v2/device/{uid}, /api/v2/device/id/{id},
/api/v2/audit/device/{uid} (hardware audit: bios.serialNumber),
/api/v2/system/pagination, /api/v2/system/request_rate, /api/v2/system/status.
Lists page with page (0-based) + max (default and cap: config max_page_size,
250): {"pageDetails": {count, totalCount, prevPageUrl, nextPageUrl}, "sites" |
"devices": [...]}; nextPageUrl (absolute) is null on the last page.

Times: config timestamp_format "epoch_ms" (numbers, default) or "iso"
("2026-10-31T10:11:12Z"). Rate limit: config requests_per_minute (600,
rolling 60 s, whole account); past delay_from (90 %) each answer waits
delay_s (1 s); over it 429 without Retry-After. With config block_after_429s
= N > 0, N 429s within a minute (real or injected) block the caller with 403
for block_s seconds.
"""

import collections
import time
import urllib.parse
import uuid

from framework import (ApiError, MockApp, RateWindow, Response, Table, bearer_token, iso_z, parse_basic,
                       table_mutate)

DEVICE_TIMES = ("lastSeen", "lastReboot", "lastAuditDate", "creationDate", "warrantyDate")
ACCOUNT_UID = "a3f5c2d1-7b44-4e0a-9c1e-5d2b8e9f0a11"


class DattoRMMApp(MockApp):
    name = "dattormm"
    uses_tokens = True

    def default_config(self):
        return {
            "api_key": "billrecon-datto-key",
            "api_secret": "billrecon-datto-secret",
            "token_ttl_s": 360000,
            "timestamp_format": "epoch_ms",     # or "iso"
            "max_page_size": 250,
            "requests_per_minute": 600,
            "delay_from": 0.9,
            "delay_s": 1.0,
            "block_after_429s": 0,              # 0: never block
            "block_s": 60,
            "platform": "merlot",
        }

    # -- data ---------------------------------------------------------------------------
    def reset_data(self):
        ds = self.dataset
        self.sites = Table(ds.datto_sites, self.render_site)
        self.devices = Table(ds.datto_devices, self.render_device)
        self.site_uid = {s.uid: s.id for s in ds.datto_sites}
        self.device_uid = {d.uid: d.id for d in ds.datto_devices}
        self.reindex()
        self.window = getattr(self, "window", RateWindow())
        self.window.clear()
        self.throttled = RateWindow()
        self.blocked_until = 0.0

    def reindex(self):
        self.by_site = collections.defaultdict(list)
        for did in self.devices.ids:
            self.by_site[self.devices.peek(did).get("siteId")].append(did)

    def render_site(self, s):
        return {"id": s.id, "uid": s.uid, "accountUid": ACCOUNT_UID, "name": s.name, "description": s.description,
                "notes": s.notes, "onDemand": bool(s.on_demand), "splashtopAutoInstall": False, "proxy": None,
                "autotaskCompanyName": s.autotask_company_name, "autotaskCompanyId":
                    str(s.autotask_company_id) if s.autotask_company_id is not None else None,
                "portalUrl": "https://%s.centrastage.net/csm/site/%d" % (self.config["platform"], s.id)}

    def render_device(self, d):
        site = self.sites.raw(d.site_id)
        return {"id": d.id, "uid": d.uid, "siteId": d.site_id, "siteUid": site.uid if site else None,
                "siteName": site.name if site else None,
                "deviceType": {"category": d.category, "type": d.dtype}, "hostname": d.hostname,
                "intIpAddress": d.int_ip, "extIpAddress": d.ext_ip, "operatingSystem": d.os,
                "lastLoggedInUser": d.last_user, "domain": d.domain, "cagVersion": "4.4.2210.2210",
                "displayVersion": "4.4.2210.2210", "description": d.description, "a64Bit": bool(d.a64),
                "rebootRequired": d.id % 7 == 0, "online": bool(d.online), "suspended": bool(d.suspended),
                "deleted": bool(d.deleted), "lastSeen": d.last_seen_ms, "lastReboot": d.last_reboot_ms,
                "lastAuditDate": d.last_audit_ms, "creationDate": d.created_ms, "warrantyDate": None,
                "udf": {"udf%d" % i: None for i in range(1, 31)}, "snmpEnabled": d.device_class != "device",
                "deviceClass": d.device_class,
                "portalUrl": "https://%s.centrastage.net/csm/search?qs=uid%%3A%s" % (self.config["platform"], d.uid),
                "warrantyTimestamp": None, "softwareStatus": "Compliant" if d.device_class == "device" else None,
                "webRemoteUrl": "https://%s.centrastage.net/csm/webremote?uid=%s" % (self.config["platform"], d.uid),
                "networkProbe": False, "onboardedViaNetworkMonitor": d.device_class == "rmmnetworkdevice",
                "antivirus": {"antivirusProduct": "Datto AV" if d.device_class == "device" else None,
                              "antivirusStatus": "RunningAndUpToDate" if d.device_class == "device" else None},
                "patchManagement": {"patchStatus": "FullyPatched" if d.online else "NoData",
                                    "patchesApprovedPending": 0, "patchesNotApproved": d.id % 5,
                                    "patchesInstalled": 80 + d.id % 90} if d.device_class == "device" else None,
                "_serial": d.serial, "_manufacturer": d.manufacturer, "_model": d.model}

    def times(self, rec):
        out = {k: v for k, v in rec.items() if not k.startswith("_")}
        if self.config["timestamp_format"] == "iso":
            for k in DEVICE_TIMES:
                v = out.get(k)
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    out[k] = iso_z(v / 1000.0)
        return out

    def site_out(self, sid):
        s = dict(self.sites.peek(sid))
        n = on = 0
        for did in self.by_site.get(sid, []):
            n += 1
            on += 1 if self.devices.peek(did).get("online") else 0
        s["devicesStatus"] = {"numberOfDevices": n, "numberOfOnlineDevices": on, "numberOfOfflineDevices": n - on}
        return s

    # -- responses --------------------------------------------------------------------------
    def error_response(self, status, message, code=None, retry_after=None):
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return Response.json({"timestamp": int(time.time() * 1000), "status": status,
                              "error": code or {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
                                                404: "Not Found", 429: "Too Many Requests"}.get(status, "Error"),
                              "message": message, "path": ""}, status, headers)

    def unauthorized_response(self, req):
        r = Response.json({"error": "invalid_token", "error_description": "Access token expired"}, 401)
        r.set_header("WWW-Authenticate", 'Bearer realm="oauth2-resource", error="invalid_token"')
        return r

    def rate_limit_response(self, req, retry_after):
        self.note_429()
        return self.error_response(429, "Too many requests: the account's request rate limit was exceeded.",
                                   retry_after=retry_after)

    def note_429(self):
        n = int(self.config["block_after_429s"] or 0)
        if n and self.throttled.hit(60) >= n:
            self.blocked_until = time.time() + float(self.config["block_s"])

    def blocked_response(self):
        return Response(403, b"<html><head><title>403 Forbidden</title></head><body><center><h1>403 Forbidden"
                             b"</h1></center></body></html>", content_type="text/html")

    def handle(self, req):
        if req.path.startswith("/_mock"):
            return super().handle(req)
        started = time.time()
        if time.time() < self.blocked_until:
            resp = self.blocked_response()
            self.log.add(req, resp, None, started)
            return resp
        if req.path.startswith("/api/"):
            limit = int(self.config["requests_per_minute"] or 0)
            n = self.window.hit(60)
            if limit and n > limit:
                resp = self.rate_limit_response(req, None)
                self.log.add(req, resp, None, started)
                return resp
            if limit and n > limit * float(self.config["delay_from"]):
                time.sleep(float(self.config["delay_s"]))
        return super().handle(req)

    # -- auth ---------------------------------------------------------------------------------
    def authenticate(self, req):
        token = bearer_token(req.header("Authorization"))
        if not token:
            raise ApiError(401, "Full authentication is required to access this resource", code="unauthorized",
                           headers={"WWW-Authenticate": 'Bearer realm="oauth2-resource"'})
        problem = self.tokens.check(token)
        if problem:
            raise ApiError(401, "Access token %s" % problem, code="invalid_token",
                           headers={"WWW-Authenticate": 'Bearer realm="oauth2-resource", error="invalid_token"'})

    def h_token(self, req):
        basic = parse_basic(req.header("Authorization"))
        if basic != ("public-client", "public"):
            return Response.json({"error": "unauthorized", "error_description": "Bad client credentials"}, 401)
        form = req.form()
        if form.get("grant_type") != "password":
            return Response.json({"error": "unsupported_grant_type",
                                  "error_description": "Unsupported grant type: %s" % form.get("grant_type")}, 400)
        if form.get("username") != self.config["api_key"] or form.get("password") != self.config["api_secret"]:
            return Response.json({"error": "invalid_grant", "error_description": "Bad credentials"}, 400)
        ttl = int(self.config["token_ttl_s"])
        token = self.tokens.issue(ttl, "default", form.get("username"))
        return Response.json({"access_token": token, "token_type": "bearer", "expires_in": ttl - 1,
                              "scope": "default", "jti": str(uuid.uuid4())})

    # -- routes -------------------------------------------------------------------------------
    def register_routes(self):
        A = r"/api/v2"
        self.route("POST", r"/auth/oauth/token", self.h_token, auth=False)
        self.route("GET", A + r"/account", self.h_account)
        self.route("GET", A + r"/account/sites", self.h_sites)
        self.route("GET", A + r"/account/devices", self.h_account_devices)
        self.route("GET", A + r"/site/(?P<uid>[^/]+)", self.h_site)
        self.route("GET", A + r"/site/(?P<uid>[^/]+)/devices", self.h_site_devices)
        self.route("GET", A + r"/device/id/(?P<id>\d+)", self.h_device_by_id)
        self.route("GET", A + r"/device/(?P<uid>[^/]+)", self.h_device)
        self.route("GET", A + r"/audit/device/(?P<uid>[^/]+)", self.h_audit)
        self.route("GET", A + r"/system/pagination", lambda r: Response.json({"max": int(self.config["max_page_size"])}))
        self.route("GET", A + r"/system/request_rate", self.h_rate)
        self.route("GET", A + r"/system/status", lambda r: Response.json({"version": "12.8.0", "status": "OK",
                                                                          "started": "2026-10-01T00:00:00Z"}))

    def h_account(self, req):
        total = len(self.devices)
        online = sum(1 for i in self.devices.ids if self.devices.peek(i).get("online"))
        return Response.json({"id": 4411, "uid": ACCOUNT_UID, "name": "Billrecon MSP",
                              "currency": "USD", "descriptor": {"billingEmail": "billing@example.com",
                                                                "deviceLimit": 5000, "timeZone": "UTC"},
                              "devicesStatus": {"numberOfDevices": total, "numberOfOnlineDevices": online,
                                                "numberOfOfflineDevices": total - online}})

    def h_rate(self, req):
        return Response.json({"slidingTimeWindowSizeSeconds": 60, "accountUid": ACCOUNT_UID,
                              "accountCount": self.window.count(60),
                              "accountRateLimit": int(self.config["requests_per_minute"]),
                              "accountCutOffRatio": float(self.config["delay_from"])})

    def paged(self, req, key, items, render=None):
        try:
            page = int(req.param("page") or 0)
            size = int(req.param("max") or self.config["max_page_size"])
        except ValueError:
            raise ApiError(400, "page and max must be integers")
        if page < 0 or size < 1:
            raise ApiError(400, "page must be 0 or more and max at least 1")
        size = min(size, int(self.config["max_page_size"]))
        if req.vars.get("_loop"):
            page = 0
        total = len(items)
        chunk = items[page * size:(page + 1) * size]
        if render is not None:
            chunk = [render(x) for x in chunk]
        nxt = self.page_url(req, page + 1, size) if (page + 1) * size < total else None
        prev = self.page_url(req, page - 1, size) if page > 0 else None
        return Response.json({"pageDetails": {"count": len(chunk), "totalCount": total, "prevPageUrl": prev,
                                              "nextPageUrl": nxt}, key: chunk})

    @staticmethod
    def page_url(req, page, size):
        pairs = [(k, v) for k, v in urllib.parse.parse_qsl(req.query, keep_blank_values=True)
                 if k not in ("page", "max")]
        pairs += [("max", str(size)), ("page", str(page))]
        return req.host_url + req.raw_path + "?" + urllib.parse.urlencode(pairs)

    def h_sites(self, req):
        name = (req.param("siteName") or "").lower()
        items = [i for i in self.sites.ids if not name or name in str(self.sites.peek(i).get("name", "")).lower()]
        return self.paged(req, "sites", items, self.site_out)

    def site_id(self, req):
        uid = req.vars["uid"]
        sid = self.site_uid.get(uid)
        if sid is None or sid not in self.sites:
            raise ApiError(404, "Site %s not found" % uid)
        return sid

    def h_site(self, req):
        return Response.json(self.site_out(self.site_id(req)))

    def device_filter(self, req):
        f = {k: (req.param(k) or "").lower() for k in ("hostname", "deviceType", "operatingSystem", "siteName")
             if req.param(k)}

        def ok(d):
            if "hostname" in f and f["hostname"] not in str(d.get("hostname") or "").lower():
                return False
            if "deviceType" in f and f["deviceType"] != str((d.get("deviceType") or {}).get("category", "")).lower():
                return False
            if "operatingSystem" in f and f["operatingSystem"] not in str(d.get("operatingSystem") or "").lower():
                return False
            if "siteName" in f and f["siteName"] not in str(d.get("siteName") or "").lower():
                return False
            return True
        return ok

    def h_site_devices(self, req):
        sid = self.site_id(req)
        ok = self.device_filter(req)
        items = [i for i in self.by_site.get(sid, []) if ok(self.devices.peek(i))]
        return self.paged(req, "devices", items, lambda i: self.times(self.devices.peek(i)))

    def h_account_devices(self, req):
        if not any(req.param(k) for k in ("hostname", "deviceType", "operatingSystem", "siteName")):
            # Render only the page asked for.
            return self.paged(req, "devices", self.devices.ids, lambda i: self.times(self.devices.peek(i)))
        ok = self.device_filter(req)
        items = [self.devices.peek(i) for i in self.devices.ids if ok(self.devices.peek(i))]
        return self.paged(req, "devices", items, self.times)

    def device_id(self, uid):
        did = self.device_uid.get(uid)
        if did is None or did not in self.devices:
            raise ApiError(404, "Device %s not found" % uid)
        return did

    def h_device(self, req):
        return Response.json(self.times(self.devices.peek(self.device_id(req.vars["uid"]))))

    def h_device_by_id(self, req):
        did = int(req.vars["id"])
        if did not in self.devices:
            raise ApiError(404, "Device %d not found" % did)
        return Response.json(self.times(self.devices.peek(did)))

    def h_audit(self, req):
        did = self.device_id(req.vars["uid"])
        d = self.devices.peek(did)
        if d.get("deviceClass") != "device":
            raise ApiError(404, "No device audit for a %s; use the %s audit" % (d.get("deviceClass"),
                                                                               d.get("deviceClass")))
        return Response.json({
            "portalUrl": d.get("portalUrl"), "webRemoteUrl": d.get("webRemoteUrl"),
            "systemInfo": {"manufacturer": d.get("_manufacturer"), "model": d.get("_model"),
                           "totalPhysicalMemory": 17179869184, "username": d.get("lastLoggedInUser"),
                           "dotNetVersion": "4.8.09037", "totalCpuCores": 8},
            "networkInterfaces": [{"instance": "Ethernet", "ipv4": d.get("intIpAddress"), "ipv6": None,
                                   "macAddress": "00:1A:2B:%02X:%02X:%02X" % ((did >> 16) & 255, (did >> 8) & 255,
                                                                             did & 255), "type": "Ethernet"}],
            "bios": {"instance": "BIOS", "releaseDate": "2023-05-01T00:00:00Z", "serialNumber": d.get("_serial"),
                     "smBiosVersion": "3.4"},
            "baseBoard": {"manufacturer": d.get("_manufacturer"), "product": d.get("_model"),
                          "serialNumber": d.get("_serial")},
            "displays": [], "logicalDisks": [], "mobileInfo": [], "processors": [], "videoBoards": [],
            "attachedDevices": [], "snmpInfo": None, "physicalMemory": []})

    # -- control -------------------------------------------------------------------------------
    def mutate(self, change):
        def new_record(entity, rid, record):
            if entity == "device":
                sid = record.get("siteId")
                if sid not in self.sites:
                    raise ApiError(400, "add device: siteId must name a site")
                uid = record.get("uid") or str(uuid.uuid4())
                self.device_uid[uid] = rid
                return {"id": rid, "uid": uid, "siteId": sid, "siteUid": self.sites.peek(sid)["uid"],
                        "siteName": self.sites.peek(sid)["name"], "deviceType": {"category": "Desktop",
                                                                                  "type": "Desktop"},
                        "hostname": "NEW-%d" % rid, "online": True, "suspended": False, "deleted": False,
                        "deviceClass": "device", "lastSeen": int(self.clock.now() * 1000),
                        "creationDate": int(self.clock.now() * 1000), "udf": {}}
            uid = record.get("uid") or str(uuid.uuid4())
            self.site_uid[uid] = rid
            return {"id": rid, "uid": uid, "accountUid": ACCOUNT_UID, "name": "New Site %d" % rid,
                    "description": "", "notes": "", "onDemand": False}

        def on_remove(entity, rid):
            if entity == "site":
                for did in [d for d in self.devices.ids if self.devices.peek(d).get("siteId") == rid]:
                    self.devices.remove(did)

        result = table_mutate(change, {"site": self.sites, "device": self.devices},
                              {"sites": "site", "devices": "device"}, None, new_record, on_remove)
        self.reindex()
        return result

    def data_entities(self):
        return {"sites": lambda req: [self.site_out(i) for i in self.sites.ids],
                "devices": lambda req: [self.devices.peek(i) for i in self.devices.ids]}

    def health(self):
        return {"records": {"sites": len(self.sites), "devices": len(self.devices)},
                "requests_last_minute": self.window.count(60), "tokens": self.tokens.describe()}

    # -- faults ------------------------------------------------------------------------------------
    def on_empty_page(self, req, resp):
        if resp.status == 200:
            body = resp.json_body()
            for k in ("sites", "devices"):
                if isinstance(body, dict) and k in body:
                    body[k] = []             # nextPageUrl stays
                    body["pageDetails"]["count"] = 0
                    resp.body = Response.json(body).body
        return resp

    def before_loop(self, req):
        req.vars["_loop"] = True

    def on_loop(self, req, resp):
        if resp.status != 200:
            return resp
        body = resp.json_body()
        pd = body.get("pageDetails") if isinstance(body, dict) else None
        if pd is not None:
            size = int(req.param("max") or self.config["max_page_size"])
            pd["nextPageUrl"] = self.page_url(req, 0, size)
            return Response.json(body)
        return resp
