/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Xen endpoint: the backend maps what a frontend granted (directory copied once, region read-write,
 * header page again with unmap-notify), notifies and acks over an interdomain event channel, and tears it
 * all down in an order the guest can observe. The executor maps the same references with its own handle. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proto/channel.h"
#include "vgpu-util.h"
#include "xen-internal.h"

/* More pending ports than a handle holds would be a broken library; never loop on it. */
#define ACK_ROUNDS_MAX 64

static int xen_notify(VgpuEndpoint *e)
{
        XenEndpoint *x = (XenEndpoint *)e;

        return x->ops->evtchn_notify(x->evtchn, x->local_port);
}

/* Event channels stay masked once delivered: take every pending port and unmask it, so the next
 * notification fires again (the poller acks before it looks at the rings). */
static int xen_ack(VgpuEndpoint *e)
{
        XenEndpoint *x = (XenEndpoint *)e;

        for (int i = 0; i < ACK_ROUNDS_MAX; i++) {
                uint32_t port;
                int r = x->ops->evtchn_pending(x->evtchn, &port);

                if (r == -EAGAIN)
                        return 0;
                if (r < 0)
                        return r;
                r = x->ops->evtchn_unmask(x->evtchn, port);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int xen_region_ref(const VgpuEndpoint *e, VgpuRegionRef *ret)
{
        const XenEndpoint *x = (const XenEndpoint *)e;
        uint32_t *refs;

        if (!x->refs)
                return -EOPNOTSUPP;
        refs = malloc((size_t)x->n_refs * sizeof(uint32_t));
        if (!refs)
                return -ENOMEM;
        memcpy(refs, x->refs, (size_t)x->n_refs * sizeof(uint32_t));
        *ret = (VgpuRegionRef){.kind = VGPU_TRANSPORT_XEN,
                               .size = e->region_size,
                               .fd = -1,
                               .domid = x->domid,
                               .n_refs = x->n_refs,
                               .refs = refs};
        return 0;
}

/* The order matters and is tested: the notify page first (Xen zeroes backend_state and signals the guest
 * through the port, so the port must still be bound), then the region, then the port. A guest never sees
 * its pages in use by a backend that has already let go of the event channel. */
/* How long a leaving guest waits for the backend to let go of its pages (2 s, in 5 ms steps). */
#define BACKEND_CLOSE_POLLS   400
#define BACKEND_CLOSE_STEP_US 5000

/* The guest takes its pages back only once the backend has unmapped them (backend state Closed), or the
 * backend is gone, or a bounded wait has passed: pages unshared while a backend still maps them stay on the
 * guest kernel's deferred-release list, counted against its grant limit, so a quick reconnect would be
 * refused for want of grants. */
static void guest_wait_backend_closed(XenEndpoint *x)
{
        const VgpuXenOps *ops = x->ops;
        _cleanup_free_ char *backend = NULL;
        char path[192];

        if (ops->xs_read(x->xs, VGPU_XS_NO_TRANSACTION, "device/vgpu/0/backend", &backend) < 0 ||
            (size_t)snprintf(path, sizeof(path), "%s/state", backend) >= sizeof(path))
                return;
        for (unsigned i = 0; i < BACKEND_CLOSE_POLLS; i++) {
                _cleanup_free_ char *v = NULL;
                VgpuXenbusState s;

                if (ops->xs_read(x->xs, VGPU_XS_NO_TRANSACTION, path, &v) < 0 || vgpu_xen_parse_state(v, &s) < 0 ||
                    s == VGPU_XENBUS_CLOSED || s == VGPU_XENBUS_INITIALISING || s == VGPU_XENBUS_INIT_WAIT)
                        return;
                usleep(BACKEND_CLOSE_STEP_US);
        }
}

static void xen_free(VgpuEndpoint *e)
{
        XenEndpoint *x = (XenEndpoint *)e;
        const VgpuXenOps *ops = x->ops;

        /* The guest says it is leaving before it takes its pages back. */
        if (x->frontend_found) {
                (void)ops->xs_write(x->xs, VGPU_XS_NO_TRANSACTION, "device/vgpu/0/state", "5");
                if (x->gntshr && e->region)
                        guest_wait_backend_closed(x);
        }
        if (x->notify_page)
                (void)ops->gnttab_unmap(x->gnttab, x->notify_page, 1);
        if (x->gnttab && e->region)
                (void)ops->gnttab_unmap(x->gnttab, e->region, x->n_refs);
        if (x->gntshr && e->region)
                (void)ops->gntshr_unshare(x->gntshr, e->region, (uint32_t)(e->region_size / VGPU_XEN_PAGE_SIZE));
        if (x->gnttab)
                ops->gnttab_close(x->gnttab);
        if (x->port_bound)
                (void)ops->evtchn_unbind(x->evtchn, x->local_port);
        if (x->evtchn)
                ops->evtchn_close(x->evtchn);
        if (x->gntshr)
                ops->gntshr_close(x->gntshr);
        if (x->xs) {
                /* The guest's last word: Closed, after everything it shared is unshared. */
                if (x->frontend_found)
                        (void)ops->xs_write(x->xs, VGPU_XS_NO_TRANSACTION, "device/vgpu/0/state", "6");
                ops->xs_close(x->xs);
        }
        free(x->refs);
        if (x->gone)
                x->gone(x->gone_userdata);
        free(x);
}

static const VgpuEndpointOps xen_ops = {
        .notify = xen_notify,
        .ack = xen_ack,
        .region_ref = xen_region_ref,
        .free = xen_free,
};

XenEndpoint *xen_endpoint_alloc(const VgpuXenOps *ops, bool host)
{
        XenEndpoint *x = calloc(1, sizeof(*x));

        if (!x)
                return NULL;
        x->base = (VgpuEndpoint){
                .ops = &xen_ops, .kind = VGPU_TRANSPORT_XEN, .host = host, .wait_fd = -1, .hangup_fd = -1};
        x->ops = ops;
        return x;
}

void vgpu_xen_endpoint_on_gone(VgpuEndpoint *e, VgpuXenEndpointGone fn, void *userdata)
{
        XenEndpoint *x = (XenEndpoint *)e;

        x->gone = fn;
        x->gone_userdata = userdata;
}

void vgpu_xen_endpoint_ports(const VgpuEndpoint *e, uint32_t *ret_local, uint32_t *ret_remote)
{
        const XenEndpoint *x = (const XenEndpoint *)e;

        *ret_local = x->local_port;
        *ret_remote = x->remote_port;
}

/* The directory is the guest's and may change under us: copied once into a private array, unmapped,
 * and only then checked and used. */
static int read_directory(XenEndpoint *x, const VgpuXenFrontend *fe, char *why, size_t why_size)
{
        void *dir = NULL;
        int r;

        r = x->ops->gnttab_map(x->gnttab, x->domid, fe->dir_refs, fe->n_dir_refs, false, &dir);
        if (r < 0) {
                snprintf(why, why_size, "cannot map the %u page-directory pages of domain %u: %s", fe->n_dir_refs,
                         x->domid, strerror(-r));
                return r;
        }
        x->refs = malloc((size_t)fe->region_pages * sizeof(uint32_t));
        if (x->refs) {
                memcpy(x->refs, dir, (size_t)fe->region_pages * sizeof(uint32_t)); /* little-endian, as we are */
                x->n_refs = fe->region_pages;
        }
        (void)x->ops->gnttab_unmap(x->gnttab, dir, fe->n_dir_refs);
        if (!x->refs)
                return -ENOMEM;
        for (uint32_t i = 0; i < x->n_refs; i++)
                if (x->refs[i] < VGPU_XEN_RESERVED_REFS) {
                        snprintf(why, why_size, "page-directory entry %u is the reserved grant reference %u", i,
                                 x->refs[i]);
                        return -EINVAL;
                }
        return 0;
}

static int bind_port(XenEndpoint *x, uint32_t remote_port, char *why, size_t why_size)
{
        int r;

        r = x->ops->evtchn_open(&x->evtchn);
        if (r >= 0)
                r = x->ops->evtchn_bind_interdomain(x->evtchn, x->domid, remote_port, &x->local_port);
        if (r < 0) {
                snprintf(why, why_size, "cannot bind event channel %u of domain %u: %s", remote_port, x->domid,
                         strerror(-r));
                return r;
        }
        x->port_bound = true;
        x->remote_port = remote_port;
        x->base.wait_fd = x->ops->evtchn_fd(x->evtchn);
        return 0;
}

static int map_region(XenEndpoint *x, uint64_t size, char *why, size_t why_size)
{
        void *region = NULL;
        int r;

        r = x->ops->gnttab_map(x->gnttab, x->domid, x->refs, x->n_refs, true, &region);
        if (r < 0) {
                snprintf(why, why_size, "cannot map the region's %u pages from domain %u: %s", x->n_refs, x->domid,
                         strerror(-r));
                return r;
        }
        x->base.region = region;
        x->base.region_size = (size_t)size;
        /* Our death or our unmap zeroes backend_state in the guest's header and wakes it: no heartbeat. */
        r = x->ops->gnttab_map_notify(x->gnttab, x->domid, x->refs[0], offsetof(VgpuChannelHeader, backend_state),
                                      x->local_port, &x->notify_page);
        if (r < 0) {
                snprintf(why, why_size, "cannot map the header page of domain %u with unmap-notify: %s", x->domid,
                         strerror(-r));
                return r;
        }
        return 0;
}

int vgpu_xen_backend_map(const VgpuXenOps *ops, uint32_t domid, const VgpuXenFrontend *fe, VgpuEndpoint **ret,
                         char *why, size_t why_size)
{
        _cleanup_endpoint_ VgpuEndpoint *e = NULL;
        XenEndpoint *x;
        int r;

        if (!ops || !fe || !ret || !why || fe->region_pages == 0)
                return -EINVAL;
        x = xen_endpoint_alloc(ops, true);
        if (!x)
                return -ENOMEM;
        e = &x->base;
        x->domid = domid;
        e->peer = (VgpuPeer){.uid = (uid_t)-1, .gid = (gid_t)-1, .domid = domid};
        r = ops->gnttab_open(&x->gnttab);
        if (r < 0) {
                snprintf(why, why_size, "cannot open the grant-table device: %s", strerror(-r));
                return r;
        }
        r = read_directory(x, fe, why, why_size);
        if (r >= 0)
                r = bind_port(x, fe->event_channel, why, why_size);
        if (r >= 0)
                r = map_region(x, fe->region_size, why, why_size);
        if (r < 0)
                return r;
        r = vgpu_channel_geometry_read(e->region, e->region_size, &e->geometry);
        if (r < 0) {
                snprintf(why, why_size, "%s",
                         r == -EPROTONOSUPPORT ? "the channel layout version is not supported"
                                               : "the channel header's geometry is invalid");
                return r;
        }
        vgpu_channel_set_backend_state(e->region, VGPU_PEER_ALIVE, 0);
        *ret = TAKE_PTR(e);
        return 0;
}

/* ---- The executor's mapping ---- */

int vgpu_xen_region_map(const VgpuXenOps *ops, const VgpuRegionRef *ref, VgpuRegionMap *ret)
{
        VgpuXenGnttab *g = NULL;
        void *addr = NULL;
        int r;

        if (!ops)
                return -EOPNOTSUPP;
        if (ref->n_refs == 0 || ref->n_refs > VGPU_XEN_REGION_PAGES_MAX || !ref->refs ||
            ref->size != (uint64_t)ref->n_refs * VGPU_XEN_PAGE_SIZE || ref->domid == 0 ||
            ref->domid > VGPU_XEN_DOMID_MAX)
                return -EBADMSG;
        r = ops->gnttab_open(&g);
        if (r < 0)
                return r;
        r = ops->gnttab_map(g, ref->domid, ref->refs, ref->n_refs, true, &addr);
        if (r < 0) {
                ops->gnttab_close(g);
                return r;
        }
        *ret = (VgpuRegionMap){
                .kind = VGPU_TRANSPORT_XEN, .addr = addr, .size = (size_t)ref->size, .xen_ops = ops, .xen_gnttab = g};
        return 0;
}

void vgpu_xen_region_unmap(VgpuRegionMap *m)
{
        const VgpuXenOps *ops = m->xen_ops;

        if (!ops)
                return;
        (void)ops->gnttab_unmap(m->xen_gnttab, m->addr, (uint32_t)(m->size / VGPU_XEN_PAGE_SIZE));
        ops->gnttab_close(m->xen_gnttab);
}
