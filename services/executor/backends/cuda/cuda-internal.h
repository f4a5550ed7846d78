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

/* Lanes: under MPS with SM limits (a shared pool), a launch of priority p runs in a context of its own created
 * with an SM-count execution affinity of config.sm_limit[p]; memory, copies and everything else stay in the
 * primary context, whose allocations every context of the process reaches (one address space). A context's
 * limit is fixed when it is made, so one context per priority, made on that priority's first launch: a VM's
 * new priority applies at its next launch with no restart (docs/gpu.md, "Shared pools"). */
#define CUDA_LANES 3 /* high, medium, low: the wire's priority values */

typedef struct CudaLane {
        CUcontext context; /* NULL until the priority's first launch */
        CUmodule builtins;
        CUfunction *builtin_functions; /* per builtin_get() index, in this context */
        unsigned sm_count;             /* as granted (cuCtxGetExecAffinity) */
} CudaLane;

/* A guest module: loaded in the primary context; with lanes in use, its image is kept so that a lane can
 * load it too on the first launch there (modules belong to a context). */
typedef struct CudaModule {
        struct CudaModule *next; /* all of them, freed with the backend */
        CUmodule module;
        CUmodule lane[CUDA_LANES];
        uint64_t length; /* of image; 0 when not kept */
        unsigned char *image;
} CudaModule;

/* A guest module's kernel, with its parameter layout read from the driver once, so a launch can be held to
 * exactly the parameters the kernel takes (the driver itself would read past a short array). */
typedef struct CudaFunction {
        struct CudaFunction *next; /* all of them, freed with the backend */
        CUfunction function;
        CudaModule *module;
        CUfunction lane[CUDA_LANES]; /* looked up on first use in that lane */
        char *name;
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
        CudaModule *modules;           /* guest modules loaded so far */

        /* SM limits per priority (lanes, above): in force only for an MPS client asked for them. */
        bool sm_limits;
        CudaLane lanes[CUDA_LANES];
        int sm_total;
        bool primary_dirty; /* memory work queued in the primary context since its last synchronize */

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

/* cuda-lanes.c */
/* Decides whether SM limits are in force (asked for, and this process is an MPS client) and logs it. */
void cuda_lanes_setup(Backend *b);
/* Makes the context a launch of `priority` runs in current: its lane (returned) or, when no limit applies
 * or the lane cannot be made, the primary context (NULL). */
CudaLane *cuda_lane_enter(Backend *b, uint8_t priority);
/* Makes the primary context current again. */
void cuda_lane_leave(Backend *b, CudaLane *lane);
/* The guest kernel f in the lane's context (loading its module there on first use), or NULL with *reason. */
CUfunction cuda_lane_function(Backend *b, CudaLane *lane, CudaFunction *f, const char **reason);
void cuda_lanes_done(Backend *b);

/* cuda-launch.c */
int cuda_builtins_load(Backend *b, const char **reason);
/* The embedded built-ins into the current context. */
int cuda_builtins_load_into(Backend *b, CUmodule *module, CUfunction **functions, const char **reason);
void cuda_builtins_unload(Backend *b);
VgpuStatus cuda_module_load(Backend *b, VgpuModuleFormat format, const void *image, uint64_t length, void **ret,
                            const char **reason);
VgpuStatus cuda_get_function(Backend *b, void *module, const char *name, size_t length, void **ret,
                             const char **reason);
VgpuStatus cuda_launch(Backend *b, const BackendLaunch *l, const char **reason);

/* The embedded fatbin of builtin-kernels.cu (generated at build time). */
extern const unsigned char vgpu_cuda_builtins_fatbin[];
extern const unsigned long vgpu_cuda_builtins_fatbin_size;
