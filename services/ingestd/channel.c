/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A guest channel's life: the handshake on the VM's socket, the event sources that wake it, closing it (and
 * telling the guest why), and what the pool link reports about its attachment. */
#include <sys/socket.h>
#include <inttypes.h>
#include <time.h>

#include "channel.h"
#include "ingestd.h"
#include "transport/local.h"
#include "log.h"
#include "pool-link.h"
#include "proto/proto-validate.h"

const char *channel_attach_to_string(ChannelAttach a)
{
        static const char *const names[] = {
                [CHANNEL_DETACHED] = "detached", [CHANNEL_ATTACHING] = "attaching", [CHANNEL_ATTACHED] = "attached"
        };
        return (unsigned)a < ELEMENTSOF(names) ? names[a] : "?";
}

static uint64_t now_usec(clockid_t clock)
{
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void channel_free(Channel *c)
{
        c->wait_source = sd_event_source_disable_unref(c->wait_source);
        c->hangup_source = sd_event_source_disable_unref(c->hangup_source);
        c->defer_source = sd_event_source_disable_unref(c->defer_source);
        vgpu_endpoint_free(c->endpoint);
        free(c);
}

void channel_close(Channel *c, VgpuStatus reason, const char *why)
{
        Vm *vm = c->vm;
        PoolLink *link;

        log_vm(reason == VGPU_STATUS_PROTOCOL_VIOLATION ? LOG_WARNING : LOG_INFO, vm->vm_id, vm->pool,
               priority_to_string(vm->priority),
               "VM %u: closed the channel (%s): %s; %" PRIu64 " requests, %" PRIu64 " errors, %u in flight.",
               vm->vm_id, vgpu_status_to_string(reason), why, c->requests, c->errors, c->in_flight);
        if (c->attach != CHANNEL_DETACHED) {
                link = manager_pool_link(vm->manager, c->attached_pool);
                if (link)
                        pool_link_detach(link, vm->vm_id, c->generation, VGPU_STATUS_CHANNEL_CLOSED);
        }
        /* The guest learns why from its own header; the notification wakes it if it sleeps. */
        vgpu_channel_set_backend_state(c->endpoint->region, VGPU_PEER_CLOSED, reason);
        (void)vgpu_endpoint_notify(c->endpoint);
        vm->channel = NULL;
        manager_remove_channel(vm->manager, c);
        channel_free(c);
}

void channel_kick(Channel *c)
{
        if (c->defer_source)
                (void)sd_event_source_set_enabled(c->defer_source, SD_EVENT_ONESHOT);
}

void channel_run(Channel *c)
{
        int r = channel_process(c);

        if (r == -EPROTO)
                channel_close(c, VGPU_STATUS_PROTOCOL_VIOLATION, "the guest broke the ring discipline or flooded");
        else if (r < 0)
                channel_close(c, VGPU_STATUS_DEVICE_ERROR, strerror(-r));
}

static int on_defer(sd_event_source *s, void *userdata)
{
        channel_run(userdata);
        return 0;
}

static int on_doorbell(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Channel *c = userdata;

        (void)vgpu_endpoint_ack(c->endpoint);
        channel_run(c);
        return 0;
}

/* After the handshake the connection carries nothing: any byte is a protocol violation, EOF a departure. */
static int on_hangup(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Channel *c = userdata;
        char byte;
        ssize_t n = recv(fd, &byte, 1, MSG_DONTWAIT | MSG_PEEK);

        if (n > 0)
                channel_close(c, VGPU_STATUS_PROTOCOL_VIOLATION, "the guest sent data on its socket after the handshake");
        else if (n == 0 || (revents & (EPOLLHUP | EPOLLERR)) || (errno != EAGAIN && errno != EINTR))
                channel_close(c, VGPU_STATUS_CHANNEL_CLOSED, "the guest went away");
        return 0;
}

static int channel_watch(Channel *c)
{
        sd_event *e = c->vm->manager->event;
        int r;

        r = sd_event_add_io(e, &c->wait_source, c->endpoint->wait_fd, EPOLLIN, on_doorbell, c);
        if (r < 0)
                return r;
        /* Xen has no hang-up fd: departures come through xenstore (xen.c). */
        if (c->endpoint->hangup_fd >= 0) {
                r = sd_event_add_io(e, &c->hangup_source, c->endpoint->hangup_fd, EPOLLIN | EPOLLRDHUP, on_hangup, c);
                if (r < 0)
                        return r;
        }
        r = sd_event_add_defer(e, &c->defer_source, on_defer, c);
        if (r < 0)
                return r;
        /* Requests the guest queued before we watched its doorbell are read on the first iteration. */
        return sd_event_source_set_enabled(c->defer_source, SD_EVENT_ONESHOT);
}

static int channel_new(Vm *vm, VgpuEndpoint *e, Channel **ret)
{
        const VgpuChannelGeometry *g = &e->geometry;
        Channel *c = calloc(1, sizeof(Channel));
        int r;

        if (!c)
                return -ENOMEM;
        c->vm = vm;
        c->endpoint = e;
        c->connected_usec = now_usec(CLOCK_REALTIME);
        c->in_flight_limit = g->cpl_count < CHANNEL_IN_FLIGHT_MAX ? g->cpl_count : CHANNEL_IN_FLIGHT_MAX;
        r = vgpu_channel_attach_host(e->region, g, &c->req, &c->cpl);
        if (r >= 0)
                r = channel_watch(c);
        if (r < 0) {
                c->endpoint = NULL; /* the caller still owns it */
                channel_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

/* Serves a handshaken endpoint (either transport) as vm's channel. 0 takes e; < 0 leaves it to the caller. */
int channel_serve(Vm *vm, VgpuEndpoint *e, const char *who)
{
        Channel *c;
        int r;

        r = channel_new(vm, e, &c);
        if (r < 0) {
                log_vm(LOG_WARNING, vm->vm_id, vm->pool, NULL, "VM %u: cannot serve %s: %s", vm->vm_id, who,
                       strerror(-r));
                return r;
        }
        r = manager_add_channel(vm->manager, c);
        if (r < 0) {
                c->endpoint = NULL; /* still the caller's */
                channel_free(c);
                return log_oom();
        }
        vm->channel = c;
        log_vm(LOG_INFO, vm->vm_id, vm->pool, priority_to_string(vm->priority),
               "VM %u: guest connected over %s (%s): region %zu bytes, %u request / %u completion slots, "
               "data area %" PRIu64 " bytes.",
               vm->vm_id, vgpu_transport_kind_to_string(e->kind), who, e->region_size, e->geometry.req_count,
               e->geometry.cpl_count, e->geometry.data_size);
        return 0;
}

int channel_accept(Vm *vm, int conn)
{
        _cleanup_endpoint_ VgpuEndpoint *e = NULL;
        VgpuPeer peer = {};
        char who[96];
        int r;

        r = vgpu_local_host_accept(conn, 0, &e, &peer);
        if (r > 0) {
                log_vm(LOG_NOTICE, vm->vm_id, vm->pool, NULL, "VM %u: refused a guest (pid %d uid %u gid %u): %s.",
                       vm->vm_id, (int)peer.pid, (unsigned)peer.uid, (unsigned)peer.gid,
                       vgpu_local_refusal_to_string(r));
                return 0;
        }
        if (r < 0) {
                log_vm(LOG_NOTICE, vm->vm_id, vm->pool, NULL, "VM %u: handshake with pid %d uid %u failed: %s",
                       vm->vm_id, (int)peer.pid, (unsigned)peer.uid, strerror(-r));
                return 0;
        }
        snprintf(who, sizeof(who), "pid %d uid %u gid %u", (int)peer.pid, (unsigned)peer.uid, (unsigned)peer.gid);
        r = channel_serve(vm, e, who);
        if (r == -ENOMEM)
                return r; /* e is freed: the guest sees the hang-up */
        if (r < 0) {
                /* The ring indices were already inconsistent, or we are out of resources: tell the guest. */
                vgpu_channel_set_backend_state(e->region, VGPU_PEER_CLOSED,
                                               r == -EPROTO ? VGPU_STATUS_PROTOCOL_VIOLATION : VGPU_STATUS_BUSY);
                return 0;
        }
        TAKE_PTR(e);
        return 0;
}

void channel_pool_changed(Channel *c, const char *old_pool)
{
        Vm *vm = c->vm;
        PoolLink *link;

        log_vm(LOG_INFO, vm->vm_id, vm->pool, NULL, "VM %u moved from pool %s to %s: %s.", vm->vm_id, old_pool,
               vm->pool, c->attach == CHANNEL_DETACHED ? "its next command attaches there" :
                                                          "detaching it (VM_MOVED); its next command attaches anew");
        if (c->has_held) {
                c->has_held = false;
                c->in_flight--;
                (void)channel_complete_error(c, &c->held, VGPU_STATUS_VM_MOVED);
                (void)channel_flush(c);
        }
        if (c->attach != CHANNEL_DETACHED) {
                link = manager_pool_link(vm->manager, c->attached_pool);
                if (link)
                        pool_link_detach(link, vm->vm_id, c->generation, VGPU_STATUS_VM_MOVED);
                c->old_generation = c->generation;
                c->attach = CHANNEL_DETACHED;
        }
        channel_kick(c);
}

void channel_attached(Channel *c, uint64_t generation, int error, const char *backend)
{
        Vm *vm = c->vm;

        if (c->attach != CHANNEL_ATTACHING || generation != c->generation)
                return;
        if (error == 0) {
                c->attach = CHANNEL_ATTACHED;
                log_vm(LOG_INFO, vm->vm_id, vm->pool, NULL, "VM %u: attached to pool %s (generation %" PRIu64
                       ", backend %s).", vm->vm_id, c->attached_pool, generation, backend);
        } else {
                c->attach = CHANNEL_DETACHED;
                log_vm(LOG_WARNING, vm->vm_id, vm->pool, NULL, "VM %u: pool %s could not start its executor: %s",
                       vm->vm_id, c->attached_pool, strerror(error));
        }
        if (c->has_held) {
                c->has_held = false;
                c->in_flight--;
                if (error == 0)
                        (void)channel_forward(c, &c->held);
                else
                        (void)channel_complete_error(c, &c->held, VGPU_STATUS_DEVICE_ERROR);
                (void)channel_flush(c);
        }
        channel_kick(c);
}

void channel_detached(Channel *c, uint64_t generation)
{
        if (generation == c->old_generation)
                c->old_generation = 0;
}
