"""Microsoft Partner Center REST API mock (vendor-apis.md section 6).

Tokens: the Entra endpoint of entra.py on the same port, for the partner
tenant (config partner_tenant_id, by default the dataset's MSP tenant):
POST /{tenant}/oauth2/token with resource=https://api.partnercenter.microsoft.com
or POST /{tenant}/oauth2/v2.0/token with scope=.../.default. A token of
another tenant or audience gets 401.

Every call needs MS-RequestId and MS-CorrelationId (GUIDs, echoed back);
otherwise 400 (config require_ms_headers).

GET /v1/customers?size=n: seek paging; {"totalCount", "items", "links": {"self",
"next"?}, "continuationToken"?, "attributes"}; links.next = {"uri":
"/customers?size=n&seekOperation=Next", "method": "GET", "headers":
[{"key": "MS-ContinuationToken", "value": ...}]}; GET {base}/v1 + uri with
that header continues; the last page has no links.next.
GET /v1/customers/{id}; GET /v1/customers/{id}/subscriptions (all, unpaged);
GET|PATCH /v1/customers/{id}/subscriptions/{sid}: PATCH takes the subscription
resource (property names case-insensitive) and changes quantity,
autoRenewEnabled, friendlyName or status; NCE seat decreases after
cancellationAllowedUntilDate are refused (config enforce_nce_decrease); 200
with the updated resource, or 202 + Location with config patch_async.

Throttling: 429 + Retry-After + {"statusCode": 429, "message": "Rate limit is
exceeded. Try again in N seconds."}; the subscription endpoints allow config
subscription_requests_per_minute (500) per customer. Errors otherwise:
{"code", "description", "errorName", "data", "source"}. Times: ISO 8601 Z.
"""

import base64
import collections
import hashlib
import json
import re
import uuid

from entra import PARTNER_CENTER, EntraLoginMixin
from framework import ApiError, MockApp, RateWindow, Response, Table, iso_z, table_mutate

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
PC_CODES = {400: (400, "BadRequest"), 401: (401, "Unauthorized"), 403: (403, "Forbidden"),
            404: (600008, "NotFound"), 409: (409, "Conflict"), 412: (412, "PreconditionFailed"),
            500: (500, "InternalServerError")}


class PartnerCenterApp(EntraLoginMixin, MockApp):
    name = "partnercenter"
    uses_tokens = True

    def default_config(self):
        return {
            "partner_tenant_id": (self.dataset.ground_truth or {}).get("partner_tenant_id") or "",
            "client_id": "billrecon-pc-app",
            "client_secret": "billrecon-pc-secret",
            "token_ttl_s": 3599,
            "unconsented_tenants": [],
            "require_ms_headers": True,
            "default_page_size": 100,
            "max_page_size": 500,
            "default_retry_after": 1,
            "subscription_requests_per_minute": 500,
            "patch_async": False,
            "enforce_nce_decrease": True,
        }

    # -- data ---------------------------------------------------------------------------
    def reset_data(self):
        ds = self.dataset
        self.tenants = {t.id: t for t in ds.ms_tenants}
        self.domain_tenant = {}
        for t in ds.ms_tenants:
            self.domain_tenant[t.initial_domain.lower()] = t.id
            for d in t.domains:
                self.domain_tenant.setdefault(d.lower(), t.id)
        self.customers = Table(ds.pc_customers, self.render_customer)
        self.subs = Table(ds.pc_subscriptions, self.render_sub)
        self.subs_of = collections.defaultdict(list)
        for s in ds.pc_subscriptions:
            self.subs_of[s.customer_id].append(s.id)
        self.windows = collections.defaultdict(RateWindow)

    def tenant_id_of(self, name):
        low = name.lower()
        for tid in self.tenants:
            if tid.lower() == low:
                return tid
        return self.domain_tenant.get(low)

    def render_customer(self, c):
        t = self.tenants.get(c.id)
        return {"id": c.id, "commerceId": str(uuid.uuid5(uuid.NAMESPACE_URL, "commerce/" + c.id)),
                "companyProfile": {"tenantId": c.id, "domain": c.domain, "companyName": c.company_name,
                                   "links": {"self": {"uri": "/customers/%s/profiles/company" % c.id,
                                                      "method": "GET", "headers": []}},
                                   "attributes": {"objectType": "CustomerCompanyProfile"}},
                "relationshipToPartner": "reseller", "allowDelegatedAccess": True,
                "customDomains": list(t.domains) if t else [],
                "links": {"self": {"uri": "/customers/%s" % c.id, "method": "GET", "headers": []}},
                "attributes": {"objectType": "Customer"}}

    def render_sub(self, s):
        d = {"id": s.id, "entitlementId": str(uuid.uuid5(uuid.NAMESPACE_URL, "ent/" + s.id)),
             "offerId": s.offer_id, "offerName": s.offer_name, "friendlyName": s.friendly_name,
             "quantity": s.quantity, "unitType": "Licenses" if s.billing_type == "license" else "Usage-based",
             "hasPurchasableAddons": False, "creationDate": iso_z(s.creation), "effectiveStartDate": iso_z(s.start),
             "commitmentEndDate": iso_z(s.commitment_end) if s.commitment_end else None,
             "cancellationAllowedUntilDate": iso_z(s.cancel_until) if s.cancel_until else None,
             "status": s.status, "autoRenewEnabled": bool(s.auto_renew), "isTrial": bool(s.is_trial),
             "billingType": s.billing_type, "billingCycle": s.billing_cycle, "termDuration": s.term,
             "renewalTermDuration": s.term if s.auto_renew else None, "refundOptions": [],
             "isMicrosoftProduct": True, "partnerId": "", "attentionNeeded": False, "actionTaken": False,
             "contractType": "subscription", "orderId": s.order_id, "suspensionReasons":
                 ["CustomerCancellation"] if s.status == "suspended" else [],
             "_customer": s.customer_id}
        d["links"] = {"offer": {"uri": "/offers/%s?country=US" % s.offer_id, "method": "GET", "headers": []},
                      "self": {"uri": "/customers/%s/subscriptions/%s" % (s.customer_id, s.id), "method": "GET",
                               "headers": []}}
        d["attributes"] = {"etag": self.etag(d), "objectType": "Subscription"}
        return d

    @staticmethod
    def etag(d):
        h = hashlib.sha1(json.dumps([d.get("quantity"), d.get("status"), d.get("autoRenewEnabled"),
                                     d.get("friendlyName")], default=str).encode()).hexdigest()[:16]
        return '"%s"' % h

    @staticmethod
    def public(rec):
        return {k: v for k, v in rec.items() if not k.startswith("_")}

    # -- responses ------------------------------------------------------------------------
    def pc_error(self, status, description, code=None, name=None, headers=None):
        c, n = PC_CODES.get(status, (status, "Error"))
        return Response.json({"code": code or c, "description": description, "errorName": name or n,
                              "isRetryable": status >= 500, "data": [], "source": "PartnerFD"}, status, headers)

    def error_response(self, status, message, code=None, retry_after=None):
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        if status == 429:
            return self.rate_limit_response(None, retry_after)
        return self.pc_error(status, message, headers=headers, name=code if code and not code.isdigit() else None)

    def unauthorized_response(self, req):
        return self.pc_error(401, "Unauthorized: the access token is not valid.",
                             headers={"WWW-Authenticate": 'Bearer'})

    def rate_limit_response(self, req, retry_after):
        if retry_after is None:
            retry_after = self.config["default_retry_after"]
        if retry_after == "none":
            return Response.json({"statusCode": 429, "message": "Rate limit is exceeded."}, 429)
        return Response.json({"statusCode": 429, "message": "Rate limit is exceeded. Try again in %s seconds."
                                                            % retry_after}, 429, {"Retry-After": str(retry_after)})

    def handle(self, req):
        resp = super().handle(req)
        for h in ("MS-RequestId", "MS-CorrelationId"):
            v = req.header(h)
            if v and not req.path.startswith("/_mock"):
                resp.set_header(h, v)
        return resp

    # -- auth -------------------------------------------------------------------------------
    def authenticate(self, req):
        tenant, problem = self.token_problem(req, PARTNER_CENTER)
        if problem:
            raise ApiError(401, "Unauthorized: the access token is %s." % (
                "missing" if problem == "missing" else "for another audience" if problem == "audience" else problem),
                headers={"WWW-Authenticate": "Bearer"})
        if tenant.lower() != str(self.config["partner_tenant_id"]).lower():
            raise ApiError(401, "Unauthorized: the token was not issued by the partner tenant.",
                           headers={"WWW-Authenticate": "Bearer"})
        if self.config["require_ms_headers"]:
            for h in ("MS-RequestId", "MS-CorrelationId"):
                v = req.header(h)
                if not v:
                    raise ApiError(400, "The %s header is required." % h, code="MissingHeader")
                if not _GUID.match(v.strip()):
                    raise ApiError(400, "The %s header must be a GUID, not %r." % (h, v), code="InvalidHeader")

    # -- routes -------------------------------------------------------------------------------
    def register_routes(self):
        self.register_entra_routes()
        V = r"(?i)/v1"
        self.route("GET", V + r"/customers", self.h_customers)
        self.route("GET", V + r"/customers/(?P<cid>[^/]+)", self.h_customer)
        self.route("GET", V + r"/customers/(?P<cid>[^/]+)/subscriptions", self.h_subs)
        self.route(("GET", "PATCH"), V + r"/customers/(?P<cid>[^/]+)/subscriptions/(?P<sid>[^/]+)", self.h_sub)

    def continuation(self, offset):
        return base64.b64encode(json.dumps({"o": offset, "v": 1}).encode()).decode()

    def h_customers(self, req):
        try:
            size = int(req.param("size") or self.config["default_page_size"])
        except ValueError:
            raise ApiError(400, "size must be an integer.")
        if size < 1 or size > int(self.config["max_page_size"]):
            raise ApiError(400, "size must be between 1 and %d." % int(self.config["max_page_size"]))
        offset = 0
        if (req.param("seekOperation") or "").lower() == "next":
            token = req.header("MS-ContinuationToken")
            if not token:
                raise ApiError(400, "seekOperation=Next needs the MS-ContinuationToken header.")
            try:
                offset = int(json.loads(base64.b64decode(token))["o"])
            except (ValueError, KeyError, TypeError):
                raise ApiError(400, "The continuation token is not valid.")
            if req.vars.get("_loop"):
                offset = 0
        ids = self.customers.ids
        page = ids[offset:offset + size]
        body = {"totalCount": len(page), "items": [self.customers.peek(i) for i in page],
                "links": {"self": {"uri": "/customers?size=%d" % size, "method": "GET", "headers": []}},
                "attributes": {"objectType": "Collection"}}
        if offset + size < len(ids):
            token = self.continuation(offset + size)
            body["links"]["next"] = {"uri": "/customers?size=%d&seekOperation=Next" % size, "method": "GET",
                                     "headers": [{"key": "MS-ContinuationToken", "value": token}]}
            body["continuationToken"] = token
        return Response.json(body)

    def customer(self, req):
        cid = req.vars["cid"].lower()
        match = next((i for i in self.customers.ids if i.lower() == cid), None)
        if match is None:
            raise ApiError(404, "Customer %s was not found." % req.vars["cid"], code="600008")
        return match

    def h_customer(self, req):
        return Response.json(self.customers.peek(self.customer(req)))

    def throttle(self, cid):
        limit = int(self.config["subscription_requests_per_minute"] or 0)
        if limit and self.windows[cid].hit(60) > limit:
            raise _Throttled()

    def h_subs(self, req):
        cid = self.customer(req)
        try:
            self.throttle(cid)
        except _Throttled:
            return self.rate_limit_response(req, 60)
        items = [self.public(self.subs.peek(s)) for s in self.subs_of.get(cid, []) if s in self.subs]
        return Response.json({"totalCount": len(items), "items": items,
                              "links": {"self": {"uri": "/customers/%s/subscriptions" % cid, "method": "GET",
                                                 "headers": []}},
                              "attributes": {"objectType": "Collection"}})

    def h_sub(self, req):
        cid = self.customer(req)
        try:
            self.throttle(cid)
        except _Throttled:
            return self.rate_limit_response(req, 60)
        sid = req.vars["sid"].lower()
        match = next((s for s in self.subs_of.get(cid, []) if s.lower() == sid and s in self.subs), None)
        if match is None:
            raise ApiError(404, "Subscription %s was not found for customer %s." % (req.vars["sid"], cid),
                           code="800002")
        if req.method == "GET":
            return Response.json(self.public(self.subs.peek(match)))
        return self.patch(req, match)

    def patch(self, req, sid):
        body = req.json()
        if not isinstance(body, dict):
            raise ApiError(400, "The body must be a Subscription resource.")
        b = {k.lower(): v for k, v in body.items()}
        cur = self.subs.peek(sid)
        if_match = req.header("If-Match")
        if if_match and if_match.strip() != cur["attributes"]["etag"]:
            return self.pc_error(412, "The subscription changed since it was read (etag mismatch).")
        changes = {}
        if "quantity" in b:
            q = b["quantity"]
            if isinstance(q, bool) or not isinstance(q, (int, float)) or int(q) != q:
                return self.pc_error(400, "quantity must be a whole number, not %r." % (q,), code=800027,
                                     name="InvalidQuantity")
            q = int(q)
            if q < 1:
                return self.pc_error(400, "quantity must be at least 1; cancel the subscription instead.",
                                     code=800027, name="InvalidQuantity")
            if q < cur["quantity"] and self.config["enforce_nce_decrease"] and ":" in str(cur.get("offerId")):
                until = cur.get("cancellationAllowedUntilDate")
                if until and self.clock.now() > _epoch(until):
                    return self.pc_error(400, "Seat count cannot be reduced after the cancellation window "
                                              "(cancellationAllowedUntilDate %s)." % until, code=800058,
                                         name="QuantityDecreaseNotAllowed")
            changes["quantity"] = q
        if "autorenewenabled" in b:
            if not isinstance(b["autorenewenabled"], bool):
                return self.pc_error(400, "autoRenewEnabled must be true or false.")
            changes["autoRenewEnabled"] = b["autorenewenabled"]
        if "friendlyname" in b and isinstance(b["friendlyname"], str):
            changes["friendlyName"] = b["friendlyname"]
        if "status" in b and b["status"] != cur["status"]:
            st = str(b["status"]).lower()
            if st not in ("active", "suspended"):
                return self.pc_error(400, "status can only change to active or suspended.")
            changes["status"] = st
        rec = self.subs.materialize(sid)
        rec.update(changes)
        rec["attributes"] = {"etag": self.etag(rec), "objectType": "Subscription"}
        if self.config["patch_async"]:
            op = str(uuid.uuid4())
            r = Response.empty(202)
            r.set_header("Location", "/customers/%s/subscriptions/%s/operations/%s" % (rec["_customer"], sid, op))
            return r
        return Response.json(self.public(rec))

    # -- control ---------------------------------------------------------------------------
    def mutate(self, change):
        def stamp(entity, rec):
            if entity == "subscription":
                rec["attributes"] = {"etag": self.etag(rec), "objectType": "Subscription"}

        def new_record(entity, rid, record):
            if entity == "subscription":
                cid = record.get("_customer")
                if cid not in self.customers:
                    raise ApiError(400, "add subscription: record._customer must name a customer")
                self.subs_of[cid].append(rid)
                return {"id": rid, "offerId": "", "offerName": "", "friendlyName": "", "quantity": 1,
                        "unitType": "Licenses", "status": "active", "autoRenewEnabled": True, "billingType": "license",
                        "billingCycle": "monthly", "termDuration": "P1M", "isTrial": False,
                        "creationDate": iso_z(self.clock.now()), "effectiveStartDate": iso_z(self.clock.now()),
                        "attributes": {"objectType": "Subscription"}, "_customer": cid}
            return {"id": rid, "companyProfile": {"tenantId": rid, "domain": "", "companyName": ""},
                    "relationshipToPartner": "reseller", "attributes": {"objectType": "Customer"}}

        def on_remove(entity, rid):
            if entity == "subscription":
                lst = self.subs_of.get(self.subs.peek(rid).get("_customer"), [])
                if rid in lst:
                    lst.remove(rid)
            else:
                for s in self.subs_of.pop(rid, []):
                    if s in self.subs:
                        self.subs.remove(s)

        return table_mutate(change, {"customer": self.customers, "subscription": self.subs},
                            {"customers": "customer", "subscriptions": "subscription"}, stamp, new_record, on_remove)

    def data_entities(self):
        return {"customers": lambda req: [self.customers.peek(i) for i in self.customers.ids],
                "subscriptions": lambda req: [self.subs.peek(i) for i in self.subs.ids
                                              if not req.param("customer") or
                                              self.subs.peek(i).get("_customer") == req.param("customer")]}

    def health(self):
        return {"records": {"customers": len(self.customers), "subscriptions": len(self.subs)},
                "partner_tenant_id": self.config["partner_tenant_id"], "tokens": self.tokens.describe()}

    # -- faults -------------------------------------------------------------------------------
    def on_empty_page(self, req, resp):
        if resp.status == 200:
            body = resp.json_body()
            if isinstance(body, dict) and "items" in body:
                body["items"] = []               # links.next stays
                body["totalCount"] = 0
                resp.body = Response.json(body).body
        return resp

    def before_loop(self, req):
        req.vars["_loop"] = True

    def on_loop(self, req, resp):
        if resp.status != 200:
            return resp
        body = resp.json_body()
        nxt = (body.get("links") or {}).get("next")
        size = req.param("size") or self.config["default_page_size"]
        token = self.continuation(0)
        body.setdefault("links", {})["next"] = {"uri": "/customers?size=%s&seekOperation=Next" % size,
                                                "method": "GET",
                                                "headers": [{"key": "MS-ContinuationToken", "value": token}]}
        if nxt is None and not req.param("seekOperation"):
            return resp
        return Response.json(body)


class _Throttled(Exception):
    pass


def _epoch(text):
    from framework import parse_time
    return parse_time(text)
