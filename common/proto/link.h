/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The host link: one shared region between two host processes (a pool's scheduler and one VM's executor)
 * carrying VgpuHostRequest one way and VgpuHostCompletion the other. Same ring discipline as a guest
 * channel (ring.h), no data area: bulk data stays in the VM's own region, which the executor maps itself.
 * Also the start-up message that hands the executor its link, its eventfds and the VM's region. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host-link.h"
#include "protocol.h"
#include "ring.h"

#define VGPU_LINK_MAGIC   UINT32_C(0x4c504756) /* "VGPL" as bytes in memory */
#define VGPU_LINK_VERSION 1

/* At offset 0 of the link region. The creator (the scheduler) writes the geometry line; the executor
 * copies it once, checks it against the size it really mapped, and never reads it again. */
typedef struct VgpuLinkHeader {
        uint32_t magic;       /* VGPU_LINK_MAGIC */
        uint16_t version;     /* VGPU_LINK_VERSION */
        uint16_t header_size; /* sizeof(VgpuLinkHeader) */
        uint32_t req_count;   /* request slots: a power of two in [VGPU_RING_COUNT_MIN, VGPU_RING_COUNT_MAX] */
        uint32_t cpl_count;   /* completion slots: likewise */
        uint32_t req_slot_size; /* VGPU_HOST_REQUEST_SIZE */
        uint32_t cpl_slot_size; /* VGPU_HOST_COMPLETION_SIZE */
        uint64_t region_size;   /* must equal the size the executor mapped */
        uint32_t req_offset;    /* the request ring: req_count slots */
        uint32_t cpl_offset;    /* the completion ring: cpl_count slots */
        uint32_t flags;         /* none defined: 0 */
        uint8_t reserved0[20];
        VgpuRingControl req; /* producer: scheduler; consumer: executor */
        VgpuRingControl cpl; /* producer: executor; consumer: scheduler */
} VgpuLinkHeader;

_Static_assert(sizeof(VgpuLinkHeader) == 320, "link header size");
_Static_assert(offsetof(VgpuLinkHeader, req) == 64, "request ring control on its own cache lines");
_Static_assert(offsetof(VgpuLinkHeader, cpl) == 192, "completion ring control on its own cache lines");

/* The private, checked copy of the geometry line. */
typedef struct VgpuLinkGeometry {
        uint64_t region_size;
        uint32_t req_offset;
        uint32_t req_count;
        uint32_t cpl_offset;
        uint32_t cpl_count;
} VgpuLinkGeometry;

/* The size a link with these counts needs (whole pages); 0 when a count is not a valid ring count. */
size_t vgpu_link_region_size(uint32_t req_count, uint32_t cpl_count);

/* Creator side: lays out header and both rings in a zeroed region of at least
 * vgpu_link_region_size(req_count, cpl_count) bytes. -EINVAL on bad counts, a misaligned region or one
 * too small. */
int vgpu_link_format(void *region, size_t region_size, uint32_t req_count, uint32_t cpl_count,
                     VgpuLinkGeometry *ret);

/* Attaching side: copies the geometry line once and checks it against region_size (the mapped size, never
 * the header's claim): magic, version, sizes, flags, counts, alignment, both rings inside and apart.
 * -EPROTO on any failure, -EPROTONOSUPPORT for another version. */
int vgpu_link_geometry_read(const void *region, size_t region_size, VgpuLinkGeometry *ret);

/* Typed ring ends: a request ring only takes VgpuHostRequest, a completion ring VgpuHostCompletion. */
typedef struct VgpuHostRequestProducer {
        VgpuRingProducer ring;
} VgpuHostRequestProducer;
typedef struct VgpuHostRequestConsumer {
        VgpuRingConsumer ring;
} VgpuHostRequestConsumer;
typedef struct VgpuHostCompletionProducer {
        VgpuRingProducer ring;
} VgpuHostCompletionProducer;
typedef struct VgpuHostCompletionConsumer {
        VgpuRingConsumer ring;
} VgpuHostCompletionConsumer;

/* The geometry must come from vgpu_link_format() or vgpu_link_geometry_read() on the same region. The
 * ring indices are read once and checked (-EPROTO when inconsistent). */
int vgpu_link_attach_scheduler(void *region, const VgpuLinkGeometry *g, VgpuHostRequestProducer *req,
                               VgpuHostCompletionConsumer *cpl);
int vgpu_link_attach_executor(void *region, const VgpuLinkGeometry *g, VgpuHostRequestConsumer *req,
                              VgpuHostCompletionProducer *cpl);

static inline int vgpu_host_request_push(VgpuHostRequestProducer *p, const VgpuHostRequest *r)
{
        return vgpu_ring_producer_write(&p->ring, r, sizeof(*r));
}

static inline int vgpu_host_request_pop(VgpuHostRequestConsumer *c, VgpuHostRequest *ret)
{
        return vgpu_ring_consumer_read(&c->ring, ret, sizeof(*ret));
}

static inline int vgpu_host_completion_push(VgpuHostCompletionProducer *p, const VgpuHostCompletion *c)
{
        return vgpu_ring_producer_write(&p->ring, c, sizeof(*c));
}

static inline int vgpu_host_completion_pop(VgpuHostCompletionConsumer *c, VgpuHostCompletion *ret)
{
        return vgpu_ring_consumer_read(&c->ring, ret, sizeof(*ret));
}

/* ---- Starting an executor: two messages on its control socket (AF_UNIX, SOCK_SEQPACKET) ----
 *
 * 1. scheduler → executor: VgpuLinkStart with three fds as one SCM_RIGHTS message, in this order: the
 *    link memfd, the eventfd the executor waits on (scheduler → executor kicks), the eventfd it
 *    notifies (executor → scheduler).
 * 2. scheduler → executor: the VM's region, vgpu_region_ref_send() (transport.h).
 * 3. executor → scheduler: VgpuLinkReady, once everything is mapped and checked (or why not).
 * After that the socket carries nothing; its hang-up tells each side that the other is gone. */

#define VGPU_LINK_START_MAGIC UINT32_C(0x534c4756) /* "VGLS" */
#define VGPU_LINK_READY_MAGIC UINT32_C(0x524c4756) /* "VGLR" */
#define VGPU_LINK_START_FDS   3

typedef struct VgpuLinkStart {
        uint32_t magic;   /* VGPU_LINK_START_MAGIC */
        uint16_t version; /* VGPU_LINK_VERSION */
        uint16_t size;    /* sizeof(VgpuLinkStart) */
        uint64_t link_size; /* the link memfd's size: checked against fstat(), which wins */
        uint32_t vm_id;     /* must match the executor's --vm-id */
        uint32_t flags;     /* none defined: 0 */
} VgpuLinkStart;

_Static_assert(sizeof(VgpuLinkStart) == 24, "start message size");

typedef struct VgpuLinkReady {
        uint32_t magic;  /* VGPU_LINK_READY_MAGIC */
        int32_t error;   /* 0, or the positive errno of what failed; the executor exits after sending it */
        char backend[24]; /* "cpu", "cuda": NUL-terminated */
} VgpuLinkReady;

_Static_assert(sizeof(VgpuLinkReady) == 32, "ready message size");

/* Sends the start message and its fds. */
int vgpu_link_start_send(int sock, const VgpuLinkStart *start, int link_fd, int kick_fd, int notify_fd);
/* Receives exactly one start message: ret_fds gets the three fds (O_CLOEXEC) in order. -EBADMSG when
 * anything is malformed (every received fd closed), -ECONNRESET when the peer hung up. */
int vgpu_link_start_receive(int sock, VgpuLinkStart *ret, int ret_fds[VGPU_LINK_START_FDS]);

int vgpu_link_ready_send(int sock, int error, const char *backend);
/* Waits up to timeout_ms. 0 with *ret filled; -ETIMEDOUT, -ECONNRESET, -EBADMSG. */
int vgpu_link_ready_receive(int sock, int timeout_ms, VgpuLinkReady *ret);
