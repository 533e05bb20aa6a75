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
import collections
import http.client
import json
import math
import os
import re
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
NEW_VENDORS = ("halopsa", "autotask", "pax8", "msgraph", "partnercenter", "dattormm")
SHORT = {"halopsa": "halo", "autotask": "at", "pax8": "pax8", "msgraph": "graph", "partnercenter": "pc",
         "dattormm": "datto"}


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
    for app in ENV.apps.values():
        app.ctl("POST", "reset")


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
    eq(sorted(ENV.ports), sorted(["connectwise", "ninjaone"] + list(NEW_VENDORS)), "port file vendors")
    for name, app in ENV.apps.items():
        eq(app.ctl("GET", "health")["vendor"], name, "health of %s" % name)
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
        eq(sorted(ports), ["connectwise", "ninjaone"], "default vendors")
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
# The other systems: generator consistency

ORIGINAL_TABLES = ("catalog", "companies", "agreements", "additions", "organizations", "locations", "devices")
ADDED_GT_KEYS = ("halo_client_id", "autotask_company_id", "ms_tenant_id", "ms_tenant_name", "ms_source",
                 "pax8_company_id", "pax8_name", "pc_customer_id", "pc_name", "datto_site_id", "datto_site_uid",
                 "datto_name", "datto_mode", "contact_domains")
# sha256 of the ConnectWise / NinjaOne data of seed 11, 12 clients, before the other systems were added:
# existing tests rely on it, so it must never change.
ORIGINAL_DIGEST_11_12 = "c549c7ae31c7a12bab2f7396c46ea2e307e9405e80574d98740ede69a6ecb43f"


@test
def generator_existing_data_unchanged():
    import hashlib
    o = msp_generator.generate(11, 12).to_json_obj()
    gt = dict(o["ground_truth"])
    for k in ("notes_systems", "partner_tenant_id", "cross_rmm_duplicates"):
        gt.pop(k)
    gt["clients"] = [{k: v for k, v in c.items() if k not in ADDED_GT_KEYS} for c in gt["clients"]]
    gt["non_clients"] = [{k: v for k, v in c.items()
                          if k not in ("halo_client_id", "autotask_company_id", "contact_domains")}
                         for c in gt["non_clients"]]
    text = json.dumps({"tables": {k: v for k, v in o["tables"].items() if k in ORIGINAL_TABLES}, "gt": gt,
                       "meta": o["meta"]}, sort_keys=True)
    eq(hashlib.sha256(text.encode()).hexdigest(), ORIGINAL_DIGEST_11_12, "ConnectWise/NinjaOne data of seed 11")


@test
def generator_systems_consistent():
    ds = msp_generator.generate(5, 120)
    gt = ds.ground_truth
    cw = {c.id: c for c in ds.companies}
    halo = {c.id: c for c in ds.halo_clients}
    at = {c.id: c for c in ds.at_companies}
    # The PSAs are alternatives: the same companies, agreements and lines.
    eq(len(ds.halo_lines), len(ds.additions), "a Halo line per ConnectWise addition")
    eq(len(ds.at_contract_services), len(ds.additions), "an Autotask contract service per addition")
    eq(len(ds.at_contracts), len(ds.agreements), "an Autotask contract per agreement")
    eq(len(ds.halo_invoices), len({x.agreement_id for x in ds.additions}), "a Halo invoice per agreement with lines")
    eq(len(ds.at_companies), len(ds.companies), "an Autotask company per ConnectWise company")
    check(0 in at, "Autotask's own company has id 0")
    check(all(i.id < 0 for i in ds.halo_invoices), "Halo recurring invoice ids are negative")
    adds = {x.id: x for x in ds.additions}
    for ln in ds.halo_lines:
        eq(ln.qty, float(adds[ln.cw_addition_id].quantity), "Halo qty of addition %d" % ln.cw_addition_id)
    for cs in ds.at_contract_services:
        eq(cs.units, int(math.ceil(adds[cs.cw_addition_id].quantity)), "Autotask units")
    tenants = {t.id: t for t in ds.ms_tenants}
    users_of = collections.defaultdict(list)
    for u in ds.ms_users:
        users_of[u.tenant_id].append(u)
    sub_qty = collections.Counter()
    for s in ds.pax8_subscriptions:
        if s.vendor_subscription_id:
            sub_qty[s.vendor_subscription_id] += s.quantity
    for s in ds.pc_subscriptions:
        sub_qty[s.id] += s.quantity
    for sku in ds.ms_skus:
        holders = sum(1 for u in users_of[sku.tenant_id] if sku.sku_id in u.skus)
        eq(sku.consumed, holders, "consumedUnits = users holding %s" % sku.part_number)
        if sku.part_number not in ("FLOW_FREE", "POWER_BI_STANDARD") and tenants[sku.tenant_id].client >= 0:
            eq(sum(sub_qty[i] for i in sku.subscription_ids), sku.enabled + sku.warning + sku.suspended,
               "prepaid units = subscription quantities (%s)" % sku.part_number)
    kinds = collections.Counter()
    for c in gt["clients"]:
        if c["psa_company_id"]:
            eq(halo[c["halo_client_id"]].name, cw[c["psa_company_id"]].name, "Halo client name = PSA name")
            eq(at[c["autotask_company_id"]].name, cw[c["psa_company_id"]].name, "Autotask name = PSA name")
        if c["ms_tenant_id"]:
            t = tenants[c["ms_tenant_id"]]
            eq(list(t.domains), c["domains"] if c["role"] != "franchise" else list(t.domains), "verified domains")
            check(set(c["domains"]) & set(t.domains), "tenant domains are the client's e-mail domains")
            check(all(u.upn.split("@")[1] in t.domains for u in users_of[t.id] if u.user_type == "Member"),
                  "user principal names on the client's domain")
            kinds["tenant"] += 1
            kinds["renamed"] += t.name != c["psa_name"]
        if c["pc_customer_id"]:
            eq(c["pc_customer_id"], c["ms_tenant_id"], "Partner Center customer id = tenant id")
        if c["datto_site_uid"]:
            kinds["datto"] += 1
        if c["pax8_company_id"]:
            kinds["pax8"] += 1
    check(kinds["tenant"] > 80 and kinds["renamed"] > kinds["tenant"] * 0.4, "tenants %r" % kinds)
    check(kinds["datto"] > 20 and kinds["pax8"] > 40, "datto / pax8 coverage %r" % kinds)
    users = ds.ms_users
    check(any(not u.enabled and u.skus for u in users), "disabled users still licensed")
    check(any(u.enabled and not u.skus for u in users), "enabled unlicensed users")
    check(any(u.last_sign_in is None for u in users), "never signed in")
    check(any(u.last_sign_in and u.last_sign_in < ds.base_epoch - 90 * 86400 for u in users), "old sign-ins")
    check(any(u.user_type == "Guest" for u in users), "guests")
    check({"Enabled", "Warning"} <= {s.status for s in ds.ms_skus}, "SKU statuses")
    check(any(s.enabled > s.consumed for s in ds.ms_skus) and any(s.enabled == s.consumed for s in ds.ms_skus),
          "prepaid vs consumed vary")
    check({"Monthly", "Annual"} <= {s.billing_term for s in ds.pax8_subscriptions}, "Pax8 terms")
    check(any(s.status == "Cancelled" for s in ds.pax8_subscriptions), "cancelled Pax8 subscriptions")
    check({"P1M", "P1Y"} <= {s.term for s in ds.pc_subscriptions}, "Partner Center terms")
    dups = gt["cross_rmm_duplicates"]
    nj = {d.id: d for d in ds.devices}
    check(len(dups) > 50, "devices in both RMMs")
    for d in dups[:50]:
        eq(nj[d["ninja_device_id"]].serial, next(x.serial for x in ds.datto_devices if x.uid == d["datto_device_uid"]),
           "the same serial in NinjaOne and Datto")
    check(any(d.deleted for d in ds.datto_devices), "deleted Datto devices")
    check({"device", "esxihost", "printer", "rmmnetworkdevice"} <= {d.device_class for d in ds.datto_devices},
          "Datto device classes %r" % {d.device_class for d in ds.datto_devices})
    check(gt["partner_tenant_id"] in tenants and tenants[gt["partner_tenant_id"]].client == -1, "partner tenant")


# ---------------------------------------------------------------------------
# helpers for the new vendors

HALO_CREDS = {"client_id": "billrecon-halo-client", "client_secret": "billrecon-halo-secret"}
AT_AUTH = {"ApiIntegrationCode": "BILLRECON-AT-TRACKING", "UserName": "billrecon-api@example.com",
           "Secret": "billrecon-at-secret"}
AT = "/ATServicesRest/V1.0"
PAX8_CREDS = {"client_id": "billrecon-pax8-client", "client_secret": "billrecon-pax8-secret"}
GRAPH_CREDS = {"client_id": "billrecon-graph-app", "client_secret": "billrecon-graph-secret"}
PC_CREDS = {"client_id": "billrecon-pc-app", "client_secret": "billrecon-pc-secret"}
DATTO_CREDS = {"username": "billrecon-datto-key", "password": "billrecon-datto-secret"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
PC_HDRS = {"MS-RequestId": "0f8fad5b-d9cb-469f-a165-70867728950e",
           "MS-CorrelationId": "7c9e6679-7425-40de-944b-e07fc1f90ae7"}
ALL_ID = {"op": "exist", "field": "id"}


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


def halo_token(scope="all", tenant=None):
    body = urllib.parse.urlencode(dict(HALO_CREDS, grant_type="client_credentials", scope=scope))
    st, _, obj = ENV.halo.json("POST", "/auth/token" + ("?tenant=" + tenant if tenant else ""), FORM, body)
    eq(st, 200, "halo token")
    return obj["access_token"]


def halo_get(path, tok=None):
    return ENV.halo.json("GET", path, bearer(tok or halo_token()))


def at_post(path, body, headers=None):
    return ENV.at.json("POST", AT + path, dict(AT_AUTH, **(headers or {})), body)


def at_get(url):
    return ENV.at.json("GET", path_of(url) if url.startswith("http") else AT + url, AT_AUTH)


def at_walk(entity, body):
    st, _, page = at_post("/%s/query" % entity, body)
    eq(st, 200, "autotask query %s" % entity)
    items, n, seen = list(page["items"]), 1, set()
    while page["pageDetails"]["nextPageUrl"]:
        url = page["pageDetails"]["nextPageUrl"]
        check(url not in seen, "nextPageUrl loop")
        seen.add(url)
        st, _, page = at_get(url)
        eq(st, 200, "autotask next page")
        items.extend(page["items"])
        n += 1
    return items, n


def pax8_token(audience="https://api.pax8.com", path="/v1/token"):
    st, _, obj = ENV.pax8.json("POST", path, None, dict(PAX8_CREDS, audience=audience,
                                                        grant_type="client_credentials"))
    eq(st, 200, "pax8 token")
    return obj["access_token"]


def pax8_get(path, tok=None):
    return ENV.pax8.json("GET", path, bearer(tok or pax8_token()))


def pax8_walk(path, size):
    tok = pax8_token()
    items, page = [], 0
    while True:
        st, _, body = pax8_get("%s%spage=%d&size=%d" % (path, "&" if "?" in path else "?", page, size), tok)
        eq(st, 200, "pax8 page")
        eq(body["page"]["number"], page, "page number")
        items.extend(body["content"])
        if body["page"]["number"] + 1 >= body["page"]["totalPages"]:
            return items, page + 1
        page += 1


def graph_token(tenant, scope="https://graph.microsoft.com/.default", creds=None, version=2):
    form = dict(creds or GRAPH_CREDS, grant_type="client_credentials")
    if version == 2:
        form["scope"] = scope
        path = "/%s/oauth2/v2.0/token" % tenant
    else:
        form["resource"] = scope
        path = "/%s/oauth2/token" % tenant
    return ENV.graph.json("POST", path, FORM, urllib.parse.urlencode(form))


def graph_tok(tenant):
    st, _, body = graph_token(tenant)
    eq(st, 200, "graph token for %s: %r" % (tenant, body))
    return body["access_token"]


def graph_get(path, tok, headers=None):
    return ENV.graph.json("GET", path, dict(bearer(tok), **(headers or {})))


def big_tenant():
    """The client tenant with the most users."""
    counts = collections.Counter(u.tenant_id for u in ENV.ds.ms_users)
    clients = {t.id for t in ENV.ds.ms_tenants if t.client >= 0}
    return max((n, t) for t, n in counts.items() if t in clients)[1]


def graph_walk(tenant, top, select="id,displayName,accountEnabled,assignedLicenses"):
    tok = graph_tok(tenant)
    path = "/v1.0/users?$top=%d&$select=%s" % (top, select)
    items, n = [], 0
    while path:
        st, _, body = graph_get(path, tok)
        eq(st, 200, "graph page: %r" % (body,))
        items.extend(body["value"])
        n += 1
        nxt = body.get("@odata.nextLink")
        check(nxt is None or nxt.startswith("http://127.0.0.1:%d/v1.0/users?" % ENV.ports["msgraph"]),
              "absolute nextLink %s" % nxt)
        path = path_of(nxt) if nxt else None
    return items, n


def pc_tok(version=1):
    partner = ENV.ds.ground_truth["partner_tenant_id"]
    form = dict(PC_CREDS, grant_type="client_credentials")
    if version == 1:
        form["resource"] = "https://api.partnercenter.microsoft.com"
        path = "/%s/oauth2/token" % partner
    else:
        form["scope"] = "https://api.partnercenter.microsoft.com/.default"
        path = "/%s/oauth2/v2.0/token" % partner
    st, _, body = ENV.pc.json("POST", path, FORM, urllib.parse.urlencode(form))
    eq(st, 200, "pc token %r" % (body,))
    return body["access_token"]


def pc_get(path, tok=None, headers=None):
    hdrs = dict(bearer(tok or pc_tok()), **PC_HDRS)
    hdrs.update(headers or {})
    return ENV.pc.json("GET", "/v1" + path, hdrs)


def pc_walk(size):
    tok = pc_tok()
    st, _, body = pc_get("/customers?size=%d" % size, tok)
    items, n = list(body["items"]), 1
    while "next" in body.get("links", {}):
        nxt = body["links"]["next"]
        hdrs = {h["key"]: h["value"] for h in nxt["headers"]}
        st, _, body = pc_get(nxt["uri"], tok, hdrs)
        eq(st, 200, "pc next page")
        items.extend(body["items"])
        n += 1
    return items, n


def datto_token():
    basic = {"Authorization": "Basic " + base64.b64encode(b"public-client:public").decode()}
    st, _, body = ENV.datto.json("POST", "/auth/oauth/token", dict(FORM, **basic),
                                 urllib.parse.urlencode(dict(DATTO_CREDS, grant_type="password")))
    eq(st, 200, "datto token")
    return body["access_token"]


def datto_get(path, tok=None):
    return ENV.datto.json("GET", path_of(path) if path.startswith("http") else path, bearer(tok or datto_token()))


def datto_walk(path, size):
    tok = datto_token()
    url = "%s%smax=%d&page=0" % (path, "&" if "?" in path else "?", size)
    key = "sites" if "sites" in path else "devices"
    items, n = [], 0
    while url:
        st, _, body = datto_get(url, tok)
        eq(st, 200, "datto page")
        items.extend(body[key])
        n += 1
        url = body["pageDetails"]["nextPageUrl"]
        check(url is None or url.startswith("http://127.0.0.1:%d/api/v2/" % ENV.ports["dattormm"]), "absolute url")
    return items, n


# ---------------------------------------------------------------------------
# HaloPSA

@test
def halo_auth():
    reset_all()
    st, _, body = ENV.halo.json("POST", "/auth/token", FORM, urllib.parse.urlencode(
        dict(HALO_CREDS, client_secret="nope", grant_type="client_credentials", scope="all")))
    eq((st, body["error"]), (400, "invalid_client"), "bad secret")
    st, _, body = ENV.halo.json("POST", "/auth/token", FORM, urllib.parse.urlencode(
        dict(HALO_CREDS, grant_type="client_credentials")))
    eq((st, body["error"]), (400, "invalid_scope"), "no scope")
    st, _, body = ENV.halo.json("POST", "/auth/token", FORM, urllib.parse.urlencode(
        dict(HALO_CREDS, grant_type="password", scope="all")))
    eq((st, body["error"]), (400, "unsupported_grant_type"), "grant type")
    tok = halo_token()
    eq(halo_get("/api/Client", tok)[0], 200, "token works")
    eq(ENV.halo.json("GET", "/api/Client")[0], 401, "no token")
    eq(ENV.halo.json("GET", "/api/client", bearer("junk"))[0], 401, "unknown token")
    ENV.halo.ctl("POST", "config", {"tenant": "acme"})
    st, _, body = ENV.halo.json("POST", "/auth/token", FORM, urllib.parse.urlencode(
        dict(HALO_CREDS, grant_type="client_credentials", scope="all")))
    eq(st, 400, "tenant required once configured")
    halo_token(tenant="acme")
    st, _, body = ENV.halo.json("GET", "/api/authinfo")
    eq(body["tenant_id"], "acme", "authinfo")
    ro = halo_token("read:customers", tenant="acme")
    eq(halo_get("/api/Client", ro)[0], 200, "read:customers reads clients")
    eq(halo_get("/api/RecurringInvoice", ro)[0], 403, "but not invoices")
    ENV.halo.ctl("POST", "tokens/revoke")
    eq(halo_get("/api/Client", ro)[0], 401, "revoked")
    reset_all()


@test
def halo_lists_and_paging():
    reset_all()
    ds = ENV.ds
    tok = halo_token()
    active = [c for c in ds.halo_clients if not c.inactive]
    st, _, body = halo_get("/api/Client", tok)
    eq((body["record_count"], [c["id"] for c in body["clients"]]), (len(active), [c.id for c in active]),
       "without pageinate: every active client")
    st, _, body = halo_get("/api/Client?includeinactive=true&page_size=2", tok)
    eq(len(body["clients"]), len(ds.halo_clients), "page_size without pageinate is ignored")
    got, page = [], 1
    while True:
        st, _, body = halo_get("/api/Client?includeinactive=true&pageinate=true&page_size=3&page_no=%d" % page, tok)
        got.extend(c["id"] for c in body["clients"])
        if page * 3 >= body["record_count"]:
            break
        page += 1
    eq(got, [c.id for c in ds.halo_clients], "paged by record_count")
    eq(page, -(-len(ds.halo_clients) // 3), "pages")
    st, _, body = halo_get("/api/Client?includeinactive=true&pageinate=true&page_size=3&page_no=99", tok)
    eq((body["clients"], body["record_count"]), ([], len(ds.halo_clients)), "page past the end")
    eq(halo_get("/api/Client?pageinate=true&page_size=0", tok)[0], 400, "page_size 0")
    st, _, body = halo_get("/api/Client?includeinactive=true&count=2", tok)
    eq(len(body["clients"]), 2, "count")
    c = ds.halo_clients[3]
    st, _, body = halo_get("/api/Client/%d" % c.id, tok)
    eq((body["id"], body["name"], body["inactive"]), (c.id, c.name, bool(c.inactive)), "client by id")
    eq(halo_get("/api/Client/999999", tok)[0], 404, "unknown client")
    st, _, body = halo_get("/api/RecurringInvoice?pageinate=true&page_size=50&page_no=1", tok)
    eq(body["record_count"], len(ds.halo_invoices), "invoices")
    check("lines" not in body["invoices"][0], "no lines without includelines")
    st, _, body = halo_get("/api/RecurringInvoice?includelines=true", tok)
    lines = [ln for inv in body["invoices"] for ln in inv["lines"]]
    eq(sorted(ln["id"] for ln in lines), sorted(ln.id for ln in ds.halo_lines), "every line")
    inv = ds.halo_invoices[0]
    st, _, body = halo_get("/api/RecurringInvoice/%d" % inv.id, tok)
    eq((st, body["id"], body["client_id"]), (200, inv.id, inv.client_id), "negative id GET")
    check(body["lines"] and all(ln["ihid"] == inv.id for ln in body["lines"]), "single GET has lines")
    check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?", body["last_modified"]), "zone-less time")
    check(body["schedule"]["period"] == body["period"], "schedule.period")
    st, _, body = halo_get("/api/RecurringInvoice?client_id=%d&includelines=true" % inv.client_id, tok)
    eq(sorted(i["id"] for i in body["invoices"]), sorted(i.id for i in ds.halo_invoices if i.client_id == inv.client_id),
       "client_id filter")
    word = ds.halo_clients[4].name.split()[0]
    st, _, body = halo_get("/api/Client?includeinactive=true&search=%s" % urllib.parse.quote(word.lower()), tok)
    eq([c["id"] for c in body["clients"]], [c.id for c in ds.halo_clients if word.lower() in c.name.lower()],
       "search")
    st, _, body = halo_get("/api/Client?includeinactive=true&orderdesc=name", tok)
    names = [c["name"].lower() for c in body["clients"]]
    eq(names, sorted(names, reverse=True), "orderdesc")
    st, _, body = halo_get("/api/ClientContract", tok)
    eq(body["record_count"], len(ds.halo_contracts), "contracts")
    check({"billingperiod", "billing_period_string", "start_date", "contract_status"} <= set(body["contracts"][0]),
          "contract fields")
    ENV.halo.ctl("POST", "config", {"utc_offset_minutes": 60})
    st, _, body = halo_get("/api/RecurringInvoice/%d" % inv.id, tok)
    check(body["schedule"]["startdate"].endswith("T01:00:00"), "utc_offset_minutes shifts zone-less times")
    reset_all()


@test
def halo_write_back():
    reset_all()
    ds = ENV.ds
    tok = halo_token()
    inv = next(i for i in ds.halo_invoices if sum(1 for ln in ds.halo_lines if ln.invoice_id == i.id) >= 2)
    ENV.halo.ctl("POST", "clock", {"now": "2026-11-20T10:00:00Z"})
    st, _, body = halo_get("/api/RecurringInvoice/%d" % inv.id, tok)
    lines = body["lines"]
    lines[0]["qty_order"] = 42
    st, _, saved = ENV.halo.json("POST", "/api/RecurringInvoice", bearer(tok), [{"id": inv.id, "lines": lines}])
    eq(st, 200, "post whole invoice")
    eq(saved["lines"][0]["qty_order"], 42.0, "quantity saved")
    eq(saved["lines"][0]["net_amount"], round(42 * lines[0]["unit_price"], 2), "net_amount recomputed")
    eq(saved["last_modified"], "2026-11-20T10:00:00.000", "last_modified from the mock clock")
    st, _, body = halo_get("/api/RecurringInvoice/%d" % inv.id, tok)
    eq(len(body["lines"]), len(lines), "all lines kept")
    bad = [dict(ln) for ln in body["lines"]]
    bad[0]["qty_order"] = "lots"
    eq(ENV.halo.json("POST", "/api/RecurringInvoice", bearer(tok), [{"id": inv.id, "lines": bad}])[0], 400,
       "non-numeric qty_order")
    eq(halo_get("/api/RecurringInvoice/%d" % inv.id, tok)[2]["lines"][0]["qty_order"], 42.0, "a bad post changes nothing")
    st, _, saved = ENV.halo.json("POST", "/api/RecurringInvoice", bearer(tok),
                                 [{"id": inv.id, "lines": body["lines"][:1] + [{"item_code": "NEW", "qty_order": 2}]}])
    eq([ln["item_code"] for ln in saved["lines"]], [body["lines"][0]["item_code"], "NEW"],
       "lines left out are deleted, lines without id are added")
    lid = saved["lines"][0]["id"]
    st, _, out = ENV.halo.json("POST", "/api/RecurringInvoice/updatelines", bearer(tok),
                               [{"id": lid, "qty_order": 7}])
    eq((st, out[0]["qty_order"]), (200, 7.0), "updatelines")
    st, _, out = ENV.halo.json("POST", "/api/RecurringInvoice/Lines", bearer(tok),
                               [{"ihid": inv.id, "item_code": "ADD", "qty_order": 1}])
    eq((st, out[0]["ihid"]), (200, inv.id), "add lines")
    eq(ENV.halo.json("POST", "/api/RecurringInvoice", bearer(tok), [{"id": -99999, "lines": []}])[0], 404,
       "unknown invoice")
    log = ENV.halo.ctl("GET", "requests?method=POST&path=RecurringInvoice$")
    eq(log[0]["body"][0]["id"], inv.id, "POST body in the request log")
    reset_all()
    st, _, body = halo_get("/api/RecurringInvoice/%d" % inv.id, halo_token())
    eq(body["lines"][0]["qty_order"], lines[0]["qty_order"] if False else
       float(next(ln.qty for ln in ds.halo_lines if ln.id == body["lines"][0]["id"])), "reset restores")


@test
def halo_mutate():
    reset_all()
    ln = ENV.ds.halo_lines[2]
    ENV.halo.ctl("POST", "clock", {"now": "2026-11-21T00:00:00Z"})
    ENV.halo.ctl("POST", "mutate", {"entity": "line", "id": ln.id, "set": {"qty_order": 3}})
    st, _, body = halo_get("/api/RecurringInvoice/%d" % ln.invoice_id)
    got = next(x for x in body["lines"] if x["id"] == ln.id)
    eq((got["qty_order"], body["last_modified"]), (3, "2026-11-21T00:00:00.000"), "line mutated, invoice stamped")
    ENV.halo.ctl("POST", "mutate", {"entity": "line", "id": ln.id, "op": "remove"})
    st, _, body = halo_get("/api/RecurringInvoice/%d" % ln.invoice_id)
    check(all(x["id"] != ln.id for x in body["lines"]), "line removed")
    c = ENV.ds.halo_clients[1]
    ENV.halo.ctl("POST", "mutate", {"entity": "client", "id": c.id, "set": {"name": 17}})
    eq(halo_get("/api/Client/%d" % c.id)[2]["name"], 17, "wrong-typed field served as set")
    eq(len(ENV.halo.ctl("GET", "data/lines")), len(ENV.ds.halo_lines) - 1, "data endpoint")
    reset_all()


# ---------------------------------------------------------------------------
# Autotask

@test
def at_auth_and_zone():
    reset_all()
    st, _, body = ENV.at.json("GET", "/atservicesrest/V1.0/zoneInformation?user=" + AT_AUTH["UserName"])
    eq(st, 200, "zone information without credentials")
    eq(body["url"], "http://127.0.0.1:%d/ATServicesRest/" % ENV.ports["autotask"], "zone url")
    check({"zoneName", "url", "webUrl", "ci"} <= set(body), "zone fields")
    eq(ENV.at.json("GET", "/atservicesrest/V1.0/zoneInformation?user=nobody@x.com")[0], 404, "unknown user")
    eq(ENV.at.json("GET", "/atservicesrest/versioninformation")[2], {"apiVersions": ["1.0"]}, "versions")
    q = {"filter": [ALL_ID]}
    eq(at_post("/Companies/query", q)[0], 200, "good headers")
    st, _, body = ENV.at.json("POST", AT + "/Companies/query", dict(AT_AUTH, Secret="wrong"), q)
    eq((st, "errors" in body), (401, True), "wrong secret")
    eq(ENV.at.json("POST", AT + "/Companies/query", {"UserName": AT_AUTH["UserName"]}, q)[0], 401, "missing headers")
    lower = {k.lower(): v for k, v in AT_AUTH.items()}
    eq(ENV.at.json("POST", "/atservicesrest/v1.0/companies/query", lower, q)[0], 200,
       "header names and path case-insensitive")
    log = ENV.at.ctl("GET", "requests?path=Companies")
    check(AT_AUTH["Secret"] not in json.dumps(log) and AT_AUTH["ApiIntegrationCode"] not in json.dumps(log),
          "secret headers redacted in the log")


@test
def at_query_paging():
    reset_all()
    ds = ENV.ds
    items, pages = at_walk("Companies", {"MaxRecords": 4, "filter": [ALL_ID]})
    eq([c["id"] for c in items], [c.id for c in ds.at_companies], "walked companies in id order")
    eq(pages, -(-len(ds.at_companies) // 4), "pages")
    check(all(not k[0].isupper() for k in items[0]), "camelCase fields")
    st, _, p1 = at_post("/Companies/query", {"MaxRecords": 4, "filter": [ALL_ID]})
    eq(p1["pageDetails"]["prevPageUrl"], None, "no prevPageUrl on page 1")
    check(p1["pageDetails"]["nextPageUrl"].startswith("http://127.0.0.1:%d/ATServicesRest/V1.0/Companies/query?"
                                                      % ENV.ports["autotask"]), "absolute nextPageUrl")
    st, _, p2 = at_get(p1["pageDetails"]["nextPageUrl"])
    st, _, back = at_get(p2["pageDetails"]["prevPageUrl"])
    eq([c["id"] for c in back["items"]], [c["id"] for c in p1["items"]], "prevPageUrl")
    search = urllib.parse.quote(json.dumps({"filter": [{"op": "eq", "field": "companytype", "value": 7}]}))
    st, _, body = at_get("/Companies/query?search=" + search)
    eq(sorted(c["id"] for c in body["items"]), sorted(c.id for c in ds.at_companies if c.type == 7),
       "GET ?search=, case-insensitive field")
    st, _, body = at_post("/Companies/query", {"IncludeFields": ["companyName"], "filter": [ALL_ID]})
    eq(set(body["items"][0]), {"id", "companyName"}, "IncludeFields")
    st, _, body = at_post("/Companies/query/count", {"filter": [{"op": "eq", "field": "isActive", "value": True}]})
    eq(body, {"queryCount": sum(1 for c in ds.at_companies if c.active)}, "count")
    name = ds.at_companies[3].name
    flt = {"filter": [{"op": "or", "items": [{"op": "beginsWith", "field": "companyName", "value": name[:5].lower()},
                                             {"op": "in", "field": "id", "value": [0]}]}]}
    st, _, body = at_post("/Companies/query", flt)
    eq(sorted(c["id"] for c in body["items"]),
       sorted(c.id for c in ds.at_companies if c.name.lower().startswith(name[:5].lower()) or c.id == 0), "or/in/beginsWith")
    pick = ds.at_companies[6]
    cases = [
        ({"op": "noteq", "field": "companyType", "value": 1}, lambda c: c.type != 1),
        ({"op": "lt", "field": "id", "value": pick.id}, lambda c: c.id < pick.id),
        ({"op": "lte", "field": "id", "value": pick.id}, lambda c: c.id <= pick.id),
        ({"op": "gte", "field": "id", "value": pick.id}, lambda c: c.id >= pick.id),
        ({"op": "endsWith", "field": "companyName", "value": pick.name[-4:].upper()},
         lambda c: c.name.lower().endswith(pick.name[-4:].lower())),
        ({"op": "contains", "field": "companyName", "value": "dental"}, lambda c: "dental" in c.name.lower()),
        ({"op": "notExist", "field": "webAddress"}, lambda c: not c.web),
        ({"op": "notIn", "field": "companyType", "value": [1, 7]}, lambda c: c.type not in (1, 7)),
        ({"op": "and", "items": [{"op": "eq", "field": "isActive", "value": "true"},
                                 {"op": "lt", "field": "createDate", "value": "2024-01-01T00:00:00Z"}]},
         lambda c: c.active and c.create_date < msp_generator.parse_iso("2024-01-01")),
    ]
    for flt, want in cases:
        st, _, body = at_post("/Companies/query", {"filter": [flt]})
        eq(sorted(c["id"] for c in body["items"]), sorted(c.id for c in ds.at_companies if want(c)), flt["op"])
    eq(at_post("/Companies/query", {"filter": []})[0], 500, "a query needs a filter")
    eq(at_post("/Companies/query", {"filter": [{"op": "eq", "field": "nope", "value": 1}]})[0], 500, "unknown field")
    eq(at_post("/Companies/query", {"filter": [{"op": "like", "field": "id", "value": 1}]})[0], 500, "unknown op")
    eq(at_post("/Companies/query", {"MaxRecords": 501, "filter": [ALL_ID]})[0], 500, "MaxRecords over 500")
    st, _, body = at_get("/Companies/%d" % ds.at_companies[1].id)
    eq(body["item"]["id"], ds.at_companies[1].id, "single GET")
    eq(at_get("/Companies/1")[2], {"item": None}, "unknown id")
    units, _ = at_walk("ContractServiceUnits", {"MaxRecords": 50, "filter": [ALL_ID]})
    contracts = {c.id: c for c in ds.at_contracts}
    want = sum(len(msp_generator.autotask_unit_periods(contracts[cs.contract_id], cs, ds.base_epoch))
               for cs in ds.at_contract_services)
    eq(len(units), want, "every unit period")
    check(re.fullmatch(r"\d{4}-\d\d-\d\dT00:00:00", units[0]["startDate"]), "zone-less dates")


@test
def at_modified_filter_and_children():
    reset_all()
    ds = ENV.ds
    ENV.at.ctl("POST", "clock", {"now": "2026-11-25T12:00:00Z"})
    c = ds.at_companies[4]
    ENV.at.ctl("POST", "mutate", {"entity": "company", "id": c.id, "set": {"companyName": "Renamed"}})
    k = ds.at_contracts[2]
    ENV.at.ctl("POST", "mutate", {"entity": "contract", "id": k.id, "set": {"contractName": "Renamed contract"}})
    since = {"op": "gt", "field": "lastTrackedModifiedDateTime", "value": "2026-11-25T00:00:00Z"}
    st, _, body = at_post("/Companies/query", {"filter": [since]})
    eq([(x["id"], x["companyName"]) for x in body["items"]], [(c.id, "Renamed")], "lastTrackedModifiedDateTime gt")
    st, _, body = at_post("/Contracts/query", {"filter": [{"op": "gte", "field": "lastModifiedDateTime",
                                                           "value": "2026-11-25T12:00:00"}]})
    eq([x["id"] for x in body["items"]], [k.id], "lastModifiedDateTime gte (zone-less value)")
    st, _, body = at_get("/Contracts/%d/Services" % k.id)
    eq(sorted(x["id"] for x in body["items"]), sorted(x.id for x in ds.at_contract_services if x.contract_id == k.id),
       "child services")
    st, _, body = at_get("/Contracts/%d/ServiceUnits" % k.id)
    check(all(x["contractID"] == k.id for x in body["items"]), "child units")
    st, _, body = at_get("/Contracts/entityInformation/fields")
    period = next(f for f in body["fields"] if f["name"] == "contractPeriodType")
    check(period["isPickList"] and {"Monthly", "Yearly"} <= {v["label"] for v in period["picklistValues"]},
          "picklist labels")
    eq(at_get("/ThresholdInformation")[2]["externalRequestThreshold"], 10000, "ThresholdInformation")
    reset_all()


@test
def at_service_adjustment():
    reset_all()
    ds = ENV.ds
    cs = next(x for x in ds.at_contract_services if x.cancelled is None and x.units >= 2)
    contract = next(k for k in ds.at_contracts if k.id == cs.contract_id)
    periods = msp_generator.autotask_unit_periods(contract, cs, ds.base_epoch)
    eff = periods[1][1] if len(periods) > 1 else periods[0][1]
    body = {"contractID": cs.contract_id, "contractServiceID": cs.id, "serviceID": cs.service_id,
            "effectiveDate": msp_generator.iso_date(eff) + "T00:00:00", "unitChange": -1,
            "adjustedUnitPrice": cs.unit_price}
    st, _, res = at_post("/ContractServiceAdjustments", body)
    eq(st, 200, "adjustment created: %r" % (res,))
    check(isinstance(res.get("itemId"), int), "itemId")
    st, _, units = at_post("/ContractServiceUnits/query", {"filter": [{"op": "eq", "field": "contractServiceID",
                                                                       "value": cs.id}]})
    for u in units["items"]:
        start = msp_generator.parse_iso(u["startDate"])
        want = cs.units - 1 if start >= eff else cs.units
        eq(u["units"], want, "units of the period starting %s" % u["startDate"])
    st, _, adj = at_post("/ContractServiceAdjustments/query", {"filter": [ALL_ID]})
    eq([a["unitChange"] for a in adj["items"]], [-1], "the adjustment is queryable")
    for k, v, what in (("unitChange", 1.5, "fractional change"), ("unitChange", -10 ** 6, "negative units"),
                       ("contractID", 1, "another contract"), ("serviceID", -5, "another service")):
        eq(at_post("/ContractServiceAdjustments", dict(body, **{k: v}))[0], 500, what)
    st, _, res = at_post("/Contracts/%d/ServiceAdjustments" % cs.contract_id,
                         {k: v for k, v in body.items() if k != "contractID"})
    eq(st, 200, "child create")
    reset_all()


@test
def at_limits():
    reset_all()
    ENV.at.ctl("POST", "config", {"requests_per_hour": 3})
    got = [at_post("/Companies/query", {"filter": [ALL_ID]}) for _ in range(4)]
    eq([g[0] for g in got], [200, 200, 200, 429], "hourly threshold")
    check("retry-after" not in got[3][1] and got[3][2]["errors"], "429 without Retry-After, errors body")
    reset_all()
    ENV.at.ctl("POST", "config", {"max_threads": 1})
    _fault(ENV.at, {"match": "Companies", "kind": "slow", "delay_s": 0.6, "times": 1})
    import threading
    results = []
    t = threading.Thread(target=lambda: results.append(at_post("/Companies/query", {"filter": [ALL_ID]})[0]))
    t.start()
    time.sleep(0.2)
    second = at_post("/Companies/query", {"filter": [ALL_ID]})[0]
    t.join()
    eq((results[0], second), (200, 429), "thread limit per entity")
    reset_all()


# ---------------------------------------------------------------------------
# Pax8

@test
def pax8_auth():
    reset_all()
    pax8_token()
    pax8_token("api://p8p.client", "/oauth/token")
    st, _, body = ENV.pax8.json("POST", "/v1/token", None, dict(PAX8_CREDS, client_secret="x",
                                                                 audience="https://api.pax8.com",
                                                                 grant_type="client_credentials"))
    eq((st, body), (401, {"error": "access_denied", "error_description": "Unauthorized"}), "bad secret")
    st, _, body = ENV.pax8.json("POST", "/v1/token", None, dict(PAX8_CREDS, audience="https://other",
                                                                 grant_type="client_credentials"))
    eq((st, body["error"]), (403, "access_denied"), "wrong audience")
    st, _, body = ENV.pax8.json("POST", "/v1/token", FORM, "client_id=a")
    eq(st, 400, "form body refused")
    eq(ENV.pax8.json("GET", "/v1/companies")[0], 401, "no token")
    tok = pax8_token()
    st, _, body = ENV.pax8.json("POST", "/v1/token", None, dict(PAX8_CREDS, audience="https://api.pax8.com",
                                                                 grant_type="client_credentials"))
    eq((body["expires_in"], body["token_type"]), (86400, "Bearer"), "token fields")
    ENV.pax8.ctl("POST", "tokens/revoke")
    eq(pax8_get("/v1/companies", tok)[0], 401, "revoked")


@test
def pax8_lists():
    reset_all()
    ds = ENV.ds
    items, pages = pax8_walk("/v1/companies", 2)
    eq([c["id"] for c in items], [c.id for c in ds.pax8_companies], "companies")
    eq(pages, -(-len(ds.pax8_companies) // 2), "pages")
    items, _ = pax8_walk("/v1/subscriptions", 3)
    eq(sorted(s["id"] for s in items), sorted(s.id for s in ds.pax8_subscriptions), "subscriptions")
    s = items[0]
    check({"companyId", "productId", "quantity", "price", "partnerCost", "billingTerm", "status", "startDate",
           "createdDate"} <= set(s), "subscription fields")
    check(re.fullmatch(r"\d{4}-\d\d-\d\d", s["createdDate"]) and s["startDate"].endswith("Z"), "mixed date forms")
    st, _, body = pax8_get("/v1/companies?size=500")
    eq(body["page"]["size"], 200, "size capped at 200")
    eq(pax8_get("/v1/companies?size=0")[0], 400, "size 0")
    st, _, body = pax8_get("/v1/companies?page=50&size=10")
    eq((body["content"], body["page"]["number"]), ([], 50), "page past the end")
    cid = ds.pax8_subscriptions[0].company_id
    st, _, body = pax8_get("/v1/subscriptions?size=200&companyId=%s&status=Active" % cid)
    eq(sorted(x["id"] for x in body["content"]),
       sorted(x.id for x in ds.pax8_subscriptions if x.company_id == cid and x.status == "Active"), "filters")
    p0 = ds.pax8_subscriptions[0]
    st, _, body = pax8_get("/v1/subscriptions?size=200&productId=%s&billingTerm=%s" % (p0.product_id, p0.billing_term))
    eq(sorted(x["id"] for x in body["content"]), sorted(
        x.id for x in ds.pax8_subscriptions if x.product_id == p0.product_id and x.billing_term == p0.billing_term),
       "productId and billingTerm filters")
    st, _, body = pax8_get("/v1/subscriptions?size=200&sort=quantity,desc")
    q = [x["quantity"] for x in body["content"]]
    eq(q, sorted(q, key=str, reverse=True), "sort")
    p = ds.pax8_products[0]
    st, _, body = pax8_get("/v1/products/%s" % p.id)
    eq((body["name"], body["vendorName"]), (p.name, p.vendor), "product")
    st, _, body = pax8_get("/v1/products/%s/pricing" % p.id)
    eq(body["content"][0]["rates"][0]["partnerBuyRate"], p.partner_cost, "pricing")
    eq(pax8_get("/v1/companies/nope")[0], 404, "unknown company")


@test
def pax8_writes():
    reset_all()
    s = next(x for x in ENV.ds.pax8_subscriptions if x.status == "Active")
    tok = pax8_token()
    st, _, body = ENV.pax8.json("PUT", "/v1/subscriptions/%s" % s.id, bearer(tok), {"quantity": s.quantity + 2})
    eq((st, body["quantity"]), (200, s.quantity + 2), "PUT quantity")
    st, _, body = ENV.pax8.json("PUT", "/v1/subscriptions/%s" % s.id, bearer(tok), {"quantity": "many"})
    eq((st, body["status"]), (422, 422), "invalid update")
    eq(ENV.pax8.json("PUT", "/v1/subscriptions/%s" % s.id, bearer(tok), {"note": 1})[0], 422, "nothing to update")
    st, _, hist = pax8_get("/v1/subscriptions/%s/history" % s.id, tok)
    eq([h["action"] for h in hist["content"]], ["Create", "Update"], "history")
    eq(ENV.pax8.request("DELETE", "/v1/subscriptions/%s" % s.id, bearer(tok))[0], 204, "cancel")
    eq(pax8_get("/v1/subscriptions/%s" % s.id, tok)[2]["status"], "Cancelled", "cancelled")
    eq(ENV.pax8.json("PUT", "/v1/subscriptions/nope", bearer(tok), {"quantity": 1})[0], 404, "unknown")
    reset_all()


# ---------------------------------------------------------------------------
# Microsoft Graph

@test
def graph_auth():
    reset_all()
    ds = ENV.ds
    tenant = big_tenant()
    t = next(x for x in ds.ms_tenants if x.id == tenant)
    st, _, body = graph_token(tenant)
    eq((st, body["token_type"]), (200, "Bearer"), "token by tenant id")
    check({"expires_in", "ext_expires_in", "access_token"} <= set(body), "token fields")
    eq(graph_token(t.initial_domain)[0], 200, "token by tenant domain")
    st, _, body = graph_token("11111111-2222-4333-8444-555555555555")
    eq((st, body["error"], body["error_codes"]), (400, "invalid_request", [90002]), "unknown tenant")
    st, _, body = graph_token(tenant, creds=dict(GRAPH_CREDS, client_secret="x"))
    eq((st, body["error"]), (401, "invalid_client"), "bad secret")
    st, _, body = graph_token(tenant, creds=dict(GRAPH_CREDS, client_id="other-app"))
    eq((st, body["error"]), (400, "unauthorized_client"), "unknown app")
    st, _, body = graph_token(tenant, scope="https://example.com/.default")
    eq((st, body["error"]), (400, "invalid_scope"), "bad scope")
    ENV.graph.ctl("POST", "config", {"unconsented_tenants": [tenant]})
    eq(graph_token(tenant)[1:][1]["error"], "unauthorized_client", "no consent")
    reset_all()
    st, _, body = graph_get("/v1.0/users", "nope")
    eq((st, body["error"]["code"]), (401, "InvalidAuthenticationToken"), "bad token")
    st, _, pc = graph_token(tenant, scope="https://api.partnercenter.microsoft.com/.default")
    st, _, body = graph_get("/v1.0/users", pc["access_token"])
    eq((st, body["error"]["message"]), (401, "Access token validation failure. Invalid audience."), "audience")
    other = next(x.id for x in ds.ms_tenants if x.id != tenant and x.client >= 0)
    st, _, body = graph_get("/v1.0/users?$top=999", graph_tok(other))
    want = {u.id for u in ds.ms_users if u.tenant_id == other}
    eq({u["id"] for u in body["value"]}, want, "a token sees its own tenant only")


@test
def graph_users_and_skus():
    reset_all()
    ds = ENV.ds
    tenant = big_tenant()
    want = [u for u in ds.ms_users if u.tenant_id == tenant]
    items, pages = graph_walk(tenant, 3)
    eq([u["id"] for u in items], [u.id for u in want], "users walked with nextLink")
    eq(pages, -(-len(want) // 3), "pages")
    eq(items[0]["accountEnabled"], want[0].enabled, "accountEnabled")
    eq([x["skuId"] for x in items[0]["assignedLicenses"]], list(want[0].skus), "assignedLicenses")
    tok = graph_tok(tenant)
    st, _, body = graph_get("/v1.0/users?$top=2", tok)
    eq(set(body["value"][0]), set(("businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                                   "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id")),
       "default properties without $select")
    eq(graph_get("/v1.0/users?$top=1000", tok)[0], 400, "$top over 999")
    eq(graph_get("/v1.0/users?$top=0", tok)[0], 400, "$top 0")
    eq(graph_get("/v1.0/users?$select=nope", tok)[0], 400, "unknown property")
    other = next(t.id for t in ds.ms_tenants if t.id != tenant and t.client >= 0)
    nxt = path_of(graph_get("/v1.0/users?$top=1", graph_tok(tenant))[2]["@odata.nextLink"])
    eq(graph_get(nxt, graph_tok(other))[0], 400, "another tenant's skiptoken")
    st, _, body = graph_get("/v1.0/users?$top=999&$filter=accountEnabled%20eq%20false&$select=id", tok)
    eq({u["id"] for u in body["value"]}, {u.id for u in want if not u.enabled}, "$filter accountEnabled")
    st, _, body = graph_get("/v1.0/users?$top=999&$filter=userType%20eq%20'Guest'&$select=id", tok)
    eq({u["id"] for u in body["value"]}, {u.id for u in want if u.user_type == "Guest"}, "$filter userType")
    eq(graph_get("/v1.0/users?$filter=startswith(displayName,'a')", tok)[0], 400, "unsupported $filter")
    eq(graph_get("/v1.0/users?$count=true", tok)[0], 400, "$count without ConsistencyLevel")
    st, _, body = graph_get("/v1.0/users?$count=true&$top=1", tok, {"ConsistencyLevel": "eventual"})
    eq(body["@odata.count"], len(want), "$count")
    premium = {t.id: t.premium for t in ds.ms_tenants}
    for tid, prem in premium.items():
        st, _, body = graph_get("/v1.0/users?$select=id,signInActivity", graph_tok(tid))
        if prem:
            eq(st, 200, "signInActivity in a premium tenant")
        else:
            eq((st, body["error"]["code"]), (403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant"),
               "signInActivity without Entra ID P1")
    ptid = next(t for t, p in premium.items() if p and t != ds.ground_truth["partner_tenant_id"])
    st, _, body = graph_get("/v1.0/users?$top=999&$select=id,signInActivity", graph_tok(ptid))
    byid = {u.id: u for u in ds.ms_users}
    for u in body["value"]:
        g = byid[u["id"]]
        if g.last_sign_in is None and g.last_non_interactive is None:
            check("signInActivity" not in u, "never signed in: no signInActivity")
        elif g.last_sign_in is not None:
            eq(u["signInActivity"]["lastSignInDateTime"], msp_generator.iso_z(g.last_sign_in), "lastSignInDateTime")
    st, _, body = graph_get("/v1.0/subscribedSkus", tok)
    skus = [s for s in ds.ms_skus if s.tenant_id == tenant]
    eq(sorted((s["skuPartNumber"], s["consumedUnits"], s["prepaidUnits"]["enabled"]) for s in body["value"]),
       sorted((s.part_number, s.consumed, s.enabled) for s in skus), "subscribedSkus")
    st, _, body = graph_get("/v1.0/subscribedSkus/%s" % skus[0].id, tok)
    eq(body["skuId"], skus[0].sku_id, "one SKU")
    eq(graph_get("/v1.0/subscribedSkus/%s" % skus[0].id, graph_tok(other))[0], 404, "another tenant's SKU")
    st, _, body = graph_get("/v1.0/organization", tok)
    t = next(x for x in ds.ms_tenants if x.id == tenant)
    eq(sorted(d["name"] for d in body["value"][0]["verifiedDomains"]), sorted(list(t.domains) + [t.initial_domain]),
       "verified domains")
    st, _, body = graph_get("/v1.0/domains", tok)
    eq(sorted(d["id"] for d in body["value"]), sorted(list(t.domains) + [t.initial_domain]), "domains")
    u = want[0]
    eq(graph_get("/v1.0/users/%s" % urllib.parse.quote(u.upn), tok)[2]["id"], u.id, "user by UPN")


@test
def graph_throttling():
    reset_all()
    tok = graph_tok(big_tenant())
    _fault(ENV.graph, {"match": "/users", "kind": "rate_limit", "times": 1})
    st, h, body = graph_get("/v1.0/users", tok)
    eq((st, h.get("retry-after"), body["error"]["code"]), (429, "1", "TooManyRequests"), "429 + Retry-After")
    _fault(ENV.graph, {"match": "/users", "kind": "rate_limit", "times": 1, "retry_after": "none"})
    st, h, _ = graph_get("/v1.0/users", tok)
    check(st == 429 and "retry-after" not in h, "429 without Retry-After on request")


# ---------------------------------------------------------------------------
# Partner Center

@test
def pc_auth_and_headers():
    reset_all()
    ds = ENV.ds
    v1 = pc_tok(1)
    v2 = pc_tok(2)
    eq(pc_get("/customers", v1)[0], 200, "v1 token")
    eq(pc_get("/customers", v2)[0], 200, "v2 token")
    st, h, body = ENV.pc.json("GET", "/v1/customers", bearer(v1))
    eq((st, body["errorName"]), (400, "MissingHeader"), "MS-RequestId required")
    st, h, body = pc_get("/customers", v1, {"MS-RequestId": "not-a-guid"})
    eq(st, 400, "MS-RequestId must be a GUID")
    st, h, body = pc_get("/customers", v1)
    eq((h.get("ms-requestid"), h.get("ms-correlationid")), (PC_HDRS["MS-RequestId"], PC_HDRS["MS-CorrelationId"]),
       "headers echoed")
    customer = next(t.id for t in ds.ms_tenants if t.client >= 0)
    form = dict(PC_CREDS, grant_type="client_credentials", resource="https://api.partnercenter.microsoft.com")
    st, _, body = ENV.pc.json("POST", "/%s/oauth2/token" % customer, FORM, urllib.parse.urlencode(form))
    eq(pc_get("/customers", body["access_token"])[0], 401, "a customer tenant's token")
    form = dict(PC_CREDS, grant_type="client_credentials", scope="https://graph.microsoft.com/.default")
    st, _, body = ENV.pc.json("POST", "/%s/oauth2/v2.0/token" % ds.ground_truth["partner_tenant_id"], FORM,
                              urllib.parse.urlencode(form))
    eq(pc_get("/customers", body["access_token"])[0], 401, "a Graph token")
    st, _, body = ENV.pc.json("POST", "/%s/oauth2/token" % ds.ground_truth["partner_tenant_id"], FORM,
                              urllib.parse.urlencode(dict(PC_CREDS, client_secret="x", grant_type="client_credentials",
                                                          resource="https://api.partnercenter.microsoft.com")))
    eq((st, body["error"]), (401, "invalid_client"), "bad secret")


@test
def pc_customers_and_subscriptions():
    reset_all()
    ds = ENV.ds
    items, pages = pc_walk(1)
    eq([c["id"] for c in items], [c.id for c in ds.pc_customers], "customers walked with links.next")
    eq(pages, len(ds.pc_customers), "pages")
    c = ds.pc_customers[0]
    eq(items[0]["companyProfile"], dict(items[0]["companyProfile"], tenantId=c.id, domain=c.domain,
                                         companyName=c.company_name), "companyProfile")
    tok = pc_tok()
    st, _, body = pc_get("/customers?size=1&seekOperation=Next", tok)
    eq(st, 400, "seekOperation=Next without MS-ContinuationToken")
    st, _, body = pc_get("/customers?size=1000", tok)
    eq(st, 400, "size over the maximum")
    st, _, body = pc_get("/customers/%s/subscriptions" % c.id, tok)
    eq(sorted(s["id"] for s in body["items"]), sorted(s.id for s in ds.pc_subscriptions if s.customer_id == c.id),
       "subscriptions (unpaged)")
    check("next" not in body["links"], "no paging on subscriptions")
    s = body["items"][0]
    check({"offerId", "offerName", "quantity", "status", "billingCycle", "termDuration", "commitmentEndDate",
           "autoRenewEnabled", "attributes"} <= set(s), "subscription fields")
    eq(pc_get("/customers/%s" % c.id.upper(), tok)[2]["id"], c.id, "customer by id, any case")
    eq(pc_get("/customers/%s" % "00000000-0000-4000-8000-000000000000", tok)[0], 404, "unknown customer")


@test
def pc_patch_quantity():
    reset_all()
    ds = ENV.ds
    s = next(x for x in ds.pc_subscriptions if x.status == "active" and x.billing_type == "license"
             and ":" in x.offer_id)
    tok = pc_tok()
    path = "/v1/customers/%s/subscriptions/%s" % (s.customer_id, s.id)
    hdrs = dict(bearer(tok), **PC_HDRS)
    st, _, cur = ENV.pc.json("GET", path, hdrs)
    st, _, body = ENV.pc.json("PATCH", path, hdrs, dict(cur, QUANTITY=s.quantity + 3))
    eq((st, body["quantity"]), (200, s.quantity + 3), "increase (PascalCase input)")
    check(body["attributes"]["etag"] != cur["attributes"]["etag"], "etag changes")
    st, _, body = ENV.pc.json("PATCH", path, hdrs, dict(cur, quantity=1))
    eq((st, body["errorName"]), (400, "QuantityDecreaseNotAllowed"), "NCE decrease after the window")
    ENV.pc.ctl("POST", "config", {"enforce_nce_decrease": False})
    eq(ENV.pc.json("PATCH", path, hdrs, {"quantity": 1})[0], 200, "decrease allowed when not enforced")
    eq(ENV.pc.json("PATCH", path, hdrs, {"quantity": 2.5})[0], 400, "fractional")
    eq(ENV.pc.json("PATCH", path, hdrs, {"quantity": 0})[0], 400, "zero")
    eq(ENV.pc.json("PATCH", path, dict(hdrs, **{"If-Match": '"stale"'}), {"quantity": 4})[0], 412, "If-Match")
    ENV.pc.ctl("POST", "config", {"patch_async": True})
    st, h, _ = ENV.pc.request("PATCH", path, hdrs, json.dumps({"quantity": 5}))
    check(st == 202 and "/operations/" in h["location"], "202 + Location")
    eq(ENV.pc.json("GET", path, hdrs)[2]["quantity"], 5, "the async change is applied")
    _fault(ENV.pc, {"match": "subscriptions", "kind": "rate_limit", "times": 1, "retry_after": 7})
    st, h, body = ENV.pc.json("GET", path, hdrs)
    eq((st, h.get("retry-after"), body), (429, "7", {"statusCode": 429,
                                                     "message": "Rate limit is exceeded. Try again in 7 seconds."}),
       "Partner Center 429 body")
    reset_all()
    ENV.pc.ctl("POST", "config", {"subscription_requests_per_minute": 2})
    hdrs = dict(bearer(pc_tok()), **PC_HDRS)
    got = [ENV.pc.json("GET", path, hdrs)[0] for _ in range(3)]
    eq(got, [200, 200, 429], "subscription resource limit per customer")
    reset_all()


# ---------------------------------------------------------------------------
# Datto RMM

@test
def datto_auth():
    reset_all()
    tok = datto_token()
    eq(datto_get("/api/v2/account", tok)[0], 200, "token works")
    wrong = {"Authorization": "Basic " + base64.b64encode(b"other:client").decode()}
    st, _, body = ENV.datto.json("POST", "/auth/oauth/token", dict(FORM, **wrong),
                                 urllib.parse.urlencode(dict(DATTO_CREDS, grant_type="password")))
    eq((st, body["error"]), (401, "unauthorized"), "wrong public client")
    basic = {"Authorization": "Basic " + base64.b64encode(b"public-client:public").decode()}
    st, _, body = ENV.datto.json("POST", "/auth/oauth/token", dict(FORM, **basic),
                                 urllib.parse.urlencode(dict(DATTO_CREDS, password="x", grant_type="password")))
    eq((st, body["error"]), (400, "invalid_grant"), "bad secret")
    st, _, body = ENV.datto.json("POST", "/auth/oauth/token", dict(FORM, **basic),
                                 urllib.parse.urlencode(dict(DATTO_CREDS, grant_type="client_credentials")))
    eq(st, 400, "grant type")
    eq(ENV.datto.json("GET", "/api/v2/account/sites")[0], 401, "no token")
    ENV.datto.ctl("POST", "tokens/revoke")
    eq(datto_get("/api/v2/account/sites", tok)[0], 401, "revoked")


@test
def datto_lists():
    reset_all()
    ds = ENV.ds
    sites, pages = datto_walk("/api/v2/account/sites", 2)
    eq([s["uid"] for s in sites], [s.uid for s in ds.datto_sites], "sites")
    eq(pages, -(-len(ds.datto_sites) // 2), "pages")
    site = next(s for s in sites if s["devicesStatus"]["numberOfDevices"])
    devs, _ = datto_walk("/api/v2/account/devices", 5)
    eq([d["uid"] for d in devs], [d.uid for d in ds.datto_devices], "account devices")
    check(isinstance(devs[0]["lastSeen"], int), "epoch milliseconds by default")
    mine, _ = datto_walk("/api/v2/site/%s/devices" % site["uid"], 3)
    eq(len(mine), site["devicesStatus"]["numberOfDevices"], "site devices = devicesStatus")
    tok = datto_token()
    st, _, body = datto_get("/api/v2/account/devices?max=1000", tok)
    eq(len(body["devices"]), min(250, len(ds.datto_devices)), "max capped at 250")
    eq(datto_get("/api/v2/system/pagination", tok)[2], {"max": 250}, "pagination")
    d = next(x for x in ds.datto_devices if x.device_class == "device" and x.serial)
    st, _, body = datto_get("/api/v2/audit/device/%s" % d.uid, tok)
    eq(body["bios"]["serialNumber"], d.serial, "serial number from the audit")
    eq(datto_get("/api/v2/device/id/%d" % d.id, tok)[2]["uid"], d.uid, "device by id")
    st, _, body = datto_get("/api/v2/account/devices?max=250&hostname=%s" % urllib.parse.quote(d.hostname), tok)
    check(d.uid in [x["uid"] for x in body["devices"]], "hostname filter")
    for param, want in (("deviceType=Server", lambda x: x.category == "Server"),
                        ("operatingSystem=windows%2011", lambda x: "windows 11" in (x.os or "").lower())):
        st, _, body = datto_get("/api/v2/account/devices?max=250&" + param, tok)
        eq(sorted(x["uid"] for x in body["devices"]), sorted(x.uid for x in ds.datto_devices if want(x)), param)
    s0 = ds.datto_sites[0]
    st, _, body = datto_get("/api/v2/account/sites?siteName=%s" % urllib.parse.quote(s0.name[:6]), tok)
    eq(sorted(x["uid"] for x in body["sites"]), sorted(x.uid for x in ds.datto_sites
                                                        if s0.name[:6].lower() in x.name.lower()), "siteName")
    st, _, body = datto_get("/api/v2/account/devices?max=250&siteName=%s" % urllib.parse.quote(s0.name), tok)
    eq(sorted(x["uid"] for x in body["devices"]), sorted(x.uid for x in ds.datto_devices if x.site_id == s0.id),
       "devices by siteName")
    ENV.datto.ctl("POST", "config", {"timestamp_format": "iso"})
    st, _, body = datto_get("/api/v2/device/%s" % d.uid, tok)
    eq(body["lastSeen"], msp_generator.iso_z(d.last_seen_ms / 1000.0), "ISO timestamps")
    eq(datto_get("/api/v2/site/nope", tok)[0], 404, "unknown site")
    reset_all()


@test
def datto_rate_limits():
    reset_all()
    tok = datto_token()
    ENV.datto.ctl("POST", "config", {"requests_per_minute": 2, "delay_s": 0})
    got = [datto_get("/api/v2/account", tok) for _ in range(3)]
    eq([g[0] for g in got], [200, 200, 429], "600 a minute, scaled down")
    check("retry-after" not in got[2][1], "no Retry-After")
    reset_all()
    tok = datto_token()
    ENV.datto.ctl("POST", "config", {"block_after_429s": 2, "block_s": 1})
    _fault(ENV.datto, {"match": "account", "kind": "rate_limit", "times": 2})
    got = [datto_get("/api/v2/account", tok)[0] for _ in range(3)]
    eq(got, [429, 429, 403], "403 after repeated 429s")
    time.sleep(1.1)
    eq(datto_get("/api/v2/account", tok)[0], 200, "the block expires")
    reset_all()


# ---------------------------------------------------------------------------
# Every fault kind against every new vendor

def _vendor_lists():
    """vendor -> (call, match, check_more(body, headers) -> next pointer present, list key getter)."""
    ds = ENV.ds
    tenant = big_tenant()

    def halo():
        return ENV.halo.request("GET", "/api/Client?includeinactive=true&pageinate=true&page_size=3&page_no=2",
                                bearer(ENV.tok["halopsa"]))

    def at():
        return ENV.at.request("POST", AT + "/Companies/query", dict(AT_AUTH, **{"Content-Type": "application/json"}),
                              json.dumps({"MaxRecords": 3, "filter": [ALL_ID]}))

    def pax8():
        return ENV.pax8.request("GET", "/v1/companies?page=1&size=2", bearer(ENV.tok["pax8"]))

    def graph():
        return ENV.graph.request("GET", "/v1.0/users?$top=3", bearer(ENV.tok["msgraph"]))

    def pc():
        return ENV.pc.request("GET", "/v1/customers?size=1", dict(bearer(ENV.tok["partnercenter"]), **PC_HDRS))

    def datto():
        return ENV.datto.request("GET", "/api/v2/account/devices?max=3&page=1", bearer(ENV.tok["dattormm"]))

    ENV.tok = {"halopsa": halo_token(), "pax8": pax8_token(), "msgraph": graph_tok(tenant),
               "partnercenter": pc_tok(), "dattormm": datto_token()}
    return {
        "halopsa": (halo, "/api/Client", lambda b, h: b["record_count"] > 6, lambda b: b["clients"],
                    lambda b: "message" in b),
        "autotask": (at, "/Companies/query", lambda b, h: bool(b["pageDetails"]["nextPageUrl"]),
                     lambda b: b["items"], lambda b: "errors" in b),
        "pax8": (pax8, "/v1/companies", lambda b, h: b["page"]["totalPages"] > 2, lambda b: b["content"],
                 lambda b: b.get("status") == 500 and "message" in b),
        "msgraph": (graph, "/v1.0/users", lambda b, h: "@odata.nextLink" in b, lambda b: b["value"],
                    lambda b: "code" in b.get("error", {})),
        "partnercenter": (pc, "/v1/customers", lambda b, h: "next" in b["links"], lambda b: b["items"],
                          lambda b: "description" in b and "code" in b),
        "dattormm": (datto, "/account/devices", lambda b, h: bool(b["pageDetails"]["nextPageUrl"]),
                     lambda b: b["devices"], lambda b: b.get("status") == 500),
    }


@test
def fault_kinds_new_vendors():
    reset_all()
    lists = _vendor_lists()
    for name, (call, match, more, key, error_shape) in lists.items():
        app = ENV.apps[name]
        st, h, body = call()
        eq(st, 200, "%s baseline" % name)
        base = json.loads(body)
        check(more(base, h), "%s: the list has a next page" % name)
        _fault(app, {"match": match, "kind": "status", "status": 500, "times": 1})
        st, h, body = call()
        eq(st, 500, "%s status" % name)
        check(error_shape(json.loads(body)), "%s error body %r" % (name, body[:200]))
        _fault(app, {"match": match, "kind": "rate_limit", "times": 1})
        st, h, body = call()
        eq(st, 429, "%s 429" % name)
        if name in ("msgraph", "partnercenter"):
            eq(h.get("retry-after"), "1", "%s 429 carries Retry-After" % name)
        else:
            check("retry-after" not in h, "%s 429 without Retry-After" % name)
        _fault(app, {"match": match, "kind": "rate_limit", "times": 1, "retry_after": 2})
        eq(call()[1].get("retry-after"), "2", "%s fault Retry-After" % name)
        for kind in ("malformed", "truncated"):
            _fault(app, {"match": match, "kind": kind, "times": 1})
            st, h, body = call()
            eq((st, int(h["content-length"])), (200, len(body)), "%s %s" % (name, kind))
            try:
                json.loads(body)
                raise AssertionError("%s %s parsed as JSON" % (name, kind))
            except ValueError:
                pass
        _fault(app, {"match": match, "kind": "empty_page", "times": 1})
        st, h, body = call()
        b = json.loads(body)
        check(key(b) == [] and more(b, h), "%s empty page still promises more" % name)
        _fault(app, {"match": match, "kind": "huge", "size_mb": 1, "times": 1})
        st, h, body = call()
        check(len(body) >= 1024 * 1024 and key(json.loads(body)) == key(base), "%s huge" % name)
        _fault(app, {"match": match, "kind": "unauthorized", "times": 1})
        eq(call()[0], 401, "%s unauthorized" % name)
        _fault(app, {"match": match, "kind": "token_revoke", "times": 1})
        eq(call()[0], 401, "%s token_revoke" % name)
        if name != "autotask":
            eq(call()[0], 401, "%s: the revoked token stays revoked" % name)
        app.ctl("DELETE", "faults")
        reset_all()
        lists = _vendor_lists()
    # drop and slow on one of them (the machinery is shared).
    call, match = lists["dattormm"][0], lists["dattormm"][1]
    _fault(ENV.datto, {"match": match, "kind": "drop", "times": 1})
    try:
        call()
        raise AssertionError("drop delivered a body")
    except (http.client.IncompleteRead, ConnectionError, http.client.RemoteDisconnected):
        pass
    _fault(ENV.datto, {"match": match, "kind": "slow", "delay_s": 0.4, "times": 1})
    t0 = time.time()
    eq(call()[0], 200, "slow")
    check(time.time() - t0 >= 0.35, "slow waited")
    reset_all()


@test
def fault_loop_new_vendors():
    reset_all()
    lists = _vendor_lists()
    # HaloPSA: page 3 answers page 1 again.
    _fault(ENV.halo, {"match": "page_no=2", "kind": "loop", "times": 1})
    call = lists["halopsa"][0]
    st, _, body = call()
    first = halo_get("/api/Client?includeinactive=true&pageinate=true&page_size=3&page_no=1", ENV.tok["halopsa"])[2]
    eq([c["id"] for c in json.loads(body)["clients"]], [c["id"] for c in first["clients"]], "halo loop")
    # Autotask: nextPageUrl points at the first page.
    _fault(ENV.at, {"match": "Companies/query", "kind": "loop", "times": 1})
    st, _, body = lists["autotask"][0]()
    st, _, again = at_get(json.loads(body)["pageDetails"]["nextPageUrl"])
    eq(again["items"][0]["id"], ENV.ds.at_companies[0].id, "autotask loop")
    # Pax8: page 1 claims to be page 0.
    _fault(ENV.pax8, {"match": "/v1/companies", "kind": "loop", "times": 1})
    eq(json.loads(lists["pax8"][0]()[2])["page"]["number"], 0, "pax8 loop")
    # Graph: the nextLink leads back to the first page.
    _fault(ENV.graph, {"match": "/v1.0/users", "kind": "loop", "times": 1})
    nxt = json.loads(lists["msgraph"][0]()[2])["@odata.nextLink"]
    check("$skiptoken" not in urllib.parse.unquote(nxt), "graph loop: %s" % nxt)
    # Partner Center: links.next carries the first page's token.
    _fault(ENV.pc, {"match": "/v1/customers", "kind": "loop", "times": 1})
    nxt = json.loads(lists["partnercenter"][0]()[2])["links"]["next"]
    st, _, body = pc_get(nxt["uri"], ENV.tok["partnercenter"], {h["key"]: h["value"] for h in nxt["headers"]})
    eq(body["items"][0]["id"], ENV.ds.pc_customers[0].id, "partner center loop")
    # Datto: nextPageUrl is page 0.
    _fault(ENV.datto, {"match": "/account/devices", "kind": "loop", "times": 1})
    check("page=0" in json.loads(lists["dattormm"][0]()[2])["pageDetails"]["nextPageUrl"], "datto loop")
    reset_all()


@test
def mutate_new_vendors():
    reset_all()
    ds = ENV.ds
    s = ds.pax8_subscriptions[0]
    ENV.pax8.ctl("POST", "mutate", {"entity": "subscription", "id": s.id, "set": {"quantity": "ten"}})
    eq(pax8_get("/v1/subscriptions/%s" % s.id)[2]["quantity"], "ten", "pax8 wrong-typed quantity")
    u = ds.ms_users[0]
    ENV.graph.ctl("POST", "mutate", {"entity": "user", "id": u.id, "set": {"accountEnabled": False}})
    st, _, body = graph_get("/v1.0/users/%s?$select=accountEnabled" % u.id, graph_tok(u.tenant_id))
    eq(body["accountEnabled"], False, "graph user")
    sku = ds.ms_skus[0]
    ENV.graph.ctl("POST", "mutate", {"entity": "sku", "id": sku.id, "set": {"consumedUnits": "many"}})
    body = graph_get("/v1.0/subscribedSkus/%s" % sku.id, graph_tok(sku.tenant_id))[2]
    eq(body["consumedUnits"], "many", "graph sku")
    ps = ds.pc_subscriptions[0]
    ENV.pc.ctl("POST", "mutate", {"entity": "subscription", "id": ps.id, "set": {"quantity": 99}})
    eq(pc_get("/customers/%s/subscriptions/%s" % (ps.customer_id, ps.id))[2]["quantity"], 99, "pc subscription")
    d = ds.datto_devices[0]
    ENV.datto.ctl("POST", "mutate", {"entity": "device", "id": d.id, "set": {"online": "yes"}})
    eq(datto_get("/api/v2/device/%s" % d.uid)[2]["online"], "yes", "datto device")
    ENV.datto.ctl("POST", "mutate", {"entity": "device", "id": d.id, "op": "remove"})
    eq(datto_get("/api/v2/device/%s" % d.uid)[0], 404, "datto device removed")
    res = ENV.datto.ctl("POST", "mutate", {"entity": "device", "op": "add", "record": {"siteId": d.site_id,
                                                                                      "hostname": "NEWBOX"}})
    uid = res["results"][0]["record"]["uid"]
    eq(datto_get("/api/v2/device/%s" % uid)[2]["hostname"], "NEWBOX", "datto device added")
    c = ds.at_companies[2]
    ENV.at.ctl("POST", "mutate", {"entity": "Companies", "id": c.id, "set": {"companyName": None}})
    check("companyName" not in at_get("/Companies/%d" % c.id)[2]["item"], "autotask field removed")
    reset_all()
    eq(pax8_get("/v1/subscriptions/%s" % s.id)[2]["quantity"], s.quantity, "reset restores pax8")
    eq(datto_get("/api/v2/device/%s" % d.uid)[0], 200, "reset restores datto")



# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# PSA contacts: their e-mail domains are client-matching evidence

def contact_domain(address):
    """The domain of a well-formed address that is not free mail (as the
    connectors read it), or None."""
    a = (address or "").strip()
    if a.count("@") != 1 or any(ch.isspace() for ch in a):
        return None
    local, domain = a.split("@")
    domain = domain.lower().rstrip(".")
    labels = domain.split(".")
    if not local or len(labels) < 2 or not all(labels) or not labels[-1].isalpha() or len(labels[-1]) < 2:
        return None
    return None if domain in msp_generator.FREE_MAIL else domain


def contact_truth(ds):
    """ConnectWise company id -> sorted contact domains (the ground truth)."""
    out = {}
    for c in ds.ground_truth["clients"] + ds.ground_truth["non_clients"]:
        if c.get("psa_company_id") is not None:
            out[c["psa_company_id"]] = c.get("contact_domains", [])
    return out


@test
def generator_contacts():
    ds = msp_generator.generate(5, 120)
    companies = {c.id: c for c in ds.companies}
    truth = contact_truth(ds)
    eq(sorted(truth), sorted(companies), "ground truth has contact domains for every PSA company")
    derived = {}
    for x in ds.contacts:
        c = companies[x.company_id]
        check(c.contact_id <= x.id <= c.contact_id + 2, "contact ids follow the company's billing contact")
        check(not c.deleted, "a deleted company has no contacts")
        check(all(contact_domain(e) is None for e in x.emails[1:]), "later addresses are free mail")
        if not x.inactive:
            for e in x.emails:
                d = contact_domain(e)
                if d:
                    derived.setdefault(x.company_id, set()).add(d)
    for cid, want in truth.items():
        eq(sorted(derived.get(cid, ())), want, "contact domains of company %d" % cid)
    first = {x.id: x for x in ds.contacts}
    for c in ds.companies:
        if c.id in {x.company_id for x in ds.contacts}:
            eq("%s %s" % (first[c.contact_id].first_name, first[c.contact_id].last_name), c.contact_name,
               "the first contact is the billing contact")
    gt = [g for g in ds.ground_truth["clients"] if g["psa_company_id"] is not None]
    own = sum(1 for g in gt if set(g["contact_domains"]) & set(g["domains"]))
    check(own >= len(gt) * 0.7, "most clients have a contact at their own domain (%d of %d)" % (own, len(gt)))
    check(all(set(g["contact_domains"]) <= set(g["domains"]) for g in gt), "client contact domains are its own")
    only = [g for g in gt if not companies[g["psa_company_id"]].website and g["contact_domains"]]
    check(len(only) >= 5, "clients without a website whose contacts give their domain: %d" % len(only))
    emails = [e for x in ds.contacts for e in x.emails]
    check(any(e.split("@")[-1] in ("gmail.com", "outlook.com") for e in emails), "free-mail addresses")
    check(any(contact_domain(e) is None and e.split("@")[-1] not in msp_generator.FREE_MAIL for e in emails),
          "malformed addresses")
    check(any(e != e.lower() for e in emails), "upper-case addresses")
    check(any(x.inactive for x in ds.contacts), "inactive contacts")
    check(any(not x.emails for x in ds.contacts), "contacts without an address")
    check(any("former-" in e for x in ds.contacts if x.inactive for e in x.emails), "inactive at a former domain")
    halo = {h.cw_company_id for h in ds.halo_clients}
    check(all((x.halo_user_id is not None) == (x.company_id in halo) for x in ds.contacts), "Halo users")
    check(len({x.halo_user_id for x in ds.contacts if x.halo_user_id}) ==
          sum(1 for x in ds.contacts if x.halo_user_id), "unique Halo user ids")
    check(all(x.at_contact_id is not None for x in ds.contacts), "every contact is an Autotask contact")


@test
def cw_contacts():
    reset_all()
    ds = ENV.ds
    eq(ENV.cw.json("GET", CW_PREFIX + "/company/contacts")[0], 401, "contacts need credentials")
    st, _, body = cw_get("/company/contacts?pageSize=1000")
    eq([x["id"] for x in body], [x.id for x in ds.contacts], "every contact in id order")
    rec = next(x for x in body if len(x["communicationItems"]) > 1)
    check({"id", "firstName", "company", "inactiveFlag", "communicationItems", "_info"} <= set(rec), "contact fields")
    check({"type", "value", "communicationType", "defaultFlag"} <= set(rec["communicationItems"][0]),
          "communication item fields")
    query = "/company/contacts?pageSize=4&fields=id,company/id,inactiveFlag,communicationItems" \
            "&conditions=" + urllib.parse.quote("inactiveFlag = false")
    items, pages = cw_walk(query)
    active = [x for x in ds.contacts if not x.inactive]
    eq([x["id"] for x in items], [x.id for x in active], "active contacts, paged by Link")
    eq(pages, -(-len(active) // 4), "pages of active contacts")
    eq(set(items[0]), {"id", "company", "inactiveFlag", "communicationItems"}, "fields=")
    eq(set(items[0]["company"]), {"id"}, "fields= keeps company/id only")
    got = {}
    for x in items:
        for item in x["communicationItems"]:
            if item["communicationType"] == "Email" and contact_domain(item["value"]):
                got.setdefault(x["company"]["id"], set()).add(contact_domain(item["value"]))
    truth = contact_truth(ds)
    for cid, want in truth.items():
        eq(sorted(got.get(cid, ())), want, "contact domains of company %d through the API" % cid)
    c = next(c for c in ds.companies if sum(1 for x in ds.contacts if x.company_id == c.id) >= 2)
    st, _, body = cw_get("/company/contacts?conditions=" + urllib.parse.quote("company/id = %d" % c.id))
    eq(sorted(x["id"] for x in body), sorted(x.id for x in ds.contacts if x.company_id == c.id), "company/id")
    st, _, body = cw_get("/company/contacts/count?conditions=" + urllib.parse.quote("inactiveFlag = true"))
    eq(body["count"], sum(1 for x in ds.contacts if x.inactive), "count of inactive contacts")
    st, _, body = cw_get("/company/contacts/%d" % c.contact_id)
    eq((st, body["company"]["id"]), (200, c.id), "contact by id")
    eq(cw_get("/company/contacts/1")[0], 404, "unknown contact")
    st, _, body = cw_get("/company/companies/%d" % c.id)
    eq(body["defaultContact"]["id"], c.contact_id, "the company's default contact exists")
    ENV.cw.ctl("POST", "mutate", {"entity": "contacts", "id": c.contact_id,
                                  "set": {"inactiveFlag": True}})
    st, _, body = cw_get("/company/contacts/%d" % c.contact_id)
    eq(body["inactiveFlag"], True, "mutate a contact")
    reset_all()


@test
def halo_users():
    reset_all()
    ds = ENV.ds
    eq(ENV.halo.json("GET", "/api/Users")[0], 401, "users need a token")
    tok = halo_token()
    users = sorted((x for x in ds.contacts if x.halo_user_id is not None), key=lambda x: x.halo_user_id)
    active = [x for x in users if not x.inactive]
    got, page = [], 1
    while True:
        st, _, body = halo_get("/api/Users?pageinate=true&page_size=5&page_no=%d" % page, tok)
        eq(st, 200, "users page %d" % page)
        eq(body["record_count"], len(active), "record_count: active users only")
        got.extend(body["users"])
        if page * 5 >= body["record_count"]:
            break
        page += 1
    eq([u["id"] for u in got], [x.halo_user_id for x in active], "paged by record_count")
    check({"id", "name", "client_id", "client_name", "site_id", "emailaddress", "inactive"} <= set(got[0]),
          "user fields")
    halo_of = {h.cw_company_id: h.id for h in ds.halo_clients}
    by_id = {x.halo_user_id: x for x in users}
    for u in got:
        x = by_id[u["id"]]
        eq(u["client_id"], halo_of[x.company_id], "client_id of user %d" % u["id"])
        eq(u["emailaddress"], x.emails[0] if x.emails else "", "primary address of user %d" % u["id"])
    st, _, body = halo_get("/api/Users?includeinactive=true", tok)
    eq(body["record_count"], len(users), "includeinactive=true")
    client = halo_of[users[0].company_id]
    st, _, body = halo_get("/api/Users?includeinactive=true&client_id=%d" % client, tok)
    eq(sorted(u["id"] for u in body["users"]), sorted(x.halo_user_id for x in users
                                                      if halo_of[x.company_id] == client), "client_id filter")
    st, _, body = halo_get("/api/Users/%d" % users[0].halo_user_id, tok)
    eq(body["id"], users[0].halo_user_id, "user by id")
    eq(halo_get("/api/Users/999999", tok)[0], 404, "unknown user")
    ro = halo_token("read:invoices")
    eq(halo_get("/api/Users", ro)[0], 403, "users need read:customers")
    reset_all()


@test
def at_contacts():
    reset_all()
    ds = ENV.ds
    flt = {"filter": [{"op": "eq", "field": "isActive", "value": 1}]}
    eq(ENV.at.json("POST", AT + "/Contacts/query", {"UserName": AT_AUTH["UserName"]}, flt)[0], 401,
       "contacts need the headers")
    body = dict(flt, MaxRecords=4, IncludeFields=["id", "companyID", "isActive", "emailAddress", "emailAddress2",
                                                   "emailAddress3"])
    items, pages = at_walk("Contacts", body)
    active = sorted((x for x in ds.contacts if not x.inactive), key=lambda x: x.at_contact_id)
    eq([c["id"] for c in items], [x.at_contact_id for x in active], "active contacts through nextPageUrl")
    eq(pages, -(-len(active) // 4), "pages")
    eq(set(items[0]), {"id", "companyID", "isActive", "emailAddress", "emailAddress2", "emailAddress3"},
       "IncludeFields")
    at_of = {c.cw_company_id: c.id for c in ds.at_companies}
    cw_of = {v: k for k, v in at_of.items()}
    got = {}
    for c in items:
        eq(c["isActive"], 1, "isActive is an integer")
        for f in ("emailAddress", "emailAddress2", "emailAddress3"):
            d = contact_domain(c[f])
            if d:
                got.setdefault(cw_of[c["companyID"]], set()).add(d)
    for cid, want in contact_truth(ds).items():
        eq(sorted(got.get(cid, ())), want, "contact domains of company %d through the API" % cid)
    st, _, body = at_post("/Contacts/query/count", {"filter": [{"op": "eq", "field": "isActive", "value": 0}]})
    eq(body["queryCount"], sum(1 for x in ds.contacts if x.inactive), "inactive contacts")
    x = ds.contacts[0]
    st, _, body = at_get("/Contacts/%d" % x.at_contact_id)
    eq((body["item"]["companyID"], body["item"]["emailAddress"]),
       (at_of[x.company_id], x.emails[0] if x.emails else None), "contact by id")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--big", action="store_true", help="also time 5,000 clients")
    ap.add_argument("-k", help="run only tests whose name contains this")
    ap.add_argument("-v", action="store_true", help="print each test")
    args = ap.parse_args()
    ENV.big = args.big
    ENV.tmp = tempfile.mkdtemp(prefix="mock-selftest-")
    ENV.ds = msp_generator.generate(SEED, CLIENTS)
    proc, ENV.ports, _ = start_server(["--vendors", "all"])
    ENV.apps = {name: Http(port) for name, port in ENV.ports.items()}
    ENV.cw = ENV.apps["connectwise"]
    ENV.nj = ENV.apps["ninjaone"]
    for name in NEW_VENDORS:
        setattr(ENV, SHORT[name], ENV.apps[name])
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
