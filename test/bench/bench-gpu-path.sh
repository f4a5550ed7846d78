#!/usr/bin/env bash
# The whole path on a GPU (guest → vgpu-ingestd → vgpu-schedd → vgpu-executor → GPU → back) against the
# native driver API in the same run, on a fresh vgpu-devstack, in the pool modes docs/performance.md names:
#   1. empty kernel launch + sync: isolated (time-sliced) and shared (MPS), against native
#   2. priority under load (shared, MPS, whole GPU): a high VM's small kernel alone, with six low VMs
#      saturating the pool, and with the same six at high priority (priorities off)
#   3. pool isolation (two pools, each sm-share 50 of the GPU, shared): pool A alone, pool B saturated
#   4. twenty VMs across the two pools at once, with each executor's host and GPU memory
#   5. fault containment: a faulting kernel beside a busy VM, under MPS (shared) and time-sliced (isolated)
# Without a GPU or the CUDA plugin it says so and exits 77 (skipped). MPS: the script starts the MPS control
# daemon itself (root; nvidia-cuda-mps-control on PATH) where vgpu-mps@.service would run it on a host.
#   bench-gpu-path.sh [OUT_DIR]      (raw outputs are kept in OUT_DIR when given)
set -euo pipefail
: "${VGPU_BUILD_DIR:?VGPU_BUILD_DIR must name the build directory}"
B=$VGPU_BUILD_DIR
ptx=$B/test/gpu/test-kernels.ptx
native_so=$B/test/bench/bench-gpu-native.so
plugin=${VGPU_BACKEND_PATH:-$B/services/executor/backends/cuda/vgpu-backend-cuda.so}
if [ ! -f "$ptx" ] || [ ! -f "$native_so" ] || [ ! -f "$plugin" ]; then
        echo "bench-gpu-path: the CUDA plugin is not built here (no nvcc/cuda.h); skipped."
        exit 77
fi
if ! command -v nvidia-smi >/dev/null 2>&1 || ! bus=$(nvidia-smi --query-gpu=pci.bus_id --format=csv,noheader 2>/dev/null | head -1) || [ -z "$bus" ]; then
        echo "bench-gpu-path: no NVIDIA GPU or driver on this machine; skipped."
        exit 77
fi
export VGPU_BACKEND_PATH=$plugin
out=${1:-}
dir=$(mktemp -d "${TMPDIR:-/tmp}/vgb.XXXXXX")
chmod 0755 "$dir"
[ -n "$out" ] && mkdir -p "$out"
trap 'rm -rf "$dir"' EXIT

echo "GPU: $(nvidia-smi --query-gpu=name,driver_version,mig.mode.current --format=csv,noheader | head -1), bus id $bus"
echo "== native baseline (driver API, one process, no MPS)"
CUDA_MPS_PIPE_DIRECTORY=/nonexistent "$B/test/bench/bench-gpu-path" native "$native_so" "$ptx" | tee "$dir/native"

PATH="$B:$B/admin-cli:$B/examples:$PATH" "$B/vgpu-devstack" --quiet --state-dir "$dir/s" -- bash -c '
set -euo pipefail
B=$1; ptx=$2; bus=$3; dir=$4
g="$B/test/bench/bench-gpu-path"
pipe="$VGPU_RUNTIME_DIR/mps/$bus"
admin() { vgpu-admin "$@" >/dev/null; }
vm() { admin register-vm --vm-id="$1" --pool="$2" --priority="$3"; }
unvm() { for id in "$@"; do admin unregister-vm --vm-id="$id" || true; done; }
field() { sed -n "s/.*$2=\([^ ]*\).*/\1/p" "$dir/$1" | head -1; }
mps_start() {
        mkdir -p "$pipe" "$dir/mpslog"
        CUDA_MPS_PIPE_DIRECTORY=$pipe CUDA_MPS_LOG_DIRECTORY=$dir/mpslog nvidia-cuda-mps-control -d
        sleep 0.5
}
mps_stop() { echo quit | CUDA_MPS_PIPE_DIRECTORY=$pipe nvidia-cuda-mps-control || true; sleep 1; }
# small KEY VM while LOAD_VMS... run gemm for SECONDS: the small kernel runs after the load is up.
small_under() {
        local key=$1 id=$2 secs=$3; shift 3
        local pids=()
        for l in "$@"; do "$g" load "$l" "$secs" >"$dir/load-$key-$l" 2>&1 & pids+=($!); done
        [ $# -gt 0 ] && sleep 4
        "$g" small "$id" 2000 >"$dir/$key" 2>&1 || { cat "$dir/$key"; return 1; }
        [ $# -gt 0 ] && { vgpu-admin stats >"$dir/stats-$key" 2>&1 || true; }
        for p in "${pids[@]}"; do wait "$p" || true; done
        grep -h RESULT "$dir/$key"
}

echo "== 1. empty kernel launch + sync through the whole path"
admin configure-pool --pool=A --mode=isolated --gpu="gpu:$bus" --capacity=16
admin configure-pool --pool=B --mode=isolated --gpu="gpu:$bus" --capacity=16
vm 1 A high; sleep 0.3
"$g" empty 1 "$ptx" 5000 | tee "$dir/empty-isolated"
vgpu-admin stats --pool=A >"$dir/stats-isolated" 2>&1 || true; sed -n "1,8p" "$dir/stats-isolated"
unvm 1
mps_start
admin configure-pool --pool=A --mode=shared
vm 2 A high; sleep 0.3
"$g" empty 2 "$ptx" 5000 | tee "$dir/empty-shared"
vgpu-admin stats --pool=A >"$dir/stats-shared" 2>&1 || true; sed -n "1,8p" "$dir/stats-shared"
unvm 2

echo "== 2. priority under load (pool A shared, MPS, the whole GPU)"
vm 11 A high; for id in 21 22 23 24 25 26; do vm $id A low; done; for id in 31 32 33 34 35 36; do vm $id A high; done
sleep 0.3
for r in 1 2; do
        echo "-- round $r: alone, six low VMs saturating, the same six at high (priorities off)"
        small_under alone-$r 11 0
        small_under low-load-$r 11 9 21 22 23 24 25 26
        small_under prio-off-$r 11 9 31 32 33 34 35 36
done
cat "$dir/stats-low-load-1" || true
unvm 11 21 22 23 24 25 26 31 32 33 34 35 36

echo "== 3. pool isolation: A and B each sm-share:$bus:50, shared"
admin configure-pool --pool=A --mode=shared --gpu="sm-share:$bus:50"
admin configure-pool --pool=B --mode=shared --gpu="sm-share:$bus:50"
vm 41 A high; for id in 51 52 53 54 55 56; do vm $id B low; done; for id in 61 62 63 64 65 66; do vm $id B high; done
sleep 0.3
for r in 1 2; do
        echo "-- round $r: pool A alone, pool B saturated by six low VMs, by six high VMs"
        small_under iso-alone-$r 41 0
        small_under iso-b-low-$r 41 9 51 52 53 54 55 56
        small_under iso-b-high-$r 41 9 61 62 63 64 65 66
done
cat "$dir/stats-iso-b-low-1" || true
unvm 41 51 52 53 54 55 56 61 62 63 64 65 66

twenty() {
        local key=$1 base=$2
        for i in $(seq 0 19); do
                pool=A; [ $i -ge 10 ] && pool=B
                prio=low; [ $((i % 3)) -eq 0 ] && prio=high; [ $((i % 3)) -eq 1 ] && prio=medium
                vm $((base + i)) $pool $prio
        done
        sleep 0.3
        local pids=()
        start=$(date +%s%N)
        for i in $(seq 0 19); do vgpu-load --vm-id $((base + i)) --count 300 --size 512 >"$dir/$key-$i.json" 2>&1 & pids+=($!); done
        sleep 2.5
        { echo "executor pid, VmRSS (host), VmHWM:"; for p in $(pgrep -x vgpu-executor); do echo "$p $(grep -E "VmRSS|VmHWM" /proc/$p/status | tr -s " \t" " " | tr "\n" " ")"; done
          echo "nvidia-smi compute apps (pid, name, used GPU memory):"; nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv,noheader
          echo "nvidia-smi GPU memory used / total:"; nvidia-smi --query-gpu=memory.used,memory.total --format=csv,noheader; } >"$dir/$key-memory" 2>&1 || true
        for p in "${pids[@]}"; do wait "$p" || true; done
        ms=$((($(date +%s%N) - start) / 1000000))
        served=$(cat "$dir/$key"-*.json | jq -s "[.[] | select(.commands == 300 and (.failed | not))] | length" 2>/dev/null || echo 0)
        echo "RESULT what=$key served=$served of=20 ms=$ms"
        cat "$dir/$key-memory"
        cat "$dir/$key"-*.json | jq -s -r "\"per-VM p50: median \(map(.p50_us) | sort | .[length/2|floor]) us, worst p99 \(map(.p99_us) | max) us\"" 2>/dev/null || true
        vgpu-admin stats --pool=A >"$dir/stats-$key" 2>&1 || true; sed -n "1,8p" "$dir/stats-$key"
        unvm $(seq $base $((base + 19)))
}
echo "== 4. twenty VMs across two pools (A and B each sm-share 50), shared: MPS"
twenty twenty-shared 101
echo "== 4b. the same, both pools isolated: time-sliced"
admin configure-pool --pool=A --mode=isolated
admin configure-pool --pool=B --mode=isolated
twenty twenty-isolated 201

fault_case() {
        local key=$1 victim=$2 bad=$3
        vm $victim A low; vm $bad A "${4:-low}"; sleep 0.3
        "$g" victim $victim 8 >"$dir/$key-victim" 2>&1 &
        local p=$!
        sleep 4
        "$g" fault $bad "$ptx" | tee "$dir/$key-fault"
        wait $p || true
        grep -h RESULT "$dir/$key-victim"
        vgpu-admin --json list-vms >/dev/null || true
        unvm $victim $bad
}
echo "== 5. fault containment"
admin configure-pool --pool=A --mode=shared --gpu="gpu:$bus"
echo "-- shared (MPS):"
fault_case fault-shared 301 302
echo "-- shared (MPS), the faulting VM at high priority (its launches in the unlimited context):"
fault_case fault-shared-high 303 304 high
admin configure-pool --pool=A --mode=isolated
echo "-- isolated (time-sliced):"
fault_case fault-isolated 311 312
mps_stop
' _ "$B" "$ptx" "$bus" "$dir" 2>&1 | tee "$dir/run"

[ -n "$out" ] && tar -C "$dir" --exclude="*.sock" -czf "$out/raw.tgz" . 2>/dev/null || true
echo "== summary (p50 / p99 us)"
grep -h "RESULT" "$dir/run" || true
