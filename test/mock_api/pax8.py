"""Pax8 partner API mock (vendor-apis.md section 4).

Token: POST /v1/token (and the legacy /oauth/token) with a JSON body
{client_id, client_secret, audience, grant_type: "client_credentials"};
audience https://api.pax8.com or api://p8p.client (config audiences) ->
{access_token, expires_in: 86400, token_type: "Bearer"}. Bad credentials ->
401 {"error": "access_denied", "error_description": "Unauthorized"}; another
audience -> 403 access_denied. API calls: Bearer; bad tokens -> 401.

GET /v1/companies[/{id}], /v1/subscriptions[/{id}] (filters companyId,
productId, status, billingTerm; sort=field[,asc|desc]),
/v1/subscriptions/{id}/history, /v1/products[/{id}], /v1/products/{id}/pricing;
PUT /v1/subscriptions/{id} (quantity, price, billingTerm; 422 when invalid);
DELETE /v1/subscriptions/{id}[?billingDate=] cancels.
Lists: page (0-based, default 0) + size (default 10, 1..200; larger is capped)
-> {"content": [...], "page": {"size", "totalElements", "totalPages", "number"}};
the last page is number + 1 >= totalPages. No modified-since filter. Errors:
{type, message, instance, status, details}; 429 carries no Retry-After.
Times: ISO 8601 with Z; createdDate, billingStart and some endDate values
are bare dates (as in Pax8's examples).
"""

import collections
import json
import uuid

from framework import ApiError, MockApp, Response, Table, bearer_token, iso_ms_z, iso_z, table_mutate
from msp_generator import iso_date

AUDIENCES = ["https://api.pax8.com", "api://p8p.client"]


class Pax8App(MockApp):
    name = "pax8"
    uses_tokens = True

    def default_config(self):
        return {
            "client_id": "billrecon-pax8-client",
            "client_secret": "billrecon-pax8-secret",
            "audiences": list(AUDIENCES),
            "token_ttl_s": 86400,
            "default_page_size": 10,
            "max_page_size": 200,
        }

    # -- data ---------------------------------------------------------------------------
    def reset_data(self):
        ds = self.dataset
        self.products_by_id = {p.id: p for p in ds.pax8_products}
        self.companies = Table(ds.pax8_companies, self.render_company)
        self.products = Table(ds.pax8_products, self.render_product)
        self.subs = Table(ds.pax8_subscriptions, self.render_sub)
        self.history = collections.defaultdict(list)

    def render_company(self, c):
        return {"id": c.id, "name": c.name,
                "address": {"street": c.street, "city": c.city, "postalCode": c.postal, "country": "US",
                            "stateOrProvince": c.state},
                "phone": c.phone, "website": c.website, "externalId": c.external_id,
                "billOnBehalfOfEnabled": False, "selfServiceAllowed": False, "orderApprovalRequired": False,
                "status": c.status, "updatedDate": iso_ms_z(c.updated + 0.5)}

    def render_product(self, p):
        return {"id": p.id, "name": p.name, "vendorName": p.vendor, "shortDescription": p.short_desc,
                "sku": p.sku, "vendorSku": p.vendor_sku, "altVendorSku": None,
                "requiresCommitment": bool(p.requires_commitment)}

    def render_sub(self, s):
        p = self.products_by_id.get(s.product_id)
        d = {"id": s.id, "companyId": s.company_id, "productId": s.product_id,
             "productName": p.name if p else None, "vendorSubscriptionId": s.vendor_subscription_id,
             "vendorSkuId": p.vendor_sku if p else None, "quantity": s.quantity,
             "startDate": iso_z(s.start), "createdDate": iso_date(s.created), "updatedDate": iso_ms_z(s.updated + 0.25),
             "billingStart": iso_date(s.billing_start), "status": s.status, "price": s.price,
             "partnerCost": s.partner_cost, "currencyCode": "USD", "billingTerm": s.billing_term,
             "provisioningDetails": []}
        if s.end is not None:
            # Pax8's examples write endDate both ways.
            d["endDate"] = iso_date(s.end) if int(s.id[:2], 16) % 2 else iso_z(s.end)
        if s.commitment_end is not None:
            d["commitmentTerm"] = {"term": "1-Year", "endDate": iso_date(s.commitment_end)}
        return d

    # -- responses ----------------------------------------------------------------------
    def problem(self, status, message, req_path="", details=None, headers=None):
        return Response.json({"type": "https://api.pax8.com/problems/%d" % status, "message": message,
                              "instance": req_path, "status": status, "details": details or []}, status, headers)

    def error_response(self, status, message, code=None, retry_after=None):
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return self.problem(status, message, headers=headers)

    def unauthorized_response(self, req):
        return self.problem(401, "Unauthorized", req.path)

    def rate_limit_response(self, req, retry_after):
        return self.error_response(429, "Too Many Requests", retry_after=retry_after)

    # -- auth ---------------------------------------------------------------------------------
    def authenticate(self, req):
        token = bearer_token(req.header("Authorization"))
        if not token:
            raise ApiError(401, "Unauthorized")
        problem = self.tokens.check(token)
        if problem:
            raise ApiError(401, "Unauthorized: token %s" % problem)

    def h_token(self, req):
        try:
            body = json.loads(req.body.decode("utf-8") or "null")
        except (ValueError, UnicodeDecodeError):
            return Response.json({"error": "invalid_request", "error_description": "the body must be JSON"}, 400)
        if not isinstance(body, dict):
            return Response.json({"error": "invalid_request", "error_description": "the body must be JSON"}, 400)
        if body.get("grant_type") != "client_credentials":
            return Response.json({"error": "unsupported_grant_type",
                                  "error_description": "Unsupported grant type: %s" % body.get("grant_type")}, 403)
        if body.get("client_id") != self.config["client_id"] or body.get("client_secret") != self.config["client_secret"]:
            return Response.json({"error": "access_denied", "error_description": "Unauthorized"}, 401)
        audience = body.get("audience")
        if audience not in self.config["audiences"]:
            return Response.json({"error": "access_denied",
                                  "error_description": "Service not enabled within domain: %s" % audience}, 403)
        ttl = int(self.config["token_ttl_s"])
        token = self.tokens.issue(ttl, audience, body.get("client_id"))
        return Response.json({"access_token": token, "expires_in": ttl, "token_type": "Bearer",
                              "scope": "openid profile"})

    # -- routes -------------------------------------------------------------------------------
    def register_routes(self):
        self.route("POST", r"/v1/token", self.h_token, auth=False)
        self.route("POST", r"/oauth/token", self.h_token, auth=False)
        self.route("GET", r"/v1/companies", self.h_companies)
        self.route("GET", r"/v1/companies/(?P<id>[^/]+)", self.h_company)
        self.route("GET", r"/v1/subscriptions", self.h_subs)
        self.route(("GET", "PUT", "DELETE"), r"/v1/subscriptions/(?P<id>[^/]+)", self.h_sub)
        self.route("GET", r"/v1/subscriptions/(?P<id>[^/]+)/history", self.h_history)
        self.route("GET", r"/v1/products", self.h_products)
        self.route("GET", r"/v1/products/(?P<id>[^/]+)", self.h_product)
        self.route("GET", r"/v1/products/(?P<id>[^/]+)/pricing", self.h_pricing)

    def paged(self, req, items, render=None):
        try:
            page = int(req.param("page") or 0)
            size = int(req.param("size") or self.config["default_page_size"])
        except ValueError:
            raise ApiError(400, "page and size must be integers")
        if page < 0 or size < 1:
            raise ApiError(400, "page must be 0 or more and size at least 1")
        size = min(size, int(self.config["max_page_size"]))
        if req.vars.get("_loop"):
            page = 0
        total = len(items)
        pages = -(-total // size)
        chunk = items[page * size:(page + 1) * size]
        if render is not None:
            chunk = [render(x) for x in chunk]
        return Response.json({"content": chunk,
                              "page": {"size": size, "totalElements": total, "totalPages": pages,
                                       "number": int(req.param("page") or 0)}})

    @staticmethod
    def sort(req, items):
        spec = req.param("sort")
        if not spec:
            return items
        field, _, direction = spec.partition(",")
        field = field.strip()
        rev = direction.strip().lower() == "desc"
        return sorted(items, key=lambda x: (x.get(field) is None, str(x.get(field))), reverse=rev)

    def h_companies(self, req):
        if not req.param("status") and not req.param("sort"):
            return self.paged(req, self.companies.ids, self.companies.peek)
        items = [self.companies.peek(i) for i in self.companies.ids]
        status = req.param("status")
        if status:
            items = [c for c in items if str(c.get("status", "")).lower() == status.lower()]
        return self.paged(req, self.sort(req, items))

    def h_company(self, req):
        cid = req.vars["id"]
        if cid not in self.companies:
            raise ApiError(404, "Company %s not found" % cid)
        return Response.json(self.companies.peek(cid))

    def h_subs(self, req):
        items = []
        filters = {k: req.param(k) for k in ("companyId", "productId", "status", "billingTerm") if req.param(k)}
        if not filters and not req.param("sort"):
            return self.paged(req, self.subs.ids, self.subs.peek)
        for i in self.subs.ids:
            s = self.subs.peek(i)
            if all(str(s.get(k, "")).lower() == v.lower() for k, v in filters.items()):
                items.append(s)
        return self.paged(req, self.sort(req, items))

    def h_sub(self, req):
        sid = req.vars["id"]
        if sid not in self.subs:
            raise ApiError(404, "Subscription %s not found" % sid)
        if req.method == "GET":
            return Response.json(self.subs.peek(sid))
        if req.method == "DELETE":
            rec = self.subs.materialize(sid)
            when = req.param("billingDate")
            rec["status"] = "Cancelled"
            rec["endDate"] = when or iso_date(self.clock.now())
            rec["updatedDate"] = iso_ms_z(self.clock.now())
            self.history[sid].append({"id": str(uuid.uuid4()), "subscriptionId": sid, "action": "Cancel",
                                      "createdDate": iso_ms_z(self.clock.now()), "quantity": rec.get("quantity")})
            return Response.empty(204)
        body = req.json()
        if not isinstance(body, dict):
            return self.problem(422, "The body must be a Subscription object", req.path)
        if not any(k in body for k in ("quantity", "price", "billingTerm")):
            return self.problem(422, "One of quantity, price or billingTerm is required", req.path)
        rec = self.subs.peek(sid)
        details = []
        if "quantity" in body:
            q = body["quantity"]
            if isinstance(q, bool) or not isinstance(q, (int, float)) or q < 1:
                details.append({"field": "quantity", "message": "must be a number of at least 1"})
        if "price" in body:
            p = body["price"]
            if isinstance(p, bool) or not isinstance(p, (int, float)):
                details.append({"field": "price", "message": "must be a number"})
        if "billingTerm" in body and body["billingTerm"] not in ("Monthly", "Annual", "2-Year", "3-Year", "One-Time",
                                                                 "Trial", "Activation"):
            details.append({"field": "billingTerm", "message": "unknown billing term"})
        if details:
            return self.problem(422, "Invalid subscription update", req.path, details)
        rec = self.subs.materialize(sid)
        old = rec.get("quantity")
        for k in ("quantity", "price", "billingTerm", "startDate", "endDate", "provisioningDetails"):
            if k in body:
                rec[k] = body[k]
        rec["updatedDate"] = iso_ms_z(self.clock.now())
        self.history[sid].append({"id": str(uuid.uuid4()), "subscriptionId": sid, "action": "Update",
                                  "createdDate": rec["updatedDate"], "quantity": rec.get("quantity"),
                                  "previousQuantity": old})
        return Response.json(rec)

    def h_history(self, req):
        sid = req.vars["id"]
        if sid not in self.subs:
            raise ApiError(404, "Subscription %s not found" % sid)
        rec = self.subs.peek(sid)
        items = [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, "created/" + sid)), "subscriptionId": sid,
                  "action": "Create", "createdDate": rec.get("createdDate"), "quantity": None}] + self.history[sid]
        return self.paged(req, items)

    def h_products(self, req):
        items = [self.products.peek(i) for i in self.products.ids]
        vendor = req.param("vendorName")
        if vendor:
            items = [p for p in items if str(p.get("vendorName", "")).lower() == vendor.lower()]
        return self.paged(req, self.sort(req, items))

    def h_product(self, req):
        pid = req.vars["id"]
        if pid not in self.products:
            raise ApiError(404, "Product %s not found" % pid)
        return Response.json(self.products.peek(pid))

    def h_pricing(self, req):
        pid = req.vars["id"]
        p = self.products_by_id.get(pid)
        if p is None:
            raise ApiError(404, "Product %s not found" % pid)
        terms = ["Monthly", "Annual"] if p.requires_commitment else ["Monthly"]
        content = [{"billingTerm": t, "commitmentTerm": "1-Year" if t == "Annual" or p.requires_commitment else None,
                    "type": "Flat", "unitOfMeasurement": p.unit,
                    "rates": [{"partnerBuyRate": p.partner_cost, "suggestedRetailPrice": p.price,
                               "startQuantityRange": 1, "endQuantityRange": None, "chargeType": "Per Unit"}]}
                   for t in terms]
        return Response.json({"content": content})

    # -- control -----------------------------------------------------------------------------
    def mutate(self, change):
        def stamp(entity, rec):
            rec["updatedDate"] = iso_ms_z(self.clock.now())

        def new_record(entity, rid, record):
            if entity == "subscription":
                if record.get("companyId") not in self.companies:
                    raise ApiError(400, "add subscription: companyId must name a company")
                return {"id": rid, "quantity": 1, "status": "Active", "billingTerm": "Monthly", "currencyCode": "USD",
                        "startDate": iso_z(self.clock.now()), "createdDate": iso_date(self.clock.now()),
                        "updatedDate": iso_ms_z(self.clock.now()), "provisioningDetails": []}
            if entity == "company":
                return {"id": rid, "name": "New Company", "status": "Active", "updatedDate": iso_ms_z(self.clock.now())}
            return {"id": rid}

        def on_remove(entity, rid):
            if entity == "company":
                for s in [s for s in self.subs.ids if self.subs.peek(s).get("companyId") == rid]:
                    self.subs.remove(s)

        return table_mutate(change, {"company": self.companies, "subscription": self.subs, "product": self.products},
                            {"companies": "company", "subscriptions": "subscription", "products": "product"},
                            stamp, new_record, on_remove)

    def data_entities(self):
        def lister(table):
            return lambda req: [table.peek(i) for i in table.ids]
        return {"companies": lister(self.companies), "subscriptions": lister(self.subs),
                "products": lister(self.products)}

    def health(self):
        return {"records": {"companies": len(self.companies), "subscriptions": len(self.subs),
                            "products": len(self.products)}, "tokens": self.tokens.describe()}

    # -- faults -------------------------------------------------------------------------------
    def on_empty_page(self, req, resp):
        if resp.status == 200:
            body = resp.json_body()
            if isinstance(body, dict) and "content" in body:
                body["content"] = []       # page still promises more
                resp.body = Response.json(body).body
        return resp

    def before_loop(self, req):
        req.vars["_loop"] = True         # the page asked for is answered with page 0

    def on_loop(self, req, resp):
        if resp.status != 200:
            return resp
        body = resp.json_body()
        if isinstance(body, dict) and "page" in body:
            # Claims to be page 0 again with more pages to come.
            body["page"]["number"] = 0
            body["page"]["totalPages"] = max(2, body["page"]["totalPages"])
            return Response.json(body)
        return resp
