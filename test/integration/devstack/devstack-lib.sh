# shellcheck shell=bash
# Helpers for the tests of vgpu-devstack itself, which start and stop their own stacks (sourced after
# ../lib.sh). Every stack started here lives under $DEVSTACK_TMP and is killed by the EXIT trap.
#
#   stack_start DIR [OPTIONS…]   vgpu-devstack --state-dir DIR without COMMAND, in the background; its
#                                stdout goes to DIR.out, its stderr to DIR.err; sets STACK_PID and waits
#                                until the stack says it is up
#   stack_stop_wait              waits for STACK_PID to end; its exit status is in STACK_STATUS
#   on_stack DIR COMMAND…        runs COMMAND with the environment of the stack in DIR
#   stack_processes DIR          the pids of processes whose command line names DIR (none once stopped)
#   no_stack_processes DIR       succeeds when there are none

# A real path: devstack resolves its --state-dir, and the tests compare with what it exports.
DEVSTACK_TMP=$(realpath "$(mktemp -d "${TMPDIR:-/tmp}/vgpu-devstack-test.XXXXXX")")
chmod 0755 "$DEVSTACK_TMP"
STACK_PID=
STACK_STATUS=
_stack_pids=()

_devstack_cleanup() {
        local pid
        for pid in "${_stack_pids[@]}"; do
                kill -TERM "$pid" 2>/dev/null
        done
        for pid in "${_stack_pids[@]}"; do
                wait "$pid" 2>/dev/null
        done
        if [ "$_tap_failed" -eq 0 ] && [ -z "${VGPU_TEST_KEEP:-}" ]; then
                rm -rf "$DEVSTACK_TMP"
        else
                echo "# test state kept in $DEVSTACK_TMP" >&2
        fi
}
trap _devstack_cleanup EXIT

stack_start() {
        local dir=$1
        shift
        vgpu-devstack --state-dir "$dir" "$@" >"$dir.out" 2>"$dir.err" </dev/null &
        STACK_PID=$!
        _stack_pids+=("$STACK_PID")
        if ! wait_for 40 grep -q "stack is up" "$dir.err"; then
                echo "# vgpu-devstack on $dir did not come up:" >&2
                sed 's/^/# /' "$dir.err" >&2
                return 1
        fi
}

stack_stop_wait() {
        # Quiet: bash would report a stack killed on purpose ("Killed") on stderr.
        { wait "$STACK_PID"; } 2>/dev/null
        STACK_STATUS=$?
}

on_stack() {
        local dir=$1
        shift
        DBUS_SYSTEM_BUS_ADDRESS="unix:path=$dir/devstack/bus.sock" VGPU_DEVSTACK_DIR="$dir" "$@"
}

stack_processes() {
        pgrep -f -- "$1(/| |\$)" || true
}

no_stack_processes() {
        [ -z "$(stack_processes "$1")" ]
}

config_call() {
        busctl --system call org.vgpu.Config1 /org/vgpu/Config1 org.vgpu.Config1 "$@"
}
