#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Checks a D-Bus system bus policy file against the interface XML it guards.

The interface XML marks privileged methods with <annotation name="org.vgpu.Privileged" value="true"/>.
The policy must let an ordinary local user call exactly the other methods (one <allow> with send_member
each) plus Introspect, Get, GetAll and Ping; root and the admin group must reach every method; and only
root may own the bus name.

The check evaluates the policy as dbus-daemon does: the system bus starts from "deny own, deny method
calls"; the rules of every <policy> that applies to a connection are taken in dbus-daemon's order (default
context, then group, then user, then mandatory) and the last matching rule wins. A rule that would allow
an unprivileged caller more than one named method is reported even where the outcome happens to be right.

Usage: check-bus-policy.py [--interface NAME] [--bus-name NAME | --bus-name-prefix PREFIX]
                           [--object-path PATH] [--admin-group GROUP] INTERFACE_XML POLICY_CONF
Exit status: 0 when the policy matches, 1 with one line per problem when it does not, 2 on bad input.
"""

import argparse
import sys
import xml.etree.ElementTree as ET

PRIVILEGED_ANNOTATION = "org.vgpu.Privileged"

# What every local user may call on a vgpu service besides its unprivileged methods.
STANDARD_OPEN = {
    ("org.freedesktop.DBus.Introspectable", "Introspect"),
    ("org.freedesktop.DBus.Properties", "Get"),
    ("org.freedesktop.DBus.Properties", "GetAll"),
    ("org.freedesktop.DBus.Peer", "Ping"),
}
# Standard members probed as well, so that a rule opening one of them by accident is caught.
STANDARD_PROBED = STANDARD_OPEN | {
    ("org.freedesktop.DBus.Properties", "Set"),
    ("org.freedesktop.DBus.Peer", "GetMachineId"),
}
# A member no interface has: a rule that lets an unprivileged caller reach it is too broad.
PROBE_UNKNOWN_MEMBER = "NoSuchMethodProbe"

CONNECTION_ATTRS = {"user", "group"}


class PolicyError(Exception):
    pass


def parse_interface(path, interface):
    """Returns (privileged, unprivileged): sets of method names of `interface` in the XML file."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        raise PolicyError(f"{path}: cannot read interface XML: {e}") from e
    iface = None
    for node in root.iter("interface"):
        if node.get("name") == interface:
            iface = node
    if iface is None:
        raise PolicyError(f"{path}: no interface named {interface}")
    privileged, unprivileged = set(), set()
    for method in iface.findall("method"):
        name = method.get("name")
        marked = any(
            a.get("name") == PRIVILEGED_ANNOTATION and a.get("value", "").lower() == "true"
            for a in method.findall("annotation")
        )
        (privileged if marked else unprivileged).add(name)
    return privileged, unprivileged


def name_has_prefix(name, prefix):
    """dbus-daemon's prefix rule: the name equals the prefix or continues it with '.'."""
    return name == prefix or name.startswith(prefix + ".")


class Rule:
    def __init__(self, elem, context, index):
        self.allow = elem.tag == "allow"
        self.attrs = dict(elem.attrib)
        self.context = context
        self.index = index

    def describe(self):
        attrs = " ".join(f'{k}="{v}"' for k, v in self.attrs.items())
        return f"<{'allow' if self.allow else 'deny'} {attrs}/> in <policy {self.context}>"

    def is_send_rule(self):
        return any(k.startswith("send_") for k in self.attrs)

    def matches_call(self, destination, path, interface, member):
        """Whether this send rule applies to a method call, per dbus-daemon's bus/policy.c."""
        a = self.attrs
        send_type = a.get("send_type", "*")
        if send_type not in ("*", "method_call"):
            return False
        if a.get("send_path", "*") not in ("*", path):
            return False
        rule_interface = a.get("send_interface", "*")
        if rule_interface != "*":
            # A message without an interface field matches deny rules with send_interface, never allow
            # rules (bus/policy.c).
            if interface is None:
                if self.allow:
                    return False
            elif rule_interface != interface:
                return False
        if a.get("send_member", "*") not in ("*", member):
            return False
        if "send_error" in a:
            return False
        dest = a.get("send_destination", "*")
        if dest != "*" and dest != destination:
            return False
        prefix = a.get("send_destination_prefix")
        if prefix is not None and not name_has_prefix(destination, prefix):
            return False
        return True

    def matches_own(self, name):
        a = self.attrs
        if "own" in a:
            return a["own"] in ("*", name)
        if "own_prefix" in a:
            return name_has_prefix(name, a["own_prefix"])
        return False

    def is_own_rule(self):
        return "own" in self.attrs or "own_prefix" in self.attrs


def parse_policy(path):
    """Returns {context key: [Rule, …]} where the key is ('default'|'mandatory'|'user'|'group'|
    'at_console', value)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        raise PolicyError(f"{path}: cannot read policy: {e}") from e
    if root.tag != "busconfig":
        raise PolicyError(f"{path}: root element is <{root.tag}>, not <busconfig>")
    contexts = {}
    index = 0
    for policy in root.findall("policy"):
        if len(policy.attrib) != 1:
            raise PolicyError(f"{path}: <policy> needs exactly one of context=, user=, group=, at_console=")
        (kind, value), = policy.attrib.items()
        if kind == "context":
            if value not in ("default", "mandatory"):
                raise PolicyError(f"{path}: unknown policy context '{value}'")
            key = (value, "")
        elif kind in ("user", "group", "at_console"):
            key = (kind, value)
        else:
            raise PolicyError(f"{path}: unknown <policy> attribute '{kind}'")
        label = f'{kind}="{value}"'
        for elem in policy:
            if not isinstance(elem.tag, str):
                continue  # comments
            if elem.tag not in ("allow", "deny"):
                raise PolicyError(f"{path}: unexpected <{elem.tag}> in <policy {label}>")
            contexts.setdefault(key, []).append(Rule(elem, label, index))
            index += 1
    return contexts


def applicable_rules(contexts, groups=(), user=None):
    """The rules that apply to a connection of `user` (None: an ordinary user with no rules of its own)
    in `groups`, in dbus-daemon's order: default context, group rules, user rules, console, mandatory."""
    order = [("default", "")]
    order += [("group", g) for g in ("*", *groups)]
    order.append(("user", "*"))
    if user is not None:
        order.append(("user", user))
    # at_console="true" applies to users logged in at the console: any ordinary user may be one.
    order.append(("at_console", "true"))
    order.append(("mandatory", ""))
    rules = []
    for key in order:
        rules.extend(contexts.get(key, []))
    return rules


def callers(contexts, admin_group):
    """(label, rules, privileged?) for every kind of caller the policy distinguishes: root, the admin
    group, an ordinary user, and each other user or group the file names (an unprivileged one too)."""
    result = [
        ("root", applicable_rules(contexts, groups=("root",), user="root"), True),
        (f"group {admin_group}", applicable_rules(contexts, groups=(admin_group,)), True),
        ("an unprivileged caller", applicable_rules(contexts), False),
    ]
    for kind, value in sorted(contexts):
        if kind == "user" and value not in ("*", "root"):
            result.append((f"user {value}", applicable_rules(contexts, user=value), False))
        elif kind == "group" and value not in ("*", "root", admin_group):
            result.append((f"group {value}", applicable_rules(contexts, groups=(value,)), False))
    return result


def may_call(rules, destination, path, interface, member):
    """Returns (allowed, the deciding rule or None). The system bus denies method calls by default."""
    verdict, deciding = False, None
    for rule in rules:
        if rule.is_send_rule() and rule.matches_call(destination, path, interface, member):
            verdict, deciding = rule.allow, rule
    return verdict, deciding


def may_own(rules, name):
    verdict, deciding = False, None
    for rule in rules:
        if rule.matches_own(name):
            verdict, deciding = rule.allow, rule
    return verdict, deciding


def check(args):
    problems = []
    privileged, unprivileged = parse_interface(args.interface_xml, args.interface)
    contexts = parse_policy(args.policy)

    destination = args.bus_name or (args.bus_name_prefix + ".Probe" if args.bus_name_prefix else args.interface)
    path = args.object_path or "/" + args.interface.replace(".", "/")
    own_names = [destination]

    everything = {(args.interface, m) for m in privileged | unprivileged} | STANDARD_PROBED
    expected_open = {(args.interface, m) for m in unprivileged} | STANDARD_OPEN

    probes = sorted(everything | {(args.interface, PROBE_UNKNOWN_MEMBER)})
    for label, rules, is_privileged in callers(contexts, args.admin_group):
        if is_privileged:
            # Root and the admin group: every method and the standard calls.
            for interface, member in sorted(everything & ({(args.interface, m) for m in privileged} |
                                                          expected_open)):
                allowed, _ = may_call(rules, destination, path, interface, member)
                if not allowed:
                    problems.append(f"{label} may not call {interface}.{member}")
        else:
            # Everyone else: exactly the unprivileged methods and the standard read-only calls.
            for interface, member in probes:
                allowed, rule = may_call(rules, destination, path, interface, member)
                want = (interface, member) in expected_open
                if allowed and not want:
                    what = "privileged method" if member in privileged else "method"
                    problems.append(f"{label} may call {what} {interface}.{member} ({rule.describe()})")
                elif want and not allowed and label == "an unprivileged caller":
                    problems.append(f"{label} may not call {interface}.{member}, which is open to all "
                                    f"(no <allow> in the default context reaches it)")
            allowed, rule = may_call(rules, destination, path, None, PROBE_UNKNOWN_MEMBER)
            if allowed:
                problems.append(f"{label} may send method calls without an interface field ({rule.describe()})")

        # Ownership: root only.
        for name in own_names:
            allowed, rule = may_own(rules, name)
            if allowed and label != "root":
                problems.append(f"{label} may own {name} ({rule.describe()})")
            elif not allowed and label == "root":
                problems.append(f"root may not own {name}")

    # Each rule that opens something to callers other than root and the admin group names one method.
    for key, rules in contexts.items():
        if key in (("group", args.admin_group), ("user", "root"), ("group", "root")):
            continue
        for rule in rules:
            if not rule.allow or not rule.is_send_rule():
                continue
            reaches = any(rule.matches_call(destination, path, i, m) for i, m in probes)
            if reaches and not ("send_destination" in rule.attrs or "send_destination_prefix" in rule.attrs):
                problems.append(f"rule open to unprivileged callers has no send_destination: {rule.describe()}")
            elif reaches and not ("send_interface" in rule.attrs and "send_member" in rule.attrs):
                problems.append(f"rule open to unprivileged callers does not name one interface and member: "
                                f"{rule.describe()}")
    for key, rules in contexts.items():
        for rule in rules:
            if rule.allow and rule.is_own_rule() and key != ("user", "root"):
                problems.append(f"only root may have an own rule: {rule.describe()}")

    return problems, len(unprivileged), len(privileged)


def main():
    parser = argparse.ArgumentParser(description="Check a D-Bus policy file against its interface XML.")
    parser.add_argument("--interface", default="org.vgpu.Config1", help="interface name (default: %(default)s)")
    names = parser.add_mutually_exclusive_group()
    names.add_argument("--bus-name", help="bus name the policy guards (default: the interface name)")
    names.add_argument("--bus-name-prefix", help="bus name prefix for per-instance names (org.vgpu.Scheduler)")
    parser.add_argument("--object-path", help="object path (default: derived from the interface name)")
    parser.add_argument("--admin-group", default="vgpu-admin", help="group allowed every method (default: %(default)s)")
    parser.add_argument("interface_xml")
    parser.add_argument("policy")
    args = parser.parse_args()

    try:
        problems, n_open, n_privileged = check(args)
    except PolicyError as e:
        print(f"check-bus-policy: {e}", file=sys.stderr)
        return 2
    for p in problems:
        print(f"{args.policy}: {p}")
    if problems:
        print(f"check-bus-policy: {len(problems)} problem(s) in {args.policy}", file=sys.stderr)
        return 1
    print(f"check-bus-policy: {args.policy} matches {args.interface_xml}: {n_open} methods open to all, "
          f"{n_privileged} privileged, owner root only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
