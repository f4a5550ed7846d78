/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The request path: staging in the data area, writing and publishing requests, matching completions by
 * seq, and waiting for the host by bounded spin-then-block. Nothing the host writes is trusted: a
 * completion that matches no request in flight, a broken ring index or a hang-up ends the client with an
 * error for every pending call, never a crash or a hang. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "client-internal.h"
#include "proto/channel.h"
#include "vgpu-util.h"

#define STAGE_ALIGN    64u
#define POLL_SLICE_MS  1000 /* re-read the backend state at least this often, notified or not */

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield");
#endif
}

uint64_t client_stage_max(const VgpuClient *c)
{
        return c->data_size & ~(uint64_t)(STAGE_ALIGN - 1);
}

void client_kill(VgpuClient *c, int err)
{
        if (c->dead)
                return;
        c->dead = err;
        snprintf(c->dead_message, sizeof(c->dead_message), "%s",
                 *vgpu_last_error() ? vgpu_last_error() : vgpu_strerror(err));
        for (uint32_t i = 0; i < c->pending_size; i++) {
                PendingOp *op = &c->pending[i];

                if (!op->live)
                        continue;
                if (op->ret_error && *op->ret_error == 0)
                        *op->ret_error = err;
                op->live = false;
        }
        c->oldest_seq = c->next_seq;
        c->stage_tail = c->stage_head;
}

static int kill_with(VgpuClient *c, int err, const char *what)
{
        client_set_error("%s: %s", what, vgpu_strerror(err));
        client_kill(c, err);
        return err;
}

int client_publish(VgpuClient *c)
{
        int r;

        if (c->dead)
                return c->dead;
        if (c->unpublished == 0)
                return 0;
        r = vgpu_ring_producer_publish(&c->req.ring);
        if (r < 0)
                return kill_with(c, -EPROTO, "the host broke the request ring");
        c->unpublished = 0;
        c->counters.publishes++;
        if (r > 0) {
                c->counters.notifications++;
                r = vgpu_endpoint_notify(c->endpoint);
                if (r < 0)
                        return kill_with(c, -ECONNRESET, "cannot notify the host");
        }
        return 0;
}

/* The host's reason for refusing a request, left NUL-terminated in the request's staging: kept (bounded,
 * control characters other than newlines and tabs shown as '?') so that vgpu_last_error() can say it. */
static void keep_host_reason(VgpuClient *c, const PendingOp *op)
{
        const uint8_t *text = c->data + op->copy_out_offset;
        size_t n = 0, limit = op->copy_out_size < sizeof(c->host_reason) - 1 ? op->copy_out_size
                                                                              : sizeof(c->host_reason) - 1;

        for (; n < limit && text[n] != '\0'; n++)
                c->host_reason[n] = (text[n] >= 0x20 && text[n] != 0x7f) || text[n] == '\n' || text[n] == '\t'
                                            ? (char)text[n]
                                            : '?';
        c->host_reason[n] = '\0';
        c->host_reason_seq = n > 0 ? op->seq : 0;
}

/* One completion, copied out of the ring: it must answer a request in flight, with that request's opcode.
 * Anything else is a host that cannot be believed any more. */
static int retire(VgpuClient *c, const VgpuCompletionDesc *cd)
{
        PendingOp *op;
        int err;

        if (cd->seq < c->oldest_seq || cd->seq >= c->next_seq)
                return -EPROTO;
        op = &c->pending[cd->seq % c->pending_size];
        if (!op->live || op->seq != cd->seq || op->opcode != cd->opcode)
                return -EPROTO;

        err = cd->status == VGPU_STATUS_OK ? 0 : error_from_status(cd->status);
        if (op->opcode == VGPU_OP_HELLO) {
                if (op->ret_handle)
                        *op->ret_handle = cd->u.raw[0];
        } else if (err == 0 && op->ret_handle) {
                /* 0 is never issued: an "OK" without a handle is a lie about this request only. */
                err = cd->u.handle == VGPU_HANDLE_NULL ? -EPROTO : 0;
                *op->ret_handle = cd->u.handle;
        }
        if (err == 0 && op->copy_out)
                memcpy(op->copy_out, c->data + op->copy_out_offset, op->copy_out_size);
        if (err != 0 && op->reason_back)
                keep_host_reason(c, op);
        if (op->ret_error) {
                if (*op->ret_error == 0)
                        *op->ret_error = err;
        } else if (err != 0 && c->failure.error == 0) {
                c->failure = (VgpuFailure){.error = err, .opcode = op->opcode, .op = client_op_name(op->opcode),
                                           .seq = op->seq};
        }
        op->live = false;

        /* Staging is released in request order; an answer out of order waits for the older ones. */
        while (c->oldest_seq < c->next_seq && !c->pending[c->oldest_seq % c->pending_size].live) {
                c->stage_tail = c->pending[c->oldest_seq % c->pending_size].stage_end;
                c->oldest_seq++;
        }
        return 0;
}

/* Consumes every completion there is. Returns how many, or the client's (new) error. */
static int drain(VgpuClient *c)
{
        VgpuCompletionDesc cd;
        int r, n = 0;

        if (c->dead)
                return c->dead;
        for (;;) {
                r = vgpu_completion_pop(&c->cpl, &cd);
                if (r == -EAGAIN)
                        break;
                if (r < 0)
                        return kill_with(c, -EPROTO, "the host broke the completion ring");
                if (retire(c, &cd) < 0) {
                        client_set_error("the host answered seq %llu (%s) which matches no request in flight",
                                         (unsigned long long)cd.seq, client_op_name(cd.opcode));
                        client_kill(c, -EPROTO);
                        return -EPROTO;
                }
                n++;
        }
        if (n > 0) {
                r = vgpu_ring_consumer_release(&c->cpl.ring);
                if (r < 0)
                        return kill_with(c, -EPROTO, "the host broke the completion ring");
                if (r > 0 && vgpu_endpoint_notify(c->endpoint) < 0)
                        return kill_with(c, -ECONNRESET, "cannot notify the host");
        }
        return n;
}

/* The host closed the channel on purpose: what it answered before still counts, the rest fails with
 * its reason. */
static int check_closed(VgpuClient *c)
{
        const VgpuChannelHeader *h = c->endpoint->region;
        uint32_t reason;
        int err;

        uint8_t state = vgpu_channel_backend_state(c->endpoint->region);

        /* ABSENT after the host was alive: Xen's unmap-notify zeroed the byte because the host unmapped the
         * channel (after writing its reason) or died (no reason). */
        if (state == VGPU_PEER_ALIVE)
                return 0;
        (void)drain(c);
        reason = __atomic_load_n(&h->close_reason, __ATOMIC_RELAXED);
        if (state != VGPU_PEER_CLOSED && reason == VGPU_STATUS_OK)
                return kill_with(c, -ECONNRESET, "the host let go of the channel");
        err = reason != VGPU_STATUS_OK && reason < _VGPU_STATUS_MAX ? error_from_status(reason)
                                                                    : VGPU_E_CHANNEL_CLOSED;
        return kill_with(c, err, "the host closed the channel");
}

/* The connection is only a hang-up signal: readable means the host is gone (or talks out of turn). */
static int check_hangup(VgpuClient *c, short revents)
{
        char b;

        if (!(revents & (POLLHUP | POLLERR)) && recv(c->endpoint->hangup_fd, &b, 1, MSG_DONTWAIT | MSG_PEEK) > 0)
                return kill_with(c, -EPROTO, "the host sent data on the channel's connection");
        (void)drain(c);
        return kill_with(c, -ECONNRESET, "lost the channel");
}

static bool wait_done(VgpuClient *c, uint64_t seq, bool space)
{
        if (space)
                return vgpu_ring_producer_space(&c->req.ring) != 0; /* < 0: the next write reports it */
        return c->oldest_seq > seq;
}

/* Spins for the budget on the cheap hint; true when there is something to look at. */
static bool spin(VgpuClient *c)
{
        uint64_t start;

        if (c->spin_ns == 0)
                return false;
        start = now_ns();
        for (unsigned i = 0;; i++) {
                if (vgpu_ring_consumer_has_work(&c->cpl.ring))
                        return true;
                cpu_relax();
                if (i % 64 == 63 && now_ns() - start >= c->spin_ns)
                        return false;
        }
}

/* Arms both rings' event indices; > 0 when something arrived meanwhile (do not sleep). */
static int arm(VgpuClient *c, bool space)
{
        int r;

        r = vgpu_ring_consumer_prepare_wait(&c->cpl.ring);
        if (r == 0 && space)
                r = vgpu_ring_producer_prepare_wait(&c->req.ring);
        if (r < 0)
                return kill_with(c, -EPROTO, "the host broke a ring index");
        return r;
}

static int sleep_once(VgpuClient *c, uint64_t deadline)
{
        struct pollfd p[2] = {
                {.fd = vgpu_endpoint_wait_fd(c->endpoint), .events = POLLIN},
                {.fd = c->endpoint->hangup_fd, .events = POLLIN},
        };
        int timeout = POLL_SLICE_MS, r;

        if (deadline) {
                uint64_t now = now_ns();

                if (now >= deadline)
                        return kill_with(c, -ETIMEDOUT, "the host did not answer in time");
                if ((deadline - now) / 1000000 < (uint64_t)timeout)
                        timeout = (int)((deadline - now) / 1000000) + 1;
        }
        c->counters.waits++;
        r = poll(p, 2, timeout);
        if (r < 0)
                return errno == EINTR ? 0 : kill_with(c, negative_errno(), "cannot wait for the host");
        if (p[0].revents && vgpu_endpoint_ack(c->endpoint) < 0)
                return kill_with(c, -EIO, "cannot acknowledge the host's notification");
        if (p[1].revents)
                return check_hangup(c, p[1].revents);
        return 0;
}

/* Until seq has retired (space: until the request ring has a free slot). */
static int wait_until(VgpuClient *c, uint64_t seq, bool space)
{
        uint64_t deadline = c->timeout_ms ? now_ns() + (uint64_t)c->timeout_ms * 1000000 : 0;
        int r;

        r = client_publish(c);
        if (r < 0)
                return r;
        for (;;) {
                r = drain(c);
                if (r < 0)
                        return r;
                if (wait_done(c, seq, space))
                        return 0;
                r = check_closed(c);
                if (r < 0)
                        return r;
                if (spin(c))
                        continue;
                r = arm(c, space);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                r = sleep_once(c, deadline);
                if (r < 0)
                        return r;
        }
}

int client_wait_seq(VgpuClient *c, uint64_t seq)
{
        if (c->dead)
                return c->dead;
        if (seq == 0)
                return client_publish(c);
        return wait_until(c, seq, false);
}

/* A slot in the pending table and in the request ring. */
static int reserve_slot(VgpuClient *c)
{
        int r;

        r = drain(c);
        if (r < 0)
                return r;
        while (c->next_seq - c->oldest_seq >= c->pending_size) {
                r = wait_until(c, c->oldest_seq, false);
                if (r < 0)
                        return r;
        }
        r = vgpu_ring_producer_space(&c->req.ring);
        if (r < 0)
                return kill_with(c, -EPROTO, "the host broke the request ring");
        return r > 0 ? 0 : wait_until(c, 0, true);
}

/* Staging: a circular range of the data area, released in request order as ops retire. */
static int stage_alloc(VgpuClient *c, uint64_t size, uint64_t *ret_offset)
{
        uint64_t len = (size + STAGE_ALIGN - 1) & ~(uint64_t)(STAGE_ALIGN - 1);
        uint64_t area = client_stage_max(c);
        int r;

        if (len > area)
                return -EMSGSIZE;
        for (;;) {
                uint64_t start = c->stage_head, pos;

                if (c->oldest_seq == c->next_seq) /* nothing in flight: start over at the beginning */
                        start = c->stage_head = c->stage_tail = (c->stage_head + area - 1) / area * area;
                pos = start % area;
                if (pos + len > area)
                        start += area - pos; /* no payload wraps: skip the end of the area */
                if (start + len - c->stage_tail <= area) {
                        *ret_offset = start % area;
                        c->stage_head = start + len;
                        return 0;
                }
                r = wait_until(c, c->oldest_seq, false);
                if (r < 0)
                        return r;
        }
}

static void set_stage_offset(VgpuRequestDesc *d, uint64_t offset)
{
        switch (d->opcode) {
        case VGPU_OP_COPY_H2D:
        case VGPU_OP_COPY_D2H:
                d->u.copy_host.data_offset = offset;
                break;
        case VGPU_OP_MODULE_LOAD:
                d->u.module_load.data_offset = offset;
                break;
        case VGPU_OP_GET_FUNCTION:
                d->u.get_function.name_offset = offset;
                break;
        case VGPU_OP_LAUNCH:
                d->u.launch.params_offset = offset;
                break;
        case VGPU_OP_STATS:
                d->u.stats.data_offset = offset;
                break;
        default:
                break;
        }
}

int64_t client_submit(VgpuClient *c, VgpuRequestDesc *d, const SubmitSpec *spec)
{
        uint64_t offset = 0;
        PendingOp *op;
        int r;

        if (c->dead)
                return c->dead;
        r = reserve_slot(c);
        if (r < 0)
                return r;
        if (spec->stage_size > 0) {
                r = stage_alloc(c, spec->stage_size, &offset);
                if (r < 0)
                        return r;
                if (spec->payload)
                        memcpy(c->data + offset, spec->payload, spec->payload_size);
                if (spec->zero_tail)
                        memset(c->data + offset + spec->payload_size, 0, spec->stage_size - spec->payload_size);
                set_stage_offset(d, offset);
        }
        d->seq = c->next_seq;
        r = vgpu_request_push(&c->req, d);
        if (r < 0)
                return kill_with(c, -EPROTO, "the host broke the request ring");

        op = &c->pending[d->seq % c->pending_size];
        *op = (PendingOp){
                .seq = d->seq,
                .opcode = d->opcode,
                .live = true,
                .stage_end = c->stage_head,
                .ret_error = spec->ret_error,
                .ret_handle = spec->ret_handle,
                .copy_out = spec->copy_out,
                .copy_out_offset = offset,
                .copy_out_size = spec->copy_out || spec->reason_back ? spec->stage_size : 0,
                .reason_back = spec->reason_back,
        };
        c->next_seq++;
        c->unpublished++;
        c->counters.requests++;
        return (int64_t)d->seq;
}
