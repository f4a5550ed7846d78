/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The ring discipline of docs/protocol.md, "Memory ordering": who stores which index, with which barrier,
 * and how each side checks the index it loads from its peer before trusting it. */
#include <errno.h>
#include <string.h>

#include "ring.h"

bool vgpu_ring_count_is_valid(uint32_t count)
{
        return count >= VGPU_RING_COUNT_MIN && count <= VGPU_RING_COUNT_MAX && (count & (count - 1)) == 0;
}

static bool slot_size_is_valid(uint32_t slot_size)
{
        return slot_size > 0 && slot_size <= 4096 && slot_size % 8 == 0;
}

void vgpu_shared_copy_from(void *dst, const void *shared, size_t size)
{
        const uint64_t *s = shared;
        uint64_t *d = dst;

        for (size_t i = 0; i < size / 8; i++)
                d[i] = __atomic_load_n(&s[i], __ATOMIC_RELAXED);
}

void vgpu_shared_copy_to(void *shared, const void *src, size_t size)
{
        const uint64_t *s = src;
        uint64_t *d = shared;

        for (size_t i = 0; i < size / 8; i++)
                __atomic_store_n(&d[i], s[i], __ATOMIC_RELAXED);
}

/* True when the event index lies in (old, new]: the peer asked to be woken for one of the indices we just
 * moved past. Unsigned differences keep this right across the 2^32 wrap (Xen's RING_PUSH_..._NOTIFY). */
static bool event_in_window(uint32_t event, uint32_t old_idx, uint32_t new_idx)
{
        return (uint32_t)(new_idx - event) < (uint32_t)(new_idx - old_idx);
}

int vgpu_ring_producer_attach(VgpuRingProducer *p, VgpuRingControl *ctrl, void *slots, uint32_t count,
                              uint32_t slot_size)
{
        uint32_t prod, cons;

        if (!ctrl || !slots || !vgpu_ring_count_is_valid(count) || !slot_size_is_valid(slot_size))
                return -EINVAL;

        /* Each index is loaded once. Acquire on cons: whatever the consumer read from slots before
         * releasing them happened before we may overwrite them. */
        prod = __atomic_load_n(&ctrl->prod, __ATOMIC_RELAXED);
        cons = __atomic_load_n(&ctrl->cons, __ATOMIC_ACQUIRE);
        if ((uint32_t)(prod - cons) > count)
                return -EPROTO;

        *p = (VgpuRingProducer){
                .ctrl = ctrl,
                .slots = slots,
                .count = count,
                .slot_size = slot_size,
                .prod = prod,
                .published = prod,
                .cons = cons,
        };
        return 0;
}

int vgpu_ring_consumer_attach(VgpuRingConsumer *c, VgpuRingControl *ctrl, const void *slots, uint32_t count,
                              uint32_t slot_size)
{
        uint32_t prod, cons;

        if (!ctrl || !slots || !vgpu_ring_count_is_valid(count) || !slot_size_is_valid(slot_size))
                return -EINVAL;

        /* Acquire on prod: the slot contents the producer wrote before publishing prod are visible to the
         * copies we make after this load. */
        cons = __atomic_load_n(&ctrl->cons, __ATOMIC_RELAXED);
        prod = __atomic_load_n(&ctrl->prod, __ATOMIC_ACQUIRE);
        if ((uint32_t)(prod - cons) > count)
                return -EPROTO;

        *c = (VgpuRingConsumer){
                .ctrl = ctrl,
                .slots = slots,
                .count = count,
                .slot_size = slot_size,
                .cons = cons,
                .released = cons,
                .prod = prod,
        };
        return 0;
}

int vgpu_ring_producer_space(VgpuRingProducer *p)
{
        uint32_t cons;

        if (p->broken)
                return -EPROTO;

        /* Acquire: pairs with the consumer's release store of cons; its copies out of the freed slots
         * happen before our writes into them. */
        cons = __atomic_load_n(&p->ctrl->cons, __ATOMIC_ACQUIRE);

        /* The only legal values lie in [the cons we last saw, the prod we published]: a consumer can free
         * only what was published, and never takes a slot back. Anything else is a lie. */
        if ((uint32_t)(cons - p->cons) > (uint32_t)(p->published - p->cons)) {
                p->broken = true;
                return -EPROTO;
        }
        p->cons = cons;
        return (int)(p->count - (uint32_t)(p->prod - cons));
}

int vgpu_ring_producer_write(VgpuRingProducer *p, const void *desc, size_t size)
{
        uint32_t slot;

        if (size != p->slot_size)
                return -EINVAL;
        if (p->broken)
                return -EPROTO;

        /* Only reload the peer's index when our cached view says full: one shared load per lap. */
        if ((uint32_t)(p->prod - p->cons) >= p->count) {
                int r = vgpu_ring_producer_space(p);
                if (r < 0)
                        return r;
                if (r == 0)
                        return -EAGAIN;
        }

        slot = p->prod & (p->count - 1);
        vgpu_shared_copy_to(p->slots + (size_t)slot * p->slot_size, desc, size);
        p->prod++;
        return 0;
}

int vgpu_ring_producer_publish(VgpuRingProducer *p)
{
        uint32_t old_prod = p->published, new_prod = p->prod, event;

        if (p->broken)
                return -EPROTO;
        if (old_prod == new_prod)
                return 0;

        /* Release: the descriptor bytes written into the slots happen before the index that covers
         * them becomes visible ("data, then index"). */
        __atomic_store_n(&p->ctrl->prod, new_prod, __ATOMIC_RELEASE);
        p->published = new_prod;

        /* Full barrier: our store of prod is ordered before our load of prod_event. The consumer does the
         * mirror image in prepare_wait() (store prod_event, full barrier, load prod), so at least one of
         * us sees the other's store: either we see its event and notify, or it sees our prod and does
         * not sleep. Without it the two stores could both sit in store buffers: a lost wake-up. */
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        event = __atomic_load_n(&p->ctrl->prod_event, __ATOMIC_RELAXED);

        /* The event index is the peer's and may be anything; it only decides whether we send one
         * notification for this publish, so no value of it can hurt us. */
        return event_in_window(event, old_prod, new_prod) ? 1 : 0;
}

int vgpu_ring_producer_prepare_wait(VgpuRingProducer *p)
{
        int r;

        if (p->broken)
                return -EPROTO;

        r = vgpu_ring_producer_space(p);
        if (r != 0)
                return r;

        /* Wake me when the consumer moves cons past the oldest slot still in use, i.e. frees one. */
        __atomic_store_n(&p->ctrl->cons_event, p->prod - p->count + 1, __ATOMIC_RELAXED);

        /* Full barrier: the event store is ordered before the re-read of cons; pairs with the full
         * barrier in consumer_release() between its store of cons and its load of cons_event. */
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        return vgpu_ring_producer_space(p);
}

int vgpu_ring_consumer_available(VgpuRingConsumer *c)
{
        uint32_t prod;

        if (c->broken)
                return -EPROTO;

        /* Acquire: pairs with the producer's release store of prod; the slot contents it covers are
         * visible to every copy we make after this load. Loaded once; only the local is used. */
        prod = __atomic_load_n(&c->ctrl->prod, __ATOMIC_ACQUIRE);

        /* Legal values lie in [the prod we last saw, the cons we released + count]: a producer cannot
         * take back what it published, nor fill slots we have not handed back. Checked against what we
         * released, since that is all the producer can know. */
        if ((uint32_t)(prod - c->prod) > (uint32_t)(c->released + c->count - c->prod)) {
                c->broken = true;
                return -EPROTO;
        }
        c->prod = prod;
        return (int)(uint32_t)(prod - c->cons);
}

int vgpu_ring_consumer_read(VgpuRingConsumer *c, void *desc, size_t size)
{
        uint32_t slot;

        if (size != c->slot_size)
                return -EINVAL;
        if (c->broken)
                return -EPROTO;

        if (c->cons == c->prod) {
                int r = vgpu_ring_consumer_available(c);
                if (r < 0)
                        return r;
                if (r == 0)
                        return -EAGAIN;
        }

        /* Ordered after the acquire load of prod in available(), which covered this slot. The copy is the
         * only read of the slot: the caller validates and uses the private copy. */
        slot = c->cons & (c->count - 1);
        vgpu_shared_copy_from(desc, c->slots + (size_t)slot * c->slot_size, size);
        c->cons++;
        return 0;
}

int vgpu_ring_consumer_release(VgpuRingConsumer *c)
{
        uint32_t old_cons = c->released, new_cons = c->cons, event;

        if (c->broken)
                return -EPROTO;
        if (old_cons == new_cons)
                return 0;

        /* Release: our copies out of these slots complete before the producer can see them free and
         * overwrite them. */
        __atomic_store_n(&c->ctrl->cons, new_cons, __ATOMIC_RELEASE);
        c->released = new_cons;

        /* Full barrier: store of cons before load of cons_event; pairs with producer_prepare_wait(). */
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        event = __atomic_load_n(&c->ctrl->cons_event, __ATOMIC_RELAXED);
        return event_in_window(event, old_cons, new_cons) ? 1 : 0;
}

int vgpu_ring_consumer_prepare_wait(VgpuRingConsumer *c)
{
        int r;

        /* Work already seen: no need to arm anything. */
        r = vgpu_ring_consumer_available(c);
        if (r != 0)
                return r;

        /* Wake me when the producer publishes the slot I would read next. */
        __atomic_store_n(&c->ctrl->prod_event, c->cons + 1, __ATOMIC_RELAXED);

        /* Full barrier: the event store is ordered before the re-read of prod (the final check); pairs
         * with the full barrier in producer_publish() between its store of prod and load of prod_event. */
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        return vgpu_ring_consumer_available(c);
}
