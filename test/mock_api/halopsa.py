"""HaloPSA REST API mock (vendor-apis.md section 2).

Token: POST /auth/token[?tenant=x], form body grant_type=client_credentials,
client_id, client_secret, scope (space-separated: "all" or read:/edit: scopes)
-> {access_token, token_type: "Bearer", expires_in, scope}. Bad client
credentials -> 400 {"error": "invalid_client"} (an IdentityServer answer);
a configured tenant must be given as ?tenant= (hosted Halo). GET /api/authinfo
names the auth server. API calls: Authorization: Bearer; expired or revoked
tokens -> 401.

GET /api/Client, /api/Users (the clients' contacts: client_id, emailaddress,
inactive), /api/ClientContract, /api/RecurringInvoice (+ /{id}; invoice
ids are negative, as Halo's recurring invoices are). Lists answer
{"record_count": n, "<key>": [...]} (clients / users / contracts / invoices); paging
only with pageinate=true + page_size + page_no (1-based); without pageinate
everything comes back (count=N limits). Inactive clients are left out unless
includeinactive=true (users likewise); invoice lines only with includelines=true (always on a
single GET). Filters: client_id, search, order/orderdesc. Times are UTC
written without a zone ("2026-10-31T23:00:00"), shifted by config
utc_offset_minutes.

Write-back: POST /api/RecurringInvoice with a JSON array of invoices; an
invoice with "lines" gets exactly those lines (lines left out are deleted,
lines without a known id are added). POST /api/RecurringInvoice/updatelines
updates the given lines only; POST /api/RecurringInvoice/Lines adds lines.
"""

import re
import time

from framework import (ApiError, MockApp, Response, Table, bearer_token, parse_basic, table_mutate, zoneless)
from msp_generator import HALO_PERIODS, add_months

P = r"(?i)/api"
NUMERIC_LINE_FIELDS = ("qty_order", "unit_price", "unit_cost", "tax_rate")
PERIOD_MONTHS = {2: 1, 3: 3, 4: 6, 5: 12}


class HaloPSAApp(MockApp):
    name = "halopsa"
    uses_tokens = True

    def default_config(self):
        return {
            "client_id": "billrecon-halo-client",
            "client_secret": "billrecon-halo-secret",
            "tenant": "",              # non-empty: the token request must carry ?tenant=<this>
            "token_ttl_s": 3600,
            "default_page_size": 50,   # pageinate=true without page_size
            "max_page_size": 0,        # 0: no cap; else larger page_size values are capped silently
            "utc_offset_minutes": 0,   # shift of the zone-less timestamps
        }

    # -- data ---------------------------------------------------------------------
    def reset_data(self):
        ds = self.dataset
        self.clients = Table(ds.halo_clients, self.render_client)
        self.contracts = Table(ds.halo_contracts, self.render_contract)
        self.invoices = Table(ds.halo_invoices, self.render_invoice)
        self.lines = Table(ds.halo_lines, self.render_line)
        # Users: the PSA contacts of the clients Halo has, under their Halo ids.
        self.client_of_company = {c.cw_company_id: c.id for c in ds.halo_clients}
        self.users = Table([x._replace(id=x.halo_user_id) for x in ds.contacts if x.halo_user_id is not None],
                           self.render_user)
        self.lines_of = {}
        for ln in ds.halo_lines:
            self.lines_of.setdefault(ln.invoice_id, []).append(ln.id)
        self.tables = {"client": self.clients, "contract": self.contracts, "invoice": self.invoices,
                       "line": self.lines, "user": self.users}

    def t(self, epoch, millis=False):
        if epoch is None:
            return None
        return zoneless(epoch + 60 * int(self.config["utc_offset_minutes"]), millis)

    def client_name(self, cid):
        return self.clients.peek(cid)["name"] if cid in self.clients else ""

    def render_client(self, c):
        d = {"id": c.id, "name": c.name, "toplevel_id": c.toplevel_id, "toplevel_name": c.toplevel_name,
             "inactive": bool(c.inactive), "main_site_id": c.main_site_id, "main_site_name": "Main",
             "website": c.website or "", "datecreated": self.t(c.datecreated + (c.id % 997) / 1000.0, True),
             "colour": "#%06x" % ((c.id * 2654435761) & 0xFFFFFF), "use": "client"}
        if c.ninjarmmid:
            d["ninjarmmid"] = c.ninjarmmid
        d["external_links"] = ([{"id": c.id * 10 + 1, "third_party_id": c.pax8_id, "third_party_desc": "Pax8",
                                 "integration_name": "Pax8"}] if c.pax8_id else [])
        return d

    def render_user(self, x):
        """A user (a client's contact): one e-mail address (the primary one)."""
        cid = self.client_of_company.get(x.company_id)
        return {"id": x.id, "name": ("%s %s" % (x.first_name, x.last_name)).strip(), "firstname": x.first_name,
                "surname": x.last_name, "site_id": 100 + cid if cid else None, "site_name": "Main",
                "client_id": cid, "client_name": self.client_name(cid), "emailaddress": x.emails[0] if x.emails else "",
                "phonenumber_preferred": x.phone or "", "jobtitle": x.title or "", "inactive": bool(x.inactive),
                "isimportantcontact": False, "use": "user", "datecreated": self.t(x.date_entered, True)}

    def render_contract(self, k):
        now = self.dataset.base_epoch
        months = PERIOD_MONTHS.get(k.billingperiod, 1)
        nxt = k.start
        while nxt <= now:
            nxt = add_months(nxt, months)
        term = None
        if k.end:
            tm = time.gmtime(k.end + 86400)
            ts = time.gmtime(k.start)
            term = (tm.tm_year - ts.tm_year) * 12 + tm.tm_mon - ts.tm_mon
        return {"id": k.id, "client_id": k.client_id, "client_name": self.client_name(k.client_id),
                "site_id": 100 + k.client_id, "ref": k.ref, "start_date": self.t(k.start),
                "end_date": self.t(k.end) if k.end else None, "started": k.start <= now,
                "expired": bool(k.end and k.end < now), "billingperiod": k.billingperiod,
                "billing_period_string": HALO_PERIODS.get(k.billingperiod, ""),
                "periodchargeamount": k.charge, "next_invoice_date": self.t(nxt) if k.status == "Active" else None,
                "contract_status": k.status, "status": 1 if k.status == "Active" else 0, "numberofunitsfree": 0,
                "termmonths": term or 0}

    def render_invoice(self, h):
        now = self.dataset.base_epoch
        months = PERIOD_MONTHS.get(h.period, 1)
        pstart = h.start
        while add_months(pstart, months) <= now:
            pstart = add_months(pstart, months)
        pend = add_months(pstart, months) - 86400
        return {"id": h.id, "client_id": h.client_id, "client_name": self.client_name(h.client_id),
                "site_id": 100 + h.client_id, "reference": h.reference, "is_recurring_invoice": True,
                "schedule_id": -h.id, "contract_id": h.contract_id,
                "lastcreated": self.t(h.lastcreated), "nextcreationdate": self.t(h.nextcreation),
                "period": h.period, "period_start_date": self.t(pstart), "period_end_date": self.t(pend),
                "nextcreationperiod": time.strftime("%B %Y", time.gmtime(h.nextcreation + 3600)),
                "schedule": {"id": -h.id, "startdate": self.t(h.start), "end_date": self.t(h.end) if h.end else None,
                             "period": h.period, "disabled": bool(h.disabled)},
                "disabled": bool(h.disabled), "last_modified": self.t(h.last_modified + 0.25, True)}

    def render_line(self, ln):
        d = {"id": ln.id, "ihid": ln.invoice_id, "_itemid": ln.item_id, "item_code": ln.item_code,
             "item_shortdescription": ln.short_desc, "item_longdescription": ln.long_desc, "nominal_code": "4000",
             "qty_order": float(ln.qty), "unit_price": float(ln.unit_price), "unit_cost": float(ln.unit_cost),
             "net_amount": round(float(ln.qty) * float(ln.unit_price), 2), "tax_amount": 0.0, "tax_rate": 0.0,
             "isinactive": bool(ln.isinactive), "sequenceid": ln.sequence, "recurring_invoice_quantity_type": 0,
             "quantity_users": [], "quantity_assets": [], "quantity_licences": [], "quantity_subscriptions": [],
             "prorata_next_invoice": False, "prorata_quantity": 0.0, "prorata_unit_price": 0.0, "autorenew": True,
             "onetimecharge": False, "contract_id": ln.contract_id}
        if ln.startdate is not None:
            d["startdate"] = self.t(ln.startdate)
        if ln.enddate is not None:
            d["enddate"] = self.t(ln.enddate)
        return d

    def invoice_out(self, iid, lines):
        h = dict(self.invoices.peek(iid))
        ls = [self.lines.peek(x) for x in self.lines_of.get(iid, [])]
        total = 0.0
        for ln in ls:
            try:
                if not ln.get("isinactive"):
                    total += float(ln.get("net_amount") or 0)
            except (TypeError, ValueError):
                pass
        h["total"] = round(total, 2)
        h["client_name"] = self.client_name(h.get("client_id"))
        if lines:
            h["lines"] = ls
        return h

    # -- responses ----------------------------------------------------------------------
    def error_response(self, status, message, code=None, retry_after=None):
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return Response.json({"error": code or "error", "message": message}, status, headers)

    def unauthorized_response(self, req):
        r = Response(401, b"", content_type=None)
        r.set_header("WWW-Authenticate", 'Bearer error="invalid_token"')
        return r

    def rate_limit_response(self, req, retry_after):
        return self.error_response(429, "Too many requests", code="TooManyRequests", retry_after=retry_after)

    # -- auth -----------------------------------------------------------------------------
    def authenticate(self, req):
        token = bearer_token(req.header("Authorization"))
        if not token:
            raise ApiError(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        problem = self.tokens.check(token)
        if problem:
            raise ApiError(401, "access token %s" % problem,
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        req.auth_info = self.tokens.info(token)

    def need_scope(self, req, *scopes):
        have = set((req.auth_info or {}).get("scope", "").split())
        if "all" in have or have & set(scopes):
            return
        raise ApiError(403, "the token lacks scope %s" % " or ".join(scopes), code="insufficient_scope")

    def h_token(self, req):
        tenant = self.config["tenant"]
        if tenant and (req.param("tenant") or "").lower() != tenant.lower():
            return Response.json({"error": "invalid_request", "error_description": "unknown tenant"}, 400)
        form = req.form()
        basic = parse_basic(req.header("Authorization"))
        cid = form.get("client_id") or (basic[0] if basic else None)
        secret = form.get("client_secret") or (basic[1] if basic else None)
        if form.get("grant_type") != "client_credentials":
            return Response.json({"error": "unsupported_grant_type"}, 400)
        if cid != self.config["client_id"] or secret != self.config["client_secret"]:
            return Response.json({"error": "invalid_client"}, 400)
        scope = " ".join((form.get("scope") or "").split())
        if not scope:
            return Response.json({"error": "invalid_scope"}, 400)
        for s in scope.split():
            if s != "all" and not re.fullmatch(r"(read|edit):[a-z_]+", s):
                return Response.json({"error": "invalid_scope"}, 400)
        ttl = int(self.config["token_ttl_s"])
        token = self.tokens.issue(ttl, scope, cid)
        return Response.json({"access_token": token, "token_type": "Bearer", "expires_in": ttl, "scope": scope,
                              "id_token": None},
                             headers={"Cache-Control": "no-store"})

    def h_authinfo(self, req):
        return Response.json({"auth_url": req.host_url + "/auth", "tenant_id": self.config["tenant"] or None})

    # -- routes -------------------------------------------------------------------------
    def register_routes(self):
        self.route("POST", r"(?i)/auth/token", self.h_token, auth=False)
        self.route("GET", P + r"/authinfo", self.h_authinfo, auth=False)
        self.route("GET", P + r"/Client", self.h_clients)
        self.route("GET", P + r"/Client/(?P<id>-?\d+)", self.h_client)
        self.route("GET", P + r"/Users", self.h_users)
        self.route("GET", P + r"/Users/(?P<id>-?\d+)", self.h_user)
        self.route("GET", P + r"/ClientContract", self.h_contracts)
        self.route("GET", P + r"/ClientContract/(?P<id>-?\d+)", self.h_contract)
        self.route("GET", P + r"/RecurringInvoice", self.h_invoices)
        self.route("POST", P + r"/RecurringInvoice", self.h_invoice_post)
        self.route("POST", P + r"/RecurringInvoice/updatelines", self.h_update_lines)
        self.route("POST", P + r"/RecurringInvoice/Lines", self.h_add_lines)
        self.route("GET", P + r"/RecurringInvoice/(?P<id>-?\d+)", self.h_invoice)

    @staticmethod
    def flag(req, name, default=False):
        v = req.param(name)
        if v is None:
            return default
        return v.strip().lower() in ("true", "1", "yes")

    def int_param(self, req, name):
        v = req.param(name)
        if v is None or v == "":
            return None
        try:
            return int(v)
        except ValueError:
            raise ApiError(400, "%s must be an integer" % name, code="BadRequest")

    def listing(self, req, key, items, render=None):
        """Halo's list envelope with pageinate/page_size/page_no, count, order.
        items are records, or ids that render(id) turns into records (only
        the page asked for is rendered)."""
        order = req.param("order")
        desc = req.param("orderdesc")
        if (order or desc) and render is not None:
            items, render = [render(i) for i in items], None
        if order or desc:
            field = (order or desc).strip().lower()
            items.sort(key=lambda x: (str(x.get(field, "")).lower() if not isinstance(x.get(field), (int, float))
                                      else x.get(field)), reverse=bool(desc and not order))
        total = len(items)
        if self.flag(req, "pageinate"):
            size = self.int_param(req, "page_size")
            size = int(self.config["default_page_size"]) if size is None else size
            page = self.int_param(req, "page_no")
            page = 1 if page is None else page
            if size < 1 or page < 1:
                raise ApiError(400, "page_size and page_no must be positive", code="BadRequest")
            cap = int(self.config["max_page_size"] or 0)
            if cap:
                size = min(size, cap)
            items = items[(page - 1) * size: page * size]
        else:
            count = self.int_param(req, "count")
            if count is not None and count >= 0:
                items = items[:count]
                total = len(items)
        if render is not None:
            items = [render(i) for i in items]
        return Response.json({"record_count": total, key: items})

    @staticmethod
    def raw_field(table, rid, wire, raw):
        """A field without rendering the record when it is still the generator's."""
        row = table.raw(rid)
        return row.get(wire) if isinstance(row, dict) else getattr(row, raw)

    def h_clients(self, req):
        self.need_scope(req, "read:customers")
        inactive = self.flag(req, "includeinactive")
        search = (req.param("search") or "").lower()
        out = []
        for cid in self.clients.ids:
            if not inactive and self.raw_field(self.clients, cid, "inactive", "inactive") is True:
                continue
            if search and search not in str(self.raw_field(self.clients, cid, "name", "name") or "").lower():
                continue
            out.append(cid)
        return self.listing(req, "clients", out, self.clients.peek)

    def h_client(self, req):
        self.need_scope(req, "read:customers")
        cid = int(req.vars["id"])
        if cid not in self.clients:
            raise ApiError(404, "Client %d not found" % cid, code="NotFound")
        return Response.json(self.clients.peek(cid))

    def h_users(self, req):
        self.need_scope(req, "read:customers")
        inactive = self.flag(req, "includeinactive")
        active = self.flag(req, "includeactive", True)
        client = self.int_param(req, "client_id")
        site = self.int_param(req, "site_id")
        search = (req.param("search") or "").lower()
        out = []
        for uid in self.users.ids:
            rec = self.users.peek(uid)
            off = rec.get("inactive") is True
            if (off and not inactive) or (not off and not active):
                continue
            if client is not None and rec.get("client_id") != client:
                continue
            if site is not None and rec.get("site_id") != site:
                continue
            if search and search not in ("%s %s" % (rec.get("name", ""), rec.get("emailaddress", ""))).lower():
                continue
            out.append(uid)
        return self.listing(req, "users", out, self.users.peek)

    def h_user(self, req):
        self.need_scope(req, "read:customers")
        uid = int(req.vars["id"])
        if uid not in self.users:
            raise ApiError(404, "User %d not found" % uid, code="NotFound")
        return Response.json(self.users.peek(uid))

    def h_contracts(self, req):
        self.need_scope(req, "read:contracts")
        client = self.int_param(req, "client_id")
        search = (req.param("search") or "").lower()
        out = []
        for kid in self.contracts.ids:
            k = dict(self.contracts.peek(kid))
            if client is not None and k.get("client_id") != client:
                continue
            if search and search not in str(k.get("ref", "")).lower():
                continue
            k["client_name"] = self.client_name(k.get("client_id"))
            out.append(k)
        return self.listing(req, "contracts", out)

    def h_contract(self, req):
        self.need_scope(req, "read:contracts")
        kid = int(req.vars["id"])
        if kid not in self.contracts:
            raise ApiError(404, "Contract %d not found" % kid, code="NotFound")
        return Response.json(self.contracts.peek(kid))

    def h_invoices(self, req):
        self.need_scope(req, "read:invoices")
        client = self.int_param(req, "client_id")
        lines = self.flag(req, "includelines")
        search = (req.param("search") or "").lower()
        out = []
        for iid in self.invoices.ids:
            if client is not None and self.raw_field(self.invoices, iid, "client_id", "client_id") != client:
                continue
            if search and search not in str(self.raw_field(self.invoices, iid, "reference", "reference")
                                             or "").lower():
                continue
            out.append(iid)
        return self.listing(req, "invoices", out, lambda i: self.invoice_out(i, lines))

    def h_invoice(self, req):
        self.need_scope(req, "read:invoices")
        iid = int(req.vars["id"])
        if iid not in self.invoices:
            raise ApiError(404, "Recurring invoice %d not found" % iid, code="NotFound")
        return Response.json(self.invoice_out(iid, True))

    # -- writes -------------------------------------------------------------------------------
    def _number(self, field, v):
        if isinstance(v, bool) or v is None:
            raise ApiError(400, "%s must be a number" % field, code="BadRequest")
        if isinstance(v, (int, float)):
            return float(v)
        try:
            return float(str(v))
        except ValueError:
            raise ApiError(400, "%s must be a number, not %r" % (field, v), code="BadRequest")

    def _apply_line(self, rec, body):
        for k, v in body.items():
            if k in ("id", "ihid"):
                continue
            if k in NUMERIC_LINE_FIELDS:
                v = self._number(k, v)
            rec[k] = v
        rec["net_amount"] = round(float(rec.get("qty_order") or 0) * float(rec.get("unit_price") or 0), 2)

    def _new_line(self, iid, body):
        lid = max(self.lines.next_id(), 1)
        h = self.invoices.peek(iid)
        rec = {"id": lid, "ihid": iid, "_itemid": 0, "item_code": "", "item_shortdescription": "",
               "item_longdescription": "", "nominal_code": "4000", "qty_order": 1.0, "unit_price": 0.0,
               "unit_cost": 0.0, "net_amount": 0.0, "tax_amount": 0.0, "tax_rate": 0.0, "isinactive": False,
               "sequenceid": len(self.lines_of.get(iid, [])) + 1, "recurring_invoice_quantity_type": 0,
               "quantity_users": [], "quantity_assets": [], "quantity_licences": [], "quantity_subscriptions": [],
               "prorata_next_invoice": False, "prorata_quantity": 0.0, "prorata_unit_price": 0.0, "autorenew": True,
               "onetimecharge": False, "contract_id": h.get("contract_id")}
        self._apply_line(rec, body)
        self.lines.put(lid, rec)
        self.lines_of.setdefault(iid, []).append(lid)
        return rec

    def _touch(self, iid):
        self.invoices.materialize(iid)["last_modified"] = self.t(self.clock.now(), True)

    def h_invoice_post(self, req):
        self.need_scope(req, "edit:invoices")
        body = req.json()
        if isinstance(body, dict):
            body = [body]
        if not isinstance(body, list) or not body or not all(isinstance(x, dict) for x in body):
            raise ApiError(400, "the body must be an array of recurring invoices", code="BadRequest")
        saved = []
        for inv in body:
            iid = inv.get("id")
            try:
                iid = int(iid) if iid not in (None, "", 0) else None
            except (TypeError, ValueError):
                raise ApiError(400, "id must be an integer", code="BadRequest")
            if iid is None:
                iid = min([i for i in self.invoices.ids if i < 0] + [-100]) - 1
                base = {"id": iid, "client_id": int(inv.get("client_id") or 0), "reference": "",
                        "is_recurring_invoice": True, "period": 2, "disabled": False, "schedule_id": -iid}
                if base["client_id"] not in self.clients:
                    raise ApiError(400, "client_id %r does not exist" % inv.get("client_id"), code="BadRequest")
                self.invoices.put(iid, base)
                self.lines_of[iid] = []
            elif iid not in self.invoices:
                raise ApiError(404, "Recurring invoice %d not found" % iid, code="NotFound")
            if "lines" in inv:
                lines = inv["lines"]
                if not isinstance(lines, list) or not all(isinstance(x, dict) for x in lines):
                    raise ApiError(400, "lines must be an array of line objects", code="BadRequest")
                # Validate everything first: a bad line changes nothing.
                for ln in lines:
                    for f in NUMERIC_LINE_FIELDS:
                        if f in ln:
                            self._number(f, ln[f])
                keep = []
                for ln in lines:
                    lid = ln.get("id")
                    try:
                        lid = int(lid) if lid not in (None, "") else None
                    except (TypeError, ValueError):
                        lid = None
                    if lid is not None and lid in self.lines and self.lines.peek(lid).get("ihid") == iid:
                        rec = self.lines.wire(lid)
                        self._apply_line(rec, ln)
                        self.lines.put(lid, rec)
                        keep.append(lid)
                    else:
                        keep.append(self._new_line(iid, ln)["id"])
                for lid in list(self.lines_of.get(iid, [])):
                    if lid not in keep:
                        self.lines.remove(lid)
                self.lines_of[iid] = keep
            h = self.invoices.materialize(iid)
            for k, v in inv.items():
                if k in ("id", "lines", "client_name", "total", "last_modified"):
                    continue
                h[k] = v
            self._touch(iid)
            saved.append(self.invoice_out(iid, True))
        return Response.json(saved[0] if len(saved) == 1 else saved, 200)

    def h_update_lines(self, req):
        self.need_scope(req, "edit:invoices")
        body = req.json()
        if not isinstance(body, list) or not all(isinstance(x, dict) for x in body):
            raise ApiError(400, "the body must be an array of lines", code="BadRequest")
        for ln in body:
            lid = ln.get("id")
            if not isinstance(lid, int) or lid not in self.lines:
                raise ApiError(404, "line %r not found" % lid, code="NotFound")
            for f in NUMERIC_LINE_FIELDS:
                if f in ln:
                    self._number(f, ln[f])
        out = []
        for ln in body:
            rec = self.lines.wire(ln["id"])
            self._apply_line(rec, ln)
            self.lines.put(ln["id"], rec)
            self._touch(rec["ihid"])
            out.append(rec)
        return Response.json(out)

    def h_add_lines(self, req):
        self.need_scope(req, "edit:invoices")
        body = req.json()
        if not isinstance(body, list) or not all(isinstance(x, dict) for x in body):
            raise ApiError(400, "the body must be an array of lines", code="BadRequest")
        for ln in body:
            try:
                iid = int(ln.get("ihid"))
            except (TypeError, ValueError):
                raise ApiError(400, "each line needs ihid", code="BadRequest")
            if iid not in self.invoices:
                raise ApiError(404, "Recurring invoice %d not found" % iid, code="NotFound")
            for f in NUMERIC_LINE_FIELDS:
                if f in ln:
                    self._number(f, ln[f])
        out = []
        for ln in body:
            iid = int(ln["ihid"])
            out.append(self._new_line(iid, ln))
            self._touch(iid)
        return Response.json(out)

    # -- control ---------------------------------------------------------------------------
    def mutate(self, change):
        def stamp(entity, rec):
            if entity == "invoice":
                rec["last_modified"] = self.t(self.clock.now(), True)
            elif entity == "line" and rec.get("ihid") in self.invoices:
                self._touch(rec["ihid"])
                try:
                    rec["net_amount"] = round(float(rec.get("qty_order") or 0) * float(rec.get("unit_price") or 0), 2)
                except (TypeError, ValueError):
                    pass

        def new_record(entity, rid, record):
            if entity == "line":
                iid = int(record.get("ihid", 0))
                if iid not in self.invoices:
                    raise ApiError(400, "add line: ihid %r does not exist" % record.get("ihid"))
                self.lines_of.setdefault(iid, []).append(rid)
                return {"id": rid, "ihid": iid, "qty_order": 1.0, "unit_price": 0.0, "isinactive": False}
            if entity == "invoice":
                self.lines_of.setdefault(rid, [])
                return {"id": rid, "is_recurring_invoice": True, "period": 2, "disabled": False}
            return {"id": rid}

        def on_remove(entity, rid):
            if entity == "line":
                lst = self.lines_of.get(self.lines.peek(rid).get("ihid"), [])
                if rid in lst:
                    lst.remove(rid)
            elif entity == "invoice":
                for lid in self.lines_of.pop(rid, []):
                    self.lines.remove(lid)

        return table_mutate(change, self.tables, {"clients": "client", "contracts": "contract", "invoices": "invoice",
                                                  "lines": "line", "users": "user"}, stamp, new_record, on_remove)

    def data_entities(self):
        def lister(table, fn=None):
            def f(req):
                ids = table.ids
                if req.param("id"):
                    ids = [int(x) for x in req.param("id").split(",") if int(x) in table]
                return [fn(i) if fn else table.peek(i) for i in ids]
            return f
        return {"clients": lister(self.clients), "contracts": lister(self.contracts),
                "invoices": lister(self.invoices, lambda i: self.invoice_out(i, True)), "lines": lister(self.lines),
                "users": lister(self.users)}

    def health(self):
        return {"records": {"clients": len(self.clients), "contracts": len(self.contracts),
                            "invoices": len(self.invoices), "lines": len(self.lines), "users": len(self.users)},
                "tokens": self.tokens.describe()}

    # -- faults ---------------------------------------------------------------------------
    def on_empty_page(self, req, resp):
        if resp.status == 200:
            try:
                body = resp.json_body()
            except ValueError:
                return resp
            if isinstance(body, dict):
                for k in ("clients", "invoices", "contracts", "users"):
                    if k in body:
                        body[k] = []    # record_count still promises more
                resp.body = Response.json(body).body
        return resp

    def on_loop(self, req, resp):
        # The page requested is answered with page 1 again.
        if not self.flag(req, "pageinate") or resp.status != 200:
            return resp
        size = self.int_param(req, "page_size") or int(self.config["default_page_size"])
        body = resp.json_body()
        for k in ("clients", "invoices", "contracts", "users"):
            if k in body:
                fresh = self.dispatch_first_page(req, size)
                if fresh is not None:
                    body[k] = fresh.get(k, [])
        return Response.json(body, resp.status)

    def dispatch_first_page(self, req, size):
        from framework import Request
        q = re.sub(r"(?i)(^|&)page_no=\d+", r"\1page_no=1", req.query)
        if "page_no=" not in q.lower():
            q += "&page_no=1"
        again = Request("GET", req.raw_path + "?" + q, req.headers, b"", req.server_address)
        again.auth_info = req.auth_info
        resp = self.dispatch(again)
        return resp.json_body() if resp.status == 200 else None

