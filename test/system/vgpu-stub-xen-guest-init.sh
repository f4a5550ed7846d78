#!/bin/sh
# /init of the HVM guest that test/system/vgpu-stub-xen-dom0-init.sh starts with xl (busybox sh, as PID 1),
# with the project's QEMU as its device model and a vgpu-stub device on that QEMU's command line. It reads
# its identity back with vgpu-info and prints one line per check on its serial console
# ("GUESTTAP: ok - ..." / "GUESTTAP: not ok - ..."), which dom0 reads from the file the device model
# writes the serial port to; then "GUEST-END" and it powers off.
#
# /etc/vgpu-test.env (written by the harness): EXPECT_VM_ID, EXPECT_POOL, EXPECT_PRIORITY.
set -u
export PATH=/usr/bin:/bin:/usr/sbin:/sbin
export HOME=/root LC_ALL=C
# shellcheck disable=SC1091
. /etc/vgpu-test.env

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

TAP_PREFIX=GUESTTAP
# shellcheck source=vm-tap.sh
. /lib/vm-tap.sh

say "# [$(cut -d' ' -f1 /proc/uptime) s] guest init"
say "# hypervisor: $(cat /sys/hypervisor/type 2>/dev/null || echo unknown); PCI: $(for d in /sys/bus/pci/devices/*; do
        printf '%s=%s:%s ' "${d##*/}" "$(cat "$d/vendor")" "$(cat "$d/device")"; done)"
json=$(vgpu-info --json 2>&1)
rc=$?
expect "vgpu-info --json exits 0 in the Xen HVM guest" "$rc" 0
say "# $json"
# field NAME: a number or string field of vgpu-info's one-line JSON object.
field() {
        printf '%s\n' "$json" | sed -n "s/.*\"$1\":\"\{0,1\}\([A-Za-z0-9_:.]*\)\"\{0,1\}[,}].*/\1/p"
}
expect "the guest reads vm_id $EXPECT_VM_ID" "$(field vm_id)" "$EXPECT_VM_ID"
expect "the guest reads pool_id $EXPECT_POOL" "$(field pool_id)" "$EXPECT_POOL"
expect "the guest reads priority $EXPECT_PRIORITY" "$(field priority)" "$EXPECT_PRIORITY"
expect "the device says QEMU announced the identity (STATUS bit 0)" "$(field announced)" true
addr=$(field pci_address)
bar=$(head -n1 "/sys/bus/pci/devices/$addr/resource" 2>/dev/null | cut -d' ' -f1)
if [ -n "$bar" ]; then
        devmem $((bar + 0x08)) 32 0x12345678
        expect "a write to VM_ID through Xen and the device model leaves it at $EXPECT_VM_ID, counted once" \
                "$(($(devmem $((bar + 0x08)) 32))) $(($(devmem $((bar + 0x24)) 32)))" "$EXPECT_VM_ID 1"
fi
say "# [$(cut -d' ' -f1 /proc/uptime) s] guest done"
echo "GUEST-END"
sync
poweroff -f
