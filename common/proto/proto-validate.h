/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one place where a request descriptor, already copied out of the ring, becomes a validated plain
 * struct. Pure functions: no I/O, no shared memory, no allocation. What they cannot know (whether a handle
 * belongs to this VM, whether a range fits its allocation, quotas) is the executor's to check. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "protocol.h"

/* A range of the data area, checked against its size: offset + length <= data_size, without overflow. */
typedef struct VgpuDataRange {
        uint64_t offset;
        uint64_t length;
} VgpuDataRange;

typedef struct VgpuRequest {
        VgpuOpcode opcode;
        uint64_t seq;
        union {
                struct {
                        uint16_t version_min, version_max;
                        uint64_t features;
                } hello;
                struct {
                        uint64_t size;
                } mem_alloc;
                struct {
                        uint64_t handle;
                } mem_free;
                struct {
                        uint64_t handle, offset; /* offset + data.length does not overflow */
                        VgpuDataRange data;
                } copy_host; /* COPY_H2D, COPY_D2H */
                struct {
                        uint64_t dst_handle, dst_offset, src_handle, src_offset, length;
                } copy_d2d;
                struct {
                        uint64_t handle, offset, length;
                        uint32_t value;
                        uint8_t element_size;
                } memset;
                struct {
                        VgpuModuleFormat format;
                        VgpuDataRange image;
                } module_load;
                struct {
                        uint64_t module;
                        VgpuDataRange name;
                } get_function;
                struct {
                        uint64_t function;
                        uint32_t grid[3], block[3], shared_mem;
                        uint16_t param_count;
                        VgpuDataRange params; /* param_count VgpuLaunchParam entries */
                } launch;
                struct {
                        VgpuDataRange out;
                } stats;
        } u;
} VgpuRequest;

/* A launch parameter after vgpu_launch_params_validate(). */
typedef struct VgpuKernelParam {
        VgpuParamKind kind;
        uint32_t size;
        uint64_t value;      /* VALUE: the bits; BUFFER: the memory handle */
        uint64_t offset;     /* BUFFER: byte offset into the allocation */
        VgpuDataRange bytes; /* BYTES: where the struct lies in the data area */
} VgpuKernelParam;

/* `d` must be a private copy (vgpu_request_pop()); data_size comes from the checked channel geometry. On
 * VGPU_STATUS_OK *ret is filled; on any other status *ret is untouched and the host answers with an error
 * completion carrying that status and d->seq. */
VgpuStatus vgpu_request_validate(const VgpuRequestDesc *d, uint64_t data_size, VgpuRequest *ret);

/* The parameter array of a validated LAUNCH, after the caller copied request.u.launch.params out of the data
 * area into private memory. Fills ret[0 … count-1] on VGPU_STATUS_OK. */
VgpuStatus vgpu_launch_params_validate(const VgpuLaunchParam *params, uint16_t count, uint64_t data_size,
                                       VgpuKernelParam *ret);

/* HELLO: picks the highest version both sides speak. VERSION_MISMATCH when [min, max] misses the host's
 * range; *ret_version is then the host's maximum, for the completion. */
VgpuStatus vgpu_hello_negotiate(uint16_t guest_min, uint16_t guest_max, uint16_t *ret_version);

/* Overflow-safe: offset + length <= size. */
static inline bool vgpu_range_fits(uint64_t offset, uint64_t length, uint64_t size)
{
        return offset <= size && length <= size - offset;
}

const char *vgpu_status_to_string(VgpuStatus s);
const char *vgpu_opcode_to_string(VgpuOpcode op);
