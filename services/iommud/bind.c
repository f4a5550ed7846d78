/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Binding and releasing a GPU's group. Every refusal is decided before the first write; the writes follow
 * the kernel's documented sequence (driver_override, unbind, drivers_probe — or pciback's new_slot and
 * bind), and the result is checked against the driver link afterwards. */
#include <stdarg.h>

#include "bind.h"
#include "log.h"

static int refuse(char why[static IOMMU_WHY_MAX], int code, const char *format, ...) _printf_(3, 4);
static int refuse(char why[static IOMMU_WHY_MAX], int code, const char *format, ...)
{
        va_list ap;

        va_start(ap, format);
        vsnprintf(why, IOMMU_WHY_MAX, format, ap);
        va_end(ap);
        return code;
}

/* A driver or module name read from a link below the root, before it becomes part of a path. */
static bool name_is_safe(const char *s)
{
        if (isempty(s) || strlen(s) > 64 || streq(s, ".") || streq(s, ".."))
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      strchr("_.-", *p)))
                        return false;
        return true;
}

static int find_gpu(const Host *h, const char *address, GpuList *l, const Gpu **ret, char why[static IOMMU_WHY_MAX])
{
        PciAddress a;
        const PciDevice *d;
        char name[PCI_ADDRESS_STRING_MAX];
        int r;

        if (pci_address_parse(address, &a) < 0)
                return refuse(why, IOMMU_E_INVALID_ARGUMENT,
                              "'%.32s' is not a PCI address; write it as 0000:41:00.0 (or 41:00.0).", address);
        r = gpus_discover(h, l);
        if (r < 0)
                return r;
        d = gpu_list_find_device(l, &a);
        if (!d)
                return refuse(why, IOMMU_E_NO_SUCH_DEVICE,
                              "There is no PCI device %s on this host; ListGpus shows the GPUs.",
                              pci_address_format(&a, name));
        *ret = gpu_list_find_gpu(l, &a);
        if (!*ret)
                return refuse(why, IOMMU_E_NOT_A_GPU,
                              "%s (%04x:%04x, class 0x%06x%s%s) is not a GPU; only display devices are bound.",
                              d->name, d->vendor_id, d->device_id, d->class, isempty(d->device_name) ? "" : ", ",
                              d->device_name);
        return 0;
}

static int check_driver(const Host *h, const char *driver, const char **ret, char why[static IOMMU_WHY_MAX])
{
        char rel[64];

        if (h->platform == PLATFORM_XEN_DOMU || h->platform == PLATFORM_UNKNOWN)
                return refuse(why, IOMMU_E_NOT_SUPPORTED,
                              "This system is %s: GPUs are bound on the host (a Linux/KVM host or the Xen dom0).",
                              h->platform == PLATFORM_XEN_DOMU ? "a Xen guest (domU)" : "of an unknown kind");
        if (isempty(driver))
                driver = platform_isolation_driver(h->platform);
        if (!streq(driver, "vfio-pci") && !streq(driver, "pciback"))
                return refuse(why, IOMMU_E_INVALID_ARGUMENT,
                              "Unknown driver '%.32s'; use vfio-pci, pciback, or \"\" for this platform's own.", driver);
        if (streq(driver, "vfio-pci") && platform_is_xen(h->platform))
                return refuse(why, IOMMU_E_NOT_SUPPORTED,
                              "VFIO does not work in a Xen dom0: the hypervisor owns the IOMMU. Use pciback.");
        if (streq(driver, "pciback") && !platform_is_xen(h->platform))
                return refuse(why, IOMMU_E_NOT_SUPPORTED,
                              "pciback hands devices to Xen guests; this is a Linux host without Xen. Use vfio-pci.");
        snprintf(rel, sizeof(rel), "sys/bus/pci/drivers/%s", driver);
        if (!sysroot_is_dir(h->root, rel))
                return refuse(why, IOMMU_E_NOT_SUPPORTED,
                              "The %s driver is not loaded; load the %s module (modprobe %s) and try again.", driver,
                              streq(driver, "pciback") ? "xen-pciback" : "vfio-pci",
                              streq(driver, "pciback") ? "xen-pciback" : "vfio-pci");
        *ret = driver;
        return 0;
}

/* In use: a device held by vfio-pci, pciback or pci-stub counts as in use while it is enabled (a guest or a
 * VFIO user opened it); one held by another driver while that driver's module has users (its refcnt: open
 * device files and modules that depend on it — for nvidia, nvidia-uvm and nvidia-modeset count too). A
 * driver built into the kernel cannot be measured, so its devices count as in use. */
static int check_not_in_use(const Host *h, const PciDevice *m, char why[static IOMMU_WHY_MAX])
{
        _cleanup_free_ char *module = NULL;
        unsigned long long count = 0;
        char rel[128];

        if (isempty(m->driver))
                return 0;
        if (!name_is_safe(m->driver))
                return refuse(why, IOMMU_E_DEVICE_IN_USE, "%s is bound to a driver with an unexpected name.", m->name);
        if (streq(m->driver, "vfio-pci") || streq(m->driver, "pciback") || streq(m->driver, "pci-stub")) {
                snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s/enable", m->name);
                if (sysroot_read_u64(h->root, rel, &count) >= 0 && count == 0)
                        return 0;
                return refuse(why, IOMMU_E_DEVICE_IN_USE,
                              "%s is in use: %s has it enabled, so a guest or another VFIO user holds it. Stop "
                              "that first.", m->name, m->driver);
        }
        snprintf(rel, sizeof(rel), "sys/bus/pci/drivers/%s/module", m->driver);
        if (sysroot_link_name(h->root, rel, &module) < 0 || !name_is_safe(module))
                return refuse(why, IOMMU_E_DEVICE_IN_USE,
                              "%s is bound to %s, which is built into the kernel: whether it is in use cannot be "
                              "told, so it is left alone. Unbind it by hand once it is idle.", m->name, m->driver);
        snprintf(rel, sizeof(rel), "sys/module/%s/refcnt", module);
        if (sysroot_read_u64(h->root, rel, &count) < 0 || count > 0)
                return refuse(why, IOMMU_E_DEVICE_IN_USE,
                              "%s is in use: its driver %s (module %s) has %s users — open device files or modules "
                              "that depend on it (for nvidia: nvidia-uvm, nvidia-modeset, the persistence daemon, "
                              "CUDA programs). Stop them first.", m->name, m->driver, module,
                              count > 0 ? "active" : "an unknown number of");
        return 0;
}

static bool is_bound_to(const Host *h, const char *device, const char *driver)
{
        _cleanup_free_ char *now = NULL;
        char rel[96];

        snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s/driver", device);
        if (sysroot_link_name(h->root, rel, &now) < 0)
                return isempty(driver);
        return streq_ptr(now, driver);
}

static int write_device(const Host *h, const char *device, const char *attribute, const char *value)
{
        char rel[128];

        snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s/%s", device, attribute);
        return sysroot_write(h->root, rel, value);
}

static int rebind_one(const Host *h, const PciDevice *m, const char *driver)
{
        char rel[96];
        int r;

        r = write_device(h, m->name, "driver_override", driver);
        if (r >= 0 && !isempty(m->driver))
                r = write_device(h, m->name, "driver/unbind", m->name);
        if (r < 0)
                return r;
        if (streq(driver, "pciback")) {
                /* new_slot makes pciback claim the device; bind then attaches it now. */
                (void)sysroot_write(h->root, "sys/bus/pci/drivers/pciback/new_slot", m->name);
                snprintf(rel, sizeof(rel), "sys/bus/pci/drivers/%s/bind", driver);
                return sysroot_write(h->root, rel, m->name);
        }
        return sysroot_write(h->root, "sys/bus/pci/drivers_probe", m->name);
}

/* Back to the host: no override, off the isolating driver, probed again so the host's driver takes it. */
static int release_one(const Host *h, const char *device, const char *driver)
{
        int r = write_device(h, device, "driver_override", "\n");

        if (r >= 0 && is_bound_to(h, device, driver))
                r = write_device(h, device, "driver/unbind", device);
        if (streq(driver, "pciback"))
                (void)sysroot_write(h->root, "sys/bus/pci/drivers/pciback/remove_slot", device);
        if (r >= 0)
                r = sysroot_write(h->root, "sys/bus/pci/drivers_probe", device);
        return r;
}

/* The devices that change hands: every member but bridges (the kernel never binds those to vfio-pci). */
static bool moves_with_group(const PciDevice *m)
{
        return !pci_class_is_bridge(m->class);
}

static int join_names(const Gpu *g, bool (*pick)(const PciDevice *m), char **ret)
{
        _cleanup_free_ char *s = NULL;

        for (size_t i = 0; i < g->n_members; i++) {
                char *t;
                if (!pick(g->members[i]))
                        continue;
                if (asprintf(&t, "%s%s%s", strempty(s), s ? ", " : "", g->members[i]->name) < 0)
                        return -ENOMEM;
                free(s);
                s = t;
        }
        *ret = s ? TAKE_PTR(s) : strdup("");
        return *ret ? 0 : -ENOMEM;
}

static int check_bindable(const Host *h, const Gpu *g, const char *driver, char why[static IOMMU_WHY_MAX])
{
        int r;

        if (!platform_is_xen(h->platform) && g->device->iommu_group < 0)
                return refuse(why, IOMMU_E_NOT_SUPPORTED,
                              "%s is in no IOMMU group because the IOMMU is off; turn it on (vgpu-admin "
                              "iommu-setup shows how) and reboot.",
                              g->device->name);
        for (size_t i = 0; i < g->n_members; i++)
                if (g->members[i]->boot_vga)
                        return refuse(why, IOMMU_E_HOST_CONSOLE,
                                      "%s carries the host's firmware console (boot_vga); binding %s would take "
                                      "the console away. Use another GPU, or move the console first.",
                                      g->members[i]->name, g->members[i] == g->device ? "it" : "its group");
        if (!g->group_viable)
                return refuse(why, IOMMU_E_GROUP_NOT_VIABLE, "%s", g->viable_reason);
        for (size_t i = 0; i < g->n_members; i++)
                if (moves_with_group(g->members[i]) && !streq(g->members[i]->driver, driver) &&
                    (r = check_not_in_use(h, g->members[i], why)) != 0)
                        return r;
        return 0;
}

static void roll_back(const Host *h, const Gpu *g, size_t upto, const char *driver)
{
        for (size_t i = 0; i < upto; i++)
                if (moves_with_group(g->members[i]) && !streq(g->members[i]->driver, driver) &&
                    release_one(h, g->members[i]->name, driver) < 0)
                        log_error("Could not give %s back to the host; check it with lspci -k.", g->members[i]->name);
}

static int bind_group(const Host *h, const Gpu *g, const char *driver, char why[static IOMMU_WHY_MAX])
{
        int r;

        for (size_t i = 0; i < g->n_members; i++) {
                const PciDevice *m = g->members[i];

                if (!moves_with_group(m) || streq(m->driver, driver))
                        continue;
                r = rebind_one(h, m, driver);
                if (r >= 0 && !is_bound_to(h, m->name, driver))
                        r = -EBUSY;
                if (r < 0) {
                        log_error_errno(r, "Binding %s to %s failed (%m); putting the group back.", m->name, driver);
                        roll_back(h, g, i + 1, driver);
                        return refuse(why, IOMMU_E_FAILED,
                                      "The kernel did not bind %s to %s (%s); the group was given back to the host. "
                                      "The kernel log says why.", m->name, driver,
                                      r == -EBUSY ? "another driver took it" : strerror(-r));
                }
        }
        return 0;
}

int gpu_bind(const Host *h, const char *address, const char *driver, char ***ret_devices, const char **ret_driver,
             char why[static IOMMU_WHY_MAX])
{
        _cleanup_strv_ char **bound = calloc(1, sizeof(char *));
        _cleanup_free_ char *names = NULL;
        GpuList l = { 0 };
        const Gpu *g;
        int r;

        if (!bound)
                return -ENOMEM;
        r = check_driver(h, driver, &driver, why);
        if (r == 0)
                r = find_gpu(h, address, &l, &g, why);
        if (r == 0)
                r = check_bindable(h, g, driver, why);
        if (r == 0)
                r = bind_group(h, g, driver, why);
        if (r == 0)
                r = join_names(g, moves_with_group, &names);
        for (size_t i = 0; r == 0 && i < g->n_members; i++)
                if (moves_with_group(g->members[i]))
                        r = strv_append(&bound, g->members[i]->name);
        if (r == 0) {
                log_notice("Bound %s of GPU %s to %s: %s.", g->device->iommu_group >= 0 ? "the IOMMU group" : "the functions",
                           g->device->name, driver, names);
                *ret_devices = TAKE_PTR(bound);
                *ret_driver = driver;
        }
        gpu_list_done(&l);
        return r;
}

static bool on_isolating_driver(const PciDevice *m)
{
        return streq(m->driver, "vfio-pci") || streq(m->driver, "pciback");
}

static int release_group(const Host *h, const Gpu *g, char ***released, char why[static IOMMU_WHY_MAX])
{
        int r;

        for (size_t i = 0; i < g->n_members; i++)
                if (on_isolating_driver(g->members[i]) && (r = check_not_in_use(h, g->members[i], why)) != 0)
                        return r;
        for (size_t i = 0; i < g->n_members; i++) {
                const PciDevice *m = g->members[i];

                if (!on_isolating_driver(m))
                        continue;
                r = release_one(h, m->name, m->driver);
                if (r >= 0 && is_bound_to(h, m->name, m->driver))
                        r = -EBUSY;
                if (r < 0) {
                        log_error_errno(r, "Releasing %s from %s failed: %m", m->name, m->driver);
                        return refuse(why, IOMMU_E_FAILED, "The kernel did not release %s from %s (%s).", m->name,
                                      m->driver, r == -EBUSY ? "it is still bound" : strerror(-r));
                }
                r = strv_append(released, m->name);
                if (r < 0)
                        return r;
        }
        return 0;
}

int gpu_unbind(const Host *h, const char *address, char ***ret_devices, char why[static IOMMU_WHY_MAX])
{
        _cleanup_strv_ char **released = calloc(1, sizeof(char *));
        GpuList l = { 0 };
        const Gpu *g;
        int r;

        if (!released)
                return -ENOMEM;
        r = find_gpu(h, address, &l, &g, why);
        if (r == 0)
                r = release_group(h, g, &released, why);
        if (r == 0) {
                if (strv_length(released) == 0)
                        log_info("GPU %s: nothing of its group is on vfio-pci or pciback; nothing to release.",
                                 g->device->name);
                else
                        log_notice("Released %zu device(s) of GPU %s to the host's drivers.", strv_length(released),
                                   g->device->name);
                *ret_devices = TAKE_PTR(released);
        }
        gpu_list_done(&l);
        return r;
}
