# shellcheck shell=sh
# TAP from inside a test VM (busybox sh): every /init of the system tests sources this as /lib/vm-tap.sh.
# Each result is one console line, "$TAP_PREFIX: ok - ..." or "$TAP_PREFIX: not ok - ...", diagnostics
# "$TAP_PREFIX: # ..."; the harness on the host (lib.sh: vm_tap_report) turns them into TAP. TAP_PREFIX
# defaults to VMTAP and PHASE_LABEL (put before the uptime of phase lines) to nothing.

: "${TAP_PREFIX:=VMTAP}"
: "${PHASE_LABEL:=}"
failures=0
say() {
        echo "$TAP_PREFIX: $*"
}
ok() {
        say "ok - $*"
}
not_ok() {
        failures=$((failures + 1))
        say "not ok - $*"
}
diag() {
        printf '%s\n' "$@" | sed "s/^/$TAP_PREFIX: # /"
}
# check NAME COMMAND...: one result from a command's success; its output becomes diagnostics on failure.
check() {
        name=$1
        shift
        if out=$("$@" 2>&1); then
                ok "$name"
        else
                not_ok "$name"
                diag "command: $*" "$out"
        fi
}
# expect NAME ACTUAL EXPECTED: one result from comparing two strings.
expect() {
        if [ "$2" = "$3" ]; then
                ok "$1"
        else
                not_ok "$1"
                diag "expected: $3" "actual:   $2"
        fi
}
# now: the uptime, in seconds with two decimals. since T0: seconds since T0 (a now value), one decimal.
now() {
        cut -d' ' -f1 /proc/uptime
}
since() {
        echo "$1 $(now)" | awk '{printf "%.1f", $2 - $1}'
}
# phase TEXT: a diagnostic line with the uptime, to see where the time goes.
phase() {
        say "# [$PHASE_LABEL$(now) s] $*"
}
