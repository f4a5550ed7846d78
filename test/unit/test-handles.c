/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The executor's handle table: handles name exactly what they were issued for, in this table only, until
 * released; stale, foreign, wrong-kind and made-up values are misses; the table grows and stops at its bound. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "services/executor/handles.h"

static int objects[4096];

START_TEST(test_issued_handle_looks_up_its_object_until_released)
{
        HandleTable *t = NULL;
        uint64_t h;

        ck_assert_int_eq(handle_table_new(0x1234, 0, &t), 0);
        ck_assert_int_eq(handle_issue(t, HANDLE_MEMORY, &objects[0], &h), 0);
        ck_assert_uint_ne(h, 0);
        ck_assert_uint_eq(h >> 32, 0x1234);
        ck_assert_ptr_eq(handle_lookup(t, h, HANDLE_MEMORY), &objects[0]);
        ck_assert_uint_eq(handle_table_count(t), 1);
        ck_assert_ptr_eq(handle_release(t, h, HANDLE_MEMORY), &objects[0]);
        ck_assert_uint_eq(handle_table_count(t), 0);
        ck_assert_ptr_null(handle_lookup(t, h, HANDLE_MEMORY));
        ck_assert_ptr_null(handle_release(t, h, HANDLE_MEMORY));
        handle_table_free(t);
}
END_TEST

START_TEST(test_wrong_kind_foreign_and_made_up_handles_are_misses)
{
        HandleTable *a = NULL, *b = NULL;
        uint64_t ha, hb;

        ck_assert_int_eq(handle_table_new(0, 0, &a), 0);
        ck_assert_int_eq(handle_table_new(0, 0, &b), 0);
        ck_assert_uint_ne(handle_table_salt(a), 0);
        ck_assert_uint_ne(handle_table_salt(a), handle_table_salt(b)); /* 2^-32 odds of a false failure */
        ck_assert_int_eq(handle_issue(a, HANDLE_MEMORY, &objects[1], &ha), 0);
        ck_assert_int_eq(handle_issue(b, HANDLE_MEMORY, &objects[2], &hb), 0);
        /* The same slot and generation in both tables: only the salt tells them apart. */
        ck_assert_uint_eq(ha & 0xffffffff, hb & 0xffffffff);
        ck_assert_ptr_null(handle_lookup(a, hb, HANDLE_MEMORY));
        ck_assert_ptr_null(handle_lookup(b, ha, HANDLE_MEMORY));
        ck_assert_ptr_null(handle_lookup(a, ha, HANDLE_FUNCTION));
        ck_assert_ptr_null(handle_release(a, ha, HANDLE_MODULE));
        ck_assert_ptr_null(handle_lookup(a, 0, HANDLE_MEMORY));
        ck_assert_ptr_null(handle_lookup(a, UINT64_MAX, HANDLE_MEMORY));
        ck_assert_ptr_null(handle_lookup(a, ha + 1, HANDLE_MEMORY)); /* a slot never issued */
        ck_assert_ptr_null(handle_lookup(a, ha ^ (UINT64_C(1) << 20), HANDLE_MEMORY)); /* another generation */
        ck_assert_ptr_eq(handle_lookup(a, ha, HANDLE_MEMORY), &objects[1]);
        handle_table_free(a);
        handle_table_free(b);
}
END_TEST

START_TEST(test_reused_slot_gets_a_new_generation_so_stale_handles_stay_dead)
{
        HandleTable *t = NULL;
        uint64_t first, again;

        ck_assert_int_eq(handle_table_new(7, 1, &t), 0); /* one slot: every issue reuses it */
        ck_assert_int_eq(handle_issue(t, HANDLE_MEMORY, &objects[0], &first), 0);
        ck_assert_ptr_nonnull(handle_release(t, first, HANDLE_MEMORY));
        for (int i = 0; i < 5000; i++) { /* past the 12-bit wrap: generation 0 is skipped */
                ck_assert_int_eq(handle_issue(t, HANDLE_MEMORY, &objects[1], &again), 0);
                ck_assert_uint_ne(again, 0);
                ck_assert_uint_eq(again & 0xfffff, first & 0xfffff);
                if (i < 4094)
                        ck_assert_ptr_null(handle_lookup(t, first, HANDLE_MEMORY));
                ck_assert_ptr_nonnull(handle_release(t, again, HANDLE_MEMORY));
                ck_assert_ptr_null(handle_lookup(t, again, HANDLE_MEMORY));
        }
        handle_table_free(t);
}
END_TEST

START_TEST(test_freed_slots_are_reused_first_in_first_out)
{
        HandleTable *t = NULL;
        uint64_t h[3], n;

        ck_assert_int_eq(handle_table_new(9, 0, &t), 0);
        for (int i = 0; i < 3; i++)
                ck_assert_int_eq(handle_issue(t, HANDLE_MODULE, &objects[i], &h[i]), 0);
        ck_assert_ptr_nonnull(handle_release(t, h[1], HANDLE_MODULE));
        /* The slot freed last is reused only after every slot that was free before it. */
        for (unsigned i = 3; i < HANDLE_TABLE_INITIAL; i++) {
                ck_assert_int_eq(handle_issue(t, HANDLE_MODULE, &objects[i], &n), 0);
                ck_assert_uint_ne(n & 0xfffff, h[1] & 0xfffff);
        }
        ck_assert_int_eq(handle_issue(t, HANDLE_MODULE, &objects[99], &n), 0);
        ck_assert_uint_eq(n & 0xfffff, h[1] & 0xfffff);
        ck_assert_uint_ne(n, h[1]);
        handle_table_free(t);
}
END_TEST

START_TEST(test_table_grows_up_to_its_bound_then_refuses)
{
        HandleTable *t = NULL;
        uint64_t h[1000];

        ck_assert_int_eq(handle_table_new(0, 1000, &t), 0);
        for (int i = 0; i < 1000; i++) {
                ck_assert_int_eq(handle_issue(t, HANDLE_MEMORY, &objects[i], &h[i]), 0);
                for (int j = 0; j < i; j++)
                        ck_assert_uint_ne(h[i], h[j]);
        }
        ck_assert_uint_eq(handle_table_capacity(t), 1000);
        ck_assert_int_eq(handle_issue(t, HANDLE_MEMORY, &objects[0], &(uint64_t){0}), -ENOSPC);
        for (int i = 0; i < 1000; i++) /* growth moved the slots: every handle still finds its object */
                ck_assert_ptr_eq(handle_lookup(t, h[i], HANDLE_MEMORY), &objects[i]);
        for (int i = 0; i < 1000; i++)
                ck_assert_ptr_nonnull(handle_table_pop(t, NULL));
        ck_assert_ptr_null(handle_table_pop(t, NULL));
        ck_assert_uint_eq(handle_table_count(t), 0);
        handle_table_free(t);
        ck_assert_int_eq(handle_table_new(0, HANDLE_SLOTS_MAX + 1, &t), -EINVAL);
        ck_assert_int_eq(handle_issue(NULL, HANDLE_MEMORY, &objects[0], &(uint64_t){0}), -EINVAL);
}
END_TEST

static Suite *handles_suite(void)
{
        Suite *s = suite_create("handles");
        TCase *t = tcase_create("handles");

        tcase_add_test(t, test_issued_handle_looks_up_its_object_until_released);
        tcase_add_test(t, test_wrong_kind_foreign_and_made_up_handles_are_misses);
        tcase_add_test(t, test_reused_slot_gets_a_new_generation_so_stale_handles_stay_dead);
        tcase_add_test(t, test_freed_slots_are_reused_first_in_first_out);
        tcase_add_test(t, test_table_grows_up_to_its_bound_then_refuses);
        suite_add_tcase(s, t);
        return s;
}

int main(void)
{
        SRunner *r = srunner_create(handles_suite());
        int failed;

        srunner_run_all(r, CK_NORMAL);
        failed = srunner_ntests_failed(r);
        srunner_free(r);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
