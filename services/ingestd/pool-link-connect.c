/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bringing a pool link up: the manager's list of links, connecting to the scheduler's socket, making the host
 * link (sealed memfd, two eventfds), VgpuLinkStart → VgpuLinkReady, then the scheduler's events. */
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <inttypes.h>
#include <time.h>

#include "channel.h"
#include "ingestd.h"
#include "log.h"
#include "pool-link.h"
#include "proto/pool-link.h"

static uint64_t now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

PoolLink *pool_link_free(PoolLink *l)
{
        if (!l)
                return NULL;
        l->manager = NULL;
        l->sock_source = sd_event_source_disable_unref(l->sock_source);
        l->notify_source = sd_event_source_disable_unref(l->notify_source);
        l->ready_timer = sd_event_source_disable_unref(l->ready_timer);
        if (l->region)
                munmap(l->region, l->region_size);
        closep(&l->sock);
        closep(&l->kick_fd);
        closep(&l->notify_fd);
        return mfree(l);
}

PoolLink *manager_pool_link(Manager *m, const char *pool)
{
        PoolLink **a, *l;

        for (size_t i = 0; i < m->n_links; i++)
                if (streq(m->links[i]->pool, pool))
                        return m->links[i];
        a = reallocarray(m->links, m->n_links + 1, sizeof(PoolLink *));
        if (!a)
                return NULL;
        m->links = a;
        l = calloc(1, sizeof(PoolLink));
        if (!l)
                return NULL;
        *l = (PoolLink){ .manager = m, .sock = -1, .kick_fd = -1, .notify_fd = -1 };
        snprintf(l->pool, sizeof(l->pool), "%s", pool);
        m->links[m->n_links++] = l;
        return l;
}

void manager_free_links(Manager *m)
{
        for (size_t i = 0; i < m->n_links; i++)
                pool_link_free(m->links[i]);
        m->links = mfree(m->links);
        m->n_links = 0;
}

/* The scheduler's answers, after VgpuLinkReady: one VgpuPoolEvent per message. */
static void on_event(PoolLink *l, const VgpuPoolEvent *ev)
{
        Vm *vm = vm_table_get(&l->manager->vms, ev->vm_id);
        Channel *c = vm ? vm->channel : NULL;
        char backend[sizeof(ev->backend) + 1] = "";

        memcpy(backend, ev->backend, sizeof(ev->backend));
        log_vm(LOG_DEBUG, ev->vm_id, l->pool, NULL, "Pool %s: event %u for VM %u generation %" PRIu64 " error %d.",
               l->pool, ev->kind, ev->vm_id, ev->generation, ev->error);
        if (!c || !streq(c->attached_pool, l->pool))
                return;
        switch (ev->kind) {
        case VGPU_POOL_EVENT_ATTACHED:
                channel_attached(c, ev->generation, ev->error > 0 ? ev->error : ev->error ? EIO : 0, backend);
                break;
        case VGPU_POOL_EVENT_DETACHED:
                channel_detached(c, ev->generation);
                break;
        default:
                log_warning("Pool %s: unknown event kind %u; ignored.", l->pool, ev->kind);
        }
}

static void on_ready(PoolLink *l)
{
        VgpuLinkReady ready;
        VmTable *t = &l->manager->vms;
        int r;

        r = vgpu_link_ready_receive(l->sock, 0, &ready);
        if (r < 0 || ready.error != 0) {
                pool_link_lost(l, r < 0 ? strerror(-r) : "the scheduler refused the link");
                return;
        }
        l->ready_timer = sd_event_source_disable_unref(l->ready_timer);
        l->state = POOL_LINK_READY;
        log_vm(LOG_INFO, 0, l->pool, NULL, "Pool %s: link to its scheduler is up.", l->pool);
        for (size_t i = 0; i < t->n; i++) {
                Channel *c = t->vms[i]->channel;
                if (c && c->attach == CHANNEL_ATTACHING && streq(c->attached_pool, l->pool) &&
                    pool_link_attach(l, c) < 0)
                        channel_attached(c, c->generation, EIO, "");
        }
}

static int on_sock(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        PoolLink *l = userdata;
        VgpuPoolEvent ev;
        ssize_t n;

        if (l->state == POOL_LINK_CONNECTING) {
                on_ready(l);
                return 0;
        }
        n = recv(fd, &ev, sizeof(ev), MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n == 0 || n < 0)
                pool_link_lost(l, n == 0 ? "the scheduler hung up" : strerror(errno));
        else if (n != (ssize_t)sizeof(ev) || ev.magic != VGPU_POOL_EVENT_MAGIC || ev.size != sizeof(ev) ||
                 ev.version != VGPU_POOL_LINK_VERSION)
                pool_link_lost(l, "the scheduler sent a malformed message");
        else
                on_event(l, &ev);
        return 0;
}

static int on_ready_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
        pool_link_lost(userdata, "no VgpuLinkReady in time");
        return 0;
}

static int link_region_new(PoolLink *l, int *ret_memfd)
{
        _cleanup_close_ int fd = -1;
        VgpuLinkGeometry g;
        int r;

        l->region_size = vgpu_link_region_size(POOL_LINK_SLOTS, POOL_LINK_SLOTS);
        fd = memfd_create("vgpu-pool-link", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0 || ftruncate(fd, (off_t)l->region_size) < 0 ||
            fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
                return negative_errno();
        l->region = mmap(NULL, l->region_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (l->region == MAP_FAILED) {
                l->region = NULL;
                return negative_errno();
        }
        r = vgpu_link_format(l->region, l->region_size, POOL_LINK_SLOTS, POOL_LINK_SLOTS, &g);
        if (r >= 0)
                r = vgpu_link_attach_scheduler(l->region, &g, &l->req, &l->cpl);
        /* Ask for a notification with the first completion: we consume that ring only when woken, so an
         * event index left at 0 would never be reached. */
        if (r >= 0)
                r = vgpu_ring_consumer_prepare_wait(&l->cpl.ring);
        if (r < 0)
                return r;
        *ret_memfd = TAKE_FD(fd);
        return 0;
}

static int link_sock_connect(PoolLink *l, int *ret)
{
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        if (fd < 0)
                return negative_errno();
        if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s.sock", l->manager->sched_dir, l->pool) >=
            sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return negative_errno();
        *ret = TAKE_FD(fd);
        return 0;
}

static int pool_link_connect(PoolLink *l)
{
        _cleanup_close_ int memfd = -1, sched_kick = -1, sched_notify = -1;
        sd_event *e = l->manager->event;
        VgpuLinkStart start = { .magic = VGPU_LINK_START_MAGIC, .version = VGPU_LINK_VERSION,
                                .size = sizeof(start), .vm_id = 0 };
        int r;

        r = link_sock_connect(l, &l->sock);
        if (r < 0)
                return r;
        r = link_region_new(l, &memfd);
        if (r < 0)
                return r;
        start.link_size = l->region_size;
        /* Our ends and the scheduler's are the same eventfds: kick (it waits), notify (we wait). */
        l->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        l->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (l->kick_fd < 0 || l->notify_fd < 0)
                return negative_errno();
        r = vgpu_link_start_send(l->sock, &start, memfd, l->kick_fd, l->notify_fd);
        if (r < 0)
                return r;
        l->state = POOL_LINK_CONNECTING;
        if ((r = sd_event_add_io(e, &l->sock_source, l->sock, EPOLLIN, on_sock, l)) < 0 ||
            (r = sd_event_add_io(e, &l->notify_source, l->notify_fd, EPOLLIN, pool_link_on_completions, l)) < 0 ||
            (r = sd_event_add_time_relative(e, &l->ready_timer, CLOCK_MONOTONIC, POOL_LINK_READY_TIMEOUT_USEC, 0,
                                            on_ready_timeout, l)) < 0)
                return r;
        return 0;
}

bool pool_link_available(PoolLink *l)
{
        int r;

        if (l->state != POOL_LINK_DOWN)
                return true;
        if (now_usec() < l->next_attempt_usec)
                return false;
        r = pool_link_connect(l);
        if (r < 0) {
                pool_link_teardown(l);
                l->next_attempt_usec = now_usec() + POOL_LINK_RETRY_USEC;
                log_vm(LOG_NOTICE, 0, l->pool, NULL,
                       "Pool %s: no scheduler at %s/%s.sock (%s); its VMs' commands complete BUSY, retrying in 1 s.",
                       l->pool, l->manager->sched_dir, l->pool, strerror(-r));
                return false;
        }
        log_vm(LOG_INFO, 0, l->pool, NULL, "Pool %s: connected to its scheduler; waiting for it to map the link.",
               l->pool);
        return true;
}
