#!/usr/bin/env bash
# shellcheck disable=SC2054 # QEMU options hold commas, not array separators
# Records the trees in test/data/iommu/ from real Debian 6.1 kernels booted under QEMU (software
# emulation), with record-iommu-tree.sh run inside each VM:
#
#   intel-vtd   q35 + intel-iommu (intremap), intel_iommu=on iommu.strict=1
#   amd-vi      q35 + amd-iommu, an AMD CPU model, amd_iommu=on (lazy invalidation: the kernel default)
#   iommu-off   q35 without an IOMMU, default command line
#   xen-dom0    Xen 4.17 with a PV dom0 (the same kernel), q35 + intel-iommu under Xen
#
#   test/system/record-vm-trees.sh [--out DIR] [NAME...]     (default: all four, into test/data/iommu/)
#
# PCI devices in every VM: a VGA device with the firmware console (boot_vga), a second display device
# (bochs-display, class 0x038000), QEMU's edu (1234:11e8, not a GPU), and behind a PCI-to-PCI bridge a
# second bochs-display sharing its IOMMU group with an i6300esb watchdog bound to its host driver
# (a group that is not viable). The vfio modules are loaded; in intel-vtd the first bochs-display is
# bound to vfio-pci.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
trap vm_cleanup EXIT
trap "exit 130" INT
trap "exit 143" TERM

out="$top/test/data/iommu"
if [ "${1:-}" = --out ]; then
        out=$2
        shift 2
fi
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(intel-vtd amd-vi iommu-off xen-dom0)

vm_qemu
vm_kernel
vm_busybox
qemu_version=$("$VM_QEMU" --version | head -n1)

devices=(-device VGA,addr=02.0 -device bochs-display,addr=03.0 -device edu,addr=04.0
        -device pci-bridge,id=br1,chassis_nr=1,addr=05.0
        -device bochs-display,bus=br1,addr=01.0 -device i6300esb,bus=br1,addr=02.0)
vfio_modules="irqbypass vfio vfio_iommu_type1 vfio_virqfd vfio-pci-core vfio-pci"

# init SCRIPT-PART: the VM's /init: mount, load modules, run SCRIPT-PART, record, send the tree out on
# ttyS1 as base64 between markers, power off.
write_init() {
        cat >"$1" <<EOF
#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $2; do insmod /lib/modules/\$m.ko || echo "insmod \$m failed"; done
$3
sh /record-iommu-tree.sh /tmp/tree
tar -C /tmp/tree -cf /tmp/tree.tar .
stty -F /dev/ttyS1 raw -echo 2>/dev/null
{ echo BEGIN-TREE; base64 /tmp/tree.tar; echo END-TREE; } >/dev/ttyS1
echo RECORDED-OK
poweroff -f
EOF
        chmod +x "$1"
}

# unpack B64FILE NAME: the tree sent by the VM into $out/NAME.
unpack() {
        local b64=$1 name=$2 tmp
        vm_tmpdir tmp
        tr -d '\r' <"$b64" | sed -n '/^BEGIN-TREE$/,/^END-TREE$/p' | sed '1d;$d' | base64 -d >"$tmp/tree.tar" ||
                vm_die "$name: the tree sent by the VM is incomplete"
        rm -rf "${out:?}/$name"
        mkdir -p "$out/$name"
        tar -C "$out/$name" -xf "$tmp/tree.tar"
}

# recorded NAME TEXT...: test/data/iommu/NAME/RECORDED.
recorded() {
        local name=$1
        shift
        {
                echo "Recorded by test/system/record-vm-trees.sh with test/system/record-iommu-tree.sh, $(date -u +%Y-%m-%d)."
                echo "Kernel: Debian $VM_KERNEL_PACKAGE ($VM_KERNEL_RELEASE), booted directly with an initramfs."
                echo "QEMU: $qemu_version, software emulation (TCG)."
                printf '%s\n' "$@"
        } >"$out/$name/RECORDED"
}

record_linux() {
        local name=$1 cmdline=$2 extra=$3
        shift 3
        local tmp t0 secs rc=0
        vm_tmpdir tmp
        vm_initramfs_base "$tmp/root"
        cp "$here/record-iommu-tree.sh" "$tmp/root/record-iommu-tree.sh"
        write_init "$tmp/root/init" "$vfio_modules watchdog i6300esb" "$extra"
        vm_pack "$tmp/root" "$tmp/initrd"
        local args=(-machine q35,kernel-irqchip=split -m 1G -smp 2 "$@" "${devices[@]}"
                -serial "file:$tmp/tree.b64" -kernel "$VM_KERNEL_DIR/vmlinuz" -initrd "$tmp/initrd"
                -append "$cmdline")
        t0=$(date +%s.%N)
        vm_boot 180 "$tmp/console.log" "${args[@]}" || rc=$?
        secs=$(vm_secs_since "$t0")
        if [ "$rc" -ne 0 ] || ! grep -q RECORDED-OK "$tmp/console.log"; then
                tail -n 40 "$tmp/console.log" >&2
                vm_die "$name: the VM did not finish recording (QEMU status $rc)"
        fi
        unpack "$tmp/tree.b64" "$name"
        local shown="${args[*]}"
        shown=${shown//"$tmp/"/}
        shown=${shown//"$VM_KERNEL_DIR/"/}
        recorded "$name" "QEMU command line: qemu-system-x86_64 -accel tcg -nodefaults -display none -no-reboot -serial file:console.log $shown" \
                "The initramfs holds static busybox as /init, the vfio modules and the i6300esb watchdog's modules;" \
                "/init loads them$([ -n "$extra" ] && echo ", then: $extra"), runs record-iommu-tree.sh and sends the tree out on ttyS1." \
                "Boot to power-off: $secs s."
        vm_log "$name: recorded in $secs s ($(du -sk "$out/$name" | cut -f1) KiB)"
}

for name in "${names[@]}"; do
        case $name in
        intel-vtd)
                record_linux intel-vtd "console=ttyS0 loglevel=4 panic=-1 rdinit=/init intel_iommu=on iommu.strict=1" \
                        "echo vfio-pci >/sys/bus/pci/devices/0000:00:03.0/driver_override; echo 0000:00:03.0 >/sys/bus/pci/drivers_probe" \
                        -cpu max -device intel-iommu,intremap=on
                ;;
        amd-vi)
                record_linux amd-vi "console=ttyS0 loglevel=4 panic=-1 rdinit=/init amd_iommu=on" "" \
                        -cpu EPYC -device amd-iommu,intremap=on
                ;;
        iommu-off)
                record_linux iommu-off "console=ttyS0 loglevel=4 panic=-1 rdinit=/init" "" -cpu max
                ;;
        xen-dom0)
                "$here/record-xen-tree.sh" "$out"
                ;;
        *) vm_die "unknown tree $name" ;;
        esac
done
