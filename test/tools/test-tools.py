#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Self-tests of check-bus-policy.py and compare-introspection.py on hand-made files: no bus, no
service, any user. The integration tests (test/integration/units/) run them on the real files and the
running services."""

import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CHECK_POLICY = os.path.join(HERE, "check-bus-policy.py")
COMPARE = os.path.join(HERE, "compare-introspection.py")

# A per-pool service, as org.vgpu.Scheduler1 will be: bus names org.vgpu.Scheduler.<POOL>.
INTERFACE_XML = """<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<node>
  <interface name="org.vgpu.Example1">
    <method name="Drain">
      <arg name="vm_id" type="u" direction="in"/>
      <arg name="drained" type="t" direction="out"/>
      <annotation name="org.vgpu.Privileged" value="true"/>
    </method>
    <method name="Stats">
      <arg name="stats" type="a{sv}" direction="out"/>
    </method>
    <signal name="Drained">
      <arg name="vm_id" type="u"/>
    </signal>
    <property name="Pool" type="s" access="read">
      <annotation name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="const"/>
    </property>
    <property name="Depth" type="u" access="read"/>
  </interface>
</node>
"""

# What sd-bus prints for the same vtable: other attribute order and indentation, the standard
# interfaces, signal arguments without direction, EmitsChangedSignal "true" left implicit.
SDBUS_XML = """<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
"https://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<node>
 <interface name="org.freedesktop.DBus.Peer">
  <method name="Ping"/>
 </interface>
 <interface name="org.vgpu.Example1">
  <property name="Pool" type="s" access="read">
   <annotation name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="const"/>
  </property>
  <property name="Depth" type="u" access="read">
  </property>
  <method name="Drain">
   <arg type="u" name="vm_id" direction="in"/>
   <arg type="t" name="drained" direction="out"/>
   <annotation name="org.freedesktop.systemd1.Privileged" value="true"/>
  </method>
  <method name="Stats">
   <arg type="a{sv}" name="stats" direction="out"/>
  </method>
  <signal name="Drained">
   <arg type="u" name="vm_id"/>
  </signal>
 </interface>
</node>
"""

POLICY = """<?xml version="1.0"?>
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
        "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <policy user="root">
    <allow own_prefix="org.vgpu.Example"/>
    <allow send_destination_prefix="org.vgpu.Example" send_interface="org.vgpu.Example1"/>
    <allow send_destination_prefix="org.vgpu.Example" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination_prefix="org.vgpu.Example" send_interface="org.freedesktop.DBus.Properties"/>
    <allow send_destination_prefix="org.vgpu.Example" send_interface="org.freedesktop.DBus.Peer"/>
  </policy>
  <policy group="vgpu-admin">
    <allow send_destination_prefix="org.vgpu.Example" send_interface="org.vgpu.Example1"/>
    <allow send_destination_prefix="org.vgpu.Example" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination_prefix="org.vgpu.Example" send_interface="org.freedesktop.DBus.Properties"/>
    <allow send_destination_prefix="org.vgpu.Example" send_interface="org.freedesktop.DBus.Peer"/>
  </policy>
  <policy context="default">
    <allow send_destination_prefix="org.vgpu.Example" send_interface="org.vgpu.Example1" send_member="Stats"/>
    <allow send_destination_prefix="org.vgpu.Example" send_interface="org.freedesktop.DBus.Introspectable"
           send_member="Introspect"/>
    <allow send_destination_prefix="org.vgpu.Example" send_interface="org.freedesktop.DBus.Properties"
           send_member="Get"/>
    <allow send_destination_prefix="org.vgpu.Example" send_interface="org.freedesktop.DBus.Properties"
           send_member="GetAll"/>
    <allow send_destination_prefix="org.vgpu.Example" send_interface="org.freedesktop.DBus.Peer"
           send_member="Ping"/>
  </policy>
</busconfig>
"""


class ToolTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def write(self, name, text):
        path = os.path.join(self.dir.name, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def run_tool(self, *args):
        return subprocess.run([sys.executable, *args], capture_output=True, text=True, check=False)


class CheckBusPolicy(ToolTest):
    def check(self, policy, xml=INTERFACE_XML):
        return self.run_tool(CHECK_POLICY, "--interface", "org.vgpu.Example1",
                             "--bus-name-prefix", "org.vgpu.Example",
                             self.write("i.xml", xml), self.write("p.conf", policy))

    def assert_fails_with(self, policy, message, xml=INTERFACE_XML):
        r = self.check(policy, xml)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(message, r.stdout)

    def test_per_instance_policy_with_prefixes_passes(self):
        r = self.check(POLICY)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_privileged_method_open_to_everyone_fails(self):
        self.assert_fails_with(
            POLICY.replace('send_member="Stats"/>', 'send_member="Stats"/><allow send_destination_prefix='
                           '"org.vgpu.Example" send_interface="org.vgpu.Example1" send_member="Drain"/>'),
            "an unprivileged caller may call privileged method org.vgpu.Example1.Drain")

    def test_a_mandatory_deny_closes_an_open_method(self):
        self.assert_fails_with(
            POLICY.replace("</busconfig>", '<policy context="mandatory"><deny send_destination_prefix='
                           '"org.vgpu.Example" send_interface="org.vgpu.Example1" send_member="Stats"/>'
                           "</policy></busconfig>"),
            "an unprivileged caller may not call org.vgpu.Example1.Stats")

    def test_at_console_counts_as_unprivileged(self):
        self.assert_fails_with(
            POLICY.replace('<policy context="default">', '<policy at_console="true"><allow send_destination_prefix='
                           '"org.vgpu.Example" send_interface="org.vgpu.Example1"/></policy><policy context="default">'),
            "may call privileged method org.vgpu.Example1.Drain")

    def test_owner_wildcard_for_a_group_fails(self):
        self.assert_fails_with(
            POLICY.replace('<policy group="vgpu-admin">', '<policy group="vgpu-admin"><allow own="*"/>'),
            "group vgpu-admin may own org.vgpu.Example.Probe")

    def test_unparseable_policy_is_bad_input(self):
        r = self.check("<busconfig>")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)


class CompareIntrospection(ToolTest):
    def compare(self, expected, actual=SDBUS_XML, *extra):
        return self.run_tool(COMPARE, *extra, self.write("e.xml", expected), self.write("a.xml", actual))

    def assert_differs(self, expected, line, actual=SDBUS_XML):
        r = self.compare(expected, actual)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(line, r.stdout)

    def test_sdbus_rendering_of_the_same_interface_matches(self):
        r = self.compare(INTERFACE_XML)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_input_from_stdin(self):
        r = subprocess.run([sys.executable, COMPARE, self.write("e.xml", INTERFACE_XML), "-"],
                           input=SDBUS_XML, capture_output=True, text=True, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_argument_order(self):
        self.assert_differs(INTERFACE_XML.replace(
            '<arg name="vm_id" type="u" direction="in"/>\n      <arg name="drained" type="t" direction="out"/>',
            '<arg name="drained" type="t" direction="out"/>\n      <arg name="vm_id" type="u" direction="in"/>'),
            "org.vgpu.Example1: method Drain: argument 0 name: expected drained, service has vm_id")

    def test_unnamed_arguments_in_the_service(self):
        self.assert_differs(INTERFACE_XML, "method Stats: argument 0 name: expected stats, service has (unnamed)",
                            actual=SDBUS_XML.replace('name="stats" ', ""))

    def test_signal_argument_type(self):
        self.assert_differs(INTERFACE_XML.replace('<arg name="vm_id" type="u"/>', '<arg name="vm_id" type="t"/>'),
                            "signal Drained: signal argument 0 (vm_id) type: expected t, service has u")

    def test_property_access_and_implicit_emits_changed(self):
        self.assert_differs(INTERFACE_XML.replace('"Depth" type="u" access="read"', '"Depth" type="u" access="write"'),
                            "property Depth: access: expected write, service has read")
        self.assert_differs(INTERFACE_XML, "property Depth: annotation org.freedesktop.DBus.Property."
                            "EmitsChangedSignal: expected true, service has false",
                            actual=SDBUS_XML.replace('"Depth" type="u" access="read">',
                                                     '"Depth" type="u" access="read"><annotation name="org.freedesktop.'
                                                     'DBus.Property.EmitsChangedSignal" value="false"/>'))

    def test_missing_interface(self):
        self.assert_differs(INTERFACE_XML, "org.vgpu.Example1: interface missing in the service",
                            actual=SDBUS_XML.replace("org.vgpu.Example1", "org.vgpu.Other1"))

    def test_project_annotations_ignored_standard_ones_compared(self):
        r = self.compare(INTERFACE_XML.replace('<annotation name="org.vgpu.Privileged" value="true"/>', ""))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_differs(INTERFACE_XML.replace(
            '<method name="Stats">', '<method name="Stats"><annotation name="org.freedesktop.DBus.Deprecated" '
            'value="true"/>'), "method Stats: annotation org.freedesktop.DBus.Deprecated: expected true, "
                               "service has false")

    def test_unknown_interface_argument_is_bad_input(self):
        r = self.compare(INTERFACE_XML, SDBUS_XML, "--interface", "org.vgpu.Nope1")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
