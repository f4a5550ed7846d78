/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu.builtin: the portable kernels every backend offers. This header is the contract between guest
 * frameworks and backends: the CPU backend implements it in C (the reference, checked in CI), the CUDA
 * backend must agree with it: bit for bit where marked "exact", within the stated tolerance otherwise.
 * docs/builtins.md is its prose. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "proto/protocol.h"

/* ---- Conventions that hold for every kernel ----
 *
 * Tensors are float32 (IEEE binary32), dense, row-major (the last index varies fastest); images are NCHW,
 * convolution weights OIHW. A launch names a built-in and passes its parameters in the order of the
 * built-in's signature, one character per parameter:
 *   'b'  a buffer: on the wire a VGPU_PARAM_BUFFER (handle + byte offset) that the host resolves, before
 *        validation, to a BuiltinArg's data (the address of the offset) and size (bytes from there to the
 *        end of the allocation); buffers must be 4-byte aligned
 *   'u'  a uint32_t, on the wire a 4-byte VGPU_PARAM_VALUE
 *   'i'  an int32_t, likewise (reserved: no kernel takes one yet)
 *   'f'  a float, its bit pattern in a 4-byte VGPU_PARAM_VALUE
 * Every dimension is a u32 and must be at least 1: an empty launch is refused, the guest simply skips it.
 * Products of dimensions are computed in uint64_t with overflow checks; a product that overflows is an
 * INVALID_ARGUMENT, a buffer smaller than what the kernel will touch is OUT_OF_BOUNDS.
 *
 * Work items: every launch is a set of independent units (rows, planes, elements; see each kernel).
 * run(begin, end) computes exactly the items [begin, end) and touches only their outputs, and each item's
 * result does not depend on how the launch was sliced, so the scheduler may cut a long launch into bounded
 * pieces at any item boundary. run() is reentrant (no globals; gemm keeps about 34 KiB of panels on the
 * stack), so disjoint slices of one launch may also run on several threads at once. item_cost() is an upper bound on the multiply-adds (or element operations)
 * of one item; validation refuses any launch whose item cost exceeds BUILTIN_ITEM_COST_MAX, so one item is
 * always a bounded amount of work (about a second on a slow core).
 *
 * Aliasing: an output may be the very same range as an input only where a kernel says "in place allowed";
 * any other overlap between an output's range and another parameter's range is refused. Ranges are the
 * bytes the kernel reads or writes, not the whole allocation, so tensors may be packed into one buffer. */

#define BUILTIN_ARGS_MAX 18u
#define BUILTIN_GEMM_K_MAX (UINT32_C(1) << 24)       /* longer dot products lose meaning in float32 */
#define BUILTIN_ITEM_COST_MAX (UINT64_C(1) << 32)    /* multiply-adds in one work item */

/* One parameter after the host resolved it. For a buffer only data and size are used; for a scalar only
 * the union. The host builds this array as its private copy: nothing here points into shared memory. */
typedef struct BuiltinArg {
        void *data;
        uint64_t size;
        union {
                uint32_t u32;
                int32_t i32;
                float f32;
        };
} BuiltinArg;

typedef struct BuiltinKernel {
        const char *name;
        const char *signature;                      /* one of "buif" per parameter, see above */
        const char *params[BUILTIN_ARGS_MAX];       /* parameter names, for errors and docs */
        /* Checks every dimension, limit, size and overlap; on refusal sets *reason to a static sentence. */
        VgpuStatus (*validate)(const BuiltinArg *args, const char **reason);
        /* The next three may only be called on arguments that validate accepted. */
        uint64_t (*work_items)(const BuiltinArg *args);
        uint64_t (*item_cost)(const BuiltinArg *args);
        void (*run)(const BuiltinArg *args, uint64_t begin, uint64_t end);
} BuiltinKernel;

/* ---- The kernels (signature; semantics; work items; limits beyond the conventions) ----
 *
 * gemm "bbbuuuffuu" (A, B, C, M, N, K, alpha, beta, transA, transB)
 *   C[M,N] = alpha * op(A)[M,K] · op(B)[K,N] + beta * C. op(A) = A stored M×K when transA = 0, the
 *   transpose of A stored K×M when transA = 1; likewise B stored K×N or N×K. trans flags are 0 or 1.
 *   Evaluation order (followed by the CPU backend, so slicing cannot change a bit): c = beta * C (c = 0
 *   when beta == 0: C is then not read, so NaN or garbage in C does not propagate, as in BLAS), then for
 *   k = 0 … K-1 in order: c = c + (alpha * op(A)[i,k]) * op(B)[k,j], each operation rounded to float.
 *   Tolerance against exact arithmetic: |c - exact| <= 2 (K + 2) 2^-24 (|beta C| + sum_k |alpha a b|).
 *   Work items: rows of C (M). K <= BUILTIN_GEMM_K_MAX; C must not overlap A or B.
 *
 * add "bbbuuu" (A, B, Y, rows, cols, b_mode), mul: the same with *
 *   Y[r,c] = A[r,c] + B[...] where b_mode says B's shape: 0 [rows, cols] (same shape), 1 [cols] (a row
 *   vector broadcast over the rows: a bias), 2 [rows] (a column vector broadcast over the columns), 3 [1]
 *   (a scalar). Exact. Work items: rows. In place allowed: Y may be A, and B when b_mode = 0.
 *
 * relu "bbu" (X, Y, n)
 *   Y[i] = X[i] < 0 ? +0.0f : X[i] (NaN and -0.0 pass through unchanged). Exact. Work items: elements (n).
 *   In place allowed.
 *
 * bias_add "bbbuuu" (X, bias, Y, N, C, HW)
 *   Y[n,c,s] = X[n,c,s] + bias[c] for an NCHW tensor seen as [N, C, HW] (a per-channel bias). Exact.
 *   Work items: planes (N*C). In place allowed: Y may be X.
 *
 * softmax "bbuu" (X, Y, rows, cols)
 *   Along the last dimension: m = max_c X[r,c]; e_c = expf(X[r,c] - m); s = sum of e_c in double,
 *   ascending c; Y[r,c] = (float)(e_c / s). Never overflows (every e_c <= 1, one e_c == 1).
 *   Tolerance, relative to the exact value: (2 d + 8) 2^-24 where d = max_c |X[r,c] - m| (the rounding of
 *   X - m is amplified by exp; expf itself differs between libm and CUDA by an ulp or two): about 1e-6
 *   for logits spread over less than 4, 1.2e-5 over 100.
 *   Work items: rows. In place allowed.
 *
 * sum_rows "bbuu" (X, Y, rows, cols)
 *   Y[r] = sum_c X[r,c], accumulated in double ascending c, rounded once to float. Tolerance: 1 ulp of
 *   the correctly rounded sum (exact whenever the double sum is). Work items: rows.
 *
 * conv2d "bbbbuuuuuuuuuuuuuu" (X, weight, bias, Y, N, C, H, W, O, KH, KW, stride_h, stride_w, pad_h,
 *                              pad_w, dil_h, dil_w, has_bias)
 *   X [N,C,H,W], weight [O,C,KH,KW], bias [O] (read only when has_bias = 1; otherwise its size is not
 *   checked: any resolved buffer will do), Y [N,O,OH,OW] with OH = (H + 2 pad_h - dil_h (KH-1) - 1) / stride_h + 1 (floor),
 *   OW likewise. Padding is implicit zeros: input row ih = oh*stride_h - pad_h + kh*dil_h outside [0, H)
 *   contributes nothing. Cross-correlation (the weights are not flipped), as in every framework.
 *   Evaluation order: y = has_bias ? bias[o] : 0, then for c, kh, kw ascending: y = y + weight[o,c,kh,kw] * x.
 *   Tolerance: as gemm with C*KH*KW terms. Work items: output planes (N*O), item cost OH*OW*C*KH*KW.
 *   stride, dilation >= 1; pad < dil (K-1) + 1 (the effective kernel extent); that extent <= H + 2 pad.
 *   Y must not overlap X, weight or bias.
 *
 * maxpool2d "bbuuuuuuuuuu" (X, Y, N, C, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w)
 *   Y[n,c,oh,ow] = max over the window rows oh*stride_h - pad_h + [0, KH) and columns likewise, clipped to
 *   the input: padding is never a candidate (as -infinity). OH = (H + 2 pad_h - KH) / stride_h + 1 (floor).
 *   NaN propagates: the first NaN in the window (row-major order) wins. Exact. Work items: planes (N*C).
 *   stride >= 1; 2 pad <= K (so every window holds at least one input); K <= H + 2 pad. Y must not
 *   overlap X. */

const BuiltinKernel *builtin_find(const char *name, size_t length); /* length: no NUL needed (wire names) */
size_t builtin_count(void);
const BuiltinKernel *builtin_get(size_t i); /* NULL past the end */

/* Checks the argument count, kinds and alignment, then the kernel's own rules. */
VgpuStatus builtin_validate(const BuiltinKernel *k, const BuiltinArg *args, size_t n_args, const char **reason);

/* Validates again (cheap next to the work, and it makes every slice safe on its own), checks
 * begin <= end <= work_items, then computes the items [begin, end). */
VgpuStatus builtin_run(const BuiltinKernel *k, const BuiltinArg *args, size_t n_args, uint64_t begin,
                       uint64_t end, const char **reason);
