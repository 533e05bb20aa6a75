#!/usr/bin/env python3
"""Starts loopback mock servers for vendor APIs, one port per vendor.

    python3 test/mock_api/server.py --seed 7 --clients 12 --port-file /tmp/ports.json
    python3 test/mock_api/server.py --data msp.json --vendors connectwise --ports connectwise=18001
    python3 test/mock_api/server.py --seed 7 --vendors all --port-file /tmp/ports.json
    python3 test/mock_api/server.py --seed 7 --config connectwise.private_key=s3cret \
        --faults '{"ninjaone": [{"match": "/devices", "kind": "rate_limit", "retry_after": 1, "times": 2}]}'

Runs until SIGTERM or SIGINT. With --port-file, writes
{"connectwise": port, "ninjaone": port, ...} once every server listens
(atomically, so a reader never sees a partial file) and removes it on exit.
See README.md in this directory for the endpoints and the /_mock/ control API.
"""

import argparse
import importlib
import json
import os
import signal
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import framework  # noqa: E402
import msp_generator  # noqa: E402

# vendor name -> (module, class). A new vendor mock = one module + one line here.
VENDORS = {
    "connectwise": ("connectwise", "ConnectWiseApp"),
    "ninjaone": ("ninjaone", "NinjaOneApp"),
    "halopsa": ("halopsa", "HaloPSAApp"),
    "autotask": ("autotask", "AutotaskApp"),
    "pax8": ("pax8", "Pax8App"),
    "msgraph": ("msgraph", "MsGraphApp"),
    "partnercenter": ("partnercenter", "PartnerCenterApp"),
    "dattormm": ("dattormm", "DattoRMMApp"),
}
# Started when --vendors is not given (what the existing tests expect); "all" starts every one.
DEFAULT_VENDORS = ("connectwise", "ninjaone")


def make_app(vendor, dataset, config=None, faults=None, verbose=False):
    if vendor not in VENDORS:
        raise ValueError("unknown vendor %r (known: %s)" % (vendor, ", ".join(sorted(VENDORS))))
    module, cls = VENDORS[vendor]
    return getattr(importlib.import_module(module), cls)(dataset, config=config, faults=faults, verbose=verbose)


def load_dataset(args):
    if args.data:
        return msp_generator.Dataset.load(args.data)
    base = msp_generator.DEFAULT_BASE_EPOCH
    if args.base_epoch:
        base = framework.parse_time(args.base_epoch)
    return msp_generator.generate(args.seed if args.seed is not None else 1, args.clients, base, args.avg_devices)


def parse_kv_list(items, what):
    out = {}
    for item in items or []:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise SystemExit("%s: expected key=value, got %r" % (what, part))
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def parse_faults(text):
    if not text:
        return {}
    if text.startswith("@"):
        with open(text[1:], "r", encoding="utf-8") as f:
            text = f.read()
    obj = json.loads(text)
    if not isinstance(obj, dict):
        raise SystemExit("--faults: expected {\"vendor\": [fault, ...], ...}")
    return obj


def write_port_file(path, ports):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(ports, f)
        f.write("\n")
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="billrecon loopback mock servers for vendor APIs")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--data", help="dataset JSON written by msp_generator.py --out")
    src.add_argument("--seed", type=int, help="generate the dataset from this seed (default 1)")
    ap.add_argument("--clients", type=int, default=10, help="clients to generate with --seed (default 10)")
    ap.add_argument("--avg-devices", type=float, default=40, help="average devices per client (default 40)")
    ap.add_argument("--base-epoch", help="fixed 'now' of generated data (ISO 8601 or epoch; default 2026-11-01)")
    ap.add_argument("--vendors", default=",".join(DEFAULT_VENDORS),
                    help="comma list of %s, or all (default: %%(default)s)" % ", ".join(VENDORS))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--ports", action="append", help="vendor=port,... (default: OS-assigned)")
    ap.add_argument("--port-file", help="write {vendor: port} JSON here once listening")
    ap.add_argument("--config", action="append",
                    help="vendor.key=value, e.g. connectwise.private_key=x or ninjaone.token_ttl_s=5 (repeatable)")
    ap.add_argument("--faults", help='startup faults: JSON {"vendor": [fault, ...]} or @file')
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = ap.parse_args(argv)

    vendors = [v.strip() for v in args.vendors.split(",") if v.strip()]
    if vendors == ["all"]:
        vendors = list(VENDORS)
    for v in vendors:
        if v not in VENDORS:
            ap.error("unknown vendor %r (known: %s)" % (v, ", ".join(sorted(VENDORS))))
    ports = {k: int(v) for k, v in parse_kv_list(args.ports, "--ports").items()}
    configs = {}
    for k, v in parse_kv_list(args.config, "--config").items():
        vendor, _, key = k.partition(".")
        if not key:
            ap.error("--config wants vendor.key=value, got %r" % k)
        configs.setdefault(vendor, {})[key] = v
    faults = parse_faults(args.faults)

    dataset = load_dataset(args)
    servers = {}
    try:
        for v in vendors:
            app = make_app(v, dataset, configs.get(v), faults.get(v), args.verbose)
            servers[v] = framework.serve(app, args.host, ports.get(v, 0), args.verbose)
    except (OSError, ValueError) as e:
        for s in servers.values():
            s.shutdown()
        print("mock server: %s" % e, file=sys.stderr)
        return 2
    bound = {v: s.server_address[1] for v, s in servers.items()}
    if args.port_file:
        write_port_file(args.port_file, bound)
    print("mock servers (%d clients, %s): %s" % (
        dataset.meta.get("clients", 0), dataset.meta.get("base_time", ""),
        " ".join("%s=http://%s:%d" % (v, args.host, p) for v, p in bound.items())), flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(3600):
        pass
    for s in servers.values():
        s.shutdown()
        s.server_close()
    if args.port_file:
        try:
            os.unlink(args.port_file)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
