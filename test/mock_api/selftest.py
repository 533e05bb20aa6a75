#!/usr/bin/env python3
"""Self-test of the MSP generator and the mock servers (no PostgreSQL needed).

    python3 test/mock_api/selftest.py            # ~15 s
    python3 test/mock_api/selftest.py --big      # also 5,000 clients / ~200,000 devices
    python3 test/mock_api/selftest.py -k fault   # only tests whose name contains "fault"

Starts server.py as a subprocess (CLI, port file, SIGTERM), exercises every
endpoint, control call and fault kind over real HTTP, and ends with
`mock selftest: N passed, M failed`.
"""

import argparse
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import msp_generator  # noqa: E402

SEED, CLIENTS = 11, 12
CW_PREFIX = "/v4_6_release/apis/3.0"
CW_AUTH = {"Authorization": "Basic " + base64.b64encode(b"billrecon+pubkey:privkey").decode(),
           "clientId": "00000000-0000-4000-8000-000000000001"}
NJ_CREDS = {"client_id": "billrecon-ninja-client", "client_secret": "billrecon-ninja-secret"}


# ---------------------------------------------------------------------------
# harness

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def check(cond, msg="check failed"):
    if not cond:
        raise AssertionError(msg)


def eq(a, b, msg=""):
    if a != b:
        raise AssertionError("%s: expected %r, got %r" % (msg or "values differ", b, a))


class Http:
    def __init__(self, port):
        self.port = port

    def request(self, method, path, headers=None, body=None, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
                headers = dict(headers or {}, **{"Content-Type": "application/json"})
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def get(self, path, headers=None):
        return self.request("GET", path, headers)

    def json(self, method, path, headers=None, body=None):
        st, h, data = self.request(method, path, headers, body)
        try:
            return st, h, json.loads(data.decode() or "null")
        except ValueError:
            return st, h, data

    def ctl(self, method, path, body=None):
        st, h, obj = self.json(method, "/_mock/" + path, None, body)
        if st != 200:
            raise AssertionError("control %s %s -> %d %r" % (method, path, st, obj))
        return obj


class Env:
    pass


ENV = Env()


def start_server(extra_args=(), clients=CLIENTS, seed=SEED):
    tmp = tempfile.mkdtemp(prefix="mockself", dir=ENV.tmp)
    port_file = os.path.join(tmp, "ports.json")
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "server.py"), "--seed", str(seed), "--clients",
                             str(clients), "--port-file", port_file] + list(extra_args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 20
    while time.time() < deadline:
        if os.path.exists(port_file):
            with open(port_file) as f:
                ports = json.load(f)
            return proc, ports, port_file
        if proc.poll() is not None:
            raise RuntimeError("server exited: %s" % proc.stderr.read().decode())
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not write its port file")


def stop_server(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def reset_all():
    ENV.cw.ctl("POST", "reset")
    ENV.nj.ctl("POST", "reset")


def cw_get(path, headers=None):
    return ENV.cw.json("GET", CW_PREFIX + path, dict(CW_AUTH, **(headers or {})))


def nj_token(scope="monitoring management"):
    body = urllib.parse.urlencode(dict(NJ_CREDS, grant_type="client_credentials", scope=scope))
    st, h, obj = ENV.nj.json("POST", "/ws/oauth/token", {"Content-Type": "application/x-www-form-urlencoded"}, body)
    eq(st, 200, "token status")
    return obj["access_token"]


def nj_get(path, token=None):
    token = token or nj_token()
    return ENV.nj.json("GET", path, {"Authorization": "Bearer " + token})


def parse_link(value):
    out = {}
    for part in (value or "").split(","):
        part = part.strip()
        if not part:
            continue
        url, _, rest = part.partition(">")
        rel = rest.split('rel="', 1)[1].split('"', 1)[0]
        out[rel] = url.lstrip("<")
    return out


def path_of(url):
    u = urllib.parse.urlsplit(url)
    return u.path + ("?" + u.query if u.query else "")


def cw_walk(first_path, headers=None):
    """Follows Link rel=next; returns (items, requests)."""
    items, n, path = [], 0, CW_PREFIX + first_path
    seen = set()
    while path:
        check(path not in seen, "Link loop at %s" % path)
        seen.add(path)
        st, h, body = ENV.cw.json("GET", path, dict(CW_AUTH, **(headers or {})))
        eq(st, 200, "status of %s" % path)
        items.extend(body)
        n += 1
        nxt = parse_link(h.get("link")).get("next")
        path = path_of(nxt) if nxt else None
    return items, n


def nj_walk(path, size, token=None):
    token = token or nj_token()
    out, after = [], None
    while True:
        sep = "&" if "?" in path else "?"
        st, h, page = nj_get(path + sep + "pageSize=%d" % size + ("&after=%d" % after if after else ""), token)
        eq(st, 200, "ninja page")
        out.extend(page)
        if len(page) < size:
            return out
        after = max(d["id"] for d in page)


# ---------------------------------------------------------------------------
# generator

@test
def generator_reproducible():
    a = msp_generator.generate(SEED, CLIENTS).to_json_obj()
    b = msp_generator.generate(SEED, CLIENTS).to_json_obj()
    check(json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True), "same seed, different data")
    c = msp_generator.generate(SEED + 1, CLIENTS).to_json_obj()
    check(json.dumps(a, sort_keys=True) != json.dumps(c, sort_keys=True), "different seed, same data")


@test
def generator_json_roundtrip():
    ds = msp_generator.generate(SEED, CLIENTS)
    path = os.path.join(tempfile.mkdtemp(prefix="gen", dir=ENV.tmp), "d.json")
    ds.save(path)
    back = msp_generator.Dataset.load(path)
    for name, _ in msp_generator.TABLES:
        eq([list(r) for r in back.table(name)], [list(r) for r in ds.table(name)], "table %s" % name)
    eq(back.ground_truth, json.loads(json.dumps(ds.ground_truth)), "ground truth")
    rc = subprocess.run([sys.executable, os.path.join(HERE, "msp_generator.py"), "--seed", str(SEED), "--clients",
                         str(CLIENTS), "--out", path + "2"], capture_output=True)
    eq(rc.returncode, 0, "CLI exit")
    with open(path, "rb") as f1, open(path + "2", "rb") as f2:
        check(f1.read() == f2.read(), "CLI output differs from library output")


@test
def generator_realism():
    ds = msp_generator.generate(5, 120)
    B = ds.base_epoch
    classes = {d.node_class for d in ds.devices}
    for c in ("WINDOWS_WORKSTATION", "WINDOWS_SERVER", "MAC", "LINUX_SERVER", "ANDROID"):
        check(c in classes, "node class %s missing" % c)
    check(any(c.startswith("NMS_") for c in classes), "no NMS devices")
    check(any(c.endswith("_VM_GUEST") or c.endswith("VMM_GUEST") for c in classes), "no VM guests")
    check({"DESKTOP", "LAPTOP"} <= {d.chassis for d in ds.devices}, "chassis types")
    check(any(d.approval == "PENDING" for d in ds.devices), "no PENDING devices")
    check(any(d.offline for d in ds.devices), "no offline devices")
    check(any(d.last_contact_ms < (B - 60 * 86400) * 1000 for d in ds.devices), "no long-inactive devices")
    check(ds.ground_truth["duplicate_serials"], "no duplicated serials")
    check(any(d.last_contact_ms % 1000 for d in ds.devices), "no fractional timestamps")
    check(all(d.last_contact_ms < B * 1000 + 1000 for d in ds.devices), "device contact after base epoch")
    check(all(a.last_updated < B for a in ds.additions), "lastUpdated after base epoch")
    cycles = {a.billing_cycle_id for a in ds.agreements}
    check({1, 2, 3} <= cycles or {1, 3} <= cycles, "billing cycles %r" % cycles)
    check(any(a.cancelled for a in ds.agreements), "no cancelled agreements")
    check(any(a.status == "Expired" for a in ds.agreements), "no expired agreements")
    check({True, False} <= {a.prorate for a in ds.agreements}, "prorateFlag does not vary")
    check(any(x.unit_price is None for x in ds.additions), "no missing unit prices")
    check(any(x.cancelled for x in ds.additions), "no cancelled additions")
    check(any(x.quantity != int(x.quantity) for x in ds.additions), "no fractional quantities")
    codes = {c.identifier for c in ds.catalog}
    for code in ("M365-BP", "M365-BS", "EXO-P1", "MS-WKS", "MS-SRV", "BDR", "AV-EDR", "DOMAIN"):
        check(code in codes, "catalog lacks %s" % code)
    gt = ds.ground_truth["clients"]
    roles = {c["role"] for c in gt}
    check({"client", "franchise", "psa_only", "rmm_only", "former"} <= roles, "roles %r" % roles)
    company_ids = {c.id for c in ds.companies}
    org_ids = {o.id for o in ds.organizations}
    for c in gt:
        if c["psa_company_id"] is not None:
            check(c["psa_company_id"] in company_ids, "ground truth company id")
        if c["ninja_org_id"] is not None:
            check(c["ninja_org_id"] in org_ids, "ground truth org id")
        check((c["psa_company_id"] is None) == (c["role"] == "rmm_only"), "psa presence vs role")
        check((c["ninja_org_id"] is None) == (c["role"] == "psa_only"), "ninja presence vs role")
    both = [c for c in gt if c["psa_name"] and c["ninja_name"]]
    differ = sum(1 for c in both if c["psa_name"] != c["ninja_name"])
    check(differ >= len(both) * 0.5, "names differ for only %d of %d clients" % (differ, len(both)))
    variants = {c["name_variant"] for c in gt}
    check(len(variants) >= 6, "few name variants: %r" % variants)
    words = " ".join(c.name for c in ds.companies)
    for w in ("Dental", "Law", "&"):
        check(w in words, "no %r in PSA names" % w)
    # Quantities drift from real usage for many lines.
    check(len(ds.devices) > 120 * 15, "too few devices")


@test
def generator_big_is_fast():
    if not ENV.big:
        return "skipped (use --big)"
    t0 = time.time()
    ds = msp_generator.generate(1, 5000)
    took = time.time() - t0
    check(len(ds.devices) > 150000, "only %d devices" % len(ds.devices))
    check(took < 40, "5,000 clients took %.1f s" % took)
    return "%.1f s for %d devices" % (took, len(ds.devices))


# ---------------------------------------------------------------------------
# server basics

@test
def server_health_and_ports():
    eq(sorted(ENV.ports), ["connectwise", "ninjaone"], "port file vendors")
    h = ENV.cw.ctl("GET", "health")
    eq(h["vendor"], "connectwise", "vendor")
    eq(h["records"]["companies"], len(ENV.ds.companies), "companies count")
    h = ENV.nj.ctl("GET", "health")
    eq(h["records"]["devices"], len(ENV.ds.devices), "devices count")


@test
def server_keep_alive_and_length():
    conn = http.client.HTTPConnection("127.0.0.1", ENV.ports["connectwise"], timeout=10)
    conn.request("GET", CW_PREFIX + "/company/companies?pageSize=3", headers=CW_AUTH)
    r1 = conn.getresponse()
    b1 = r1.read()
    sock1 = conn.sock
    eq(int(r1.getheader("Content-Length")), len(b1), "Content-Length")
    conn.request("GET", CW_PREFIX + "/finance/agreements?pageSize=2", headers=CW_AUTH)
    r2 = conn.getresponse()
    r2.read()
    check(conn.sock is sock1 and sock1 is not None, "connection was not kept alive")
    eq(r2.status, 200, "second request")
    conn.close()


# ---------------------------------------------------------------------------
# ConnectWise

@test
def cw_auth():
    reset_all()
    st, _, body = ENV.cw.json("GET", CW_PREFIX + "/company/companies")
    eq(st, 401, "no auth")
    eq(body["code"], "Unauthorized", "error code")
    bad = dict(CW_AUTH, Authorization="Basic " + base64.b64encode(b"billrecon+pubkey:wrong").decode())
    eq(ENV.cw.json("GET", CW_PREFIX + "/company/companies", bad)[0], 401, "wrong private key")
    st, _, body = ENV.cw.json("GET", CW_PREFIX + "/company/companies", {"Authorization": CW_AUTH["Authorization"]})
    eq(st, 401, "missing clientId")
    check("clientId" in body["message"], "message names clientId")
    other = {"Authorization": "Basic " + base64.b64encode(b"BILLRECON+pubkey:privkey").decode(),
             "clientid": CW_AUTH["clientId"]}
    eq(ENV.cw.json("GET", CW_PREFIX + "/company/companies", other)[0], 200, "case-insensitive company/header")
    eq(ENV.cw.json("GET", CW_PREFIX + "/company/companies", dict(CW_AUTH, clientId="nope"))[0], 401, "wrong clientId")


@test
def cw_pagination_link():
    items, pages = cw_walk("/company/companies?pageSize=5")
    eq([c["id"] for c in items], [c.id for c in ENV.ds.companies], "walked ids")
    eq(pages, -(-len(ENV.ds.companies) // 5), "pages")
    st, h, _ = cw_get("/company/companies?pageSize=5")
    links = parse_link(h["link"])
    check("next" in links and "last" in links and "first" not in links, "page 1 links %r" % links)
    check(links["next"].startswith("http://127.0.0.1:%d/" % ENV.ports["connectwise"]), "absolute URL")
    st, h, _ = cw_get("/company/companies?pageSize=5&page=2")
    links = parse_link(h["link"])
    check({"first", "prev", "next", "last"} <= set(links), "page 2 links %r" % links)
    last = -(-len(ENV.ds.companies) // 5)
    st, h, _ = cw_get("/company/companies?pageSize=5&page=%d" % last)
    check("next" not in parse_link(h.get("link")), "next link on the last page")
    st, h, body = cw_get("/company/companies?pageSize=%d" % (len(ENV.ds.companies) + 5))
    check("link" not in h, "Link header on a single page")
    st, h, body = cw_get("/company/companies")
    eq(len(body), min(25, len(ENV.ds.companies)), "default page size 25")


@test
def cw_page_size_limits():
    st, _, body = cw_get("/company/companies?pageSize=1001")
    eq(st, 400, "pageSize 1001")
    eq(cw_get("/company/companies?pageSize=1000")[0], 200, "pageSize 1000")
    eq(cw_get("/company/companies?page=0")[0], 400, "page 0")
    eq(cw_get("/company/companies?pageSize=abc")[0], 400, "pageSize abc")


@test
def cw_forward_only():
    items, pages = cw_walk("/finance/agreements?pageSize=4", {"pagination-type": "forward-only"})
    eq([a["id"] for a in items], [a.id for a in ENV.ds.agreements], "forward-only walk")
    st, h, _ = cw_get("/finance/agreements?pageSize=4", {"pagination-type": "forward-only"})
    nxt = parse_link(h["link"])
    check(list(nxt) == ["next"] and "pageId=" in nxt["next"], "forward-only link %r" % nxt)


@test
def cw_conditions():
    ds = ENV.ds
    cid = ds.agreements[0].company_id
    q = urllib.parse.quote
    st, _, body = cw_get("/finance/agreements?pageSize=1000&conditions=" + q("company/id = %d" % cid))
    eq(sorted(a["id"] for a in body), sorted(a.id for a in ds.agreements if a.company_id == cid), "company/id")
    ts = sorted(a.last_updated for a in ds.additions)[len(ds.additions) // 2]
    for field in ("lastUpdated", "_info/lastUpdated"):
        st, _, body = cw_get("/company/companies?pageSize=1000&conditions=" + q("%s > [%s]" % (
            field, msp_generator.iso_z(ts))))
        eq(st, 200, field)
        eq(sorted(c["id"] for c in body), sorted(c.id for c in ds.companies if c.last_updated > ts), field)
    st, _, body = cw_get("/company/companies?pageSize=1000&conditions=" + q('name contains "%s"' % "DENTAL".lower()))
    eq(sorted(c["id"] for c in body), sorted(c.id for c in ds.companies if "dental" in c.name.lower()), "contains")
    first = ds.companies[5].name.split()[0]
    st, _, body = cw_get("/company/companies?pageSize=1000&conditions=" + q("name like '%s*'" % first))
    eq(sorted(c["id"] for c in body), sorted(c.id for c in ds.companies if c.name.lower().startswith(first.lower())),
       "like with single quotes")
    ids = [ds.companies[1].id, ds.companies[3].id]
    st, _, body = cw_get("/company/companies?conditions=" + q("id in (%d, %d)" % tuple(ids)))
    eq(sorted(c["id"] for c in body), ids, "in")
    st, _, body = cw_get("/finance/agreements?pageSize=1000&conditions=" + q(
        '(agreementStatus = "Cancelled" or agreementStatus = "Expired") and cancelledFlag = true'))
    eq(sorted(a["id"] for a in body), sorted(a.id for a in ds.agreements if a.cancelled), "and/or/parentheses/bool")
    st, _, body = cw_get("/finance/agreements?pageSize=1000&conditions=" + q('not agreementStatus = "Active"'))
    eq(sorted(a["id"] for a in body), sorted(a.id for a in ds.agreements if a.status != "Active"), "not")
    st, _, body = cw_get("/finance/agreements?pageSize=1000&conditions=" + q('endDate = null'))
    eq(len(body), sum(1 for a in ds.agreements if not a.end), "= null")
    eq(cw_get("/company/companies?conditions=" + q("name = "))[0], 400, "incomplete condition")
    st, _, body = cw_get("/company/companies?conditions=" + q('nosuchfield = 1'))
    eq(st, 400, "unknown field")
    check("nosuchfield" in body["message"], "message names the field")


@test
def cw_fields_and_order():
    st, _, body = cw_get("/company/companies?pageSize=1000&fields=id,name,status/name&orderBy=name%20desc")
    eq(st, 200, "status")
    eq(set(body[0]), {"id", "name", "status"}, "fields")
    eq(set(body[0]["status"]), {"name"}, "nested fields")
    names = [c["name"].lower() for c in body]
    eq(names, sorted(names, reverse=True), "orderBy name desc")


@test
def cw_single_and_children():
    ds = ENV.ds
    a = ds.agreements[2]
    st, _, body = cw_get("/finance/agreements/%d" % a.id)
    eq((st, body["id"], body["company"]["id"]), (200, a.id, a.company_id), "agreement by id")
    check(body["billingCycle"]["name"] in ("Monthly", "Quarterly", "Annual", "Semi-Annual"), "billingCycle ref")
    check("lastUpdated" in body["_info"], "_info.lastUpdated")
    adds = [x for x in ds.additions if x.agreement_id == a.id]
    st, _, body = cw_get("/finance/agreements/%d/additions?pageSize=1000" % a.id)
    eq([x["id"] for x in body], [x.id for x in adds], "additions of agreement")
    st, _, body = cw_get("/finance/agreements/%d/additions/count" % a.id)
    eq(body, {"count": len(adds)}, "count")
    st, _, body = cw_get("/finance/agreements/%d/additions/%d" % (a.id, adds[0].id))
    eq((st, body["id"], body["agreementId"]), (200, adds[0].id, a.id), "addition by id")
    check(isinstance(body["product"]["identifier"], str), "product.identifier")
    other = next(x for x in ds.additions if x.agreement_id != a.id)
    eq(cw_get("/finance/agreements/%d/additions/%d" % (a.id, other.id))[0], 404, "addition of another agreement")
    eq(cw_get("/finance/agreements/999999")[0], 404, "missing agreement")
    st, _, body = cw_get("/procurement/catalog?pageSize=1000")
    eq(len(body), len(ds.catalog), "catalog")
    eq(cw_get("/finance/agreements/types")[0], 200, "agreement types")
    missing = [x for x in ds.additions if x.unit_price is None]
    if missing:
        st, _, body = cw_get("/finance/agreements/%d/additions/%d" % (missing[0].agreement_id, missing[0].id))
        check("unitPrice" not in body, "missing unitPrice is absent")


@test
def cw_patch_addition():
    reset_all()
    x = ENV.ds.additions[4]
    ENV.cw.ctl("POST", "clock", {"now": "2026-11-20T10:00:00Z"})
    path = CW_PREFIX + "/finance/agreements/%d/additions/%d" % (x.agreement_id, x.id)
    st, _, body = ENV.cw.json("PATCH", path, CW_AUTH, [{"op": "replace", "path": "quantity", "value": 41}])
    eq(st, 200, "patch status")
    eq(body["quantity"], 41.0, "patched quantity")
    eq(body["_info"]["lastUpdated"], "2026-11-20T10:00:00Z", "lastUpdated from the mock clock")
    check("product" in body and body["id"] == x.id, "full addition returned")
    st, _, body = ENV.cw.json("PATCH", path, CW_AUTH, [{"op": "replace", "path": "/quantity", "value": 42.5}])
    eq(body["quantity"], 42.5, "leading slash path")
    eq(cw_get("/finance/agreements/%d/additions/%d" % (x.agreement_id, x.id))[2]["quantity"], 42.5, "persisted")
    eq(ENV.cw.json("PATCH", path, CW_AUTH, {"op": "replace"})[0], 400, "non-array body")
    eq(ENV.cw.json("PATCH", path, CW_AUTH, [{"op": "move", "path": "quantity", "value": 1}])[0], 400, "bad op")
    eq(ENV.cw.json("PATCH", path, CW_AUTH, [{"op": "replace", "path": "nope", "value": 1}])[0], 400, "bad path")
    eq(ENV.cw.json("PATCH", path, CW_AUTH, [{"op": "replace", "path": "quantity", "value": "x"}])[0], 400, "bad value")
    eq(ENV.cw.json("PATCH", path, {}, [{"op": "replace", "path": "quantity", "value": 1}])[0], 401, "patch auth")
    log = ENV.cw.ctl("GET", "requests?method=PATCH")
    eq(log[0]["body"], [{"op": "replace", "path": "quantity", "value": 41}], "PATCH body in the log")


@test
def cw_mutate_and_quick_filter():
    reset_all()
    ds = ENV.ds
    x = ds.additions[7]
    ENV.cw.ctl("POST", "clock", {"now": "2026-11-22T08:00:00Z"})
    res = ENV.cw.ctl("POST", "mutate", {"entity": "addition", "id": x.id, "set": {"quantity": 12}})
    eq(res["results"][0]["record"]["_info"]["lastUpdated"], "2026-11-22T08:00:00Z", "stamped")
    q = urllib.parse.quote("lastUpdated > [2026-11-21T00:00:00Z]")
    st, _, body = cw_get("/finance/agreements/%d/additions?conditions=%s" % (x.agreement_id, q))
    eq([(b["id"], b["quantity"]) for b in body], [(x.id, 12.0)], "only the changed addition")
    c = ds.companies[3]
    ENV.cw.ctl("POST", "mutate", {"entity": "company", "id": c.id, "set": {"name": "Renamed Co"}})
    st, _, body = cw_get("/company/companies?conditions=" + q)
    eq([b["name"] for b in body], ["Renamed Co"], "changed company")
    ENV.cw.ctl("POST", "mutate", {"entity": "addition", "id": x.id, "op": "remove"})
    eq(cw_get("/finance/agreements/%d/additions/%d" % (x.agreement_id, x.id))[0], 404, "removed")
    res = ENV.cw.ctl("POST", "mutate", {"changes": [
        {"entity": "addition", "op": "add", "record": {"agreementId": x.agreement_id, "product": {"identifier": "BDR"},
                                                       "quantity": 3}}]})
    new_id = res["results"][0]["id"]
    st, _, body = cw_get("/finance/agreements/%d/additions/%d" % (x.agreement_id, new_id))
    eq((st, body["product"]["identifier"], body["quantity"]), (200, "BDR", 3.0), "added addition")
    data = ENV.cw.ctl("GET", "data/additions?id=%d" % new_id)
    eq(data[0]["id"], new_id, "data endpoint")
    reset_all()
    eq(cw_get("/finance/agreements/%d/additions/%d" % (x.agreement_id, x.id))[2]["quantity"], x.quantity, "reset")


# ---------------------------------------------------------------------------
# NinjaOne

@test
def nj_token_endpoint():
    reset_all()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    ok = urllib.parse.urlencode(dict(NJ_CREDS, grant_type="client_credentials", scope="monitoring management"))
    st, _, body = ENV.nj.json("POST", "/ws/oauth/token", form, ok)
    eq(st, 200, "token")
    eq((body["token_type"], body["expires_in"], body["scope"]), ("bearer", 3600, "monitoring management"), "fields")
    bad = urllib.parse.urlencode(dict(NJ_CREDS, client_secret="nope", grant_type="client_credentials",
                                      scope="monitoring"))
    st, _, body = ENV.nj.json("POST", "/ws/oauth/token", form, bad)
    eq((st, body["error"]), (401, "invalid_client"), "bad secret")
    st, _, body = ENV.nj.json("POST", "/ws/oauth/token", form, urllib.parse.urlencode(
        dict(NJ_CREDS, grant_type="client_credentials", scope="management")))
    eq((st, body["error"]), (400, "invalid_scope"), "scope without monitoring")
    st, _, body = ENV.nj.json("POST", "/ws/oauth/token", form, urllib.parse.urlencode(
        dict(NJ_CREDS, grant_type="password", scope="monitoring")))
    eq((st, body["error"]), (400, "unsupported_grant_type"), "grant type")
    basic = "Basic " + base64.b64encode(("%s:%s" % (NJ_CREDS["client_id"], NJ_CREDS["client_secret"])).encode()).decode()
    st, _, body = ENV.nj.json("POST", "/ws/oauth/token", dict(form, Authorization=basic),
                              "grant_type=client_credentials&scope=monitoring")
    eq(st, 200, "client credentials in Basic")
    log = ENV.nj.ctl("GET", "requests?path=oauth")
    check(all(e["body"].get("client_secret") in (None, "[redacted]") for e in log), "secret not redacted in log")
    check(NJ_CREDS["client_secret"] not in json.dumps(log), "secret in the request log")


@test
def nj_token_validity():
    reset_all()
    eq(ENV.nj.json("GET", "/v2/organizations")[0], 401, "no token")
    eq(ENV.nj.json("GET", "/v2/organizations", {"Authorization": "Bearer junk"})[0], 401, "unknown token")
    tok = nj_token()
    eq(nj_get("/v2/organizations", tok)[0], 200, "valid token")
    ENV.nj.ctl("POST", "tokens/revoke")
    st, h, _ = nj_get("/v2/organizations", tok)
    eq(st, 401, "revoked token")
    check("www-authenticate" in h, "WWW-Authenticate header")
    ENV.nj.ctl("POST", "config", {"token_ttl_s": 1})
    tok = nj_token()
    eq(nj_get("/v2/organizations", tok)[0], 200, "fresh short token")
    time.sleep(1.1)
    eq(nj_get("/v2/organizations", tok)[0], 401, "expired token")
    ENV.nj.ctl("POST", "reset")


@test
def nj_devices_paging():
    reset_all()
    tok = nj_token()
    devs = nj_walk("/v2/devices-detailed", 40, tok)
    eq([d["id"] for d in devs], [d.id for d in ENV.ds.devices], "walked all devices in id order")
    d = devs[0]
    for k in ("nodeClass", "approvalStatus", "offline", "displayName", "created", "lastContact", "lastUpdate",
              "os", "system", "references"):
        check(k in d, "devices-detailed lacks %s" % k)
    check(isinstance(d["lastContact"], float), "epoch seconds as numbers")
    for k in ("serialNumber", "biosSerialNumber", "chassisType", "manufacturer", "model", "virtualMachine"):
        check(k in d["system"], "system lacks %s" % k)
    eq(d["references"]["organization"]["id"], d["organizationId"], "references.organization")
    st, _, lean = nj_get("/v2/devices?pageSize=5", tok)
    check("os" not in lean[0] and "nodeClass" in lean[0], "lean devices")
    st, _, page = nj_get("/v2/devices?pageSize=5&after=%d" % ENV.ds.devices[3].id, tok)
    eq([x["id"] for x in page], [x.id for x in ENV.ds.devices[4:9]], "after=id")
    st, _, allof = nj_get("/api/v2/devices", tok)
    eq(len(allof), len(ENV.ds.devices), "no pageSize = all, /api prefix")


@test
def nj_df_filter():
    tok = nj_token()
    ds = ENV.ds
    org = ds.devices[0].org_id
    q = urllib.parse.quote
    st, _, body = nj_get("/v2/devices-detailed?df=" + q("org = %d" % org), tok)
    eq(sorted(d["id"] for d in body), sorted(d.id for d in ds.devices if d.org_id == org), "org =")
    st, _, body = nj_get("/v2/devices?df=" + q("class in (WINDOWS_SERVER,MAC)"), tok)
    eq(sorted(d["id"] for d in body), sorted(d.id for d in ds.devices if d.node_class in ("WINDOWS_SERVER", "MAC")),
       "class in")
    st, _, body = nj_get("/v2/devices?df=" + q("status eq APPROVED AND org = %d" % org), tok)
    eq(sorted(d["id"] for d in body),
       sorted(d.id for d in ds.devices if d.approval == "APPROVED" and d.org_id == org), "status eq + AND")
    st, _, body = nj_get("/v2/devices?df=offline", tok)
    eq(len(body), sum(1 for d in ds.devices if d.offline), "offline")
    eq(nj_get("/v2/devices?df=" + q("colour = red"), tok)[0], 400, "bad df")


@test
def nj_orgs():
    tok = nj_token()
    ds = ENV.ds
    st, _, body = nj_get("/v2/organizations", tok)
    eq([o["id"] for o in body], [o.id for o in ds.organizations], "organizations")
    eq(set(body[0]), {"name", "description", "userData", "nodeApprovalMode", "tags", "fields", "id"}, "org fields")
    st, _, body = nj_get("/v2/organizations-detailed?pageSize=3&after=%d" % ds.organizations[0].id, tok)
    eq([o["id"] for o in body], [o.id for o in ds.organizations[1:4]], "detailed paging")
    check("locations" in body[0] and "policies" in body[0], "detailed fields")
    oid = ds.organizations[2].id
    st, _, body = nj_get("/v2/organization/%d/devices" % oid, tok)
    eq(sorted(d["id"] for d in body), sorted(d.id for d in ds.devices if d.org_id == oid), "org devices")
    eq(nj_get("/v2/organization/99999/devices", tok)[0], 404, "unknown org")
    st, _, body = nj_get("/v2/device/%d" % ds.devices[1].id, tok)
    eq(body["id"], ds.devices[1].id, "device by id")


@test
def nj_mutate():
    reset_all()
    ds = ENV.ds
    d = ds.devices[5]
    ENV.nj.ctl("POST", "clock", {"now": 1795000000.5})
    res = ENV.nj.ctl("POST", "mutate", {"entity": "device", "id": d.id, "set": {"offline": True,
                                                                              "system/serialNumber": "NEWSERIAL"}})
    rec = res["results"][0]["record"]
    eq((rec["offline"], rec["system"]["serialNumber"], rec["lastUpdate"]), (True, "NEWSERIAL", 1795000000.5), "set")
    ENV.nj.ctl("POST", "mutate", {"entity": "device", "id": ds.devices[6].id, "op": "remove"})
    tok = nj_token()
    st, _, body = nj_get("/v2/devices", tok)
    eq(len(body), len(ds.devices) - 1, "removed")
    res = ENV.nj.ctl("POST", "mutate", {"entity": "device", "op": "add",
                                         "record": {"organizationId": d.org_id, "displayName": "NEW-PC"}})
    st, _, body = nj_get("/v2/device/%d" % res["results"][0]["id"], tok)
    eq((st, body["displayName"]), (200, "NEW-PC"), "added")
    reset_all()


# ---------------------------------------------------------------------------
# faults (both vendors)

def _fault(app, spec):
    app.ctl("POST", "faults", {"faults": [spec], "replace": True})


def _cw_companies(extra=""):
    return ENV.cw.request("GET", CW_PREFIX + "/company/companies?pageSize=5" + extra, CW_AUTH)


def _nj_devices(tok, extra=""):
    return ENV.nj.request("GET", "/v2/devices?pageSize=5" + extra, {"Authorization": "Bearer " + tok})


@test
def fault_status_and_counters():
    reset_all()
    _fault(ENV.cw, {"match": "/company/companies", "kind": "status", "status": 500, "times": 2, "after": 1})
    got = [_cw_companies()[0] for _ in range(5)]
    eq(got, [200, 500, 500, 200, 200], "after 1 times 2")
    f = ENV.cw.ctl("GET", "faults")["faults"][0]
    eq((f["seen"], f["applied"]), (5, 2), "counters")
    _fault(ENV.cw, {"match": "/company/companies", "kind": "status", "status": 503})
    st, h, body = _cw_companies()
    eq(st, 503, "503")
    check("text/html" in h["content-type"], "Cloudflare-style HTML for 503")
    _fault(ENV.cw, {"match": "/company/companies", "kind": "status", "status": 404, "method": "POST"})
    eq(_cw_companies()[0], 200, "method filter")
    tok = nj_token()
    _fault(ENV.nj, {"match": "devices", "kind": "status", "status": 500, "times": -1,
                    "body": {"resultCode": "FAILURE", "errorMessage": "boom"}})
    st, _, body = _nj_devices(tok)
    eq((st, json.loads(body)["errorMessage"]), (500, "boom"), "custom body")
    eq(_nj_devices(tok)[0], 500, "forever")
    ENV.nj.ctl("DELETE", "faults")
    eq(_nj_devices(tok)[0], 200, "cleared")


@test
def fault_rate_limit():
    reset_all()
    _fault(ENV.cw, {"match": "companies", "kind": "rate_limit", "retry_after": 1, "times": 1})
    st, h, body = _cw_companies()
    eq((st, h.get("retry-after")), (429, "1"), "429 with Retry-After")
    eq(json.loads(body)["code"], "TooManyRequests", "CW 429 body")
    eq(_cw_companies()[0], 200, "then 200")
    tok = nj_token()
    _fault(ENV.nj, {"match": "devices", "kind": "rate_limit", "times": 1})
    st, h, _ = _nj_devices(tok)
    check(st == 429 and "retry-after" not in h, "429 without Retry-After")


@test
def fault_slow():
    reset_all()
    _fault(ENV.cw, {"match": "companies", "kind": "slow", "delay_s": 0.6, "times": 1})
    t0 = time.time()
    st = _cw_companies()[0]
    check(st == 200 and time.time() - t0 >= 0.55, "slow answer")
    conn = http.client.HTTPConnection("127.0.0.1", ENV.ports["connectwise"], timeout=0.3)
    _fault(ENV.cw, {"match": "companies", "kind": "slow", "delay_s": 1.0, "times": 1})
    try:
        conn.request("GET", CW_PREFIX + "/company/companies", headers=CW_AUTH)
        conn.getresponse().read()
        raise AssertionError("no timeout")
    except socket.timeout:
        pass
    finally:
        conn.close()


@test
def fault_drop():
    reset_all()
    for mode in ("reset", "close"):
        _fault(ENV.cw, {"match": "companies", "kind": "drop", "times": 1, "mode": mode})
        try:
            st, h, body = _cw_companies()
            raise AssertionError("drop (%s) delivered a full body of %d bytes" % (mode, len(body)))
        except (http.client.IncompleteRead, ConnectionError, http.client.RemoteDisconnected):
            pass
        eq(_cw_companies()[0], 200, "after drop")
    tok = nj_token()
    _fault(ENV.nj, {"match": "devices", "kind": "drop", "times": 1})
    try:
        _nj_devices(tok)
        raise AssertionError("ninja drop delivered a body")
    except (http.client.IncompleteRead, ConnectionError, http.client.RemoteDisconnected):
        pass
    log = ENV.nj.ctl("GET", "requests?path=devices")
    eq(log[-1]["fault"], "drop", "logged as drop")


@test
def fault_malformed_truncated():
    reset_all()
    tok = nj_token()
    for app, call in ((ENV.cw, lambda: _cw_companies()), (ENV.nj, lambda: _nj_devices(tok))):
        match = "companies" if app is ENV.cw else "devices"
        _fault(app, {"match": match, "kind": "malformed", "times": 1})
        st, h, body = call()
        eq(st, 200, "malformed status")
        try:
            json.loads(body)
            raise AssertionError("malformed body parsed as JSON")
        except ValueError:
            pass
        _fault(app, {"match": match, "kind": "truncated", "times": 1})
        st, h, body = call()
        eq((st, int(h["content-length"])), (200, len(body)), "truncated: consistent Content-Length")
        try:
            json.loads(body)
            raise AssertionError("truncated body parsed as JSON")
        except ValueError:
            pass
        check(body.startswith(b"[{"), "truncated real JSON")


@test
def fault_empty_page():
    reset_all()
    _fault(ENV.cw, {"match": "page=2", "kind": "empty_page", "times": 1})
    st, h, body = _cw_companies("&page=2")
    eq(body, b"[]", "empty page")
    check("next" in parse_link(h["link"]), "CW empty page keeps rel=next")
    tok = nj_token()
    _fault(ENV.nj, {"match": "after=", "kind": "empty_page", "times": 1})
    st, h, body = _nj_devices(tok, "&after=%d" % ENV.ds.devices[2].id)
    eq((st, body), (200, b"[]"), "ninja empty page")


@test
def fault_huge():
    reset_all()
    _fault(ENV.cw, {"match": "companies", "kind": "huge", "size_mb": 2, "times": 1})
    st, h, body = _cw_companies()
    check(len(body) >= 2 * 1024 * 1024, "huge size %d" % len(body))
    eq(int(h["content-length"]), len(body), "huge Content-Length")
    eq([c["id"] for c in json.loads(body)], [c.id for c in ENV.ds.companies[:5]], "huge body is valid, same data")


@test
def fault_loop():
    reset_all()
    _fault(ENV.cw, {"match": "page=3", "kind": "loop", "times": 1})
    st, h, _ = _cw_companies("&page=3")
    nxt = parse_link(h["link"])["next"]
    check("page=2" in nxt, "loop next points back: %s" % nxt)
    _fault(ENV.cw, {"match": "companies", "kind": "loop", "times": 1})
    st, h, _ = ENV.cw.request("GET", CW_PREFIX + "/company/companies?pageSize=3&pageId=%d" % ENV.ds.companies[4].id,
                              dict(CW_AUTH, **{"pagination-type": "forward-only"}))
    check("pageId=0" in parse_link(h["link"])["next"], "forward-only loop")
    tok = nj_token()
    _fault(ENV.nj, {"match": "after=", "kind": "loop", "times": 1})
    st, _, body = _nj_devices(tok, "&after=%d" % ENV.ds.devices[9].id)
    eq([d["id"] for d in json.loads(body)], [d.id for d in ENV.ds.devices[:5]], "ninja loop returns the first page")


@test
def fault_unauthorized_and_token_revoke():
    reset_all()
    _fault(ENV.cw, {"match": "companies", "kind": "unauthorized", "times": 1})
    st, _, body = _cw_companies()
    eq((st, json.loads(body)["code"]), (401, "Unauthorized"), "CW unauthorized")
    tok = nj_token()
    _fault(ENV.nj, {"match": "devices", "kind": "token_revoke", "times": 1, "after": 1})
    eq(_nj_devices(tok)[0], 200, "before revoke")
    eq(_nj_devices(tok)[0], 401, "revoked on the second request")
    eq(_nj_devices(tok)[0], 401, "old token stays revoked")
    eq(_nj_devices(nj_token())[0], 200, "new token works")


@test
def control_log_clock_config():
    reset_all()
    _cw_companies()
    log = ENV.cw.ctl("GET", "requests")
    eq(len(log), 1, "one request logged (control calls are not)")
    e = log[0]
    eq(e["headers"].get("Authorization"), "Basic [redacted]", "Authorization redacted to its scheme")
    eq((e["method"], e["path"], e["status"], e["params"]["pageSize"]), ("GET", CW_PREFIX + "/company/companies", 200, "5"),
       "log entry")
    check("clientId" in e["headers"], "other headers kept")
    eq(ENV.cw.ctl("GET", "requests?since=%d" % e["seq"]), [], "since")
    ENV.cw.ctl("DELETE", "requests")
    eq(ENV.cw.ctl("GET", "requests"), [], "log cleared")
    c = ENV.cw.ctl("POST", "clock", {"now": "2026-11-25T00:00:00Z"})
    eq(c["now"], "2026-11-25T00:00:00Z", "clock pinned")
    c = ENV.cw.ctl("POST", "clock", {"advance_s": 3600})
    eq(c["now"], "2026-11-25T01:00:00Z", "clock advanced")
    c = ENV.cw.ctl("POST", "clock", {"now": None})
    check(abs(c["epoch"] - time.time()) < 5, "clock back to real time")
    ENV.cw.ctl("POST", "config", {"private_key": "rotated"})
    eq(_cw_companies()[0], 401, "old key after rotation")
    new = dict(CW_AUTH, Authorization="Basic " + base64.b64encode(b"billrecon+pubkey:rotated").decode())
    eq(ENV.cw.request("GET", CW_PREFIX + "/company/companies", new)[0], 200, "new key")
    eq(ENV.cw.json("POST", "/_mock/config", None, {"nope": 1})[0], 400, "unknown config key")
    eq(ENV.cw.json("POST", "/_mock/faults", None, {"kind": "explode"})[0], 400, "bad fault kind")
    reset_all()
    eq(_cw_companies()[0], 200, "reset restores credentials")


@test
def cli_config_and_faults():
    faults = json.dumps({"connectwise": [{"match": "companies", "kind": "status", "status": 502, "times": 1}],
                         "ninjaone": [{"match": "oauth", "kind": "status", "status": 500, "times": 1}]})
    proc, ports, port_file = start_server(["--clients", "3", "--config", "connectwise.public_key=pk2",
                                           "--config", "ninjaone.token_ttl_s=5", "--faults", faults])
    try:
        cw = Http(ports["connectwise"])
        auth = dict(CW_AUTH, Authorization="Basic " + base64.b64encode(b"billrecon+pk2:privkey").decode())
        eq(cw.request("GET", CW_PREFIX + "/company/companies", auth)[0], 502, "startup fault")
        eq(cw.request("GET", CW_PREFIX + "/company/companies", auth)[0], 200, "startup config")
        nj = Http(ports["ninjaone"])
        body = urllib.parse.urlencode(dict(NJ_CREDS, grant_type="client_credentials", scope="monitoring"))
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        eq(nj.request("POST", "/ws/oauth/token", form, body)[0], 500, "ninja startup fault")
        st, _, data = nj.json("POST", "/ws/oauth/token", form, body)
        eq((st, data["expires_in"]), (200, 5), "token ttl from --config")
        nj.ctl("POST", "reset")
        eq(nj.request("POST", "/ws/oauth/token", form, body)[0], 500, "reset restores startup faults")
    finally:
        rc = stop_server(proc)
    eq(rc, 0, "exit code after SIGTERM")
    check(not os.path.exists(port_file), "port file removed on exit")


@test
def cli_fixed_ports_and_data_file():
    ds = msp_generator.generate(3, 4)
    tmp = tempfile.mkdtemp(prefix="mockdata", dir=ENV.tmp)
    data = os.path.join(tmp, "d.json")
    ds.save(data)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    free = s.getsockname()[1]
    s.close()
    port_file = os.path.join(tmp, "ports.json")
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "server.py"), "--data", data, "--vendors", "ninjaone",
                             "--ports", "ninjaone=%d" % free, "--port-file", port_file],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(200):
            if os.path.exists(port_file):
                break
            time.sleep(0.05)
        with open(port_file) as f:
            eq(json.load(f), {"ninjaone": free}, "fixed port")
        eq(Http(free).ctl("GET", "health")["records"]["devices"], len(ds.devices), "dataset from file")
    finally:
        eq(stop_server(proc), 0, "exit code")


# ---------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--big", action="store_true", help="also time 5,000 clients")
    ap.add_argument("-k", help="run only tests whose name contains this")
    ap.add_argument("-v", action="store_true", help="print each test")
    args = ap.parse_args()
    ENV.big = args.big
    ENV.tmp = tempfile.mkdtemp(prefix="mock-selftest-")
    ENV.ds = msp_generator.generate(SEED, CLIENTS)
    proc, ENV.ports, _ = start_server()
    ENV.cw = Http(ENV.ports["connectwise"])
    ENV.nj = Http(ENV.ports["ninjaone"])
    passed = failed = 0
    try:
        for fn in TESTS:
            if args.k and args.k not in fn.__name__:
                continue
            t0 = time.time()
            try:
                note = fn()
                passed += 1
                if args.v or note:
                    print("ok   %-40s %.2fs %s" % (fn.__name__, time.time() - t0, note or ""))
            except Exception as e:  # noqa: BLE001 - report every kind of failure
                failed += 1
                print("FAIL %-40s %s" % (fn.__name__, e))
                if not isinstance(e, AssertionError):
                    traceback.print_exc()
    finally:
        rc = stop_server(proc)
        err = proc.stderr.read().decode()
        if "Traceback" in err:
            failed += 1
            print("FAIL mock server printed a traceback:\n" + err)
        elif rc != 0:
            failed += 1
            print("FAIL mock server exit code %s" % rc)
    shutil.rmtree(ENV.tmp, ignore_errors=True)
    print("mock selftest: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
