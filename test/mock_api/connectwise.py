"""ConnectWise Manage (PSA) REST API 3.0 mock (vendor-apis.md section 1).

Base path /{codebase}/apis/3.0 (any codebase, e.g. v4_6_release).
Auth: Authorization: Basic base64("{company}+{public}:{private}") plus a
clientId header (name case-insensitive); anything else -> 401
{"code":"Unauthorized","message":...}.

GET /company/companies, /company/contacts (communicationItems hold the
e-mail addresses), /finance/agreements (+ /{id}/additions), /procurement/catalog,
each with /count and /{id}.

Lists are bare JSON arrays paged with page (1-based) + pageSize (default 25,
max 1000, larger -> 400) and an RFC 8288 Link header with absolute URLs:
rel="next"/"last" while more pages exist, rel="first"/"prev" after page 1.
With the request header `pagination-type: forward-only`, Link carries only
rel="next" with a pageId=<last id> cursor and disappears on the last page.
conditions / orderBy / fields work as described in cw_conditions.py.
"""

import bisect
import json
import math
import time
import urllib.parse

import cw_conditions
from framework import ApiError, MockApp, Response, Table, dumps, iso_z, parse_basic, set_path
from msp_generator import AGREEMENT_TYPES, BILLING_CYCLES

BASE_PLACEHOLDER = "__CW_BASE__"
PREFIX = r"/[^/]+/apis/3\.0"

COMPANY_TYPES = {"Client": 1, "Vendor": 2, "Owner": 3, "Prospect": 4}
COMPANY_STATUSES = {"Active": 1, "Inactive": 2}
_CATEGORY_IDS = {"Licensing": 51, "Managed Services": 52, "Security": 53, "Backup": 54, "Network": 55,
                 "Hosting": 56, "Adjustments": 57}
CURRENCY = {"id": 7, "symbol": "$", "currencyCode": "USD", "decimalSeparator": ".", "numberOfDecimals": 2,
            "thousandsSeparator": ",", "negativeParenthesesFlag": False, "displaySymbolFlag": True,
            "currencyIdentifier": "USD", "displayIdFlag": False, "rightAlign": False, "name": "US Dollars"}


def _ref(rid, name, href_kind, extra=None, key="name"):
    r = {"id": rid, key: name, "_info": {href_kind + "_href": "%s/%s/%s" % (BASE_PLACEHOLDER, _HREF[href_kind], rid)}}
    if extra:
        r.update(extra)
    return r


_HREF = {"company": "company/companies", "status": "company/companies/statuses", "type": "finance/agreements/types",
         "product": "procurement/catalog", "contact": "company/contacts", "site": "company/companies/sites",
         "billingCycle": "finance/billingCycles", "country": "company/countries", "territory": "system/locations",
         "terms": "finance/billingTerms", "currency": "finance/currencies", "agreement": "finance/agreements",
         "location": "system/locations", "department": "system/departments", "vendor": "company/companies",
         "category": "procurement/categories", "subcategory": "procurement/subcategories",
         "uom": "procurement/unitOfMeasures", "manufacturer": "procurement/manufacturers",
         "invoiceTemplate": "finance/invoiceTemplateSetups", "companyType": "company/companies/types",
         "agreementType": "finance/agreements/types"}


class ConnectWiseApp(MockApp):
    name = "connectwise"

    def default_config(self):
        return {
            "company": "billrecon",
            "public_key": "pubkey",
            "private_key": "privkey",
            "client_id": "00000000-0000-4000-8000-000000000001",
            "default_page_size": 25,
            "max_page_size": 1000,
            "link_on_last_page": True,      # first/prev links on the last page (navigable mode)
            "api_version": "2025.1",
        }

    # -- data ---------------------------------------------------------------------
    def reset_data(self):
        ds = self.dataset
        self.catalog_by_id = {c.id: c for c in ds.catalog}
        self.companies_by_id = {c.id: c for c in ds.companies}
        self.agreement_rows = {a.id: a for a in ds.agreements}
        self.companies = Table(ds.companies, self.render_company)
        self.agreements = Table(ds.agreements, self.render_agreement)
        self.additions = Table(ds.additions, self.render_addition)
        self.catalog = Table(ds.catalog, self.render_catalog)
        self.contacts = Table(ds.contacts, self.render_contact)
        self.by_agreement = {}
        for ad in ds.additions:
            self.by_agreement.setdefault(ad.agreement_id, []).append(ad.id)
        self.entity_tables = {"company": self.companies, "agreement": self.agreements, "addition": self.additions,
                              "catalog": self.catalog, "contact": self.contacts}
        self.known_fields = {}
        for ent, table in self.entity_tables.items():
            keys = set()
            sample = [table.peek(i) for i in table.ids[:50]]
            if not sample:
                sample = [self._blank(ent)]
            for rec in sample:
                keys.update(rec)
            keys.update(self._optional_fields(ent))
            self.known_fields[ent] = keys

    @staticmethod
    def _optional_fields(entity):
        return {
            "company": {"website", "dateDeleted", "deletedBy", "parentCompany", "billToCompany", "annualRevenue",
                        "numberOfEmployees", "faxNumber", "accountNumber", "customFields"},
            "agreement": {"endDate", "dateCancelled", "reasonCancelled", "parentAgreement", "billAmount",
                          "customFields", "billStartDate", "workOrder", "internalNotes"},
            "addition": {"unitPrice", "cancelledDate", "unitCost", "invoiceDescription", "opportunity",
                         "serialNumber", "purchaseItemFlag", "specialOrderFlag"},
            "catalog": {"vendorSku", "manufacturerPartNumber", "customerDescription", "notes"},
            "contact": {"company", "lastName", "title", "site", "communicationItems", "inactiveFlag", "types",
                        "defaultPhoneType", "defaultPhoneNbr"},
        }[entity]

    def _blank(self, entity):
        return {"id": 0, "_info": {}}

    def _info(self, entered, last, updated_by, extra=None):
        info = {"lastUpdated": iso_z(last), "updatedBy": updated_by, "dateEntered": iso_z(entered),
                "enteredBy": "import"}
        if extra:
            info.update(extra)
        return info

    def render_company(self, c):
        d = {
            "id": c.id,
            "identifier": c.identifier,
            "name": c.name,
            "status": _ref(COMPANY_STATUSES.get(c.status, 1), c.status, "status"),
            "addressLine1": c.address,
            "city": c.city,
            "state": c.state,
            "zip": c.zip,
            "country": _ref(1, "United States", "country"),
            "phoneNumber": c.phone,
        }
        if c.website:
            d["website"] = c.website
        d.update({
            "territory": _ref(1, "Main", "territory"),
            "dateAcquired": iso_z(c.date_entered),
            "timeZoneSetup": {"id": 1, "name": "GMT-8/Pacific Time: US & Canada"},
            "leadFlag": False,
            "unsubscribeFlag": False,
            "taxCode": {"id": 11, "name": "Tax-State"},
            "billingTerms": _ref(1, "Net 30", "terms"),
            "billToCompany": _ref(c.id, c.name, "company", {"identifier": c.identifier}),
            "billingSite": _ref(1000 + c.id, "Main", "site"),
            "billingContact": _ref(c.contact_id, c.contact_name, "contact"),
            "invoiceDeliveryMethod": {"id": 1, "name": "E-Mail"},
            "deletedFlag": bool(c.deleted),
        })
        if c.deleted:
            d["dateDeleted"] = iso_z(c.date_deleted or c.last_updated)
            d["deletedBy"] = "jsmith"
        d.update({
            "mobileGuid": "%08x-0000-4000-8000-%012x" % (c.id, c.date_entered),
            "currency": CURRENCY,
            "defaultContact": _ref(c.contact_id, c.contact_name, "contact"),
            "types": [_ref(COMPANY_TYPES.get(c.type, 1), c.type, "companyType")],
            "site": _ref(1000 + c.id, "Main", "site"),
            "_info": self._info(c.date_entered, c.last_updated, c.updated_by, {
                "contacts_href": "%s/company/contacts?conditions=company/id=%d" % (BASE_PLACEHOLDER, c.id),
                "agreements_href": "%s/finance/agreements?conditions=company/id=%d" % (BASE_PLACEHOLDER, c.id),
                "sites_href": "%s/company/companies/%d/sites" % (BASE_PLACEHOLDER, c.id)}),
        })
        return d

    def render_agreement(self, a):
        c = self.companies_by_id.get(a.company_id)
        d = {
            "id": a.id,
            "name": a.name,
            "type": _ref(a.type_id, AGREEMENT_TYPES.get(a.type_id, "Managed Services"), "agreementType"),
            "company": _ref(a.company_id, c.name if c else "", "company", None, "name"),
            "contact": _ref(c.contact_id if c else 0, c.contact_name if c else "", "contact"),
            "site": _ref(1000 + a.company_id, "Main", "site"),
            "location": _ref(2, "Main", "location"),
            "department": _ref(10, "Managed Services", "department"),
            "restrictLocationFlag": False,
            "restrictDepartmentFlag": False,
            "startDate": a.start + "T00:00:00Z",
        }
        if c:
            d["company"]["identifier"] = c.identifier
        if a.end:
            d["endDate"] = a.end + "T00:00:00Z"
        d.update({
            "noEndingDateFlag": bool(a.no_end),
            "cancelledFlag": bool(a.cancelled),
        })
        if a.date_cancelled:
            d["dateCancelled"] = a.date_cancelled + "T00:00:00Z"
            d["reasonCancelled"] = a.reason_cancelled or ""
        next_month = time.gmtime(self.dataset.base_epoch)
        ny, nm = (next_month.tm_year + (next_month.tm_mon // 12)), (next_month.tm_mon % 12 + 1)
        d.update({
            "sla": {"id": 1, "name": "Standard SLA"},
            "workOrder": "",
            "applicationUnits": "Amount",
            "applicationLimit": 0.0,
            "applicationUnlimitedFlag": False,
            "oneTimeFlag": False,
            "coverAgreementTime": True,
            "coverAgreementProduct": False,
            "coverAgreementExpense": False,
            "coverSalesTax": False,
            "carryOverUnused": False,
            "allowOverruns": False,
            "expiredDays": 0,
            "limit": 0,
            "expireWhenZero": False,
            "chargeToFirm": False,
            "employeeCompRate": "Actual",
            "employeeCompNotExceed": "Billing",
            "compHourlyRate": 0.0,
            "compLimitAmount": 0.0,
            "billingCycle": _ref(a.billing_cycle_id, BILLING_CYCLES.get(a.billing_cycle_id, "Monthly"), "billingCycle"),
            "billOneTimeFlag": False,
            "billingTerms": _ref(1, "Net 30", "terms"),
            "invoicingCycle": a.invoicing_cycle,
            "billAmount": float(a.bill_amount),
            "taxable": False,
            "prorateFirstBill": 0.0,
            "billStartDate": a.start + "T00:00:00Z",
            "taxCode": {"id": 11, "name": "Tax-State"},
            "restrictDownPayment": False,
            "prorateFlag": bool(a.prorate),
            "invoiceDescription": a.name,
            "topComment": False,
            "bottomComment": False,
            "invoiceTemplate": _ref(1, "Agreement Invoice", "invoiceTemplate"),
            "billTime": "Billable",
            "billExpenses": "Billable",
            "billProducts": "Billable",
            "billableTimeInvoiceFlag": True,
            "billableExpenseInvoiceFlag": True,
            "billableProductInvoiceFlag": True,
            "currency": CURRENCY,
            "periodType": "Current",
            "autoInvoiceFlag": False,
            "agreementStatus": a.status,
            "customFields": [{"id": 5, "caption": "Contract Owner", "type": "Text", "entryMethod": "EntryField",
                              "numberOfDecimals": 0}],
            "_info": self._info(a.date_entered, a.last_updated, a.updated_by, {
                "additions_href": "%s/finance/agreements/%d/additions" % (BASE_PLACEHOLDER, a.id)}),
        })
        if a.status == "Active":
            d["nextInvoiceDate"] = "%04d-%02d-01" % (ny, nm)
        return d

    def render_addition(self, x):
        item = self.catalog_by_id.get(x.product_id)
        a = self.agreement_rows.get(x.agreement_id)
        d = {
            "id": x.id,
            "product": _ref(x.product_id, item.identifier if item else "UNKNOWN", "product", None, "identifier"),
            "quantity": float(x.quantity),
            "lessIncluded": 0.0,
        }
        if x.unit_price is not None:
            d["unitPrice"] = float(x.unit_price)
        d["unitCost"] = float(x.unit_cost) if x.unit_cost is not None else 0.0
        d.update({
            "billCustomer": x.bill_customer,
            "effectiveDate": x.effective,
        })
        if x.cancelled:
            d["cancelledDate"] = x.cancelled
        q = float(x.quantity)
        ext_price = round(q * x.unit_price, 2) if x.unit_price is not None else 0.0
        ext_cost = round(q * (x.unit_cost or 0.0), 2)
        d.update({
            "taxableFlag": bool(x.taxable),
            "serialNumber": "",
            "invoiceDescription": x.description,
            "purchaseItemFlag": False,
            "specialOrderFlag": False,
            "agreementId": x.agreement_id,
            "description": x.description,
            "billedQuantity": q,
            "uom": item.uom if item else "Each",
            "extPrice": ext_price,
            "extCost": ext_cost,
            "sequenceNumber": float(x.sequence),
            "margin": round(ext_price - ext_cost, 2),
            "prorateCost": 0.0,
            "proratePrice": 0.0,
            "extendedProrateCost": 0.0,
            "extendedProratePrice": 0.0,
            "prorateCurrentPeriodFlag": bool(x.prorate_current),
            "agreementStatus": a.status if a else "Active",
            "invoiceGrouping": {"id": 1, "name": "Default"},
            "_info": self._info(x.date_entered, x.last_updated, x.updated_by),
        })
        return d

    def render_contact(self, x):
        """A contact (Contact.md): communicationItems carry its e-mail
        addresses (the first "Email", later ones "Private Email") and a phone."""
        c = self.companies_by_id.get(x.company_id)
        items = []
        for k, address in enumerate(x.emails):
            kind = (1, "Email") if k == 0 else (4, "Private Email")
            items.append({"id": x.id * 10 + k + 1, "type": {"id": kind[0], "name": kind[1]}, "value": address,
                          "defaultFlag": k == 0, "domain": address[address.find("@"):] if "@" in address else "",
                          "communicationType": "Email"})
        if x.phone:
            items.append({"id": x.id * 10 + 9, "type": {"id": 2, "name": "Direct"},
                          "value": "".join(ch for ch in x.phone if ch.isdigit()), "extension": "",
                          "defaultFlag": True, "communicationType": "Phone"})
        d = {
            "id": x.id,
            "firstName": x.first_name,
            "lastName": x.last_name,
            "company": _ref(x.company_id, c.name if c else "", "company", {"identifier": c.identifier if c else ""}),
            "site": _ref(1000 + x.company_id, "Main", "site"),
            "inactiveFlag": bool(x.inactive),
            "marriedFlag": False,
            "childrenFlag": False,
            "disablePortalLoginFlag": True,
            "unsubscribeFlag": False,
            "mobileGuid": "%08x-0000-4000-8000-%012x" % (x.id, x.date_entered),
            "defaultBillingFlag": c is not None and c.contact_id == x.id,
            "defaultFlag": c is not None and c.contact_id == x.id,
            "communicationItems": items,
            "types": [{"id": 1, "name": "End User"}],
        }
        if x.title:
            d["title"] = x.title
        if x.phone:
            d["defaultPhoneType"] = "Direct"
            d["defaultPhoneNbr"] = "".join(ch for ch in x.phone if ch.isdigit())
        d["_info"] = self._info(x.date_entered, x.last_updated, "jsmith", {
            "communications_href": "%s/company/contacts/%d/communications" % (BASE_PLACEHOLDER, x.id)})
        return d

    def render_catalog(self, c):
        return {
            "id": c.id,
            "identifier": c.identifier,
            "description": c.description,
            "inactiveFlag": bool(c.inactive),
            "subcategory": _ref(100 + (c.id % 7), c.subcategory, "subcategory"),
            "type": {"id": 3, "name": "Recurring"},
            "productClass": c.product_class,
            "serializedFlag": False,
            "serializedCostFlag": False,
            "phaseProductFlag": False,
            "unitOfMeasure": _ref(1 if c.uom == "Each" else 2, c.uom, "uom"),
            "minStockLevel": 0,
            "price": float(c.price),
            "cost": float(c.cost),
            "priceAttribute": "FixedFee",
            "taxableFlag": False,
            "dropShipFlag": False,
            "specialOrderFlag": False,
            "customerDescription": c.description,
            "manufacturer": _ref(200 + (c.id % 11), c.manufacturer, "manufacturer"),
            "manufacturerPartNumber": c.mpn,
            "vendor": _ref(300 + (c.id % 13), c.vendor, "vendor", {"identifier": c.vendor.replace(" ", "")}),
            "vendorSku": c.mpn,
            "recurringFlag": bool(c.recurring),
            "recurringRevenue": float(c.price),
            "recurringCost": float(c.cost),
            "recurringOneTimeFlag": False,
            "recurringBillCycle": _ref(c.bill_cycle_id, BILLING_CYCLES.get(c.bill_cycle_id, "Monthly"), "billingCycle"),
            "recurringCycleType": "ProrateCycle",
            "calculatedPriceFlag": False,
            "calculatedCostFlag": False,
            "category": _ref(_CATEGORY_IDS.get(c.category, 59), c.category, "category"),
            "_info": {"lastUpdated": iso_z(c.last_updated), "updatedBy": "admin"},
        }

    # -- responses ------------------------------------------------------------------
    def error_response(self, status, message, code=None, retry_after=None):
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        if status in (502, 503, 504, 520, 521, 522, 524):
            # Cloudflare answers these before ConnectWise does: HTML, not JSON.
            body = ("<!DOCTYPE html><html><head><title>%d | api-na.myconnectwise.net | Cloudflare</title></head>"
                    "<body><h1>Error %d</h1><p>%s</p></body></html>" % (status, status, message))
            r = Response(status, body.encode(), headers, content_type="text/html; charset=UTF-8")
            return r
        if code is None:
            code = {400: "InvalidObject", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
                    405: "MethodNotAllowed", 429: "TooManyRequests"}.get(status, "ConnectWiseApi")
        body = {"code": code, "message": message}
        if status == 400:
            body["errors"] = [{"code": "InvalidField", "message": message, "resource": "", "field": ""}]
        return Response.json(body, status, headers)

    def unauthorized_response(self, req):
        return self.error_response(401, "The credentials provided are not valid.", code="Unauthorized")

    def rate_limit_response(self, req, retry_after):
        return self.error_response(429, "Rate limit exceeded. Try again later.", code="TooManyRequests",
                                   retry_after=retry_after)

    def _json(self, req, obj, status=200, headers=None):
        body = dumps(obj).replace(BASE_PLACEHOLDER.encode(), self._api_base(req).encode())
        r = Response(status, body, headers)
        r.set_header("api-current-version", self.config["api_version"])
        return r

    @staticmethod
    def _api_base(req):
        p = req.raw_path
        i = p.find("/apis/3.0")
        return req.host_url + (p[:i + len("/apis/3.0")] if i >= 0 else "")

    # -- auth ---------------------------------------------------------------------------
    def authenticate(self, req):
        cfg = self.config
        creds = parse_basic(req.header("Authorization"))
        if creds is None:
            raise ApiError(401, "Authorization header is missing or is not Basic.", code="Unauthorized")
        user, secret = creds
        company, sep, public = user.partition("+")
        if not sep or company.lower() != str(cfg["company"]).lower() or public != cfg["public_key"] \
                or secret != cfg["private_key"]:
            raise ApiError(401, "The credentials provided are not valid.", code="Unauthorized")
        client_id = req.header("clientId")
        if not client_id:
            raise ApiError(401, "A clientId header is required.", code="Unauthorized")
        if client_id.strip().lower() != str(cfg["client_id"]).lower():
            raise ApiError(401, "The clientId is not recognized.", code="Unauthorized")

    # -- routes ---------------------------------------------------------------------------
    def register_routes(self):
        P = PREFIX
        self.route("GET", P + r"/system/info", self.h_system_info)
        self.route("GET", P + r"/company/companies", lambda r: self.h_list(r, "company"))
        self.route("GET", P + r"/company/companies/count", lambda r: self.h_count(r, "company"))
        self.route("GET", P + r"/company/companies/(?P<id>\d+)", lambda r: self.h_one(r, "company"))
        self.route("GET", P + r"/company/contacts", lambda r: self.h_list(r, "contact"))
        self.route("GET", P + r"/company/contacts/count", lambda r: self.h_count(r, "contact"))
        self.route("GET", P + r"/company/contacts/(?P<id>\d+)", lambda r: self.h_one(r, "contact"))
        self.route("GET", P + r"/finance/agreements", lambda r: self.h_list(r, "agreement"))
        self.route("GET", P + r"/finance/agreements/count", lambda r: self.h_count(r, "agreement"))
        self.route("GET", P + r"/finance/agreements/types", self.h_agreement_types)
        self.route("GET", P + r"/finance/billingCycles", self.h_billing_cycles)
        self.route("GET", P + r"/finance/agreements/(?P<id>\d+)", lambda r: self.h_one(r, "agreement"))
        self.route("GET", P + r"/finance/agreements/(?P<aid>\d+)/additions", lambda r: self.h_list(r, "addition"))
        self.route("POST", P + r"/finance/agreements/(?P<aid>\d+)/additions", self.h_addition_create)
        self.route("GET", P + r"/finance/agreements/(?P<aid>\d+)/additions/count", lambda r: self.h_count(r, "addition"))
        self.route("GET", P + r"/finance/agreements/(?P<aid>\d+)/additions/(?P<id>\d+)", lambda r: self.h_one(r, "addition"))
        self.route(("PATCH",), P + r"/finance/agreements/(?P<aid>\d+)/additions/(?P<id>\d+)", self.h_addition_patch)
        self.route(("PUT",), P + r"/finance/agreements/(?P<aid>\d+)/additions/(?P<id>\d+)", self.h_addition_put)
        self.route(("DELETE",), P + r"/finance/agreements/(?P<aid>\d+)/additions/(?P<id>\d+)", self.h_addition_delete)
        self.route("GET", P + r"/procurement/catalog", lambda r: self.h_list(r, "catalog"))
        self.route("GET", P + r"/procurement/catalog/count", lambda r: self.h_count(r, "catalog"))
        self.route("GET", P + r"/procurement/catalog/(?P<id>\d+)", lambda r: self.h_one(r, "catalog"))

    def h_system_info(self, req):
        return self._json(req, {"version": "v2025.1.99999", "isCloud": True, "serverTimeZone": "Eastern Standard Time",
                                "cloudRegion": "NA"})

    def h_agreement_types(self, req):
        items = [{"id": k, "name": v, "defaultFlag": k == 1, "prefixSuffixOption": "Prefix", "invoicePreSuffix": "",
                  "_info": {"lastUpdated": iso_z(self.dataset.base_epoch - 400 * 86400), "updatedBy": "admin"}}
                 for k, v in sorted(AGREEMENT_TYPES.items())]
        return self._page_of(req, items)

    def h_billing_cycles(self, req):
        items = [{"id": k, "identifier": v, "name": v, "defaultFlag": k == 1,
                  "_info": {"lastUpdated": iso_z(self.dataset.base_epoch - 400 * 86400), "updatedBy": "admin"}}
                 for k, v in sorted(BILLING_CYCLES.items())]
        return self._page_of(req, items)

    # scope of a list: all ids of the entity, or the additions of one agreement
    def _scope(self, req, entity):
        table = self.entity_tables[entity]
        if entity == "addition":
            aid = int(req.vars["aid"])
            if aid not in self.agreements:
                raise ApiError(404, "Agreement with id %d was not found." % aid, code="NotFound")
            return table, sorted(self.by_agreement.get(aid, []))
        return table, table.ids

    def _filters(self, req, entity):
        cond_text = req.param("conditions")
        order_text = req.param("orderBy")
        try:
            cond = cw_conditions.parse(cond_text, self.known_fields[entity]) if cond_text and cond_text.strip() else None
            orderby = cw_conditions.parse_order_by(order_text, self.known_fields[entity]) if order_text else None
        except cw_conditions.ConditionError as e:
            raise ApiError(400, str(e), code="InvalidObject")
        return cond, orderby

    def _paging(self, req):
        try:
            page = int(req.param("page", "1") or 1)
            size = int(req.param("pageSize", str(self.config["default_page_size"])) or self.config["default_page_size"])
        except ValueError:
            raise ApiError(400, "page and pageSize must be integers", code="InvalidObject")
        if size < 1 or size > int(self.config["max_page_size"]):
            raise ApiError(400, "pageSize must be between 1 and %d." % int(self.config["max_page_size"]),
                           code="InvalidObject")
        if page < 1:
            raise ApiError(400, "page must be 1 or greater.", code="InvalidObject")
        return page, size

    def h_list(self, req, entity):
        table, ids = self._scope(req, entity)
        cond, orderby = self._filters(req, entity)
        page, size = self._paging(req)
        fields = req.param("fields")
        forward = (req.header("pagination-type") or "").strip().lower() == "forward-only"
        if forward:
            try:
                page_id = int(req.param("pageId", "0") or 0)
            except ValueError:
                raise ApiError(400, "pageId must be an integer", code="InvalidObject")
            start = bisect.bisect_right(ids, page_id)
            items = []
            more = False
            for rid in ids[start:]:
                rec = table.peek(rid)
                if cond is not None and not cw_conditions.evaluate(cond, rec):
                    continue
                if len(items) == size:
                    more = True
                    break
                items.append(rec)
            headers = {}
            if more:
                headers["Link"] = '<%s>; rel="next"' % self._url(req, pageId=items[-1]["id"])
            return self._json(req, [self._shape(r, fields) for r in items], headers=headers)
        if cond is None and orderby is None:
            total = len(ids)
            page_ids = ids[(page - 1) * size: page * size]
            items = [table.peek(rid) for rid in page_ids]
        else:
            recs = [table.peek(rid) for rid in ids]
            if cond is not None:
                recs = [r for r in recs if cw_conditions.evaluate(cond, r)]
            if orderby:
                recs = cw_conditions.order(recs, orderby)
            total = len(recs)
            items = recs[(page - 1) * size: page * size]
        headers = {}
        link = self._link(req, page, size, total)
        if link:
            headers["Link"] = link
        return self._json(req, [self._shape(r, fields) for r in items], headers=headers)

    def _page_of(self, req, items):
        page, size = self._paging(req)
        total = len(items)
        headers = {}
        link = self._link(req, page, size, total)
        if link:
            headers["Link"] = link
        return self._json(req, items[(page - 1) * size: page * size], headers=headers)

    @staticmethod
    def _shape(rec, fields):
        return cw_conditions.select_fields(rec, fields) if fields else rec

    def _url(self, req, **params):
        pairs = [(k, v) for k, v in urllib.parse.parse_qsl(req.query, keep_blank_values=True)
                 if k.lower() not in {p.lower() for p in params}]
        pairs.extend((k, str(v)) for k, v in params.items())
        return req.host_url + req.raw_path + "?" + urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)

    def _link(self, req, page, size, total):
        last = max(1, math.ceil(total / size))
        parts = []
        if page > 1 and (page < last or self.config["link_on_last_page"] or page > last):
            parts.append('<%s>; rel="first"' % self._url(req, page=1))
            parts.append('<%s>; rel="prev"' % self._url(req, page=min(page - 1, last)))
        if page < last:
            parts.append('<%s>; rel="next"' % self._url(req, page=page + 1))
            parts.append('<%s>; rel="last"' % self._url(req, page=last))
        return ", ".join(parts)

    def h_count(self, req, entity):
        table, ids = self._scope(req, entity)
        cond, _ = self._filters(req, entity)
        if cond is None:
            n = len(ids)
        else:
            n = sum(1 for rid in ids if cw_conditions.evaluate(cond, table.peek(rid)))
        return self._json(req, {"count": n})

    def _get(self, req, entity):
        table = self.entity_tables[entity]
        rid = int(req.vars["id"])
        label = {"company": "Company", "agreement": "Agreement", "addition": "Addition", "catalog": "CatalogItem",
                 "contact": "Contact"}[entity]
        if rid not in table:
            raise ApiError(404, "%s with id %d was not found." % (label, rid), code="NotFound")
        if entity == "addition":
            aid = int(req.vars["aid"])
            if aid not in self.agreements:
                raise ApiError(404, "Agreement with id %d was not found." % aid, code="NotFound")
            if table.peek(rid).get("agreementId") != aid:
                raise ApiError(404, "Addition with id %d was not found on agreement %d." % (rid, aid), code="NotFound")
        return table, rid

    def h_one(self, req, entity):
        table, rid = self._get(req, entity)
        fields = req.param("fields")
        return self._json(req, self._shape(table.peek(rid), fields))

    # -- writes ---------------------------------------------------------------------------
    def _stamp(self, rec, who="apimember"):
        info = rec.setdefault("_info", {})
        info["lastUpdated"] = iso_z(self.clock.now())
        info["updatedBy"] = who

    def _recompute_addition(self, rec):
        q = float(rec.get("quantity") or 0)
        price = rec.get("unitPrice")
        cost = rec.get("unitCost") or 0.0
        rec["billedQuantity"] = q
        rec["extPrice"] = round(q * float(price), 2) if price is not None else 0.0
        rec["extCost"] = round(q * float(cost), 2)
        rec["margin"] = round(rec["extPrice"] - rec["extCost"], 2)

    _READ_ONLY = {"id", "_info", "agreementId", "extPrice", "extCost", "margin", "billedQuantity"}

    def h_addition_patch(self, req):
        table, rid = self._get(req, "addition")
        ops = req.json()
        if not isinstance(ops, list) or not ops:
            raise ApiError(400, "The request body must be a JSON Patch array of operations.", code="InvalidObject")
        rec = table.wire(rid)
        for op in ops:
            if not isinstance(op, dict):
                raise ApiError(400, "Each patch operation must be an object.", code="InvalidObject")
            o = {str(k).lower(): v for k, v in op.items()}
            kind = str(o.get("op", "")).lower()
            path = str(o.get("path", "")).strip().lstrip("/")
            if kind not in ("replace", "add", "remove"):
                raise ApiError(400, "Unsupported patch operation '%s'." % o.get("op"), code="InvalidObject")
            if not path:
                raise ApiError(400, "A patch operation needs a path.", code="InvalidObject")
            top = path.split("/")[0]
            known = {k.lower(): k for k in self.known_fields["addition"]}
            if top.lower() not in known:
                raise ApiError(400, "Unknown field '%s'." % path, code="InvalidObject")
            if top.lower() in {k.lower() for k in self._READ_ONLY}:
                raise ApiError(400, "Field '%s' is read-only." % path, code="InvalidObject")
            path = known[top.lower()] + path[len(top):]
            value = o.get("value") if kind != "remove" else None
            if known[top.lower()] in ("quantity", "unitPrice", "unitCost", "lessIncluded") and value is not None:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    try:
                        value = float(value)
                    except (TypeError, ValueError):
                        raise ApiError(400, "Field '%s' must be a number." % path, code="InvalidObject")
                value = float(value)
            set_path(rec, path, value)
        self._recompute_addition(rec)
        self._stamp(rec)
        table.put(rid, rec)
        return self._json(req, rec)

    def h_addition_put(self, req):
        table, rid = self._get(req, "addition")
        body = req.json()
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be an Addition object.", code="InvalidObject")
        rec = table.wire(rid)
        for k, v in body.items():
            if k in ("id", "_info", "agreementId"):
                continue
            rec[k] = v
        self._recompute_addition(rec)
        self._stamp(rec)
        table.put(rid, rec)
        return self._json(req, rec)

    def h_addition_delete(self, req):
        table, rid = self._get(req, "addition")
        self._remove("addition", rid)
        return Response.empty(204)

    def h_addition_create(self, req):
        aid = int(req.vars["aid"])
        if aid not in self.agreements:
            raise ApiError(404, "Agreement with id %d was not found." % aid, code="NotFound")
        body = req.json()
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be an Addition object.", code="InvalidObject")
        if "product" not in body or "billCustomer" not in body:
            raise ApiError(400, "product and billCustomer are required.", code="InvalidObject")
        rec = self._new_addition(aid, body)
        return self._json(req, rec, status=201)

    def _resolve_product(self, product):
        if isinstance(product, str):
            product = {"identifier": product}
        if not isinstance(product, dict):
            raise ApiError(400, "product must be a reference object.", code="InvalidObject")
        item = None
        if "id" in product:
            item = self.catalog_by_id.get(int(product["id"]))
        elif "identifier" in product:
            item = next((c for c in self.catalog_by_id.values() if c.identifier == product["identifier"]), None)
        if item is None:
            raise ApiError(400, "product %s is not in the catalog." % json.dumps(product), code="InvalidObject")
        return _ref(item.id, item.identifier, "product", None, "identifier"), item

    def _new_addition(self, aid, body):
        ref, item = self._resolve_product(body.get("product"))
        agreement = self.agreements.peek(aid)
        rid = int(body["id"]) if "id" in body else max(self.additions.next_id(), 1)
        now = iso_z(self.clock.now())
        rec = {"id": rid, "product": ref, "quantity": 1.0, "lessIncluded": 0.0, "unitPrice": float(item.price),
               "unitCost": float(item.cost), "billCustomer": "Billable", "effectiveDate": now[:10] + "T00:00:00Z",
               "taxableFlag": False, "invoiceDescription": item.description, "agreementId": aid,
               "description": item.description, "uom": item.uom, "sequenceNumber": 1.0,
               "prorateCurrentPeriodFlag": False, "agreementStatus": agreement.get("agreementStatus", "Active"),
               "_info": {"lastUpdated": now, "updatedBy": "apimember", "dateEntered": now, "enteredBy": "apimember"}}
        for k, v in body.items():
            if k in ("id", "_info", "agreementId", "product"):
                continue
            rec[k] = v
        for k in ("quantity", "unitPrice", "unitCost"):
            if rec.get(k) is not None:
                rec[k] = float(rec[k])
        self._recompute_addition(rec)
        self.additions.put(rid, rec)
        self.by_agreement.setdefault(aid, []).append(rid)
        return rec

    def _remove(self, entity, rid):
        table = self.entity_tables[entity]
        if entity == "addition":
            aid = table.peek(rid).get("agreementId")
            lst = self.by_agreement.get(aid, [])
            if rid in lst:
                lst.remove(rid)
        if entity == "agreement":
            for adid in list(self.by_agreement.get(rid, [])):
                self.additions.remove(adid)
            self.by_agreement.pop(rid, None)
        table.remove(rid)

    # -- control: mutate & data -------------------------------------------------------------
    def mutate(self, change):
        entity = change.get("entity")
        if entity in ("companies", "agreements", "additions", "contacts"):
            entity = entity[:-1]
        if entity not in self.entity_tables:
            raise ApiError(400, "entity must be one of %s" % ", ".join(sorted(self.entity_tables)))
        table = self.entity_tables[entity]
        op = change.get("op", "set" if "set" in change else None)
        if op == "add":
            record = dict(change.get("record") or {})
            if entity == "addition":
                aid = int(record.pop("agreementId", change.get("agreement_id", 0)) or 0)
                if aid not in self.agreements:
                    raise ApiError(400, "add addition: agreementId %r does not exist" % aid)
                if "product" not in record:
                    raise ApiError(400, "add addition: record.product is required")
                rec = self._new_addition(aid, record)
                return {"entity": entity, "op": "add", "id": rec["id"], "record": rec}
            rid = int(record.get("id") or table.next_id())
            if rid in table:
                raise ApiError(400, "%s %d already exists" % (entity, rid))
            rec = table.wire(table.ids[0]) if table.ids else {}
            rec["id"] = rid
            for k, v in record.items():
                set_path(rec, k, v)
            now = iso_z(self.clock.now())
            rec["_info"] = {"lastUpdated": now, "updatedBy": "mock", "dateEntered": now, "enteredBy": "mock"}
            table.put(rid, rec)
            return {"entity": entity, "op": "add", "id": rid, "record": rec}
        rid = int(change.get("id", -1))
        if rid not in table:
            raise ApiError(404, "%s %d does not exist" % (entity, rid))
        if op == "remove":
            self._remove(entity, rid)
            return {"entity": entity, "op": "remove", "id": rid}
        if op != "set":
            raise ApiError(400, "op must be set, add or remove")
        rec = table.materialize(rid)
        old_aid = rec.get("agreementId")
        for k, v in (change.get("set") or {}).items():
            if k in ("quantity", "unitPrice", "unitCost") and v is not None:
                v = float(v)
            set_path(rec, k, v)
        if entity == "addition":
            self._recompute_addition(rec)
            if rec.get("agreementId") != old_aid:
                self.by_agreement.get(old_aid, []).remove(rid)
                self.by_agreement.setdefault(rec.get("agreementId"), []).append(rid)
        if change.get("touch", True):
            self._stamp(rec, "mock")
        return {"entity": entity, "op": "set", "id": rid, "record": rec}

    def data_entities(self):
        def lister(table):
            def f(req):
                ids = table.ids
                if req.param("id"):
                    ids = [int(x) for x in req.param("id").split(",") if int(x) in table]
                return json.loads(dumps([table.peek(i) for i in ids]).replace(
                    BASE_PLACEHOLDER.encode(), self._api_base(req).encode() or b""))
            return f
        return {"companies": lister(self.companies), "agreements": lister(self.agreements),
                "additions": lister(self.additions), "catalog": lister(self.catalog),
                "contacts": lister(self.contacts)}

    def health(self):
        return {"records": {"companies": len(self.companies), "agreements": len(self.agreements),
                            "additions": len(self.additions), "catalog": len(self.catalog),
                            "contacts": len(self.contacts)}}

    # -- faults -----------------------------------------------------------------------------
    def on_empty_page(self, req, resp):
        # An empty page that still says there is a next one (the Link header stays).
        if resp.status == 200:
            resp.body = b"[]"
        return resp

    def on_loop(self, req, resp):
        link = resp.get_header("Link")
        forward = (req.header("pagination-type") or "").strip().lower() == "forward-only"
        if forward:
            resp.set_header("Link", '<%s>; rel="next"' % self._url(req, pageId=0))
            return resp
        page = int(req.param("page", "1") or 1)
        back = max(1, page - 1)
        parts = [p for p in (link or "").split(", ") if 'rel="next"' not in p]
        parts.append('<%s>; rel="next"' % self._url(req, page=back))
        resp.set_header("Link", ", ".join(parts))
        return resp
