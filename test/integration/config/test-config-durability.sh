#!/usr/bin/env bash
# Nothing acknowledged is lost: vgpu-configd killed with SIGKILL in the middle of a stream of changes comes
# back (restarted by vgpu-devstack, as Restart=on-failure would) with every acknowledged change; twenty
# administrators writing at once lose no update.
source "$(dirname "$0")/../lib.sh"
devstack_reexec -- "$@"

expect_exit "a large pool for the load" 0 vgpu-admin create-pool --pool=Load --capacity=4000

# A writer that records each VM id only after vgpu-admin reported success.
acked="$VGPU_TEST_TMP/acked"
: >"$acked"
(
        for i in $(seq 1 300); do
                vgpu-admin register-vm --vm-id="$i" --pool=Load --priority=low >/dev/null 2>&1 && echo "$i" >>"$acked"
        done
) &
writer=$!

acked_at_least() { [ "$(wc -l <"$acked")" -ge "$1" ]; }
# wait_for re-runs its command, so the count must be read inside it.
wait_for 60 acked_at_least 40
old_pid=$(service_pid vgpu-configd)
kill -9 "$old_pid"
n_before=$(wc -l <"$acked")
if [ "$n_before" -lt 300 ]; then
        ok "vgpu-configd (pid $old_pid) killed with SIGKILL mid-load, after $n_before acknowledged registrations"
else
        not_ok "vgpu-configd was killed mid-load (the writer had already finished)"
fi

pid_changed() { [ "$(service_pid vgpu-configd 2>/dev/null)" != "$old_pid" ]; }
wait_for 30 pid_changed && wait_for 30 vgpu-admin list-pools
check "vgpu-configd was restarted and answers again" vgpu-admin list-pools
wait "$writer"

stored="$VGPU_TEST_TMP/stored"
# comm(1) needs both lists in the same (lexical) order.
vgpu-admin --json list-vms --pool=Load | jq -r '.[].vm_id' | sort >"$stored"
missing=$(sort "$acked" | comm -23 - "$stored")
assert_eq "every acknowledged registration survived the kill ($(wc -l <"$acked") acknowledged)" "" "$missing"
refused=$((300 - $(wc -l <"$acked")))
diag "$refused registrations were refused while the service was down (not acknowledged, so not promised)"

# Twenty concurrent administrators, each registering ten VMs and raising their priority.
pids=()
for w in $(seq 1 20); do
        (
                for i in $(seq 1 10); do
                        id=$((10000 + w * 100 + i))
                        vgpu-admin register-vm --vm-id="$id" --pool=Load --priority=low >/dev/null || exit 1
                        vgpu-admin set-priority --vm-id="$id" --priority=high >/dev/null || exit 1
                done
        ) &
        pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
assert_eq "all twenty writers succeeded" 0 "$failed"
count=$(vgpu-admin --json list-vms --pool=Load --priority=high | jq '[.[] | select(.vm_id > 10000)] | length')
assert_eq "all 200 VMs are stored with the new priority" 200 "$count"
audit=$(vgpu-admin --json audit --limit=10000 | jq '[.[] | select(.vm_id > 10000)] | length')
assert_eq "every one of the 400 changes is in the audit log" 400 "$audit"

done_testing
