/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The guest side of bench-gpu-path.sh: one VM's workload through the whole path (libvgpu → vgpu-ingestd →
 * the pool's vgpu-schedd → the VM's vgpu-executor → the GPU → back), plus the native baseline (the same
 * empty kernel on the driver API, through bench-gpu-native.so, dlopen()ed so that this program starts where
 * libcuda.so.1 is missing). One result line per run, "RESULT key=value ...", for the script to tabulate.
 *
 *   bench-gpu-path native NATIVE_SO PTX            empty kernel launch + sync, native
 *   bench-gpu-path empty VM PTX N                  the same through the whole path (guest PTX module)
 *   bench-gpu-path small VM N                      built-in relu on 1M floats, launch + sync, N times
 *   bench-gpu-path load VM SECONDS                 built-in gemm 2048 x 256 x 2048, launch + sync, in a loop
 *   bench-gpu-path fault VM PTX                    a kernel writing to an address it was never given
 *   bench-gpu-path victim VM SECONDS               gemm in a loop, counting failures (fault containment) */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench-gpu.h"
#include "vgpu.h"

#define WARMUP 200

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

static void print_latency(const char *what, uint64_t *ns, size_t n)
{
        qsort(ns, n, sizeof(*ns), cmp_u64);
        printf("RESULT what=%s n=%zu p50_us=%.2f p99_us=%.2f\n", what, n, (double)ns[n / 2] / 1e3,
               (double)ns[(size_t)((double)n * 0.99)] / 1e3);
}

static char *read_file(const char *path, size_t *ret_size)
{
        FILE *f = fopen(path, "rb");
        char *buf;
        long n;

        if (!f)
                return NULL;
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = n >= 0 ? calloc(1, (size_t)n + 1) : NULL;
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
        }
        fclose(f);
        *ret_size = (size_t)n + 1;
        return buf;
}

static int native(const char *module, const char *ptx_path)
{
        static BenchNativeResults res;
        BenchNativeRunFunc run;
        size_t size;
        char *ptx = read_file(ptx_path, &size);
        void *h = dlopen(module, RTLD_NOW | RTLD_LOCAL);

        if (!ptx || !h || !(run = (BenchNativeRunFunc)(uintptr_t)dlsym(h, "bench_native_run"))) {
                printf("SKIP native: %s\n", h ? "no PTX" : dlerror());
                return 77;
        }
        if (run(ptx, &res) != 0) {
                printf("SKIP native: no usable GPU\n");
                return 77;
        }
        print_latency("native-empty", res.launch_ns, BENCH_LAUNCHES);
        return 0;
}

static VgpuClient *connect_vm(uint32_t vm_id)
{
        VgpuConnectOptions o = {.vm_id = vm_id, .data_size = 32u << 20};
        VgpuClient *c = NULL;

        if (vgpu_connect(&o, &c) < 0) {
                fprintf(stderr, "bench-gpu-path: VM %u cannot connect: %s\n", vm_id, vgpu_last_error());
                return NULL;
        }
        return c;
}

static int fail(const char *what)
{
        fprintf(stderr, "bench-gpu-path: %s: %s\n", what, vgpu_last_error());
        printf("RESULT what=error step=%s\n", what);
        return 1;
}

static int empty(VgpuClient *c, const char *ptx_path, unsigned n)
{
        VgpuModuleHandle m;
        VgpuFunctionHandle f;
        uint64_t *ns = calloc(n, sizeof(*ns));
        size_t size;
        char *ptx = read_file(ptx_path, &size);

        if (!ptx || !ns)
                return fail("reading the PTX");
        if (vgpu_module_load(c, VGPU_IMAGE_PTX, ptx, size, &m) < 0 || vgpu_get_function(c, m, "empty", &f) < 0)
                return fail("loading the empty kernel");
        for (unsigned i = 0; i < WARMUP + n; i++) {
                uint64_t t0 = now_ns();

                if (vgpu_launch(c, f, VGPU_DIM3(1, 1, 1), VGPU_DIM3(1, 1, 1), 0, NULL, 0) < 0 || vgpu_sync(c) < 0)
                        return fail("launch + sync");
                if (i >= WARMUP)
                        ns[i - WARMUP] = now_ns() - t0;
        }
        print_latency("path-empty", ns, n);
        return 0;
}

typedef struct Builtin {
        VgpuFunctionHandle f;
        VgpuMemHandle mem[3];
        VgpuParam p[10];
        size_t n;
} Builtin;

/* relu over 1M floats: a small kernel (4 MiB in, 4 MiB out), like the 1M-element saxpy of the bare-program
 * measurements. */
static int small_setup(VgpuClient *c, Builtin *b)
{
        const uint32_t n = 1u << 20;
        VgpuModuleHandle m;

        if (vgpu_module_builtin(c, &m) < 0 || vgpu_get_function(c, m, "relu", &b->f) < 0 ||
            vgpu_mem_alloc(c, n * 4ull, &b->mem[0]) < 0 || vgpu_mem_alloc(c, n * 4ull, &b->mem[1]) < 0)
                return -1;
        b->p[0] = vgpu_param_buffer(b->mem[0], 0);
        b->p[1] = vgpu_param_buffer(b->mem[1], 0);
        b->p[2] = vgpu_param_u32(n);
        b->n = 3;
        return vgpu_memset(c, b->mem[0], 0, 0x3f800000u, 4, n * 4ull) < 0 ? -1 : 0;
}

/* gemm 2048 x 256 x 2048: 2^30 multiply-adds, 4 slices of 2^28 (about 0.1 ms each on the whole H100). */
static int load_setup(VgpuClient *c, Builtin *b)
{
        const uint32_t M = 2048, N = 2048, K = 256;
        VgpuModuleHandle m;

        if (vgpu_module_builtin(c, &m) < 0 || vgpu_get_function(c, m, "gemm", &b->f) < 0 ||
            vgpu_mem_alloc(c, (uint64_t)M * K * 4, &b->mem[0]) < 0 ||
            vgpu_mem_alloc(c, (uint64_t)K * N * 4, &b->mem[1]) < 0 ||
            vgpu_mem_alloc(c, (uint64_t)M * N * 4, &b->mem[2]) < 0)
                return -1;
        b->p[0] = vgpu_param_buffer(b->mem[0], 0);
        b->p[1] = vgpu_param_buffer(b->mem[1], 0);
        b->p[2] = vgpu_param_buffer(b->mem[2], 0);
        b->p[3] = vgpu_param_u32(M);
        b->p[4] = vgpu_param_u32(N);
        b->p[5] = vgpu_param_u32(K);
        b->p[6] = vgpu_param_f32(1.0f);
        b->p[7] = vgpu_param_f32(0.0f);
        b->p[8] = vgpu_param_u32(0);
        b->p[9] = vgpu_param_u32(0);
        b->n = 10;
        if (vgpu_memset(c, b->mem[0], 0, 0x3f800000u, 4, (uint64_t)M * K * 4) < 0 ||
            vgpu_memset(c, b->mem[1], 0, 0x3f800000u, 4, (uint64_t)K * N * 4) < 0)
                return -1;
        return vgpu_sync(c) < 0 ? -1 : 0;
}

static int builtin_run(VgpuClient *c, const Builtin *b)
{
        if (vgpu_launch(c, b->f, VGPU_DIM3(1, 1, 1), VGPU_DIM3(1, 1, 1), 0, b->p, b->n) < 0)
                return -1;
        return vgpu_sync(c);
}

static int small(VgpuClient *c, unsigned n)
{
        uint64_t *ns = calloc(n, sizeof(*ns));
        Builtin b = {};

        if (!ns || small_setup(c, &b) < 0)
                return fail("setting up relu");
        for (unsigned i = 0; i < WARMUP + n; i++) {
                uint64_t t0 = now_ns();

                if (builtin_run(c, &b) < 0)
                        return fail("relu launch + sync");
                if (i >= WARMUP)
                        ns[i - WARMUP] = now_ns() - t0;
        }
        print_latency("small", ns, n);
        return 0;
}

static int load(VgpuClient *c, double seconds)
{
        uint64_t end = now_ns() + (uint64_t)(seconds * 1e9), launches = 0, t0 = now_ns();
        Builtin b = {};

        if (load_setup(c, &b) < 0)
                return fail("setting up gemm");
        while (now_ns() < end) {
                if (builtin_run(c, &b) < 0)
                        return fail("gemm launch + sync");
                launches++;
        }
        printf("RESULT what=load launches=%" PRIu64 " per_s=%.1f\n", launches,
               (double)launches / ((double)(now_ns() - t0) / 1e9));
        return 0;
}

static int fault(VgpuClient *c, const char *ptx_path)
{
        VgpuParam p[2] = {{.kind = 1, .size = 8, .value = UINT64_C(0x8000000000001000)}, vgpu_param_f32(1.0f)};
        VgpuModuleHandle m;
        VgpuFunctionHandle f;
        size_t size;
        char *ptx = read_file(ptx_path, &size);
        int r;

        if (!ptx || vgpu_module_load(c, VGPU_IMAGE_PTX, ptx, size, &m) < 0 ||
            vgpu_get_function(c, m, "write_raw", &f) < 0)
                return fail("loading the faulting kernel");
        r = vgpu_launch(c, f, VGPU_DIM3(1, 1, 1), VGPU_DIM3(1, 1, 1), 0, p, 2);
        if (r >= 0)
                r = vgpu_sync(c);
        printf("RESULT what=fault status=%d error=\"%s\"\n", r, r < 0 ? vgpu_last_error() : "");
        return 0;
}

/* gemm in a loop; a failure is counted, the VM set up again (its executor is fresh, its handles gone), and
 * the loop goes on: how many of this VM's commands did another VM's fault cost it? */
static int victim(VgpuClient *c, double seconds)
{
        uint64_t end = now_ns() + (uint64_t)(seconds * 1e9), ok = 0, failed = 0, resets = 0;
        char first[256] = "";
        Builtin b = {};

        if (load_setup(c, &b) < 0)
                return fail("setting up gemm");
        while (now_ns() < end) {
                if (builtin_run(c, &b) == 0) {
                        ok++;
                        continue;
                }
                if (failed++ == 0)
                        snprintf(first, sizeof(first), "%s", vgpu_last_error());
                while (now_ns() < end && load_setup(c, &b) < 0)
                        ;
                resets++;
        }
        printf("RESULT what=victim ok=%" PRIu64 " failed=%" PRIu64 " resets=%" PRIu64 " first_error=\"%s\"\n", ok,
               failed, resets, first);
        return 0;
}

int main(int argc, char *argv[])
{
        VgpuClient *c;
        int r;

        if (argc >= 4 && !strcmp(argv[1], "native"))
                return native(argv[2], argv[3]);
        if (argc < 4) {
                fprintf(stderr, "usage: see the comment at the top of bench-gpu-path.c\n");
                return 2;
        }
        c = connect_vm((uint32_t)strtoul(argv[2], NULL, 10));
        if (!c)
                return 1;
        if (!strcmp(argv[1], "empty") && argc >= 5)
                r = empty(c, argv[3], (unsigned)strtoul(argv[4], NULL, 10));
        else if (!strcmp(argv[1], "small"))
                r = small(c, (unsigned)strtoul(argv[3], NULL, 10));
        else if (!strcmp(argv[1], "load"))
                r = load(c, strtod(argv[3], NULL));
        else if (!strcmp(argv[1], "fault"))
                r = fault(c, argv[3]);
        else if (!strcmp(argv[1], "victim"))
                r = victim(c, strtod(argv[3], NULL));
        else
                r = 2;
        vgpu_disconnect(c);
        return r;
}
