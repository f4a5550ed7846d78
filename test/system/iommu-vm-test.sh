#!/usr/bin/env bash
# System test: vgpu-iommud against a real (emulated) IOMMU. Boots a Debian 6.1 kernel under QEMU
# (software emulation, no KVM) on a q35 machine with an emulated Intel IOMMU and QEMU's edu device, runs
# vgpu-iommud inside with its own system bus, and checks over D-Bus that it finds the IOMMU and the groups,
# refuses what it must, and binds devices to vfio-pci and back (test/system/iommu-vm-init.sh holds the
# checks). Prints TAP; exits 0 when every check passed, 1 otherwise; skips (TAP plan 1..0 # SKIP) only
# without QEMU.
#
# Environment: VGPU_BUILD_DIR (the meson build directory; meson test sets it), VGPU_SYSTEM_CACHE (where
# the kernel and busybox are kept between runs; default ${XDG_CACHE_HOME:-$HOME/.cache}/vgpu-system-test),
# VGPU_SYSTEM_TIMEOUT (seconds for the VM, default 300), VGPU_TEST_KEEP=1 (keep the VM's files).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
trap vm_cleanup EXIT
trap "exit 130" INT
trap "exit 143" TERM

: "${VGPU_BUILD_DIR:?VGPU_BUILD_DIR must name the build directory (meson test sets it)}"
limit=${VGPU_SYSTEM_TIMEOUT:-300}
t_start=$(date +%s.%N)

vm_qemu
vm_kernel
vm_busybox
vm_log "kernel: $VM_KERNEL_PACKAGE; QEMU: $("$VM_QEMU" --version | head -n1); inputs ready in $(vm_secs_since "$t_start") s"

work=
vm_tmpdir work
root="$work/root"
vm_initramfs_base "$root"

# The D-Bus side: the bus daemon, clients (busctl for typed replies, dbus-send for error names), jq to
# read busctl's JSON, setpriv to call as an unprivileged user.
for tool in dbus-daemon dbus-send busctl jq setpriv; do
        path=$(command -v "$tool") || vm_die "$tool is missing (scripts/setup installs it)"
        vm_add_binary "$root" "$path" "/usr/bin/$tool"
done
have_iommud=0
for f in "$VGPU_BUILD_DIR/vgpu-iommud" "$VGPU_BUILD_DIR/services/iommud/vgpu-iommud"; do
        if [ -x "$f" ]; then
                vm_add_binary "$root" "$f" /usr/bin/vgpu-iommud
                have_iommud=1
                break
        fi
done
if [ "$have_iommud" = 0 ]; then
        vm_log "WARNING: vgpu-iommud is not in $VGPU_BUILD_DIR: only the sysfs checks run, the D-Bus checks are skipped"
fi
[ ! -x "$VGPU_BUILD_DIR/vgpu-admin" ] || vm_add_binary "$root" "$VGPU_BUILD_DIR/vgpu-admin" /usr/bin/vgpu-admin
if [ -f /usr/share/misc/pci.ids ]; then
        mkdir -p "$root/usr/share/misc"
        cp /usr/share/misc/pci.ids "$root/usr/share/misc/"
fi

mkdir -p "$root/etc/dbus-1/system.d"
echo 5d7f0c3a9b2e4c1f8a6d3e2b1c0f9a8e >"$root/etc/machine-id"
mkdir -p "$root/var/lib/dbus"
ln -s /etc/machine-id "$root/var/lib/dbus/machine-id"
policy="$top/systemd-units/dbus/org.vgpu.Iommu1.conf"
if [ -f "$policy" ]; then
        cp "$policy" "$root/etc/dbus-1/system.d/"
else
        vm_log "WARNING: $policy is missing: the VM's bus lets root own org.vgpu.Iommu1 and everyone call it"
        cat >"$root/etc/dbus-1/system.d/org.vgpu.Iommu1.conf" <<'EOF'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <policy user="root"><allow own="org.vgpu.Iommu1"/></policy>
  <policy context="default"><allow send_destination="org.vgpu.Iommu1"/></policy>
</busconfig>
EOF
fi
# A system bus as a distribution configures it (deny by default), with the project's policy.
{
        cat <<'EOF'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
EOF
        sed '/^<!--/,/^-->/d' "$top/test/tools/dbus-system-policy.xml"
        cat <<'EOF'
  <includedir>/etc/dbus-1/system.d</includedir>
</busconfig>
EOF
} >"$root/etc/dbus-1/system.conf"
# A second bus that lets everyone do everything: what the service itself refuses is checked behind it.
cat >"$root/etc/dbus-1/open.conf" <<'EOF'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/open_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
EOF
echo "HAVE_IOMMUD=$have_iommud" >"$root/etc/vgpu-test.env"
cp "$here/iommu-vm-init.sh" "$root/init"
mkdir -p "$root/lib" && cp "$here/vm-tap.sh" "$root/lib/"
chmod 0755 "$root/init"
vm_pack "$root" "$work/initrd"
vm_log "initramfs: $(du -h "$work/initrd" | cut -f1), built in $(vm_secs_since "$t_start") s since start"

t_boot=$(date +%s.%N)
rc=0
vm_boot "$limit" "$work/console.log" \
        -machine q35,kernel-irqchip=split -cpu max -m 1G -smp 2 \
        -device intel-iommu,intremap=on \
        -device VGA,addr=02.0 -device bochs-display,addr=03.0 -device edu,addr=04.0 \
        -device pci-bridge,id=br1,chassis_nr=1,addr=05.0 \
        -device bochs-display,bus=br1,addr=01.0 -device i6300esb,bus=br1,addr=02.0 \
        -kernel "$VM_KERNEL_DIR/vmlinuz" -initrd "$work/initrd" \
        -append "console=ttyS0 loglevel=4 panic=-1 rdinit=/init intel_iommu=on iommu.strict=1" || rc=$?
boot_s=$(vm_secs_since "$t_boot")

failed=0
vm_tap_report "$work/console.log" "$rc" "$limit" || failed=1
echo "# boot to power-off ${boot_s} s; whole test $(vm_secs_since "$t_start") s"
[ "$failed" -eq 0 ]
