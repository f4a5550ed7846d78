/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fake's grant table and event channels: a share is a memfd, a mapping maps the granted pages of it
 * again (so both sides really alias), an unmap with notify zeroes its byte and signals its port. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vgpu-util.h"
#include "xen-fake-internal.h"

#define PAGE       4096u
#define MAX_GRANTS (1u << 20)
#define MAX_MAPS   256
#define MAX_PORTS  256

typedef struct Grant {
        bool live;
        uint32_t granter, grantee;
        bool writable;
        int memfd;
        uint32_t page;
} Grant;

typedef enum MapKind { MAP_NONE, MAP_MAPPED, MAP_SHARED_OUT } MapKind;

typedef struct Map {
        MapKind kind;
        void *owner;
        void *addr;
        uint32_t count;
        bool notify;
        uint32_t notify_offset, notify_port;
        int memfd;          /* shares: the pages */
        uint32_t first_ref; /* shares: refs first_ref … first_ref + count - 1 */
} Map;

typedef struct Port {
        bool used;
        struct Evtchn *handle;
        uint32_t domid, remote_domid, peer;
        bool pending, masked;
} Port;

typedef struct Evtchn {
        uint32_t domid;
        int efd;
        uint32_t queue[MAX_PORTS];
        unsigned n_queue;
} Evtchn;

typedef struct Handle {
        uint32_t domid;
} Handle;

static Grant *grants;
static uint32_t next_ref = 8, grant_limit = MAX_GRANTS;
static Map maps[MAX_MAPS];
static Port ports[MAX_PORTS];

#define lock xen_fake_lock

void xen_fake_grants_reset(void)
{
        if (grants)
                for (uint32_t r = 0; r < next_ref; r++)
                        grants[r].live = false;
        for (unsigned i = 0; i < MAX_MAPS; i++)
                if (maps[i].kind == MAP_SHARED_OUT)
                        close(maps[i].memfd);
        if (!grants)
                grants = calloc(MAX_GRANTS, sizeof(Grant));
        next_ref = 8;
        grant_limit = MAX_GRANTS;
        memset(maps, 0, sizeof(maps));
        memset(ports, 0, sizeof(ports));
}

void xen_fake_set_grant_limit(uint32_t limit)
{
        pthread_mutex_lock(&lock);
        grant_limit = limit;
        pthread_mutex_unlock(&lock);
}

unsigned xen_fake_live_mappings(void)
{
        unsigned n = 0;

        pthread_mutex_lock(&lock);
        for (unsigned i = 0; i < MAX_MAPS; i++)
                n += maps[i].kind == MAP_MAPPED;
        pthread_mutex_unlock(&lock);
        return n;
}

static Map *map_slot(void)
{
        for (unsigned i = 0; i < MAX_MAPS; i++)
                if (maps[i].kind == MAP_NONE)
                        return &maps[i];
        return NULL;
}

/* ---- Event channels (used by unmap-notify below) ---- */

static void enqueue(Evtchn *e, uint32_t port)
{
        if (e->n_queue < MAX_PORTS)
                e->queue[e->n_queue++] = port;
        (void)!eventfd_write(e->efd, 1);
}

static void deliver(uint32_t port)
{
        Port *t = &ports[port];

        if (!t->used || t->pending)
                return;
        t->pending = true;
        if (!t->masked)
                enqueue(t->handle, port);
}

int fx_evtchn_open(VgpuXenEvtchn **ret)
{
        Evtchn *e = calloc(1, sizeof(*e));

        e->domid = xen_fake_domid;
        e->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        *ret = (VgpuXenEvtchn *)e;
        return 0;
}

static uint32_t port_new(Evtchn *e, uint32_t remote_domid)
{
        for (uint32_t p = 1; p < MAX_PORTS; p++)
                if (!ports[p].used) {
                        ports[p] = (Port){.used = true, .handle = e, .domid = e->domid, .remote_domid = remote_domid};
                        return p;
                }
        return 0;
}

static void port_close(uint32_t p)
{
        Evtchn *e = ports[p].handle;

        if (ports[p].peer)
                ports[ports[p].peer].peer = 0;
        for (unsigned i = 0; i < e->n_queue; i++)
                if (e->queue[i] == p)
                        e->queue[i--] = e->queue[--e->n_queue];
        ports[p] = (Port){};
}

void fx_evtchn_close(VgpuXenEvtchn *h)
{
        Evtchn *e = (Evtchn *)h;

        pthread_mutex_lock(&lock);
        for (uint32_t p = 1; p < MAX_PORTS; p++)
                if (ports[p].used && ports[p].handle == e)
                        port_close(p);
        xen_fake_log_add("evtchn_close");
        pthread_mutex_unlock(&lock);
        close(e->efd);
        free(e);
}

int fx_evtchn_fd(VgpuXenEvtchn *h)
{
        return ((Evtchn *)h)->efd;
}

int fx_evtchn_bind_unbound(VgpuXenEvtchn *h, uint32_t remote_domid, uint32_t *ret_port)
{
        uint32_t p;

        pthread_mutex_lock(&lock);
        p = port_new((Evtchn *)h, remote_domid);
        pthread_mutex_unlock(&lock);
        if (!p)
                return -ENOSPC;
        *ret_port = p;
        return 0;
}

int fx_evtchn_bind_interdomain(VgpuXenEvtchn *h, uint32_t remote_domid, uint32_t remote_port, uint32_t *ret_port)
{
        Evtchn *e = (Evtchn *)h;
        int r = -EINVAL;

        pthread_mutex_lock(&lock);
        if (remote_port < MAX_PORTS && ports[remote_port].used && ports[remote_port].domid == remote_domid &&
            ports[remote_port].peer == 0 && ports[remote_port].remote_domid == e->domid) {
                uint32_t p = port_new(e, remote_domid);

                if (p) {
                        ports[p].peer = remote_port;
                        ports[remote_port].peer = p;
                        *ret_port = p;
                        r = 0;
                } else
                        r = -ENOSPC;
        }
        pthread_mutex_unlock(&lock);
        return r;
}

int fx_evtchn_unbind(VgpuXenEvtchn *h, uint32_t port)
{
        int r = -EINVAL;

        pthread_mutex_lock(&lock);
        if (port < MAX_PORTS && ports[port].used && ports[port].handle == (Evtchn *)h) {
                port_close(port);
                xen_fake_log_add("evtchn_unbind");
                r = 0;
        }
        pthread_mutex_unlock(&lock);
        return r;
}

int fx_evtchn_notify(VgpuXenEvtchn *h, uint32_t port)
{
        int r = -EINVAL;

        pthread_mutex_lock(&lock);
        if (port < MAX_PORTS && ports[port].used && ports[port].handle == (Evtchn *)h) {
                if (ports[port].peer)
                        deliver(ports[port].peer);
                r = 0;
        }
        pthread_mutex_unlock(&lock);
        return r;
}

int fx_evtchn_pending(VgpuXenEvtchn *h, uint32_t *ret_port)
{
        Evtchn *e = (Evtchn *)h;
        int r = -EAGAIN;

        pthread_mutex_lock(&lock);
        if (e->n_queue > 0) {
                uint32_t p = e->queue[0];

                memmove(e->queue, e->queue + 1, --e->n_queue * sizeof(uint32_t));
                ports[p].pending = false;
                ports[p].masked = true;
                *ret_port = p;
                r = 0;
        }
        if (e->n_queue == 0) {
                eventfd_t v;
                (void)eventfd_read(e->efd, &v);
        }
        pthread_mutex_unlock(&lock);
        return r;
}

int fx_evtchn_unmask(VgpuXenEvtchn *h, uint32_t port)
{
        pthread_mutex_lock(&lock);
        if (port < MAX_PORTS && ports[port].used) {
                ports[port].masked = false;
                if (ports[port].pending)
                        enqueue(ports[port].handle, port);
        }
        pthread_mutex_unlock(&lock);
        return 0;
}

/* ---- Sharing (the guest) ---- */

int fx_gntshr_open(VgpuXenGntshr **ret)
{
        Handle *h = calloc(1, sizeof(*h));

        h->domid = xen_fake_domid;
        *ret = (VgpuXenGntshr *)h;
        return 0;
}

static unsigned live_grants_of(uint32_t domid)
{
        unsigned n = 0;

        for (uint32_t r = 8; r < next_ref; r++)
                n += grants[r].live && grants[r].granter == domid;
        return n;
}

int fx_gntshr_share(VgpuXenGntshr *s, uint32_t domid, uint32_t count, bool writable, uint32_t *refs, void **ret)
{
        Handle *h = (Handle *)s;
        Map *m;
        int fd, r = 0;
        void *addr;

        pthread_mutex_lock(&lock);
        if (live_grants_of(h->domid) + count > grant_limit || next_ref + count >= MAX_GRANTS)
                r = -ENOSPC;
        else if (!(m = map_slot()))
                r = -ENOMEM;
        if (r < 0) {
                pthread_mutex_unlock(&lock);
                return r;
        }
        fd = memfd_create("xen-fake-share", MFD_CLOEXEC);
        (void)!ftruncate(fd, (off_t)count * PAGE);
        addr = mmap(NULL, (size_t)count * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        *m = (Map){
                .kind = MAP_SHARED_OUT, .owner = h, .addr = addr, .count = count, .memfd = fd, .first_ref = next_ref};
        for (uint32_t i = 0; i < count; i++) {
                grants[next_ref] = (Grant){.live = true,
                                           .granter = h->domid,
                                           .grantee = domid,
                                           .writable = writable,
                                           .memfd = fd,
                                           .page = i};
                refs[i] = next_ref++;
        }
        pthread_mutex_unlock(&lock);
        *ret = addr;
        return 0;
}

int fx_gntshr_unshare(VgpuXenGntshr *s, void *addr, uint32_t count)
{
        int r = -EINVAL;

        pthread_mutex_lock(&lock);
        for (unsigned i = 0; i < MAX_MAPS; i++) {
                Map *m = &maps[i];

                if (m->kind != MAP_SHARED_OUT || m->owner != (void *)s || m->addr != addr || m->count != count)
                        continue;
                for (uint32_t k = 0; k < count; k++)
                        grants[m->first_ref + k].live = false;
                munmap(addr, (size_t)count * PAGE);
                close(m->memfd); /* the mappings of it stay valid, as pages a remote still maps do */
                *m = (Map){};
                xen_fake_log_add("gntshr_unshare %u", count);
                r = 0;
                break;
        }
        pthread_mutex_unlock(&lock);
        return r;
}

void fx_gntshr_close(VgpuXenGntshr *s)
{
        pthread_mutex_lock(&lock);
        for (unsigned i = 0; i < MAX_MAPS; i++)
                if (maps[i].kind == MAP_SHARED_OUT && maps[i].owner == (void *)s) {
                        for (uint32_t k = 0; k < maps[i].count; k++)
                                grants[maps[i].first_ref + k].live = false;
                        munmap(maps[i].addr, (size_t)maps[i].count * PAGE);
                        close(maps[i].memfd);
                        maps[i] = (Map){};
                }
        pthread_mutex_unlock(&lock);
        free(s);
}

/* ---- Mapping (the backend, the executor) ---- */

int fx_gnttab_open(VgpuXenGnttab **ret)
{
        Handle *h = calloc(1, sizeof(*h));

        h->domid = xen_fake_domid;
        *ret = (VgpuXenGnttab *)h;
        return 0;
}

static int map_locked(Handle *h, uint32_t domid, const uint32_t *refs, uint32_t count, bool writable, Map **ret)
{
        Map *m = map_slot();
        uint8_t *base;

        if (!m || count == 0)
                return -ENOMEM;
        for (uint32_t i = 0; i < count; i++) {
                const Grant *g = refs[i] < MAX_GRANTS ? &grants[refs[i]] : NULL;

                if (!g || !g->live || g->granter != domid || g->grantee != h->domid)
                        return -EINVAL;
                if (writable && !g->writable)
                        return -EACCES;
        }
        base = mmap(NULL, (size_t)count * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED)
                return -ENOMEM;
        for (uint32_t i = 0; i < count; i++) {
                const Grant *g = &grants[refs[i]];

                (void)mmap(base + (size_t)i * PAGE, PAGE, writable ? PROT_READ | PROT_WRITE : PROT_READ,
                           MAP_SHARED | MAP_FIXED, g->memfd, (off_t)g->page * PAGE);
        }
        *m = (Map){.kind = MAP_MAPPED, .owner = h, .addr = base, .count = count};
        *ret = m;
        return 0;
}

int fx_gnttab_map(VgpuXenGnttab *g, uint32_t domid, const uint32_t *refs, uint32_t count, bool writable, void **ret)
{
        Map *m;
        int r;

        pthread_mutex_lock(&lock);
        r = map_locked((Handle *)g, domid, refs, count, writable, &m);
        if (r >= 0)
                *ret = m->addr;
        pthread_mutex_unlock(&lock);
        return r;
}

int fx_gnttab_map_notify(VgpuXenGnttab *g, uint32_t domid, uint32_t ref, uint32_t notify_offset, uint32_t notify_port,
                         void **ret)
{
        Map *m;
        int r;

        pthread_mutex_lock(&lock);
        r = map_locked((Handle *)g, domid, &ref, 1, true, &m);
        if (r >= 0) {
                m->notify = true;
                m->notify_offset = notify_offset;
                m->notify_port = notify_port;
                *ret = m->addr;
        }
        pthread_mutex_unlock(&lock);
        return r;
}

static void unmap_locked(Map *m)
{
        if (m->notify) {
                if (m->notify_offset < PAGE)
                        ((volatile uint8_t *)m->addr)[m->notify_offset] = 0;
                if (m->notify_port < MAX_PORTS && ports[m->notify_port].used && ports[m->notify_port].peer)
                        deliver(ports[m->notify_port].peer);
                xen_fake_log_add("notify port %u%s", m->notify_port,
                                 m->notify_port < MAX_PORTS && ports[m->notify_port].used ? "" : " (unbound!)");
        }
        munmap(m->addr, (size_t)m->count * PAGE);
        *m = (Map){};
}

int fx_gnttab_unmap(VgpuXenGnttab *g, void *addr, uint32_t count)
{
        int r = -EINVAL;

        pthread_mutex_lock(&lock);
        for (unsigned i = 0; i < MAX_MAPS; i++)
                if (maps[i].kind == MAP_MAPPED && maps[i].owner == (void *)g && maps[i].addr == addr &&
                    maps[i].count == count) {
                        unmap_locked(&maps[i]);
                        xen_fake_log_add("gnttab_unmap %u", count);
                        r = 0;
                        break;
                }
        pthread_mutex_unlock(&lock);
        return r;
}

void fx_gnttab_close(VgpuXenGnttab *g)
{
        pthread_mutex_lock(&lock);
        for (unsigned i = 0; i < MAX_MAPS; i++)
                if (maps[i].kind == MAP_MAPPED && maps[i].owner == (void *)g)
                        unmap_locked(&maps[i]);
        xen_fake_log_add("gnttab_close");
        pthread_mutex_unlock(&lock);
        free(g);
}
