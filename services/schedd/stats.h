/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The scheduler's counters: per-priority completions and log2 latency histograms (µs) for queue wait and
 * execution, with quantile estimates. Plain arithmetic, no I/O. */
#pragma once

#include <stdint.h>

#include "names.h"

/* Bucket 0: < 1 µs; bucket i (i ≥ 1): [2^(i-1), 2^i) µs; the last bucket takes everything above. */
#define STATS_BUCKETS 32

typedef struct Histogram {
        uint64_t buckets[STATS_BUCKETS];
        uint64_t count;
} Histogram;

typedef struct PriorityStats {
        uint64_t completed; /* status OK */
        uint64_t failed;    /* any other status, including commands that never reached an executor */
        Histogram wait;     /* ingestd's pick-up (ingest_ns) → dispatch to the executor */
        Histogram exec;     /* the executor's exec_ns */
} PriorityStats;

typedef struct SchedStats {
        PriorityStats priority[_PRIORITY_MAX];
        uint64_t received;            /* requests taken off the pool link */
        uint64_t refused;             /* completed without queueing: unknown VM, stale generation, full queue */
        uint64_t dropped_completions; /* executor completions that did not match what was sent */
        uint64_t executor_deaths;
        uint64_t executor_restarts;   /* fresh executors started for VMs whose executor had died */
        uint64_t loop_rounds, loop_found_spinning, loop_found_arming, loop_sleeps;
} SchedStats;

void histogram_add(Histogram *h, uint64_t ns);
/* The upper edge (µs) of the bucket holding quantile q (0 < q ≤ 1); 0 when the histogram is empty. */
uint64_t histogram_quantile_us(const Histogram *h, double q);

/* One finished command. executed: it ran on an executor (wait and exec are then recorded). */
void stats_record(SchedStats *s, Priority p, uint32_t status, int executed, uint64_t wait_ns, uint64_t exec_ns);
