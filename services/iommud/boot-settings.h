/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The boot settings that turn the IOMMU on in strict mode: GRUB_CMDLINE_LINUX in ROOT/etc/default/grub on
 * Linux, the Xen command line through XCP-ng's xen-cmdline tool on Xen. */
#pragma once

#include <stdbool.h>

#include "gpus.h"
#include "iommu-error.h"
#include "xen-facts.h"

typedef struct BootSettings {
        char *target;   /* the file or tool that holds them */
        char *current;  /* the command line there now */
        char *proposed; /* as it would be */
        char **add;     /* parameters to add or change */
        bool change_needed;
        bool reboot_required; /* the running kernel or hypervisor does not have them yet */
} BootSettings;

typedef struct BootApplyResult {
        char *target;
        char *backup; /* "" when nothing was written */
        bool changed;
        bool reboot_required;
} BootApplyResult;

/* Both return 0, a positive IommuError with `why` set (IOMMU_E_NOT_SUPPORTED, IOMMU_E_FAILED), or a
 * negative errno. */
int boot_settings_get(const Host *h, XenFacts *xen, BootSettings *ret, char why[static IOMMU_WHY_MAX]);
int boot_settings_apply(const Host *h, XenFacts *xen, BootApplyResult *ret, char why[static IOMMU_WHY_MAX]);
void boot_settings_done(BootSettings *s);
void boot_apply_result_done(BootApplyResult *r);

/* The Linux rule, on one command line: intel_iommu=on on Intel, iommu.strict=1, and no iommu=pt,
 * iommu=off, iommu.passthrough=, iommu.strict=0 or amd_iommu=off. `vendor`: "intel", "amd" or "unknown".
 * Exposed for tests. */
int boot_cmdline_linux(const char *cmdline, const char *vendor, char **ret_proposed, char ***ret_add,
                       bool *ret_changed);
/* The Xen rule: iommu= holds force (or required) and nothing that turns it off; dom0-iommu= holds strict
 * and neither relaxed nor passthrough. */
int boot_cmdline_xen(const char *cmdline, char **ret_proposed, char ***ret_add, bool *ret_changed);
