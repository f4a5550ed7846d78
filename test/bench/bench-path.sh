#!/usr/bin/env bash
# The command path under load, on a fresh vgpu-devstack: the bare four-process floor (bench-hops) and the
# real path's empty-command round trip and batched throughput (bench-path), in the same run; then 64 VMs
# (32 per pool) each running vgpu-load at once, every one of which must be served.
#   bench-path.sh [VMS]    (default 64)
# With BENCH_CPUS=LIST (a taskset CPU list, e.g. 1-4), the floor and the whole stack with its guests run
# on those CPUs only, so that both are measured on the same cores with nothing else scheduled there.
set -euo pipefail
: "${VGPU_BUILD_DIR:?VGPU_BUILD_DIR must name the build directory}"
vms=${1:-64}
dir=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-bench.XXXXXX")
chmod 0755 "$dir"
trap 'rm -rf "$dir"' EXIT

pin=()
if [ -n "${BENCH_CPUS:-}" ]; then
        pin=(taskset -c "$BENCH_CPUS")
        echo "== everything below runs on CPUs $BENCH_CPUS"
fi

echo "== the floor: six hand-offs between four processes, no logic (bench-hops)"
"${pin[@]}" "$VGPU_BUILD_DIR/test/bench/bench-hops" | grep "round trip"

# vgpu-iommud has no part in the command path: it is left out.
PATH="$VGPU_BUILD_DIR:$PATH" "${pin[@]}" "$VGPU_BUILD_DIR/vgpu-devstack" --quiet --state-dir "$dir/stack" \
        --without=vgpu-iommud -- bash -c '
        set -euo pipefail
        vms=$1
        half=$(((vms + 1) / 2))
        vgpu-admin configure-pool --pool=A --capacity="$half" >/dev/null
        vgpu-admin configure-pool --pool=B --capacity="$half" >/dev/null
        vgpu-admin register-vm --vm-id=1 --pool=A --priority=high >/dev/null
        sleep 0.2
        echo "== the real path: guest → ingestd → schedd@A → executor → back (bench-path, VM 1)"
        "$2/test/bench/bench-path" 1
        vgpu-admin unregister-vm --vm-id=1 >/dev/null
        echo "== $vms VMs at once ($half per pool), each 200 gemm 32x32 launches with a sync after each"
        for id in $(seq 1 "$vms"); do
                pool=A; [ "$id" -gt "$half" ] && pool=B
                prio=low; [ $((id % 3)) -eq 0 ] && prio=high; [ $((id % 3)) -eq 1 ] && prio=medium
                vgpu-admin register-vm --vm-id="$id" --pool="$pool" --priority="$prio" >/dev/null
        done
        sleep 0.5
        out=$(mktemp -d)
        start=$(date +%s%N)
        for id in $(seq 1 "$vms"); do vgpu-load --vm-id "$id" --count 200 --size 32 >"$out/$id.json" & done
        wait
        ms=$((($(date +%s%N) - start) / 1000000))
        served=$(cat "$out"/*.json | jq -s "[.[] | select(.commands == 200 and (.failed | not))] | length")
        echo "$served of $vms VMs completed all 200 commands in $ms ms"
        cat "$out"/*.json | jq -s -r "\"per-VM p50 latency: median \(map(.p50_us) | sort | .[length/2|floor]) us, worst p99 \(map(.p99_us) | max) us\""
        rm -rf "$out"
        [ "$served" -eq "$vms" ]
' _ "$vms" "$VGPU_BUILD_DIR"
