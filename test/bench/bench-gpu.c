/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-gpu: what the executor's CUDA path costs against the bare driver API, measured in one run on the
 * same GPU. An empty kernel's launch + synchronize (through the executor: a LAUNCH, which returns when the
 * kernel has finished, and LAUNCH + SYNC), and copies of 1 MiB … 1 GiB between the VM's data area and the
 * GPU on both copy paths (the registered data area, and staged), against pinned memory natively. The
 * scheduler's side is played by this program, spinning on the completion ring, so the figures are the
 * executor's own. Arguments: the plugin, the native module. Exits 77 where there is no GPU. */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-gpu.h"
#include "driver.h"
#include "gpu-pair.h"

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

static double percentile_us(uint64_t *v, size_t n, double p)
{
        qsort(v, n, sizeof(*v), cmp_u64);
        return v[(size_t)(p * (double)(n - 1))] / 1000.0;
}

static double gbps(uint64_t bytes, uint64_t *ns, int n)
{
        qsort(ns, (size_t)n, sizeof(*ns), cmp_u64);
        return (double)bytes / (double)ns[n / 2];
}

/* driver_call() without sleeping: the request goes in, then we spin on the completion ring. */
static VgpuStatus call_spin(Driver *d, const VgpuRequestDesc *req)
{
        VgpuHostRequest hr = {.req = *req, .vm_id = d->vm_id, .priority = 1, .tag = ++d->tag, .generation = 7};
        VgpuHostCompletion c;
        uint64_t one = 1;

        if (vgpu_host_request_push(&d->req, &hr) < 0)
                abort();
        if (vgpu_ring_producer_publish(&d->req.ring) > 0)
                (void)!write(d->kick, &one, sizeof(one));
        while (vgpu_host_completion_pop(&d->cpl, &c) == -EAGAIN)
                __builtin_ia32_pause();
        if (vgpu_ring_consumer_release(&d->cpl.ring) > 0)
                (void)!write(d->kick, &one, sizeof(one));
        return (VgpuStatus)c.cpl.status;
}

typedef struct Through {
        uint64_t launch_ns[BENCH_LAUNCHES], launch_sync_ns[BENCH_LAUNCHES];
        uint64_t gemm_ns[BENCH_REPEATS]; /* one built-in launch of four slices */
        uint64_t h2d_ns[2][BENCH_COPY_SIZES][BENCH_REPEATS], d2h_ns[2][BENCH_COPY_SIZES][BENCH_REPEATS];
} Through;

static void measure_launches(Driver *d, Through *t)
{
        VgpuStatus s;
        uint64_t module = driver_module_load(d, VGPU_MODULE_PTX, gpu_test_kernels_ptx, gpu_test_kernels_ptx_size + 1, &s);
        uint64_t f = driver_get_function(d, module, "empty", &s);
        VgpuRequestDesc launch = {.opcode = VGPU_OP_LAUNCH, .seq = 1,
                                  .u.launch = {.function = f, .grid = {1, 1, 1}, .block = {1, 1, 1}}};
        VgpuRequestDesc sync = {.opcode = VGPU_OP_SYNC, .seq = 2};

        if (s != VGPU_STATUS_OK) {
                fprintf(stderr, "bench-gpu: the empty kernel is not available (status %d)\n", s);
                exit(1);
        }
        for (int i = 0; i < BENCH_WARMUP; i++)
                if (call_spin(d, &launch) != VGPU_STATUS_OK)
                        exit(1);
        for (int i = 0; i < BENCH_LAUNCHES; i++) {
                uint64_t t0 = now_ns();

                (void)call_spin(d, &launch);
                t->launch_ns[i] = now_ns() - t0;
        }
        for (int i = 0; i < BENCH_LAUNCHES; i++) {
                uint64_t t0 = now_ns();

                (void)call_spin(d, &launch);
                (void)call_spin(d, &sync);
                t->launch_sync_ns[i] = now_ns() - t0;
        }
}

/* gemm 2048 × 256 × 2048: 2^30 multiply-adds, four slices of CUDA_SLICE_COST (2^28). */
static void measure_slices(Driver *d, Through *t)
{
        VgpuStatus s;
        uint64_t module = driver_module_load(d, VGPU_MODULE_PTX, "vgpu.builtin", 12, &s);
        uint64_t f = driver_get_function(d, module, "gemm", &s);
        uint64_t a = driver_alloc(d, 2048u * 2048 * 4, &s), b = driver_alloc(d, 2048u * 256 * 4, &s);
        uint64_t c = driver_alloc(d, 2048u * 256 * 4, &s);
        DriverParams p = {};

        driver_param_buffer(&p, a, 0), driver_param_buffer(&p, b, 0), driver_param_buffer(&p, c, 0);
        driver_param_u32(&p, 2048), driver_param_u32(&p, 256), driver_param_u32(&p, 2048);
        driver_param_f32(&p, 1.0f), driver_param_f32(&p, 0.0f), driver_param_u32(&p, 0), driver_param_u32(&p, 0);
        memcpy(d->data, p.p, p.n * sizeof(VgpuLaunchParam));
        for (int i = -2; i < BENCH_REPEATS; i++) {
                VgpuRequestDesc q = {.opcode = VGPU_OP_LAUNCH, .seq = 4,
                                     .u.launch = {.function = f, .grid = {1, 1, 1}, .block = {1, 1, 1},
                                                  .param_count = p.n}};
                uint64_t t0 = now_ns();

                ck_assert_int_eq(call_spin(d, &q), VGPU_STATUS_OK);
                if (i >= 0)
                        t->gemm_ns[i] = now_ns() - t0;
        }
        (void)driver_free(d, a), (void)driver_free(d, b), (void)driver_free(d, c);
}

static void measure_copies(Driver *d, int path, Through *t)
{
        VgpuStatus s;
        uint64_t h = driver_alloc(d, BENCH_COPY_MAX, &s);

        if (s != VGPU_STATUS_OK) {
                fprintf(stderr, "bench-gpu: cannot allocate 1 GiB (status %d)\n", s);
                exit(1);
        }
        memset(d->data, 1, BENCH_COPY_MAX);
        for (int i = 0; i < BENCH_COPY_SIZES; i++)
                for (int r = 0; r < bench_copy_repeats(i); r++) {
                        VgpuRequestDesc q = {.opcode = VGPU_OP_COPY_H2D, .seq = 3,
                                             .u.copy_host = {.handle = h, .length = bench_copy_size(i)}};
                        uint64_t t0 = now_ns();

                        if (call_spin(d, &q) != VGPU_STATUS_OK)
                                exit(1);
                        t->h2d_ns[path][i][r] = now_ns() - t0;
                        q.opcode = VGPU_OP_COPY_D2H;
                        t0 = now_ns();
                        if (call_spin(d, &q) != VGPU_STATUS_OK)
                                exit(1);
                        t->d2h_ns[path][i][r] = now_ns() - t0;
                }
        (void)driver_free(d, h);
}

static void through_executor(Through *t)
{
        Driver d;

        for (int path = 0; path < 2; path++) {
                if (path == 1)
                        setenv("VGPU_CUDA_COPY", "staged", 1);
                if (driver_start(&d, 71, "0", "cuda") < 0 || strcmp(d.backend, "cuda") != 0) {
                        fprintf(stderr, "bench-gpu: the executor did not start with the CUDA backend\n");
                        exit(1);
                }
                if (path == 0) {
                        measure_launches(&d, t);
                        measure_slices(&d, t);
                }
                measure_copies(&d, path, t);
                (void)driver_stop(&d);
        }
        unsetenv("VGPU_CUDA_COPY");
}

/* The native baseline in a child of its own, so that its context is gone before the executor's runs. */
static BenchNativeResults *native(const char *module_path)
{
        BenchNativeResults *n = mmap(NULL, sizeof(*n), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        int status = 0;
        pid_t pid;

        if (n == MAP_FAILED)
                exit(1);
        pid = fork();
        if (pid == 0) {
                void *m = dlopen(module_path, RTLD_NOW | RTLD_LOCAL);
                BenchNativeRunFunc run = m ? (BenchNativeRunFunc)(uintptr_t)dlsym(m, "bench_native_run") : NULL;

                _exit(run && run((const char *)gpu_test_kernels_ptx, n) == 0 ? 0 : 1);
        }
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "bench-gpu: the native baseline failed (%s)\n", dlerror() ? dlerror() : "see above");
                exit(1);
        }
        return n;
}

static void report(BenchNativeResults *n, Through *t)
{
        printf("\nEmpty kernel, launch + synchronize, %d runs (µs)\n", BENCH_LAUNCHES);
        printf("%-44s %8s %8s\n", "", "p50", "p99");
        printf("%-44s %8.2f %8.2f\n", "native cuLaunchKernel + cuCtxSynchronize",
               percentile_us(n->launch_ns, BENCH_LAUNCHES, 0.5), percentile_us(n->launch_ns, BENCH_LAUNCHES, 0.99));
        printf("%-44s %8.2f %8.2f\n", "executor LAUNCH (returns when it finished)",
               percentile_us(t->launch_ns, BENCH_LAUNCHES, 0.5), percentile_us(t->launch_ns, BENCH_LAUNCHES, 0.99));
        printf("%-44s %8.2f %8.2f\n", "executor LAUNCH + SYNC", percentile_us(t->launch_sync_ns, BENCH_LAUNCHES, 0.5),
               percentile_us(t->launch_sync_ns, BENCH_LAUNCHES, 0.99));

        printf("\nBuilt-in gemm 2048 x 256 x 2048 (2^30 multiply-adds, 4 slices of 2^28): median %.3f ms a launch, "
               "%.3f ms a slice\n", percentile_us(t->gemm_ns, BENCH_REPEATS, 0.5) / 1000.0,
               percentile_us(t->gemm_ns, BENCH_REPEATS, 0.5) / 4000.0);

        printf("\nCopies, median GB/s (10^9 bytes/s)\n");
        printf("%-9s | %-8s %-8s %-8s | %-8s %-8s %-8s\n", "size", "H2D nat", "H2D reg", "H2D stg", "D2H nat",
               "D2H reg", "D2H stg");
        for (int i = 0; i < BENCH_COPY_SIZES; i++) {
                uint64_t b = bench_copy_size(i);
                int r = bench_copy_repeats(i);

                printf("%5llu MiB | %-8.1f %-8.1f %-8.1f | %-8.1f %-8.1f %-8.1f\n", (unsigned long long)(b >> 20),
                       gbps(b, n->h2d_ns[i], r), gbps(b, t->h2d_ns[0][i], r), gbps(b, t->h2d_ns[1][i], r),
                       gbps(b, n->d2h_ns[i], r), gbps(b, t->d2h_ns[0][i], r), gbps(b, t->d2h_ns[1][i], r));
        }
        printf("(nat: native, pinned cuMemAllocHost memory; reg: through the executor from the registered data "
               "area; stg: through the executor, staged)\n");
        fflush(stdout);
}

static const char *arg_plugin, *arg_native;

/* Run as a Check test (without forking), so that a failed step of the driver says where it failed. */
START_TEST(bench)
{
        BenchNativeResults *n = native(arg_native);
        Through *t = calloc(1, sizeof(*t));

        ck_assert_ptr_nonnull(t);
        setenv("VGPU_BACKEND_PATH", arg_plugin, 1);
        through_executor(t);
        report(n, t);
        free(t);
}
END_TEST

int main(int argc, char *argv[])
{
        const char *why = NULL;
        SRunner *sr;
        Suite *s;
        TCase *tc;
        int failed;

        if (argc != 3) {
                fprintf(stderr, "usage: %s PLUGIN NATIVE-MODULE\n", argv[0]);
                return 2;
        }
        if (!gpu_available(&why)) {
                printf("Skipping bench-gpu: %s.\n", why);
                return GPU_SKIP;
        }
        arg_plugin = argv[1], arg_native = argv[2];
        s = suite_create("bench-gpu");
        tc = tcase_create("cuda");
        tcase_set_timeout(tc, 600);
        tcase_add_test(tc, bench);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_set_fork_status(sr, CK_NOFORK);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? 0 : 1;
}
