/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ingestd's end of the pool links: connecting to $VGPU_RUNTIME_DIR/sched/<POOL>.sock, creating the host link
 * (memfd + two eventfds, VgpuLinkStart / VgpuLinkReady), ATTACH with the VM's region, DETACH, the scheduler's
 * events, and the completions it returns. The scheduler is a trusted host service, but its messages are
 * still checked for size and magic so that a confused one cannot confuse us. */
#include <sys/mman.h>
#include <sys/socket.h>
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

const char *pool_link_state_to_string(PoolLinkState s)
{
        static const char *const names[] = {
                [POOL_LINK_DOWN] = "down", [POOL_LINK_CONNECTING] = "connecting", [POOL_LINK_READY] = "ready"
        };
        return (unsigned)s < ELEMENTSOF(names) ? names[s] : "?";
}

void pool_link_teardown(PoolLink *l)
{
        l->sock_source = sd_event_source_disable_unref(l->sock_source);
        l->notify_source = sd_event_source_disable_unref(l->notify_source);
        l->ready_timer = sd_event_source_disable_unref(l->ready_timer);
        if (l->region)
                munmap(l->region, l->region_size);
        l->region = NULL;
        closep(&l->sock);
        closep(&l->kick_fd);
        closep(&l->notify_fd);
        l->sock = l->kick_fd = l->notify_fd = -1;
        l->state = POOL_LINK_DOWN;
}

/* The scheduler is gone (or broke the link): every channel it served loses its executor and in-flight
 * commands, so each is closed with DEVICE_ERROR and its guest reconnects to a fresh attachment. */
void pool_link_lost(PoolLink *l, const char *why)
{
        VmTable *t = &l->manager->vms;

        log_vm(LOG_WARNING, 0, l->pool, NULL, "Pool %s: link to its scheduler lost: %s.", l->pool, why);
        pool_link_teardown(l);
        l->next_attempt_usec = now_usec() + POOL_LINK_RETRY_USEC;
        for (size_t i = t->n; i > 0; i--) {
                Channel *c = t->vms[i - 1]->channel;
                if (c && c->attach != CHANNEL_DETACHED && streq(c->attached_pool, l->pool)) {
                        c->attach = CHANNEL_DETACHED; /* nobody to send DETACH to */
                        channel_close(c, VGPU_STATUS_DEVICE_ERROR, "its pool's scheduler went away");
                }
        }
}

static int send_attach(PoolLink *l, Channel *c)
{
        VgpuPoolAttach a = {
                .magic = VGPU_POOL_ATTACH_MAGIC, .version = VGPU_POOL_LINK_VERSION, .size = sizeof(a),
                .vm_id = c->vm->vm_id, .generation = c->generation, .memory_quota = c->vm->memory_quota,
        };
        VgpuRegionRef ref = VGPU_REGION_REF_NULL;
        int r;

        r = vgpu_endpoint_region_ref(c->endpoint, &ref);
        if (r < 0)
                return r;
        if (send(l->sock, &a, sizeof(a), MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof(a))
                r = negative_errno();
        else
                r = vgpu_region_ref_send(l->sock, &ref);
        vgpu_region_ref_done(&ref);
        return r;
}

int pool_link_attach(PoolLink *l, Channel *c)
{
        int r;

        if (l->state == POOL_LINK_CONNECTING)
                return 0; /* sent by on_ready() */
        if (l->state != POOL_LINK_READY)
                return -ENOTCONN;
        r = send_attach(l, c);
        if (r < 0)
                log_vm(LOG_WARNING, c->vm->vm_id, l->pool, NULL, "VM %u: cannot send ATTACH to pool %s: %s",
                       c->vm->vm_id, l->pool, strerror(-r));
        return r;
}

void pool_link_detach(PoolLink *l, uint32_t vm_id, uint64_t generation, uint32_t status)
{
        VgpuPoolDetach d = {
                .magic = VGPU_POOL_DETACH_MAGIC, .version = VGPU_POOL_LINK_VERSION, .size = sizeof(d),
                .vm_id = vm_id, .status = status, .generation = generation,
        };

        if (l->state != POOL_LINK_READY)
                return;
        if (send(l->sock, &d, sizeof(d), MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof(d))
                log_vm(LOG_WARNING, vm_id, l->pool, NULL, "VM %u: cannot send DETACH to pool %s: %m", vm_id,
                       l->pool);
}

int pool_link_submit(PoolLink *l, const VgpuHostRequest *hr)
{
        uint64_t one = 1;
        int r;

        if (l->state != POOL_LINK_READY)
                return -ENOTCONN;
        r = vgpu_host_request_push(&l->req, hr);
        if (r < 0)
                return r;
        r = vgpu_ring_producer_publish(&l->req.ring);
        if (r < 0)
                return r;
        l->submitted++;
        if (r > 0 && write(l->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
                return negative_errno();
        return 0;
}

static void route_completion(PoolLink *l, const VgpuHostCompletion *hc)
{
        Vm *vm = hc->tag == hc->vm_id ? vm_table_get(&l->manager->vms, hc->vm_id) : NULL;

        l->completed++;
        if (!vm || !vm->channel) {
                log_debug("Pool %s: dropped a completion for VM %u (tag %" PRIu64 "): no channel.", l->pool,
                          hc->vm_id, hc->tag);
                return;
        }
        channel_deliver(vm->channel, hc);
}

int pool_link_on_completions(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        PoolLink *l = userdata;
        VgpuHostCompletion hc;
        uint64_t counter;
        int r;

        (void)read(fd, &counter, sizeof(counter));
        for (;;) {
                r = vgpu_ring_consumer_available(&l->cpl.ring);
                if (r == 0) {
                        (void)vgpu_ring_consumer_release(&l->cpl.ring);
                        r = vgpu_ring_consumer_prepare_wait(&l->cpl.ring);
                }
                if (r <= 0)
                        break;
                r = vgpu_host_completion_pop(&l->cpl, &hc);
                if (r < 0)
                        break;
                route_completion(l, &hc);
        }
        if (r >= 0)
                r = vgpu_ring_consumer_release(&l->cpl.ring);
        if (r > 0) {
                uint64_t one = 1;
                (void)!write(l->kick_fd, &one, sizeof(one));
        }
        if (r < 0)
                pool_link_lost(l, "its completion ring is inconsistent");
        return 0;
}

