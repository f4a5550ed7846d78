/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu.builtin's results: every kernel against a naive reference written here in the most obvious loop form
 * (so it shares no code or cleverness with the kernels), results identical however a launch is sliced, and
 * the numerical corner cases (beta = 0 never reads C, softmax of huge logits). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "builtin-launch.h"

/* ---- Naive references: expected value and allowed error of every output element ---- */

static const double eps = 1.0 / (1 << 24); /* unit roundoff of float32 */

static void ref_gemm(const Launch *l, double *want, double *tol)
{
        uint32_t m = U(l, "M"), n = U(l, "N"), kk = U(l, "K"), ta = U(l, "transA"), tb = U(l, "transB");
        double alpha = l->args[idx(l, "alpha")].f32, beta = l->args[idx(l, "beta")].f32;
        const float *a = F(l, "A"), *b = F(l, "B"), *c = F(l, "C");

        for (uint32_t i = 0; i < m; i++)
                for (uint32_t j = 0; j < n; j++) {
                        double s = beta == 0 ? 0 : beta * c[i * n + j], bound = fabs(s);

                        for (uint32_t k = 0; k < kk; k++) {
                                double t = alpha * (ta ? a[k * m + i] : a[i * kk + k]) * (tb ? b[j * kk + k] : b[k * n + j]);

                                s += t, bound += fabs(t);
                        }
                        want[i * n + j] = s, tol[i * n + j] = 2.0 * (kk + 2) * eps * bound;
                }
}

static void ref_conv2d(const Launch *l, double *want, double *tol)
{
        uint32_t N = U(l, "N"), C = U(l, "C"), H = U(l, "H"), W = U(l, "W"), O = U(l, "O"), KH = U(l, "KH"),
                 KW = U(l, "KW"), sh = U(l, "stride_h"), sw = U(l, "stride_w"), ph = U(l, "pad_h"),
                 pw = U(l, "pad_w"), dh = U(l, "dil_h"), dw = U(l, "dil_w");
        uint32_t OH = out_extent(H, KH, sh, ph, dh), OW = out_extent(W, KW, sw, pw, dw);
        const float *x = F(l, "X"), *w = F(l, "weight"), *bias = F(l, "bias");
        size_t e = 0;

        for (uint32_t n = 0; n < N; n++)
                for (uint32_t o = 0; o < O; o++)
                        for (uint32_t oh = 0; oh < OH; oh++)
                                for (uint32_t ow = 0; ow < OW; ow++, e++) {
                                        double s = U(l, "has_bias") ? bias[o] : 0, bound = fabs(s);

                                        for (uint32_t c = 0; c < C; c++)
                                                for (uint32_t kh = 0; kh < KH; kh++)
                                                        for (uint32_t kw = 0; kw < KW; kw++) {
                                                                long ih = (long) (oh * sh + kh * dh) - ph;
                                                                long iw = (long) (ow * sw + kw * dw) - pw;
                                                                double t;

                                                                if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                                                                        continue; /* zero padding */
                                                                t = (double) w[((o * C + c) * KH + kh) * KW + kw] *
                                                                    x[((n * C + c) * H + ih) * W + iw];
                                                                s += t, bound += fabs(t);
                                                        }
                                        want[e] = s, tol[e] = 2.0 * (C * KH * KW + 2) * eps * bound;
                                }
}

static void ref_maxpool2d(const Launch *l, double *want, double *tol)
{
        uint32_t N = U(l, "N"), C = U(l, "C"), H = U(l, "H"), W = U(l, "W"), KH = U(l, "KH"), KW = U(l, "KW"),
                 sh = U(l, "stride_h"), sw = U(l, "stride_w"), ph = U(l, "pad_h"), pw = U(l, "pad_w");
        uint32_t OH = out_extent(H, KH, sh, ph, 1), OW = out_extent(W, KW, sw, pw, 1);
        const float *x = F(l, "X");
        size_t e = 0;

        for (uint32_t p = 0; p < N * C; p++)
                for (uint32_t oh = 0; oh < OH; oh++)
                        for (uint32_t ow = 0; ow < OW; ow++, e++) {
                                double m = -INFINITY;

                                for (long ih = (long) (oh * sh) - ph; ih < (long) (oh * sh) - ph + KH; ih++)
                                        for (long iw = (long) (ow * sw) - pw; iw < (long) (ow * sw) - pw + KW; iw++)
                                                if (ih >= 0 && ih < H && iw >= 0 && iw < W)
                                                        m = fmax(m, x[(p * H + ih) * W + iw]);
                                want[e] = m, tol[e] = 0;
                        }
}

static void ref_rows(const Launch *l, double *want, double *tol)
{
        uint32_t rows = U(l, "rows"), cols = U(l, "cols");
        const float *x = F(l, "X");

        for (uint32_t r = 0; r < rows; r++) {
                double max = -INFINITY, sum = 0, spread = 0;

                for (uint32_t c = 0; c < cols; c++)
                        max = fmax(max, x[r * cols + c]), sum += x[r * cols + c];
                if (streq(l->k->name, "sum_rows")) {
                        float y = (float) sum;

                        want[r] = y, tol[r] = nextafterf(y, INFINITY) - y; /* one ulp */
                        continue;
                }
                sum = 0;
                for (uint32_t c = 0; c < cols; c++)
                        sum += exp(x[r * cols + c] - max), spread = fmax(spread, max - x[r * cols + c]);
                for (uint32_t c = 0; c < cols; c++) {
                        want[r * cols + c] = exp(x[r * cols + c] - max) / sum;
                        tol[r * cols + c] = (2 * spread + 8) * eps * want[r * cols + c]; /* builtin.h's bound */
                }
        }
}

/* add, mul, relu, bias_add: one float operation per element, so the float result itself is expected. */
static void ref_exact(const Launch *l, double *want, double *tol)
{
        const char *name = l->k->name;

        for (uint64_t e = 0; e < l->floats[l->out]; e++) {
                float y;

                if (streq(name, "relu")) {
                        y = F(l, "X")[e] > 0 ? F(l, "X")[e] : 0.0f;
                } else if (streq(name, "bias_add")) {
                        y = F(l, "X")[e] + F(l, "bias")[e / U(l, "HW") % U(l, "C")];
                } else {
                        uint32_t r = e / U(l, "cols"), c = e % U(l, "cols"), mode = U(l, "b_mode");
                        float b = F(l, "B")[mode == 0 ? e : mode == 1 ? c : mode == 2 ? r : 0];

                        y = streq(name, "add") ? F(l, "A")[e] + b : F(l, "A")[e] * b;
                }
                want[e] = y, tol[e] = 0;
        }
}

START_TEST(test_kernel_matches_its_naive_reference)
{
        const char *name = kernels[_i];

        for (int t = 0; t < 60; t++) {
                Launch l = launch_new(name, t % 2);
                uint64_t n = l.floats[l.out];
                double *want = calloc(n, sizeof(double)), *tol = calloc(n, sizeof(double));
                const float *y = l.args[l.out].data;

                ck_assert(want && tol);
                if (streq(name, "gemm"))
                        ref_gemm(&l, want, tol);
                else if (streq(name, "conv2d"))
                        ref_conv2d(&l, want, tol);
                else if (streq(name, "maxpool2d"))
                        ref_maxpool2d(&l, want, tol);
                else if (streq(name, "softmax") || streq(name, "sum_rows"))
                        ref_rows(&l, want, tol);
                else
                        ref_exact(&l, want, tol);
                launch_run(&l, 0, l.k->work_items(l.args));
                for (uint64_t e = 0; e < n; e++)
                        ck_assert_msg(fabs(y[e] - want[e]) <= tol[e], "%s case %d element %llu: got %.9g, want %.9g ± %.3g",
                                      name, t, (unsigned long long) e, y[e], want[e], tol[e]);
                free(want), free(tol), launch_free(&l);
        }
}
END_TEST

START_TEST(test_results_are_identical_whatever_the_slicing)
{
        const char *name = kernels[_i];

        for (int t = 0; t < 40; t++) {
                Launch l = launch_new(name, true);
                uint64_t items = l.k->work_items(l.args), bytes = l.args[l.out].size;
                float *y = l.args[l.out].data, *before = malloc(bytes), *whole = malloc(bytes);

                ck_assert(before && whole);
                memcpy(before, y, bytes); /* gemm with beta reads C: both runs start from the same C */
                launch_run(&l, 0, items);
                memcpy(whole, y, bytes);
                memcpy(y, before, bytes);
                for (uint64_t b = 0, e; b < items; b = e) {
                        uint64_t step = rnd(1, 7);

                        e = b + step > items ? items : b + step;
                        launch_run(&l, b, e);
                }
                ck_assert_msg(memcmp(whole, y, bytes) == 0, "%s case %d: slicing changed the result", name, t);
                free(before), free(whole), launch_free(&l);
        }
}
END_TEST

START_TEST(test_gemm_with_beta_zero_never_reads_c)
{
        Launch l = launch_new("gemm", true);
        float *c = F(&l, "C");

        l.args[idx(&l, "beta")].f32 = 0.0f;
        for (uint64_t e = 0; e < l.floats[idx(&l, "C")]; e++)
                c[e] = NAN;
        launch_run(&l, 0, U(&l, "M"));
        for (uint64_t e = 0; e < l.floats[idx(&l, "C")]; e++)
                ck_assert_msg(!isnan(c[e]), "NaN in C leaked through beta = 0 at %llu", (unsigned long long) e);
        launch_free(&l);
}
END_TEST

START_TEST(test_softmax_of_huge_logits_does_not_overflow)
{
        Launch l = launch_new("softmax", true);
        float *x = F(&l, "X"), *y = F(&l, "Y");
        uint32_t cols = U(&l, "cols"), top = cols < 5 ? cols - 1 : 4;
        double sum = 0;

        /* expf(80) alone overflows float, and so would exp(x - min): only x - max keeps every term <= 1. */
        for (uint32_t c = 0; c < cols; c++)
                x[c] = 80.0f + 25.0f * (float) (c % 5), sum += exp(25.0 * ((double) (c % 5) - top));
        launch_run(&l, 0, 1);
        for (uint32_t c = 0; c < cols; c++) {
                double want = exp(25.0 * ((double) (c % 5) - top)) / sum;

                ck_assert_msg(fabs(y[c] - want) <= (2 * 100 + 8) * eps * want + 1e-44, /* + float's underflow */
                              "softmax of huge logits: %g, want %g", y[c], want);
        }
        launch_free(&l);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("builtin-results");
        TCase *tc = tcase_create("builtin-results");
        SRunner *sr;
        int failed;

        tcase_set_timeout(tc, 120);
        tcase_add_loop_test(tc, test_kernel_matches_its_naive_reference, 0, ELEMENTSOF(kernels));
        tcase_add_loop_test(tc, test_results_are_identical_whatever_the_slicing, 0, ELEMENTSOF(kernels));
        tcase_add_test(tc, test_gemm_with_beta_zero_never_reads_c);
        tcase_add_test(tc, test_softmax_of_huge_logits_does_not_overflow);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
