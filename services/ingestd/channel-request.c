/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A guest channel's traffic: each request is copied once out of the ring (vgpu_request_pop), validated by
 * the one validator (vgpu_request_validate), then answered here (HELLO; errors) or stamped — vm_id from the
 * channel, priority from the mirror at this moment, the attachment's generation, a routing tag — and handed
 * to the pool's scheduler. Completions come back through channel_deliver(). */
#include <inttypes.h>
#include <time.h>

#include "channel.h"
#include "ingestd.h"
#include "log.h"
#include "pool-link.h"
#include "proto/proto-validate.h"

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int channel_push(Channel *c, const VgpuCompletionDesc *cd)
{
        int r = vgpu_completion_push(&c->cpl, cd);

        /* Space was reserved before the request was taken; a full ring now means the guest took slots back. */
        if (r == -EAGAIN)
                return -EPROTO;
        if (r < 0)
                return r;
        c->completions++;
        if (cd->status != VGPU_STATUS_OK)
                c->errors++;
        return 0;
}

int channel_complete_error(Channel *c, const VgpuRequestDesc *d, VgpuStatus status)
{
        VgpuCompletionDesc cd = { .seq = d->seq, .status = status, .opcode = d->opcode };

        return channel_push(c, &cd);
}

int channel_flush(Channel *c)
{
        int r, notify = 0;

        r = vgpu_ring_consumer_release(&c->req.ring);
        if (r < 0)
                return r;
        notify |= r;
        r = vgpu_ring_producer_publish(&c->cpl.ring);
        if (r < 0)
                return r;
        notify |= r;
        if (notify)
                (void)vgpu_endpoint_notify(c->endpoint);
        return 0;
}

static int channel_hello(Channel *c, const VgpuRequest *req, const VgpuRequestDesc *d)
{
        VgpuCompletionDesc cd = { .seq = d->seq, .opcode = d->opcode };
        uint16_t version = 0;
        VgpuStatus st;

        st = vgpu_hello_negotiate(req->u.hello.version_min, req->u.hello.version_max, &version);
        cd.status = st;
        cd.u.hello.version = version;
        cd.u.hello.version_min = VGPU_PROTOCOL_VERSION_MIN;
        cd.u.hello.features = 0; /* version 1 defines none */
        if (st == VGPU_STATUS_OK) {
                c->negotiated = true;
                c->version = version;
        }
        log_vm(LOG_DEBUG, c->vm->vm_id, c->vm->pool, NULL, "VM %u: HELLO [%u, %u] → %s, version %u.",
               c->vm->vm_id, req->u.hello.version_min, req->u.hello.version_max, vgpu_status_to_string(st), version);
        return channel_push(c, &cd);
}

/* Stamps the request and asks the pool's scheduler to attach this channel first if it is not yet: the
 * command is then held (counted in flight) until the scheduler answers. */
int channel_forward(Channel *c, const VgpuRequestDesc *d)
{
        Vm *vm = c->vm;
        PoolLink *link;
        VgpuHostRequest hr;
        int r;

        if (c->attach == CHANNEL_DETACHED) {
                link = manager_pool_link(vm->manager, vm->pool);
                if (!link || !pool_link_available(link))
                        return channel_complete_error(c, d, VGPU_STATUS_BUSY);
                c->generation = ++vm->manager->next_generation;
                snprintf(c->attached_pool, sizeof(c->attached_pool), "%s", vm->pool);
                c->attach = CHANNEL_ATTACHING;
                c->held = *d;
                c->has_held = true;
                c->in_flight++;
                r = pool_link_attach(link, c);
                if (r < 0) {
                        c->attach = CHANNEL_DETACHED;
                        c->has_held = false;
                        c->in_flight--;
                        return channel_complete_error(c, d, VGPU_STATUS_BUSY);
                }
                return 0;
        }
        link = manager_pool_link(vm->manager, c->attached_pool);
        hr = (VgpuHostRequest){
                .req = *d,
                .vm_id = vm->vm_id,
                .priority = (uint8_t)vm->priority, /* the mirror now: a priority change applies from here */
                .tag = vm->vm_id,
                .generation = c->generation,
                .ingest_ns = now_ns(),
        };
        r = link ? pool_link_submit(link, &hr) : -ENOTCONN;
        if (r < 0)
                return channel_complete_error(c, d, VGPU_STATUS_BUSY);
        c->in_flight++;
        return 0;
}

/* One request, already a private copy. */
static int channel_take(Channel *c, const VgpuRequestDesc *d)
{
        VgpuRequest req;
        VgpuStatus st;

        c->requests++;
        st = vgpu_request_validate(d, c->endpoint->geometry.data_size, &req);
        if (st == VGPU_STATUS_OK && req.opcode == VGPU_OP_HELLO) {
                c->invalid_streak = 0;
                return channel_hello(c, &req, d);
        }
        if (st == VGPU_STATUS_OK && !c->negotiated)
                st = VGPU_STATUS_NOT_NEGOTIATED;
        if (st != VGPU_STATUS_OK) {
                log_vm(LOG_DEBUG, c->vm->vm_id, c->vm->pool, NULL, "VM %u: request seq %" PRIu64 " opcode %u: %s.",
                       c->vm->vm_id, d->seq, d->opcode, vgpu_status_to_string(st));
                if (++c->invalid_streak > CHANNEL_INVALID_STREAK_MAX)
                        return -EPROTO;
                return channel_complete_error(c, d, st);
        }
        c->invalid_streak = 0;
        return channel_forward(c, d);
}

/* Whether one more request may be taken: an attach is not pending, the VM is under its in-flight limit and
 * its completion ring has a free slot beyond those reserved for commands in flight (backpressure: the ring
 * is simply not read; nothing is queued here). */
static int channel_can_take(Channel *c)
{
        int space;

        if (c->attach == CHANNEL_ATTACHING || c->in_flight >= c->in_flight_limit)
                return 0;
        space = vgpu_ring_producer_space(&c->cpl.ring);
        if (space < 0)
                return space;
        if ((uint32_t)space <= c->in_flight) {
                /* Ask the guest to ring when it frees a completion slot; look once more. */
                space = vgpu_ring_producer_prepare_wait(&c->cpl.ring);
                return space < 0 ? space : 0;
        }
        return 1;
}

int channel_process(Channel *c)
{
        /* One ring's worth per turn, so that one busy VM cannot hold the loop. */
        uint32_t budget = c->req.ring.count;
        VgpuRequestDesc d;
        int r = 0;

        while (budget-- > 0) {
                r = channel_can_take(c);
                if (r <= 0)
                        break;
                r = vgpu_ring_consumer_available(&c->req.ring);
                if (r == 0) {
                        (void)channel_flush(c);
                        r = vgpu_ring_consumer_prepare_wait(&c->req.ring);
                }
                if (r <= 0)
                        break;
                r = vgpu_request_pop(&c->req, &d);
                if (r >= 0)
                        r = channel_take(c, &d);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = channel_flush(c);
        if (r < 0)
                return r;
        if (budget == UINT32_MAX)
                channel_kick(c); /* budget spent with work left: another turn after the other sources */
        return 0;
}

void channel_deliver(Channel *c, const VgpuHostCompletion *hc)
{
        int r;

        if (hc->generation == 0 || (hc->generation != c->generation && hc->generation != c->old_generation) ||
            c->in_flight == 0 || (c->has_held && c->in_flight == 1)) {
                log_debug("VM %u: dropped a completion of generation %" PRIu64 " (current %" PRIu64 ").",
                          c->vm->vm_id, hc->generation, c->generation);
                return;
        }
        c->in_flight--;
        r = channel_push(c, &hc->cpl);
        if (r >= 0)
                r = channel_flush(c);
        if (r == -EPROTO) {
                channel_close(c, VGPU_STATUS_PROTOCOL_VIOLATION, "the guest took completion slots back");
                return;
        }
        channel_kick(c);
}
