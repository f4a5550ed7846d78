#!/usr/bin/env bash
# A guest developer's own CUDA C kernels (examples/user-kernel) through the whole stack under vgpu-devstack:
# guest (libvgpu) → vgpu-ingestd → vgpu-schedd → vgpu-executor → GPU. TAP.
#   test-user-kernel.sh            on a GPU: in an isolated pool the PTX loads, saxpy and a 2-D kernel taking a
#                                  struct by value agree bit for bit with the host; in a shared pool the same
#                                  program is refused with the policy's reason in vgpu_last_error(), and the
#                                  pool's vgpu.builtin still runs for it. Skipped (1..0 # SKIP) without the
#                                  CUDA plugin, the kernels' PTX or a GPU. With VGPU_TEST_MPS=1 (root,
#                                  nvidia-cuda-mps-control on PATH) the shared pool runs under an MPS daemon
#                                  the script starts, as vgpu-mps@.service would. With VGPU_TEST_GPU_BY=uuid,
#                                  pool A names its GPU by uuid (gpu:GPU-…) instead of PCI bus id.
#   test-user-kernel.sh --policy   anywhere, on the CPU backend: the shared pool's refusal reaches the guest's
#                                  vgpu_last_error() with the policy sentence; an isolated pool leaves the
#                                  module to the backend (whose own refusal the guest gets instead).
set -u
: "${VGPU_BUILD_DIR:?VGPU_BUILD_DIR must name the build directory}"
B=$VGPU_BUILD_DIR
mode=gpu
[ "${1:-}" = --policy ] && mode=policy
prog=$B/examples/user-kernel/vgpu-user-kernel
ptx=$B/examples/user-kernel/user-kernels.ptx
plugin=${VGPU_BACKEND_PATH:-$B/services/executor/backends/cuda/vgpu-backend-cuda.so}
policy="the pool is shared (MPS): one VM's faulting kernel would abort its neighbours' work, so only vgpu.builtin runs here; use an isolated pool for your own modules"

if [ -z "${VGPU_TEST_TMP:-}" ]; then
        if [ ! -x "$prog" ]; then
                echo "1..0 # SKIP vgpu-user-kernel is not built"
                exit 0
        fi
        if [ "$mode" = gpu ]; then
                if [ ! -f "$ptx" ] || [ ! -f "$plugin" ]; then
                        echo "1..0 # SKIP the CUDA plugin and the kernels' PTX are not built here (no nvcc/cuda.h)"
                        exit 0
                fi
                if ! command -v nvidia-smi >/dev/null 2>&1 ||
                   ! bus=$(nvidia-smi --query-gpu=pci.bus_id --format=csv,noheader 2>/dev/null | head -1) || [ -z "$bus" ]; then
                        echo "1..0 # SKIP no NVIDIA GPU or driver on this machine"
                        exit 0
                fi
                export VGPU_TEST_GPU_BUS=$bus VGPU_BACKEND_PATH=$plugin
        else
                export VGPU_BACKEND_PATH=/nonexistent/vgpu-backend-cuda.so # the CPU backend, plugin or not
        fi
fi

source "$(dirname "$0")/../integration/lib.sh"
# vgpu-iommud has no part in the command path (and needs libpci, which a GPU machine may lack).
devstack_reexec --without=vgpu-iommud -- "$@"

admin() { vgpu-admin "$@" >/dev/null; }
# vm ID POOL: registered, and its channel socket there.
vm() {
        expect_exit "register VM $1 in pool $2" 0 vgpu-admin register-vm --vm-id="$1" --pool="$2" --priority=high
        wait_for 10 test -S "$VGPU_RUNTIME_DIR/vm/$1.sock" || not_ok "VM $1's channel socket did not appear"
}
# pool_is POOL MODE [GPU]: the pool's scheduler has taken the configuration store's change.
pool_is() {
        local stats
        stats=$(vgpu-admin stats --pool="$1" 2>/dev/null) || return 1
        grep -q "Mode: $2\$" <<<"$stats" && { [ -z "${3:-}" ] || grep -q "GPU: $3\$" <<<"$stats"; }
}
executor_log() { cat "$VGPU_DEVSTACK_DIR"/log/*.log 2>/dev/null | grep "vm=$1 " || true; }

if [ "$mode" = policy ]; then
        # Any PTX will do: the CPU backend runs none, and a shared pool's executor never passes one on.
        ptx=$VGPU_TEST_TMP/guest.ptx
        { printf '.version 8.0\n.target sm_75\n.address_size 64\n'; for i in $(seq 1 40); do printf '// padding line %d: room for the reason\n' "$i"; done; } >"$ptx"
        expect_exit "pool B made shared" 0 vgpu-admin configure-pool --pool=B --mode=shared
        check "pool B's scheduler serves it shared" wait_for 10 pool_is B shared
        vm 1 A
        vm 2 B
        expect_exit "isolated pool A: the module reaches the backend, which refuses it itself" 1 "$prog" --vm-id 1 "$ptx"
        assert_contains "the guest's error names the CPU backend's reason" "the CPU backend cannot run PTX" "$LAST_ERR"
        expect_exit "shared pool B: the module is refused, the pool's vgpu.builtin still runs" 0 \
                "$prog" --vm-id 2 --expect-refusal "$ptx"
        assert_contains "vgpu_last_error() carries the policy sentence" "$policy" "$LAST_OUT"
        assert_contains "the status is NOT_SUPPORTED" "REFUSED status=not-supported" "$LAST_OUT"
        diag "$LAST_OUT"
        done_testing
fi

bus=$VGPU_TEST_GPU_BUS
pipe=$VGPU_RUNTIME_DIR/mps/$bus
mps=0
if [ "${VGPU_TEST_MPS:-0}" = 1 ] && command -v nvidia-cuda-mps-control >/dev/null 2>&1; then
        mkdir -p "$pipe" "$VGPU_TEST_TMP/mpslog"
        if CUDA_MPS_PIPE_DIRECTORY=$pipe CUDA_MPS_LOG_DIRECTORY=$VGPU_TEST_TMP/mpslog nvidia-cuda-mps-control -d; then
                mps=1
                trap 'echo quit | CUDA_MPS_PIPE_DIRECTORY=$pipe nvidia-cuda-mps-control >/dev/null 2>&1 || true' EXIT
                sleep 0.5
        fi
fi
diag "GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1), bus id $bus; MPS daemon: $([ $mps = 1 ] && echo started || echo none)"
gpu_a=$bus
if [ "${VGPU_TEST_GPU_BY:-bus}" = uuid ]; then
        gpu_a=$(nvidia-smi --query-gpu=uuid --format=csv,noheader | head -1)
        diag "pool A names its GPU by uuid: $gpu_a"
fi

expect_exit "pool A isolated on the GPU" 0 vgpu-admin configure-pool --pool=A --mode=isolated --gpu="gpu:$gpu_a"
expect_exit "pool B shared on the GPU" 0 vgpu-admin configure-pool --pool=B --mode=shared --gpu="gpu:$bus"
check "pool A's scheduler serves it isolated on the GPU" wait_for 10 pool_is A isolated "gpu:$gpu_a"
check "pool B's scheduler serves it shared on the GPU" wait_for 10 pool_is B shared "gpu:$bus"
vm 1 A
vm 2 B

expect_exit "isolated pool A: the guest's PTX loads and both kernels agree bit for bit with the host" 0 \
        "$prog" --vm-id 1 "$ptx"
diag "$LAST_OUT" "$LAST_ERR"
assert_contains "the result line says ok" "ok (bit for bit equal to the host)" "$LAST_OUT"
assert_contains "VM 1's executor ran on the CUDA backend" "backend cuda" "$(executor_log 1)"

expect_exit "shared pool B: the same program is refused, the pool's vgpu.builtin still runs" 0 \
        "$prog" --vm-id 2 --expect-refusal "$ptx"
diag "$LAST_OUT" "$LAST_ERR"
assert_contains "vgpu_last_error() carries the policy sentence" "$policy" "$LAST_OUT"
assert_contains "VM 2's executor ran on the CUDA backend" "backend cuda" "$(executor_log 2)"
if [ $mps = 1 ]; then
        assert_contains "pool B's executors are MPS clients" "Execution: mps" "$(vgpu-admin stats --pool=B 2>&1)"
fi
diag "$(vgpu-admin stats --pool=B 2>&1 | sed -n 1,6p)"
done_testing
