#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck source-path=SCRIPTDIR
# The running vgpu-configd publishes org.vgpu.Config1 exactly as dbus-interfaces/org.vgpu.Config1.xml
# describes it (compare-introspection.py), and the comparison fails on altered copies of the XML. Also
# what the unit relies on: READY=1 once the name answers (Type=notify), exit status 0 on SIGTERM (so
# Restart=on-failure leaves a clean stop alone).
#
# vgpu-configd runs on a private bus that lets anyone own and call anything: this test is about the
# interface, not the policy (test-units-bus-policy.sh is), so it runs as any user.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib.sh
. "$here/../lib.sh"
# shellcheck source=private-bus.sh
. "$here/private-bus.sh"

: "${VGPU_SOURCE_DIR:?VGPU_SOURCE_DIR must name the source directory}"
xml=$VGPU_SOURCE_DIR/dbus-interfaces/org.vgpu.Config1.xml
compare=$VGPU_SOURCE_DIR/test/tools/compare-introspection.py

[ -x "$VGPU_BUILD_DIR/vgpu-configd" ] || { echo "1..0 # SKIP vgpu-configd is not built"; exit 0; }
for tool in dbus-daemon busctl; do
        command -v "$tool" >/dev/null || { echo "1..0 # SKIP $tool is not installed"; exit 0; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-introspection.XXXXXX")
trap 'private_bus_stop; [ -n "${notify_pid:-}" ] && kill "$notify_pid" 2>/dev/null; rm -rf "$tmp"' EXIT

if ! private_bus_start "$tmp" open; then
        not_ok "a private bus starts"
        done_testing
fi

# A stand-in for systemd's notification socket: records the first READY=1 and whether the name
# answered at that moment.
python3 - "$tmp/notify" "$tmp/ready" <<'PY' &
import socket, subprocess, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(sys.argv[1])
sock.settimeout(30)
while True:
    msg = sock.recv(4096).decode(errors="replace")
    if "READY=1" in msg.split("\n"):
        owner = subprocess.run(["busctl", "--system", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                "org.freedesktop.DBus", "NameHasOwner", "s", "org.vgpu.Config1"],
                               capture_output=True, text=True).stdout.strip()
        with open(sys.argv[2], "w") as f:
            f.write(f"{msg.strip()}\nowned: {owner}\n")
        break
PY
notify_pid=$!
wait_for 10 test -S "$tmp/notify"

if ! configd_start "$tmp" env NOTIFY_SOCKET="$tmp/notify"; then
        not_ok "vgpu-configd takes org.vgpu.Config1"
        private_bus_logs
        done_testing
fi

wait_for 10 test -s "$tmp/ready"
ready=$(cat "$tmp/ready" 2>/dev/null)
assert_contains "vgpu-configd sends READY=1 (Type=notify)" "READY=1" "$ready"
assert_contains "when READY=1 arrives, org.vgpu.Config1 already has its owner" "owned: b true" "$ready"

# The XML as busctl prints it, and as the tool fetches it itself.
if bus_call --xml-interface introspect org.vgpu.Config1 /org/vgpu/Config1 >"$tmp/actual.xml" 2>"$tmp/err"; then
        ok "busctl introspects /org/vgpu/Config1"
else
        not_ok "busctl introspects /org/vgpu/Config1"
        diag "$(cat "$tmp/err")"
fi
expect_exit "the service's org.vgpu.Config1 matches the XML (busctl --xml-interface introspect)" 0 \
        python3 "$compare" "$xml" "$tmp/actual.xml"
expect_exit "the service's org.vgpu.Config1 matches the XML (Introspect, fetched by the tool)" 0 \
        python3 "$compare" --interface org.vgpu.Config1 --bus-name org.vgpu.Config1 \
        --object-path /org/vgpu/Config1 "$xml"

# altered NAME EXPECTED_LINE SED_SCRIPT: a copy of the XML edited by SED_SCRIPT no longer matches, and
# the tool names the difference.
altered() {
        local name=$1 line=$2 script=$3
        sed -e "$script" "$xml" >"$tmp/altered.xml"
        if cmp -s "$xml" "$tmp/altered.xml"; then
                not_ok "$name"
                diag "the edit changed nothing: the test is stale"
                return
        fi
        expect_exit "$name: a difference" 1 python3 "$compare" "$tmp/altered.xml" "$tmp/actual.xml"
        assert_contains "$name: reported" "$line" "$LAST_OUT"
}

altered "an argument renamed" \
        "method RegisterVm: argument 0 name: expected vmid, service has vm_id" \
        '/<method name="RegisterVm">/,/<\/method>/s/name="vm_id"/name="vmid"/'
altered "an argument's type changed" \
        "method SetIommuRecord: argument 2 (group) type: expected u, service has i" \
        '/<method name="SetIommuRecord">/,/<\/method>/s/name="group" type="i"/name="group" type="u"/'
altered "an argument's direction changed" \
        "method ListPools: argument 0 (pools) direction: expected in, service has out" \
        '/<method name="ListPools">/,/<\/method>/s/direction="out"/direction="in"/'
altered "two arguments swapped" \
        "method MoveVm: argument 0 name: expected pool, service has vm_id" \
        '/<method name="MoveVm">/,/<\/method>/{
s/name="vm_id" type="u"/name="pool" type="s"/
t
s/name="pool" type="s"/name="vm_id" type="u"/
}'
altered "a signal argument missing from the XML" \
        "signal PoolChanged: signal argument 2 not in the XML (service has record a{sv} out)" \
        '/<signal name="PoolChanged">/,/<\/signal>/{/name="record"/d}'
altered "a signal argument's type changed" \
        "signal VmChanged: signal argument 0 (vm_id) type: expected t, service has u" \
        '/<signal name="VmChanged">/,/<\/signal>/s/name="vm_id" type="u"/name="vm_id" type="t"/'
altered "a property's type changed" \
        "property VmCount: type: expected t, service has u" \
        's/<property name="VmCount" type="u"/<property name="VmCount" type="t"/'
altered "a property made writable" \
        "property DatabasePath: access: expected readwrite, service has read" \
        's/<property name="DatabasePath" type="s" access="read"/<property name="DatabasePath" type="s" access="readwrite"/'
altered "a property's change signalling changed" \
        "property Version: annotation org.freedesktop.DBus.Property.EmitsChangedSignal: expected true, service has const" \
        '/<property name="Version"/,/<\/property>/{/EmitsChangedSignal/d}'
altered "a method the service lacks" \
        "method Frobnicate: missing in the service" \
        's|<method name="ListPools">|<method name="Frobnicate"/>&|'
altered "a method the XML lacks" \
        "method GetVmByUuid: in the service but not in the XML" \
        '/<method name="GetVmByUuid">/,/<\/method>/d'
altered "a signal the service lacks" \
        "signal VmsReset: missing in the service" \
        's|<signal name="PoolChanged">|<signal name="VmsReset"/>&|'

# org.vgpu.* annotations cannot be published by sd-bus and are ignored.
sed -e '/org.vgpu.Privileged/d' "$xml" >"$tmp/unannotated.xml"
expect_exit "org.vgpu.* annotations are not compared" 0 python3 "$compare" "$tmp/unannotated.xml" "$tmp/actual.xml"

# A clean stop: SIGTERM ends the service with exit status 0, promptly.
kill -TERM "$CONFIGD_PID"
deadline=$((SECONDS + 10))
while kill -0 "$CONFIGD_PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.1
done
if kill -0 "$CONFIGD_PID" 2>/dev/null; then
        not_ok "vgpu-configd ends within 10 s of SIGTERM"
else
        ok "vgpu-configd ends within 10 s of SIGTERM"
        wait "$CONFIGD_PID"
        assert_eq "vgpu-configd's exit status after SIGTERM is 0" 0 "$?"
fi
CONFIGD_PID=

[ "$_tap_failed" -gt 0 ] && private_bus_logs
done_testing
