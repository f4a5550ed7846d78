#!/usr/bin/env bash
# Checks record-iommu-tree.sh on this machine (with sh, and with busybox sh where there is one) and the
# recorded trees in test/data/iommu/: what is recorded, in which format, and that nothing private is.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
rec="$here/record-iommu-tree.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-record.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

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
check() {
        local name=$1 out
        shift
        if out=$("$@" 2>&1); then
                ok "$name"
        else
                not_ok "$name"
                printf '%s\n' "command: $*" "$out" | sed 's/^/# /'
        fi
}

# links_resolve DIR: every symbolic link in DIR points at something inside the tree.
links_resolve() {
        local l bad=0
        while IFS= read -r -d '' l; do
                if [ ! -e "$l" ]; then
                        echo "dangling: ${l#"$1"/} -> $(readlink "$l")"
                        bad=1
                fi
        done < <(find "$1" -type l -print0)
        return "$bad"
}

# kmsg_format FILE: every line is a /dev/kmsg record ("pri,seq,usec,flags;text") or a continuation
# (" KEY=value").
kmsg_format() {
        [ -s "$1" ] || return 0
        ! grep -Evn '^([0-9]+,[0-9]+,[0-9]+,[^;]*;| )' "$1" | head -n 5 | grep .
}

no_mac() {
        ! grep -rEIl '([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}' "$1" --exclude=config
}

shells=(sh)
if command -v busybox >/dev/null 2>&1; then
        shells+=("busybox sh")
fi
export VGPU_RECORD_MARKER=never-recorded-3f7a9c
for shell in "${shells[@]}"; do
        out="$tmp/${shell// /-}"
        # shellcheck disable=SC2086
        check "$shell: the recorder runs" $shell "$rec" "$out"
        check "$shell: proc/cmdline and proc/cpuinfo" test -s "$out/proc/cmdline" -a -s "$out/proc/cpuinfo"
        check "$shell: sysfs files keep their real length (vendor is 7 bytes, not 4096)" sh -c \
                "for f in '$out'/sys/devices/pci*/*/vendor; do [ \$(wc -c <\"\$f\") -eq 7 ] || exit 1; done"
        check "$shell: sys/bus/pci/devices/* are links with the kernel's own targets" sh -c "
                for l in /sys/bus/pci/devices/*; do
                        [ \"\$(readlink '$out'\$l)\" = \"\$(readlink \$l)\" ] || { echo \$l; exit 1; }
                done"
        check "$shell: every link resolves inside the tree" links_resolve "$out"
        if [ -r /dev/kmsg ]; then
                check "$shell: dev/kmsg is in /dev/kmsg's format" kmsg_format "$out/dev/kmsg"
        fi
        check "$shell: the environment is not recorded" sh -c "! grep -rIl '$VGPU_RECORD_MARKER' '$out'"
        check "$shell: no MAC address is recorded" no_mac "$out"
        check "$shell: nothing from /proc/<pid>" sh -c "! ls '$out/proc' | grep -q '^[0-9]'"
done
check "-t FILE.tar writes the same tree as a tar" sh -c "
        sh '$rec' -t '$tmp/t.tar' && tar -tf '$tmp/t.tar' | grep -q '^./proc/cmdline\$'"
check "an existing non-empty directory is refused" sh -c "! sh '$rec' '$tmp/sh' 2>/dev/null"

# The checked-in trees.
for t in "$top"/test/data/iommu/*/; do
        t=${t%/}
        name=${t##*/}
        check "$name: RECORDED, proc/cmdline, proc/cpuinfo, dev/kmsg" \
                test -s "$t/RECORDED" -a -s "$t/proc/cmdline" -a -s "$t/proc/cpuinfo" -a -s "$t/dev/kmsg"
        check "$name: every link resolves inside the tree" links_resolve "$t"
        check "$name: dev/kmsg is in /dev/kmsg's format" kmsg_format "$t/dev/kmsg"
        check "$name: no MAC address" no_mac "$t"
done
check "the checked-in trees stay small (< 2 MB of content)" sh -c \
        "[ \$(find '$top/test/data/iommu' -type f -exec cat {} + | wc -c) -lt 2000000 ]"

echo "1..$n"
[ "$failed" -eq 0 ]
