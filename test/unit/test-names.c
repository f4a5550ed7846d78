/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The domain's names and values: the one set of rules the CLI, the services and the database share. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "names.h"
#include "vgpu-util.h"

START_TEST(test_pool_ids_follow_the_bus_and_unit_name_grammar)
{
        static const char *const good[] = { "A", "B", "z", "Pool_1", "A234567890123456", "gpu0_mig3" };
        static const char *const bad[] = { "", "1A", "_A", "A-B", "A.B", "A B", "A2345678901234567", "Ä", "A/B",
                                           "A\n" };

        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                ck_assert_msg(pool_id_is_valid(good[i]), "'%s' should be a valid pool id", good[i]);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(!pool_id_is_valid(bad[i]), "'%s' should be refused", bad[i]);
        ck_assert(!pool_id_is_valid(NULL));
}
END_TEST

START_TEST(test_priorities_are_high_medium_low_only)
{
        ck_assert_int_eq(priority_from_string("high"), PRIORITY_HIGH);
        ck_assert_int_eq(priority_from_string("medium"), PRIORITY_MEDIUM);
        ck_assert_int_eq(priority_from_string("low"), PRIORITY_LOW);
        ck_assert_int_eq(priority_from_string("HIGH"), _PRIORITY_INVALID);
        ck_assert_int_eq(priority_from_string("urgent"), _PRIORITY_INVALID);
        ck_assert_int_eq(priority_from_string(""), _PRIORITY_INVALID);
        ck_assert_str_eq(priority_to_string(PRIORITY_MEDIUM), "medium");
        ck_assert_ptr_null(priority_to_string(_PRIORITY_MAX));
        ck_assert(PRIORITY_HIGH < PRIORITY_MEDIUM && PRIORITY_MEDIUM < PRIORITY_LOW); /* queue order */
}
END_TEST

START_TEST(test_vm_ids_are_positive_decimal_integers_within_range)
{
        static const char *const bad[] = { "", "0", "-1", "+1", " 1", "1 ", "01", "1.0", "abc", "0x10", "2147483648",
                                           "99999999999999999999" };
        uint32_t id = 0;

        ck_assert_int_eq(vm_id_parse("1", &id), 0);
        ck_assert_uint_eq(id, 1);
        ck_assert_int_eq(vm_id_parse("2147483647", &id), 0);
        ck_assert_uint_eq(id, 2147483647u);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(vm_id_parse(bad[i], &id) < 0, "'%s' should be refused", bad[i]);
        ck_assert_int_eq(vm_id_parse("2147483648", &id), -ERANGE);
}
END_TEST

START_TEST(test_uuids_are_canonical_and_normalized_to_lowercase)
{
        char out[UUID_STRING_LEN + 1];

        ck_assert(uuid_is_valid("0f9c1a2b-1111-2222-3333-444455556666"));
        ck_assert_int_eq(uuid_normalize("0F9C1A2B-ABCD-2222-3333-444455556666", out), 0);
        ck_assert_str_eq(out, "0f9c1a2b-abcd-2222-3333-444455556666");
        ck_assert(!uuid_is_valid("0f9c1a2b11112222333344445555666"));
        ck_assert(!uuid_is_valid("0f9c1a2b-1111-2222-3333-44445555666g"));
        ck_assert(!uuid_is_valid("0f9c1a2b-1111-2222-3333-4444555566667"));
        ck_assert(!uuid_is_valid("{0f9c1a2b-1111-2222-3333-44445555666}"));
        ck_assert(!uuid_is_valid(""));
}
END_TEST

START_TEST(test_sizes_parse_with_binary_units)
{
        uint64_t v = 0;

        ck_assert_int_eq(size_parse("4096", &v), 0);
        ck_assert_uint_eq(v, 4096);
        ck_assert_int_eq(size_parse("512K", &v), 0);
        ck_assert_uint_eq(v, 512u << 10);
        ck_assert_int_eq(size_parse("8G", &v), 0);
        ck_assert_uint_eq(v, UINT64_C(8) << 30);
        ck_assert_int_eq(size_parse("2GiB", &v), 0);
        ck_assert_uint_eq(v, UINT64_C(2) << 30);
        ck_assert_int_eq(size_parse("1t", &v), 0);
        ck_assert_uint_eq(v, UINT64_C(1) << 40);
        ck_assert_int_eq(size_parse("12Q", &v), -EINVAL);
        ck_assert_int_eq(size_parse("-1G", &v), -EINVAL);
        ck_assert_int_eq(size_parse("G", &v), -EINVAL);
        ck_assert_int_eq(size_parse("1.5G", &v), -EINVAL);
        ck_assert_int_eq(size_parse("99999999999T", &v), -ERANGE);
}
END_TEST

START_TEST(test_sizes_format_for_people)
{
        char buf[32];

        ck_assert_str_eq(size_format(UINT64_C(8) << 30, buf, sizeof(buf)), "8G");
        ck_assert_str_eq(size_format(1536u << 20, buf, sizeof(buf)), "1.5G");
        ck_assert_str_eq(size_format(100, buf, sizeof(buf)), "100B");
        ck_assert_str_eq(size_format(0, buf, sizeof(buf)), "0B");
}
END_TEST

START_TEST(test_text_must_be_printable_utf8_within_its_limit)
{
        ck_assert(text_is_valid("inference node 3", 128));
        ck_assert(text_is_valid("Grüße, 推理", 128));
        ck_assert(!text_is_valid("tab\there", 128));
        ck_assert(!text_is_valid("esc\x1b[31m", 128));
        ck_assert(!text_is_valid("\xc3\x28", 128));         /* broken sequence */
        ck_assert(!text_is_valid("\xc0\xaf", 128));         /* overlong '/' */
        ck_assert(!text_is_valid("\xed\xa0\x80", 128));     /* surrogate */
        ck_assert(!text_is_valid("abcdef", 5));
}
END_TEST

START_TEST(test_gpu_resources_have_a_known_kind)
{
        ck_assert(gpu_resource_is_valid(""));
        ck_assert(gpu_resource_is_valid("gpu:0000:3b:00.0"));
        ck_assert(gpu_resource_is_valid("gpu:GPU-5f1c2d3e-aaaa-bbbb-cccc-1234567890ab"));
        ck_assert(gpu_resource_is_valid("mig:MIG-5f1c2d3e-aaaa-bbbb-cccc-1234567890ab"));
        ck_assert(gpu_resource_is_valid("sm-share:0000:3b:00.0:50"));
        ck_assert(!gpu_resource_is_valid("sm-share:0000:3b:00.0:0"));
        ck_assert(!gpu_resource_is_valid("sm-share:0000:3b:00.0:101"));
        ck_assert(!gpu_resource_is_valid("sm-share:50"));
        ck_assert(!gpu_resource_is_valid("gpu:"));
        ck_assert(!gpu_resource_is_valid("gpu:0000:3b:00.0;rm -rf"));
        ck_assert(!gpu_resource_is_valid("tpu:0"));
}
END_TEST

START_TEST(test_modes_and_iommu_policies_round_trip)
{
        ck_assert_int_eq(pool_mode_from_string("shared"), POOL_MODE_SHARED);
        ck_assert_int_eq(pool_mode_from_string("isolated"), POOL_MODE_ISOLATED);
        ck_assert_int_eq(pool_mode_from_string("mps"), _POOL_MODE_INVALID);
        ck_assert_str_eq(iommu_policy_to_string(iommu_policy_from_string("audit")), "audit");
        ck_assert_int_eq(iommu_policy_from_string("off"), _IOMMU_POLICY_INVALID);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("names");
        TCase *tc = tcase_create("names");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_pool_ids_follow_the_bus_and_unit_name_grammar);
        tcase_add_test(tc, test_priorities_are_high_medium_low_only);
        tcase_add_test(tc, test_vm_ids_are_positive_decimal_integers_within_range);
        tcase_add_test(tc, test_uuids_are_canonical_and_normalized_to_lowercase);
        tcase_add_test(tc, test_sizes_parse_with_binary_units);
        tcase_add_test(tc, test_sizes_format_for_people);
        tcase_add_test(tc, test_text_must_be_printable_utf8_within_its_limit);
        tcase_add_test(tc, test_gpu_resources_have_a_known_kind);
        tcase_add_test(tc, test_modes_and_iommu_policies_round_trip);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
