/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A pool's run queue: three FIFO levels (high, medium, low) of host requests, a per-VM FIFO that keeps each
 * VM's commands in order, the in-flight bound and the optional starvation guard. No I/O: pure bookkeeping,
 * so that every ordering rule is tested in test/unit/test-queue.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "names.h"
#include "proto/host-link.h"

#define QUEUE_MAX_IN_FLIGHT_DEFAULT 4u
#define QUEUE_MAX_IN_FLIGHT_MAX     64u     /* never more than an executor link's request ring */
#define QUEUE_MAX_QUEUED            65536u  /* per pool: past it, new commands complete BUSY */

typedef struct Queue Queue;

/* A command handed out by queue_pick(). */
typedef struct QueueItem {
        VgpuHostRequest req;
        uint64_t enqueue_ns; /* when queue_push() took it */
        Priority level;      /* the level it was queued at: its stamped priority */
        bool promoted;       /* picked ahead of higher work by the starvation guard */
        bool inherited;      /* picked because a newer command of its VM was chosen (ordering rule) */
        Priority chosen;     /* the level whose head was chosen (this item's own level unless inherited) */
} QueueItem;

/* starvation_ns 0: the guard is off. max_in_flight 1 … QUEUE_MAX_IN_FLIGHT_MAX. */
int queue_new(unsigned max_in_flight, uint64_t starvation_ns, Queue **ret);
Queue *queue_free(Queue *q);

/* Appends a request at the tail of its priority's level. -EINVAL for a priority outside 0 … 2, -ENOBUFS
 * when QUEUE_MAX_QUEUED commands are already queued, -ENOMEM. */
int queue_push(Queue *q, const VgpuHostRequest *req, uint64_t now_ns);

/* The next command to dispatch, counted in flight: 1 with *ret filled, 0 when nothing is queued or the
 * in-flight bound is reached. The chosen command is the head of the highest non-empty level (or, with the
 * guard on, the oldest level head that has waited past the bound); if its VM has an older queued command,
 * that older command goes instead, so a VM's commands leave in the order they came. */
int queue_pick(Queue *q, uint64_t now_ns, QueueItem *ret);
/* queue_pick() among the levels whose bit (1 << level) is set in `levels` only: the others wait (the
 * scheduler's SM rule, docs/scheduler.md "GPU execution"). */
int queue_pick_levels(Queue *q, uint64_t now_ns, unsigned levels, QueueItem *ret);

/* A command that queue_pick() handed out has completed (or was abandoned): frees its in-flight slot. */
void queue_complete(Queue *q);

/* Removes every queued (not dispatched) command of vm_id, oldest first, calling `done` on each; returns how
 * many. Used on detach and when an executor dies. */
typedef void (*QueueRemoveFunc)(const QueueItem *item, void *userdata);
size_t queue_remove_vm(Queue *q, uint32_t vm_id, QueueRemoveFunc done, void *userdata);

size_t queue_depth(const Queue *q, Priority level);
size_t queue_depth_vm(const Queue *q, uint32_t vm_id);
unsigned queue_in_flight(const Queue *q);
unsigned queue_max_in_flight(const Queue *q);
uint64_t queue_starvation_ns(const Queue *q);
uint64_t queue_promoted(const Queue *q);  /* picks made by the starvation guard */
uint64_t queue_inherited(const Queue *q); /* picks made by the per-VM ordering rule */
