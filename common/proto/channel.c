/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Channel layout: the creator writes the geometry, the attaching side copies and checks it once (as
 * libxenvchan's init.c does), then builds its two ring ends from the private copy only. */
#include <errno.h>
#include <string.h>

#include "channel.h"

#define FORMAT_ALIGN 4096u /* the creator page-aligns each area, so a Xen frontend can grant them apart */

_Static_assert(sizeof(VgpuChannelHeader) <= FORMAT_ALIGN, "the header fits its page");

static uint64_t align_up(uint64_t v, uint64_t a)
{
        return (v + a - 1) & ~(a - 1);
}

int vgpu_channel_format(void *region, size_t region_size, uint32_t req_count, uint32_t cpl_count,
                        VgpuChannelGeometry *ret)
{
        VgpuChannelHeader *h = region;
        VgpuChannelGeometry g = {};

        if (!region || ((uintptr_t)region % VGPU_AREA_ALIGN) != 0)
                return -EINVAL;
        if (!vgpu_ring_count_is_valid(req_count) || !vgpu_ring_count_is_valid(cpl_count))
                return -EINVAL;
        if ((uint64_t)region_size > VGPU_REGION_SIZE_MAX)
                return -EFBIG;

        g.region_size = region_size;
        g.req_offset = FORMAT_ALIGN;
        g.req_count = req_count;
        g.cpl_offset =
                (uint32_t)align_up((uint64_t)g.req_offset + (uint64_t)req_count * VGPU_REQUEST_SIZE, FORMAT_ALIGN);
        g.cpl_count = cpl_count;
        g.data_offset = align_up((uint64_t)g.cpl_offset + (uint64_t)cpl_count * VGPU_COMPLETION_SIZE, FORMAT_ALIGN);
        if (g.data_offset > region_size)
                return -EINVAL;
        g.data_size = region_size - g.data_offset;

        /* The region is not shared yet (it is handed over through the transport afterwards, which orders
         * these stores before the peer's first load), so plain stores suffice. */
        memset(h, 0, sizeof(*h));
        h->magic = VGPU_CHANNEL_MAGIC;
        h->layout_version = VGPU_LAYOUT_VERSION;
        h->header_size = sizeof(VgpuChannelHeader);
        h->region_size = g.region_size;
        h->req_offset = g.req_offset;
        h->req_count = g.req_count;
        h->cpl_offset = g.cpl_offset;
        h->cpl_count = g.cpl_count;
        h->data_offset = g.data_offset;
        h->data_size = g.data_size;
        h->frontend_state = VGPU_PEER_ALIVE;

        if (ret)
                *ret = g;
        return 0;
}

/* [offset, offset + size) lies inside [0, region_size); written so that nothing can overflow. */
static bool area_fits(uint64_t offset, uint64_t size, uint64_t region_size)
{
        return offset <= region_size && size <= region_size - offset;
}

/* Only called on areas that fit a region of at most VGPU_REGION_SIZE_MAX, so the sums cannot wrap. */
static bool areas_disjoint(uint64_t a_offset, uint64_t a_size, uint64_t b_offset, uint64_t b_size)
{
        return a_offset + a_size <= b_offset || b_offset + b_size <= a_offset;
}

static int geometry_check(const VgpuChannelHeader *h, uint64_t region_size)
{
        uint64_t req_size, cpl_size;

        if (h->magic != VGPU_CHANNEL_MAGIC)
                return -EPROTO;
        if (h->layout_version != VGPU_LAYOUT_VERSION)
                return -EPROTONOSUPPORT;
        if (h->header_size != sizeof(VgpuChannelHeader) || h->flags != 0)
                return -EPROTO;
        if (h->region_size != region_size || region_size > VGPU_REGION_SIZE_MAX)
                return -EPROTO;
        if (!vgpu_ring_count_is_valid(h->req_count) || !vgpu_ring_count_is_valid(h->cpl_count))
                return -EPROTO;
        if (h->req_offset % VGPU_AREA_ALIGN || h->cpl_offset % VGPU_AREA_ALIGN || h->data_offset % VGPU_AREA_ALIGN)
                return -EPROTO;
        if (h->req_offset < sizeof(VgpuChannelHeader) || h->cpl_offset < sizeof(VgpuChannelHeader) ||
            h->data_offset < sizeof(VgpuChannelHeader))
                return -EPROTO;

        req_size = (uint64_t)h->req_count * VGPU_REQUEST_SIZE;
        cpl_size = (uint64_t)h->cpl_count * VGPU_COMPLETION_SIZE;
        if (!area_fits(h->req_offset, req_size, region_size) || !area_fits(h->cpl_offset, cpl_size, region_size) ||
            !area_fits(h->data_offset, h->data_size, region_size))
                return -EPROTO;
        if (!areas_disjoint(h->req_offset, req_size, h->cpl_offset, cpl_size) ||
            !areas_disjoint(h->req_offset, req_size, h->data_offset, h->data_size) ||
            !areas_disjoint(h->cpl_offset, cpl_size, h->data_offset, h->data_size))
                return -EPROTO;
        return 0;
}

int vgpu_channel_geometry_read(const void *region, size_t region_size, VgpuChannelGeometry *ret)
{
        VgpuChannelHeader h = {};
        int r;

        if (!region || ((uintptr_t)region % VGPU_AREA_ALIGN) != 0 || !ret)
                return -EINVAL;
        if (region_size < sizeof(VgpuChannelHeader))
                return -EPROTO;

        /* The one read of the geometry line; everything below looks at the private copy only. */
        vgpu_shared_copy_from(&h, region, offsetof(VgpuChannelHeader, req));
        r = geometry_check(&h, region_size);
        if (r < 0)
                return r;

        *ret = (VgpuChannelGeometry){
                .region_size = h.region_size,
                .req_offset = h.req_offset,
                .req_count = h.req_count,
                .cpl_offset = h.cpl_offset,
                .cpl_count = h.cpl_count,
                .data_offset = h.data_offset,
                .data_size = h.data_size,
        };
        return 0;
}

int vgpu_channel_attach_host(void *region, const VgpuChannelGeometry *g, VgpuRequestConsumer *req,
                             VgpuCompletionProducer *cpl)
{
        VgpuChannelHeader *h = region;
        uint8_t *base = region;
        int r;

        r = vgpu_ring_consumer_attach(&req->ring, &h->req, base + g->req_offset, g->req_count, VGPU_REQUEST_SIZE);
        if (r < 0)
                return r;
        return vgpu_ring_producer_attach(&cpl->ring, &h->cpl, base + g->cpl_offset, g->cpl_count, VGPU_COMPLETION_SIZE);
}

int vgpu_channel_attach_guest(void *region, const VgpuChannelGeometry *g, VgpuRequestProducer *req,
                              VgpuCompletionConsumer *cpl)
{
        VgpuChannelHeader *h = region;
        uint8_t *base = region;
        int r;

        r = vgpu_ring_producer_attach(&req->ring, &h->req, base + g->req_offset, g->req_count, VGPU_REQUEST_SIZE);
        if (r < 0)
                return r;
        return vgpu_ring_consumer_attach(&cpl->ring, &h->cpl, base + g->cpl_offset, g->cpl_count, VGPU_COMPLETION_SIZE);
}

void vgpu_channel_set_backend_state(void *region, uint8_t state, uint32_t close_reason)
{
        VgpuChannelHeader *h = region;

        /* Release on the state byte: close_reason is visible before the state that tells the guest to
         * look at it. */
        __atomic_store_n(&h->close_reason, close_reason, __ATOMIC_RELAXED);
        __atomic_store_n(&h->backend_state, state, __ATOMIC_RELEASE);
}

void vgpu_channel_set_frontend_state(void *region, uint8_t state)
{
        VgpuChannelHeader *h = region;

        /* Release: everything this side wrote before (e.g. its last descriptors) precedes the state. */
        __atomic_store_n(&h->frontend_state, state, __ATOMIC_RELEASE);
}

uint8_t vgpu_channel_frontend_state(const void *region)
{
        const VgpuChannelHeader *h = region;

        return __atomic_load_n(&h->frontend_state, __ATOMIC_ACQUIRE);
}

uint8_t vgpu_channel_backend_state(const void *region)
{
        const VgpuChannelHeader *h = region;

        return __atomic_load_n(&h->backend_state, __ATOMIC_ACQUIRE);
}
