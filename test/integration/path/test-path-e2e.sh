#!/usr/bin/env bash
# The command path end to end, every process real: vgpu-run in the role of a guest → vgpu-ingestd →
# vgpu-schedd@POOL → that VM's vgpu-executor → back, under vgpu-devstack. Results are checked against an
# independent reference; the pool and priority the scheduler sees come from the configuration store
# (stamped by ingestd), and changes made with vgpu-admin apply to the next command without a restart.
source "$(dirname "$0")/../lib.sh"
devstack_reexec -- "$@"

data=$VGPU_TEST_TMP/data
mkdir -p "$data"
python3 "$(dirname "$0")/npy-check.py" make "$data"

# stat POOL KEY: one counter of that pool's scheduler.
stat() {
        busctl --system --json=short call "org.vgpu.Scheduler.$1" /org/vgpu/Scheduler1 org.vgpu.Scheduler1 \
                GetStats | jq -r ".data[0].$2.data"
}

expect_exit "register VM 1 in pool A, high" 0 vgpu-admin register-vm --vm-id=1 --pool=A --priority=high
expect_exit "register VM 8 in pool B, low" 0 vgpu-admin register-vm --vm-id=8 --pool=B --priority=low
check "VM 1's channel socket exists" wait_for 10 test -S "$VGPU_RUNTIME_DIR/vm/1.sock"

expect_exit "VM 1 runs gemm" 0 vgpu-run --vm-id 1 gemm --a "$data/a.npy" --b "$data/b.npy" --out "$data/c.npy"
check "the gemm result matches the reference" python3 "$(dirname "$0")/npy-check.py" check gemm "$data" "$data/c.npy"
expect_exit "VM 8 runs softmax" 0 vgpu-run --vm-id 8 softmax --in "$data/x.npy" --out "$data/s.npy"
check "the softmax result matches the reference" python3 "$(dirname "$0")/npy-check.py" check softmax "$data" \
        "$data/s.npy"

# Stamping: VM 1's commands reached pool A at high priority, VM 8's pool B at low; nothing crossed pools.
assert_eq "pool A served high-priority commands" "true" "$(stat A completed_high | jq '. > 0')"
assert_eq "pool A served nothing at low priority" "0" "$(stat A completed_low)"
assert_eq "pool B served low-priority commands" "true" "$(stat B completed_low | jq '. > 0')"
assert_eq "pool B served nothing at high priority" "0" "$(stat B completed_high)"

# A priority change applies to the next command, with no restart.
pid_before=$(service_pid vgpu-ingestd)
expect_exit "set VM 1's priority to low" 0 vgpu-admin set-priority --vm-id=1 --priority=low
expect_exit "VM 1 runs relu" 0 vgpu-run --vm-id 1 relu --in "$data/x.npy" --out "$data/r.npy"
check "the relu result matches the reference" python3 "$(dirname "$0")/npy-check.py" check relu "$data" "$data/r.npy"
assert_eq "pool A now served VM 1 at low priority" "true" "$(stat A completed_low | jq '. > 0')"
assert_eq "no service was restarted" "$pid_before" "$(service_pid vgpu-ingestd)"

# A pool move: the next connection of VM 1 is served by pool B's scheduler.
b_before=$(stat B completed_low)
expect_exit "move VM 1 to pool B" 0 vgpu-admin set-pool --vm-id=1 --pool=B
expect_exit "VM 1 runs gemm again" 0 vgpu-run --vm-id 1 gemm --a "$data/a.npy" --b "$data/b.npy" --out "$data/c2.npy"
check "the result is right in pool B too" python3 "$(dirname "$0")/npy-check.py" check gemm "$data" "$data/c2.npy"
assert_eq "pool B served VM 1's commands" "true" "$(stat B completed_low | jq ". > $b_before")"

# No channel for a VM that is not registered, and none left after unregistering.
expect_exit "an unregistered VM has no channel" 1 vgpu-run --vm-id 99 relu --in "$data/x.npy" --out "$data/n.npy"
expect_exit "unregister VM 8" 0 vgpu-admin unregister-vm --vm-id=8
check "VM 8's socket is gone" wait_for 10 test ! -e "$VGPU_RUNTIME_DIR/vm/8.sock"
expect_exit "VM 8 can no longer run anything" 1 vgpu-run --vm-id 8 relu --in "$data/x.npy" --out "$data/n.npy"

done_testing
