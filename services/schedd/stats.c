/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Log2 histograms: cheap to update on every completion, enough to tell 10 µs from 10 ms. */
#include "stats.h"
#include "proto/protocol.h"

void histogram_add(Histogram *h, uint64_t ns)
{
        uint64_t us = ns / 1000;
        unsigned b = us == 0 ? 0 : 64 - (unsigned)__builtin_clzll(us);

        h->buckets[b < STATS_BUCKETS ? b : STATS_BUCKETS - 1]++;
        h->count++;
}

uint64_t histogram_quantile_us(const Histogram *h, double q)
{
        uint64_t want, seen = 0;

        if (h->count == 0)
                return 0;
        want = (uint64_t)(q * (double)h->count + 0.999999);
        if (want == 0)
                want = 1;
        for (unsigned b = 0; b < STATS_BUCKETS; b++) {
                seen += h->buckets[b];
                if (seen >= want)
                        return UINT64_C(1) << b;
        }
        return UINT64_C(1) << (STATS_BUCKETS - 1);
}

void stats_record(SchedStats *s, Priority p, uint32_t status, int executed, uint64_t wait_ns, uint64_t exec_ns)
{
        PriorityStats *ps;

        if (p < 0 || p >= _PRIORITY_MAX)
                p = PRIORITY_LOW;
        ps = &s->priority[p];
        if (status == VGPU_STATUS_OK)
                ps->completed++;
        else
                ps->failed++;
        if (!executed)
                return;
        histogram_add(&ps->wait, wait_ns);
        histogram_add(&ps->exec, exec_ns);
}
