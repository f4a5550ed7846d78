#!/usr/bin/env bash
# shellcheck disable=SC2054 # QEMU options hold commas, not array separators
# Records test/data/iommu/xen-dom0: Debian's Xen 4.17 booted under QEMU (software emulation) with the
# Debian 6.1 kernel as its PV dom0; inside dom0, xenstored and xen-init-dom0 run, then
# record-iommu-tree.sh (with `xl` on its PATH for the hypervisor's own facts). Called by
# record-vm-trees.sh; usable alone: record-xen-tree.sh [OUT-DIR] (default test/data/iommu).
#
# The machine has an emulated Intel IOMMU (intel-iommu) and the same PCI devices as the other trees; the
# first bochs-display (0000:00:03.0) is given to xen-pciback (hide=) as a GPU for a guest would be.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
trap vm_cleanup EXIT
trap "exit 130" INT
trap "exit 143" TERM

out=${1:-$top/test/data/iommu}
name=xen-dom0
xen_cmdline="console=com1 com1=115200,8n1 dom0_mem=768M,max:768M noreboot iommu=verbose dom0-iommu=strict"
dom0_cmdline="console=hvc0 loglevel=4 rdinit=/init"

vm_qemu
vm_kernel
vm_busybox
vm_xen

vm_tmpdir tmp
root="$tmp/root"
vm_initramfs_base "$root"
cp "$here/record-iommu-tree.sh" "$root/record-iommu-tree.sh"
vm_xen_dom0 "$root"
cat >"$root/init" <<'EOF'
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run /var/run/xenstored /tmp
dd if=/dev/random of=/dev/null bs=1 count=1 2>/dev/null
for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs watchdog i6300esb; do
        insmod /lib/modules/$m.ko || echo "insmod $m failed"
done
insmod /lib/modules/xen-pciback.ko 'hide=(0000:00:03.0)' || echo "insmod xen-pciback failed"
mkdir -p /proc/xen
mount -t xenfs xenfs /proc/xen
xenstored --pid-file /run/xenstored.pid
xen-init-dom0 >/dev/null 2>&1 || echo "xen-init-dom0 failed"
sh /record-iommu-tree.sh /tmp/tree
tar -C /tmp/tree -cf /tmp/tree.tar .
stty -F /dev/ttyS1 raw -echo 2>/dev/null
{ echo BEGIN-TREE; base64 /tmp/tree.tar; echo END-TREE; } >/dev/ttyS1
echo RECORDED-OK
poweroff -f
EOF
chmod 0755 "$root/init"
vm_pack "$root" "$tmp/initrd"

args=(-machine q35,kernel-irqchip=split -cpu qemu64 -m 2G -smp 2 -device intel-iommu,intremap=on
        -device VGA,addr=02.0 -device bochs-display,addr=03.0 -device edu,addr=04.0
        -device pci-bridge,id=br1,chassis_nr=1,addr=05.0
        -device bochs-display,bus=br1,addr=01.0 -device i6300esb,bus=br1,addr=02.0
        -serial "file:$tmp/tree.b64" -kernel "$VM_XEN_DIR/xen.elf" -append "$xen_cmdline"
        -initrd "$VM_KERNEL_DIR/vmlinuz $dom0_cmdline,$tmp/initrd")
t0=$(date +%s.%N)
rc=0
vm_boot 300 "$tmp/console.log" "${args[@]}" || rc=$?
secs=$(vm_secs_since "$t0")
if [ "$rc" -ne 0 ] || ! grep -q RECORDED-OK "$tmp/console.log"; then
        tr -d '\r' <"$tmp/console.log" | tail -n 60 >&2
        vm_die "$name: the VM did not finish recording (QEMU status $rc)"
fi
tr -d '\r' <"$tmp/tree.b64" | sed -n '/^BEGIN-TREE$/,/^END-TREE$/p' | sed '1d;$d' | base64 -d >"$tmp/tree.tar" ||
        vm_die "$name: the tree sent by the VM is incomplete"
rm -rf "${out:?}/$name"
mkdir -p "$out/$name"
tar -C "$out/$name" -xf "$tmp/tree.tar"
shown="${args[*]}"
shown=${shown//"$tmp/"/}
shown=${shown//"$VM_KERNEL_DIR/"/}
shown=${shown//"$VM_XEN_DIR/"/}
{
        echo "Recorded by test/system/record-xen-tree.sh with test/system/record-iommu-tree.sh, $(date -u +%Y-%m-%d)."
        echo "Hypervisor: Debian xen-hypervisor-4.17-amd64 $VM_XEN_VERSION (xen.elf: boot/xen-4.17-amd64.gz, gunzipped)."
        echo "dom0 kernel: Debian $VM_KERNEL_PACKAGE ($VM_KERNEL_RELEASE), a PV dom0, with an initramfs."
        echo "QEMU: $("$VM_QEMU" --version | head -n1), software emulation (TCG)."
        echo "QEMU command line: qemu-system-x86_64 -accel tcg -nodefaults -display none -no-reboot -serial file:console.log $shown"
        echo "dom0's /init loads xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs watchdog i6300esb and"
        echo "xen-pciback with hide=(0000:00:03.0), mounts xenfs on /proc/xen, starts xenstored, runs xen-init-dom0,"
        echo "then record-iommu-tree.sh (xen/virt_caps and xen/commandline from xl info, xen/console from xl dmesg)."
        echo "Boot to power-off: $secs s."
} >"$out/$name/RECORDED"
vm_log "$name: recorded in $secs s"
