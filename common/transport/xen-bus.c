/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The backend's xenbus side: one watch over backend/vgpu finds the devices the toolstack created, one watch
 * per device follows its frontend's state, @releaseDomain catches dead domains. A frontend is only ever read
 * from the path of the domain that owns the device: the domid is what the hypervisor vouches for. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "proto/channel.h"
#include "vgpu-util.h"
#include "xen.h"

#define TOKEN_ROOT          "vgpu-backend"
#define TOKEN_RELEASE       "vgpu-release"
#define TOKEN_FRONTEND      "vgpu-frontend:"
#define EVENTS_PER_DISPATCH 256

typedef struct XenDevice {
        VgpuXenBus *bus;
        uint32_t domid;
        char backend[96], frontend[96], fe_state_path[112], token[32];
        char vm_uuid[37];
        VgpuXenbusState state;    /* ours, as last written */
        VgpuXenbusState fe_state; /* the frontend's, as last read */
        VgpuEndpoint *endpoint;   /* while connected; the callbacks' side owns it */
        bool gone;                /* its domain was destroyed; kept until the toolstack removes the directory */
        bool seen;
} XenDevice;

struct VgpuXenBus {
        const VgpuXenOps *ops;
        VgpuXenBusCallbacks cb;
        void *userdata;
        VgpuXs *xs;
        XenDevice **devices;
        size_t n_devices;
};

static void bus_log(const VgpuXenBus *b, int level, uint32_t domid, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void bus_log(const VgpuXenBus *b, int level, uint32_t domid, const char *fmt, ...)
{
        char message[512];
        va_list ap;

        if (!b->cb.log)
                return;
        va_start(ap, fmt);
        vsnprintf(message, sizeof(message), fmt, ap);
        va_end(ap);
        b->cb.log(b->userdata, level, domid, message);
}

static int device_write(XenDevice *d, const char *key, const char *value)
{
        char path[128];

        snprintf(path, sizeof(path), "%s/%s", d->backend, key);
        return d->bus->ops->xs_write(d->bus->xs, VGPU_XS_NO_TRANSACTION, path, value);
}

static void device_set_state(XenDevice *d, VgpuXenbusState s)
{
        char v[4];
        int r;

        if (d->state == s)
                return;
        snprintf(v, sizeof(v), "%d", (int)s);
        r = device_write(d, "state", v);
        if (r < 0) {
                bus_log(d->bus, LOG_WARNING, d->domid, "domain %u: cannot write backend state %s: %s", d->domid,
                        vgpu_xenbus_state_to_string(s), strerror(-r));
                return;
        }
        bus_log(d->bus, LOG_INFO, d->domid, "domain %u: backend state %s → %s.", d->domid,
                vgpu_xenbus_state_to_string(d->state), vgpu_xenbus_state_to_string(s));
        d->state = s;
}

/* Told to the guest in the backend's "error" key, which it may read; then Closing. */
static void device_refuse(XenDevice *d, const char *why)
{
        bus_log(d->bus, LOG_WARNING, d->domid, "domain %u: refused the channel: %s.", d->domid, why);
        (void)device_write(d, "error", why);
        device_set_state(d, VGPU_XENBUS_CLOSING);
}

static void device_clear_error(XenDevice *d)
{
        char path[128];

        snprintf(path, sizeof(path), "%s/error", d->backend);
        (void)d->bus->ops->xs_rm(d->bus->xs, VGPU_XS_NO_TRANSACTION, path);
}

/* Called from inside the endpoint's free: everything is unmapped and unbound by now. */
static void device_endpoint_gone(void *userdata)
{
        XenDevice *d = userdata;

        d->endpoint = NULL;
        bus_log(d->bus, LOG_INFO, d->domid, "domain %u: unmapped the channel and unbound its event channel.", d->domid);
        /* The host closed it (a protocol violation, an administrator, a stopping service): tell the frontend. */
        if (d->state == VGPU_XENBUS_CONNECTED)
                device_set_state(d, VGPU_XENBUS_CLOSING);
}

static void device_disconnect(XenDevice *d, const char *why)
{
        VgpuEndpoint *e = d->endpoint;

        if (!e)
                return;
        bus_log(d->bus, LOG_INFO, d->domid, "domain %u: tearing the channel down: %s.", d->domid, why);
        d->bus->cb.disconnect(d->bus->userdata, d->domid, e, why);
        /* The callback frees e, which calls device_endpoint_gone(); if it did not, never call back later. */
        if (d->endpoint) {
                vgpu_xen_endpoint_on_gone(d->endpoint, NULL, NULL);
                d->endpoint = NULL;
        }
}

/* ---- Reading the frontend's keys: every value read is kept until the parse is over ---- */

typedef struct KeyCache {
        const XenDevice *d;
        char *values[8 + VGPU_XEN_DIR_REFS_MAX];
        size_t n;
} KeyCache;

static int key_lookup(void *userdata, const char *key, const char **ret)
{
        KeyCache *c = userdata;
        char path[160];
        char *v = NULL;
        int r;

        if (c->n >= ELEMENTSOF(c->values))
                return -E2BIG;
        snprintf(path, sizeof(path), "%s/%s", c->d->frontend, key);
        r = c->d->bus->ops->xs_read(c->d->bus->xs, VGPU_XS_NO_TRANSACTION, path, &v);
        if (r < 0)
                return r;
        c->values[c->n++] = v;
        *ret = v;
        return 0;
}

static void key_cache_done(KeyCache *c)
{
        for (size_t i = 0; i < c->n; i++)
                free(c->values[i]);
        c->n = 0;
}

static int device_map(XenDevice *d, VgpuEndpoint **ret, char *why, size_t why_size)
{
        _cleanup_(key_cache_done) KeyCache cache = {.d = d};
        _cleanup_free_ VgpuXenFrontend *fe = malloc(sizeof(*fe));
        int r;

        if (!fe)
                return -ENOMEM;
        r = vgpu_xen_frontend_parse(key_lookup, &cache, fe, why, why_size);
        if (r < 0)
                return r;
        r = d->bus->cb.accept(d->bus->userdata, d->domid, d->vm_uuid, why, why_size);
        if (r < 0)
                return r;
        r = vgpu_xen_backend_map(d->bus->ops, d->domid, fe, ret, why, why_size);
        if (r < 0)
                return r;
        bus_log(d->bus, LOG_INFO, d->domid,
                "domain %u: mapped %u pages (%" PRIu64 " bytes) through %u page-directory "
                "pages; event channel %u bound.",
                d->domid, fe->region_pages, fe->region_size, fe->n_dir_refs, fe->event_channel);
        return 0;
}

static void device_connect(XenDevice *d)
{
        VgpuEndpoint *e = NULL;
        uint32_t local, remote;
        char why[256] = "";
        int r;

        bus_log(d->bus, LOG_INFO, d->domid, "domain %u: frontend Initialised; reading its keys.", d->domid);
        r = device_map(d, &e, why, sizeof(why));
        if (r < 0) {
                device_refuse(d, why[0] ? why : strerror(-r));
                return;
        }
        r = d->bus->cb.connected(d->bus->userdata, d->domid, d->vm_uuid, e);
        if (r < 0) {
                vgpu_endpoint_free(e);
                snprintf(why, sizeof(why), "the host cannot serve the channel: %s", strerror(-r));
                device_refuse(d, why);
                return;
        }
        d->endpoint = e;
        vgpu_xen_endpoint_on_gone(e, device_endpoint_gone, d);
        vgpu_xen_endpoint_ports(e, &local, &remote);
        device_clear_error(d);
        device_set_state(d, VGPU_XENBUS_CONNECTED);
        bus_log(d->bus, LOG_INFO, d->domid, "domain %u: connected (VM uuid %s, port %u → local %u).", d->domid,
                d->vm_uuid, remote, local);
}

/* The frontend's state changed (or its watch fired once at registration). */
static void device_frontend_changed(XenDevice *d)
{
        _cleanup_free_ char *v = NULL;
        VgpuXenbusState s;
        int r;

        r = d->bus->ops->xs_read(d->bus->xs, VGPU_XS_NO_TRANSACTION, d->fe_state_path, &v);
        if (r < 0) {
                d->fe_state = VGPU_XENBUS_UNKNOWN;
                device_disconnect(d, "the frontend's state key is gone");
                return;
        }
        if (vgpu_xen_parse_state(v, &s) < 0) {
                d->fe_state = VGPU_XENBUS_UNKNOWN;
                bus_log(d->bus, LOG_WARNING, d->domid, "domain %u: frontend state '%.16s' is not a xenbus state.",
                        d->domid, v);
                device_disconnect(d, "protocol violation: the frontend wrote an invalid state");
                device_refuse(d, "the frontend's state is not a xenbus state");
                return;
        }
        /* One event per write, but each reads the state as it is now: two events may read the same value,
         * and an unchanged state must not start the same step twice (a second connect, say). */
        if (s == d->fe_state)
                return;
        bus_log(d->bus, LOG_INFO, d->domid, "domain %u: frontend state %s → %s.", d->domid,
                vgpu_xenbus_state_to_string(d->fe_state), vgpu_xenbus_state_to_string(s));
        d->fe_state = s;
        switch (s) {
        case VGPU_XENBUS_INITIALISING:
        case VGPU_XENBUS_INIT_WAIT:
                device_disconnect(d, "the frontend started over");
                device_clear_error(d);
                device_set_state(d, VGPU_XENBUS_INIT_WAIT);
                break;
        case VGPU_XENBUS_INITIALISED:
                device_disconnect(d, "the frontend initialised a new channel");
                device_connect(d);
                break;
        case VGPU_XENBUS_CONNECTED:
                if (!d->endpoint && d->state != VGPU_XENBUS_CLOSING)
                        device_refuse(d, "the frontend is Connected but no channel is mapped here (the backend "
                                         "restarted): connect again");
                break;
        case VGPU_XENBUS_CLOSING:
        case VGPU_XENBUS_CLOSED:
                device_disconnect(d, s == VGPU_XENBUS_CLOSING ? "the frontend is closing" : "the frontend closed");
                device_set_state(d, VGPU_XENBUS_CLOSING);
                device_set_state(d, VGPU_XENBUS_CLOSED);
                break;
        default:
                device_disconnect(d, "protocol violation: unsupported frontend state");
                device_refuse(d, "the frontend's state is not one this backend follows");
                break;
        }
}

/* ---- Devices ---- */

static void device_free(XenDevice *d, const char *why)
{
        VgpuXenBus *b = d->bus;

        device_disconnect(d, why);
        if (!d->gone)
                (void)b->ops->xs_unwatch(b->xs, d->fe_state_path, d->token);
        bus_log(b, LOG_INFO, d->domid, "domain %u: forgot its device: %s.", d->domid, why);
        free(d);
}

static XenDevice *bus_find(const VgpuXenBus *b, uint32_t domid)
{
        for (size_t i = 0; i < b->n_devices; i++)
                if (b->devices[i]->domid == domid)
                        return b->devices[i];
        return NULL;
}

/* The toolstack wrote both directories; nothing here comes from the guest. Still, the backend's frontend
 * key must name the device of the very domain it is filed under. */
static int device_read_backend(XenDevice *d)
{
        const VgpuXenOps *ops = d->bus->ops;
        _cleanup_free_ char *frontend = NULL, *uuid = NULL, *state = NULL;
        char path[128];
        int r;

        snprintf(path, sizeof(path), "%s/frontend", d->backend);
        r = ops->xs_read(d->bus->xs, VGPU_XS_NO_TRANSACTION, path, &frontend);
        if (r < 0 || !streq(frontend, d->frontend)) {
                bus_log(d->bus, LOG_WARNING, d->domid, "domain %u: %s names frontend '%.80s', not %s; ignored.",
                        d->domid, path, strempty(frontend), d->frontend);
                return -EPERM;
        }
        snprintf(path, sizeof(path), "%s/vm-uuid", d->backend);
        r = ops->xs_read(d->bus->xs, VGPU_XS_NO_TRANSACTION, path, &uuid);
        if (r < 0 || vgpu_xen_uuid_normalize(uuid, d->vm_uuid) < 0) {
                bus_log(d->bus, LOG_WARNING, d->domid, "domain %u: %s is missing or not a uuid; ignored.", d->domid,
                        path);
                return -EINVAL;
        }
        snprintf(path, sizeof(path), "%s/state", d->backend);
        if (ops->xs_read(d->bus->xs, VGPU_XS_NO_TRANSACTION, path, &state) < 0 ||
            vgpu_xen_parse_state(state, &d->state) < 0)
                d->state = VGPU_XENBUS_UNKNOWN;
        return 0;
}

static int bus_adopt(VgpuXenBus *b, uint32_t domid)
{
        _cleanup_free_ XenDevice *d = calloc(1, sizeof(XenDevice));
        XenDevice **a;
        int r;

        if (!d)
                return -ENOMEM;
        *d = (XenDevice){.bus = b, .domid = domid, .seen = true, .fe_state = VGPU_XENBUS_UNKNOWN};
        if (vgpu_xen_backend_path(domid, d->backend, sizeof(d->backend)) < 0 ||
            vgpu_xen_frontend_path(domid, d->frontend, sizeof(d->frontend)) < 0)
                return -EINVAL;
        snprintf(d->fe_state_path, sizeof(d->fe_state_path), "%s/state", d->frontend);
        snprintf(d->token, sizeof(d->token), TOKEN_FRONTEND "%u", domid);
        r = device_read_backend(d);
        if (r < 0)
                return r;
        a = reallocarray(b->devices, b->n_devices + 1, sizeof(XenDevice *));
        if (!a)
                return -ENOMEM;
        b->devices = a;
        r = b->ops->xs_watch(b->xs, d->fe_state_path, d->token);
        if (r < 0) {
                bus_log(b, LOG_WARNING, domid, "domain %u: cannot watch %s: %s", domid, d->fe_state_path, strerror(-r));
                return r;
        }
        bus_log(b, LOG_INFO, domid, "domain %u: found its vgpu device (VM uuid %s); watching %s.", domid, d->vm_uuid,
                d->fe_state_path);
        if (d->state == VGPU_XENBUS_INITIALISING || d->state == VGPU_XENBUS_UNKNOWN)
                device_set_state(d, VGPU_XENBUS_INIT_WAIT);
        b->devices[b->n_devices++] = TAKE_PTR(d);
        return 0;
}

static void bus_remove_at(VgpuXenBus *b, size_t i, const char *why)
{
        XenDevice *d = b->devices[i];

        memmove(b->devices + i, b->devices + i + 1, (b->n_devices - i - 1) * sizeof(XenDevice *));
        b->n_devices--;
        device_free(d, why);
}

/* Which domains have a device under backend/vgpu now: new ones adopted, vanished ones forgotten. */
static void bus_rescan(VgpuXenBus *b)
{
        _cleanup_free_ char **names = NULL;
        unsigned n = 0;
        int r;

        r = b->ops->xs_directory(b->xs, VGPU_XEN_BACKEND_ROOT, &names, &n);
        if (r < 0 && r != -ENOENT) {
                bus_log(b, LOG_WARNING, 0, "Cannot list %s: %s", VGPU_XEN_BACKEND_ROOT, strerror(-r));
                return;
        }
        for (size_t i = 0; i < b->n_devices; i++)
                b->devices[i]->seen = false;
        for (unsigned i = 0; i < n; i++) {
                uint32_t domid;
                XenDevice *d;

                if (vgpu_xen_parse_u32(names[i], VGPU_XEN_DOMID_MAX, &domid) < 0 || domid == 0)
                        continue;
                d = bus_find(b, domid);
                if (d)
                        d->seen = true;
                else
                        (void)bus_adopt(b, domid);
        }
        for (size_t i = b->n_devices; i > 0; i--)
                if (!b->devices[i - 1]->seen)
                        bus_remove_at(b, i - 1, "its backend directory was removed");
}

static void bus_release(VgpuXenBus *b)
{
        for (size_t i = 0; i < b->n_devices; i++) {
                XenDevice *d = b->devices[i];

                if (d->gone || b->ops->xs_domain_exists(b->xs, d->domid) != 0)
                        continue;
                bus_log(b, LOG_INFO, d->domid, "domain %u was destroyed (@releaseDomain).", d->domid);
                device_disconnect(d, "its domain was destroyed");
                (void)b->ops->xs_unwatch(b->xs, d->fe_state_path, d->token);
                d->gone = true;
                device_set_state(d, VGPU_XENBUS_CLOSED);
        }
}

static void bus_event(VgpuXenBus *b, const char *path, const char *token)
{
        uint32_t domid;
        XenDevice *d;

        if (streq(token, TOKEN_RELEASE))
                bus_release(b);
        else if (streq(token, TOKEN_ROOT)) {
                /* Our own state and error writes land here too: only a directory change needs a rescan. */
                const char *tail = strrchr(path, '/');
                if (!tail || !(streq(tail, "/state") || streq(tail, "/error")))
                        bus_rescan(b);
        } else if (strncmp(token, TOKEN_FRONTEND, strlen(TOKEN_FRONTEND)) == 0 &&
                   vgpu_xen_parse_u32(token + strlen(TOKEN_FRONTEND), VGPU_XEN_DOMID_MAX, &domid) >= 0 &&
                   (d = bus_find(b, domid)) && !d->gone)
                device_frontend_changed(d);
}

int vgpu_xen_bus_dispatch(VgpuXenBus *b)
{
        for (int i = 0; i < EVENTS_PER_DISPATCH; i++) {
                _cleanup_free_ char **ev = NULL;
                int r = b->ops->xs_check_watch(b->xs, &ev);

                if (r <= 0)
                        return r;
                bus_event(b, ev[0], ev[1]);
        }
        return 0;
}

int vgpu_xen_bus_new(const VgpuXenOps *ops, const VgpuXenBusCallbacks *cb, void *userdata, VgpuXenBus **ret)
{
        VgpuXenBus *b;
        int r;

        if (!ops || !cb || !cb->accept || !cb->connected || !cb->disconnect || !ret)
                return -EINVAL;
        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        *b = (VgpuXenBus){.ops = ops, .cb = *cb, .userdata = userdata};
        r = ops->xs_open(&b->xs);
        if (r >= 0)
                r = ops->xs_watch(b->xs, VGPU_XEN_BACKEND_ROOT, TOKEN_ROOT);
        if (r >= 0)
                r = ops->xs_watch(b->xs, "@releaseDomain", TOKEN_RELEASE);
        if (r < 0) {
                vgpu_xen_bus_free(b);
                return r;
        }
        bus_log(b, LOG_INFO, 0, "Watching %s and @releaseDomain for vgpu devices (through %s).", VGPU_XEN_BACKEND_ROOT,
                ops->name);
        *ret = b;
        return 0;
}

int vgpu_xen_bus_fd(const VgpuXenBus *b)
{
        return b->ops->xs_fileno(b->xs);
}

int vgpu_xen_bus_device_state(const VgpuXenBus *b, uint32_t domid)
{
        const XenDevice *d = bus_find(b, domid);

        return d ? (int)d->state : -ENOENT;
}

VgpuXenBus *vgpu_xen_bus_free(VgpuXenBus *b)
{
        if (!b)
                return NULL;
        while (b->n_devices > 0) {
                XenDevice *d = b->devices[b->n_devices - 1];

                device_disconnect(d, "the backend is stopping");
                device_set_state(d, VGPU_XENBUS_CLOSED);
                bus_remove_at(b, b->n_devices - 1, "the backend is stopping");
        }
        free(b->devices);
        if (b->xs)
                b->ops->xs_close(b->xs);
        free(b);
        return NULL;
}
