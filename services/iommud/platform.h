/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Which platform the root shows (a Linux/KVM host, a Xen dom0 or domU), and command line parsing shared by
 * the kernel's and the hypervisor's command lines. */
#pragma once

#include "sysroot.h"

typedef enum Platform {
        PLATFORM_LINUX,
        PLATFORM_XEN_DOM0,
        PLATFORM_XEN_DOMU,
        PLATFORM_UNKNOWN,
        _PLATFORM_MAX,
} Platform;

const char *platform_to_string(Platform p);

/* ROOT/sys/hypervisor/type says "xen" in every Xen domain; ROOT/proc/xen/capabilities says "control_d" in
 * dom0 only. Anything else with a sysfs is a Linux host. */
Platform platform_detect(const Sysroot *root);
bool platform_is_xen(Platform p);

/* The words of a command line, as the kernel splits them: blanks separate, double quotes group. */
int cmdline_split(const char *cmdline, char ***ret);
/* The value of the last `key=value` (or bare `key`: "") on the command line; -ENOENT when absent. */
int cmdline_get(const char *cmdline, const char *key, char **ret);
/* Whether the comma-separated `list` holds `item`. */
bool list_has_item(const char *list, const char *item);
