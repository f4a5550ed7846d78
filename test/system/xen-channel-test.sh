#!/usr/bin/env bash
# shellcheck disable=SC2054 # QEMU options hold commas, not array separators
# System test: the Xen grant channel on a real hypervisor. Boots Debian's Xen 4.17 under QEMU (software
# emulation, no KVM) with the Debian 6.1 kernel as a PV dom0; dom0 starts xenstored and xenconsoled, then
# the whole vgpu stack under vgpu-devstack (its own bus, vgpu-configd, vgpu-iommud, a vgpu-schedd per pool,
# vgpu-ingestd serving Xen channels), registers a VM with a uuid and runs a command over a grant channel:
#
#   xen-channel-test.sh [guest]    test xen-channel-guest: `xl create` starts a PV guest (a busybox
#                                  initramfs with vgpu-run and vgpu-load), vgpu-xen-channel creates its
#                                  channel, the guest runs gemm through the grant channel to vgpu-ingestd,
#                                  the pool's scheduler and the VM's executor (CPU backend) and checks the
#                                  result; dom0 checks the channel as vgpu-admin shows it, destroys the guest
#                                  and checks that the channel goes away (@releaseDomain) and ingestd stays.
#
# The checks run inside the VM (test/system/xen-channel-dom0-init.sh, xen-channel-guest-init.sh), one TAP
# line per step, so that a failure names the step and its error. Prints TAP; exits 0 when every check
# passed, 1 otherwise; skips (TAP plan 1..0 # SKIP) without QEMU. It runs in suite 'system', in every CI
# run: a PV guest boots in seconds here.
#
# Environment: VGPU_BUILD_DIR (the meson build directory; meson test sets it), VGPU_SYSTEM_CACHE (where
# the kernel, Xen and busybox are kept between runs; default ${XDG_CACHE_HOME:-$HOME/.cache}/vgpu-system-test),
# VGPU_SYSTEM_TIMEOUT (seconds for the VM, default 300), VGPU_TEST_KEEP=1 (keep the VM's files).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
trap vm_cleanup EXIT
trap "exit 130" INT
trap "exit 143" TERM

mode=${1:-guest}
case $mode in
guest) ;;
*) vm_die "usage: xen-channel-test.sh [guest]" ;;
esac
: "${VGPU_BUILD_DIR:?VGPU_BUILD_DIR must name the build directory (meson test sets it)}"
build=$(cd "$VGPU_BUILD_DIR" && pwd)
limit=${VGPU_SYSTEM_TIMEOUT:-300}
t_start=$(date +%s.%N)

# The VM as vgpu knows it, and the uuid Xen gives the guest.
vm_id=7
vm_uuid=6f1c2a9e-3b7d-4e51-9a0c-5d2e8f4b1a37
guest_name=vgpu-guest

vm_qemu
vm_kernel
vm_kernel_unpacked
vm_busybox
vm_xen
vm_log "kernel: $VM_KERNEL_PACKAGE; Xen: $VM_XEN_VERSION; QEMU: $("$VM_QEMU" --version | head -n1); inputs ready in $(vm_secs_since "$t_start") s"

work=
vm_tmpdir work
case $work$VM_VMLINUX in
*,* | *' '*) vm_die "QEMU's -initrd cannot take paths with commas or spaces: $work, $VM_VMLINUX" ;;
esac

# --- Inputs and the expected result, computed here: small integers, so float32 gemm is exact.
data="$work/data"
mkdir -p "$data"
python3 - "$data" <<'PY'
import struct, sys

def write_npy(path, shape, values):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % ", ".join(str(d) for d in shape)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(struct.pack("<%df" % len(values), *values))

d, m, k, n = sys.argv[1], 16, 12, 8
a = [float((i * 7 + 3) % 7 - 3) for i in range(m * k)]
b = [float((i * 5 + 1) % 5 - 2) for i in range(k * n)]
c = [sum(a[i * k + p] * b[p * n + j] for p in range(k)) for i in range(m) for j in range(n)]
write_npy(d + "/a.npy", (m, k), a)
write_npy(d + "/b.npy", (k, n), b)
write_npy(d + "/c-expected.npy", (m, n), c)
PY

# --- The build's programs.
need() { # NAME: the path of a program of the build, or nothing
        local f
        for f in "$build/$1" "$build"/*/"$1" "$build"/*/*/"$1"; do
                [ -x "$f" ] && [ -f "$f" ] && { echo "$f"; return 0; }
        done
        return 1
}
missing=()
for p in vgpu-devstack vgpu-configd vgpu-iommud vgpu-schedd vgpu-ingestd vgpu-executor vgpu-admin vgpu-run vgpu-load; do
        need "$p" >/dev/null || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] || vm_die "not in $build: ${missing[*]} (build the project first)"
xen_channel=$(need vgpu-xen-channel || true)
[ -n "$xen_channel" ] || vm_log "WARNING: vgpu-xen-channel is not in $build: the channel checks will fail"
libvgpu_so=$(find "$build/guest/libvgpu" -maxdepth 1 -name 'libvgpu.so.*' -type f 2>/dev/null | head -n1 || true)
# The Xen libraries a Xen frontend uses, wherever it loads them from (linked or opened at run time).
xen_libs=()
for l in libxengnttab.so.1 libxenevtchn.so.1 libxenstore.so.4 libxentoolcore.so.1 libxentoollog.so.1 \
        libxencall.so.1 libxenforeignmemory.so.1; do
        f=$(ldconfig -p | sed -n "s/^[[:space:]]*$l (libc6,x86-64) => //p" | head -n1)
        [ -n "$f" ] || f="$VM_XEN_DIR/root/usr/lib/x86_64-linux-gnu/$l"
        xen_libs+=("$f")
done

libgcc_s=$(gcc -print-file-name=libgcc_s.so.1 2>/dev/null || true)
[ -f "$libgcc_s" ] || libgcc_s=/lib/x86_64-linux-gnu/libgcc_s.so.1

# add_guest_side DIR: what a program in a guest needs to reach vgpu: vgpu-run, vgpu-load, libvgpu.so,
# the Xen libraries, the inputs and the expected result.
add_guest_side() {
        local d=$1 l
        vm_add_binary "$d" "$(need vgpu-run)" /usr/bin/vgpu-run
        vm_add_binary "$d" "$(need vgpu-load)" /usr/bin/vgpu-load
        if [ -n "$libvgpu_so" ]; then
                vm_add_binary "$d" "$libvgpu_so" "/usr/lib/x86_64-linux-gnu/$(basename "$libvgpu_so")"
                ln -sf "$(basename "$libvgpu_so")" "$d/usr/lib/x86_64-linux-gnu/libvgpu.so.0"
        fi
        for l in "${xen_libs[@]}"; do
                [ -e "$d/usr/lib/x86_64-linux-gnu/$(basename "$l")" ] ||
                        vm_add_binary "$d" "$l" "/usr/lib/x86_64-linux-gnu/$(basename "$l")" /usr/lib/x86_64-linux-gnu
        done
        # libxenstore's xs_close() cancels its reader thread: pthread_cancel loads libgcc_s at run time.
        cp -L "$libgcc_s" "$d/usr/lib/x86_64-linux-gnu/"
        mkdir -p "$d/data"
        cp "$data"/*.npy "$d/data/"
}

# --- dom0's initramfs.
root="$work/dom0"
vm_initramfs_base "$root"
vm_xen_dom0 "$root"
mkdir -p "$root/dev/pts"
for tool in dbus-daemon jq; do
        path=$(command -v "$tool") || vm_die "$tool is missing (scripts/setup installs it)"
        vm_add_binary "$root" "$path" "/usr/bin/$tool"
done
# The services side by side, as vgpu-devstack and vgpu-schedd expect to find them.
for p in vgpu-devstack vgpu-configd vgpu-iommud vgpu-schedd vgpu-ingestd vgpu-executor vgpu-admin; do
        vm_add_binary "$root" "$(need "$p")" "/usr/bin/$p"
done
[ -z "$xen_channel" ] || vm_add_binary "$root" "$xen_channel" /usr/bin/vgpu-xen-channel
add_guest_side "$root"
# The project's bus policy, where an installed vgpu-devstack looks for it; a machine id for the bus.
mkdir -p "$root/usr/share/dbus-1/system.d" "$root/var/lib/dbus"
cp "$top"/systemd-units/dbus/org.vgpu.*.conf "$root/usr/share/dbus-1/system.d/"
echo 3c9e1f7a5b2d4e6f8a0b1c2d3e4f5a6b >"$root/etc/machine-id"
ln -s /etc/machine-id "$root/var/lib/dbus/machine-id"
if [ -f /usr/share/misc/pci.ids ]; then
        mkdir -p "$root/usr/share/misc"
        cp /usr/share/misc/pci.ids "$root/usr/share/misc/"
fi

if [ "$mode" = guest ]; then
        g="$work/guest"
        vm_initramfs_base "$g"
        add_guest_side "$g"
        printf 'VM_ID=%s\n' "$vm_id" >"$g/etc/vgpu-test.env"
        cp "$here/vm-tap.sh" "$here/xen-channel-lib.sh" "$g/lib/"
        cp "$here/xen-channel-guest-init.sh" "$g/init"
        chmod 0755 "$g/init"
        mkdir -p "$root/guest"
        vm_pack "$g" "$root/guest/initrd"
        cp "$VM_VMLINUX_GZ" "$root/guest/vmlinux.gz"
        cat >"$root/etc/xen/$guest_name.cfg" <<EOF
name = "$guest_name"
type = "pv"
uuid = "$vm_uuid"
kernel = "/guest/vmlinux.gz"
ramdisk = "/guest/initrd"
extra = "console=hvc0 loglevel=4 rdinit=/init"
memory = 256
vcpus = 1
on_poweroff = "destroy"
on_reboot = "destroy"
on_crash = "destroy"
EOF
        vm_log "guest initramfs: $(du -h "$root/guest/initrd" | cut -f1)"
fi

cat >"$root/etc/vgpu-test.env" <<EOF
MODE=$mode
VM_ID=$vm_id
VM_UUID=$vm_uuid
GUEST_NAME=$guest_name
HAVE_XEN_CHANNEL=$([ -n "$xen_channel" ] && echo 1 || echo 0)
EOF
cp "$here/vm-tap.sh" "$here/xen-channel-lib.sh" "$root/lib/"
cp "$here/xen-channel-dom0-init.sh" "$root/init"
chmod 0755 "$root/init"
vm_pack "$root" "$work/dom0.cpio"
vm_log "dom0 initramfs: $(du -h "$work/dom0.cpio" | cut -f1), built in $(vm_secs_since "$t_start") s since start"

xen_cmdline="console=com1 com1=115200,8n1 dom0_mem=768M,max:768M noreboot"
dom0_cmdline="console=hvc0 loglevel=4 rdinit=/init"
t_boot=$(date +%s.%N)
rc=0
vm_boot "$limit" "$work/console.log" \
        -machine q35 -cpu qemu64 -m 2G -smp 2 \
        -kernel "$VM_XEN_DIR/xen.elf" -append "$xen_cmdline" \
        -initrd "$VM_VMLINUX $dom0_cmdline,$work/dom0.cpio" || rc=$?
boot_s=$(vm_secs_since "$t_boot")

failed=0
vm_tap_report "$work/console.log" "$rc" "$limit" || failed=1
echo "# boot to power-off ${boot_s} s; whole test $(vm_secs_since "$t_start") s"
[ "$failed" -eq 0 ]
