/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The vgpu-stub announcement parser (services/ingestd/stub-announcement.c): the lines QEMU writes are
 * accepted exactly, everything else — wrong prefix, order, spacing, values, bytes, lengths — is refused
 * with a reason, and the comparison with the configuration store. */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "services/ingestd/stub-announcement.h"
#include "vgpu-util.h"

static int parse(const char *line, StubAnnouncement *a, const char **why)
{
        return stub_announcement_parse(line, strlen(line), a, why);
}

START_TEST(test_qemus_line_with_every_field_is_accepted)
{
        StubAnnouncement a;
        const char *why = "unset";

        ck_assert_int_eq(parse("vgpu-stub 1 vm_id=3 pool_id=A priority=high\n", &a, &why), 0);
        ck_assert_ptr_null(why);
        ck_assert_uint_eq(a.vm_id, 3);
        ck_assert_str_eq(a.pool, "A");
        ck_assert_int_eq(a.priority, PRIORITY_HIGH);

        ck_assert_int_eq(parse("vgpu-stub 1 vm_id=2147483647 pool_id=A234567890123456 priority=medium\n", &a, &why), 0);
        ck_assert_uint_eq(a.vm_id, 2147483647u);
        ck_assert_str_eq(a.pool, "A234567890123456");
        ck_assert_int_eq(a.priority, PRIORITY_MEDIUM);
}
END_TEST

START_TEST(test_unset_pool_and_priority_are_empty_not_defaults)
{
        StubAnnouncement a;
        const char *why;

        ck_assert_int_eq(parse("vgpu-stub 1 vm_id=7 pool_id= priority=\n", &a, &why), 0);
        ck_assert_uint_eq(a.vm_id, 7);
        ck_assert_str_eq(a.pool, "");
        ck_assert_int_eq(a.priority, _PRIORITY_INVALID);
        ck_assert_int_eq(parse("vgpu-stub 1 vm_id=7 pool_id=B priority=\n", &a, &why), 0);
        ck_assert_str_eq(a.pool, "B");
        ck_assert_int_eq(a.priority, _PRIORITY_INVALID);
        ck_assert_int_eq(parse("vgpu-stub 1 vm_id=7 pool_id= priority=low\n", &a, &why), 0);
        ck_assert_str_eq(a.pool, "");
        ck_assert_int_eq(a.priority, PRIORITY_LOW);
}
END_TEST

START_TEST(test_later_key_value_fields_are_ignored)
{
        StubAnnouncement a;
        const char *why;

        ck_assert_int_eq(parse("vgpu-stub 1 vm_id=3 pool_id=A priority=low domid=12\n", &a, &why), 0);
        ck_assert_uint_eq(a.vm_id, 3);
        ck_assert_int_eq(a.priority, PRIORITY_LOW);
        ck_assert_int_eq(parse("vgpu-stub 1 vm_id=3 pool_id=A priority=low x= y_2=v\n", &a, &why), 0);
}
END_TEST

START_TEST(test_hostile_lines_are_refused_with_a_reason)
{
        static const char *const bad[] = {
                "",
                "\n",
                "vgpu-stub 1 vm_id=3 pool_id=A priority=high",     /* no LF */
                "vgpu-stub 1 vm_id=3 pool_id=A priority=high\r\n", /* CR */
                "vgpu-stub 1 vm_id=3 pool_id=A priority=high \n",  /* trailing space */
                " vgpu-stub 1 vm_id=3 pool_id=A priority=high\n",  /* leading space */
                "vgpu-stub  1 vm_id=3 pool_id=A priority=high\n",  /* double space */
                "vgpu-stub 1  vm_id=3 pool_id=A priority=high\n",
                "vgpu-stub 1 vm_id=3  pool_id=A priority=high\n",
                "vgpu-stub 1 vm_id=3 pool_id=A  priority=high\n",
                "vgpu-stub 1 vm_id=3\tpool_id=A priority=high\n", /* tab */
                "VGPU-STUB 1 vm_id=3 pool_id=A priority=high\n",
                "vgpu-stub 2 vm_id=3 pool_id=A priority=high\n", /* another version */
                "vgpu-stub 10 vm_id=3 pool_id=A priority=high\n",
                "vgpu-stub 01 vm_id=3 pool_id=A priority=high\n",
                "vgpu-stub 1\n",
                "vgpu-stub 1 \n",
                "vgpu-stub 1 vm_id=3\n", /* fields missing */
                "vgpu-stub 1 vm_id=3 pool_id=A\n",
                "vgpu-stub 1 pool_id=A vm_id=3 priority=high\n", /* order */
                "vgpu-stub 1 vm_id=3 priority=high pool_id=A\n",
                "vgpu-stub 1 vm_id= pool_id=A priority=high\n", /* vm_id values */
                "vgpu-stub 1 vm_id=0 pool_id=A priority=high\n",
                "vgpu-stub 1 vm_id=03 pool_id=A priority=high\n",
                "vgpu-stub 1 vm_id=-3 pool_id=A priority=high\n",
                "vgpu-stub 1 vm_id=+3 pool_id=A priority=high\n",
                "vgpu-stub 1 vm_id=0x3 pool_id=A priority=high\n",
                "vgpu-stub 1 vm_id=2147483648 pool_id=A priority=high\n",
                "vgpu-stub 1 vm_id=99999999999999999999 pool_id=A priority=high\n",
                "vgpu-stub 1 vm_id=3 pool_id=1A priority=high\n", /* pool values */
                "vgpu-stub 1 vm_id=3 pool_id=A-B priority=high\n",
                "vgpu-stub 1 vm_id=3 pool_id=A2345678901234567 priority=high\n",
                "vgpu-stub 1 vm_id=3 pool_id=A=B priority=high\n",
                "vgpu-stub 1 vm_id=3 pool_id=A priority=HIGH\n", /* priority values */
                "vgpu-stub 1 vm_id=3 pool_id=A priority=urgent\n",
                "vgpu-stub 1 vm_id=3 pool_id=A priority=highest\n",
                "vgpu-stub 1 vm_id=3 pool_id=A priority=hig\n",
                "vgpu-stub 1 vm_id=3 pool_id=A priority=high extra\n", /* extensions not key=value */
                "vgpu-stub 1 vm_id=3 pool_id=A priority=high =v\n",
                "vgpu-stub 1 vm_id=3 pool_id=A priority=high Key=v\n",
                "vgpu-stub 1 vm_id=3 pool_id=A priority=high\nvgpu-stub 1 vm_id=4 pool_id=B priority=low\n",
                "vgpu-stub 1 vm_id=3 pool_id=\xc3\x84 priority=high\n", /* not ASCII */
                "vgpu-stub 1 vm_id=3 pool_id=A priority=high\x7f\n",
                "hello\n",
        };
        StubAnnouncement a;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                const char *why = NULL;

                ck_assert_msg(parse(bad[i], &a, &why) == -EINVAL, "line %zu ('%s') should be refused", i, bad[i]);
                ck_assert_msg(why && *why, "line %zu was refused without a reason", i);
                ck_assert_msg(a.pool[0] == '\0' && a.priority == _PRIORITY_INVALID,
                              "line %zu: a refused line must not hand out a pool or priority", i);
        }
}
END_TEST

START_TEST(test_embedded_nul_is_refused)
{
        static const char line[] = "vgpu-stub 1 vm_id=3 pool_id=A\0 priority=high\n";
        StubAnnouncement a;
        const char *why = NULL;

        ck_assert_int_eq(stub_announcement_parse(line, sizeof(line) - 1, &a, &why), -EINVAL);
        ck_assert_str_eq(why, "the line holds a byte that is not printable ASCII");
}
END_TEST

START_TEST(test_length_is_capped_at_80_bytes_with_the_line_feed)
{
        char line[128];
        StubAnnouncement a;
        const char *why = NULL;
        size_t base;

        /* Padded with an ignored field up to exactly 80 bytes: accepted; one more: refused. */
        base = (size_t)snprintf(line, sizeof(line), "vgpu-stub 1 vm_id=3 pool_id=A priority=high x=");
        memset(line + base, 'v', 80 - 1 - base);
        line[79] = '\n';
        ck_assert_int_eq(stub_announcement_parse(line, 80, &a, &why), 0);
        memset(line + base, 'v', 80 - base);
        line[80] = '\n';
        ck_assert_int_eq(stub_announcement_parse(line, 81, &a, &why), -EINVAL);
        ck_assert_str_eq(why, "the line is longer than 80 bytes");
        /* 81 bytes without a line feed (what the socket hands over when the line never ends), and 80. */
        line[80] = 'v';
        ck_assert_int_eq(stub_announcement_parse(line, 81, &a, &why), -EINVAL);
        ck_assert_str_eq(why, "the line is longer than 80 bytes");
        ck_assert_int_eq(stub_announcement_parse(line, 80, &a, &why), -EINVAL);
        ck_assert_str_eq(why, "the line does not end in a line feed");
        ck_assert_int_eq(stub_announcement_parse(NULL, 0, &a, &why), -EINVAL);
}
END_TEST

START_TEST(test_the_reasons_name_the_field_and_the_vm_is_kept_once_valid)
{
        StubAnnouncement a;
        const char *why = NULL;

        ck_assert_int_eq(parse("vgpu-stub 2 vm_id=3 pool_id=A priority=high\n", &a, &why), -EINVAL);
        ck_assert_str_eq(why, "the announcement is not of version 1");
        ck_assert_uint_eq(a.vm_id, 0);
        ck_assert_int_eq(parse("GET / HTTP/1.0\n", &a, &why), -EINVAL);
        ck_assert_str_eq(why, "the line is not a vgpu-stub announcement");
        ck_assert_int_eq(parse("vgpu-stub 1 vm_id=0 pool_id=A priority=high\n", &a, &why), -EINVAL);
        ck_assert_str_eq(why, "vm_id is not a VM id from 1 to 2147483647");
        ck_assert_uint_eq(a.vm_id, 0);
        ck_assert_int_eq(parse("vgpu-stub 1 vm_id=5 pool_id=1A priority=high\n", &a, &why), -EINVAL);
        ck_assert_str_eq(why, "pool_id is not a letter followed by up to 15 letters, digits or '_'");
        ck_assert_uint_eq(a.vm_id, 5);
        ck_assert_int_eq(parse("vgpu-stub 1 vm_id=5 pool_id=A priority=urgent\n", &a, &why), -EINVAL);
        ck_assert_str_eq(why, "priority is not high, medium or low");
        ck_assert_uint_eq(a.vm_id, 5);
        ck_assert_int_eq(parse("vgpu-stub 1 vm_id=5 priority=high\n", &a, &why), -EINVAL);
        ck_assert_str_eq(why, "the second field is not pool_id=");
}
END_TEST

START_TEST(test_the_store_is_compared_only_where_the_stub_sets_a_value)
{
        StubAnnouncement a = {.vm_id = 3, .pool = "A", .priority = PRIORITY_HIGH};
        StubAnnouncement unset = {.vm_id = 3, .pool = "", .priority = _PRIORITY_INVALID};

        ck_assert(stub_announcement_agrees(&a, "A", PRIORITY_HIGH));
        ck_assert(!stub_announcement_agrees(&a, "B", PRIORITY_HIGH));
        ck_assert(!stub_announcement_agrees(&a, "a", PRIORITY_HIGH)); /* pool ids are case-sensitive */
        ck_assert(!stub_announcement_agrees(&a, "A", PRIORITY_LOW));
        ck_assert(stub_announcement_agrees(&unset, "B", PRIORITY_LOW));
}
END_TEST

START_TEST(test_the_mismatch_sentence_names_both_sides)
{
        StubAnnouncement a = {.vm_id = 3, .pool = "A", .priority = PRIORITY_HIGH};
        StubAnnouncement half = {.vm_id = 4, .pool = "", .priority = PRIORITY_HIGH};
        char buf[192];

        ck_assert_str_eq(stub_mismatch_format(&a, "B", PRIORITY_LOW, buf, sizeof(buf)),
                         "VM 3's vgpu-stub says pool A, priority high; the configuration store says pool B, "
                         "priority low: the store wins");
        ck_assert_str_eq(stub_mismatch_format(&half, "B", PRIORITY_LOW, buf, sizeof(buf)),
                         "VM 4's vgpu-stub says pool (not set), priority high; the configuration store says "
                         "pool B, priority low: the store wins");
}
END_TEST

static Suite *stub_announcement_suite(void)
{
        Suite *s = suite_create("stub-announcement");
        TCase *tc = tcase_create("parse");

        tcase_add_test(tc, test_qemus_line_with_every_field_is_accepted);
        tcase_add_test(tc, test_unset_pool_and_priority_are_empty_not_defaults);
        tcase_add_test(tc, test_later_key_value_fields_are_ignored);
        tcase_add_test(tc, test_hostile_lines_are_refused_with_a_reason);
        tcase_add_test(tc, test_embedded_nul_is_refused);
        tcase_add_test(tc, test_length_is_capped_at_80_bytes_with_the_line_feed);
        tcase_add_test(tc, test_the_reasons_name_the_field_and_the_vm_is_kept_once_valid);
        tcase_add_test(tc, test_the_store_is_compared_only_where_the_stub_sets_a_value);
        tcase_add_test(tc, test_the_mismatch_sentence_names_both_sides);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(stub_announcement_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? 0 : 1;
}
