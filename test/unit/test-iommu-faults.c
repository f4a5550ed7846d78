/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* IOMMU fault lines in the formats Linux (Intel DMAR, AMD-Vi) and Xen print them, lines that only look
 * similar, hostile input, the bounded fault log, and the watch that follows a log as it grows. */
#include <check.h>
#include <stdint.h>

#include "fault-watch.h"
#include "test-iommu-util.h"

typedef struct Case {
        const char *line;
        FaultSource source;
        const char *device;
        uint64_t address;
        const char *reason_has;
} Case;

static const Case good[] = {
        /* Linux 5.15+ (drivers/iommu/intel/dmar.c): NO_PASID inside the brackets, 0x-prefixed numbers. */
        { "DMAR: [DMA Read NO_PASID] Request device [00:03.0] fault addr 0x1000 [fault reason 0x06] PTE Read access is not set",
          FAULT_SOURCE_DMAR, "0000:00:03.0", 0x1000, "fault reason 0x06 (PTE Read access is not set)" },
        { "DMAR: [DMA Write NO_PASID] Request device [41:00.0] fault addr 0xfffd2000 [fault reason 0x05] PTE Write access is not set",
          FAULT_SOURCE_DMAR, "0000:41:00.0", 0xfffd2000, "DMA Write NO_PASID" },
        { "DMAR: [DMA Read PASID 0x1] Request device [3b:00.1] fault addr 0x7f000000 [fault reason 0x11] SM: Present bit in PASID entry is clear",
          FAULT_SOURCE_DMAR, "0000:3b:00.1", 0x7f000000, "PASID 0x1" },
        /* Linux 5.x: PASID after the device, bare hexadecimal. */
        { "DMAR: [DMA Read] Request device [00:02.0] PASID ffffffff fault addr 7f8e5000 [fault reason 06] PTE Read access is not set",
          FAULT_SOURCE_DMAR, "0000:00:02.0", 0x7f8e5000, "fault reason 0x06" },
        /* Linux 4.x. */
        { "DMAR: [DMA Write] Request device [00:1f.6] fault addr 9c3b3000 [fault reason 01] Present bit in root entry is clear",
          FAULT_SOURCE_DMAR, "0000:00:1f.6", 0x9c3b3000, "Present bit in root entry is clear" },
        /* The release that printed 0x before bus and slot. */
        { "DMAR: [DMA Read NO_PASID] Request device [0x00:0x03.0] fault addr 0x2000 [fault reason 0x06] PTE Read access is not set",
          FAULT_SOURCE_DMAR, "0000:00:03.0", 0x2000, "DMA Read" },
        /* An interrupt remapping fault: a device, no address. */
        { "DMAR: [INTR-REMAP] Request device [f0:1f.0] fault index 0x8 [fault reason 0x25] Blocked a compatibility format interrupt request",
          FAULT_SOURCE_DMAR, "0000:f0:1f.0", 0, "fault index 0x8" },
        /* Linux 5.x/6.x AMD-Vi with the device in front (dev_err). */
        { "vfio-pci 0000:41:00.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x000b address=0x1000 flags=0x0000]",
          FAULT_SOURCE_AMD_VI, "0000:41:00.0", 0x1000, "IO_PAGE_FAULT domain=0x000b flags=0x0000" },
        { "amdgpu 0000:03:00.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x0010 address=0x64a7f000 flags=0x0000]",
          FAULT_SOURCE_AMD_VI, "0000:03:00.0", 0x64a7f000, "IO_PAGE_FAULT" },
        /* Without a device (no struct device known to the kernel). */
        { "AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x0000 address=0xfffffffdf8000000 flags=0x0008]",
          FAULT_SOURCE_AMD_VI, "", 0xfffffffdf8000000ull, "flags=0x0008" },
        /* Linux 4.x: device= inside the brackets. */
        { "AMD-Vi: Event logged [IO_PAGE_FAULT device=41:00.0 domain=0x000b address=0x1000 flags=0x0000]",
          FAULT_SOURCE_AMD_VI, "0000:41:00.0", 0x1000, "domain=0x000b" },
        { "AMD-Vi: Event logged [IO_PAGE_FAULT device=0a:00.0 domain=0x001d address=0x000000000637c000 flags=0x0000]",
          FAULT_SOURCE_AMD_VI, "0000:0a:00.0", 0x637c000, "IO_PAGE_FAULT" },
        { "AMD-Vi: Event logged [ILLEGAL_DEV_TABLE_ENTRY device=00:14.0 pasid=0x00000 address=0xfffffffdf8000000 flags=0x0a00]",
          FAULT_SOURCE_AMD_VI, "0000:00:14.0", 0xfffffffdf8000000ull, "ILLEGAL_DEV_TABLE_ENTRY" },
        /* Xen (xen/drivers/passthrough/vtd/iommu.c): "[VT-D]" prefix, segment in the address, bare hex. */
        { "(XEN) [VT-D]DMAR:[DMA Read] Request device [0000:41:00.0] fault addr 1000",
          FAULT_SOURCE_XEN, "0000:41:00.0", 0x1000, "DMA Read" },
        { "(XEN) [VT-D]DMAR:[DMA Write] Request device [0000:00:02.0] fault addr 7f8e5000, iommu reg = ffff82c000205000",
          FAULT_SOURCE_XEN, "0000:00:02.0", 0x7f8e5000, "DMA Write" },
        { "(XEN) [2024-05-11 04:10:15.123] [VT-D]DMAR:[DMA Read] Request device [0001:3b:00.0] fault addr fee00000",
          FAULT_SOURCE_XEN, "0001:3b:00.0", 0xfee00000, "DMA Read" },
        /* Xen (xen/drivers/passthrough/amd/iommu_init.c). */
        { "(XEN) AMD-Vi: IO_PAGE_FAULT: 0000:41:00.0 d1 addr 0000000000001000 flags 0x20 RW",
          FAULT_SOURCE_XEN, "0000:41:00.0", 0x1000, "IO_PAGE_FAULT d1 flags 0x20 RW" },
        { "(XEN) AMD-Vi: IO_PAGE_FAULT: 0000:00:02.0 d32753 addr 00000000fed40000 flags 0x8 I",
          FAULT_SOURCE_XEN, "0000:00:02.0", 0xfed40000, "d32753" },
};

START_TEST(test_real_format_fault_lines_are_recognized)
{
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                IommuFault f;

                ck_assert_msg(iommu_fault_parse(good[i].line, &f), "not recognized: %s", good[i].line);
                ck_assert_msg(f.source == good[i].source, "source %s for: %s", fault_source_to_string(f.source),
                              good[i].line);
                ck_assert_msg(streq(f.device, good[i].device), "device '%s' for: %s", f.device, good[i].line);
                ck_assert_msg(f.address == good[i].address, "address 0x%llx for: %s", (unsigned long long)f.address,
                              good[i].line);
                ck_assert_msg(strstr(f.reason, good[i].reason_has), "reason '%s' for: %s", f.reason, good[i].line);
        }
}
END_TEST

START_TEST(test_lines_around_faults_and_lookalikes_are_not_faults)
{
        static const char *const lines[] = {
                "DMAR: DRHD: handling fault status reg 2",
                "DMAR: IOMMU enabled",
                "DMAR: dmar0: reg_base_addr fed90000 ver 1:0 cap d2008c22260206 ecap f00f4a",
                "DMAR:[fault reason 06] PTE Read access is not set",
                "(XEN) [VT-D]DMAR: reason 06 - PTE Read access is not set",
                "AMD-Vi: Unknown option - 'on'",
                "AMD-Vi: Using global IVHD EFR:0x0, EFR2:0x0",
                "AMD-Vi: Interrupt remapping enabled",
                "AMD-Vi: Found IOMMU cap 0x40",
                "(XEN) AMD-Vi: IOMMU 0 Enabled.",
                "(XEN) I/O virtualisation enabled",
                "iommu: Default domain type: Translated",
                "",
                "DMAR: [DMA Read NO_PASID] Request device [00:03.0] fault addr",
                "DMAR: [DMA Read NO_PASID] Request device [00:3.0] fault addr 0x1000",
                "DMAR: [DMA Read NO_PASID] Request device [00:20.0] fault addr 0x1000",
                "DMAR: [DMA Read NO_PASID] Request device [00:03.8] fault addr 0x1000",
                "DMAR: [DMA Read NO_PASID] Request device [../../etc] fault addr 0x1000",
                "DMAR: [DMA Read NO_PASID] Request device [00:03.0] fault addr 0x12345678901234567",
                "DMAR: [Something Else] Request device [00:03.0] fault addr 0x1000",
                "DMAR: [DMA Read NO_PASID Request device [00:03.0] fault addr 0x1000",
                "AMD-Vi: Event logged [IO_PAGE_FAULT device=zz:00.0 domain=0x000b address=0x1000 flags=0x0000]",
                "AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x000b address=0x1000 flags=0x0000",
                "AMD-Vi: Event logged [io_page_fault domain=0x000b address=0x1000]",
                "AMD-Vi: Event logged [IO_PAGE_FAULT address=0xzz]",
                "(XEN) AMD-Vi: IO_PAGE_FAULT: 0000:41:00.0 d1 addr zz flags 0x20",
                "(XEN) AMD-Vi: IO_PAGE_FAULT: 0000:41:00 d1 addr 1000 flags 0x20",
        };
        IommuFault f;

        for (size_t i = 0; i < ELEMENTSOF(lines); i++)
                ck_assert_msg(!iommu_fault_parse(lines[i], &f), "taken for a fault: %s", lines[i]);
        ck_assert(!iommu_fault_parse(NULL, &f));
}
END_TEST

START_TEST(test_hostile_input_stays_in_bounds)
{
        char *line = malloc(IOMMU_FAULT_LINE_MAX + 64);
        unsigned seed = 12345;
        IommuFault f;

        /* Longer than any fault line: refused whatever it holds. */
        memset(line, 'A', IOMMU_FAULT_LINE_MAX + 32);
        memcpy(line, "DMAR: [DMA Read] Request device [00:03.0] fault addr 0x1000", 59);
        line[IOMMU_FAULT_LINE_MAX + 32] = '\0';
        ck_assert(!iommu_fault_parse(line, &f));
        /* Every prefix of every good line, and random bytes around the markers: no crash, no overread
         * (ASan/valgrind would say), reason always NUL-terminated and printable. */
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                size_t n = strlen(good[i].line);
                for (size_t k = 0; k <= n; k++) {
                        char *prefix = strndup(good[i].line, k);
                        if (iommu_fault_parse(prefix, &f)) {
                                ck_assert(strlen(f.reason) < IOMMU_FAULT_REASON_MAX);
                                for (const char *p = f.reason; *p; p++)
                                        ck_assert(*p >= 0x20 && *p < 0x7f);
                        }
                        free(prefix);
                }
        }
        for (int round = 0; round < 20000; round++) {
                static const char *const markers[] = { "DMAR: [DMA Read", "AMD-Vi: Event logged [", "(XEN) AMD-Vi: ",
                                                       "] Request device [", " fault addr " };
                size_t n = 0, len = (size_t)(rand_r(&seed) % 200);
                while (n < len) {
                        if (rand_r(&seed) % 8 == 0) {
                                const char *m = markers[rand_r(&seed) % ELEMENTSOF(markers)];
                                size_t k = strlen(m);
                                if (n + k >= len)
                                        break;
                                memcpy(line + n, m, k);
                                n += k;
                        } else
                                line[n++] = (char)(1 + rand_r(&seed) % 255);
                }
                line[n] = '\0';
                if (iommu_fault_parse(line, &f))
                        ck_assert(strlen(f.reason) < IOMMU_FAULT_REASON_MAX && strlen(f.device) < PCI_ADDRESS_STRING_MAX);
        }
        free(line);
}
END_TEST

START_TEST(test_kmsg_records_lose_their_header_and_continuations_are_skipped)
{
        ck_assert_str_eq(fault_watch_line_text("3,1234,5678901,-;DMAR: DRHD: handling fault status reg 2"),
                         "DMAR: DRHD: handling fault status reg 2");
        ck_assert_str_eq(fault_watch_line_text("3,1234,5678901,-,caller=T1;text"), "text");
        ck_assert_ptr_null(fault_watch_line_text(" SUBSYSTEM=pci"));
        ck_assert_str_eq(fault_watch_line_text("(XEN) [VT-D]DMAR:[DMA Read]"), "(XEN) [VT-D]DMAR:[DMA Read]");
        ck_assert_str_eq(fault_watch_line_text("12,ab;x"), "12,ab;x");
}
END_TEST

START_TEST(test_fault_log_keeps_the_last_1024_and_counts_all)
{
        IommuFault f = { .source = FAULT_SOURCE_DMAR, .device = "0000:00:03.0" };
        FaultLog l;

        ck_assert_int_eq(fault_log_init(&l), 0);
        for (uint64_t i = 1; i <= FAULT_LOG_MAX + 10; i++) {
                f.address = i;
                ck_assert_ptr_nonnull(fault_log_add(&l, &f, "line", i));
        }
        ck_assert_uint_eq(l.n, FAULT_LOG_MAX);
        ck_assert_uint_eq(l.total, FAULT_LOG_MAX + 10);
        ck_assert_uint_eq(fault_log_get(&l, 0)->seq, 11);
        ck_assert_uint_eq(fault_log_get(&l, FAULT_LOG_MAX - 1)->seq, FAULT_LOG_MAX + 10);
        ck_assert_ptr_null(fault_log_get(&l, FAULT_LOG_MAX));
        ck_assert_uint_eq(fault_log_unacknowledged(&l), FAULT_LOG_MAX + 10);
        ck_assert_uint_eq(fault_log_acknowledge(&l), FAULT_LOG_MAX + 10);
        ck_assert_uint_eq(fault_log_unacknowledged(&l), 0);
        ck_assert_ptr_nonnull(fault_log_add(&l, &f, "line", 1));
        ck_assert_uint_eq(fault_log_unacknowledged(&l), 1);
        fault_log_done(&l);
}
END_TEST

typedef struct Seen {
        unsigned n;
        char device[PCI_ADDRESS_STRING_MAX];
        uint64_t seq;
} Seen;

static void on_fault(const FaultRecord *r, void *userdata)
{
        Seen *s = userdata;

        s->n++;
        s->seq = r->seq;
        snprintf(s->device, sizeof(s->device), "%s", r->fault.device);
}

static void append(const char *dir, const char *rel, const char *text)
{
        char *path;
        FILE *f;

        ck_assert(asprintf(&path, "%s/%s", dir, rel) > 0);
        f = fopen(path, "a");
        ck_assert_ptr_nonnull(f);
        fputs(text, f);
        fclose(f);
        free(path);
}

static void run_loop_for(sd_event *e, uint64_t usec)
{
        uint64_t until, now;

        ck_assert_int_ge(sd_event_now(e, CLOCK_MONOTONIC, &now), 0);
        until = now + usec;
        while (sd_event_now(e, CLOCK_MONOTONIC, &now) >= 0 && now < until)
                ck_assert_int_ge(sd_event_run(e, until - now), 0);
}

static void watch_appended_lines(const char *tree, const char *rel, const char *line, const char *device)
{
        char *dir = tree_new(recorded_tree(tree));
        FaultWatch *w = NULL;
        Seen seen = { 0 };
        sd_event *e = NULL;
        XenFacts *xen = NULL;
        Host h;

        host_open(&h, dir);
        ck_assert_int_eq(xen_facts_new(h.root, &xen), 0);
        ck_assert_int_eq(sd_event_new(&e), 0);
        ck_assert_int_eq(fault_watch_start(e, &h, xen, 20000, on_fault, &seen, &w), 0);
        ck_assert_msg(seen.n == 0, "the recorded log of %s holds no fault, yet %u were found", tree, seen.n);
        /* Half a line, then the rest: one fault, recorded when its line ends. */
        append(dir, rel, "6,9000,99999999,-;unrelated line\n");
        append(dir, rel, line);
        run_loop_for(e, 100000);
        ck_assert_uint_eq(seen.n, 0);
        append(dir, rel, "\n");
        run_loop_for(e, 100000);
        ck_assert_uint_eq(seen.n, 1);
        ck_assert_str_eq(seen.device, device);
        ck_assert_uint_eq(fault_watch_log(w)->total, 1);
        ck_assert_str_eq(fault_watch_source(w), streq(rel, "dev/kmsg") ? "/dev/kmsg" : "/xen/console");
        fault_watch_free(w);
        sd_event_unref(e);
        xen_facts_free(xen);
        host_close(&h);
        tree_remove(dir);
}

START_TEST(test_watch_follows_a_recorded_kmsg_as_it_grows)
{
        watch_appended_lines("intel-vtd", "dev/kmsg",
                             "3,9001,99999999,-;DMAR: [DMA Read NO_PASID] Request device [00:03.0] fault addr 0x1000 "
                             "[fault reason 0x06] PTE Read access is not set",
                             "0000:00:03.0");
        watch_appended_lines("amd-vi", "dev/kmsg",
                             "3,9001,99999999,-;vfio-pci 0000:00:03.0: AMD-Vi: Event logged [IO_PAGE_FAULT "
                             "domain=0x0002 address=0x1000 flags=0x0000]",
                             "0000:00:03.0");
}
END_TEST

START_TEST(test_watch_follows_the_xen_console_as_it_grows)
{
        watch_appended_lines("xen-dom0", "xen/console",
                             "(XEN) [VT-D]DMAR:[DMA Read] Request device [0000:00:03.0] fault addr 1000", "0000:00:03.0");
}
END_TEST

int main(void)
{
        Suite *s = suite_create("iommu-faults");
        TCase *tc = tcase_create("faults");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_real_format_fault_lines_are_recognized);
        tcase_add_test(tc, test_lines_around_faults_and_lookalikes_are_not_faults);
        tcase_add_test(tc, test_hostile_input_stays_in_bounds);
        tcase_add_test(tc, test_kmsg_records_lose_their_header_and_continuations_are_skipped);
        tcase_add_test(tc, test_fault_log_keeps_the_last_1024_and_counts_all);
        tcase_add_test(tc, test_watch_follows_a_recorded_kmsg_as_it_grows);
        tcase_add_test(tc, test_watch_follows_the_xen_console_as_it_grows);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
