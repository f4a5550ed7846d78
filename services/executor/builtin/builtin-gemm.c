/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gemm: C = alpha op(A) op(B) + beta C, row-major float32, one work item per row of C. Packed panels and a
 * 4×8 register tile make it fast at plain -O2; every element of C goes through the same micro-kernel in
 * the same k order whatever the tile or slice it falls in, so slicing never changes a bit. */
#include <string.h>

#include "builtin-internal.h"

enum { A_, B_, C_, M_, N_, K_, ALPHA_, BETA_, TRANS_A_, TRANS_B_ };

#define MR 4   /* rows of the register tile */
#define NR 8   /* columns of the register tile: two 4-wide vectors */
#define KC 128 /* depth of a packed panel */
#define NC 64  /* width of a packed panel of B: KC×NC floats = 32 KiB on the stack, L1/L2 resident */

/* GNU C vectors: plain -O2 (GCC's very-cheap vectorizer) will not vectorize loops with runtime bounds,
 * these compile to SSE on x86-64 and NEON on arm64 without any target flags. */
typedef float v4f __attribute__((vector_size(16)));

static inline v4f load4(const float *p)
{
        v4f v;

        memcpy(&v, p, sizeof(v)); /* unaligned load */
        return v;
}

static inline void store4(float *p, v4f v)
{
        memcpy(p, &v, sizeof(v));
}

static VgpuStatus gemm_validate(const BuiltinArg *a, const char **reason)
{
        uint64_t m = a[M_].u32, n = a[N_].u32, k = a[K_].u32, a_n, b_n, c_n, cost;

        if (m == 0 || n == 0 || k == 0)
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "gemm: M, N and K must be at least 1");
        if (k > BUILTIN_GEMM_K_MAX)
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "gemm: K is past its limit (1<<24)");
        if (a[TRANS_A_].u32 > 1 || a[TRANS_B_].u32 > 1)
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "gemm: transA and transB must be 0 or 1");
        /* u32 × u32 always fits in 64 bits; checked anyway so that a wider type later stays safe. */
        if (!mul_ok(m, k, &a_n) || !mul_ok(k, n, &b_n) || !mul_ok(m, n, &c_n) || !mul_ok(n, k, &cost))
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "gemm: dimensions overflow");
        if (cost > BUILTIN_ITEM_COST_MAX)
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "gemm: N*K (one row's work) is past its limit");
        if (!holds_floats(&a[A_], a_n))
                return refuse(reason, VGPU_STATUS_OUT_OF_BOUNDS, "gemm: A is smaller than M*K floats");
        if (!holds_floats(&a[B_], b_n))
                return refuse(reason, VGPU_STATUS_OUT_OF_BOUNDS, "gemm: B is smaller than K*N floats");
        if (!holds_floats(&a[C_], c_n))
                return refuse(reason, VGPU_STATUS_OUT_OF_BOUNDS, "gemm: C is smaller than M*N floats");
        if (ranges_overlap(&a[C_], c_n, &a[A_], a_n) || ranges_overlap(&a[C_], c_n, &a[B_], b_n))
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "gemm: C overlaps A or B");
        return VGPU_STATUS_OK;
}

static uint64_t gemm_work_items(const BuiltinArg *a)
{
        return a[M_].u32;
}

static uint64_t gemm_item_cost(const BuiltinArg *a)
{
        return (uint64_t) a[N_].u32 * a[K_].u32;
}

/* c[4][8] (rows ldc apart) += ap · bp over kb steps; ap is [kb][MR], bp is [kb][NR]. */
static void micro_4x8(size_t kb, const float *restrict ap, const float *restrict bp, float *restrict c, size_t ldc)
{
        v4f c00 = load4(c), c01 = load4(c + 4), c10 = load4(c + ldc), c11 = load4(c + ldc + 4);
        v4f c20 = load4(c + 2 * ldc), c21 = load4(c + 2 * ldc + 4);
        v4f c30 = load4(c + 3 * ldc), c31 = load4(c + 3 * ldc + 4);

        for (size_t k = 0; k < kb; k++, ap += MR, bp += NR) {
                v4f b0 = load4(bp), b1 = load4(bp + 4);

                c00 += ap[0] * b0, c01 += ap[0] * b1;
                c10 += ap[1] * b0, c11 += ap[1] * b1;
                c20 += ap[2] * b0, c21 += ap[2] * b1;
                c30 += ap[3] * b0, c31 += ap[3] * b1;
        }
        store4(c, c00), store4(c + 4, c01), store4(c + ldc, c10), store4(c + ldc + 4, c11);
        store4(c + 2 * ldc, c20), store4(c + 2 * ldc + 4, c21);
        store4(c + 3 * ldc, c30), store4(c + 3 * ldc + 4, c31);
}

/* A partial tile runs the same micro-kernel on a copy, so its elements see exactly the same operations. */
static void micro_edge(size_t kb, const float *ap, const float *bp, float *c, size_t ldc, size_t mr, size_t nr)
{
        float t[MR * NR] = { 0 };

        for (size_t r = 0; r < mr; r++)
                memcpy(t + r * NR, c + r * ldc, nr * sizeof(float));
        micro_4x8(kb, ap, bp, t, NR);
        for (size_t r = 0; r < mr; r++)
                memcpy(c + r * ldc, t + r * NR, nr * sizeof(float));
}

/* bp[p][k][r] = op(B)[kc + k, jc + p*NR + r], zero past nb; handles both layouts of B. */
static void pack_b(float *restrict bp, const float *restrict b, const BuiltinArg *a, size_t kc, size_t kb,
                   size_t jc, size_t nb)
{
        size_t n = a[N_].u32, k_total = a[K_].u32;
        bool trans = a[TRANS_B_].u32;

        for (size_t p = 0; p * NR < nb; p++)
                for (size_t k = 0; k < kb; k++)
                        for (size_t r = 0; r < NR; r++) {
                                size_t j = jc + p * NR + r;
                                float v = 0.0f;

                                if (p * NR + r < nb)
                                        v = trans ? b[j * k_total + kc + k] : b[(kc + k) * n + j];
                                *bp++ = v;
                        }
}

/* ap[k][r] = alpha * op(A)[i + r, kc + k], zero past mr. */
static void pack_a(float *restrict ap, const float *restrict a_, const BuiltinArg *a, size_t i, size_t mr,
                   size_t kc, size_t kb)
{
        size_t m = a[M_].u32, k_total = a[K_].u32;
        bool trans = a[TRANS_A_].u32;
        float alpha = a[ALPHA_].f32;

        for (size_t k = 0; k < kb; k++)
                for (size_t r = 0; r < MR; r++)
                        *ap++ = r < mr ? alpha * (trans ? a_[(kc + k) * m + i + r] : a_[(i + r) * k_total + kc + k])
                                       : 0.0f;
}

static void scale_rows(float *restrict c, size_t n, uint64_t begin, uint64_t end, float beta)
{
        for (size_t i = begin; i < end; i++)
                for (size_t j = 0; j < n; j++)
                        c[i * n + j] = beta == 0.0f ? 0.0f : beta * c[i * n + j];
}

static void gemm_run(const BuiltinArg *a, uint64_t begin, uint64_t end)
{
        const float *A = a[A_].data, *B = a[B_].data;
        float *C = a[C_].data;
        size_t n = a[N_].u32, k_total = a[K_].u32;
        float bp[KC * NC], ap[KC * MR];

        scale_rows(C, n, begin, end, a[BETA_].f32);
        for (size_t jc = 0; jc < n; jc += NC) {
                size_t nb = min_u64(NC, n - jc);

                for (size_t kc = 0; kc < k_total; kc += KC) {
                        size_t kb = min_u64(KC, k_total - kc);

                        pack_b(bp, B, a, kc, kb, jc, nb);
                        for (size_t i = begin; i < end; i += MR) {
                                size_t mr = min_u64(MR, end - i);

                                pack_a(ap, A, a, i, mr, kc, kb);
                                for (size_t jr = 0; jr < nb; jr += NR) {
                                        size_t nr = min_u64(NR, nb - jr);
                                        float *c = C + i * n + jc + jr;

                                        if (mr == MR && nr == NR)
                                                micro_4x8(kb, ap, bp + jr * kb, c, n);
                                        else
                                                micro_edge(kb, ap, bp + jr * kb, c, n, mr, nr);
                                }
                        }
                }
        }
}

const BuiltinKernel builtin_gemm = {
        .name = "gemm",
        .signature = "bbbuuuffuu",
        .params = { "A", "B", "C", "M", "N", "K", "alpha", "beta", "transA", "transB" },
        .validate = gemm_validate,
        .work_items = gemm_work_items,
        .item_cost = gemm_item_cost,
        .run = gemm_run,
};
