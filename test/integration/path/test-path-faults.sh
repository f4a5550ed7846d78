#!/usr/bin/env bash
# Faults on the command path, every process real, under vgpu-devstack: a pool move of a connected guest,
# executors killed with SIGKILL (restarted on the same connection, up to the crash-loop limit), and a
# scheduler killed with SIGKILL. In each case the guest's outstanding work ends with an error (not a hang),
# the VM is served again, and the other VMs and the other pool notice nothing.
source "$(dirname "$0")/../lib.sh"
devstack_reexec -- "$@"

expect_exit "register VM 1 in pool A" 0 vgpu-admin register-vm --vm-id=1 --pool=A --priority=high
expect_exit "register VM 8 in pool B" 0 vgpu-admin register-vm --vm-id=8 --pool=B --priority=low
wait_for 10 test -S "$VGPU_RUNTIME_DIR/vm/8.sock"

# long_guest VM: a guest that keeps the channel busy for far longer than the test takes.
long_guest() {
        vgpu-load --vm-id "$1" --count 1000000 --size 16 >"$VGPU_TEST_TMP/load-$1.out" 2>"$VGPU_TEST_TMP/load-$1.err" &
        echo $!
}
channel_connected() {
        [ "$(vgpu-admin --json channels --vm-id="$1" 2>/dev/null | jq -r '.[0].state')" = connected ]
}
# ends_with_error PID NAME: the guest process ends by itself, with a non-zero status, within 20 s.
ends_with_error() {
        local pid=$1 name=$2 i
        for i in $(seq 1 200); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
                kill "$pid"
                not_ok "$name (the guest was still waiting after 20 s)"
                return
        fi
        wait "$pid"
        local rc=$?
        if [ "$rc" -ne 0 ]; then ok "$name"; else not_ok "$name (exit status 0)"; fi
}

# A pool move while the guest is connected: its GPU state is gone, it is told so.
g1=$(long_guest 1)
check "VM 1's guest is connected" wait_for 10 channel_connected 1
b_guest=$(long_guest 8)
check "VM 8's guest (pool B) is connected" wait_for 10 channel_connected 8
expect_exit "move VM 1 to pool B while its guest runs" 0 vgpu-admin set-pool --vm-id=1 --pool=B
ends_with_error "$g1" "VM 1's guest ends with an error after the move"
diag "VM 1's guest said: $(tail -n 1 "$VGPU_TEST_TMP/load-1.err")"
expect_exit "VM 1 is served again, now by pool B" 0 vgpu-load --vm-id 1 --count 20 --size 16
expect_exit "move VM 1 back to pool A" 0 vgpu-admin set-pool --vm-id=1 --pool=A

# vm_field POOL VM KEY: one key of a VM's record in that pool scheduler's ListVms.
vm_field() {
        busctl --system --json=short call "org.vgpu.Scheduler.$1" /org/vgpu/Scheduler1 org.vgpu.Scheduler1 \
                ListVms | jq -r --argjson vm "$2" ".data[0][] | select(.vm_id.data == \$vm) | .$3.data"
}
channel_field() { vgpu-admin --json channels --vm-id="$1" 2>/dev/null | jq -r ".[0].$2"; }
lines() { grep -cx "$1" "$guest_out" 2>/dev/null; }
lines_reach() { [ "$(lines "$1")" -ge "$2" ]; }

# An executor killed with SIGKILL while its guest keeps gemm launches outstanding: those complete
# state-lost, the same connection goes on with a fresh executor (which does not know the old handles),
# another VM of the pool and pool B notice nothing. Six deaths within the window (the default limit: 5
# restarts in 60 s) suspend the VM: its commands complete unavailable.
expect_exit "register VM 2 in pool A" 0 vgpu-admin register-vm --vm-id=2 --pool=A --priority=low
wait_for 10 test -S "$VGPU_RUNTIME_DIR/vm/2.sock"
guest_out=$VGPU_TEST_TMP/restart-1.out
restart-guest 1 >"$guest_out" 2>"$VGPU_TEST_TMP/restart-1.err" &
rg=$!
check "VM 1's guest has its state on the device" wait_for 20 lines_reach ready 1
g2=$(long_guest 2)
check "VM 2's guest (pool A) is connected" wait_for 10 channel_connected 2
connected_before=$(channel_field 1 connected_usec)
old_executor=$(vm_field A 1 executor_pid)
kill -9 "$old_executor"
ok "VM 1's executor (pid $old_executor) killed with SIGKILL mid-load"
check "its outstanding commands complete state-lost" wait_for 20 lines_reach "error state-lost" 1
check "on the same connection, a handle from before is refused as unknown" \
        wait_for 20 lines_reach "old-handle no-such-handle" 1
check "the guest re-creates its state and gets right results again" wait_for 20 lines_reach recovered 1
new_executor=$(vm_field A 1 executor_pid)
check "a fresh executor serves VM 1 (pid $new_executor)" test "$new_executor" -gt 0 -a "$new_executor" != "$old_executor"
assert_eq "ListVms counts 1 death and 1 restart for VM 1" "1 1" \
        "$(vm_field A 1 executor_deaths) $(vm_field A 1 executor_restarts)"
assert_eq "the guest's channel was never closed: same connection" "$connected_before connected" \
        "$(channel_field 1 connected_usec) $(channel_field 1 state)"
sched_log=$(ls "$VGPU_DEVSTACK_DIR"/log/vgpu-schedd*A*.log 2>/dev/null | head -n 1)
check "the scheduler's log says what happened" grep -q "Executor of VM 1 died (signal 9).*STATE_LOST" "$sched_log"

for death in 2 3 4 5 6; do
        wait_for 20 lines_reach recovered $((death - 1))
        kill -9 "$(vm_field A 1 executor_pid)" 2>/dev/null
        wait_for 20 lines_reach "error state-lost" "$death"
done
check "crash loop: after 5 restarts the 6th death within 60 s suspends VM 1; its guest is told unavailable" \
        wait_for 20 lines_reach unavailable 1
assert_eq "the guest saw 6 deaths and recovered 5 times" "6 5" "$(lines "error state-lost") $(lines recovered)"
assert_eq "ListVms: VM 1 suspended, 6 deaths, 5 restarts, no executor" "suspended 6 5 0" \
        "$(vm_field A 1 state) $(vm_field A 1 executor_deaths) $(vm_field A 1 executor_restarts) $(vm_field A 1 executor_pid)"
assert_eq "the suspended VM's guest is still connected: same connection" "$connected_before connected" \
        "$(channel_field 1 connected_usec) $(channel_field 1 state)"
check "the log says the restart limit was reached" grep -q "VM 1 died .*restart limit reached" "$sched_log"
kill "$rg"
wait "$rg" 2>/dev/null
assert_eq "VM 1's guest reported nothing unexpected" "" "$(grep unexpected "$guest_out")"
check "VM 2's guest (pool A) ran through all of it" kill -0 "$g2"
kill "$g2"
wait "$g2" 2>/dev/null
assert_eq "VM 2's guest reported no error" "" "$(cat "$VGPU_TEST_TMP/load-2.err")"
check "VM 1's channel closed when its guest left" wait_for 10 sh -c "! vgpu-admin --json channels --vm-id=1 | grep -q '\"connected\"'"
expect_exit "VM 1 reconnects: a new attachment is served at once" 0 vgpu-load --vm-id 1 --count 20 --size 16

# A scheduler killed with SIGKILL while a guest of its pool runs.
g1=$(long_guest 1)
check "VM 1's guest is connected again" wait_for 10 channel_connected 1
old=$(service_pid vgpu-schedd@A)
kill -9 "$old"
ok "vgpu-schedd@A (pid $old) killed with SIGKILL"
ends_with_error "$g1" "VM 1's guest ends with an error instead of hanging"
diag "VM 1's guest said: $(tail -n 1 "$VGPU_TEST_TMP/load-1.err")"
sched_restarted() { [ "$(service_pid vgpu-schedd@A 2>/dev/null)" != "$old" ]; }
check "vgpu-devstack restarted vgpu-schedd@A" wait_for 20 sched_restarted
served_again() { vgpu-load --vm-id 1 --count 20 --size 16 >/dev/null 2>&1; }
check "VM 1 reconnects and is served by the new scheduler" wait_for 20 served_again

# Pool B's guest ran through both faults untouched.
check "VM 8's guest (pool B) is still running" kill -0 "$b_guest"
check "VM 8's channel is still connected" channel_connected 8
kill "$b_guest"
wait "$b_guest" 2>/dev/null
assert_eq "VM 8's guest reported no error" "" "$(cat "$VGPU_TEST_TMP/load-8.err")"

done_testing
