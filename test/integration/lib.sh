# shellcheck shell=bash
# Shared helpers for vgpu's integration tests: TAP output, assertions, and a private stack per test.
#
# A test script sources this file and calls `devstack_reexec "$@"` first: the script then re-runs itself
# inside `vgpu-devstack --state-dir <fresh temporary dir> -- "$0" "$@"`, so every test has its own private
# D-Bus bus, its own services and its own database, and everything is stopped when it ends.
# The build directory comes from VGPU_BUILD_DIR (meson sets it); binaries are taken from there.

set -u

: "${VGPU_BUILD_DIR:?VGPU_BUILD_DIR must name the build directory}"
export PATH="$VGPU_BUILD_DIR:$PATH"

_tap_n=0
_tap_failed=0

# devstack_reexec [DEVSTACK OPTIONS…] -- "$@": runs the calling script again under a fresh devstack.
devstack_reexec() {
        local opts=()
        while [ $# -gt 0 ] && [ "$1" != "--" ]; do
                opts+=("$1")
                shift
        done
        [ $# -gt 0 ] && shift
        if [ -n "${VGPU_TEST_TMP:-}" ]; then
                return 0
        fi
        local dir
        dir=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-test.XXXXXX")
        chmod 0755 "$dir"
        VGPU_TEST_TMP="$dir" "$VGPU_BUILD_DIR/vgpu-devstack" --state-dir "$dir/stack" "${opts[@]}" -- "$0" "$@"
        local rc=$?
        if [ "$rc" -eq 0 ] && [ -z "${VGPU_TEST_KEEP:-}" ]; then
                rm -rf "$dir"
        else
                echo "# test state kept in $dir" >&2
                for f in "$dir"/stack/log/*.log; do
                        [ -f "$f" ] || continue
                        echo "# --- $f (last 30 lines)" >&2
                        tail -n 30 "$f" | sed 's/^/# /' >&2
                done
        fi
        exit "$rc"
}

ok() {
        _tap_n=$((_tap_n + 1))
        echo "ok $_tap_n - $*"
}

not_ok() {
        _tap_n=$((_tap_n + 1))
        _tap_failed=$((_tap_failed + 1))
        echo "not ok $_tap_n - $*"
}

diag() {
        printf '%s\n' "$@" | sed 's/^/# /'
}

# check NAME COMMAND…: one TAP result from a command's success.
check() {
        local name=$1
        shift
        local out
        if out=$("$@" 2>&1); then
                ok "$name"
        else
                not_ok "$name"
                diag "command: $*" "$out"
        fi
}

# expect_exit NAME STATUS COMMAND…: the command must exit with exactly STATUS; its output is kept in
# $LAST_OUT (stdout) and $LAST_ERR (stderr).
expect_exit() {
        local name=$1 want=$2
        shift 2
        local errf
        errf=$(mktemp)
        LAST_OUT=$("$@" 2>"$errf")
        local rc=$?
        LAST_ERR=$(cat "$errf")
        rm -f "$errf"
        if [ "$rc" -eq "$want" ]; then
                ok "$name"
        else
                not_ok "$name"
                diag "command: $*" "expected exit status $want, got $rc" "stdout: $LAST_OUT" "stderr: $LAST_ERR"
        fi
}

# assert_eq NAME EXPECTED ACTUAL
assert_eq() {
        if [ "$2" = "$3" ]; then
                ok "$1"
        else
                not_ok "$1"
                diag "expected: $2" "actual:   $3"
        fi
}

# assert_contains NAME NEEDLE HAYSTACK
assert_contains() {
        case "$3" in
        *"$2"*) ok "$1" ;;
        *)
                not_ok "$1"
                diag "expected to find: $2" "in: $3"
                ;;
        esac
}

# service_pid NAME: the current pid of a devstack service (vgpu-devstack keeps it up to date).
service_pid() {
        cat "$VGPU_DEVSTACK_DIR/devstack/$1.pid"
}

# wait_for TIMEOUT_SECONDS COMMAND…: polls until the command succeeds.
wait_for() {
        local deadline=$((SECONDS + $1))
        shift
        until "$@" >/dev/null 2>&1; do
                [ "$SECONDS" -ge "$deadline" ] && return 1
                sleep 0.1
        done
}

# done_testing: prints the TAP plan and exits non-zero when anything failed.
done_testing() {
        echo "1..$_tap_n"
        [ "$_tap_failed" -eq 0 ]
        exit $?
}
