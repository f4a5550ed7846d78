/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The format between host services — ingestd → the pool's scheduler → the VM's executor, and back. A guest
 * never sees it. A request travels as the guest's descriptor (copied once and validated by ingestd) plus
 * what the host stamped on it; bulk data never travels here: the executor maps the VM's region itself. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

#define VGPU_HOST_REQUEST_SIZE    128u
#define VGPU_HOST_COMPLETION_SIZE 64u

typedef struct VgpuHostRequest {
        VgpuRequestDesc req; /* as the guest sent it, after vgpu_request_validate() accepted it */
        uint32_t vm_id;      /* from the channel the request came in on, never from the guest */
        uint8_t priority;    /* Priority (names.h): 0 high, 1 medium, 2 low, from the config store */
        uint8_t reserved0[3];
        uint64_t tag;        /* ingestd's: echoed in the completion, routes it back to the channel */
        uint64_t generation; /* the VM's attachment; a reconnect or a pool move starts a new one */
        uint64_t ingest_ns;  /* CLOCK_MONOTONIC when ingestd took the request: queue-wait accounting */
        uint8_t reserved1[32];
} VgpuHostRequest;

typedef struct VgpuHostCompletion {
        VgpuCompletionDesc cpl; /* what the guest will see (its seq, a status, the result) */
        uint32_t vm_id;
        uint32_t reserved0;
        uint64_t tag;
        uint64_t generation;
        uint64_t exec_ns; /* time the executor spent on the command */
} VgpuHostCompletion;

_Static_assert(sizeof(VgpuHostRequest) == VGPU_HOST_REQUEST_SIZE, "host request slot size");
_Static_assert(offsetof(VgpuHostRequest, vm_id) == 64, "stamp follows the guest's descriptor");
_Static_assert(sizeof(VgpuHostCompletion) == VGPU_HOST_COMPLETION_SIZE, "host completion slot size");
_Static_assert(offsetof(VgpuHostCompletion, vm_id) == 32, "routing follows the guest's completion");
