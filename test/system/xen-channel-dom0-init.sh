#!/bin/sh
# /init of Xen's dom0 in the VM that test/system/xen-channel-test.sh boots (busybox sh, as PID 1). It
# brings up the Xen toolstack (xenstored, xen-init-dom0, xenconsoled), then the whole vgpu stack under
# vgpu-devstack, which runs this same script again with --stack for the checks: one line per step on the
# console ("VMTAP: ok - ..." / "VMTAP: not ok - ..."), then "VMTAP-END", and the VM powers off.
#
# /etc/vgpu-test.env (written by the harness): MODE (guest: a PV guest runs the command), VM_ID and VM_UUID (the VM as vgpu-configd knows it; the guest's xl
# config carries the uuid), GUEST_NAME, HAVE_XEN_CHANNEL (1 when vgpu-xen-channel is in the initramfs).
set -u
export PATH=/usr/bin:/usr/sbin:/bin:/sbin
export HOME=/root LC_ALL=C NO_COLOR=1 TERM=dumb
MODE=guest VM_ID=7 VM_UUID='' GUEST_NAME=vgpu-guest HAVE_XEN_CHANNEL=0
# shellcheck disable=SC1091
. /etc/vgpu-test.env
STATE=/var/lib/vgpu-stack
GUEST_LOG=/var/log/xen/console/guest-$GUEST_NAME.log

TAP_PREFIX=VMTAP PHASE_LABEL=
# shellcheck source=xen-channel-lib.sh
. /lib/xen-channel-lib.sh

# uptime_s: dom0's uptime in whole seconds.
uptime_s() {
        cut -d. -f1 /proc/uptime
}
# wait_for SECONDS COMMAND...: runs COMMAND every 0.2 s until it succeeds; fails once SECONDS have passed
# (by the clock: under software emulation one try may take a second).
wait_for() {
        end=$(($(uptime_s) + $1))
        shift
        while [ "$(uptime_s)" -lt "$end" ]; do
                "$@" >/dev/null 2>&1 && return 0
                sleep 0.2
        done
        "$@"
}
# log_tail FILE [LINES]: the end of a log as diagnostics.
log_tail() {
        if [ -s "$1" ]; then
                diag "--- last lines of $1:"
                tail -n "${2:-15}" "$1" | tr -d '\r' | sed 's/^/VMTAP: #   /'
        fi
}

# ===================================================================================================
# The checks, under vgpu-devstack (DBUS_SYSTEM_BUS_ADDRESS, VGPU_RUNTIME_DIR and VGPU_STATE_DIR point at
# the private stack). Exit status: the number of failed checks (0: all passed).
# ===================================================================================================

created=0 # vgpu-xen-channel create succeeded
seen=0    # vgpu-admin listed the channel connected

# channel_json: the Xen channel records vgpu-ingestd lists for the domain $1 (one JSON object a line).
channel_json() {
        vgpu-admin --json channels | jq -c --argjson d "$1" '.[] | select(.transport == "xen" and .domid == $d)'
}
channel_connected() {
        [ -n "$(channel_json "$1" | jq -c 'select(.state == "connected")')" ]
}
channel_gone() {
        out=$(vgpu-admin --json channels) || return 1
        [ -z "$(printf '%s' "$out" | jq -c --argjson d "$1" '.[] | select(.transport == "xen" and .domid == $d)')" ]
}
ingestd_pid() {
        cat "$VGPU_DEVSTACK_DIR/devstack/vgpu-ingestd.pid" 2>/dev/null
}
# perms_ok PATH OWNER [WRITER]: xenstore node PATH belongs to domain OWNER (its first permission), and
# domain WRITER (if given) may write it (it is the owner, or holds w or b).
perms_ok() {
        p=$(xenstore-ls -p "$(dirname "$1")" 2>/dev/null | sed -n "s/^$(basename "$1") = .*(\([^)]*\))\$/\1/p")
        [ -n "$p" ] || { echo "no permissions found for $1"; return 1; }
        echo "$1: ($p)"
        first=${p%%,*}
        [ "${first#?}" = "$2" ] || { echo "owned by ${first#?}, expected $2"; return 1; }
        [ -z "${3:-}" ] || [ "$3" = "$2" ] || echo ",$p," | grep -Eq ",[wb]$3," ||
                { echo "domain $3 may not write it"; return 1; }
}
# grant_mappers: which dom0 processes map grants now (their /dev/xen/gntdev mappings), for diagnosis.
grant_mappers() {
        for m in /proc/[0-9]*/maps; do
                n=$(grep -c /dev/xen/gntdev "$m" 2>/dev/null) || continue
                p=${m#/proc/}
                p=${p%/maps}
                echo "pid $p ($(cat "/proc/$p/comm" 2>/dev/null)): $n gntdev mappings"
        done
}
# stack_logs: the end of every service's log, for a failure's diagnosis.
stack_logs() {
        for f in "$STATE"/log/*.log; do
                case $f in
                */vgpu-ingestd.log) log_tail "$f" 80 ;;
                *) log_tail "$f" 20 ;;
                esac
        done
}

# relay_guest: the guest's own checks ("GUESTTAP: ..." on its console) as this VM's, once each.
relayed=0
relay_guest() {
        [ -f "$GUEST_LOG" ] || return 0
        tr -d '\r' <"$GUEST_LOG" | sed -n 's/^GUESTTAP: //p' >/tmp/guest-tap
        total=$(wc -l </tmp/guest-tap)
        if [ "$total" -gt "$relayed" ]; then
                tail -n +$((relayed + 1)) /tmp/guest-tap | while IFS= read -r l; do
                        case $l in
                        "ok - "*) say "ok - guest: ${l#ok - }" ;;
                        "not ok - "*) say "not ok - guest: ${l#not ok - }" ;;
                        *) say "$l" ;;
                        esac
                done
                failures=$((failures + $(tail -n +$((relayed + 1)) /tmp/guest-tap | grep '^not ok - ' | grep -vc ' # TODO ')))
                relayed=$total
        fi
}

stack_common() {
        phase "vgpu-devstack: every service ready"
        check "vgpu-devstack started the stack: vgpu-admin list-pools answers on its bus" vgpu-admin list-pools
        diag "$(vgpu-admin list-pools 2>&1)"
        check "register VM $VM_ID in pool A, priority high, uuid $VM_UUID" \
                vgpu-admin register-vm --vm-id="$VM_ID" --pool=A --priority=high --uuid="$VM_UUID"
        if grep -qi xen "$STATE/log/vgpu-ingestd.log" 2>/dev/null; then
                diag "vgpu-ingestd on Xen: $(grep -i xen "$STATE/log/vgpu-ingestd.log" | head -n 3)"
        fi
        if [ "$HAVE_XEN_CHANNEL" = 1 ]; then
                ok "vgpu-xen-channel is in the build"
        else
                not_ok "vgpu-xen-channel is in the build (it is not: the channel steps below fail)"
        fi
}

# create_channel DOMID: vgpu-xen-channel create, and its xenstore directories as the contract says.
create_channel() {
        d=$1
        if out=$(vgpu-xen-channel create --domid="$d" --vm-uuid="$VM_UUID" 2>&1); then
                ok "vgpu-xen-channel create --domid=$d --vm-uuid=$VM_UUID"
                created=1
        else
                not_ok "vgpu-xen-channel create --domid=$d --vm-uuid=$VM_UUID"
                diag "$out"
        fi
        check "the frontend directory /local/domain/$d/device/vgpu/0 exists, owned by or writable for domain $d" \
                perms_ok "/local/domain/$d/device/vgpu/0" "$d" "$d"
        check "the backend directory /local/domain/0/backend/vgpu/$d/0 is dom0's" \
                perms_ok "/local/domain/0/backend/vgpu/$d/0" 0
        check "the backend's vm-uuid is $VM_UUID" \
                test "$(xenstore-read "/local/domain/0/backend/vgpu/$d/0/vm-uuid" 2>&1)" = "$VM_UUID"
        check "vgpu-xen-channel show --domid=$d" vgpu-xen-channel show --domid="$d"
        diag "$(vgpu-xen-channel show --domid="$d" 2>&1)"
}

# destroy_channel DOMID: vgpu-xen-channel destroy removes both directories.
destroy_channel() {
        d=$1
        check "vgpu-xen-channel destroy --domid=$d" vgpu-xen-channel destroy --domid="$d"
        if [ "$created" = 1 ]; then
                check "its xenstore directories are gone" sh -c \
                        "! xenstore-exists /local/domain/$d/device/vgpu/0 && ! xenstore-exists /local/domain/0/backend/vgpu/$d/0"
        else
                not_ok "its xenstore directories are gone (they were never created)"
        fi
}

# connected_or_dead DOMID PID: the channel is connected, or the frontend PID (if given) has ended.
connected_or_dead() {
        channel_connected "$1" || { [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; }
}
# check_channel DOMID [PID]: the channel as vgpu-admin shows it while a frontend (process PID, when it is
# in dom0) is connected.
check_channel() {
        d=$1
        wait_for 20 connected_or_dead "$d" "${2:-}" >/dev/null 2>&1
        if channel_connected "$d"; then
                seen=1
                ok "vgpu-admin channels: a connected channel with transport \"xen\" and domid $d"
        else
                not_ok "vgpu-admin channels: a connected channel with transport \"xen\" and domid $d"
                diag "$(vgpu-admin --json channels 2>&1)"
                return
        fi
        rec=$(channel_json "$d" | head -n1)
        diag "$rec"
        check "the channel is VM $VM_ID's" test "$(echo "$rec" | jq -r .vm_id)" = "$VM_ID"
        check "the channel has carried requests and completions" \
                test "$(echo "$rec" | jq '.requests > 0 and .completions > 0')" = true
        diag "$(vgpu-admin channels 2>&1)"
}

stack_guest() {
        stack_common
        t0=$(now)
        if out=$(xl create -p "/etc/xen/$GUEST_NAME.cfg" 2>&1); then
                ok "xl create -p starts the PV guest $GUEST_NAME (uuid $VM_UUID), paused ($(since "$t0") s)"
        else
                not_ok "xl create -p starts the PV guest $GUEST_NAME"
                diag "$out"
                return
        fi
        domid=$(xl domid "$GUEST_NAME" 2>&1)
        check "xl domid $GUEST_NAME: $domid" sh -c "[ '$domid' -gt 0 ]"
        check "xl list shows the guest with the uuid" sh -c "xl list -v | grep -q '$VM_UUID'"
        phase "guest created (domain $domid)"
        create_channel "$domid"
        check "xl unpause $GUEST_NAME" xl unpause "$GUEST_NAME"
        phase "guest running"
        # The guest runs its checks, then keeps vgpu-load running on the channel until it is destroyed.
        if wait_for 180 grep -Eq '^GUEST-(LOAD-RUNNING|END)' "$GUEST_LOG"; then
                phase "guest done with its checks"
                relay_guest
                diag "dom0 processes mapping grants now:" "$(grant_mappers)"
                ok "the guest ran its checks and printed its end marker"
        else
                relay_guest
                not_ok "the guest ran its checks and printed its end marker (within 180 s)"
                log_tail "$GUEST_LOG" 40
        fi
        if grep -q '^GUEST-LOAD-RUNNING' "$GUEST_LOG" 2>/dev/null; then
                check_channel "$domid"
        fi
        pid=$(ingestd_pid)
        t0=$(now)
        check "xl destroy $GUEST_NAME" xl destroy "$GUEST_NAME"
        phase "guest destroyed"
        relay_guest
        if [ "$seen" != 1 ]; then
                not_ok "vgpu-ingestd tore the channel of domain $domid down once the domain was gone (no connected channel was ever listed)"
        elif wait_for 30 channel_gone "$domid"; then
                ok "vgpu-ingestd tore the channel of domain $domid down once the domain was gone ($(since "$t0") s)"
        else
                not_ok "vgpu-ingestd tore the channel of domain $domid down once the domain was gone (@releaseDomain; 30 s)"
                diag "$(vgpu-admin --json channels 2>&1)"
        fi
        check "vgpu-ingestd is still up, the same process (pid $pid)" sh -c \
                "[ -n '$pid' ] && [ \"\$(cat $VGPU_DEVSTACK_DIR/devstack/vgpu-ingestd.pid)\" = '$pid' ] && kill -0 '$pid'"
        check "vgpu-ingestd still answers (vgpu-admin channels)" vgpu-admin channels
        destroy_channel "$domid"
}

if [ "${1:-}" = --stack ]; then
        : >/run/stack-started
        case $MODE in
        guest) stack_guest ;;
        esac
        [ "$failures" -eq 0 ] || stack_logs
        phase "checks done"
        exit "$((failures > 100 ? 100 : failures))"
fi

# ===================================================================================================
# PID 1: the Xen toolstack, then the stack.
# ===================================================================================================
finish() {
        phase "done"
        echo "VMTAP-END"
        sync
        poweroff -f
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run /tmp /var/run/xenstored /var/log/xen/console
mount -t devpts devpts /dev/pts
phase "dom0 init"
# The kernel's random generator is not seeded under software emulation; a blocking read seeds it (else
# every uuid libxl makes costs seconds).
dd if=/dev/random of=/dev/null bs=1 count=1 2>/dev/null
phase "random seeded"
for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs; do
        check "insmod $m" insmod "/lib/modules/$m.ko"
done
mkdir -p /proc/xen
check "mount xenfs on /proc/xen" mount -t xenfs xenfs /proc/xen
check "dom0 is Xen's control domain (/proc/xen/capabilities: control_d)" grep -q control_d /proc/xen/capabilities
check "/dev/xen has evtchn, gntdev, gntalloc, privcmd, xenbus" sh -c \
        'for f in evtchn gntdev gntalloc privcmd xenbus; do [ -c /dev/xen/$f ] || { echo "no /dev/xen/$f"; exit 1; }; done'
check "xenstored starts" xenstored --pid-file /run/xenstored.pid
check "xen-init-dom0" xen-init-dom0
check "xenstore answers (domain 0 is named Domain-0)" sh -c '[ "$(xenstore-read /local/domain/0/name)" = Domain-0 ]'
check "xenconsoled starts (the guest's console goes to $GUEST_LOG)" \
        xenconsoled --log=guest --log-dir=/var/log/xen/console --pid-file=/run/xenconsoled.pid
diag "$(xl info 2>&1 | grep -E '^(xen_version|xen_caps|virt_caps|total_memory|free_memory)')"
phase "Xen toolstack up"

mkdir -p "$STATE"
rc=0
vgpu-devstack -q --state-dir="$STATE" -- /init --stack || rc=$?
if [ ! -e /run/stack-started ]; then
        not_ok "vgpu-devstack starts the bus and every vgpu service (status $rc)"
        stack_logs
elif [ "$rc" -ne 0 ]; then
        diag "the checks under vgpu-devstack: status $rc"
fi
finish
