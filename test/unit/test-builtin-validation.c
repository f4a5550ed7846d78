/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu.builtin's validation: every lie is refused (sizes, zero or out-of-domain parameters, overflowing
 * products, overlapping outputs, wrong argument lists), a refused launch touches no memory, and an accepted
 * one stays inside buffers that end at a guard page. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "builtin-launch.h"

START_TEST(test_every_buffer_one_float_short_is_out_of_bounds)
{
        for (size_t ki = 0; ki < ELEMENTSOF(kernels); ki++)
                for (int t = 0; t < 20; t++) {
                        Launch l = launch_new(kernels[ki], true);

                        ck_assert_msg(validate(&l) == VGPU_STATUS_OK, "%s: exact sizes refused", kernels[ki]);
                        for (size_t i = 0; i < l.n; i++) {
                                if (l.k->signature[i] != 'b' || l.floats[i] == 0)
                                        continue;
                                l.args[i].size -= sizeof(float);
                                ck_assert_msg(validate(&l) == VGPU_STATUS_OUT_OF_BOUNDS, "%s: %s one float short accepted",
                                              kernels[ki], l.k->params[i]);
                                l.args[i].size += sizeof(float);
                        }
                        launch_free(&l);
                }
}
END_TEST

/* Parameters for which 0 is a meaning, not a missing dimension. */
static bool zero_allowed(const char *p)
{
        static const char *const names[] = { "transA", "transB", "b_mode", "pad_h", "pad_w", "has_bias" };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(p, names[i]))
                        return true;
        return false;
}

START_TEST(test_zero_dimensions_strides_and_dilations_are_refused)
{
        for (size_t ki = 0; ki < ELEMENTSOF(kernels); ki++) {
                Launch l = launch_new(kernels[ki], true);

                for (size_t i = 0; i < l.n; i++) {
                        uint32_t saved = l.args[i].u32;

                        if (l.k->signature[i] != 'u' || zero_allowed(l.k->params[i]))
                                continue;
                        l.args[i].u32 = 0;
                        ck_assert_msg(validate(&l) == VGPU_STATUS_INVALID_ARGUMENT, "%s: %s = 0 accepted", kernels[ki],
                                      l.k->params[i]);
                        l.args[i].u32 = saved;
                }
                launch_free(&l);
        }
}
END_TEST

static void expect(Launch *l, const char *param, uint32_t v, VgpuStatus status)
{
        uint32_t saved = U(l, param);

        set(l, param, v);
        ck_assert_msg(validate(l) == status, "%s: %s = %u not answered %d", l->k->name, param, v, status);
        set(l, param, saved);
}

START_TEST(test_out_of_domain_parameters_and_overflowing_products_are_refused)
{
        Launch g = launch_new("gemm", true), c = launch_new("conv2d", true), p = launch_new("maxpool2d", true);
        Launch b = launch_new("bias_add", true), a = launch_new("add", true);

        expect(&g, "K", BUILTIN_GEMM_K_MAX + 1, VGPU_STATUS_INVALID_ARGUMENT);
        expect(&g, "transA", 2, VGPU_STATUS_INVALID_ARGUMENT);
        expect(&g, "transB", UINT32_MAX, VGPU_STATUS_INVALID_ARGUMENT);
        expect(&g, "M", UINT32_MAX, VGPU_STATUS_OUT_OF_BOUNDS);
        set(&g, "K", 1 << 20), expect(&g, "N", 1 << 13, VGPU_STATUS_INVALID_ARGUMENT); /* a row past 2^32 */
        expect(&a, "b_mode", 4, VGPU_STATUS_INVALID_ARGUMENT);
        expect(&c, "has_bias", 2, VGPU_STATUS_INVALID_ARGUMENT);
        expect(&c, "pad_h", U(&c, "dil_h") * (U(&c, "KH") - 1) + 1, VGPU_STATUS_INVALID_ARGUMENT);
        expect(&c, "KW", U(&c, "W") + 2 * U(&c, "pad_w") + 1, VGPU_STATUS_INVALID_ARGUMENT);
        expect(&p, "pad_w", U(&p, "KW") / 2 + 1, VGPU_STATUS_INVALID_ARGUMENT);
        expect(&p, "KH", U(&p, "H") + 2 * U(&p, "pad_h") + 1, VGPU_STATUS_INVALID_ARGUMENT);
        /* N*C*H*W of four u32s overflows uint64: refused as a lie, not wrapped into a small size. */
        set(&c, "N", UINT32_MAX), set(&c, "C", UINT32_MAX), set(&c, "H", UINT32_MAX);
        expect(&c, "W", UINT32_MAX, VGPU_STATUS_INVALID_ARGUMENT);
        set(&p, "N", UINT32_MAX), set(&p, "C", UINT32_MAX), set(&p, "H", UINT32_MAX);
        expect(&p, "W", UINT32_MAX, VGPU_STATUS_INVALID_ARGUMENT);
        set(&b, "N", UINT32_MAX), set(&b, "C", UINT32_MAX), set(&b, "HW", UINT32_MAX);
        ck_assert_int_eq(validate(&b), VGPU_STATUS_INVALID_ARGUMENT);
        launch_free(&g), launch_free(&c), launch_free(&p), launch_free(&b), launch_free(&a);
}
END_TEST

START_TEST(test_outputs_may_not_overlap_inputs_except_exactly_in_place)
{
        Launch g = launch_new("gemm", true), r = launch_new("relu", true), s = launch_new("softmax", true);
        Launch c = launch_new("conv2d", true), a = launch_new("add", true);
        float *x = F(&s, "X");
        double sum = 0;

        /* Validation only, never run: claimed sizes large enough that overlap is what gets refused. */
        g.args[idx(&g, "C")] = (BuiltinArg) { .data = F(&g, "A"), .size = 1u << 30 };
        ck_assert_int_eq(validate(&g), VGPU_STATUS_INVALID_ARGUMENT);
        c.args[idx(&c, "Y")] = (BuiltinArg) { .data = F(&c, "X"), .size = 1u << 30 };
        ck_assert_int_eq(validate(&c), VGPU_STATUS_INVALID_ARGUMENT);
        r.args[idx(&r, "Y")] = r.args[idx(&r, "X")];
        ck_assert_int_eq(validate(&r), VGPU_STATUS_OK);
        r.args[idx(&r, "Y")].data = F(&r, "X") + 1; /* shifted by one: overlaps, not the same range */
        if (U(&r, "n") > 1)
                ck_assert_int_eq(validate(&r), VGPU_STATUS_INVALID_ARGUMENT);
        set(&a, "b_mode", 1), a.args[idx(&a, "B")].size = 1u << 30;
        a.args[idx(&a, "Y")] = (BuiltinArg) { .data = F(&a, "B"), .size = 1u << 30 };
        ck_assert_int_eq(validate(&a), VGPU_STATUS_INVALID_ARGUMENT); /* a broadcast B is read by every row */
        s.args[idx(&s, "Y")] = s.args[idx(&s, "X")];
        launch_run(&s, 0, U(&s, "rows"));
        for (uint32_t i = 0; i < U(&s, "cols"); i++)
                sum += x[i];
        ck_assert_msg(fabs(sum - 1.0) < 1e-5, "softmax in place: row sums to %g", sum);
        launch_free(&g), launch_free(&r), launch_free(&s), launch_free(&c), launch_free(&a);
}
END_TEST

START_TEST(test_registry_finds_exact_names_and_checks_the_argument_list)
{
        Launch l = launch_new("relu", true);
        BuiltinArg moved = l.args[0];
        const char *reason = NULL;

        ck_assert_uint_eq(builtin_count(), ELEMENTSOF(kernels));
        for (size_t i = 0; i < builtin_count(); i++) {
                const BuiltinKernel *k = builtin_get(i);
                size_t n = strlen(k->signature);

                ck_assert_ptr_eq(builtin_find(k->name, strlen(k->name)), k);
                ck_assert_msg(n <= BUILTIN_ARGS_MAX && k->params[n - 1] && (n == BUILTIN_ARGS_MAX || !k->params[n]),
                              "%s: signature and parameter names disagree", k->name);
                ck_assert_msg(strspn(k->signature, "buif") == n, "%s: unknown kind in signature", k->name);
        }
        ck_assert_ptr_null(builtin_get(builtin_count()));
        ck_assert_ptr_null(builtin_find("gem", 3));
        ck_assert_ptr_null(builtin_find("gemmx", 5));
        ck_assert_ptr_nonnull(builtin_find("gemm\0junk", 4)); /* wire names carry no NUL */
        ck_assert_int_eq(builtin_validate(l.k, l.args, l.n - 1, &reason), VGPU_STATUS_INVALID_ARGUMENT);
        l.args[0].data = (uint8_t *) moved.data + 2;
        ck_assert_int_eq(builtin_validate(l.k, l.args, l.n, &reason), VGPU_STATUS_INVALID_ARGUMENT); /* unaligned */
        l.args[0].data = NULL;
        ck_assert_int_eq(builtin_validate(l.k, l.args, l.n, &reason), VGPU_STATUS_INVALID_ARGUMENT);
        l.args[0] = moved;
        ck_assert_int_eq(builtin_run(l.k, l.args, l.n, 0, U(&l, "n") + 1, &reason), VGPU_STATUS_OUT_OF_BOUNDS);
        ck_assert_int_eq(builtin_run(l.k, l.args, l.n, 2, 1, &reason), VGPU_STATUS_OUT_OF_BOUNDS);
        launch_free(&l);
}
END_TEST

/* Random lies over exact-size buffers: whatever is accepted must stay inside (guard pages catch any stray
 * access), and whatever is refused must touch no byte (every buffer is PROT_NONE while it is refused). */
START_TEST(test_lies_are_refused_without_touching_memory_and_accepted_launches_stay_inside)
{
        static const uint32_t lies[] = { 0, 1, 2, 3, 0x7fffffff, 0x80000000, UINT32_MAX, 1u << 24, (1u << 24) + 1 };
        const char *name = kernels[_i];
        unsigned refused = 0;

        for (int t = 0; t < 300; t++) {
                Launch l = launch_new(name, t % 2);
                size_t i = rnd(0, l.n - 1);
                const char *reason = NULL;
                VgpuStatus r;

                if (l.k->signature[i] == 'b')
                        l.args[i].size = l.args[i].size >= 4 ? l.args[i].size - rnd(1, 4) : 0;
                else if (l.k->signature[i] == 'u')
                        l.args[i].u32 = rnd(0, 1) ? lies[rnd(0, ELEMENTSOF(lies) - 1)] : l.args[i].u32 + rnd(1, 3);
                r = validate(&l);
                if (r != VGPU_STATUS_OK) {
                        refused++;
                        launch_protect(&l, PROT_NONE);
                        ck_assert_int_eq(builtin_run(l.k, l.args, l.n, 0, 1, &reason), r);
                        launch_protect(&l, PROT_READ | PROT_WRITE);
                } else
                        launch_run(&l, 0, l.k->work_items(l.args));
                launch_free(&l);
        }
        ck_assert_msg(refused > 30, "%s: only %u of 300 lies refused; the mutations are too weak", name, refused);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("builtin-validation");
        TCase *tc = tcase_create("builtin-validation");
        SRunner *sr;
        int failed;

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_every_buffer_one_float_short_is_out_of_bounds);
        tcase_add_test(tc, test_zero_dimensions_strides_and_dilations_are_refused);
        tcase_add_test(tc, test_out_of_domain_parameters_and_overflowing_products_are_refused);
        tcase_add_test(tc, test_outputs_may_not_overlap_inputs_except_exactly_in_place);
        tcase_add_test(tc, test_registry_finds_exact_names_and_checks_the_argument_list);
        tcase_add_loop_test(tc, test_lies_are_refused_without_touching_memory_and_accepted_launches_stay_inside, 0,
                            ELEMENTSOF(kernels));
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
