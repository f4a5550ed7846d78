/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-gpu's native baseline, a module of its own (dlopen()ed) so that bench-gpu starts on machines with
 * no libcuda.so.1: the same work as through the executor, straight on the driver API in one process. */
#include <cuda.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "bench-gpu.h"

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((visibility("default"))) int bench_native_run(const char *ptx, BenchNativeResults *out);

/* Empty kernel: launch + cuCtxSynchronize, one at a time. Copies: pinned (cuMemAllocHost) memory, median
 * of several runs per size. */
int bench_native_run(const char *ptx, BenchNativeResults *out)
{
        CUdevice dev;
        CUcontext ctx;
        CUmodule mod;
        CUfunction empty;
        CUdeviceptr dptr;
        void *host;

        if (cuInit(0) || cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&ctx, dev) || cuCtxSetCurrent(ctx))
                return -1;
        if (cuModuleLoadData(&mod, ptx) || cuModuleGetFunction(&empty, mod, "empty"))
                return -2;
        for (int i = 0; i < BENCH_WARMUP; i++)
                if (cuLaunchKernel(empty, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL) || cuCtxSynchronize())
                        return -3;
        for (int i = 0; i < BENCH_LAUNCHES; i++) {
                uint64_t t0 = now_ns();

                (void)cuLaunchKernel(empty, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL);
                (void)cuCtxSynchronize();
                out->launch_ns[i] = now_ns() - t0;
        }
        if (cuMemAllocHost(&host, BENCH_COPY_MAX) || cuMemAlloc(&dptr, BENCH_COPY_MAX))
                return -4;
        memset(host, 1, BENCH_COPY_MAX);
        for (int s = 0; s < BENCH_COPY_SIZES; s++) {
                uint64_t n = bench_copy_size(s);

                for (int r = 0; r < bench_copy_repeats(s); r++) {
                        uint64_t t0 = now_ns();

                        (void)cuMemcpyHtoD(dptr, host, n);
                        out->h2d_ns[s][r] = now_ns() - t0;
                        t0 = now_ns();
                        (void)cuMemcpyDtoH(host, dptr, n);
                        out->d2h_ns[s][r] = now_ns() - t0;
                }
        }
        (void)cuMemFree(dptr);
        (void)cuMemFreeHost(host);
        (void)cuModuleUnload(mod);
        (void)cuDevicePrimaryCtxRelease(dev);
        return 0;
}
