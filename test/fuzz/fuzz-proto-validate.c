/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target for the request validator. Input: a 64-byte request descriptor, then optionally an
 * 8-byte little-endian data-area size, then launch parameter entries. Besides "does not crash", it checks
 * the validator's promise: whatever it accepts lies inside the data area and within the limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto-validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DEFAULT_DATA_SIZE (UINT64_C(1) << 20)

static void require(int ok)
{
        if (!ok)
                abort(); /* the validator accepted something it promised to refuse */
}

static void check_range(const VgpuDataRange *r, uint64_t data_size)
{
        require(r->offset <= data_size && r->length <= data_size - r->offset);
}

static void check_accepted(const VgpuRequest *r, uint64_t data_size)
{
        switch (r->opcode) {
        case VGPU_OP_COPY_H2D:
        case VGPU_OP_COPY_D2H:
                check_range(&r->u.copy_host.data, data_size);
                require(r->u.copy_host.handle != VGPU_HANDLE_NULL && r->u.copy_host.data.length > 0);
                require(r->u.copy_host.offset <= UINT64_MAX - r->u.copy_host.data.length);
                break;
        case VGPU_OP_MODULE_LOAD:
                check_range(&r->u.module_load.image, data_size);
                require(r->u.module_load.image.length <= VGPU_MODULE_SIZE_MAX);
                break;
        case VGPU_OP_GET_FUNCTION:
                check_range(&r->u.get_function.name, data_size);
                break;
        case VGPU_OP_LAUNCH:
                check_range(&r->u.launch.params, data_size);
                require(r->u.launch.param_count <= VGPU_LAUNCH_PARAMS_MAX);
                require((uint64_t)r->u.launch.block[0] * r->u.launch.block[1] * r->u.launch.block[2] <=
                        VGPU_BLOCK_THREADS_MAX);
                break;
        case VGPU_OP_STATS:
                check_range(&r->u.stats.out, data_size);
                break;
        default:
                break;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        VgpuLaunchParam params[VGPU_LAUNCH_PARAMS_MAX];
        VgpuKernelParam out[VGPU_LAUNCH_PARAMS_MAX];
        uint64_t data_size = DEFAULT_DATA_SIZE;
        VgpuRequestDesc d;
        VgpuRequest r;
        size_t n;

        if (size < sizeof(d))
                return 0;
        memcpy(&d, data, sizeof(d));
        data += sizeof(d), size -= sizeof(d);
        if (size >= sizeof(data_size)) {
                memcpy(&data_size, data, sizeof(data_size));
                data += sizeof(data_size), size -= sizeof(data_size);
        }

        if (vgpu_request_validate(&d, data_size, &r) == VGPU_STATUS_OK)
                check_accepted(&r, data_size);

        n = size / sizeof(VgpuLaunchParam);
        if (n > VGPU_LAUNCH_PARAMS_MAX)
                n = VGPU_LAUNCH_PARAMS_MAX;
        memcpy(params, data, n * sizeof(VgpuLaunchParam));
        if (vgpu_launch_params_validate(params, (uint16_t)n, data_size, out) == VGPU_STATUS_OK)
                for (size_t i = 0; i < n; i++)
                        if (out[i].kind == VGPU_PARAM_BYTES)
                                check_range(&out[i].bytes, data_size);
        return 0;
}
