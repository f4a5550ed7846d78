#!/usr/bin/env bash
# Builds qemu-system-x86_64 with the vgpu-stub device from Debian's own QEMU source package and prints the
# binary's path. The binary has TCG and, when libxen-dev is installed, Xen support, so the same file serves
# as a plain QEMU and as the device model that Xen's toolstack runs for an HVM guest.
#
# What is added to QEMU's tree, and nothing else: hw/misc/vgpu-stub.{c,h} (qemu/hw/misc/ here), the lines
# of qemu/Kconfig.fragment appended to hw/misc/Kconfig and those of qemu/meson.fragment appended to
# hw/misc/meson.build.
#
# The result is cached outside the checkout, keyed by the device's files, the Debian version of the source,
# the configure options and the recipe version below; an unchanged key prints the cached binary at once
# (the three newest builds are kept):
#   ${VGPU_QEMU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vgpu-qemu}/
#     src-<debian version>/   the source package as apt-get source fetched it (.dsc, tarballs)
#     <key>/bin/qemu-system-x86_64, <key>/BUILD-INFO
#
# Usage: qemu/build-qemu.sh [--xen=auto|yes|no] [--cached-only] [--print-key] [-j N]
#   --xen=auto      Xen support when libxen-dev's pkg-config files are there (default)
#   --cached-only   print the cached binary's path, or exit 3 when it is not built yet
#   --print-key     print the cache key and exit
# Needs (scripts/setup installs them): a deb-src entry for Debian, dpkg-dev, meson, ninja-build,
# libglib2.0-dev, libpixman-1-dev, flex, bison, python3-venv (libxen-dev for Xen). Progress goes to
# stderr, the path alone to stdout. Exit status: 0 done, 1 failed, 2 usage, 3 not cached (--cached-only).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${VGPU_QEMU_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/vgpu-qemu}
# Debian's QEMU looks for firmware here (debian/rules): SeaBIOS, iPXE and the option ROMs come from
# Debian's packages, since the source package ships no firmware blobs.
firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu
device_files=(hw/misc/vgpu-stub.c hw/misc/vgpu-stub.h Kconfig.fragment meson.fragment)
# Part of the cache key: raise it whenever a change to this script changes what it builds (how the device
# is added, the environment of configure or of the build); the configure options are in the key anyway.
recipe=1

arg_xen=auto
arg_cached_only=
arg_print_key=
arg_jobs=$(nproc 2>/dev/null || echo 2)

log() {
        echo "build-qemu: $*" >&2
}

die() {
        echo "build-qemu: error: $*" >&2
        exit 1
}

usage() {
        sed -n '/^# Usage:/,/^# stderr/p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
}

while [ $# -gt 0 ]; do
        case $1 in
        --xen=auto | --xen=yes | --xen=no) arg_xen=${1#--xen=} ;;
        --cached-only) arg_cached_only=1 ;;
        --print-key) arg_print_key=1 ;;
        -j) [ $# -ge 2 ] || usage; arg_jobs=$2; shift ;;
        -j*) arg_jobs=${1#-j} ;;
        -h | --help) usage ;;
        *) echo "build-qemu: unknown argument '$1'" >&2; usage ;;
        esac
        shift
done

# debian_version: the version of Debian's qemu source package apt would fetch (the highest it knows), or
# else the newest one in the cache (offline).
debian_version() {
        local v best=
        while read -r v; do
                if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$best"; then
                        best=$v
                fi
        done < <(apt-cache showsrc --only-source qemu 2>/dev/null | sed -n 's/^Version: //p')
        if [ -z "$best" ]; then
                best=$(cd "$cache" 2>/dev/null && ls -d src-* 2>/dev/null | sed 's/^src-//' | sort -V | tail -n1 || true)
                best=${best/_/:}
        fi
        echo "$best"
}

# xen_wanted: yes or no, from --xen and whether the Xen development files are there.
xen_wanted() {
        local have=no
        if pkg-config --exists xencontrol xenstore xenforeignmemory xengnttab xenevtchn xendevicemodel \
                xentoolcore 2>/dev/null; then
                have=yes
        fi
        case $arg_xen in
        auto) echo "$have" ;;
        yes)
                [ "$have" = yes ] || die "--xen=yes, but the Xen libraries' pkg-config files are missing (libxen-dev)"
                echo yes
                ;;
        no) echo no ;;
        esac
}

ver=$(debian_version)
[ -n "$ver" ] || die "apt knows no source package 'qemu' and none is cached: add a deb-src entry (scripts/setup does) and run apt-get update"
xen=$(xen_wanted)
configure_args=(--target-list=x86_64-softmmu --without-default-features --disable-docs --disable-user
        --disable-install-blobs --with-git-submodules=ignore "--firmwarepath=$firmwarepath")
if [ "$xen" = yes ]; then
        configure_args+=(--enable-xen)
else
        configure_args+=(--disable-xen)
fi

key=$( {
        echo "debian qemu $ver"
        echo "recipe $recipe"
        echo "configure ${configure_args[*]}"
        (cd "$here" && sha256sum "${device_files[@]}")
} | sha256sum | cut -c1-16)
if [ -n "$arg_print_key" ]; then
        echo "$key"
        exit 0
fi
out="$cache/$key"
binary="$out/bin/qemu-system-x86_64"
if [ -x "$binary" ]; then
        echo "$binary"
        exit 0
fi
[ -z "$arg_cached_only" ] || exit 3

mkdir -p "$cache"
# One build at a time per cache; a second caller waits and then finds the result.
exec 9>"$cache/.lock"
if ! flock -n 9; then
        log "another build holds $cache/.lock: waiting"
        flock 9
fi
if [ -x "$binary" ]; then
        echo "$binary"
        exit 0
fi

for tool in dpkg-source meson ninja pkg-config flex bison; do
        command -v "$tool" >/dev/null || die "$tool is missing (scripts/setup installs QEMU's build packages)"
done
pkg-config --exists glib-2.0 pixman-1 || die "glib or pixman development files are missing (scripts/setup)"

t0=$(date +%s)
src="$cache/src-${ver//:/_}"
if ! ls "$src"/qemu_*.dsc >/dev/null 2>&1; then
        log "fetching Debian's qemu $ver source package into $src (first build; reused afterwards)"
        rm -rf "$src.tmp"
        mkdir -p "$src.tmp"
        (cd "$src.tmp" && apt-get source --download-only -qq "qemu=$ver" >"$src.tmp/apt.log" 2>&1) ||
                { cat "$src.tmp/apt.log" >&2; die "apt-get source --download-only qemu=$ver failed"; }
        rm -f "$src.tmp/apt.log"
        ls "$src.tmp"/qemu_*.dsc >/dev/null 2>&1 || die "apt-get source --download-only qemu=$ver fetched nothing"
        rm -rf "$src"
        mv "$src.tmp" "$src"
fi

work=$(mktemp -d "$cache/.build-$key.XXXXXX")
cleanup() {
        if [ -n "${VGPU_QEMU_KEEP_BUILD:-}" ]; then
                log "kept the build tree: $work"
        else
                rm -rf "$work"
        fi
}
trap cleanup EXIT

log "unpacking $(basename "$src"/qemu_*.dsc) with Debian's patches"
dpkg-source --no-check -x "$src"/qemu_*.dsc "$work/qemu" >/dev/null
tree="$work/qemu"
[ -f "$tree/hw/misc/Kconfig" ] && [ -f "$tree/hw/misc/meson.build" ] || die "unexpected source layout: no hw/misc"
[ ! -e "$tree/hw/misc/vgpu-stub.c" ] || die "QEMU's tree already has hw/misc/vgpu-stub.c"
cp "$here/hw/misc/vgpu-stub.c" "$here/hw/misc/vgpu-stub.h" "$tree/hw/misc/"
cat "$here/Kconfig.fragment" >>"$tree/hw/misc/Kconfig"
cat "$here/meson.fragment" >>"$tree/hw/misc/meson.build"

# QEMU's meson.build unpacks the EDK2 firmware when it finds bzip2, but Debian's source has no EDK2 blobs
# (Debian builds them from their own package). Configure therefore runs with a PATH that has every program
# but bzip2, so the unpacking is skipped without touching QEMU's files.
shadow="$work/path"
mkdir -p "$shadow"
IFS=: read -r -a path_dirs <<<"$PATH"
for d in "${path_dirs[@]}"; do
        [ -d "$d" ] || continue
        for f in "$d"/*; do
                name=${f##*/}
                [ "$name" != bzip2 ] && [ -x "$f" ] && [ ! -e "$shadow/$name" ] || continue
                ln -s "$f" "$shadow/$name"
        done
done

log "configuring (Xen: $xen): ${configure_args[*]}"
mkdir -p "$tree/build"
if ! (cd "$tree/build" && PATH="$shadow" ../configure --meson="$(command -v meson)" "${configure_args[@]}" \
        >"$work/configure.log" 2>&1); then
        tail -n 30 "$work/configure.log" >&2
        die "configure failed (the whole log: $work/configure.log with VGPU_QEMU_KEEP_BUILD=1)"
fi
grep -q '^#define CONFIG_VGPU_STUB 1' "$tree/build/x86_64-softmmu-config-devices.h" ||
        die "configure did not select CONFIG_VGPU_STUB (qemu/Kconfig.fragment)"

log "building qemu-system-x86_64 with $arg_jobs jobs"
if ! ninja -C "$tree/build" -j "$arg_jobs" qemu-system-x86_64 >"$work/build.log" 2>&1; then
        grep -E 'error|FAILED' "$work/build.log" | head -n 30 >&2 || true
        tail -n 20 "$work/build.log" >&2
        die "the build failed"
fi

rm -rf "$out.tmp"
mkdir -p "$out.tmp/bin"
cp "$tree/build/qemu-system-x86_64" "$out.tmp/bin/"
strip --strip-debug "$out.tmp/bin/qemu-system-x86_64" 2>/dev/null || true
{
        echo "debian-version: $ver"
        echo "xen: $xen"
        echo "configure: ${configure_args[*]}"
        echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(($(date +%s) - t0)) s"
} >"$out.tmp/BUILD-INFO"
rm -rf "$out"
mv "$out.tmp" "$out"
# Keep the three newest builds.
(cd "$cache" && ls -dt -- */BUILD-INFO 2>/dev/null | tail -n +4 | while read -r old; do
        rm -rf -- "${old%/BUILD-INFO}"
done)
log "built in $(($(date +%s) - t0)) s: $binary"
echo "$binary"
