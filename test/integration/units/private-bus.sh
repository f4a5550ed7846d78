# shellcheck shell=bash
# A private D-Bus bus and a vgpu-configd on it, for the tests of the installed system pieces (units, bus
# policy, introspection). Sourced after ../lib.sh.
#
#   private_bus_start DIR system   the system bus's default policy (from /usr/share/dbus-1/system.conf:
#                                  nobody may own names or call methods unless a rule allows it) plus
#                                  the project's real policy files, systemd-units/dbus/org.vgpu.*.conf;
#                                  dbus-daemon must run as root to tell users apart like the system bus.
#   private_bus_start DIR open     anyone may own and call anything: for tests of the interface itself.
#   configd_start DIR [WRAPPER…]   vgpu-configd on that bus, database DIR/config.db, optionally run
#                                  through a wrapper command (setpriv …); waits until it owns its name.
#   bus_call [BUSCTL ARGS…]        busctl --system on the private bus.
#
# Everything started here is stopped by private_bus_stop, which the EXIT trap calls.

PRIVATE_BUS_PID=
CONFIGD_PID=
PRIVATE_BUS_DIR=

_private_bus_config() {
        local dir=$1 mode=$2
        cat <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path=$dir/bus.socket</listen>
  <auth>EXTERNAL</auth>
EOF
        if [ "$mode" = open ]; then
                cat <<'EOF'
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
</busconfig>
EOF
                return
        fi
        # A distribution's default system-bus policy, shared with the system tests' VMs.
        sed '/^<!--/,/^-->/d' "$VGPU_SOURCE_DIR/test/tools/dbus-system-policy.xml"
        local f
        for f in "$VGPU_SOURCE_DIR"/systemd-units/dbus/org.vgpu.*.conf; do
                echo "  <include>$f</include>"
        done
        echo "</busconfig>"
}

private_bus_stop() {
        if [ -n "$CONFIGD_PID" ]; then
                kill "$CONFIGD_PID" 2>/dev/null
                wait "$CONFIGD_PID" 2>/dev/null
                CONFIGD_PID=
        fi
        if [ -n "$PRIVATE_BUS_PID" ]; then
                kill "$PRIVATE_BUS_PID" 2>/dev/null
                wait "$PRIVATE_BUS_PID" 2>/dev/null
                PRIVATE_BUS_PID=
        fi
}

# Prints the last lines of the logs of what this file started, as TAP comments.
private_bus_logs() {
        local f
        for f in "$PRIVATE_BUS_DIR"/dbus-daemon.log "$PRIVATE_BUS_DIR"/configd.log; do
                [ -s "$f" ] || continue
                echo "# --- $f (last 20 lines)"
                tail -n 20 "$f" | sed 's/^/# /'
        done
}

private_bus_start() {
        local dir=$1 mode=$2
        PRIVATE_BUS_DIR=$dir
        mkdir -p "$dir"
        # Unprivileged test users must reach the socket.
        chmod 0755 "$dir"
        _private_bus_config "$dir" "$mode" >"$dir/bus.conf"
        dbus-daemon --nofork --nopidfile --config-file="$dir/bus.conf" --print-address=3 \
                3>"$dir/address" 2>"$dir/dbus-daemon.log" &
        PRIVATE_BUS_PID=$!
        if ! wait_for 10 test -s "$dir/address"; then
                echo "# dbus-daemon did not start:" >&2
                sed 's/^/# /' "$dir/dbus-daemon.log" >&2
                return 1
        fi
        DBUS_SYSTEM_BUS_ADDRESS=$(head -n 1 "$dir/address")
        export DBUS_SYSTEM_BUS_ADDRESS
        # The private bus answers for the system bus here; nothing may fall back to the host's.
        unset DBUS_SESSION_BUS_ADDRESS
}

bus_call() {
        busctl --system "$@"
}

configd_owns_name() {
        [ "$(bus_call call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus NameHasOwner s \
                org.vgpu.Config1 2>/dev/null)" = "b true" ]
}

configd_start() {
        local dir=$1
        shift
        "$@" "$VGPU_BUILD_DIR/vgpu-configd" --database="$dir/config.db" >"$dir/configd.log" 2>&1 &
        CONFIGD_PID=$!
        if ! wait_for 15 configd_owns_name; then
                echo "# vgpu-configd did not take org.vgpu.Config1 within 15 s" >&2
                sed 's/^/# /' "$dir/configd.log" >&2
                return 1
        fi
}
