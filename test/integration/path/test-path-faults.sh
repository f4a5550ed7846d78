#!/usr/bin/env bash
# Faults on the command path, every process real, under vgpu-devstack: a pool move of a connected guest,
# and a scheduler killed with SIGKILL. In each case the guest's outstanding work ends with an error (not a
# hang), the VM can connect again and be served, and the other pool notices nothing.
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
