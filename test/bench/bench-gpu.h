/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-gpu's measurements, shared by the program and its native module. */
#pragma once

#include <stdint.h>

#define BENCH_WARMUP     200
#define BENCH_LAUNCHES   5000
#define BENCH_COPY_SIZES 6 /* 1 MiB, 4, 16, 64, 256 MiB, 1 GiB */
#define BENCH_REPEATS    20
#define BENCH_COPY_MAX   (UINT64_C(1) << 30)

static inline uint64_t bench_copy_size(int i)
{
        return (UINT64_C(1) << 20) << (2 * i);
}

static inline int bench_copy_repeats(int i)
{
        return i < 4 ? BENCH_REPEATS : 5;
}

typedef struct BenchNativeResults {
        uint64_t launch_ns[BENCH_LAUNCHES];
        uint64_t h2d_ns[BENCH_COPY_SIZES][BENCH_REPEATS];
        uint64_t d2h_ns[BENCH_COPY_SIZES][BENCH_REPEATS];
} BenchNativeResults;

typedef int (*BenchNativeRunFunc)(const char *ptx, BenchNativeResults *out);
