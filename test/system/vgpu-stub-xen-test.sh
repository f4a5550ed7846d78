#!/usr/bin/env bash
# shellcheck disable=SC2054 # QEMU options hold commas, not array separators
# System test (suite system-slow, run on demand): the vgpu-stub device in a Xen HVM guest, the way XCP-ng
# runs VMs. Boots Debian's Xen 4.17 under QEMU (software emulation with nested SVM and NPT, no KVM) with
# the Debian 6.1 kernel as a PV dom0; dom0 starts an HVM guest whose device model is the project's own
# QEMU built with Xen support (qemu/build-qemu.sh; xl's device_model_override), with
# -device vgpu-stub,vm_id=3,pool_id=A,priority=high added through device_model_args; the guest reads its
# identity back with vgpu-info (test/system/vgpu-stub-xen-dom0-init.sh, vgpu-stub-xen-guest-init.sh).
# Prints TAP; exits 0 when every check passed, 1 otherwise; skips (TAP plan 1..0 # SKIP) without QEMU or
# when the project's QEMU has no Xen support.
#
# Environment: VGPU_SLOW_TESTS=1 (without it the test skips: it takes minutes, and ./run-tests leaves the
# system-slow suite out); as vgpu-stub-test.sh (VGPU_BUILD_DIR, VGPU_QEMU, VGPU_QEMU_CACHE,
# VGPU_SYSTEM_CACHE, VGPU_TEST_KEEP); VGPU_SYSTEM_TIMEOUT (seconds for the VM, default 900).
#   VGPU_SLOW_TESTS=1 meson test -C build --suite system-slow -v
set -euo pipefail

if [ "${VGPU_SLOW_TESTS:-}" != 1 ]; then
        echo "1..0 # SKIP on demand only: VGPU_SLOW_TESTS=1 meson test -C build --suite system-slow"
        exit 0
fi

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
trap vm_cleanup EXIT
trap "exit 130" INT
trap "exit 143" TERM

: "${VGPU_BUILD_DIR:?VGPU_BUILD_DIR must name the build directory (meson test sets it)}"
limit=${VGPU_SYSTEM_TIMEOUT:-900}
t_start=$(date +%s.%N)
guest_name=stub-guest

# The device model: the project's QEMU. The outer machine: Debian's.
vm_qemu_stub
dm=$VM_QEMU
dm_built=$VM_QEMU_BUILT
if ! "$dm" -machine help | grep -q '^xenfv'; then
        echo "1..0 # SKIP $dm has no Xen support (qemu/build-qemu.sh builds it with Xen when libxen-dev is installed)"
        exit 0
fi
vm_qemu
vm_kernel
vm_kernel_unpacked
vm_busybox
vm_xen
vm_log "device model: $dm ($dm_built); Xen: $VM_XEN_VERSION; outer QEMU: $("$VM_QEMU" --version | head -n1); inputs ready in $(vm_secs_since "$t_start") s"

vgpu_info=$VGPU_BUILD_DIR/guest/vgpu-info/vgpu-info
[ -x "$vgpu_info" ] || vm_die "$vgpu_info is missing: build the project first"
hvmloader="$VM_XEN_DIR/root/usr/lib/xen-4.17/boot/hvmloader"
[ -f "$hvmloader" ] || vm_die "no hvmloader in $VM_XEN_DIR (xen-utils-4.17)"

work=
vm_tmpdir work
case $work$VM_VMLINUX in
*,* | *' '*) vm_die "QEMU's -initrd cannot take paths with commas or spaces: $work, $VM_VMLINUX" ;;
esac

# The HVM guest: busybox and vgpu-info; booted directly (kernel=, ramdisk=) by the device model.
g="$work/guest"
vm_initramfs_base "$g"
vm_add_binary "$g" "$vgpu_info" /usr/bin/vgpu-info
printf 'EXPECT_VM_ID=3\nEXPECT_POOL=A\nEXPECT_PRIORITY=high\n' >"$g/etc/vgpu-test.env"
cp "$here/vgpu-stub-xen-guest-init.sh" "$g/init"
mkdir -p "$g/lib" && cp "$here/vm-tap.sh" "$g/lib/"
chmod 0755 "$g/init"

# dom0: the toolstack, the device model with its libraries and firmware, hvmloader, the guest.
root="$work/dom0"
vm_initramfs_base "$root"
vm_xen_dom0 "$root"
mkdir -p "$root/dev/pts" "$root/usr/lib/xen-4.17/boot" "$root/guest"
vm_add_binary "$root" "$dm" /usr/lib/vgpu/qemu-system-x86_64
cp "$hvmloader" "$root/usr/lib/xen-4.17/boot/"
for f in /usr/share/seabios/bios-256k.bin /usr/share/seabios/vgabios-stdvga.bin /usr/share/qemu/linuxboot_dma.bin \
        /usr/share/qemu/linuxboot.bin /usr/share/qemu/kvmvapic.bin; do
        [ -f "$f" ] || continue
        mkdir -p "$root$(dirname "$f")"
        cp -L "$f" "$root$f"
done
[ ! -d /usr/share/qemu/keymaps ] || cp -rL /usr/share/qemu/keymaps "$root/usr/share/qemu/"
vm_pack "$g" "$root/guest/initrd"
cp "$VM_KERNEL_DIR/vmlinuz" "$root/guest/vmlinuz"
announce="vgpu-stub 1 vm_id=3 pool_id=A priority=high"
cat >"$root/etc/xen/$guest_name.cfg" <<EOF
name = "$guest_name"
type = "hvm"
memory = 256
vcpus = 1
kernel = "/guest/vmlinuz"
ramdisk = "/guest/initrd"
cmdline = "console=ttyS0 loglevel=4 rdinit=/init"
vnc = 0
sdl = 0
vga = "none"
serial = "file:/var/log/guest-serial.log"
device_model_version = "qemu-xen"
device_model_override = "/usr/lib/vgpu/qemu-system-x86_64"
device_model_args = [ "-chardev", "file,id=vgpu0,path=/var/log/vgpu-stub.announce",
                      "-device", "vgpu-stub,vm_id=3,pool_id=A,priority=high,chardev=vgpu0" ]
on_poweroff = "destroy"
on_reboot = "destroy"
on_crash = "destroy"
EOF
printf 'GUEST_NAME=%s\nEXPECT_ANNOUNCE="%s"\n' "$guest_name" "$announce" >"$root/etc/vgpu-test.env"
cp "$here/vgpu-stub-xen-dom0-init.sh" "$root/init"
mkdir -p "$root/lib" && cp "$here/vm-tap.sh" "$root/lib/"
chmod 0755 "$root/init"
vm_pack "$root" "$work/dom0.cpio"
vm_log "guest initramfs $(du -h "$root/guest/initrd" | cut -f1), dom0 initramfs $(du -h "$work/dom0.cpio" | cut -f1), built in $(vm_secs_since "$t_start") s since start"

xen_cmdline="console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M noreboot"
dom0_cmdline="console=hvc0 loglevel=4 rdinit=/init"
t_boot=$(date +%s.%N)
rc=0
vm_boot "$limit" "$work/console.log" \
        -machine q35 -cpu qemu64,+svm,+npt -m 2G -smp 2 \
        -kernel "$VM_XEN_DIR/xen.elf" -append "$xen_cmdline" \
        -initrd "$VM_VMLINUX $dom0_cmdline,$work/dom0.cpio" || rc=$?
boot_s=$(vm_secs_since "$t_boot")

failed=0
vm_tap_report "$work/console.log" "$rc" "$limit" || failed=1
echo "# device model $dm_built; boot to power-off ${boot_s} s; whole test $(vm_secs_since "$t_start") s"
[ "$failed" -eq 0 ]
