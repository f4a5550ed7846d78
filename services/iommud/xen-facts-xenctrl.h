/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The libxenctrl side of the Xen facts seam (built only with xencontrol). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct XenCtrl XenCtrl;

int xenctrl_open(XenCtrl **ret);
void xenctrl_close(XenCtrl *c);
/* The capabilities as `xl info` prints virt_caps ("pv hvm hvm_directio pv_directio hap …"). */
int xenctrl_virt_caps(XenCtrl *c, char **ret);
int xenctrl_commandline(XenCtrl *c, char **ret);
/* The console ring: all of it, or (incremental) what came after the previous incremental read. */
int xenctrl_console(XenCtrl *c, bool incremental, char **ret);
