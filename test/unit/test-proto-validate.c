/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Request validation: each rule refused with its own status, and the values at each boundary. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto-validate.h"
#include "vgpu-util.h"

#define DATA_SIZE UINT64_C(1048576)

static VgpuStatus check_req(const VgpuRequestDesc *d)
{
        VgpuRequest r;

        return vgpu_request_validate(d, DATA_SIZE, &r);
}

#define assert_status(d, want)                                                                                         \
        do {                                                                                                           \
                const VgpuRequestDesc _d = (d);                                                                        \
                VgpuStatus _got = check_req(&_d);                                                                      \
                ck_assert_msg(_got == (want), "line %d: got %s, want %s", __LINE__, vgpu_status_to_string(_got),       \
                              vgpu_status_to_string(want));                                                            \
        } while (0)

static VgpuRequestDesc copy_h2d(uint64_t data_offset, uint64_t length)
{
        return (VgpuRequestDesc){
                .opcode = VGPU_OP_COPY_H2D,
                .seq = 1,
                .u.copy_host = {.handle = 5, .offset = 0, .data_offset = data_offset, .length = length}};
}

static VgpuRequestDesc launch(uint32_t gx, uint32_t gy, uint32_t gz, uint32_t bx, uint32_t by, uint32_t bz)
{
        return (VgpuRequestDesc){.opcode = VGPU_OP_LAUNCH,
                                 .u.launch = {.function = 9, .grid = {gx, gy, gz}, .block = {bx, by, bz}}};
}

START_TEST(test_each_opcode_accepts_a_well_formed_request)
{
        const VgpuRequestDesc good[] = {
                {.opcode = VGPU_OP_HELLO, .u.hello = {.version_min = 1, .version_max = 3, .features = 0xff}},
                {.opcode = VGPU_OP_MEM_ALLOC, .u.mem_alloc = {.size = 4096}},
                {.opcode = VGPU_OP_MEM_FREE, .u.mem_free = {.handle = 7}},
                copy_h2d(0, 4096),
                {.opcode = VGPU_OP_COPY_D2H, .u.copy_host = {.handle = 5, .data_offset = 64, .length = 64}},
                {.opcode = VGPU_OP_COPY_D2D, .u.copy_d2d = {.dst_handle = 1, .src_handle = 2, .length = 8}},
                {.opcode = VGPU_OP_MEMSET, .u.memset = {.handle = 1, .length = 16, .value = 0xff, .element_size = 1}},
                {.opcode = VGPU_OP_MODULE_LOAD, .u.module_load = {.format = VGPU_MODULE_PTX, .length = 100}},
                {.opcode = VGPU_OP_GET_FUNCTION, .u.get_function = {.module = 3, .name_length = 4}},
                launch(1, 1, 1, 256, 1, 1),
                {.opcode = VGPU_OP_SYNC},
                {.opcode = VGPU_OP_STATS, .u.stats = {.length = sizeof(VgpuStats)}},
        };

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                VgpuRequest r;
                VgpuStatus s = vgpu_request_validate(&good[i], DATA_SIZE, &r);
                ck_assert_msg(s == VGPU_STATUS_OK, "%s refused: %s", vgpu_opcode_to_string(good[i].opcode),
                              vgpu_status_to_string(s));
                ck_assert_int_eq(r.opcode, good[i].opcode);
        }
}
END_TEST

START_TEST(test_unknown_opcodes_are_refused)
{
        static const uint16_t bad[] = {0, _VGPU_OP_MAX, 0x100, 0xffff};

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_status(((VgpuRequestDesc){.opcode = bad[i]}), VGPU_STATUS_UNKNOWN_OPCODE);
}
END_TEST

START_TEST(test_reserved_fields_and_unused_operand_bytes_must_be_zero)
{
        VgpuRequestDesc d = {.opcode = VGPU_OP_SYNC};

        d.flags = 1;
        assert_status(d, VGPU_STATUS_INVALID_ARGUMENT);
        d.flags = 0, d.reserved = 0x80000000u;
        assert_status(d, VGPU_STATUS_INVALID_ARGUMENT);
        d.reserved = 0, d.u.raw[47] = 1;
        assert_status(d, VGPU_STATUS_INVALID_ARGUMENT);

        d = (VgpuRequestDesc){.opcode = VGPU_OP_MEM_FREE, .u.mem_free = {.handle = 1}};
        d.u.raw[8] = 1; /* first byte after the handle */
        assert_status(d, VGPU_STATUS_INVALID_ARGUMENT);
        d = (VgpuRequestDesc){.opcode = VGPU_OP_MEM_ALLOC, .u.mem_alloc = {.size = 1, .flags = 2}};
        assert_status(d, VGPU_STATUS_INVALID_ARGUMENT);
        d = (VgpuRequestDesc){.opcode = VGPU_OP_MEMSET,
                              .u.memset = {.handle = 1, .length = 4, .element_size = 1, .reserved = {0, 1}}};
        assert_status(d, VGPU_STATUS_INVALID_ARGUMENT);
        d = launch(1, 1, 1, 1, 1, 1);
        d.u.launch.reserved = 1;
        assert_status(d, VGPU_STATUS_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_data_ranges_may_end_exactly_at_the_end_of_the_data_area)
{
        assert_status(copy_h2d(DATA_SIZE - 4096, 4096), VGPU_STATUS_OK);
        assert_status(copy_h2d(0, DATA_SIZE), VGPU_STATUS_OK);
        assert_status(copy_h2d(DATA_SIZE - 4095, 4096), VGPU_STATUS_OUT_OF_BOUNDS);
        assert_status(copy_h2d(0, DATA_SIZE + 1), VGPU_STATUS_OUT_OF_BOUNDS);
        assert_status(copy_h2d(DATA_SIZE, 1), VGPU_STATUS_OUT_OF_BOUNDS);
}
END_TEST

START_TEST(test_ranges_whose_end_overflows_uint64_are_refused)
{
        VgpuRequestDesc d;

        /* offset + length wraps to a small number that would pass a naive `offset + length <= size`. */
        assert_status(copy_h2d(UINT64_MAX - 15, 32), VGPU_STATUS_OUT_OF_BOUNDS);
        d = (VgpuRequestDesc){.opcode = VGPU_OP_MODULE_LOAD,
                              .u.module_load = {.format = VGPU_MODULE_CUBIN, .data_offset = UINT64_MAX, .length = 2}};
        assert_status(d, VGPU_STATUS_OUT_OF_BOUNDS);
        d = (VgpuRequestDesc){.opcode = VGPU_OP_STATS, .u.stats = {.data_offset = 64, .length = UINT64_MAX}};
        assert_status(d, VGPU_STATUS_OUT_OF_BOUNDS);
        /* Device-side ranges: the end must be representable, whatever the allocation. */
        d = (VgpuRequestDesc){
                .opcode = VGPU_OP_COPY_D2D,
                .u.copy_d2d = {.dst_handle = 1, .dst_offset = UINT64_MAX - 3, .src_handle = 2, .length = 8}};
        assert_status(d, VGPU_STATUS_OUT_OF_BOUNDS);
        d = (VgpuRequestDesc){.opcode = VGPU_OP_MEMSET,
                              .u.memset = {.handle = 1, .offset = UINT64_MAX - 3, .length = 8, .element_size = 4}};
        assert_status(d, VGPU_STATUS_OUT_OF_BOUNDS);
        d = copy_h2d(0, 16);
        d.u.copy_host.offset = UINT64_MAX - 7;
        assert_status(d, VGPU_STATUS_OUT_OF_BOUNDS);
}
END_TEST

START_TEST(test_null_handles_are_no_such_handle)
{
        VgpuRequestDesc d = copy_h2d(0, 16);

        d.u.copy_host.handle = VGPU_HANDLE_NULL;
        assert_status(d, VGPU_STATUS_NO_SUCH_HANDLE);
        assert_status(((VgpuRequestDesc){.opcode = VGPU_OP_MEM_FREE}), VGPU_STATUS_NO_SUCH_HANDLE);
        assert_status(((VgpuRequestDesc){.opcode = VGPU_OP_GET_FUNCTION, .u.get_function = {.name_length = 1}}),
                      VGPU_STATUS_NO_SUCH_HANDLE);
        d = launch(1, 1, 1, 1, 1, 1);
        d.u.launch.function = 0;
        assert_status(d, VGPU_STATUS_NO_SUCH_HANDLE);
        d = (VgpuRequestDesc){.opcode = VGPU_OP_COPY_D2D, .u.copy_d2d = {.dst_handle = 1, .length = 8}};
        assert_status(d, VGPU_STATUS_NO_SUCH_HANDLE);
}
END_TEST

START_TEST(test_sizes_outside_their_limits_are_invalid)
{
        assert_status(((VgpuRequestDesc){.opcode = VGPU_OP_MEM_ALLOC}), VGPU_STATUS_INVALID_ARGUMENT);
        assert_status(((VgpuRequestDesc){.opcode = VGPU_OP_MEM_ALLOC, .u.mem_alloc = {.size = VGPU_MEM_ALLOC_MAX}}),
                      VGPU_STATUS_OK);
        assert_status(((VgpuRequestDesc){.opcode = VGPU_OP_MEM_ALLOC, .u.mem_alloc = {.size = VGPU_MEM_ALLOC_MAX + 1}}),
                      VGPU_STATUS_INVALID_ARGUMENT);
        assert_status(copy_h2d(0, 0), VGPU_STATUS_INVALID_ARGUMENT);
        assert_status(((VgpuRequestDesc){.opcode = VGPU_OP_MODULE_LOAD, .u.module_load = {.format = 1}}),
                      VGPU_STATUS_INVALID_ARGUMENT);
        assert_status(((VgpuRequestDesc){.opcode = VGPU_OP_MODULE_LOAD, .u.module_load = {.format = 4, .length = 1}}),
                      VGPU_STATUS_INVALID_ARGUMENT);
        assert_status(((VgpuRequestDesc){.opcode = VGPU_OP_MODULE_LOAD,
                                         .u.module_load = {.format = 1, .length = VGPU_MODULE_SIZE_MAX + 1}}),
                      VGPU_STATUS_INVALID_ARGUMENT);
        assert_status(((VgpuRequestDesc){.opcode = VGPU_OP_GET_FUNCTION,
                                         .u.get_function = {.module = 1, .name_length = VGPU_FUNCTION_NAME_MAX}}),
                      VGPU_STATUS_OK);
        assert_status(((VgpuRequestDesc){.opcode = VGPU_OP_GET_FUNCTION,
                                         .u.get_function = {.module = 1, .name_length = VGPU_FUNCTION_NAME_MAX + 1}}),
                      VGPU_STATUS_INVALID_ARGUMENT);
        assert_status(((VgpuRequestDesc){.opcode = VGPU_OP_STATS, .u.stats = {.length = sizeof(VgpuStats) - 1}}),
                      VGPU_STATUS_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_memset_elements_are_aligned_and_values_fit)
{
        VgpuRequestDesc d = {.opcode = VGPU_OP_MEMSET, .u.memset = {.handle = 1, .length = 8, .element_size = 2}};

        d.u.memset.value = 0xffff;
        assert_status(d, VGPU_STATUS_OK);
        d.u.memset.value = 0x10000;
        assert_status(d, VGPU_STATUS_INVALID_ARGUMENT);
        d.u.memset.value = 0, d.u.memset.offset = 1;
        assert_status(d, VGPU_STATUS_INVALID_ARGUMENT);
        d.u.memset.offset = 0, d.u.memset.length = 7;
        assert_status(d, VGPU_STATUS_INVALID_ARGUMENT);
        d.u.memset.length = 8, d.u.memset.element_size = 3;
        assert_status(d, VGPU_STATUS_INVALID_ARGUMENT);
        d.u.memset.element_size = 4, d.u.memset.value = UINT32_MAX;
        assert_status(d, VGPU_STATUS_OK);
}
END_TEST

START_TEST(test_launch_dimensions_follow_cuda_limits)
{
        VgpuRequestDesc d;

        assert_status(launch(VGPU_GRID_X_MAX, 65535, 65535, 1024, 1, 1), VGPU_STATUS_OK);
        assert_status(launch(1, 1, 1, 1, 1, 64), VGPU_STATUS_OK);
        assert_status(launch(1, 1, 1, 32, 32, 1), VGPU_STATUS_OK);

        static const uint32_t bad[][6] = {
                {0, 1, 1, 1, 1, 1},     {1, 0, 1, 1, 1, 1},    {1, 1, 0, 1, 1, 1},           {1, 1, 1, 0, 1, 1},
                {1, 1, 1, 1, 0, 1},     {1, 1, 1, 1, 1, 0},    {0x80000000u, 1, 1, 1, 1, 1}, {1, 65536, 1, 1, 1, 1},
                {1, 1, 65536, 1, 1, 1}, {1, 1, 1, 1025, 1, 1}, {1, 1, 1, 1, 1025, 1},        {1, 1, 1, 1, 1, 65},
                {1, 1, 1, 32, 32, 2}, /* 2048 threads */
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                d = launch(bad[i][0], bad[i][1], bad[i][2], bad[i][3], bad[i][4], bad[i][5]);
                ck_assert_msg(check_req(&d) == VGPU_STATUS_INVALID_ARGUMENT, "dims case %zu accepted", i);
        }

        d = launch(1, 1, 1, 1, 1, 1);
        d.u.launch.shared_mem = VGPU_SHARED_MEM_MAX;
        assert_status(d, VGPU_STATUS_OK);
        d.u.launch.shared_mem = VGPU_SHARED_MEM_MAX + 1;
        assert_status(d, VGPU_STATUS_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_launch_parameter_arrays_are_counted_and_bounded)
{
        VgpuRequestDesc d = launch(1, 1, 1, 1, 1, 1);
        VgpuRequest r;

        d.u.launch.param_count = VGPU_LAUNCH_PARAMS_MAX;
        d.u.launch.params_offset = DATA_SIZE - VGPU_LAUNCH_PARAMS_MAX * sizeof(VgpuLaunchParam);
        ck_assert_int_eq(vgpu_request_validate(&d, DATA_SIZE, &r), VGPU_STATUS_OK);
        ck_assert_uint_eq(r.u.launch.params.length, VGPU_LAUNCH_PARAMS_MAX * sizeof(VgpuLaunchParam));
        d.u.launch.params_offset += 1;
        assert_status(d, VGPU_STATUS_OUT_OF_BOUNDS);
        d.u.launch.params_offset = 0, d.u.launch.param_count = VGPU_LAUNCH_PARAMS_MAX + 1;
        assert_status(d, VGPU_STATUS_INVALID_ARGUMENT);
        d.u.launch.param_count = 0, d.u.launch.params_offset = 64;
        assert_status(d, VGPU_STATUS_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_launch_parameters_are_checked_one_by_one)
{
        VgpuKernelParam out[4];
        VgpuLaunchParam p[2] = {
                {.kind = VGPU_PARAM_BUFFER, .size = 8, .value = 42, .offset = 128},
                {.kind = VGPU_PARAM_VALUE, .size = 4, .value = 0xdeadbeef},
        };

        ck_assert_int_eq(vgpu_launch_params_validate(p, 2, DATA_SIZE, out), VGPU_STATUS_OK);
        ck_assert_uint_eq(out[0].value, 42);
        ck_assert_uint_eq(out[0].offset, 128);

        static const struct {
                VgpuLaunchParam p;
                VgpuStatus want;
        } cases[] = {
                {{.kind = 0, .size = 4}, VGPU_STATUS_INVALID_ARGUMENT},
                {{.kind = 9, .size = 4}, VGPU_STATUS_INVALID_ARGUMENT},
                {{.kind = VGPU_PARAM_VALUE, .size = 3}, VGPU_STATUS_INVALID_ARGUMENT},
                {{.kind = VGPU_PARAM_VALUE, .size = 2, .value = 0x10000}, VGPU_STATUS_INVALID_ARGUMENT},
                {{.kind = VGPU_PARAM_VALUE, .size = 8, .value = UINT64_MAX}, VGPU_STATUS_OK},
                {{.kind = VGPU_PARAM_VALUE, .size = 4, .reserved = {1}}, VGPU_STATUS_INVALID_ARGUMENT},
                {{.kind = VGPU_PARAM_BUFFER, .size = 8}, VGPU_STATUS_NO_SUCH_HANDLE},
                {{.kind = VGPU_PARAM_BUFFER, .size = 4, .value = 1}, VGPU_STATUS_INVALID_ARGUMENT},
                {{.kind = VGPU_PARAM_BUFFER, .size = 8, .value = 1, .offset = UINT64_MAX}, VGPU_STATUS_OUT_OF_BOUNDS},
                {{.kind = VGPU_PARAM_BYTES, .size = 16, .value = DATA_SIZE - 16}, VGPU_STATUS_OK},
                {{.kind = VGPU_PARAM_BYTES, .size = 16, .value = DATA_SIZE - 15}, VGPU_STATUS_OUT_OF_BOUNDS},
                {{.kind = VGPU_PARAM_BYTES, .size = 16, .value = UINT64_MAX - 7}, VGPU_STATUS_OUT_OF_BOUNDS},
                {{.kind = VGPU_PARAM_BYTES, .size = 0}, VGPU_STATUS_INVALID_ARGUMENT},
                {{.kind = VGPU_PARAM_BYTES, .size = VGPU_LAUNCH_PARAM_BYTES_MAX + 1}, VGPU_STATUS_INVALID_ARGUMENT},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                VgpuStatus s = vgpu_launch_params_validate(&cases[i].p, 1, DATA_SIZE, out);
                ck_assert_msg(s == cases[i].want, "param case %zu: got %s, want %s", i, vgpu_status_to_string(s),
                              vgpu_status_to_string(cases[i].want));
        }
}
END_TEST

START_TEST(test_launch_parameters_add_up_to_at_most_the_cuda_limit)
{
        static VgpuLaunchParam p[VGPU_LAUNCH_PARAMS_MAX];
        static VgpuKernelParam out[VGPU_LAUNCH_PARAMS_MAX];

        /* 7 × 4096 + 4092 = 32764 bytes: exactly the limit. */
        for (size_t i = 0; i < 8; i++)
                p[i] = (VgpuLaunchParam){.kind = VGPU_PARAM_BYTES, .size = 4096, .value = 0};
        p[7].size = 4092;
        ck_assert_int_eq(vgpu_launch_params_validate(p, 8, DATA_SIZE, out), VGPU_STATUS_OK);
        p[7].size = 4093;
        ck_assert_int_eq(vgpu_launch_params_validate(p, 8, DATA_SIZE, out), VGPU_STATUS_INVALID_ARGUMENT);
        ck_assert_int_eq(vgpu_launch_params_validate(p, VGPU_LAUNCH_PARAMS_MAX + 1, DATA_SIZE, out),
                         VGPU_STATUS_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_hello_picks_the_highest_common_version_or_refuses)
{
        uint16_t v = 0;

        ck_assert_int_eq(vgpu_hello_negotiate(1, 7, &v), VGPU_STATUS_OK);
        ck_assert_uint_eq(v, VGPU_PROTOCOL_VERSION_MAX);
        ck_assert_int_eq(vgpu_hello_negotiate(VGPU_PROTOCOL_VERSION_MAX + 1, 9, &v), VGPU_STATUS_VERSION_MISMATCH);
        ck_assert_uint_eq(v, VGPU_PROTOCOL_VERSION_MAX); /* tells the guest what the host speaks */
        ck_assert_int_eq(vgpu_hello_negotiate(0, 1, &v), VGPU_STATUS_INVALID_ARGUMENT);
        ck_assert_int_eq(vgpu_hello_negotiate(3, 2, &v), VGPU_STATUS_INVALID_ARGUMENT);
        assert_status(((VgpuRequestDesc){.opcode = VGPU_OP_HELLO, .u.hello = {.version_min = 2, .version_max = 1}}),
                      VGPU_STATUS_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_a_refused_request_leaves_the_output_untouched)
{
        VgpuRequestDesc d = copy_h2d(DATA_SIZE, 1);
        VgpuRequest r;

        memset(&r, 0x77, sizeof(r));
        ck_assert_int_eq(vgpu_request_validate(&d, DATA_SIZE, &r), VGPU_STATUS_OUT_OF_BOUNDS);
        ck_assert_uint_eq(r.seq, UINT64_C(0x7777777777777777));
}
END_TEST

START_TEST(test_every_status_and_opcode_has_a_name)
{
        for (int s = 0; s < _VGPU_STATUS_MAX; s++)
                ck_assert_msg(vgpu_status_to_string(s), "status %d has no name", s);
        for (int op = 1; op < _VGPU_OP_MAX; op++)
                ck_assert_msg(vgpu_opcode_to_string(op), "opcode %d has no name", op);
        ck_assert_ptr_null(vgpu_status_to_string(_VGPU_STATUS_MAX));
        ck_assert_ptr_null(vgpu_opcode_to_string(0));
}
END_TEST

int main(void)
{
        Suite *s = suite_create("proto-validate");
        TCase *tc = tcase_create("proto-validate");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_each_opcode_accepts_a_well_formed_request);
        tcase_add_test(tc, test_unknown_opcodes_are_refused);
        tcase_add_test(tc, test_reserved_fields_and_unused_operand_bytes_must_be_zero);
        tcase_add_test(tc, test_data_ranges_may_end_exactly_at_the_end_of_the_data_area);
        tcase_add_test(tc, test_ranges_whose_end_overflows_uint64_are_refused);
        tcase_add_test(tc, test_null_handles_are_no_such_handle);
        tcase_add_test(tc, test_sizes_outside_their_limits_are_invalid);
        tcase_add_test(tc, test_memset_elements_are_aligned_and_values_fit);
        tcase_add_test(tc, test_launch_dimensions_follow_cuda_limits);
        tcase_add_test(tc, test_launch_parameter_arrays_are_counted_and_bounded);
        tcase_add_test(tc, test_launch_parameters_are_checked_one_by_one);
        tcase_add_test(tc, test_launch_parameters_add_up_to_at_most_the_cuda_limit);
        tcase_add_test(tc, test_hello_picks_the_highest_common_version_or_refuses);
        tcase_add_test(tc, test_a_refused_request_leaves_the_output_untouched);
        tcase_add_test(tc, test_every_status_and_opcode_has_a_name);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
