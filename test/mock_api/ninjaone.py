"""NinjaOne (NinjaRMM) public API v2 mock (vendor-apis.md section 7).

Token: POST /ws/oauth/token, form body grant_type=client_credentials,
client_id, client_secret (or HTTP Basic), scope containing "monitoring"
-> {access_token, token_type: "bearer", expires_in, scope}. Tokens expire
after config token_ttl_s (real time) and can be revoked (/_mock/tokens/revoke
or the token_revoke fault): API calls with such a token get 401.

API under /v2/... and /api/v2/...: organizations, organizations-detailed,
organization/{id}, organization/{id}/devices, organization/{id}/locations,
devices, devices-detailed, device/{id}, locations. Lists are bare arrays
paged with pageSize + after=<id> (ids greater than after, ascending); no
pageSize = everything. `df` device filter: clauses joined with AND:
org|organization, loc|location, role, id (=, !=, in, not in), class
(=, !=, in, not in), status (eq/=/in: APPROVED, PENDING), online, offline,
created after|before YYYY-MM-DD. Timestamps are epoch seconds (numbers with
fractions).
"""

import re

from framework import ApiError, MockApp, Response, Table, bearer_token, parse_basic, parse_time, set_path

PREFIX = r"(?:/api)?/v2"

ROLES = {
    ("WINDOWS_WORKSTATION", "LAPTOP"): (2, "Windows Laptop"),
    ("WINDOWS_WORKSTATION", None): (1, "Windows Desktop"),
    ("WINDOWS_SERVER", None): (3, "Windows Server"),
    ("MAC", None): (4, "Mac"),
    ("MAC_SERVER", None): (4, "Mac"),
    ("LINUX_WORKSTATION", None): (5, "Linux Workstation"),
    ("LINUX_SERVER", None): (6, "Linux Server"),
    ("VMWARE_VM_HOST", None): (7, "VMware ESXi Host"),
    ("VMWARE_VM_GUEST", None): (8, "VMware VM Guest"),
    ("HYPERV_VMM_HOST", None): (9, "Hyper-V Host"),
    ("HYPERV_VMM_GUEST", None): (10, "Hyper-V VM Guest"),
    ("ANDROID", None): (11, "Android"),
    ("APPLE_IOS", None): (12, "iOS"),
}
NMS_ROLE = (20, "Network Device")
OS_MAKER = {"WINDOWS": "Microsoft Corporation", "MAC": "Apple Inc.", "LINUX": "Linux", "VMWARE": "VMware, Inc.",
            "ANDROID": "Google", "HYPERV": "Microsoft Corporation"}
RELEASE_ID = {"22631": "23H2", "26100": "24H2", "19045": "22H2"}
DETAIL_KEYS = ("ipAddresses", "macAddresses", "publicIP", "os", "system", "lastLoggedInUser", "deviceType")


def role_of(node_class, chassis):
    if node_class.startswith("NMS_"):
        return NMS_ROLE
    return ROLES.get((node_class, chassis)) or ROLES.get((node_class, None)) or (99, node_class.title())


def _epoch(ms):
    return ms / 1000.0


class NinjaOneApp(MockApp):
    name = "ninjaone"
    uses_tokens = True

    def default_config(self):
        return {
            "client_id": "billrecon-ninja-client",
            "client_secret": "billrecon-ninja-secret",
            "token_ttl_s": 3600,
            "required_scope": "monitoring",
            "default_page_size": 0,    # 0: no pageSize means every record
            "max_page_size": 0,        # 0: no limit
        }

    # -- data ---------------------------------------------------------------------
    def reset_data(self):
        ds = self.dataset
        self.org_ad = {o.id: o.ad_domain for o in ds.organizations}
        self.orgs = Table(ds.organizations, self.render_org)
        self.locations = Table(ds.locations, self.render_location)
        self.devices = Table(ds.devices, self.render_device)

    def render_org(self, o):
        return {"name": o.name, "description": o.description, "userData": {}, "nodeApprovalMode": o.approval_mode,
                "tags": [], "fields": {}, "id": o.id}

    def render_location(self, loc):
        return {"name": loc.name, "address": loc.address, "description": "", "userData": {}, "tags": [],
                "fields": {}, "id": loc.id, "organizationId": loc.org_id}

    def render_device(self, d):
        """Detailed form without references (those are added from the current
        organization and location at output time)."""
        role_id, _ = role_of(d.node_class, d.chassis)
        ad = self.org_ad.get(d.org_id)
        nms = d.node_class.startswith("NMS_")
        ip = "10.%d.%d.%d" % (d.org_id % 250, (d.id // 250) % 250, d.id % 250 + 2)
        if nms:
            dns = ip
        elif d.system_name:
            dns = d.system_name.lower() + ("." + ad.lower() if ad and "." in ad else "")
        else:
            dns = None
        w = {"id": d.id}
        if d.parent_id:
            w["parentDeviceId"] = d.parent_id
        w.update({
            "organizationId": d.org_id,
            "locationId": d.location_id,
            "nodeClass": d.node_class,
            "nodeRoleId": role_id,
            "rolePolicyId": 100 + role_id,
            "policyId": 100 + role_id,
            "approvalStatus": d.approval,
            "offline": bool(d.offline),
            "displayName": d.display_name,
        })
        if d.system_name:
            w["systemName"] = d.system_name
        if dns:
            w["dnsName"] = dns
        if d.node_class.startswith("WINDOWS") and d.system_name:
            w["netbiosName"] = d.system_name.upper()[:15]
        w.update({
            "created": _epoch(d.created_ms),
            "lastContact": _epoch(d.last_contact_ms),
            "lastUpdate": _epoch(d.last_update_ms),
            "userData": {},
            "tags": [],
            "fields": {},
            "ipAddresses": [ip],
            "macAddresses": ["00:50:56:%02x:%02x:%02x" % ((d.id >> 16) & 255, (d.id >> 8) & 255, d.id & 255)],
            "publicIP": "203.0.113.%d" % (d.org_id % 250 + 1),
        })
        if nms:
            w["deviceType"] = "NMS"
            return w
        w["deviceType"] = "VMGUEST" if d.node_class in ("VMWARE_VM_GUEST", "HYPERV_VMM_GUEST") else "AGENT"
        family = d.node_class.split("_")[0]
        os_ = {"manufacturer": OS_MAKER.get(family, "Unknown"), "name": d.os_name, "architecture": d.os_arch,
               "lastBootTime": _epoch(max(d.created_ms, d.last_contact_ms - (d.id % 97) * 3600 * 1000)),
               "buildNumber": d.os_build}
        if family == "WINDOWS":
            os_["releaseId"] = RELEASE_ID.get(d.os_build, "")
            os_.update(servicePackMajorVersion=0, servicePackMinorVersion=0, locale="en-US", language="English",
                       needsReboot=(d.id % 11 == 0))
        w["os"] = os_
        server = d.node_class in ("WINDOWS_SERVER", "LINUX_SERVER", "MAC_SERVER") or d.node_class.endswith("GUEST")
        system = {"name": d.system_name, "manufacturer": d.manufacturer, "model": d.model,
                  "biosSerialNumber": d.serial, "serialNumber": d.serial,
                  "domain": (ad or "WORKGROUP"),
                  "domainRole": ("MemberServer" if server else "MemberWorkstation") if ad and "." in ad else
                  ("StandaloneServer" if server else "StandaloneWorkstation"),
                  "numberOfProcessors": 2 if server else 1,
                  "totalPhysicalMemory": (32 if server else 16) * 1024 ** 3,
                  "virtualMachine": bool(d.vm),
                  "chassisType": d.chassis or "UNKNOWN"}
        w["system"] = {k: v for k, v in system.items() if v is not None}
        if d.last_user:
            w["lastLoggedInUser"] = d.last_user
        return w

    def _references(self, w):
        refs = {}
        oid = w.get("organizationId")
        if oid in self.orgs:
            o = self.orgs.peek(oid)
            refs["organization"] = {k: o[k] for k in ("name", "description", "nodeApprovalMode", "id") if k in o}
        lid = w.get("locationId")
        if lid in self.locations:
            loc = self.locations.peek(lid)
            refs["location"] = {"name": loc["name"], "address": loc.get("address", ""), "description": "", "id": lid}
        rid = w.get("nodeRoleId")
        if rid is not None:
            name = next((n for (i, n) in list(ROLES.values()) + [NMS_ROLE] if i == rid), "Custom")
            refs["role"] = {"id": rid, "name": name, "nodeClass": w.get("nodeClass"), "custom": False,
                            "chassisType": (w.get("system") or {}).get("chassisType", "UNKNOWN")}
            refs["rolePolicy"] = {"id": w.get("rolePolicyId"), "name": name + " Policy",
                                  "nodeClass": w.get("nodeClass"), "updated": 1700000000.0}
        return refs

    def device_out(self, rid, detailed):
        w = self.devices.peek(rid)
        if detailed:
            out = dict(w)
            out["references"] = self._references(w)
            return out
        return {k: v for k, v in w.items() if k not in DETAIL_KEYS}

    # -- responses ------------------------------------------------------------------
    def error_response(self, status, message, code=None, retry_after=None):
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = {"resultCode": "FAILURE", "errorMessage": message, "incidentId": "mock-%d" % status}
        if code:
            body["errorCode"] = code
        return Response.json(body, status, headers)

    def unauthorized_response(self, req):
        r = Response.json({"error": "invalid_token", "error_description": "Access token is not valid"}, 401)
        r.set_header("WWW-Authenticate", 'Bearer error="invalid_token"')
        return r

    def rate_limit_response(self, req, retry_after):
        return self.error_response(429, "Too many requests", code="TOO_MANY_REQUESTS", retry_after=retry_after)

    # -- auth -------------------------------------------------------------------------
    def authenticate(self, req):
        token = bearer_token(req.header("Authorization"))
        if not token:
            raise ApiError(401, "missing bearer token", code="invalid_token",
                           headers={"WWW-Authenticate": 'Bearer realm="ninjaone"'})
        problem = self.tokens.check(token)
        if problem:
            raise ApiError(401, "access token %s" % problem, code="invalid_token",
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token", error_description="%s"' % problem})
        scopes = self.tokens.scope_of(token).split()
        if self.config["required_scope"] and self.config["required_scope"] not in scopes:
            raise ApiError(403, "token lacks scope %s" % self.config["required_scope"], code="insufficient_scope")

    def h_token(self, req):
        form = req.form()
        basic = parse_basic(req.header("Authorization"))
        client_id = form.get("client_id") or (basic[0] if basic else None)
        client_secret = form.get("client_secret") or (basic[1] if basic else None)
        if form.get("grant_type") != "client_credentials":
            return Response.json({"error": "unsupported_grant_type",
                                  "error_description": "grant_type must be client_credentials"}, 400)
        if client_id != self.config["client_id"] or client_secret != self.config["client_secret"]:
            return Response.json({"error": "invalid_client", "error_description": "Bad client credentials"}, 401)
        scope = " ".join((form.get("scope") or "").replace("+", " ").split())
        need = self.config["required_scope"]
        if need and need not in scope.split():
            return Response.json({"error": "invalid_scope",
                                  "error_description": "scope must include %s" % need}, 400)
        ttl = int(self.config["token_ttl_s"])
        token = self.tokens.issue(ttl, scope, client_id)
        return Response.json({"access_token": token, "token_type": "bearer", "expires_in": ttl, "scope": scope},
                             headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    # -- routes ---------------------------------------------------------------------------
    def register_routes(self):
        P = PREFIX
        self.route("POST", r"/ws/oauth/token", self.h_token, auth=False)
        self.route("POST", r"/oauth/token", self.h_token, auth=False)
        self.route("GET", P + r"/organizations", lambda r: self.h_orgs(r, False))
        self.route("GET", P + r"/organizations-detailed", lambda r: self.h_orgs(r, True))
        self.route("GET", P + r"/organization/(?P<id>\d+)", self.h_org)
        self.route("GET", P + r"/organization/(?P<id>\d+)/devices", self.h_org_devices)
        self.route("GET", P + r"/organization/(?P<id>\d+)/locations", self.h_org_locations)
        self.route("GET", P + r"/locations", self.h_locations)
        self.route("GET", P + r"/devices", lambda r: self.h_devices(r, False))
        self.route("GET", P + r"/devices-detailed", lambda r: self.h_devices(r, True))
        self.route("GET", P + r"/device/(?P<id>\d+)", self.h_device)

    def _paging(self, req):
        try:
            size = int(req.param("pageSize") or self.config["default_page_size"] or 0)
            after = int(req.param("after") or 0)
        except ValueError:
            raise ApiError(400, "pageSize and after must be integers", code="BAD_REQUEST")
        if req.has_param("pageSize") and size < 1:
            raise ApiError(400, "pageSize must be positive", code="BAD_REQUEST")
        mx = int(self.config["max_page_size"] or 0)
        if mx and size > mx:
            raise ApiError(400, "pageSize must be at most %d" % mx, code="BAD_REQUEST")
        if req.vars.get("_loop"):
            after = 0
        return size, after

    def _page(self, table, req, render, accept=None):
        size, after = self._paging(req)
        out = []
        for rid in table.ids_after(after):
            if accept is not None and not accept(rid):
                continue
            out.append(render(rid))
            if size and len(out) >= size:
                break
        return Response.json(out)

    def h_orgs(self, req, detailed):
        def render(rid):
            o = dict(self.orgs.peek(rid))
            if detailed:
                o["locations"] = [self._loc_out(lid) for lid in self.locations.ids
                                  if self.locations.peek(lid).get("organizationId") == rid]
                o["policies"] = [{"nodeRoleId": i, "policyId": 100 + i} for i in (1, 2, 3, 4, 6)]
                o["settings"] = {"trayicon": {"product": "trayicon", "enabled": False, "targets": [], "options": {}}}
            return o
        return self._page(self.orgs, req, render)

    def _loc_out(self, lid):
        loc = dict(self.locations.peek(lid))
        loc.pop("organizationId", None)
        return loc

    def h_org(self, req):
        oid = int(req.vars["id"])
        if oid not in self.orgs:
            raise ApiError(404, "Organization %d not found" % oid, code="NOT_FOUND")
        o = dict(self.orgs.peek(oid))
        o["locations"] = [self._loc_out(lid) for lid in self.locations.ids
                          if self.locations.peek(lid).get("organizationId") == oid]
        return Response.json(o)

    def h_org_locations(self, req):
        oid = int(req.vars["id"])
        if oid not in self.orgs:
            raise ApiError(404, "Organization %d not found" % oid, code="NOT_FOUND")
        return Response.json([self._loc_out(lid) for lid in self.locations.ids
                              if self.locations.peek(lid).get("organizationId") == oid])

    def h_locations(self, req):
        return self._page(self.locations, req, lambda lid: dict(self.locations.peek(lid)))

    def h_devices(self, req, detailed):
        accept = self._df(req.param("df"))
        return self._page(self.devices, req, lambda rid: self.device_out(rid, detailed), accept)

    def h_org_devices(self, req):
        oid = int(req.vars["id"])
        if oid not in self.orgs:
            raise ApiError(404, "Organization %d not found" % oid, code="NOT_FOUND")
        df = self._df(req.param("df"))
        accept = (lambda rid: self.devices.peek(rid).get("organizationId") == oid and (df is None or df(rid)))
        return self._page(self.devices, req, lambda rid: self.device_out(rid, False), accept)

    def h_device(self, req):
        rid = int(req.vars["id"])
        if rid not in self.devices:
            raise ApiError(404, "Device %d not found" % rid, code="NOT_FOUND")
        return Response.json(self.device_out(rid, True))

    # -- df filter ---------------------------------------------------------------------
    _FIELD = {"org": "organizationId", "organization": "organizationId", "loc": "locationId",
              "location": "locationId", "role": "nodeRoleId", "id": "id", "class": "nodeClass",
              "status": "approvalStatus"}

    def _df(self, text):
        if text is None or not text.strip():
            return None
        preds = []
        for clause in re.split(r"\s+and\s+", text.strip(), flags=re.I):
            preds.append(self._df_clause(clause.strip(), text))
        devices = self.devices
        return lambda rid: all(p(devices.peek(rid)) for p in preds)

    def _df_clause(self, clause, whole):
        low = clause.lower()
        if low == "online":
            return lambda w: not w.get("offline")
        if low == "offline":
            return lambda w: bool(w.get("offline"))
        m = re.fullmatch(r"created\s+(after|before)\s+(\S+)", clause, re.I)
        if m:
            try:
                t = parse_time(m.group(2))
            except ValueError:
                raise ApiError(400, "Invalid device filter %r: bad date" % whole, code="BAD_REQUEST")
            if m.group(1).lower() == "after":
                return lambda w: (w.get("created") or 0) > t
            return lambda w: (w.get("created") or 0) < t
        m = re.fullmatch(r"(\w+)\s*(=|!=|eq|neq|ne|in|notin|not\s+in)\s*(.+)", clause, re.I)
        if not m:
            raise ApiError(400, "Invalid device filter %r" % whole, code="BAD_REQUEST")
        field = self._FIELD.get(m.group(1).lower())
        if field is None:
            raise ApiError(400, "Invalid device filter %r: unknown field %s" % (whole, m.group(1)), code="BAD_REQUEST")
        op = re.sub(r"\s+", "", m.group(2).lower())
        raw = m.group(3).strip()
        if op in ("in", "notin"):
            if not (raw.startswith("(") and raw.endswith(")")):
                raise ApiError(400, "Invalid device filter %r: in needs (a,b,...)" % whole, code="BAD_REQUEST")
            values = [v.strip() for v in raw[1:-1].split(",") if v.strip()]
        else:
            values = [raw]
        numeric = field in ("organizationId", "locationId", "nodeRoleId", "id")
        try:
            values = {int(v) for v in values} if numeric else {v.upper() for v in values}
        except ValueError:
            raise ApiError(400, "Invalid device filter %r: %s needs numbers" % (whole, m.group(1)), code="BAD_REQUEST")
        negate = op in ("!=", "neq", "ne", "notin")

        def pred(w):
            v = w.get(field)
            v = v if numeric else str(v).upper()
            return (v in values) != negate
        return pred

    # -- control ---------------------------------------------------------------------------
    def mutate(self, change):
        entity = change.get("entity")
        tables = {"device": self.devices, "organization": self.orgs, "location": self.locations}
        entity = {"devices": "device", "organizations": "organization", "org": "organization",
                  "locations": "location"}.get(entity, entity)
        if entity not in tables:
            raise ApiError(400, "entity must be one of %s" % ", ".join(sorted(tables)))
        table = tables[entity]
        op = change.get("op", "set" if "set" in change else None)
        now = self.clock.now()
        if op == "add":
            record = dict(change.get("record") or {})
            rid = int(record.get("id") or table.next_id())
            if rid in table:
                raise ApiError(400, "%s %d already exists" % (entity, rid))
            if entity == "device":
                oid = int(record.get("organizationId", 0))
                if oid not in self.orgs:
                    raise ApiError(400, "add device: organizationId %r does not exist" % oid)
                base = {"id": rid, "organizationId": oid,
                        "locationId": next((l for l in self.locations.ids
                                            if self.locations.peek(l).get("organizationId") == oid), None),
                        "nodeClass": "WINDOWS_WORKSTATION", "nodeRoleId": 1, "rolePolicyId": 101, "policyId": 101,
                        "approvalStatus": "APPROVED", "offline": False, "displayName": "NEW-%d" % rid,
                        "systemName": "NEW-%d" % rid, "created": now, "lastContact": now, "lastUpdate": now,
                        "userData": {}, "tags": [], "fields": {}, "deviceType": "AGENT",
                        "os": {"name": "Windows 11 Professional Edition"},
                        "system": {"chassisType": "DESKTOP", "virtualMachine": False}}
            elif entity == "organization":
                base = {"name": "New Organization %d" % rid, "description": "", "userData": {},
                        "nodeApprovalMode": "AUTOMATIC", "tags": [], "fields": {}, "id": rid}
            else:
                base = {"name": "Location %d" % rid, "address": "", "description": "", "userData": {}, "tags": [],
                        "fields": {}, "id": rid, "organizationId": int(record.get("organizationId", 0))}
            for k, v in record.items():
                set_path(base, k, v)
            base["id"] = rid
            table.put(rid, base)
            return {"entity": entity, "op": "add", "id": rid, "record": base}
        rid = int(change.get("id", -1))
        if rid not in table:
            raise ApiError(404, "%s %d does not exist" % (entity, rid))
        if op == "remove":
            table.remove(rid)
            if entity == "organization":
                for did in [d for d in self.devices.ids if self.devices.peek(d).get("organizationId") == rid]:
                    self.devices.remove(did)
            return {"entity": entity, "op": "remove", "id": rid}
        if op != "set":
            raise ApiError(400, "op must be set, add or remove")
        rec = table.materialize(rid)
        for k, v in (change.get("set") or {}).items():
            set_path(rec, k, v)
        if entity == "device" and change.get("touch", True):
            rec["lastUpdate"] = now
        return {"entity": entity, "op": "set", "id": rid, "record": rec}

    def data_entities(self):
        def devices(req):
            ids = self.devices.ids
            if req.param("id"):
                ids = [int(x) for x in req.param("id").split(",") if int(x) in self.devices]
            return [self.device_out(i, True) for i in ids]
        return {"organizations": lambda req: [self.orgs.peek(i) for i in self.orgs.ids],
                "locations": lambda req: [self.locations.peek(i) for i in self.locations.ids],
                "devices": devices}

    def health(self):
        return {"records": {"organizations": len(self.orgs), "locations": len(self.locations),
                            "devices": len(self.devices)}, "tokens": self.tokens.describe()}

    # -- faults ------------------------------------------------------------------------------
    def on_empty_page(self, req, resp):
        if resp.status == 200:
            resp.body = b"[]"
        return resp

    def before_loop(self, req):
        # The cursor goes back: answer as if after=0 (the first page again).
        req.vars["_loop"] = True
