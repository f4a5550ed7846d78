#!/usr/bin/env bash
# The step-5 demonstration, run inside vgpu-devstack by ./vgpu-demo: an administrator assigns VMs 1–7 to
# pool A and 8–20 to pool B with priorities, queries the state, changes it, and meets the refusals.
set -uo pipefail

bold=$'\e[1m' dim=$'\e[2m' off=$'\e[0m'
[ -t 1 ] || bold='' dim='' off=''

step() { printf '\n%s== %s ==%s\n' "$bold" "$*" "$off"; }
run() {
        printf '%s$ %s%s\n' "$dim" "$*" "$off"
        "$@"
        local rc=$?
        [ "$rc" -ne 0 ] && printf '%s(exit status %d)%s\n' "$dim" "$rc" "$off"
        return 0
}

step "A fresh configuration store: pools A and B, room for 16 VMs each"
run vgpu-admin list-pools

step "Register VMs 1–7 in pool A and 8–20 in pool B, with priorities"
priority_of() {
        case $1 in
        1 | 8 | 9 | 15) echo high ;;
        2 | 3 | 10 | 11 | 12 | 16 | 17) echo medium ;;
        *) echo low ;;
        esac
}
for id in $(seq 1 20); do
        pool=A
        [ "$id" -ge 8 ] && pool=B
        printf '%s$ vgpu-admin register-vm --vm-id=%s --pool=%s --priority=%s --name=inference-%s%s\n' "$dim" "$id" \
                "$pool" "$(priority_of "$id")" "$id" "$off"
        vgpu-admin register-vm --vm-id="$id" --pool="$pool" --priority="$(priority_of "$id")" \
                --name="inference-$id" >/dev/null || exit 1
done
run vgpu-admin list-pools

step "Which VMs are in pool A?"
run vgpu-admin list-vms --pool=A

step "Which VMs have high priority?"
run vgpu-admin list-vms --priority=high

step "Change priorities and move a VM; every change applies to the VM's next command"
run vgpu-admin set-priority --vm-id=3 --priority=high
run vgpu-admin set-priority --vm-id=9 --priority=low
run vgpu-admin set-pool --vm-id=7 --pool=B
run vgpu-admin show-vm --vm-id=7

step "Refusals: each is a clear message, a non-zero exit, and nothing changes"
run vgpu-admin create-pool --pool=C --capacity=2 --mode=shared --description="small test pool"
run vgpu-admin register-vm --vm-id=21 --pool=C --priority=high
run vgpu-admin register-vm --vm-id=22 --pool=C --priority=high
run vgpu-admin register-vm --vm-id=23 --pool=C --priority=high
run vgpu-admin register-vm --vm-id=5 --pool=A --priority=high
run vgpu-admin set-priority --vm-id=4 --priority=urgent
run vgpu-admin set-pool --vm-id=4 --pool=Z
run vgpu-admin show-vm --vm-id=99

step "IOMMU: this machine's verdict with the evidence for it, and its GPUs (vgpu-iommud reads this host)"
run vgpu-admin show-iommu-status --vm-id=1
run vgpu-admin list-gpus

step "The audit log: who changed what, from what, to what"
run vgpu-admin audit --after=20

step "Machine-readable output for automation (XAPI hooks, monitoring)"
run vgpu-admin --json list-pools
