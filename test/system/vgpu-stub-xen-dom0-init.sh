#!/bin/sh
# /init of Xen's dom0 in the VM that test/system/vgpu-stub-xen-test.sh boots (busybox sh, as PID 1). It
# brings up the Xen toolstack, starts an HVM guest the way XCP-ng runs VMs — its device model a QEMU in
# dom0, here the project's own (device_model_override) with the vgpu-stub device added through
# device_model_args — and relays the guest's checks; then checks what the device model announced and what
# its monitor lists. One line per check on the console ("VMTAP: ok - ..."), then "VMTAP-END", power-off.
#
# /etc/vgpu-test.env (written by the harness): GUEST_NAME, EXPECT_ANNOUNCE (the chardev line).
set -u
export PATH=/usr/bin:/usr/sbin:/bin:/sbin
export HOME=/root LC_ALL=C
# shellcheck disable=SC1091
. /etc/vgpu-test.env
SERIAL=/var/log/guest-serial.log
ANNOUNCE=/var/log/vgpu-stub.announce

# shellcheck source=vm-tap.sh
. /lib/vm-tap.sh
finish() {
        phase "done"
        echo "VMTAP-END"
        sync
        poweroff -f
}
# wait_for SECONDS COMMAND...: COMMAND every second until it succeeds; fails after SECONDS (by the clock).
wait_for() {
        end=$(($(cut -d. -f1 /proc/uptime) + $1))
        shift
        while [ "$(cut -d. -f1 /proc/uptime)" -lt "$end" ]; do
                "$@" >/dev/null 2>&1 && return 0
                sleep 1
        done
        "$@" >/dev/null 2>&1
}
log_tail() {
        if [ -s "$1" ]; then
                diag "--- last lines of $1:"
                tail -n "${2:-20}" "$1" | tr -d '\r' | sed 's/^/VMTAP: #   /'
        fi
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run /tmp /var/run/xenstored /var/log/xen/console
mount -t devpts devpts /dev/pts
phase "dom0 init"
dd if=/dev/random of=/dev/null bs=1 count=1 2>/dev/null
for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs; do
        insmod "/lib/modules/$m.ko" || not_ok "insmod $m"
done
mkdir -p /proc/xen
mount -t xenfs xenfs /proc/xen || not_ok "mount xenfs"
xenstored --pid-file /run/xenstored.pid || not_ok "xenstored starts"
xen-init-dom0 >/dev/null || not_ok "xen-init-dom0"
xenconsoled --log=guest --log-dir=/var/log/xen/console --pid-file=/run/xenconsoled.pid || not_ok "xenconsoled starts"
caps=$(xl info 2>&1 | sed -n 's/^virt_caps *: //p')
if echo "$caps" | grep -qw hvm; then
        ok "Xen can run HVM guests (virt_caps: $caps)"
else
        not_ok "Xen can run HVM guests (virt_caps: $caps; the outer QEMU needs -cpu qemu64,+svm,+npt)"
        finish
fi
check "the device model is the project's QEMU with Xen support (xenfv machine)" \
        sh -c '/usr/lib/vgpu/qemu-system-x86_64 -machine help | grep -q "^xenfv"'
phase "Xen toolstack up"

t0=$(cut -d' ' -f1 /proc/uptime)
if out=$(xl create "/etc/xen/$GUEST_NAME.cfg" 2>&1); then
        ok "xl create starts the HVM guest with device_model_override and the vgpu-stub in device_model_args"
else
        not_ok "xl create starts the HVM guest with device_model_override and the vgpu-stub in device_model_args"
        diag "$out"
        log_tail "/var/log/xen/qemu-dm-$GUEST_NAME.log" 30
        finish
fi
phase "guest created"
domid=$(xl domid "$GUEST_NAME" 2>/dev/null)
if out=$(xl qemu-monitor-command "$GUEST_NAME" "info pci" 2>&1) && echo "$out" | grep -q '1af4:10f0'; then
        ok "the device model's monitor lists the vgpu-stub (1af4:10f0) on the guest's PCI bus"
else
        not_ok "the device model's monitor lists the vgpu-stub (1af4:10f0) on the guest's PCI bus"
        diag "$out"
fi
if [ "$(cat "$ANNOUNCE" 2>/dev/null)" = "$EXPECT_ANNOUNCE" ]; then
        ok "the device model announced '$EXPECT_ANNOUNCE' on its chardev"
else
        not_ok "the device model announced '$EXPECT_ANNOUNCE' on its chardev"
        diag "actual: $(cat "$ANNOUNCE" 2>&1)"
fi
if wait_for 400 grep -q '^GUEST-END' "$SERIAL"; then
        phase "the guest finished its checks ($(echo "$t0 $(cut -d' ' -f1 /proc/uptime)" | awk '{printf "%.1f", $2 - $1}') s after xl create)"
        ok "the HVM guest (domain $domid) booted and ran its checks"
else
        not_ok "the HVM guest (domain $domid) booted and ran its checks (within 400 s)"
        log_tail "$SERIAL" 40
        log_tail "/var/log/xen/qemu-dm-$GUEST_NAME.log" 30
fi
tr -d '\r' <"$SERIAL" 2>/dev/null | sed -n 's/^GUESTTAP: //p' | while IFS= read -r l; do
        case $l in
        "ok - "*) say "ok - guest: ${l#ok - }" ;;
        "not ok - "*) say "not ok - guest: ${l#not ok - }" ;;
        *) say "$l" ;;
        esac
done
xl destroy "$GUEST_NAME" >/dev/null 2>&1 || true
finish
