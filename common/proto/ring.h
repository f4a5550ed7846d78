/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One side of a shared-memory descriptor ring (Xen's ring discipline, without its macros): each side keeps
 * its own index privately and only ever reads the peer's, once, with acquire, then checks it; a descriptor
 * is copied out of shared memory before anything looks at it; event indices suppress notifications. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

/* Return values, besides 0 and positive counts:
 *   -EPROTO  the peer broke the ring discipline (an index outside its window). Sticky: every later call
 *            fails the same way. The caller closes the channel (close_reason PROTOCOL_VIOLATION).
 *   -EAGAIN  ring full (producer) or empty (consumer).
 *   -EINVAL  a programming error of the caller (wrong descriptor size, bad geometry). */

/* The producer's view. Nothing here is re-read from shared memory except the peer's cons. */
typedef struct VgpuRingProducer {
        VgpuRingControl *ctrl; /* shared: we store prod and cons_event, load cons and prod_event */
        uint8_t *slots;        /* shared */
        uint32_t count;        /* private copy of the geometry: a power of two */
        uint32_t slot_size;
        uint32_t prod;      /* next slot to fill; authoritative, never read back from ctrl */
        uint32_t published; /* last prod stored to ctrl */
        uint32_t cons;      /* last checked value of the peer's cons */
        bool broken;
} VgpuRingProducer;

typedef struct VgpuRingConsumer {
        VgpuRingControl *ctrl; /* shared: we store cons and prod_event, load prod and cons_event */
        const uint8_t *slots;  /* shared */
        uint32_t count;
        uint32_t slot_size;
        uint32_t cons;     /* next slot to read; authoritative, never read back from ctrl */
        uint32_t released; /* last cons stored to ctrl */
        uint32_t prod;     /* last checked value of the peer's prod */
        bool broken;
} VgpuRingConsumer;

bool vgpu_ring_count_is_valid(uint32_t count);

/* Attach to a ring whose geometry the caller has already checked. The current indices are read once
 * and must be consistent (prod - cons <= count), else -EPROTO. */
int vgpu_ring_producer_attach(VgpuRingProducer *p, VgpuRingControl *ctrl, void *slots, uint32_t count,
                              uint32_t slot_size);
int vgpu_ring_consumer_attach(VgpuRingConsumer *c, VgpuRingControl *ctrl, const void *slots, uint32_t count,
                              uint32_t slot_size);

/* Producer. space() refreshes the peer's cons and returns the free slots. write() copies one descriptor
 * into the next slot without publishing it; publish() makes every written descriptor visible and returns 1
 * when the consumer asked to be woken for one of them (then the caller notifies), else 0. */
int vgpu_ring_producer_space(VgpuRingProducer *p);
int vgpu_ring_producer_write(VgpuRingProducer *p, const void *desc, size_t size);
int vgpu_ring_producer_publish(VgpuRingProducer *p);
/* Before sleeping on a full ring (after publish()): asks for a notification when a slot frees, then
 * checks again. > 0: space appeared, do not sleep; 0: sleep until notified. */
int vgpu_ring_producer_prepare_wait(VgpuRingProducer *p);

/* Consumer. available() refreshes and checks the peer's prod and returns the descriptors ready. read()
 * copies the next one into private memory. release() hands the read slots back and returns 1 when the
 * producer asked to be woken for space (then the caller notifies), else 0. */
int vgpu_ring_consumer_available(VgpuRingConsumer *c);
int vgpu_ring_consumer_read(VgpuRingConsumer *c, void *desc, size_t size);
int vgpu_ring_consumer_release(VgpuRingConsumer *c);
/* RING_FINAL_CHECK_FOR_REQUESTS: before sleeping (after release()), arms prod_event and checks once more.
 * > 0: work arrived, do not sleep; 0: sleep until notified. */
int vgpu_ring_consumer_prepare_wait(VgpuRingConsumer *c);

/* Cheap enough to poll in a spin loop: one relaxed load, no validation. Only a hint: true means "call
 * available()/read()", which load prod again with acquire and check it. A broken ring reports work so
 * that the poller calls read() and learns of the violation. */
static inline bool vgpu_ring_consumer_has_work(const VgpuRingConsumer *c)
{
        return c->broken || c->cons != __atomic_load_n(&c->ctrl->prod, __ATOMIC_RELAXED);
}

/* Copies between private and shared memory in 8-byte words with relaxed atomic accesses: the compiler
 * can neither split, repeat nor elide them (the copy is made exactly once, like Xen's volatile
 * RING_COPY_REQUEST), and a peer writing concurrently is not undefined behaviour for us. Both pointers
 * 8-byte aligned, size a multiple of 8. */
void vgpu_shared_copy_from(void *dst, const void *shared, size_t size);
void vgpu_shared_copy_to(void *shared, const void *src, size_t size);

/* Typed descriptor access: a request ring only takes VgpuRequestDesc, a completion ring VgpuCompletionDesc. */
typedef struct VgpuRequestProducer {
        VgpuRingProducer ring;
} VgpuRequestProducer;
typedef struct VgpuRequestConsumer {
        VgpuRingConsumer ring;
} VgpuRequestConsumer;
typedef struct VgpuCompletionProducer {
        VgpuRingProducer ring;
} VgpuCompletionProducer;
typedef struct VgpuCompletionConsumer {
        VgpuRingConsumer ring;
} VgpuCompletionConsumer;

static inline int vgpu_request_push(VgpuRequestProducer *p, const VgpuRequestDesc *d)
{
        return vgpu_ring_producer_write(&p->ring, d, sizeof(*d));
}

static inline int vgpu_request_pop(VgpuRequestConsumer *c, VgpuRequestDesc *ret)
{
        return vgpu_ring_consumer_read(&c->ring, ret, sizeof(*ret));
}

static inline int vgpu_completion_push(VgpuCompletionProducer *p, const VgpuCompletionDesc *d)
{
        return vgpu_ring_producer_write(&p->ring, d, sizeof(*d));
}

static inline int vgpu_completion_pop(VgpuCompletionConsumer *c, VgpuCompletionDesc *ret)
{
        return vgpu_ring_consumer_read(&c->ring, ret, sizeof(*ret));
}
