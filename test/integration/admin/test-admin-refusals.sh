#!/usr/bin/env bash
# What vgpu-admin refuses, and how: every malformed argument, unknown verb or option and missing option
# exits 2 with a sentence naming it, before anything is sent; every refusal by vgpu-configd (full pool,
# duplicate id or uuid, unknown VM or pool) exits 1 with the service's sentence. After each, the stored
# VMs, pools and audit log are exactly what they were.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/admin-lib.sh"
devstack_reexec -- "$@"

export LC_ALL=C.UTF-8

setup_a_few_vms() {
        check "register VM 1 in A" vgpu-admin register-vm --vm-id=1 --pool=A --priority=high --uuid="$(vm_uuid 1)"
        check "register VM 2 in B" vgpu-admin register-vm --vm-id=2 --pool=B --priority=low
        check "create pool Small with capacity 2" vgpu-admin create-pool --pool=Small --capacity=2
}

test_invalid_vm_ids_exit_2() {
        local id
        for id in 0 -1 abc 99999999999 007 ""; do
                expect_refusal "register-vm --vm-id='$id'" 2 "invalid --vm-id '$id'" \
                        vgpu-admin register-vm --vm-id="$id" --pool=A --priority=high
        done
        expect_refusal "show-vm --vm-id -1 (separate value)" 2 "invalid --vm-id '-1'" vgpu-admin show-vm --vm-id -1
        expect_refusal "show-vm abc (as argument)" 2 "invalid VM id 'abc'" vgpu-admin show-vm abc
        expect_refusal "set-priority --vm-id 0" 2 "invalid --vm-id '0'" \
                vgpu-admin set-priority --vm-id 0 --priority high
}

test_invalid_pool_ids_exit_2() {
        local pool
        for pool in 1A A-B ABCDEFGHIJKLMNOPQ "" "A B"; do
                expect_refusal "register-vm --pool='$pool'" 2 "invalid --pool '$pool'" \
                        vgpu-admin register-vm --vm-id=5 --pool="$pool" --priority=high
        done
        expect_refusal "set-pool --pool A-B" 2 "invalid --pool 'A-B'" vgpu-admin set-pool --vm-id 1 --pool A-B
        expect_refusal "create-pool --pool 1A" 2 "invalid --pool '1A'" vgpu-admin create-pool --pool 1A --capacity 2
        expect_refusal "show-pool 1A (as argument)" 2 "invalid pool id '1A'" vgpu-admin show-pool 1A
}

test_invalid_values_exit_2() {
        expect_refusal "priority 'urgent'" 2 "invalid --priority 'urgent': expected high, medium or low" \
                vgpu-admin register-vm --vm-id=5 --pool=A --priority=urgent
        expect_refusal "priority 'HIGH'" 2 "invalid --priority 'HIGH'" vgpu-admin set-priority --vm-id=1 --priority=HIGH
        expect_refusal "list-vms --priority urgent" 2 "invalid --priority 'urgent'" vgpu-admin list-vms --priority urgent
        expect_refusal "malformed uuid" 2 "invalid --uuid 'a0b1c2d3-e4f5-4000-8000-00000000000'" \
                vgpu-admin register-vm --vm-id=5 --pool=A --priority=low --uuid=a0b1c2d3-e4f5-4000-8000-00000000000
        expect_refusal "uuid with non-hex digits" 2 "invalid --uuid" \
                vgpu-admin show-vm --uuid=g0b1c2d3-e4f5-4000-8000-000000000001
        expect_refusal "size '12Q'" 2 "invalid --memory-quota '12Q'" \
                vgpu-admin register-vm --vm-id=5 --pool=A --priority=low --memory-quota=12Q
        expect_refusal "set-memory-quota '-1G'" 2 "invalid --memory-quota '-1G'" \
                vgpu-admin set-memory-quota --vm-id=1 --memory-quota=-1G
        expect_refusal "iommu policy 'off'" 2 "invalid --policy 'off': expected required or audit" \
                vgpu-admin set-iommu-policy --vm-id=1 --policy=off
        expect_refusal "capacity 0" 2 "invalid --capacity '0'" vgpu-admin create-pool --pool=C --capacity=0
        expect_refusal "capacity 65537" 2 "invalid --capacity '65537'" vgpu-admin configure-pool --pool=A --capacity=65537
        expect_refusal "mode 'fast'" 2 "invalid --mode 'fast'" vgpu-admin configure-pool --pool=A --mode=fast
        expect_refusal "gpu 'nvidia0'" 2 "invalid --gpu 'nvidia0'" vgpu-admin configure-pool --pool=A --gpu=nvidia0
        expect_refusal "name with a control character" 2 'invalid --name' \
                vgpu-admin register-vm --vm-id=5 --pool=A --priority=low --name="$(printf 'a\tb')"
        expect_refusal "name longer than 128 bytes" 2 'invalid --name' \
                vgpu-admin register-vm --vm-id=5 --pool=A --priority=low --name="$(printf 'x%.0s' $(seq 129))"
        expect_refusal "audit --limit 0" 2 "invalid --limit '0'" vgpu-admin audit --limit 0
}

test_command_line_mistakes_exit_2() {
        expect_refusal "unknown verb suggests the nearest" 2 "unknown verb 'list-vm'. Did you mean 'list-vms'?" \
                vgpu-admin list-vm
        expect_refusal "unknown verb 'regster-vm'" 2 "Did you mean 'register-vm'?" \
                vgpu-admin regster-vm --vm-id=5 --pool=A --priority=low
        expect_refusal "no verb" 2 "no verb given" vgpu-admin
        expect_refusal "unknown option" 2 "unknown option '--colour'" vgpu-admin list-vms --colour
        expect_refusal "option of another verb" 2 "option --capacity is not valid for register-vm" \
                vgpu-admin register-vm --vm-id=5 --pool=A --priority=low --capacity=3
        expect_refusal "missing --priority" 2 "register-vm needs --priority" \
                vgpu-admin register-vm --vm-id=5 --pool=A
        expect_refusal "missing --vm-id" 2 "set-priority needs --vm-id" vgpu-admin set-priority --priority=low
        expect_refusal "option without its value" 2 "option '--vm-id' needs a value" vgpu-admin show-vm --vm-id
        expect_refusal "show-vm with nothing to show" 2 "show-vm needs --vm-id or --uuid" vgpu-admin show-vm
        expect_refusal "configure-pool with no setting" 2 "configure-pool needs --capacity" \
                vgpu-admin configure-pool --pool=A
        expect_refusal "extra argument" 2 "list-vms takes no arguments" vgpu-admin list-vms A
}

test_full_pool_is_refused() {
        check "register VM 101 in Small" vgpu-admin register-vm --vm-id=101 --pool=Small --priority=low
        check "register VM 102 in Small" vgpu-admin register-vm --vm-id=102 --pool=Small --priority=low
        expect_refusal "third VM in a pool of 2" 1 "Pool 'Small' is full" \
                vgpu-admin register-vm --vm-id=103 --pool=Small --priority=low
        expect_refusal "moving a VM into a full pool" 1 "Pool 'Small' is full" vgpu-admin set-pool --vm-id=1 --pool=Small
        expect_refusal "capacity below the VMs it holds" 1 "Small" vgpu-admin configure-pool --pool=Small --capacity=1
        expect_refusal "deleting a pool that has VMs" 1 "Small" vgpu-admin delete-pool --pool=Small
}

test_duplicates_are_refused() {
        expect_refusal "duplicate vm_id" 1 "VM 1 is already registered" \
                vgpu-admin register-vm --vm-id=1 --pool=B --priority=low
        expect_refusal "duplicate uuid" 1 "$(vm_uuid 1)" \
                vgpu-admin register-vm --vm-id=3 --pool=B --priority=low --uuid="$(vm_uuid 1)"
        expect_refusal "duplicate uuid in upper case" 1 "$(vm_uuid 1)" \
                vgpu-admin register-vm --vm-id=3 --pool=B --priority=low --uuid="$(vm_uuid 1 | tr a-f A-F)"
        expect_refusal "duplicate pool" 1 "Pool 'A' already exists" vgpu-admin create-pool --pool=A --capacity=3
}

test_unknown_vm_or_pool_is_refused() {
        expect_refusal "show-vm of an unknown VM" 1 "VM 999 is not registered" vgpu-admin show-vm 999
        expect_refusal "show-vm of an unknown uuid" 1 "$(vm_uuid 999)" vgpu-admin show-vm --uuid="$(vm_uuid 999)"
        expect_refusal "set-priority of an unknown VM" 1 "VM 999" vgpu-admin set-priority --vm-id=999 --priority=low
        expect_refusal "set-pool of an unknown VM" 1 "VM 999" vgpu-admin set-pool --vm-id=999 --pool=A
        expect_refusal "unregister-vm of an unknown VM" 1 "VM 999" vgpu-admin unregister-vm --vm-id=999
        expect_refusal "register-vm into an unknown pool" 1 "Pool 'Nope' does not exist" \
                vgpu-admin register-vm --vm-id=5 --pool=Nope --priority=low
        expect_refusal "set-pool to an unknown pool" 1 "Pool 'Nope'" vgpu-admin set-pool --vm-id=1 --pool=Nope
        expect_refusal "show-pool of an unknown pool" 1 "Pool 'Nope'" vgpu-admin show-pool Nope
        expect_refusal "configure-pool of an unknown pool" 1 "Pool 'Nope'" vgpu-admin configure-pool --pool=Nope --capacity=4
        expect_refusal "delete-pool of an unknown pool" 1 "Pool 'Nope'" vgpu-admin delete-pool --pool=Nope
}

test_unreachable_bus_and_missing_service_exit_1() {
        local sock="$VGPU_TEST_TMP/no-such-bus.sock" pidfile="$VGPU_TEST_TMP/empty-bus.pid" addr
        DBUS_SYSTEM_BUS_ADDRESS="unix:path=$sock" expect_exit "no bus at the address: exits 1" 1 vgpu-admin list-vms
        assert_contains "no bus: says which address it tried" "unix:path=$sock" "$LAST_ERR"

        # A bus with nobody on it: vgpu-configd is not running there.
        addr=$(dbus-daemon --session --address="unix:path=$VGPU_TEST_TMP/empty-bus.sock" --fork --print-address=1 \
                --print-pid=3 3>"$pidfile")
        DBUS_SYSTEM_BUS_ADDRESS="$addr" expect_exit "no vgpu-configd: exits 1" 1 vgpu-admin list-pools
        assert_eq "no vgpu-configd: says so" \
                "vgpu-admin: vgpu-configd is not running (no org.vgpu.Config1 on the system bus)." "$LAST_ERR"
        kill "$(cat "$pidfile")"
}

setup_a_few_vms
test_invalid_vm_ids_exit_2
test_invalid_pool_ids_exit_2
test_invalid_values_exit_2
test_command_line_mistakes_exit_2
test_full_pool_is_refused
test_duplicates_are_refused
test_unknown_vm_or_pool_is_refused
test_unreachable_bus_and_missing_service_exit_1
done_testing
