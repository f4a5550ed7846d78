/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The backend interface of vgpu-executor: the CPU backend (backend-cpu.c, built in) and the CUDA plugin
 * (vgpu-backend-cuda.so, loaded by plugin.c) both fill this table. The executor core has already checked
 * every handle, every range against the allocation's real size and the data area, the quota, and the
 * launch parameters against the kernel's signature, so a backend receives only ranges that fit. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "builtin.h"
#include "proto/protocol.h"

/* Bumped whenever this header changes in a way a plugin built against an older one would misread. */
#define VGPU_BACKEND_ABI_VERSION 3
#define VGPU_BACKEND_CUDA_FILE   "vgpu-backend-cuda.so"
#define VGPU_BACKEND_CUDA_SYMBOL "vgpu_backend_cuda_init"

/* Work in one slice of a built-in launch: about a millisecond of multiply-adds on one core (docs/executor.md,
 * "Slicing"). A single work item is never split, so a slice is at least one item (at most 2^32, which
 * builtin_validate() enforces). */
#define BACKEND_SLICE_COST (UINT64_C(1) << 24)

typedef struct Backend Backend; /* each backend's own state */

typedef struct BackendConfig BackendConfig;

/* A backend's log line about this VM (the executor adds VM_ID= and POOL=); level is syslog's. */
typedef void (*BackendLogFunc)(const BackendConfig *config, int level, const char *format, ...)
        __attribute__((format(printf, 3, 4)));

struct BackendConfig {
        /* The executor's VGPU_BACKEND_ABI_VERSION, first so that a plugin built against another version can
         * refuse before it reads anything else. */
        uint32_t abi_version;
        uint32_t vm_id;
        const char *pool;
        /* Asked between slices of a launch: true when the executor is shutting down (SIGTERM, the
         * scheduler hung up), so a long launch is abandoned within one slice. */
        bool (*should_stop)(void *userdata);
        void *userdata;
        /* The VM's data area, mapped for the whole life of the backend (it is unmapped only after done()).
         * The host side of every copy lies inside it, so a backend may register it once for DMA. */
        void *data;
        uint64_t data_size;
        /* The pool's GPU: NULL or "" for the first device, else a PCI bus id ("0000:41:00.0") or a UUID
         * ("GPU-…"). The CPU backend ignores it. */
        const char *device;
        /* SMs a launch of each priority (index: 0 high, 1 medium, 2 low) may use; 0: no limit. Only in a
         * shared pool under MPS (the scheduler passes none otherwise); the CPU backend ignores them. */
        uint32_t sm_limit[3];
        BackendLogFunc log;
};

/* One launch parameter after the core resolved it. */
typedef struct BackendArg {
        VgpuParamKind kind;
        uint32_t size;       /* VALUE: 1, 2, 4, 8; BUFFER: 8; BYTES: the struct's size */
        uint64_t value;      /* VALUE: the bits */
        void *memory;        /* BUFFER: the backend's allocation object (from mem_alloc) */
        uint64_t offset;     /* BUFFER: byte offset into it, <= its size */
        uint64_t extent;     /* BUFFER: bytes from offset to the end of the allocation */
        const void *bytes;   /* BYTES: a private copy, valid during the call */
} BackendArg;

typedef struct BackendLaunch {
        const BuiltinKernel *builtin; /* a vgpu.builtin kernel (args match its signature), or NULL */
        void *function;               /* otherwise the backend's object from get_function() */
        uint32_t grid[3], block[3], shared_mem;
        const BackendArg *args;
        size_t n_args;
        uint8_t priority; /* as the scheduler stamped the command: picks the SM limit (sm_limit[]) */
} BackendLaunch;

/* Functions returning int return 0 or a negative errno (-ENOMEM: the device is full → OUT_OF_MEMORY; any
 * other → DEVICE_ERROR). Those returning VgpuStatus set *reason to a sentence when not OK: a static one, or
 * text in the backend's own memory that stays valid until its next call (module_load: the JIT log). */
typedef struct BackendOps {
        uint32_t abi_version; /* VGPU_BACKEND_ABI_VERSION */
        const char *name;     /* "cpu", "cuda": for logs and the ready message */
        void (*done)(Backend *b);
        /* size bytes, all zero. */
        int (*mem_alloc)(Backend *b, uint64_t size, void **ret);
        /* Zeroes all size bytes, then releases them: nothing a VM wrote survives into a later allocation. */
        void (*mem_free)(Backend *b, void *memory, uint64_t size);
        int (*copy_h2d)(Backend *b, void *dst, uint64_t dst_offset, const void *src, uint64_t length);
        int (*copy_d2h)(Backend *b, void *dst, const void *src, uint64_t src_offset, uint64_t length);
        /* The two ranges may overlap (memmove semantics). */
        int (*copy_d2d)(Backend *b, void *dst, uint64_t dst_offset, const void *src, uint64_t src_offset,
                        uint64_t length);
        /* offset and length are multiples of element_size (1, 2, 4); value's low bytes are the pattern. */
        int (*memset)(Backend *b, void *memory, uint64_t offset, uint64_t length, uint32_t value,
                      uint8_t element_size);
        /* A guest's own module (never vgpu.builtin, which the core serves): image is a private copy. */
        VgpuStatus (*module_load)(Backend *b, VgpuModuleFormat format, const void *image, uint64_t length,
                                  void **ret, const char **reason);
        /* name: length bytes, no NUL. */
        VgpuStatus (*get_function)(Backend *b, void *module, const char *name, size_t length, void **ret,
                                   const char **reason);
        /* Runs the launch to completion or refuses it; built-ins in slices of BACKEND_SLICE_COST. */
        VgpuStatus (*launch)(Backend *b, const BackendLaunch *l, const char **reason);
        /* Returns when every earlier command has finished. */
        int (*sync)(Backend *b);
        /* True once the device context can no longer be used (a sticky fault such as an illegal address):
         * the executor completes the current command, then ends, and the scheduler starts a fresh one.
         * NULL: never. */
        bool (*failed)(Backend *b);
} BackendOps;

/* The entry point every backend exports: the CPU backend as backend_cpu_init(), the plugin as
 * vgpu_backend_cuda_init(). Fails (negative errno, *reason set) when its device is unusable — no driver,
 * no GPU — so the executor can fall back or refuse. */
typedef int (*BackendInitFunc)(const BackendConfig *config, const BackendOps **ret_ops, Backend **ret,
                               const char **reason);

int backend_cpu_init(const BackendConfig *config, const BackendOps **ret_ops, Backend **ret, const char **reason);

typedef enum BackendChoice {
        BACKEND_AUTO,
        BACKEND_CPU,
        BACKEND_CUDA,
        _BACKEND_CHOICE_MAX,
        _BACKEND_CHOICE_INVALID = -1,
} BackendChoice;

BackendChoice backend_choice_from_string(const char *s);

/* The plugin's path: $VGPU_BACKEND_PATH when set, else VGPU_BACKEND_DIR/vgpu-backend-cuda.so. */
const char *backend_plugin_path(void);

/* plugin.c: opens the backend the choice names. auto: the CUDA plugin when it loads and initializes,
 * else the CPU backend, logging one line that says which and why; cuda: the plugin or an error; cpu: the
 * CPU backend. *ret_handle is the dlopen() handle to close after done() (NULL for the CPU backend). */
int backend_open(BackendChoice choice, const BackendConfig *config, const BackendOps **ret_ops, Backend **ret,
                 void **ret_handle);
void backend_close(const BackendOps *ops, Backend *b, void *handle);
