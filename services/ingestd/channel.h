/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One guest channel: the host end of a VM's rings while its guest is connected. Every request is copied
 * once (ring.h), validated (proto-validate.h), answered here (HELLO, errors) or stamped and handed to the
 * pool's scheduler; completions come back by tag and generation. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "proto/link.h"
#include "proto/protocol.h"
#include "proto/ring.h"
#include "transport/transport.h"
#include "vm-table.h"

/* Commands of one VM in the scheduler at once; also bounded by its completion ring (docs/ingestd.md). */
#define CHANNEL_IN_FLIGHT_MAX 256u
/* Consecutive requests answered with an error by ingestd itself (invalid, or before HELLO) after which the
 * guest is treated as flooding: its channel is closed with PROTOCOL_VIOLATION. */
#define CHANNEL_INVALID_STREAK_MAX 1024u

typedef enum ChannelAttach {
        CHANNEL_DETACHED,  /* no executor for this channel yet (or any more): the next command attaches */
        CHANNEL_ATTACHING, /* ATTACH sent or queued; the ring is not read until the scheduler answers */
        CHANNEL_ATTACHED,
} ChannelAttach;

struct Channel {
        Vm *vm;
        VgpuEndpoint *endpoint;
        VgpuRequestConsumer req;
        VgpuCompletionProducer cpl;
        sd_event_source *wait_source, *hangup_source, *defer_source;
        uint64_t connected_usec; /* CLOCK_REALTIME */
        bool negotiated;
        uint16_t version;
        ChannelAttach attach;
        char attached_pool[POOL_ID_MAX + 1]; /* the pool whose scheduler holds `generation` */
        uint64_t generation;                 /* current attachment; 0 before the first */
        uint64_t old_generation;             /* being detached after a pool move; its completions still count */
        bool has_held;                       /* the command that started an attach, waiting for it */
        VgpuRequestDesc held;
        uint32_t in_flight, in_flight_limit;
        uint32_t invalid_streak;
        uint64_t requests, completions, errors;
};

/* Takes conn (an accepted connection whose hello is readable): runs the host side of the local handshake,
 * maps the region and starts serving. Every outcome is logged with VM_ID and SO_PEERCRED. */
int channel_accept(Vm *vm, int conn);
/* Serves an endpoint whose handshake is done (local or Xen) as vm's channel; who names the peer for the
 * log. 0 takes e; < 0 leaves it to the caller. */
int channel_serve(Vm *vm, VgpuEndpoint *e, const char *who);

/* Marks the channel closed for the guest (backend_state CLOSED, close_reason), detaches it from its
 * scheduler, frees it. vm->channel becomes NULL. */
void channel_close(Channel *c, VgpuStatus reason, const char *why);

/* The VM moved to another pool: DETACH(VM_MOVED) from the old pool's scheduler; the next command attaches
 * to the new one with a new generation. */
void channel_pool_changed(Channel *c, const char *old_pool);

/* From the pool link. */
void channel_attached(Channel *c, uint64_t generation, int error, const char *backend);
void channel_detached(Channel *c, uint64_t generation);
void channel_deliver(Channel *c, const VgpuHostCompletion *hc);
/* Reads the ring again (after space or an attach appeared). */
void channel_kick(Channel *c);

/* channel-request.c: one pass over the request ring; < 0 (-EPROTO) means close for PROTOCOL_VIOLATION. */
int channel_process(Channel *c);
/* channel_process() with its failures turned into closing the channel (which frees it). */
void channel_run(Channel *c);
/* Answers a request with an error completion made by ingestd itself. */
int channel_complete_error(Channel *c, const VgpuRequestDesc *d, VgpuStatus status);
/* Hands the stamped request to the pool's scheduler (or answers BUSY). */
int channel_forward(Channel *c, const VgpuRequestDesc *d);
/* Publishes what was written on both rings and notifies the guest when it asked. */
int channel_flush(Channel *c);

const char *channel_attach_to_string(ChannelAttach a);
