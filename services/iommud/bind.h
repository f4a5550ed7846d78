/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Handing a GPU's whole IOMMU group to vfio-pci or pciback, and back to the host's drivers. */
#pragma once

#include <stddef.h>

#include "gpus.h"
#include "iommu-error.h"

/* Nothing below the root is written when a refusal is returned, except IOMMU_E_FAILED, after which what
 * was written has been undone as far as the kernel allows. */

/* `driver`: "vfio-pci", "pciback", or "" for the platform's own. On success (0) *ret_devices lists the
 * devices now bound to it (NULL-terminated) and *ret_driver names it. */
int gpu_bind(const Host *h, const char *address, const char *driver, char ***ret_devices, const char **ret_driver,
             char why[static IOMMU_WHY_MAX]);
/* Releases the devices of the GPU's group that are on vfio-pci or pciback; *ret_devices lists them (empty
 * when none was). */
int gpu_unbind(const Host *h, const char *address, char ***ret_devices, char why[static IOMMU_WHY_MAX]);
