/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Measures the vgpu.builtin CPU kernels on one core, for docs/builtins.md: gemm 512³ and the layers of a
 * small CNN. Prints one line per case: name, shape, best time of several runs, GFLOP/s (or GB/s). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "builtin.h"

static double now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float *buffer(uint64_t floats)
{
        float *p = malloc(floats * sizeof(float));

        if (!p) {
                fprintf(stderr, "Failed to allocate %llu floats.\n", (unsigned long long) floats);
                exit(EXIT_FAILURE);
        }
        for (uint64_t i = 0; i < floats; i++)
                p[i] = (float) rand() / RAND_MAX - 0.5f;
        return p;
}

static BuiltinArg buf(float *p, uint64_t floats)
{
        return (BuiltinArg) { .data = p, .size = floats * sizeof(float) };
}

static BuiltinArg u(uint32_t v)
{
        return (BuiltinArg) { .u32 = v };
}

static BuiltinArg f(float v)
{
        return (BuiltinArg) { .f32 = v };
}

/* Runs the launch whole, best of `reps`, and prints work / time in `unit` (work: flops or bytes moved). */
static void measure(const char *name, const char *shape, const BuiltinArg *args, size_t n, double work,
                    const char *unit, int reps)
{
        const BuiltinKernel *k = builtin_find(name, strlen(name));
        double best = 1e30;
        const char *reason = NULL;
        uint64_t items;

        if (builtin_validate(k, args, n, &reason) != VGPU_STATUS_OK) {
                fprintf(stderr, "%s %s refused: %s\n", name, shape, reason);
                exit(EXIT_FAILURE);
        }
        items = k->work_items(args);
        for (int r = 0; r < reps; r++) {
                double t0 = now();

                builtin_run(k, args, n, 0, items, &reason);
                if (now() - t0 < best)
                        best = now() - t0;
        }
        printf("%-10s %-40s %9.3f ms %8.2f %s\n", name, shape, best * 1e3, work / best * 1e-9, unit);
}

static void bench_gemm(uint32_t m, uint32_t n, uint32_t k, uint32_t ta, uint32_t tb)
{
        float *a = buffer((uint64_t) m * k), *b = buffer((uint64_t) k * n), *c = buffer((uint64_t) m * n);
        BuiltinArg args[] = { buf(a, (uint64_t) m * k), buf(b, (uint64_t) k * n), buf(c, (uint64_t) m * n),
                              u(m), u(n), u(k), f(1.0f), f(0.0f), u(ta), u(tb) };
        char shape[64];

        snprintf(shape, sizeof(shape), "M=N=K=%u transA=%u transB=%u", m, ta, tb);
        measure("gemm", shape, args, 10, 2.0 * m * n * k, "GFLOP/s", 5);
        free(a), free(b), free(c);
}

/* A 3×3, pad 1, stride 1 layer: the bulk of a small CNN's time. */
static void bench_conv(uint32_t batch, uint32_t c, uint32_t hw, uint32_t o)
{
        uint64_t xn = (uint64_t) batch * c * hw * hw, wn = (uint64_t) o * c * 9, yn = (uint64_t) batch * o * hw * hw;
        float *x = buffer(xn), *w = buffer(wn), *bias = buffer(o), *y = buffer(yn);
        BuiltinArg args[] = { buf(x, xn), buf(w, wn), buf(bias, o), buf(y, yn), u(batch), u(c), u(hw), u(hw), u(o),
                              u(3), u(3), u(1), u(1), u(1), u(1), u(1), u(1), u(1) };
        char shape[64];

        snprintf(shape, sizeof(shape), "N=%u C=%u %ux%u O=%u 3x3 pad 1", batch, c, hw, hw, o);
        measure("conv2d", shape, args, 18, 2.0 * yn * c * 9, "GFLOP/s", 3);
        free(x), free(w), free(bias), free(y);
}

static void bench_rows(const char *name, uint32_t rows, uint32_t cols)
{
        uint64_t n = (uint64_t) rows * cols;
        float *x = buffer(n), *y = buffer(n);
        BuiltinArg args[] = { buf(x, n), buf(y, n), u(rows), u(cols) };
        char shape[64];

        snprintf(shape, sizeof(shape), "%u x %u", rows, cols);
        measure(name, shape, args, 4, 8.0 * n, "GB/s", 5);
        free(x), free(y);
}

static void bench_pool(uint32_t c, uint32_t hw)
{
        uint64_t xn = (uint64_t) c * hw * hw, yn = (uint64_t) c * (hw / 2) * (hw / 2);
        float *x = buffer(xn), *y = buffer(yn);
        BuiltinArg args[] = { buf(x, xn), buf(y, yn), u(1), u(c), u(hw), u(hw), u(2), u(2), u(2), u(2), u(0), u(0) };
        char shape[64];

        snprintf(shape, sizeof(shape), "N=1 C=%u %ux%u 2x2 stride 2", c, hw, hw);
        measure("maxpool2d", shape, args, 12, 4.0 * (xn + yn), "GB/s", 5);
        free(x), free(y);
}

int main(void)
{
        srand(1);
        bench_gemm(512, 512, 512, 0, 0);
        bench_gemm(512, 512, 512, 1, 1);
        bench_gemm(1024, 1024, 1024, 0, 0);
        bench_gemm(128, 128, 128, 0, 0);
        bench_conv(1, 3, 224, 64);
        bench_conv(1, 64, 56, 64);
        bench_conv(8, 32, 32, 64);
        bench_rows("softmax", 1024, 1000);
        bench_rows("sum_rows", 1024, 1000);
        bench_pool(64, 112);
        return EXIT_SUCCESS;
}
