/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Benchmark of the whole command path (guest → ingestd → the pool's scheduler → the VM's executor → back),
 * through libvgpu, on a running stack (bench-path.sh starts one): the round trip of an empty command
 * (SYNC), and commands per second when launches are batched (queued, one notification per batch, one
 * SYNC at the end). Prints one line per measurement. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vgpu.h"

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return x < y ? -1 : x > y;
}

static int round_trips(VgpuClient *c, unsigned n)
{
        uint64_t *ns = calloc(n, sizeof(*ns));
        int r = 0;

        if (!ns)
                return -ENOMEM;
        for (unsigned i = 0; i < 200 && r >= 0; i++) /* warm-up */
                r = vgpu_sync(c);
        for (unsigned i = 0; i < n && r >= 0; i++) {
                uint64_t t0 = now_ns();
                r = vgpu_sync(c);
                ns[i] = now_ns() - t0;
        }
        if (r >= 0) {
                qsort(ns, n, sizeof(*ns), cmp_u64);
                printf("empty command (SYNC) round trip: %u commands  p50 %.2f us  p99 %.2f us\n", n,
                       (double)ns[n / 2] / 1e3, (double)ns[(size_t)((double)n * 0.99)] / 1e3);
        }
        free(ns);
        return r;
}

/* Batches of `batch` relu launches on 16 floats (the smallest real command), one SYNC per batch. */
static int batched(VgpuClient *c, unsigned total, unsigned batch)
{
        VgpuModuleHandle module;
        VgpuFunctionHandle relu;
        VgpuMemHandle x;
        uint64_t t0;
        unsigned done = 0;
        int r;

        r = vgpu_module_builtin(c, &module);
        if (r >= 0)
                r = vgpu_get_function(c, module, "relu", &relu);
        if (r >= 0)
                r = vgpu_mem_alloc(c, 16 * sizeof(float), &x);
        if (r >= 0)
                r = vgpu_memset(c, x, 0, 0, 4, 16 * sizeof(float));
        t0 = now_ns();
        while (r >= 0 && done < total) {
                const VgpuParam p[] = { vgpu_param_buffer(x, 0), vgpu_param_buffer(x, 0), vgpu_param_u32(16) };

                for (unsigned i = 0; i < batch && r >= 0; i++, done++)
                        r = vgpu_launch(c, relu, VGPU_DIM3(1, 1, 1), VGPU_DIM3(1, 1, 1), 0, p, 3);
                if (r >= 0)
                        r = vgpu_sync(c);
        }
        if (r >= 0)
                printf("batched launches (%u per batch): %u commands in %.3f s = %.0f commands/s\n", batch, done,
                       (double)(now_ns() - t0) / 1e9, (double)done / ((double)(now_ns() - t0) / 1e9));
        return r;
}

int main(int argc, char *argv[])
{
        VgpuConnectOptions opts = { .vm_id = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1 };
        VgpuClient *c = NULL;
        int r;

        r = vgpu_connect(&opts, &c);
        if (r < 0) {
                fprintf(stderr, "bench-path: cannot connect: %s\n", vgpu_last_error());
                return 1;
        }
        r = round_trips(c, 5000);
        if (r >= 0)
                r = batched(c, 100000, 1);
        if (r >= 0)
                r = batched(c, 200000, 128);
        if (r < 0)
                fprintf(stderr, "bench-path: %s\n", vgpu_last_error());
        vgpu_disconnect(c);
        return r < 0 ? 1 : 0;
}
