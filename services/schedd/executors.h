/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One VM's executor process: start it (fork + exec on a socketpair), hand it its host link, eventfds and the
 * VM's region (docs/executor.md, "Start-up handshake"), feed it requests, take its completions, end it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "names.h"
#include "proto/link.h"
#include "transport/transport.h"

#define EXECUTOR_RING_COUNT       64u   /* request and completion slots: ≥ QUEUE_MAX_IN_FLIGHT_MAX */
#define EXECUTOR_READY_TIMEOUT_MS 5000

typedef struct Executor {
        pid_t pid;
        int control_fd; /* our end of its control socket */
        int kick_fd;    /* we write: it waits on it */
        int notify_fd;  /* it writes: we wait on it */
        int link_fd;
        void *link;
        size_t link_size;
        VgpuHostRequestProducer req;
        VgpuHostCompletionConsumer cpl;
        char backend[24];
} Executor;

/* What an executor is started with: its command line (docs/executor.md, "Process model"). */
typedef struct ExecutorConfig {
        const char *path; /* the vgpu-executor binary */
        const char *pool;
        PoolMode pool_mode; /* the pool's mode when the executor starts: --pool-mode */
        uint32_t vm_id;
        uint64_t memory_quota;
        const char *device;       /* --device: the pool's GPU; NULL the first */
        const char *mig;          /* "MIG-…": CUDA_VISIBLE_DEVICES; NULL none */
        const char *mps_pipe_dir; /* CUDA_MPS_PIPE_DIRECTORY: an MPS client; NULL: never one */
        unsigned sm_limit[3];     /* --sm-limits (MPS only); 0: none */
        bool allow_guest_modules; /* --allow-guest-modules (a shared pool only): guests' own modules load */
} ExecutorConfig;

/* Starts the executor for the VM and completes the handshake (waits up to EXECUTOR_READY_TIMEOUT_MS). On
 * success *ret is running and ready. On failure the process (if any) is killed and reaped, and the negative
 * errno is returned (its positive value is what VGPU_POOL_EVENT_ATTACHED reports). */
int executor_start(const ExecutorConfig *config, const VgpuRegionRef *region, Executor **ret);
/* Closes every fd and unmaps the link; does not signal or reap the process. Takes NULL. */
Executor *executor_free(Executor *e);

/* Writes and publishes one request, kicking the executor when its event index asks for it. -EAGAIN when its
 * ring is full, -EPROTO when the executor broke the ring discipline. */
int executor_submit(Executor *e, const VgpuHostRequest *r);
/* Next completion: 0, -EAGAIN when none, -EPROTO on a ring violation. */
int executor_pop(Executor *e, VgpuHostCompletion *ret);
/* Hands popped completion slots back (kicking when asked). */
int executor_release(Executor *e);
bool executor_has_work(const Executor *e);
/* The final check before sleeping: > 0 when a completion arrived meanwhile. */
int executor_prepare_wait(Executor *e);
/* Reads the notify eventfd after it fired. */
void executor_ack(Executor *e);
