/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The real vgpu-executor, driven the way its scheduler drives it: kernels computed through the ring
 * agree with a naive reference written here; quotas, handles, bounds and zeroing hold; it dies with its
 * scheduler and never outlives it; two VMs' executors cannot name each other's memory. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "driver.h"
#include "reference.h"

#define BUILTIN_TEXT "vgpu.builtin"

static const char *fake_plugin; /* argv[1]: a plugin whose init fails, as without a driver */

static uint64_t builtin_function(Driver *d, const char *name)
{
        VgpuStatus s;
        uint64_t module = driver_module_load(d, VGPU_MODULE_PTX, BUILTIN_TEXT, sizeof(BUILTIN_TEXT), &s);

        ck_assert_msg(s == VGPU_STATUS_OK, "MODULE_LOAD of vgpu.builtin: status %d", s);
        uint64_t f = driver_get_function(d, module, name, &s);
        ck_assert_msg(s == VGPU_STATUS_OK, "GET_FUNCTION %s: status %d", name, s);
        return f;
}

/* Allocates n floats on the device and uploads them through the data area at data_offset. */
static uint64_t upload(Driver *d, const float *v, size_t n, uint64_t data_offset)
{
        uint64_t h = driver_alloc(d, n * sizeof(float), NULL);

        ck_assert_uint_ne(h, 0);
        memcpy(d->data + data_offset, v, n * sizeof(float));
        ck_assert_int_eq(driver_h2d(d, h, 0, data_offset, n * sizeof(float)), VGPU_STATUS_OK);
        return h;
}

static void download(Driver *d, uint64_t h, float *v, size_t n, uint64_t data_offset)
{
        ck_assert_int_eq(driver_d2h(d, h, 0, data_offset, n * sizeof(float)), VGPU_STATUS_OK);
        memcpy(v, d->data + data_offset, n * sizeof(float));
}

START_TEST(test_gemm_through_the_ring_matches_a_naive_reference)
{
        enum { M = 67, N = 300, K = 129 }; /* several slices: N*K per row, 2^24 per slice */
        float *a = ref_random(M * K), *b = ref_random(K * N), *c = ref_random(M * N), *out = calloc(M * N, 4);
        double *expect = calloc(M * N, sizeof(double));
        DriverParams p = {};
        Driver d;

        ck_assert_int_eq(driver_start(&d, 1, "64M", "cpu"), 0);
        uint64_t ha = upload(&d, a, M * K, 0), hb = upload(&d, b, K * N, 0), hc = upload(&d, c, M * N, 0);
        driver_param_buffer(&p, ha, 0);
        driver_param_buffer(&p, hb, 0);
        driver_param_buffer(&p, hc, 0);
        driver_param_u32(&p, M);
        driver_param_u32(&p, N);
        driver_param_u32(&p, K);
        driver_param_f32(&p, 1.5f);
        driver_param_f32(&p, 0.5f);
        driver_param_u32(&p, 0);
        driver_param_u32(&p, 0);
        ck_assert_int_eq(driver_launch(&d, builtin_function(&d, "gemm"), &p, 4096), VGPU_STATUS_OK);
        download(&d, hc, out, M * N, 0);
        ref_gemm(a, b, c, M, N, K, 1.5, 0.5, expect);
        ref_assert_close(out, expect, M * N, 1e-3, "gemm");
        ck_assert_int_eq(driver_stop(&d), 0);
        free(a), free(b), free(c), free(out), free(expect);
}
END_TEST

START_TEST(test_relu_and_softmax_through_the_ring_match_a_naive_reference)
{
        enum { ROWS = 33, COLS = 257 };
        float *x = ref_random(ROWS * COLS), *y = calloc(ROWS * COLS, 4);
        double *expect = calloc(ROWS * COLS, sizeof(double));
        DriverParams relu = {}, softmax = {};
        Driver d;

        ck_assert_int_eq(driver_start(&d, 1, "0", "cpu"), 0);
        uint64_t hx = upload(&d, x, ROWS * COLS, 0), hy = driver_alloc(&d, ROWS * COLS * 4, NULL);
        driver_param_buffer(&relu, hx, 0);
        driver_param_buffer(&relu, hy, 0);
        driver_param_u32(&relu, ROWS * COLS);
        ck_assert_int_eq(driver_launch(&d, builtin_function(&d, "relu"), &relu, 8192), VGPU_STATUS_OK);
        download(&d, hy, y, ROWS * COLS, 0);
        for (size_t i = 0; i < ROWS * COLS; i++)
                ck_assert_msg(y[i] == (x[i] < 0 ? 0.0f : x[i]), "relu[%zu]: %g for %g", i, y[i], x[i]);

        driver_param_buffer(&softmax, hx, 0);
        driver_param_buffer(&softmax, hy, 0);
        driver_param_u32(&softmax, ROWS);
        driver_param_u32(&softmax, COLS);
        ck_assert_int_eq(driver_launch(&d, builtin_function(&d, "softmax"), &softmax, 8192), VGPU_STATUS_OK);
        download(&d, hy, y, ROWS * COLS, 0);
        ref_softmax(x, ROWS, COLS, expect);
        ref_assert_close(y, expect, ROWS * COLS, 1e-5, "softmax");
        ck_assert_int_eq(driver_stop(&d), 0);
        free(x), free(y), free(expect);
}
END_TEST

START_TEST(test_conv2d_through_the_ring_matches_a_naive_reference)
{
        RefConv c = {.N = 2, .C = 3, .H = 17, .W = 15, .O = 4, .KH = 3, .KW = 3, .stride = 2, .pad = 1, .dil = 1};
        size_t nx = (size_t)c.N * c.C * c.H * c.W, nw = (size_t)c.O * c.C * c.KH * c.KW, ny;
        float *x = ref_random(nx), *w = ref_random(nw), *bias = ref_random(c.O), *y;
        DriverParams p = {};
        double *expect;
        Driver d;

        ref_conv_output(&c);
        ny = (size_t)c.N * c.O * c.OH * c.OW;
        y = calloc(ny, 4);
        expect = calloc(ny, sizeof(double));
        ck_assert_int_eq(driver_start(&d, 1, "16M", "cpu"), 0);
        uint64_t hx = upload(&d, x, nx, 0), hw = upload(&d, w, nw, 0), hb = upload(&d, bias, c.O, 0);
        uint64_t hy = driver_alloc(&d, ny * 4, NULL);
        uint32_t dims[] = {c.N, c.C, c.H, c.W, c.O, c.KH, c.KW, c.stride, c.stride, c.pad, c.pad, c.dil, c.dil, 1};
        driver_param_buffer(&p, hx, 0);
        driver_param_buffer(&p, hw, 0);
        driver_param_buffer(&p, hb, 0);
        driver_param_buffer(&p, hy, 0);
        for (size_t i = 0; i < sizeof(dims) / sizeof(dims[0]); i++)
                driver_param_u32(&p, dims[i]);
        ck_assert_int_eq(driver_launch(&d, builtin_function(&d, "conv2d"), &p, 4096), VGPU_STATUS_OK);
        download(&d, hy, y, ny, 0);
        ref_conv2d(&c, x, w, bias, expect);
        ref_assert_close(y, expect, ny, 1e-4, "conv2d");
        ck_assert_int_eq(driver_stop(&d), 0);
        free(x), free(w), free(bias), free(y), free(expect);
}
END_TEST

START_TEST(test_allocation_past_the_quota_is_refused_and_stats_count_it)
{
        VgpuStatus s;
        VgpuStats st;
        Driver d;

        ck_assert_int_eq(driver_start(&d, 3, "1M", "cpu"), 0);
        uint64_t a = driver_alloc(&d, 600 * 1024, &s);
        ck_assert_int_eq(s, VGPU_STATUS_OK);
        ck_assert_uint_eq(driver_alloc(&d, 600 * 1024, &s), 0);
        ck_assert_int_eq(s, VGPU_STATUS_QUOTA_EXCEEDED);
        ck_assert_uint_ne(driver_alloc(&d, 1024 * 1024 - 600 * 1024, &s), 0); /* exactly up to the quota */
        ck_assert_uint_eq(driver_alloc(&d, 1, &s), 0);
        ck_assert_int_eq(s, VGPU_STATUS_QUOTA_EXCEEDED);
        ck_assert_int_eq(driver_free(&d, a), VGPU_STATUS_OK);
        ck_assert_uint_ne(driver_alloc(&d, 600 * 1024, &s), 0);
        ck_assert_int_eq(driver_status(&d, &(VgpuRequestDesc){.opcode = VGPU_OP_STATS, .seq = 9,
                                                                .u.stats = {.data_offset = 64, .length = 64}}),
                         VGPU_STATUS_OK);
        memcpy(&st, d.data + 64, sizeof(st));
        ck_assert_uint_eq(st.mem_used, 1024 * 1024);
        ck_assert_uint_eq(st.mem_quota, 1024 * 1024);
        ck_assert_uint_eq(st.requests, 6); /* STATS itself is counted once it completes */
        ck_assert_uint_eq(st.errors, 2);
        ck_assert_uint_eq(st.priority, 1);
        ck_assert_int_eq(driver_stop(&d), 0);
}
END_TEST

START_TEST(test_made_up_freed_and_wrong_kind_handles_are_no_such_handle)
{
        Driver d;

        ck_assert_int_eq(driver_start(&d, 4, "1M", "cpu"), 0);
        uint64_t h = driver_alloc(&d, 4096, NULL), f = builtin_function(&d, "relu");
        ck_assert_int_eq(driver_h2d(&d, h ^ 0x1, 0, 0, 16), VGPU_STATUS_NO_SUCH_HANDLE);
        ck_assert_int_eq(driver_h2d(&d, 0x0123456789abcdefULL, 0, 0, 16), VGPU_STATUS_NO_SUCH_HANDLE);
        ck_assert_int_eq(driver_h2d(&d, f, 0, 0, 16), VGPU_STATUS_NO_SUCH_HANDLE); /* a function, not memory */
        ck_assert_int_eq(driver_free(&d, h), VGPU_STATUS_OK);
        ck_assert_int_eq(driver_h2d(&d, h, 0, 0, 16), VGPU_STATUS_NO_SUCH_HANDLE);
        ck_assert_int_eq(driver_free(&d, h), VGPU_STATUS_NO_SUCH_HANDLE);
        DriverParams p = {};
        driver_param_buffer(&p, h, 0);
        driver_param_buffer(&p, h, 0);
        driver_param_u32(&p, 4);
        ck_assert_int_eq(driver_launch(&d, f, &p, 0), VGPU_STATUS_NO_SUCH_HANDLE);
        ck_assert_int_eq(driver_launch(&d, h, &p, 0), VGPU_STATUS_NO_SUCH_HANDLE);
        ck_assert_int_eq(driver_stop(&d), 0);
}
END_TEST

START_TEST(test_a_new_allocation_after_a_free_reads_all_zeros)
{
        enum { SIZE = 256 * 1024 };
        uint8_t *zeros = calloc(1, SIZE);
        Driver d;

        ck_assert_int_eq(driver_start(&d, 5, "4M", "cpu"), 0);
        for (int round = 0; round < 4; round++) {
                uint64_t h = driver_alloc(&d, round % 2 ? SIZE : 4000, NULL);

                ck_assert_uint_ne(h, 0);
                ck_assert_int_eq(driver_d2h(&d, h, 0, 0, round % 2 ? SIZE : 4000), VGPU_STATUS_OK);
                ck_assert_msg(memcmp(d.data, zeros, round % 2 ? SIZE : 4000) == 0, "round %d: stale bytes", round);
                memset(d.data, 0xa5, SIZE);
                ck_assert_int_eq(driver_h2d(&d, h, 0, 0, round % 2 ? SIZE : 4000), VGPU_STATUS_OK);
                ck_assert_int_eq(driver_free(&d, h), VGPU_STATUS_OK);
        }
        ck_assert_int_eq(driver_stop(&d), 0);
        free(zeros);
}
END_TEST

START_TEST(test_ranges_past_an_allocation_or_the_data_area_are_out_of_bounds)
{
        uint64_t data = 0;
        Driver d;

        ck_assert_int_eq(driver_start(&d, 6, "1M", "cpu"), 0);
        data = d.geometry.data_size;
        uint64_t h = driver_alloc(&d, 1000, NULL), g = driver_alloc(&d, 100, NULL);
        ck_assert_int_eq(driver_h2d(&d, h, 0, 0, 1000), VGPU_STATUS_OK);
        ck_assert_int_eq(driver_h2d(&d, h, 1, 0, 1000), VGPU_STATUS_OUT_OF_BOUNDS);
        ck_assert_int_eq(driver_d2h(&d, h, 999, 0, 2), VGPU_STATUS_OUT_OF_BOUNDS);
        ck_assert_int_eq(driver_d2h(&d, h, UINT64_MAX - 8, 0, 16), VGPU_STATUS_OUT_OF_BOUNDS);
        ck_assert_int_eq(driver_d2h(&d, h, 0, data - 8, 16), VGPU_STATUS_OUT_OF_BOUNDS);
        ck_assert_int_eq(driver_d2h(&d, h, 0, data - 16, 16), VGPU_STATUS_OK);
        ck_assert_int_eq(driver_d2h(&d, h, 0, UINT64_MAX - 8, 16), VGPU_STATUS_OUT_OF_BOUNDS);
        ck_assert_int_eq(driver_status(&d, &(VgpuRequestDesc){.opcode = VGPU_OP_COPY_D2D, .seq = 1,
                                                                .u.copy_d2d = {h, 0, g, 0, 101}}),
                         VGPU_STATUS_OUT_OF_BOUNDS);
        ck_assert_int_eq(driver_status(&d, &(VgpuRequestDesc){.opcode = VGPU_OP_COPY_D2D, .seq = 1,
                                                                .u.copy_d2d = {g, 0, h, 900, 100}}),
                         VGPU_STATUS_OK);
        ck_assert_int_eq(driver_status(&d, &(VgpuRequestDesc){.opcode = VGPU_OP_MEMSET, .seq = 1,
                                                                .u.memset = {.handle = g, .offset = 4, .length = 100,
                                                                             .value = 7, .element_size = 4}}),
                         VGPU_STATUS_OUT_OF_BOUNDS);
        ck_assert_int_eq(driver_status(&d, &(VgpuRequestDesc){.opcode = VGPU_OP_MEMSET, .seq = 1,
                                                                .u.memset = {.handle = g, .offset = 4, .length = 96,
                                                                             .value = 0x01020304, .element_size = 4}}),
                         VGPU_STATUS_OK);
        ck_assert_int_eq(driver_d2h(&d, g, 96, 0, 4), VGPU_STATUS_OK);
        ck_assert_uint_eq(*(uint32_t *)d.data, 0x01020304);
        ck_assert_int_eq(driver_stop(&d), 0);
}
END_TEST

START_TEST(test_ptx_is_not_supported_on_the_cpu_backend_but_builtin_is)
{
        static const char ptx[] = ".version 8.0\n.target sm_90\n.address_size 64\n";
        VgpuStatus s;
        Driver d;

        setenv("VGPU_BACKEND_PATH", "/nonexistent/vgpu-backend-cuda.so", 1); /* CPU even where a plugin is installed */
        ck_assert_int_eq(driver_start(&d, 7, "1M", "auto"), 0);
        ck_assert_str_eq(d.backend, "cpu");
        ck_assert_uint_eq(driver_module_load(&d, VGPU_MODULE_PTX, ptx, sizeof(ptx), &s), 0);
        ck_assert_int_eq(s, VGPU_STATUS_NOT_SUPPORTED);
        ck_assert_uint_eq(driver_module_load(&d, VGPU_MODULE_CUBIN, "\x7f" "ELF", 4, &s), 0);
        ck_assert_int_eq(s, VGPU_STATUS_NOT_SUPPORTED);
        ck_assert_uint_eq(driver_module_load(&d, VGPU_MODULE_CUBIN, BUILTIN_TEXT, 12, &s), 0); /* PTX only */
        ck_assert_int_eq(s, VGPU_STATUS_NOT_SUPPORTED);
        uint64_t m1 = driver_module_load(&d, VGPU_MODULE_PTX, BUILTIN_TEXT, 12, &s);
        uint64_t m2 = driver_module_load(&d, VGPU_MODULE_PTX, BUILTIN_TEXT, 13, &s);
        ck_assert_uint_ne(m1, 0);
        ck_assert_uint_eq(m1, m2); /* one handle, however often it is loaded */
        ck_assert_uint_eq(driver_get_function(&d, m1, "no_such_kernel", &s), 0);
        ck_assert_int_eq(s, VGPU_STATUS_INVALID_ARGUMENT);
        ck_assert_uint_eq(driver_get_function(&d, m1 + 1, "gemm", &s), 0);
        ck_assert_int_eq(s, VGPU_STATUS_NO_SUCH_HANDLE);
        ck_assert_int_eq(driver_stop(&d), 0);
}
END_TEST

/* The policy sentence a shared pool's executor writes back over a guest's module (docs/gpu.md, "Faults under
 * MPS"); a guest reads it in vgpu_last_error(). */
#define SHARED_POOL_REFUSAL                                                                                \
        "the pool is shared (MPS): one VM's faulting kernel would abort its neighbours' work, so only "    \
        "vgpu.builtin runs here; use an isolated pool for your own modules"
#define CPU_BACKEND_REFUSAL "the CPU backend cannot run PTX, cubin or fatbin modules"

/* A guest's PTX of `length` bytes (room for any reason), NUL-terminated. */
static void guest_ptx(char *ptx, size_t length)
{
        static const char head[] = ".version 8.0\n.target sm_90\n.address_size 64\n// ";

        memset(ptx, 'x', length);
        memcpy(ptx, head, strlen(head));
        ptx[length - 2] = '\n';
        ptx[length - 1] = 0;
}

/* MODULE_LOAD of a guest's module: refused NOT_SUPPORTED, and the reason the executor wrote back over the
 * image (the data area's first bytes). */
static const char *refused_module(Driver *d, VgpuModuleFormat format, const void *image, size_t length)
{
        VgpuStatus s;

        ck_assert_uint_eq(driver_module_load(d, format, image, length, &s), 0);
        ck_assert_int_eq(s, VGPU_STATUS_NOT_SUPPORTED);
        ck_assert_msg(memchr(d->data, 0, length) != NULL, "the reason is not NUL-terminated inside the image");
        return (const char *)d->data;
}

START_TEST(test_a_shared_pool_refuses_guest_modules_with_the_policy_reason)
{
        static const char *const shared[] = {"--pool-mode=shared", NULL};
        static const char cubin[64] = "\x7f" "ELF\x02\x01\x01";
        char ptx[1024];
        VgpuStatus s;
        Driver d;

        setenv("VGPU_BACKEND_PATH", "/nonexistent/vgpu-backend-cuda.so", 1);
        guest_ptx(ptx, sizeof(ptx));
        ck_assert_int_eq(driver_start_with(&d, 14, "1M", "auto", shared), 0);
        ck_assert_str_eq(refused_module(&d, VGPU_MODULE_PTX, ptx, sizeof(ptx)), SHARED_POOL_REFUSAL);
        const char *cut = refused_module(&d, VGPU_MODULE_CUBIN, cubin, sizeof(cubin)); /* cut to the image */
        ck_assert_uint_eq(strlen(cut), sizeof(cubin) - 1);
        ck_assert_int_eq(strncmp(cut, SHARED_POOL_REFUSAL, sizeof(cubin) - 1), 0);
        ck_assert_str_eq(refused_module(&d, VGPU_MODULE_FATBIN, ptx, sizeof(ptx)), SHARED_POOL_REFUSAL);
        /* vgpu.builtin still loads and runs there. */
        float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8}, c[4];
        uint64_t ha = upload(&d, a, 4, 0), hb = upload(&d, b, 4, 64), hc = driver_alloc(&d, sizeof(c), NULL);
        DriverParams p = {};
        driver_param_buffer(&p, ha, 0);
        driver_param_buffer(&p, hb, 0);
        driver_param_buffer(&p, hc, 0);
        driver_param_u32(&p, 1); /* rows */
        driver_param_u32(&p, 4); /* cols */
        driver_param_u32(&p, 0); /* b_mode: B as A */
        ck_assert_int_eq(driver_launch(&d, builtin_function(&d, "add"), &p, 4096), VGPU_STATUS_OK);
        download(&d, hc, c, 4, 0);
        for (int i = 0; i < 4; i++)
                ck_assert_float_eq(c[i], a[i] + b[i]);
        ck_assert_uint_ne(driver_module_load(&d, VGPU_MODULE_PTX, BUILTIN_TEXT, sizeof(BUILTIN_TEXT), &s), 0);
        ck_assert_int_eq(s, VGPU_STATUS_OK);
        ck_assert_int_eq(driver_stop(&d), 0);
}
END_TEST

START_TEST(test_an_isolated_pool_or_the_override_leaves_guest_modules_to_the_backend)
{
        static const char *const isolated[] = {"--pool-mode=isolated", NULL};
        static const char *const allowed[] = {"--pool-mode=shared", "--allow-guest-modules", NULL};
        const char *const *cases[] = {NULL, isolated, allowed};
        char ptx[1024];
        Driver d;

        setenv("VGPU_BACKEND_PATH", "/nonexistent/vgpu-backend-cuda.so", 1);
        guest_ptx(ptx, sizeof(ptx));
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                ck_assert_int_eq(driver_start_with(&d, 15, "1M", "auto", cases[i]), 0);
                /* The CPU backend's own refusal: the pool's policy let the module through to it. */
                const char *reason = refused_module(&d, VGPU_MODULE_PTX, ptx, sizeof(ptx));
                ck_assert_msg(strstr(reason, CPU_BACKEND_REFUSAL) == reason, "case %zu: reason '%s'", i, reason);
                ck_assert_int_eq(driver_stop(&d), 0);
        }
}
END_TEST

START_TEST(test_backend_cuda_without_the_plugin_fails_hard)
{
        Driver d;

        setenv("VGPU_BACKEND_PATH", "/nonexistent/vgpu-backend-cuda.so", 1);
        ck_assert_int_lt(driver_start(&d, 8, "1M", "cuda"), 0);
        ck_assert_int_eq(driver_start(&d, 8, "1M", "auto"), 0);
        ck_assert_str_eq(d.backend, "cpu");
        ck_assert_int_eq(driver_stop(&d), 0);
}
END_TEST

START_TEST(test_a_plugin_that_finds_no_driver_falls_back_to_cpu_or_fails_hard)
{
        Driver d;

        if (!fake_plugin)
                return; /* run outside meson without the plugin's path */
        setenv("VGPU_BACKEND_PATH", fake_plugin, 1);
        ck_assert_int_eq(driver_start(&d, 8, "1M", "cuda"), -ENODEV);
        ck_assert_int_eq(driver_start(&d, 8, "1M", "auto"), 0);
        ck_assert_str_eq(d.backend, "cpu");
        ck_assert_int_eq(driver_stop(&d), 0);
}
END_TEST

START_TEST(test_kill_9_of_the_executor_is_a_hangup_for_the_scheduler)
{
        Driver d;

        ck_assert_int_eq(driver_start(&d, 9, "1M", "cpu"), 0);
        ck_assert_int_eq(kill(d.pid, SIGKILL), 0);
        struct pollfd p = {.fd = d.control, .events = POLLIN};
        ck_assert_int_eq(poll(&p, 1, DRIVER_WAIT_MS), 1);
        ck_assert(p.revents & (POLLHUP | POLLIN));
        ck_assert_int_eq(recv(d.control, &(char){0}, 1, MSG_DONTWAIT), 0);
        ck_assert_int_eq(driver_stop(&d), 128 + SIGKILL);
}
END_TEST

START_TEST(test_executor_exits_by_itself_when_the_scheduler_goes_away)
{
        Driver d;

        ck_assert_int_eq(driver_start(&d, 10, "1M", "cpu"), 0);
        ck_assert_uint_ne(driver_alloc(&d, 4096, NULL), 0);
        close(d.control);
        d.control = -1;
        ck_assert_int_eq(driver_wait(&d, 5000), 0);
        ck_assert_int_eq(driver_stop(&d), 0);

        ck_assert_int_eq(driver_start(&d, 10, "1M", "cpu"), 0);
        ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
        ck_assert_int_eq(driver_wait(&d, 5000), 0);
        ck_assert_int_eq(driver_stop(&d), 0);
}
END_TEST

START_TEST(test_two_executors_cannot_use_each_others_handles)
{
        Driver one, two;

        ck_assert_int_eq(driver_start(&one, 11, "1M", "cpu"), 0);
        ck_assert_int_eq(driver_start(&two, 12, "1M", "cpu"), 0);
        uint64_t h1 = driver_alloc(&one, 4096, NULL), h2 = driver_alloc(&two, 4096, NULL);
        ck_assert_uint_ne(h1, h2);
        ck_assert_int_eq(driver_d2h(&two, h1, 0, 0, 16), VGPU_STATUS_NO_SUCH_HANDLE);
        ck_assert_int_eq(driver_free(&two, h1), VGPU_STATUS_NO_SUCH_HANDLE);
        ck_assert_int_eq(driver_d2h(&one, h2, 0, 0, 16), VGPU_STATUS_NO_SUCH_HANDLE);
        ck_assert_int_eq(driver_d2h(&one, h1, 0, 0, 16), VGPU_STATUS_OK);
        ck_assert_int_eq(driver_stop(&one), 0);
        ck_assert_int_eq(driver_stop(&two), 0);
}
END_TEST

START_TEST(test_a_ring_index_violation_ends_the_executor_with_an_error)
{
        uint64_t one = 1;
        Driver d;

        ck_assert_int_eq(driver_start(&d, 13, "1M", "cpu"), 0);
        VgpuLinkHeader *h = (VgpuLinkHeader *)d.link;
        __atomic_store_n(&h->req.prod, 1000u, __ATOMIC_RELEASE); /* 1000 requests in a 16-slot ring */
        ck_assert_int_eq(write(d.kick, &one, sizeof(one)), (ssize_t)sizeof(one));
        ck_assert_int_eq(driver_wait(&d, 5000), 1);
        ck_assert_int_eq(driver_stop(&d), 0);
}
END_TEST

static Suite *executor_suite(void)
{
        Suite *s = suite_create("executor");
        TCase *t = tcase_create("executor");

        tcase_set_timeout(t, 120);
        tcase_add_test(t, test_gemm_through_the_ring_matches_a_naive_reference);
        tcase_add_test(t, test_relu_and_softmax_through_the_ring_match_a_naive_reference);
        tcase_add_test(t, test_conv2d_through_the_ring_matches_a_naive_reference);
        tcase_add_test(t, test_allocation_past_the_quota_is_refused_and_stats_count_it);
        tcase_add_test(t, test_made_up_freed_and_wrong_kind_handles_are_no_such_handle);
        tcase_add_test(t, test_a_new_allocation_after_a_free_reads_all_zeros);
        tcase_add_test(t, test_ranges_past_an_allocation_or_the_data_area_are_out_of_bounds);
        tcase_add_test(t, test_ptx_is_not_supported_on_the_cpu_backend_but_builtin_is);
        tcase_add_test(t, test_a_shared_pool_refuses_guest_modules_with_the_policy_reason);
        tcase_add_test(t, test_an_isolated_pool_or_the_override_leaves_guest_modules_to_the_backend);
        tcase_add_test(t, test_backend_cuda_without_the_plugin_fails_hard);
        tcase_add_test(t, test_a_plugin_that_finds_no_driver_falls_back_to_cpu_or_fails_hard);
        tcase_add_test(t, test_kill_9_of_the_executor_is_a_hangup_for_the_scheduler);
        tcase_add_test(t, test_executor_exits_by_itself_when_the_scheduler_goes_away);
        tcase_add_test(t, test_two_executors_cannot_use_each_others_handles);
        tcase_add_test(t, test_a_ring_index_violation_ends_the_executor_with_an_error);
        suite_add_tcase(s, t);
        return s;
}

int main(int argc, char *argv[])
{
        SRunner *r = srunner_create(executor_suite());
        int failed;

        fake_plugin = argc > 1 ? argv[1] : NULL;
        if (access(driver_executor_path(), X_OK) < 0) {
                fprintf(stderr, "%s is missing: build vgpu-executor first (VGPU_BUILD_DIR).\n", driver_executor_path());
                return 77;
        }
        srunner_run_all(r, CK_NORMAL);
        failed = srunner_ntests_failed(r);
        srunner_free(r);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
