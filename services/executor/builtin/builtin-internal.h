/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the kernel files share: the checks every validator is built from, and the kernels' descriptions. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "builtin.h"

/* Sets *reason and returns status: lets a validator say `return refuse(reason, X, "why")`. */
static inline VgpuStatus refuse(const char **reason, VgpuStatus status, const char *why)
{
        *reason = why;
        return status;
}

/* a * b, false when it does not fit in 64 bits. */
static inline bool mul_ok(uint64_t a, uint64_t b, uint64_t *out)
{
        return !__builtin_mul_overflow(a, b, out);
}

static inline bool mul3_ok(uint64_t a, uint64_t b, uint64_t c, uint64_t *out)
{
        uint64_t ab;

        return mul_ok(a, b, &ab) && mul_ok(ab, c, out);
}

static inline bool mul4_ok(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t *out)
{
        uint64_t abc;

        return mul3_ok(a, b, c, &abc) && mul_ok(abc, d, out);
}

/* Whether a buffer holds `count` floats; a count whose byte size overflows holds in no buffer. */
static inline bool holds_floats(const BuiltinArg *buffer, uint64_t count)
{
        uint64_t bytes;

        return mul_ok(count, sizeof(float), &bytes) && bytes <= buffer->size;
}

/* The bytes a kernel touches in two buffers: whether they share any byte, and whether they are the very
 * same range (which in-place kernels allow). Only called after the sizes were checked, so no sum here
 * can wrap: each range lies inside a real allocation. */
static inline bool ranges_overlap(const BuiltinArg *a, uint64_t a_floats, const BuiltinArg *b, uint64_t b_floats)
{
        uintptr_t pa = (uintptr_t) a->data, pb = (uintptr_t) b->data;

        return pa < pb + b_floats * sizeof(float) && pb < pa + a_floats * sizeof(float);
}

static inline bool ranges_same(const BuiltinArg *a, uint64_t a_floats, const BuiltinArg *b, uint64_t b_floats)
{
        return a->data == b->data && a_floats == b_floats;
}

/* An output may be disjoint from an input, or (where in_place) exactly the same range. */
static inline bool output_allowed(const BuiltinArg *out, uint64_t out_floats, const BuiltinArg *in,
                                  uint64_t in_floats, bool in_place)
{
        if (in_place && ranges_same(out, out_floats, in, in_floats))
                return true;
        return !ranges_overlap(out, out_floats, in, in_floats);
}

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
        return a < b ? a : b;
}

extern const BuiltinKernel builtin_gemm;
extern const BuiltinKernel builtin_add;
extern const BuiltinKernel builtin_mul;
extern const BuiltinKernel builtin_relu;
extern const BuiltinKernel builtin_bias_add;
extern const BuiltinKernel builtin_softmax;
extern const BuiltinKernel builtin_sum_rows;
extern const BuiltinKernel builtin_conv2d;
extern const BuiltinKernel builtin_maxpool2d;
