/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The seam (xen-ops.h) over the real libxenstore, libxengnttab/libxengntshr and libxenevtchn: each entry is
 * one library call with its -1/errno or NULL/errno turned into a negative errno. Nothing else lives here. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <xenevtchn.h>
#include <xengnttab.h>
#include <xenstore.h>

#include "vgpu-util.h"
#include "xen-ops.h"

#define XS(h)  ((struct xs_handle *)(h))
#define GT(h)  ((xengnttab_handle *)(h))
#define GS(h)  ((xengntshr_handle *)(h))
#define EVT(h) ((xenevtchn_handle *)(h))

static int bool_errno(bool ok)
{
        return ok ? 0 : negative_errno();
}

static int lx_xs_open(VgpuXs **ret)
{
        struct xs_handle *h = xs_open(0);

        if (!h)
                return negative_errno();
        *ret = (VgpuXs *)h;
        return 0;
}

static void lx_xs_close(VgpuXs *xs)
{
        xs_close(XS(xs));
}

static int lx_xs_fileno(VgpuXs *xs)
{
        int fd = xs_fileno(XS(xs));

        return fd < 0 ? negative_errno() : fd;
}

static int lx_xs_read(VgpuXs *xs, uint32_t t, const char *path, char **ret)
{
        unsigned len = 0;
        char *v = xs_read(XS(xs), t, path, &len);

        if (!v)
                return negative_errno();
        /* A value is bytes; one with a NUL inside would read shorter than it is. */
        if (strlen(v) != len) {
                free(v);
                return -EBADMSG;
        }
        *ret = v;
        return 0;
}

static int lx_xs_write(VgpuXs *xs, uint32_t t, const char *path, const char *value)
{
        return bool_errno(xs_write(XS(xs), t, path, value, (unsigned)strlen(value)));
}

static int lx_xs_mkdir(VgpuXs *xs, uint32_t t, const char *path)
{
        return bool_errno(xs_mkdir(XS(xs), t, path));
}

static int lx_xs_rm(VgpuXs *xs, uint32_t t, const char *path)
{
        return bool_errno(xs_rm(XS(xs), t, path));
}

static int lx_xs_set_permissions(VgpuXs *xs, uint32_t t, const char *path, const VgpuXsPerm *perms, unsigned n)
{
        struct xs_permissions p[8];

        if (n == 0 || n > ELEMENTSOF(p))
                return -EINVAL;
        for (unsigned i = 0; i < n; i++)
                p[i] = (struct xs_permissions){.id = perms[i].domid, .perms = perms[i].perms};
        return bool_errno(xs_set_permissions(XS(xs), t, path, p, n));
}

static int lx_xs_get_permissions(VgpuXs *xs, const char *path, VgpuXsPerm **ret, unsigned *ret_n)
{
        unsigned n = 0;
        struct xs_permissions *p = xs_get_permissions(XS(xs), XBT_NULL, path, &n);
        VgpuXsPerm *out;

        if (!p)
                return negative_errno();
        out = calloc(n ? n : 1, sizeof(*out));
        if (!out) {
                free(p);
                return -ENOMEM;
        }
        for (unsigned i = 0; i < n; i++)
                out[i] = (VgpuXsPerm){.domid = p[i].id, .perms = p[i].perms};
        free(p);
        *ret = out;
        *ret_n = n;
        return 0;
}

static int lx_xs_directory(VgpuXs *xs, const char *path, char ***ret, unsigned *ret_n)
{
        unsigned n = 0;
        char **l = xs_directory(XS(xs), XBT_NULL, path, &n);

        if (!l)
                return negative_errno();
        *ret = l;
        *ret_n = n;
        return 0;
}

static int lx_xs_transaction_start(VgpuXs *xs, uint32_t *ret)
{
        xs_transaction_t t = xs_transaction_start(XS(xs));

        if (t == XBT_NULL)
                return negative_errno();
        *ret = t;
        return 0;
}

static int lx_xs_transaction_end(VgpuXs *xs, uint32_t t, bool abort)
{
        return bool_errno(xs_transaction_end(XS(xs), t, abort));
}

static int lx_xs_watch(VgpuXs *xs, const char *path, const char *token)
{
        return bool_errno(xs_watch(XS(xs), path, token));
}

static int lx_xs_unwatch(VgpuXs *xs, const char *path, const char *token)
{
        return bool_errno(xs_unwatch(XS(xs), path, token));
}

static int lx_xs_check_watch(VgpuXs *xs, char ***ret)
{
        char **ev = xs_check_watch(XS(xs));

        if (!ev)
                return errno == EAGAIN ? 0 : negative_errno();
        *ret = ev;
        return 1;
}

static int lx_xs_domain_exists(VgpuXs *xs, uint32_t domid)
{
        return xs_is_domain_introduced(XS(xs), domid) ? 1 : 0;
}

static int lx_gnttab_open(VgpuXenGnttab **ret)
{
        xengnttab_handle *g = xengnttab_open(NULL, 0);

        if (!g)
                return negative_errno();
        *ret = (VgpuXenGnttab *)g;
        return 0;
}

static void lx_gnttab_close(VgpuXenGnttab *g)
{
        xengnttab_close(GT(g));
}

static int lx_gnttab_map(VgpuXenGnttab *g, uint32_t domid, const uint32_t *refs, uint32_t count, bool writable,
                         void **ret)
{
        void *a = xengnttab_map_domain_grant_refs(GT(g), count, domid, (uint32_t *)refs,
                                                  writable ? PROT_READ | PROT_WRITE : PROT_READ);

        if (!a)
                return negative_errno();
        *ret = a;
        return 0;
}

static int lx_gnttab_map_notify(VgpuXenGnttab *g, uint32_t domid, uint32_t ref, uint32_t notify_offset,
                                uint32_t notify_port, void **ret)
{
        void *a = xengnttab_map_grant_ref_notify(GT(g), domid, ref, PROT_READ | PROT_WRITE, notify_offset, notify_port);

        if (!a)
                return negative_errno();
        *ret = a;
        return 0;
}

static int lx_gnttab_unmap(VgpuXenGnttab *g, void *addr, uint32_t count)
{
        return xengnttab_unmap(GT(g), addr, count) < 0 ? negative_errno() : 0;
}

static int lx_gntshr_open(VgpuXenGntshr **ret)
{
        xengntshr_handle *s = xengntshr_open(NULL, 0);

        if (!s)
                return negative_errno();
        *ret = (VgpuXenGntshr *)s;
        return 0;
}

static void lx_gntshr_close(VgpuXenGntshr *s)
{
        xengntshr_close(GS(s));
}

static int lx_gntshr_share(VgpuXenGntshr *s, uint32_t domid, uint32_t count, bool writable, uint32_t *refs, void **ret)
{
        void *a;

        if (count > INT32_MAX)
                return -E2BIG;
        a = xengntshr_share_pages(GS(s), domid, (int)count, refs, writable);
        if (!a)
                return negative_errno();
        *ret = a;
        return 0;
}

static int lx_gntshr_unshare(VgpuXenGntshr *s, void *addr, uint32_t count)
{
        return xengntshr_unshare(GS(s), addr, count) < 0 ? negative_errno() : 0;
}

static int lx_evtchn_open(VgpuXenEvtchn **ret)
{
        xenevtchn_handle *e = xenevtchn_open(NULL, 0);
        int fd, flags;

        if (!e)
                return negative_errno();
        /* xenevtchn_pending() reads this fd: it must never block the caller's loop. */
        fd = xenevtchn_fd(e);
        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
                int r = negative_errno();
                xenevtchn_close(e);
                return r;
        }
        *ret = (VgpuXenEvtchn *)e;
        return 0;
}

static void lx_evtchn_close(VgpuXenEvtchn *e)
{
        xenevtchn_close(EVT(e));
}

static int lx_evtchn_fd(VgpuXenEvtchn *e)
{
        return xenevtchn_fd(EVT(e));
}

static int port_or_errno(xenevtchn_port_or_error_t p, uint32_t *ret)
{
        if (p < 0)
                return negative_errno();
        *ret = (uint32_t)p;
        return 0;
}

static int lx_evtchn_bind_unbound(VgpuXenEvtchn *e, uint32_t remote_domid, uint32_t *ret_port)
{
        return port_or_errno(xenevtchn_bind_unbound_port(EVT(e), remote_domid), ret_port);
}

static int lx_evtchn_bind_interdomain(VgpuXenEvtchn *e, uint32_t remote_domid, uint32_t remote_port, uint32_t *ret_port)
{
        return port_or_errno(xenevtchn_bind_interdomain(EVT(e), remote_domid, remote_port), ret_port);
}

static int lx_evtchn_unbind(VgpuXenEvtchn *e, uint32_t port)
{
        return xenevtchn_unbind(EVT(e), port) < 0 ? negative_errno() : 0;
}

static int lx_evtchn_notify(VgpuXenEvtchn *e, uint32_t port)
{
        return xenevtchn_notify(EVT(e), port) < 0 ? negative_errno() : 0;
}

static int lx_evtchn_pending(VgpuXenEvtchn *e, uint32_t *ret_port)
{
        return port_or_errno(xenevtchn_pending(EVT(e)), ret_port);
}

static int lx_evtchn_unmask(VgpuXenEvtchn *e, uint32_t port)
{
        return xenevtchn_unmask(EVT(e), port) < 0 ? negative_errno() : 0;
}

static const VgpuXenOps libxen_ops = {
        .name = "libxen",
        .xs_open = lx_xs_open,
        .xs_close = lx_xs_close,
        .xs_fileno = lx_xs_fileno,
        .xs_read = lx_xs_read,
        .xs_write = lx_xs_write,
        .xs_mkdir = lx_xs_mkdir,
        .xs_rm = lx_xs_rm,
        .xs_set_permissions = lx_xs_set_permissions,
        .xs_get_permissions = lx_xs_get_permissions,
        .xs_directory = lx_xs_directory,
        .xs_transaction_start = lx_xs_transaction_start,
        .xs_transaction_end = lx_xs_transaction_end,
        .xs_watch = lx_xs_watch,
        .xs_unwatch = lx_xs_unwatch,
        .xs_check_watch = lx_xs_check_watch,
        .xs_domain_exists = lx_xs_domain_exists,
        .gnttab_open = lx_gnttab_open,
        .gnttab_close = lx_gnttab_close,
        .gnttab_map = lx_gnttab_map,
        .gnttab_map_notify = lx_gnttab_map_notify,
        .gnttab_unmap = lx_gnttab_unmap,
        .gntshr_open = lx_gntshr_open,
        .gntshr_close = lx_gntshr_close,
        .gntshr_share = lx_gntshr_share,
        .gntshr_unshare = lx_gntshr_unshare,
        .evtchn_open = lx_evtchn_open,
        .evtchn_close = lx_evtchn_close,
        .evtchn_fd = lx_evtchn_fd,
        .evtchn_bind_unbound = lx_evtchn_bind_unbound,
        .evtchn_bind_interdomain = lx_evtchn_bind_interdomain,
        .evtchn_unbind = lx_evtchn_unbind,
        .evtchn_notify = lx_evtchn_notify,
        .evtchn_pending = lx_evtchn_pending,
        .evtchn_unmask = lx_evtchn_unmask,
};

const VgpuXenOps *vgpu_xen_ops_libxen(void)
{
        return &libxen_ops;
}
