/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The frontend's xenstore keys as a hostile guest would write them — missing, non-numeric, out of range, too
 * many references — are refused by the one parser with a sentence naming the key; grant sizing; the strict
 * number, state and uuid parsers; a Xen region reference survives the trip to the executor. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/protocol.h"
#include "transport/xen.h"
#include "vgpu-util.h"

typedef struct Kv {
        const char *key, *value;
} Kv;

/* A frontend's directory: keys looked up by name; "\x01" stands for a value with a NUL inside. */
typedef struct Dir {
        Kv kv[16];
        size_t n;
} Dir;

static int dir_lookup(void *userdata, const char *key, const char **ret)
{
        Dir *d = userdata;

        for (size_t i = 0; i < d->n; i++)
                if (streq(d->kv[i].key, key)) {
                        if (!d->kv[i].value)
                                return -ENOENT;
                        if (streq(d->kv[i].value, "\x01"))
                                return -EBADMSG;
                        *ret = d->kv[i].value;
                        return 0;
                }
        return -ENOENT;
}

static void dir_set(Dir *d, const char *key, const char *value)
{
        for (size_t i = 0; i < d->n; i++)
                if (streq(d->kv[i].key, key)) {
                        d->kv[i].value = value;
                        return;
                }
        d->kv[d->n++] = (Kv){key, value};
}

/* 64 KiB region (16 pages, one directory page), port 17. */
static Dir valid_dir(void)
{
        Dir d = {};

        dir_set(&d, "protocol-version", "1");
        dir_set(&d, "region-size", "65536");
        dir_set(&d, "nr-page-dir-refs", "1");
        dir_set(&d, "page-dir-ref-0", "42");
        dir_set(&d, "event-channel", "17");
        return d;
}

static int parse(Dir *d, VgpuXenFrontend *fe, char *why, size_t size)
{
        return vgpu_xen_frontend_parse(dir_lookup, d, fe, why, size);
}

START_TEST(test_valid_keys_parse_into_the_checked_struct)
{
        Dir d = valid_dir();
        VgpuXenFrontend fe;
        char why[256];

        ck_assert_int_eq(parse(&d, &fe, why, sizeof(why)), 0);
        ck_assert_int_eq(fe.protocol_version, VGPU_LAYOUT_VERSION);
        ck_assert_uint_eq(fe.region_size, 65536);
        ck_assert_uint_eq(fe.region_pages, 16);
        ck_assert_uint_eq(fe.n_dir_refs, 1);
        ck_assert_uint_eq(fe.dir_refs[0], 42);
        ck_assert_uint_eq(fe.event_channel, 17);
}
END_TEST

static const char *const keys[] = {"protocol-version", "region-size", "nr-page-dir-refs", "page-dir-ref-0",
                                   "event-channel"};

START_TEST(test_each_missing_key_is_named)
{
        Dir d = valid_dir();
        VgpuXenFrontend fe;
        char why[256];

        dir_set(&d, keys[_i], NULL);
        ck_assert_int_eq(parse(&d, &fe, why, sizeof(why)), -EINVAL);
        ck_assert_msg(strstr(why, keys[_i]) && strstr(why, "missing"), "missing %s: '%s'", keys[_i], why);
}
END_TEST

static const char *const not_numbers[] = {"",     "12abc", "-1",  "+5",          " 5",  "5 ",
                                          "0x10", "007",   "1e3", "4294967296x", "\x01"};

START_TEST(test_non_numeric_values_are_refused_for_every_key)
{
        for (size_t k = 0; k < ELEMENTSOF(keys); k++) {
                Dir d = valid_dir();
                VgpuXenFrontend fe;
                char why[256];

                dir_set(&d, keys[k], not_numbers[_i]);
                ck_assert_int_eq(parse(&d, &fe, why, sizeof(why)), -EINVAL);
                ck_assert_msg(strstr(why, keys[k]), "%s='%s' gave '%s'", keys[k], not_numbers[_i], why);
        }
}
END_TEST

static const Kv out_of_range[] = {
        {"region-size", "0"},
        {"region-size", "4095"},
        {"region-size", "4097"},                 /* not whole pages */
        {"region-size", "4294971392"},           /* 4 GiB + 4096 */
        {"region-size", "99999999999999999999"}, /* past 2^64 */
        {"event-channel", "0"},
        {"event-channel", "131072"},
        {"page-dir-ref-0", "7"}, /* reserved for the console and xenstore */
        {"page-dir-ref-0", "4294967296"},
        {"nr-page-dir-refs", "0"},
        {"nr-page-dir-refs", "2"},    /* one more than 16 pages need: too many references */
        {"nr-page-dir-refs", "1025"}, /* more than any region can need */
};

START_TEST(test_out_of_range_values_are_refused)
{
        Dir d = valid_dir();
        VgpuXenFrontend fe;
        char why[256];

        dir_set(&d, out_of_range[_i].key, out_of_range[_i].value);
        dir_set(&d, "page-dir-ref-1", "43"); /* present, so "2" fails on the count, not on a missing key */
        ck_assert_int_eq(parse(&d, &fe, why, sizeof(why)), -EINVAL);
        ck_assert_msg(strstr(why, out_of_range[_i].key), "%s='%s' gave '%s'", out_of_range[_i].key,
                      out_of_range[_i].value, why);
}
END_TEST

START_TEST(test_another_layout_version_is_not_supported)
{
        Dir d = valid_dir();
        VgpuXenFrontend fe;
        char why[256];

        dir_set(&d, "protocol-version", "2");
        ck_assert_int_eq(parse(&d, &fe, why, sizeof(why)), -EPROTONOSUPPORT);
        ck_assert_msg(strstr(why, "protocol-version"), "%s", why);
}
END_TEST

START_TEST(test_directory_size_must_match_the_region_exactly)
{
        Dir d = valid_dir();
        VgpuXenFrontend fe;
        char why[256];

        /* 1025 pages need two directory pages: one is too few. */
        dir_set(&d, "region-size", "4198400");
        ck_assert_int_eq(parse(&d, &fe, why, sizeof(why)), -EINVAL);
        ck_assert_msg(strstr(why, "exactly 2"), "%s", why);
        dir_set(&d, "nr-page-dir-refs", "2");
        ck_assert_int_eq(parse(&d, &fe, why, sizeof(why)), -EINVAL); /* page-dir-ref-1 missing */
        ck_assert_msg(strstr(why, "page-dir-ref-1"), "%s", why);
        dir_set(&d, "page-dir-ref-1", "43");
        ck_assert_int_eq(parse(&d, &fe, why, sizeof(why)), 0);
        ck_assert_uint_eq(fe.n_dir_refs, 2);
}
END_TEST

static char big_values[1024][12];
static int big_calls;

/* Too many keys for the little table: answers every page-dir-ref-i itself. */
static int big_lookup(void *userdata, const char *key, const char **ret)
{
        unsigned i;

        big_calls++;
        if (sscanf(key, "page-dir-ref-%u", &i) == 1 && i < 1024) {
                snprintf(big_values[i], sizeof(big_values[i]), "%u", 100 + i);
                *ret = big_values[i];
                return 0;
        }
        return dir_lookup(userdata, key, ret);
}

START_TEST(test_largest_region_needs_1024_directory_pages)
{
        Dir d = valid_dir();
        VgpuXenFrontend fe;
        char why[256];

        dir_set(&d, "region-size", "4294967296");
        dir_set(&d, "nr-page-dir-refs", "1024");
        big_calls = 0;
        ck_assert_int_eq(vgpu_xen_frontend_parse(big_lookup, &d, &fe, why, sizeof(why)), 0);
        ck_assert_uint_eq(fe.region_pages, 1048576);
        ck_assert_uint_eq(fe.dir_refs[1023], 1123);
        ck_assert_int_eq(big_calls, 4 + 1024);
}
END_TEST

START_TEST(test_grant_frames_needed_counts_pages_and_directory)
{
        /* 512 v1 entries of 8 bytes per 4 KiB frame. */
        ck_assert_uint_eq(vgpu_xen_grant_frames_needed(4096), 1);
        ck_assert_uint_eq(vgpu_xen_grant_frames_needed(511 * 4096), 1);   /* 511 + 1 = 512 */
        ck_assert_uint_eq(vgpu_xen_grant_frames_needed(512 * 4096), 2);   /* 512 + 1 */
        ck_assert_uint_eq(vgpu_xen_grant_frames_needed(64ull << 20), 33); /* 16384 + 16 = 16400 */
        ck_assert_uint_eq(vgpu_xen_grant_frames_needed(VGPU_REGION_SIZE_MAX), 2050);
        ck_assert_uint_eq(vgpu_xen_dir_pages(1024), 1);
        ck_assert_uint_eq(vgpu_xen_dir_pages(1025), 2);
}
END_TEST

START_TEST(test_strict_numbers_states_and_uuids)
{
        VgpuXenbusState s;
        uint64_t v;
        char uuid[37];

        ck_assert_int_eq(vgpu_xen_parse_u64("18446744073709551615", UINT64_MAX, &v), 0);
        ck_assert_int_eq(vgpu_xen_parse_u64("18446744073709551616", UINT64_MAX, &v), -ERANGE);
        ck_assert_int_eq(vgpu_xen_parse_u64("0", 0, &v), 0);
        ck_assert_int_eq(vgpu_xen_parse_u64(NULL, 1, &v), -EINVAL);
        ck_assert_int_eq(vgpu_xen_parse_state("4", &s), 0);
        ck_assert_int_eq(s, VGPU_XENBUS_CONNECTED);
        ck_assert_str_eq(vgpu_xenbus_state_to_string(s), "Connected");
        ck_assert_int_eq(vgpu_xen_parse_state("9", &s), -EINVAL);
        ck_assert_int_eq(vgpu_xen_parse_state("Connected", &s), -EINVAL);
        ck_assert_int_eq(vgpu_xen_uuid_normalize("0A1B2C3D-0000-4000-8000-00000000ABCD", uuid), 0);
        ck_assert_str_eq(uuid, "0a1b2c3d-0000-4000-8000-00000000abcd");
        ck_assert_int_eq(vgpu_xen_uuid_normalize("0a1b2c3d_0000-4000-8000-00000000abcd", uuid), -EINVAL);
        ck_assert_int_eq(vgpu_xen_uuid_normalize("0a1b2c3d-0000-4000-8000-00000000abc", uuid), -EINVAL);
}
END_TEST

START_TEST(test_xen_region_reference_crosses_a_socket_intact)
{
        uint32_t refs[300];
        VgpuRegionRef in = VGPU_REGION_REF_NULL, out = VGPU_REGION_REF_NULL;
        int sv[2];

        for (uint32_t i = 0; i < ELEMENTSOF(refs); i++)
                refs[i] = 1000 + i;
        in = (VgpuRegionRef){
                .kind = VGPU_TRANSPORT_XEN, .size = 300 * 4096, .fd = -1, .domid = 7, .n_refs = 300, .refs = refs};
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        ck_assert_int_eq(vgpu_region_ref_send(sv[0], &in), 0);
        ck_assert_int_eq(vgpu_region_ref_receive(sv[1], &out), 0);
        ck_assert_int_eq(out.kind, VGPU_TRANSPORT_XEN);
        ck_assert_uint_eq(out.domid, 7);
        ck_assert_uint_eq(out.n_refs, 300);
        ck_assert_uint_eq(out.size, 300 * 4096);
        ck_assert_int_eq(memcmp(out.refs, refs, sizeof(refs)), 0);
        vgpu_region_ref_done(&out);
        /* A reference whose size disagrees with its page count is malformed. */
        in.size = 299 * 4096;
        ck_assert_int_eq(vgpu_region_ref_send(sv[0], &in), 0);
        ck_assert_int_eq(vgpu_region_ref_receive(sv[1], &out), -EBADMSG);
        close(sv[0]);
        close(sv[1]);
}
END_TEST

static Suite *suite(void)
{
        Suite *s = suite_create("xen-keys");
        TCase *tc = tcase_create("keys");

        tcase_add_test(tc, test_valid_keys_parse_into_the_checked_struct);
        tcase_add_loop_test(tc, test_each_missing_key_is_named, 0, ELEMENTSOF(keys));
        tcase_add_loop_test(tc, test_non_numeric_values_are_refused_for_every_key, 0, ELEMENTSOF(not_numbers));
        tcase_add_loop_test(tc, test_out_of_range_values_are_refused, 0, ELEMENTSOF(out_of_range));
        tcase_add_test(tc, test_another_layout_version_is_not_supported);
        tcase_add_test(tc, test_directory_size_must_match_the_region_exactly);
        tcase_add_test(tc, test_largest_region_needs_1024_directory_pages);
        tcase_add_test(tc, test_grant_frames_needed_counts_pages_and_directory);
        tcase_add_test(tc, test_strict_numbers_states_and_uuids);
        tcase_add_test(tc, test_xen_region_reference_crosses_a_socket_intact);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
