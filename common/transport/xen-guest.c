/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The guest's side of a Xen channel: share the region and its page directory with domain 0, allocate an
 * unbound event channel for it, publish the keys under the domain's own device/vgpu/0 and walk the xenbus
 * states with the backend (docs/xen.md, "The handshake"). Paths are relative: xenstored resolves them in the
 * calling domain's own directory, so the guest never needs to know its domid. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "proto/channel.h"
#include "vgpu-util.h"
#include "xen-internal.h"

#define FRONTEND      "device/vgpu/0"
#define WATCH_TOKEN   "vgpu-frontend"
#define STATE_MASK(s) (1u << (s))

typedef struct Guest {
        XenEndpoint *x;
        char backend[128];
        char *why;
        size_t why_size;
} Guest;

static uint64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int guest_write(Guest *g, uint32_t t, const char *key, const char *value)
{
        char path[160];

        snprintf(path, sizeof(path), FRONTEND "/%s", key);
        return g->x->ops->xs_write(g->x->xs, t, path, value);
}

static int guest_write_state(Guest *g, VgpuXenbusState s)
{
        char v[4];

        snprintf(v, sizeof(v), "%d", (int)s);
        return guest_write(g, VGPU_XS_NO_TRANSACTION, "state", v);
}

/* The backend's state; Unknown when absent or unreadable (a garbage value is the backend's bug, not ours). */
static VgpuXenbusState backend_state(Guest *g)
{
        _cleanup_free_ char *v = NULL;
        char path[160];
        VgpuXenbusState s;

        snprintf(path, sizeof(path), "%s/state", g->backend);
        if (g->x->ops->xs_read(g->x->xs, VGPU_XS_NO_TRANSACTION, path, &v) < 0 || vgpu_xen_parse_state(v, &s) < 0)
                return VGPU_XENBUS_UNKNOWN;
        return s;
}

static void drain_watch(Guest *g)
{
        char **ev = NULL;

        while (g->x->ops->xs_check_watch(g->x->xs, &ev) > 0)
                ev = mfree(ev);
}

/* Until the backend's state is one of mask; its state in *ret. -ETIMEDOUT after timeout_ms. */
static int wait_backend(Guest *g, unsigned mask, int timeout_ms, VgpuXenbusState *ret)
{
        uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
        struct pollfd p = {.fd = g->x->ops->xs_fileno(g->x->xs), .events = POLLIN};

        for (;;) {
                uint64_t now;

                drain_watch(g);
                *ret = backend_state(g);
                if (mask & STATE_MASK(*ret))
                        return 0;
                now = now_ms();
                if (now >= deadline)
                        return -ETIMEDOUT;
                if (p.fd < 0 || (poll(&p, 1, (int)(deadline - now)) < 0 && errno != EINTR))
                        return p.fd < 0 ? p.fd : negative_errno();
        }
}

static int find_device(Guest *g)
{
        const VgpuXenOps *ops = g->x->ops;
        _cleanup_free_ char *backend = NULL, *backend_id = NULL;
        uint32_t id;
        int r;

        r = ops->xs_read(g->x->xs, VGPU_XS_NO_TRANSACTION, FRONTEND "/backend", &backend);
        if (r == -ENOENT || r == -EACCES) {
                snprintf(g->why, g->why_size,
                         "this domain has no vgpu device in xenstore (" FRONTEND "): the "
                         "toolstack must create it (vgpu-xen-channel create --domid=N)");
                return -ENODEV;
        }
        if (r >= 0)
                r = ops->xs_read(g->x->xs, VGPU_XS_NO_TRANSACTION, FRONTEND "/backend-id", &backend_id);
        if (r < 0) {
                snprintf(g->why, g->why_size, "cannot read " FRONTEND " in xenstore: %s", strerror(-r));
                return r;
        }
        if (vgpu_xen_parse_u32(backend_id, 0, &id) < 0 ||
            strncmp(backend, VGPU_XEN_BACKEND_ROOT "/", sizeof(VGPU_XEN_BACKEND_ROOT)) != 0 ||
            strlen(backend) >= sizeof(g->backend)) {
                snprintf(g->why, g->why_size,
                         FRONTEND " names backend '%.80s' in domain '%.8s'; only " VGPU_XEN_BACKEND_ROOT
                                  "/… in domain 0 is served",
                         backend, backend_id);
                return -ENODEV;
        }
        memcpy(g->backend, backend, strlen(backend) + 1);
        g->x->frontend_found = true;
        return 0;
}

/* Initialising, and wait until the backend is ready for us (InitWait); a backend still holding an old
 * channel of ours tears it down on seeing Initialising. */
static int wait_init_wait(Guest *g)
{
        VgpuXenbusState s;
        char path[160];
        int r;

        snprintf(path, sizeof(path), "%s/state", g->backend);
        r = g->x->ops->xs_watch(g->x->xs, path, WATCH_TOKEN);
        if (r >= 0)
                r = guest_write_state(g, VGPU_XENBUS_INITIALISING);
        if (r < 0) {
                snprintf(g->why, g->why_size, "cannot use xenstore: %s", strerror(-r));
                return r;
        }
        r = wait_backend(g, STATE_MASK(VGPU_XENBUS_INIT_WAIT), VGPU_XEN_HANDSHAKE_TIMEOUT_MS, &s);
        if (r == -ETIMEDOUT)
                snprintf(g->why, g->why_size,
                         "the backend %s stayed %s for %d s instead of InitWait: is "
                         "vgpu-ingestd running in domain 0 with Xen channels on?",
                         g->backend, vgpu_xenbus_state_to_string(s), VGPU_XEN_HANDSHAKE_TIMEOUT_MS / 1000);
        return r;
}

static int share_error(Guest *g, int r, const char *what, uint32_t pages)
{
        if (r == -ENOSPC || r == -ENOMEM || r == -E2BIG) {
                snprintf(g->why, g->why_size,
                         "cannot grant the %s (%u pages) to domain 0: %s. A channel of %zu "
                         "bytes takes %u grant-table frames; raise the domain's max_grant_frames (xl.cfg "
                         "max_grant_frames=, Xen's gnttab_max_frames=; default 64) and the guest's "
                         "xen_gntalloc limit (/sys/module/xen_gntalloc/parameters/limit, default 1024 pages), "
                         "or ask for a smaller data area",
                         what, pages, strerror(-r), g->x->base.region_size,
                         vgpu_xen_grant_frames_needed(g->x->base.region_size));
                return -ENOSPC;
        }
        snprintf(g->why, g->why_size, "cannot grant the %s to domain 0: %s", what, strerror(-r));
        return r;
}

/* The region (read-write) and its directory (read-only) for domain 0, and an unbound port. */
static int share(Guest *g, uint32_t req_count, uint32_t cpl_count, uint32_t *dir_refs, void **ret_dir)
{
        XenEndpoint *x = g->x;
        const VgpuXenOps *ops = x->ops;
        uint32_t pages = (uint32_t)(x->base.region_size / VGPU_XEN_PAGE_SIZE), n_dir = vgpu_xen_dir_pages(pages);
        void *region = NULL;
        int r;

        r = ops->gntshr_open(&x->gntshr);
        if (r >= 0)
                r = ops->evtchn_open(&x->evtchn);
        if (r >= 0)
                r = ops->evtchn_bind_unbound(x->evtchn, 0, &x->local_port);
        if (r < 0) {
                snprintf(g->why, g->why_size,
                         "cannot open the grant or event-channel devices "
                         "(/dev/xen/gntalloc, /dev/xen/evtchn): %s",
                         strerror(-r));
                return r;
        }
        x->port_bound = true;
        x->base.wait_fd = ops->evtchn_fd(x->evtchn);
        x->refs = calloc(pages, sizeof(uint32_t));
        if (!x->refs)
                return -ENOMEM;
        r = ops->gntshr_share(x->gntshr, 0, pages, true, x->refs, &region);
        if (r < 0)
                return share_error(g, r, "channel region", pages);
        x->base.region = region;
        r = vgpu_channel_format(region, x->base.region_size, req_count, cpl_count, &x->base.geometry);
        if (r < 0) {
                snprintf(g->why, g->why_size, "cannot lay out the channel: %s", strerror(-r));
                return r;
        }
        r = ops->gntshr_share(x->gntshr, 0, n_dir, false, dir_refs, ret_dir);
        if (r < 0)
                return share_error(g, r, "page directory", n_dir);
        memcpy(*ret_dir, x->refs, (size_t)pages * sizeof(uint32_t)); /* little-endian, as the key says */
        x->refs = mfree(x->refs); /* the guest keeps no copy: region_ref() is the host's */
        return 0;
}

static int publish_keys(Guest *g, uint32_t t, const uint32_t *dir_refs, uint32_t n_dir)
{
        char key[32], v[24];
        int r;

        snprintf(v, sizeof(v), "%u", VGPU_LAYOUT_VERSION);
        r = guest_write(g, t, "protocol-version", v);
        snprintf(v, sizeof(v), "%zu", g->x->base.region_size);
        if (r >= 0)
                r = guest_write(g, t, "region-size", v);
        snprintf(v, sizeof(v), "%u", n_dir);
        if (r >= 0)
                r = guest_write(g, t, "nr-page-dir-refs", v);
        for (uint32_t i = 0; r >= 0 && i < n_dir; i++) {
                snprintf(key, sizeof(key), "page-dir-ref-%u", i);
                snprintf(v, sizeof(v), "%u", dir_refs[i]);
                r = guest_write(g, t, key, v);
        }
        snprintf(v, sizeof(v), "%u", g->x->local_port);
        if (r >= 0)
                r = guest_write(g, t, "event-channel", v);
        if (r >= 0)
                r = guest_write(g, t, "state", "3");
        return r;
}

/* Every key and Initialised in one transaction: the backend never sees half of them. */
static int publish(Guest *g, const uint32_t *dir_refs, uint32_t n_dir)
{
        const VgpuXenOps *ops = g->x->ops;
        int r;

        for (int attempt = 0; attempt < 16; attempt++) {
                uint32_t t;

                r = ops->xs_transaction_start(g->x->xs, &t);
                if (r < 0)
                        break;
                r = publish_keys(g, t, dir_refs, n_dir);
                if (r < 0) {
                        (void)ops->xs_transaction_end(g->x->xs, t, true);
                        break;
                }
                r = ops->xs_transaction_end(g->x->xs, t, false);
                if (r != -EAGAIN)
                        break;
        }
        if (r < 0)
                snprintf(g->why, g->why_size, "cannot publish the frontend keys under " FRONTEND ": %s", strerror(-r));
        return r;
}

static int wait_connected(Guest *g)
{
        _cleanup_free_ char *reason = NULL;
        VgpuXenbusState s;
        char path[160];
        int r;

        r = wait_backend(
                g, STATE_MASK(VGPU_XENBUS_CONNECTED) | STATE_MASK(VGPU_XENBUS_CLOSING) | STATE_MASK(VGPU_XENBUS_CLOSED),
                VGPU_XEN_HANDSHAKE_TIMEOUT_MS, &s);
        if (r == -ETIMEDOUT) {
                snprintf(g->why, g->why_size, "the backend %s did not connect within %d s (state %s)", g->backend,
                         VGPU_XEN_HANDSHAKE_TIMEOUT_MS / 1000, vgpu_xenbus_state_to_string(s));
                return r;
        }
        if (r < 0 || s == VGPU_XENBUS_CONNECTED)
                return r;
        snprintf(path, sizeof(path), "%s/error", g->backend);
        (void)g->x->ops->xs_read(g->x->xs, VGPU_XS_NO_TRANSACTION, path, &reason);
        snprintf(g->why, g->why_size, "the backend refused the channel: %s", reason ? reason : "no reason given");
        return -ECONNREFUSED;
}

static int handshake(Guest *g, uint32_t req_count, uint32_t cpl_count)
{
        uint32_t pages = (uint32_t)(g->x->base.region_size / VGPU_XEN_PAGE_SIZE), n_dir = vgpu_xen_dir_pages(pages);
        uint32_t dir_refs[VGPU_XEN_DIR_REFS_MAX];
        void *dir = NULL;
        int r;

        r = find_device(g);
        if (r >= 0)
                r = wait_init_wait(g);
        if (r >= 0)
                r = share(g, req_count, cpl_count, dir_refs, &dir);
        if (r >= 0)
                r = publish(g, dir_refs, n_dir);
        if (r >= 0)
                r = wait_connected(g);
        /* The backend copied the directory once and let it go; so do we, whatever happened. */
        if (dir)
                (void)g->x->ops->gntshr_unshare(g->x->gntshr, dir, n_dir);
        if (r >= 0)
                r = guest_write_state(g, VGPU_XENBUS_CONNECTED);
        return r;
}

int vgpu_xen_guest_connect(const VgpuXenOps *ops, size_t region_size, uint32_t req_count, uint32_t cpl_count,
                           VgpuEndpoint **ret, char *why, size_t why_size)
{
        _cleanup_endpoint_ VgpuEndpoint *e = NULL;
        Guest g = {.why = why, .why_size = why_size};
        XenEndpoint *x;
        int r;

        if (!ret || !why || why_size == 0)
                return -EINVAL;
        why[0] = '\0';
        if (!ops) {
                snprintf(why, why_size, "this build of libvgpu has no Xen support");
                return -EOPNOTSUPP;
        }
        if (region_size < VGPU_XEN_PAGE_SIZE || region_size > VGPU_REGION_SIZE_MAX ||
            region_size % VGPU_XEN_PAGE_SIZE != 0)
                return -EINVAL;
        x = xen_endpoint_alloc(ops, false);
        if (!x)
                return -ENOMEM;
        e = &x->base;
        e->region_size = region_size;
        x->domid = 0;
        g.x = x;
        r = ops->xs_open(&x->xs);
        if (r < 0) {
                snprintf(why, why_size, "cannot open xenstore (/dev/xen/xenbus): %s", strerror(-r));
                return r;
        }
        r = handshake(&g, req_count, cpl_count);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(e);
        return 0;
}
