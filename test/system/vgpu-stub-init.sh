#!/bin/sh
# /init of the VM that test/system/vgpu-stub-test.sh boots (busybox sh, as PID 1): a q35 machine with the
# vgpu-stub device. It checks that the guest-side tools read back the identity the command line gave the
# device, that writes to its read-only registers change nothing and are counted, and that the doorbell
# counts; prints one line per check on the console ("VMTAP: ok - ..." / "VMTAP: not ok - ..."), then
# "VMTAP-END" and powers off.
#
# /etc/vgpu-test.env (written by the harness): STUB_ADDR (the device's PCI address), EXPECT_VM_ID,
# EXPECT_POOL, EXPECT_PRIORITY.
set -u
export PATH=/usr/bin:/bin:/usr/sbin:/sbin
export HOME=/root LC_ALL=C

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# shellcheck disable=SC1091
. /etc/vgpu-test.env

# shellcheck source=vm-tap.sh
. /lib/vm-tap.sh
finish() {
        phase "done"
        echo "VMTAP-END"
        sync
        poweroff -f
}

dev=/sys/bus/pci/devices/$STUB_ADDR
phase "init started"

# --- the device as the guest's PCI layer sees it ---
if [ ! -d "$dev" ]; then
        not_ok "the vgpu-stub device is at $STUB_ADDR"
        diag "$(for d in /sys/bus/pci/devices/*; do echo "${d##*/} $(cat "$d/vendor"):$(cat "$d/device")"; done)"
        finish
fi
expect "the device at $STUB_ADDR is 1af4:10f0, class 0x088000, revision 0x01" \
        "$(cat "$dev/vendor"):$(cat "$dev/device") $(cat "$dev/class") $(cat "$dev/revision")" \
        "0x1af4:0x10f0 0x088000 0x01"
# shellcheck disable=SC2046 # the first line of resource: start, end, flags
set -- $(head -n1 "$dev/resource")
expect "its BAR0 is 4 KiB of memory" "$(($2 - $1 + 1)) $((($3 & 0x200) != 0))" "4096 1"
# virtio-pci matches every 1af4 device and must decline this one (its device ID is outside virtio's range).
expect "no driver claims it (virtio-pci declines the experimental ID)" "$(readlink "$dev/driver" 2>/dev/null || echo none)" none

# --- vgpu-info reads the registers through sysfs ---
json=$(vgpu-info --json 2>&1)
rc=$?
expect "vgpu-info --json exits 0" "$rc" 0
[ "$rc" -eq 0 ] || diag "$json"
field() {
        printf '%s' "$json" | jq -r "$1" 2>&1
}
expect "vgpu-info reads vm_id $EXPECT_VM_ID" "$(field .vm_id)" "$EXPECT_VM_ID"
expect "vgpu-info reads pool_id $EXPECT_POOL" "$(field .pool_id)" "$EXPECT_POOL"
expect "vgpu-info reads priority $EXPECT_PRIORITY" "$(field .priority)" "$EXPECT_PRIORITY"
expect "vgpu-info reads interface version 1 at $STUB_ADDR" "$(field '"\(.version) \(.pci_address)"')" "1 $STUB_ADDR"
expect "the device says QEMU announced the identity to the host (STATUS bit 0)" "$(field .announced)" true
expect "no write has been ignored yet, no doorbell rung" "$(field '"\(.ignored_writes) \(.doorbell_count)"')" "0 0"
text=$(vgpu-info 2>&1)
expect "vgpu-info's text names VM, pool and priority" \
        "$(printf '%s\n' "$text" | sed -n 's/^\(VM\|Pool\|Priority\): *//p' | tr '\n' ' ')" \
        "$EXPECT_VM_ID $EXPECT_POOL $EXPECT_PRIORITY "

# --- an unprivileged user: refused by the file's mode (0600), admitted once a rule opens it (0444) ---
out=$(/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups vgpu-info 2>&1)
rc=$?
expect "as uid 65534 vgpu-info exits 1 and says the registers are root's" \
        "$rc $(printf '%s' "$out" | grep -c 'root only')" "1 1"
diag "$out"
mode=$(stat -c %a "$dev/resource0")
chmod 0444 "$dev/resource0"
out=$(/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups vgpu-info --json 2>&1)
expect "with resource0 made readable (0444, as a udev rule would), uid 65534 reads vm_id $EXPECT_VM_ID" \
        "$(printf '%s' "$out" | jq -r .vm_id 2>&1)" "$EXPECT_VM_ID"
diag "$out"
chmod "$mode" "$dev/resource0"

# --- the registers by hand (busybox devmem on the BAR's physical address) ---
bar=$(awk 'NR == 1 { print $1 }' "$dev/resource")
reg() { # reg OFFSET [WIDTH]: the register's value as 0x%08X (devmem's format)
        devmem $((bar + $1)) "${2:-32}"
}
poke() { # poke OFFSET VALUE: a 32-bit write
        devmem $((bar + $1)) 32 "$2"
}
expect "MAGIC (0x00) reads 0x55504756 ('VGPU')" "$(reg 0x00)" 0x55504756
expect "VERSION (0x04) reads 1" "$(reg 0x04)" 0x00000001
expect "VM_ID (0x08) reads $EXPECT_VM_ID" "$(($(reg 0x08)))" "$EXPECT_VM_ID"
expect "a 1-byte read of POOL_ID (0x10) reads the pool's first letter" "$(($(reg 0x10 8)))" \
        "$(printf '%d' "'$EXPECT_POOL")"
expect "an unassigned register (0x100) reads 0" "$(reg 0x100)" 0x00000000

poke 0x08 0x12345678
expect "a write to VM_ID leaves it at $EXPECT_VM_ID" "$(($(reg 0x08)))" "$EXPECT_VM_ID"
expect "... and IGNORED_WRITES (0x24) counts it" "$(($(reg 0x24)))" 1
before="$(reg 0x0c) $(reg 0x10) $(reg 0x00)"
poke 0x0c 2
poke 0x10 0x41414141
poke 0x00 0
expect "writes to PRIORITY, POOL_ID and MAGIC change none of them" "$(reg 0x0c) $(reg 0x10) $(reg 0x00)" "$before"
expect "... and IGNORED_WRITES counts 4 in all" "$(($(reg 0x24)))" 4
poke 0x24 0
expect "IGNORED_WRITES itself is read-only (a write to it is counted: 5)" "$(($(reg 0x24)))" 5
json=$(vgpu-info --json 2>&1)
expect "vgpu-info still reads vm_id $EXPECT_VM_ID, pool $EXPECT_POOL, priority $EXPECT_PRIORITY, 5 ignored writes" \
        "$(field '"\(.vm_id) \(.pool_id) \(.priority) \(.ignored_writes)"')" \
        "$EXPECT_VM_ID $EXPECT_POOL $EXPECT_PRIORITY 5"

poke 0x28 1
poke 0x28 0xffffffff
expect "two doorbell writes: DOORBELL_COUNT (0x2c) reads 2, the doorbell itself reads 0" \
        "$(($(reg 0x2c))) $(reg 0x28)" "2 0x00000000"
expect "... and IGNORED_WRITES is unchanged" "$(($(reg 0x24)))" 5

# --- vgpu-run --info shows the same identity (there is no channel here: it says so and exits 1) ---
out=$(vgpu-run --info 2>/dev/null)
expect "vgpu-run --info prints the vgpu-stub line" "$(printf '%s\n' "$out" | grep '^vgpu-stub:')" \
        "vgpu-stub:  $STUB_ADDR: VM $EXPECT_VM_ID, pool $EXPECT_POOL, priority $EXPECT_PRIORITY"
json=$(vgpu-run --info --json 2>/dev/null)
expect "vgpu-run --info --json carries vgpu_stub {vm_id, pool_id, priority}" \
        "$(field '"\(.vgpu_stub.vm_id) \(.vgpu_stub.pool_id) \(.vgpu_stub.priority)"')" \
        "$EXPECT_VM_ID $EXPECT_POOL $EXPECT_PRIORITY"

if [ "$failures" -gt 0 ]; then
        diag "vgpu-info:" "$text"
fi
finish
