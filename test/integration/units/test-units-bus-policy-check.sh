#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck source-path=SCRIPTDIR
# The bus policy file agrees with the interface XML (check-bus-policy.py), and the check does fail on
# copies of the policy broken in each way it guards against.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib.sh
. "$here/../lib.sh"

: "${VGPU_SOURCE_DIR:?VGPU_SOURCE_DIR must name the source directory}"
tool=$VGPU_SOURCE_DIR/test/tools/check-bus-policy.py
xml=$VGPU_SOURCE_DIR/dbus-interfaces/org.vgpu.Config1.xml
policy=$VGPU_SOURCE_DIR/systemd-units/dbus/org.vgpu.Config1.conf

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-policy-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

expect_exit "org.vgpu.Config1.conf opens exactly the unprivileged methods of org.vgpu.Config1.xml" 0 \
        python3 "$tool" "$xml" "$policy"
expect_exit "org.vgpu.Scheduler1.conf opens exactly the methods of org.vgpu.Scheduler1.xml" 0 \
        python3 "$tool" --interface org.vgpu.Scheduler1 --bus-name-prefix org.vgpu.Scheduler \
        --object-path /org/vgpu/Scheduler1 "$VGPU_SOURCE_DIR/dbus-interfaces/org.vgpu.Scheduler1.xml" \
        "$VGPU_SOURCE_DIR/systemd-units/dbus/org.vgpu.Scheduler1.conf"
expect_exit "org.vgpu.Ingest1.conf opens exactly the unprivileged methods of org.vgpu.Ingest1.xml" 0 \
        python3 "$tool" --interface org.vgpu.Ingest1 "$VGPU_SOURCE_DIR/dbus-interfaces/org.vgpu.Ingest1.xml" \
        "$VGPU_SOURCE_DIR/systemd-units/dbus/org.vgpu.Ingest1.conf"
expect_exit "org.vgpu.Iommu1.conf opens exactly the unprivileged methods of org.vgpu.Iommu1.xml" 0 \
        python3 "$tool" --interface org.vgpu.Iommu1 "$VGPU_SOURCE_DIR/dbus-interfaces/org.vgpu.Iommu1.xml" \
        "$VGPU_SOURCE_DIR/systemd-units/dbus/org.vgpu.Iommu1.conf"

# Every interface file is well-formed XML (a "--" inside a comment is not).
for f in "$VGPU_SOURCE_DIR"/dbus-interfaces/*.xml "$VGPU_SOURCE_DIR"/systemd-units/dbus/*.conf; do
        expect_exit "$(basename "$f") is well-formed XML" 0 \
                python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' "$f"
done

# broken NAME EXPECTED_MESSAGE SED_EXPRESSION: the tool fails on a copy edited by SED_EXPRESSION and
# says what is wrong.
broken() {
        local name=$1 message=$2 expr=$3
        local copy=$tmp/broken.conf
        sed -e "$expr" "$policy" >"$copy"
        if cmp -s "$policy" "$copy"; then
                not_ok "$name"
                diag "the edit '$expr' changed nothing: the test is stale"
                return
        fi
        expect_exit "$name: exit status 1" 1 python3 "$tool" "$xml" "$copy"
        assert_contains "$name: reported" "$message" "$LAST_OUT"
}

allow_config() { # allow_config MEMBER: one default-context rule for an org.vgpu.Config1 method
        printf '<allow send_destination="org.vgpu.Config1" send_interface="org.vgpu.Config1" send_member="%s"/>' "$1"
}

broken "a privileged method opened to everyone" \
        "may call privileged method org.vgpu.Config1.RegisterVm" \
        "s|<policy context=\"default\">|&$(allow_config RegisterVm)|"
broken "an unprivileged method left closed" \
        "may not call org.vgpu.Config1.ListPools" \
        '/send_member="ListPools"/d'
broken "the whole destination opened to everyone" \
        "may call privileged method org.vgpu.Config1.DeletePool" \
        's|<policy context="default">|&<allow send_destination="org.vgpu.Config1"/>|'
broken "a method opened on every destination" \
        "has no send_destination" \
        's|<policy context="default">|&<allow send_interface="org.vgpu.Config1" send_member="GetVm"/>|'
broken "Properties.Set opened to everyone" \
        "may call method org.freedesktop.DBus.Properties.Set" \
        's|<policy context="default">|&<allow send_destination="org.vgpu.Config1" send_interface="org.freedesktop.DBus.Properties" send_member="Set"/>|'
broken "an unprivileged user allowed to own the name" \
        "user nobody may own org.vgpu.Config1" \
        's|<policy context="default">|<policy user="nobody"><allow own="org.vgpu.Config1"/></policy>&|'
broken "the admin group allowed to own the name" \
        "only root may have an own rule" \
        's|<policy group="vgpu-admin">|&<allow own="org.vgpu.Config1"/>|'
broken "root not allowed to own the name" \
        "root may not own org.vgpu.Config1" \
        '/<allow own="org.vgpu.Config1"\/>/d'
broken "the admin group cut off from a privileged method" \
        "group vgpu-admin may not call org.vgpu.Config1.RegisterVm" \
        "/<policy group=\"vgpu-admin\">/,/<\/policy>/s|<allow send_destination=\"org.vgpu.Config1\" send_interface=\"org.vgpu.Config1\"/>|&<deny send_destination=\"org.vgpu.Config1\" send_interface=\"org.vgpu.Config1\" send_member=\"RegisterVm\"/>|"

# And the other way round: a method marked privileged in the XML but open in the policy.
sed -e '/<method name="ListPools">/a <annotation name="org.vgpu.Privileged" value="true"/>' "$xml" >"$tmp/privileged.xml"
expect_exit "a method newly marked privileged in the XML but still open: exit status 1" 1 \
        python3 "$tool" "$tmp/privileged.xml" "$policy"
assert_contains "a method newly marked privileged in the XML but still open: reported" \
        "may call privileged method org.vgpu.Config1.ListPools" "$LAST_OUT"

done_testing
