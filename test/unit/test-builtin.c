/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu.builtin against naive references written here in the most obvious loop form (so they share no code
 * or cleverness with the kernels), slicing invariance, and validation: every lie is refused, a refused
 * launch touches no memory, and an accepted one stays inside buffers that end at a guard page. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "builtin.h"
#include "vgpu-util.h"

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t rnd(uint32_t lo, uint32_t hi) /* inclusive */
{
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        return lo + (uint32_t) (rng % ((uint64_t) hi - lo + 1));
}

static float rnd_float(void)
{
        return (float) rnd(0, 1 << 24) / (1 << 23) - 1.0f; /* [-1, 1] */
}

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

static size_t idx(const Launch *l, const char *param)
{
        for (size_t i = 0; i < l->n; i++)
                if (streq(l->k->params[i], param))
                        return i;
        ck_abort_msg("%s has no parameter %s", l->k->name, param);
        return 0;
}

static uint32_t U(const Launch *l, const char *p)
{
        return l->args[idx(l, p)].u32;
}

static void set(Launch *l, const char *p, uint32_t v)
{
        l->args[idx(l, p)].u32 = v;
}

static void need(Launch *l, const char *p, uint64_t floats)
{
        l->floats[idx(l, p)] = floats;
}

static float *F(const Launch *l, const char *p)
{
        return l->args[idx(l, p)].data;
}

static uint64_t out_extent(uint64_t in, uint64_t k, uint64_t s, uint64_t p, uint64_t d)
{
        return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

static void random_gemm(Launch *l)
{
        uint32_t m = rnd(1, 37), n = rnd(1, 150), k = rnd(1, 300);

        set(l, "M", m), set(l, "N", n), set(l, "K", k), set(l, "transA", rnd(0, 1)), set(l, "transB", rnd(0, 1));
        l->args[idx(l, "alpha")].f32 = rnd(0, 1) ? 1.0f : rnd_float();
        l->args[idx(l, "beta")].f32 = (float[]) { 0.0f, 1.0f, rnd_float() }[rnd(0, 2)];
        need(l, "A", (uint64_t) m * k), need(l, "B", (uint64_t) k * n), need(l, "C", (uint64_t) m * n);
}

static void random_binary(Launch *l)
{
        uint32_t rows = rnd(1, 20), cols = rnd(1, 40), mode = rnd(0, 3);

        set(l, "rows", rows), set(l, "cols", cols), set(l, "b_mode", mode);
        need(l, "A", rows * cols), need(l, "Y", rows * cols);
        need(l, "B", (uint32_t[]) { rows * cols, cols, rows, 1 }[mode]);
}

static void random_rows(Launch *l)
{
        uint32_t rows = rnd(1, 12), cols = rnd(1, 100);

        set(l, "rows", rows), set(l, "cols", cols), need(l, "X", rows * cols);
        need(l, "Y", streq(l->k->name, "sum_rows") ? rows : rows * cols);
}

static void random_conv2d(Launch *l)
{
        static const char *const dims[2][6] = { { "H", "KH", "stride_h", "pad_h", "dil_h" },
                                                { "W", "KW", "stride_w", "pad_w", "dil_w" } };
        uint32_t n = rnd(1, 2), c = rnd(1, 4), o = rnd(1, 4), in[2], out[2];

        for (int d = 0; d < 2; d++) {
                uint32_t k = rnd(1, 4), dil = rnd(1, 3), ext = dil * (k - 1) + 1, pad = rnd(0, ext - 1);
                uint32_t stride = rnd(1, 3);

                in[d] = (ext > 2 * pad ? ext - 2 * pad : 1) + rnd(0, 12);
                out[d] = out_extent(in[d], k, stride, pad, dil);
                set(l, dims[d][0], in[d]), set(l, dims[d][1], k), set(l, dims[d][2], stride);
                set(l, dims[d][3], pad), set(l, dims[d][4], dil);
        }
        set(l, "N", n), set(l, "C", c), set(l, "O", o), set(l, "has_bias", rnd(0, 1));
        need(l, "X", n * c * in[0] * in[1]), need(l, "weight", o * c * U(l, "KH") * U(l, "KW"));
        need(l, "bias", U(l, "has_bias") ? o : 0), need(l, "Y", n * o * out[0] * out[1]);
}

static void random_maxpool2d(Launch *l)
{
        static const char *const dims[2][4] = { { "H", "KH", "stride_h", "pad_h" }, { "W", "KW", "stride_w", "pad_w" } };
        uint32_t n = rnd(1, 2), c = rnd(1, 4), in[2], out[2];

        for (int d = 0; d < 2; d++) {
                uint32_t k = rnd(1, 4), pad = rnd(0, k / 2), stride = rnd(1, 3);

                in[d] = (k > 2 * pad ? k - 2 * pad : 1) + rnd(0, 12);
                out[d] = out_extent(in[d], k, stride, pad, 1);
                set(l, dims[d][0], in[d]), set(l, dims[d][1], k), set(l, dims[d][2], stride), set(l, dims[d][3], pad);
        }
        set(l, "N", n), set(l, "C", c);
        need(l, "X", n * c * in[0] * in[1]), need(l, "Y", n * c * out[0] * out[1]);
}

static void random_other(Launch *l)
{
        uint32_t n = rnd(1, 3), c = rnd(1, 5), hw = rnd(1, 50);

        if (streq(l->k->name, "relu")) {
                set(l, "n", hw * 10), need(l, "X", hw * 10), need(l, "Y", hw * 10);
                return;
        }
        set(l, "N", n), set(l, "C", c), set(l, "HW", hw); /* bias_add */
        need(l, "X", n * c * hw), need(l, "bias", c), need(l, "Y", n * c * hw);
}

/* A buffer of `bytes` that ends where a PROT_NONE page begins (at_end), or starts right after one. */
static void *guarded(Launch *l, size_t i, uint64_t bytes, bool at_end)
{
        size_t page = (size_t) sysconf(_SC_PAGESIZE), body = (bytes + page - 1) / page * page;
        uint8_t *base = mmap(NULL, body + 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        ck_assert_msg(base != MAP_FAILED, "mmap failed");
        ck_assert_int_eq(mprotect(base, page, PROT_NONE), 0);
        ck_assert_int_eq(mprotect(base + page + body, page, PROT_NONE), 0);
        l->map[i] = base, l->map_len[i] = body + 2 * page;
        return at_end ? base + page + body - bytes : base + page;
}

/* A random valid launch of kernel `name`, every buffer exactly as large as the kernel needs. */
static Launch launch_new(const char *name, bool at_end)
{
        Launch l = { .k = builtin_find(name, strlen(name)) };

        ck_assert_msg(l.k, "no built-in %s", name);
        l.n = strlen(l.k->signature);
        if (streq(name, "gemm"))
                random_gemm(&l);
        else if (streq(name, "add") || streq(name, "mul"))
                random_binary(&l);
        else if (streq(name, "softmax") || streq(name, "sum_rows"))
                random_rows(&l);
        else if (streq(name, "conv2d"))
                random_conv2d(&l);
        else if (streq(name, "maxpool2d"))
                random_maxpool2d(&l);
        else
                random_other(&l);
        for (size_t i = 0; i < l.n; i++) {
                if (l.k->signature[i] != 'b')
                        continue;
                l.args[i].data = guarded(&l, i, l.floats[i] * sizeof(float), at_end);
                l.args[i].size = l.floats[i] * sizeof(float);
                for (uint64_t j = 0; j < l.floats[i]; j++)
                        ((float *) l.args[i].data)[j] = rnd_float() * 4.0f;
                if (streq(l.k->params[i], "Y") || streq(l.k->params[i], "C"))
                        l.out = i;
        }
        return l;
}

static void launch_free(Launch *l)
{
        for (size_t i = 0; i < l->n; i++)
                if (l->map[i])
                        munmap(l->map[i], l->map_len[i]);
}

static void launch_protect(Launch *l, int prot)
{
        size_t page = (size_t) sysconf(_SC_PAGESIZE);

        for (size_t i = 0; i < l->n; i++)
                if (l->map[i])
                        ck_assert_int_eq(mprotect((uint8_t *) l->map[i] + page, l->map_len[i] - 2 * page, prot), 0);
}

static VgpuStatus launch_run(Launch *l, uint64_t begin, uint64_t end)
{
        const char *reason = NULL;
        VgpuStatus r = builtin_run(l->k, l->args, l->n, begin, end, &reason);

        ck_assert_msg(r == VGPU_STATUS_OK, "%s [%llu, %llu) refused: %s", l->k->name, (unsigned long long) begin,
                      (unsigned long long) end, reason);
        return r;
}

static VgpuStatus validate(Launch *l)
{
        const char *reason = NULL;
        VgpuStatus r = builtin_validate(l->k, l->args, l->n, &reason);

        ck_assert_msg((r == VGPU_STATUS_OK) == (reason == NULL), "%s: a refusal without reason, or vice versa",
                      l->k->name);
        return r;
}

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

static const char *const kernels[] = { "gemm", "add", "mul", "relu", "bias_add", "softmax", "sum_rows",
                                       "conv2d", "maxpool2d" };

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

START_TEST(test_every_buffer_one_float_short_is_out_of_bounds)
{
        for (size_t ki = 0; ki < ELEMENTSOF(kernels); ki++)
                for (int t = 0; t < 20; t++) {
                        Launch l = launch_new(kernels[ki], true);

                        ck_assert_msg(validate(&l) == VGPU_STATUS_OK, "%s: exact sizes refused", kernels[ki]);
                        for (size_t i = 0; i < l.n; i++) {
                                if (l.k->signature[i] != 'b' || l.floats[i] == 0)
                                        continue;
                                l.args[i].size -= sizeof(float);
                                ck_assert_msg(validate(&l) == VGPU_STATUS_OUT_OF_BOUNDS, "%s: %s one float short accepted",
                                              kernels[ki], l.k->params[i]);
                                l.args[i].size += sizeof(float);
                        }
                        launch_free(&l);
                }
}
END_TEST

/* Parameters for which 0 is a meaning, not a missing dimension. */
static bool zero_allowed(const char *p)
{
        static const char *const names[] = { "transA", "transB", "b_mode", "pad_h", "pad_w", "has_bias" };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(p, names[i]))
                        return true;
        return false;
}

START_TEST(test_zero_dimensions_strides_and_dilations_are_refused)
{
        for (size_t ki = 0; ki < ELEMENTSOF(kernels); ki++) {
                Launch l = launch_new(kernels[ki], true);

                for (size_t i = 0; i < l.n; i++) {
                        uint32_t saved = l.args[i].u32;

                        if (l.k->signature[i] != 'u' || zero_allowed(l.k->params[i]))
                                continue;
                        l.args[i].u32 = 0;
                        ck_assert_msg(validate(&l) == VGPU_STATUS_INVALID_ARGUMENT, "%s: %s = 0 accepted", kernels[ki],
                                      l.k->params[i]);
                        l.args[i].u32 = saved;
                }
                launch_free(&l);
        }
}
END_TEST

static void expect(Launch *l, const char *param, uint32_t v, VgpuStatus status)
{
        uint32_t saved = U(l, param);

        set(l, param, v);
        ck_assert_msg(validate(l) == status, "%s: %s = %u not answered %d", l->k->name, param, v, status);
        set(l, param, saved);
}

START_TEST(test_out_of_domain_parameters_and_overflowing_products_are_refused)
{
        Launch g = launch_new("gemm", true), c = launch_new("conv2d", true), p = launch_new("maxpool2d", true);
        Launch b = launch_new("bias_add", true), a = launch_new("add", true);

        expect(&g, "K", BUILTIN_GEMM_K_MAX + 1, VGPU_STATUS_INVALID_ARGUMENT);
        expect(&g, "transA", 2, VGPU_STATUS_INVALID_ARGUMENT);
        expect(&g, "transB", UINT32_MAX, VGPU_STATUS_INVALID_ARGUMENT);
        expect(&g, "M", UINT32_MAX, VGPU_STATUS_OUT_OF_BOUNDS);
        set(&g, "K", 1 << 20), expect(&g, "N", 1 << 13, VGPU_STATUS_INVALID_ARGUMENT); /* a row past 2^32 */
        expect(&a, "b_mode", 4, VGPU_STATUS_INVALID_ARGUMENT);
        expect(&c, "has_bias", 2, VGPU_STATUS_INVALID_ARGUMENT);
        expect(&c, "pad_h", U(&c, "dil_h") * (U(&c, "KH") - 1) + 1, VGPU_STATUS_INVALID_ARGUMENT);
        expect(&c, "KW", U(&c, "W") + 2 * U(&c, "pad_w") + 1, VGPU_STATUS_INVALID_ARGUMENT);
        expect(&p, "pad_w", U(&p, "KW") / 2 + 1, VGPU_STATUS_INVALID_ARGUMENT);
        expect(&p, "KH", U(&p, "H") + 2 * U(&p, "pad_h") + 1, VGPU_STATUS_INVALID_ARGUMENT);
        /* N*C*H*W of four u32s overflows uint64: refused as a lie, not wrapped into a small size. */
        set(&c, "N", UINT32_MAX), set(&c, "C", UINT32_MAX), set(&c, "H", UINT32_MAX);
        expect(&c, "W", UINT32_MAX, VGPU_STATUS_INVALID_ARGUMENT);
        set(&p, "N", UINT32_MAX), set(&p, "C", UINT32_MAX), set(&p, "H", UINT32_MAX);
        expect(&p, "W", UINT32_MAX, VGPU_STATUS_INVALID_ARGUMENT);
        set(&b, "N", UINT32_MAX), set(&b, "C", UINT32_MAX), set(&b, "HW", UINT32_MAX);
        ck_assert_int_eq(validate(&b), VGPU_STATUS_INVALID_ARGUMENT);
        launch_free(&g), launch_free(&c), launch_free(&p), launch_free(&b), launch_free(&a);
}
END_TEST

START_TEST(test_outputs_may_not_overlap_inputs_except_exactly_in_place)
{
        Launch g = launch_new("gemm", true), r = launch_new("relu", true), s = launch_new("softmax", true);
        Launch c = launch_new("conv2d", true), a = launch_new("add", true);
        float *x = F(&s, "X");
        double sum = 0;

        /* Validation only, never run: claimed sizes large enough that overlap is what gets refused. */
        g.args[idx(&g, "C")] = (BuiltinArg) { .data = F(&g, "A"), .size = 1u << 30 };
        ck_assert_int_eq(validate(&g), VGPU_STATUS_INVALID_ARGUMENT);
        c.args[idx(&c, "Y")] = (BuiltinArg) { .data = F(&c, "X"), .size = 1u << 30 };
        ck_assert_int_eq(validate(&c), VGPU_STATUS_INVALID_ARGUMENT);
        r.args[idx(&r, "Y")] = r.args[idx(&r, "X")];
        ck_assert_int_eq(validate(&r), VGPU_STATUS_OK);
        r.args[idx(&r, "Y")].data = F(&r, "X") + 1; /* shifted by one: overlaps, not the same range */
        if (U(&r, "n") > 1)
                ck_assert_int_eq(validate(&r), VGPU_STATUS_INVALID_ARGUMENT);
        set(&a, "b_mode", 1), a.args[idx(&a, "B")].size = 1u << 30;
        a.args[idx(&a, "Y")] = (BuiltinArg) { .data = F(&a, "B"), .size = 1u << 30 };
        ck_assert_int_eq(validate(&a), VGPU_STATUS_INVALID_ARGUMENT); /* a broadcast B is read by every row */
        s.args[idx(&s, "Y")] = s.args[idx(&s, "X")];
        launch_run(&s, 0, U(&s, "rows"));
        for (uint32_t i = 0; i < U(&s, "cols"); i++)
                sum += x[i];
        ck_assert_msg(fabs(sum - 1.0) < 1e-5, "softmax in place: row sums to %g", sum);
        launch_free(&g), launch_free(&r), launch_free(&s), launch_free(&c), launch_free(&a);
}
END_TEST

START_TEST(test_registry_finds_exact_names_and_checks_the_argument_list)
{
        Launch l = launch_new("relu", true);
        BuiltinArg moved = l.args[0];
        const char *reason = NULL;

        ck_assert_uint_eq(builtin_count(), ELEMENTSOF(kernels));
        for (size_t i = 0; i < builtin_count(); i++) {
                const BuiltinKernel *k = builtin_get(i);
                size_t n = strlen(k->signature);

                ck_assert_ptr_eq(builtin_find(k->name, strlen(k->name)), k);
                ck_assert_msg(n <= BUILTIN_ARGS_MAX && k->params[n - 1] && (n == BUILTIN_ARGS_MAX || !k->params[n]),
                              "%s: signature and parameter names disagree", k->name);
                ck_assert_msg(strspn(k->signature, "buif") == n, "%s: unknown kind in signature", k->name);
        }
        ck_assert_ptr_null(builtin_get(builtin_count()));
        ck_assert_ptr_null(builtin_find("gem", 3));
        ck_assert_ptr_null(builtin_find("gemmx", 5));
        ck_assert_ptr_nonnull(builtin_find("gemm\0junk", 4)); /* wire names carry no NUL */
        ck_assert_int_eq(builtin_validate(l.k, l.args, l.n - 1, &reason), VGPU_STATUS_INVALID_ARGUMENT);
        l.args[0].data = (uint8_t *) moved.data + 2;
        ck_assert_int_eq(builtin_validate(l.k, l.args, l.n, &reason), VGPU_STATUS_INVALID_ARGUMENT); /* unaligned */
        l.args[0].data = NULL;
        ck_assert_int_eq(builtin_validate(l.k, l.args, l.n, &reason), VGPU_STATUS_INVALID_ARGUMENT);
        l.args[0] = moved;
        ck_assert_int_eq(builtin_run(l.k, l.args, l.n, 0, U(&l, "n") + 1, &reason), VGPU_STATUS_OUT_OF_BOUNDS);
        ck_assert_int_eq(builtin_run(l.k, l.args, l.n, 2, 1, &reason), VGPU_STATUS_OUT_OF_BOUNDS);
        launch_free(&l);
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

/* Random lies over exact-size buffers: whatever is accepted must stay inside (guard pages catch any stray
 * access), and whatever is refused must touch no byte (every buffer is PROT_NONE while it is refused). */
START_TEST(test_lies_are_refused_without_touching_memory_and_accepted_launches_stay_inside)
{
        static const uint32_t lies[] = { 0, 1, 2, 3, 0x7fffffff, 0x80000000, UINT32_MAX, 1u << 24, (1u << 24) + 1 };
        const char *name = kernels[_i];
        unsigned refused = 0;

        for (int t = 0; t < 300; t++) {
                Launch l = launch_new(name, t % 2);
                size_t i = rnd(0, l.n - 1);
                const char *reason = NULL;
                VgpuStatus r;

                if (l.k->signature[i] == 'b')
                        l.args[i].size = l.args[i].size >= 4 ? l.args[i].size - rnd(1, 4) : 0;
                else if (l.k->signature[i] == 'u')
                        l.args[i].u32 = rnd(0, 1) ? lies[rnd(0, ELEMENTSOF(lies) - 1)] : l.args[i].u32 + rnd(1, 3);
                r = validate(&l);
                if (r != VGPU_STATUS_OK) {
                        refused++;
                        launch_protect(&l, PROT_NONE);
                        ck_assert_int_eq(builtin_run(l.k, l.args, l.n, 0, 1, &reason), r);
                        launch_protect(&l, PROT_READ | PROT_WRITE);
                } else
                        launch_run(&l, 0, l.k->work_items(l.args));
                launch_free(&l);
        }
        ck_assert_msg(refused > 30, "%s: only %u of 300 lies refused; the mutations are too weak", name, refused);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("builtin");
        TCase *tc = tcase_create("builtin");
        SRunner *sr;
        int failed;

        tcase_set_timeout(tc, 120);
        tcase_add_loop_test(tc, test_kernel_matches_its_naive_reference, 0, ELEMENTSOF(kernels));
        tcase_add_loop_test(tc, test_results_are_identical_whatever_the_slicing, 0, ELEMENTSOF(kernels));
        tcase_add_test(tc, test_every_buffer_one_float_short_is_out_of_bounds);
        tcase_add_test(tc, test_zero_dimensions_strides_and_dilations_are_refused);
        tcase_add_test(tc, test_out_of_domain_parameters_and_overflowing_products_are_refused);
        tcase_add_test(tc, test_outputs_may_not_overlap_inputs_except_exactly_in_place);
        tcase_add_test(tc, test_registry_finds_exact_names_and_checks_the_argument_list);
        tcase_add_test(tc, test_gemm_with_beta_zero_never_reads_c);
        tcase_add_test(tc, test_softmax_of_huge_logits_does_not_overflow);
        tcase_add_loop_test(tc, test_lies_are_refused_without_touching_memory_and_accepted_launches_stay_inside, 0,
                            ELEMENTSOF(kernels));
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
