/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Xen hypervisor's own facts — its capabilities, its command line, its console ring — through a thin
 * seam: libxenctrl on a host (root "/", built with xencontrol), the files ROOT/xen/{virt_caps,commandline,
 * console} in a recorded tree (the values of `xl info`'s virt_caps and xen_commandline, and `xl dmesg`). */
#pragma once

#include <stdbool.h>

#include "sysroot.h"

typedef struct XenFacts XenFacts;

/* Never fails for want of Xen: a fact that cannot be read later answers a negative errno. */
int xen_facts_new(const Sysroot *root, XenFacts **ret);
XenFacts *xen_facts_free(XenFacts *x);
bool xen_facts_uses_xenctrl(const XenFacts *x);

/* Each returns the text and names its source ("libxenctrl:physinfo", "/xen/virt_caps", …). */
int xen_facts_virt_caps(XenFacts *x, char **ret, const char **ret_source);
int xen_facts_commandline(XenFacts *x, char **ret, const char **ret_source);
/* The whole console ring as it is now. */
int xen_facts_console(XenFacts *x, char **ret, const char **ret_source);
/* Console text written since the previous call (libxenctrl only; with files the fault watch follows
 * ROOT/xen/console itself). -EOPNOTSUPP without libxenctrl. */
int xen_facts_console_new(XenFacts *x, char **ret);

/* The "virt_caps" text says the IOMMU can give devices to guests: a "directio" capability, as libxenctrl
 * reports it or as `xl info` prints it ("hvm_directio", "pv_directio"). */
bool xen_virt_caps_have_directio(const char *virt_caps);
