"""billrecon.report_html(): the monthly report as one self-contained HTML
page, on a reconciled run of the generated MSP (ConnectWise + NinjaOne,
mapped from the generator's ground truth, rules from the presets; the fixture
of test_push_changes). The page parses with balanced tags, names the run and
its biggest discrepancy with the explanation, loads nothing from anywhere,
runs no script, escapes what the data says (a client named
<script>alert(1)</script> & "Co" is shown, not run), refuses a run that does
not exist with a hint, and renders in headless Chromium (Debian's chromium:
a screenshot that is a real page, with the charts' bar colours in it).

Without chromium the rendering test fails (CI installs it: test/bin/lib.sh);
BILLRECON_NO_CHROMIUM=1 skips it instead."""

import html.parser
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib

import psycopg2

from e2e_lib import E2ETestCase, KindTestCase, connect
from test_push_changes import PushChanges

EVIL = '<script>alert(1)</script> & "Co"'
SECTIONS = ("health", "summary", "charts", "top", "cards", "inactive", "flagged", "duplicates")
# The bar colours of report_html's stylesheet: under-billed, over-billed.
UNDER_RGB = (0x1F, 0x6F, 0xB2)
OVER_RGB = (0xD9, 0x48, 0x0F)
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class PageParser(html.parser.HTMLParser):
    """Checks that every element the page opens is closed in order (the
    report writes every end tag, even those HTML would let it omit), and
    keeps the text a browser would show (entities decoded)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []
        self.errors = []
        self.tags = {}
        self.ids = []
        self.attrs = []
        self.text = []
        self.style = []
        self.doctype = None

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.ids += [v for k, v in attrs if k == "id"]
        self.attrs += [(tag, k, v) for k, v in attrs]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.attrs += [(tag, k, v) for k, v in attrs]

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append("</%s> closes %s at %s" % (tag, self.stack[-1:] or "nothing", self.getpos()))
            if tag in self.stack:
                del self.stack[len(self.stack) - 1 - self.stack[::-1].index(tag):]
        else:
            self.stack.pop()

    def handle_data(self, data):
        (self.style if self.stack[-1:] == ["style"] else self.text).append(data)

    def visible_text(self):
        return re.sub(r"\s+", " ", " ".join(self.text))


def parse(page):
    p = PageParser()
    p.feed(page)
    p.close()
    return p


def read_png(path):
    """(width, height, bytes per pixel, rows of raw pixel bytes) of an 8-bit,
    non-interlaced PNG (what Chromium writes), with the scanline filters undone."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise AssertionError("%s is not a PNG" % path)
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if typ == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif typ == b"IDAT":
            idat.append(body)
        elif typ == b"IEND":
            break
    width, height, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or interlace or ctype not in (2, 6):
        raise AssertionError("unexpected PNG format: depth %d, colour type %d, interlace %d"
                             % (depth, ctype, interlace))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(height):
        kind, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        if kind == 1:
            for x in range(bpp, stride):
                line[x] = (line[x] + line[x - bpp]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif kind == 3:
            for x in range(stride):
                left = line[x - bpp] if x >= bpp else 0
                line[x] = (line[x] + ((left + prev[x]) >> 1)) & 255
        elif kind == 4:
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0
                b = prev[x]
                c = prev[x - bpp] if x >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def colour_counts(rows, bpp):
    """{(r, g, b): pixels}, over every pixel."""
    counts = {}
    for row in rows:
        for x in range(0, len(row), bpp):
            key = (row[x], row[x + 1], row[x + 2])
            counts[key] = counts.get(key, 0) + 1
    return counts


def near(counts, rgb, tolerance=4):
    return sum(n for c, n in counts.items() if all(abs(a - b) <= tolerance for a, b in zip(c, rgb)))


def money(x, signed=False):
    """As the report prints it: 1,234.50 (signed: +1,234.50)."""
    return ("+" if signed and x > 0 else "") + "{:,.2f}".format(x)


class ReportHtml(PushChanges, KindTestCase):
    KIND = "connectwise"
    TRUTH = "psa_company_id"

    def report(self, run=None):
        if run is None:
            return self.scalar("SELECT billrecon.report_html()")
        return self.scalar("SELECT billrecon.report_html(%s)", (run,))

    def assert_page(self, page):
        """Parses, every element closed in order, the main parts there; returns the parser."""
        p = parse(page)
        self.assertEqual(p.errors, [], "unbalanced tags")
        self.assertEqual(p.stack, [], "elements left open")
        self.assertEqual((p.doctype or "").lower(), "doctype html")
        for tag in ("html", "head", "style", "body", "header", "main", "footer", "h1"):
            self.assertEqual(p.tags.get(tag), 1, "exactly one <%s>" % tag)
        self.assertTrue(re.search(r"(?s)<head>.*<title>[^<]+</title>.*</head>", page), "the page has a title")
        self.assertEqual(set(SECTIONS) - set(p.ids), set(), "every section is there")
        self.assertGreaterEqual(p.tags.get("svg", 0), 2, "a chart by client and one by type")
        self.assertNotIn("script", p.tags)
        return p

    def assert_self_contained(self, page, p):
        """Nothing loaded from anywhere, nothing run."""
        self.assertNotRegex(page, r"(?i)<\s*script", "no script")
        self.assertNotRegex(page, r"(?i)\b(src|href)\s*=\s*[\"']?\s*(https?:)?//", "no external reference")
        self.assertNotRegex(page, r"(?i)url\s*\(", "no url() resource")
        self.assertEqual([a for a in p.attrs if a[1] in ("src", "href", "xlink:href", "srcset", "action", "poster",
                                                         "data", "background") or a[1].startswith("on")], [],
                         "no attribute that loads, links or runs something")
        style = "".join(p.style)
        self.assertTrue(style, "the stylesheet is inline")
        self.assertNotRegex(style, r"(?i)@import|url\s*\(|https?:", "the stylesheet loads nothing")
        self.assertNotIn("link", p.tags)

    def test_the_report_of_a_run(self):
        run = self.prepare()
        page = self.report(run)
        self.assertEqual(page.count("<!DOCTYPE html>"), 1)
        p = self.assert_page(page)
        self.assert_self_contained(page, p)
        self.assertNotRegex(page, r"(?i)https?://", "no URL at all")
        text = p.visible_text()
        period = self.one("SELECT period_start, period_end FROM billrecon.reconcile_runs WHERE id = %s", (run,))
        self.assertIn("run %d" % run, text)
        self.assertTrue(re.search(r"<title>[^<]* run %d</title>" % run, page), "the title names the run")
        self.assertIn("period %s to %s" % (period["period_start"], period["period_end"]), text)
        self.assertIn(period["period_start"].strftime("%B %Y"), text, "the title names the month")
        # The default is the newest run: this one.
        self.assertEqual(self.scalar("SELECT billrecon.last_run_id()"), run)
        self.assertIn("run %d" % run, parse(self.report()).visible_text())

        # The biggest discrepancy, its client and its explanation, in words.
        top = self.one("""SELECT company, explanation, amount FROM billrecon.discrepancies WHERE run_id = %s
                           ORDER BY abs(amount) DESC NULLS LAST, company, line_item_id, result_id LIMIT 1""", (run,))
        self.assertIsNotNone(top["amount"])
        self.assertIn(top["company"], text)
        self.assertIn(re.sub(r"\s+", " ", top["explanation"]), text)
        self.assertIn(money(top["amount"], True), text)

        # The summary figures, formatted with separators and cents.
        s = self.one("""SELECT coalesce(sum(amount) FILTER (WHERE amount > 0), 0) AS under,
                               coalesce(sum(amount) FILTER (WHERE amount < 0), 0) AS over,
                               coalesce(sum(amount), 0) AS net, coalesce(sum(abs(amount)), 0) AS absolute,
                               count(*) AS n
                          FROM billrecon.discrepancies WHERE run_id = %s""", (run,))
        summary = text[text.index("Summary"):text.index("Where the money is")]
        for key in ("under", "over", "absolute"):
            self.assertIn(money(s[key]), summary, key)
        self.assertIn(money(s["net"], True), summary)
        self.assertRegex(summary, r"Discrepancies %d\b" % s["n"])
        self.assertTrue(re.search(r"\d{1,3},\d{3}\.\d{2}", page) or s["absolute"] < 1000,
                        "thousands separators")
        # Every integration the run used, with its status.
        for i in self.q("SELECT integration, status FROM billrecon.reconcile_run_inputs WHERE run_id = %s", (run,)):
            self.assertRegex(text, re.escape(i["integration"]) + r" \S+ (psa|vendor) " + i["status"])
        # Bars: one coloured rect per signed amount of a charted client.
        bars = len(re.findall(r'<rect class="(pos|neg)"', page))
        self.assertGreater(bars, 0)
        # Pending cards of the run, counted.
        pending = self.scalar("""SELECT count(*) FROM billrecon.change_cards
                                  WHERE (run_id = %s OR last_run_id = %s) AND status = 'pending'""", (run, run))
        self.assertGreater(pending, 0)
        self.assertRegex(text, r"Pending %d\b" % pending)

    def test_it_renders_in_headless_chromium(self):
        if os.environ.get("BILLRECON_NO_CHROMIUM") == "1":
            self.skipTest("BILLRECON_NO_CHROMIUM=1: the report is not rendered in Chromium")
        self.render(self.report(self.prepare()))

    def test_what_the_data_says_is_escaped(self):
        run = self.prepare()
        victim = self.one("""SELECT psa_company_id, company FROM billrecon.discrepancies WHERE run_id = %s
                              ORDER BY abs(amount) DESC NULLS LAST, company LIMIT 1""", (run,))
        self.execute("UPDATE billrecon.psa_companies SET name = %s WHERE integration_id = %s AND external_id = %s",
                     (EVIL, self.psa_id, victim["psa_company_id"]))
        fresh = self.scalar("SELECT billrecon.reconcile()")
        renamed = self.scalar("SELECT count(*) FROM billrecon.discrepancies WHERE run_id = %s AND company = %s",
                              (fresh, EVIL))
        self.assertGreater(renamed, 0, "the fresh run carries the new name")
        # An explanation and an integration error with markup too.
        self.execute("""UPDATE billrecon.reconcile_results SET explanation = explanation || ' <b>&amp;</b> ''quoted'''
                         WHERE run_id = %s AND company = %s""", (fresh, EVIL))
        self.execute("UPDATE billrecon.reconcile_run_inputs SET last_error = '<img src=x onerror=alert(2)>' "
                     "WHERE run_id = %s AND side = 'vendor'", (fresh,))
        page = self.report(fresh)
        self.assertNotIn(EVIL, page)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot;", page)
        self.assertNotIn("<img", page)
        self.assertIn("&lt;img src=x onerror=alert(2)&gt;", page)
        p = self.assert_page(page)
        self.assert_self_contained(page, p)
        text = p.visible_text()
        self.assertIn(EVIL, text, "the name reads as it is")
        self.assertIn(" <b>&amp;</b> 'quoted'", text)
        self.assertIn("<img src=x onerror=alert(2)>", text)
        self.assertEqual(self.scalar("SELECT billrecon._html_escape(%s)", (EVIL,)),
                         "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot;")
        self.assertEqual(self.scalar("SELECT billrecon._html_escape('it''s')"), "it&#39;s")
        self.assertEqual(self.scalar("SELECT billrecon._html_escape(NULL)"), "")
        self.assertEqual(self.scalar("""SELECT provolatile FROM pg_proc
                                         WHERE oid = 'billrecon._html_escape(text)'::regprocedure"""), "i")
        if os.environ.get("BILLRECON_NO_CHROMIUM") != "1":
            self.render(page)     # and Chromium shows it as text too

    def test_every_text_field_is_escaped(self):
        """Every free-text column the report can show, rewritten to markup of
        its own name: none becomes an element (test_injection.py's strings too)."""
        run = self.prepare()
        cards = self.cards()
        self.assertTrue(cards)
        self.execute("SELECT billrecon.note_card(%s, %s, ARRAY[%s])",
                     ([c["card_id"] for c in cards], "<zz-evil>note</zz-evil>", "<zz-evil>tag"))
        targets = {"reconcile_results": "run_id = %s" % run, "reconcile_run_inputs": "run_id = %s" % run,
                   "reconcile_runs": "id = %s" % run, "reconcile_run_clients": "run_id = %s" % run,
                   "proposed_changes": "psa_integration_id = %s" % self.psa_id,
                   "psa_companies": "integration_id = %s" % self.psa_id,
                   "psa_line_items": "integration_id = %s" % self.psa_id,
                   "vendor_accounts": "integration_id = %s" % self.nj_id,
                   "usage_records": "integration_id = %s" % self.nj_id}
        rewritten = []
        for table, where in targets.items():
            for col in self.q("""SELECT column_name FROM information_schema.columns WHERE table_schema = 'billrecon'
                                    AND table_name = %s AND data_type = 'text' ORDER BY ordinal_position""", (table,)):
                c = col["column_name"]
                try:
                    self.execute("UPDATE billrecon.%s SET %s = %%s || coalesce(%s, '') WHERE %s"
                                 % (table, c, c, where), ("<zz-evil title='%s.%s'>\"'&" % (table, c),))
                    rewritten.append("%s.%s" % (table, c))
                except psycopg2.Error:   # a column with a CHECK of its own: not free text
                    pass
        self.assertGreater(len(rewritten), 40, rewritten)
        page = self.report(run)
        self.assertNotIn("<zz-evil", page)
        p = self.assert_page(page)
        self.assertNotIn("zz-evil", p.tags, "an element made of data")
        self.assert_self_contained(page, p)
        self.assertIn("<zz-evil title=", p.visible_text(), "the data is shown as text")

    def test_a_reader_gets_the_same_page_whatever_the_date_and_number_settings(self):
        run = self.prepare()
        period = self.scalar("SELECT period_start FROM billrecon.reconcile_runs WHERE id = %s", (run,))
        self.execute("SET datestyle = 'SQL, DMY'")   # psycopg2 cannot read dates then: nothing but text below
        self.addCleanup(self.execute, "RESET datestyle")
        # A locale whose thousands separator is "." and decimal point ",", where the machine has one.
        for loc in ("de_DE.UTF-8", "de_DE.utf8", "de_DE", "fr_FR.UTF-8", "nl_NL.UTF-8"):
            try:
                self.execute("SET lc_numeric = %s", (loc,))
                self.addCleanup(self.execute, "RESET lc_numeric")
                break
            except psycopg2.Error:
                continue
        self.execute("SET ROLE billrecon_reader")
        page = self.report(run)
        self.execute("RESET ROLE")
        p = self.assert_page(page)
        text = p.visible_text()
        self.assertIn("period %s to" % period.isoformat(), text, "ISO dates whatever DateStyle says")
        self.assertIn("run %d" % run, text)
        self.assertNotRegex(page, r"\d\.\d{3},\d{2}", "no locale-formatted money")

    def render(self, page):
        """Renders the page in headless Chromium; checks the screenshot."""
        exe = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
        if exe is None:
            self.fail("chromium is not installed: the HTML report is rendered in headless Chromium (Debian package "
                      "chromium; bash test/bin/run-tests installs it). BILLRECON_NO_CHROMIUM=1 skips this check.")
        tmp = tempfile.mkdtemp(prefix="billrecon-report-")
        try:
            path = os.path.join(tmp, "report.html")
            png = os.path.join(tmp, "report.png")
            with open(path, "w", encoding="utf-8") as f:
                f.write(page)
            cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                   "--user-data-dir=" + os.path.join(tmp, "profile"), "--screenshot=" + png, "--window-size=1280,2000",
                   "file://" + path]
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120,
                               env=dict(os.environ, HOME=tmp))
            out = r.stdout.decode("utf-8", "replace")
            self.assertTrue(os.path.exists(png),
                            "chromium wrote no screenshot (exit %d): %s" % (r.returncode, out[-2000:]))
            size = os.path.getsize(png)
            self.assertGreater(size, 10 * 1024, "the screenshot is %d bytes: an empty page?" % size)
            width, height, bpp, rows = read_png(png)
            self.assertEqual((width, height), (1280, 2000))
            counts = colour_counts(rows, bpp)
            self.assertGreater(len(counts), 50, "the screenshot is (nearly) one colour: %r" % sorted(counts)[:5])
            top = max(counts.values())
            self.assertLess(top, 0.95 * width * height, "one colour covers almost all of the screenshot")
            # The charts drew: bars in the under-billed or over-billed colour.
            self.assertGreater(near(counts, UNDER_RGB) + near(counts, OVER_RGB), 500,
                               "no chart bar in the screenshot")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class ReportHtmlErrors(E2ETestCase):
    def test_a_run_that_does_not_exist(self):
        missing = self.scalar("SELECT coalesce(max(id), 0) + 1000 FROM billrecon.reconcile_runs")
        with self.assertRaises(psycopg2.Error) as cm:
            self.scalar("SELECT billrecon.report_html(%s)", (missing,))
        e = cm.exception
        self.assertEqual(e.pgcode, "42704", e.pgerror)
        self.assertIn("reconcile run %d does not exist" % missing, e.diag.message_primary)
        self.assertTrue(e.diag.message_detail)
        self.assertIn("billrecon.reconcile_runs", e.diag.message_hint)

    def test_no_run_yet(self):
        conn = connect()
        conn.autocommit = False
        try:
            with conn.cursor() as cur:
                cur.execute("SET LOCAL lock_timeout = '10s'")
                cur.execute("DELETE FROM billrecon.reconcile_runs")   # rolled back below
                with self.assertRaises(psycopg2.Error) as cm:
                    cur.execute("SELECT billrecon.report_html()")
            e = cm.exception
            self.assertEqual(e.pgcode, "55000", e.pgerror)
            self.assertIn("billrecon.reconcile()", e.diag.message_hint)
            self.assertTrue(e.diag.message_detail)
        finally:
            conn.rollback()
            conn.close()



# The fixture comes from PushChanges; its own tests run in test_push_changes.
for _name in dir(PushChanges):
    if _name.startswith("test_"):
        setattr(ReportHtml, _name, None)
