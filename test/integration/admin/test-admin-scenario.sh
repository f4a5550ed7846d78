#!/usr/bin/env bash
# The plan's scenario, as an administrator runs it with vgpu-admin: VMs 1-7 in pool A, 8-20 in pool B,
# mixed priorities; then the questions the plan asks, a priority change, a pool move, and the audit
# log that records who did it.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/admin-lib.sh"
devstack_reexec -- "$@"

export LC_ALL=C.UTF-8 TZ=UTC

# Priority of VM N in this scenario: high, medium, low, high, … by id.
priority_of() {
        local levels=(high medium low)
        echo "${levels[$((($1 - 1) % 3))]}"
}

test_fresh_store_has_pools_A_and_B_with_capacity_16() {
        local pools
        pools=$(vgpu-admin --json list-pools)
        json_check "fresh store: pools A and B, capacity 16, empty" "$pools" \
                '[.[] | select(.pool == "A" or .pool == "B") | select(.capacity == 16 and .vm_count == 0)]
                 | length == 2'
        expect_exit "list-vms on a fresh store succeeds" 0 vgpu-admin list-vms
        assert_eq "list-vms on a fresh store says there are none" "No VMs." "$LAST_OUT"
}

test_register_vms_1_to_7_in_A_and_8_to_20_in_B() {
        local failed=0 id pool out
        for id in $(seq 1 20); do
                pool=A
                [ "$id" -ge 8 ] && pool=B
                # Half the calls use --opt=value, half --opt value: both are documented.
                if [ $((id % 2)) -eq 0 ]; then
                        out=$(vgpu-admin register-vm --vm-id="$id" --pool="$pool" --priority="$(priority_of "$id")" \
                                --uuid="$(vm_uuid "$id")" --name="vm-$id" 2>&1)
                else
                        out=$(vgpu-admin register-vm --vm-id "$id" --pool "$pool" --priority "$(priority_of "$id")" \
                                --uuid "$(vm_uuid "$id")" --name "vm-$id" 2>&1)
                fi || {
                        failed=1
                        diag "register-vm $id failed: $out"
                }
        done
        assert_eq "20 VMs registered" 0 "$failed"
        assert_contains "register-vm says where the VM went" "VM 20 registered in pool B with priority medium" "$out"
}

test_which_vms_are_in_pool_A() {
        local json text
        json=$(vgpu-admin --json list-vms --pool=A)
        json_check "list-vms --pool=A --json: VMs 1-7, all in A" "$json" \
                '[.[].vm_id] == [1,2,3,4,5,6,7] and all(.[]; .pool == "A")'
        text=$(vgpu-admin list-vms --pool=A)
        assert_eq "list-vms --pool=A: header line" "VM  POOL  PRIORITY  QUOTA  UUID                                  NAME" \
                "$(head -n 1 <<<"$text")"
        assert_contains "list-vms --pool=A: a row per VM" " 7  A     high         8G  $(vm_uuid 7)  vm-7" "$text"
        assert_eq "list-vms --pool=A: footer" "7 VMs listed." "$(tail -n 1 <<<"$text")"
        text=$(vgpu-admin --no-legend list-vms --pool=A)
        assert_eq "list-vms --no-legend: only the rows, first column the ids" "1 2 3 4 5 6 7" \
                "$(awk '{print $1}' <<<"$text" | paste -sd ' ')"
}

test_which_vms_have_high_priority() {
        local json
        json=$(vgpu-admin --json list-vms --priority=high)
        json_check "list-vms --priority=high: 1 4 7 10 13 16 19" "$json" \
                '[.[].vm_id] == [1,4,7,10,13,16,19] and all(.[]; .priority == "high")'
        json=$(vgpu-admin --json list-vms --pool=B --priority=low)
        json_check "list-vms --pool=B --priority=low: 9 12 15 18" "$json" '[.[].vm_id] == [9,12,15,18]'
        expect_exit "list-vms --priority=high (text)" 0 vgpu-admin list-vms --priority=high
        assert_eq "list-vms --priority=high: footer counts 7" "7 VMs listed." "$(tail -n 1 <<<"$LAST_OUT")"
}

test_set_priority_reports_old_and_new() {
        expect_exit "set-priority VM 3 to high" 0 vgpu-admin set-priority --vm-id=3 --priority=high
        assert_eq "set-priority says old → new and when it applies" \
                "VM 3: priority low → high; applies to its next command." "$LAST_OUT"
        expect_exit "set-priority VM 8 to low (--json)" 0 vgpu-admin --json set-priority --vm-id 8 --priority low
        json_check "set-priority --json: vm_id, old_priority, priority" "$LAST_OUT" \
                '. == {"vm_id": 8, "old_priority": "medium", "priority": "low"}'
        expect_exit "set-priority to the same level" 0 vgpu-admin set-priority --vm-id=3 --priority=high
        assert_eq "set-priority to the same level says nothing changed" \
                "VM 3: priority is already high; nothing changed." "$LAST_OUT"
        json_check "show-vm 3 --json has the new priority" "$(vgpu-admin --json show-vm 3)" '.priority == "high"'
}

test_set_pool_moves_a_vm() {
        expect_exit "set-pool VM 7 to B" 0 vgpu-admin set-pool --vm-id=7 --pool=B
        assert_eq "set-pool says old → new and what it does to a connected guest" \
                "VM 7: pool A → B. A connected guest keeps its channel, but its GPU memory is freed and zeroed and its handles are gone; its next command is served by pool B." \
                "$LAST_OUT"
        json_check "VM 7 is no longer in pool A" "$(vgpu-admin --json list-vms --pool=A)" \
                '[.[].vm_id] == [1,2,3,4,5,6]'
        expect_exit "show-vm 7" 0 vgpu-admin show-vm 7
        assert_contains "show-vm 7 shows pool B" "          Pool: B" "$LAST_OUT"
        assert_contains "show-vm 7 keeps its priority" "      Priority: high" "$LAST_OUT"
        assert_contains "show-vm 7 shows its uuid" "          UUID: $(vm_uuid 7)" "$LAST_OUT"
        assert_contains "show-vm 7 shows its quota" "  Memory quota: 8G (8589934592 bytes)" "$LAST_OUT"
        assert_contains "show-vm 7 shows its IOMMU policy" "  IOMMU policy: required" "$LAST_OUT"
}

test_show_vm_by_uuid() {
        local json
        json=$(vgpu-admin --json show-vm --uuid="$(vm_uuid 12)")
        json_check "show-vm --uuid finds VM 12" "$json" '.vm_id == 12 and .pool == "B" and .name == "vm-12"'
        json=$(vgpu-admin --json show-vm --uuid="$(vm_uuid 12 | tr 0-9a-f 0-9A-F)")
        json_check "show-vm --uuid in upper case finds the same VM" "$json" '.vm_id == 12'
}

test_list_pools_counts() {
        local json text
        json=$(vgpu-admin --json list-pools)
        # A: high 1 3 4, medium 2 5, low 6.  B: high 7 10 13 16 19, medium 11 14 17 20, low 8 9 12 15 18.
        json_check "list-pools --json: pool A counts" "$json" \
                '.[] | select(.pool == "A") | .vm_count == 6 and .capacity == 16 and .vm_count_high == 3
                 and .vm_count_medium == 2 and .vm_count_low == 1'
        json_check "list-pools --json: pool B counts" "$json" \
                '.[] | select(.pool == "B") | .vm_count == 14 and .vm_count_high == 5 and .vm_count_medium == 4
                 and .vm_count_low == 5'
        text=$(vgpu-admin list-pools)
        assert_eq "list-pools: header" "POOL  VMS  CAPACITY  HIGH  MEDIUM  LOW  MODE      GPU" "$(head -n 1 <<<"$text")"
        assert_contains "list-pools: row for A" "A       6        16     3       2    1  isolated  -" "$text"
        assert_contains "list-pools: row for B" "B      14        16     5       4    5  isolated  -" "$text"
        expect_exit "show-pool A" 0 vgpu-admin show-pool A
        assert_contains "show-pool A: members" "       Members: 1 2 3 4 5 6" "$LAST_OUT"
        assert_contains "show-pool A: use" "           VMs: 6 of 16 (10 free)" "$LAST_OUT"
}

test_audit_shows_who_what_old_new() {
        local json uid
        uid=$(id -u)
        json=$(vgpu-admin --json audit --vm-id=3)
        json_check "audit --vm-id=3: the priority change, old and new, by this uid" "$json" \
                "any(.[]; .vm_id == 3 and (.action | test(\"priority\")) and .old_value == \"low\"
                          and .new_value == \"high\" and .uid == $uid and .pid > 0)"
        json_check "audit --vm-id=3: only VM 3" "$json" 'length >= 2 and all(.[]; .vm_id == 3)'
        json=$(vgpu-admin --json audit --vm-id=7)
        json_check "audit --vm-id=7: the move from A to B" "$json" \
                'any(.[]; .vm_id == 7 and .old_value == "A" and .new_value == "B")'
        expect_exit "audit (text)" 0 vgpu-admin audit --vm-id=3
        assert_eq "audit: header" "SEQ TIME UID PID ACTION VM POOL OLD NEW" "$(head -n 1 <<<"$LAST_OUT" | xargs)"
        assert_contains "audit: the change as a row" "low  high" "$LAST_OUT"
        json=$(vgpu-admin --json audit --limit=3)
        json_check "audit --limit=3: three entries, oldest first" "$json" 'length == 3 and .[0].seq < .[2].seq'
        local third
        third=$(jq '.[2].seq' <<<"$json")
        json=$(vgpu-admin --json audit --after="$third" --limit=1)
        json_check "audit --after=SEQ continues after it" "$json" "length == 1 and .[0].seq > $third"
}

test_json_has_stable_keys() {
        json_check "VM object keys" "$(vgpu-admin --json show-vm 1)" \
                'has("vm_id") and has("pool") and has("priority") and has("uuid") and has("name")
                 and (.memory_quota | type == "number") and has("iommu_policy") and has("iommu_domain")
                 and (.iommu_group | type == "number") and has("created_usec") and has("updated_usec")'
        json_check "list-vms --json: an array of VM objects" "$(vgpu-admin --json list-vms)" \
                'type == "array" and length == 20 and all(.[]; has("vm_id") and has("memory_quota"))'
        json_check "list-pools --json: pool object keys" "$(vgpu-admin --json list-pools)" \
                'all(.[]; has("pool") and has("vm_count") and has("capacity") and has("vm_count_high")
                 and has("vm_count_medium") and has("vm_count_low") and has("mode") and has("gpu_resource")
                 and (.default_memory_quota | type == "number") and has("description"))'
        json_check "audit --json: entry keys" "$(vgpu-admin --json audit --limit=1)" \
                '.[0] | has("seq") and has("time_usec") and has("uid") and has("pid") and has("action")
                 and has("vm_id") and has("pool") and has("old_value") and has("new_value")'
        json_check "register-vm --json prints the stored record" \
                "$(vgpu-admin --json register-vm --vm-id=21 --pool=A --priority=low --memory-quota=512M)" \
                '.vm_id == 21 and .pool == "A" and .priority == "low" and .memory_quota == 536870912'
        json_check "unregister-vm --json" "$(vgpu-admin --json unregister-vm --vm-id=21)" \
                '.vm_id == 21 and .unregistered == true'
}

test_fresh_store_has_pools_A_and_B_with_capacity_16
test_register_vms_1_to_7_in_A_and_8_to_20_in_B
test_which_vms_are_in_pool_A
test_which_vms_have_high_priority
test_set_priority_reports_old_and_new
test_set_pool_moves_a_vm
test_show_vm_by_uuid
test_list_pools_counts
test_audit_shows_who_what_old_new
test_json_has_stable_keys
done_testing
