#!/usr/bin/env bash
# Who may change the configuration: root and members of the vgpu-admin group may; any other local user may
# read but not change, and is told why. Checked with real unprivileged users (nobody, daemon), through both
# layers: the bus policy file and vgpu-configd's own check.
#
# The vgpu-admin group is made for the test inside a private mount namespace (a copy of /etc/group with the
# group added, bind-mounted over the real one), so the host's user database is never changed.
source "$(dirname "$0")/../lib.sh"

if [ -z "${VGPU_TEST_NS:-}" ]; then
        if [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null || ! command -v setpriv >/dev/null; then
                echo "1..0 # SKIP needs root, unshare and setpriv (real users, a private mount namespace)"
                exit 0
        fi
        gid=4770
        while getent group "$gid" >/dev/null; do gid=$((gid + 1)); done
        groupfile=$(mktemp)
        trap 'rm -f "$groupfile"' EXIT
        grep -v '^vgpu-admin:' /etc/group >"$groupfile"
        echo "vgpu-admin:x:$gid:nobody" >>"$groupfile"
        chmod 0644 "$groupfile"
        VGPU_TEST_NS=1 unshare --mount --propagation private \
                bash -c 'mount --bind "$1" /etc/group && exec "$2"' _ "$groupfile" "$0"
        exit $?
fi

devstack_reexec -- "$@"

as_user() {
        local user=$1
        shift
        setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups \
                env DBUS_SYSTEM_BUS_ADDRESS="$DBUS_SYSTEM_BUS_ADDRESS" "$@"
}

assert_eq "the test's group lists nobody" "yes" "$(id -nG nobody | grep -qw vgpu-admin && echo yes || echo no)"
assert_eq "daemon is not in the group" "no" "$(id -nG daemon | grep -qw vgpu-admin && echo yes || echo no)"

expect_exit "root registers VM 1" 0 vgpu-admin register-vm --vm-id=1 --pool=A --priority=low
before=$(vgpu-admin --json list-vms)

# An ordinary user: reads work, changes are refused by name.
expect_exit "daemon may list pools" 0 as_user daemon vgpu-admin list-pools
expect_exit "daemon may show a VM" 0 as_user daemon vgpu-admin show-vm --vm-id=1
expect_exit "daemon may not register a VM" 1 as_user daemon vgpu-admin register-vm --vm-id=2 --pool=A --priority=high
assert_contains "the refusal says access was denied" "ccess" "$LAST_ERR"
expect_exit "daemon may not change a priority" 1 as_user daemon vgpu-admin set-priority --vm-id=1 --priority=high
expect_exit "daemon may not move a VM" 1 as_user daemon vgpu-admin set-pool --vm-id=1 --pool=B
expect_exit "daemon may not unregister a VM" 1 as_user daemon vgpu-admin unregister-vm --vm-id=1
expect_exit "daemon may not create a pool" 1 as_user daemon vgpu-admin create-pool --pool=C --capacity=2
assert_eq "refused changes left the VMs as they were" "$before" "$(vgpu-admin --json list-vms)"

# The bus itself refuses the privileged method for daemon (the policy file), before vgpu-configd sees it.
out=$(as_user daemon busctl --system call org.vgpu.Config1 /org/vgpu/Config1 org.vgpu.Config1 RegisterVm \
        'ussa{sv}' 3 A high 0 2>&1)
# busctl shows org.freedesktop.DBus.Error.AccessDenied as "Access denied"; the service's own refusal would
# name the vgpu-admin group instead.
assert_contains "the bus policy refuses RegisterVm for daemon" "Access denied" "$out"
assert_eq "the refusal came from the bus, not from vgpu-configd" "" "$(grep -o vgpu-admin <<<"$out")"

# A member of vgpu-admin (per the user database) may change things; the audit log names the user.
expect_exit "nobody, in vgpu-admin, registers VM 2" 0 as_user nobody vgpu-admin register-vm --vm-id=2 --pool=B \
        --priority=medium
expect_exit "nobody changes VM 1's priority" 0 as_user nobody vgpu-admin set-priority --vm-id=1 --priority=high
audit=$(vgpu-admin --json audit --vm-id=2)
assert_eq "the audit log records nobody's uid for VM 2" "65534" "$(jq -r '.[0].uid' <<<"$audit")"
assert_eq "the audit log records the action" "register-vm" "$(jq -r '.[0].action' <<<"$audit")"
assert_eq "the audit log records a pid" "true" "$(jq -r '.[0].pid > 0' <<<"$audit")"

# vgpu-configd's own check, on a bus whose policy lets everyone through: the service still refuses.
open_bus="$VGPU_TEST_TMP/open-bus"
mkdir -p "$open_bus" && chmod 0755 "$open_bus"
cat >"$open_bus/bus.conf" <<CONF
<busconfig><type>system</type><listen>unix:path=$open_bus/bus.sock</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_destination="*"/>
<allow receive_sender="*"/></policy></busconfig>
CONF
dbus-daemon --nofork --config-file="$open_bus/bus.conf" --print-address=3 3>"$open_bus/address" &
bus_pid=$!
wait_for 10 test -S "$open_bus/bus.sock"
DBUS_SYSTEM_BUS_ADDRESS="unix:path=$open_bus/bus.sock" vgpu-configd --database="$open_bus/config.db" \
        2>"$open_bus/configd.log" &
configd_pid=$!
wait_for 10 env DBUS_SYSTEM_BUS_ADDRESS="unix:path=$open_bus/bus.sock" busctl --system status org.vgpu.Config1
out=$(setpriv --reuid=daemon --regid="$(id -g daemon)" --init-groups \
        env DBUS_SYSTEM_BUS_ADDRESS="unix:path=$open_bus/bus.sock" \
        busctl --system call org.vgpu.Config1 /org/vgpu/Config1 org.vgpu.Config1 RegisterVm 'ussa{sv}' 3 A high 0 2>&1)
assert_contains "vgpu-configd refuses daemon by itself" "needs root or membership of group 'vgpu-admin'" "$out"
assert_contains "vgpu-configd logs the refusal" "Refused RegisterVm() from uid $(id -u daemon)" \
        "$(cat "$open_bus/configd.log")"
kill "$configd_pid" "$bus_pid"
wait "$configd_pid" "$bus_pid" 2>/dev/null

done_testing
