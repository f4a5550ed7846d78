#!/usr/bin/env bash
# vgpu-ingestd with the real vgpu-configd under vgpu-devstack: per-VM sockets follow registration live, the
# HELLO negotiation, every class of lie from a guest answered or punished without harm to other VMs, a guest
# that vanishes, ListChannels / DisconnectVm over the bus, and what a valid command gets while no scheduler
# runs (BUSY). The test starts vgpu-ingestd itself, in the background, on devstack's bus and runtime dir.
source "$(dirname "$0")/../lib.sh"

: "${VGPU_INGEST_GUEST:=$VGPU_BUILD_DIR/test/integration/ingestd/ingest-guest}"
# This test runs its own vgpu-ingestd, and no scheduler (it checks what a guest sees without one).
devstack_reexec --without=vgpu-ingestd,vgpu-schedd -- "$@"

guest() { "$VGPU_INGEST_GUEST" "$@"; }
sock() { echo "$VGPU_RUNTIME_DIR/vm/$1.sock"; }
ingestd_alive() { kill -0 "$ingestd_pid" 2>/dev/null; }
channels() { busctl --system --json=short call org.vgpu.Ingest1 /org/vgpu/Ingest1 org.vgpu.Ingest1 ListChannels; }
channel_field() { channels | jq -r --argjson id "$1" ".data[0][] | select(.vm_id.data == \$id) | .$2.data"; }
as_nobody() {
        setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups \
                env DBUS_SYSTEM_BUS_ADDRESS="$DBUS_SYSTEM_BUS_ADDRESS" "$@"
}

log="$VGPU_TEST_TMP/ingestd.log"
expect_exit "VM 1 registered in pool A" 0 vgpu-admin register-vm --vm-id=1 --pool=A --priority=high
expect_exit "VM 2 registered in pool A" 0 vgpu-admin register-vm --vm-id=2 --pool=A --priority=low

vgpu-ingestd >"$log" 2>&1 &
ingestd_pid=$!
trap 'kill "$ingestd_pid" 2>/dev/null' EXIT
if ! wait_for 10 busctl --system status org.vgpu.Ingest1; then
        not_ok "vgpu-ingestd owns org.vgpu.Ingest1"
        diag "$(cat "$log")" "(as root, the bus needs systemd-units/dbus/org.vgpu.Ingest1.conf to let root own it)"
        done_testing
fi
ok "vgpu-ingestd owns org.vgpu.Ingest1"

# --- sockets follow registration ---
check "VM 1's socket exists" wait_for 5 test -S "$(sock 1)"
check "VM 2's socket exists" test -S "$(sock 2)"
assert_eq "VM 1's socket is mode 0600" "600" "$(stat -c %a "$(sock 1)")"
expect_exit "VM 3 registered live" 0 vgpu-admin register-vm --vm-id=3 --pool=B --priority=medium
check "VM 3's socket appears on the signal" wait_for 5 test -S "$(sock 3)"
expect_exit "VM 3 unregistered live" 0 vgpu-admin unregister-vm --vm-id=3
check "VM 3's socket vanishes on the signal" wait_for 5 bash -c "! test -e '$(sock 3)'"
assert_eq "an unregistered VM has no socket to connect to" "connect No such file or directory" "$(guest hello 3)"

# --- the interface is what dbus-interfaces/org.vgpu.Ingest1.xml says ---
expect_exit "the running interface matches org.vgpu.Ingest1.xml" 0 python3 \
        "$VGPU_SOURCE_DIR/test/tools/compare-introspection.py" --bus-name org.vgpu.Ingest1 \
        --object-path /org/vgpu/Ingest1 --interface org.vgpu.Ingest1 "$VGPU_SOURCE_DIR/dbus-interfaces/org.vgpu.Ingest1.xml"

# --- configd restarts: ingestd reads its state again ---
kill -9 "$(service_pid vgpu-configd)"
expect_exit "VM 4 registered after configd restarted" 0 wait_for 20 vgpu-admin register-vm --vm-id=4 --pool=B --priority=low
check "VM 4's socket appears" wait_for 5 test -S "$(sock 4)"
assert_contains "the log says configd came back" "org.vgpu.Config1 is on the bus" "$(cat "$log")"
expect_exit "VM 4 unregistered" 0 vgpu-admin unregister-vm --vm-id=4
check "VM 4's socket vanishes" wait_for 5 bash -c "! test -e '$(sock 4)'"

# --- HELLO ---
out=$(guest hello 1)
assert_eq "HELLO [1,1] is answered ok with version 1" "hello ok" "$(sed -n 1p <<<"$out")"
assert_eq "the answer names version 1 and the host's minimum" "version 1 min 1" "$(sed -n 2p <<<"$out")"
assert_eq "HELLO [7,9] is refused with version-mismatch" "hello-mismatch version-mismatch" "$(sed -n 3p <<<"$out")"
assert_eq "the mismatch answer names the host's maximum" "version 1 min 1" "$(sed -n 4p <<<"$out")"

# --- lies, each answered; the channel stays open ---
out=$(guest lies 1)
want="before-hello not-negotiated
hello ok
unknown-opcode unknown-opcode
reserved-flags invalid-argument
reserved-operand-bytes invalid-argument
offset-past-data-area out-of-bounds
offset-overflow out-of-bounds
oversize-module invalid-argument
oversize-param-count invalid-argument
mem-alloc-zero invalid-argument
still-open ok"
assert_eq "every lie gets the validator's status and the channel stays open" "$want" "$out"

# --- no scheduler: a valid command completes BUSY ---
assert_eq "with no scheduler, MEM_ALLOC completes busy" "hello ok
mem-alloc busy" "$(guest busy 2)"
assert_contains "the log says the pool has no scheduler" "no scheduler" "$(cat "$log")"

# --- a violation closes one channel; another VM is served meanwhile ---
holdout="$VGPU_TEST_TMP/hold2.out"
"$VGPU_INGEST_GUEST" hold 2 60 >"$holdout" &
hold_pid=$!
check "VM 2's guest is connected" wait_for 5 grep -q ready "$holdout"
assert_eq "a corrupted request index closes the channel for protocol-violation" \
        "corrupt-index protocol-violation" "$(guest corrupt-index 1 | tail -n 1)"
out=$(guest flood 1 | tail -n 1)
assert_contains "a flood of invalid requests closes the channel for protocol-violation" "flood protocol-violation" "$out"
check "vgpu-ingestd is still running" ingestd_alive
assert_eq "VM 2 stayed connected through VM 1's violations" "connected" "$(channel_field 2 state)"
assert_eq "VM 1 can connect again afterwards" "hello ok" "$(guest hello 1 | sed -n 1p)"
assert_contains "the violation is logged with the VM" "VM 1: closed the channel (protocol-violation)" "$(cat "$log")"

# --- a guest that dies mid-command ---
guest die 1 >/dev/null 2>&1
check "VM 1 is back to listening after its guest died" wait_for 5 \
        bash -c "[ \"\$(busctl --system --json=short call org.vgpu.Ingest1 /org/vgpu/Ingest1 org.vgpu.Ingest1 \
                 ListChannels | jq -r '.data[0][] | select(.vm_id.data == 1) | .state.data')\" = listening ]"
assert_eq "VM 1 can connect after its guest died" "hello ok" "$(guest hello 1 | sed -n 1p)"

# --- live changes: priority and pool move of a connected VM ---
expect_exit "VM 2's priority raised while connected" 0 vgpu-admin set-priority --vm-id=2 --priority=high
check "the mirror applies it to the next command" wait_for 5 bash -c \
        "busctl --system --json=short call org.vgpu.Ingest1 /org/vgpu/Ingest1 org.vgpu.Ingest1 ListChannels | \
         jq -e '.data[0][] | select(.vm_id.data == 2 and .priority.data == \"high\")'"
expect_exit "VM 2 moved to pool B while connected" 0 vgpu-admin set-pool --vm-id=2 --pool=B
check "ListChannels shows VM 2 in pool B" wait_for 5 bash -c \
        "busctl --system --json=short call org.vgpu.Ingest1 /org/vgpu/Ingest1 org.vgpu.Ingest1 ListChannels | \
         jq -e '.data[0][] | select(.vm_id.data == 2 and .pool.data == \"B\" and .state.data == \"connected\")'"
expect_exit "VM 2 moved back to pool A, low" 0 bash -c "vgpu-admin set-pool --vm-id=2 --pool=A && \
        vgpu-admin set-priority --vm-id=2 --priority=low"

# --- ListChannels and DisconnectVm ---
assert_eq "ListChannels lists both VMs" "1 2" "$(channels | jq -r '[.data[0][].vm_id.data] | join(" ")')"
assert_eq "ListChannels shows VM 2's pool" "A" "$(channel_field 2 pool)"
assert_eq "ListChannels shows VM 2's priority" "low" "$(channel_field 2 priority)"
assert_eq "ListChannels shows VM 2's guest pid" "$hold_pid" "$(channel_field 2 peer_pid)"
assert_eq "ListChannels counts VM 2's requests" "1" "$(channel_field 2 requests)"
expect_exit "ListChannels is open to nobody" 0 as_nobody busctl --system call org.vgpu.Ingest1 /org/vgpu/Ingest1 \
        org.vgpu.Ingest1 ListChannels
expect_exit "DisconnectVm is refused for nobody" 1 as_nobody busctl --system call org.vgpu.Ingest1 \
        /org/vgpu/Ingest1 org.vgpu.Ingest1 DisconnectVm u 2
assert_contains "the refusal says access was denied" "ccess denied" "$LAST_ERR"
assert_eq "VM 2 is still connected after the refusal" "connected" "$(channel_field 2 state)"
expect_exit "root disconnects VM 2" 0 busctl --system call org.vgpu.Ingest1 /org/vgpu/Ingest1 org.vgpu.Ingest1 \
        DisconnectVm u 2
wait "$hold_pid"
assert_eq "VM 2's guest saw channel-closed" "hold channel-closed" "$(tail -n 1 "$holdout")"
expect_exit "DisconnectVm of a VM with no guest is refused" 1 busctl --system call org.vgpu.Ingest1 \
        /org/vgpu/Ingest1 org.vgpu.Ingest1 DisconnectVm u 2
assert_contains "… with a sentence that says why" "VM 2 has no guest connected" "$LAST_ERR"

# --- unregister with a guest connected ---
"$VGPU_INGEST_GUEST" hold 2 60 >"$holdout" &
hold_pid=$!
check "VM 2's guest is connected again" wait_for 5 grep -q ready "$holdout"
expect_exit "VM 2 unregistered while connected" 0 vgpu-admin unregister-vm --vm-id=2
wait "$hold_pid"
assert_eq "VM 2's guest saw channel-closed on unregister" "hold channel-closed" "$(tail -n 1 "$holdout")"
check "VM 2's socket is gone" bash -c "! test -e '$(sock 2)'"

# --- SIGTERM ---
"$VGPU_INGEST_GUEST" hold 1 60 >"$holdout" &
hold_pid=$!
check "VM 1's guest is connected" wait_for 5 grep -q ready "$holdout"
kill -TERM "$ingestd_pid"
wait "$ingestd_pid"
assert_eq "vgpu-ingestd exits 0 on SIGTERM" "0" "$?"
wait "$hold_pid"
assert_eq "the connected guest saw channel-closed" "hold channel-closed" "$(tail -n 1 "$holdout")"
check "the sockets are removed" bash -c "! test -e '$(sock 1)'"
trap - EXIT
done_testing
