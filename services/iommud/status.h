/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The host's IOMMU verdict — enabled, vendor, mode, GPUs isolated, faults — each conclusion with the
 * evidence it came from, and the compliance rules applied to it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gpus.h"
#include "xen-facts.h"

#define EVIDENCE_TEXT_MAX 512

typedef struct Evidence {
        char *conclusion; /* "iommu.enabled", "iommu.mode", "gpu.0000:41:00.0.isolated", … */
        char *source;     /* a path below the root ("/proc/cmdline"), "libxenctrl:physinfo", "kmsg" */
        char *text;       /* one line, trimmed */
} Evidence;

typedef struct IommuStatus {
        Platform platform;
        bool enabled;
        const char *vendor; /* intel|amd|unknown; "" when off */
        const char *mode;   /* strict|lazy|passthrough|off|unknown */
        bool xen_directio;  /* Xen: the hypervisor offers device assignment through its IOMMU */
        uint32_t gpus, gpus_isolated, faults;
        bool compliant;
        char **problems; /* NULL-terminated; one sentence per broken rule */
        Evidence *evidence;
        size_t n_evidence;
} IommuStatus;

/* The IOMMU part alone: platform, enabled, vendor, mode, with evidence. */
int iommu_probe(const Host *h, XenFacts *xen, IommuStatus *ret);

/* Everything, and the verdict. The rules: the IOMMU is on; it runs strict (lazy and passthrough leave DMA
 * reachable that should not be); every GPU is isolated — on Linux its whole group is on vfio-pci, on Xen it
 * is on pciback or, if dom0 keeps it, dom0-iommu=strict holds and the hypervisor reports directio (then the
 * GPU reaches only dom0's memory and pages a guest granted, which is the design's guarantee); and no fault
 * is waiting to be acknowledged. `last_fault` is the newest fault line, for the evidence. */
int iommu_status_compute(const Host *h, XenFacts *xen, uint32_t unacknowledged_faults, const char *last_fault,
                         const char *fault_source, IommuStatus *ret);
void iommu_status_done(IommuStatus *s);

/* Whether a GPU counts as isolated under the rules above (see iommu_status_compute). */
bool gpu_is_confined(const IommuStatus *s, const Gpu *g);

int evidence_add(IommuStatus *s, const char *conclusion, const char *source, const char *format, ...)
        __attribute__((format(printf, 4, 5)));
