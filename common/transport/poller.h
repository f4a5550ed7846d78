/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bounded spin-then-block over many rings, served by one thread: few pollers (docs/architecture.md, "The
 * command path, layer by layer").
 * A round spins on every consumer's cheap has_work() for at most the spin budget, then arms each one
 * (prepare_wait: set the event index, full fence, look again) and sleeps in epoll_wait on their endpoints'
 * wait fds, acking those that fired. The budget is fixed at start-up: 0 (pure blocking) where spinners would
 * starve each other (fewer than 4 online CPUs, measured), 50 µs otherwise, VGPU_SPIN_USEC overriding. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "transport.h"

#define VGPU_POLLER_SPIN_USEC_DEFAULT 50
#define VGPU_POLLER_SPIN_USEC_MAX     1000000 /* one second: a budget, not a busy loop */
#define VGPU_POLLER_MIN_CPUS_TO_SPIN  4

/* One ring (or anything ring-like) the poller serves. Called only from the poller's thread. */
typedef struct VgpuPollerConsumer {
        /* A hint, spun on: one relaxed load, no syscall (vgpu_ring_consumer_has_work()). */
        bool (*has_work)(void *userdata);
        /* Before sleeping: arm notifications, full fence, look again (vgpu_ring_consumer_prepare_wait()).
         * > 0 work arrived (the poller does not sleep), 0 may sleep, < 0 error (run_once returns it). */
        int (*prepare_wait)(void *userdata);
        /* Consumes the work has_work() saw. < 0 stops the round and is returned by run_once. */
        int (*dispatch)(void *userdata);
        VgpuEndpoint *endpoint; /* its wait fd is slept on and acked; not owned */
        void *userdata;
} VgpuPollerConsumer;

typedef struct VgpuPollerStats {
        uint64_t rounds;         /* run_once calls */
        uint64_t found_spinning; /* rounds whose work was found by the spin */
        uint64_t found_arming;   /* rounds whose work showed up at the final check: no sleep */
        uint64_t sleeps;         /* epoll_wait calls */
        uint64_t wakeups;        /* wait fds that fired (and were acked) */
        uint64_t dispatches;     /* dispatch() calls */
        uint64_t spin_ns_total;  /* time spent spinning */
        uint64_t spin_ns_max;    /* the longest single spin: stays within the budget plus one scan */
} VgpuPollerStats;

typedef struct VgpuPoller VgpuPoller;

/* The start-up decision: env_value is VGPU_SPIN_USEC's (NULL when unset), online_cpus sysconf's. A set
 * value wins (decimal 0 … VGPU_POLLER_SPIN_USEC_MAX, else -EINVAL); otherwise 0 below
 * VGPU_POLLER_MIN_CPUS_TO_SPIN CPUs, VGPU_POLLER_SPIN_USEC_DEFAULT from there on. */
int vgpu_poller_spin_usec_policy(const char *env_value, long online_cpus, uint64_t *ret_usec);
/* The same with this process's environment and CPUs. */
int vgpu_poller_spin_usec_from_environment(uint64_t *ret_usec);

int vgpu_poller_new(uint64_t spin_usec, VgpuPoller **ret);
VgpuPoller *vgpu_poller_free(VgpuPoller *p);

/* "spin 50us" or "block": for stats and logs. */
const char *vgpu_poller_mode(const VgpuPoller *p);
const VgpuPollerStats *vgpu_poller_stats(const VgpuPoller *p);

/* Registers a consumer; *ret_id names it for remove(). The consumer struct is copied. */
int vgpu_poller_add(VgpuPoller *p, const VgpuPollerConsumer *c, unsigned *ret_id);
int vgpu_poller_remove(VgpuPoller *p, unsigned id);

/* One round: spin, arm, sleep up to timeout_ms (-1: no limit). Returns how many dispatch() calls it made
 * (0 after a spurious wake-up), -ETIMEDOUT when it slept the whole timeout, or the first error. */
int vgpu_poller_run_once(VgpuPoller *p, int timeout_ms);
