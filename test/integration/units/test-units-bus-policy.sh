#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck source-path=SCRIPTDIR
# The bus policy at work: a private dbus-daemon with the system bus's default policy and the real
# systemd-units/dbus/org.vgpu.Config1.conf, vgpu-configd on it as its unit runs it (root, no
# capabilities, no_new_privs, /proc as ProtectProc=invisible shows it), and real users calling it:
# `nobody` reads but is refused every change by the bus itself and cannot own the name; root and a
# member of vgpu-admin may change things. Then the second wall: with a bus that lets everything
# through, vgpu-configd still refuses `nobody`'s changes itself.
#
# Needs root (the bus must tell users apart as the system bus does, and the test switches users with
# setpriv). The admin account exists only inside a private mount namespace, in bind-mounted copies of
# /etc/passwd and /etc/group that no other process sees.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib.sh
. "$here/../lib.sh"
# shellcheck source=private-bus.sh
. "$here/private-bus.sh"

: "${VGPU_SOURCE_DIR:?VGPU_SOURCE_DIR must name the source directory}"
xml=$VGPU_SOURCE_DIR/dbus-interfaces/org.vgpu.Config1.xml
compare=$VGPU_SOURCE_DIR/test/tools/compare-introspection.py
admin_user=vgpu-test-admin

skip_all() {
        echo "1..0 # SKIP $*"
        exit 0
}
[ "$(id -u)" -eq 0 ] || skip_all "needs root: dbus-daemon must run as root to tell callers apart like the system bus"
[ -x "$VGPU_BUILD_DIR/vgpu-configd" ] || skip_all "vgpu-configd is not built"
for tool in dbus-daemon busctl setpriv; do
        command -v "$tool" >/dev/null || skip_all "$tool is not installed"
done
if ! getent passwd nobody >/dev/null || ! getent group nogroup >/dev/null; then
        skip_all "no user nobody or no group nogroup"
fi

# Run again in a private mount namespace; VGPU_UNITS_PARENT_NS names the namespace left behind, so the
# bind mounts below happen only where it is certain that no other process sees them.
parent_ns=$(readlink /proc/self/ns/mnt)
if [ -z "${VGPU_UNITS_PARENT_NS:-}" ] && unshare --mount --propagation private true 2>/dev/null; then
        VGPU_UNITS_PARENT_NS=$parent_ns exec unshare --mount --propagation private "$0" "$@"
fi
private_ns=
if [ -n "${VGPU_UNITS_PARENT_NS:-}" ] && [ "$VGPU_UNITS_PARENT_NS" != "$parent_ns" ]; then
        private_ns=1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-bus-policy.XXXXXX")
chmod 0755 "$tmp"
trap 'private_bus_stop; rm -rf "$tmp"' EXIT

# first_free_id DATABASE START: the first id from START on that the user or group database lacks.
first_free_id() {
        local id=$2
        while getent "$1" "$id" >/dev/null; do
                id=$((id + 1))
        done
        echo "$id"
}

# Inside the namespace: the admin account, and /proc as the unit's ProtectProc=invisible mounts it.
have_admin=
if [ -n "$private_ns" ]; then
        admin_uid=$(first_free_id passwd 64100)
        cp /etc/passwd "$tmp/passwd"
        cp /etc/group "$tmp/group"
        echo "$admin_user:x:$admin_uid:65534:vgpu test admin:/nonexistent:/usr/sbin/nologin" >>"$tmp/passwd"
        if getent group vgpu-admin >/dev/null; then
                # The host has the group already (vgpu installed): add the test account to its members.
                awk -F: -v OFS=: -v u="$admin_user" '$1 == "vgpu-admin" { $4 = ($4 == "" ? u : $4 "," u) } { print }' \
                        /etc/group >"$tmp/group"
        else
                echo "vgpu-admin:x:$(first_free_id group 64100):$admin_user" >>"$tmp/group"
        fi
        if mount --bind "$tmp/passwd" /etc/passwd && mount --bind "$tmp/group" /etc/group; then
                have_admin=1
        fi
        mount -t proc -o hidepid=invisible proc /proc ||
                diag "could not mount /proc with hidepid=invisible; vgpu-configd sees every process"
else
        diag "no private mount namespace (unshare --mount failed): the vgpu-admin member cases are skipped"
fi

as_nobody() {
        setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"
}
# shellcheck disable=SC2317 # called through expect_exit and refused_by_bus
as_admin() {
        setpriv --reuid="$admin_user" --regid=nogroup --init-groups "$@"
}

# CapabilityBoundingSet= (empty) and NoNewPrivileges=yes, as the unit starts the service.
sandbox=(setpriv --bounding-set=-all --inh-caps=-all --no-new-privs)

if ! private_bus_start "$tmp/bus" system; then
        not_ok "a private bus with the system policy and org.vgpu.Config1.conf starts"
        done_testing
fi
if ! configd_start "$tmp/bus" "${sandbox[@]}"; then
        not_ok "vgpu-configd takes org.vgpu.Config1 on the private bus"
        private_bus_logs
        done_testing
fi
ok "vgpu-configd takes org.vgpu.Config1 on a bus with the system policy, run as root without capabilities"

status=$(grep -E '^(Uid|CapEff|CapBnd|NoNewPrivs):' "/proc/$CONFIGD_PID/status" | tr -s '\t ' ' ')
assert_eq "vgpu-configd runs as its unit runs it: uid 0, no capability, no_new_privs" \
        "$(printf 'Uid: 0 0 0 0\nCapEff: 0000000000000000\nCapBnd: 0000000000000000\nNoNewPrivs: 1')" "$status"

# shellcheck disable=SC2317 # called through expect_exit
config_call() { # config_call METHOD [SIGNATURE ARGS…]
        bus_call call -- org.vgpu.Config1 /org/vgpu/Config1 org.vgpu.Config1 "$@"
}

# refused_by_bus NAME COMMAND…: a busctl command fails, and the error it got was sent by the bus daemon
# (org.freedesktop.DBus), named org.freedesktop.DBus.Error.AccessDenied, not by vgpu-configd. busctl
# prints only "Access denied"; sd-bus's debug log shows the error message's sender and name.
# $LAST_ERR keeps the error message.
refused_by_bus() {
        local name=$1
        shift
        local out rc got
        out=$(SYSTEMD_LOG_LEVEL=debug "$@" 2>&1)
        rc=$?
        got=$(sed -n 's/.*Got message type=error sender=\([^ ]*\) .* error-name=\([^ ]*\) error-message=\(.*\)/\1 \2 \3/p' \
                <<<"$out" | tail -n 1)
        LAST_ERR=${got#* * }
        if [ "$rc" -ne 0 ] && [ "${got%% *}" = org.freedesktop.DBus ] &&
                [ "$(cut -d' ' -f2 <<<"$got")" = org.freedesktop.DBus.Error.AccessDenied ]; then
                ok "$name"
        else
                not_ok "$name"
                diag "command: $*" "exit status $rc; error: ${got:-none}" "$(tail -n 5 <<<"$out")"
        fi
}

# python3 for the unprivileged user: the one in PATH may live under /root (pyenv).
nobody_python=
for p in /usr/bin/python3 /usr/local/bin/python3 "$(command -v python3)"; do
        if [ -x "$p" ] && as_nobody "$p" -c pass 2>/dev/null; then
                nobody_python=$p
                break
        fi
done

# --- An unprivileged user reads.
expect_exit "nobody may call ListPools" 0 as_nobody busctl --system call org.vgpu.Config1 /org/vgpu/Config1 \
        org.vgpu.Config1 ListPools
assert_contains "ListPools answers nobody with the pool list" "aa{sv} " "$LAST_OUT"
expect_exit "nobody's GetPool reaches vgpu-configd (and fails there: no such pool)" 1 \
        as_nobody busctl --system call org.vgpu.Config1 /org/vgpu/Config1 org.vgpu.Config1 GetPool s nosuch
assert_contains "GetPool's refusal comes from the service, not the bus" "does not exist" "$LAST_ERR"
expect_exit "nobody may read the Version property (Properties.Get)" 0 \
        as_nobody busctl --system get-property org.vgpu.Config1 /org/vgpu/Config1 org.vgpu.Config1 Version
expect_exit "nobody may read all properties (Properties.GetAll)" 0 \
        as_nobody busctl --system call org.vgpu.Config1 /org/vgpu/Config1 org.freedesktop.DBus.Properties \
        GetAll s org.vgpu.Config1
expect_exit "nobody may Ping (Peer)" 0 \
        as_nobody busctl --system call org.vgpu.Config1 /org/vgpu/Config1 org.freedesktop.DBus.Peer Ping
if [ -n "$nobody_python" ]; then
        # Copies nobody can read, wherever the source tree lives.
        cp "$compare" "$xml" "$tmp/"
        chmod 0644 "$tmp/${compare##*/}" "$tmp/${xml##*/}"
        expect_exit "nobody may introspect, and sees the interface of the XML" 0 \
                as_nobody "$nobody_python" "$tmp/${compare##*/}" "$tmp/${xml##*/}"
else
        expect_exit "nobody may introspect" 0 as_nobody busctl --system call org.vgpu.Config1 /org/vgpu/Config1 \
                org.freedesktop.DBus.Introspectable Introspect
fi

# --- An unprivileged user is refused every change by the bus. One call per privileged method of the
# XML, with harmless arguments of the right types (the bus refuses before anything is read).
python3 - "$xml" >"$tmp/privileged-calls" <<'PY'
import sys
import xml.etree.ElementTree as ET
sample = {"u": "1", "t": "1", "i": "-1", "s": "A", "a{sv}": "0", "b": "false"}
for iface in ET.parse(sys.argv[1]).getroot().iter("interface"):
    if iface.get("name") != "org.vgpu.Config1":
        continue
    for m in iface.findall("method"):
        if not any(a.get("name") == "org.vgpu.Privileged" and a.get("value") == "true"
                   for a in m.findall("annotation")):
            continue
        ins = [a.get("type") for a in m.findall("arg") if a.get("direction", "in") == "in"]
        print(" ".join([m.get("name"), "".join(ins)] + [sample[t] for t in ins]))
PY
n_privileged=$(wc -l <"$tmp/privileged-calls")
[ "$n_privileged" -gt 0 ] || not_ok "the XML names privileged methods"
while read -r method signature args; do
        # shellcheck disable=SC2086 # args are whitespace-separated busctl arguments
        refused_by_bus "nobody's $method is refused by the bus (AccessDenied)" \
                as_nobody busctl --system call -- org.vgpu.Config1 /org/vgpu/Config1 org.vgpu.Config1 \
                "$method" "$signature" $args
done <"$tmp/privileged-calls"

if command -v dbus-send >/dev/null; then
        expect_exit "nobody's UnregisterVm is refused (dbus-send)" 1 \
                as_nobody dbus-send --system --print-reply --dest=org.vgpu.Config1 /org/vgpu/Config1 \
                org.vgpu.Config1.UnregisterVm uint32:1
        assert_contains "the refusal is the bus's org.freedesktop.DBus.Error.AccessDenied" \
                "org.freedesktop.DBus.Error.AccessDenied" "$LAST_ERR"
else
        ok "the refusal is the bus's org.freedesktop.DBus.Error.AccessDenied # SKIP dbus-send is not installed"
fi
refused_by_bus "nobody may not set a property: Properties.Set is refused by the bus" \
        as_nobody busctl --system set-property org.vgpu.Config1 /org/vgpu/Config1 org.vgpu.Config1 VmCount u 5

# --- Only root may own the name.
refused_by_bus "nobody may not own org.vgpu.Config1 (RequestName is refused)" \
        as_nobody busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
        RequestName su org.vgpu.Config1 0
assert_contains "ownership is refused by the bus policy" "not allowed to own the service \"org.vgpu.Config1\"" \
        "$LAST_ERR"
mkdir "$tmp/nobody"
chown nobody:nogroup "$tmp/nobody"
expect_exit "vgpu-configd run as nobody fails to start" 1 \
        as_nobody timeout 15 "$VGPU_BUILD_DIR/vgpu-configd" --database="$tmp/nobody/config.db"
assert_contains "and says it may not own the name" "Failed to own org.vgpu.Config1" "$LAST_ERR"

assert_eq "nothing nobody tried changed the store (VmCount)" "u 0" \
        "$(bus_call get-property org.vgpu.Config1 /org/vgpu/Config1 org.vgpu.Config1 VmCount 2>&1)"

# --- Root changes things.
expect_exit "root may CreatePool" 0 config_call CreatePool 'sua{sv}' T 4 0
expect_exit "root may RegisterVm" 0 config_call RegisterVm 'ussa{sv}' 1 T high 0
assert_contains "RegisterVm returns the stored record" '"pool" s "T"' "$LAST_OUT"

# --- A member of vgpu-admin changes things; it may not own the name either.
if [ -n "$have_admin" ]; then
        expect_exit "a vgpu-admin member ($admin_user) may RegisterVm" 0 \
                as_admin busctl --system call org.vgpu.Config1 /org/vgpu/Config1 org.vgpu.Config1 \
                RegisterVm 'ussa{sv}' 2 T low 0
        [ -n "$LAST_ERR" ] && diag "$LAST_ERR"
        expect_exit "a vgpu-admin member may SetPriority" 0 \
                as_admin busctl --system call org.vgpu.Config1 /org/vgpu/Config1 org.vgpu.Config1 \
                SetPriority us 1 medium
        refused_by_bus "a vgpu-admin member may not own org.vgpu.Config1" \
                as_admin busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                RequestName su org.vgpu.Config1 0
        expect_exit "the audit log is readable" 0 config_call ReadAudit tuu 0 0 2
        assert_contains "the audit log names the admin's uid for VM 2, as the bus reported it" \
                "\"uid\" u $admin_uid" "$LAST_OUT"
else
        for name in "a vgpu-admin member may RegisterVm" "a vgpu-admin member may SetPriority" \
                "a vgpu-admin member may not own org.vgpu.Config1" "the audit log names the admin's uid"; do
                ok "$name # SKIP no private mount namespace for the test account"
        done
fi

# --- The second wall: a bus that lets every call through, and vgpu-configd refuses nobody itself.
private_bus_stop
if private_bus_start "$tmp/open" open && configd_start "$tmp/open" "${sandbox[@]}"; then
        ok "vgpu-configd runs on a bus without policy"
        expect_exit "on that bus, nobody's CreatePool reaches vgpu-configd and is refused" 1 \
                as_nobody busctl --system call org.vgpu.Config1 /org/vgpu/Config1 org.vgpu.Config1 \
                CreatePool 'sua{sv}' B 1 0
        assert_contains "vgpu-configd says what is needed" "needs root or membership of group 'vgpu-admin'" \
                "$LAST_ERR"
        if command -v dbus-send >/dev/null; then
                expect_exit "nobody's UnregisterVm is refused by vgpu-configd (dbus-send)" 1 \
                        as_nobody dbus-send --system --print-reply --dest=org.vgpu.Config1 /org/vgpu/Config1 \
                        org.vgpu.Config1.UnregisterVm uint32:1
                assert_contains "with org.vgpu.Error.AccessDenied" "org.vgpu.Error.AccessDenied" "$LAST_ERR"
        fi
        expect_exit "nobody's ListPools still works there" 0 as_nobody busctl --system call org.vgpu.Config1 \
                /org/vgpu/Config1 org.vgpu.Config1 ListPools
else
        not_ok "vgpu-configd runs on a bus without policy"
        private_bus_logs
fi

[ "$_tap_failed" -gt 0 ] && private_bus_logs
done_testing
