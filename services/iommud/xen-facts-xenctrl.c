/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Xen's capabilities, command line and console ring, read through libxenctrl. */
#include <xenctrl.h>

#include "vgpu-util.h"
#include "xen-facts-xenctrl.h"

#define CONSOLE_RING_MAX (1024u * 1024u)

struct XenCtrl {
        xc_interface *xch;
        uint32_t console_index; /* where the next incremental read starts */
};

int xenctrl_open(XenCtrl **ret)
{
        XenCtrl *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        c->xch = xc_interface_open(NULL, NULL, 0);
        if (!c->xch) {
                int r = negative_errno();
                free(c);
                return r;
        }
        *ret = c;
        return 0;
}

void xenctrl_close(XenCtrl *c)
{
        if (!c)
                return;
        xc_interface_close(c->xch);
        free(c);
}

static void caps_add(char *buf, size_t size, bool present, const char *name)
{
        size_t len = strlen(buf);

        if (present)
                snprintf(buf + len, size - len, "%s%s", len ? " " : "", name);
}

int xenctrl_virt_caps(XenCtrl *c, char **ret)
{
        xc_physinfo_t info = { 0 };
        char buf[256] = "";
        uint32_t caps;
        bool directio;

        if (xc_physinfo(c->xch, &info) < 0)
                return negative_errno();
        caps = info.capabilities;
        directio = caps & XEN_SYSCTL_PHYSCAP_directio;
        caps_add(buf, sizeof(buf), caps & XEN_SYSCTL_PHYSCAP_pv, "pv");
        caps_add(buf, sizeof(buf), caps & XEN_SYSCTL_PHYSCAP_hvm, "hvm");
        caps_add(buf, sizeof(buf), directio && (caps & XEN_SYSCTL_PHYSCAP_hvm), "hvm_directio");
        caps_add(buf, sizeof(buf), directio && (caps & XEN_SYSCTL_PHYSCAP_pv), "pv_directio");
        caps_add(buf, sizeof(buf), directio && !(caps & (XEN_SYSCTL_PHYSCAP_hvm | XEN_SYSCTL_PHYSCAP_pv)),
                 "directio");
        caps_add(buf, sizeof(buf), caps & XEN_SYSCTL_PHYSCAP_hap, "hap");
        caps_add(buf, sizeof(buf), caps & XEN_SYSCTL_PHYSCAP_shadow, "shadow");
        caps_add(buf, sizeof(buf), caps & XEN_SYSCTL_PHYSCAP_iommu_hap_pt_share, "iommu_hap_pt_share");
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

int xenctrl_commandline(XenCtrl *c, char **ret)
{
        xen_commandline_t line = { 0 };

        if (xc_version(c->xch, XENVER_commandline, &line) < 0)
                return negative_errno();
        line[sizeof(line) - 1] = '\0';
        *ret = strdup(line);
        return *ret ? 0 : -ENOMEM;
}

int xenctrl_console(XenCtrl *c, bool incremental, char **ret)
{
        unsigned int n = CONSOLE_RING_MAX - 1;
        uint32_t index = incremental ? c->console_index : 0;
        char *buf = malloc(CONSOLE_RING_MAX);

        if (!buf)
                return -ENOMEM;
        if (xc_readconsolering(c->xch, buf, &n, 0, incremental, &index) < 0) {
                int r = negative_errno();
                free(buf);
                return r;
        }
        if (incremental)
                c->console_index = index;
        buf[n < CONSOLE_RING_MAX ? n : CONSOLE_RING_MAX - 1] = '\0';
        *ret = buf;
        return 0;
}
