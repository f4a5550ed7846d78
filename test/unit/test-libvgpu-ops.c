/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libvgpu against a stand-in host (libvgpu-host.h): connect and HELLO, a refused version, connection rules,
 * a gemm checked against a naive loop, copies chunked past the data area, batching, errors at sync. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libvgpu-host.h"
#include "vgpu-util.h"
#include "vgpu.h"

START_TEST(test_connect_negotiates_version_over_the_vm_socket)
{
        VgpuClient *c;
        VgpuClientInfo info;

        host_start(HOST_NORMAL);
        setenv("VGPU_VM_ID", "7", 1); /* vm_id 0 in the options: the environment decides */
        ck_assert_int_eq(vgpu_connect(NULL, &c), 0);
        ck_assert_int_eq(vgpu_client_info(c, &info), 0);
        ck_assert_uint_eq(info.vm_id, 7);
        ck_assert_int_eq(info.transport, VGPU_CONNECT_LOCAL);
        ck_assert_str_eq(info.socket_path, sock_path);
        ck_assert_uint_eq(info.protocol_version, 1);
        ck_assert_uint_eq(info.requests, VGPU_CONNECT_REQUESTS_DEFAULT);
        ck_assert_uint_ge(info.data_size, VGPU_CONNECT_DATA_SIZE_DEFAULT);
        vgpu_disconnect(c);
        unsetenv("VGPU_VM_ID");
}
END_TEST

START_TEST(test_version_mismatch_is_refused_with_both_ranges)
{
        VgpuClient *c = NULL;

        host_start(HOST_VERSION_2);
        ck_assert_int_eq(vgpu_connect(&(VgpuConnectOptions){.vm_id = 7}, &c), VGPU_E_VERSION_MISMATCH);
        ck_assert_ptr_null(c);
        ck_assert_msg(strstr(vgpu_last_error(), "versions 2 to 3"), "message: %s", vgpu_last_error());
}
END_TEST

START_TEST(test_no_socket_and_no_vm_are_refused_plainly)
{
        VgpuClient *c = NULL;

        unsetenv("VGPU_VM_ID");
        ck_assert_int_eq(vgpu_connect(NULL, &c), -ENODEV);
        ck_assert_msg(strstr(vgpu_last_error(), "no vgpu-stub device found"), "%s", vgpu_last_error());
        ck_assert_int_eq(vgpu_connect(&(VgpuConnectOptions){.vm_id = 8}, &c), -EOPNOTSUPP); /* no vm/8.sock */
        ck_assert_int_eq(vgpu_connect(&(VgpuConnectOptions){.vm_id = 8, .transport = VGPU_CONNECT_LOCAL}, &c), -ENOENT);
}
END_TEST

static void gemm_naive(const float *a, const float *b, float *c, uint32_t m, uint32_t n, uint32_t k, float alpha)
{
        for (uint32_t i = 0; i < m; i++)
                for (uint32_t j = 0; j < n; j++) {
                        double s = 0;

                        for (uint32_t l = 0; l < k; l++)
                                s += (double)a[i * k + l] * b[l * n + j];
                        c[i * n + j] = (float)(alpha * s);
                }
}

START_TEST(test_gemm_through_the_channel_matches_a_naive_loop)
{
        enum { M = 37, N = 29, K = 50 };
        static float a[M * K], b[K * N], got[M * N], want[M * N];
        VgpuMemHandle ha, hb, hc;
        VgpuModuleHandle mod;
        VgpuFunctionHandle fn;
        VgpuClient *c;

        for (size_t i = 0; i < ELEMENTSOF(a); i++)
                a[i] = (float)((int)(i * 7 % 23) - 11) / 8.0f;
        for (size_t i = 0; i < ELEMENTSOF(b); i++)
                b[i] = (float)((int)(i * 5 % 17) - 8) / 4.0f;
        host_start(HOST_NORMAL);
        c = connect_vm7(1 << 20);
        ck_assert_int_eq(vgpu_mem_alloc(c, sizeof(a), &ha), 0);
        ck_assert_int_eq(vgpu_mem_alloc(c, sizeof(b), &hb), 0);
        ck_assert_int_eq(vgpu_mem_alloc(c, sizeof(got), &hc), 0);
        ck_assert_int_eq(vgpu_memcpy_htod(c, ha, 0, a, sizeof(a)), 0);
        ck_assert_int_eq(vgpu_memcpy_htod(c, hb, 0, b, sizeof(b)), 0);
        ck_assert_int_eq(vgpu_module_builtin(c, &mod), 0);
        ck_assert_int_eq(vgpu_get_function(c, mod, "gemm", &fn), 0);
        ck_assert_int_eq(vgpu_get_function(c, mod, "no-such-kernel", &(VgpuFunctionHandle){0}), VGPU_E_INVALID_ARGUMENT);
        VgpuParam p[] = {vgpu_param_buffer(ha, 0), vgpu_param_buffer(hb, 0), vgpu_param_buffer(hc, 0),
                         vgpu_param_u32(M),        vgpu_param_u32(N),        vgpu_param_u32(K),
                         vgpu_param_f32(0.5f),     vgpu_param_f32(0.0f),     vgpu_param_u32(0),
                         vgpu_param_u32(0)};
        ck_assert_int_eq(vgpu_launch(c, fn, VGPU_DIM3(1, 1, 1), VGPU_DIM3(1, 1, 1), 0, p, ELEMENTSOF(p)), 0);
        ck_assert_int_eq(vgpu_sync(c), 0);
        ck_assert_int_eq(vgpu_memcpy_dtoh(c, got, hc, 0, sizeof(got)), 0);
        gemm_naive(a, b, want, M, N, K, 0.5f);
        for (size_t i = 0; i < ELEMENTSOF(got); i++)
                ck_assert_msg(fabsf(got[i] - want[i]) <= 1e-4f * (1 + fabsf(want[i])), "C[%zu] = %g, want %g", i,
                              (double)got[i], (double)want[i]);
        vgpu_disconnect(c);
}
END_TEST

START_TEST(test_copies_larger_than_the_data_area_are_chunked)
{
        enum { SIZE = 1 << 20 };
        uint8_t *in = malloc(SIZE), *out = calloc(1, SIZE);
        VgpuStatsSnapshot s;
        VgpuMemHandle m;
        VgpuClient *c;

        for (size_t i = 0; i < SIZE; i++)
                in[i] = (uint8_t)(i * 131 + (i >> 11));
        host_start(HOST_NORMAL);
        c = connect_vm7(16 * 1024); /* 16 KiB of data area for 1 MiB each way */
        ck_assert_int_eq(vgpu_mem_alloc(c, SIZE, &m), 0);
        ck_assert_int_eq(vgpu_memcpy_htod(c, m, 0, in, SIZE), 0);
        ck_assert_int_eq(vgpu_memcpy_dtoh(c, out, m, 0, SIZE), 0);
        ck_assert_int_eq(memcmp(in, out, SIZE), 0);
        ck_assert_int_eq(vgpu_memcpy_dtoh(c, out, m, SIZE - 10, 20), VGPU_E_NO_SUCH_HANDLE); /* past the end */
        vgpu_client_counters(c, &s);
        ck_assert_uint_ge(s.chunks, 2 * (SIZE / (8 * 1024)));
        ck_assert_int_eq(vgpu_stats(c, &s), 0);
        ck_assert_uint_gt(s.host_requests, 256);
        vgpu_disconnect(c);
        free(in);
        free(out);
}
END_TEST

START_TEST(test_an_async_batch_costs_one_notification)
{
        VgpuStatsSnapshot before, after;
        VgpuMemHandle m;
        VgpuModuleHandle mod;
        VgpuFunctionHandle relu;
        VgpuClient *c;
        float x[64];

        host_start(HOST_NORMAL);
        c = connect_vm7(1 << 20);
        ck_assert_int_eq(vgpu_mem_alloc(c, 2 * sizeof(x), &m), 0);
        ck_assert_int_eq(vgpu_module_builtin(c, &mod), 0);
        ck_assert_int_eq(vgpu_get_function(c, mod, "relu", &relu), 0);
        usleep(100 * 1000); /* the host is asleep now: a batch must wake it exactly once */
        vgpu_client_counters(c, &before);
        for (int i = 0; i < 20; i++) {
                VgpuParam p[] = {vgpu_param_buffer(m, 0), vgpu_param_buffer(m, sizeof(x)), vgpu_param_u32(64)};

                ck_assert_int_eq(vgpu_memset(c, m, 0, 0xbf800000u /* -1.0f */, 4, sizeof(x)), 0);
                ck_assert_int_eq(vgpu_launch(c, relu, VGPU_DIM3(1, 1, 1), VGPU_DIM3(64, 1, 1), 0, p, 3), 0);
        }
        ck_assert_int_eq(vgpu_sync(c), 0);
        vgpu_client_counters(c, &after);
        ck_assert_uint_eq(after.requests - before.requests, 41);
        ck_assert_uint_eq(after.publishes - before.publishes, 1);
        ck_assert_uint_eq(after.notifications - before.notifications, 1);
        ck_assert_int_eq(vgpu_memcpy_dtoh(c, x, m, sizeof(x), sizeof(x)), 0);
        ck_assert(x[0] == 0.0f && x[63] == 0.0f);
        vgpu_disconnect(c);
}
END_TEST

START_TEST(test_a_refused_module_brings_back_the_hosts_reason)
{
        /* The host's reason comes back over the image's own bytes, so it is as long as the image at most. */
        static const char ptx[] = "// a guest's own module, refused by this host: there is room here for the reason\n"
                                  "// that comes back over it, as there is in any real module\n"
                                  ".version 8.0\n.target sm_90\nthis_is_not_ptx;\n";
        VgpuClient *c = NULL;
        VgpuModuleHandle module = 0;
        int r;

        host_start(HOST_NORMAL);
        ck_assert_int_eq(vgpu_connect(&(VgpuConnectOptions){.vm_id = 7}, &c), 0);
        r = vgpu_module_load(c, VGPU_IMAGE_PTX, ptx, strlen(ptx), &module);
        ck_assert_int_lt(r, 0);
        ck_assert_msg(strstr(vgpu_last_error(), "MODULE_LOAD (seq"), "%s", vgpu_last_error());
        ck_assert_msg(strstr(vgpu_last_error(), "Not a name of any known instruction: 'nope'?[0m"),
                      "the host's reason is missing or its escape character was passed on: %s", vgpu_last_error());
        ck_assert_uint_eq(module, 0);
        /* The channel stays usable. */
        ck_assert_int_eq(vgpu_module_builtin(c, &module), 0);
        vgpu_disconnect(c);
}
END_TEST

START_TEST(test_an_error_in_a_queued_op_is_reported_at_sync)
{
        VgpuFailure f;
        VgpuMemHandle m;
        VgpuClient *c;

        host_start(HOST_NORMAL);
        c = connect_vm7(1 << 20);
        ck_assert_int_eq(vgpu_mem_alloc(c, 64, &m), 0);
        ck_assert_int_eq(vgpu_memset(c, m, 0, 1, 4, 64), 0);
        ck_assert_int_eq(vgpu_memset(c, 0xdead, 0, 1, 4, 64), 0); /* queued: fails later */
        ck_assert_int_eq(vgpu_mem_free(c, m), 0);
        ck_assert_int_eq(vgpu_sync(c), VGPU_E_NO_SUCH_HANDLE);
        ck_assert_int_eq(vgpu_last_failure(c, &f), 0);
        ck_assert_str_eq(f.op, "MEMSET");
        ck_assert_uint_eq(f.opcode, 7);
        ck_assert_msg(strstr(vgpu_last_error(), "MEMSET (seq"), "%s", vgpu_last_error());
        ck_assert_int_eq(vgpu_sync(c), 0); /* reported once */
        vgpu_disconnect(c);
}
END_TEST

static Suite *libvgpu_suite(void)
{
        Suite *s = suite_create("libvgpu-ops");
        TCase *tc = tcase_create("client");

        tcase_add_checked_fixture(tc, host_fixture_setup, host_fixture_teardown);
        tcase_set_timeout(tc, WATCHDOG_S + 10);
        tcase_add_test(tc, test_connect_negotiates_version_over_the_vm_socket);
        tcase_add_test(tc, test_version_mismatch_is_refused_with_both_ranges);
        tcase_add_test(tc, test_no_socket_and_no_vm_are_refused_plainly);
        tcase_add_test(tc, test_gemm_through_the_channel_matches_a_naive_loop);
        tcase_add_test(tc, test_copies_larger_than_the_data_area_are_chunked);
        tcase_add_test(tc, test_an_async_batch_costs_one_notification);
        tcase_add_test(tc, test_a_refused_module_brings_back_the_hosts_reason);
        tcase_add_test(tc, test_an_error_in_a_queued_op_is_reported_at_sync);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(libvgpu_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
