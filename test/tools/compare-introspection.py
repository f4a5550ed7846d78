#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Compares a D-Bus interface as a running service introspects it with its XML in dbus-interfaces/.

For each interface compared: every method with its arguments (name, type, direction, order), every
signal with its arguments (name, type, order), every property with its type and access, and the
annotations that sd-bus can publish (org.freedesktop.DBus.Deprecated, …Method.NoReply,
…Property.EmitsChangedSignal). Project annotations (org.vgpu.*) and the annotations sd-bus adds on its
own (org.freedesktop.systemd1.*) are ignored, as are the standard org.freedesktop.DBus.* interfaces.
Each difference is one line on stdout.

The service's XML comes from a file (as `busctl --xml-interface introspect NAME PATH` prints it), from
standard input ("-"), or, with no ACTUAL argument, from the bus: Introspect on --object-path at
--bus-name, through busctl (--system, the default, honours DBUS_SYSTEM_BUS_ADDRESS; or --user).

Usage: compare-introspection.py [--interface NAME]… [--object-path PATH] [--bus-name NAME]
                                [--system|--user] EXPECTED_XML [ACTUAL_XML|-]
Exit status: 0 when they agree, 1 with one line per difference, 2 when an input cannot be read.
"""

import argparse
import json
import subprocess
import sys
import xml.etree.ElementTree as ET

IGNORED_ANNOTATION_PREFIXES = ("org.vgpu.", "org.freedesktop.systemd1.")
STANDARD_INTERFACE_PREFIX = "org.freedesktop.DBus."

# What an absent EmitsChangedSignal annotation means (D-Bus specification: "true"), so that a file that
# omits it and a service that spells it out agree.
DEFAULT_ANNOTATIONS = {
    "property": {"org.freedesktop.DBus.Property.EmitsChangedSignal": "true"},
    "method": {"org.freedesktop.DBus.Method.NoReply": "false", "org.freedesktop.DBus.Deprecated": "false"},
    "signal": {"org.freedesktop.DBus.Deprecated": "false"},
}


class InputError(Exception):
    pass


def parse_xml(text, origin):
    try:
        return ET.fromstring(text)
    except ET.ParseError as e:
        raise InputError(f"{origin}: not valid XML: {e}") from e


def annotations(elem, kind, inherited=None):
    """Annotations that matter, with defaults filled in. Interface-level EmitsChangedSignal applies to
    properties that do not set their own."""
    result = dict(DEFAULT_ANNOTATIONS.get(kind, {}))
    if inherited:
        result.update(inherited)
    for a in elem.findall("annotation"):
        name = a.get("name", "")
        if name.startswith(IGNORED_ANNOTATION_PREFIXES):
            continue
        result[name] = a.get("value", "")
    return result


def args_of(elem, kind):
    """Arguments as (name or None, type, direction), in order. Method arguments default to "in"; signal
    arguments have no direction that matters."""
    result = []
    for a in elem.findall("arg"):
        direction = a.get("direction", "in") if kind == "method" else "out"
        result.append((a.get("name"), a.get("type"), direction))
    return result


def describe_interface(iface):
    """{('method'|'signal'|'property', name): details} for one <interface>."""
    members = {}
    iface_annotations = {
        k: v for k, v in annotations(iface, "interface").items()
        if k == "org.freedesktop.DBus.Property.EmitsChangedSignal"
    }
    for kind in ("method", "signal", "property"):
        for elem in iface.findall(kind):
            name = elem.get("name")
            if kind == "property":
                details = {
                    "type": elem.get("type"),
                    "access": elem.get("access"),
                    "annotations": annotations(elem, kind, iface_annotations),
                }
            else:
                details = {"args": args_of(elem, kind), "annotations": annotations(elem, kind)}
            members[(kind, name)] = details
    return members


def interfaces_of(root):
    return {i.get("name"): i for i in root.iter("interface")}


def fmt_arg(arg):
    name, type_, direction = arg
    return f"{name or '(unnamed)'} {type_} {direction}"


def compare_args(label, expected, actual, kind):
    diffs = []
    what = "argument" if kind == "method" else "signal argument"
    for i in range(max(len(expected), len(actual))):
        if i >= len(actual):
            diffs.append(f"{label}: {what} {i} missing in the service (expected {fmt_arg(expected[i])})")
            continue
        if i >= len(expected):
            diffs.append(f"{label}: {what} {i} not in the XML (service has {fmt_arg(actual[i])})")
            continue
        e, a = expected[i], actual[i]
        if e[0] != a[0]:
            diffs.append(f"{label}: {what} {i} name: expected {e[0] or '(unnamed)'!s}, service has "
                         f"{a[0] or '(unnamed)'!s}")
        if e[1] != a[1]:
            diffs.append(f"{label}: {what} {i} ({e[0]}) type: expected {e[1]}, service has {a[1]}")
        if e[2] != a[2]:
            diffs.append(f"{label}: {what} {i} ({e[0]}) direction: expected {e[2]}, service has {a[2]}")
    return diffs


def compare_annotations(label, expected, actual):
    diffs = []
    for name in sorted(set(expected) | set(actual)):
        e, a = expected.get(name), actual.get(name)
        if e == a:
            continue
        if a is None:
            diffs.append(f"{label}: annotation {name}={e} missing in the service")
        elif e is None:
            diffs.append(f"{label}: annotation {name}={a} in the service, not in the XML")
        else:
            diffs.append(f"{label}: annotation {name}: expected {e}, service has {a}")
    return diffs


def compare_interface(name, expected_iface, actual_iface):
    expected = describe_interface(expected_iface)
    actual = describe_interface(actual_iface)
    diffs = []
    order = {"method": 0, "signal": 1, "property": 2}
    for key in sorted(set(expected) | set(actual), key=lambda k: (order[k[0]], k[1])):
        kind, member = key
        label = f"{name}: {kind} {member}"
        if key not in actual:
            diffs.append(f"{label}: missing in the service")
            continue
        if key not in expected:
            diffs.append(f"{label}: in the service but not in the XML")
            continue
        e, a = expected[key], actual[key]
        if kind == "property":
            if e["type"] != a["type"]:
                diffs.append(f"{label}: type: expected {e['type']}, service has {a['type']}")
            if e["access"] != a["access"]:
                diffs.append(f"{label}: access: expected {e['access']}, service has {a['access']}")
        else:
            diffs += compare_args(label, e["args"], a["args"], kind)
        diffs += compare_annotations(label, e["annotations"], a["annotations"])
    return diffs


def fetch_introspection(bus_flag, bus_name, object_path):
    cmd = ["busctl", bus_flag, "--json=short", "call", bus_name, object_path,
           "org.freedesktop.DBus.Introspectable", "Introspect"]
    try:
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as e:
        detail = getattr(e, "stderr", "") or ""
        raise InputError(f"cannot introspect {bus_name} {object_path}: {e} {detail.strip()}") from e
    try:
        reply = json.loads(out)
        return reply["data"][0]
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise InputError(f"unexpected reply from busctl: {out[:200]!r}") from e


def read_text(path):
    try:
        if path == "-":
            return sys.stdin.read()
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise InputError(f"cannot read {path}: {e}") from e


def main():
    parser = argparse.ArgumentParser(
        description="Compare a service's introspection with its interface XML.")
    parser.add_argument("--interface", action="append", dest="interfaces", metavar="NAME",
                        help="interface to compare (repeatable; default: every non-standard interface "
                             "in EXPECTED_XML)")
    parser.add_argument("--object-path", help="object to introspect (default: derived from the first "
                                              "interface, org.vgpu.Config1 -> /org/vgpu/Config1)")
    parser.add_argument("--bus-name", help="service to introspect (default: the first interface name)")
    bus = parser.add_mutually_exclusive_group()
    bus.add_argument("--system", dest="bus_flag", action="store_const", const="--system", default="--system")
    bus.add_argument("--user", dest="bus_flag", action="store_const", const="--user")
    parser.add_argument("expected_xml")
    parser.add_argument("actual_xml", nargs="?", help="the service's introspection XML, or - for stdin")
    args = parser.parse_args()

    try:
        expected_root = parse_xml(read_text(args.expected_xml), args.expected_xml)
        names = args.interfaces or [n for n in interfaces_of(expected_root)
                                    if not n.startswith(STANDARD_INTERFACE_PREFIX)]
        if not names:
            raise InputError(f"{args.expected_xml}: no interface to compare")
        if args.actual_xml:
            origin = "standard input" if args.actual_xml == "-" else args.actual_xml
            actual_text = read_text(args.actual_xml)
        else:
            bus_name = args.bus_name or names[0]
            object_path = args.object_path or "/" + names[0].replace(".", "/")
            origin = f"{bus_name} {object_path}"
            actual_text = fetch_introspection(args.bus_flag, bus_name, object_path)
        actual_root = parse_xml(actual_text, origin)
    except InputError as e:
        print(f"compare-introspection: {e}", file=sys.stderr)
        return 2

    expected_ifaces = interfaces_of(expected_root)
    actual_ifaces = interfaces_of(actual_root)
    diffs = []
    for name in names:
        if name not in expected_ifaces:
            print(f"compare-introspection: {args.expected_xml}: no interface {name}", file=sys.stderr)
            return 2
        if name not in actual_ifaces:
            diffs.append(f"{name}: interface missing in the service ({origin})")
            continue
        diffs += compare_interface(name, expected_ifaces[name], actual_ifaces[name])

    for d in diffs:
        print(d)
    if diffs:
        print(f"compare-introspection: {len(diffs)} difference(s) between {args.expected_xml} and {origin}",
              file=sys.stderr)
        return 1
    print(f"compare-introspection: {', '.join(names)} in {origin} matches {args.expected_xml}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
