/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A VM's IOMMU confinement, from its pool's GPU resource: which IOMMU domain and group the GPU serving it
 * sits in, and whether that confines the GPU's DMA as the design requires. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gpus.h"
#include "iommu-error.h"
#include "xen-facts.h"

typedef struct VmConfinement {
        char gpu[PCI_ADDRESS_STRING_MAX]; /* the pool's GPU address; "" when none */
        char domain[48];                  /* "vfio:group12", "host:group12", "xen:dom0"; "" when unknown */
        int32_t group;                    /* -1 when none */
        bool protected_;
        char reason[IOMMU_WHY_MAX];       /* a sentence when not protected */
} VmConfinement;

/* `gpu_resource` as the config store keeps it: "gpu:<PCI address>" (or "sm-share:<PCI address>:<percent>",
 * a share of that GPU) resolves to that GPU; "", "gpu:<uuid>", "mig:…" do not. */
int vm_confinement_compute(const Host *h, XenFacts *xen, const char *gpu_resource, VmConfinement *ret);
