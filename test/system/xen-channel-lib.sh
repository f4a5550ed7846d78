# shellcheck shell=sh
# Helpers shared by the two /init scripts of the Xen channel test (busybox sh): xen-channel-dom0-init.sh
# and xen-channel-guest-init.sh source this as /lib/xen-channel-lib.sh, after setting TAP_PREFIX and
# PHASE_LABEL for /lib/vm-tap.sh (the TAP lines; dom0 relays the guest's).

# shellcheck source=vm-tap.sh
. /lib/vm-tap.sh

# step NAME COMMAND...: one check of a command that connects over Xen; 0 when it succeeded. Its output,
# in $out, becomes diagnostics. A refusal for want of grants right after another channel of this domain
# closed is a failure: the frontend waits for the backend to unmap before it takes its pages back.
step() {
        name=$1
        shift
        t0=$(now)
        if out=$("$@" 2>&1); then
                ok "$name ($(since "$t0") s)"
                diag "$out"
                return 0
        fi
        not_ok "$name"
        diag "$out"
        return 1
}

# gntalloc_limit ARGS...: with xen_gntalloc's limit as the kernel set it, vgpu-run ARGS --info either
# connects, or is refused as docs/xen.md says (ENOSPC, naming the limit to raise); then the limit is raised
# to GNTALLOC_LIMIT pages, as docs/guest.md tells a guest to do for the default 64 MiB data area.
GNTALLOC_LIMIT=20000
gntalloc_limit() {
        limit=$(cat /sys/module/xen_gntalloc/parameters/limit)
        if out=$(vgpu-run "$@" --json --info 2>&1); then
                ok "with xen_gntalloc's limit at $limit pages, vgpu-run --info connects"
        elif echo "$out" | grep -q 'No space left on device' && echo "$out" | grep -q 'xen_gntalloc limit'; then
                ok "with xen_gntalloc's limit at $limit pages, vgpu-run --info is refused: ENOSPC, naming the limit to raise"
        else
                not_ok "with xen_gntalloc's limit at $limit pages, vgpu-run --info connects or is refused with ENOSPC naming the limit"
        fi
        diag "$out"
        check "raise xen_gntalloc's limit to $GNTALLOC_LIMIT pages (docs/guest.md)" \
                sh -c "echo $GNTALLOC_LIMIT >/sys/module/xen_gntalloc/parameters/limit"
}

# info_xen ARGS...: vgpu-run ARGS --json --info connects, over Xen; prints what it said.
info_xen() {
        o=$(vgpu-run "$@" --json --info 2>&1)
        r=$?
        echo "$o"
        [ "$r" = 0 ] && echo "$o" | grep -q '"transport":"xen"'
}

# gemm_checks WHAT ARGS...: vgpu-run ARGS gemm on /data/{a,b}.npy into /tmp/c.npy, and the result against
# the one the harness computed outside the VM.
gemm_checks() {
        what=$1
        shift
        rm -f /tmp/c.npy
        step "$what: vgpu-run gemm exits 0" vgpu-run "$@" gemm --a /data/a.npy --b /data/b.npy --out /tmp/c.npy
        if cmp -s /tmp/c.npy /data/c-expected.npy; then
                ok "$what: the gemm result equals the one computed outside the VM (16x12 by 12x8, exact)"
        else
                not_ok "$what: the gemm result equals the one computed outside the VM"
                [ ! -f /tmp/c.npy ] || diag "got:" "$(od -An -tf4 /tmp/c.npy | head -n 6)" \
                        "expected:" "$(od -An -tf4 /data/c-expected.npy | head -n 6)"
        fi
}

# load_started ARGS...: vgpu-load ARGS connects and is still running 1 s later, its pid in /tmp/load.pid
# (step runs it in a subshell); else prints what it said.
load_started() {
        vgpu-load "$@" --count 1000000 --size 16 >/tmp/load.out 2>&1 &
        echo $! >/tmp/load.pid
        sleep 1
        kill -0 "$(cat /tmp/load.pid)" 2>/dev/null && return 0
        echo "vgpu-load ended:"
        cat /tmp/load.out
        return 1
}
