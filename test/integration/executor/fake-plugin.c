/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A stand-in for vgpu-backend-cuda.so on a host without a driver: it loads, and its init fails with a
 * reason, as the real plugin's does when cuInit() finds no driver. */
#include <errno.h>
#include <stddef.h>

int vgpu_backend_cuda_init(const void *config, const void **ret_ops, void **ret, const char **reason);

int vgpu_backend_cuda_init(const void *config, const void **ret_ops, void **ret, const char **reason)
{
        (void)config, (void)ret_ops, (void)ret;
        *reason = "no NVIDIA driver (test plugin)";
        return -ENODEV;
}
