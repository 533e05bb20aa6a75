"""ConnectWise Manage `conditions` / `orderBy` / `fields` query parameters.

The condition language (vendor-apis.md section 1): comparisons
=, !=, <, <=, >, >=, contains, like, in (each may be preceded by `not`),
combined with and / or / not and parentheses; strings in double or single
quotes; numbers; true / false / null; datetimes in square brackets
([2026-06-01T00:00:00Z]); nested fields with slashes (company/id,
_info/lastUpdated). `lastUpdated` and `dateEntered` are accepted for
`_info/lastUpdated` / `_info/dateEntered`, as the real API does.
Comparisons follow SQL Server semantics: text is compared without case, and
a missing (null) field satisfies no comparison except `= null`.
"""

import re

from framework import parse_time


class ConditionError(ValueError):
    pass


_TOKEN_RE = re.compile(r"""
    \s*(?:
      (?P<lp>\()|(?P<rp>\))|(?P<comma>,)|
      (?P<op><=|>=|!=|<>|=|<|>)|
      (?P<dstr>"(?:[^"\\]|\\.|"")*")|
      (?P<sstr>'(?:[^'\\]|\\.|'')*')|
      (?P<dt>\[[^\]]*\])|
      (?P<num>[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w/]))|
      (?P<word>[A-Za-z_][\w/.]*)
    )""", re.X)

_KEYWORDS = {"and", "or", "not", "contains", "like", "in", "true", "false", "null"}
_ALIASES = {"lastupdated": "_info/lastUpdated", "dateentered": "_info/dateEntered",
            "updatedby": "_info/updatedBy", "enteredby": "_info/enteredBy"}


def _unquote(s):
    q = s[0]
    body = s[1:-1]
    body = body.replace(q + q, q)
    return re.sub(r"\\(.)", r"\1", body)


def tokenize(text):
    pos, out = 0, []
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise ConditionError("unexpected character %r at position %d" % (text[pos:pos + 1], pos))
        kind = m.lastgroup
        val = m.group(kind)
        if kind in ("dstr", "sstr"):
            out.append(("str", _unquote(val), m.start(kind)))
        elif kind == "dt":
            inner = val[1:-1].strip()
            try:
                out.append(("dt", parse_time(inner), m.start(kind)))
            except ValueError:
                raise ConditionError("invalid datetime %s at position %d" % (val, m.start(kind)))
        elif kind == "num":
            out.append(("num", float(val), m.start(kind)))
        elif kind == "word":
            lw = val.lower()
            out.append(("kw", lw, m.start(kind)) if lw in _KEYWORDS else ("field", val, m.start(kind)))
        elif kind == "op":
            out.append(("op", "!=" if val == "<>" else val, m.start(kind)))
        else:
            out.append((kind, val, m.start(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text, known_fields):
        self.toks = tokenize(text)
        self.i = 0
        self.known = known_fields

    def peek(self, k=0):
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else (None, None, -1)

    def take(self):
        t = self.peek()
        self.i += 1
        return t

    def expect(self, kind, value=None):
        t = self.take()
        if t[0] != kind or (value is not None and t[1] != value):
            raise ConditionError("expected %s at position %s, found %r" % (value or kind, t[2], t[1]))
        return t

    def parse(self):
        if not self.toks:
            raise ConditionError("empty condition")
        e = self.parse_or()
        if self.i < len(self.toks):
            t = self.peek()
            raise ConditionError("unexpected %r at position %d" % (t[1], t[2]))
        return e

    def parse_or(self):
        left = self.parse_and()
        while self.peek()[:2] == ("kw", "or"):
            self.take()
            left = ("or", left, self.parse_and())
        return left

    def parse_and(self):
        left = self.parse_not()
        while self.peek()[:2] == ("kw", "and"):
            self.take()
            left = ("and", left, self.parse_not())
        return left

    def parse_not(self):
        if self.peek()[:2] == ("kw", "not"):
            self.take()
            return ("not", self.parse_not())
        return self.parse_primary()

    def parse_primary(self):
        t = self.peek()
        if t[0] == "lp":
            self.take()
            e = self.parse_or()
            self.expect("rp")
            return e
        if t[0] != "field":
            raise ConditionError("expected a field name at position %s, found %r" % (t[2], t[1]))
        self.take()
        field = self.resolve_field(t[1], t[2])
        negate = False
        if self.peek()[:2] == ("kw", "not"):
            self.take()
            negate = True
        op = self.take()
        if op[0] == "op" and not negate:
            expr = ("cmp", op[1], field, self.parse_value())
        elif op[0] == "kw" and op[1] in ("contains", "like"):
            v = self.parse_value()
            if v[0] != "str":
                raise ConditionError("%s needs a quoted string at position %s" % (op[1], op[2]))
            expr = ("cmp", op[1], field, v)
        elif op[0] == "kw" and op[1] == "in":
            self.expect("lp")
            values = [self.parse_value()]
            while self.peek()[0] == "comma":
                self.take()
                values.append(self.parse_value())
            self.expect("rp")
            expr = ("in", field, values)
        else:
            raise ConditionError("expected an operator after %s at position %s, found %r" % (t[1], op[2], op[1]))
        return ("not", expr) if negate else expr

    def parse_value(self):
        t = self.take()
        if t[0] in ("str", "num", "dt"):
            return (t[0], t[1])
        if t[0] == "kw" and t[1] in ("true", "false"):
            return ("bool", t[1] == "true")
        if t[0] == "kw" and t[1] == "null":
            return ("null", None)
        raise ConditionError("expected a value at position %s, found %r" % (t[2], t[1]))

    def resolve_field(self, name, pos):
        path = _ALIASES.get(name.lower(), name)
        parts = [p for p in path.split("/") if p]
        if self.known is not None:
            top = {k.lower(): k for k in self.known}
            if parts[0].lower() not in top:
                raise ConditionError("Unknown field '%s' at position %d" % (name, pos))
            parts[0] = top[parts[0].lower()]
        return tuple(parts)


def parse(text, known_fields=None):
    """Parses a conditions string into an expression tree; raises ConditionError."""
    return _Parser(text, known_fields).parse()


def lookup(record, path):
    cur = record
    for p in path:
        if isinstance(cur, dict):
            if p in cur:
                cur = cur[p]
                continue
            low = {k.lower(): k for k in cur}
            if p.lower() in low:
                cur = cur[low[p.lower()]]
                continue
        return None
    return cur


def _as_number(v):
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(str(v))
    except ValueError:
        return None


def _as_time(v):
    if v is None or isinstance(v, bool):
        return None
    try:
        return parse_time(v)
    except (ValueError, TypeError):
        return None


def _compare(op, rec, lit):
    kind, val = lit
    if kind == "null":
        if op == "=":
            return rec is None
        if op == "!=":
            return rec is not None
        return False
    if rec is None or isinstance(rec, (dict, list)):
        return False
    if kind == "bool":
        if op == "=":
            return isinstance(rec, bool) and rec == val
        if op == "!=":
            return isinstance(rec, bool) and rec != val
        return False
    if op in ("contains", "like"):
        text = str(rec).lower()
        if op == "contains":
            return val.lower() in text
        rx = "^" + "".join(".*" if ch in "*%" else ("." if ch == "_" else re.escape(ch)) for ch in val.lower()) + "$"
        return re.match(rx, text, re.S) is not None
    if kind == "num":
        a = _as_number(rec)
        b = val
    elif kind == "dt":
        a = _as_time(rec)
        b = val
    else:
        if isinstance(rec, bool):
            a, b = str(rec).lower(), val.lower()
        elif isinstance(rec, (int, float)):
            a, b = float(rec), _as_number(val)
        else:
            a, b = str(rec).lower(), val.lower()
    if a is None or b is None:
        return False
    if op == "=":
        return a == b
    if op == "!=":
        return a != b
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    if op == ">=":
        return a >= b
    raise ConditionError("unknown operator %s" % op)


def evaluate(expr, record):
    tag = expr[0]
    if tag == "and":
        return evaluate(expr[1], record) and evaluate(expr[2], record)
    if tag == "or":
        return evaluate(expr[1], record) or evaluate(expr[2], record)
    if tag == "not":
        return not evaluate(expr[1], record)
    if tag == "cmp":
        return _compare(expr[1], lookup(record, expr[2]), expr[3])
    if tag == "in":
        rec = lookup(record, expr[1])
        return any(_compare("=", rec, v) for v in expr[2])
    raise ConditionError("bad expression node %r" % (tag,))


def parse_order_by(text, known_fields=None):
    """'name asc, id desc' -> [(path tuple, descending)]."""
    out = []
    for part in text.split(","):
        words = part.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise ConditionError("invalid orderBy clause %r" % part.strip())
        path = _ALIASES.get(words[0].lower(), words[0])
        parts = tuple(p for p in path.split("/") if p)
        if known_fields is not None and parts[0].lower() not in {k.lower() for k in known_fields}:
            raise ConditionError("Unknown field '%s' in orderBy" % words[0])
        out.append((parts, len(words) == 2 and words[1].lower() == "desc"))
    return out


def _sort_key(v):
    if v is None:
        return (2, 0)
    if isinstance(v, bool):
        return (0, float(v))
    if isinstance(v, (int, float)):
        return (0, float(v))
    if isinstance(v, str):
        t = _as_time(v) if re.match(r"\d{4}-\d\d-\d\d", v) else None
        return (0, t) if t is not None else (1, v.lower())
    return (1, str(v).lower())


def order(records, clauses):
    recs = list(records)
    for path, desc in reversed(clauses):
        present = [r for r in recs if lookup(r, path) is not None]
        missing = [r for r in recs if lookup(r, path) is None]
        present.sort(key=lambda r: _sort_key(lookup(r, path)), reverse=desc)
        recs = present + missing
    return recs


def select_fields(record, fields_param):
    """Keeps only the listed fields (top-level or nested with slashes)."""
    out = {}
    for f in fields_param.split(","):
        f = f.strip()
        if not f:
            continue
        parts = [p for p in f.split("/") if p]
        src, dst = record, out
        for i, p in enumerate(parts):
            if not isinstance(src, dict) or p not in src:
                break
            if i == len(parts) - 1:
                dst[p] = src[p]
            else:
                src = src[p]
                if not isinstance(src, dict):
                    break
                dst = dst.setdefault(p, {})
    return out
