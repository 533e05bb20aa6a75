#!/usr/bin/env python3
"""A NinjaOne v2 server for benchmarks: the same wire contract as
test/mock_api/ninjaone.py (vendor-apis.md section 7), but every device is
rendered to JSON bytes once at start and pages are served as joined bytes, so
Python does not become the bottleneck of a 1,000,000-device sync.

What it keeps from the real API (and the mock):
  - POST /ws/oauth/token (form: grant_type=client_credentials, client_id,
    client_secret, scope containing "monitoring"; or HTTP Basic) ->
    {access_token, token_type: "bearer", expires_in, scope};
    every /v2 call needs "Authorization: Bearer <token>", else 401.
  - GET /v2/organizations, /v2/devices-detailed (also under /api/v2):
    bare JSON arrays, pageSize + after=<id> (ids greater than after, in id
    order), a short page ends the listing; no pageSize = everything.
  - HTTP/1.1 keep-alive, Content-Length, 429 + Retry-After when
    --rate-limit-every N is given (every Nth API request is refused once).
Device objects are the detailed form (os, system, references ...), epoch
seconds as numbers with fractions, camelCase as on the wire.

Control (for the benchmark, not part of the API):
  GET  /_bench/stats        {"requests": n, "api_requests": n, "bytes": n}
  POST /_bench/reset-stats
  POST /_bench/empty-page   {"after": <id>} the page after that id is served
                            as [] (a vendor ending its listing early); {} clears
  POST /_bench/touch        {"ids": [..]} re-renders those devices with a new
                            lastUpdate / lastContact (a changed record)

    python3 bench/ninja_pages.py --devices 1000000 --orgs 5000 --port-file F
"""

import argparse
import base64
import bisect
import json
import os
import secrets
import socketserver
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

CLIENT_ID = "billrecon-ninja-client"
CLIENT_SECRET = "billrecon-ninja-secret"
BASE_EPOCH = 1718000000.0

CLASSES = [  # (nodeClass, chassis, roleId, os name, family)
    ("WINDOWS_WORKSTATION", "DESKTOP", 1, "Windows 11 Professional Edition", "WINDOWS"),
    ("WINDOWS_WORKSTATION", "LAPTOP", 2, "Windows 11 Professional Edition", "WINDOWS"),
    ("WINDOWS_WORKSTATION", "LAPTOP", 2, "Windows 10 Professional Edition", "WINDOWS"),
    ("WINDOWS_SERVER", "UNKNOWN", 3, "Windows Server 2022 Standard", "WINDOWS"),
    ("MAC", "LAPTOP", 4, "macOS 14.5", "MAC"),
    ("LINUX_SERVER", "UNKNOWN", 6, "Ubuntu 22.04.4 LTS", "LINUX"),
    ("VMWARE_VM_GUEST", "UNKNOWN", 8, "Windows Server 2019 Standard", "WINDOWS"),
    ("WINDOWS_WORKSTATION", "DESKTOP", 1, "Windows 10 Professional Edition", "WINDOWS"),
]
MAKERS = [("Dell Inc.", "OptiPlex 7010"), ("LENOVO", "20XW0026US"), ("HP", "EliteBook 840 G8"),
          ("Apple Inc.", "MacBookPro18,3"), ("VMware, Inc.", "VMware7,1")]


def render_device(i, orgs, stamp=0.0):
    org = (i * 7919) % orgs + 1
    node_class, chassis, role, os_name, family = CLASSES[i % len(CLASSES)]
    maker, model = MAKERS[i % len(MAKERS)]
    name = "DEV-%07d" % i
    created = BASE_EPOCH - 86400.0 * (i % 900) - (i % 86400)
    contact = BASE_EPOCH + stamp + (i % 3600) + 0.514
    d = {
        "id": i, "organizationId": org, "locationId": org * 10 + 1, "nodeClass": node_class, "nodeRoleId": role,
        "approvalStatus": "PENDING" if i % 97 == 0 else "APPROVED", "offline": i % 13 == 0, "displayName": name,
        "created": created, "lastContact": contact, "lastUpdate": BASE_EPOCH + stamp + (i % 7200),
        "os": {"name": os_name, "buildNumber": "22631"},
        "system": {"manufacturer": maker, "model": model, "serialNumber": "SN%09d" % i, "chassisType": chassis},
        "references": {"organization": {"id": org, "name": "Organization %d" % org}},
    }
    return json.dumps(d, separators=(",", ":")).encode()


def render_org(o):
    return json.dumps({"name": "Organization %d" % o, "description": "", "userData": {},
                       "nodeApprovalMode": "AUTOMATIC", "tags": [], "fields": {}, "id": o},
                      separators=(",", ":")).encode()


class Data:
    def __init__(self, devices, orgs, first_id=1):
        self.lock = threading.Lock()
        self.orgs = orgs
        self.org_ids = list(range(1, orgs + 1))
        self.org_json = [render_org(o) for o in self.org_ids]
        self.dev_ids = list(range(first_id, first_id + devices))
        self.dev_json = [render_device(i, orgs) for i in self.dev_ids]
        self.tokens = {}
        self.requests = 0
        self.api_requests = 0
        self.bytes = 0
        self.empty_after = None
        self.touches = 0

    def page(self, ids, blobs, size, after):
        start = bisect.bisect_right(ids, after)
        end = len(ids) if size <= 0 else min(len(ids), start + size)
        return b"[" + b",".join(blobs[start:end]) + b"]"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ninja-bench"

    def log_message(self, fmt, *args):  # quiet
        pass

    def send(self, status, body, ctype="application/json; charset=utf-8", headers=None):
        data = self.server.data
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        with data.lock:
            data.bytes += len(body)

    def send_json(self, status, obj, headers=None):
        self.send(status, json.dumps(obj).encode(), headers=headers)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_POST(self):
        data = self.server.data
        path = urllib.parse.urlsplit(self.path).path
        raw = self.body()
        with data.lock:
            data.requests += 1
        if path in ("/ws/oauth/token", "/oauth/token"):
            form = dict(urllib.parse.parse_qsl(raw.decode()))
            cid, secret = form.get("client_id"), form.get("client_secret")
            auth = self.headers.get("Authorization") or ""
            if auth.lower().startswith("basic "):
                cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            if form.get("grant_type") != "client_credentials":
                return self.send_json(400, {"error": "unsupported_grant_type"})
            if cid != CLIENT_ID or secret != CLIENT_SECRET:
                return self.send_json(401, {"error": "invalid_client", "error_description": "Bad client credentials"})
            scope = " ".join((form.get("scope") or "").replace("+", " ").split())
            if "monitoring" not in scope.split():
                return self.send_json(400, {"error": "invalid_scope", "error_description": "scope must include monitoring"})
            token = secrets.token_urlsafe(24)
            with data.lock:
                data.tokens[token] = time.time() + 3600
            return self.send_json(200, {"access_token": token, "token_type": "bearer", "expires_in": 3600,
                                        "scope": scope}, headers={"Cache-Control": "no-store"})
        if path == "/_bench/reset-stats":
            with data.lock:
                data.requests = data.api_requests = data.bytes = 0
            return self.send_json(200, {})
        if path == "/_bench/empty-page":
            body = json.loads(raw or b"{}")
            data.empty_after = body.get("after")
            return self.send_json(200, {"empty_after": data.empty_after})
        if path == "/_bench/touch":
            body = json.loads(raw or b"{}")
            with data.lock:
                data.touches += 1
                for i in body.get("ids", []):
                    k = bisect.bisect_left(data.dev_ids, i)
                    if k < len(data.dev_ids) and data.dev_ids[k] == i:
                        data.dev_json[k] = render_device(i, data.orgs, stamp=60.0 * data.touches)
            return self.send_json(200, {"touched": len(body.get("ids", []))})
        return self.send_json(404, {"resultCode": "FAILURE", "errorMessage": "Not found"})

    def do_GET(self):
        data = self.server.data
        parts = urllib.parse.urlsplit(self.path)
        path = parts.path
        with data.lock:
            data.requests += 1
        if path == "/_bench/stats":
            return self.send_json(200, {"requests": data.requests, "api_requests": data.api_requests,
                                        "bytes": data.bytes})
        if path.startswith("/api/"):
            path = path[4:]
        if path not in ("/v2/organizations", "/v2/devices-detailed"):
            return self.send_json(404, {"resultCode": "FAILURE", "errorMessage": "Not found"})
        auth = self.headers.get("Authorization") or ""
        token = auth[7:] if auth.lower().startswith("bearer ") else None
        if not token or data.tokens.get(token, 0) < time.time():
            return self.send_json(401, {"error": "invalid_token", "error_description": "Access token is not valid"},
                                  headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        with data.lock:
            data.api_requests += 1
            n = data.api_requests
        every = self.server.rate_limit_every
        if every and n % every == 0:
            return self.send_json(429, {"resultCode": "FAILURE", "errorMessage": "Too many requests",
                                        "errorCode": "TOO_MANY_REQUESTS"}, headers={"Retry-After": "0"})
        q = dict(urllib.parse.parse_qsl(parts.query))
        try:
            size = int(q.get("pageSize") or 0)
            after = int(q.get("after") or 0)
        except ValueError:
            return self.send_json(400, {"resultCode": "FAILURE", "errorMessage": "pageSize and after must be integers"})
        if "pageSize" in q and size < 1:
            return self.send_json(400, {"resultCode": "FAILURE", "errorMessage": "pageSize must be positive"})
        if path == "/v2/organizations":
            return self.send(200, data.page(data.org_ids, data.org_json, size, after))
        if data.empty_after is not None and after == data.empty_after:
            return self.send(200, b"[]")
        with data.lock:
            body = data.page(data.dev_ids, data.dev_json, size, after)
        return self.send(200, body)


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=1000000)
    ap.add_argument("--orgs", type=int, default=5000)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--rate-limit-every", type=int, default=0)
    args = ap.parse_args()
    t0 = time.time()
    data = Data(args.devices, args.orgs)
    srv = Server(("127.0.0.1", args.port), Handler)
    srv.data = data
    srv.rate_limit_every = args.rate_limit_every
    size = sum(len(b) + 1 for b in data.dev_json) + 1
    info = {"port": srv.server_address[1], "devices": args.devices, "orgs": args.orgs, "device_bytes": size,
            "render_s": round(time.time() - t0, 2)}
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(info, f)
        os.rename(tmp, args.port_file)
    else:
        print(json.dumps(info), flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
