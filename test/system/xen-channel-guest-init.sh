#!/bin/sh
# /init of the PV guest that test/system/xen-channel-dom0-init.sh starts with xl (busybox sh, as PID 1).
# It runs a command through the Xen grant channel to vgpu in dom0, with no local socket and no
# VGPU_TRANSPORT: libvgpu must find the Xen transport by itself. One line per check on its console
# ("GUESTTAP: ok - ..." / "GUESTTAP: not ok - ..."), which dom0 reads from xenconsoled's log; then it
# keeps vgpu-load running on the channel ("GUEST-LOAD-RUNNING") so that dom0 can look at the connected
# channel and destroy the domain under it. "GUEST-END" when it has nothing left to run.
#
# /etc/vgpu-test.env (written by the harness): VM_ID.
set -u
export PATH=/usr/bin:/bin:/usr/sbin:/sbin
export HOME=/root LC_ALL=C
VM_ID=7
# shellcheck disable=SC1091
. /etc/vgpu-test.env

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp /run

TAP_PREFIX=GUESTTAP PHASE_LABEL="guest "
# shellcheck source=xen-channel-lib.sh
. /lib/xen-channel-lib.sh

phase "guest init"
# xenfs needs xen-privcmd's symbols.
for m in xen-evtchn xen-gntalloc xen-privcmd xenfs; do
        check "insmod $m" insmod "/lib/modules/$m.ko"
done
mkdir -p /proc/xen
check "mount xenfs on /proc/xen" mount -t xenfs xenfs /proc/xen
check "this is a Xen domU (/proc/xen/capabilities without control_d)" sh -c \
        '[ -e /proc/xen/capabilities ] && ! grep -q control_d /proc/xen/capabilities'
check "/dev/xen has evtchn, gntalloc, xenbus" sh -c \
        'for f in evtchn gntalloc xenbus; do [ -c /dev/xen/$f ] || { echo "no /dev/xen/$f"; exit 1; }; done'
check "no local channel socket here (the Xen transport is the only way)" test ! -e "/run/vgpu/vm/$VM_ID.sock"

phase "vgpu-run --info"
gntalloc_limit --vm-id "$VM_ID"
step "vgpu-run --info connects over the Xen transport, found by itself" info_xen --vm-id "$VM_ID"

phase "vgpu-run gemm"
gemm_checks "through the grant channel" --vm-id "$VM_ID"

phase "vgpu-load"
if step "vgpu-load connects and keeps running on the channel" load_started --vm-id "$VM_ID"; then
        echo "GUEST-LOAD-RUNNING"
        while kill -0 "$(cat /tmp/load.pid)" 2>/dev/null; do
                sleep 1
        done
        # Only reached when dom0 did not destroy the domain.
        diag "vgpu-load ended: $(cat /tmp/load.out)"
fi
echo "GUEST-END"
sleep 60
poweroff -f
