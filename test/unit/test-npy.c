/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* .npy float32 files: what vgpu-run writes it reads back bit for bit, what numpy writes (v1, v2, with or
 * without a trailing comma) it reads, and every other kind of file is refused with a sentence. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../guest/vgpu-run/npy.h"
#include "test-helpers.h"
#include "vgpu-util.h"

static char *tmpdir;
static char err[256];

static void setup(void)
{
        tmpdir = test_tmpdir_new();
        err[0] = '\0';
}

static void teardown(void)
{
        test_tmpdir_remove(tmpdir);
        tmpdir = NULL;
}

/* A .npy file as numpy writes it: version, the dict text, padding to 64, then n floats 0, 1, 2, … */
static size_t make_npy(uint8_t *buf, int version, const char *dict, uint64_t n_floats)
{
        size_t pre = version == 1 ? 10 : 12, len = strlen(dict);
        size_t total = (pre + len + 1 + 63) / 64 * 64, hl = total - pre;

        memcpy(buf, "\x93NUMPY", 6);
        buf[6] = (uint8_t)version;
        buf[7] = 0;
        for (size_t i = 0; i < pre - 8; i++)
                buf[8 + i] = (uint8_t)(hl >> (8 * i));
        memcpy(buf + pre, dict, len);
        memset(buf + pre + len, ' ', hl - len - 1);
        buf[total - 1] = '\n';
        for (uint64_t i = 0; i < n_floats; i++) {
                float f = (float)i;

                memcpy(buf + total + i * 4, &f, 4);
        }
        return total + n_floats * 4;
}

START_TEST(test_write_then_read_round_trips_every_rank)
{
        static const uint64_t shapes[5][4] = {{0}, {7}, {3, 5}, {2, 3, 4}, {2, 1, 3, 2}};

        for (uint32_t rank = 0; rank <= 4; rank++) {
                NpyArray a = {.rank = rank, .count = 1}, b = {};
                char path[PATH_MAX];

                for (uint32_t i = 0; i < rank; i++)
                        a.count *= a.shape[i] = shapes[rank][i];
                a.data = malloc(a.count * 4);
                for (uint64_t i = 0; i < a.count; i++)
                        a.data[i] = i % 3 ? (float)i / 7.0f : -INFINITY;
                snprintf(path, sizeof(path), "%s/a%u.npy", tmpdir, rank);
                ck_assert_int_eq(npy_write(path, &a, err, sizeof(err)), 0);
                ck_assert_msg(npy_read(path, &b, err, sizeof(err)) == 0, "rank %u: %s", rank, err);
                ck_assert_uint_eq(b.rank, rank);
                ck_assert_uint_eq(b.count, a.count);
                ck_assert_int_eq(memcmp(a.shape, b.shape, sizeof(a.shape)), 0);
                ck_assert_int_eq(memcmp(a.data, b.data, a.count * 4), 0);
                npy_array_done(&a);
                npy_array_done(&b);
        }
}
END_TEST

START_TEST(test_numpy_headers_of_version_1_and_2_are_read)
{
        static uint8_t buf[4096];
        NpyArray a = {};
        size_t n;

        n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 6);
        ck_assert_msg(npy_parse(buf, n, &a, err, sizeof(err)) == 0, "%s", err);
        ck_assert(a.rank == 2 && a.shape[0] == 2 && a.shape[1] == 3 && a.data[5] == 5.0f);
        npy_array_done(&a);
        n = make_npy(buf, 2, "{\"shape\":(4,),\"fortran_order\":False,\"descr\":\"<f4\"}", 4);
        ck_assert_msg(npy_parse(buf, n, &a, err, sizeof(err)) == 0, "%s", err);
        ck_assert(a.rank == 1 && a.shape[0] == 4 && a.data[3] == 3.0f);
        npy_array_done(&a);
        n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 1);
        ck_assert_int_eq(npy_parse(buf, n, &a, err, sizeof(err)), 0);
        ck_assert(a.rank == 0 && a.count == 1);
        npy_array_done(&a);
}
END_TEST

static void assert_refused(const uint8_t *buf, size_t n, const char *why)
{
        NpyArray a = {};

        err[0] = '\0';
        ck_assert_int_eq(npy_parse(buf, n, &a, err, sizeof(err)), -EBADMSG);
        ck_assert_ptr_null(a.data);
        ck_assert_msg(strstr(err, why), "expected '%s' in the message, got '%s'", why, err);
}

START_TEST(test_other_files_are_refused_with_a_reason)
{
        static const struct {
                const char *dict;
                const char *why;
        } dicts[] = {
                {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", "'<f8' is not supported"},
                {"{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", "'>f4' is not supported"},
                {"{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", "'<i4'"},
                {"{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", "Fortran-order"},
                {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 2), }", "rank above 4"},
                {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", "non-negative integers"},
                {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", "absurdly large"},
                {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", "more than"},
                {"{'descr': '<f4', 'fortran_order': False, }", "lacks"},
                {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", "repeated"},
                {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", "unexpected"},
                {"['descr', '<f4']", "not a dict"},
                {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } junk", "garbage"},
                {"{'descr': '<f4' 'fortran_order': False, 'shape': (2,), }", "malformed"},
        };
        static uint8_t buf[4096];
        size_t n;

        for (size_t i = 0; i < ELEMENTSOF(dicts); i++)
                assert_refused(buf, make_npy(buf, 1, dicts[i].dict, 2), dicts[i].why);

        n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 3);
        assert_refused(buf, n - 1, "truncated");
        assert_refused(buf, n - 12, "truncated");
        assert_refused(buf, 40, "truncated inside the header");
        assert_refused(buf, 5, "too short");
        buf[n] = 0;
        assert_refused(buf, n + 1, "trailing bytes");
        buf[6] = 3; /* version 3: a UTF-8 header */
        assert_refused(buf, n, "version 3.0 is not supported");
        buf[6] = 2; /* a v2 header length of 0x2020xxxx: absurd */
        assert_refused(buf, n, "absurd");
        buf[0] = 'P';
        assert_refused(buf, n, "magic");
        n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 1);
        buf[20] = '\0';
        assert_refused(buf, n, "NUL");
}
END_TEST

START_TEST(test_read_refuses_files_it_cannot_trust)
{
        static uint8_t buf[4096];
        char path[PATH_MAX];
        NpyArray a = {};
        FILE *f;
        size_t n;

        snprintf(path, sizeof(path), "%s/t.npy", tmpdir);
        n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (100,), }", 100);
        f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(buf, 1, n - 4, f), n - 4);
        fclose(f);
        ck_assert_int_eq(npy_read(path, &a, err, sizeof(err)), -EBADMSG);
        ck_assert_msg(strstr(err, "truncated"), "%s", err);
        ck_assert_int_eq(npy_read(tmpdir, &a, err, sizeof(err)), -EBADMSG); /* a directory */
        snprintf(path, sizeof(path), "%s/missing.npy", tmpdir);
        ck_assert_int_eq(npy_read(path, &a, err, sizeof(err)), -ENOENT);
        ck_assert_ptr_null(a.data);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("npy");
        TCase *tc = tcase_create("npy");
        SRunner *sr;
        int failed;

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_write_then_read_round_trips_every_rank);
        tcase_add_test(tc, test_numpy_headers_of_version_1_and_2_are_read);
        tcase_add_test(tc, test_other_files_are_refused_with_a_reason);
        tcase_add_test(tc, test_read_refuses_files_it_cannot_trust);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
