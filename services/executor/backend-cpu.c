/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The CPU backend: "device memory" is host memory of this process, kernels are the vgpu.builtin C
 * reference. It runs everywhere, so any workload built on the built-ins runs — and is checked — on a
 * machine with no GPU (docs/architecture.md, "The command path, layer by layer"). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "builtin.h"
#include "vgpu-util.h"

struct Backend {
        BackendConfig config;
};

static void cpu_done(Backend *b)
{
        free(b);
}

static int cpu_mem_alloc(_unused_ Backend *b, uint64_t size, void **ret)
{
        void *p;

        if (size == 0 || size > SIZE_MAX)
                return -EINVAL;
        /* calloc: zero-filled whatever malloc's arena held before (large blocks are fresh kernel pages). */
        p = calloc(1, (size_t)size);
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

static void cpu_mem_free(_unused_ Backend *b, void *memory, uint64_t size)
{
        /* Zeroed before it goes back to the allocator, which may hand the same bytes to a later
         * allocation of this VM without calloc's help (or to this process's own bookkeeping).
         * explicit_bzero: the compiler may not drop it as a dead store before free(). */
        explicit_bzero(memory, (size_t)size);
        free(memory);
}

static int cpu_copy_h2d(_unused_ Backend *b, void *dst, uint64_t dst_offset, const void *src, uint64_t length)
{
        memcpy((uint8_t *)dst + dst_offset, src, (size_t)length);
        return 0;
}

static int cpu_copy_d2h(_unused_ Backend *b, void *dst, const void *src, uint64_t src_offset, uint64_t length)
{
        memcpy(dst, (const uint8_t *)src + src_offset, (size_t)length);
        return 0;
}

static int cpu_copy_d2d(_unused_ Backend *b, void *dst, uint64_t dst_offset, const void *src, uint64_t src_offset,
                        uint64_t length)
{
        memmove((uint8_t *)dst + dst_offset, (const uint8_t *)src + src_offset, (size_t)length);
        return 0;
}

static int cpu_memset(_unused_ Backend *b, void *memory, uint64_t offset, uint64_t length, uint32_t value,
                      uint8_t element_size)
{
        uint8_t *p = (uint8_t *)memory + offset;

        switch (element_size) {
        case 1:
                memset(p, (int)(value & 0xff), (size_t)length);
                return 0;
        case 2: {
                uint16_t v = (uint16_t)value;

                for (uint64_t i = 0; i < length; i += 2)
                        memcpy(p + i, &v, 2);
                return 0;
        }
        case 4:
                for (uint64_t i = 0; i < length; i += 4)
                        memcpy(p + i, &value, 4);
                return 0;
        }
        return -EINVAL;
}

static VgpuStatus cpu_module_load(_unused_ Backend *b, _unused_ VgpuModuleFormat format, _unused_ const void *image,
                                  _unused_ uint64_t length, _unused_ void **ret, const char **reason)
{
        *reason = "the CPU backend cannot run PTX, cubin or fatbin modules; only vgpu.builtin is available "
                  "(MODULE_LOAD with format PTX and the text \"vgpu.builtin\")";
        return VGPU_STATUS_NOT_SUPPORTED;
}

static VgpuStatus cpu_get_function(_unused_ Backend *b, _unused_ void *module, _unused_ const char *name,
                                   _unused_ size_t length, _unused_ void **ret, const char **reason)
{
        /* Unreachable: module_load never succeeds, so no module of ours exists to look in. */
        *reason = "the CPU backend has no modules besides vgpu.builtin";
        return VGPU_STATUS_NOT_SUPPORTED;
}

/* The core matched the arguments to the signature; here they become BuiltinArgs with host addresses. */
static void builtin_args_fill(const BackendLaunch *l, BuiltinArg *args)
{
        for (size_t i = 0; i < l->n_args; i++) {
                const BackendArg *a = &l->args[i];

                args[i] = (BuiltinArg){};
                if (a->kind == VGPU_PARAM_BUFFER) {
                        args[i].data = (uint8_t *)a->memory + a->offset;
                        args[i].size = a->extent;
                } else
                        args[i].u32 = (uint32_t)a->value; /* u32, i32 and f32 share the bits */
        }
}

static VgpuStatus cpu_launch(Backend *b, const BackendLaunch *l, const char **reason)
{
        BuiltinArg args[BUILTIN_ARGS_MAX];
        uint64_t items, cost, per_slice;
        VgpuStatus s;

        if (!l->builtin || l->n_args > BUILTIN_ARGS_MAX) {
                *reason = "the CPU backend runs only vgpu.builtin kernels";
                return VGPU_STATUS_NOT_SUPPORTED;
        }
        builtin_args_fill(l, args);
        s = builtin_validate(l->builtin, args, l->n_args, reason);
        if (s != VGPU_STATUS_OK)
                return s;

        /* Bounded slices: at least one item, otherwise as many as fit BACKEND_SLICE_COST. */
        items = l->builtin->work_items(args);
        cost = l->builtin->item_cost(args);
        per_slice = cost == 0 || cost >= BACKEND_SLICE_COST ? 1 : BACKEND_SLICE_COST / cost;
        for (uint64_t begin = 0; begin < items;) {
                uint64_t end = items - begin > per_slice ? begin + per_slice : items;

                if (b->config.should_stop && b->config.should_stop(b->config.userdata)) {
                        *reason = "the executor is shutting down";
                        return VGPU_STATUS_CHANNEL_CLOSED;
                }
                s = builtin_run(l->builtin, args, l->n_args, begin, end, reason);
                if (s != VGPU_STATUS_OK)
                        return s;
                begin = end;
        }
        return VGPU_STATUS_OK;
}

static int cpu_sync(_unused_ Backend *b)
{
        return 0; /* every command ran to completion before its completion was pushed */
}

static const BackendOps cpu_ops = {
        .abi_version = VGPU_BACKEND_ABI_VERSION,
        .name = "cpu",
        .done = cpu_done,
        .mem_alloc = cpu_mem_alloc,
        .mem_free = cpu_mem_free,
        .copy_h2d = cpu_copy_h2d,
        .copy_d2h = cpu_copy_d2h,
        .copy_d2d = cpu_copy_d2d,
        .memset = cpu_memset,
        .module_load = cpu_module_load,
        .get_function = cpu_get_function,
        .launch = cpu_launch,
        .sync = cpu_sync,
};

int backend_cpu_init(const BackendConfig *config, const BackendOps **ret_ops, Backend **ret, const char **reason)
{
        Backend *b = calloc(1, sizeof(*b));

        if (!b) {
                *reason = "out of memory";
                return -ENOMEM;
        }
        b->config = *config;
        *ret_ops = &cpu_ops;
        *ret = b;
        return 0;
}
