"""Autotask PSA REST API mock (vendor-apis.md section 3).

Auth: headers ApiIntegrationCode, UserName, Secret on every call (names are
case-insensitive); no token. Zone discovery without auth:
GET /atservicesrest/V1.0/zoneInformation?user=<email> -> {zoneName, url (this
mock's /ATServicesRest/), webUrl, ci}; GET /atservicesrest/versioninformation.

Under /ATServicesRest/V1.0 (path case-insensitive): Companies, Contacts
(emailAddress/2/3, isActive 1 or 0), Contracts, ContractServices,
ContractServiceUnits, Services, ContractServiceAdjustments:
POST /{Entity}/query (body {"MaxRecords", "IncludeFields", "filter": [...]})
or GET /{Entity}/query?search=<json>; /{Entity}/query/count -> {"queryCount"};
GET /{Entity}/{id} -> {"item"}; GET /{Entity}/entityInformation[/fields]
(picklists); children GET /Contracts/{id}/Services, /ServiceUnits,
/ServiceAdjustments; GET /ThresholdInformation.

Queries need at least one filter ({"op": "exist", "field": "id"} to list
everything). Operators eq, noteq, gt, gte, lt, lte, beginsWith, endsWith,
contains, exist, notExist, in, notIn and and/or groups; field names are
case-insensitive; dates compare as times ("2026-11-01T00:00:00Z" or
zone-less). Results are in id order, MaxRecords (<= 500) per page, with
pageDetails {count, requestCount, prevPageUrl, nextPageUrl}: absolute GET
URLs carrying paging={"pageSize", "previousIds", "nextIds"} and the
original search; nextPageUrl is null on the last page.

Write-back: POST /ContractServiceAdjustments (or /Contracts/{id}/ServiceAdjustments)
{contractID, contractServiceID, serviceID, effectiveDate, unitChange,
adjustedUnitPrice} -> {"itemId"}; the units of every period ending on or after
the effective date change by unitChange. Business-rule errors answer 500
{"errors": [...]}, as Autotask does.

Limits: config requests_per_hour (default 10,000, rolling 60 minutes) ->
429 {"errors": [...]} without Retry-After until the window drains;
latency_s added past latency_from (50 %) of it (default 0 s); more than
max_threads (3) concurrent requests on one entity -> 429. Times: UTC without
a zone ("2026-11-01T00:00:00", datetimes with milliseconds), shifted by
config utc_offset_minutes.
"""

import bisect
import collections
import copy
import json
import re
import threading
import time
import urllib.parse

from framework import ApiError, MockApp, RateWindow, Response, Table, parse_time, table_mutate, zoneless
from msp_generator import AT_COMPANY_TYPES, AT_PERIODS, autotask_unit_periods

AtUnit = collections.namedtuple("AtUnit", "id contract_id cs_id service_id start end units unit_price unit_cost posted")

ENTITIES = {"companies": "Companies", "contacts": "Contacts", "contracts": "Contracts",
            "contractservices": "ContractServices",
            "contractserviceunits": "ContractServiceUnits", "services": "Services",
            "contractserviceadjustments": "ContractServiceAdjustments"}
CHILDREN = {"services": "ContractServices", "serviceunits": "ContractServiceUnits",
            "serviceadjustments": "ContractServiceAdjustments"}
LABEL = {"Companies": "Company", "Contacts": "Contact", "Contracts": "Contract", "ContractServices": "ContractService",
         "ContractServiceUnits": "ContractServiceUnit", "Services": "Service",
         "ContractServiceAdjustments": "ContractServiceAdjustment"}
OPS = {"eq", "noteq", "gt", "gte", "lt", "lte", "beginswith", "endswith", "contains", "exist", "notexist", "in",
       "notin", "and", "or"}
_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
ZONE = "/ATServicesRest/"


def _ci(d):
    return {str(k).lower(): v for k, v in d.items()} if isinstance(d, dict) else {}


class AutotaskApp(MockApp):
    name = "autotask"

    def default_config(self):
        return {
            "integration_code": "BILLRECON-AT-TRACKING",
            "username": "billrecon-api@example.com",
            "secret": "billrecon-at-secret",
            "zone_url": "",              # empty: this mock's own http://host:port/ATServicesRest/
            "requests_per_hour": 10000,  # rolling 60 minutes, every API call
            "latency_from": 0.5,         # share of requests_per_hour after which latency_s is added
            "latency_s": 0.0,
            "max_threads": 3,            # concurrent requests per entity endpoint
            "max_records": 500,
            "require_filter": True,
            "utc_offset_minutes": 0,
        }

    # -- data -------------------------------------------------------------------------
    def reset_data(self):
        ds = self.dataset
        B = ds.base_epoch
        self.window = getattr(self, "window", RateWindow())
        self.window.clear()
        self.inflight = collections.Counter()
        self.inflight_lock = threading.Lock()
        contracts = {c.id: c for c in ds.at_contracts}
        units = []
        for cs in ds.at_contract_services:
            c = contracts[cs.contract_id]
            for k, start, end, n in autotask_unit_periods(c, cs, B):
                units.append(AtUnit(cs.id * 1000 + k, c.id, cs.id, cs.service_id, start, end, n, cs.unit_price,
                                    cs.unit_cost, end + 86400 if end + 86400 <= B else None))
        units.sort(key=lambda u: u.id)
        self.company_of = {c.cw_company_id: c.id for c in ds.at_companies}
        self.tables = {
            "Companies": Table(ds.at_companies, self.render_company),
            "Contacts": Table([x._replace(id=x.at_contact_id) for x in ds.contacts if x.at_contact_id is not None],
                              self.render_contact),
            "Contracts": Table(ds.at_contracts, self.render_contract),
            "ContractServices": Table(ds.at_contract_services, self.render_cs),
            "ContractServiceUnits": Table(units, self.render_unit),
            "Services": Table(ds.at_services, self.render_service),
            "ContractServiceAdjustments": Table([], lambda x: x),
        }

    def t(self, epoch, millis=False):
        if epoch is None:
            return None
        return zoneless(epoch + 60 * int(self.config["utc_offset_minutes"]), millis)

    def render_company(self, c):
        return {"id": c.id, "additionalAddressInformation": "", "address1": c.address, "address2": None,
                "alternatePhone1": "", "alternatePhone2": "", "city": c.city, "companyCategoryID": 1,
                "companyName": c.name, "companyNumber": c.number, "companyType": c.type, "countryID": 237,
                "createDate": self.t(c.create_date + (c.id % 1000) / 1000.0, True), "createdByResourceID": 29682885,
                "fax": "", "isActive": bool(c.active), "isClientPortalActive": False, "isTaskFireActive": False,
                "isTaxExempt": False, "lastActivityDate": self.t(c.last_activity + 0.5, True),
                "lastTrackedModifiedDateTime": self.t(c.last_modified + 0.25, True), "ownerResourceID": 29682885,
                "parentCompanyID": None, "phone": c.phone, "postalCode": c.postal, "state": c.state,
                "webAddress": c.web, "userDefinedFields": []}

    def render_contact(self, x):
        """ContactModel: up to three addresses (emailAddress, emailAddress2,
        emailAddress3); isActive is an integer, 1 or 0."""
        emails = list(x.emails) + [None] * 3
        return {"id": x.id, "companyID": self.company_of.get(x.company_id), "companyLocationID": None,
                "firstName": x.first_name, "lastName": x.last_name, "middleInitial": None, "title": x.title,
                "emailAddress": emails[0], "emailAddress2": emails[1], "emailAddress3": emails[2],
                "phone": x.phone, "extension": None, "mobilePhone": None, "faxNumber": None,
                "isActive": 0 if x.inactive else 1, "primaryContact": False, "isOptedOutFromBulkEmail": False,
                "createDate": self.t(x.date_entered + (x.id % 1000) / 1000.0, True),
                "lastActivityDate": self.t(x.last_updated, True),
                "lastModifiedDate": self.t(x.last_updated + 0.5, True), "externalID": None,
                "userDefinedFields": []}

    def render_contract(self, c):
        return {"id": c.id, "billingPreference": 2, "billToCompanyContactID": None, "billToCompanyID": None,
                "companyID": c.company_id, "contactID": None, "contactName": None, "contractCategory": 1,
                "contractExclusionSetID": None, "contractName": c.name, "contractNumber": c.number,
                "contractPeriodType": c.period_type, "contractType": 7, "description": "",
                "endDate": self.t(c.end), "isDefaultContract": bool(c.is_default),
                "lastModifiedDateTime": self.t(c.last_modified + 0.75, True), "opportunityID": None,
                "purchaseOrderNumber": "", "renewedContractID": None, "serviceLevelAgreementID": 1,
                "setupFee": float(c.setup_fee), "startDate": self.t(c.start), "status": c.status,
                "timeReportingRequiresStartAndStopTimes": 1, "userDefinedFields": []}

    def render_cs(self, cs):
        return {"id": cs.id, "contractID": cs.contract_id, "serviceID": cs.service_id,
                "unitPrice": float(cs.unit_price), "unitCost": float(cs.unit_cost),
                "adjustedPrice": float(cs.unit_price), "internalCurrencyUnitPrice": float(cs.unit_price),
                "internalCurrencyAdjustedPrice": float(cs.unit_price), "invoiceDescription": cs.invoice_description,
                "internalDescription": cs.internal_description, "quoteItemID": None, "userDefinedFields": []}

    def render_unit(self, u):
        price = round(u.units * float(u.unit_price), 2)
        return {"id": u.id, "approveAndPostDate": self.t(u.posted), "contractID": u.contract_id,
                "contractServiceID": u.cs_id, "cost": round(u.units * float(u.unit_cost), 2),
                "endDate": self.t(u.end), "internalCurrencyPrice": price, "organizationalLevelAssociationID": None,
                "price": price, "serviceID": u.service_id, "startDate": self.t(u.start), "units": u.units,
                "vendorCompanyID": None, "userDefinedFields": []}

    def render_service(self, s):
        return {"id": s.id, "billingCodeID": 29682801, "catalogNumberPartNumber": None, "createDate": None,
                "creatorResourceID": None, "description": s.description, "invoiceDescription": s.name,
                "isActive": bool(s.active), "lastModifiedDate": self.t(s.last_modified + 0.125, True),
                "manufacturerServiceProvider": None, "manufacturerServiceProviderProductNumber": None,
                "markupRate": None, "name": s.name, "periodType": s.period_type, "serviceLevelAgreementID": None,
                "sku": None, "unitCost": float(s.cost), "unitPrice": float(s.price), "updateResourceID": None,
                "url": None, "vendorCompanyID": None, "userDefinedFields": []}

    # -- responses ------------------------------------------------------------------------
    def error_response(self, status, message, code=None, retry_after=None):
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return Response.json({"errors": [message]}, status, headers)

    def unauthorized_response(self, req):
        return self.error_response(401, "Unauthorized: the API user's credentials are not valid.")

    def rate_limit_response(self, req, retry_after):
        return self.error_response(429, "The request threshold for this database has been exceeded; requests are "
                                        "blocked until the rolling 60-minute window drains.", retry_after=retry_after)

    # -- request entry: thresholds and thread limits --------------------------------------
    def handle(self, req):
        low = req.path.lower()
        if low.startswith("/_mock") or "zoneinformation" in low or "versioninformation" in low:
            return super().handle(req)
        started = time.time()
        limit = int(self.config["requests_per_hour"] or 0)
        n = self.window.hit(3600)
        if limit and n > limit:
            resp = self.rate_limit_response(req, None)
            self.log.add(req, resp, None, started)
            return resp
        if limit and self.config["latency_s"] and n > limit * float(self.config["latency_from"]):
            time.sleep(float(self.config["latency_s"]))
        m = re.search(r"/v1\.0/([a-z]+)", low)
        key = (req.header("ApiIntegrationCode") or "", m.group(1) if m else "")
        with self.inflight_lock:
            self.inflight[key] += 1
            busy = self.inflight[key]
        try:
            mx = int(self.config["max_threads"] or 0)
            if mx and busy > mx:
                resp = self.error_response(429, "Thread threshold exceeded: at most %d concurrent requests per "
                                                "integration and entity." % mx)
                self.log.add(req, resp, None, started)
                return resp
            return super().handle(req)
        finally:
            with self.inflight_lock:
                self.inflight[key] -= 1

    def authenticate(self, req):
        code = req.header("ApiIntegrationCode")
        user = req.header("UserName")
        secret = req.header("Secret")
        if not code or not user or not secret:
            raise ApiError(401, "Missing ApiIntegrationCode, UserName or Secret header.")
        if code != self.config["integration_code"] or user.lower() != self.config["username"].lower() \
                or secret != self.config["secret"]:
            raise ApiError(401, "Unauthorized: the API user's credentials are not valid.")

    # -- routes ---------------------------------------------------------------------------
    def register_routes(self):
        V = r"(?i)/atservicesrest/v1\.0"
        self.route("GET", V + r"/zoneinformation", self.h_zone, auth=False)
        self.route("GET", r"(?i)/atservicesrest/versioninformation", self.h_version, auth=False)
        self.route("GET", V + r"/thresholdinformation", self.h_threshold)
        self.route(("GET", "POST"), V + r"/(?P<entity>[a-z]+)/query", self.h_query)
        self.route(("GET", "POST"), V + r"/(?P<entity>[a-z]+)/query/count", self.h_count)
        self.route("GET", V + r"/(?P<entity>[a-z]+)/entityinformation", self.h_info)
        self.route("GET", V + r"/(?P<entity>[a-z]+)/entityinformation/fields", self.h_fields)
        self.route("POST", V + r"/contractserviceadjustments", self.h_adjust)
        self.route("POST", V + r"/contracts/(?P<pid>-?\d+)/serviceadjustments", self.h_adjust)
        self.route("GET", V + r"/contracts/(?P<pid>-?\d+)/(?P<child>services|serviceunits|serviceadjustments)",
                   self.h_children)
        self.route("GET", V + r"/(?P<entity>[a-z]+)/(?P<id>-?\d+)", self.h_item)

    def zone_url(self, req):
        return self.config["zone_url"] or (req.host_url + ZONE)

    def h_zone(self, req):
        user = req.param("user") or ""
        if user.lower() != self.config["username"].lower():
            raise ApiError(404, "Zone information could not be determined for user %s." % user)
        host = urllib.parse.urlsplit(self.zone_url(req)).netloc
        return Response.json({"zoneName": "America West", "url": self.zone_url(req), "webUrl": "http://%s/" % host,
                              "ci": 5, "dataBaseType": "Production", "ciLevel": 5})

    def h_version(self, req):
        return Response.json({"apiVersions": ["1.0"]})

    def h_threshold(self, req):
        return Response.json({"externalRequestThreshold": int(self.config["requests_per_hour"]),
                              "requestThresholdTimeframe": 60,
                              "currentTimeframeRequestCount": self.window.count(3600)})

    def entity(self, req):
        name = ENTITIES.get(req.vars["entity"].lower())
        if name is None:
            raise ApiError(404, "The entity %s is not supported by this mock." % req.vars["entity"])
        return name

    # -- queries --------------------------------------------------------------------------
    def search_of(self, req):
        """The query model: POST body, or ?search= (and ?paging= for next pages)."""
        if req.method == "POST":
            body = req.json()
        else:
            text = req.param("search")
            if text is None:
                raise ApiError(400, "The search parameter is required.")
            try:
                body = json.loads(text)
            except ValueError:
                raise ApiError(400, "The search parameter is not valid JSON.")
        if not isinstance(body, dict):
            raise ApiError(400, "The query must be a JSON object.")
        return _ci(body)

    def compile(self, entity, filters):
        if filters is None or (isinstance(filters, list) and not filters):
            if self.config["require_filter"]:
                raise ApiError(500, "A query must contain at least one filter (use {\"op\": \"exist\", "
                                    "\"field\": \"id\"} to return every %s)." % LABEL[entity])
            return lambda rec: True
        if not isinstance(filters, list):
            raise ApiError(400, "filter must be an array.")
        fields = self.field_names(entity)
        preds = [self.compile_item(entity, f, fields) for f in filters]
        return lambda rec: all(p(rec) for p in preds)

    def field_names(self, entity):
        table = self.tables[entity]
        sample = table.peek(table.ids[0]) if table.ids else self.blank(entity)
        return {k.lower(): k for k in sample}

    def blank(self, entity):
        if entity == "ContractServiceAdjustments":
            return {k: None for k in ("id", "contractID", "contractServiceID", "serviceID", "effectiveDate",
                                      "unitChange", "adjustedUnitPrice", "adjustedUnitCost", "allowRepeatService",
                                      "quoteItemID", "contractServiceBundleID")}
        return {"id": None}

    def compile_item(self, entity, item, fields):
        item = _ci(item)
        op = str(item.get("op", "")).lower()
        if op not in OPS:
            raise ApiError(500, "Unknown filter operator %r." % item.get("op"))
        if op in ("and", "or"):
            subs = [self.compile_item(entity, x, fields) for x in (item.get("items") or [])]
            if op == "and":
                return lambda rec: all(p(rec) for p in subs)
            return lambda rec: any(p(rec) for p in subs)
        if item.get("udf"):
            return lambda rec: False        # no user-defined fields in this mock
        fname = str(item.get("field", ""))
        key = fields.get(fname.lower())
        if key is None:
            raise ApiError(500, "Unable to find %s in the %s entity." % (fname, LABEL[entity]))
        value = item.get("value")
        if op == "exist":
            return lambda rec: rec.get(key) not in (None, "")
        if op == "notexist":
            return lambda rec: rec.get(key) in (None, "")
        if op in ("in", "notin"):
            values = value if isinstance(value, list) else [value]
            neg = op == "notin"
            return lambda rec: any(_cmp(rec.get(key), v) == 0 for v in values) != neg
        if op in ("beginswith", "endswith", "contains"):
            v = str(value).lower()
            if op == "beginswith":
                return lambda rec: str(rec.get(key) or "").lower().startswith(v)
            if op == "endswith":
                return lambda rec: str(rec.get(key) or "").lower().endswith(v)
            return lambda rec: v in str(rec.get(key) or "").lower()
        test = {"eq": lambda c: c == 0, "noteq": lambda c: c != 0, "gt": lambda c: c > 0, "gte": lambda c: c >= 0,
                "lt": lambda c: c < 0, "lte": lambda c: c <= 0}[op]

        def pred(rec):
            c = _cmp(rec.get(key), value)
            if c is None:
                return op == "noteq"
            return test(c)
        return pred

    def run_query(self, req, entity, ids, body, after_index=0):
        """Returns the response of one page of a query over ids (sorted)."""
        table = self.tables[entity]
        pred = self.compile(entity, body.get("filter"))
        size = body.get("maxrecords", self.config["max_records"])
        try:
            size = int(size)
        except (TypeError, ValueError):
            raise ApiError(400, "MaxRecords must be an integer.")
        if size < 1 or size > int(self.config["max_records"]):
            raise ApiError(500, "MaxRecords must be between 1 and %d." % int(self.config["max_records"]))
        include = [str(f).lower() for f in (body.get("includefields") or [])]
        paging = None
        if req.method == "GET" and req.param("paging"):
            try:
                paging = _ci(json.loads(req.param("paging")))
            except ValueError:
                raise ApiError(400, "paging is not valid JSON.")
        start = 0
        if paging is not None:
            nxt = paging.get("nextids") or []
            prev = paging.get("previousids") or []
            if nxt:
                start = bisect.bisect_right(ids, nxt[-1])
            elif prev:
                start = bisect.bisect_left(ids, prev[0])
            if req.vars.get("_loop"):
                start = 0
        items = []
        more = False
        matched_ids = []
        for rid in ids[start:]:
            rec = table.peek(rid)
            if not pred(rec):
                continue
            if len(items) == size:
                more = True
                break
            items.append(rec)
            matched_ids.append(rid)
        if include:
            items = [{k: v for k, v in r.items() if k.lower() in include or k == "id"} for r in items]
        base = self.zone_url(req).rstrip("/") + "/V1.0/%s/query" % entity
        search = {k: v for k, v in (req.json() if req.method == "POST" else json.loads(req.param("search"))).items()}
        q_search = json.dumps(search, separators=(",", ":"))
        next_url = prev_url = None
        if more and matched_ids:
            next_url = base + "?" + urllib.parse.urlencode(
                {"paging": json.dumps({"pageSize": size, "previousIds": [matched_ids[0]], "nextIds": [matched_ids[-1]]},
                                      separators=(",", ":")), "search": q_search})
        if start > 0 and matched_ids:
            # The previous page: the size matching records before this page.
            before = []
            for rid in reversed(ids[:start]):
                if pred(table.peek(rid)):
                    before.append(rid)
                    if len(before) == size:
                        break
            if before:
                prev_url = base + "?" + urllib.parse.urlencode(
                    {"paging": json.dumps({"pageSize": size, "previousIds": [before[-1]], "nextIds": []},
                                          separators=(",", ":")), "search": q_search})
        return Response.json({"items": items, "pageDetails": {"count": len(items), "requestCount": size,
                                                             "prevPageUrl": prev_url, "nextPageUrl": next_url}})

    def h_query(self, req):
        entity = self.entity(req)
        body = self.search_of(req)
        return self.run_query(req, entity, self.tables[entity].ids, body)

    def h_count(self, req):
        entity = self.entity(req)
        body = self.search_of(req)
        pred = self.compile(entity, body.get("filter"))
        table = self.tables[entity]
        return Response.json({"queryCount": sum(1 for rid in table.ids if pred(table.peek(rid)))})

    def h_item(self, req):
        entity = self.entity(req)
        table = self.tables[entity]
        rid = int(req.vars["id"])
        return Response.json({"item": copy.deepcopy(table.peek(rid)) if rid in table else None})

    def h_children(self, req):
        pid = int(req.vars["pid"])
        if pid not in self.tables["Contracts"]:
            raise ApiError(404, "Contract %d was not found." % pid)
        entity = CHILDREN[req.vars["child"].lower()]
        table = self.tables[entity]
        items = [table.peek(rid) for rid in table.ids if table.peek(rid).get("contractID") == pid]
        return Response.json({"items": items, "pageDetails": {"count": len(items), "requestCount": 500,
                                                             "prevPageUrl": None, "nextPageUrl": None}})

    # -- entity information -------------------------------------------------------------
    PICKLISTS = {
        ("Companies", "companyType"): AT_COMPANY_TYPES,
        ("Contracts", "contractPeriodType"): AT_PERIODS,
        ("Contracts", "contractType"): {1: "Time & Materials", 3: "Fixed Price", 4: "Block Hours",
                                        6: "Retainer", 7: "Recurring Service", 8: "Per Ticket"},
        ("Contracts", "status"): {0: "Inactive", 1: "Active"},
        ("Contracts", "contractCategory"): {1: "Standard", 2: "Managed Services"},
        ("Services", "periodType"): AT_PERIODS,
    }

    def h_info(self, req):
        entity = self.entity(req)
        return Response.json({"info": {"name": LABEL[entity], "canCreate": entity == "ContractServiceAdjustments",
                                       "canDelete": False, "canQuery": True,
                                       "canUpdate": entity not in ("ContractServiceAdjustments", "ContractServiceUnits"),
                                       "userAccessForCreate": "All", "userAccessForDelete": "None",
                                       "userAccessForQuery": "All", "userAccessForUpdate": "All",
                                       "hasUserDefinedFields": entity in ("Companies", "Contracts"),
                                       "supportsWebhookCallouts": entity == "Companies"}})

    def h_fields(self, req):
        entity = self.entity(req)
        table = self.tables[entity]
        sample = table.peek(table.ids[0]) if table.ids else self.blank(entity)
        out = []
        for k, v in sample.items():
            if k == "userDefinedFields":
                continue
            pick = self.PICKLISTS.get((entity, k))
            dtype = ("integer" if isinstance(v, int) and not isinstance(v, bool) else "double" if isinstance(v, float)
                     else "boolean" if isinstance(v, bool) else "datetime" if isinstance(v, str) and _TIME_RE.match(v)
                     else "string")
            f = {"name": k, "dataType": dtype, "length": 0 if dtype != "string" else 100, "isRequired": k == "id",
                 "isReadOnly": k == "id", "isQueryable": True, "isReference": k.endswith("ID") and k != "id",
                 "referenceEntityType": "", "isPickList": bool(pick), "picklistValues": None,
                 "picklistParentValueField": "", "isSupportedWebhookField": False}
            if pick:
                f["picklistValues"] = [{"value": str(code), "label": label, "isDefaultValue": n == 0, "sortOrder": n,
                                        "parentValue": "", "isActive": True, "isSystem": True}
                                       for n, (code, label) in enumerate(sorted(pick.items()))]
            out.append(f)
        return Response.json({"fields": out})

    # -- write-back: service adjustments -------------------------------------------------------
    def h_adjust(self, req):
        body = req.json()
        if not isinstance(body, dict):
            raise ApiError(400, "The body must be a ContractServiceAdjustment object.")
        b = _ci(body)
        if req.vars.get("pid") is not None:
            b.setdefault("contractid", int(req.vars["pid"]))
        for k in ("contractid", "contractserviceid", "serviceid", "effectivedate", "unitchange"):
            if b.get(k) is None:
                raise ApiError(500, "%s is required." % {"contractid": "contractID", "contractserviceid":
                                                         "contractServiceID", "serviceid": "serviceID",
                                                         "effectivedate": "effectiveDate",
                                                         "unitchange": "unitChange"}[k])
        change = b["unitchange"]
        if isinstance(change, bool) or not isinstance(change, (int, float)) or int(change) != change:
            raise ApiError(500, "unitChange must be a whole number, not %r." % (change,))
        change = int(change)
        try:
            csid, cid, sid = int(b["contractserviceid"]), int(b["contractid"]), int(b["serviceid"])
        except (TypeError, ValueError):
            raise ApiError(500, "contractID, contractServiceID and serviceID must be integers.")
        services = self.tables["ContractServices"]
        if csid not in services:
            raise ApiError(500, "ContractService %d does not exist." % csid)
        cs = services.peek(csid)
        if cs.get("contractID") != cid:
            raise ApiError(500, "ContractService %d does not belong to contract %d." % (csid, cid))
        if cs.get("serviceID") != sid:
            raise ApiError(500, "serviceID %d does not match the contract service's service %s."
                           % (sid, cs.get("serviceID")))
        try:
            eff = parse_time(str(b["effectivedate"])[:10])
        except ValueError:
            raise ApiError(500, "effectiveDate %r is not a date." % b["effectivedate"])
        contract = self.tables["Contracts"].peek(cid)
        if eff < parse_time(contract["startDate"][:10]) or eff > parse_time(contract["endDate"][:10]):
            raise ApiError(500, "effectiveDate must lie within the contract's dates.")
        price = b.get("adjustedunitprice")
        if price is not None and (isinstance(price, bool) or not isinstance(price, (int, float))):
            raise ApiError(500, "adjustedUnitPrice must be a number.")
        units = self.tables["ContractServiceUnits"]
        touched = [uid for uid in units.ids if units.peek(uid).get("contractServiceID") == csid
                   and parse_time(units.peek(uid)["endDate"][:10]) >= eff]
        for uid in touched:
            if (units.peek(uid).get("units") or 0) + change < 0:
                raise ApiError(500, "The adjustment would leave contract service %d with negative units." % csid)
        for uid in touched:
            rec = units.materialize(uid)
            rec["units"] = int(rec["units"]) + change
            up = float(price) if price is not None else float(cs.get("unitPrice") or 0)
            rec["price"] = rec["internalCurrencyPrice"] = round(rec["units"] * up, 2)
            rec["cost"] = round(rec["units"] * float(cs.get("unitCost") or 0), 2)
        adj = self.tables["ContractServiceAdjustments"]
        aid = adj.next_id() if adj.ids else 7001
        adj.put(aid, {"id": aid, "contractID": cid, "contractServiceID": csid, "serviceID": sid,
                      "effectiveDate": self.t(eff), "unitChange": change,
                      "adjustedUnitPrice": float(price) if price is not None else None,
                      "adjustedUnitCost": b.get("adjustedunitcost"), "allowRepeatService": bool(b.get("allowrepeatservice")),
                      "quoteItemID": b.get("quoteitemid"), "contractServiceBundleID": None})
        return Response.json({"itemId": aid})

    # -- control ---------------------------------------------------------------------------
    ALIASES = {"company": "Companies", "companies": "Companies", "contact": "Contacts", "contacts": "Contacts",
               "contract": "Contracts", "contracts": "Contracts",
               "contractservice": "ContractServices", "contractservices": "ContractServices",
               "contract_service": "ContractServices", "unit": "ContractServiceUnits",
               "contractserviceunit": "ContractServiceUnits", "contractserviceunits": "ContractServiceUnits",
               "service": "Services", "services": "Services", "adjustment": "ContractServiceAdjustments",
               "adjustments": "ContractServiceAdjustments"}

    def mutate(self, change):
        change = dict(change)
        change["entity"] = self.ALIASES.get(str(change.get("entity", "")).lower(), change.get("entity"))
        now = self.clock.now()

        def stamp(entity, rec):
            if entity == "Companies":
                rec["lastTrackedModifiedDateTime"] = self.t(now, True)
                rec["lastActivityDate"] = self.t(now, True)
            elif entity == "Contracts":
                rec["lastModifiedDateTime"] = self.t(now, True)
            elif entity in ("Services", "Contacts"):
                rec["lastModifiedDate"] = self.t(now, True)
            elif entity == "ContractServiceUnits":
                try:
                    rec["price"] = rec["internalCurrencyPrice"] = round(int(rec["units"]) * float(
                        self.tables["ContractServices"].peek(rec["contractServiceID"]).get("unitPrice") or 0), 2)
                except (TypeError, ValueError, KeyError):
                    pass

        def new_record(entity, rid, record):
            table = self.tables[entity]
            rec = copy.deepcopy(table.peek(table.ids[0])) if table.ids else self.blank(entity)
            if entity == "Companies":
                rec.update(createDate=self.t(now, True), lastTrackedModifiedDateTime=self.t(now, True),
                           lastActivityDate=self.t(now, True))
            elif entity == "Contracts":
                rec["lastModifiedDateTime"] = self.t(now, True)
            return rec

        def on_remove(entity, rid):
            if entity == "Contracts":
                for child in ("ContractServices", "ContractServiceUnits"):
                    t = self.tables[child]
                    for cid in [x for x in t.ids if t.peek(x).get("contractID") == rid]:
                        t.remove(cid)
            elif entity == "ContractServices":
                t = self.tables["ContractServiceUnits"]
                for uid in [x for x in t.ids if t.peek(x).get("contractServiceID") == rid]:
                    t.remove(uid)

        return table_mutate(change, self.tables, None, stamp, new_record, on_remove)

    def data_entities(self):
        def lister(table):
            def f(req):
                ids = table.ids
                if req.param("id"):
                    ids = [int(x) for x in req.param("id").split(",") if int(x) in table]
                return [table.peek(i) for i in ids]
            return f
        names = {"companies": "Companies", "contacts": "Contacts", "contracts": "Contracts",
                 "contract_services": "ContractServices",
                 "units": "ContractServiceUnits", "services": "Services", "adjustments": "ContractServiceAdjustments"}
        return {k: lister(self.tables[v]) for k, v in names.items()}

    def health(self):
        return {"records": {k: len(v) for k, v in self.tables.items()},
                "requests_this_hour": self.window.count(3600)}

    # -- faults ----------------------------------------------------------------------------
    def on_empty_page(self, req, resp):
        if resp.status == 200:
            try:
                body = resp.json_body()
            except ValueError:
                return resp
            if isinstance(body, dict) and "items" in body:
                body["items"] = []
                body.setdefault("pageDetails", {})["count"] = 0
                resp.body = Response.json(body).body   # nextPageUrl stays
        return resp

    def before_loop(self, req):
        req.vars["_loop"] = True

    def on_loop(self, req, resp):
        # nextPageUrl points back at the first page.
        if resp.status != 200:
            return resp
        body = resp.json_body()
        pd = body.get("pageDetails") or {}
        if pd.get("nextPageUrl") or req.param("paging"):
            url = pd.get("nextPageUrl") or (self.zone_url(req).rstrip("/") + req.raw_path[len("/ATServicesRest"):]
                                            if req.raw_path.lower().startswith("/atservicesrest") else req.raw_path)
            split = urllib.parse.urlsplit(url)
            q = dict(urllib.parse.parse_qsl(split.query))
            size = body.get("pageDetails", {}).get("requestCount", 500)
            q["paging"] = json.dumps({"pageSize": size, "previousIds": [], "nextIds": [-1]}, separators=(",", ":"))
            if "search" not in q:
                q["search"] = json.dumps(req.json() if req.method == "POST" else {}, separators=(",", ":"))
            pd["nextPageUrl"] = urllib.parse.urlunsplit((split.scheme, split.netloc, split.path,
                                                         urllib.parse.urlencode(q), ""))
            body["pageDetails"] = pd
            return Response.json(body, resp.status)
        return resp


def _as_time(v):
    if isinstance(v, str) and _TIME_RE.match(v.strip()):
        try:
            return parse_time(v.strip())
        except ValueError:
            return None
    return None


def _cmp(a, b):
    """-1 / 0 / 1 comparing a record value with a filter value; None when not comparable."""
    if a is None:
        return None if b is not None else 0
    if isinstance(a, bool) or isinstance(b, bool):
        av = a if isinstance(a, bool) else str(a).strip().lower() in ("true", "1")
        bv = b if isinstance(b, bool) else str(b).strip().lower() in ("true", "1")
        return (av > bv) - (av < bv)
    if isinstance(a, (int, float)):
        try:
            bv = float(b)
        except (TypeError, ValueError):
            return None
        return (a > bv) - (a < bv)
    ta, tb = _as_time(a), _as_time(b)
    if ta is not None and tb is not None:
        return (ta > tb) - (ta < tb)
    sa, sb = str(a).lower(), str(b).lower()
    return (sa > sb) - (sa < sb)
