#!/bin/sh
# record-iommu-tree.sh — records what vgpu-iommud reads about a host's IOMMU, GPUs and their binding, as
# a directory tree that `vgpu-iommud --root=DIR` can read back (and its unit tests do, from
# test/data/iommu/). Attach the tree (as a tar) to a bug report about IOMMU detection or binding.
#
#   record-iommu-tree.sh DIR            record into DIR (created; must be empty or absent)
#   record-iommu-tree.sh -t FILE.tar    record into a temporary directory and write FILE.tar ("-": stdout)
#
# POSIX sh; runs under busybox too. Run it as root on the host (dom0 on Xen) for a complete record:
# unprivileged users cannot read PCI config space past 64 bytes, nor /dev/kmsg on most hosts.
#
# What it records, below DIR (symbolic links stay links with their real relative targets):
#   proc/cmdline, proc/cpuinfo
#   sys/class/iommu/*                       links, and each IOMMU's directory (its attribute files and
#                                           attribute groups such as intel-iommu/{cap,ecap,version,...} or
#                                           amd-iommu/{cap,features}, and its devices/* links)
#   sys/kernel/iommu_groups/*/{type,reserved_regions,devices/*}
#   sys/bus/pci/devices/*                   links, and for each device its directory under sys/devices/
#                                           with vendor device class subsystem_vendor subsystem_device
#                                           revision config (the first 256 bytes) boot_vga driver_override
#                                           enable irq numa_node, and the links driver, iommu_group, iommu
#   sys/bus/pci/drivers/*                   each driver's device links and its module link; its control
#                                           files (bind unbind new_id remove_id uevent) as empty files
#   sys/bus/pci/drivers_probe               an empty file; drivers_autoprobe with its value
#   sys/module/M/{refcnt,parameters/*}      for the vfio, pciback and GPU driver modules that are loaded,
#                                           and for each module a PCI driver links to
#   sys/hypervisor/**, proc/xen/capabilities   on Xen
#   xen/{virt_caps,commandline,console}     on a Xen dom0 with `xl`: xl info's virt_caps and
#                                           xen_commandline values, and xl dmesg
#   dev/kmsg                                the kernel's log records as /dev/kmsg gives them
#                                           ("pri,seq,usec,flags;text" lines), read without blocking
#
# Nothing else: no environment, no process information, no network interfaces. MAC addresses in the
# logs are replaced by xx:xx:xx:xx:xx:xx, and the values of command-line parameters whose names contain
# pass, secret, token or key by "redacted".
set -eu

usage() {
        echo "usage: $0 DIR | $0 -t FILE.tar" >&2
        exit 2
}

tarfile=
case "${1:-}" in
-t)
        [ $# -eq 2 ] || usage
        tarfile=$2
        out=$(mktemp -d "${TMPDIR:-/tmp}/iommu-tree.XXXXXX")
        trap 'rm -rf "$out"' EXIT
        ;;
-h | --help | "") usage ;;
-*) usage ;;
*)
        [ $# -eq 1 ] || usage
        out=$1
        if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
                echo "$0: $out exists and is not empty" >&2
                exit 1
        fi
        mkdir -p "$out"
        ;;
esac

# scrub: removes MAC addresses and secret-looking parameter values from log and command-line text.
scrub() {
        sed -E -e 's/[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}/xx:xx:xx:xx:xx:xx/g' \
            -e 's/([A-Za-z0-9_.-]*([Pp][Aa][Ss][Ss]|[Ss][Ee][Cc][Rr][Ee][Tt]|[Tt][Oo][Kk][Ee][Nn]|[Kk][Ee][Yy])[A-Za-z0-9_.-]*=)[^ ]*/\1redacted/g'
}

# file SRC [FILTER]: copies the readable file /SRC to DIR/SRC with its real length (sysfs reports 4096);
# nothing is recorded when it cannot be read.
file() {
        [ -f "/$1" ] || return 0
        mkdir -p "$out/$(dirname "$1")"
        if cat "/$1" >"$out/$1.part" 2>/dev/null; then
                if [ "${2:-}" = scrub ]; then
                        scrub <"$out/$1.part" >"$out/$1"
                        rm -f "$out/$1.part"
                else
                        mv "$out/$1.part" "$out/$1"
                fi
        else
                rm -f "$out/$1.part"
        fi
}

# link SRC: recreates the symbolic link /SRC under DIR with the same target.
link() {
        [ -L "/$1" ] || return 0
        mkdir -p "$out/$(dirname "$1")"
        rm -f "$out/$1"
        ln -s "$(readlink "/$1")" "$out/$1"
}

# empty SRC: an empty regular file for a control file (bind, unbind, ...) that only takes writes.
empty() {
        [ -e "/$1" ] || return 0
        mkdir -p "$out/$(dirname "$1")"
        : >"$out/$1"
}

# real LINK: the path below / that the link /LINK resolves to, without the leading slash.
real() {
        r=$(readlink -f "/$1")
        echo "${r#/}"
}

# attrs DIR: the readable regular files directly in /DIR.
attrs() {
        for f in "/$1"/*; do
                [ -f "$f" ] && [ ! -L "$f" ] || continue
                file "${f#/}"
        done
}

file proc/cmdline scrub
file proc/cpuinfo

# IOMMUs. The directories are recorded even when empty (no IOMMU); git does not keep empty directories,
# so readers of a checked-in tree treat a missing one as empty.
[ ! -d /sys/class/iommu ] || mkdir -p "$out/sys/class/iommu"
[ ! -d /sys/kernel/iommu_groups ] || mkdir -p "$out/sys/kernel/iommu_groups"
for l in /sys/class/iommu/*; do
        [ -L "$l" ] || continue
        l=${l#/}
        link "$l"
        d=$(real "$l")
        mkdir -p "$out/$d"
        attrs "$d"
        for sub in "/$d"/*; do
                [ -d "$sub" ] && [ ! -L "$sub" ] || continue
                case ${sub##*/} in
                power | subsystem) continue ;;
                devices)
                        for dl in "$sub"/*; do
                                link "${dl#/}"
                        done
                        ;;
                *) attrs "${sub#/}" ;;
                esac
        done
done

# IOMMU groups.
for g in /sys/kernel/iommu_groups/*; do
        [ -d "$g" ] || continue
        g=${g#/}
        mkdir -p "$out/$g/devices"
        file "$g/type"
        file "$g/reserved_regions"
        for dl in "/$g"/devices/*; do
                link "${dl#/}"
        done
done

# PCI devices.
for l in /sys/bus/pci/devices/*; do
        [ -L "$l" ] || continue
        l=${l#/}
        link "$l"
        d=$(real "$l")
        mkdir -p "$out/$d"
        for a in vendor device class subsystem_vendor subsystem_device revision boot_vga driver_override \
                enable irq numa_node; do
                file "$d/$a"
        done
        if [ -r "/$d/config" ]; then
                dd if="/$d/config" of="$out/$d/config" bs=256 count=1 2>/dev/null || rm -f "$out/$d/config"
        fi
        for a in driver iommu_group iommu; do
                link "$d/$a"
        done
done

# PCI drivers.
mkdir -p "$out/sys/bus/pci/drivers"
for drv in /sys/bus/pci/drivers/*; do
        [ -d "$drv" ] || continue
        drv=${drv#/}
        mkdir -p "$out/$drv"
        for a in bind unbind new_id remove_id uevent; do
                empty "$drv/$a"
        done
        for dl in "/$drv"/*; do
                [ -L "$dl" ] || continue
                case ${dl##*/} in
                module)
                        link "${dl#/}"
                        mkdir -p "$out/$(real "${dl#/}")"
                        m=$(real "${dl#/}")
                        file "$m/refcnt"
                        [ ! -d "/$m/parameters" ] || attrs "$m/parameters"
                        ;;
                *:*:*.*) link "${dl#/}" ;;
                esac
        done
done
empty sys/bus/pci/drivers_probe
file sys/bus/pci/drivers_autoprobe

# Modules that decide or hold a binding.
for m in irqbypass vfio vfio_iommu_type1 vfio_virqfd vfio_pci_core vfio_pci iommufd xen_pciback pciback \
        nvidia nvidia_drm nvidia_modeset nvidia_uvm nvidia_vgpu_vfio nouveau; do
        [ -d "/sys/module/$m" ] || continue
        mkdir -p "$out/sys/module/$m"
        file "sys/module/$m/refcnt"
        if [ -d "/sys/module/$m/parameters" ]; then
                attrs "sys/module/$m/parameters"
        fi
done

# Xen.
if [ -d /sys/hypervisor ]; then
        find /sys/hypervisor -type f 2>/dev/null | while read -r f; do
                file "${f#/}"
        done
fi
file proc/xen/capabilities
if grep -q control_d /proc/xen/capabilities 2>/dev/null && command -v xl >/dev/null 2>&1; then
        mkdir -p "$out/xen"
        if info=$(xl info 2>/dev/null); then
                printf '%s\n' "$info" | sed -n 's/^virt_caps[[:space:]]*:[[:space:]]*//p' >"$out/xen/virt_caps"
                printf '%s\n' "$info" | sed -n 's/^xen_commandline[[:space:]]*:[[:space:]]*//p' | scrub \
                        >"$out/xen/commandline"
        fi
        xl dmesg 2>/dev/null | scrub >"$out/xen/console" || true
fi

# The kernel log, in /dev/kmsg's own format. GNU dd reads it without blocking; elsewhere (busybox) cat
# reads until the log is drained and blocks, and timeout ends it.
if [ -r /dev/kmsg ]; then
        mkdir -p "$out/dev"
        dd if=/dev/kmsg iflag=nonblock bs=65536 2>/dev/null >"$out/dev/kmsg.part" || true
        if [ ! -s "$out/dev/kmsg.part" ]; then
                timeout 1 cat /dev/kmsg >"$out/dev/kmsg.part" 2>/dev/null || true
        fi
        scrub <"$out/dev/kmsg.part" >"$out/dev/kmsg"
        rm -f "$out/dev/kmsg.part"
fi

if [ -n "$tarfile" ]; then
        if [ "$tarfile" = - ]; then
                tar -C "$out" -cf - .
        else
                tar -C "$out" -cf "$tarfile" .
        fi
fi
