"""Microsoft Graph v1.0 mock, many customer tenants on one port (vendor-apis.md section 5).

Tokens: the Entra endpoint of entra.py on the same port,
POST /{tenant}/oauth2/v2.0/token with scope https://graph.microsoft.com/.default.
A token is valid for its own tenant only: every call answers with the data
of the token's tenant (as Graph does), and a token of another audience
(Partner Center) gets 401 InvalidAuthenticationToken.

GET /v1.0/subscribedSkus[/{id}], /v1.0/users[/{id or UPN}], /v1.0/organization,
/v1.0/domains. Collections are {"@odata.context", "value": [...]}; /users pages
with $top (1-999, default 100; config server_page_size caps pages below $top,
as Graph may) and "@odata.nextLink" (absolute, same query plus $skiptoken)
until the last page, which has none. Without $select, users carry
Graph's default properties only (no accountEnabled, assignedLicenses,
signInActivity); $select=signInActivity in a tenant without Entra ID P1/P2
(no Business Premium / E3) answers 403
Authentication_RequestFromNonPremiumTenantOrB2CTenant. $filter on users:
accountEnabled eq true|false, userType eq 'Member'|'Guest'; $count=true needs
ConsistencyLevel: eventual. Throttling: 429 with Retry-After (config
default_retry_after, or the fault's retry_after; "none" leaves it out) and
Graph's error body. Times are ISO 8601 UTC with Z.
"""

import base64
import bisect
import collections
import json
import re
import time
import urllib.parse
import uuid

from entra import GRAPH, EntraLoginMixin
from framework import ApiError, MockApp, Response, Table, iso_z, table_mutate

DEFAULT_USER_PROPS = ("businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                      "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id")
USER_PROPS = DEFAULT_USER_PROPS + ("accountEnabled", "userType", "createdDateTime", "assignedLicenses",
                                   "signInActivity", "usageLocation", "companyName", "department",
                                   "employeeId", "onPremisesSyncEnabled", "proxyAddresses", "otherMails")
SUCCESS_SINCE = 1701388800        # lastSuccessfulSignInDateTime exists from 2023-12-01
PLAN_NAMES = {"SPB": ["EXCHANGE_S_STANDARD", "MCOSTANDARD", "AAD_PREMIUM", "INTUNE_A", "MDE_SMB"],
              "O365_BUSINESS_PREMIUM": ["EXCHANGE_S_STANDARD", "MCOSTANDARD", "OFFICE_BUSINESS"],
              "O365_BUSINESS_ESSENTIALS": ["EXCHANGE_S_STANDARD", "MCOSTANDARD"],
              "SPE_E3": ["EXCHANGE_S_ENTERPRISE", "MCOSTANDARD", "AAD_PREMIUM", "INTUNE_A"],
              "EXCHANGESTANDARD": ["EXCHANGE_S_STANDARD"], "ATP_ENTERPRISE": ["ATP_ENTERPRISE"],
              "FLOW_FREE": ["FLOW_P2_VIRAL"], "POWER_BI_STANDARD": ["BI_AZURE_P0"]}


def _guid_from(text):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, text))


class MsGraphApp(EntraLoginMixin, MockApp):
    name = "msgraph"
    uses_tokens = True

    def default_config(self):
        return {
            "client_id": "billrecon-graph-app",
            "client_secret": "billrecon-graph-secret",
            "token_ttl_s": 3599,
            "unconsented_tenants": [],     # tenant ids whose admins never consented to the app
            "premium_check": True,         # signInActivity needs Entra ID P1 (403 otherwise)
            "default_page_size": 100,
            "max_page_size": 999,
            "default_retry_after": 1,      # Retry-After of a 429 fault that names none
            "server_page_size": 0,         # > 0: pages hold at most this many users whatever $top says
        }

    # -- data -------------------------------------------------------------------------
    def reset_data(self):
        ds = self.dataset
        self.tenants = {t.id: t for t in ds.ms_tenants}
        self.domain_tenant = {}
        for t in ds.ms_tenants:
            self.domain_tenant[t.initial_domain.lower()] = t.id
            for d in t.domains:
                self.domain_tenant.setdefault(d.lower(), t.id)
        self.users = Table(ds.ms_users, self.render_user)
        self.skus = Table(ds.ms_skus, self.render_sku)
        self.orgs = Table([_Org(t.id, t) for t in ds.ms_tenants], self.render_org)
        self.user_ids = collections.defaultdict(list)
        for u in ds.ms_users:       # sorted by id
            self.user_ids[u.tenant_id].append(u.id)
        self.sku_ids = collections.defaultdict(list)
        for s in ds.ms_skus:
            self.sku_ids[s.tenant_id].append(s.id)
        self.upn_index = {u.upn.lower(): u.id for u in ds.ms_users}

    def tenant_id_of(self, name):
        low = name.lower()
        for tid in self.tenants:
            if tid.lower() == low:
                return tid
        return self.domain_tenant.get(low)

    def render_user(self, u):
        first, _, last = u.display_name.partition(" ")
        guest = u.user_type == "Guest"
        sia = None
        if u.last_sign_in is not None or u.last_non_interactive is not None:
            last_any = max(x for x in (u.last_sign_in, u.last_non_interactive) if x is not None)
            sia = {"lastSignInDateTime": iso_z(u.last_sign_in) if u.last_sign_in else None,
                   "lastSignInRequestId": _guid_from("si/" + u.id) if u.last_sign_in else None,
                   "lastNonInteractiveSignInDateTime": iso_z(u.last_non_interactive) if u.last_non_interactive
                   else None,
                   "lastNonInteractiveSignInRequestId": _guid_from("ni/" + u.id) if u.last_non_interactive else None,
                   "lastSuccessfulSignInDateTime": iso_z(last_any) if last_any >= SUCCESS_SINCE else None,
                   "lastSuccessfulSignInRequestId": _guid_from("ss/" + u.id) if last_any >= SUCCESS_SINCE else None}
        mail = u.upn
        if guest:
            local = u.upn.split("#EXT#")[0]
            i = local.rfind("_")
            mail = local[:i] + "@" + local[i + 1:]
        return {"id": u.id, "businessPhones": [], "displayName": u.display_name,
                "givenName": None if guest or not last else first, "jobTitle": u.job_title,
                "mail": mail, "mobilePhone": None, "officeLocation": None,
                "preferredLanguage": None if guest else "en-US", "surname": None if guest or not last else last,
                "userPrincipalName": u.upn, "accountEnabled": bool(u.enabled), "userType": u.user_type,
                "createdDateTime": iso_z(u.created),
                "assignedLicenses": [{"disabledPlans": [], "skuId": s} for s in u.skus],
                "signInActivity": sia, "usageLocation": "US" if u.skus else None, "companyName": None,
                "department": None, "employeeId": None, "onPremisesSyncEnabled": None,
                "proxyAddresses": ["SMTP:" + u.upn] if not guest else [], "otherMails": [],
                "_tenant": u.tenant_id}

    def render_sku(self, s):
        t = self.tenants[s.tenant_id]
        plans = [{"servicePlanId": _guid_from("plan/" + p), "servicePlanName": p,
                  "provisioningStatus": "Success", "appliesTo": "User"} for p in PLAN_NAMES.get(s.part_number, [])]
        return {"accountName": t.initial_domain.split(".")[0], "accountId": t.id, "appliesTo": "User",
                "capabilityStatus": s.status, "consumedUnits": s.consumed, "id": s.id,
                "skuId": s.sku_id, "skuPartNumber": s.part_number, "subscriptionIds": list(s.subscription_ids),
                "prepaidUnits": {"enabled": s.enabled, "suspended": s.suspended, "warning": s.warning,
                                 "lockedOut": 0},
                "servicePlans": plans, "_tenant": s.tenant_id}

    def render_org(self, o):
        t = o.tenant
        doms = [{"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": i == 0, "isInitial": False,
                 "name": d, "type": "Managed"} for i, d in enumerate(t.domains)]
        doms.append({"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": not t.domains,
                     "isInitial": True, "name": t.initial_domain, "type": "Managed"})
        return {"id": t.id, "displayName": t.name, "businessPhones": [], "city": None, "country": None,
                "countryLetterCode": t.country, "createdDateTime": iso_z(t.created), "deletedDateTime": None,
                "onPremisesSyncEnabled": None, "postalCode": None, "preferredLanguage": "en",
                "state": None, "street": None, "tenantType": "AAD", "technicalNotificationMails": [],
                "verifiedDomains": doms, "_tenant": t.id}

    # -- responses ---------------------------------------------------------------------------
    def graph_error(self, status, code, message, headers=None):
        now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        rid = str(uuid.uuid4())
        r = Response.json({"error": {"code": code, "message": message,
                                     "innerError": {"date": now, "request-id": rid, "client-request-id": rid}}},
                          status, headers)
        r.set_header("request-id", rid)
        return r

    def error_response(self, status, message, code=None, retry_after=None):
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        code = code or {400: "BadRequest", 401: "InvalidAuthenticationToken", 403: "Authorization_RequestDenied",
                        404: "Request_ResourceNotFound", 405: "Request_BadRequest", 429: "TooManyRequests",
                        500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable",
                        504: "GatewayTimeout"}.get(status, "UnknownError")
        return self.graph_error(status, code, message, headers)

    def unauthorized_response(self, req):
        return self.graph_error(401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.",
                                {"WWW-Authenticate": 'Bearer realm="", authorization_uri='
                                                     '"https://login.microsoftonline.com/common/oauth2/authorize"'})

    def rate_limit_response(self, req, retry_after):
        if retry_after is None:
            retry_after = self.config["default_retry_after"]
        if retry_after == "none":
            retry_after = None
        return self.graph_error(429, "TooManyRequests",
                                "Too many requests. Please wait and retry after the time given in Retry-After.",
                                {"Retry-After": str(retry_after)} if retry_after is not None else {})

    # -- auth -----------------------------------------------------------------------------------
    def authenticate(self, req):
        tenant, problem = self.token_problem(req, GRAPH)
        if problem == "missing":
            raise ApiError(401, "Access token is empty.", code="InvalidAuthenticationToken",
                           headers={"WWW-Authenticate": 'Bearer realm=""'})
        if problem == "audience":
            raise ApiError(401, "Access token validation failure. Invalid audience.",
                           code="InvalidAuthenticationToken")
        if problem:
            raise ApiError(401, "Access token has expired or is not yet valid." if problem != "unknown"
                           else "Invalid JWT token.", code="InvalidAuthenticationToken")
        req.auth_info = tenant

    # -- routes ----------------------------------------------------------------------------------
    def register_routes(self):
        self.register_entra_routes()
        V = r"/v1\.0"
        self.route("GET", V + r"/subscribedSkus", self.h_skus)
        self.route("GET", V + r"/subscribedSkus/(?P<id>[^/]+)", self.h_sku)
        self.route("GET", V + r"/users", self.h_users)
        self.route("GET", V + r"/users/(?P<id>[^/]+)", self.h_user)
        self.route("GET", V + r"/organization", self.h_org)
        self.route("GET", V + r"/domains", self.h_domains)

    @staticmethod
    def ctx(req, what):
        return "https://graph.microsoft.com/v1.0/$metadata#" + what

    @staticmethod
    def public(rec):
        return {k: v for k, v in rec.items() if not k.startswith("_")}

    def h_skus(self, req):
        tenant = req.auth_info
        return Response.json({"@odata.context": self.ctx(req, "subscribedSkus"),
                              "value": [self.public(self.skus.peek(i)) for i in self.sku_ids.get(tenant, [])
                                        if i in self.skus]})

    def h_sku(self, req):
        sid = req.vars["id"]
        if sid not in self.skus or self.skus.peek(sid).get("_tenant") != req.auth_info:
            raise ApiError(404, "Resource '%s' does not exist or one of its queried reference-property objects "
                                "are not present." % sid, code="Request_ResourceNotFound")
        body = self.public(self.skus.peek(sid))
        body["@odata.context"] = self.ctx(req, "subscribedSkus/$entity")
        return Response.json(body)

    def h_org(self, req):
        tenant = req.auth_info
        return Response.json({"@odata.context": self.ctx(req, "organization"),
                              "value": [self.public(self.orgs.peek(tenant))] if tenant in self.orgs else []})

    def h_domains(self, req):
        tenant = req.auth_info
        if tenant not in self.orgs:
            return Response.json({"@odata.context": self.ctx(req, "domains"), "value": []})
        out = []
        for d in self.orgs.peek(tenant).get("verifiedDomains", []):
            out.append({"authenticationType": "Managed", "availabilityStatus": None, "id": d["name"],
                        "isAdminManaged": True, "isDefault": d["isDefault"], "isInitial": d["isInitial"],
                        "isRoot": True, "isVerified": True, "passwordNotificationWindowInDays": 14,
                        "passwordValidityPeriodInDays": 2147483647, "state": None,
                        "supportedServices": ["Email", "OfficeCommunicationsOnline"]})
        return Response.json({"@odata.context": self.ctx(req, "domains"), "value": out})

    def select_of(self, req):
        text = req.param("$select")
        if text is None:
            return None
        canon = {p.lower(): p for p in USER_PROPS}
        out = []
        for p in [x.strip() for x in text.split(",") if x.strip()]:
            c = canon.get(p.lower())
            if c is None:
                raise ApiError(400, "Could not find a property named '%s' on type 'microsoft.graph.user'." % p,
                               code="Request_BadRequest")
            out.append(c)
        return out

    def shape(self, rec, select):
        props = select or DEFAULT_USER_PROPS
        out = {}
        for p in props:
            if p == "signInActivity" and rec.get("signInActivity") is None:
                continue      # never signed in: no signInActivity at all
            out[p] = rec.get(p)
        if select and "id" not in out:
            out["id"] = rec.get("id")
        return out

    def check_premium(self, req, select):
        if select and "signInActivity" in select and self.config["premium_check"]:
            t = self.tenants.get(req.auth_info)
            if t is not None and not t.premium:
                raise ApiError(403, "Neither tenant is B2C or tenant doesn't have premium license",
                               code="Authentication_RequestFromNonPremiumTenantOrB2CTenant")

    def filter_of(self, req):
        text = req.param("$filter")
        if not text:
            return None
        m = re.fullmatch(r"\s*(accountEnabled|userType)\s+eq\s+(true|false|'[^']*')\s*", text, re.I)
        if not m:
            raise ApiError(400, "Unsupported or invalid query filter clause specified for property of resource "
                                "'User'.", code="Request_UnsupportedQuery")
        field = "accountEnabled" if m.group(1).lower() == "accountenabled" else "userType"
        raw = m.group(2)
        value = raw.lower() == "true" if field == "accountEnabled" else raw.strip("'")
        if field == "userType":
            return lambda rec: str(rec.get(field, "")).lower() == value.lower()
        return lambda rec: rec.get(field) == value

    def h_users(self, req):
        tenant = req.auth_info
        select = self.select_of(req)
        self.check_premium(req, select)
        try:
            top = int(req.param("$top") or self.config["default_page_size"])
        except ValueError:
            raise ApiError(400, "Invalid page size specified: '%s'. Must be between 1 and %d inclusive."
                           % (req.param("$top"), int(self.config["max_page_size"])), code="Request_BadRequest")
        if top < 1 or top > int(self.config["max_page_size"]):
            raise ApiError(400, "Invalid page size specified: '%d'. Must be between 1 and %d inclusive."
                           % (top, int(self.config["max_page_size"])), code="Request_BadRequest")
        if int(self.config["server_page_size"] or 0) > 0:
            top = min(top, int(self.config["server_page_size"]))   # Graph may return fewer than $top
        pred = self.filter_of(req)
        count = (req.param("$count") or "").lower() == "true"
        if count and (req.header("ConsistencyLevel") or "").lower() != "eventual":
            raise ApiError(400, "$count is not currently supported.", code="Request_BadRequest")
        ids = self.user_ids.get(tenant, [])
        after = None
        token = req.param("$skiptoken")
        if token is not None and not req.vars.get("_loop"):
            after = self.decode_skiptoken(token, tenant)
        start = 0
        if after is not None:
            start = bisect.bisect_right(ids, after)
        page = []
        more = False
        total = 0
        for uid in ids[start:]:
            if uid not in self.users:
                continue
            rec = self.users.peek(uid)
            if pred is not None and not pred(rec):
                continue
            if len(page) == top:
                more = True
                break
            page.append(rec)
        body = {"@odata.context": self.ctx(req, "users" + ("(%s)" % ",".join(select) if select else ""))}
        if count:
            total = sum(1 for uid in ids if uid in self.users and (pred is None or pred(self.users.peek(uid))))
            body["@odata.count"] = total
        if more:
            body["@odata.nextLink"] = self.next_link(req, self.skiptoken(tenant, page[-1]["id"]))
        body["value"] = [self.shape(r, select) for r in page]
        return Response.json(body)

    def skiptoken(self, tenant, last_id):
        raw = json.dumps([tenant, last_id], separators=(",", ":")).encode()
        return "RFNwdAIAAQAAA" + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode_skiptoken(self, token, tenant):
        try:
            if not token.startswith("RFNwdAIAAQAAA"):
                raise ValueError
            t = token[len("RFNwdAIAAQAAA"):]
            t_, last = json.loads(base64.urlsafe_b64decode(t + "=" * (-len(t) % 4)))
        except (ValueError, TypeError):
            raise ApiError(400, "Invalid $skiptoken value.", code="Request_BadRequest")
        if t_ != tenant:
            raise ApiError(400, "The $skiptoken does not belong to this tenant's collection.",
                           code="Request_BadRequest")
        return last

    @staticmethod
    def next_link(req, token):
        pairs = [(k, v) for k, v in urllib.parse.parse_qsl(req.query, keep_blank_values=True)
                 if k.lower() != "$skiptoken"]
        if token is not None:
            pairs.append(("$skiptoken", token))
        q = urllib.parse.urlencode(pairs, safe="$,'()", quote_via=urllib.parse.quote)
        return req.host_url + req.raw_path + ("?" + q if q else "")

    def h_user(self, req):
        key = urllib.parse.unquote(req.vars["id"])
        uid = key if key in self.users else self.upn_index.get(key.lower())
        if uid is None or uid not in self.users or self.users.peek(uid).get("_tenant") != req.auth_info:
            raise ApiError(404, "Resource '%s' does not exist or one of its queried reference-property objects are "
                                "not present." % key, code="Request_ResourceNotFound")
        select = self.select_of(req)
        self.check_premium(req, select)
        body = {"@odata.context": self.ctx(req, "users/$entity")}
        body.update(self.shape(self.users.peek(uid), select))
        return Response.json(body)

    # -- control ------------------------------------------------------------------------------
    def mutate(self, change):
        def new_record(entity, rid, record):
            tenant = record.get("_tenant") or record.get("tenant_id")
            if tenant not in self.tenants:
                raise ApiError(400, "add %s: record._tenant must name a tenant" % entity)
            record.pop("tenant_id", None)
            if entity == "user":
                self.user_ids[tenant].append(rid)
                self.user_ids[tenant].sort()
                return {"id": rid, "displayName": "New User", "userPrincipalName": "new.user@" +
                        self.tenants[tenant].domains[0] if self.tenants[tenant].domains else "x", "accountEnabled": True,
                        "userType": "Member", "assignedLicenses": [], "businessPhones": [],
                        "createdDateTime": iso_z(self.clock.now()), "_tenant": tenant}
            self.sku_ids[tenant].append(rid)
            return {"id": rid, "_tenant": tenant, "appliesTo": "User", "capabilityStatus": "Enabled",
                    "consumedUnits": 0, "prepaidUnits": {"enabled": 0, "suspended": 0, "warning": 0, "lockedOut": 0},
                    "servicePlans": [], "subscriptionIds": []}

        def on_remove(entity, rid):
            table = {"user": self.users, "sku": self.skus}.get(entity)
            if table is not None:
                ids = (self.user_ids if entity == "user" else self.sku_ids)[table.peek(rid).get("_tenant")]
                if rid in ids:
                    ids.remove(rid)

        return table_mutate(change, {"user": self.users, "sku": self.skus, "organization": self.orgs},
                            {"users": "user", "skus": "sku", "subscribedSku": "sku", "subscribedSkus": "sku",
                             "tenant": "organization", "org": "organization"}, None, new_record, on_remove)

    def data_entities(self):
        def lister(table, key):
            def f(req):
                tenant = req.param("tenant")
                ids = table.ids
                if req.param("id"):
                    ids = [x for x in req.param("id").split(",") if x in table]
                return [table.peek(i) for i in ids if tenant is None or table.peek(i).get("_tenant") == tenant]
            return f
        return {"users": lister(self.users, "u"), "skus": lister(self.skus, "s"),
                "organizations": lister(self.orgs, "o"),
                "tenants": lambda req: [{"id": t.id, "name": t.name, "initial_domain": t.initial_domain,
                                         "domains": list(t.domains), "premium": t.premium, "client": t.client}
                                        for t in self.tenants.values()]}

    def health(self):
        return {"records": {"tenants": len(self.tenants), "users": len(self.users), "skus": len(self.skus)},
                "tokens": self.tokens.describe()}

    # -- faults -------------------------------------------------------------------------------
    def on_empty_page(self, req, resp):
        if resp.status == 200:
            body = resp.json_body()
            if isinstance(body, dict) and "value" in body:
                body["value"] = []           # the nextLink stays
                resp.body = Response.json(body).body
        return resp

    def before_loop(self, req):
        req.vars["_loop"] = True             # a $skiptoken is answered with the first page

    def on_loop(self, req, resp):
        if resp.status != 200:
            return resp
        body = resp.json_body()
        if "@odata.nextLink" in body or req.param("$skiptoken"):
            # The next link points back at the first page.
            body["@odata.nextLink"] = self.next_link(req, None)
            return Response.json(body)
        return resp


class _Org(collections.namedtuple("_Org", "id tenant")):
    pass
