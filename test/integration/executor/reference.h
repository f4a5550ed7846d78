/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Naive references for the executor test, written in the plainest loop form in double, independent of
 * the built-ins' code: what the executor computes through the ring is compared with these. */
#pragma once

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* Uniform in [-1, 1), from a fixed-seed generator so that a failure reproduces. */
static inline float *ref_random(size_t n)
{
        static uint64_t state = 0x9e3779b97f4a7c15ULL;
        float *v = malloc(n * sizeof(float));

        ck_assert_ptr_nonnull(v);
        for (size_t i = 0; i < n; i++) {
                state = state * 6364136223846793005ULL + 1442695040888963407ULL;
                v[i] = (float)((double)(state >> 40) / (double)(1ULL << 24) * 2.0 - 1.0);
        }
        return v;
}

/* C = alpha A[M,K] B[K,N] + beta C, no transposes. */
static inline void ref_gemm(const float *a, const float *b, const float *c, unsigned m, unsigned n, unsigned k,
                            double alpha, double beta, double *out)
{
        for (unsigned i = 0; i < m; i++)
                for (unsigned j = 0; j < n; j++) {
                        double s = 0;

                        for (unsigned l = 0; l < k; l++)
                                s += (double)a[(size_t)i * k + l] * b[(size_t)l * n + j];
                        out[(size_t)i * n + j] = alpha * s + beta * c[(size_t)i * n + j];
                }
}

static inline void ref_softmax(const float *x, unsigned rows, unsigned cols, double *out)
{
        for (unsigned r = 0; r < rows; r++) {
                double m = -INFINITY, s = 0;

                for (unsigned c = 0; c < cols; c++)
                        m = fmax(m, x[(size_t)r * cols + c]);
                for (unsigned c = 0; c < cols; c++)
                        s += exp(x[(size_t)r * cols + c] - m);
                for (unsigned c = 0; c < cols; c++)
                        out[(size_t)r * cols + c] = exp(x[(size_t)r * cols + c] - m) / s;
        }
}

typedef struct RefConv {
        uint32_t N, C, H, W, O, KH, KW, stride, pad, dil;
        uint32_t OH, OW;
} RefConv;

static inline void ref_conv_output(RefConv *c)
{
        c->OH = (c->H + 2 * c->pad - c->dil * (c->KH - 1) - 1) / c->stride + 1;
        c->OW = (c->W + 2 * c->pad - c->dil * (c->KW - 1) - 1) / c->stride + 1;
}

/* NCHW input, OIHW weights, a bias, zero padding; cross-correlation. */
static inline void ref_conv2d(const RefConv *c, const float *x, const float *w, const float *bias, double *y)
{
        for (uint32_t n = 0; n < c->N; n++)
                for (uint32_t o = 0; o < c->O; o++)
                        for (uint32_t oh = 0; oh < c->OH; oh++)
                                for (uint32_t ow = 0; ow < c->OW; ow++) {
                                        double s = bias[o];

                                        for (uint32_t ci = 0; ci < c->C; ci++)
                                                for (uint32_t kh = 0; kh < c->KH; kh++)
                                                        for (uint32_t kw = 0; kw < c->KW; kw++) {
                                                                long ih = (long)(oh * c->stride + kh * c->dil) - c->pad;
                                                                long iw = (long)(ow * c->stride + kw * c->dil) - c->pad;

                                                                if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W)
                                                                        continue;
                                                                s += (double)w[((o * c->C + ci) * c->KH + kh) * c->KW + kw] *
                                                                     x[((n * c->C + ci) * c->H + ih) * c->W + iw];
                                                        }
                                        y[((n * c->O + o) * c->OH + oh) * c->OW + ow] = s;
                                }
}

/* |got - expect| <= tol (1 + |expect|) everywhere. */
static inline void ref_assert_close(const float *got, const double *expect, size_t n, double tol, const char *what)
{
        for (size_t i = 0; i < n; i++)
                ck_assert_msg(fabs(got[i] - expect[i]) <= tol * (1 + fabs(expect[i])),
                              "%s[%zu]: got %.9g, expected %.9g", what, i, got[i], expect[i]);
}
