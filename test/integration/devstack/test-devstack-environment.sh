#!/usr/bin/env bash
# Inside vgpu-devstack (lib.sh's devstack_reexec): the environment it exports, the bus it runs and the
# service on it, as a test script sees them; the bus is open to other local users, with the system bus's
# policy.
source "$(dirname "$0")/../lib.sh"
devstack_reexec -- "$@"

dir=$(realpath "$VGPU_TEST_TMP")/stack

assert_eq "DBUS_SYSTEM_BUS_ADDRESS names the private bus" "unix:path=$dir/devstack/bus.sock" \
        "${DBUS_SYSTEM_BUS_ADDRESS:-}"
assert_eq "VGPU_RUNTIME_DIR is DIR/run" "$dir/run" "${VGPU_RUNTIME_DIR:-}"
assert_eq "VGPU_STATE_DIR is DIR" "$dir" "${VGPU_STATE_DIR:-}"
assert_eq "VGPU_DEVSTACK_DIR is DIR" "$dir" "${VGPU_DEVSTACK_DIR:-}"
assert_eq "COMMAND has no NOTIFY_SOCKET" "" "${NOTIFY_SOCKET:-}"
check "the runtime directory exists" test -d "$VGPU_RUNTIME_DIR"

check "the bus answers busctl status" busctl --system status
check "org.vgpu.Config1 is on the bus" bash -c 'busctl --system list --no-pager | grep -q "^org\.vgpu\.Config1 "'
check "vgpu-configd answers ListPools" busctl --system call org.vgpu.Config1 /org/vgpu/Config1 org.vgpu.Config1 \
        ListPools

pid=$(service_pid vgpu-configd)
owner=$(busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
        GetConnectionUnixProcessID s org.vgpu.Config1)
assert_eq "the pid file names the process that owns org.vgpu.Config1" "u $pid" "$owner"
service_env=$(tr '\0' '\n' <"/proc/$pid/environ")
assert_contains "the service has its own NOTIFY_SOCKET" "NOTIFY_SOCKET=$dir/devstack/vgpu-configd.notify" \
        "$service_env"
assert_contains "the service gets the bus address" "DBUS_SYSTEM_BUS_ADDRESS=unix:path=$dir/devstack/bus.sock" \
        "$service_env"
assert_contains "the service gets VGPU_RUNTIME_DIR" "VGPU_RUNTIME_DIR=$dir/run" "$service_env"
assert_eq "the service runs in a session of its own, away from the terminal's signals" "$pid" \
        "$(ps -o sid= -p "$pid" | tr -d ' ')"
assert_eq "its stdin is /dev/null" "/dev/null" "$(readlink "/proc/$pid/fd/0")"
assert_eq "its stdout is its log" "$dir/log/vgpu-configd.log" "$(readlink "/proc/$pid/fd/1")"
check "the project's policy files are copied into bus.d" test -e "$dir/devstack/bus.d/org.vgpu.Config1.conf"

if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
        as_nobody() {
                setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups \
                        env DBUS_SYSTEM_BUS_ADDRESS="$DBUS_SYSTEM_BUS_ADDRESS" "$@"
        }
        check "another local user reaches the bus and reads (ListPools)" as_nobody busctl --system call \
                org.vgpu.Config1 /org/vgpu/Config1 org.vgpu.Config1 ListPools
        # busctl shortens the bus's AccessDenied to "Access denied"; dbus-daemon's log says which rule.
        out=$(as_nobody busctl --system call org.vgpu.Config1 /org/vgpu/Config1 org.vgpu.Config1 RegisterVm \
                'ussa{sv}' 77 A low 0 2>&1)
        assert_contains "a change from that user is refused" "Access denied" "$out"
        check "by the bus policy, before vgpu-configd sees it" \
                grep -q 'Rejected send message.*member="RegisterVm"' "$dir/log/dbus-daemon.log"
        out=$(as_nobody busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                RequestName su org.vgpu.Config9 0 2>&1)
        assert_contains "that user may not own an org.vgpu name, as on the system bus" "Access denied" "$out"
else
        ok "# SKIP other users' access (needs root and setpriv)"
fi

done_testing
