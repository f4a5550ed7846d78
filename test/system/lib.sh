# shellcheck shell=bash disable=SC2034 # VM_* variables are set here for the scripts that source this file
# Shared helpers for vgpu's system tests and tree recordings: a Debian kernel, busybox and an initramfs for
# a QEMU VM under software emulation (no KVM needed).
#
# Inputs are kept in a cache directory outside the checkout, keyed by their versions, and reused while
# they have not changed:
#   $VGPU_SYSTEM_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/vgpu-system-test)/
#     kernel-<package>_<version>/{vmlinuz,modules/*.ko,VERSION}, and vmlinux, vmlinux.gz once unpacked
#     busybox-<version>/busybox
#     xen-<version>/{xen.elf,VERSION,root/} (the hypervisor and the dom0 tools, unpacked)
# Callers set `set -euo pipefail` and call vm_cleanup from their EXIT trap.

VM_CACHE=${VGPU_SYSTEM_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/vgpu-system-test}
# Modules a VM may load, as they are named in the kernel package.
VM_MODULES=(irqbypass vfio vfio_iommu_type1 vfio_virqfd vfio-pci-core vfio-pci watchdog i6300esb
        xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs xen-pciback)
_vm_pids=()
_vm_tmp=()

# vm_secs_since T0: seconds since T0 (a `date +%s.%N` value), one decimal.
vm_secs_since() {
        awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'
}

vm_log() {
        echo "# $*" >&2
}

vm_die() {
        echo "# error: $*" >&2
        exit 1
}

# vm_tmpdir VAR: a fresh temporary directory, removed by vm_cleanup.
vm_tmpdir() {
        local d
        d=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-vm.XXXXXX")
        _vm_tmp+=("$d")
        printf -v "$1" '%s' "$d"
}

# vm_cleanup: kills the QEMU processes started here and removes the temporary directories.
vm_cleanup() {
        local p d
        for p in "${_vm_pids[@]}"; do
                kill "$p" 2>/dev/null || true
        done
        for p in "${_vm_pids[@]}"; do
                wait "$p" 2>/dev/null || true
        done
        _vm_pids=()
        if [ -z "${VGPU_TEST_KEEP:-}" ]; then
                for d in "${_vm_tmp[@]}"; do
                        rm -rf "$d"
                done
        elif [ ${#_vm_tmp[@]} -gt 0 ]; then
                vm_log "kept: ${_vm_tmp[*]}"
        fi
        _vm_tmp=()
}

# _vm_download DIR PACKAGE...: apt-get download the packages into DIR.
_vm_download() {
        local dir=$1
        shift
        mkdir -p "$dir"
        (cd "$dir" && apt-get download -q "$@" 2>&1 | grep -Ev '^(W: Download is performed unsandboxed|Get:|Fetched)' >&2) ||
                true
        [ "$(find "$dir" -name '*.deb' | wc -l)" -eq $# ]
}

# vm_kernel: sets VM_KERNEL_DIR to the cached Debian 6.1 kernel (vmlinuz, modules/, VERSION), fetching
# the package that linux-image-amd64 depends on when it is not cached yet. Without a package index
# (offline), the newest cached kernel is used.
vm_kernel() {
        local pkg ver key dir tmp
        _vm_kernel_package() {
                apt-cache depends linux-image-amd64 2>/dev/null |
                        sed -n 's/^ *Depends: \(linux-image-6\.1\.0-[0-9]*-amd64\)$/\1/p' | head -n1 || true
        }
        pkg=$(_vm_kernel_package)
        if [ -z "$pkg" ] && [ "$(id -u)" -eq 0 ] && ! ls -d "$VM_CACHE"/kernel-linux-image-6.1.0-* >/dev/null 2>&1; then
                vm_log "apt knows no linux-image-amd64: apt-get update"
                apt-get update -qq >&2 || true
                pkg=$(_vm_kernel_package)
        fi
        if [ -n "$pkg" ]; then
                ver=$(apt-cache policy "$pkg" | sed -n 's/^ *Candidate: //p')
                key="kernel-${pkg}_${ver}"
        else
                key=$(cd "$VM_CACHE" 2>/dev/null && ls -d kernel-linux-image-6.1.0-* 2>/dev/null | sort -V | tail -n1 || true)
                [ -n "$key" ] || vm_die "no Debian kernel package known to apt (linux-image-amd64) and none cached in $VM_CACHE"
        fi
        dir="$VM_CACHE/$key"
        if [ ! -f "$dir/VERSION" ]; then
                vm_log "fetching $pkg $ver into $dir (first run; reused afterwards)"
                mkdir -p "$VM_CACHE"
                tmp=$(mktemp -d "$VM_CACHE/.fetch.XXXXXX")
                _vm_tmp+=("$tmp")
                _vm_download "$tmp/deb" "$pkg" || vm_die "apt-get download $pkg failed"
                dpkg -x "$tmp"/deb/*.deb "$tmp/x"
                mkdir -p "$tmp/k/modules"
                cp "$tmp"/x/boot/vmlinuz-* "$tmp/k/vmlinuz"
                local m f
                for m in "${VM_MODULES[@]}"; do
                        f=$(find "$tmp/x/lib/modules" -name "$m.ko" -print -quit)
                        [ -n "$f" ] || vm_die "module $m.ko not found in $pkg"
                        cp "$f" "$tmp/k/modules/"
                done
                basename "$tmp"/x/lib/modules/* >"$tmp/k/VERSION.tmp"
                echo "$pkg $ver" >>"$tmp/k/VERSION.tmp"
                mv "$tmp/k/VERSION.tmp" "$tmp/k/VERSION"
                rm -rf "$dir"
                mv "$tmp/k" "$dir"
                rm -rf "$tmp"
        fi
        VM_KERNEL_DIR=$dir
        VM_KERNEL_RELEASE=$(head -n1 "$dir/VERSION")
        VM_KERNEL_PACKAGE=$(sed -n 2p "$dir/VERSION")
}

# vm_kernel_unpacked: sets VM_VMLINUX (the kernel as a plain ELF, unpacked from vmlinuz's XZ payload) and
# VM_VMLINUX_GZ (that ELF, gzip-compressed), both kept next to the cached vmlinuz. Xen boots the plain ELF as
# dom0 without spending seconds on XZ; xl create unpacks a gzip guest kernel faster than an XZ one.
# Needs vm_kernel first.
vm_kernel_unpacked() {
        local d=$VM_KERNEL_DIR off tmp ok=
        VM_VMLINUX="$d/vmlinux"
        VM_VMLINUX_GZ="$d/vmlinux.gz"
        [ -f "$VM_VMLINUX" ] && [ -f "$VM_VMLINUX_GZ" ] && return 0
        vm_log "unpacking $d/vmlinuz into vmlinux and vmlinux.gz (first run; reused afterwards)"
        tmp=$(mktemp -d "$VM_CACHE/.unpack.XXXXXX")
        _vm_tmp+=("$tmp")
        # The XZ magic may occur more than once; the payload is the one that unpacks to an ELF. xz complains
        # about the bytes after the stream (exit 1) but has written the whole kernel by then.
        for off in $(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$d/vmlinuz" | cut -d: -f1); do
                tail -c +$((off + 1)) "$d/vmlinuz" | xz -dc >"$tmp/vmlinux" 2>/dev/null || true
                if [ "$(head -c 4 "$tmp/vmlinux" | od -An -c | tr -d ' ')" = '177ELF' ] &&
                        _vm_elf_complete "$tmp/vmlinux"; then
                        ok=1
                        break
                fi
        done
        [ -n "$ok" ] || vm_die "no XZ-compressed ELF kernel found in $d/vmlinuz"
        gzip -1 -c "$tmp/vmlinux" >"$tmp/vmlinux.gz"
        mv "$tmp/vmlinux.gz" "$VM_VMLINUX_GZ"
        mv "$tmp/vmlinux" "$VM_VMLINUX"
        rm -rf "$tmp"
}

# _vm_elf_complete FILE: every loadable segment of the ELF lies inside the file (it was not cut short).
_vm_elf_complete() {
        local size end=0 type off _va _pa filesz _rest
        size=$(stat -c %s "$1")
        while read -r type off _va _pa filesz _rest; do
                [ "$type" = LOAD ] || continue
                [ $((off + filesz)) -le "$end" ] || end=$((off + filesz))
        done < <(readelf -lW "$1" 2>/dev/null)
        [ "$end" -gt 0 ] && [ "$end" -le "$size" ]
}

# vm_busybox: sets VM_BUSYBOX to a statically linked busybox: the busybox-static package's, or one fetched
# into the cache.
vm_busybox() {
        if [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 &&
                [ "$(dpkg-query -W -f='${db:Status-Status}' busybox-static 2>/dev/null)" = installed ]; then
                VM_BUSYBOX=/bin/busybox
                return
        fi
        local ver dir tmp
        ver=$(apt-cache policy busybox-static | sed -n 's/^ *Candidate: //p')
        [ -n "$ver" ] || vm_die "busybox-static is neither installed nor known to apt (run scripts/setup)"
        dir="$VM_CACHE/busybox-${ver//:/_}"
        if [ ! -x "$dir/busybox" ]; then
                tmp=$(mktemp -d "$VM_CACHE/.fetch.XXXXXX")
                _vm_tmp+=("$tmp")
                _vm_download "$tmp/deb" busybox-static || vm_die "apt-get download busybox-static failed"
                dpkg -x "$tmp"/deb/*.deb "$tmp/x"
                mkdir -p "$dir"
                cp "$tmp/x/bin/busybox" "$dir/busybox"
        fi
        VM_BUSYBOX="$dir/busybox"
}

# vm_xen: sets VM_XEN_DIR to Debian's Xen 4.17 (the hypervisor as an ELF that QEMU's multiboot loader
# boots, and the dom0 tools with their libraries, unpacked below VM_XEN_DIR/root), fetched into the cache.
VM_XEN_PACKAGES=(xen-hypervisor-4.17-amd64 xen-utils-4.17 xenstore-utils libxenmisc4.17 libxenstore4
        libxengnttab1 libxenevtchn1 libxencall1 libxenforeignmemory1 libxendevicemodel1 libxentoolcore1
        libxentoollog1 libxenhypfs1 libyajl2)
vm_xen() {
        local ver dir tmp p
        ver=$(apt-cache policy xen-hypervisor-4.17-amd64 | sed -n 's/^ *Candidate: //p')
        [ -n "$ver" ] && [ "$ver" != "(none)" ] || vm_die "apt knows no xen-hypervisor-4.17-amd64"
        dir="$VM_CACHE/xen-${ver//:/_}"
        if [ ! -f "$dir/xen.elf" ]; then
                vm_log "fetching Xen $ver into $dir (first run; reused afterwards)"
                mkdir -p "$VM_CACHE"
                tmp=$(mktemp -d "$VM_CACHE/.fetch.XXXXXX")
                _vm_tmp+=("$tmp")
                _vm_download "$tmp/deb" "${VM_XEN_PACKAGES[@]}" ||
                        vm_die "apt-get download ${VM_XEN_PACKAGES[*]} failed"
                mkdir -p "$tmp/x/root"
                for p in "$tmp"/deb/*.deb; do
                        dpkg -x "$p" "$tmp/x/root"
                done
                gunzip -c "$tmp"/x/root/boot/xen-4.17-amd64.gz >"$tmp/x/xen.elf"
                echo "$ver" >"$tmp/x/VERSION"
                rm -rf "$dir"
                mv "$tmp/x" "$dir"
        fi
        VM_XEN_DIR=$dir
        VM_XEN_VERSION=$(cat "$dir/VERSION")
}

# vm_xen_dom0 DIR: the dom0 toolstack into the initramfs DIR (needs vm_xen): xl, xenstored, xenconsoled,
# xenconsole, xen-init-dom0, libxl-save-helper in /usr/sbin, xenstore and its xenstore-* names in /usr/bin,
# every Xen library with what they need, libgcc_s (pthread_cancel loads it at run time; without it xl
# aborts), an empty /etc/xen/xl.conf and the directories the tools write to.
vm_xen_dom0() {
        local d=$1 x="$VM_XEN_DIR/root" b l lib=/usr/lib/x86_64-linux-gnu
        local saved=${LD_LIBRARY_PATH-}
        export LD_LIBRARY_PATH="$x$lib:$x/lib/x86_64-linux-gnu"
        for b in xl xenstored xenconsoled xenconsole xen-init-dom0 libxl-save-helper; do
                vm_add_binary "$d" "$x/usr/lib/xen-4.17/bin/$b" "/usr/sbin/$b" "$lib"
        done
        vm_add_binary "$d" "$x/usr/bin/xenstore" /usr/bin/xenstore "$lib"
        for l in "$x$lib"/lib{xen,xl,yajl}*.so.*; do
                [ -e "$d$lib/$(basename "$l")" ] || vm_add_binary "$d" "$l" "$lib/$(basename "$l")" "$lib"
        done
        if [ -n "$saved" ]; then export LD_LIBRARY_PATH=$saved; else unset LD_LIBRARY_PATH; fi
        for b in read write ls list rm exists chmod watch; do
                ln -sf xenstore "$d/usr/bin/xenstore-$b"
        done
        l=$(gcc -print-file-name=libgcc_s.so.1 2>/dev/null || true)
        [ -f "$l" ] || l=/lib/x86_64-linux-gnu/libgcc_s.so.1
        [ -f "$l" ] || vm_die "libgcc_s.so.1 not found (xl needs it)"
        cp -L "$l" "$d$lib/"
        mkdir -p "$d/etc/xen" "$d/var/lib/xen" "$d/var/lib/xenstored" "$d/var/run/xen" "$d/var/run/xenstored" \
                "$d/var/log/xen/console"
        : >"$d/etc/xen/xl.conf"
}

# vm_tap_report CONSOLE_LOG QEMU_STATUS LIMIT: the VM's "VMTAP: ok - ..." / "VMTAP: not ok - ..." /
# "VMTAP: # ..." console lines as TAP, then one result for the VM itself (it printed VMTAP-END and QEMU
# exited with 0), the plan, and the console's last lines when the VM did not finish. Returns 0 when every
# check passed.
vm_tap_report() {
        local log=$1 rc=$2 limit=$3 n=0 failed=0 line
        while IFS= read -r line; do
                case $line in
                "VMTAP: ok - "*)
                        n=$((n + 1))
                        echo "ok $n - ${line#VMTAP: ok - }"
                        ;;
                "VMTAP: not ok - "*" # TODO "*)
                        # A known failure: shown, not counted (TAP's TODO directive).
                        n=$((n + 1))
                        echo "not ok $n - ${line#VMTAP: not ok - }"
                        ;;
                "VMTAP: not ok - "*)
                        n=$((n + 1))
                        failed=$((failed + 1))
                        echo "not ok $n - ${line#VMTAP: not ok - }"
                        ;;
                "VMTAP: #"*) echo "${line#VMTAP: }" ;;
                esac
        done < <(tr -d '\r' <"$log")
        n=$((n + 1))
        if [ "$rc" -eq 0 ] && tr -d '\r' <"$log" | grep -qx VMTAP-END; then
                echo "ok $n - the VM ran every check and powered off"
        else
                failed=$((failed + 1))
                if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
                        echo "not ok $n - the VM did not finish within ${limit} s: QEMU was killed (VGPU_SYSTEM_TIMEOUT)"
                else
                        echo "not ok $n - the VM did not finish its checks (QEMU status $rc)"
                fi
                echo "# last lines of the VM's console:"
                tr -d '\r' <"$log" | tail -n 40 | sed 's/^/#   /'
        fi
        echo "1..$n"
        [ "$failed" -eq 0 ]
}

# vm_qemu: sets VM_QEMU, or says why there is none and prints a TAP skip plan (1..0 # SKIP) and exits 0.
vm_qemu() {
        VM_QEMU=$(command -v qemu-system-x86_64 || true)
        if [ -z "$VM_QEMU" ]; then
                echo "1..0 # SKIP qemu-system-x86_64 is not installed (scripts/setup installs qemu-system-x86)"
                exit 0
        fi
        [ -f /usr/share/seabios/bios-256k.bin ] || [ -f /usr/share/qemu/bios-256k.bin ] ||
                vm_die "QEMU's firmware (bios-256k.bin) is missing: install the seabios package (scripts/setup)"
}

# vm_initramfs_base DIR: the skeleton of an initramfs: busybox with its applets, the kernel's modules in
# /lib/modules, mount points.
vm_initramfs_base() {
        local d=$1 a
        mkdir -p "$d"/{bin,sbin,usr/bin,usr/sbin,lib/modules,proc,sys,dev,tmp,run,etc,root,var}
        cp "$VM_BUSYBOX" "$d/bin/busybox"
        for a in $("$VM_BUSYBOX" --list); do
                [ -e "$d/bin/$a" ] || ln -s busybox "$d/bin/$a"
        done
        cp "$VM_KERNEL_DIR"/modules/*.ko "$d/lib/modules/"
        printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
                >"$d/etc/passwd"
        printf 'root:x:0:\nvgpu-admin:x:990:\nnogroup:x:65534:\n' >"$d/etc/group"
}

# vm_add_binary DIR FILE [DEST [LIBDIR]]: FILE (an executable) into DIR at DEST (default: the same path)
# with the shared libraries it needs, as ldd resolves them here (honouring LD_LIBRARY_PATH), and the
# dynamic loader. Libraries go to the same paths, or all into LIBDIR when it is given.
vm_add_binary() {
        local d=$1 f=$2 dest=${3:-$2} libdir=${4:-} lib to
        mkdir -p "$d/$(dirname "$dest")"
        cp -L "$f" "$d/$dest"
        while read -r lib; do
                [ -n "$lib" ] || continue
                to=$lib
                case $lib in
                */ld-linux*) ;;
                *) [ -z "$libdir" ] || to="$libdir/$(basename "$lib")" ;;
                esac
                if [ ! -e "$d/$to" ]; then
                        mkdir -p "$d/$(dirname "$to")"
                        cp -L "$lib" "$d/$to"
                fi
        done < <(ldd "$f" 2>/dev/null | sed -n -e 's/.*=> \(\/[^ ]*\) .*/\1/p' -e 's/^[[:space:]]*\(\/[^ ]*\) (0x.*/\1/p')
        # The loader is named by its absolute path in every dynamic binary (/lib64/ld-linux-x86-64.so.2).
        if [ -e /lib64/ld-linux-x86-64.so.2 ] && [ ! -e "$d/lib64/ld-linux-x86-64.so.2" ]; then
                mkdir -p "$d/lib64"
                cp -L /lib64/ld-linux-x86-64.so.2 "$d/lib64/"
        fi
}

# vm_pack DIR FILE: DIR as an uncompressed newc cpio archive.
vm_pack() {
        (cd "$1" && find . -print | LC_ALL=C sort | cpio -o -H newc --quiet) >"$2"
}

# vm_boot TIMEOUT CONSOLE_LOG QEMU_ARGS...: runs QEMU (software emulation) until the VM powers off, at
# most TIMEOUT seconds; the console (ttyS0) goes to CONSOLE_LOG. Returns QEMU's status; 124 on timeout.
vm_boot() {
        local limit=$1 log=$2 rc=0 pid
        shift 2
        timeout --kill-after=5 "$limit" "$VM_QEMU" -accel tcg -nodefaults -display none -no-reboot \
                -serial "file:$log" "$@" </dev/null 2> >(grep -v "TCG doesn't support requested feature" >&2) &
        pid=$!
        _vm_pids+=("$pid")
        wait "$pid" || rc=$?
        local rest=() p
        for p in "${_vm_pids[@]}"; do
                [ "$p" = "$pid" ] || rest+=("$p")
        done
        _vm_pids=("${rest[@]}")
        return "$rc"
}

# vm_qemu_stub: sets VM_QEMU to a QEMU with the vgpu-stub device: $VGPU_QEMU when it names one, else the
# project's own (qemu/build-qemu.sh: built the first time, minutes; then taken from its cache outside the
# checkout at once). VM_QEMU_BUILT says which ("cached", "built in N s", "given"). Skips (a TAP 1..0 # SKIP plan, exit 0) when
# QEMU's firmware is missing, 1 when the build fails.
vm_qemu_stub() {
        local top t0 rc=0
        if [ -n "${VGPU_QEMU:-}" ]; then
                [ -x "$VGPU_QEMU" ] || vm_die "VGPU_QEMU=$VGPU_QEMU is not an executable"
                VM_QEMU=$VGPU_QEMU
                VM_QEMU_BUILT=given
        else
                top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
                t0=$(date +%s.%N)
                if VM_QEMU=$("$top/qemu/build-qemu.sh" --cached-only); then
                        VM_QEMU_BUILT=cached
                else
                        vm_log "building QEMU with vgpu-stub (qemu/build-qemu.sh; first run, minutes; cached afterwards)"
                        VM_QEMU=$("$top/qemu/build-qemu.sh") || rc=$?
                        [ "$rc" -eq 0 ] || vm_die "qemu/build-qemu.sh failed (status $rc)"
                        VM_QEMU_BUILT="built in $(vm_secs_since "$t0") s"
                fi
        fi
        if [ ! -f /usr/share/seabios/bios-256k.bin ] && [ ! -f /usr/share/qemu/bios-256k.bin ]; then
                echo "1..0 # SKIP QEMU's firmware (bios-256k.bin) is missing: install the seabios package (scripts/setup)"
                exit 0
        fi
}
