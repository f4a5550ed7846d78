#!/usr/bin/env bash
# show-iommu-status and the other IOMMU verbs while vgpu-iommud is not running: they say plainly that the
# host's IOMMU status is unknown and exit 1, print no status (never a made-up one), and still check
# their command line before anything is sent.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/admin-lib.sh"
devstack_reexec --without=vgpu-iommud -- "$@"

export LC_ALL=C.UTF-8

readonly NOT_RUNNING="vgpu-admin: vgpu-iommud is not running (no org.vgpu.Iommu1 on the system bus)."
readonly UNKNOWN="vgpu-admin: the IOMMU status of this host is unknown."

test_without_iommud_the_status_is_unknown() {
        expect_exit "show-iommu-status exits 1 without vgpu-iommud" 1 vgpu-admin show-iommu-status
        assert_eq "show-iommu-status says vgpu-iommud is not running, so the status is unknown" \
                "$NOT_RUNNING"$'\n'"$UNKNOWN" "$LAST_ERR"
        assert_eq "show-iommu-status prints no status" "" "$LAST_OUT"
        expect_exit "show-iommu-status --json exits 1 without vgpu-iommud" 1 vgpu-admin --json show-iommu-status
        assert_eq "show-iommu-status --json prints nothing" "" "$LAST_OUT"
}

test_with_vm_id_the_status_is_still_unknown() {
        check "register VM 4 with IOMMU policy audit" \
                vgpu-admin register-vm --vm-id=4 --pool=A --priority=medium --iommu-policy=audit
        expect_exit "show-iommu-status --vm-id=4 exits 1" 1 vgpu-admin show-iommu-status --vm-id=4
        assert_contains "show-iommu-status --vm-id=4 says the status is unknown" "$UNKNOWN" "$LAST_ERR"
        assert_eq "show-iommu-status --vm-id=4 prints no status" "" "$LAST_OUT"
        check "show-vm 4 still shows the stored IOMMU policy" \
                bash -c 'vgpu-admin show-vm 4 | grep -q "IOMMU policy: audit"'
}

test_other_verbs_say_not_running() {
        local verb
        for verb in list-gpus iommu-faults iommu-setup "bind-gpu 41:00.0" "unbind-gpu 41:00.0"; do
                # shellcheck disable=SC2086 # the verb and its argument are two words
                expect_exit "$verb exits 1 without vgpu-iommud" 1 vgpu-admin $verb
                assert_eq "$verb says vgpu-iommud is not running" "$NOT_RUNNING" "$LAST_ERR"
        done
}

test_bad_command_lines_are_refused_first() {
        expect_refusal "show-iommu-status --vm-id=abc" 2 "invalid --vm-id 'abc'" vgpu-admin show-iommu-status --vm-id=abc
        expect_refusal "bind-gpu ../../x" 2 "invalid PCI address '../../x'" vgpu-admin bind-gpu ../../x
        expect_refusal "bind-gpu --driver=nvidia" 2 "invalid --driver 'nvidia'" vgpu-admin bind-gpu 41:00.0 --driver=nvidia
        expect_refusal "bind-gpu without an address" 2 "bind-gpu needs --address" vgpu-admin bind-gpu
        expect_refusal "unbind-gpu 41:00.0 --address=41:00.0" 2 "either as an argument or with --address" \
                vgpu-admin unbind-gpu 41:00.0 --address=41:00.0
        expect_refusal "iommu-setup --apply=yes" 2 "option '--apply=yes' takes no value" vgpu-admin iommu-setup --apply=yes
        expect_refusal "list-gpus --vm-id=1" 2 "option --vm-id is not valid for list-gpus" vgpu-admin list-gpus --vm-id=1
}

test_without_iommud_the_status_is_unknown
test_with_vm_id_the_status_is_still_unknown
test_other_verbs_say_not_running
test_bad_command_lines_are_refused_first
done_testing
