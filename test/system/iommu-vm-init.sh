#!/bin/sh
# /init of the VM that test/system/iommu-vm-test.sh boots (busybox sh, as PID 1): a q35 machine with an
# emulated Intel IOMMU and QEMU's edu device. It checks, on the VM's own system bus, that vgpu-iommud finds
# the IOMMU and the groups and binds devices to vfio-pci and back, prints one line per check on the
# console ("VMTAP: ok - ..." / "VMTAP: not ok - ..."), then "VMTAP-END" and powers off.
#
# /etc/vgpu-test.env (written by the harness) says what the initramfs holds: HAVE_IOMMUD=1 when
# vgpu-iommud is there.
set -u
export PATH=/usr/bin:/bin:/usr/sbin:/sbin
export HOME=/root LC_ALL=C SYSTEMD_COLORS=0 NO_COLOR=1 TERM=dumb

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run/dbus /tmp /var/log
HAVE_IOMMUD=0
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

for m in irqbypass vfio vfio_iommu_type1 vfio_virqfd vfio-pci-core vfio-pci watchdog i6300esb; do
        insmod "/lib/modules/$m.ko" || not_ok "insmod $m"
done

# The devices, by their IDs and class (addresses are the harness's choice).
find_dev() { # VENDOR DEVICE CLASS-PREFIX
        for d in /sys/bus/pci/devices/*; do
                [ "$(cat "$d/vendor")" = "$1" ] && [ "$(cat "$d/device")" = "$2" ] || continue
                case $(cat "$d/class") in "$3"*) echo "${d##*/}"; return 0 ;; esac
        done
        return 1
}
edu=$(find_dev 0x1234 0x11e8 0x00ff) || edu=
vga=$(find_dev 0x1234 0x1111 0x0300) || vga=
gpu=
for d in /sys/bus/pci/devices/*; do
        # A display device in a group of its own: the GPU that may be bound.
        [ "$(cat "$d/class")" = 0x038000 ] || continue
        g=$(readlink -f "$d/iommu_group")
        [ "$(ls "$g/devices" | wc -l)" -eq 1 ] && gpu=${d##*/} && break
done
shared=$(find_dev 0x8086 0x25ab 0x0880) || shared=
sharedgpu=
if [ -n "$shared" ]; then
        for d in $(readlink -f "/sys/bus/pci/devices/$shared/iommu_group")/devices/*; do
                [ "$(cat "$d/class")" = 0x038000 ] && sharedgpu=${d##*/}
        done
fi
diag "edu=$edu vga=$vga gpu=$gpu shared-group gpu=$sharedgpu (with $shared)"

driver_of() {
        if [ -L "/sys/bus/pci/devices/$1/driver" ]; then
                basename "$(readlink "/sys/bus/pci/devices/$1/driver")"
        else
                echo none
        fi
}
group_of() {
        basename "$(readlink "/sys/bus/pci/devices/$1/iommu_group")"
}

# --- The platform, as the kernel shows it.
check "the kernel enabled the Intel IOMMU (/sys/class/iommu/dmar*)" sh -c 'ls -d /sys/class/iommu/dmar*'
check "edu (1234:11e8) is present and in an IOMMU group of its own" sh -c \
        "[ -n '$edu' ] && [ \$(ls /sys/bus/pci/devices/$edu/iommu_group/devices | wc -l) -eq 1 ]"
check "the vfio-pci driver is registered" test -d /sys/bus/pci/drivers/vfio-pci

phase "modules loaded"
# The kernel's own binding path, by hand, as the service uses it: so that a failure further down is the
# service's, not the machine's. It leaves edu as it found it (no driver, no override).
echo vfio-pci >"/sys/bus/pci/devices/$edu/driver_override"
echo "$edu" >/sys/bus/pci/drivers_probe
check "sysfs by hand: driver_override + drivers_probe bind edu to vfio-pci" test "$(driver_of "$edu")" = vfio-pci
check "sysfs by hand: /dev/vfio/$(group_of "$edu") exists" test -c "/dev/vfio/$(group_of "$edu")"
echo "$edu" >/sys/bus/pci/drivers/vfio-pci/unbind
echo >"/sys/bus/pci/devices/$edu/driver_override"
check "sysfs by hand: edu released, its driver_override cleared" sh -c \
        "[ ! -e /sys/bus/pci/devices/$edu/driver ] && [ \"\$(cat /sys/bus/pci/devices/$edu/driver_override)\" = '(null)' ]"

if [ "$HAVE_IOMMUD" != 1 ]; then
        say "# SKIP the D-Bus checks: vgpu-iommud is not in the build directory"
        finish
fi

# --- A system bus with the project's policy, and the service on it.
phase "starting the system bus and vgpu-iommud"
dbus-daemon --config-file=/etc/dbus-1/system.conf --nofork --nopidfile >/var/log/dbus.log 2>&1 &
i=0
while [ ! -S /run/dbus/system_bus_socket ] && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
done
check "the system bus is up" test -S /run/dbus/system_bus_socket
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket

D=org.vgpu.Iommu1
P=/org/vgpu/Iommu1
iommud_pid=
start_iommud() { # ARGS...
        vgpu-iommud "$@" >>/var/log/iommud.log 2>&1 &
        iommud_pid=$!
        i=0
        while [ $i -lt 200 ]; do
                if dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
                        org.freedesktop.DBus.NameHasOwner string:$D 2>/dev/null | grep -q 'boolean true'; then
                        return 0
                fi
                kill -0 "$iommud_pid" 2>/dev/null || return 1
                sleep 0.1
                i=$((i + 1))
        done
        return 1
}
stop_iommud() {
        [ -n "$iommud_pid" ] || return 0
        kill "$iommud_pid" 2>/dev/null
        i=0
        while kill -0 "$iommud_pid" 2>/dev/null && [ $i -lt 50 ]; do
                sleep 0.1
                i=$((i + 1))
        done
        kill -9 "$iommud_pid" 2>/dev/null
        wait "$iommud_pid" 2>/dev/null
        iommud_pid=
}
# call METHOD ARGS...: busctl's JSON reply in $REPLY_JSON; status of the call.
call() {
        REPLY_JSON=$(timeout 30 busctl --system --json=short call $D $P $D "$@" 2>&1)
}
# jcheck NAME JQ-FILTER: the last reply satisfies the filter.
jcheck() {
        if printf '%s' "$REPLY_JSON" | jq -e "$2" >/dev/null 2>&1; then
                ok "$1"
        else
                not_ok "$1"
                diag "filter: $2" "reply: $REPLY_JSON"
        fi
}
# expect_error NAME ERROR [--as-nobody] METHOD SIGNATURE-ARGS...: the call fails with exactly ERROR.
expect_error() {
        name=$1 want=$2
        shift 2
        pre=
        if [ "$1" = --as-nobody ]; then
                pre="/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups"
                shift
        fi
        m=$1
        shift
        # shellcheck disable=SC2086 # $pre is a command prefix, split on purpose
        out=$(timeout 30 $pre dbus-send --system --print-reply --dest=$D $P $D.$m "$@" 2>&1)
        got=$(printf '%s\n' "$out" | sed -n 's/^Error \([^:]*\):.*/\1/p' | head -n1)
        if [ "$got" = "$want" ]; then
                ok "$name"
        else
                not_ok "$name"
                diag "wanted $want, got: $out"
        fi
}

if start_iommud; then
        ok "vgpu-iommud (root /, no test allow-list) owns $D"
else
        not_ok "vgpu-iommud (root /, no test allow-list) owns $D"
        diag "$(tail -n 20 /var/log/iommud.log)"
        finish
fi

REPLY_JSON=$(busctl --system --json=short get-property $D $P $D Root 2>&1)
jcheck "the Root property is /" '.data == "/"'
phase "vgpu-iommud is up"
call GetStatus
jcheck "GetStatus: iommu_enabled is true" '.data[0].iommu_enabled.data == true'
jcheck "GetStatus: vendor is intel" '.data[0].vendor.data == "intel"'
jcheck "GetStatus: platform is linux" '.data[0].platform.data == "linux"'
jcheck "GetStatus: mode is strict (iommu.strict=1)" '.data[0].mode.data == "strict"'
jcheck "GetStatus: the evidence names /sys/class/iommu/dmar*" \
        '[.data[1][] | select((.[1] + " " + .[2]) | test("sys/class/iommu/dmar"))] | length > 0'
jcheck "GetStatus: the test allow-list is empty" '.data[0].test_allow_list.data == []'

call ListGpus
jcheck "ListGpus: the VGA device $vga is listed, with boot_vga" \
        "[.data[0][] | select(.address.data == \"$vga\" and .boot_vga.data == true)] | length == 1"
jcheck "ListGpus: the display device $gpu is listed, group viable" \
        "[.data[0][] | select(.address.data == \"$gpu\" and .group_viable.data == true and .iommu_group.data == $(group_of "$gpu"))] | length == 1"
jcheck "ListGpus: $sharedgpu is listed, its group not viable (it holds $shared, bound to a host driver)" \
        "[.data[0][] | select(.address.data == \"$sharedgpu\" and .group_viable.data == false)] | length == 1"
jcheck "ListGpus: edu is not a GPU and is not listed" \
        "[.data[0][] | select(.address.data == \"$edu\")] | length == 0"

if command -v vgpu-admin >/dev/null 2>&1; then
        check "vgpu-admin list-gpus lists $gpu" sh -c "vgpu-admin list-gpus | grep -q '${gpu#0000:}'"
        check "vgpu-admin show-iommu-status names the Intel IOMMU" sh -c \
                "vgpu-admin show-iommu-status | grep -qi intel"
fi
call GetGpu s "${gpu#0000:}"
jcheck "GetGpu ${gpu#0000:} (domain left out) answers for $gpu" ".data[0].address.data == \"$gpu\""
expect_error "BindGpu edu without the allow-list: NotAGpu" org.vgpu.Error.NotAGpu BindGpu string:"$edu" string:vfio-pci
check "... and edu's driver is unchanged (none)" test "$(driver_of "$edu")" = none
check "... and edu's driver_override is unchanged" test "$(cat "/sys/bus/pci/devices/$edu/driver_override")" = "(null)"
expect_error "BindGpu of the firmware console $vga: HostConsole" org.vgpu.Error.HostConsole BindGpu string:"$vga" string:vfio-pci
check "... and its driver is unchanged (none)" test "$(driver_of "$vga")" = none
expect_error "BindGpu $sharedgpu (group shared with a bound device): GroupNotViable" org.vgpu.Error.GroupNotViable \
        BindGpu string:"$sharedgpu" string:vfio-pci
check "... and $shared keeps its host driver" test "$(driver_of "$shared")" != vfio-pci
expect_error "BindGpu of a malformed address (../../x): InvalidArgument" org.vgpu.Error.InvalidArgument \
        BindGpu string:../../x string:vfio-pci
expect_error "BindGpu of an absent device (0000:7f:1f.7): NoSuchDevice" org.vgpu.Error.NoSuchDevice \
        BindGpu string:0000:7f:1f.7 string:vfio-pci
expect_error "BindGpu as an unprivileged user (uid 65534): AccessDenied (bus policy)" \
        org.freedesktop.DBus.Error.AccessDenied --as-nobody BindGpu string:"$gpu" string:vfio-pci
check "... and $gpu's driver is unchanged (none)" test "$(driver_of "$gpu")" = none
check "GetStatus as an unprivileged user (uid 65534) works" \
        /usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups busctl --system call $D $P $D GetStatus

call BindGpu ss "$gpu" vfio-pci
jcheck "BindGpu $gpu (a GPU by class, viable group) to vfio-pci" "any(.data[0][]; . == \"$gpu\")"
check "... sysfs: $gpu's driver is vfio-pci" test "$(driver_of "$gpu")" = vfio-pci
check "... /dev/vfio/$(group_of "$gpu") exists" test -c "/dev/vfio/$(group_of "$gpu")"
call ListGpus
jcheck "... ListGpus: $gpu is isolated, driver vfio-pci" \
        "[.data[0][] | select(.address.data == \"$gpu\" and .isolated.data == true and .driver.data == \"vfio-pci\")] | length == 1"
call UnbindGpu s "$gpu"
jcheck "UnbindGpu $gpu" "any(.data[0][]; . == \"$gpu\")"
check "... sysfs: $gpu's driver is no longer vfio-pci" test "$(driver_of "$gpu")" != vfio-pci
stop_iommud

# --- The test-only allow-list admits edu.
phase "restarting vgpu-iommud with the test allow-list"
if start_iommud --test-allow-pci-id=1234:11e8; then
        ok "vgpu-iommud --test-allow-pci-id=1234:11e8 owns $D"
else
        not_ok "vgpu-iommud --test-allow-pci-id=1234:11e8 owns $D"
        diag "$(tail -n 20 /var/log/iommud.log)"
        finish
fi
call GetStatus
jcheck "GetStatus: test_allow_list is [1234:11e8]" '.data[0].test_allow_list.data == ["1234:11e8"]'
call ListGpus
jcheck "ListGpus: edu is listed, allowed_by_test_list" \
        "[.data[0][] | select(.address.data == \"$edu\" and .allowed_by_test_list.data == true)] | length == 1"
call BindGpu ss "$edu" vfio-pci
jcheck "BindGpu edu to vfio-pci (allow-list)" "any(.data[0][]; . == \"$edu\")"
check "... sysfs: edu's driver is vfio-pci" test "$(driver_of "$edu")" = vfio-pci
check "... /dev/vfio/$(group_of "$edu") exists" test -c "/dev/vfio/$(group_of "$edu")"
expect_error "UnbindGpu edu as an unprivileged user: AccessDenied (bus policy)" \
        org.freedesktop.DBus.Error.AccessDenied --as-nobody UnbindGpu string:"$edu"
check "... edu stays on vfio-pci" test "$(driver_of "$edu")" = vfio-pci
call UnbindGpu s "$edu"
jcheck "UnbindGpu edu" "any(.data[0][]; . == \"$edu\")"
check "... sysfs: edu's driver is no longer vfio-pci" test "$(driver_of "$edu")" != vfio-pci
stop_iommud

# --- The service's own check, behind a bus whose policy lets everyone call everything.
phase "vgpu-iommud behind an open bus"
dbus-daemon --config-file=/etc/dbus-1/open.conf --nofork --nopidfile >/var/log/dbus-open.log 2>&1 &
i=0
while [ ! -S /run/dbus/open_bus_socket ] && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
done
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/open_bus_socket
if start_iommud; then
        expect_error "BindGpu as uid 65534 on a bus that lets it through: the service answers AccessDenied" \
                org.vgpu.Error.AccessDenied --as-nobody BindGpu string:"$gpu" string:vfio-pci
        check "... and $gpu's driver is unchanged" test "$(driver_of "$gpu")" = none
else
        not_ok "vgpu-iommud on the open bus owns $D"
fi
stop_iommud

if [ "$failures" -gt 0 ] && grep -q . /var/log/iommud.log; then
        diag "vgpu-iommud's log (last 15 lines):" "$(tail -n 15 /var/log/iommud.log)"
fi
finish
