/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A stand-in for vgpu-ingestd toward a real vgpu-schedd: the pool link (a memfd it formats, two eventfds,
 * the start handshake), ATTACH/DETACH with the VM's region, requests in, completions and events out. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/link.h"
#include "proto/pool-link.h"

#define INGEST_RING_COUNT 1024u
#define INGEST_WAIT_MS    20000

typedef struct Ingest {
        int sock;
        int link_fd, kick, notify; /* kick: the scheduler waits on it; notify: it writes */
        void *link;
        size_t link_size;
        VgpuHostRequestProducer req;
        VgpuHostCompletionConsumer cpl;
        uint64_t next_tag;
} Ingest;

/* A VM as a guest makes it: a sealed memfd with a formatted channel. */
typedef struct GuestVm {
        uint32_t vm_id;
        uint64_t generation;
        int region_fd;
        uint64_t buffer; /* a memory handle, for MEMSET work */
} GuestVm;

int ingest_connect(Ingest *in, const char *socket_path);
void ingest_close(Ingest *in);
int guest_vm_create(GuestVm *vm, uint32_t vm_id, uint64_t generation);
void guest_vm_destroy(GuestVm *vm);

int ingest_attach(Ingest *in, const GuestVm *vm, uint64_t quota, VgpuPoolEvent *ret);
int ingest_send_detach(Ingest *in, const GuestVm *vm, uint32_t status);
/* Waits up to timeout_ms for the next control event. */
int ingest_event(Ingest *in, int timeout_ms, VgpuPoolEvent *ret);

/* Writes one request (not yet visible); returns its tag. */
uint64_t ingest_submit(Ingest *in, const GuestVm *vm, uint8_t priority, const VgpuRequestDesc *d);
void ingest_publish(Ingest *in);
/* Waits for the next completion (0), or -ETIMEDOUT. */
int ingest_next(Ingest *in, int timeout_ms, VgpuHostCompletion *ret);
/* One request, waited for. */
int ingest_call(Ingest *in, const GuestVm *vm, uint8_t priority, const VgpuRequestDesc *d, VgpuHostCompletion *ret);
