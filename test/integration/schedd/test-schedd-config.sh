#!/usr/bin/env bash
# vgpu-schedd follows its pool's record in vgpu-configd, every process real, under vgpu-devstack: the Mode
# and GpuResource properties report the store's values, a configure-pool changes them at once (with
# PropertiesChanged and a log line), executors started afterwards get the new mode, the other pool is left
# alone, and the running service introspects exactly as dbus-interfaces/org.vgpu.Scheduler1.xml says.
source "$(dirname "$0")/../lib.sh"
devstack_reexec -- "$@"

: "${VGPU_SOURCE_DIR:?VGPU_SOURCE_DIR must name the source directory}"
xml=$VGPU_SOURCE_DIR/dbus-interfaces/org.vgpu.Scheduler1.xml
compare=$VGPU_SOURCE_DIR/test/tools/compare-introspection.py

prop() {
        busctl --system get-property "org.vgpu.Scheduler.$1" /org/vgpu/Scheduler1 org.vgpu.Scheduler1 "$2" |
                sed 's/^s "\(.*\)"$/\1/'
}
vm_field() {
        busctl --system --json=short call "org.vgpu.Scheduler.$1" /org/vgpu/Scheduler1 org.vgpu.Scheduler1 \
                ListVms | jq -r --argjson vm "$2" ".data[0][] | select(.vm_id.data == \$vm) | .$3.data"
}
prop_is() { [ "$(prop "$1" "$2")" = "$3" ]; }
executor_cmdline() {
        local pid
        pid=$(vm_field "$1" "$2" executor_pid)
        [ -n "$pid" ] && [ "$pid" -gt 0 ] && tr '\0' ' ' <"/proc/$pid/cmdline"
}
has_executor() { [ "$(vm_field "$1" "$2" executor_pid)" -gt 0 ] 2>/dev/null; }

expect_exit "the running scheduler's org.vgpu.Scheduler1 matches the XML" 0 \
        python3 "$compare" --interface org.vgpu.Scheduler1 --bus-name org.vgpu.Scheduler.A \
        --object-path /org/vgpu/Scheduler1 "$xml"
assert_eq "pool A starts as the store says: isolated, no GPU resource" "isolated|" "$(prop A Mode)|$(prop A GpuResource)"
sched_log=$(ls "$VGPU_DEVSTACK_DIR"/log/vgpu-schedd*A*.log 2>/dev/null | head -n 1)
check "the scheduler logged what it read from the store" grep -q "Pool A: mode isolated, GPU resource ''" "$sched_log"

busctl --system --json=short monitor \
        --match "type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',path='/org/vgpu/Scheduler1'" \
        >"$VGPU_TEST_TMP/monitor.json" 2>"$VGPU_TEST_TMP/monitor.err" &
monitor=$!
sleep 0.5
expect_exit "configure pool A shared, on a GPU" 0 vgpu-admin configure-pool --pool=A --mode=shared --gpu=gpu:0000:01:00.0
check "Mode follows at once: shared" wait_for 10 prop_is A Mode shared
assert_eq "GpuResource follows" "gpu:0000:01:00.0" "$(prop A GpuResource)"
assert_eq "pool B keeps its own mode" "isolated" "$(prop B Mode)"
check "PropertiesChanged announced the change" wait_for 10 grep -q '"Mode"' "$VGPU_TEST_TMP/monitor.json"
kill "$monitor" 2>/dev/null
wait "$monitor" 2>/dev/null
check "the change is in the scheduler's log" grep -q "Pool A: mode isolated → shared" "$sched_log"

# An executor started now gets the new mode.
expect_exit "register VM 3 in pool A" 0 vgpu-admin register-vm --vm-id=3 --pool=A --priority=medium
wait_for 10 test -S "$VGPU_RUNTIME_DIR/vm/3.sock"
vgpu-load --vm-id 3 --count 1000000 --size 16 >/dev/null 2>"$VGPU_TEST_TMP/load-3.err" &
load=$!
check "VM 3's executor is running" wait_for 10 has_executor A 3
assert_contains "VM 3's executor was started with --pool-mode=shared" "--pool-mode=shared" "$(executor_cmdline A 3)"
kill "$load"
wait "$load" 2>/dev/null

expect_exit "configure pool A isolated again" 0 vgpu-admin configure-pool --pool=A --mode=isolated
check "Mode follows back: isolated" wait_for 10 prop_is A Mode isolated

# configd restarted: the scheduler reads the record again and keeps serving meanwhile.
configd_old=$(service_pid vgpu-configd)
kill -9 "$configd_old"
configd_back() { [ "$(service_pid vgpu-configd 2>/dev/null)" != "$configd_old" ] && vgpu-admin list-pools; }
check "vgpu-devstack restarted vgpu-configd" wait_for 20 configd_back
check "the scheduler noticed configd leaving and kept its mode" \
        wait_for 10 grep -q "org.vgpu.Config1 left the bus; pool A keeps mode isolated" "$sched_log"
assert_eq "Mode is still isolated" "isolated" "$(prop A Mode)"

done_testing
