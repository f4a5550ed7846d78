/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The JSON writer: what vgpu-admin --json prints must parse, whatever the stored strings contain. */
#include <check.h>
#include <stdlib.h>

#include "json-writer.h"
#include "vgpu-util.h"

static char *render(void (*fn)(JsonWriter *w), bool pretty)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        JsonWriter w;

        ck_assert_ptr_nonnull(f);
        json_init(&w, f, pretty);
        fn(&w);
        fclose(f);
        return buf;
}

static void write_record(JsonWriter *w)
{
        json_begin_array(w);
        json_begin_object(w);
        json_key(w, "vm_id");
        json_uint(w, 7);
        json_key(w, "name");
        json_string(w, "say \"hi\"\\\n\t\x01");
        json_key(w, "iommu_group");
        json_int(w, -1);
        json_key(w, "ok");
        json_bool(w, true);
        json_key(w, "none");
        json_null(w);
        json_key(w, "empty");
        json_begin_array(w);
        json_end_array(w);
        json_end_object(w);
        json_end_array(w);
}

START_TEST(test_compact_output_escapes_quotes_backslashes_and_controls)
{
        _cleanup_free_ char *s = render(write_record, false);

        ck_assert_str_eq(s, "[{\"vm_id\":7,\"name\":\"say \\\"hi\\\"\\\\\\n\\t\\u0001\",\"iommu_group\":-1,"
                            "\"ok\":true,\"none\":null,\"empty\":[]}]");
}
END_TEST

START_TEST(test_pretty_output_indents_nested_containers)
{
        _cleanup_free_ char *s = render(write_record, true);

        ck_assert_ptr_nonnull(strstr(s, "[\n  {\n    \"vm_id\": 7,\n"));
        ck_assert_ptr_nonnull(strstr(s, "\"empty\": []\n  }\n]"));
}
END_TEST

int main(void)
{
        Suite *s = suite_create("json-writer");
        TCase *tc = tcase_create("json");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_compact_output_escapes_quotes_backslashes_and_controls);
        tcase_add_test(tc, test_pretty_output_indents_nested_containers);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
