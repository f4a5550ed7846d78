/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-backend-cuda.so: the executor's GPU backend, on the CUDA driver API. One VM per executor process, so
 * the device's primary context is this VM's context and the process's own GPU address space keeps its
 * memory from every other VM's kernels (docs/gpu.md, "What isolates what"). This file: the entry point,
 * choosing the device, the context, sync, and how CUDA errors become the backend contract. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "builtin.h"
#include "cuda-internal.h"

#define ERRORS_LOGGED 16u /* per executor: a guest's faulty kernels must not flood the journal */

const char *cuda_result_text(CUresult r, char *buf, size_t size)
{
        const char *name = NULL, *text = NULL;

        (void)cuGetErrorName(r, &name);
        (void)cuGetErrorString(r, &text);
        snprintf(buf, size, "%s: %s", name ? name : "CUDA error", text ? text : "unknown");
        return buf;
}

int cuda_usable(Backend *b)
{
        return b->failed ? -EIO : 0;
}

/* A sticky error poisons the context: every later call returns it too. One synchronize tells that apart
 * from an error that only concerned the call that reported it. */
static void cuda_check_sticky(Backend *b, CUresult r)
{
        char text[160];

        if (b->failed || cuCtxSynchronize() == CUDA_SUCCESS)
                return;
        b->failed = true;
        snprintf(b->failure, sizeof(b->failure), "the VM's GPU context was lost to a fault (%s)",
                 cuda_result_text(r, text, sizeof(text)));
        cuda_log(b, LOG_ERR, "The GPU context is lost (%s): every later command fails; the executor ends.",
                 text);
}

int cuda_error(Backend *b, CUresult r, const char *what)
{
        char text[160];

        if (r == CUDA_ERROR_OUT_OF_MEMORY)
                return -ENOMEM;
        if (b->errors_logged < ERRORS_LOGGED) {
                b->errors_logged++;
                cuda_log(b, LOG_WARNING, "%s failed: %s%s", what, cuda_result_text(r, text, sizeof(text)),
                         b->errors_logged == ERRORS_LOGGED ? " (further CUDA errors are not logged)" : "");
        }
        cuda_check_sticky(b, r);
        return -EIO;
}

/* NULL or "": the first device; "GPU-…": by UUID; anything else: a PCI bus id. */
static int device_select(Backend *b, const char **reason)
{
        const char *want = b->config.device;
        int count = 0;
        CUresult r;

        if (!want || !*want) {
                r = cuDeviceGet(&b->device, 0);
                if (r != CUDA_SUCCESS) {
                        *reason = "the driver reports no CUDA device";
                        return -ENODEV;
                }
                return 0;
        }
        if (strncmp(want, "GPU-", 4) != 0) {
                if (cuDeviceGetByPCIBusId(&b->device, want) != CUDA_SUCCESS) {
                        *reason = "no CUDA device has the pool's PCI address";
                        return -ENODEV;
                }
                return 0;
        }
        if (cuDeviceGetCount(&count) != CUDA_SUCCESS)
                count = 0;
        for (int i = 0; i < count; i++) {
                char s[48];
                CUuuid u;

                if (cuDeviceGet(&b->device, i) != CUDA_SUCCESS || cuDeviceGetUuid(&u, b->device) != CUDA_SUCCESS)
                        continue;
                snprintf(s, sizeof(s), "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                         (uint8_t)u.bytes[0], (uint8_t)u.bytes[1], (uint8_t)u.bytes[2], (uint8_t)u.bytes[3],
                         (uint8_t)u.bytes[4], (uint8_t)u.bytes[5], (uint8_t)u.bytes[6], (uint8_t)u.bytes[7],
                         (uint8_t)u.bytes[8], (uint8_t)u.bytes[9], (uint8_t)u.bytes[10], (uint8_t)u.bytes[11],
                         (uint8_t)u.bytes[12], (uint8_t)u.bytes[13], (uint8_t)u.bytes[14], (uint8_t)u.bytes[15]);
                if (strcasecmp(s, want) == 0)
                        return 0;
        }
        *reason = "no CUDA device has the pool's UUID";
        return -ENODEV;
}

static int context_open(Backend *b, const char **reason)
{
        int r;

        if (cuInit(0) != CUDA_SUCCESS) {
                *reason = "cuInit() failed: no usable NVIDIA driver or GPU";
                return -ENODEV;
        }
        r = device_select(b, reason);
        if (r < 0)
                return r;
        (void)cuDeviceGetName(b->device_name, sizeof(b->device_name), b->device);
        if (cuDevicePrimaryCtxRetain(&b->context, b->device) != CUDA_SUCCESS) {
                *reason = "cannot create a context on the GPU";
                return -EIO;
        }
        b->context_retained = true;
        if (cuCtxSetCurrent(b->context) != CUDA_SUCCESS) {
                *reason = "cannot make the GPU context current";
                return -EIO;
        }
        return 0;
}

static void cuda_done(Backend *b)
{
        if (!b)
                return;
        if (b->context_retained) {
                cuda_lanes_done(b);
                cuda_data_area_done(b);
                cuda_builtins_unload(b);
                /* The last reference: the context goes, and with it anything a fault left allocated. */
                (void)cuDevicePrimaryCtxRelease(b->device);
        }
        free(b);
}

static int cuda_sync(Backend *b)
{
        CUresult r;

        if (cuda_usable(b) < 0)
                return -EIO;
        r = cuCtxSynchronize();
        return r == CUDA_SUCCESS ? 0 : cuda_error(b, r, "cuCtxSynchronize");
}

static bool cuda_failed(Backend *b)
{
        return b->failed;
}

static const BackendOps cuda_ops = {
        .abi_version = VGPU_BACKEND_ABI_VERSION,
        .name = "cuda",
        .done = cuda_done,
        .mem_alloc = cuda_mem_alloc,
        .mem_free = cuda_mem_free,
        .copy_h2d = cuda_copy_h2d,
        .copy_d2h = cuda_copy_d2h,
        .copy_d2d = cuda_copy_d2d,
        .memset = cuda_memset,
        .module_load = cuda_module_load,
        .get_function = cuda_get_function,
        .launch = cuda_launch,
        .sync = cuda_sync,
        .failed = cuda_failed,
};

/* The one symbol the plugin exports (VGPU_BACKEND_CUDA_SYMBOL). */
__attribute__((visibility("default"))) int vgpu_backend_cuda_init(const BackendConfig *config,
                                                                  const BackendOps **ret_ops, Backend **ret,
                                                                  const char **reason);

__attribute__((visibility("default"))) int vgpu_backend_cuda_init(const BackendConfig *config, const BackendOps **ret_ops, Backend **ret,
                           const char **reason)
{
        Backend *b;
        int r;

        /* Checked before anything else in config is read: another version may lay it out differently. */
        if (!config || config->abi_version != VGPU_BACKEND_ABI_VERSION) {
                *reason = "the plugin was built for another backend ABI version";
                return -EPROTO;
        }
        b = calloc(1, sizeof(*b));
        if (!b) {
                *reason = "out of memory";
                return -ENOMEM;
        }
        b->config = *config;
        r = context_open(b, reason);
        if (r >= 0)
                r = cuda_builtins_load(b, reason);
        if (r >= 0)
                r = cuda_data_area_setup(b);
        if (r >= 0)
                cuda_lanes_setup(b);
        if (r < 0) {
                if (!*reason)
                        *reason = "the GPU could not be set up";
                cuda_done(b);
                return r;
        }
        cuda_log(b, LOG_INFO, "CUDA backend on %s (device %d%s%s).", b->device_name, (int)b->device,
                 config->device && *config->device ? ", " : "", config->device ? config->device : "");
        *ret_ops = &cuda_ops;
        *ret = b;
        return 0;
}
