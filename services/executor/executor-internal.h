/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What executor.c and executor-launch.c share: the objects behind each kind of handle and the checks
 * every command uses. */
#pragma once

#include "executor.h"
#include "proto/proto-validate.h"

/* HANDLE_MEMORY: the size is the executor's own record, the one every range is checked against. */
typedef struct ExecMemory {
        void *object; /* the backend's */
        uint64_t size;
} ExecMemory;

/* HANDLE_MODULE */
typedef struct ExecModule {
        void *object; /* the backend's; NULL for vgpu.builtin */
        bool builtin;
} ExecModule;

/* HANDLE_FUNCTION */
typedef struct ExecFunction {
        const BuiltinKernel *builtin; /* a vgpu.builtin kernel, or NULL */
        void *object;                 /* otherwise the backend's */
} ExecFunction;

VgpuStatus executor_refuse(Executor *e, VgpuOpcode op, VgpuStatus s, const char *reason);
/* The data area's [offset, offset + length), or NULL when it does not fit (overflow-safe). */
uint8_t *executor_data_range(const Executor *e, uint64_t offset, uint64_t length);
VgpuStatus executor_memory_range(Executor *e, VgpuOpcode op, uint64_t handle, uint64_t offset, uint64_t length,
                                 ExecMemory **ret);

VgpuStatus executor_module_load(Executor *e, const VgpuRequest *q, uint64_t *ret);
VgpuStatus executor_get_function(Executor *e, const VgpuRequest *q, uint64_t *ret);
VgpuStatus executor_launch(Executor *e, const VgpuRequest *q);
