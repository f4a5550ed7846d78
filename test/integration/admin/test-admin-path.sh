#!/usr/bin/env bash
# vgpu-admin on the command path, every process real under vgpu-devstack: stats shows what each pool's
# scheduler counted (in the right pool and priority) and says plainly when a pool has no scheduler;
# channels shows a connected guest; disconnect-vm closes its channel (the guest fails, the channel listens
# again) and refuses a VM with no guest; a missing service is named and exits 1, a bad command line exits 2.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/admin-lib.sh"
devstack_reexec -- "$@"

export LC_ALL=C.UTF-8

# stats_cell POOL LEVEL COLUMN: one cell of a pool's per-priority table in `vgpu-admin stats` ($LAST_OUT).
stats_cell() {
        awk -v pool="$1" -v level="$2" -v col="$3" \
                '$1 == "Pool:" { p = $2 } p == pool && $1 == level { print $col }' <<<"$LAST_OUT"
}

# positive N: "true" when N is a number above 0.
positive() {
        if [ "${1:-0}" -gt 0 ] 2>/dev/null; then echo true; else echo "not positive: '$1'"; fi
}

channel_state() {
        vgpu-admin --json channels --vm-id="$1" | jq -r '.[0].state'
}

setup_vms_and_work() {
        check "register VM 1 in pool A, high" vgpu-admin register-vm --vm-id=1 --pool=A --priority=high
        check "register VM 8 in pool B, low" vgpu-admin register-vm --vm-id=8 --pool=B --priority=low
        check "VM 1's channel socket exists" wait_for 10 test -S "$VGPU_RUNTIME_DIR/vm/1.sock"
        check "VM 8's channel socket exists" wait_for 10 test -S "$VGPU_RUNTIME_DIR/vm/8.sock"
        check "VM 1 runs 50 gemms" vgpu-load --vm-id 1 --count 50 --size 16
        check "VM 8 runs 50 gemms" vgpu-load --vm-id 8 --count 50 --size 16
}

test_stats_text_shows_the_counts_in_the_right_pool_and_priority() {
        expect_exit "stats exits 0 when every pool has a scheduler" 0 vgpu-admin stats
        assert_contains "stats shows pool A" "          Pool: A" "$LAST_OUT"
        assert_contains "stats shows pool B" "          Pool: B" "$LAST_OUT"
        assert_contains "stats shows the wait policy" "   Wait policy: " "$LAST_OUT"
        assert_contains "stats shows in flight of at most" "     In flight: 0 of at most " "$LAST_OUT"
        assert_contains "stats shows executor deaths and the restart limit" \
                "Executors died: 0 (restarted 0; at most 5 restarts per VM in 60 s)" "$LAST_OUT"
        assert_contains "stats shows the pool's mode from the store" "          Mode: isolated" "$LAST_OUT"
        assert_contains "stats has the per-priority header" \
                "PRIORITY  QUEUED  COMPLETED  FAILED  WAIT P50 US  WAIT P99 US  EXEC P50 US  EXEC P99 US" "$LAST_OUT"
        assert_eq "pool A completed high-priority commands" "true" "$(positive "$(stats_cell A high 3)")"
        assert_eq "pool A completed nothing at low priority" "0" "$(stats_cell A low 3)"
        assert_eq "pool B completed low-priority commands" "true" "$(positive "$(stats_cell B low 3)")"
        assert_eq "pool B completed nothing at high priority" "0" "$(stats_cell B high 3)"
        assert_eq "pool A's high commands have a wait p99" "true" "$(positive "$(stats_cell A high 6)")"
        expect_exit "stats A (as argument) exits 0" 0 vgpu-admin stats A
        assert_eq "stats A shows only pool A" "" "$(grep 'Pool: B' <<<"$LAST_OUT")"
}

test_stats_json_has_the_scalar_keys() {
        expect_exit "--json stats exits 0" 0 vgpu-admin --json stats
        json_check "--json stats: pool A ran VM 1's commands at high priority" "$LAST_OUT" \
                '.[] | select(.pool == "A") | .running and .completed_high > 0 and .completed_low == 0'
        json_check "--json stats: pool B ran VM 8's commands at low priority" "$LAST_OUT" \
                '.[] | select(.pool == "B") | .running and .completed_low > 0 and .completed_high == 0'
        json_check "--json stats: the documented scalar keys are there" "$LAST_OUT" \
                'all(.[]; has("wait_policy") and has("in_flight") and has("max_in_flight") and has("received")
                 and has("executor_deaths") and has("wait_p50_us_high") and has("exec_p99_us_low")
                 and has("queued_medium") and has("failed_high"))'
        json_check "--json stats: no histogram; the attached VMs as an array (none once the guests left)" "$LAST_OUT" \
                'all(.[]; (has("wait_hist_us_high") | not) and .vms == [])'
        expect_exit "--json stats --pool=B exits 0" 0 vgpu-admin --json stats --pool=B
        json_check "--json stats --pool=B: one object, pool B" "$LAST_OUT" 'length == 1 and .[0].pool == "B"'
}

test_pool_without_scheduler_says_so() {
        check "create pool Z (no scheduler runs for it)" vgpu-admin create-pool --pool=Z --capacity=2
        expect_exit "stats --pool=Z exits 1" 1 vgpu-admin stats --pool=Z
        assert_eq "stats --pool=Z says there is no scheduler" \
                "vgpu-admin: no scheduler is running for pool Z: its statistics are unknown." "$LAST_ERR"
        assert_contains "stats --pool=Z shows it without numbers" \
                "Scheduler: not running (no org.vgpu.Scheduler.Z on the bus); no statistics" "$LAST_OUT"
        assert_eq "stats --pool=Z shows no table" "" "$(grep PRIORITY <<<"$LAST_OUT")"
        expect_exit "--json stats --pool=Z exits 1" 1 vgpu-admin --json stats --pool=Z
        json_check "--json stats --pool=Z: running false, nothing else" "$LAST_OUT" '. == [{"pool": "Z", "running": false}]'
        expect_exit "stats of every pool exits 1 while Z has no scheduler" 1 vgpu-admin stats
        assert_contains "… and still shows pool A" "          Pool: A" "$LAST_OUT"
        check "delete pool Z" vgpu-admin delete-pool --pool=Z
}

test_channels_show_a_connected_guest() {
        local load_out="$VGPU_TEST_TMP/load1.out"
        vgpu-load --vm-id 1 --count 200000 --size 16 >"$load_out" 2>&1 &
        load_pid=$!
        check "VM 1's guest is connected" wait_for 10 bash -c '[ "$(vgpu-admin --json channels --vm-id=1 |
                jq -r ".[0].state")" = connected ]'
        expect_exit "channels exits 0" 0 vgpu-admin channels
        assert_contains "channels has the header" \
                "VM  POOL  PRIORITY  STATE      ATTACHMENT  PEER PID  REQUESTS  COMPLETIONS  ERRORS  IN FLIGHT" \
                "$LAST_OUT"
        assert_eq "channels shows VM 1 connected to pool A at high, with the guest's pid" "1 A high connected $load_pid" \
                "$(awk '$1 == 1 { print $1, $2, $3, $4, $6 }' <<<"$LAST_OUT")"
        assert_eq "channels shows VM 8 listening, no peer" "8 B low listening - -" \
                "$(awk '$1 == 8 { print $1, $2, $3, $4, $5, $6 }' <<<"$LAST_OUT")"
        assert_contains "channels ends with the count" "2 channels listed." "$LAST_OUT"
        expect_exit "--json channels --vm-id=1 exits 0" 0 vgpu-admin --json channels --vm-id=1
        json_check "--json channels --vm-id=1: one record with the service's keys" "$LAST_OUT" \
                'length == 1 and (.[0] | keys) - ["vm_id", "pool", "priority", "state", "attachment", "peer_pid",
                 "peer_uid", "negotiated", "requests", "completions", "errors", "in_flight", "generation",
                 "connected_usec", "transport", "domid", "stub", "stub_pool", "stub_priority"] == []
                 and (.[0] | length) >= 19'
        json_check "--json channels --vm-id=1: VM 1 connected, its requests counted" "$LAST_OUT" \
                ".[0].vm_id == 1 and .[0].state == \"connected\" and .[0].peer_pid == $load_pid and .[0].requests > 0
                 and .[0].negotiated == true"
        expect_exit "channels --vm-id=5 (not registered) exits 1" 1 vgpu-admin channels --vm-id=5
        assert_contains "… and says the VM has no channel" "VM 5 has no channel" "$LAST_ERR"
        expect_exit "stats --pool=A while VM 1 works" 0 vgpu-admin stats --pool=A
        assert_contains "stats shows the executors' table" \
                "VM  STATE    BACKEND  EXECUTOR PID  DEATHS  RESTARTS  COMMANDS  ERRORS" "$LAST_OUT"
        assert_eq "stats shows VM 1 running on the CPU backend, with its executor's pid" "1 running cpu yes" \
                "$(awk '$1 == 1 && NF == 8 { print $1, $2, $3, ($4 > 0 ? "yes" : "no") }' <<<"$LAST_OUT")"
        expect_exit "--json stats --pool=A while VM 1 works" 0 vgpu-admin --json stats --pool=A
        json_check "--json stats: VM 1's executor record" "$LAST_OUT" \
                '.[0].vms | length == 1 and .[0].vm_id == 1 and .[0].backend == "cpu" and .[0].executor_pid > 0
                 and .[0].executor_deaths == 0'
}

test_disconnect_vm_closes_the_guests_channel() {
        if command -v setpriv >/dev/null && [ "$(id -u)" -eq 0 ]; then
                expect_exit "disconnect-vm as nobody is refused" 1 setpriv --reuid=nobody --regid="$(id -g nobody)" \
                        --clear-groups env DBUS_SYSTEM_BUS_ADDRESS="$DBUS_SYSTEM_BUS_ADDRESS" \
                        "$VGPU_BUILD_DIR/vgpu-admin" disconnect-vm --vm-id=1
                assert_contains "… saying access was denied" "access denied" "$LAST_ERR"
                assert_eq "VM 1 is still connected after the refusal" "connected" "$(channel_state 1)"
        else
                ok "# SKIP disconnect-vm as nobody (needs root and setpriv)"
        fi
        expect_exit "root disconnects VM 1" 0 vgpu-admin disconnect-vm --vm-id=1
        assert_contains "disconnect-vm says what happened" "VM 1: guest disconnected" "$LAST_OUT"
        wait "$load_pid"
        local rc=$?
        load_pid=
        assert_eq "the guest (vgpu-load) fails" "true" "$(positive "$rc")"
        check "VM 1's channel is listening again" wait_for 10 bash -c \
                '[ "$(vgpu-admin --json channels --vm-id=1 | jq -r ".[0].state")" = listening ]'
        expect_exit "disconnect-vm of VM 1, now without a guest, exits 1" 1 vgpu-admin disconnect-vm --vm-id=1
        assert_eq "… with the sentence" "vgpu-admin: VM 1 has no guest connected." "$LAST_ERR"
        assert_eq "… and nothing on stdout" "" "$LAST_OUT"
        expect_exit "disconnect-vm of an unregistered VM exits 1" 1 vgpu-admin disconnect-vm --vm-id=99
        assert_contains "… with the service's sentence" "VM 99 is not registered" "$LAST_ERR"
        check "VM 1 can run again after the disconnect" vgpu-load --vm-id 1 --count 5 --size 16
}

test_set_pool_says_what_a_move_does() {
        expect_exit "set-pool VM 8 to A" 0 vgpu-admin set-pool --vm-id=8 --pool=A
        assert_contains "set-pool says the guest's memory is freed and zeroed" "GPU memory is freed and zeroed" \
                "$LAST_OUT"
        assert_contains "set-pool says the next command is served by the new pool" \
                "its next command is served by pool A." "$LAST_OUT"
}

test_missing_services_exit_1() {
        local pidfile="$VGPU_TEST_TMP/empty-bus.pid" addr
        addr=$(dbus-daemon --session --address="unix:path=$VGPU_TEST_TMP/empty-bus.sock" --fork --print-address=1 \
                --print-pid=3 3>"$pidfile")
        DBUS_SYSTEM_BUS_ADDRESS="$addr" expect_exit "channels without vgpu-ingestd exits 1" 1 vgpu-admin channels
        assert_eq "… and says vgpu-ingestd is not running" \
                "vgpu-admin: vgpu-ingestd is not running (no org.vgpu.Ingest1 on the system bus)." "$LAST_ERR"
        assert_eq "… printing nothing on stdout" "" "$LAST_OUT"
        DBUS_SYSTEM_BUS_ADDRESS="$addr" expect_exit "disconnect-vm without vgpu-ingestd exits 1" 1 \
                vgpu-admin disconnect-vm --vm-id=1
        assert_contains "… and says vgpu-ingestd is not running" "vgpu-ingestd is not running" "$LAST_ERR"
        DBUS_SYSTEM_BUS_ADDRESS="$addr" expect_exit "stats --pool=A without its scheduler exits 1" 1 \
                vgpu-admin stats --pool=A
        assert_contains "… and says so" "no scheduler is running for pool A" "$LAST_ERR"
        kill "$(cat "$pidfile")"
}

test_bad_command_lines_exit_2() {
        expect_refusal "a mistyped verb" 2 "Did you mean 'channels'?" vgpu-admin chanels
        expect_refusal "channels --pool (not its option)" 2 "option --pool is not valid for channels" \
                vgpu-admin channels --pool=A
        expect_refusal "stats --vm-id (not its option)" 2 "option --vm-id is not valid for stats" vgpu-admin stats --vm-id=1
        expect_refusal "disconnect-vm without --vm-id" 2 "disconnect-vm needs --vm-id" vgpu-admin disconnect-vm
        expect_refusal "disconnect-vm --vm-id=0" 2 "invalid --vm-id '0'" vgpu-admin disconnect-vm --vm-id=0
        expect_refusal "stats --pool=1A" 2 "invalid --pool '1A'" vgpu-admin stats --pool=1A
        expect_refusal "an unknown option" 2 "unknown option '--frobnicate'" vgpu-admin stats --frobnicate
        expect_refusal "channels with an argument" 2 "channels takes no arguments" vgpu-admin channels 1
}

test_each_new_verb_has_its_help() {
        local verb
        for verb in channels stats disconnect-vm; do
                expect_exit "$verb --help exits 0" 0 vgpu-admin "$verb" --help
                assert_contains "$verb --help shows its usage" "vgpu-admin [--json] [--no-legend] $verb" "$LAST_OUT"
                expect_exit "--help lists $verb" 0 vgpu-admin --help
                assert_contains "--help lists $verb" "  $verb " "$LAST_OUT"
        done
}

load_pid=
trap '[ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null' EXIT
setup_vms_and_work
test_stats_text_shows_the_counts_in_the_right_pool_and_priority
test_stats_json_has_the_scalar_keys
test_pool_without_scheduler_says_so
test_channels_show_a_connected_guest
test_disconnect_vm_closes_the_guests_channel
test_set_pool_says_what_a_move_does
test_missing_services_exit_1
test_bad_command_lines_exit_2
test_each_new_verb_has_its_help
done_testing
