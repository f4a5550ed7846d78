/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-schedd's context: one pool, its settings from the config store, its run queue, its attached VMs and
 * their executors, the pool link to vgpu-ingestd, the bus, the counters. Shared by every file here. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "executors.h"
#include "names.h"
#include "proto/pool-link.h"
#include "queue.h"
#include "stats.h"

#define SCHED_SERVICE_PREFIX "org.vgpu.Scheduler."
#define SCHED_PATH           "/org/vgpu/Scheduler1"
#define SCHED_INTERFACE      "org.vgpu.Scheduler1"
#define SCHED_STOP_TIMEOUT_USEC (2 * 1000000ULL) /* SIGTERM → SIGKILL for an ending executor */

/* Executor restarts (docs/scheduler.md, "Executor restarts"): at most `limit` in any `window`. */
#define SCHED_RESTART_LIMIT_DEFAULT      5u
#define SCHED_RESTART_LIMIT_MAX          64u
#define SCHED_RESTART_WINDOW_SEC_DEFAULT 60u
#define SCHED_RESTART_WINDOW_SEC_MAX     86400u

/* GPU execution under MPS (docs/scheduler.md, "GPU execution"). */
#define SCHED_GPU_SMS_DEFAULT         132u /* an H100 SXM */
#define SCHED_GPU_SMS_MAX             1024u
#define SCHED_SM_HEADROOM_DEFAULT     32u  /* measured: with lower limits summing to 100 of 132, high ≈ alone */
#define SCHED_SM_LIMIT_MEDIUM_DEFAULT 48u
#define SCHED_SM_LIMIT_LOW_DEFAULT    32u

typedef struct Sched Sched;

typedef enum VmState {
        VM_RUNNING,   /* executor ready: commands are queued and dispatched */
        VM_DETACHING, /* DETACH received: executor asked to stop; DETACHED follows its exit */
        VM_DEAD,      /* executor died: the VM's next command starts a fresh one */
        VM_SUSPENDED, /* executor died past the restart limit: commands complete UNAVAILABLE for a while */
        _VM_STATE_MAX,
} VmState;

/* A dispatched command, kept until its completion: executors complete in order, so a FIFO. */
typedef struct InFlight {
        uint64_t tag, seq;
        uint16_t opcode;
        uint8_t priority;
        uint64_t wait_ns; /* ingest → dispatch */
        unsigned sm;      /* SMs charged to it (gpu-exec.c): released on completion */
} InFlight;

typedef struct Vm {
        Sched *sched;
        uint32_t vm_id;
        uint64_t generation;
        uint64_t memory_quota;
        VmState state;
        uint32_t detach_status;
        VgpuRegionRef region; /* kept for restarts: each executor maps the VM's data area itself */
        Executor *executor;
        pid_t pid;
        sd_event_source *child_source, *notify_source, *kill_timer;
        InFlight in_flight[QUEUE_MAX_IN_FLIGHT_MAX];
        unsigned in_flight_head, n_in_flight;
        /* usage, for ListVms / GetStats */
        uint8_t last_priority;
        uint64_t commands, errors, exec_ns;
        uint64_t deaths, restarts;
        uint64_t restart_ns[SCHED_RESTART_LIMIT_MAX]; /* the last restarts (CLOCK_MONOTONIC), a ring */
        struct Vm *next;
} Vm;

typedef struct PoolLink {
        int listen_fd, conn_fd;
        sd_event_source *listen_source, *conn_source, *wait_source;
        int wait_fd;   /* ingestd kicks us */
        int notify_fd; /* we kick ingestd */
        void *region;
        size_t region_size;
        bool up;     /* handshake done: the rings are attached */
        bool broken; /* a violation seen mid-pump: disconnect at the next safe point */
        VgpuHostRequestConsumer req;
        VgpuHostCompletionProducer cpl;
        VgpuHostCompletion *outbox; /* completions waiting for space on the ring */
        size_t n_outbox, allocated_outbox;
} PoolLink;

struct Sched {
        const char *pool;
        PoolMode mode;                           /* from the config store; isolated until it says otherwise */
        char gpu_resource[GPU_RESOURCE_MAX + 1]; /* likewise; "" when unknown or unassigned */
        const char *executor_path;
        bool allow_guest_modules;                /* --allow-guest-modules-in-shared */
        unsigned restart_limit;
        uint64_t restart_window_ns;
        uint64_t spin_usec;
        char wait_policy[32];
        sd_event *event;
        sd_bus *bus;
        char socket_path[108];
        Queue *queue;
        Vm *vms;
        unsigned n_vms;
        PoolLink link;
        SchedStats stats;
        bool stopping;

        /* GPU execution (gpu-exec.c), from the GPU resource, the mode and the options. */
        const char *mps_pipe_dir_arg;          /* --mps-pipe-dir, or NULL */
        char mps_pipe_dir[256];                /* in use: the MPS daemon of the pool's GPU */
        char device[GPU_RESOURCE_MAX + 1];     /* --device= for executors; "" the first GPU */
        char mig[GPU_RESOURCE_MAX + 8];        /* "MIG-…": CUDA_VISIBLE_DEVICES for executors; "" none */
        unsigned sm_share_percent;             /* 0: the whole GPU */
        bool mps;                              /* shared, and the MPS daemon is there: executors are clients */
        bool mps_warned;
        unsigned sm_count, sm_headroom;        /* --gpu-sms, --sm-headroom */
        unsigned sm_limit_arg[_PRIORITY_MAX];  /* --sm-limit-high/-medium/-low */
        unsigned sm_budget, sm_lower_cap;      /* the pool's SMs; what lower priorities may hold together */
        unsigned sm_limit[_PRIORITY_MAX];      /* per launch, in force (0: none) */
        unsigned sm_in_use, sm_lower_in_use;   /* charged by in-flight launches */
};

uint64_t now_ns(void);

/* pool-link.c */
int pool_link_listen(Sched *s);
void pool_link_close(Sched *s);
/* Drops the connection: every VM detached, every queued command gone; then accepts a new one. */
void pool_link_disconnect(Sched *s, const char *why);
int pool_link_send_event(Sched *s, VgpuPoolEventKind kind, uint32_t vm_id, uint64_t generation, int error,
                         const char *backend);
/* Queues a completion for ingestd (on the ring, or in the outbox while it is full). */
void pool_link_complete(Sched *s, const VgpuHostCompletion *c);
/* Takes every request on the ring into sched_ingest(); returns how many. */
int pool_link_receive(Sched *s);
/* Moves the outbox onto the ring and publishes, notifying ingestd when it asked for it. */
int pool_link_flush(Sched *s);
bool pool_link_has_work(const Sched *s);
int pool_link_prepare_wait(Sched *s);

/* vms.c: attached VMs and their executors' lives */
Vm *vm_find(Sched *s, uint32_t vm_id);
/* Takes the region reference over (*region is left empty) when the VM is attached. */
void vm_attach(Sched *s, const VgpuPoolAttach *a, VgpuRegionRef *region);
void vm_detach(Sched *s, const VgpuPoolDetach *d);
/* A command for a VM whose executor died: starts a fresh one if the restart limit allows. 0 when the VM is
 * running again; else the status to complete the command with (UNAVAILABLE, DEVICE_ERROR). */
uint32_t vm_revive(Vm *vm);
void vm_kill(Vm *vm, int sig);
void vm_drop_all(Sched *s);
/* Ends every executor (SIGTERM, then SIGKILL after SCHED_STOP_TIMEOUT_USEC) and reaps it. */
void sched_stop_executors(Sched *s);
const char *vm_state_to_string(VmState state);

/* dispatch.c: the data path */
void sched_ingest(Sched *s, const VgpuHostRequest *r);
/* Answers a command that never reached (or never came back from) an executor. */
void complete_unexecuted(Sched *s, uint32_t vm_id, uint64_t generation, uint64_t tag, uint64_t seq,
                         uint16_t opcode, uint8_t priority, uint32_t status);
/* Completes the VM's queued commands (not those dispatched) with `status`; returns how many. */
unsigned vm_fail_queued(Vm *vm, uint32_t status);
/* Completes every command of the VM, dispatched or queued, with `status`; returns how many. */
unsigned vm_fail_all(Vm *vm, uint32_t status);
/* Takes the executor's completions, in order, matched against what was sent; returns how many. */
int vm_collect(Vm *vm);
/* Completions from every executor, then dispatch: returns the work done. */
int sched_pump(Sched *s);
bool sched_has_work(const Sched *s);
int sched_prepare_wait(Sched *s);

/* pool-config.c: the pool's record in vgpu-configd (mode, GPU resource), read at start and followed */
int pool_config_start(Sched *s);

/* gpu-exec.c: the pool's GPU, MPS or time-sliced, SM limits and the rule on their sum */
void gpu_exec_update(Sched *s);
const char *gpu_execution_to_string(const Sched *s); /* "mps" or "time-sliced" */
void gpu_exec_executor_config(Sched *s, ExecutorConfig *c);
/* The levels (bits 1 << priority) whose next launch fits the SM rule now. */
unsigned gpu_exec_levels_allowed(const Sched *s);
/* Charges a dispatched command's SMs (launches under MPS only); returns what to release. */
unsigned gpu_exec_charge(Sched *s, uint8_t priority, uint16_t opcode);
void gpu_exec_release(Sched *s, uint8_t priority, unsigned sm);

/* sched-bus.c */
extern const sd_bus_vtable sched_vtable[];
