#!/usr/bin/env python3
"""Labelled client-matching set: PSA companies on one side, vendor accounts
(Microsoft tenants, Pax8 companies, RMM organizations) on the other, with the
ground truth of which vendor account belongs to which PSA company. It feeds
bench/match_bench.cpp, which measures precision and recall of the matcher in
src/match/ (issue 4: precision 100 %, recall >= 95 % at the recommended
threshold).

    python3 matching_set.py --seed 42 --companies 1000 --out matching.json
    python3 matching_set.py --seed 1 --companies 5000 --summary

The set is hard on purpose, the way real MSP data is: abbreviations ("Grp",
"Assoc", "Mgmt"), "Inc." vs "Incorporated", legal suffixes of several
countries, accents, typos, "&" vs "and", word order, names that are only a
domain, rebrands that keep their domain, many clients sharing words such as
"Dental", "Law" or "Accounting", two or three branches of one franchise
(sharing one domain), one client with two vendor accounts that share its
domain, look-alikes that are different businesses ("Smith Law" vs "Smith &
Jones Law", "Harbor Dental Lab"), accounts present on one side only, some records with
domains (website URLs, e-mail addresses, tenant domains, *.onmicrosoft.com)
and some without, generic e-mail domains that prove nothing (gmail.com).

Output (JSON):

    {"format": "billrecon-matching-set", "version": 1, "seed": 42, "companies": 1000,
     "psa":    [{"id": "P0001", "name": "...", "domains": ["https://www.x.com", "info@x.com"]}, ...],
     "vendor": [{"id": "V0001", "name": "...", "domains": [...], "note": "typo"}, ...],
     "truth":  [{"vendor_id": "V0001", "psa_id": "P0417", "variant": "typo"}, ...]}

"psa" has exactly --companies records and "vendor" as many; a vendor account
missing from "truth" belongs to no PSA company (its "note" says why, e.g.
"decoy:drop_partner of P0012", "vendor_only:typo"). Python 3 standard library only;
deterministic for a seed (no set or hash ordering reaches the output).
"""

import argparse
import json
import random
import sys
import unicodedata

FORMAT = "billrecon-matching-set"
FORMAT_VERSION = 1

PLACES = [
    "Harbor", "Summit", "Riverside", "Lakeview", "Cedar", "Oakwood", "Maple Grove", "Pine Ridge", "Blue Ridge",
    "Granite", "Coastal", "Valley", "Westfield", "Eastgate", "Southpoint", "Hillcrest", "Brookside", "Willow Creek",
    "Aspen", "Sierra", "Cascade", "Prairie", "Sunrise", "Evergreen", "Meadowbrook", "Stonebridge", "Fairview",
    "Greenfield", "Clearwater", "Bayside", "Redwood", "Silver Lake", "Ironwood", "Northgate", "Lakeshore",
    "Mountain View", "Cypress", "Magnolia", "Heritage", "Liberty", "Pioneer", "Frontier", "Canyon", "Horizon",
    "Keystone", "Lighthouse", "Anchor", "Beacon", "Copper", "Highland", "Ridgeview", "Brighton", "Kingston",
    "Franklin", "Lincoln", "Madison", "Jefferson", "Hamilton", "Salem", "Dover", "Windsor", "Oxford",
    "Cambridge", "Ashford", "Bristol", "Chester", "Durham", "Glendale", "Parkside", "Seaside", "Tidewater",
    "Foothills", "Twin Oaks", "Three Rivers", "Elm Street", "Main Street", "Union", "Metro", "Capital",
    "Gateway", "Crossroads", "Vista", "Bella Vista", "Sandstone", "Bluewater", "Whitewater", "Golden Gate",
    "Palmetto", "Bayou", "Timberline", "Shoreline", "Orchard", "Sterling", "Trinity", "Emerald", "Falcon",
    "Eagle Rock", "Fox Run", "Deer Park", "Rolling Hills", "Sunset", "Mesa", "Pacific", "Atlantic", "Great Lakes",
]
SURNAMES = [
    "Miller", "Ortiz", "Kowalski", "Nguyen", "Patel", "Johnson", "Schmidt", "O'Brien", "Garcia", "Chen",
    "Anderson", "Thompson", "Martinez", "Robinson", "Walker", "Young", "Hernandez", "King", "Wright", "Lopez",
    "Hill", "Scott", "Green", "Adams", "Baker", "Nelson", "Carter", "Mitchell", "Perez", "Roberts", "Turner",
    "Phillips", "Campbell", "Parker", "Evans", "Edwards", "Collins", "Stewart", "Sanchez", "Morris", "Rogers",
    "Reed", "Cook", "Morgan", "Bell", "Murphy", "Bailey", "Rivera", "Cooper", "Richardson", "Howard", "Ward",
    "Torres", "Peterson", "Gray", "Ramirez", "Watson", "Brooks", "Kelly", "Sanders", "Price", "Bennett", "Wood",
    "Barnes", "Ross", "Henderson", "Coleman", "Jenkins", "Perry", "Powell", "Patterson", "Hughes", "Flores",
    "Butler", "Simmons", "Foster", "Gonzales", "Bryant", "Alexander", "Russell", "Griffin", "Hayes", "Myers",
    "Ford", "Graham", "Sullivan", "Wallace", "Cole", "West", "Jordan", "Owens", "Reynolds", "Fisher", "Ellis",
    "Harrison", "Gibson", "McDonald", "Marshall", "Gomez", "Murray", "Freeman", "Wells", "Webb", "Simpson",
    "Stevens", "Tucker", "Porter", "Hunter", "Crawford", "Boyd", "Mason", "Morales", "Kennedy", "Warren",
    "Dixon", "Ramos", "Reyes", "Burns", "Gordon", "Shaw", "Holmes", "Rice", "Hunt", "Black", "Daniels", "Palmer",
    "Mills", "Nichols", "Grant", "Knight", "Ferguson", "Stone", "Hawkins", "Dunn", "Perkins", "Hudson",
    "Spencer", "Gardner", "Stephens", "Payne", "Pierce", "Berry", "Matthews", "Arnold", "Wagner", "Willis",
    "Watkins", "Olson", "Carroll", "Duncan", "Snyder", "Hart", "Cunningham", "Bradley", "Lane", "Andrews",
    "Harper", "Fox", "Riley", "Armstrong", "Carpenter", "Weaver", "Greene", "Lawrence", "Elliott", "Chavez",
    "Lindqvist", "Okafor", "Takahashi", "Novak", "Dubois", "Rossi", "Haddad", "Kaplan", "Brennan", "Quinn",
    "Fitzgerald", "Delgado", "Abernathy", "Whitaker", "Castellano", "Yamamoto", "Petrov", "Ibrahim", "Larsen",
]
FIRST_NAMES = [
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Chris", "Karen",
    "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Betty", "Mark", "Sandra", "Steven", "Ashley", "Paul",
    "Emily", "Andrew", "Donna", "Joshua", "Michelle", "Kevin", "Carol", "Brian", "Amanda", "George", "Melissa",
]
SAINTS = ["Mark", "Luke", "John", "Paul", "Joseph", "Anne", "Mary", "Francis", "Michael", "Thomas", "Peter"]
# European names with the letters ASCII folding must handle (é ß ø æ å ł ñ ü ö ç).
EU_SURNAMES = [
    "Müller", "Schröder", "Weiß", "Groß", "Köhler", "Jørgensen", "Sørensen", "Dupré", "Lefèvre", "Beaumé",
    "García", "Muñoz", "Peña", "Núñez", "Wójcik", "Łukasik", "Nowak", "Dvořák", "Åberg", "Öberg", "Çelik",
    "Bækgaard", "Hämäläinen", "Virtanen", "Janssen", "De Vries", "Rossi", "Bianchi", "Ferrari", "Conti",
]

# (industry, weight, name patterns, PSA legal suffixes, domain TLDs)
# Placeholders: {P} place, {S} {S2} {S3} surnames, {F} first name, {X} saint, {E} European surname
US_TLDS = [".com"] * 8 + [".net", ".us", ".biz"]
INDUSTRIES = [
    ("dental", 9, ["{P} Dental", "{P} Dental Group", "{S} Family Dentistry", "{P} Dental Associates",
                   "{P} Orthodontics", "{S} & {S2} Dental", "{P} Pediatric Dentistry", "{P} Smiles"],
     [", LLC", ", PLLC", ", P.C.", ", DDS, PC", " LLC", ""], US_TLDS),
    ("law", 8, ["{S} & {S2}", "{S} {S2} & {S3}", "Law Offices of {F} {S}", "{S} Law Group", "{S} & {S2} Law",
                "{S} Legal", "{S} Law Firm", "{S} & {S2} Attorneys"],
     [", LLP", ", P.C.", ", PLLC", " LLP", ", Attorneys at Law", ""], US_TLDS),
    ("accounting", 8, ["{S} & Associates CPAs", "{S} Accounting", "{P} Tax & Accounting", "{S} {S2} CPA Group",
                       "{S} & Company", "{P} Bookkeeping", "{S} Accounting Services", "{S} & {S2} Accountants"],
     [", LLC", ", P.C.", ", CPAs", " PLLC", " LLP", ""], US_TLDS),
    ("medical", 8, ["{P} Family Medicine", "{P} Pediatrics", "{P} Orthopedics", "{P} Dermatology", "{P} Eye Care",
                    "{P} Physical Therapy", "{S} Chiropractic", "{P} Medical Group", "{P} Urgent Care",
                    "{P} Medical Center"],
     [", LLC", ", P.A.", ", PLLC", ", Inc.", " LLC", ""], US_TLDS),
    ("veterinary", 4, ["{P} Animal Hospital", "{P} Veterinary Clinic", "{S} Veterinary Associates",
                       "{P} Pet Care"],
     [", LLC", ", P.C.", ", Inc.", ""], US_TLDS),
    ("trades", 9, ["{S} Construction", "{P} Plumbing & Heating", "{S} Electric", "{P} Roofing",
                   "{S} Landscaping", "{S} & Sons Builders", "{P} HVAC", "{S} Excavating", "{S} Brothers Plumbing",
                   "{P} Mechanical Services", "{S} Painting & Drywall"],
     [", Inc.", " Inc", ", LLC", " LLC", " Incorporated", " Co.", ""], US_TLDS),
    ("realestate", 6, ["{P} Realty", "{S} Insurance Agency", "{P} Title Company", "{S} Property Management",
                       "{P} Mortgage", "{P} Real Estate Group"],
     [", Inc.", ", LLC", " Inc", " Incorporated", ""], US_TLDS),
    ("finance", 6, ["{P} Wealth Management", "{P} Credit Union", "{S} Financial Advisors", "{S} Capital Partners",
                    "{P} Investment Group", "{S} International Trading"],
     [", LLC", ", Inc.", " Inc.", ", Ltd.", " Corp.", ""], US_TLDS),
    ("engineering", 6, ["{S} Engineering", "{S} {S2} Architects", "{P} Surveying", "{S} & {S2} Engineers",
                        "{P} Design Group", "{S} Engineering Services"],
     [", Inc.", ", P.C.", ", LLC", " Incorporated", " Corporation", ""], US_TLDS),
    ("manufacturing", 7, ["{P} Manufacturing", "{P} Logistics", "{S} Tool & Die", "{P} Precision Machining",
                          "{P} Plastics", "{S} Industries", "{P} Packaging", "{S} Manufacturing Company"],
     [", Inc.", " Inc", " Incorporated", ", LLC", " Co.", " Corp.", " Corporation", ""], US_TLDS),
    ("nonprofit", 5, ["{P} Community Foundation", "{P} Food Bank", "St. {X} Parish", "{P} Christian Academy",
                      "{P} Montessori School", "{P} Humane Society", "{P} Boys & Girls Club", "The {P} Foundation",
                      "{P} Community Center"],
     ["", "", ", Inc."], [".org"] * 7 + [".com", ".net"]),
    ("hospitality", 5, ["{P} Brewing Company", "{S}'s Bakery", "{P} Auto Repair", "{P} Hotel & Suites",
                        "{P} Golf Club", "{S} Catering", "{P} Fitness"],
     [", LLC", ", Inc.", " LLC", ""], US_TLDS),
    ("europe", 6, ["{E} Zahnarztpraxis", "Bäckerei {E}", "{E} Bau", "{E} Steuerberatung", "Café {E}",
                   "Boulangerie {E}", "{E} Consulting", "{E} & Søn", "{E} Ingeniería", "{E} Architecten",
                   "{E} Rakennus", "{E} Logistik", "Hôtel {P}", "{E} Transporte"],
     [" GmbH", " AG", " GmbH & Co. KG", " e.K.", " S.A.", " SARL", " S.A.S.", " B.V.", " N.V.", " S.p.A.",
      " S.r.l.", " Oy", " AB", " AS", " ApS", " Sp. z o.o.", " S.L.", " KG"],
     [".de", ".fr", ".nl", ".es", ".it", ".se", ".dk", ".no", ".fi", ".pl", ".eu", ".com"]),
    ("commonwealth", 5, ["{P} Plumbing", "{S} Electrical", "{S} Joinery", "{P} Solicitors", "{S} Accountants",
                         "{P} Veterinary Centre", "{P} Medical Centre", "{S} & {S2} Chartered Surveyors"],
     [" Pty Ltd", " Pty. Ltd.", " Ltd", " Limited", " PLC", " LLP", ""], [".co.uk", ".com.au", ".co.nz",
                                                                           ".com.au", ".co.uk", ".com"]),
]
# Descriptive tail words a vendor-side name often drops ("Harbor Dental Group" -> "Harbor Dental").
GENERIC_TAIL_WORDS = ["group", "associates", "company", "clinic", "agency", "center", "centre", "services",
                      "partners", "advisors", "cpas", "attorneys", "firm"]
ABBREVIATIONS = [
    ("Associates", "Assoc"), ("Group", "Grp"), ("Services", "Svcs"), ("Management", "Mgmt"),
    ("International", "Intl"), ("Brothers", "Bros"), ("Center", "Ctr"), ("Centre", "Ctr"),
    ("Manufacturing", "Mfg"), ("Company", "Co"), ("Department", "Dept"), ("Saint", "St"), ("Street", "St"),
    ("Mountain", "Mtn"), ("Construction", "Constr"), ("Accounting", "Acctg"), ("Engineering", "Eng"),
    ("Insurance", "Ins"), ("Foundation", "Fdn"), ("Medical", "Med"), ("Physical Therapy", "PT"),
]
LEGAL_SUFFIX_SWAP = [" LLC", " Inc", " Inc.", " Ltd", ", LLC", " PC", " Corp", ", Inc."]
SITE_SUFFIXES = [" - Main Office", " (HQ)", " - Main", " Main Office", " - Headquarters", " (Main)"]
FREE_MAIL = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "aol.com", "icloud.com", "comcast.net"]
# (PSA form, vendor forms) of a franchise branch qualifier.
BRANCHES = [
    ("Northside", ["North", "Northside", "N."]), ("Southside", ["South", "Southside"]),
    ("Eastside", ["East", "Eastside"]), ("Westside", ["West", "Westside"]), ("Downtown", ["Downtown", "DT"]),
    ("Uptown", ["Uptown"]), ("Midtown", ["Midtown"]), ("Branch 2", ["#2", "Branch 2", "Location 2"]),
    ("Branch 3", ["#3", "Branch 3", "Location 3"]), ("Tacoma", ["Tacoma"]), ("Bellevue", ["Bellevue"]),
    ("Everett", ["Everett"]), ("Olympia", ["Olympia"]), ("Spokane", ["Spokane"]), ("Lakewood", ["Lakewood"]),
]
FRANCHISE_PATTERNS = ["{P} Dental Care", "{S} Tire & Auto", "{P} Fitness Club", "Bright Smiles {P}",
                      "{P} Physical Therapy", "{S} Insurance Agency", "{P} Learning Center", "{P} Pizza Co",
                      "{S} Family Dentistry", "{P} Urgent Care"]
REBRAND_WORDS = ["Apex", "Vertex", "Nimbus", "Keystone", "Crescent", "Bright Path", "Northwind", "Bluebird",
                 "Silverline", "Ember", "Tandem", "Meridian", "Paragon", "Quantum", "Solstice", "Trailhead"]
REBRAND_TAILS = ["Partners", "Health", "Solutions", "Collective", "Holdings", "Advisory", "Works", "Studio"]


def strip_accents(text):
    out = []
    for ch in unicodedata.normalize("NFKD", text):
        if unicodedata.combining(ch):
            continue
        out.append({"ß": "ss", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ł": "l", "Ł": "L"}.get(ch, ch))
    return "".join(out)


def german_transliteration(text):
    for a, b in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("Ä", "Ae"), ("Ö", "Oe"), ("Ü", "Ue"), ("ß", "ss")):
        text = text.replace(a, b)
    return strip_accents(text)


def slug(text):
    return "".join(ch for ch in strip_accents(text).lower() if ch.isalnum())


def key_of(core):
    """A business's identity for uniqueness: names equal after dropping generic tail words are one business."""
    words = [w for w in strip_accents(core).lower().replace("&", " ").replace("'", "").replace(".", " ").split()]
    words = [w for w in words if w not in ("and", "the", "of")]
    while len(words) > 1 and words[-1] in GENERIC_TAIL_WORDS:
        words.pop()
    return " ".join(words)


class Generator:
    def __init__(self, seed, companies):
        self.seed = seed
        self.n = companies
        self.rng = random.Random("matching/%s" % seed)
        self.used_keys = set()
        self.used_domains = set()
        self.psa = []      # [name, domains, tag]
        self.sources = {}  # PSA index -> (core, industry, placeholder values, pattern) of regular businesses
        self.vendor = []   # [name, domains, note, psa index or None]

    # -- names -------------------------------------------------------------
    def fill(self, pattern, fixed=None):
        r = self.rng
        fixed = fixed or {}
        values = {"P": r.choice(PLACES), "F": r.choice(FIRST_NAMES), "X": r.choice(SAINTS),
                  "E": r.choice(EU_SURNAMES)}
        s = r.sample(SURNAMES, 3)
        values["S"], values["S2"], values["S3"] = s
        values.update(fixed)
        out = pattern
        for k in ("S2", "S3", "S", "P", "F", "X", "E"):
            out = out.replace("{%s}" % k, values[k])
        return out, values

    def pick_industry(self):
        total = sum(i[1] for i in INDUSTRIES)
        x = self.rng.random() * total
        for ind in INDUSTRIES:
            x -= ind[1]
            if x < 0:
                return ind
        return INDUSTRIES[-1]

    def domain_for(self, core, ind):
        r = self.rng
        words = strip_accents(core).replace("&", " ").replace("'", "").replace(".", " ").split()
        tld = r.choice(ind[4])
        x = r.random()
        if x < 0.55:
            base = "".join(words).lower()
        elif x < 0.72:
            base = "-".join(words).lower()
        elif x < 0.88:
            kept = [w for w in words if w.lower() not in GENERIC_TAIL_WORDS and w.lower() != "the"]
            base = "".join(kept or words).lower()
        else:
            base = "".join(w[0] for w in words[:-1]).lower() + slug(words[-1])
        base = "".join(ch for ch in base if ch.isalnum() or ch == "-")[:40].strip("-")
        domain = base + tld
        n = 2
        while domain in self.used_domains:
            domain = "%s%d%s" % (base, n, tld)
            n += 1
        self.used_domains.add(domain)
        return domain

    # -- how a domain is written in a record ---------------------------------
    def website(self, domain):
        r = self.rng
        x = r.random()
        if x < 0.35:
            return "www." + domain
        if x < 0.6:
            return "https://" + domain
        if x < 0.72:
            return domain
        if x < 0.85:
            return "http://www." + domain + "/"
        if x < 0.93:
            return "https://www." + domain + r.choice(["/contact", "/about-us/", "/?ref=psa", "/index.html"])
        return "HTTPS://WWW." + domain.upper()

    def psa_domains(self, domain):
        """PSA company: website and/or contacts' e-mail domains (sometimes only generic ones)."""
        r = self.rng
        out = []
        if domain and r.random() < 0.72:
            if r.random() < 0.8:
                out.append(self.website(domain))
            if r.random() < 0.35 or not out:
                out.append(r.choice(["info", "office", "admin", "j.smith", "billing"]) + "@" + domain)
        if r.random() < 0.08:
            out.append(r.choice(["owner", "frontdesk", "acct"]) + "%d@" % r.randrange(10, 99) + r.choice(FREE_MAIL))
        return out

    def tenant_label(self, core):
        r = self.rng
        s = slug(core)[:24]
        x = r.random()
        if x < 0.6:
            return s
        if x < 0.8:
            return s + str(r.randrange(1, 999))
        words = [w for w in strip_accents(core).replace("&", " ").split() if w[0].isalnum()]
        return "".join(w[0] for w in words).lower() + str(r.randrange(100, 9999))

    def vendor_domains(self, domain, core, force=False):
        """Vendor account: tenant domains, a website, an admin e-mail, or nothing."""
        r = self.rng
        x = r.random()
        if domain and (force or x < 0.5):
            kind = r.random()
            if kind < 0.55:   # Microsoft tenant: verified domains + initial domain
                out = [domain, self.tenant_label(core) + ".onmicrosoft.com"]
                if r.random() < 0.2:
                    extra = "mail." + domain if r.random() < 0.5 else domain.split(".")[0] + ".mail.onmicrosoft.com"
                    out.insert(1, extra)
                return out
            if kind < 0.8:
                return [self.website(domain)]
            return [r.choice(["admin", "it", "office"]) + "@" + domain.upper() if r.random() < 0.2
                    else r.choice(["admin", "it", "office"]) + "@" + domain]
        if x < 0.62:  # a tenant that only has its initial domain
            return [self.tenant_label(core) + ".onmicrosoft.com"]
        if x < 0.66:
            return ["it.admin%d@" % r.randrange(1, 99) + r.choice(FREE_MAIL)]
        return []

    # -- name variants -----------------------------------------------------
    def typo(self, text):
        r = self.rng
        words = text.split(" ")
        idx = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
        if not idx:
            return None
        i = r.choice(idx)
        w = words[i]
        p = r.randrange(1, len(w) - 1)
        kind = r.randrange(4)
        if kind == 0:
            w = w[:p] + w[p + 1] + w[p] + w[p + 2:]
        elif kind == 1:
            w = w[:p] + w[p + 1:]
        elif kind == 2:
            w = w[:p] + w[p] + w[p:]
        else:
            vowels = "aeiou"
            j = next((k for k in range(p, len(w)) if w[k] in vowels), None)
            if j is None:
                return None
            w = w[:j] + vowels[(vowels.index(w[j]) + 1) % 5] + w[j + 1:]
        words[i] = w
        return " ".join(words)

    @staticmethod
    def abbreviate(text):
        out = text
        changed = False
        for long_form, short in ABBREVIATIONS:
            for form in (long_form, long_form.lower()):
                if (" " + form) in (" " + out):
                    words = out.split(" ")
                    lw = form.split(" ")
                    for i in range(len(words) - len(lw) + 1):
                        if words[i:i + len(lw)] == lw:
                            words[i:i + len(lw)] = [short]
                            changed = True
                            break
                    out = " ".join(words)
        return out if changed else None

    @staticmethod
    def drop_generic(text):
        words = text.split(" ")
        n = len(words)
        while len(words) > 2 and words[-1].lower().strip(",.") in GENERIC_TAIL_WORDS:
            words.pop()
        if words and words[-1] == "&":
            words.pop()
        return " ".join(words) if len(words) != n else None

    def vendor_name(self, core, psa_suffix, domain):
        """How a vendor names the business: returns (name, variant)."""
        r = self.rng
        variants = [("exact", 22), ("exact_suffix", 8), ("suffix", 10), ("inc_long", 5), ("upper_abbrev", 6),
                    ("abbrev", 5), ("amp_and", 6), ("typo", 8), ("drop_generic", 7), ("site", 4), ("lower", 3),
                    ("the", 3), ("order", 3), ("accents", 4), ("domain_name", 3), ("combo", 4)]
        total = sum(w for _, w in variants)
        x = r.random() * total
        variant = variants[-1][0]
        for v, w in variants:
            x -= w
            if x < 0:
                variant = v
                break
        if " & " in core and r.random() < 0.25:
            variant = "amp_and"
        name = None
        if variant == "exact":
            name = core
        elif variant == "exact_suffix":
            name = core + psa_suffix if psa_suffix else None
        elif variant == "suffix":
            name = core + r.choice([s for s in LEGAL_SUFFIX_SWAP if s != psa_suffix])
        elif variant == "inc_long":
            if "Incorporated" in psa_suffix:
                name = core + r.choice([", Inc.", " Inc"])
            elif "Inc" in psa_suffix:
                name = core + " Incorporated"
            elif "Corporation" in psa_suffix:
                name = core + " Corp."
            elif "Corp" in psa_suffix:
                name = core + " Corporation"
            elif "Ltd" in psa_suffix:
                name = core + " Limited"
            elif "Limited" in psa_suffix:
                name = core + " Ltd."
            elif psa_suffix.strip(" ,") in ("LLC", "L.L.C."):
                name = core + " L.L.C."
            else:
                name = core + " Inc."
        elif variant == "upper_abbrev":
            name = (self.abbreviate(core) or core).upper()
        elif variant == "abbrev":
            name = self.abbreviate(core)
        elif variant == "amp_and":
            if " & " in core:
                name = core.replace(" & ", " and ")
            elif " and " in core:
                name = core.replace(" and ", " & ")
        elif variant == "typo":
            name = self.typo(core)
        elif variant == "drop_generic":
            name = self.drop_generic(core)
        elif variant == "site":
            name = core + r.choice(SITE_SUFFIXES)
        elif variant == "lower":
            name = core.lower()
        elif variant == "the":
            name = core[4:] if core.startswith("The ") else "The " + core
        elif variant == "order":
            if " & " in core and core.count(" & ") == 1:
                left, right = core.split(" & ")
                lw, rw = left.split(" "), right.split(" ")
                if len(lw) == 1 and len(rw) >= 1:   # "Smith & Jones Law" -> "Jones & Smith Law"
                    name = " ".join([rw[0], "&", lw[0]] + rw[1:])
            elif core.startswith("Law Offices of "):
                name = core[len("Law Offices of "):] + " Law Offices"
            elif " of " in core:
                a, b = core.split(" of ", 1)
                name = b + " " + a
        elif variant == "accents":
            if core != strip_accents(core):
                name = german_transliteration(core) if r.random() < 0.3 else strip_accents(core)
            elif psa_suffix:
                name = core + psa_suffix.replace(".", "").replace(",", "")
        elif variant == "domain_name":
            name = domain if domain else None
        elif variant == "combo":
            step1 = self.typo(core) or core
            step2 = self.abbreviate(step1) or step1
            name = (step2 + r.choice(LEGAL_SUFFIX_SWAP)) if r.random() < 0.5 else step2.upper()
        if not name or (name == core and variant != "exact"):
            return core, "exact"  # the variant does not apply to this name
        return name, variant

    # -- building blocks ---------------------------------------------------
    def add_psa(self, name, domains, tag):
        self.psa.append([name, domains, tag])
        return len(self.psa) - 1

    def add_vendor(self, name, domains, note, psa_index):
        self.vendor.append([name, domains, note, psa_index])

    def psa_name(self, core, ind):
        suffix = self.rng.choice(ind[3])
        name = core + suffix
        if len(name) > 50:  # ConnectWise truncates company names at 50 characters
            name = name[:50].rstrip(" ,.")
        return name, suffix

    def regular(self, on_vendor=True, on_psa=True):
        """A business in the PSA, at the vendor, or both."""
        r = self.rng
        core, ind, pattern, values = self.new_business()
        domain = self.domain_for(core, ind) if r.random() < 0.9 else None
        psa_index = None
        suffix = ""
        if on_psa:
            name, suffix = self.psa_name(core, ind)
            psa_index = self.add_psa(name, self.psa_domains(domain), "regular")
            self.sources[psa_index] = (core, ind, values, pattern)
        if on_vendor:
            if on_psa and domain and r.random() < 0.025:
                # rebrand: a new name, the same domain on both sides
                new = r.choice(REBRAND_WORDS) + " " + r.choice(REBRAND_TAILS)
                if key_of(new) in self.used_keys:
                    new += " " + r.choice(["Group", "Co", "LLC"])
                self.used_keys.add(key_of(new))
                self.psa[psa_index][1] = [self.website(domain)] + [d for d in self.psa[psa_index][1]
                                                                   if domain not in d.lower()]
                self.add_vendor(new, self.vendor_domains(domain, new, force=True), "rebrand", psa_index)
                return
            name, variant = self.vendor_name(core, suffix, domain)
            domains = self.vendor_domains(domain, core)
            if domain and domains and r.random() < 0.05 and domain in domains:
                # the vendor knows the business under another domain than the PSA
                alt = self.domain_for(core + " " + r.choice(["Group", "Online", "Mail", "HQ"]), ind)
                domains = [alt if d == domain else d for d in domains]
                variant += "+other_domain"
            # a business only the vendor knows is still named in one of the usual styles
            self.add_vendor(name, domains, variant if on_psa else "vendor_only:" + variant, psa_index)

    def franchise(self):
        """Two or three branches of one franchise in the PSA, sharing one domain."""
        r = self.rng
        core, ind, _, _ = self.new_business(industry=INDUSTRIES[0], pattern=r.choice(FRANCHISE_PATTERNS))
        domain = self.domain_for(core, ind)
        k = 2 if r.random() < 0.7 else 3
        branches = r.sample(BRANCHES, k + 1)
        for b in branches[:k]:
            self.used_keys.add(key_of(core + " " + b[0]))
        for psa_form, vendor_forms in branches[:k]:
            psa_name = r.choice(["%s - %s", "%s (%s)", "%s %s", "%s - %s, LLC"]) % (core, psa_form)
            pi = self.add_psa(psa_name, self.psa_domains(domain), "franchise")
            if r.random() < 0.85:
                vf = r.choice(vendor_forms)
                vname = r.choice(["%s %s", "%s (%s)", "%s - %s"]) % (core, vf)
                self.add_vendor(vname, self.vendor_domains(domain, core), "franchise_branch", pi)
            else:
                self.psa[pi][2] = "franchise_psa_only"
        if r.random() < 0.35:  # a branch the PSA does not bill (yet)
            psa_form, vendor_forms = branches[k]
            vname = "%s %s" % (core, r.choice(vendor_forms))
            self.add_vendor(vname, self.vendor_domains(domain, core), "decoy:other_branch", None)

    def multi_account(self):
        """One client, two vendor accounts (e.g. two RMM organizations) that share its domain."""
        r = self.rng
        core, ind, _, _ = self.new_business()
        domain = self.domain_for(core, ind)
        name, _ = self.psa_name(core, ind)
        pi = self.add_psa(name, [self.website(domain)], "multi_account")
        self.add_vendor(core, [domain, self.tenant_label(core) + ".onmicrosoft.com"], "multi_account", pi)
        second = core + r.choice([" - Warehouse", " - Annex", " (Lab)", " - Remote Staff", " Clinic 2"])
        self.add_vendor(second, [r.choice(["it@", "admin@"]) + domain], "multi_account_second", pi)

    def decoy(self, psa_index):
        """A vendor account of a different business that looks like PSA company psa_index."""
        r = self.rng
        src = self.sources.get(psa_index)
        if src is None:
            return False
        core, ind, values, pattern = src
        kinds = []
        if "{S2}" in pattern:
            kinds += ["other_partner", "drop_partner"]
        if "{P}" in pattern:
            kinds += ["other_industry", "extra_word"]
        if "{F}" in pattern:
            kinds += ["other_first_name"]
        if "{S}" in pattern and "{S2}" not in pattern:
            kinds += ["other_industry_surname", "extra_word"]
        if not kinds:
            return False
        kind = r.choice(kinds)
        if kind == "other_partner":
            others = [s for s in SURNAMES if s not in (values["S"], values["S2"], values["S3"])]
            new = pattern.replace("{S2}", r.choice(others))
            new, _ = self.fill(new, {k: v for k, v in values.items() if k != "S2"})
        elif kind == "drop_partner":
            new = pattern.replace(" & {S2}", "").replace(" {S2}", "")
            if new == pattern or new.strip() in ("{S}",):
                new = pattern.replace(" & {S2}", "") + " Law"
            new, _ = self.fill(new, values)
        elif kind == "other_first_name":
            new, _ = self.fill(pattern, {k: v for k, v in values.items() if k != "F"})
        elif kind in ("other_industry", "other_industry_surname"):
            placeholder = "{P}" if kind == "other_industry" else "{S}"
            for _ in range(20):
                other = self.pick_industry()
                pats = [p for p in other[2] if placeholder in p and "{S2}" not in p]
                if other is not ind and pats:
                    new, _ = self.fill(r.choice(pats), values)
                    break
            else:
                return False
        else:  # extra_word: "Harbor Dental" -> "Harbor Dental Lab", "Harbor Kids Dental"
            words = core.split(" ")
            extra = r.choice(["Lab", "Kids", "Imaging", "Supply", "Realty", "Holdings", "Outlet", "Foundation",
                              "Rentals", "Academy", "Billing"])
            if r.random() < 0.5:
                new = core + " " + extra
            else:
                new = " ".join(words[:-1] + [extra, words[-1]]) if len(words) > 1 else core + " " + extra
        k = key_of(new)
        if k in self.used_keys or k == key_of(core):
            return False
        self.used_keys.add(k)
        if r.random() < 0.3:
            new += r.choice(LEGAL_SUFFIX_SWAP)
        domains = self.vendor_domains(self.domain_for(new, ind), new) if r.random() < 0.6 else []
        self.add_vendor(new, domains, "decoy:%s of #%d" % (kind, psa_index), None)
        return True

    def generate(self):
        r = self.rng
        n = self.n
        n_franchise = max(1, round(n * 0.012))
        n_multi = max(1, round(n * 0.006))
        for _ in range(n_franchise):
            self.franchise()
        for _ in range(n_multi):
            self.multi_account()
        n_psa_only = round(n * 0.10)
        n_decoy = round(n * 0.05)
        # regular matched businesses until the PSA side has room only for the PSA-only ones
        while len(self.psa) < n - n_psa_only:
            self.regular()
        while len(self.psa) < n:
            self.regular(on_vendor=False)
        # vendor-only accounts: look-alikes of PSA companies, then unrelated businesses
        candidates = [i for i in range(len(self.psa)) if self.sources.get(i)]
        tries = 0
        made = 0
        while made < n_decoy and len(self.vendor) < n and tries < 20 * n_decoy + 10:
            tries += 1
            if self.decoy(r.choice(candidates)):
                made += 1
        while len(self.vendor) < n:
            self.regular(on_psa=False)
        del self.vendor[n:]
        return self.render()

    def new_business(self, industry=None, pattern=None, fixed=None):
        """A fresh business whose key is unused: (core name, industry, pattern, placeholder values)."""
        r = self.rng
        for _ in range(200):
            ind = industry or self.pick_industry()
            pat = pattern or r.choice(ind[2])
            core, values = self.fill(pat, fixed)
            k = key_of(core)
            if k not in self.used_keys:
                self.used_keys.add(k)
                return core, ind, pat, values
        raise RuntimeError("name space exhausted")

    def render(self):
        r = self.rng
        psa_order = list(range(len(self.psa)))
        r.shuffle(psa_order)
        vendor_order = list(range(len(self.vendor)))
        r.shuffle(vendor_order)
        width = len(str(max(len(self.psa), len(self.vendor))))
        psa_id = {}
        psa_out = []
        for k, i in enumerate(psa_order):
            pid = "P%0*d" % (width, k + 1)
            psa_id[i] = pid
            name, domains, _ = self.psa[i]
            psa_out.append({"id": pid, "name": name, "domains": domains})
        vendor_out = []
        truth = []
        for k, i in enumerate(vendor_order):
            vid = "V%0*d" % (width, k + 1)
            name, domains, note, pi = self.vendor[i]
            if note.startswith("decoy:") and " of #" in note:
                head, idx = note.rsplit(" of #", 1)
                note = "%s of %s" % (head, psa_id[int(idx)])
            vendor_out.append({"id": vid, "name": name, "domains": domains, "note": note})
            if pi is not None:
                truth.append({"vendor_id": vid, "psa_id": psa_id[pi], "variant": note})
        return {"format": FORMAT, "version": FORMAT_VERSION, "seed": self.seed, "companies": self.n,
                "psa": psa_out, "vendor": vendor_out, "truth": truth}


def generate(seed=42, companies=1000):
    if companies < 10:
        raise ValueError("--companies must be at least 10")
    return Generator(seed, companies).generate()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=42, help="the same seed always gives the same set (default 42)")
    ap.add_argument("--companies", type=int, default=1000, help="PSA companies (and as many vendor accounts)")
    ap.add_argument("--out", help="write the JSON here (default: stdout)")
    ap.add_argument("--summary", action="store_true", help="print counts per variant instead of the JSON")
    args = ap.parse_args(argv)
    try:
        data = generate(args.seed, args.companies)
    except ValueError as e:
        ap.error(str(e))
    if args.summary:
        counts = {}
        for v in data["vendor"]:
            kind = v["note"].split(" of ")[0]
            counts[kind] = counts.get(kind, 0) + 1
        print("psa %d, vendor %d, truth pairs %d" % (len(data["psa"]), len(data["vendor"]), len(data["truth"])))
        for kind in sorted(counts):
            print("  %-40s %5d" % (kind, counts[kind]))
        return 0
    text = json.dumps(data, ensure_ascii=False, indent=None, separators=(",", ":"))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
            f.write("\n")
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
