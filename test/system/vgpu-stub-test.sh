#!/usr/bin/env bash
# System test: the vgpu-stub QEMU device and the guest's side of it. Builds (or takes from its cache) the
# project's QEMU with vgpu-stub (qemu/build-qemu.sh), then
#   - on this machine: QEMU refuses to start, naming the property, for a missing or out-of-range vm_id, an
#     unknown priority and malformed pool ids; accepts the edge values; announces the identity on its
#     chardev in the documented line; keeps vm_id across a migration and refuses a destination with
#     another; vgpu-info on a machine without the device says so and exits 1;
#   - in a VM (Debian 6.1 kernel, busybox, software emulation) started with
#     -device vgpu-stub,vm_id=3,pool_id=A,priority=high: vgpu-info and vgpu-run --info read back exactly
#     those values, writes to read-only registers change nothing and are counted, the doorbell counts
#     (test/system/vgpu-stub-init.sh holds those checks).
# Prints TAP; exits 0 when every check passed, 1 otherwise; skips (TAP plan 1..0 # SKIP) only without
# QEMU's firmware.
#
# Environment: VGPU_BUILD_DIR (the meson build directory; meson test sets it), VGPU_QEMU (a QEMU with
# vgpu-stub to use instead of building one), VGPU_QEMU_CACHE (where qemu/build-qemu.sh keeps its builds),
# VGPU_SYSTEM_CACHE (kernel and busybox), VGPU_SYSTEM_TIMEOUT (seconds for the VM, default 300),
# VGPU_TEST_KEEP=1 (keep the VM's files).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
trap vm_cleanup EXIT
trap "exit 130" INT
trap "exit 143" TERM

: "${VGPU_BUILD_DIR:?VGPU_BUILD_DIR must name the build directory (meson test sets it)}"
limit=${VGPU_SYSTEM_TIMEOUT:-300}
t_start=$(date +%s.%N)

vm_qemu_stub
vm_kernel
vm_busybox
vm_log "QEMU: $VM_QEMU ($VM_QEMU_BUILT); kernel: $VM_KERNEL_PACKAGE; inputs ready in $(vm_secs_since "$t_start") s"

vgpu_info=$VGPU_BUILD_DIR/guest/vgpu-info/vgpu-info
vgpu_run=$VGPU_BUILD_DIR/vgpu-run
[ -x "$vgpu_info" ] || vm_die "$vgpu_info is missing: build the project first"
[ -x "$vgpu_run" ] || vm_die "$vgpu_run is missing: build the project first"

work=
vm_tmpdir work
n=0
failed=0
ok() {
        n=$((n + 1))
        echo "ok $n - $*"
}
not_ok() {
        n=$((n + 1))
        failed=$((failed + 1))
        echo "not ok $n - $*"
}
diag() {
        printf '%s\n' "$@" | sed 's/^/#   /'
}

# qemu_host ARGS...: this QEMU without a guest (paused, no firmware run), its monitor on stdin; prints
# stderr and stdout together. Exits with QEMU's status.
qemu_host() {
        timeout --kill-after=5 60 "$VM_QEMU" -machine q35 -accel tcg -nodefaults -display none -S \
                -monitor stdio "$@" 2>&1
}

# refuse NAME PROPERTY DEVICE: QEMU refuses -device DEVICE at start-up with a message naming PROPERTY.
refuse() {
        local out rc=0
        out=$(echo quit | qemu_host -device "$3") || rc=$?
        if [ "$rc" -eq 1 ] && printf '%s' "$out" | grep -q "$2"; then
                ok "QEMU refuses $1 (status 1, the message names '$2')"
                diag "$(printf '%s' "$out" | sed -n 's/^.*\(qemu-system-[a-z0-9_]*: \)/\1/p' | head -n 2)"
        else
                not_ok "QEMU refuses $1 (status 1, the message names '$2')"
                diag "-device $3: status $rc" "$out"
        fi
}

# accept NAME DEVICE CHARDEV_FILE: QEMU starts with -device DEVICE,chardev=ann, chardev ann writing to
# CHARDEV_FILE (its monitor then quits it).
accept() {
        local out rc=0
        out=$(printf 'info pci\nquit\n' | qemu_host -chardev "file,id=ann,path=$3" -device "$2,chardev=ann") || rc=$?
        if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -qi 'vendor 1af4 device 10f0\|1af4:10f0'; then
                ok "QEMU accepts $1"
        else
                not_ok "QEMU accepts $1"
                diag "-device $2: status $rc" "$out"
        fi
}

t_host=$(date +%s.%N)
refuse "a vgpu-stub without vm_id" vm_id "vgpu-stub,pool_id=A,priority=high"
refuse "vm_id=0" vm_id "vgpu-stub,vm_id=0,pool_id=A"
refuse "vm_id=2147483648 (past the largest VM id)" vm_id "vgpu-stub,vm_id=2147483648"
refuse "vm_id=three (not a number)" vm_id "vgpu-stub,vm_id=three"
refuse "priority=urgent" priority "vgpu-stub,vm_id=3,pool_id=A,priority=urgent"
refuse "priority=High (levels are lower case)" priority "vgpu-stub,vm_id=3,priority=High"
refuse "pool_id=1A (must start with a letter)" pool_id "vgpu-stub,vm_id=3,pool_id=1A"
refuse "pool_id=pool-a (only letters, digits and '_')" pool_id "vgpu-stub,vm_id=3,pool_id=pool-a"
refuse "pool_id=ABCDEFGHIJKLMNOPQ (17 characters, 16 at most)" pool_id "vgpu-stub,vm_id=3,pool_id=ABCDEFGHIJKLMNOPQ"
refuse "an empty pool_id" pool_id "vgpu-stub,vm_id=3,pool_id="
refuse "an unknown chardev" chardev "vgpu-stub,vm_id=3,chardev=nosuch"

accept "vm_id=2147483647, pool_id=Pool_0123456789 (16 characters), priority=low" \
        "vgpu-stub,vm_id=2147483647,pool_id=Pool_0123456789,priority=low" "$work/edge.announce"
expect_line() { # expect_line NAME FILE LINE
        if [ -f "$2" ] && [ "$(cat "$2")" = "$3" ]; then
                ok "$1"
        else
                not_ok "$1"
                diag "expected: $3" "actual:   $(cat "$2" 2>/dev/null || echo '(no file)')"
        fi
}
expect_line "... and announces exactly one line on its chardev" "$work/edge.announce" \
        "vgpu-stub 1 vm_id=2147483647 pool_id=Pool_0123456789 priority=low"
accept "vm_id=7 alone (pool and priority not set)" "vgpu-stub,vm_id=7" "$work/bare.announce"
expect_line "... and announces them empty" "$work/bare.announce" "vgpu-stub 1 vm_id=7 pool_id= priority="

# Migration: the state goes to a file; a destination with the same vm_id takes it, another refuses it.
out=$(printf 'migrate "exec:cat > %s"\ninfo migrate\nquit\n' "$work/migration" |
        qemu_host -device vgpu-stub,vm_id=3,pool_id=A,priority=high) || true
if [ -s "$work/migration" ] && grep -q vgpu-stub "$work/migration"; then
        ok "a VM with vgpu-stub migrates (its state holds a vgpu-stub section)"
else
        not_ok "a VM with vgpu-stub migrates (its state holds a vgpu-stub section)"
        diag "$out"
fi
rc=0
out=$( (sleep 3; printf 'info status\nquit\n') | qemu_host -device vgpu-stub,vm_id=3,pool_id=A,priority=high \
        -incoming "exec:cat $work/migration") || rc=$?
if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q 'VM status: paused'; then
        ok "a destination with the same vm_id takes the migration"
else
        not_ok "a destination with the same vm_id takes the migration"
        diag "status $rc" "$out"
fi
rc=0
out=$( (sleep 3; printf 'quit\n') | qemu_host -device vgpu-stub,vm_id=4,pool_id=A,priority=high \
        -incoming "exec:cat $work/migration") || rc=$?
if [ "$rc" -ne 0 ] && printf '%s' "$out" | grep -q "another vm_id"; then
        ok "a destination with another vm_id refuses the migration (status $rc, 'another vm_id')"
        diag "$(printf '%s' "$out" | grep -i 'vm_id\|load' | head -n 3)"
else
        not_ok "a destination with another vm_id refuses the migration"
        diag "status $rc" "$out"
fi

# vgpu-info on a machine without the device (this one, unless it is itself such a VM).
if ! grep -qsx 0x1af4 /sys/bus/pci/devices/*/vendor || ! grep -qsx 0x10f0 /sys/bus/pci/devices/*/device; then
        rc=0
        out=$("$vgpu_info" 2>&1) || rc=$?
        if [ "$rc" -eq 1 ] && printf '%s' "$out" | grep -q 'no vgpu-stub device found'; then
                ok "vgpu-info without the device exits 1: $out"
        else
                not_ok "vgpu-info without the device exits 1 and says 'no vgpu-stub device found'"
                diag "status $rc" "$out"
        fi
fi
echo "# host-side checks: $(vm_secs_since "$t_host") s"

# The VM.
root="$work/root"
vm_initramfs_base "$root"
vm_add_binary "$root" "$vgpu_info" /usr/bin/vgpu-info
vm_add_binary "$root" "$vgpu_run" /usr/bin/vgpu-run
for tool in jq setpriv; do
        path=$(command -v "$tool") || vm_die "$tool is missing (scripts/setup installs it)"
        vm_add_binary "$root" "$path" "/usr/bin/$tool"
done
addr=0000:00:04.0
cat >"$root/etc/vgpu-test.env" <<EOF
STUB_ADDR=$addr
EXPECT_VM_ID=3
EXPECT_POOL=A
EXPECT_PRIORITY=high
EOF
cp "$here/vgpu-stub-init.sh" "$root/init"
mkdir -p "$root/lib" && cp "$here/vm-tap.sh" "$root/lib/"
chmod 0755 "$root/init"
vm_pack "$root" "$work/initrd"

t_boot=$(date +%s.%N)
rc=0
vm_boot "$limit" "$work/console.log" \
        -machine q35 -cpu max -m 512M -smp 1 \
        -chardev "file,id=vgpu0,path=$work/announce" \
        -device vgpu-stub,addr=04.0,vm_id=3,pool_id=A,priority=high,chardev=vgpu0 \
        -kernel "$VM_KERNEL_DIR/vmlinuz" -initrd "$work/initrd" \
        -append "console=ttyS0 loglevel=4 panic=-1 rdinit=/init" || rc=$?
boot_s=$(vm_secs_since "$t_boot")

expect_line "QEMU announced 'vgpu-stub 1 vm_id=3 pool_id=A priority=high' on the VM's chardev" "$work/announce" \
        "vgpu-stub 1 vm_id=3 pool_id=A priority=high"

# The VM's results follow the host's in one TAP stream.
report=$(vm_tap_report "$work/console.log" "$rc" "$limit") || failed=$((failed + 1))
while IFS= read -r line; do
        case $line in
        "ok "*) n=$((n + 1)); echo "ok $n ${line#ok * }" ;;
        "not ok "*) n=$((n + 1)); echo "not ok $n ${line#not ok * }" ;;
        "1.."*) ;;
        *) echo "$line" ;;
        esac
done <<<"$report"
echo "1..$n"
echo "# QEMU $VM_QEMU_BUILT; VM boot to power-off ${boot_s} s; whole test $(vm_secs_since "$t_start") s"
[ "$failed" -eq 0 ]
