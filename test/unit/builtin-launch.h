/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The built-in kernels' tests share this: a launch as the tests see it (arguments by name, the exact floats
 * each buffer needs, buffers that end or start at a guard page), random valid launches of every kernel, and
 * a small deterministic random source. Code in builtin-launch.c. */
#pragma once

#include <check.h>
#include <stdbool.h>
#include <stdint.h>

#include "builtin.h"
#include "vgpu-util.h"

static const char *const kernels[] = { "gemm", "add", "mul", "relu", "bias_add", "softmax", "sum_rows",
                                       "conv2d", "maxpool2d" };

/* ---- A launch as the tests see it: arguments by name, and the exact floats each buffer needs ---- */

typedef struct Launch {
        const BuiltinKernel *k;
        size_t n;
        BuiltinArg args[BUILTIN_ARGS_MAX];
        uint64_t floats[BUILTIN_ARGS_MAX]; /* buffers: what the kernel reads or writes, computed here */
        void *map[BUILTIN_ARGS_MAX];
        size_t map_len[BUILTIN_ARGS_MAX];
        size_t out; /* the output buffer's index */
} Launch;

static inline size_t idx(const Launch *l, const char *param)
{
        for (size_t i = 0; i < l->n; i++)
                if (streq(l->k->params[i], param))
                        return i;
        ck_abort_msg("%s has no parameter %s", l->k->name, param);
        return 0;
}

static inline uint32_t U(const Launch *l, const char *p)
{
        return l->args[idx(l, p)].u32;
}

static inline void set(Launch *l, const char *p, uint32_t v)
{
        l->args[idx(l, p)].u32 = v;
}

static inline void need(Launch *l, const char *p, uint64_t floats)
{
        l->floats[idx(l, p)] = floats;
}

static inline float *F(const Launch *l, const char *p)
{
        return l->args[idx(l, p)].data;
}

static inline uint64_t out_extent(uint64_t in, uint64_t k, uint64_t s, uint64_t p, uint64_t d)
{
        return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

uint32_t rnd(uint32_t lo, uint32_t hi); /* inclusive; deterministic (xorshift) */
float rnd_float(void);                  /* [-1, 1] */

/* A random valid launch of kernel `name`, every buffer exactly as large as the kernel needs; each buffer ends
 * where a PROT_NONE page begins (at_end), or starts right after one. */
Launch launch_new(const char *name, bool at_end);
void launch_free(Launch *l);
/* Changes the protection of every buffer (not the guard pages). */
void launch_protect(Launch *l, int prot);
/* Runs work items [begin, end); a refusal fails the test. */
VgpuStatus launch_run(Launch *l, uint64_t begin, uint64_t end);
/* builtin_validate(), checking that a refusal comes with a reason and only then. */
VgpuStatus validate(Launch *l);
