/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The client's private state, shared by the library's files: connect (client.c), the request path and
 * waiting (submit.c), the public operations (ops.c) and errors (errors.c). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "proto/protocol.h"
#include "proto/ring.h"
#include "transport/transport.h"
#include "vgpu.h"

/* One request sent and not yet answered, kept in a table indexed by seq modulo its size: the host
 * answers in order, so the oldest entry retires first, and its data-area staging with it. */
typedef struct PendingOp {
        uint64_t seq;
        uint16_t opcode;
        bool live;       /* sent and not answered */
        uint64_t stage_end; /* the staging head after this op's allocation: the tail once it retires */
        /* Where the answer goes; NULL for a queued op (its error is kept for vgpu_sync()). */
        int *ret_error;
        uint64_t *ret_handle;
        /* D2H and STATS: copied out of the data area on success, before the staging is released. */
        void *copy_out;
        uint64_t copy_out_offset; /* in the data area */
        uint64_t copy_out_size;
        /* MODULE_LOAD: on a refusal the host writes its reason (the JIT log) over the staged image. */
        bool reason_back;
} PendingOp;

struct VgpuClient {
        VgpuEndpoint *endpoint;
        VgpuRequestProducer req;
        VgpuCompletionConsumer cpl;
        uint8_t *data; /* the data area, shared with the host */
        uint64_t data_size;

        PendingOp *pending;
        uint32_t pending_size;  /* table slots: the most requests in flight */
        uint64_t next_seq;      /* the next request's seq */
        uint64_t oldest_seq;    /* every seq below it has retired */
        uint32_t unpublished;   /* written into the ring, not yet visible to the host */

        /* The staging allocator: a circular byte range of the data area, free-running positions. */
        uint64_t stage_head;
        uint64_t stage_tail;

        int dead;              /* 0, or the error every call returns from now on */
        char dead_message[256]; /* why, as vgpu_last_error() said it then: repeated by every later call */
        VgpuFailure failure;   /* first failed queued op since the last sync */
        VgpuFailure reported;  /* what the last vgpu_sync() reported */
        uint64_t host_reason_seq;   /* the request host_reason explains; 0: none */
        char host_reason[2048];     /* the host's own words on a refused module, made printable */

        uint64_t spin_ns;
        uint32_t timeout_ms;

        VgpuClientInfo info;
        char socket_path[108];
        VgpuStatsSnapshot counters;
};

/* ---- submit.c ---- */

/* What a caller wants from one request. */
typedef struct SubmitSpec {
        const void *payload;   /* copied into staging; NULL: only reserve */
        uint64_t payload_size;
        uint64_t stage_size;   /* bytes of staging (payload or room for the answer); 0: none */
        bool zero_tail;        /* zero staging bytes past the payload (a PTX image's NUL) */
        int *ret_error;        /* NULL: a queued op, its error goes to vgpu_sync() */
        uint64_t *ret_handle;  /* the completion's handle (HELLO: its first result word) */
        void *copy_out;        /* D2H/STATS: stage_size bytes copied here on success */
        bool reason_back;      /* on a refusal, keep the NUL-terminated text the host left in staging */
} SubmitSpec;

/* Writes d into the ring (its seq and, with staging, its data-area offset filled in), waiting for a free
 * slot or staging space when needed; not yet published. Returns the seq (>= 1) or a negative error. */
int64_t client_submit(VgpuClient *c, VgpuRequestDesc *d, const SubmitSpec *spec);
/* Publishes what is queued, notifying the host if it asked. */
int client_publish(VgpuClient *c);
/* Publishes, then waits until every seq ≤ seq has retired (seq 0: nothing but a publish). */
int client_wait_seq(VgpuClient *c, uint64_t seq);
/* Fails every pending op with err and makes it the client's sticky error. */
void client_kill(VgpuClient *c, int err);
/* Staging capacity usable by one request. */
uint64_t client_stage_max(const VgpuClient *c);

/* ---- errors.c ---- */

void client_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void client_clear_error(void);
int error_from_status(uint32_t status);
const char *client_op_name(uint16_t opcode);
