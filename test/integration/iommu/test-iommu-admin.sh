#!/usr/bin/env bash
# vgpu-iommud under vgpu-devstack, reading a copy of a tree recorded from a real kernel with an Intel
# IOMMU (test/data/iommu/intel-vtd), driven through vgpu-admin as an administrator would: the verdict and
# its evidence, the GPUs and their groups, every refusal leaving the tree byte for byte unchanged, the
# bus policy keeping unprivileged callers out, a fault appended to the kernel log recorded, signalled and
# acknowledged, a VM's IOMMU record written into the configuration store, and the boot settings written
# with a backup.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../admin/admin-lib.sh"

if [ -z "${VGPU_TEST_TMP:-}" ]; then
        : "${VGPU_SOURCE_DIR:?VGPU_SOURCE_DIR must name the source directory}"
        VGPU_IOMMU_TREE=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-iommu-tree.XXXXXX")
        trap 'rm -rf "$VGPU_IOMMU_TREE"' EXIT
        cp -a "$VGPU_SOURCE_DIR/test/data/iommu/intel-vtd/." "$VGPU_IOMMU_TREE/"
        mkdir -p "$VGPU_IOMMU_TREE/etc/default"
        printf 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX="quiet iommu=pt"\n' >"$VGPU_IOMMU_TREE/etc/default/grub"
        export VGPU_IOMMU_TREE
fi
devstack_reexec --iommu-root="$VGPU_IOMMU_TREE" -- "$@"

export LC_ALL=C.UTF-8
tree=$VGPU_IOMMU_TREE

# A digest of every file, link and mode in the tree: a refusal must leave it as it was.
tree_digest() {
        (cd "$tree" && find . -printf '%p %y %m %l\n' | sort && find . -type f -print0 | sort -z |
                xargs -0 sha256sum) | sha256sum
}

# expect_iommu_refusal NAME NEEDLE ADDRESS: bind-gpu ADDRESS exits 1 with NEEDLE, and nothing changed.
expect_iommu_refusal() {
        local name=$1 needle=$2 address=$3 before
        before=$(tree_digest)
        expect_exit "$name: exits 1" 1 vgpu-admin bind-gpu "$address"
        assert_contains "$name: says why" "$needle" "$LAST_ERR"
        assert_eq "$name: prints nothing on stdout" "" "$LAST_OUT"
        assert_eq "$name: the tree is unchanged" "$before" "$(tree_digest)"
}

test_the_verdict_comes_with_its_evidence() {
        expect_exit "show-iommu-status exits 1: two GPUs are not isolated" 1 vgpu-admin --json show-iommu-status
        json_check "the status: linux, Intel IOMMU on, strict, 3 GPUs, 1 isolated, no fault" "$LAST_OUT" \
                '.status | .platform == "linux" and .iommu_enabled and .vendor == "intel" and .mode == "strict"
                 and .gpus == 3 and .gpus_isolated == 1 and .faults == 0 and (.compliant | not)
                 and (.problems | length) == 2 and .test_allow_list == []'
        json_check "the evidence names /sys/class/iommu and the groups' type" "$LAST_OUT" \
                '[.evidence[] | select(.conclusion == "iommu.enabled" and .source == "/sys/class/iommu"
                                        and .text == "dmar0")] | length == 1'
        json_check "a problem names the non-viable group and the device that keeps it" "$LAST_OUT" \
                '[.status.problems[] | select(contains("0000:01:01.0") and contains("0000:01:02.0"))] | length == 1'
        assert_contains "the reason is on stderr" "the host is not compliant: 2 problem(s)" "$LAST_ERR"
        expect_exit "show-iommu-status (text) exits 1" 1 vgpu-admin show-iommu-status
        assert_contains "the text shows the IOMMU" "IOMMU: enabled (intel, strict)" "$LAST_OUT"
        assert_contains "the text shows the verdict" "Verdict: NOT COMPLIANT" "$LAST_OUT"
}

test_gpus_and_their_groups() {
        expect_exit "list-gpus --json exits 0" 0 vgpu-admin --json list-gpus
        json_check "three GPUs, by address" "$LAST_OUT" \
                '[.[].address] == ["0000:00:02.0", "0000:00:03.0", "0000:01:01.0"]'
        json_check "00:02.0 carries the console" "$LAST_OUT" '.[0].boot_vga and (.[0].isolated | not)'
        json_check "00:03.0 is isolated on vfio-pci in its own group" "$LAST_OUT" \
                '.[1].driver == "vfio-pci" and .[1].isolated and .[1].group_viable and .[1].group_members == ["0000:00:03.0"]'
        json_check "01:01.0's group is not viable, with the reason" "$LAST_OUT" \
                '(.[2].group_viable | not) and (.[2].group_members | index("0000:01:02.0") != null)
                 and (.[2].group_viable_reason | contains("i6300ESB"))'
        json_check "edu (not a GPU) is not listed" "$LAST_OUT" '[.[] | select(.device_id == 4584)] == []'
}

test_refusals_change_nothing() {
        expect_iommu_refusal "bind-gpu of edu" "0000:00:04.0 (1234:11e8, class 0x00ff00) is not a GPU" 00:04.0
        expect_iommu_refusal "bind-gpu of the console GPU" "carries the host's firmware console" 00:02.0
        expect_iommu_refusal "bind-gpu of a GPU in a non-viable group" "IOMMU group 4 also holds 0000:01:02.0" 01:01.0
        expect_iommu_refusal "bind-gpu of an absent device" "There is no PCI device 0000:00:09.0" 00:09.0
        local before
        before=$(tree_digest)
        expect_exit "bind-gpu as nobody is refused by the bus policy" 1 \
                setpriv --reuid=nobody --regid=65534 --clear-groups "$VGPU_BUILD_DIR/vgpu-admin" bind-gpu 00:03.0
        assert_contains "bind-gpu as nobody: access denied" "access denied" "$LAST_ERR"
        expect_exit "iommu-faults --acknowledge as nobody is refused" 1 \
                setpriv --reuid=nobody --regid=65534 --clear-groups "$VGPU_BUILD_DIR/vgpu-admin" iommu-faults --acknowledge
        expect_exit "list-gpus as nobody is allowed" 0 \
                setpriv --reuid=nobody --regid=65534 --clear-groups "$VGPU_BUILD_DIR/vgpu-admin" list-gpus
        assert_eq "the unprivileged calls changed nothing" "$before" "$(tree_digest)"
        expect_exit "GetGpu of a path is refused by the service" 1 \
                busctl --system call org.vgpu.Iommu1 /org/vgpu/Iommu1 org.vgpu.Iommu1 GetGpu s "../../../etc"
        assert_contains "GetGpu of a path: InvalidArgument" "is not a PCI address" "$LAST_ERR"
}

test_a_fault_is_recorded_signalled_and_acknowledged() {
        local monitor=$VGPU_TEST_TMP/monitor.json mpid
        busctl --system --json=short monitor org.vgpu.Iommu1 >"$monitor" 2>/dev/null &
        mpid=$!
        sleep 0.5
        printf '3,900,4100000,-;DMAR: [DMA Write NO_PASID] Request device [00:03.0] fault addr 0x7f000 [fault reason 0x05] PTE Write access is not set\n' \
                >>"$tree/dev/kmsg"
        wait_for 10 bash -c 'vgpu-admin --json iommu-faults | jq -e "length == 1" >/dev/null'
        expect_exit "iommu-faults --json exits 0" 0 vgpu-admin --json iommu-faults
        json_check "the fault: dmar, device 0000:00:03.0, address 0x7f000, its reason" "$LAST_OUT" \
                '.[0] | .seq == 1 and .source == "dmar" and .device == "0000:00:03.0" and .address == 520192
                 and (.reason | contains("PTE Write access is not set"))'
        wait_for 5 grep -q FaultRecorded "$monitor"
        check "FaultRecorded was emitted" grep -q '"member":"FaultRecorded"' "$monitor"
        kill "$mpid" 2>/dev/null
        wait "$mpid" 2>/dev/null
        expect_exit "show-iommu-status fails on the fault" 1 vgpu-admin --json show-iommu-status
        json_check "the fault counts against the host" "$LAST_OUT" \
                '.status.faults == 1 and ([.status.problems[] | select(contains("1 IOMMU fault(s)"))] | length == 1)'
        expect_exit "iommu-faults --acknowledge exits 0" 0 vgpu-admin --json iommu-faults --acknowledge
        json_check "one fault acknowledged" "$LAST_OUT" '.acknowledged == 1'
        expect_exit "show-iommu-status after the acknowledgement" 1 vgpu-admin --json show-iommu-status
        json_check "the fault no longer counts, and stays listed" "$LAST_OUT" '.status.faults == 0'
        expect_exit "iommu-faults still lists it" 0 vgpu-admin --json iommu-faults
        json_check "still one fault listed" "$LAST_OUT" 'length == 1'
}

test_a_vms_record_follows_its_pools_gpu() {
        local group
        group=$(basename "$(readlink "$tree/sys/bus/pci/devices/0000:00:03.0/iommu_group")")
        check "pool A gets GPU 0000:00:03.0" vgpu-admin configure-pool --pool=A --gpu=gpu:0000:00:03.0
        check "register VM 5 in pool A" vgpu-admin register-vm --vm-id=5 --pool=A --priority=high
        wait_for 10 bash -c "vgpu-admin --json show-vm 5 | jq -e '.iommu_domain == \"vfio:group$group\"' >/dev/null"
        expect_exit "show-vm 5 --json exits 0" 0 vgpu-admin --json show-vm 5
        json_check "the store holds VM 5's IOMMU domain and group" "$LAST_OUT" \
                ".iommu_domain == \"vfio:group$group\" and .iommu_group == $group"
        expect_exit "show-iommu-status --vm-id=5 exits 1 (the host is not compliant)" 1 \
                vgpu-admin --json show-iommu-status --vm-id=5
        json_check "VM 5 is protected, on its pool's GPU" "$LAST_OUT" \
                ".vm | .vm_id == 5 and .pool == \"A\" and .gpu == \"0000:00:03.0\" and .protected
                 and .domain == \"vfio:group$group\" and .iommu_policy == \"required\""
        check "register VM 6 in pool B, which has no GPU" vgpu-admin register-vm --vm-id=6 --pool=B --priority=low
        expect_exit "show-iommu-status --vm-id=6 exits 1" 1 vgpu-admin --json show-iommu-status --vm-id=6
        json_check "VM 6 is not protected, and why" "$LAST_OUT" '(.vm.protected | not) and (.vm.reason | length > 0)'
        assert_contains "VM 6: stderr says so" "VM 6 is not protected by the IOMMU" "$LAST_ERR"
}

test_boot_settings_are_written_with_a_backup() {
        local grub=$tree/etc/default/grub original
        original=$(cat "$grub")
        expect_exit "iommu-setup --json exits 0" 0 vgpu-admin --json iommu-setup
        json_check "the proposal turns the IOMMU on, strict, and drops iommu=pt" "$LAST_OUT" \
                '.platform == "linux" and .change_needed and .current == "quiet iommu=pt"
                 and .proposed == "quiet intel_iommu=on iommu.strict=1"'
        assert_eq "iommu-setup alone writes nothing" "$original" "$(cat "$grub")"
        expect_exit "iommu-setup --apply as nobody is refused" 1 \
                setpriv --reuid=nobody --regid=65534 --clear-groups "$VGPU_BUILD_DIR/vgpu-admin" iommu-setup --apply
        assert_eq "the refused --apply wrote nothing" "$original" "$(cat "$grub")"
        expect_exit "iommu-setup --apply exits 0" 0 vgpu-admin --json iommu-setup --apply
        json_check "the settings were written, with a backup" "$LAST_OUT" '.changed and (.backup | length > 0)'
        assert_contains "the file has the new command line" \
                'GRUB_CMDLINE_LINUX="quiet intel_iommu=on iommu.strict=1"' "$(cat "$grub")"
        assert_contains "the rest of the file is kept" "GRUB_DEFAULT=0" "$(cat "$grub")"
        local backup
        backup=$(jq -r .backup <<<"$LAST_OUT")
        assert_eq "the backup holds the old file" "$original" "$(cat "$backup")"
        expect_exit "a second --apply exits 0" 0 vgpu-admin iommu-setup --apply
        assert_contains "a second --apply writes nothing" "nothing was written" "$LAST_OUT"
}

test_the_verdict_comes_with_its_evidence
test_gpus_and_their_groups
test_refusals_change_nothing
test_a_fault_is_recorded_signalled_and_acknowledged
test_a_vms_record_follows_its_pools_gpu
test_boot_settings_are_written_with_a_backup
done_testing
