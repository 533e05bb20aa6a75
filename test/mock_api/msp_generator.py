#!/usr/bin/env python3
"""Reproducible synthetic MSP: one set of client businesses seen through
every system billrecon reads - ConnectWise Manage, and the same agreements
as HaloPSA or Autotask would hold them; NinjaOne and Datto RMM devices;
Microsoft 365 tenants with SKUs and users; Pax8 and Partner Center
subscriptions - with the name drift, quantity drift and data quirks of real
life.

    python3 msp_generator.py --seed 7 --clients 25 --out msp.json
    python3 msp_generator.py --seed 1 --clients 5000 --summary

Library use:

    import msp_generator
    ds = msp_generator.generate(seed=7, clients=25)
    ds.companies[0].name, ds.devices[-1].serial, ds.ground_truth["clients"][0]

Determinism: every random choice comes from random.Random instances seeded
with strings derived from the seed ("7/client/3/ninja"), never from the
global generator, so a seed always yields the same data and adding a vendor
section later does not change the data of the existing ones: the systems
after ConnectWise / NinjaOne (build_systems) are built afterwards from their
own streams ("7/client/3/microsoft", "7/halo", ...). All times are relative
to a fixed base epoch (default 2026-11-01T00:00:00Z), never now().

Compactness: records are namedtuples (no per-record dicts); vendor mock
modules render the wire JSON of a record only when it is requested. The JSON
file stores each table as {"fields": [...], "rows": [[...], ...]}.
5,000 clients / ~200,000 NinjaOne devices / ~230,000 Microsoft users
generate in about 10 s and ~500 MB.
"""

import argparse
import bisect
import calendar
import collections
import datetime
import json
import math
import random
import sys
import time

FORMAT = "billrecon-msp-dataset"
FORMAT_VERSION = 1
DEFAULT_BASE_EPOCH = calendar.timegm((2026, 11, 1, 0, 0, 0))
DAY = 86400

# ---------------------------------------------------------------------------
# Records. Times: *_ms are epoch milliseconds (NinjaOne style); other times
# are epoch seconds; dates are "YYYY-MM-DD" strings.

CatalogItem = collections.namedtuple(
    "CatalogItem",
    "id identifier description category subcategory product_class price cost "
    "vendor manufacturer mpn recurring bill_cycle_id uom inactive last_updated")

Company = collections.namedtuple(
    "Company",
    "id identifier name status type website phone address city state zip "
    "deleted date_deleted date_entered last_updated updated_by contact_id contact_name")

Agreement = collections.namedtuple(
    "Agreement",
    "id company_id name type_id billing_cycle_id start end no_end cancelled "
    "date_cancelled reason_cancelled status prorate bill_amount invoicing_cycle "
    "date_entered last_updated updated_by")

Addition = collections.namedtuple(
    "Addition",
    "id agreement_id product_id quantity unit_price unit_cost bill_customer "
    "effective cancelled description sequence taxable prorate_current "
    "date_entered last_updated updated_by")

Organization = collections.namedtuple(
    "Organization", "id name description approval_mode ad_domain created_ms")

Location = collections.namedtuple("Location", "id org_id name address")

Device = collections.namedtuple(
    "Device",
    "id org_id location_id node_class approval offline display_name system_name "
    "created_ms last_contact_ms last_update_ms os_name os_build os_arch "
    "manufacturer model serial chassis vm last_user parent_id")

# The other systems of the same MSP (HaloPSA and Autotask as alternative PSAs,
# Microsoft 365 tenants, Pax8, Partner Center, Datto RMM). Times: *_ms epoch
# milliseconds, other times epoch seconds; dates "YYYY-MM-DD".

HaloClient = collections.namedtuple(
    "HaloClient",
    "id name inactive toplevel_id toplevel_name website datecreated main_site_id ninjarmmid pax8_id "
    "cw_company_id")

HaloContract = collections.namedtuple(
    "HaloContract",
    "id client_id ref start end billingperiod status charge cw_agreement_id")

HaloInvoice = collections.namedtuple(
    "HaloInvoice",
    "id client_id contract_id reference period start end disabled lastcreated nextcreation last_modified "
    "cw_agreement_id")

HaloLine = collections.namedtuple(
    "HaloLine",
    "id invoice_id item_id item_code short_desc long_desc qty unit_price unit_cost isinactive startdate "
    "enddate sequence contract_id cw_addition_id")

AtCompany = collections.namedtuple(
    "AtCompany",
    "id name number type active web phone address city state postal create_date last_activity "
    "last_modified cw_company_id")

AtContract = collections.namedtuple(
    "AtContract",
    "id company_id name number period_type status start end setup_fee is_default create_date "
    "last_modified cw_agreement_id")

AtService = collections.namedtuple(
    "AtService", "id name description price cost period_type active last_modified code")

AtContractService = collections.namedtuple(
    "AtContractService",
    "id contract_id service_id unit_price unit_cost invoice_description internal_description units "
    "effective cancelled cw_addition_id")

MsTenant = collections.namedtuple(
    "MsTenant", "id name initial_domain domains created country premium client")

MsSku = collections.namedtuple(
    "MsSku", "id tenant_id sku_id part_number enabled suspended warning consumed status subscription_ids")

MsUser = collections.namedtuple(
    "MsUser",
    "id tenant_id display_name upn enabled user_type created skus last_sign_in last_non_interactive job_title")

PcCustomer = collections.namedtuple("PcCustomer", "id domain company_name client")

PcSubscription = collections.namedtuple(
    "PcSubscription",
    "id customer_id offer_id offer_name friendly_name quantity billing_type creation start commitment_end "
    "cancel_until status auto_renew billing_cycle term is_trial order_id sku_part")

Pax8Company = collections.namedtuple(
    "Pax8Company", "id name website external_id status street city state postal phone created updated client")

Pax8Product = collections.namedtuple(
    "Pax8Product", "id name vendor sku vendor_sku short_desc requires_commitment unit partner_cost price")

Pax8Subscription = collections.namedtuple(
    "Pax8Subscription",
    "id company_id product_id quantity price partner_cost billing_term status start end created updated "
    "billing_start vendor_subscription_id commitment_end")

DattoSite = collections.namedtuple(
    "DattoSite", "id uid name description notes on_demand autotask_company_id autotask_company_name client")

# Contacts of the PSA companies (ConnectWise contacts; the same people are
# HaloPSA users and Autotask contacts). id is ConnectWise's: the company's
# billing contact (Company.contact_id) and up to two more after it. emails:
# the addresses in order (the first is the primary one; later ones are
# always personal free-mail addresses), possibly none.
Contact = collections.namedtuple(
    "Contact",
    "id company_id first_name last_name title emails phone inactive date_entered last_updated halo_user_id "
    "at_contact_id")

DattoDevice = collections.namedtuple(
    "DattoDevice",
    "id uid site_id hostname category dtype device_class os online suspended deleted last_seen_ms "
    "last_reboot_ms last_audit_ms created_ms int_ip ext_ip last_user domain description a64 manufacturer "
    "model serial ninja_device_id")

TABLES = (
    ("catalog", CatalogItem),
    ("companies", Company),
    ("agreements", Agreement),
    ("additions", Addition),
    ("organizations", Organization),
    ("locations", Location),
    ("devices", Device),
    ("halo_clients", HaloClient),
    ("halo_contracts", HaloContract),
    ("halo_invoices", HaloInvoice),
    ("halo_lines", HaloLine),
    ("at_companies", AtCompany),
    ("at_contracts", AtContract),
    ("at_services", AtService),
    ("at_contract_services", AtContractService),
    ("ms_tenants", MsTenant),
    ("ms_skus", MsSku),
    ("ms_users", MsUser),
    ("pc_customers", PcCustomer),
    ("pc_subscriptions", PcSubscription),
    ("pax8_companies", Pax8Company),
    ("pax8_products", Pax8Product),
    ("pax8_subscriptions", Pax8Subscription),
    ("datto_sites", DattoSite),
    ("datto_devices", DattoDevice),
    ("contacts", Contact),
)

# ---------------------------------------------------------------------------
# Reference data (PSA configuration of the synthetic tenant).

AGREEMENT_TYPES = {
    1: "Managed Services",
    2: "Microsoft 365",
    3: "Backup & DR",
    4: "Domains & Hosting",
    5: "Block Time",
    6: "Security Services",
}
BILLING_CYCLES = {1: "Monthly", 2: "Quarterly", 3: "Annual", 4: "Semi-Annual"}

# identifier, description, category, price, cost, vendor, recurring cycle, uom, inactive
_CATALOG = [
    ("M365-BP", "Microsoft 365 Business Premium", "Licensing", 22.00, 22.00, "Pax8", 1, "Each", False),
    ("M365-BS", "Microsoft 365 Business Standard", "Licensing", 12.50, 12.50, "Pax8", 1, "Each", False),
    ("M365-BB", "Microsoft 365 Business Basic", "Licensing", 6.00, 6.00, "Pax8", 1, "Each", False),
    ("M365-E3", "Microsoft 365 E3", "Licensing", 36.00, 36.00, "Pax8", 1, "Each", False),
    ("EXO-P1", "Exchange Online (Plan 1)", "Licensing", 4.00, 4.00, "Pax8", 1, "Each", False),
    ("O365-ATP", "Microsoft Defender for Office 365 (Plan 1)", "Licensing", 2.00, 2.00, "Pax8", 1, "Each", False),
    ("MS-WKS", "Managed Workstation", "Managed Services", 65.00, 9.50, "Internal", 1, "Each", False),
    ("MS-MAC", "Managed Mac", "Managed Services", 65.00, 9.50, "Internal", 1, "Each", False),
    ("MS-SRV", "Managed Server", "Managed Services", 175.00, 24.00, "Internal", 1, "Each", False),
    ("MS-NET", "Managed Network Device", "Managed Services", 25.00, 3.00, "Internal", 1, "Each", False),
    ("AV-EDR", "Endpoint Detection & Response", "Security", 8.50, 4.25, "SentinelOne", 1, "Each", False),
    ("AV-STD", "Standard Antivirus (legacy)", "Security", 4.00, 1.80, "Webroot", 1, "Each", True),
    ("SAT", "Security Awareness Training", "Security", 3.00, 1.10, "KnowBe4", 1, "Each", False),
    ("BDR", "Backup & Disaster Recovery (per server)", "Backup", 150.00, 62.00, "Datto", 1, "Each", False),
    ("BDR-WKS", "Workstation Backup", "Backup", 10.00, 4.00, "Datto", 1, "Each", False),
    ("OFFSITE-TB", "Offsite Backup Storage (per TB)", "Backup", 45.00, 18.00, "Wasabi", 1, "TB", False),
    ("NET-FW", "Managed Firewall", "Network", 99.00, 40.00, "Fortinet", 1, "Each", False),
    ("HELPDESK", "Help Desk (per user)", "Managed Services", 45.00, 0.00, "Internal", 1, "User", False),
    ("DOMAIN", "Domain Registration", "Hosting", 25.00, 12.00, "GoDaddy", 3, "Each", False),
    ("DNS-HOST", "Managed DNS Hosting", "Hosting", 5.00, 1.00, "Cloudflare", 1, "Each", False),
    ("CREDIT", "Service Credit", "Adjustments", 0.00, 0.00, "Internal", 1, "Each", False),
]

ORG_APPROVAL_MODES = ("AUTOMATIC", "AUTOMATIC", "AUTOMATIC", "MANUAL")

# ---------------------------------------------------------------------------
# Name material.

PLACES = [
    "Harbor", "Summit", "Riverside", "Lakeview", "Cedar", "Oakwood", "Maple Grove", "Pine Ridge", "Blue Ridge",
    "Granite", "Coastal", "Valley", "Westfield", "Eastgate", "Southpoint", "Hillcrest", "Brookside", "Willow Creek",
    "Aspen", "Sierra", "Cascade", "Prairie", "Sunrise", "Evergreen", "Meadowbrook", "Stonebridge", "Fairview",
    "Greenfield", "Clearwater", "Bayside", "Redwood", "Silver Lake", "Ironwood", "Northgate", "Lakeshore",
    "Mountain View", "Cypress", "Magnolia", "Heritage", "Liberty", "Pioneer", "Frontier", "Canyon", "Horizon",
    "Keystone", "Lighthouse", "Anchor", "Beacon", "Copper", "Highland", "Ridgeview", "Brighton", "Kingston",
    "Franklin", "Lincoln", "Madison", "Jefferson", "Hamilton", "Clinton", "Salem", "Dover", "Windsor", "Oxford",
    "Cambridge", "Ashford", "Bristol", "Chester", "Durham", "Glendale", "Parkside", "Seaside", "Tidewater",
    "Foothills", "Twin Oaks", "Three Rivers", "Elm Street", "Main Street", "Union", "Central", "Metro",
    "Capital", "Gateway", "Crossroads", "Vista", "Bella Vista", "Sandstone", "Bluewater", "Whitewater",
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
]
FIRST_NAMES = [
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Chris", "Karen",
    "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Betty", "Mark", "Sandra", "Steven", "Ashley", "Paul",
    "Emily", "Andrew", "Donna", "Joshua", "Michelle", "Kevin", "Carol", "Brian", "Amanda", "George", "Melissa",
    "Tim", "Deborah", "Ryan", "Laura", "Jason", "Rebecca", "Eric", "Sharon", "Jacob", "Cynthia", "Gary", "Kathy",
    "Nick", "Amy", "Jon", "Angela", "Priya", "Wei", "Olga", "Ahmed", "Sofia", "Mateo", "Aiko", "Lars",
]
SAINTS = ["Mark", "Luke", "John", "Paul", "Joseph", "Anne", "Mary", "Francis", "Michael", "Thomas", "Peter"]
BRANCHES = [("Northside", "North"), ("Southside", "South"), ("Eastside", "East"), ("Westside", "West"),
            ("Downtown", "DT"), ("Uptown", "Uptown")]

# (industry key, weight, name patterns, legal suffixes, server-heaviness 0..2)
# Pattern placeholders: {P} place, {S} surname, {S2} other surname, {F} first name, {X} saint
INDUSTRIES = [
    ("dental", 9, ["{P} Dental", "{P} Dental Group", "{S} Family Dentistry", "{P} Dental Associates",
                   "{P} Orthodontics", "{S} & {S2} Dental"],
     [", LLC", ", PLLC", ", P.C.", ", DDS, PC", " LLC", ""], 0),
    ("law", 8, ["{S} & {S2}", "{S} {S2} & {X2}", "Law Offices of {F} {S}", "{S} Law Group", "{S} & {S2} Law",
                "{S} Legal"],
     [", LLP", ", P.C.", ", PLLC", " LLP", ", Attorneys at Law", ""], 0),
    ("accounting", 8, ["{S} & Associates CPAs", "{S} Accounting", "{P} Tax & Accounting", "{S} {S2} CPA Group",
                       "{S} & Company", "{P} Bookkeeping"],
     [", LLC", ", P.C.", ", CPAs", " PLLC", " LLP", ""], 0),
    ("medical", 8, ["{P} Family Medicine", "{P} Pediatrics", "{P} Orthopedics", "{P} Dermatology", "{P} Eye Care",
                    "{P} Physical Therapy", "{S} Chiropractic", "{P} Medical Group", "{P} Urgent Care"],
     [", LLC", ", P.A.", ", PLLC", ", Inc.", " LLC", ""], 1),
    ("veterinary", 4, ["{P} Animal Hospital", "{P} Veterinary Clinic", "{S} Veterinary Associates",
                       "{P} Pet Care"],
     [", LLC", ", P.C.", ", Inc.", ""], 0),
    ("trades", 9, ["{S} Construction", "{P} Plumbing & Heating", "{S} Electric", "{P} Roofing",
                   "{S} Landscaping", "{S} & Sons Builders", "{P} HVAC", "{S} Excavating"],
     [", Inc.", " Inc", ", LLC", " LLC", " Incorporated", " Co.", ""], 0),
    ("realestate", 6, ["{P} Realty", "{S} Insurance Agency", "{P} Title Company", "{S} Property Management",
                       "{P} Mortgage"],
     [", Inc.", ", LLC", " Inc", " Incorporated", ""], 0),
    ("finance", 6, ["{P} Wealth Management", "{P} Credit Union", "{S} Financial Advisors", "{S} Capital Partners",
                    "{P} Investment Group"],
     [", LLC", ", Inc.", " Inc.", ", Ltd.", ""], 1),
    ("engineering", 6, ["{S} Engineering", "{S} {S2} Architects", "{P} Surveying", "{S} & {S2} Engineers",
                        "{P} Design Group"],
     [", Inc.", ", P.C.", ", LLC", " Incorporated", ""], 1),
    ("manufacturing", 7, ["{P} Manufacturing", "{P} Logistics", "{S} Tool & Die", "{P} Precision Machining",
                          "{P} Plastics", "{S} Industries", "{P} Packaging"],
     [", Inc.", " Inc", " Incorporated", ", LLC", " Co.", " Corp.", ""], 2),
    ("nonprofit", 5, ["{P} Community Foundation", "{P} Food Bank", "St. {X} Parish", "{P} Christian Academy",
                      "{P} Montessori School", "{P} Humane Society", "{P} Boys & Girls Club"],
     ["", "", ", Inc."], 1),
    ("hospitality", 5, ["{P} Brewing Company", "{S}'s Bakery", "{P} Auto Repair", "{P} Hotel & Suites",
                        "{P} Golf Club", "{S} Catering", "{P} Fitness"],
     [", LLC", ", Inc.", " LLC", ""], 0),
]
_IND_CUM = []
_acc = 0
for _ind in INDUSTRIES:
    _acc += _ind[1]
    _IND_CUM.append(_acc)

ABBREVIATIONS = {
    "group": "Grp", "associates": "Assoc", "company": "Co", "services": "Svcs", "management": "Mgmt",
    "medical": "Med", "construction": "Constr", "center": "Ctr", "family": "Fam", "manufacturing": "Mfg",
    "engineering": "Eng", "international": "Intl", "accounting": "Acctg", "orthodontics": "Ortho",
    "veterinary": "Vet", "foundation": "Fdn", "saint": "St", "mountain": "Mtn", "street": "St",
    "physical therapy": "PT", "insurance": "Ins", "academy": "Acad", "precision": "Prec",
}
GENERIC_TAIL_WORDS = {"group", "associates", "company", "clinic", "agency", "center", "services", "partners",
                      "advisors", "group,", "cpas"}
NON_CLIENT_VENDORS = [
    ("Microsoft Corporation", "microsoft.com"), ("Pax8", "pax8.com"), ("Dell Technologies", "dell.com"),
    ("Ingram Micro", "ingrammicro.com"), ("TD SYNNEX", "tdsynnex.com"), ("NinjaOne, LLC", "ninjaone.com"),
    ("Datto, Inc.", "datto.com"), ("Comcast Business", "comcast.com"),
]
MSP_NAMES = [("Lighthouse IT Solutions", "lighthouseit.com"), ("Bluewave Technology Partners", "bluewavetech.com"),
             ("Northstar Managed IT", "northstarmsp.com"), ("Keystone Tech Group", "keystonetg.com")]
US_STATES = [("WA", "Seattle", "981"), ("OR", "Portland", "972"), ("CA", "Sacramento", "958"),
             ("TX", "Austin", "787"), ("CO", "Denver", "802"), ("IL", "Naperville", "605"),
             ("OH", "Columbus", "432"), ("GA", "Marietta", "300"), ("NC", "Raleigh", "276"),
             ("PA", "Harrisburg", "171"), ("NY", "Albany", "122"), ("FL", "Tampa", "336"),
             ("MN", "Rochester", "559"), ("AZ", "Tempe", "852"), ("MA", "Worcester", "016")]
STREETS = ["Main St", "Oak Ave", "Commerce Dr", "Industrial Pkwy", "Harbor Blvd", "1st Ave", "Market St",
           "Park Pl", "Lake Rd", "Mill St", "Center St", "Broadway", "Elm St", "Washington Ave"]
# Personal mailbox providers contacts use besides their company address; none
# of them is evidence of which company a contact belongs to.
FREE_MAIL = ["gmail.com", "gmail.com", "gmail.com", "outlook.com", "hotmail.com", "yahoo.com", "icloud.com",
             "aol.com", "gmx.de", "proton.me", "comcast.net", "hotmail.co.uk"]
UPDATERS = ["jsmith", "amartinez", "billing", "dchen", "apimember", "kpatel", "sync-agent"]

# ---------------------------------------------------------------------------
# Device material: (manufacturer, model, serial style).

DESKTOP_HW = [("Dell Inc.", "OptiPlex 7010", "dell"), ("Dell Inc.", "OptiPlex 5000", "dell"),
              ("HP", "HP EliteDesk 800 G6 Small Form Factor PC", "hp"), ("HP", "HP ProDesk 400 G7", "hp"),
              ("LENOVO", "ThinkCentre M70q Gen 3", "lenovo"), ("LENOVO", "ThinkCentre M90t", "lenovo")]
LAPTOP_HW = [("Dell Inc.", "Latitude 5440", "dell"), ("Dell Inc.", "Latitude 7420", "dell"),
             ("HP", "HP EliteBook 840 G8 Notebook PC", "hp"), ("HP", "HP ProBook 450 G9", "hp"),
             ("LENOVO", "ThinkPad T14 Gen 3", "lenovo"), ("LENOVO", "ThinkPad X1 Carbon Gen 10", "lenovo"),
             ("Microsoft Corporation", "Surface Laptop 5", "surface")]
SERVER_HW = [("Dell Inc.", "PowerEdge R650", "dell"), ("Dell Inc.", "PowerEdge T440", "dell"),
             ("HPE", "ProLiant DL380 Gen10", "hpe"), ("HPE", "ProLiant ML350 Gen10", "hpe"),
             ("LENOVO", "ThinkSystem SR650", "lenovo")]
MAC_LAPTOP_HW = [("Apple Inc.", "MacBookPro18,1", "apple"), ("Apple Inc.", "MacBookAir10,1", "apple"),
                 ("Apple Inc.", "Mac14,2", "apple")]
MAC_DESKTOP_HW = [("Apple Inc.", "iMac21,1", "apple"), ("Apple Inc.", "Macmini9,1", "apple")]
WIN_WS_OS = [("Windows 11 Professional Edition", "22631", "64-bit"),
             ("Windows 11 Professional Edition", "26100", "64-bit"),
             ("Windows 10 Professional Edition", "19045", "64-bit"),
             ("Windows 11 Enterprise Edition", "22631", "64-bit")]
WIN_SRV_OS = [("Windows Server 2022 Standard", "20348", "64-bit"),
              ("Windows Server 2019 Standard", "17763", "64-bit"),
              ("Windows Server 2016 Standard", "14393", "64-bit"),
              ("Windows Server 2022 Datacenter", "20348", "64-bit")]
MAC_OS = [("macOS Sonoma", "23G93", "arm64"), ("macOS Sequoia", "24B83", "arm64"), ("macOS Ventura", "22H221", "x86_64")]
LINUX_WS_OS = [("Ubuntu 22.04.4 LTS", "22.04", "x86_64"), ("Ubuntu 24.04.1 LTS", "24.04", "x86_64")]
LINUX_SRV_OS = [("Ubuntu 22.04.4 LTS", "22.04", "x86_64"), ("Rocky Linux 9.4", "9.4", "x86_64"),
                ("Debian GNU/Linux 12 (bookworm)", "12", "x86_64")]
ANDROID_OS = [("Android 14", "UP1A", "arm64"), ("Android 13", "TP1A", "arm64")]
NMS_KINDS = [("NMS_SWITCH", "SW"), ("NMS_FIREWALL", "FW"), ("NMS_PRINTER", "PRN"), ("NMS_ROUTER", "RTR"),
             ("NMS_WAP", "AP")]

ALNUM = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
HEX = "0123456789abcdef"

# Which node classes are workstations / servers, for the ground-truth usage
# counts (the classification a reconciliation would reasonably use).
WORKSTATION_CLASSES = {"WINDOWS_WORKSTATION", "MAC", "LINUX_WORKSTATION"}
SERVER_CLASSES = {"WINDOWS_SERVER", "LINUX_SERVER", "MAC_SERVER", "VMWARE_VM_HOST", "HYPERV_VMM_HOST",
                  "VMWARE_VM_GUEST", "HYPERV_VMM_GUEST"}


def device_truth_class(node_class, chassis):
    """desktop / laptop / server / other, as the ground truth counts devices."""
    if node_class in SERVER_CLASSES:
        return "server"
    if node_class in WORKSTATION_CLASSES:
        return "laptop" if chassis == "LAPTOP" else "desktop"
    return "other"


# ---------------------------------------------------------------------------
# Material of the other systems (Microsoft 365, Pax8, Partner Center, HaloPSA,
# Autotask, Datto RMM).

# PSA catalog code -> (Microsoft skuPartNumber, skuId)
MS_SKUS = {
    "M365-BP": ("SPB", "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"),
    "M365-BS": ("O365_BUSINESS_PREMIUM", "f245ecc8-75af-4f8e-b61f-27d8114de5f3"),
    "M365-BB": ("O365_BUSINESS_ESSENTIALS", "3b555118-da6a-4418-894f-7df1e2096870"),
    "M365-E3": ("SPE_E3", "05e9a617-0261-4cee-bb44-138d3ef5d965"),
    "EXO-P1": ("EXCHANGESTANDARD", "4b9405b0-7788-4568-add1-99614e613b69"),
    "O365-ATP": ("ATP_ENTERPRISE", "4ef96642-f096-40de-a3e9-d83fb2f90211"),
}
MS_SKU_ORDER = ("M365-BP", "M365-BS", "M365-BB", "M365-E3", "EXO-P1", "O365-ATP")
# Free SKUs every tenant collects (huge prepaid counts; reconciliation should exclude them).
FREE_SKUS = (("FLOW_FREE", "f30db892-07e9-47e9-837c-80727f46fd3d", 10000),
             ("POWER_BI_STANDARD", "a403ebcc-fae0-4ca2-8c8c-7a907fd6c235", 1000000))
PREMIUM_CODES = {"M365-BP", "M365-E3"}     # include Entra ID P1: signInActivity is readable
# code -> (name, vendor, Pax8 sku, vendor sku, unit, partner cost, price, requires commitment)
PAX8_PRODUCTS = {
    "M365-BP": ("Microsoft 365 Business Premium", "Microsoft", "MST-NCE-SPB", "CFQ7TTC0LCHC:0002", "User",
                19.80, 22.00, True),
    "M365-BS": ("Microsoft 365 Business Standard", "Microsoft", "MST-NCE-BST", "CFQ7TTC0LDPB:0001", "User",
                11.25, 12.50, True),
    "M365-BB": ("Microsoft 365 Business Basic", "Microsoft", "MST-NCE-BBA", "CFQ7TTC0LH18:0001", "User",
                5.40, 6.00, True),
    "M365-E3": ("Microsoft 365 E3", "Microsoft", "MST-NCE-E3", "CFQ7TTC0LFLX:0001", "User", 32.40, 36.00, True),
    "EXO-P1": ("Exchange Online (Plan 1)", "Microsoft", "MST-NCE-EXO1", "CFQ7TTC0LH16:0001", "User", 3.60, 4.00,
               True),
    "O365-ATP": ("Microsoft Defender for Office 365 (Plan 1)", "Microsoft", "MST-NCE-MDO1", "CFQ7TTC0LHSF:0001",
                 "User", 1.80, 2.00, True),
    "S1-COMPLETE": ("SentinelOne Complete", "SentinelOne", "S1-CMPL", "S1-COMPLETE", "Device", 4.25, 8.50, False),
    "KEEPER-BIZ": ("Keeper Business", "Keeper Security", "KPR-BUS", "KEEPER-BUSINESS", "User", 3.00, 3.75, False),
    "ACRONIS-WS": ("Acronis Cyber Protect Cloud - Workstation", "Acronis", "ACR-CPC-WS", "SP-WS", "Device", 3.10,
                   5.00, False),
}
PC_AVAILABILITY = {"M365-BP": "CFQ7TTC0L3K5", "M365-BS": "CFQ7TTC0L1M2", "M365-BB": "CFQ7TTC0L0F4",
                   "M365-E3": "CFQ7TTC0L4PX", "EXO-P1": "CFQ7TTC0L2HD", "O365-ATP": "CFQ7TTC0L8KC"}
LEGACY_OFFERS = {"M365-BP": "031C9E47-4802-4248-838E-778FB1D2CC05", "M365-BS": "5C9FD4CC-EDCE-44A8-8E91-07DF09744609",
                 "M365-BB": "BD938F12-058F-4927-BBA3-AE36B1D2501C", "M365-E3": "796B6B5F-613C-4E24-A17C-EBA730D49C02",
                 "EXO-P1": "195416C1-3447-423A-B37B-EE59A99A19C4", "O365-ATP": "3FBD7EB7-DAF5-4F4E-9E54-CDA1D1B20D5F"}
AZURE_PLAN = ("DZH318Z0BPS6:0001:DZH318Z0BDPD", "Azure plan")
JOB_TITLES = ["Office Manager", "Associate", "Accountant", "Technician", "Assistant", "Director", "Partner",
              "Coordinator", "Receptionist", "Analyst", "Project Manager", "Bookkeeper", "Hygienist", "Paralegal",
              None, None]
SHARED_MAILBOXES = [("Reception", "reception"), ("Accounts Payable", "ap"), ("Info", "info"),
                    ("Scanner", "scanner"), ("Conference Room", "confroom"), ("No Reply", "noreply"),
                    ("Billing", "billing"), ("Sync Service", "svc-sync")]
# HaloPSA recurring invoice / contract period codes. Only 2 = monthly is
# confirmed (vendor-apis.md); the rest is this mock tenant's configuration.
HALO_PERIODS = {1: "Weekly", 2: "Monthly", 3: "Quarterly", 4: "Six Monthly", 5: "Yearly"}
HALO_PERIOD_OF_CYCLE = {1: 2, 2: 3, 3: 5, 4: 4}        # ConnectWise billing cycle id -> Halo period
# Autotask contractPeriodType / Service periodType picklist of this mock tenant
# (the real values are tenant picklists: read /entityInformation/fields).
AT_PERIODS = {1: "Monthly", 2: "Quarterly", 3: "Semi-Annual", 4: "Yearly"}
AT_PERIOD_OF_CYCLE = {1: 1, 2: 2, 3: 4, 4: 3}
AT_COMPANY_TYPES = {1: "Customer", 2: "Lead", 3: "Prospect", 4: "Dead", 6: "Cancellation", 7: "Vendor", 8: "Partner"}
# NinjaOne nodeClass -> Datto RMM (deviceType.category, deviceType.type, deviceClass)
DATTO_TYPES = {
    "WINDOWS_WORKSTATION": ("Desktop", "Desktop", "device"),
    "MAC": ("Desktop", "Desktop", "device"),
    "LINUX_WORKSTATION": ("Desktop", "Desktop", "device"),
    "WINDOWS_SERVER": ("Server", "Server", "device"),
    "LINUX_SERVER": ("Server", "Server", "device"),
    "HYPERV_VMM_HOST": ("Server", "Server", "device"),
    "VMWARE_VM_GUEST": ("Server", "Server", "device"),
    "HYPERV_VMM_GUEST": ("Server", "Server", "device"),
    "VMWARE_VM_HOST": ("ESXi Host", "ESXi Host", "esxihost"),
    "NMS_PRINTER": ("Printer", "Printer", "printer"),
    "NMS_SWITCH": ("Network Device", "Switch", "rmmnetworkdevice"),
    "NMS_FIREWALL": ("Network Device", "Firewall", "rmmnetworkdevice"),
    "NMS_ROUTER": ("Network Device", "Router", "rmmnetworkdevice"),
    "NMS_WAP": ("Network Device", "Access Point", "rmmnetworkdevice"),
}


_SLUGS = {w: "".join(ch for ch in w.lower() if ch.isalnum()) for w in FIRST_NAMES + SURNAMES}


AT_PERIOD_MONTHS = {1: 1, 2: 3, 3: 6, 4: 12}


def autotask_unit_periods(contract, service, base_epoch):
    """The ContractServiceUnits the Autotask mock serves for one contract
    service: its billing periods (aligned to the contract start) from the
    one before base_epoch to the contract's end, at most two years past
    base_epoch, from the service's effective date on: [(k, start, end,
    units)] (end = last day, midnight). A line cancelled on or before a
    period's start has 0 units in it."""
    m = AT_PERIOD_MONTHS.get(contract.period_type, 1)
    k = 0
    while add_months(contract.start, (k + 1) * m) <= base_epoch:
        k += 1
    horizon = add_months(base_epoch, 24)
    out = []
    j = max(0, k - 1)
    while True:
        start = add_months(contract.start, j * m)
        if start > contract.end or start > horizon:
            break
        end = add_months(contract.start, (j + 1) * m) - DAY
        if end + DAY > service.effective:
            units = 0 if service.cancelled is not None and service.cancelled <= start else service.units
            out.append((j, start, end, units))
        j += 1
    return out


def autotask_units_on(contract, service, base_epoch, day_epoch):
    """Units of the period that contains day_epoch (a UTC midnight), or None."""
    for _, start, end, units in autotask_unit_periods(contract, service, base_epoch):
        if start <= day_epoch <= end:
            return units
    return None


def datto_os(name):
    """NinjaOne OS name -> how Datto RMM words it."""
    if not name:
        return None
    if name.startswith("Windows"):
        n = name.replace(" Professional Edition", " Pro").replace(" Enterprise Edition", " Enterprise")
        return "Microsoft " + n
    return name


# ---------------------------------------------------------------------------
# Small helpers.

def iso_z(epoch):
    """Epoch seconds -> 2026-11-01T00:00:00Z (ConnectWise style)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))


def iso_date(epoch):
    return time.strftime("%Y-%m-%d", time.gmtime(int(epoch)))


def parse_iso(text):
    """ISO 8601 (date, or date-time with Z / offset / none = UTC) -> epoch seconds (float)."""
    t = text.strip()
    if t.endswith("Z") or t.endswith("z"):
        t = t[:-1] + "+00:00"
    if len(t) == 10:
        t += "T00:00:00+00:00"
    dt = datetime.datetime.fromisoformat(t)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


def month_start(epoch):
    t = time.gmtime(int(epoch))
    return calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0))


def add_months(epoch, months):
    t = time.gmtime(int(epoch))
    m = t.tm_mon - 1 + months
    y = t.tm_year + m // 12
    m = m % 12 + 1
    d = min(t.tm_mday, calendar.monthrange(y, m)[1])
    return calendar.timegm((y, m, d, t.tm_hour, t.tm_min, t.tm_sec))


def code(rng, n, alphabet=ALNUM):
    """n random characters of alphabet (one getrandbits call)."""
    k = len(alphabet)
    v = rng.getrandbits(6 * n + 8)
    out = []
    for _ in range(n):
        v, r = divmod(v, k)
        out.append(alphabet[r])
    return "".join(out)


def wpick(rng, items, cum):
    """Weighted choice with precomputed cumulative weights."""
    return items[bisect.bisect_right(cum, rng.random() * cum[-1])]


def cumulative(weights):
    out, acc = [], 0
    for w in weights:
        acc += w
        out.append(acc)
    return out


def money(x):
    return round(x + 1e-9, 2)


def slug(text):
    return "".join(ch for ch in text.lower() if ch.isalnum())


def initials(name):
    words = [w for w in name.replace("&", " ").replace("-", " ").split() if w[:1].isalpha()]
    s = "".join(w[0] for w in words[:3]).upper()
    return s if len(s) >= 2 else (name[:3].upper() if len(name) >= 3 else "CL")


# ---------------------------------------------------------------------------
# Names.

def make_core_name(rng):
    ind = INDUSTRIES[bisect.bisect_right(_IND_CUM, rng.random() * _IND_CUM[-1])]
    pattern = rng.choice(ind[2])
    s1 = rng.choice(SURNAMES)
    s2 = rng.choice(SURNAMES)
    while s2 == s1:
        s2 = rng.choice(SURNAMES)
    s3 = rng.choice(SURNAMES)
    name = (pattern.replace("{P}", rng.choice(PLACES)).replace("{S2}", s2).replace("{X2}", s3)
            .replace("{S}", s1).replace("{F}", rng.choice(FIRST_NAMES)).replace("{X}", rng.choice(SAINTS)))
    return name, ind


def psa_name(rng, core, ind):
    suffix = rng.choice(ind[3])
    name = core + suffix
    if len(name) > 50:  # ConnectWise company name is at most 50 characters
        name = name[:50].rstrip(" ,.")
    return name, suffix


def _typo(rng, text):
    words = text.split(" ")
    idx = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not idx:
        return text
    i = rng.choice(idx)
    w = words[i]
    p = rng.randrange(1, len(w) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        w = w[:p] + w[p + 1] + w[p] + w[p + 2:]          # swapped letters
    elif kind == 1:
        w = w[:p] + w[p + 1:]                             # dropped letter
    elif kind == 2:
        w = w[:p] + w[p] + w[p:]                          # doubled letter
    else:
        vowels = "aeiou"
        j = next((k for k in range(p, len(w)) if w[k] in vowels), None)
        if j is not None:
            w = w[:j] + vowels[(vowels.index(w[j]) + 1) % 5] + w[j + 1:]
    words[i] = w
    return " ".join(words)


def _abbreviate(text):
    out = text
    for long_form, short in ABBREVIATIONS.items():
        for form in (long_form.title(), long_form):
            out = out.replace(form, short)
    return out.replace(" and ", " & ")


def _drop_generic_tail(text):
    words = text.split(" ")
    while len(words) > 2 and words[-1].lower().strip(",.") in GENERIC_TAIL_WORDS:
        words.pop()
    if words[0] == "The" and len(words) > 2:
        words.pop(0)
    return " ".join(words)


VARIANTS = ["exact", "suffix", "upper_abbrev", "amp_and", "typo", "drop_generic", "site", "domain",
            "inc_long", "lower"]
_VARIANT_CUM = cumulative([30, 12, 10, 9, 9, 10, 6, 4, 5, 5])


def rmm_name(rng, core, psa_suffix, domain):
    """How the same client is named in an RMM: returns (name, variant)."""
    variant = wpick(rng, VARIANTS, _VARIANT_CUM)
    name = core
    if variant == "suffix":
        options = [s for s in (" LLC", " Inc", " Inc.", " Ltd", ", LLC", " PC") if s != psa_suffix]
        name = core + rng.choice(options)
    elif variant == "upper_abbrev":
        name = _abbreviate(core).upper()
    elif variant == "amp_and":
        if "&" in core:
            name = core.replace(" & ", " and ")
        elif " and " in core:
            name = core.replace(" and ", " & ")
        else:
            name, variant = _drop_generic_tail(core) + " & Co", "amp_and"
    elif variant == "typo":
        name = _typo(rng, core)
    elif variant == "drop_generic":
        name = _drop_generic_tail(core)
    elif variant == "site":
        name = core + rng.choice([" - Main Office", " (HQ)", " - Main", " Main Office"])
    elif variant == "domain":
        name = domain if domain else core.lower()
    elif variant == "inc_long":
        if "Inc" in psa_suffix:
            name = core + " Incorporated"
        elif "Incorporated" in psa_suffix:
            name = core + ", Inc."
        else:
            name = core + " Inc."
    elif variant == "lower":
        name = core.lower()
    return name, variant


def make_domain(rng, core, ind_key):
    words = [w for w in core.replace("&", " ").replace("'", "").replace(".", " ").split()]
    tld = ".org" if ind_key == "nonprofit" and rng.random() < 0.7 else rng.choice(
        [".com"] * 8 + [".net", ".us", ".biz"])
    r = rng.random()
    if r < 0.55:
        base = "".join(words).lower()
    elif r < 0.75:
        base = "-".join(words).lower()
    elif r < 0.9:
        base = "".join(w for w in words if w.lower() not in GENERIC_TAIL_WORDS).lower() or "".join(words).lower()
    else:
        base = "".join(w[0] for w in words).lower() + slug(words[-1])
    base = "".join(ch for ch in base if ch.isalnum() or ch == "-")[:40].strip("-")
    return base + tld


def website_form(rng, domain):
    r = rng.random()
    if r < 0.45:
        return "www." + domain
    if r < 0.7:
        return "https://" + domain
    if r < 0.85:
        return domain
    if r < 0.95:
        return "http://www." + domain + "/"
    return "https://www." + domain.upper() if rng.random() < 0.3 else "https://www." + domain


def make_identifier(name, used):
    words = [w for w in name.replace("&", " ").replace("-", " ").split() if w]
    ident = "".join(("".join(ch for ch in w if ch.isalnum()))[:12].capitalize() for w in words)[:25] or "Client"
    base, n = ident, 1
    while ident.lower() in used:
        n += 1
        ident = base[:25 - len(str(n))] + str(n)
    used.add(ident.lower())
    return ident


# ---------------------------------------------------------------------------
# The dataset.

class Dataset:
    """All generated records plus ground truth. Tables are lists of namedtuples
    sorted by id."""

    def __init__(self, meta, tables, ground_truth):
        self.meta = meta
        for name, _ in TABLES:     # ds.companies, ds.devices, ds.halo_lines, ds.ms_users, ...
            setattr(self, name, tables.get(name, []))
        self.ground_truth = ground_truth

    @property
    def base_epoch(self):
        return self.meta["base_epoch"]

    def table(self, name):
        return getattr(self, name)

    def counts(self):
        return {name: len(self.table(name)) for name, _ in TABLES}

    # -- serialization ---------------------------------------------------
    def to_json_obj(self):
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "meta": self.meta,
            "reference": {"agreement_types": AGREEMENT_TYPES, "billing_cycles": BILLING_CYCLES},
            "tables": {name: {"fields": list(cls._fields), "rows": [list(r) for r in self.table(name)]}
                       for name, cls in TABLES},
            "ground_truth": self.ground_truth,
        }

    def save(self, path, pretty=False):
        with open(path, "w", encoding="utf-8") as f:
            if pretty:
                json.dump(self.to_json_obj(), f, indent=1, ensure_ascii=False)
            else:
                # Row by row keeps memory flat for big datasets.
                f.write('{"format": %s, "version": %d, "meta": %s, "reference": %s, "tables": {'
                        % (json.dumps(FORMAT), FORMAT_VERSION, json.dumps(self.meta),
                           json.dumps({"agreement_types": AGREEMENT_TYPES, "billing_cycles": BILLING_CYCLES})))
                for ti, (name, cls) in enumerate(TABLES):
                    f.write('%s"%s": {"fields": %s, "rows": [' % ("," if ti else "", name, json.dumps(list(cls._fields))))
                    for ri, row in enumerate(self.table(name)):
                        if ri:
                            f.write(",\n")
                        f.write(json.dumps(list(row), ensure_ascii=False))
                    f.write("]}")
                f.write('}, "ground_truth": ')
                json.dump(self.ground_truth, f, ensure_ascii=False)
                f.write("}\n")

    @classmethod
    def from_json_obj(cls, obj):
        if obj.get("format") != FORMAT:
            raise ValueError("not a %s file" % FORMAT)
        tables = {}
        for name, rec in TABLES:
            t = obj["tables"].get(name, {"fields": list(rec._fields), "rows": []})
            fields = t["fields"]
            if fields == list(rec._fields):
                tables[name] = [rec._make([tuple(v) if isinstance(v, list) else v for v in r]) for r in t["rows"]]
            else:  # tolerate reordered / missing columns
                idx = [fields.index(f) if f in fields else None for f in rec._fields]
                tables[name] = [rec._make([(tuple(r[i]) if isinstance(r[i], list) else r[i]) if i is not None else None
                                           for i in idx]) for r in t["rows"]]
            tables[name].sort(key=lambda r: r.id)
        return cls(obj["meta"], tables, obj.get("ground_truth", {}))

    @classmethod
    def load(cls, path):
        with open(path, "r", encoding="utf-8") as f:
            return cls.from_json_obj(json.load(f))


# ---------------------------------------------------------------------------
# Generation.

SIZE_TIERS = [("micro", 3, 10, 34), ("small", 10, 30, 36), ("medium", 30, 100, 22), ("large", 100, 350, 7),
              ("xl", 350, 1200, 1)]
_TIER_CUM = cumulative([t[3] for t in SIZE_TIERS])
_TIER_MEAN = sum((t[1] + t[2]) / 2 * t[3] for t in SIZE_TIERS) / sum(t[3] for t in SIZE_TIERS)


class _Gen:
    def __init__(self, seed, clients, base_epoch, avg_devices):
        self.seed = seed
        self.n_clients = clients
        self.B = int(base_epoch)
        self.avg_devices = avg_devices
        self.scale = avg_devices / _TIER_MEAN
        self.used_idents = set()
        self.used_serials = set()
        self.catalog = []
        self.companies = []
        self.agreements = []
        self.additions = []
        self.orgs = []
        self.locations = []
        self.raw_devices = []   # device tuples without final ids
        self.gt_clients = []
        self.gt_non_clients = []
        self.gt_internal_orgs = []
        self.cat_by_code = {}
        self.idents = []        # client_identity() of each client, for the other systems

    def rng(self, *parts):
        return random.Random("/".join([str(self.seed)] + [str(p) for p in parts]))

    # -- catalog -------------------------------------------------------------
    def build_catalog(self):
        r = self.rng("catalog")
        cid = 900
        for (ident, desc, cat, price, cost, vendor, cycle, uom, inactive) in _CATALOG:
            cid += r.randint(1, 3)
            item = CatalogItem(cid, ident, desc, cat, cat + " - Recurring", "Agreement" if cat != "Licensing" else "NonInventory",
                               price, cost, vendor, vendor, ident.replace("-", "") + "-" + code(r, 4),
                               True, cycle, uom, inactive, self.B - r.randint(30, 900) * DAY)
            self.catalog.append(item)
            self.cat_by_code[ident] = item

    # -- clients ---------------------------------------------------------------
    def plan_clients(self):
        """Decides each client's identity, presence in each system and size."""
        g = self.rng("plan")
        n = self.n_clients
        small_minimum = 1 if n >= 8 else 0
        n_pairs = max(small_minimum, round(n * 0.015))
        n_psa_only = max(small_minimum, round(n * 0.03))
        n_rmm_only = max(small_minimum, round(n * 0.03))
        n_former = max(small_minimum, round(n * 0.02))
        order = list(range(n))
        g.shuffle(order)
        roles = ["client"] * n
        pos = 0
        pair_slots = []
        for _ in range(n_pairs):
            if pos + 1 >= n:
                break
            a, b = order[pos], order[pos + 1]
            roles[a] = roles[b] = "franchise"
            pair_slots.append((min(a, b), max(a, b)))
            pos += 2
        for kind, count in (("psa_only", n_psa_only), ("rmm_only", n_rmm_only), ("former", n_former)):
            for _ in range(count):
                if pos >= n:
                    break
                roles[order[pos]] = kind
                pos += 1
        self.roles = roles
        self.pair_of = {}
        for a, b in pair_slots:
            self.pair_of[a] = (a, b, 0)
            self.pair_of[b] = (a, b, 1)
        self.used_cores = set()
        self.franchise_info = {}

    def client_identity(self, i):
        """Name, domain and size of client i (its own random stream)."""
        r = self.rng("client", i)
        role = self.roles[i]
        if role == "franchise":
            a, b, which = self.pair_of[i]
            if a not in self.franchise_info:
                rb = self.rng("franchise", a)  # both branches share the franchise's name and domain
                for _ in range(50):
                    core, ind = make_core_name(rb)
                    if core not in self.used_cores:
                        break
                self.used_cores.add(core)
                bi = rb.randrange(0, len(BRANCHES), 2)
                self.franchise_info[a] = (core, ind, make_domain(rb, core, ind[0]), bi)
            base_core, ind, domain, bi = self.franchise_info[a]
            branch_long, branch_short = BRANCHES[bi + which]
            psa = "%s - %s" % (base_core, branch_long)
            rmm = r.choice(["%s %s" % (base_core, branch_long), "%s %s" % (base_core, branch_short),
                            "%s (%s)" % (base_core, branch_long)])
            return dict(core=base_core + " " + branch_long, franchise=base_core, ind=ind, psa_name=psa,
                        psa_suffix="", rmm_name=rmm, variant="franchise_branch", domain=domain, rng=r)
        for _ in range(50):
            core, ind = make_core_name(r)
            if core not in self.used_cores:
                break
        self.used_cores.add(core)
        domain = make_domain(r, core, ind[0])
        psa, suffix = psa_name(r, core, ind)
        rmm, variant = rmm_name(r, core, suffix, domain)
        return dict(core=core, franchise=None, ind=ind, psa_name=psa, psa_suffix=suffix, rmm_name=rmm,
                    variant=variant, domain=domain, rng=r)

    def client_profile(self, r, ind):
        tier = wpick(r, SIZE_TIERS, _TIER_CUM)
        n = max(2, int(round(r.randint(tier[1], tier[2]) * self.scale)))
        bias = ind[4]
        server_share = 0.03 + 0.03 * bias + r.random() * 0.04
        servers = int(round(n * server_share)) if n >= 8 else (1 if r.random() < 0.35 else 0)
        virtual = servers >= 2 and r.random() < 0.6
        hosts = 0
        guests = 0
        if virtual:
            hosts = max(1, servers // 5)
            guests = servers - hosts
            servers_physical = 0
        else:
            servers_physical = servers
        macs = int(round(n * (0.25 if ind[0] in ("engineering", "hospitality") and r.random() < 0.5 else
                              (0.04 if r.random() < 0.3 else 0.0))))
        linux_ws = 1 if n > 60 and r.random() < 0.2 else 0
        linux_srv = 1 if servers >= 3 and r.random() < 0.3 else 0
        android = r.randint(1, 3) if r.random() < 0.08 else 0
        nms = r.randint(1, 4) if n > 15 and r.random() < 0.25 else 0
        workstations = max(1, n - servers - macs - linux_ws - linux_srv - android - nms)
        laptop_share = r.choice([0.2, 0.35, 0.5, 0.7])
        laptops = int(round(workstations * laptop_share))
        desktops = workstations - laptops
        employees = max(1, int(round((desktops + laptops + macs) * r.uniform(0.9, 1.3))))
        return dict(tier=tier[0], employees=employees, desktops=desktops, laptops=laptops, macs=macs,
                    linux_workstations=linux_ws, servers_physical=servers_physical, vm_hosts=hosts,
                    vm_guests=guests, linux_servers=linux_srv, android=android, network_devices=nms,
                    hypervisor="VMWARE" if r.random() < 0.5 else "HYPERV")

    # -- PSA -----------------------------------------------------------------
    def next_company_id(self, r):
        last = self.companies[-1].id if self.companies else 249
        return last + (1 if r.random() < 0.85 else r.randint(2, 4))

    def add_company(self, r, name, ctype, status, website, deleted=False, entered=None):
        cid = self.next_company_id(r)
        entered = entered if entered is not None else self.B - r.randint(60, 3200) * DAY - r.randint(0, DAY)
        last = min(self.B - DAY - r.randint(0, 3600), entered + r.randint(0, max(1, self.B - DAY - entered)))
        st, city, zp = r.choice(US_STATES)
        first, last_name = r.choice(FIRST_NAMES), r.choice(SURNAMES)
        c = Company(cid, make_identifier(name, self.used_idents), name, status, ctype, website,
                    "(%s) 555-%04d" % (r.randint(201, 989), r.randint(0, 9999)),
                    "%d %s" % (r.randint(10, 9999), r.choice(STREETS)), city, st, zp + "%02d" % r.randint(0, 99),
                    deleted, (last if deleted else None), entered, last, r.choice(UPDATERS),
                    20000 + cid * 3, "%s %s" % (first, last_name))
        self.companies.append(c)
        return c

    def add_agreement(self, r, company, type_id, name, cycle_id, start, end=None, status="Active",
                      cancelled=False, date_cancelled=None, reason=None):
        aid = (self.agreements[-1].id if self.agreements else 4100) + r.randint(1, 3)
        prorate = r.random() < 0.6
        entered = start - r.randint(0, 20) * DAY
        last = min(self.B - DAY - r.randint(0, 7200), entered + r.randint(0, max(1, self.B - DAY - entered)))
        if date_cancelled:
            last = max(last, date_cancelled)
        a = Agreement(aid, company.id, name, type_id, cycle_id, iso_date(start), iso_date(end) if end else None,
                      end is None, cancelled, iso_date(date_cancelled) if date_cancelled else None, reason, status,
                      prorate, 0.0, r.choice(["CalendarYear", "ContractYear"]), entered, last, r.choice(UPDATERS))
        self.agreements.append(a)
        return a

    def add_addition(self, r, agreement, start_epoch, product_code, quantity, price=None, *, cancelled=None,
                     description=None, missing_price=False, bill_customer=None, effective=None, seq=None):
        item = self.cat_by_code[product_code]
        adid = (self.additions[-1].id if self.additions else 77000) + r.randint(1, 2)
        unit_price = None if missing_price else money(item.price if price is None else price)
        eff = int(effective if effective is not None else start_epoch)
        entered = eff - r.randint(0, 10) * DAY
        last = min(self.B - DAY - r.randint(0, 7200), entered + r.randint(0, max(1, self.B - DAY - entered)))
        if cancelled:
            last = max(last, min(cancelled, self.B - DAY))
        if bill_customer is None:
            x = r.random()
            bill_customer = "Billable" if x < 0.93 else ("DoNotBill" if x < 0.965 else "NoCharge")
        q = float(quantity)
        ad = Addition(adid, agreement.id, item.id, q, unit_price, money(item.cost), bill_customer, iso_z(eff),
                      iso_z(cancelled) if cancelled else None, description or item.description,
                      seq if seq is not None else 1, False, r.random() < 0.3, entered, last, r.choice(UPDATERS))
        self.additions.append(ad)
        return ad

    @staticmethod
    def drift(r, true_qty):
        x = r.random()
        if x < 0.45:
            d = 0
        elif x < 0.80:
            d = r.choice([-3, -2, -1, 1, 2, 3])
        elif x < 0.95:
            d = r.choice([-1, 1]) * r.randint(4, 10)
        else:
            d = int(round(true_qty * r.choice([-0.5, -0.3, 0.3, 0.6]))) or 5
        return max(0, true_qty + d)

    def psa_for_client(self, i, ident, profile, usage, company):
        r = self.rng("client", i, "psa")
        role = self.roles[i]
        start = add_months(month_start(self.B), -r.randint(2, 54))
        ms_cycle = wpick(r, [1, 2, 3, 4], cumulative([85, 7, 5, 3]))
        if role == "former":
            cancel = add_months(month_start(self.B), -r.randint(2, 10))
            a = self.add_agreement(r, company, 1, "Managed Services", ms_cycle, start, status="Cancelled",
                                   cancelled=True, date_cancelled=cancel, reason="Client terminated services")
            self.add_addition(r, a, start, "MS-WKS", max(1, profile["desktops"] + profile["laptops"]),
                              cancelled=cancel, seq=1)
            if profile["servers_physical"] + profile["vm_guests"]:
                self.add_addition(r, a, start, "MS-SRV", profile["servers_physical"] + profile["vm_guests"],
                                  cancelled=cancel, seq=2)
            return
        wks = usage["desktop"] + usage["laptop"]
        srv = usage["server"]
        macs = usage["mac"]
        # Expired predecessor agreement (replaced by the current one).
        if r.random() < 0.12:
            old_start = add_months(start, -r.choice([12, 24, 36]))
            old_end = start - DAY
            a0 = self.add_agreement(r, company, 1, "Managed Services %d" % time.gmtime(old_start).tm_year,
                                    ms_cycle, old_start, end=old_end, status="Expired")
            self.add_addition(r, a0, old_start, "MS-WKS", self.drift(r, wks), price=55.0, seq=1)
        end = None
        status = "Active"
        if r.random() < 0.25:
            end = add_months(start, r.choice([12, 24, 36])) - DAY
            if end < self.B:
                if r.random() < 0.75:
                    end = add_months(end + DAY, 36) - DAY   # renewed
                else:
                    status = "Expired"
        if role != "psa_only" or r.random() < 0.5:   # some PSA-only clients buy licences only
            name = r.choice(["Managed Services", "Managed Services Agreement", "MSA - %s" % ident["core"][:24],
                             "Managed IT Services", "Managed Services %d" % time.gmtime(start).tm_year])
            ms = self.add_agreement(r, company, 1, name, ms_cycle, start, end=end, status=status)
            seq = 0
            special_price = r.random() < 0.25
            disc = r.choice([0.9, 0.85, 0.95])

            def price_of(code_):
                p = self.cat_by_code[code_].price
                return money(p * disc) if special_price else p

            def missing():
                return r.random() < 0.04

            mac_separate = macs > 0 and r.random() < 0.5
            wks_bill = wks + (0 if mac_separate else macs)
            if r.random() < 0.06 and wks_bill >= 4:
                # Same product split across two lines added at different times and prices.
                first_part = wks_bill // 2
                older = add_months(start, 0)
                newer = add_months(month_start(self.B), -r.randint(1, 6))
                seq += 1
                self.add_addition(r, ms, start, "MS-WKS", self.drift(r, first_part), price=price_of("MS-WKS") - 5,
                                  effective=older, seq=seq)
                seq += 1
                self.add_addition(r, ms, start, "MS-WKS", self.drift(r, wks_bill - first_part),
                                  price=price_of("MS-WKS"), effective=newer, seq=seq,
                                  description="Managed Workstation (added %s)" % iso_date(newer)[:7])
            else:
                seq += 1
                self.add_addition(r, ms, start, "MS-WKS", self.drift(r, wks_bill), price=price_of("MS-WKS"),
                                  missing_price=missing(), seq=seq)
            if mac_separate:
                seq += 1
                self.add_addition(r, ms, start, "MS-MAC", self.drift(r, macs), price=price_of("MS-MAC"),
                                  missing_price=missing(), seq=seq)
            if srv and r.random() < 0.92:
                seq += 1
                self.add_addition(r, ms, start, "MS-SRV", self.drift(r, srv), price=price_of("MS-SRV"),
                                  missing_price=missing(), seq=seq)
            if r.random() < 0.7:
                seq += 1
                self.add_addition(r, ms, start, "AV-EDR", self.drift(r, wks + srv + macs),
                                  price=price_of("AV-EDR"), missing_price=missing(), seq=seq)
                if r.random() < 0.3:
                    # Legacy antivirus line that was replaced: cancelled.
                    seq += 1
                    self.add_addition(r, ms, start, "AV-STD", wks, cancelled=add_months(start, r.randint(1, 12)),
                                      seq=seq)
            if usage["network"] and r.random() < 0.5:
                seq += 1
                self.add_addition(r, ms, start, "MS-NET", self.drift(r, usage["network"]), seq=seq)
            if r.random() < 0.3:
                seq += 1
                self.add_addition(r, ms, start, "NET-FW", 1, seq=seq)
            if r.random() < 0.2:
                seq += 1
                self.add_addition(r, ms, start, "HELPDESK", self.drift(r, profile["employees"]),
                                  price=price_of("HELPDESK"), seq=seq)
            if r.random() < 0.15:
                seq += 1
                self.add_addition(r, ms, start, "SAT", self.drift(r, profile["employees"]), seq=seq)
            if srv and r.random() < 0.35:
                seq += 1
                self.add_addition(r, ms, start, "BDR", self.drift(r, srv), seq=seq)
            if r.random() < 0.03:
                seq += 1
                self.add_addition(r, ms, start, "CREDIT", 1, price=-r.choice([25.0, 50.0, 75.5]), seq=seq,
                                  description="Loyalty discount", bill_customer="Billable")
            if r.random() < 0.04:
                seq += 1
                self.add_addition(r, ms, start, "BDR-WKS", self.drift(r, wks), seq=seq)
        # Microsoft 365 licensing.
        lic = usage["licences"]
        if lic and r.random() < 0.75:
            cycle = 3 if r.random() < 0.22 else 1
            m365 = self.add_agreement(r, company, 2, r.choice(["Microsoft 365", "Microsoft 365 Licensing",
                                                               "M365 - NCE Annual" if cycle == 3 else "M365 Monthly"]),
                                      cycle, add_months(start, r.randint(0, 6)))
            seq = 0
            for sku, count in sorted(lic.items()):
                seq += 1
                self.add_addition(r, m365, parse_iso(m365.start), sku, self.drift(r, count),
                                  missing_price=r.random() < 0.03, seq=seq)
        # Separate backup agreement with fractional storage quantities.
        if srv and r.random() < 0.18:
            bk = self.add_agreement(r, company, 3, "Backup & Disaster Recovery", 1, add_months(start, r.randint(0, 12)))
            self.add_addition(r, bk, parse_iso(bk.start), "BDR", self.drift(r, srv), seq=1)
            self.add_addition(r, bk, parse_iso(bk.start), "OFFSITE-TB", r.choice([0.5, 1.25, 2.5, 3.75, 4.0, 6.5]),
                              seq=2)
        if r.random() < 0.15:
            dom = self.add_agreement(r, company, 4, "Domains & Hosting", 3, add_months(start, r.randint(0, 12)))
            self.add_addition(r, dom, parse_iso(dom.start), "DOMAIN", r.randint(1, 4), seq=1)
            if r.random() < 0.5:
                self.add_addition(r, dom, parse_iso(dom.start), "DNS-HOST", 1, seq=2)
        if r.random() < 0.04:
            cancel = add_months(month_start(self.B), -r.randint(1, 8))
            sec = self.add_agreement(r, company, 6, "Security Services", 1, add_months(start, 1), status="Cancelled",
                                     cancelled=True, date_cancelled=cancel, reason="Moved to bundled EDR")
            self.add_addition(r, sec, parse_iso(sec.start), "AV-EDR", self.drift(r, wks), cancelled=cancel, seq=1)

    # -- NinjaOne ----------------------------------------------------------------
    def serial(self, r, style):
        for _ in range(20):
            if style == "dell":
                s = code(r, 7)
            elif style in ("hp", "hpe"):
                s = ("5CG" if style == "hp" else "CZJ") + code(r, 7)
            elif style == "lenovo":
                s = "PF" + code(r, 6)
            elif style == "apple":
                s = r.choice(["C02", "FVF", "H4T"]) + code(r, 9)
            elif style == "surface":
                s = "0" + "".join(str(r.randrange(10)) for _ in range(11))
            elif style == "vmware":
                s = "VMware-42 " + " ".join(code(r, 2, HEX) for _ in range(7)) + "-" + " ".join(
                    code(r, 2, HEX) for _ in range(8))
            elif style == "hyperv":
                s = "-".join("".join(str(r.randrange(10)) for _ in range(4)) for _ in range(6)) + "-%02d" % r.randrange(100)
            elif style == "android":
                s = "R5C" + code(r, 8)
            else:
                s = code(r, 10)
            if s not in self.used_serials:
                self.used_serials.add(s)
                return s
        return s

    def org_for_client(self, r, name, ident_domain, created):
        ad = r.choice([ident_domain.split(".")[0] + ".local", "corp." + ident_domain, None,
                       ident_domain.split(".")[0].upper()[:15]])
        oid = 0  # assigned later (orgs are numbered in onboarding order)
        org = Organization(oid, name, "" if r.random() < 0.7 else "Client since %s" % iso_date(created)[:4],
                           r.choice(ORG_APPROVAL_MODES), ad, created * 1000)
        return org

    def devices_for_org(self, r, org_key, profile, prefix, ad_domain, former, locations):
        """Appends raw devices for one organization; returns usage counts."""
        B = self.B
        devs = []

        def when(active_kind):
            # created, last contact (ms)
            created = (B - r.randint(20, 1500) * DAY) * 1000 + r.randint(0, 999)
            if active_kind == "inactive":
                lc = (B - r.randint(45, 300) * DAY - r.randint(0, DAY)) * 1000 + r.randint(0, 999)
            elif active_kind == "offline":
                lc = (B - r.randint(1, 12) * DAY - r.randint(0, DAY)) * 1000 + r.randint(0, 999)
            elif active_kind == "pending":
                created = (B - r.randint(0, 4) * DAY - r.randint(0, DAY)) * 1000 + r.randint(0, 999)
                lc = created + r.randint(60, 3 * 3600) * 1000
            else:
                lc = (B - r.randint(30, 36 * 3600)) * 1000 + r.randint(0, 999)
            if r.random() < 0.08:
                lc -= lc % 1000   # whole seconds: "1715000000.0"
            lc = max(lc, created + 1000)
            return created, lc

        def state():
            if former:
                return "inactive"
            x = r.random()
            if x < 0.05:
                return "inactive"
            if x < 0.13:
                return "offline"
            if x < 0.14:
                return "pending"
            return "online"

        counters = collections.Counter()
        usage = collections.Counter()

        def add(node_class, chassis, hw, os_t, name, vm=False, parent=None, last_user=None, forced=None):
            st = forced or state()
            created, lc = when(st)
            manufacturer, model, sstyle = hw if hw else (None, None, None)
            serial = self.serial(r, sstyle) if sstyle else None
            lc = min(lc, B * 1000 - 1000 + lc % 1000)     # nothing happens after the base epoch
            created = min(created, lc - 1000)
            lu = min(lc + r.randint(0, 600) * 1000, B * 1000) if st != "inactive" else lc
            display = name
            if r.random() < 0.05 and node_class in WORKSTATION_CLASSES:
                display = r.choice(["Reception PC", "Front Desk", "Conference Room", "Dr. %s Laptop" % r.choice(SURNAMES),
                                    "%s's PC" % r.choice(FIRST_NAMES), "Scanner Station", "Shop Floor PC"])
            loc = r.choice(locations) if locations else None
            dev = [0, org_key, loc, node_class, "PENDING" if st == "pending" else "APPROVED",
                   st in ("inactive", "offline"), display, name if not node_class.startswith("NMS_") else None,
                   created, lc, lu, os_t[0] if os_t else None, os_t[1] if os_t else None,
                   os_t[2] if os_t else None, manufacturer, model, serial, chassis, vm, last_user, parent]
            devs.append(dev)
            if st in ("online", "offline"):
                cls = device_truth_class(node_class, chassis)
                usage[cls] += 1
                if node_class == "MAC":
                    usage["mac"] += 1
                if node_class.startswith("NMS_"):
                    usage["network"] += 1
            usage[st] += 1
            return dev

        def user():
            return "%s\\%s%s" % ((ad_domain or "WORKGROUP").split(".")[0].upper()[:15], r.choice(FIRST_NAMES)[0].lower(),
                                 r.choice(SURNAMES).lower().replace("'", ""))

        for _ in range(profile["desktops"]):
            counters["ws"] += 1
            name = ("%s-WS%02d" % (prefix, counters["ws"]) if r.random() < 0.7 else "DESKTOP-" + code(r, 7))
            vm = r.random() < 0.03
            hw = (("VMware, Inc.", "VMware7,1", "vmware") if vm else r.choice(DESKTOP_HW))
            add("WINDOWS_WORKSTATION", "UNKNOWN" if vm else "DESKTOP", hw, r.choice(WIN_WS_OS), name, vm=vm,
                last_user=user())
        for _ in range(profile["laptops"]):
            counters["lt"] += 1
            name = ("%s-LT%02d" % (prefix, counters["lt"]) if r.random() < 0.7 else "LAPTOP-" + code(r, 8))
            add("WINDOWS_WORKSTATION", "LAPTOP", r.choice(LAPTOP_HW), r.choice(WIN_WS_OS), name, last_user=user())
        for _ in range(profile["macs"]):
            first = r.choice(FIRST_NAMES)
            if r.random() < 0.75:
                add("MAC", "LAPTOP", r.choice(MAC_LAPTOP_HW), r.choice(MAC_OS), "%ss-MacBook-Pro" % first,
                    last_user=first.lower())
            else:
                add("MAC", "DESKTOP", r.choice(MAC_DESKTOP_HW), r.choice(MAC_OS), "%s-iMac" % first,
                    last_user=first.lower())
        for _ in range(profile["linux_workstations"]):
            counters["lx"] += 1
            add("LINUX_WORKSTATION", "DESKTOP", r.choice(DESKTOP_HW), r.choice(LINUX_WS_OS),
                "%s-lnx%02d" % (prefix.lower(), counters["lx"]))
        roles = ["DC", "FS", "SQL", "APP", "RDS", "PRINT", "WEB", "FILE", "EXCH", "LOB"]
        for _ in range(profile["servers_physical"]):
            counters["srv"] += 1
            role = roles[(counters["srv"] - 1) % len(roles)]
            add("WINDOWS_SERVER", "DESKTOP" if r.random() < 0.2 else "UNKNOWN", r.choice(SERVER_HW),
                r.choice(WIN_SRV_OS), "%s-%s%02d" % (prefix, role, 1 + (counters["srv"] - 1) // len(roles)))
        host_ids = []
        hyper = profile["hypervisor"]
        for h in range(profile["vm_hosts"]):
            if hyper == "VMWARE":
                d = add("VMWARE_VM_HOST", "UNKNOWN", r.choice(SERVER_HW), ("VMware ESXi 8.0.2", "22380479", "x86_64"),
                        "%s-ESX%02d" % (prefix, h + 1))
            else:
                d = add("WINDOWS_SERVER", "UNKNOWN", r.choice(SERVER_HW), WIN_SRV_OS[0], "%s-HV%02d" % (prefix, h + 1))
            host_ids.append(d)
        for gidx in range(profile["vm_guests"]):
            counters["srv"] += 1
            role = roles[(counters["srv"] - 1) % len(roles)]
            name = "%s-%s%02d" % (prefix, role, 1 + (counters["srv"] - 1) // len(roles))
            if hyper == "VMWARE":
                # Most guests run the Windows agent; a few are agentless VMware guests.
                agentless = r.random() < 0.3
                add("VMWARE_VM_GUEST" if agentless else "WINDOWS_SERVER", "UNKNOWN", ("VMware, Inc.", "VMware7,1", "vmware"),
                    r.choice(WIN_SRV_OS), name, vm=True)
            else:
                agentless = r.random() < 0.3
                add("HYPERV_VMM_GUEST" if agentless else "WINDOWS_SERVER", "UNKNOWN",
                    ("Microsoft Corporation", "Virtual Machine", "hyperv"), r.choice(WIN_SRV_OS), name, vm=True)
        for _ in range(profile["linux_servers"]):
            counters["lsrv"] += 1
            vm = r.random() < 0.5
            add("LINUX_SERVER", "UNKNOWN", (("VMware, Inc.", "VMware7,1", "vmware") if vm else r.choice(SERVER_HW)),
                r.choice(LINUX_SRV_OS), "%s-nas%02d" % (prefix.lower(), counters["lsrv"]), vm=vm)
        for _ in range(profile["android"]):
            first = r.choice(FIRST_NAMES)
            add("ANDROID", "MOBILE", ("samsung", r.choice(["SM-G991U", "SM-A536U", "SM-T500"]), "android"),
                r.choice(ANDROID_OS), "%s's Galaxy" % first)
        for _ in range(profile["network_devices"]):
            kind, short = r.choice(NMS_KINDS)
            counters[kind] += 1
            add(kind, None, None, None, "%s-%s%02d" % (prefix, short, counters[kind]))
        for _ in range(profile.get("pending_extra", 0)):
            counters["lt"] += 1
            add("WINDOWS_WORKSTATION", "LAPTOP", r.choice(LAPTOP_HW), WIN_WS_OS[0], "LAPTOP-" + code(r, 8),
                last_user=user(), forced="pending")
        # Duplicates: the same machine enrolled twice (re-imaged / agent reinstalled).
        dups = 0
        candidates = [d for d in devs if d[3] in WORKSTATION_CLASSES | SERVER_CLASSES and d[16]]
        n_dup = sum(1 for _ in candidates if r.random() < 0.012)
        for _ in range(n_dup):
            src = r.choice(candidates)
            d = list(src)
            created = src[8] - r.randint(60, 400) * DAY * 1000
            lc = src[8] - r.randint(1, 30) * DAY * 1000     # went silent when the new agent arrived
            d[8], d[9], d[10] = created, lc, lc
            d[5] = True
            d[4] = "APPROVED"
            if r.random() < 0.5:
                d[6] = d[7] = "DESKTOP-" + code(r, 7)
            devs.append(d)
            dups += 1
        usage["duplicates"] = dups
        return devs, usage

    def licences_for(self, r, profile):
        e = profile["employees"]
        out = {}
        plan = r.random()
        if plan < 0.5:
            out["M365-BP"] = e
        elif plan < 0.85:
            out["M365-BS"] = e
        elif plan < 0.95:
            out["M365-BB"] = e
        else:
            out["M365-E3"] = e
        if r.random() < 0.3:
            out["EXO-P1"] = max(1, e // r.randint(3, 8))
        if r.random() < 0.12:
            out["O365-ATP"] = e
        return out

    # -- the other systems of the same MSP ----------------------------------------
    #
    # Everything below runs after the ConnectWise / NinjaOne data is complete and
    # draws only from its own streams ("<seed>/client/<i>/microsoft", "<seed>/halo",
    # ...), so the existing tables never change.

    @staticmethod
    def guid(r):
        """A version-4 GUID from the stream r."""
        h = "%032x" % r.getrandbits(128)
        return "%s-%s-4%s-%s%s-%s" % (h[:8], h[8:12], h[13:16], "89ab"[int(h[16], 16) & 3], h[17:20], h[20:])

    def build_systems(self, devices, owner, msp_name, msp_domain):
        self.sys = {name: [] for name, _ in TABLES[7:]}
        self.sku_tuples = {}
        self.gt_by_client = {c["client"]: c for c in self.gt_clients}
        self.client_of_company = {c["psa_company_id"]: c["client"] for c in self.gt_clients
                                  if c["psa_company_id"] is not None}
        for c in self.gt_clients:
            c.update(halo_client_id=None, autotask_company_id=None, ms_tenant_id=None, ms_tenant_name=None,
                     ms_source=None, pax8_company_id=None, pax8_name=None, pc_customer_id=None, pc_name=None,
                     datto_site_id=None, datto_site_uid=None, datto_name=None, datto_mode=None)
        self.build_microsoft(msp_name, msp_domain)
        self.build_halo(owner)
        self.build_autotask(owner)
        self.build_datto(devices, msp_name)
        self.build_contacts(msp_domain)
        for name, rows in self.sys.items():
            rows.sort(key=lambda x: x.id)
        return self.sys

    # -- Microsoft 365 tenants, Pax8, Partner Center ---------------------------------
    def _user_names(self, r, domain, used):
        for _ in range(30):
            first, last = r.choice(FIRST_NAMES), r.choice(SURNAMES)
            sf, sl = _SLUGS.get(first) or slug(first), _SLUGS.get(last) or slug(last)
            style = r.random()
            local = sf + "." + sl if style < 0.6 else (sf[0] + sl if style < 0.9 else sf)
            if local not in used:
                used.add(local)
                return "%s %s" % (first, last), "%s@%s" % (local, domain)
        n = len(used)
        used.add("user%d" % n)
        return "User %d" % n, "user%d@%s" % (n, domain)

    def _sign_in(self, r, kind):
        """(lastSignIn, lastNonInteractiveSignIn) epochs or None."""
        B = self.B
        if kind == "never":
            return None, None
        if kind == "stale":
            t = B - r.randint(30, 200) * DAY - r.randint(0, DAY)
        elif kind == "gone":
            t = B - r.randint(20, 400) * DAY - r.randint(0, DAY)
        else:
            t = B - r.randint(600, 10 * DAY)
        ni = None if r.random() < 0.1 else min(B - 60, t + r.randint(0, 3 * DAY))
        return t, ni

    def build_microsoft(self, msp_name, msp_domain):
        B = self.B
        S = self.sys
        mr = self.rng("microsoft")
        pr = self.rng("pax8")
        # Pax8 catalogue (one product per vendor SKU; ids are the vendor's GUIDs).
        self.pax8_product_of = {}
        for code_, (name, vendor, psku, vsku, unit, cost, price, commit) in sorted(PAX8_PRODUCTS.items()):
            p = Pax8Product(self.guid(pr), name, vendor, psku, vsku, name + " (" + unit.lower() + ")", commit,
                            unit, cost, price)
            S["pax8_products"].append(p)
            self.pax8_product_of[code_] = p
        used_initial = set()
        tenant_of_client = {}

        def initial_domain(base):
            base = "".join(ch for ch in base.lower() if ch.isalnum())[:24] or "tenant"
            d, n = base, 1
            while d in used_initial:
                n += 1
                d = "%s%d" % (base, n)
            used_initial.add(d)
            return d + ".onmicrosoft.com"

        # The MSP's own tenant: the partner tenant of Partner Center and of the Graph app.
        ir = self.rng("microsoft", "partner")
        partner = MsTenant(self.guid(ir), msp_name, initial_domain(msp_domain.split(".")[0]), (msp_domain,),
                           B - 3000 * DAY, "US", True, -1)
        S["ms_tenants"].append(partner)
        self._tenant_users(ir, partner, collections.Counter({"M365-BP": 9}), "internal")
        self.partner_tenant_id = partner.id

        # Which clients share one tenant: franchise branches use one domain, hence one tenant.
        groups = []
        for c in self.gt_clients:
            i = c["client"]
            if c["role"] == "franchise" and self.pair_of[i][2] == 1:
                continue
            r = self.rng("client", i, "microsoft")
            present = r.random() < (0.0 if c["role"] == "former" else 0.6 if c["role"] == "rmm_only" else 0.92)
            if not present:
                continue
            members = [i]
            if c["role"] == "franchise":
                members.append(self.pair_of[i][1])
            groups.append((i, r, members))
        for leader, r, members in groups:
            ident = self.idents[leader]
            core = ident["franchise"] or ident["core"]
            lic = collections.Counter()
            for m in members:
                lic.update(self.gt_by_client[m]["profile"]["licences"])
            name, _ = rmm_name(r, core, ident["psa_suffix"], ident["domain"])
            if r.random() < 0.3:
                name = self.gt_by_client[leader]["psa_name"] or name
            domains = tuple(self.gt_by_client[leader]["domains"])
            premium = any(k in PREMIUM_CODES for k in lic)
            t = MsTenant(self.guid(r), name, initial_domain(domains[0].split(".")[0]), domains,
                         B - r.randint(400, 4000) * DAY, "US", premium, leader)
            S["ms_tenants"].append(t)
            x = r.random()
            source = "pax8" if x < 0.6 else ("pc" if x < 0.9 else "mixed")
            skus = self._tenant_users(r, t, lic, "client")
            subs = self._tenant_subscriptions(r, t, skus, source)
            for m in members:
                gt = self.gt_by_client[m]
                gt.update(ms_tenant_id=t.id, ms_tenant_name=t.name, ms_source=source)
                tenant_of_client[m] = t
            self._pax8_company(r, t, leader, members, subs, source)
            self._pc_customer(r, t, leader, members, subs, source)
        # Clients that buy only non-Microsoft products from Pax8, and former clients' closed accounts.
        for c in self.gt_clients:
            i = c["client"]
            if c["pax8_company_id"] or (c["role"] == "franchise" and self.pair_of[i][2] == 1):
                continue
            r = self.rng("client", i, "pax8")
            if r.random() < (0.4 if c["role"] == "former" else 0.12):
                self._pax8_company(r, None, i, [i], [], "none")

    def _tenant_users(self, r, t, lic, kind):
        """Users and subscribed SKUs of one tenant; returns [(code, MsSku fields dict)]."""
        B = self.B
        S = self.sys
        domain = t.domains[0]
        used = set()
        users = []     # [display, upn, enabled, user_type, created, [sku ids], sign-in kind, title]

        def add(skus, enabled=True, user_type="Member", sign=None, names=None, title=None):
            if names is None:
                names = self._user_names(r, domain, used)
            if sign is None:
                x = r.random()
                sign = "never" if x < 0.03 else ("stale" if x < 0.11 else "active")
            users.append([names[0], names[1], enabled, user_type, B - r.randint(20, 2400) * DAY - r.randint(0, DAY),
                          list(skus), sign, title])
            return users[-1]

        plan = next((k for k in ("M365-BP", "M365-BS", "M365-BB", "M365-E3") if lic.get(k)), None)
        consumed = {}
        if plan:
            n = lic[plan]
            x = r.random()
            n = max(1, n + (0 if x < 0.5 else r.choice([-2, -1]) if x < 0.75 else r.choice([1, 2, 3])))
            sku = MS_SKUS[plan][1]
            for _ in range(n):
                if r.random() < 0.06:
                    add([sku], enabled=False, sign="gone")          # left, still licensed
                else:
                    add([sku], title=r.choice(JOB_TITLES))
            plan_users = list(users)
            if lic.get("O365-ATP"):
                m = min(len(plan_users), max(0, lic["O365-ATP"] + r.choice([0, 0, -1, 1])))
                for u in plan_users[:m]:
                    u[5].append(MS_SKUS["O365-ATP"][1])
        if lic.get("EXO-P1"):
            for _ in range(max(1, lic["EXO-P1"] + r.choice([0, 0, -1, 1]))):
                add([MS_SKUS["EXO-P1"][1]], title=r.choice(["Warehouse", "Shop Floor", "Driver", "Front Desk"]))
        for _ in range(r.randint(0, 2) if r.random() < 0.15 else 0):
            add([], title="New hire")                                # not licensed yet
        employees = sum(lic.values()) or 1
        for _ in range(int(employees * 0.1) + r.randint(0, 2)):
            add([], enabled=False, sign="gone")                    # former employees, licence removed
        for mailbox in r.sample(SHARED_MAILBOXES, r.randint(1, 4)):
            add([], names=(mailbox[0], "%s@%s" % (mailbox[1], domain)), sign="never" if r.random() < 0.6 else None)
        for _ in range(r.randint(0, 3) if kind == "client" else 0):
            first, last = r.choice(FIRST_NAMES), r.choice(SURNAMES)
            ext = r.choice(["gmail.com", "outlook.com", "cpa-partners.com", "yahoo.com"])
            add([], user_type="Guest", names=("%s %s (Guest)" % (first, last),
                                              "%s.%s_%s#EXT#@%s" % (slug(first), slug(last), ext, t.initial_domain)))
        if r.random() < 0.5:
            for code_, sku, _ in FREE_SKUS:
                share = 0.2 if code_ == "FLOW_FREE" else 0.1
                for u in users:
                    if u[3] == "Member" and u[2] and r.random() < share:
                        u[5].append(sku)
        # Records: users (skus as interned tuples), then SKUs with consumed = holders.
        holders = collections.Counter()
        intern = self.sku_tuples
        for u in users:
            skus = tuple(u[5])
            skus = intern.setdefault(skus, skus)
            holders.update(skus)
            if u[6] in ("never",):
                si, ni = None, None
            else:
                si, ni = self._sign_in(r, u[6])
            S["ms_users"].append(MsUser(self.guid(r), t.id, u[0], u[1], u[2], u[3], u[4], skus, si, ni, u[7]))
        out = []
        paid = [k for k in MS_SKU_ORDER if holders.get(MS_SKUS[k][1]) or lic.get(k)]
        for code_ in paid:
            part, sku = MS_SKUS[code_]
            c = holders.get(sku, 0)
            x = r.random()
            slack = 0 if x < 0.55 else (r.randint(1, 2) if x < 0.85 else r.randint(3, 6))
            p = max(1, c + slack)
            y = r.random()
            status = "Warning" if y < 0.04 else ("Suspended" if y < 0.05 else "Enabled")
            out.append((code_, dict(part=part, sku=sku, total=p, consumed=c, status=status)))
        for code_, sku, total in FREE_SKUS:
            if holders.get(sku):
                out.append((code_, dict(part=code_, sku=sku, total=total, consumed=holders[sku], status="Enabled",
                                        free=True)))
        # MsSku rows are written by _tenant_subscriptions (they carry the subscription ids).
        if kind != "client":
            for code_, s in out:
                self._sku_row(t, s, (self.guid(r),))
        return out

    def _sku_row(self, t, s, sub_ids):
        st = s["status"]
        enabled = s["total"] if st == "Enabled" else 0
        self.sys["ms_skus"].append(MsSku("%s_%s" % (t.id, s["sku"]), t.id, s["sku"], s["part"], enabled,
                                         s["total"] if st == "Suspended" else 0, s["total"] if st == "Warning" else 0,
                                         s["consumed"], st, tuple(sub_ids)))

    def _tenant_subscriptions(self, r, t, skus, source):
        """Splits each paid SKU into commerce subscriptions (monthly / annual
        terms) whose quantities sum to the SKU's prepaid units; returns
        [(code, sub dict)] with the source (pax8 / pc) of each."""
        B = self.B
        subs = []
        for code_, s in skus:
            if s.get("free"):
                self._sku_row(t, s, (self.guid(r),))
                continue
            total = s["total"]
            x = r.random()
            if x < 0.7 or total < 2:
                parts = [("Monthly", total)]
            elif x < 0.9:
                q1 = max(1, int(round(total * r.choice([0.5, 0.7, 0.8]))))
                parts = [("Annual", q1), ("Monthly", total - q1)] if total - q1 > 0 else [("Annual", total)]
            else:
                parts = [("Annual", total)]
            ids = []
            for k, (term, q) in enumerate(parts):
                src = source if source != "mixed" else ("pc" if k == 0 and r.random() < 0.7 else "pax8")
                start = month_start(B - r.randint(30, 1300) * DAY) + r.randint(0, 20) * DAY + r.randint(0, DAY)
                if term == "Annual":
                    while add_months(start, 12) < B:
                        start = add_months(start, 12)      # renewed every year
                    end = add_months(start, 12) - DAY
                else:
                    end = None
                sid = self.guid(r)
                ids.append(sid)
                subs.append((code_, dict(id=sid, term=term, qty=q, start=start, end=end, source=src,
                                         status=s["status"], created=start - r.randint(0, 5) * DAY)))
            self._sku_row(t, s, ids)
        return subs

    def _pax8_company(self, r, t, leader, members, subs, source):
        B = self.B
        S = self.sys
        if source == "pc" and r.random() > 0.15:
            return None              # licences come through Partner Center; no Pax8 account
        gt = self.gt_by_client[leader]
        ident = self.idents[leader]
        core = ident["franchise"] or ident["core"]
        name, _ = rmm_name(r, core, ident["psa_suffix"], ident["domain"])
        if r.random() < 0.35 and gt["psa_name"]:
            name = gt["psa_name"]
        former = gt["role"] == "former"
        created = B - r.randint(200, 2500) * DAY
        st, city, zp = r.choice(US_STATES)
        company = Pax8Company(self.guid(r), name, website_form(r, ident["domain"]) if r.random() < 0.7 else None,
                              str(gt["psa_company_id"]) if gt["psa_company_id"] and r.random() < 0.3 else None,
                              "Inactive" if former else "Active", "%d %s" % (r.randint(10, 9999), r.choice(STREETS)),
                              city, st, zp + "%02d" % r.randint(0, 99),
                              "(%d) 555-%04d" % (r.randint(201, 989), r.randint(0, 9999)), created,
                              B - r.randint(1, 300) * DAY - r.randint(0, DAY), leader)
        mine = [(c, s) for c, s in subs if s["source"] == "pax8"]
        S["pax8_companies"].append(company)
        for m in members:
            self.gt_by_client[m].update(pax8_company_id=company.id, pax8_name=company.name)

        def sub(product, qty, term, status, start, end, vendor_sub=None, created=None):
            commit_end = end if term == "Annual" else None
            if status == "Cancelled" and end is None:
                end = min(B - DAY, start + r.randint(60, 600) * DAY)
            upd = max(start, B - r.randint(1, 200) * DAY) + r.randint(0, DAY)
            S["pax8_subscriptions"].append(Pax8Subscription(
                self.guid(r), company.id, product.id, qty, product.price, product.partner_cost, term, status, start,
                end, created if created is not None else start - r.randint(0, 4) * DAY, upd,
                month_start(start) if r.random() < 0.5 else start - start % DAY, vendor_sub, commit_end))

        for code_, s in mine:
            st_ = "Active" if s["status"] == "Enabled" else "Cancelled"
            sub(self.pax8_product_of[code_], s["qty"], s["term"], "Cancelled" if former else st_, s["start"], s["end"],
                s["id"], s["created"])
        usage = collections.Counter()
        employees = 0
        for m in members:
            usage.update({k: v for k, v in self.gt_by_client[m]["usage"].items()})
            employees += self.gt_by_client[m]["profile"]["employees"]
        endpoints = usage["desktop"] + usage["laptop"] + usage["server"]
        start = month_start(B - r.randint(60, 900) * DAY) + r.randint(0, DAY)
        if endpoints and r.random() < 0.35:
            sub(self.pax8_product_of["S1-COMPLETE"], max(1, self.drift(r, endpoints)), "Monthly",
                "Cancelled" if former else "Active", start, None)
        if r.random() < 0.2:
            k_start = start
            while add_months(k_start, 12) < B and not former:
                k_start = add_months(k_start, 12)      # renewed every year
            sub(self.pax8_product_of["KEEPER-BIZ"], max(1, self.drift(r, employees)), "Annual",
                "Cancelled" if former else "Active", k_start, add_months(k_start, 12) - DAY)
        if usage["desktop"] + usage["laptop"] and r.random() < 0.15:
            sub(self.pax8_product_of["ACRONIS-WS"], max(1, usage["desktop"] + usage["laptop"]), "Monthly",
                "Cancelled" if former else "Active", start, None)
        if r.random() < 0.12:
            # An old subscription replaced long ago.
            code_ = r.choice(["M365-BS", "EXO-P1", "S1-COMPLETE"])
            old = B - r.randint(400, 1200) * DAY
            sub(self.pax8_product_of[code_], r.randint(1, 20), "Monthly", "Cancelled", old,
                old + r.randint(60, 300) * DAY)
        return company

    def _pc_customer(self, r, t, leader, members, subs, source):
        B = self.B
        S = self.sys
        mine = [(c, s) for c, s in subs if s["source"] == "pc"]
        if source == "pax8" or not mine:
            return None
        name = t.name if r.random() < 0.7 else (self.gt_by_client[leader]["psa_name"] or t.name)
        cust = PcCustomer(t.id, t.initial_domain, name, leader)
        S["pc_customers"].append(cust)
        for m in members:
            self.gt_by_client[m].update(pc_customer_id=cust.id, pc_name=cust.company_name)
        order = self.guid(r).replace("-", "")[:20]
        for code_, s in mine:
            product = self.pax8_product_of[code_]
            legacy = s["term"] == "Monthly" and r.random() < 0.08
            if legacy:
                offer_id = LEGACY_OFFERS[code_]
                commit = calendar.timegm((2099, 12, 31, 0, 0, 0))   # legacy: far-future commitment date
                term = "P1M"
            else:
                offer_id = "%s:%s" % (product.vendor_sku, PC_AVAILABILITY[code_])
                term = "P1Y" if s["term"] == "Annual" else "P1M"
                commit = s["end"] if s["end"] else add_months(month_start(B), 1) + (s["start"] % (28 * DAY)) - DAY
            status = "active" if s["status"] == "Enabled" else "suspended"
            S["pc_subscriptions"].append(PcSubscription(
                s["id"], cust.id, offer_id, product.name, product.name if r.random() < 0.6 else MS_SKUS[code_][0],
                s["qty"], "license", s["created"], s["start"], commit, s["start"] + 7 * DAY, status,
                status == "active" and r.random() < 0.9, "annual" if s["term"] == "Annual" and r.random() < 0.5
                else "monthly", term, False, order, code_))
        if r.random() < 0.2:
            created = B - r.randint(100, 1500) * DAY
            S["pc_subscriptions"].append(PcSubscription(
                self.guid(r), cust.id, AZURE_PLAN[0], AZURE_PLAN[1], "Azure plan", 1, "usage", created, created,
                None, None, "active", False, "none", None, False, order, "AZURE"))
        if r.random() < 0.1:
            old = B - r.randint(400, 1500) * DAY
            code_ = r.choice(["M365-BS", "EXO-P1"])
            product = self.pax8_product_of[code_]
            S["pc_subscriptions"].append(PcSubscription(
                self.guid(r), cust.id, "%s:%s" % (product.vendor_sku, PC_AVAILABILITY[code_]), product.name,
                product.name, r.randint(1, 15), "license", old, old, old + 365 * DAY, old + 7 * DAY, "deleted", False,
                "monthly", "P1M", False, order, code_))
        return cust

    # -- HaloPSA (the same MSP had it chosen Halo as its PSA) ---------------------------
    def build_halo(self, owner):
        B = self.B
        S = self.sys
        hr = self.rng("halo")
        cat = {c.id: c for c in self.catalog}
        item_id = {c.id: 780 + k * 7 for k, c in enumerate(self.catalog)}
        toplevels = {}
        hid = 11
        halo_of = {}
        for c in self.companies:
            if c.type == "Vendor":
                continue                       # Halo keeps suppliers apart from clients
            hid += 1 if hr.random() < 0.9 else hr.randint(2, 3)
            ci = self.client_of_company.get(c.id)
            gt = self.gt_by_client.get(ci) if ci is not None else None
            if c.type == "Owner":
                top = (2, "Internal")
            elif c.type == "Prospect":
                top = (3, "Prospects")
            elif gt and gt["franchise"]:
                top = toplevels.setdefault(gt["franchise"], (4 + len(toplevels), gt["franchise"]))
            else:
                top = (1, "Managed Clients")
            r = self.rng("client", ci, "halo") if ci is not None else hr
            ninja = gt["ninja_org_id"] if gt and gt["ninja_org_id"] and r.random() < 0.5 else None
            pax8 = gt["pax8_company_id"] if gt and gt["pax8_company_id"] and r.random() < 0.5 else None
            S["halo_clients"].append(HaloClient(hid, c.name, c.status == "Inactive" or bool(c.deleted), top[0], top[1],
                                                c.website, c.date_entered, 100 + hid, ninja, pax8, c.id))
            halo_of[c.id] = hid
            if gt:
                gt["halo_client_id"] = hid
        for nc in self.gt_non_clients:
            if nc["psa_company_id"] in halo_of:
                nc["halo_client_id"] = halo_of[nc["psa_company_id"]]
        by_agreement = collections.defaultdict(list)
        for x in self.additions:
            by_agreement[x.agreement_id].append(x)
        contract_id = 0
        invoice_id = -100
        line_id = 5500
        for a in self.agreements:
            contract_id += 1 if hr.random() < 0.85 else hr.randint(2, 4)
            start = int(parse_iso(a.start))
            end = int(parse_iso(a.end)) if a.end else None
            status = {"Active": "Active", "Expired": "Expired", "Cancelled": "Cancelled"}.get(a.status, a.status)
            lines = sorted(by_agreement.get(a.id, []), key=lambda x: (x.sequence, x.id))
            charge = money(sum(float(x.quantity) * (x.unit_price or 0.0) for x in lines
                               if not x.cancelled and x.bill_customer == "Billable"))
            S["halo_contracts"].append(HaloContract(contract_id, halo_of[a.company_id], a.name, start, end,
                                                    HALO_PERIOD_OF_CYCLE[a.billing_cycle_id], status, charge, a.id))
            if not lines:
                continue
            invoice_id -= 1 if hr.random() < 0.8 else hr.randint(2, 5)
            months = {1: 1, 2: 3, 3: 12, 4: 6}[a.billing_cycle_id]
            nxt = start
            while nxt <= B:
                nxt = add_months(nxt, months)
            last_created = add_months(nxt, -months) - 3600   # the eve of the period, 23:00
            lm = max([a.last_updated] + [x.last_updated for x in lines])
            S["halo_invoices"].append(HaloInvoice(invoice_id, halo_of[a.company_id], contract_id, a.name,
                                                  HALO_PERIOD_OF_CYCLE[a.billing_cycle_id], start, end,
                                                  a.status != "Active", last_created if last_created > start else None,
                                                  nxt - 3600, lm, a.id))
            for x in lines:
                line_id += 1 if hr.random() < 0.9 else hr.randint(2, 6)
                item = cat[x.product_id]
                eff = int(parse_iso(x.effective))
                cancelled = int(parse_iso(x.cancelled)) if x.cancelled else None
                price = 0.0 if x.unit_price is None or x.bill_customer != "Billable" else x.unit_price
                termed = cancelled is not None or abs(eff - start) > DAY
                S["halo_lines"].append(HaloLine(
                    line_id, invoice_id, item_id[item.id], item.identifier, item.description, x.description,
                    float(x.quantity), price, x.unit_cost or 0.0, cancelled is not None and cancelled < B,
                    eff if termed else None, cancelled, x.sequence, contract_id, x.id))

    # -- Autotask (the same MSP had it chosen Autotask) --------------------------------------
    def build_autotask(self, owner):
        B = self.B
        S = self.sys
        ar = self.rng("autotask")
        at_of = {}
        cid = 29682800
        for c in self.companies:
            ci = self.client_of_company.get(c.id)
            gt = self.gt_by_client.get(ci) if ci is not None else None
            if c.type == "Owner":
                aid = 0                        # Autotask's own company is always id 0
            else:
                cid += 1 if ar.random() < 0.85 else ar.randint(2, 9)
                aid = cid
            if c.type == "Vendor":
                ctype = 7
            elif c.type == "Prospect":
                ctype = 3
            elif c.deleted:
                ctype = 4
            elif gt and gt["role"] == "former":
                ctype = 6
            else:
                ctype = 1
            last_mod = c.last_updated
            S["at_companies"].append(AtCompany(
                aid, c.name, c.identifier, ctype, c.status == "Active" and not c.deleted, c.website, c.phone, c.address,
                c.city, c.state, c.zip, c.date_entered, max(last_mod, B - ar.randint(1, 90) * DAY) if ctype == 1
                else last_mod, last_mod, c.id))
            at_of[c.id] = aid
            if gt:
                gt["autotask_company_id"] = aid
        for nc in self.gt_non_clients:
            if nc["psa_company_id"] in at_of:
                nc["autotask_company_id"] = at_of[nc["psa_company_id"]]
        self.at_company_of = at_of
        service_of = {}
        sid = 28
        for item in self.catalog:
            sid += ar.randint(1, 4)
            S["at_services"].append(AtService(sid, item.description, item.description + " (" + item.identifier + ")",
                                              item.price, item.cost, AT_PERIOD_OF_CYCLE[item.bill_cycle_id],
                                              not item.inactive, item.last_updated, item.identifier))
            service_of[item.id] = (sid, item)
        by_agreement = collections.defaultdict(list)
        for x in self.additions:
            by_agreement[x.agreement_id].append(x)
        contract = 29684000
        cs_id = 100
        open_end = calendar.timegm((time.gmtime(B).tm_year + 2, 12, 31, 0, 0, 0))
        for a in self.agreements:
            contract += ar.randint(1, 12)
            start = int(parse_iso(a.start))
            end = int(parse_iso(a.end)) if a.end else (
                int(parse_iso(a.date_cancelled)) - DAY if a.date_cancelled else open_end)
            S["at_contracts"].append(AtContract(
                contract, at_of[a.company_id], a.name, "C%06d" % (contract % 1000000),
                AT_PERIOD_OF_CYCLE[a.billing_cycle_id], 1 if a.status == "Active" else 0, start, end,
                0.0, a.type_id == 1 and a.status == "Active", a.date_entered, a.last_updated, a.id))
            for x in sorted(by_agreement.get(a.id, []), key=lambda x: (x.sequence, x.id)):
                cs_id += 1 if ar.random() < 0.9 else ar.randint(2, 5)
                svc, item = service_of[x.product_id]
                cancelled = int(parse_iso(x.cancelled)) if x.cancelled else None
                units = int(math.ceil(float(x.quantity)))     # whole units; a cancelled line drops to 0
                price = item.price if x.unit_price is None else x.unit_price
                S["at_contract_services"].append(AtContractService(
                    cs_id, contract, svc, price, x.unit_cost or 0.0, x.description,
                    "" if ar.random() < 0.8 else "migrated from %s" % item.identifier, units, int(parse_iso(x.effective)),
                    cancelled, x.id))

    # -- PSA contacts: their e-mail domains are client-matching evidence ---------------
    def build_contacts(self, msp_domain):
        """One to three contacts per PSA company (the owner: three; vendors and
        prospects: up to two; a deleted duplicate: none), each company from its
        own stream "<seed>/contacts/<company id>". Addresses are mostly at the
        client's own domain (the one its Microsoft tenant carries; now and then
        its second domain, or in upper case); others are personal free-mail
        addresses, malformed ("n/a", no domain) or absent; about one contact in
        eight is inactive, some of those at a former domain. A client without a
        website usually has its first contact at its own domain, so contacts are
        its only domain evidence. Ground truth: contact_domains of each client
        and non-client, the domains of its active contacts' well-formed,
        non-free-mail addresses (sorted)."""
        B = self.B
        S = self.sys
        halo_of = {h.cw_company_id: h.id for h in S["halo_clients"]}
        at_of = getattr(self, "at_company_of", {})
        nc_of = {nc["psa_company_id"]: nc for nc in self.gt_non_clients}
        rows = []
        for c in self.companies:
            r = self.rng("contacts", c.id)
            ci = self.client_of_company.get(c.id)
            gt = self.gt_by_client.get(ci) if ci is not None else None
            if c.deleted:
                own, n = [], 0
            elif gt is not None:
                own, n = list(gt["domains"]), r.randint(1, 3)
            elif c.type == "Owner":
                own, n = [msp_domain], 3
            else:
                web = (c.website or "").lower().split("://")[-1].split("/")[0]
                own, n = ([web[4:] if web.startswith("www.") else web] if web else []), r.randint(0, 2)
            truth = set()
            used = set()
            for k in range(n):
                if k == 0:
                    first, _, last = c.contact_name.partition(" ")
                else:
                    first, last = r.choice(FIRST_NAMES), r.choice(SURNAMES)
                sf, sl = _SLUGS.get(first) or slug(first), _SLUGS.get(last) or slug(last)
                local = sf + "." + sl if r.random() < 0.6 else sf[0] + sl
                if local in used:
                    local += str(k + 1)
                used.add(local)
                inactive = k > 0 and r.random() < 0.12
                emails = []
                roll = r.random()
                if own and (roll < 0.72 or (k == 0 and not c.website and roll < 0.95)):
                    domain = own[1] if len(own) > 1 and r.random() < 0.3 else own[0]
                    if inactive and r.random() < 0.5:
                        domain = "former-" + domain
                    emails.append("%s@%s" % (local, domain.upper() if r.random() < 0.06 else domain))
                    if not inactive:
                        truth.add(domain)
                elif roll < 0.86:
                    emails.append("%s%d@%s" % (local, r.randint(1, 99), r.choice(FREE_MAIL)))
                elif roll < 0.93:
                    emails.append(r.choice(["n/a", local, local + "@", "%s@%s" % (local, (own or ["mail"])[0]
                                                                                   .split(".")[0])]))
                if r.random() < 0.25:
                    emails.append("%s.%s%d@%s" % (sf, sl, r.randint(1, 99), r.choice(FREE_MAIL)))
                entered = max(c.date_entered, B - r.randint(30, 2500) * DAY) + r.randint(0, DAY)
                updated = min(B - DAY - r.randint(0, 3600), entered + r.randint(0, max(1, B - DAY - entered)))
                phone = "(%s) 555-%04d" % (r.randint(201, 989), r.randint(0, 9999)) if r.random() < 0.8 else None
                rows.append([c.contact_id + k, c.id, first, last, r.choice(JOB_TITLES) if r.random() < 0.7 else None,
                             tuple(emails), phone, inactive, entered, updated, c.id in halo_of, at_of.get(c.id)])
            if gt is not None:
                gt["contact_domains"] = sorted(truth)
            elif c.id in nc_of:
                nc_of[c.id]["contact_domains"] = sorted(truth)
        for gt in self.gt_clients:
            gt.setdefault("contact_domains", [])
        # Halo user ids and Autotask contact ids in the order of the ConnectWise ids.
        ir = self.rng("contacts", "ids")
        halo_user, at_contact = 7, 30683000
        for row in rows:
            if row[10]:
                halo_user += 1 if ir.random() < 0.9 else 2
                row[10] = halo_user
            else:
                row[10] = None
            if row[11] is not None:
                at_contact += 1
                row[11] = at_contact
            S["contacts"].append(Contact._make(row))

    # -- Datto RMM ---------------------------------------------------------------------
    def build_datto(self, devices, msp_name):
        B = self.B
        S = self.sys
        dr = self.rng("datto")
        self._datto_client = {}
        by_org = collections.defaultdict(list)
        for d in devices:
            by_org[d.org_id].append(d)
        raw = []      # device field lists without id
        site_id = 8800
        deleted_site = None
        plan = []
        for c in self.gt_clients:
            if not c["ninja_org_id"]:
                continue
            r = self.rng("client", c["client"], "datto")
            x = r.random()
            if x < 0.25:
                plan.append((c, r, "migrating"))
            elif x < 0.35:
                plan.append((c, r, "primary"))
        internal = next((o for o in self.gt_internal_orgs if o["role"] == "internal"), None)
        sites = []
        for c, r, mode in plan:
            site_id += 1 if r.random() < 0.9 else r.randint(2, 4)
            ident = self.idents[c["client"]]
            name = c["ninja_name"] if r.random() < 0.5 else rmm_name(r, ident["core"], ident["psa_suffix"],
                                                                      ident["domain"])[0]
            at = c["autotask_company_id"] if c["autotask_company_id"] and r.random() < 0.4 else None
            site = DattoSite(site_id, self.guid(r), name, "" if r.random() < 0.7 else "Managed since %s" % iso_date(
                B - r.randint(300, 2000) * DAY)[:4], "", False, at, c["psa_name"] if at else None, c["client"])
            sites.append(site)
            c.update(datto_site_id=site.id, datto_site_uid=site.uid, datto_name=site.name, datto_mode=mode)
            self._datto_devices(r, site, by_org[c["ninja_org_id"]], mode, raw, c["client"])
        if internal:
            r = self.rng("datto", "internal")
            site_id += 1
            site = DattoSite(site_id, self.guid(r), internal["name"], "MSP internal", "", False, None, None, -1)
            sites.append(site)
            self._datto_devices(r, site, by_org[internal["ninja_org_id"]], "migrating", raw, None)
        if sites:
            site_id += 1
            deleted_site = DattoSite(site_id, self.guid(dr), "Deleted Devices", "", "", False, None, None, -2)
            sites.append(deleted_site)
            for d in raw:
                if d[10]:            # deleted
                    d[2] = deleted_site.id
        S["datto_sites"].extend(sites)
        raw.sort(key=lambda d: (d[14], d[2], d[3] or ""))
        did = 552000
        for d in raw:
            did += 1 if dr.random() < 0.9 else dr.randint(2, 6)
            d[0] = did
            S["datto_devices"].append(DattoDevice._make(d))
        self.datto_cross = [{"serial": dev.serial, "hostname": dev.hostname, "ninja_device_id": dev.ninja_device_id,
                             "datto_device_id": dev.id, "datto_device_uid": dev.uid,
                             "client": self._datto_client.get(dev.uid)}
                            for dev in S["datto_devices"] if dev.ninja_device_id is not None and not dev.deleted]

    def _datto_devices(self, r, site, ndevs, mode, raw, client):
        B = self.B
        for nd in ndevs:
            if nd.approval != "APPROVED" or nd.node_class in ("ANDROID", "APPLE_IOS", "MAC_SERVER"):
                continue
            nms = nd.node_class.startswith("NMS_")
            if nms and r.random() > 0.4:
                continue
            if r.random() > (0.7 if mode == "migrating" else 0.95):
                continue
            if mode == "migrating":
                online = r.random() < 0.3
                created = nd.created_ms - r.randint(30, 700) * DAY * 1000
            else:
                online = not nd.offline and r.random() < 0.95
                created = nd.created_ms + r.randint(-200, 30) * DAY * 1000
            if nd.last_contact_ms < (B - 40 * DAY) * 1000:
                online = False
            seen = (B * 1000 - r.randint(5, 3000) * 1000) if online else \
                min(nd.last_contact_ms, (B - r.randint(2, 90) * DAY) * 1000) - r.randint(0, 999)
            created = min(created, seen - DAY * 1000)
            self._datto_raw(r, raw, site, nd.node_class, nd.chassis, nd.system_name or nd.display_name, nd.os_name,
                            nd.manufacturer, nd.model, nd.serial, online, seen, created, nd.last_user, nd.id, client)
        if mode == "primary":
            for k in range(r.randint(0, 3)):
                hw = r.choice(LAPTOP_HW)
                seen = B * 1000 - r.randint(5, 20000) * 1000
                self._datto_raw(r, raw, site, "WINDOWS_WORKSTATION", "LAPTOP", "LAPTOP-" + code(r, 7),
                                r.choice(WIN_WS_OS)[0], hw[0], hw[1], self.serial(r, hw[2]), True, seen,
                                seen - r.randint(3, 60) * DAY * 1000, None, None, client)

    def _datto_raw(self, r, raw, site, node_class, chassis, hostname, os_name, manufacturer, model, serial, online,
                   seen_ms, created_ms, last_user, ninja_id, client):
        B = self.B
        category, dtype, dclass = DATTO_TYPES.get(node_class, ("Desktop", "Desktop", "device"))
        if node_class in ("WINDOWS_WORKSTATION", "MAC") and chassis == "LAPTOP":
            category = dtype = "Laptop"
        if node_class.startswith("NMS_"):
            hostname = hostname
            os_ = None
        else:
            os_ = datto_os(os_name)
            if node_class.startswith("WINDOWS") and hostname:
                hostname = hostname.upper()[:15]
        deleted = r.random() < 0.03
        suspended = not deleted and r.random() < 0.01
        uid = self.guid(r)
        reboot = None if dclass != "device" else seen_ms - r.randint(1, 30) * DAY * 1000
        audit = None if dclass == "rmmnetworkdevice" else seen_ms - r.randint(0, 3) * DAY * 1000
        self._datto_client[uid] = client
        raw.append([0, uid, site.id, hostname, category, dtype, dclass, os_, online, suspended, deleted, seen_ms,
                    reboot, audit, created_ms, "192.168.%d.%d" % (site.id % 250, r.randint(2, 254)),
                    "198.51.100.%d" % (site.id % 250 + 1), last_user if dclass == "device" else None,
                    "WORKGROUP" if r.random() < 0.3 else None, "", True, manufacturer, model, serial, ninja_id])

    # -- assemble --------------------------------------------------------------
    def run(self):
        self.build_catalog()
        self.plan_clients()
        B = self.B
        g = self.rng("global")
        msp_name, msp_domain = g.choice(MSP_NAMES)
        # The MSP's own company and vendors come first in the PSA (created when it was set up).
        owner = self.add_company(g, msp_name, "Owner", "Active", "www." + msp_domain, entered=B - 3500 * DAY)
        self.gt_non_clients.append({"psa_company_id": owner.id, "name": owner.name, "role": "owner"})
        for vname, vdomain in g.sample(NON_CLIENT_VENDORS, 3 if self.n_clients < 50 else len(NON_CLIENT_VENDORS)):
            v = self.add_company(g, vname, "Vendor", "Active", "www." + vdomain, entered=B - g.randint(2000, 3400) * DAY)
            self.gt_non_clients.append({"psa_company_id": v.id, "name": v.name, "role": "vendor"})

        org_entries = []   # (onboard_key, Organization without id, raw devices, client index or None, locations)
        n_prospects = max(1 if self.n_clients >= 8 else 0, round(self.n_clients * 0.02))
        prospect_at = set(g.sample(range(self.n_clients), min(n_prospects, self.n_clients)))
        n_deleted_dups = max(1 if self.n_clients >= 10 else 0, round(self.n_clients * 0.005))
        deleted_dup_at = set(g.sample(range(self.n_clients), min(n_deleted_dups, self.n_clients)))
        for i in range(self.n_clients):
            ident = self.client_identity(i)
            self.idents.append(ident)
            r = ident["rng"]
            role = self.roles[i]
            ind = ident["ind"]
            profile = self.client_profile(r, ind)
            profile["licences"] = self.licences_for(r, profile)
            gt = {"client": i, "canonical": ident["core"], "industry": ind[0], "role": role,
                  "franchise": ident["franchise"], "psa_company_id": None, "psa_name": None,
                  "ninja_org_id": None, "ninja_name": None, "name_variant": ident["variant"],
                  "domains": [ident["domain"]], "profile": profile, "usage": None}
            if r.random() < 0.1:
                gt["domains"].append(slug(ident["core"])[:20] + r.choice([".net", ".org", ".co"]))
            # NinjaOne side first: the PSA quantities drift from what is really there.
            usage = collections.Counter()
            if role != "psa_only":
                nr = self.rng("client", i, "ninja")
                created = B - nr.randint(60, 1800) * DAY
                org = self.org_for_client(nr, ident["rmm_name"], ident["domain"], created)
                n_loc = 1 if profile["tier"] in ("micro", "small") else nr.randint(1, 3)
                locs = [("Main Office", "%d %s" % (nr.randint(10, 9999), nr.choice(STREETS)))]
                for li in range(1, n_loc):
                    locs.append(("Branch - %s" % nr.choice(PLACES), "%d %s" % (nr.randint(10, 9999), nr.choice(STREETS))))
                if profile["laptops"] > 10 and nr.random() < 0.4:
                    locs.append(("Remote Workers", ""))
                prefix = initials(ident["core"])
                devs, usage = self.devices_for_org(nr, None, profile, prefix, org.ad_domain, role == "former",
                                                   list(range(len(locs))))
                org_entries.append([created, org, devs, i, locs])
                gt["ninja_name"] = org.name
            usage_out = {k: usage.get(k, 0) for k in ("desktop", "laptop", "server", "other", "mac", "network",
                                                      "online", "offline", "inactive", "pending", "duplicates")}
            gt["usage"] = usage_out
            usage_for_psa = dict(usage_out)
            if role == "psa_only":
                usage_for_psa.update(desktop=profile["desktops"], laptop=profile["laptops"], mac=profile["macs"],
                                     server=profile["servers_physical"] + profile["vm_guests"] + profile["vm_hosts"])
            usage_for_psa["licences"] = profile["licences"]
            if role != "rmm_only":
                pr = self.rng("client", i, "company")
                status = "Inactive" if role == "former" else "Active"
                company = self.add_company(pr, ident["psa_name"], "Client", status,
                                           website_form(pr, ident["domain"]) if pr.random() < 0.85 else None)
                gt["psa_company_id"] = company.id
                gt["psa_name"] = company.name
                self.psa_for_client(i, ident, profile, usage_for_psa, company)
                if i in deleted_dup_at:
                    dup = self.add_company(pr, ident["psa_name"] + " (old)", "Client", "Inactive", None, deleted=True)
                    self.gt_non_clients.append({"psa_company_id": dup.id, "name": dup.name,
                                                "role": "deleted_duplicate", "duplicate_of_client": i})
            if i in prospect_at:
                pr = self.rng("client", i, "prospect")
                for _ in range(50):
                    core, ind2 = make_core_name(pr)
                    if core not in self.used_cores:
                        break
                self.used_cores.add(core)
                p = self.add_company(pr, psa_name(pr, core, ind2)[0], "Prospect", "Active",
                                     website_form(pr, make_domain(pr, core, ind2[0])) if pr.random() < 0.5 else None)
                self.gt_non_clients.append({"psa_company_id": p.id, "name": p.name, "role": "prospect"})
            self.gt_clients.append(gt)

        # MSP-internal NinjaOne organizations (no billable PSA client).
        ir = self.rng("internal")
        internal_profile = dict(tier="small", employees=8, desktops=2, laptops=ir.randint(4, 9), macs=1,
                                linux_workstations=0, servers_physical=1, vm_hosts=0, vm_guests=0, linux_servers=1,
                                android=1, network_devices=2, hypervisor="VMWARE", pending_extra=1)
        internal_name = msp_name.split()[0] + " IT - Internal"
        iorg = self.org_for_client(ir, internal_name, msp_domain, B - 2000 * DAY)
        devs, _ = self.devices_for_org(ir, None, internal_profile, "MSP", iorg.ad_domain, False, [0])
        org_entries.append([B - 2000 * DAY, iorg, devs, "internal", [("Head Office", "1 Harbor Blvd")]])
        if self.n_clients >= 8:
            lab_profile = dict(internal_profile, laptops=0, desktops=2, macs=0, android=0, network_devices=0,
                               servers_physical=0, linux_servers=0, vm_hosts=1, vm_guests=3, pending_extra=0)
            lorg = self.org_for_client(ir, "Lab / Staging", msp_domain, B - 400 * DAY)
            devs, _ = self.devices_for_org(ir, None, lab_profile, "LAB", None, False, [0])
            org_entries.append([B - 400 * DAY, lorg, devs, "lab", [("Bench", "")]])

        # Number organizations in onboarding order (not the PSA's order).
        org_entries.sort(key=lambda e: (e[0], e[1].name))
        oid = 0
        loc_id = 0
        org_id_of_client = {}
        for entry in org_entries:
            created, org, devs, owner_key, locs = entry
            oid += 1 if g.random() < 0.9 else g.randint(2, 3)
            self.orgs.append(org._replace(id=oid))
            loc_ids = []
            for lname, addr in locs:
                loc_id += 1
                loc_ids.append(loc_id)
                self.locations.append(Location(loc_id, oid, lname, addr))
            for d in devs:
                d[1] = oid
                d[2] = loc_ids[d[2]] if d[2] is not None and d[2] < len(loc_ids) else loc_ids[0]
            self.raw_devices.extend(devs)
            if isinstance(owner_key, int):
                org_id_of_client[owner_key] = oid
            else:
                self.gt_internal_orgs.append({"ninja_org_id": oid, "name": org.name, "role": owner_key,
                                              "psa_company_id": owner.id if owner_key == "internal" else None})
        for gt in self.gt_clients:
            gt["ninja_org_id"] = org_id_of_client.get(gt["client"])

        # Device ids follow enrollment time across all organizations.
        self.raw_devices.sort(key=lambda d: (d[8], d[1], d[6] or ""))
        devices = []
        did = 100
        for d in self.raw_devices:
            did += 1 if g.random() < 0.92 else g.randint(2, 5)
            d[0] = did
            devices.append(Device._make(d))
        self.raw_devices = None
        # Serial numbers seen more than once (for duplicate-seat tests).
        seen = collections.defaultdict(list)
        for d in devices:
            if d.serial:
                seen[d.serial].append(d.id)
        dup_serials = [{"serial": s, "device_ids": ids} for s, ids in seen.items() if len(ids) > 1]
        meta = {"seed": self.seed, "clients": self.n_clients, "base_epoch": B, "base_time": iso_z(B),
                "avg_devices": self.avg_devices, "generator": "msp_generator.py", "format_version": FORMAT_VERSION}
        tables = {"catalog": self.catalog, "companies": self.companies, "agreements": self.agreements,
                  "additions": self.additions, "organizations": self.orgs, "locations": self.locations,
                  "devices": devices}
        tables.update(self.build_systems(devices, owner, msp_name, msp_domain))
        ground_truth = {
            "notes": "clients[i] links a PSA company to a NinjaOne organization (null where the client is absent "
                     "from one system). usage counts approved devices that are not long inactive, by class "
                     "(desktop/laptop/server/other); duplicates are extra enrollments of one machine.",
            "clients": self.gt_clients,
            "non_clients": self.gt_non_clients,
            "internal_orgs": self.gt_internal_orgs,
            "duplicate_serials": dup_serials,
            "notes_systems": "clients[i] also names the client's HaloPSA client and Autotask company (the same "
                             "agreements and lines as ConnectWise, as if the MSP used that PSA), Microsoft tenant "
                             "(shared by franchise branches), Pax8 company, Partner Center customer and Datto RMM "
                             "site; null where absent. cross_rmm_duplicates: devices in both NinjaOne and Datto.",
            "partner_tenant_id": self.partner_tenant_id,
            "cross_rmm_duplicates": self.datto_cross,
        }
        return Dataset(meta, tables, ground_truth)


def generate(seed=1, clients=10, base_epoch=DEFAULT_BASE_EPOCH, avg_devices=40):
    """Builds a Dataset. Same arguments, same data."""
    if clients < 1:
        raise ValueError("clients must be at least 1")
    if isinstance(base_epoch, str):
        base_epoch = parse_iso(base_epoch)
    return _Gen(seed, int(clients), base_epoch, float(avg_devices)).run()


def summary(ds):
    c = ds.counts()
    gt = ds.ground_truth
    roles = collections.Counter(x["role"] for x in gt["clients"])
    variants = collections.Counter(x["name_variant"] for x in gt["clients"])
    nodes = collections.Counter(d.node_class for d in ds.devices)
    lines = ["seed %s, %d clients, base %s" % (ds.meta["seed"], ds.meta["clients"], ds.meta["base_time"]),
             "tables: " + ", ".join("%s %d" % kv for kv in c.items()),
             "client roles: " + ", ".join("%s %d" % kv for kv in sorted(roles.items())),
             "name variants: " + ", ".join("%s %d" % kv for kv in sorted(variants.items())),
             "node classes: " + ", ".join("%s %d" % kv for kv in sorted(nodes.items())),
             "pending %d, offline %d, duplicate serials %d" % (
                 sum(1 for d in ds.devices if d.approval == "PENDING"), sum(1 for d in ds.devices if d.offline),
                 len(gt["duplicate_serials"])),
             "Microsoft tenants %d (licences via %s), devices in both RMMs %d" % (
                 len(ds.ms_tenants), ", ".join("%s %d" % kv for kv in sorted(collections.Counter(
                     c["ms_source"] for c in gt["clients"] if c.get("ms_source")).items())),
                 len(gt.get("cross_rmm_duplicates", [])))]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--avg-devices", type=float, default=40, help="average devices per client (default 40)")
    ap.add_argument("--base-epoch", default=None,
                    help="fixed 'now' of the data, ISO 8601 or epoch seconds (default 2026-11-01T00:00:00Z)")
    ap.add_argument("--out", help="write the dataset as JSON to this file")
    ap.add_argument("--pretty", action="store_true", help="indent the JSON (small datasets)")
    ap.add_argument("--summary", action="store_true", help="print counts")
    a = ap.parse_args(argv)
    base = DEFAULT_BASE_EPOCH
    if a.base_epoch:
        base = float(a.base_epoch) if a.base_epoch.replace(".", "").isdigit() else parse_iso(a.base_epoch)
    t0 = time.time()
    ds = generate(a.seed, a.clients, base, a.avg_devices)
    t1 = time.time()
    if a.out:
        ds.save(a.out, pretty=a.pretty)
    if a.summary or not a.out:
        print(summary(ds))
        print("generated in %.2f s%s" % (t1 - t0, (", written in %.2f s" % (time.time() - t1)) if a.out else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
