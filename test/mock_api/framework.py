"""A small framework for loopback mock servers of vendor APIs.

One MockApp per vendor (connectwise.py, ninjaone.py, ...) serves one port.
The framework gives every vendor the same machinery:

- routing (regex on the decoded path, per method), with auth checked by the
  vendor's authenticate() hook before the handler runs;
- JSON responses with a correct Content-Length, HTTP/1.1 keep-alive;
- fault injection (status, rate_limit, slow, drop, malformed, truncated,
  empty_page, huge, loop, unauthorized, token_revoke) matched by regex on
  path+query, with `times` / `after` counters;
- a request log (Authorization reduced to its scheme, secrets in bodies
  redacted), a mock clock, an OAuth2 token store, and the control endpoints
  under /_mock/ (no auth): health, faults, requests, reset, mutate, clock,
  config, tokens/revoke, data.

Vendor modules subclass MockApp and implement the hooks documented on it.
Standard library only.
"""

import base64
import bisect
import collections
import copy
import datetime
import http.server
import json
import re
import secrets
import socket
import struct
import sys
import threading
import time
import traceback
import urllib.parse

FAULT_KINDS = ("status", "rate_limit", "slow", "drop", "malformed", "truncated", "empty_page", "huge", "loop",
               "unauthorized", "token_revoke")
PRE_FAULTS = {"status", "rate_limit", "unauthorized"}
POST_FAULTS = {"drop", "malformed", "truncated", "empty_page", "huge", "loop"}
# The request is handled (a write takes effect), then the client is told it
# failed: "status_after" answers `status` (and `body`) instead of the real
# response; "slow_after" holds the real response back for `delay_s` (a client
# timeout or a cancelled statement after the change was applied). With "drop"
# (which also lets the handler run) they test write-backs that must not be
# applied twice.
FAULT_KINDS = FAULT_KINDS + ("status_after", "slow_after")
POST_FAULTS = POST_FAULTS | {"status_after", "slow_after"}

_SECRET_KEY_RE = re.compile(r"secret|password|passwd|private|api[-_]?key|token|credential", re.I)
_SECRET_HEADER_RE = re.compile(r"secret|password|api[-_]?key|token|cookie|integrationcode", re.I)


def dumps(obj):
    """Compact JSON bytes, as most APIs send them."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def iso_z(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))


def parse_time(value):
    """ISO 8601 string or epoch number -> epoch seconds (float)."""
    if isinstance(value, (int, float)):
        return float(value)
    t = str(value).strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", t):
        return float(t)
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    if len(t) == 10:
        t += "T00:00:00+00:00"
    dt = datetime.datetime.fromisoformat(t)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


class ApiError(Exception):
    """Raised by handlers and hooks; rendered by the vendor's error_response()."""

    def __init__(self, status, message, code=None, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}


class Request:
    def __init__(self, method, target, headers, body, server_address):
        self.method = method.upper()
        self.target = target
        split = urllib.parse.urlsplit(target)
        self.raw_path = split.path
        self.path = urllib.parse.unquote(split.path)
        self.query = split.query
        self.params = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        self._lparams = {}
        for k, v in self.params.items():
            self._lparams.setdefault(k.lower(), []).extend(v)
        self.headers = headers
        self.body = body or b""
        self.server_address = server_address
        self.vars = {}
        self.auth_info = None

    def param(self, name, default=None):
        """Query parameter, case-insensitive name; the last value wins."""
        v = self._lparams.get(name.lower())
        return v[-1] if v else default

    def has_param(self, name):
        return name.lower() in self._lparams

    def header(self, name, default=None):
        v = self.headers.get(name) if self.headers is not None else None
        return default if v is None else v

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8") or "null")
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, "request body is not valid JSON: %s" % e, code="InvalidObject")

    def form(self):
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "request body is not UTF-8", code="invalid_request")
        return {k: v[-1] for k, v in urllib.parse.parse_qs(text, keep_blank_values=True).items()}

    @property
    def host_url(self):
        host = self.header("Host")
        if not host:
            host = "%s:%d" % (self.server_address[0], self.server_address[1])
        return "http://" + host

    @property
    def path_and_query(self):
        return self.raw_path + ("?" + self.query if self.query else "")


class Response:
    def __init__(self, status=200, body=b"", headers=None, content_type="application/json; charset=utf-8"):
        self.status = int(status)
        self.body = body if isinstance(body, bytes) else str(body).encode("utf-8")
        self.headers = list((headers or {}).items()) if isinstance(headers, dict) else list(headers or [])
        self.content_type = content_type
        self.drop = None          # {"mode": "reset"|"close", "fraction": f}: send part, then cut
        self.close = False

    @classmethod
    def json(cls, obj, status=200, headers=None):
        return cls(status, dumps(obj), headers)

    @classmethod
    def empty(cls, status=204, headers=None):
        return cls(status, b"", headers, content_type=None)

    def get_header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def set_header(self, name, value):
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        if value is not None:
            self.headers.append((name, value))

    def json_body(self):
        return json.loads(self.body.decode("utf-8"))


# ---------------------------------------------------------------------------
# Faults

class Fault:
    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise ValueError("a fault is a JSON object")
        self.spec = dict(spec)
        self.kind = spec.get("kind")
        if self.kind not in FAULT_KINDS:
            raise ValueError("fault kind must be one of %s, not %r" % (", ".join(FAULT_KINDS), self.kind))
        self.match_text = spec.get("match", "") or ""
        try:
            self.match = re.compile(self.match_text)
        except re.error as e:
            raise ValueError("bad fault regex %r: %s" % (self.match_text, e))
        self.method = (spec.get("method") or "").upper() or None
        self.times = int(spec.get("times", -1))
        self.after = int(spec.get("after", 0))
        if self.kind == "status":
            if "status" not in spec:
                raise ValueError("a status fault needs \"status\"")
            self.status = int(spec["status"])
        if self.kind == "status_after":
            if "status" not in spec:
                raise ValueError("a status_after fault needs \"status\"")
            self.status = int(spec["status"])
        self.retry_after = spec.get("retry_after")
        self.delay_s = float(spec.get("delay_s", 5))
        self.size_mb = float(spec.get("size_mb", 5))
        self.fraction = float(spec.get("fraction", 0.5))
        self.mode = spec.get("mode", "reset")
        if self.kind == "drop" and self.mode not in ("reset", "close"):
            raise ValueError("drop mode is reset or close")
        self.body = spec.get("body")
        self.headers = spec.get("headers") or {}
        self.seen = 0
        self.applied = 0

    def matches(self, req):
        if self.method and self.method != req.method:
            return False
        target = req.path_and_query
        return bool(self.match.search(target) or self.match.search(urllib.parse.unquote_plus(target)))

    def body_bytes(self):
        if self.body is None:
            return None
        if isinstance(self.body, (bytes, str)):
            return self.body if isinstance(self.body, bytes) else self.body.encode("utf-8")
        return dumps(self.body)

    def describe(self):
        d = dict(self.spec)
        d.update(seen=self.seen, applied=self.applied)
        return d


class FaultSet:
    def __init__(self):
        self.lock = threading.Lock()
        self.faults = []

    def add(self, specs):
        new = [Fault(s) for s in specs]
        with self.lock:
            self.faults.extend(new)
        return new

    def clear(self):
        with self.lock:
            self.faults = []

    def pick(self, req):
        """Counts the request against every matching fault; returns the first
        one whose window (after < n <= after + times) includes it."""
        chosen = None
        with self.lock:
            for f in self.faults:
                if not f.matches(req):
                    continue
                f.seen += 1
                if chosen is None and f.seen > f.after and (f.times < 0 or f.applied < f.times):
                    f.applied += 1
                    chosen = f
        return chosen

    def describe(self):
        with self.lock:
            return [f.describe() for f in self.faults]


# ---------------------------------------------------------------------------
# Request log, clock, tokens

def redact_headers(headers):
    out = {}
    if headers is None:
        return out
    for k, v in headers.items():
        lk = k.lower()
        if lk in ("authorization", "proxy-authorization"):
            v = v.split(" ", 1)[0] + " [redacted]" if " " in v else "[redacted]"
        elif _SECRET_HEADER_RE.search(lk):
            v = "[redacted]"
        out[k] = v
    return out


def _redact_obj(obj):
    if isinstance(obj, dict):
        return {k: ("[redacted]" if _SECRET_KEY_RE.search(str(k)) else _redact_obj(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_redact_obj(v) for v in obj]
    return obj


def redact_body(req):
    if not req.body:
        return None
    ctype = (req.header("Content-Type") or "").lower()
    text = req.body[:65536].decode("utf-8", "replace")
    if "x-www-form-urlencoded" in ctype or (not ctype and "=" in text and not text.lstrip().startswith(("{", "["))):
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True)
        return {k: ("[redacted]" if _SECRET_KEY_RE.search(k) else v) for k, v in pairs}
    try:
        return _redact_obj(json.loads(text))
    except ValueError:
        return text


class RequestLog:
    def __init__(self, maxlen=100000):
        self.lock = threading.Lock()
        self.entries = collections.deque(maxlen=maxlen)
        self.seq = 0

    def add(self, req, resp, fault, started):
        entry = {
            "time": round(started, 6),
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "params": {k: (v[-1] if len(v) == 1 else v) for k, v in req.params.items()},
            "headers": redact_headers(req.headers),
            "status": resp.status if resp is not None else None,
            "fault": fault.kind if fault is not None else None,
            "bytes": len(resp.body) if resp is not None else 0,
            "duration_ms": round((time.time() - started) * 1000, 1),
        }
        if req.method not in ("GET", "HEAD") and req.body:
            entry["body"] = redact_body(req)
        with self.lock:
            self.seq += 1
            entry["seq"] = self.seq
            self.entries.append(entry)

    def list(self, since=0, path_re=None, method=None):
        with self.lock:
            items = [e for e in self.entries if e["seq"] > since]
        if path_re:
            rx = re.compile(path_re)
            items = [e for e in items if rx.search(e["path"] + ("?" + e["query"] if e["query"] else ""))
                     or rx.search(urllib.parse.unquote_plus(e["path"] + "?" + e["query"]))]
        if method:
            items = [e for e in items if e["method"] == method.upper()]
        return items

    def clear(self):
        with self.lock:
            self.entries.clear()


class MockClock:
    """The mock's notion of now, used to stamp modifications (lastUpdated).
    Real time unless pinned; an offset can shift real time."""

    def __init__(self):
        self.lock = threading.Lock()
        self.pinned = None
        self.offset = 0.0

    def now(self):
        with self.lock:
            return self.pinned if self.pinned is not None else time.time() + self.offset

    def reset(self):
        with self.lock:
            self.pinned, self.offset = None, 0.0

    def update(self, body):
        with self.lock:
            if "now" in body:
                if body["now"] is None:
                    self.pinned, self.offset = None, 0.0
                else:
                    self.pinned = parse_time(body["now"])
            if "offset_s" in body:
                self.pinned, self.offset = None, float(body["offset_s"])
            if "advance_s" in body:
                if self.pinned is not None:
                    self.pinned += float(body["advance_s"])
                else:
                    self.offset += float(body["advance_s"])

    def describe(self):
        now = self.now()
        return {"now": iso_z(now), "epoch": now, "pinned": self.pinned is not None, "offset_s": self.offset}


class TokenStore:
    """OAuth2 access tokens. Expiry uses real time (not the mock clock)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tokens = {}
        self.issued = 0

    def issue(self, ttl_s, scope="", subject=""):
        token = "mock-" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = {"expires_at": time.time() + float(ttl_s), "scope": scope, "subject": subject,
                                  "revoked": False}
            self.issued += 1
        return token

    def check(self, token):
        """None when valid, else 'unknown' / 'expired' / 'revoked'."""
        with self.lock:
            t = self.tokens.get(token)
            if t is None:
                return "unknown"
            if t["revoked"]:
                return "revoked"
            if time.time() >= t["expires_at"]:
                return "expired"
            return None

    def scope_of(self, token):
        with self.lock:
            t = self.tokens.get(token)
            return t["scope"] if t else ""

    def info(self, token):
        """A copy of what was stored with the token (scope, subject, ...), or None."""
        with self.lock:
            t = self.tokens.get(token)
            return dict(t) if t else None

    def revoke_all(self):
        with self.lock:
            n = 0
            for t in self.tokens.values():
                if not t["revoked"]:
                    t["revoked"] = True
                    n += 1
            return n

    def clear(self):
        with self.lock:
            self.tokens.clear()
            self.issued = 0

    def describe(self):
        now = time.time()
        with self.lock:
            states = collections.Counter(
                "revoked" if t["revoked"] else ("expired" if now >= t["expires_at"] else "valid")
                for t in self.tokens.values())
            return {"issued": self.issued, "states": dict(states)}


class RateWindow:
    """Request times in a sliding window (real time): rate limits such as
    Autotask's 10,000 per hour or Datto's 600 per minute."""

    def __init__(self):
        self.lock = threading.Lock()
        self.times = collections.deque()

    def hit(self, window_s):
        """Records one request; returns how many the window holds now."""
        now = time.time()
        with self.lock:
            self.times.append(now)
            while self.times and self.times[0] <= now - window_s:
                self.times.popleft()
            return len(self.times)

    def count(self, window_s):
        now = time.time()
        with self.lock:
            while self.times and self.times[0] <= now - window_s:
                self.times.popleft()
            return len(self.times)

    def clear(self):
        with self.lock:
            self.times.clear()


def zoneless(epoch, millis=False):
    """Epoch seconds -> '2026-11-01T00:00:00' (no zone, as Autotask and Halo write times)."""
    if epoch is None:
        return None
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(epoch // 1)))
    if millis:
        text += ".%03d" % int(round((epoch % 1) * 1000) % 1000)
    return text


def iso_ms_z(epoch):
    """Epoch seconds -> '2026-11-01T00:00:00.123Z'."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(epoch // 1))) + ".%03dZ" % (
        int(round((epoch % 1) * 1000)) % 1000)


def table_mutate(change, tables, aliases=None, stamp=None, new_record=None, on_remove=None):
    """The /_mock/mutate change of a vendor whose state is Tables:
    {"entity": e, "id": x, "set": {"a/b": v}}, {"entity": e, "op": "add",
    "record": {...}}, {"entity": e, "id": x, "op": "remove"}.
    stamp(entity, record) marks a modification (unless "touch": false);
    new_record(entity, id, record) builds an added record; on_remove(entity, id)
    cleans up children. Ids are matched as given, then as int / str."""
    entity = change.get("entity")
    entity = (aliases or {}).get(entity, entity)
    if entity not in tables:
        raise ApiError(400, "entity must be one of %s" % ", ".join(sorted(tables)))
    table = tables[entity]
    op = change.get("op", "set" if "set" in change else None)

    def resolve(rid):
        if rid in table:
            return rid
        for conv in (int, str):
            try:
                v = conv(rid)
            except (TypeError, ValueError):
                continue
            if v in table:
                return v
        return None

    if op == "add":
        record = dict(change.get("record") or {})
        rid = record.get("id")
        if rid is None:
            rid = table.next_id() if all(isinstance(i, int) for i in table.ids) else None
            if rid is None:
                raise ApiError(400, "add %s: record.id is required" % entity)
        if resolve(rid) is not None:
            raise ApiError(400, "%s %s already exists" % (entity, rid))
        rec = new_record(entity, rid, record) if new_record else {"id": rid}
        for k, v in record.items():
            set_path(rec, k, v)
        rec["id"] = rid
        table.put(rid, rec)
        return {"entity": entity, "op": "add", "id": rid, "record": rec}
    rid = resolve(change.get("id"))
    if rid is None:
        raise ApiError(404, "%s %s does not exist" % (entity, change.get("id")))
    if op == "remove":
        if on_remove:
            on_remove(entity, rid)
        table.remove(rid)
        return {"entity": entity, "op": "remove", "id": rid}
    if op != "set":
        raise ApiError(400, "op must be set, add or remove")
    rec = table.materialize(rid)
    for k, v in (change.get("set") or {}).items():
        set_path(rec, k, v)
    if stamp and change.get("touch", True):
        stamp(entity, rec)
    return {"entity": entity, "op": "set", "id": rid, "record": rec}


def parse_basic(header_value):
    """'Basic base64(user:pass)' -> (user, pass), or None."""
    if not header_value:
        return None
    parts = header_value.split(None, 1)
    if len(parts) != 2 or parts[0].lower() != "basic":
        return None
    try:
        raw = base64.b64decode(parts[1].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    if ":" not in raw:
        return None
    user, _, pw = raw.partition(":")
    return user, pw


def bearer_token(header_value):
    if not header_value:
        return None
    parts = header_value.split(None, 1)
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    return parts[1].strip()


def coerce_like(value, example):
    """Config values from the CLI arrive as strings: convert like the default."""
    if not isinstance(value, str) or isinstance(example, str) or example is None:
        return value
    if isinstance(example, bool):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(example, int):
        return int(value)
    if isinstance(example, float):
        return float(value)
    if isinstance(example, (list, dict)):
        return json.loads(value)
    return value


# ---------------------------------------------------------------------------
# The app

class MockApp:
    """Base of a vendor mock. Subclasses set `name` and implement:

    default_config()          dict of settings (credentials, page sizes, ...)
    register_routes()         self.route(...) calls
    reset_data()              (re)build mutable state from self.dataset
    authenticate(req)         raise ApiError(401, ...) unless the request may pass
    error_response(status, message, code=None, retry_after=None) -> Response
    on_empty_page(req, resp)  the response for an "empty_page" fault (default: [] body)
    before_loop(req)/on_loop(req, resp)  make the cursor point back to an earlier page
    mutate(change)            apply one /_mock/mutate change, return a JSON-able result
    data_entities()           {entity: callable(req) -> list of wire dicts} for /_mock/data
    uses_tokens               True when the vendor issues OAuth2 tokens (token_revoke)
    """

    name = "vendor"
    uses_tokens = False

    def __init__(self, dataset, config=None, faults=None, verbose=False):
        self.lock = threading.RLock()
        self.dataset = dataset
        self.verbose = verbose
        self.routes = []
        self.faults = FaultSet()
        self.log = RequestLog()
        self.clock = MockClock()
        self.tokens = TokenStore()
        self.config = self.default_config()
        for k, v in (config or {}).items():
            if k not in self.config:
                raise ValueError("%s: unknown config key %r (known: %s)" % (self.name, k, ", ".join(sorted(self.config))))
            self.config[k] = coerce_like(v, self.config[k])
        self._startup_config = copy.deepcopy(self.config)
        self._startup_faults = list(faults or [])
        if self._startup_faults:
            self.faults.add(self._startup_faults)
        self.register_routes()
        self.reset_data()

    # -- hooks (defaults) ------------------------------------------------------
    def default_config(self):
        return {}

    def register_routes(self):
        pass

    def reset_data(self):
        pass

    def authenticate(self, req):
        pass

    def error_response(self, status, message, code=None, retry_after=None):
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return Response.json({"error": code or "error", "message": message}, status, headers)

    def unauthorized_response(self, req):
        return self.error_response(401, "Unauthorized", code="Unauthorized")

    def rate_limit_response(self, req, retry_after):
        return self.error_response(429, "Too many requests", code="TooManyRequests", retry_after=retry_after)

    def on_empty_page(self, req, resp):
        resp.body = b"[]"
        return resp

    def before_loop(self, req):
        pass

    def on_loop(self, req, resp):
        return resp

    def mutate(self, change):
        raise ApiError(400, "%s mock has no mutable entities" % self.name)

    def data_entities(self):
        return {}

    def health(self):
        return {}

    def revoke_tokens(self):
        return self.tokens.revoke_all()

    # -- routing ---------------------------------------------------------------
    def route(self, methods, pattern, handler, auth=True):
        if isinstance(methods, str):
            methods = (methods,)
        self.routes.append((tuple(m.upper() for m in methods), re.compile(pattern), handler, auth))

    def dispatch(self, req):
        allowed = set()
        for methods, rx, handler, auth in self.routes:
            m = rx.fullmatch(req.path)
            if not m:
                continue
            if req.method not in methods:
                allowed.update(methods)
                continue
            req.vars.update({k: v for k, v in m.groupdict().items() if v is not None})
            with self.lock:
                if auth:
                    self.authenticate(req)
                return handler(req)
        if allowed:
            resp = self.error_response(405, "method %s not allowed on %s" % (req.method, req.path),
                                       code="MethodNotAllowed")
            resp.set_header("Allow", ", ".join(sorted(allowed)))
            return resp
        return self.error_response(404, "no such endpoint: %s" % req.path, code="NotFound")

    # -- request entry point ---------------------------------------------------
    def handle(self, req):
        if req.path == "/_mock" or req.path.startswith("/_mock/"):
            try:
                return self.control(req)
            except ApiError as e:
                return Response.json({"error": e.message}, e.status)
            except (ValueError, KeyError, TypeError) as e:
                return Response.json({"error": "%s: %s" % (type(e).__name__, e)}, 400)
        started = time.time()
        fault = self.faults.pick(req)
        resp = None
        try:
            if fault is not None:
                resp = self._pre_fault(fault, req)
            if resp is None:
                try:
                    resp = self.dispatch(req)
                except ApiError as e:
                    resp = self.error_response(e.status, e.message, code=e.code)
                    for k, v in e.headers.items():
                        resp.set_header(k, v)
                if fault is not None:
                    resp = self._post_fault(fault, req, resp)
            if fault is not None:
                for k, v in fault.headers.items():
                    resp.set_header(k, str(v))
        except Exception as e:  # a bug in the mock: say so loudly, answer 500
            traceback.print_exc()
            resp = Response.json({"error": "mock server bug", "detail": "%s: %s" % (type(e).__name__, e)}, 500)
        self.log.add(req, resp, fault, started)
        return resp

    def _pre_fault(self, f, req):
        k = f.kind
        if k == "slow":
            time.sleep(f.delay_s)
            return None
        if k == "status":
            if f.body is not None:
                return Response(f.status, f.body_bytes())
            return self.error_response(f.status, "injected HTTP %d" % f.status, code="Injected")
        if k == "rate_limit":
            resp = self.rate_limit_response(req, f.retry_after)
            if f.body is not None:
                resp.body = f.body_bytes()
            return resp
        if k == "unauthorized":
            return self.unauthorized_response(req)
        if k == "token_revoke":
            if self.uses_tokens:
                self.revoke_tokens()
                return None     # the request goes on and meets its now-revoked token
            return self.unauthorized_response(req)
        if k == "loop":
            self.before_loop(req)
        return None

    def _post_fault(self, f, req, resp):
        k = f.kind
        if k == "drop":
            resp.drop = {"mode": f.mode, "fraction": min(max(f.fraction, 0.0), 0.99)}
        elif k == "malformed":
            resp.status = 200
            resp.content_type = "application/json; charset=utf-8"
            resp.body = f.body_bytes() or (b"<!DOCTYPE html><html><head><title>Maintenance</title></head>"
                                           b"<body><h1>We'll be back soon</h1></body></html>")
        elif k == "truncated":
            n = len(resp.body)
            cut = max(1, min(n - 1, int(n * f.fraction))) if n > 1 else 0
            resp.body = resp.body[:cut]
        elif k == "empty_page":
            resp = self.on_empty_page(req, resp)
        elif k == "huge":
            target = int(f.size_mb * 1024 * 1024)
            pad = target - len(resp.body)
            if pad > 0:
                b = resp.body
                if b[:1] in (b"[", b"{"):
                    resp.body = b[:1] + b" " * pad + b[1:]
                else:
                    resp.body = b + b" " * pad
        elif k == "loop":
            resp = self.on_loop(req, resp)
        elif k == "status_after":
            # The handler ran: whatever it changed stays changed.
            if f.body is not None:
                resp = Response(f.status, f.body_bytes())
            else:
                resp = self.error_response(f.status, "injected HTTP %d after the request was applied" % f.status,
                                           code="Injected")
        elif k == "slow_after":
            time.sleep(f.delay_s)
        return resp

    # -- control endpoints -------------------------------------------------------
    def control(self, req):
        p = req.path.rstrip("/")
        m = req.method
        if p in ("/_mock", "/_mock/health"):
            body = {"status": "ok", "vendor": self.name, "clock": self.clock.describe()}
            body.update(self.health())
            return Response.json(body)
        if p == "/_mock/requests":
            if m == "DELETE":
                self.log.clear()
                return Response.json({"cleared": True})
            since = int(req.param("since", "0") or 0)
            return Response.json(self.log.list(since, req.param("path"), req.param("method")))
        if p == "/_mock/faults":
            if m == "DELETE":
                self.faults.clear()
                return Response.json({"cleared": True})
            if m == "POST":
                body = req.json()
                specs = body.get("faults", [body] if "kind" in body else []) if isinstance(body, dict) else body
                if isinstance(body, dict) and body.get("replace"):
                    self.faults.clear()
                added = self.faults.add(specs)
                return Response.json({"added": len(added), "faults": self.faults.describe()})
            return Response.json({"faults": self.faults.describe()})
        if p == "/_mock/reset":
            with self.lock:
                self.config = copy.deepcopy(self._startup_config)
                self.faults.clear()
                if self._startup_faults:
                    self.faults.add(self._startup_faults)
                self.log.clear()
                self.clock.reset()
                self.tokens.clear()
                self.reset_data()
            return Response.json({"reset": True, "vendor": self.name})
        if p == "/_mock/mutate":
            body = req.json()
            changes = body.get("changes", [body]) if isinstance(body, dict) else body
            results = []
            with self.lock:
                for ch in changes:
                    results.append(self.mutate(ch))
            return Response.json({"results": results})
        if p == "/_mock/clock":
            if m == "POST":
                self.clock.update(req.json() or {})
            return Response.json(self.clock.describe())
        if p == "/_mock/config":
            if m == "POST":
                body = req.json() or {}
                with self.lock:
                    for k, v in body.items():
                        if k not in self.config:
                            raise ApiError(400, "unknown config key %r (known: %s)" % (k, ", ".join(sorted(self.config))))
                        self.config[k] = coerce_like(v, self.config[k])
            return Response.json(self.config)
        if p in ("/_mock/tokens/revoke", "/_mock/revoke_tokens"):
            return Response.json({"revoked": self.revoke_tokens()})
        if p == "/_mock/tokens":
            return Response.json(self.tokens.describe())
        if p == "/_mock/data":
            return Response.json({"entities": sorted(self.data_entities())})
        if p.startswith("/_mock/data/"):
            entity = p[len("/_mock/data/"):]
            fn = self.data_entities().get(entity)
            if fn is None:
                raise ApiError(404, "unknown entity %r (known: %s)" % (entity, ", ".join(sorted(self.data_entities()))))
            with self.lock:
                return Response.json(fn(req))
        raise ApiError(404, "unknown control endpoint %s" % req.path)


# ---------------------------------------------------------------------------
# HTTP plumbing

class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "billrecon-mock/1"
    sys_version = ""
    timeout = 120   # idle keep-alive connections are closed after this

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        if getattr(self.server, "verbose", False):
            sys.stderr.write("[%s] %s - %s\n" % (self.server.app.name, self.address_string(), fmt % args))

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _serve(self):
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        req = Request(self.command, self.path, self.headers, body, self.server.server_address)
        resp = self.server.app.handle(req)
        self._write(resp)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def _write(self, resp):
        body = resp.body
        try:
            self.send_response(resp.status)
            if resp.content_type and resp.status != 204:
                self.send_header("Content-Type", resp.content_type)
            for k, v in resp.headers:
                self.send_header(k, v)
            if resp.status != 204:
                self.send_header("Content-Length", str(len(body)))
            if resp.close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command == "HEAD" or resp.status == 204:
                return
            if resp.drop:
                n = int(len(body) * resp.drop["fraction"])
                self.wfile.write(body[:n])
                self.wfile.flush()
                time.sleep(0.05)   # let the partial body reach the client first
                self.close_connection = True
                sock = self.connection
                if resp.drop["mode"] == "reset":
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    sock.close()   # RST: "connection reset by peer"
                else:
                    sock.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
            self.close_connection = True


class MockHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, app, verbose=False):
        self.app = app
        self.verbose = verbose
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address):
        # Clients that hang up (timeouts, drop faults) are normal here.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout, OSError)):
            return
        super().handle_error(request, client_address)


def serve(app, host="127.0.0.1", port=0, verbose=False):
    """Starts app on host:port (0 = OS-assigned) in a daemon thread; returns the server."""
    server = MockHTTPServer((host, port), app, verbose=verbose)
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="mock-" + app.name,
                         daemon=True)
    t.start()
    server.thread = t
    return server


# ---------------------------------------------------------------------------
# Mutable entity tables

class Table:
    """Records of one entity, by id. A row is either the generator's compact
    record (a namedtuple, rendered to wire JSON on demand by `render`) or a
    wire dict (after a mutation or an add): writes materialize rows."""

    def __init__(self, records, render):
        self.render = render
        self.rows = {r.id: r for r in records}
        self.ids = sorted(self.rows)

    def __len__(self):
        return len(self.ids)

    def __contains__(self, rid):
        return rid in self.rows

    def wire(self, rid):
        row = self.rows[rid]
        return copy.deepcopy(row) if isinstance(row, dict) else self.render(row)

    def peek(self, rid):
        """The wire dict without copying (do not modify)."""
        row = self.rows[rid]
        return row if isinstance(row, dict) else self.render(row)

    def raw(self, rid):
        return self.rows.get(rid)

    def materialize(self, rid):
        row = self.rows[rid]
        if not isinstance(row, dict):
            row = self.render(row)
            self.rows[rid] = row
        return row

    def put(self, rid, wire):
        if rid not in self.rows:
            bisect.insort(self.ids, rid)
        self.rows[rid] = wire

    def remove(self, rid):
        del self.rows[rid]
        i = bisect.bisect_left(self.ids, rid)
        if i < len(self.ids) and self.ids[i] == rid:
            del self.ids[i]

    def next_id(self):
        return (self.ids[-1] + 1) if self.ids else 1

    def ids_after(self, after):
        return self.ids[bisect.bisect_right(self.ids, after):]

    def iter_wire(self, ids=None):
        for rid in (self.ids if ids is None else ids):
            yield self.peek(rid)


def set_path(obj, path, value):
    """Sets a nested field: 'system/serialNumber' or 'system.serialNumber'."""
    parts = [p for p in re.split(r"[/.]", path.strip("/")) if p]
    if not parts:
        raise ApiError(400, "empty field path")
    cur = obj
    for p in parts[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[p] = nxt
        cur = nxt
    if value is None:
        cur.pop(parts[-1], None)
    else:
        cur[parts[-1]] = value


def get_path(obj, path):
    cur = obj
    for p in [p for p in re.split(r"[/.]", path.strip("/")) if p]:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return cur
