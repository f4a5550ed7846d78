/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Xen facts seam: libxenctrl on a host, files in a recorded tree. */
#include "log.h"
#include "platform.h"
#include "xen-facts.h"
#if HAVE_XENCTRL
#include "xen-facts-xenctrl.h"
#endif

#define XEN_FILE_MAX (4u * 1024u * 1024u)

struct XenFacts {
        const Sysroot *root;
#if HAVE_XENCTRL
        XenCtrl *ctrl;
        int ctrl_error; /* why ctrl is NULL on a host */
#endif
};

int xen_facts_new(const Sysroot *root, XenFacts **ret)
{
        XenFacts *x = calloc(1, sizeof(*x));

        if (!x)
                return -ENOMEM;
        x->root = root;
#if HAVE_XENCTRL
        /* Only in a Xen domain: elsewhere libxenctrl would only complain that there is no hypervisor. */
        if (sysroot_is_host(root) && platform_is_xen(platform_detect(root))) {
                x->ctrl_error = xenctrl_open(&x->ctrl);
                if (x->ctrl_error < 0)
                        log_warning_errno(x->ctrl_error,
                                          "Cannot open libxenctrl (%m); the hypervisor's facts are unknown.");
        }
#endif
        *ret = x;
        return 0;
}

XenFacts *xen_facts_free(XenFacts *x)
{
        if (x) {
#if HAVE_XENCTRL
                xenctrl_close(x->ctrl);
#endif
                free(x);
        }
        return NULL;
}

bool xen_facts_uses_xenctrl(const XenFacts *x)
{
#if HAVE_XENCTRL
        return sysroot_is_host(x->root);
#else
        return false;
#endif
}

static int read_text(XenFacts *x, const char *rel, char **ret)
{
        _cleanup_free_ char *text = NULL;
        int r;

        r = sysroot_read_file(x->root, rel, XEN_FILE_MAX, &text, NULL);
        if (r < 0)
                return r;
        *ret = strdup(strstrip(text));
        return *ret ? 0 : -ENOMEM;
}

#if HAVE_XENCTRL
#define VIA_XENCTRL(x, call)                                                                                           \
        do {                                                                                                           \
                if (xen_facts_uses_xenctrl(x))                                                                         \
                        return (x)->ctrl ? (call) : (x)->ctrl_error;                                                   \
        } while (0)
#else
#define VIA_XENCTRL(x, call)                                                                                           \
        do {                                                                                                           \
        } while (0)
#endif

int xen_facts_virt_caps(XenFacts *x, char **ret, const char **ret_source)
{
        *ret_source = xen_facts_uses_xenctrl(x) ? "libxenctrl:physinfo" : "/xen/virt_caps";
        VIA_XENCTRL(x, xenctrl_virt_caps(x->ctrl, ret));
        return read_text(x, "xen/virt_caps", ret);
}

int xen_facts_commandline(XenFacts *x, char **ret, const char **ret_source)
{
        *ret_source = xen_facts_uses_xenctrl(x) ? "libxenctrl:commandline" : "/xen/commandline";
        VIA_XENCTRL(x, xenctrl_commandline(x->ctrl, ret));
        return read_text(x, "xen/commandline", ret);
}

int xen_facts_console(XenFacts *x, char **ret, const char **ret_source)
{
        *ret_source = xen_facts_uses_xenctrl(x) ? "libxenctrl:console" : "/xen/console";
        VIA_XENCTRL(x, xenctrl_console(x->ctrl, false, ret));
        return sysroot_read_file(x->root, "xen/console", XEN_FILE_MAX, ret, NULL);
}

int xen_facts_console_new(XenFacts *x, char **ret)
{
        VIA_XENCTRL(x, xenctrl_console(x->ctrl, true, ret));
        return -EOPNOTSUPP;
}

bool xen_virt_caps_have_directio(const char *virt_caps)
{
        const char *p = virt_caps;

        /* A whole word that is "directio" or ends in "_directio". */
        while (p && *p) {
                size_t n;

                p += strspn(p, " \t\n");
                n = strcspn(p, " \t\n");
                if ((n == 8 && strncmp(p, "directio", 8) == 0) ||
                    (n > 9 && strncmp(p + n - 9, "_directio", 9) == 0))
                        return true;
                p += n;
        }
        return false;
}
