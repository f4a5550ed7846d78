#!/usr/bin/env bash
# show-iommu-status before vgpu-iommud exists: it says plainly that the host's IOMMU status is unknown
# and exits 1; it shows only what is stored (a VM's IOMMU policy and record), never a made-up status.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/admin-lib.sh"
devstack_reexec -- "$@"

export LC_ALL=C.UTF-8

readonly NOT_RUNNING="vgpu-admin: vgpu-iommud is not running: the IOMMU status of this host is unknown."

test_without_iommud_the_status_is_unknown() {
        expect_exit "show-iommu-status exits 1 without vgpu-iommud" 1 vgpu-admin show-iommu-status
        assert_eq "show-iommu-status says vgpu-iommud is not running" "$NOT_RUNNING" "$LAST_ERR"
        assert_eq "show-iommu-status prints no status" "" "$LAST_OUT"
}

test_with_vm_id_shows_the_stored_record() {
        check "register VM 4 with IOMMU policy audit" \
                vgpu-admin register-vm --vm-id=4 --pool=A --priority=medium --iommu-policy=audit
        expect_exit "show-iommu-status --vm-id=4 exits 1" 1 vgpu-admin show-iommu-status --vm-id=4
        assert_eq "show-iommu-status --vm-id=4 still says the host status is unknown" "$NOT_RUNNING" "$LAST_ERR"
        assert_contains "show-iommu-status --vm-id=4 shows the VM" "            VM: 4" "$LAST_OUT"
        assert_contains "show-iommu-status --vm-id=4 shows its policy" "  IOMMU policy: audit" "$LAST_OUT"
        assert_contains "show-iommu-status --vm-id=4 shows no recorded domain" "  IOMMU domain: not recorded yet" \
                "$LAST_OUT"
        assert_contains "show-iommu-status --vm-id=4 shows no recorded group" "   IOMMU group: none recorded" \
                "$LAST_OUT"
}

test_json_says_not_running() {
        expect_exit "show-iommu-status --json exits 1" 1 vgpu-admin --json show-iommu-status
        json_check "show-iommu-status --json: iommu_service not-running, nothing else" "$LAST_OUT" \
                '. == {"iommu_service": "not-running"}'
        expect_exit "show-iommu-status --json --vm-id=4 exits 1" 1 vgpu-admin --json show-iommu-status --vm-id 4
        json_check "show-iommu-status --json --vm-id=4: the stored record" "$LAST_OUT" \
                '.iommu_service == "not-running" and .vm_id == 4 and .iommu_policy == "audit"
                 and .iommu_domain == "" and .iommu_group == -1'
        assert_eq "show-iommu-status --json still explains on stderr" "$NOT_RUNNING" "$LAST_ERR"
}

test_unknown_vm_is_refused() {
        expect_exit "show-iommu-status --vm-id=99 exits 1" 1 vgpu-admin show-iommu-status --vm-id=99
        assert_contains "show-iommu-status --vm-id=99 names the VM" "VM 99 is not registered" "$LAST_ERR"
        expect_refusal "show-iommu-status --vm-id=abc" 2 "invalid --vm-id 'abc'" vgpu-admin show-iommu-status --vm-id=abc
}

test_without_iommud_the_status_is_unknown
test_with_vm_id_shows_the_stored_record
test_json_says_not_running
test_unknown_vm_is_refused
done_testing
