/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Request validation: every rule of docs/protocol.md, "Requests" and "Limits", in one file. Each rule
 * answers one status; the first broken rule decides. */
#include <stdbool.h>
#include <string.h>

#include "proto-validate.h"
#include "vgpu-util.h"

static bool bytes_are_zero(const void *p, size_t n)
{
        const uint8_t *b = p;

        for (size_t i = 0; i < n; i++)
                if (b[i] != 0)
                        return false;
        return true;
}

/* The operand bytes an opcode does not use must be zero, so that a later version can give them meaning. */
static bool tail_is_zero(const VgpuRequestDesc *d, size_t used)
{
        return bytes_are_zero(d->u.raw + used, sizeof(d->u.raw) - used);
}

static VgpuStatus check_data_range(uint64_t offset, uint64_t length, uint64_t data_size, VgpuDataRange *ret)
{
        if (!vgpu_range_fits(offset, length, data_size))
                return VGPU_STATUS_OUT_OF_BOUNDS;
        *ret = (VgpuDataRange){.offset = offset, .length = length};
        return VGPU_STATUS_OK;
}

/* A range in device memory: the allocation's size is the executor's to check; here only that the end
 * is representable, so that its check cannot be fooled by wrap-around. */
static VgpuStatus check_device_range(uint64_t handle, uint64_t offset, uint64_t length)
{
        if (handle == VGPU_HANDLE_NULL)
                return VGPU_STATUS_NO_SUCH_HANDLE;
        if (length == 0)
                return VGPU_STATUS_INVALID_ARGUMENT;
        if (length > VGPU_MEM_ALLOC_MAX || offset > VGPU_MEM_ALLOC_MAX - length)
                return VGPU_STATUS_OUT_OF_BOUNDS;
        return VGPU_STATUS_OK;
}

static VgpuStatus validate_hello(const VgpuRequestDesc *d, VgpuRequest *r)
{
        const VgpuHelloArgs *a = &d->u.hello;

        if (a->reserved != 0 || !tail_is_zero(d, sizeof(*a)))
                return VGPU_STATUS_INVALID_ARGUMENT;
        if (a->version_min == 0 || a->version_min > a->version_max)
                return VGPU_STATUS_INVALID_ARGUMENT;
        r->u.hello.version_min = a->version_min;
        r->u.hello.version_max = a->version_max;
        r->u.hello.features = a->features;
        return VGPU_STATUS_OK;
}

static VgpuStatus validate_mem(const VgpuRequestDesc *d, VgpuRequest *r)
{
        if (d->opcode == VGPU_OP_MEM_FREE) {
                if (!tail_is_zero(d, sizeof(d->u.mem_free)))
                        return VGPU_STATUS_INVALID_ARGUMENT;
                if (d->u.mem_free.handle == VGPU_HANDLE_NULL)
                        return VGPU_STATUS_NO_SUCH_HANDLE;
                r->u.mem_free.handle = d->u.mem_free.handle;
                return VGPU_STATUS_OK;
        }

        if (d->u.mem_alloc.flags != 0 || d->u.mem_alloc.reserved != 0 || !tail_is_zero(d, sizeof(d->u.mem_alloc)))
                return VGPU_STATUS_INVALID_ARGUMENT;
        if (d->u.mem_alloc.size == 0 || d->u.mem_alloc.size > VGPU_MEM_ALLOC_MAX)
                return VGPU_STATUS_INVALID_ARGUMENT;
        r->u.mem_alloc.size = d->u.mem_alloc.size;
        return VGPU_STATUS_OK;
}

static VgpuStatus validate_copy_host(const VgpuRequestDesc *d, uint64_t data_size, VgpuRequest *r)
{
        const VgpuCopyHostArgs *a = &d->u.copy_host;
        VgpuStatus s;

        if (!tail_is_zero(d, sizeof(*a)))
                return VGPU_STATUS_INVALID_ARGUMENT;
        s = check_device_range(a->handle, a->offset, a->length);
        if (s != VGPU_STATUS_OK)
                return s;
        s = check_data_range(a->data_offset, a->length, data_size, &r->u.copy_host.data);
        if (s != VGPU_STATUS_OK)
                return s;
        r->u.copy_host.handle = a->handle;
        r->u.copy_host.offset = a->offset;
        return VGPU_STATUS_OK;
}

static VgpuStatus validate_copy_d2d(const VgpuRequestDesc *d, VgpuRequest *r)
{
        const VgpuCopyD2DArgs *a = &d->u.copy_d2d;
        VgpuStatus s;

        if (!tail_is_zero(d, sizeof(*a)))
                return VGPU_STATUS_INVALID_ARGUMENT;
        s = check_device_range(a->dst_handle, a->dst_offset, a->length);
        if (s == VGPU_STATUS_OK)
                s = check_device_range(a->src_handle, a->src_offset, a->length);
        if (s != VGPU_STATUS_OK)
                return s;
        r->u.copy_d2d.dst_handle = a->dst_handle;
        r->u.copy_d2d.dst_offset = a->dst_offset;
        r->u.copy_d2d.src_handle = a->src_handle;
        r->u.copy_d2d.src_offset = a->src_offset;
        r->u.copy_d2d.length = a->length;
        return VGPU_STATUS_OK;
}

static VgpuStatus validate_memset(const VgpuRequestDesc *d, VgpuRequest *r)
{
        const VgpuMemsetArgs *a = &d->u.memset;
        VgpuStatus s;

        if (!bytes_are_zero(a->reserved, sizeof(a->reserved)) || !tail_is_zero(d, sizeof(*a)))
                return VGPU_STATUS_INVALID_ARGUMENT;
        if (a->element_size != 1 && a->element_size != 2 && a->element_size != 4)
                return VGPU_STATUS_INVALID_ARGUMENT;
        if (a->element_size < 4 && (a->value >> (8 * a->element_size)) != 0)
                return VGPU_STATUS_INVALID_ARGUMENT;
        if (a->offset % a->element_size != 0 || a->length % a->element_size != 0)
                return VGPU_STATUS_INVALID_ARGUMENT;
        s = check_device_range(a->handle, a->offset, a->length);
        if (s != VGPU_STATUS_OK)
                return s;
        r->u.memset.handle = a->handle;
        r->u.memset.offset = a->offset;
        r->u.memset.length = a->length;
        r->u.memset.value = a->value;
        r->u.memset.element_size = a->element_size;
        return VGPU_STATUS_OK;
}

static VgpuStatus validate_module_load(const VgpuRequestDesc *d, uint64_t data_size, VgpuRequest *r)
{
        const VgpuModuleLoadArgs *a = &d->u.module_load;

        if (a->reserved != 0 || !tail_is_zero(d, sizeof(*a)))
                return VGPU_STATUS_INVALID_ARGUMENT;
        if (a->format != VGPU_MODULE_PTX && a->format != VGPU_MODULE_CUBIN && a->format != VGPU_MODULE_FATBIN)
                return VGPU_STATUS_INVALID_ARGUMENT;
        if (a->length == 0 || a->length > VGPU_MODULE_SIZE_MAX)
                return VGPU_STATUS_INVALID_ARGUMENT;
        r->u.module_load.format = (VgpuModuleFormat)a->format;
        return check_data_range(a->data_offset, a->length, data_size, &r->u.module_load.image);
}

static VgpuStatus validate_get_function(const VgpuRequestDesc *d, uint64_t data_size, VgpuRequest *r)
{
        const VgpuGetFunctionArgs *a = &d->u.get_function;

        if (a->reserved != 0 || !tail_is_zero(d, sizeof(*a)))
                return VGPU_STATUS_INVALID_ARGUMENT;
        if (a->module == VGPU_HANDLE_NULL)
                return VGPU_STATUS_NO_SUCH_HANDLE;
        if (a->name_length == 0 || a->name_length > VGPU_FUNCTION_NAME_MAX)
                return VGPU_STATUS_INVALID_ARGUMENT;
        r->u.get_function.module = a->module;
        return check_data_range(a->name_offset, a->name_length, data_size, &r->u.get_function.name);
}

static bool launch_dims_are_valid(const VgpuLaunchArgs *a)
{
        uint64_t threads = (uint64_t)a->block[0] * a->block[1] * a->block[2]; /* each <= 1024: no overflow */

        if (a->grid[0] == 0 || a->grid[0] > VGPU_GRID_X_MAX)
                return false;
        if (a->grid[1] == 0 || a->grid[1] > VGPU_GRID_YZ_MAX || a->grid[2] == 0 || a->grid[2] > VGPU_GRID_YZ_MAX)
                return false;
        if (a->block[0] == 0 || a->block[0] > VGPU_BLOCK_XY_MAX || a->block[1] == 0 ||
            a->block[1] > VGPU_BLOCK_XY_MAX || a->block[2] == 0 || a->block[2] > VGPU_BLOCK_Z_MAX)
                return false;
        return threads <= VGPU_BLOCK_THREADS_MAX;
}

static VgpuStatus validate_launch(const VgpuRequestDesc *d, uint64_t data_size, VgpuRequest *r)
{
        const VgpuLaunchArgs *a = &d->u.launch;

        if (a->reserved != 0)
                return VGPU_STATUS_INVALID_ARGUMENT;
        if (a->function == VGPU_HANDLE_NULL)
                return VGPU_STATUS_NO_SUCH_HANDLE;
        if (!launch_dims_are_valid(a) || a->shared_mem > VGPU_SHARED_MEM_MAX)
                return VGPU_STATUS_INVALID_ARGUMENT;
        if (a->param_count > VGPU_LAUNCH_PARAMS_MAX || (a->param_count == 0 && a->params_offset != 0))
                return VGPU_STATUS_INVALID_ARGUMENT;

        r->u.launch.function = a->function;
        memcpy(r->u.launch.grid, a->grid, sizeof(a->grid));
        memcpy(r->u.launch.block, a->block, sizeof(a->block));
        r->u.launch.shared_mem = a->shared_mem;
        r->u.launch.param_count = a->param_count;
        /* count <= 256, so the product cannot overflow. */
        return check_data_range(a->params_offset, (uint64_t)a->param_count * sizeof(VgpuLaunchParam), data_size,
                                &r->u.launch.params);
}

static VgpuStatus validate_no_operands(const VgpuRequestDesc *d)
{
        return tail_is_zero(d, 0) ? VGPU_STATUS_OK : VGPU_STATUS_INVALID_ARGUMENT;
}

static VgpuStatus validate_stats(const VgpuRequestDesc *d, uint64_t data_size, VgpuRequest *r)
{
        const VgpuStatsArgs *a = &d->u.stats;

        if (!tail_is_zero(d, sizeof(*a)))
                return VGPU_STATUS_INVALID_ARGUMENT;
        if (a->length < sizeof(VgpuStats))
                return VGPU_STATUS_INVALID_ARGUMENT;
        /* The host writes exactly sizeof(VgpuStats); a longer buffer is fine but only that much is used. */
        return check_data_range(a->data_offset, a->length, data_size, &r->u.stats.out);
}

static VgpuStatus validate_operands(const VgpuRequestDesc *d, uint64_t data_size, VgpuRequest *r)
{
        switch (d->opcode) {
        case VGPU_OP_HELLO:
                return validate_hello(d, r);
        case VGPU_OP_MEM_ALLOC:
        case VGPU_OP_MEM_FREE:
                return validate_mem(d, r);
        case VGPU_OP_COPY_H2D:
        case VGPU_OP_COPY_D2H:
                return validate_copy_host(d, data_size, r);
        case VGPU_OP_COPY_D2D:
                return validate_copy_d2d(d, r);
        case VGPU_OP_MEMSET:
                return validate_memset(d, r);
        case VGPU_OP_MODULE_LOAD:
                return validate_module_load(d, data_size, r);
        case VGPU_OP_GET_FUNCTION:
                return validate_get_function(d, data_size, r);
        case VGPU_OP_LAUNCH:
                return validate_launch(d, data_size, r);
        case VGPU_OP_SYNC:
                return validate_no_operands(d);
        case VGPU_OP_STATS:
                return validate_stats(d, data_size, r);
        default:
                return VGPU_STATUS_UNKNOWN_OPCODE;
        }
}

VgpuStatus vgpu_request_validate(const VgpuRequestDesc *d, uint64_t data_size, VgpuRequest *ret)
{
        VgpuRequest r = {};
        VgpuStatus s;

        /* The opcode first: a reserved field of an unknown request means nothing. */
        if (d->opcode == 0 || d->opcode >= _VGPU_OP_MAX)
                return VGPU_STATUS_UNKNOWN_OPCODE;
        if (d->flags != 0 || d->reserved != 0)
                return VGPU_STATUS_INVALID_ARGUMENT;

        r.opcode = (VgpuOpcode)d->opcode;
        r.seq = d->seq;
        s = validate_operands(d, data_size, &r);
        if (s != VGPU_STATUS_OK)
                return s;
        *ret = r;
        return VGPU_STATUS_OK;
}

static VgpuStatus validate_param(const VgpuLaunchParam *p, uint64_t data_size, VgpuKernelParam *ret)
{
        if (!bytes_are_zero(p->reserved, sizeof(p->reserved)))
                return VGPU_STATUS_INVALID_ARGUMENT;

        *ret = (VgpuKernelParam){.kind = (VgpuParamKind)p->kind, .size = p->size, .value = p->value};
        switch (p->kind) {
        case VGPU_PARAM_VALUE:
                if (p->size != 1 && p->size != 2 && p->size != 4 && p->size != 8)
                        return VGPU_STATUS_INVALID_ARGUMENT;
                if (p->offset != 0 || (p->size < 8 && (p->value >> (8 * p->size)) != 0))
                        return VGPU_STATUS_INVALID_ARGUMENT;
                return VGPU_STATUS_OK;
        case VGPU_PARAM_BUFFER:
                if (p->size != sizeof(uint64_t))
                        return VGPU_STATUS_INVALID_ARGUMENT;
                if (p->value == VGPU_HANDLE_NULL)
                        return VGPU_STATUS_NO_SUCH_HANDLE;
                if (p->offset >= VGPU_MEM_ALLOC_MAX)
                        return VGPU_STATUS_OUT_OF_BOUNDS;
                ret->offset = p->offset;
                return VGPU_STATUS_OK;
        case VGPU_PARAM_BYTES:
                if (p->size == 0 || p->size > VGPU_LAUNCH_PARAM_BYTES_MAX || p->offset != 0)
                        return VGPU_STATUS_INVALID_ARGUMENT;
                ret->value = 0;
                return check_data_range(p->value, p->size, data_size, &ret->bytes);
        default:
                return VGPU_STATUS_INVALID_ARGUMENT;
        }
}

VgpuStatus vgpu_launch_params_validate(const VgpuLaunchParam *params, uint16_t count, uint64_t data_size,
                                       VgpuKernelParam *ret)
{
        uint64_t total = 0;

        if (count > VGPU_LAUNCH_PARAMS_MAX)
                return VGPU_STATUS_INVALID_ARGUMENT;
        for (uint16_t i = 0; i < count; i++) {
                VgpuStatus s = validate_param(&params[i], data_size, &ret[i]);
                if (s != VGPU_STATUS_OK)
                        return s;
                /* <= 256 entries of <= 4096 bytes: the sum cannot overflow. Alignment padding is added by
                 * the executor when it packs the buffer, which checks the packed size again. */
                total += params[i].size;
                if (total > VGPU_LAUNCH_PARAMS_TOTAL_MAX)
                        return VGPU_STATUS_INVALID_ARGUMENT;
        }
        return VGPU_STATUS_OK;
}

VgpuStatus vgpu_hello_negotiate(uint16_t guest_min, uint16_t guest_max, uint16_t *ret_version)
{
        if (guest_min == 0 || guest_min > guest_max)
                return VGPU_STATUS_INVALID_ARGUMENT;
        if (guest_max < VGPU_PROTOCOL_VERSION_MIN || guest_min > VGPU_PROTOCOL_VERSION_MAX) {
                *ret_version = VGPU_PROTOCOL_VERSION_MAX;
                return VGPU_STATUS_VERSION_MISMATCH;
        }
        *ret_version = guest_max < VGPU_PROTOCOL_VERSION_MAX ? guest_max : VGPU_PROTOCOL_VERSION_MAX;
        return VGPU_STATUS_OK;
}

static const char *const status_names[_VGPU_STATUS_MAX] = {
        [VGPU_STATUS_OK] = "ok",
        [VGPU_STATUS_INVALID_ARGUMENT] = "invalid-argument",
        [VGPU_STATUS_UNKNOWN_OPCODE] = "unknown-opcode",
        [VGPU_STATUS_NO_SUCH_HANDLE] = "no-such-handle",
        [VGPU_STATUS_OUT_OF_MEMORY] = "out-of-memory",
        [VGPU_STATUS_QUOTA_EXCEEDED] = "quota-exceeded",
        [VGPU_STATUS_OUT_OF_BOUNDS] = "out-of-bounds",
        [VGPU_STATUS_VERSION_MISMATCH] = "version-mismatch",
        [VGPU_STATUS_BUSY] = "busy",
        [VGPU_STATUS_DEVICE_ERROR] = "device-error",
        [VGPU_STATUS_CHANNEL_CLOSED] = "channel-closed",
        [VGPU_STATUS_VM_MOVED] = "vm-moved",
        [VGPU_STATUS_NOT_SUPPORTED] = "not-supported",
        [VGPU_STATUS_NOT_NEGOTIATED] = "not-negotiated",
        [VGPU_STATUS_PROTOCOL_VIOLATION] = "protocol-violation",
        [VGPU_STATUS_STATE_LOST] = "state-lost",
        [VGPU_STATUS_UNAVAILABLE] = "unavailable",
};

static const char *const opcode_names[_VGPU_OP_MAX] = {
        [VGPU_OP_HELLO] = "HELLO",
        [VGPU_OP_MEM_ALLOC] = "MEM_ALLOC",
        [VGPU_OP_MEM_FREE] = "MEM_FREE",
        [VGPU_OP_COPY_H2D] = "COPY_H2D",
        [VGPU_OP_COPY_D2H] = "COPY_D2H",
        [VGPU_OP_COPY_D2D] = "COPY_D2D",
        [VGPU_OP_MEMSET] = "MEMSET",
        [VGPU_OP_MODULE_LOAD] = "MODULE_LOAD",
        [VGPU_OP_GET_FUNCTION] = "GET_FUNCTION",
        [VGPU_OP_LAUNCH] = "LAUNCH",
        [VGPU_OP_SYNC] = "SYNC",
        [VGPU_OP_STATS] = "STATS",
};

const char *vgpu_status_to_string(VgpuStatus s)
{
        return (unsigned)s < ELEMENTSOF(status_names) ? status_names[s] : NULL;
}

const char *vgpu_opcode_to_string(VgpuOpcode op)
{
        return (unsigned)op < ELEMENTSOF(opcode_names) ? opcode_names[op] : NULL;
}
