#!/usr/bin/env python3
"""Prints the SQL that adds the demo's integrations against the running mocks.

Usage: demo_integrations.py PORTS_JSON SEED CLIENTS BASE_EPOCH

The mocks' default credentials are fixed; the partner tenant id comes from
the generated MSP (the same seed, size and base epoch the mocks were started
with). Microsoft 365 gets no customer_tenants: its tenants come from the
Partner Center customers, the way an MSP with a CSP relationship runs it.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "mock_api"))
import framework  # noqa: E402
import msp_generator  # noqa: E402


def lit(value):
    return "'" + str(value).replace("'", "''") + "'"


def main():
    ports_file, seed, clients, base_epoch = sys.argv[1:5]
    ports = json.load(open(ports_file))
    ds = msp_generator.generate(int(seed), int(clients), framework.parse_time(base_epoch))
    partner = ds.ground_truth["partner_tenant_id"]

    def url(vendor, path=""):
        return "http://127.0.0.1:%d%s" % (ports[vendor], path)

    integrations = [
        # name, kind, base_url, credentials, options, default PSA
        ("connectwise", "connectwise", url("connectwise", "/v4_6_release/apis/3.0"),
         {"company_id": "billrecon", "public_key": "pubkey", "private_key": "privkey",
          "client_id": "00000000-0000-4000-8000-000000000001"}, {}, True),
        ("ninjaone", "ninjaone", url("ninjaone"),
         {"client_id": "billrecon-ninja-client", "client_secret": "billrecon-ninja-secret"}, {}, False),
        ("dattormm", "dattormm", url("dattormm"),
         {"api_key": "billrecon-datto-key", "api_secret": "billrecon-datto-secret"},
         {"token_url": url("dattormm", "/auth/oauth/token"), "requests_per_second": 100}, False),
        ("partnercenter", "partnercenter", url("partnercenter"),
         {"tenant_id": partner, "client_id": "billrecon-pc-app", "client_secret": "billrecon-pc-secret"},
         {"token_url": url("partnercenter", "/{tenant}/oauth2/v2.0/token")}, False),
        ("m365", "msgraph", url("msgraph"),
         {"tenant_id": partner, "client_id": "billrecon-graph-app", "client_secret": "billrecon-graph-secret"},
         {"token_url": url("msgraph", "/{tenant}/oauth2/v2.0/token")}, False),
        ("pax8", "pax8", url("pax8"),
         {"client_id": "billrecon-pax8-client", "client_secret": "billrecon-pax8-secret"},
         {"token_url": url("pax8", "/v1/token")}, False),
    ]
    for name, kind, base, creds, options, psa in integrations:
        print("SELECT billrecon.add_integration(%s, %s, %s, %s::jsonb, %s::jsonb, %s) AS %s;"
              % (lit(name), lit(kind), lit(base), lit(json.dumps(creds)), lit(json.dumps(options)),
                 "true" if psa else "false", name.replace("-", "_") + "_id"))


if __name__ == "__main__":
    main()
