/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GPU discovery over recorded trees: which devices are GPUs, their groups and members, viability, the
 * firmware console, the test-only allow-list, and strict PCI address parsing. */
#include <check.h>

#include "gpus.h"
#include "test-iommu-util.h"

static const Gpu *find(const GpuList *l, const char *address)
{
        PciAddress a;

        ck_assert_int_eq(pci_address_parse(address, &a), 0);
        return gpu_list_find_gpu(l, &a);
}

START_TEST(test_pci_addresses_are_parsed_strictly)
{
        static const char *const bad[] = { "", "0000:41:00", "41:00.8", "41:20.0", "0000:41:00.0 ", " 41:00.0",
                                           "00000:41:00.0", "0000:41:00.0.0", "g000:41:00.0", "../../../etc",
                                           "0000/41:00.0", "41.00.0", "0000:41:00.00" };
        char buf[PCI_ADDRESS_STRING_MAX];
        PciAddress a;
        PciId id;

        ck_assert_int_eq(pci_address_parse("41:00.1", &a), 0);
        ck_assert_str_eq(pci_address_format(&a, buf), "0000:41:00.1");
        ck_assert_int_eq(pci_address_parse("ABCD:Ef:1F.7", &a), 0);
        ck_assert_str_eq(pci_address_format(&a, buf), "abcd:ef:1f.7");
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(pci_address_parse(bad[i], &a) < 0, "'%s' should be refused", bad[i]);
        ck_assert_int_eq(pci_id_parse("1234:11e8", &id), 0);
        ck_assert_uint_eq(id.vendor, 0x1234);
        ck_assert_uint_eq(id.device, 0x11e8);
        ck_assert_int_lt(pci_id_parse("1234:11e", &id), 0);
        ck_assert_int_lt(pci_id_parse("1234:11e88", &id), 0);
        ck_assert_int_lt(pci_id_parse("1234-11e8", &id), 0);
}
END_TEST

START_TEST(test_relative_paths_cannot_climb_out_of_the_root)
{
        ck_assert(sysroot_rel_is_valid("sys/bus/pci/devices/0000:00:03.0/driver_override"));
        ck_assert(!sysroot_rel_is_valid("../etc/shadow"));
        ck_assert(!sysroot_rel_is_valid("sys/../../etc"));
        ck_assert(!sysroot_rel_is_valid("/etc/shadow"));
        ck_assert(!sysroot_rel_is_valid("sys//bus"));
        ck_assert(!sysroot_rel_is_valid("sys/./bus"));
        ck_assert(!sysroot_rel_is_valid("sys/bus/"));
        ck_assert(!sysroot_rel_is_valid(""));
}
END_TEST

START_TEST(test_intel_vtd_tree_gpus_groups_and_viability)
{
        char *dir = recorded_tree("intel-vtd");
        GpuList l = { 0 };
        const Gpu *g;
        Host h;

        host_open(&h, dir);
        ck_assert_int_eq(gpus_discover(&h, &l), 0);
        ck_assert_uint_eq(l.n_devices, 10);
        ck_assert_uint_eq(l.n_gpus, 3);
        /* The firmware console. */
        g = find(&l, "0000:00:02.0");
        ck_assert_ptr_nonnull(g);
        ck_assert(g->device->boot_vga);
        ck_assert_uint_eq(g->device->class, 0x030000);
        ck_assert_int_eq(g->device->iommu_group, 1);
        /* Alone in its group, on vfio-pci. */
        g = find(&l, "0000:00:03.0");
        ck_assert_ptr_nonnull(g);
        ck_assert_str_eq(g->device->driver, "vfio-pci");
        ck_assert_uint_eq(g->n_members, 1);
        ck_assert(g->group_viable && g->isolated && !g->device->boot_vga);
        ck_assert_uint_eq(g->device->vendor_id, 0x1234);
        ck_assert_uint_eq(g->device->device_id, 0x1111);
        /* Behind a bridge, with the watchdog on its host driver: not viable. */
        g = find(&l, "0000:01:01.0");
        ck_assert_ptr_nonnull(g);
        ck_assert_uint_eq(g->n_members, 3);
        ck_assert(!g->group_viable && !g->isolated);
        ck_assert_msg(strstr(g->viable_reason, "0000:01:02.0") && strstr(g->viable_reason, "i6300ESB"), "%s",
                      g->viable_reason);
        ck_assert_ptr_null(find(&l, "0000:00:04.0"));
        gpu_list_done(&l);
        host_close(&h);
        free(dir);
}
END_TEST

START_TEST(test_test_allow_list_admits_the_edu_device_only_when_given)
{
        char *dir = recorded_tree("intel-vtd");
        GpuList l = { 0 };
        const Gpu *g;
        Host h;

        host_open(&h, dir);
        ck_assert_int_eq(pci_id_list_add(&h.test_allow, (PciId){ 0x1234, 0x11e8 }), 0);
        ck_assert_int_eq(gpus_discover(&h, &l), 0);
        ck_assert_uint_eq(l.n_gpus, 4);
        g = find(&l, "0000:00:04.0");
        ck_assert_ptr_nonnull(g);
        ck_assert(g->allowed_by_test_list);
        ck_assert(!find(&l, "0000:00:03.0")->allowed_by_test_list);
        gpu_list_done(&l);
        host_close(&h);
        free(dir);
}
END_TEST

START_TEST(test_without_groups_members_are_the_gpus_own_functions)
{
        static const char *const trees[] = { "iommu-off", "xen-dom0" };

        for (size_t i = 0; i < ELEMENTSOF(trees); i++) {
                char *dir = recorded_tree(trees[i]);
                GpuList l = { 0 };
                const Gpu *g;
                Host h;

                host_open(&h, dir);
                ck_assert_int_eq(gpus_discover(&h, &l), 0);
                g = find(&l, "0000:00:03.0");
                ck_assert_ptr_nonnull(g);
                ck_assert_int_eq(g->device->iommu_group, -1);
                ck_assert_uint_eq(g->n_members, 1);
                /* Linux without an IOMMU: nothing confines DMA. Xen: the hypervisor's IOMMU does, pciback isolates. */
                ck_assert(g->group_viable == (i == 1));
                ck_assert(g->isolated == (i == 1));
                gpu_list_done(&l);
                host_close(&h);
                free(dir);
        }
}
END_TEST

START_TEST(test_names_come_from_the_pci_id_database)
{
        char *dir = recorded_tree("intel-vtd");
        GpuList l = { 0 };
        const PciDevice *d;
        PciAddress a;
        Host h;

        if (access("/usr/share/misc/pci.ids", R_OK) < 0 && access("/usr/share/hwdata/pci.ids", R_OK) < 0)
                return; /* no database on this machine: names are "" and nothing else changes */
        host_open(&h, dir);
        ck_assert_int_eq(gpus_discover(&h, &l), 0);
        ck_assert_int_eq(pci_address_parse("0000:01:02.0", &a), 0);
        d = gpu_list_find_device(&l, &a);
        ck_assert_str_eq(d->vendor_name, "Intel Corporation");
        ck_assert_msg(strstr(d->device_name, "6300ESB"), "device name '%s'", d->device_name);
        gpu_list_done(&l);
        host_close(&h);
        free(dir);
}
END_TEST

START_TEST(test_a_malformed_tree_fails_cleanly)
{
        char *dir = tree_new(NULL);
        GpuList l = { 0 };
        Host h;

        /* A device directory without vendor/device files: libpci gives up; the scan must fail, not exit. */
        tree_write(dir, "sys/devices/pci0000:00/0000:00:09.0/class", "0x030000\n");
        tree_link(dir, "sys/bus/pci/devices/0000:00:09.0", "../../../devices/pci0000:00/0000:00:09.0");
        host_open(&h, dir);
        ck_assert_int_lt(gpus_discover(&h, &l), 0);
        host_close(&h);
        tree_remove(dir);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("iommu-gpus");
        TCase *tc = tcase_create("gpus");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_pci_addresses_are_parsed_strictly);
        tcase_add_test(tc, test_relative_paths_cannot_climb_out_of_the_root);
        tcase_add_test(tc, test_intel_vtd_tree_gpus_groups_and_viability);
        tcase_add_test(tc, test_test_allow_list_admits_the_edu_device_only_when_given);
        tcase_add_test(tc, test_without_groups_members_are_the_gpus_own_functions);
        tcase_add_test(tc, test_names_come_from_the_pci_id_database);
        tcase_add_test(tc, test_a_malformed_tree_fails_cleanly);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
