/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-load: a guest workload for demonstrations and measurements. It connects to its VM's channel with
 * libvgpu, keeps two matrices on the device and runs the built-in gemm COUNT times, each launch followed
 * by a sync, and prints one JSON line: the VM, how many commands completed, their latency (launch to
 * completion, as the guest sees it) and the throughput. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vgpu.h"

static uint32_t arg_vm_id;
static unsigned arg_count = 100;
static unsigned arg_size = 64;

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

static int parse_argv(int argc, char *argv[])
{
        static const struct option options[] = {
                { "vm-id", required_argument, NULL, 'v' },
                { "count", required_argument, NULL, 'n' },
                { "size", required_argument, NULL, 's' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'v':
                        arg_vm_id = (uint32_t)strtoul(optarg, NULL, 10);
                        break;
                case 'n':
                        arg_count = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 's':
                        arg_size = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'h':
                        printf("Usage: vgpu-load [--vm-id N] [--count N] [--size M]\n"
                               "Runs the built-in gemm (M x M) COUNT times, each launch then sync, on VM N's\n"
                               "channel (default: $VGPU_VM_ID), and prints one JSON line of results.\n");
                        return 0;
                default:
                        return -EINVAL;
                }
        if (arg_count == 0 || arg_count > 1000000 || arg_size == 0 || arg_size > 4096) {
                fprintf(stderr, "vgpu-load: --count must be 1 to 1000000 and --size 1 to 4096\n");
                return -EINVAL;
        }
        return 1;
}

/* A, B and C on the device, A and B filled with a pattern. */
static int setup(VgpuClient *c, VgpuMemHandle mem[3], VgpuFunctionHandle *gemm)
{
        size_t n = (size_t)arg_size * arg_size, bytes = n * sizeof(float);
        VgpuModuleHandle module;
        float *host;
        int r;

        host = malloc(bytes);
        if (!host)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                host[i] = (float)((i * 7919) % 17) / 17.0f - 0.5f;
        r = vgpu_module_builtin(c, &module);
        if (r >= 0)
                r = vgpu_get_function(c, module, "gemm", gemm);
        for (int k = 0; r >= 0 && k < 3; k++)
                r = vgpu_mem_alloc(c, bytes, &mem[k]);
        if (r >= 0)
                r = vgpu_memcpy_htod(c, mem[0], 0, host, bytes);
        if (r >= 0)
                r = vgpu_memcpy_htod(c, mem[1], 0, host, bytes);
        free(host);
        return r;
}

static int run(VgpuClient *c, uint64_t *latency, unsigned *done)
{
        VgpuMemHandle mem[3];
        VgpuFunctionHandle gemm;
        int r = setup(c, mem, &gemm);

        for (unsigned i = 0; r >= 0 && i < arg_count; i++) {
                const VgpuParam p[] = {
                        vgpu_param_buffer(mem[0], 0), vgpu_param_buffer(mem[1], 0), vgpu_param_buffer(mem[2], 0),
                        vgpu_param_u32(arg_size),     vgpu_param_u32(arg_size),     vgpu_param_u32(arg_size),
                        vgpu_param_f32(1.0f),         vgpu_param_f32(0.0f),         vgpu_param_u32(0),
                        vgpu_param_u32(0),
                };
                uint64_t t0 = now_ns();

                r = vgpu_launch(c, gemm, VGPU_DIM3(1, 1, 1), VGPU_DIM3(1, 1, 1), 0, p, sizeof(p) / sizeof(p[0]));
                if (r >= 0)
                        r = vgpu_sync(c);
                if (r >= 0)
                        latency[(*done)++] = now_ns() - t0;
        }
        return r;
}

int main(int argc, char *argv[])
{
        VgpuConnectOptions opts = { 0 };
        VgpuClient *c = NULL;
        uint64_t *latency, t0, total_ns;
        unsigned done = 0;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        latency = calloc(arg_count, sizeof(*latency));
        if (!latency)
                return 1;
        opts.vm_id = arg_vm_id;
        r = vgpu_connect(&opts, &c);
        if (r < 0) {
                fprintf(stderr, "vgpu-load: cannot connect: %s\n", vgpu_last_error());
                return 1;
        }
        t0 = now_ns();
        r = run(c, latency, &done);
        total_ns = now_ns() - t0;
        if (r < 0)
                fprintf(stderr, "vgpu-load: VM %" PRIu32 ": stopped after %u commands: %s\n", arg_vm_id, done,
                        vgpu_strerror(r));
        qsort(latency, done, sizeof(*latency), cmp_u64);
        printf("{\"vm_id\":%" PRIu32 ",\"commands\":%u,\"failed\":%s,\"p50_us\":%.1f,\"p99_us\":%.1f,"
               "\"throughput_per_s\":%.1f}\n",
               arg_vm_id, done, r < 0 ? "true" : "false", done ? (double)latency[done / 2] / 1e3 : 0.0,
               done ? (double)latency[(size_t)((double)done * 0.99)] / 1e3 : 0.0,
               total_ns ? (double)done / ((double)total_ns / 1e9) : 0.0);
        vgpu_disconnect(c);
        free(latency);
        return r < 0 ? 1 : 0;
}
