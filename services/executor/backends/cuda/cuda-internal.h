/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the CUDA plugin's files share: the backend's state (one VM's context on one device, the built-in
 * kernels, the data area's DMA path) and the error mapping every CUDA call goes through. */
#pragma once

#include <cuda.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend.h"

/* One slice of a built-in launch on the GPU: 2^28 multiply-adds (16 of the CPU backend's slices), a fraction
 * of a millisecond for these kernels on an H100 (docs/gpu.md). */
#define CUDA_SLICE_COST (BACKEND_SLICE_COST << 4)

/* The staged copy path: two pinned host buffers, so one fills while the other is on its way. */
#define CUDA_STAGING_BUFFERS 2
#define CUDA_STAGING_SIZE    (UINT64_C(8) << 20)

#define CUDA_LOG_MAX 8192 /* the JIT's error log, and any other reason text */

/* A guest module's kernel, with its parameter layout read from the driver once, so a launch can be held to
 * exactly the parameters the kernel takes (the driver itself would read past a short array). */
typedef struct CudaFunction {
        struct CudaFunction *next; /* all of them, freed with the backend */
        CUfunction function;
        uint32_t n_params;
        uint32_t param_size[]; /* n_params entries */
} CudaFunction;

struct Backend {
        BackendConfig config;
        CUdevice device;
        CUcontext context; /* the device's primary context, retained: one per executor process */
        bool context_retained;
        char device_name[128];

        CUmodule builtins;
        CUfunction *builtin_functions; /* per builtin_get() index */
        CudaFunction *functions;       /* guest kernels looked up so far */

        /* The data area: registered with the driver (DMA straight from it), or else staged. */
        uint8_t *data;
        uint64_t data_size;
        void *registered; /* the page-aligned start passed to cuMemHostRegister, NULL when not */
        void *staging[CUDA_STAGING_BUFFERS];
        CUevent staging_free[CUDA_STAGING_BUFFERS];

        /* A sticky fault: the context cannot be used again (BackendOps.failed). */
        bool failed;
        char failure[256];
        unsigned errors_logged;

        char log[CUDA_LOG_MAX]; /* reasons handed to the core: valid until the next call */
};

#define cuda_log(b, level, ...) (b)->config.log(&(b)->config, (level), __VA_ARGS__)

/* Maps a failed call to the backend contract: -ENOMEM for CUDA_ERROR_OUT_OF_MEMORY, else -EIO, logging what
 * failed (the first few) and noticing a sticky fault (after which every call fails). */
int cuda_error(Backend *b, CUresult r, const char *what);
/* "CUDA_ERROR_ILLEGAL_ADDRESS: an illegal memory access was encountered" into buf. */
const char *cuda_result_text(CUresult r, char *buf, size_t size);
/* -EIO with a reason when the context was lost earlier, else 0. */
int cuda_usable(Backend *b);

/* cuda-memory.c */
int cuda_data_area_setup(Backend *b);
void cuda_data_area_done(Backend *b);
int cuda_mem_alloc(Backend *b, uint64_t size, void **ret);
void cuda_mem_free(Backend *b, void *memory, uint64_t size);
int cuda_copy_h2d(Backend *b, void *dst, uint64_t dst_offset, const void *src, uint64_t length);
int cuda_copy_d2h(Backend *b, void *dst, const void *src, uint64_t src_offset, uint64_t length);
int cuda_copy_d2d(Backend *b, void *dst, uint64_t dst_offset, const void *src, uint64_t src_offset, uint64_t length);
int cuda_memset(Backend *b, void *memory, uint64_t offset, uint64_t length, uint32_t value, uint8_t element_size);

static inline CUdeviceptr cuda_ptr(const void *memory)
{
        return (CUdeviceptr)(uintptr_t)memory;
}

/* cuda-launch.c */
int cuda_builtins_load(Backend *b, const char **reason);
void cuda_builtins_unload(Backend *b);
VgpuStatus cuda_module_load(Backend *b, VgpuModuleFormat format, const void *image, uint64_t length, void **ret,
                            const char **reason);
VgpuStatus cuda_get_function(Backend *b, void *module, const char *name, size_t length, void **ret,
                             const char **reason);
VgpuStatus cuda_launch(Backend *b, const BackendLaunch *l, const char **reason);

/* The embedded fatbin of builtin-kernels.cu (generated at build time). */
extern const unsigned char vgpu_cuda_builtins_fatbin[];
extern const unsigned long vgpu_cuda_builtins_fatbin_size;
