# shellcheck shell=bash
# Helpers for the vgpu-admin tests, on top of ../lib.sh: the stored state as vgpu-admin reports it, and
# a refusal check that proves nothing changed.

# The uuid the tests give VM N: a0b1c2d3-e4f5-4000-8000-00000000000N (N zero-padded to 12 digits).
vm_uuid() {
        printf 'a0b1c2d3-e4f5-4000-8000-%012d' "$1"
}

# The whole stored state: every VM, every pool, and how long the audit log is.
state_snapshot() {
        vgpu-admin --json list-vms
        vgpu-admin --json list-pools
        vgpu-admin --json audit | jq length
}

# expect_refusal NAME STATUS NEEDLE COMMAND…: the command exits with STATUS, its message on stderr
# contains NEEDLE, it prints nothing on stdout, and the stored state (VMs, pools, audit log) is the same
# afterwards.
expect_refusal() {
        local name=$1 status=$2 needle=$3
        shift 3
        local before after
        before=$(state_snapshot)
        expect_exit "$name: exits $status" "$status" "$@"
        assert_contains "$name: message names $needle" "$needle" "$LAST_ERR"
        assert_eq "$name: prints nothing on stdout" "" "$LAST_OUT"
        after=$(state_snapshot)
        assert_eq "$name: stored data unchanged" "$before" "$after"
}

# json_check NAME JSON JQ-FILTER: the filter, run with jq -e, must be true for the document.
json_check() {
        local name=$1 json=$2 filter=$3
        local out
        if out=$(jq -e "$filter" <<<"$json" 2>&1); then
                ok "$name"
        else
                not_ok "$name"
                diag "jq filter: $filter" "result: $out" "document: $json"
        fi
}
