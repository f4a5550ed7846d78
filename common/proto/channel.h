/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A channel's geometry: laid out by its creator, copied out of the shared header once by the other side,
 * checked, and from then on read only from the private copy. Transport-free: the caller maps the region. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "protocol.h"
#include "ring.h"

/* The private, checked copy of the header's geometry line. */
typedef struct VgpuChannelGeometry {
        uint64_t region_size;
        uint32_t req_offset;
        uint32_t req_count;
        uint32_t cpl_offset;
        uint32_t cpl_count;
        uint64_t data_offset;
        uint64_t data_size;
} VgpuChannelGeometry;

/* Creator side: lays out header, request ring, completion ring and data area (each page-aligned) in a
 * zeroed region of region_size bytes, and marks the creator (frontend) alive. -EINVAL when the counts are
 * not powers of two in range or the rings leave no room; -EFBIG past VGPU_REGION_SIZE_MAX. */
int vgpu_channel_format(void *region, size_t region_size, uint32_t req_count, uint32_t cpl_count,
                        VgpuChannelGeometry *ret);

/* Attaching side: copies the geometry line once and checks it against the size actually mapped (never
 * the header's own claim): magic, layout version, header size, flags, power-of-two counts, alignment,
 * every area inside the region and no two overlapping. -EPROTO on any failure: the creator lied or is
 * not a vgpu channel; -EPROTONOSUPPORT for another layout version. */
int vgpu_channel_geometry_read(const void *region, size_t region_size, VgpuChannelGeometry *ret);

/* Host end: consumes requests, produces completions. Guest end: the reverse. The geometry must come from
 * vgpu_channel_geometry_read() or vgpu_channel_format() on the same region. */
int vgpu_channel_attach_host(void *region, const VgpuChannelGeometry *g, VgpuRequestConsumer *req,
                             VgpuCompletionProducer *cpl);
int vgpu_channel_attach_guest(void *region, const VgpuChannelGeometry *g, VgpuRequestProducer *req,
                              VgpuCompletionConsumer *cpl);

/* Liveness and closing: each side writes only its own state byte. */
void vgpu_channel_set_backend_state(void *region, uint8_t state, uint32_t close_reason);
void vgpu_channel_set_frontend_state(void *region, uint8_t state);
/* The other side's byte, as loaded now (acquire): a hint for liveness only, never an index. */
uint8_t vgpu_channel_frontend_state(const void *region);
uint8_t vgpu_channel_backend_state(const void *region);
