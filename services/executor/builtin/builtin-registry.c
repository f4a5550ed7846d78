/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The vgpu.builtin registry: finds a kernel by its wire name, and is the one gate every launch passes
 * (argument count and kinds, alignment, the kernel's own checks, the slice's range) before it runs. */
#include <string.h>

#include "builtin-internal.h"

static const BuiltinKernel *const kernels[] = {
        &builtin_gemm, &builtin_add,      &builtin_mul,    &builtin_relu,      &builtin_bias_add,
        &builtin_softmax, &builtin_sum_rows, &builtin_conv2d, &builtin_maxpool2d,
};

size_t builtin_count(void)
{
        return sizeof(kernels) / sizeof(kernels[0]);
}

const BuiltinKernel *builtin_get(size_t i)
{
        return i < builtin_count() ? kernels[i] : NULL;
}

const BuiltinKernel *builtin_find(const char *name, size_t length)
{
        if (!name)
                return NULL;
        for (size_t i = 0; i < builtin_count(); i++)
                if (strlen(kernels[i]->name) == length && memcmp(kernels[i]->name, name, length) == 0)
                        return kernels[i];
        return NULL;
}

VgpuStatus builtin_validate(const BuiltinKernel *k, const BuiltinArg *args, size_t n_args, const char **reason)
{
        const char *unused;

        if (!reason)
                reason = &unused;
        if (!k || !args)
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "no kernel or no arguments");
        if (n_args != strlen(k->signature))
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "wrong number of parameters");
        for (size_t i = 0; i < n_args; i++) {
                if (k->signature[i] != 'b')
                        continue;
                /* A NULL buffer is refused even where a kernel would ignore it: the host resolves every
                 * handle, so NULL means a bug on our side, not a guest's choice. Misaligned floats fault
                 * on a GPU and are undefined in C, so they are refused on every backend alike. */
                if (!args[i].data)
                        return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "a buffer parameter is unresolved");
                if ((uintptr_t) args[i].data % sizeof(float) != 0)
                        return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "a buffer is not 4-byte aligned");
        }
        *reason = NULL;
        return k->validate(args, reason);
}

VgpuStatus builtin_run(const BuiltinKernel *k, const BuiltinArg *args, size_t n_args, uint64_t begin,
                       uint64_t end, const char **reason)
{
        const char *unused;
        VgpuStatus r;

        if (!reason)
                reason = &unused;
        r = builtin_validate(k, args, n_args, reason);
        if (r != VGPU_STATUS_OK)
                return r;
        if (begin > end || end > k->work_items(args))
                return refuse(reason, VGPU_STATUS_OUT_OF_BOUNDS, "slice past the launch's work items");
        if (begin < end)
                k->run(args, begin, end);
        return VGPU_STATUS_OK;
}
