/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Binding and releasing GPUs on copies of recorded trees. In a copy nothing reacts to a write, so a hook
 * plays the kernel's part (driver_override + drivers_probe, unbind, pciback's bind); every refusal is
 * checked to have written nothing at all. */
#include <check.h>
#include <limits.h>

#include "bind.h"
#include "test-iommu-util.h"

typedef struct Kernel {
        bool refuse_probe; /* play a kernel where another driver wins the probe */
} Kernel;

static void set_driver(const Sysroot *root, const char *device, const char *driver)
{
        char link[PATH_MAX], target[PATH_MAX];

        snprintf(link, sizeof(link), "%s/sys/bus/pci/devices/%s/driver", root->path, device);
        (void)unlink(link);
        if (!driver)
                return;
        snprintf(target, sizeof(target), "%s/sys/bus/pci/drivers/%s", root->path, driver);
        ck_assert_int_eq(symlink(target, link), 0);
}

static void kernel_hook(const Sysroot *root, const char *rel, const char *value, void *userdata)
{
        Kernel *k = userdata;
        char device[PCI_ADDRESS_STRING_MAX] = "", *override, rel_override[128];

        size_t n = strlen(rel);

        if (n == strlen("sys/bus/pci/devices/0000:00:00.0/driver/unbind") &&
            sscanf(rel, "sys/bus/pci/devices/%12[0-9a-f:.]/driver/unbind", device) == 1 &&
            streq(rel + n - strlen("/driver/unbind"), "/driver/unbind"))
                set_driver(root, device, NULL);
        else if (streq(rel, "sys/bus/pci/drivers_probe") && !k->refuse_probe) {
                snprintf(rel_override, sizeof(rel_override), "sys/bus/pci/devices/%s/driver_override", value);
                override = tree_read(root->path, rel_override);
                override[strcspn(override, "\n")] = '\0';
                set_driver(root, value, *override && !streq(override, "(null)") ? override : NULL);
                free(override);
        } else if (streq(rel, "sys/bus/pci/drivers/pciback/bind") && !k->refuse_probe)
                set_driver(root, value, "pciback");
}

typedef struct Fixture {
        char *dir;
        Host host;
        Kernel kernel;
        char why[IOMMU_WHY_MAX];
        char **devices;
        const char *driver;
} Fixture;

static void fixture_open(Fixture *f, const char *tree)
{
        *f = (Fixture){ .dir = tree ? tree_new(recorded_tree(tree)) : tree_new(NULL) };
        if (!tree)
                return;
        host_open(&f->host, f->dir);
        f->host.root->write_hook = kernel_hook;
        f->host.root->write_hook_data = &f->kernel;
}

static void fixture_close(Fixture *f)
{
        strv_free(f->devices);
        host_close(&f->host);
        tree_remove(f->dir);
}

static char *driver_of(Fixture *f, const char *device)
{
        char rel[128];
        char *name = NULL;

        snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s/driver", device);
        if (sysroot_link_name(f->host.root, rel, &name) < 0)
                return strdup("");
        return name;
}

/* Binding `address` with `driver` is refused with `code`, a sentence containing `text`, and no change. */
static void assert_bind_refused(Fixture *f, const char *address, const char *driver, int code, const char *text)
{
        char *before = tree_snapshot(f->dir), *after;
        int r = gpu_bind(&f->host, address, driver, &f->devices, &f->driver, f->why);

        ck_assert_msg(r == code, "binding %s to '%s' gave %d (%s), not %d", address, driver, r, f->why, code);
        ck_assert_msg(strstr(f->why, text), "the sentence '%s' lacks '%s'", f->why, text);
        after = tree_snapshot(f->dir);
        ck_assert_msg(streq(before, after), "refusing %s wrote below the root", address);
        free(before);
        free(after);
}

START_TEST(test_refusals_are_clear_and_change_nothing)
{
        Fixture f;

        fixture_open(&f, "intel-vtd");
        assert_bind_refused(&f, "zz", "", IOMMU_E_INVALID_ARGUMENT, "is not a PCI address");
        assert_bind_refused(&f, "../../../etc/passwd", "", IOMMU_E_INVALID_ARGUMENT, "is not a PCI address");
        assert_bind_refused(&f, "0000:00:03.0/../..", "", IOMMU_E_INVALID_ARGUMENT, "is not a PCI address");
        assert_bind_refused(&f, "0000:00:09.0", "", IOMMU_E_NO_SUCH_DEVICE, "no PCI device 0000:00:09.0");
        assert_bind_refused(&f, "00:04.0", "", IOMMU_E_NOT_A_GPU, "is not a GPU");
        assert_bind_refused(&f, "0000:00:02.0", "vfio-pci", IOMMU_E_HOST_CONSOLE, "firmware console");
        assert_bind_refused(&f, "0000:01:01.0", "", IOMMU_E_GROUP_NOT_VIABLE, "also holds 0000:01:02.0");
        assert_bind_refused(&f, "0000:00:03.0", "nvidia", IOMMU_E_INVALID_ARGUMENT, "Unknown driver");
        assert_bind_refused(&f, "0000:00:03.0", "../vfio-pci", IOMMU_E_INVALID_ARGUMENT, "Unknown driver");
        assert_bind_refused(&f, "0000:00:03.0", "pciback", IOMMU_E_NOT_SUPPORTED, "Use vfio-pci");
        fixture_close(&f);
}
END_TEST

START_TEST(test_platform_refusals)
{
        Fixture f;

        fixture_open(&f, "iommu-off");
        assert_bind_refused(&f, "0000:00:03.0", "", IOMMU_E_NOT_SUPPORTED, "the IOMMU is off");
        fixture_close(&f);

        fixture_open(&f, "xen-dom0");
        assert_bind_refused(&f, "0000:00:03.0", "vfio-pci", IOMMU_E_NOT_SUPPORTED, "VFIO does not work in a Xen dom0");
        fixture_close(&f);

        fixture_open(&f, "amd-vi");
        ck_assert_int_eq(system("true"), 0);
        {
                char *cmd;
                ck_assert(asprintf(&cmd, "rm -rf '%s/sys/bus/pci/drivers/vfio-pci'", f.dir) > 0);
                ck_assert_int_eq(system(cmd), 0);
                free(cmd);
        }
        assert_bind_refused(&f, "0000:00:03.0", "", IOMMU_E_NOT_SUPPORTED, "load the vfio-pci module");
        fixture_close(&f);
}
END_TEST

START_TEST(test_bind_and_release_the_whole_group_on_linux)
{
        Fixture f;
        char *s, *drv;

        fixture_open(&f, "amd-vi");
        ck_assert_int_eq(gpu_bind(&f.host, "00:03.0", "", &f.devices, &f.driver, f.why), 0);
        ck_assert_str_eq(f.driver, "vfio-pci");
        ck_assert_uint_eq(strv_length(f.devices), 1);
        ck_assert_str_eq(f.devices[0], "0000:00:03.0");
        s = tree_read(f.dir, "sys/bus/pci/devices/0000:00:03.0/driver_override");
        ck_assert_str_eq(s, "vfio-pci");
        free(s);
        s = tree_read(f.dir, "sys/bus/pci/drivers_probe");
        ck_assert_str_eq(s, "0000:00:03.0");
        free(s);
        drv = driver_of(&f, "0000:00:03.0");
        ck_assert_str_eq(drv, "vfio-pci");
        free(drv);
        strv_free(f.devices);
        f.devices = NULL;

        ck_assert_int_eq(gpu_unbind(&f.host, "0000:00:03.0", &f.devices, f.why), 0);
        ck_assert_uint_eq(strv_length(f.devices), 1);
        s = tree_read(f.dir, "sys/bus/pci/devices/0000:00:03.0/driver_override");
        ck_assert_str_eq(s, "\n");
        free(s);
        drv = driver_of(&f, "0000:00:03.0");
        ck_assert_str_eq(drv, "");
        free(drv);
        fixture_close(&f);
}
END_TEST

START_TEST(test_edu_binds_only_through_the_test_allow_list)
{
        Fixture f;
        char *drv;

        fixture_open(&f, "intel-vtd");
        assert_bind_refused(&f, "0000:00:04.0", "", IOMMU_E_NOT_A_GPU, "is not a GPU");
        ck_assert_int_eq(pci_id_list_add(&f.host.test_allow, (PciId){ 0x1234, 0x11e8 }), 0);
        ck_assert_int_eq(gpu_bind(&f.host, "0000:00:04.0", "vfio-pci", &f.devices, &f.driver, f.why), 0);
        drv = driver_of(&f, "0000:00:04.0");
        ck_assert_str_eq(drv, "vfio-pci");
        free(drv);
        fixture_close(&f);
}
END_TEST

START_TEST(test_a_failed_probe_is_rolled_back)
{
        Fixture f;
        char *s;

        fixture_open(&f, "amd-vi");
        f.kernel.refuse_probe = true;
        ck_assert_int_eq(gpu_bind(&f.host, "0000:00:03.0", "", &f.devices, &f.driver, f.why), IOMMU_E_FAILED);
        ck_assert_msg(strstr(f.why, "given back to the host"), "%s", f.why);
        s = tree_read(f.dir, "sys/bus/pci/devices/0000:00:03.0/driver_override");
        ck_assert_str_eq(s, "\n");
        free(s);
        fixture_close(&f);
}
END_TEST

static void in_use_tree(Fixture *f, const char *refcnt)
{
        fixture_open(f, NULL);
        tree_write(f->dir, "proc/cmdline", "intel_iommu=on iommu.strict=1\n");
        tree_add_device(f->dir, "0000:41:00.0", "0x10de\n", "0x2330\n", "0x030200\n", 12, "nvidia");
        tree_add_device(f->dir, "0000:41:00.1", "0x10de\n", "0x22a3\n", "0x040300\n", 12, NULL);
        tree_link(f->dir, "sys/bus/pci/drivers/nvidia/module", "../../../../module/nvidia");
        tree_write(f->dir, "sys/module/nvidia/refcnt", refcnt);
        tree_write(f->dir, "sys/bus/pci/drivers/vfio-pci/bind", "");
        host_open(&f->host, f->dir);
        f->host.root->write_hook = kernel_hook;
        f->host.root->write_hook_data = &f->kernel;
}

START_TEST(test_a_gpu_whose_driver_has_users_is_in_use)
{
        Fixture f;
        char *s;

        in_use_tree(&f, "3\n");
        assert_bind_refused(&f, "0000:41:00.0", "", IOMMU_E_DEVICE_IN_USE, "module nvidia");
        fixture_close(&f);

        /* Idle: the group (the GPU and its audio function) moves, the GPU is taken from nvidia first. */
        in_use_tree(&f, "0\n");
        ck_assert_int_eq(gpu_bind(&f.host, "0000:41:00.0", "", &f.devices, &f.driver, f.why), 0);
        ck_assert_uint_eq(strv_length(f.devices), 2);
        s = tree_read(f.dir, "sys/bus/pci/drivers/nvidia/unbind");
        ck_assert_str_eq(s, "0000:41:00.0");
        free(s);
        strv_free(f.devices);
        f.devices = NULL;
        /* A guest holds it now (enabled by vfio-pci): releasing it is refused. */
        tree_write(f.dir, "sys/devices/pci0000:00/0000:41:00.0/enable", "1\n");
        {
                char *before = tree_snapshot(f.dir), *after;
                ck_assert_int_eq(gpu_unbind(&f.host, "0000:41:00.0", &f.devices, f.why), IOMMU_E_DEVICE_IN_USE);
                ck_assert_msg(strstr(f.why, "a guest or another VFIO user holds it"), "%s", f.why);
                after = tree_snapshot(f.dir);
                ck_assert(streq(before, after));
                free(before);
                free(after);
        }
        fixture_close(&f);
}
END_TEST

START_TEST(test_xen_uses_pciback)
{
        Fixture f;
        char *s, *drv;

        fixture_open(&f, "xen-dom0");
        ck_assert_int_eq(gpu_unbind(&f.host, "0000:00:03.0", &f.devices, f.why), 0);
        ck_assert_uint_eq(strv_length(f.devices), 1);
        drv = driver_of(&f, "0000:00:03.0");
        ck_assert_str_eq(drv, "");
        free(drv);
        strv_free(f.devices);
        f.devices = NULL;
        ck_assert_int_eq(gpu_bind(&f.host, "0000:00:03.0", "", &f.devices, &f.driver, f.why), 0);
        ck_assert_str_eq(f.driver, "pciback");
        s = tree_read(f.dir, "sys/bus/pci/drivers/pciback/bind");
        ck_assert_str_eq(s, "0000:00:03.0");
        free(s);
        drv = driver_of(&f, "0000:00:03.0");
        ck_assert_str_eq(drv, "pciback");
        free(drv);
        fixture_close(&f);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("iommu-bind");
        TCase *tc = tcase_create("bind");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_refusals_are_clear_and_change_nothing);
        tcase_add_test(tc, test_platform_refusals);
        tcase_add_test(tc, test_bind_and_release_the_whole_group_on_linux);
        tcase_add_test(tc, test_edu_binds_only_through_the_test_allow_list);
        tcase_add_test(tc, test_a_failed_probe_is_rolled_back);
        tcase_add_test(tc, test_a_gpu_whose_driver_has_users_is_in_use);
        tcase_add_test(tc, test_xen_uses_pciback);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
