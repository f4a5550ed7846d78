/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The command core of vgpu-executor: one VM's handle table, quota and data area, and the semantics of
 * every opcode in front of a backend. Knows nothing of sockets or rings (main.c feeds it), so a test can
 * drive it directly. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "handles.h"
#include "proto/host-link.h"

#define EXECUTOR_REFUSALS_LOGGED 32u /* per VM: after that, refusals are counted, not logged */

typedef struct Executor {
        uint32_t vm_id;
        const char *pool;
        uint64_t quota;    /* bytes; 0: none */
        uint64_t mem_used; /* bytes allocated now */
        HandleTable *handles;
        const BackendOps *ops;
        Backend *backend;
        uint8_t *data; /* the VM's data area (shared with the guest: copy before looking, bounds-check always) */
        uint64_t data_size;
        uint64_t builtin_module;                         /* the handle of vgpu.builtin once loaded, else 0 */
        uint64_t *builtin_functions;                     /* per builtin_get() index: its handle, else 0 */
        uint64_t requests, errors, queue_wait_ns, exec_ns; /* for STATS */
        uint8_t priority;                                /* as the scheduler last stamped it */
        bool backend_failed;                             /* the backend's context is gone: end after this command */
        bool builtin_only;                               /* a shared pool: guests' own modules are refused */
        unsigned refusals_logged;
} Executor;

/* data/data_size: the VM's data area from the checked channel geometry. */
int executor_init(Executor *e, uint32_t vm_id, const char *pool, uint64_t quota, const BackendOps *ops,
                  Backend *backend, uint8_t *data, uint64_t data_size);
/* Frees (and so zeroes) every allocation, then the table. */
void executor_done(Executor *e);

/* Executes one request from the link and fills its completion (tag, generation, vm_id echoed; exec_ns
 * measured). Never fails: every problem is a status in the completion. */
void executor_execute(Executor *e, const VgpuHostRequest *hr, VgpuHostCompletion *ret);

/* The reason a MODULE_LOAD of a guest's own module gets in a shared pool (docs/gpu.md, "Faults under MPS"):
 * written back over the image like any refusal's reason, so the guest reads it in vgpu_last_error(). */
#define EXECUTOR_SHARED_POOL_REFUSAL                                                                       \
        "the pool is shared (MPS): one VM's faulting kernel would abort its neighbours' work, so only "    \
        "vgpu.builtin runs here; use an isolated pool for your own modules"

/* Which built-in the PTX text names, if it is the reserved module name (docs/executor.md). */
bool executor_image_is_builtin(const uint8_t *image, uint64_t length);
#define EXECUTOR_BUILTIN_MODULE "vgpu.builtin"
