#!/usr/bin/env bash
# vgpu-admin's help: the overview, each verb's own usage (VERB --help and help VERB), and --version.
source "$(dirname "$0")/../lib.sh"
devstack_reexec --without=vgpu-iommud -- "$@"

readonly VERBS=(register-vm unregister-vm set-priority set-pool set-memory-quota set-iommu-policy show-vm list-vms
        list-pools show-pool create-pool configure-pool delete-pool audit show-iommu-status list-gpus bind-gpu
        unbind-gpu iommu-faults iommu-setup channels stats disconnect-vm help)

test_overview_lists_every_verb() {
        local verb
        expect_exit "--help exits 0" 0 vgpu-admin --help
        for verb in "${VERBS[@]}"; do
                assert_contains "--help lists $verb" "  $verb " "$LAST_OUT"
        done
        expect_exit "help exits 0" 0 vgpu-admin help
        assert_contains "help is the overview" "Manage the VMs, pools and priorities" "$LAST_OUT"
}

test_each_verb_has_its_own_help() {
        local verb
        for verb in "${VERBS[@]}"; do
                expect_exit "$verb --help exits 0" 0 vgpu-admin "$verb" --help
                assert_contains "$verb --help shows its usage" "vgpu-admin [--json] [--no-legend] $verb" "$LAST_OUT"
                [ "$verb" = help ] && continue
                expect_exit "help $verb exits 0" 0 vgpu-admin help "$verb"
                assert_contains "help $verb shows its usage" "vgpu-admin [--json] [--no-legend] $verb" "$LAST_OUT"
        done
        expect_exit "register-vm --help lists its options" 0 vgpu-admin register-vm --help
        for opt in --vm-id --pool --priority --uuid --name --memory-quota --iommu-policy; do
                assert_contains "register-vm --help mentions $opt" "$opt=" "$LAST_OUT"
        done
        expect_exit "help of an unknown verb exits 2" 2 vgpu-admin help frobnicate
}

test_version() {
        expect_exit "--version exits 0" 0 vgpu-admin --version
        assert_contains "--version names the program" "vgpu-admin " "$LAST_OUT"
}

test_overview_lists_every_verb
test_each_verb_has_its_own_help
test_version
done_testing
