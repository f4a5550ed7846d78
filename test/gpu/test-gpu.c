/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The gpu suite: the real vgpu-executor with the CUDA plugin on a real GPU, driven as its scheduler would
 * (test/integration/executor/driver.c). Every built-in against the CPU backend on the same random inputs,
 * a guest's own PTX module, the JIT log of a broken one, zeroed allocations, a faulting kernel contained in
 * its own executor, and copies from 1 MiB to 1 GiB on both copy paths. Exits 77 where there is no GPU.
 * Arguments: the plugin's path. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "gpu-pair.h"
#include "vgpu-util.h"

#define PARAMS_AT(d) ((d)->geometry.data_size - (64u << 10)) /* the launch parameters: the data area's end */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint32_t rng(void)
{
        rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
        return (uint32_t)(rng_state >> 16);
}

static float rng_float(void) /* in [-2, 2) */
{
        return (float)rng() / 4294967296.0f * 4.0f - 2.0f;
}

static void start(Driver *d, uint32_t vm, const char *backend)
{
        ck_assert_int_eq(driver_start(d, vm, "0", backend), 0);
        ck_assert_str_eq(d->backend, backend);
}

static uint64_t upload(Driver *d, const void *src, uint64_t bytes)
{
        VgpuStatus s;
        uint64_t h = driver_alloc(d, bytes, &s);

        ck_assert_int_eq(s, VGPU_STATUS_OK);
        memcpy(d->data, src, bytes);
        ck_assert_int_eq(driver_h2d(d, h, 0, 0, bytes), VGPU_STATUS_OK);
        return h;
}

static void download(Driver *d, uint64_t h, void *dst, uint64_t bytes)
{
        ck_assert_int_eq(driver_d2h(d, h, 0, 0, bytes), VGPU_STATUS_OK);
        memcpy(dst, d->data, bytes);
}

static uint64_t function(Driver *d, uint64_t module, const char *name)
{
        VgpuStatus s;
        uint64_t f = driver_get_function(d, module, name, &s);

        ck_assert_msg(s == VGPU_STATUS_OK, "GET_FUNCTION %s: status %d", name, s);
        return f;
}

static VgpuStatus launch_grid(Driver *d, uint64_t f, const DriverParams *p, uint32_t grid, uint32_t block)
{
        memcpy(d->data + PARAMS_AT(d), p->p, p->n * sizeof(VgpuLaunchParam));
        return driver_status(d, &(VgpuRequestDesc){.opcode = VGPU_OP_LAUNCH, .seq = 9,
                                                   .u.launch = {.function = f, .grid = {grid, 1, 1},
                                                                .block = {block, 1, 1}, .param_count = p->n,
                                                                .params_offset = PARAMS_AT(d)}});
}

/* ---- built-ins: the CUDA backend against the CPU backend ---- */

/* One argument of a built-in launch, for both executors: a tensor (its floats and its handles) or a
 * 32-bit value. */
typedef struct Arg {
        float *host; /* a tensor's contents, or NULL for a value */
        uint64_t floats;
        uint32_t value;
        uint64_t handle[2]; /* on the CPU executor, on the CUDA one */
} Arg;

typedef struct Case {
        const char *name;
        Arg args[18];
        size_t n;
        int output;      /* the argument the kernel writes */
        double rel_tol;  /* 0: bit for bit */
        unsigned slices; /* how many GPU slices the launch takes at least (to say so in the log) */
} Case;

static void arg_tensor(Case *c, uint64_t floats, bool nan_and_zeros)
{
        Arg *a = &c->args[c->n++];

        a->floats = floats;
        a->host = malloc(floats * sizeof(float));
        ck_assert_ptr_nonnull(a->host);
        for (uint64_t i = 0; i < floats; i++)
                a->host[i] = rng_float();
        if (nan_and_zeros && floats > 8) {
                a->host[1] = NAN, a->host[3] = -0.0f, a->host[5] = 0.0f, a->host[7] = -INFINITY;
        }
}

static void arg_u32(Case *c, uint32_t v)
{
        c->args[c->n++].value = v;
}

static void arg_f32(Case *c, float v)
{
        memcpy(&c->args[c->n++].value, &v, sizeof(v));
}

static void run_on(Driver *d, int side, uint64_t module, Case *c)
{
        DriverParams p = {};
        uint64_t f = function(d, module, c->name);

        for (size_t i = 0; i < c->n; i++) {
                if (c->args[i].host) {
                        c->args[i].handle[side] = upload(d, c->args[i].host, c->args[i].floats * sizeof(float));
                        driver_param_buffer(&p, c->args[i].handle[side], 0);
                } else
                        driver_param_u32(&p, c->args[i].value);
        }
        ck_assert_msg(launch_grid(d, f, &p, 1, 1) == VGPU_STATUS_OK, "%s on %s refused", c->name, d->backend);
}

/* Relative difference where both are finite, 0 when the bits agree or both are NaN. */
static double difference(float a, float b)
{
        if (memcmp(&a, &b, sizeof(a)) == 0 || (isnan(a) && isnan(b)))
                return 0;
        if (!isfinite(a) || !isfinite(b))
                return INFINITY;
        return fabs((double)a - b) / fmax(fabs((double)a), 1e-30);
}

static void check_case(Driver *cpu, Driver *gpu, uint64_t m_cpu, uint64_t m_gpu, Case *c)
{
        Arg *out = &c->args[c->output];
        uint64_t bytes = out->floats * sizeof(float), differing = 0;
        float *a = malloc(bytes), *b = malloc(bytes);
        double worst = 0;

        run_on(cpu, 0, m_cpu, c);
        run_on(gpu, 1, m_gpu, c);
        download(cpu, out->handle[0], a, bytes);
        download(gpu, out->handle[1], b, bytes);
        for (uint64_t i = 0; i < out->floats; i++) {
                double e = difference(a[i], b[i]);

                differing += e != 0;
                worst = fmax(worst, e);
                ck_assert_msg(e <= c->rel_tol, "%s: element %llu: CPU %.9g, CUDA %.9g (relative %.3g > %.3g)",
                              c->name, (unsigned long long)i, a[i], b[i], e, c->rel_tol);
        }
        printf("built-in %-10s %9llu outputs, %s; %llu differ from the CPU (largest relative %.3g, allowed "
               "%.3g)%s\n", c->name, (unsigned long long)out->floats, c->rel_tol == 0 ? "bit for bit" : "tolerance",
               (unsigned long long)differing, worst, c->rel_tol, c->slices > 1 ? " [several GPU slices]" : "");
        for (size_t i = 0; i < c->n; i++) {
                if (!c->args[i].host)
                        continue;
                ck_assert_int_eq(driver_free(cpu, c->args[i].handle[0]), VGPU_STATUS_OK);
                ck_assert_int_eq(driver_free(gpu, c->args[i].handle[1]), VGPU_STATUS_OK);
                free(c->args[i].host);
        }
        free(a), free(b);
}

static uint64_t builtin_module(Driver *d)
{
        VgpuStatus s;
        uint64_t m = driver_module_load(d, VGPU_MODULE_PTX, "vgpu.builtin", 12, &s);

        ck_assert_int_eq(s, VGPU_STATUS_OK);
        return m;
}

static Case gemm_case(uint32_t m, uint32_t n, uint32_t k, float alpha, float beta, uint32_t ta, uint32_t tb)
{
        Case c = {.name = "gemm", .output = 2, .slices = (unsigned)(((uint64_t)m * n * k) >> 28) + 1};

        arg_tensor(&c, (uint64_t)m * k, false), arg_tensor(&c, (uint64_t)k * n, false);
        arg_tensor(&c, (uint64_t)m * n, false);
        arg_u32(&c, m), arg_u32(&c, n), arg_u32(&c, k), arg_f32(&c, alpha), arg_f32(&c, beta);
        arg_u32(&c, ta), arg_u32(&c, tb);
        return c;
}

static Case binary_case(const char *name, uint32_t rows, uint32_t cols, uint32_t mode)
{
        uint64_t b_n = mode == 0 ? (uint64_t)rows * cols : mode == 1 ? cols : mode == 2 ? rows : 1;
        Case c = {.name = name, .output = 2};

        arg_tensor(&c, (uint64_t)rows * cols, true), arg_tensor(&c, b_n, false);
        arg_tensor(&c, (uint64_t)rows * cols, false);
        arg_u32(&c, rows), arg_u32(&c, cols), arg_u32(&c, mode);
        return c;
}

static Case conv_case(uint32_t n, uint32_t ch, uint32_t h, uint32_t w, uint32_t o, uint32_t k, uint32_t stride,
                      uint32_t pad, uint32_t dil, uint32_t has_bias)
{
        uint64_t oh = (h + 2 * pad - (dil * (k - 1) + 1)) / stride + 1, ow = (w + 2 * pad - (dil * (k - 1) + 1)) / stride + 1;
        Case c = {.name = "conv2d", .output = 3, .slices = (unsigned)((n * o * oh * ow * ch * k * k) >> 28) + 1};

        arg_tensor(&c, (uint64_t)n * ch * h * w, false), arg_tensor(&c, (uint64_t)o * ch * k * k, false);
        arg_tensor(&c, o, false), arg_tensor(&c, n * o * oh * ow, false);
        arg_u32(&c, n), arg_u32(&c, ch), arg_u32(&c, h), arg_u32(&c, w), arg_u32(&c, o), arg_u32(&c, k);
        arg_u32(&c, k), arg_u32(&c, stride), arg_u32(&c, stride), arg_u32(&c, pad), arg_u32(&c, pad);
        arg_u32(&c, dil), arg_u32(&c, dil), arg_u32(&c, has_bias);
        return c;
}

static Case pool_case(uint32_t n, uint32_t ch, uint32_t h, uint32_t w, uint32_t k, uint32_t stride, uint32_t pad)
{
        uint64_t oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
        Case c = {.name = "maxpool2d", .output = 1};

        arg_tensor(&c, (uint64_t)n * ch * h * w, true), arg_tensor(&c, n * ch * oh * ow, false);
        arg_u32(&c, n), arg_u32(&c, ch), arg_u32(&c, h), arg_u32(&c, w), arg_u32(&c, k), arg_u32(&c, k);
        arg_u32(&c, stride), arg_u32(&c, stride), arg_u32(&c, pad), arg_u32(&c, pad);
        return c;
}

static Case rows_case(const char *name, uint32_t rows, uint32_t cols, double tol)
{
        Case c = {.name = name, .output = 1, .rel_tol = tol};

        arg_tensor(&c, (uint64_t)rows * cols, false);
        arg_tensor(&c, strcmp(name, "softmax") == 0 ? (uint64_t)rows * cols : rows, false);
        arg_u32(&c, rows), arg_u32(&c, cols);
        return c;
}

START_TEST(test_builtins_agree_with_the_cpu_backend)
{
        Driver cpu, gpu;
        uint64_t m_cpu, m_gpu;
        /* softmax: (2 d + 8) 2^-24 relative with d the spread of a row's logits, here < 4 (builtin.h);
         * sum_rows: one ulp of the float result. */
        const double softmax_tol = 16.0 / 16777216.0, sum_tol = 1.0 / 8388608.0;
        Case cases[] = {
                gemm_case(33, 47, 65, 1.0f, 0.0f, 0, 0),
                gemm_case(64, 96, 80, 0.5f, 2.0f, 1, 0),
                gemm_case(70, 50, 30, -1.5f, 0.25f, 0, 1),
                gemm_case(40, 40, 40, 1.0f, 1.0f, 1, 1),
                gemm_case(2048, 256, 2048, 1.0f, 0.5f, 0, 0), /* 2^30 multiply-adds: four GPU slices */
                binary_case("add", 100, 300, 0), binary_case("add", 100, 300, 1), binary_case("add", 100, 300, 2),
                binary_case("add", 100, 300, 3), binary_case("mul", 257, 129, 0), binary_case("mul", 257, 129, 1),
                binary_case("mul", 257, 129, 2), binary_case("mul", 257, 129, 3),
                {.name = "relu", .output = 1},
                {.name = "bias_add", .output = 2},
                rows_case("softmax", 300, 1000, softmax_tol),
                rows_case("softmax", 3, 100000, softmax_tol),
                rows_case("softmax", 1000, 1, softmax_tol),
                rows_case("sum_rows", 500, 777, sum_tol),
                rows_case("sum_rows", 2, 1000000, sum_tol),
                conv_case(2, 3, 32, 32, 8, 3, 1, 1, 1, 1),
                conv_case(1, 4, 29, 31, 5, 5, 2, 2, 1, 0),
                conv_case(2, 2, 20, 20, 3, 3, 1, 2, 2, 1),
                conv_case(2, 64, 66, 66, 64, 3, 1, 0, 1, 1), /* 2.4 million multiply-adds a plane: two slices */
                pool_case(2, 3, 32, 32, 2, 2, 0),
                pool_case(1, 5, 17, 19, 3, 2, 1),
                pool_case(3, 2, 9, 9, 3, 1, 1),
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Case *c = &cases[i];

                if (strcmp(c->name, "relu") == 0) {
                        arg_tensor(c, 100003, true), arg_tensor(c, 100003, false), arg_u32(c, 100003);
                } else if (strcmp(c->name, "bias_add") == 0) {
                        arg_tensor(c, 4 * 16 * 49, true), arg_tensor(c, 16, false);
                        arg_tensor(c, 4 * 16 * 49, false), arg_u32(c, 4), arg_u32(c, 16), arg_u32(c, 49);
                }
        }
        start(&cpu, 11, "cpu");
        start(&gpu, 12, "cuda");
        m_cpu = builtin_module(&cpu), m_gpu = builtin_module(&gpu);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                check_case(&cpu, &gpu, m_cpu, m_gpu, &cases[i]);
        ck_assert_int_eq(driver_stop(&cpu), 0);
        ck_assert_int_eq(driver_stop(&gpu), 0);
}
END_TEST

/* ---- a guest's own module ---- */

static uint64_t guest_module(Driver *d)
{
        VgpuStatus s;
        uint64_t m = driver_module_load(d, VGPU_MODULE_PTX, gpu_test_kernels_ptx, gpu_test_kernels_ptx_size + 1, &s);

        ck_assert_msg(s == VGPU_STATUS_OK, "the guest's PTX did not load: status %d: %s", s, (char *)d->data);
        return m;
}

START_TEST(test_guest_ptx_module_runs_with_correct_results)
{
        enum { N = 1 << 20 };
        float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float)), *got = malloc(N * sizeof(float));
        struct { float scale, shift; uint32_t n; } affine = {3.0f, -1.0f, N};
        uint64_t m, saxpy, aff, hx, hy;
        DriverParams p = {};
        VgpuStatus s;
        Driver d;

        for (int i = 0; i < N; i++)
                x[i] = rng_float(), y[i] = rng_float();
        start(&d, 21, "cuda");
        m = guest_module(&d);
        saxpy = function(&d, m, "saxpy");
        aff = function(&d, m, "affine");
        hx = upload(&d, x, N * sizeof(float));
        hy = upload(&d, y, N * sizeof(float));
        driver_param_u32(&p, N), driver_param_f32(&p, 2.5f), driver_param_buffer(&p, hx, 0), driver_param_buffer(&p, hy, 0);
        ck_assert_int_eq(launch_grid(&d, saxpy, &p, N / 256, 256), VGPU_STATUS_OK);
        /* The struct by value: a BYTES parameter, its bytes in the data area. */
        memcpy(d.data + PARAMS_AT(&d) - 64, &affine, sizeof(affine));
        p = (DriverParams){};
        driver_param_buffer(&p, hy, 0);
        p.p[p.n++] = (VgpuLaunchParam){.kind = VGPU_PARAM_BYTES, .size = sizeof(affine),
                                       .value = PARAMS_AT(&d) - 64};
        ck_assert_int_eq(launch_grid(&d, aff, &p, N / 256, 256), VGPU_STATUS_OK);
        download(&d, hy, got, N * sizeof(float));
        for (int i = 0; i < N; i++) {
                float want = (2.5f * x[i] + y[i]) * 3.0f + -1.0f;

                ck_assert_msg(got[i] == want, "element %d: %.9g, expected %.9g", i, got[i], want);
        }
        printf("guest PTX: saxpy then affine (by-value struct) over %d floats: all equal to the host's\n", N);

        /* Parameters the kernel does not take are refused before the driver sees them. */
        p = (DriverParams){};
        driver_param_u32(&p, N), driver_param_f32(&p, 1.0f), driver_param_buffer(&p, hx, 0);
        ck_assert_int_eq(launch_grid(&d, saxpy, &p, 1, 1), VGPU_STATUS_INVALID_ARGUMENT); /* one short */
        p = (DriverParams){};
        driver_param_u32(&p, N), driver_param_f32(&p, 1.0f), driver_param_u32(&p, 0), driver_param_buffer(&p, hy, 0);
        ck_assert_int_eq(launch_grid(&d, saxpy, &p, 1, 1), VGPU_STATUS_INVALID_ARGUMENT); /* 4 bytes for 8 */
        p = (DriverParams){};
        driver_param_u32(&p, N), driver_param_f32(&p, 1.0f), driver_param_buffer(&p, hx, 0), driver_param_buffer(&p, hy, 0);
        ck_assert_int_eq(launch_grid(&d, saxpy, &p, 1, 4096), VGPU_STATUS_INVALID_ARGUMENT); /* block too big */
        (void)driver_get_function(&d, m, "no_such_kernel", &s);
        ck_assert_int_eq(s, VGPU_STATUS_INVALID_ARGUMENT);
        /* After all those refusals, the context still works. */
        ck_assert_int_eq(launch_grid(&d, saxpy, &p, N / 256, 256), VGPU_STATUS_OK);
        ck_assert_int_eq(driver_stop(&d), 0);
        free(x), free(y), free(got);
}
END_TEST

START_TEST(test_ptx_syntax_error_returns_the_jit_log)
{
        static const char broken[] = ".version 8.0\n.target sm_90\n.address_size 64\n"
                                     ".visible .entry broken()\n{\n\tthis_is_not_ptx %r1;\n\tret;\n}\n";
        char image[4096] = {};
        VgpuStatus s;
        Driver d;

        memcpy(image, broken, sizeof(broken));
        start(&d, 31, "cuda");
        ck_assert_uint_eq(driver_module_load(&d, VGPU_MODULE_PTX, image, sizeof(image), &s), 0);
        ck_assert_int_eq(s, VGPU_STATUS_INVALID_ARGUMENT);
        printf("JIT log returned over the image (%zu bytes):\n%s\n", strlen((char *)d.data), (char *)d.data);
        ck_assert_ptr_nonnull(strstr((char *)d.data, "CUDA_ERROR_INVALID_PTX"));
        ck_assert_ptr_nonnull(strstr((char *)d.data, "this_is_not_ptx"));
        /* A cubin whose section table lies past its end is refused before the driver reads it. */
        memset(image, 0, sizeof(image));
        memcpy(image, "\177ELF\002\001\001", 7);
        image[0x28] = 0xff, image[0x29] = 0xff, image[0x3c] = 4, image[0x3a] = 64;
        ck_assert_uint_eq(driver_module_load(&d, VGPU_MODULE_CUBIN, image, 256, &s), 0);
        ck_assert_int_eq(s, VGPU_STATUS_INVALID_ARGUMENT);
        ck_assert_uint_eq(driver_module_load(&d, VGPU_MODULE_FATBIN, "\x50\xed\x55\xba\x01\x00\x10\x00\xff\xff", 16, &s), 0);
        ck_assert_int_eq(s, VGPU_STATUS_INVALID_ARGUMENT);
        guest_module(&d); /* and a good one still loads */
        ck_assert_int_eq(driver_stop(&d), 0);
}
END_TEST

/* ---- memory ---- */

static bool all_zero(const uint8_t *p, uint64_t n)
{
        for (uint64_t i = 0; i < n; i++)
                if (p[i])
                        return false;
        return true;
}

START_TEST(test_memory_is_zeroed_on_allocation)
{
        static const uint64_t sizes[] = {4096, 1 << 20, 64u << 20, 3, 100001};
        Driver d;

        start(&d, 41, "cuda");
        for (int round = 0; round < 3; round++)
                for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                        uint64_t n = sizes[i];
                        VgpuStatus s;
                        uint64_t h = driver_alloc(&d, n, &s);

                        ck_assert_int_eq(s, VGPU_STATUS_OK);
                        memset(d.data, 0xa5, n);
                        ck_assert_int_eq(driver_d2h(&d, h, 0, 0, n), VGPU_STATUS_OK);
                        ck_assert_msg(all_zero(d.data, n), "a new allocation of %llu bytes is not zero", (unsigned long long)n);
                        memset(d.data, 0x5a, n);
                        ck_assert_int_eq(driver_h2d(&d, h, 0, 0, n), VGPU_STATUS_OK);
                        ck_assert_int_eq(driver_free(&d, h), VGPU_STATUS_OK);
                }
        printf("zeroing: 15 allocations (3 B … 64 MiB) read back as zero after the same sizes were written and freed\n");
        ck_assert_int_eq(driver_stop(&d), 0);
}
END_TEST

/* A kernel that writes where it was never given memory faults in its own executor, which reports it and
 * ends; another VM's executor, with its data, carries on untouched. */
static void fault_contained(uint64_t index, bool raw)
{
        enum { N = 4 << 20 };
        uint32_t *pattern = malloc(N * sizeof(uint32_t)), *got = malloc(N * sizeof(uint32_t));
        Driver victim, attacker;
        uint64_t hv, ha, m, f, relu;
        DriverParams p = {};
        VgpuStatus s;
        int status;

        for (int i = 0; i < N; i++)
                pattern[i] = 0x13579bdfu ^ (uint32_t)i * 2654435761u;
        start(&victim, 51, "cuda");
        start(&attacker, 52, "cuda");
        hv = upload(&victim, pattern, N * sizeof(uint32_t));
        ha = driver_alloc(&attacker, 1 << 20, &s);
        m = guest_module(&attacker);
        if (raw) {
                f = function(&attacker, m, "write_raw");
                p.p[p.n++] = (VgpuLaunchParam){.kind = VGPU_PARAM_VALUE, .size = 8, .value = index};
        } else {
                f = function(&attacker, m, "write_at");
                driver_param_buffer(&p, ha, 0);
                p.p[p.n++] = (VgpuLaunchParam){.kind = VGPU_PARAM_VALUE, .size = 8, .value = index};
        }
        driver_param_f32(&p, 1.0f);
        s = launch_grid(&attacker, f, &p, 1, 1);
        ck_assert_msg(s == VGPU_STATUS_DEVICE_ERROR, "the faulting launch completed with status %d", s);
        status = driver_wait(&attacker, DRIVER_WAIT_MS);
        printf("fault (%s %#llx): the launch answered DEVICE_ERROR; that executor exited with status %d\n",
               raw ? "raw address" : "float index past a 1 MiB buffer", (unsigned long long)index, status);
        ck_assert_int_eq(status, 1);
        (void)driver_stop(&attacker);

        download(&victim, hv, got, N * sizeof(uint32_t));
        ck_assert_msg(memcmp(got, pattern, N * sizeof(uint32_t)) == 0, "the other VM's data changed");
        relu = function(&victim, builtin_module(&victim), "relu");
        p = (DriverParams){};
        driver_param_buffer(&p, hv, 0), driver_param_buffer(&p, hv, 0), driver_param_u32(&p, N);
        ck_assert_int_eq(launch_grid(&victim, relu, &p, 1, 1), VGPU_STATUS_OK);
        ck_assert_int_eq(driver_status(&victim, &(VgpuRequestDesc){.opcode = VGPU_OP_SYNC, .seq = 8}), VGPU_STATUS_OK);
        printf("fault: the other VM's 16 MiB read back intact and its executor still launches\n");
        ck_assert_int_eq(driver_stop(&victim), 0);
        free(pattern), free(got);
}

START_TEST(test_out_of_bounds_kernel_is_contained)
{
        fault_contained(UINT64_C(1) << 38, false); /* 1 TiB past its buffer */
        fault_contained(UINT64_C(0x8000000000001000), true); /* an address no context maps */
}
END_TEST

/* ---- copies ---- */

static void copies(const char *mode)
{
        static const uint64_t sizes[] = {1u << 20, 16u << 20, 256u << 20, 1u << 30};
        uint64_t *check = malloc(1u << 30);
        Driver d;

        if (mode)
                setenv("VGPU_CUDA_COPY", mode, 1);
        else
                unsetenv("VGPU_CUDA_COPY");
        start(&d, 61, "cuda");
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                uint64_t n = sizes[i], words = n / 8, seed = rng() | 1;
                VgpuStatus s;
                uint64_t h = driver_alloc(&d, n + 4096, &s);

                ck_assert_int_eq(s, VGPU_STATUS_OK);
                for (uint64_t w = 0; w < words; w++)
                        check[w] = ((uint64_t *)d.data)[w] = w * 0x9e3779b97f4a7c15u ^ seed;
                ck_assert_int_eq(driver_h2d(&d, h, 0, 0, n), VGPU_STATUS_OK);
                memset(d.data, 0, n);
                ck_assert_int_eq(driver_d2h(&d, h, 0, 0, n), VGPU_STATUS_OK);
                ck_assert_msg(memcmp(d.data, check, n) == 0, "%llu bytes came back different", (unsigned long long)n);
                /* Odd offsets and lengths, on both sides. */
                ck_assert_int_eq(driver_h2d(&d, h, 4093, 7, n - 11), VGPU_STATUS_OK);
                memset(d.data, 0, n);
                ck_assert_int_eq(driver_d2h(&d, h, 4093, 3, n - 11), VGPU_STATUS_OK);
                ck_assert_msg(memcmp(d.data + 3, (uint8_t *)check + 7, n - 11) == 0, "an offset copy of %llu bytes "
                              "came back different", (unsigned long long)(n - 11));
                ck_assert_int_eq(driver_free(&d, h), VGPU_STATUS_OK);
        }
        printf("copies (%s): 1 MiB, 16 MiB, 256 MiB, 1 GiB up and back, and at odd offsets: identical\n",
               mode ? mode : "registered data area");
        ck_assert_int_eq(driver_stop(&d), 0);
        unsetenv("VGPU_CUDA_COPY");
        free(check);
}

START_TEST(test_copies_from_1mib_to_1gib)
{
        copies(NULL);
        copies("staged");
}
END_TEST

int main(int argc, char *argv[])
{
        const char *why = NULL;
        SRunner *sr;
        Suite *s;
        TCase *tc;
        int failed;

        if (argc != 2) {
                fprintf(stderr, "usage: %s PLUGIN\n", argv[0]);
                return 2;
        }
        if (!gpu_available(&why)) {
                printf("Skipping the gpu suite: %s.\n", why);
                return GPU_SKIP;
        }
        setenv("VGPU_BACKEND_PATH", argv[1], 1);
        s = suite_create("gpu");
        tc = tcase_create("cuda");
        tcase_set_timeout(tc, 300);
        tcase_add_test(tc, test_builtins_agree_with_the_cpu_backend);
        tcase_add_test(tc, test_guest_ptx_module_runs_with_correct_results);
        tcase_add_test(tc, test_ptx_syntax_error_returns_the_jit_log);
        tcase_add_test(tc, test_memory_is_zeroed_on_allocation);
        tcase_add_test(tc, test_out_of_bounds_kernel_is_contained);
        tcase_add_test(tc, test_copies_from_1mib_to_1gib);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_VERBOSE);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? 0 : 1;
}
