/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GPU discovery: libpci enumerates and names the devices, sysfs below the root gives driver, IOMMU group
 * and console; each GPU's group is then judged as a whole. */
#include <pci/pci.h>
#include <setjmp.h>
#include <stdarg.h>

#include "gpus.h"
#include "log.h"

/* libpci reports a fatal error through a callback that must not return (its default exits the process).
 * A malformed tree must not end the service, so the callback jumps back to the scan, which fails cleanly.
 * One thread, one scan at a time. */
static jmp_buf pci_error_jump;
static char pci_error_message[256];

_noreturn_ _printf_(1, 2) static void pci_on_error(char *msg, ...)
{
        va_list ap;

        va_start(ap, msg);
        vsnprintf(pci_error_message, sizeof(pci_error_message), msg, ap);
        va_end(ap);
        longjmp(pci_error_jump, 1);
}

_printf_(1, 2) static void pci_on_warning(char *msg, ...)
{
        char text[256];
        va_list ap;

        va_start(ap, msg);
        vsnprintf(text, sizeof(text), msg, ap);
        va_end(ap);
        log_debug("libpci: %s", text);
}

_printf_(1, 2) static void pci_on_debug(char *msg, ...)
{
}

static void pci_device_done(PciDevice *d)
{
        free(d->vendor_name);
        free(d->device_name);
        free(d->driver);
}

static int compare_devices(const void *a, const void *b)
{
        const PciDevice *x = a, *y = b;

        return strcmp(x->name, y->name);
}

static char *lookup_name(struct pci_access *pacc, int flags, uint16_t vendor, uint16_t device)
{
        char buf[256];
        const char *name = pci_lookup_name(pacc, buf, sizeof(buf), flags | PCI_LOOKUP_NO_NUMBERS | PCI_LOOKUP_NO_HWDB,
                                           vendor, device);

        return strdup(name ? name : "");
}

/* Driver, group, console and the full 24-bit class, from the device's sysfs directory. */
static int read_sysfs_facts(const Sysroot *root, PciDevice *d, unsigned device_class)
{
        char rel[128];
        _cleanup_free_ char *group = NULL;
        unsigned long long v;
        char *end;

        snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s/class", d->name);
        d->class = sysroot_read_u64(root, rel, &v) >= 0 ? (uint32_t)(v & 0xffffff) : device_class << 8;
        snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s/driver", d->name);
        if (sysroot_link_name(root, rel, &d->driver) < 0 && !(d->driver = strdup("")))
                return -ENOMEM;
        snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s/iommu_group", d->name);
        d->iommu_group = -1;
        if (sysroot_link_name(root, rel, &group) >= 0) {
                long g = strtol(group, &end, 10);
                if (*end == '\0' && g >= 0 && g <= INT32_MAX)
                        d->iommu_group = (int32_t)g;
        }
        snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s/boot_vga", d->name);
        d->boot_vga = sysroot_read_u64(root, rel, &v) >= 0 && v == 1;
        return 0;
}

static int add_device(const Sysroot *root, struct pci_access *pacc, struct pci_dev *p, GpuList *l)
{
        PciDevice *grown, *d;

        if (p->domain < 0 || p->domain > 0xffff || p->dev > 0x1f || p->func > 7)
                return 0;
        grown = realloc(l->devices, (l->n_devices + 1) * sizeof(*grown));
        if (!grown)
                return -ENOMEM;
        l->devices = grown;
        d = &grown[l->n_devices++];
        *d = (PciDevice){ .address = { (uint16_t)p->domain, p->bus, p->dev, p->func } };
        pci_address_format(&d->address, d->name);
        pci_fill_info(p, PCI_FILL_IDENT | PCI_FILL_CLASS);
        d->vendor_id = p->vendor_id;
        d->device_id = p->device_id;
        d->vendor_name = lookup_name(pacc, PCI_LOOKUP_VENDOR, p->vendor_id, 0);
        d->device_name = lookup_name(pacc, PCI_LOOKUP_DEVICE, p->vendor_id, p->device_id);
        if (!d->vendor_name || !d->device_name)
                return -ENOMEM;
        return read_sysfs_facts(root, d, p->device_class);
}

static int scan_devices(const Sysroot *root, GpuList *l)
{
        _cleanup_free_ char *path = sysroot_path(root, "sys/bus/pci");
        struct pci_access *volatile pacc = NULL;
        volatile int r = 0;

        if (!path)
                return -errno;
        if (!sysroot_is_dir(root, "sys/bus/pci/devices"))
                return 0;
        pacc = pci_alloc();
        pacc->error = pci_on_error;
        pacc->warning = pci_on_warning;
        pacc->debug = pci_on_debug;
        pacc->method = PCI_ACCESS_SYS_BUS_PCI;
        if (setjmp(pci_error_jump) != 0) {
                log_error("Cannot read the PCI devices below %s: %s", path, pci_error_message);
                r = -EIO;
                goto finish;
        }
        pci_set_param(pacc, "sysfs.path", path);
        pci_init(pacc);
        pci_scan_bus(pacc);
        for (struct pci_dev *p = pacc->devices; p && r >= 0; p = p->next)
                r = add_device(root, pacc, p, l);
finish:
        pci_cleanup(pacc);
        if (r >= 0)
                qsort(l->devices, l->n_devices, sizeof(PciDevice), compare_devices);
        return r;
}

bool pci_class_is_display(uint32_t class)
{
        return (class >> 16) == 0x03;
}

bool pci_class_is_bridge(uint32_t class)
{
        return (class >> 8) == 0x0604;
}

bool host_device_is_gpu(const Host *h, const PciDevice *d, bool *ret_by_test_list)
{
        bool listed = pci_id_list_contains(&h->test_allow, d->vendor_id, d->device_id);

        if (ret_by_test_list)
                *ret_by_test_list = listed && !pci_class_is_display(d->class);
        return pci_class_is_display(d->class) || listed;
}

const char *platform_isolation_driver(Platform p)
{
        return platform_is_xen(p) ? "pciback" : "vfio-pci";
}

const PciDevice *gpu_list_find_device(const GpuList *l, const PciAddress *a)
{
        for (size_t i = 0; i < l->n_devices; i++)
                if (pci_address_equal(&l->devices[i].address, a))
                        return &l->devices[i];
        return NULL;
}

const Gpu *gpu_list_find_gpu(const GpuList *l, const PciAddress *a)
{
        for (size_t i = 0; i < l->n_gpus; i++)
                if (pci_address_equal(&l->gpus[i].device->address, a))
                        return &l->gpus[i];
        return NULL;
}

static int add_member(Gpu *g, const PciDevice *d)
{
        const PciDevice **grown = realloc(g->members, (g->n_members + 1) * sizeof(*grown));

        if (!grown)
                return -ENOMEM;
        grown[g->n_members++] = d;
        g->members = grown;
        return 0;
}

/* The group's members from ROOT/sys/kernel/iommu_groups/N/devices, or the GPU's own functions where the
 * platform shows no groups (Xen dom0, or the IOMMU off). */
static int collect_members(const Host *h, const GpuList *l, Gpu *g)
{
        _cleanup_strv_ char **names = NULL;
        char rel[96];
        int r;

        if (g->device->iommu_group < 0) {
                for (size_t i = 0; i < l->n_devices; i++)
                        if (pci_address_same_slot(&l->devices[i].address, &g->device->address) &&
                            (r = add_member(g, &l->devices[i])) < 0)
                                return r;
                return 0;
        }
        snprintf(rel, sizeof(rel), "sys/kernel/iommu_groups/%d/devices", g->device->iommu_group);
        r = sysroot_list_dir(h->root, rel, &names, NULL);
        if (r < 0)
                return log_warning_errno(r, "Cannot list IOMMU group %d (%m); taking %s alone.",
                                         g->device->iommu_group, g->device->name),
                       add_member(g, g->device);
        for (char **n = names; *n; n++) {
                PciAddress a;
                const PciDevice *d;

                if (pci_address_parse(*n, &a) < 0 || !(d = gpu_list_find_device(l, &a))) {
                        log_warning("IOMMU group %d lists '%s', which is not a PCI device here; ignored.",
                                    g->device->iommu_group, *n);
                        continue;
                }
                if ((r = add_member(g, d)) < 0)
                        return r;
        }
        return 0;
}

static bool driver_leaves_group_free(const Host *h, const char *driver)
{
        return isempty(driver) || streq(driver, "vfio-pci") || streq(driver, "pci-stub") ||
               (platform_is_xen(h->platform) && streq(driver, "pciback"));
}

/* Viable: every other member is one of the GPU's own functions, a PCI bridge, or held by no host driver
 * (vfio-pci, pci-stub, none). Isolated: on Linux the GPU is on vfio-pci and every other device of the group
 * is on vfio-pci, pci-stub or none (the kernel's own rule for a usable VFIO group); on Xen the GPU is on
 * pciback. */
static int assess(const Host *h, Gpu *g)
{
        const PciDevice *gpu = g->device;
        bool isolated;

        g->group_viable = true;
        if (!platform_is_xen(h->platform) && gpu->iommu_group < 0) {
                g->group_viable = false;
                return asprintf(&g->viable_reason,
                                "%s is in no IOMMU group: the IOMMU is off, so nothing confines its DMA.",
                                gpu->name) < 0 ? -ENOMEM : 0;
        }
        isolated = gpu->iommu_group >= 0 ? streq(gpu->driver, "vfio-pci") : streq(gpu->driver, "pciback");
        for (size_t i = 0; i < g->n_members; i++) {
                const PciDevice *m = g->members[i];

                if (m == gpu || pci_class_is_bridge(m->class))
                        continue;
                if (gpu->iommu_group >= 0 && !driver_leaves_group_free(h, m->driver))
                        isolated = false;
                if (pci_address_same_slot(&m->address, &gpu->address) || driver_leaves_group_free(h, m->driver))
                        continue;
                if (g->group_viable) {
                        g->group_viable = false;
                        if (asprintf(&g->viable_reason,
                                     "IOMMU group %d also holds %s (class 0x%06x, bound to %s), which is neither "
                                     "one of the GPU's functions nor a bridge; handing the group to a guest would "
                                     "take that device from the host.",
                                     gpu->iommu_group, m->name, m->class, m->driver) < 0)
                                return -ENOMEM;
                }
        }
        g->isolated = isolated;
        return 0;
}

int gpus_discover(const Host *h, GpuList *ret)
{
        GpuList l = { 0 };
        int r;

        r = scan_devices(h->root, &l);
        for (size_t i = 0; r >= 0 && i < l.n_devices; i++) {
                bool by_list;
                Gpu *grown;

                if (!host_device_is_gpu(h, &l.devices[i], &by_list))
                        continue;
                grown = realloc(l.gpus, (l.n_gpus + 1) * sizeof(*grown));
                if (!grown) {
                        r = -ENOMEM;
                        break;
                }
                l.gpus = grown;
                grown[l.n_gpus++] = (Gpu){ .device = &l.devices[i], .allowed_by_test_list = by_list };
        }
        for (size_t i = 0; r >= 0 && i < l.n_gpus; i++) {
                r = collect_members(h, &l, &l.gpus[i]);
                if (r >= 0)
                        r = assess(h, &l.gpus[i]);
        }
        if (r < 0) {
                gpu_list_done(&l);
                return r;
        }
        *ret = l;
        return 0;
}

void gpu_list_done(GpuList *l)
{
        for (size_t i = 0; i < l->n_gpus; i++) {
                free(l->gpus[i].members);
                free(l->gpus[i].viable_reason);
        }
        for (size_t i = 0; i < l->n_devices; i++)
                pci_device_done(&l->devices[i]);
        free(l->gpus);
        free(l->devices);
        *l = (GpuList){ 0 };
}
