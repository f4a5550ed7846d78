/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The IOMMU verdict and its evidence, over trees recorded from real kernels (Intel VT-d, AMD-Vi, IOMMU off,
 * a Xen dom0) and over small trees for the modes no recording shows. */
#include <check.h>
#include <stdarg.h>

#include "status.h"
#include "vm-confinement.h"
#include "test-iommu-util.h"

typedef struct Verdict {
        Host host;
        XenFacts *xen;
        IommuStatus status;
        char *dir;
} Verdict;

static void verdict_of_dir(Verdict *v, char *dir, uint32_t faults)
{
        *v = (Verdict){ .dir = dir };
        host_open(&v->host, dir);
        ck_assert_int_eq(xen_facts_new(v->host.root, &v->xen), 0);
        ck_assert_int_eq(iommu_status_compute(&v->host, v->xen, faults, faults ? "DMAR: [DMA Read NO_PASID] …" : NULL,
                                              "kmsg", &v->status),
                         0);
}

static void verdict_of(Verdict *v, const char *name)
{
        verdict_of_dir(v, recorded_tree(name), 0);
}

static void verdict_done(Verdict *v, bool remove_dir)
{
        iommu_status_done(&v->status);
        xen_facts_free(v->xen);
        host_close(&v->host);
        if (remove_dir)
                tree_remove(v->dir);
        else
                free(v->dir);
}

/* An evidence entry for `conclusion` from `source` whose text contains `text`. */
static bool has_evidence(const IommuStatus *s, const char *conclusion, const char *source, const char *text)
{
        for (size_t i = 0; i < s->n_evidence; i++)
                if (streq(s->evidence[i].conclusion, conclusion) && streq(s->evidence[i].source, source) &&
                    strstr(s->evidence[i].text, text))
                        return true;
        return false;
}

static bool has_problem(const IommuStatus *s, const char *text)
{
        for (char **p = s->problems; p && *p; p++)
                if (strstr(*p, text))
                        return true;
        return false;
}

static char *describe(const IommuStatus *s)
{
        static char buf[16384];
        size_t n = 0;

        for (size_t i = 0; i < s->n_evidence && n < sizeof(buf) - 1; i++)
                n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\n  [%s] %s: %s", s->evidence[i].conclusion,
                                      s->evidence[i].source, s->evidence[i].text);
        for (char **p = s->problems; p && *p && n < sizeof(buf) - 1; p++)
                n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\n  problem: %s", *p);
        return buf;
}

START_TEST(test_intel_vtd_host_is_strict_with_evidence_but_not_compliant)
{
        Verdict v;

        verdict_of(&v, "intel-vtd");
        ck_assert_int_eq(v.status.platform, PLATFORM_LINUX);
        ck_assert_msg(v.status.enabled, "VT-d should be found on:%s", describe(&v.status));
        ck_assert_str_eq(v.status.vendor, "intel");
        ck_assert_str_eq(v.status.mode, "strict");
        ck_assert(has_evidence(&v.status, "iommu.enabled", "/sys/class/iommu", "dmar0"));
        ck_assert(has_evidence(&v.status, "iommu.enabled", "/sys/kernel/iommu_groups", "6 IOMMU groups"));
        ck_assert(has_evidence(&v.status, "iommu.enabled", "/proc/cmdline", "intel_iommu=on"));
        ck_assert(has_evidence(&v.status, "iommu.mode", "/proc/cmdline", "iommu.strict=1"));
        ck_assert(has_evidence(&v.status, "iommu.mode", "/sys/kernel/iommu_groups/*/type", "DMA (strict): 6"));
        ck_assert(has_evidence(&v.status, "iommu.vendor", "/sys/class/iommu/dmar0/intel-iommu/version", "1:0"));
        /* Three display devices; only 00:03.0 is on vfio-pci. */
        ck_assert_uint_eq(v.status.gpus, 3);
        ck_assert_uint_eq(v.status.gpus_isolated, 1);
        ck_assert(!v.status.compliant);
        ck_assert_msg(has_problem(&v.status, "GPU 0000:00:02.0 is not isolated"), "%s", describe(&v.status));
        ck_assert(has_problem(&v.status, "GPU 0000:01:01.0 is not isolated: IOMMU group 4 also holds 0000:01:02.0"));
        ck_assert(!has_problem(&v.status, "0000:00:03.0"));
        ck_assert(has_evidence(&v.status, "gpu.0000:00:03.0.isolated", "/sys/bus/pci/devices/*/driver", "vfio-pci"));
        verdict_done(&v, false);
}
END_TEST

START_TEST(test_amd_vi_host_is_strict_by_its_group_types)
{
        Verdict v;

        verdict_of(&v, "amd-vi");
        ck_assert_msg(v.status.enabled, "AMD-Vi should be found on:%s", describe(&v.status));
        ck_assert_str_eq(v.status.vendor, "amd");
        ck_assert_str_eq(v.status.mode, "strict");
        ck_assert(has_evidence(&v.status, "iommu.enabled", "/sys/class/iommu", "ivhd0"));
        ck_assert(has_evidence(&v.status, "iommu.vendor", "/sys/class/iommu/ivhd0/amd-iommu/features", "AMD-Vi"));
        ck_assert(has_evidence(&v.status, "iommu.enabled", "/proc/cmdline", "amd_iommu=on"));
        ck_assert_uint_eq(v.status.gpus, 3);
        ck_assert_uint_eq(v.status.gpus_isolated, 0);
        ck_assert(!v.status.compliant);
        verdict_done(&v, false);
}
END_TEST

START_TEST(test_iommu_off_host_says_so_and_why)
{
        Verdict v;

        verdict_of(&v, "iommu-off");
        ck_assert(!v.status.enabled);
        ck_assert_str_eq(v.status.vendor, "");
        ck_assert_str_eq(v.status.mode, "off");
        ck_assert(has_evidence(&v.status, "iommu.enabled", "/sys/kernel/iommu_groups", "0 IOMMU groups"));
        ck_assert(has_evidence(&v.status, "iommu.enabled", "/sys/class/iommu", "no IOMMU units"));
        ck_assert(!v.status.compliant);
        ck_assert_msg(has_problem(&v.status, "The IOMMU is off"), "%s", describe(&v.status));
        ck_assert(has_problem(&v.status, "the IOMMU is off, so nothing confines its DMA"));
        verdict_done(&v, false);
}
END_TEST

START_TEST(test_xen_dom0_with_strict_dom0_iommu_is_compliant)
{
        Verdict v;

        verdict_of(&v, "xen-dom0");
        ck_assert_int_eq(v.status.platform, PLATFORM_XEN_DOM0);
        ck_assert_msg(v.status.enabled, "Xen's IOMMU should be on:%s", describe(&v.status));
        ck_assert(v.status.xen_directio);
        ck_assert_str_eq(v.status.vendor, "intel");
        ck_assert_str_eq(v.status.mode, "strict");
        ck_assert(has_evidence(&v.status, "platform", "/proc/xen/capabilities", "control_d"));
        ck_assert(has_evidence(&v.status, "iommu.enabled", "/xen/virt_caps", "hvm_directio"));
        ck_assert(has_evidence(&v.status, "iommu.mode", "/xen/commandline", "dom0-iommu=strict"));
        ck_assert(has_evidence(&v.status, "iommu.enabled", "/xen/console", "I/O virtualisation enabled"));
        ck_assert(has_evidence(&v.status, "iommu.vendor", "/xen/console", "Intel VT-d"));
        /* 00:03.0 is on pciback; the other two stay in dom0, confined by dom0-iommu=strict. */
        ck_assert_uint_eq(v.status.gpus, 3);
        ck_assert_uint_eq(v.status.gpus_isolated, 1);
        ck_assert_msg(v.status.compliant, "should be compliant:%s", describe(&v.status));
        verdict_done(&v, false);
}
END_TEST

START_TEST(test_unacknowledged_faults_break_compliance)
{
        Verdict v;

        verdict_of_dir(&v, recorded_tree("xen-dom0"), 2);
        ck_assert(!v.status.compliant);
        ck_assert_uint_eq(v.status.faults, 2);
        ck_assert(has_problem(&v.status, "2 IOMMU fault(s) were recorded and not acknowledged"));
        ck_assert(has_evidence(&v.status, "faults", "kmsg", "DMAR"));
        verdict_done(&v, false);
}
END_TEST

START_TEST(test_unwatched_faults_break_compliance)
{
        Verdict v = { .dir = recorded_tree("xen-dom0") };

        host_open(&v.host, v.dir);
        ck_assert_int_eq(xen_facts_new(v.host.root, &v.xen), 0);
        ck_assert_int_eq(iommu_status_compute(&v.host, v.xen, 0, NULL, "", &v.status), 0);
        ck_assert_msg(!v.status.compliant, "a host whose faults are not watched passed:%s", describe(&v.status));
        ck_assert(has_problem(&v.status, "IOMMU faults are not being watched"));
        ck_assert(has_evidence(&v.status, "faults", "", "not watched"));
        verdict_done(&v, false);
}
END_TEST

START_TEST(test_xen_dom0_without_strict_is_reported_lazy)
{
        char *dir = tree_new(recorded_tree("xen-dom0"));
        Verdict v;

        tree_write(dir, "xen/commandline", "console=com1 iommu=verbose\n");
        verdict_of_dir(&v, dir, 0);
        ck_assert(v.status.enabled);
        ck_assert_str_eq(v.status.mode, "lazy");
        ck_assert(!v.status.compliant);
        ck_assert(has_problem(&v.status, "dom0-iommu=strict"));
        ck_assert(has_problem(&v.status, "GPU 0000:00:02.0 is used by dom0 while dom0-iommu is not strict"));
        ck_assert(!has_problem(&v.status, "GPU 0000:00:03.0"));
        verdict_done(&v, true);
}
END_TEST

START_TEST(test_xen_without_directio_has_the_iommu_off)
{
        char *dir = tree_new(recorded_tree("xen-dom0"));
        Verdict v;

        tree_write(dir, "xen/virt_caps", "pv hvm gnttab-v1 gnttab-v2\n");
        verdict_of_dir(&v, dir, 0);
        ck_assert(!v.status.enabled);
        ck_assert_str_eq(v.status.mode, "off");
        ck_assert(has_problem(&v.status, "The IOMMU is off"));
        verdict_done(&v, true);
}
END_TEST

static void linux_tree_with_group_type(const char *dir, const char *type, const char *cmdline)
{
        tree_write(dir, "proc/cmdline", cmdline);
        tree_add_device(dir, "0000:41:00.0", "0x10de\n", "0x2330\n", "0x030200\n", 12, "vfio-pci");
        tree_write(dir, "sys/kernel/iommu_groups/12/type", type);
        tree_link(dir, "sys/class/iommu/dmar0", "../../devices/virtual/iommu/dmar0");
        tree_write(dir, "sys/devices/virtual/iommu/dmar0/intel-iommu/version", "1:0\n");
}

START_TEST(test_lazy_and_passthrough_groups_are_not_compliant)
{
        static const struct {
                const char *type, *cmdline, *mode, *problem;
        } cases[] = {
                { "DMA-FQ\n", "intel_iommu=on\n", "lazy", "iommu.strict=1" },
                { "identity\n", "intel_iommu=on iommu=pt\n", "passthrough", "passthrough mode" },
                { "DMA\n", "intel_iommu=on iommu.strict=1\n", "strict", NULL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *dir = tree_new(NULL);
                Verdict v;

                linux_tree_with_group_type(dir, cases[i].type, cases[i].cmdline);
                verdict_of_dir(&v, dir, 0);
                ck_assert_msg(streq(v.status.mode, cases[i].mode), "group type %s gave mode %s", cases[i].type,
                              v.status.mode);
                ck_assert_uint_eq(v.status.gpus_isolated, 1);
                if (cases[i].problem)
                        ck_assert_msg(has_problem(&v.status, cases[i].problem) && !v.status.compliant, "%s",
                                      describe(&v.status));
                else
                        ck_assert_msg(v.status.compliant, "should be compliant:%s", describe(&v.status));
                verdict_done(&v, true);
        }
}
END_TEST

START_TEST(test_an_empty_root_is_unknown_and_never_compliant)
{
        Verdict v;

        verdict_of_dir(&v, tree_new(NULL), 0);
        ck_assert_int_eq(v.status.platform, PLATFORM_UNKNOWN);
        ck_assert(!v.status.compliant);
        ck_assert(has_problem(&v.status, "could not be recognized"));
        verdict_done(&v, true);
}
END_TEST

static void assert_confinement(const char *tree, const char *resource, const char *domain, int group, bool protected_)
{
        char *dir = recorded_tree(tree);
        VmConfinement c;
        XenFacts *xen;
        Host h;

        host_open(&h, dir);
        ck_assert_int_eq(xen_facts_new(h.root, &xen), 0);
        ck_assert_int_eq(vm_confinement_compute(&h, xen, resource, &c), 0);
        ck_assert_msg(streq(c.domain, domain) && c.group == group && c.protected_ == protected_,
                      "%s on %s: domain '%s', group %d, protected %d (%s)", resource, tree, c.domain, c.group,
                      c.protected_, c.reason);
        ck_assert(protected_ || *c.reason);
        xen_facts_free(xen);
        host_close(&h);
        free(dir);
}

START_TEST(test_vm_confinement_follows_the_pools_gpu)
{
        assert_confinement("intel-vtd", "gpu:0000:00:03.0", "vfio:group2", 2, true);
        assert_confinement("intel-vtd", "sm-share:0000:00:03.0:50", "vfio:group2", 2, true);
        assert_confinement("intel-vtd", "gpu:00:02.0", "host:group1", 1, false);
        assert_confinement("intel-vtd", "gpu:GPU-5e9f2c1a-0000-0000-0000-000000000000", "", -1, false);
        assert_confinement("intel-vtd", "", "", -1, false);
        assert_confinement("intel-vtd", "gpu:0000:09:00.0", "", -1, false);
        assert_confinement("iommu-off", "gpu:0000:00:03.0", "", -1, false);
        assert_confinement("xen-dom0", "gpu:0000:00:02.0", "xen:dom0", -1, true);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("iommu-status");
        TCase *tc = tcase_create("status");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_intel_vtd_host_is_strict_with_evidence_but_not_compliant);
        tcase_add_test(tc, test_amd_vi_host_is_strict_by_its_group_types);
        tcase_add_test(tc, test_iommu_off_host_says_so_and_why);
        tcase_add_test(tc, test_xen_dom0_with_strict_dom0_iommu_is_compliant);
        tcase_add_test(tc, test_unacknowledged_faults_break_compliance);
        tcase_add_test(tc, test_unwatched_faults_break_compliance);
        tcase_add_test(tc, test_xen_dom0_without_strict_is_reported_lazy);
        tcase_add_test(tc, test_xen_without_directio_has_the_iommu_off);
        tcase_add_test(tc, test_lazy_and_passthrough_groups_are_not_compliant);
        tcase_add_test(tc, test_an_empty_root_is_unknown_and_never_compliant);
        tcase_add_test(tc, test_vm_confinement_follows_the_pools_gpu);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
