/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Where a VM's GPU traffic is confined, decided from the same facts as the host's verdict. */
#include "status.h"
#include "vm-confinement.h"

/* The PCI address a GPU resource names, if it names one. */
static bool resource_address(const char *resource, PciAddress *ret)
{
        const char *p = NULL;
        size_t n;

        if (strncmp(resource, "gpu:", 4) == 0)
                p = resource + 4;
        else if (strncmp(resource, "sm-share:", 9) == 0)
                p = resource + 9;
        if (!p)
                return false;
        /* "dddd:bb:ss.f" has colons of its own: the address is the longest form that parses. */
        n = strnlen(p, 13);
        if (n >= 12 && pci_address_parse_n(p, 12, ret) >= 0 && (p[12] == '\0' || p[12] == ':'))
                return true;
        return n >= 7 && pci_address_parse_n(p, 7, ret) >= 0 && (p[7] == '\0' || p[7] == ':');
}

static void confine_linux(const IommuStatus *s, const Gpu *g, VmConfinement *ret)
{
        const PciDevice *d = g->device;

        if (d->iommu_group < 0) {
                snprintf(ret->reason, sizeof(ret->reason), "GPU %s is in no IOMMU group: the IOMMU is off.", d->name);
                return;
        }
        ret->group = d->iommu_group;
        snprintf(ret->domain, sizeof(ret->domain), "%s:group%d", g->isolated ? "vfio" : "host", d->iommu_group);
        if (!g->isolated)
                snprintf(ret->reason, sizeof(ret->reason),
                         "GPU %s's IOMMU group %d is not on vfio-pci, so the host's own DMA domain holds it; bind it "
                         "with vgpu-admin bind-gpu.", d->name, d->iommu_group);
        else if (!streq(s->mode, "strict"))
                snprintf(ret->reason, sizeof(ret->reason), "The IOMMU runs in %s mode, not strict.", s->mode);
        else
                ret->protected_ = true;
}

static void confine_xen(const IommuStatus *s, const Gpu *g, VmConfinement *ret)
{
        snprintf(ret->domain, sizeof(ret->domain), "xen:dom0");
        if (gpu_is_confined(s, g))
                ret->protected_ = true;
        else if (!s->enabled)
                snprintf(ret->reason, sizeof(ret->reason), "The hypervisor's IOMMU is off (no directio).");
        else
                snprintf(ret->reason, sizeof(ret->reason), "dom0-iommu is not strict, so GPU %s may reach all of "
                         "the host's RAM.", g->device->name);
}

int vm_confinement_compute(const Host *h, XenFacts *xen, const char *gpu_resource, VmConfinement *ret)
{
        IommuStatus s = { 0 };
        GpuList l = { 0 };
        const Gpu *g;
        PciAddress a;
        int r;

        *ret = (VmConfinement){ .group = -1 };
        if (isempty(gpu_resource) || !resource_address(gpu_resource, &a)) {
                snprintf(ret->reason, sizeof(ret->reason), isempty(gpu_resource)
                         ? "The VM's pool has no GPU resource yet."
                         : "The pool's GPU resource does not name a GPU by PCI address, so its IOMMU group cannot be "
                           "determined.");
                return 0;
        }
        pci_address_format(&a, ret->gpu);
        r = iommu_probe(h, xen, &s);
        if (r >= 0)
                r = gpus_discover(h, &l);
        if (r >= 0) {
                g = gpu_list_find_gpu(&l, &a);
                if (!g)
                        snprintf(ret->reason, sizeof(ret->reason), "GPU %s of the VM's pool is not on this host.",
                                 ret->gpu);
                else if (platform_is_xen(h->platform))
                        confine_xen(&s, g, ret);
                else
                        confine_linux(&s, g, ret);
        }
        gpu_list_done(&l);
        iommu_status_done(&s);
        return r < 0 ? r : 0;
}
