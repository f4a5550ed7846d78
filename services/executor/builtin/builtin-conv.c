/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Windowed kernels on NCHW images: conv2d (OIHW weights, stride, zero padding, dilation, optional bias) and
 * maxpool2d. One work item is one output plane; each output element sums in a fixed order (c, kh, kw). */
#include <math.h>
#include <string.h>

#include "builtin-internal.h"

typedef float v4f __attribute__((vector_size(16)));

/* One spatial dimension of a sliding window, as validated: everything the kernels index with. */
typedef struct Window {
        uint64_t in, k, stride, pad, dil, out;
} Window;

/* Checks one dimension and computes its output extent. The effective kernel extent dil (k - 1) + 1 must
 * fit in the padded input (else there is no output), and padding must leave every window some input:
 * for conv, pad < extent; for pooling 2 pad <= k, the frameworks' rule, which also keeps every window
 * non-empty. All values are u32, so no sum or product here can leave 64 bits. */
static bool window_init(Window *w, uint32_t in, uint32_t k, uint32_t stride, uint32_t pad, uint32_t dil,
                        bool pooling)
{
        uint64_t extent;

        *w = (Window) { .in = in, .k = k, .stride = stride, .pad = pad, .dil = dil };
        if (in == 0 || k == 0 || stride == 0 || dil == 0)
                return false;
        extent = w->dil * (w->k - 1) + 1;
        if (pooling ? 2 * w->pad > w->k : w->pad >= extent)
                return false;
        if (extent > w->in + 2 * w->pad)
                return false;
        w->out = (w->in + 2 * w->pad - extent) / w->stride + 1;
        return true;
}

/* ---- conv2d ---- */

enum { CV_X, CV_W, CV_BIAS, CV_Y, CV_N, CV_C, CV_H, CV_WIDTH, CV_O, CV_KH, CV_KW, CV_SH, CV_SW, CV_PH, CV_PW,
       CV_DH, CV_DW, CV_HAS_BIAS };

typedef struct ConvShape {
        Window h, w;
        uint64_t n, c, o, x_n, w_n, y_n;
} ConvShape;

static VgpuStatus conv_shape(const BuiltinArg *a, ConvShape *s, const char **reason)
{
        uint64_t cost;

        *s = (ConvShape) { .n = a[CV_N].u32, .c = a[CV_C].u32, .o = a[CV_O].u32 };
        if (s->n == 0 || s->c == 0 || s->o == 0 || a[CV_HAS_BIAS].u32 > 1)
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "conv2d: N, C, O must be >= 1, has_bias 0 or 1");
        if (!window_init(&s->h, a[CV_H].u32, a[CV_KH].u32, a[CV_SH].u32, a[CV_PH].u32, a[CV_DH].u32, false) ||
            !window_init(&s->w, a[CV_WIDTH].u32, a[CV_KW].u32, a[CV_SW].u32, a[CV_PW].u32, a[CV_DW].u32, false))
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT,
                              "conv2d: sizes, strides and dilations must be >= 1, padding smaller than the "
                              "kernel's extent, and the kernel no larger than the padded input");
        if (!mul4_ok(s->n, s->c, s->h.in, s->w.in, &s->x_n) || !mul4_ok(s->o, s->c, s->h.k, s->w.k, &s->w_n) ||
            !mul4_ok(s->n, s->o, s->h.out, s->w.out, &s->y_n) ||
            !mul4_ok(s->h.out * s->w.out, s->c, s->h.k, s->w.k, &cost)) /* out × out: two u32-sized values */
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "conv2d: dimensions overflow");
        if (cost > BUILTIN_ITEM_COST_MAX)
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "conv2d: one output plane's work is past its limit");
        return VGPU_STATUS_OK;
}

static VgpuStatus conv2d_validate(const BuiltinArg *a, const char **reason)
{
        bool has_bias = a[CV_HAS_BIAS].u32;
        ConvShape s;
        VgpuStatus r;

        r = conv_shape(a, &s, reason);
        if (r != VGPU_STATUS_OK)
                return r;
        if (!holds_floats(&a[CV_X], s.x_n))
                return refuse(reason, VGPU_STATUS_OUT_OF_BOUNDS, "conv2d: X is smaller than N*C*H*W floats");
        if (!holds_floats(&a[CV_W], s.w_n))
                return refuse(reason, VGPU_STATUS_OUT_OF_BOUNDS, "conv2d: weight is smaller than O*C*KH*KW floats");
        if (has_bias && !holds_floats(&a[CV_BIAS], s.o))
                return refuse(reason, VGPU_STATUS_OUT_OF_BOUNDS, "conv2d: bias is smaller than O floats");
        if (!holds_floats(&a[CV_Y], s.y_n))
                return refuse(reason, VGPU_STATUS_OUT_OF_BOUNDS, "conv2d: Y is smaller than N*O*OH*OW floats");
        if (ranges_overlap(&a[CV_Y], s.y_n, &a[CV_X], s.x_n) || ranges_overlap(&a[CV_Y], s.y_n, &a[CV_W], s.w_n) ||
            (has_bias && ranges_overlap(&a[CV_Y], s.y_n, &a[CV_BIAS], s.o)))
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "conv2d: Y overlaps X, weight or bias");
        return VGPU_STATUS_OK;
}

static uint64_t conv2d_work_items(const BuiltinArg *a)
{
        return (uint64_t) a[CV_N].u32 * a[CV_O].u32;
}

static uint64_t conv2d_item_cost(const BuiltinArg *a)
{
        ConvShape s;
        const char *reason;

        (void) conv_shape(a, &s, &reason);
        return s.h.out * s.w.out * s.c * s.h.k * s.w.k;
}

/* y[i] += wv * x[i * stride] for i < n; the vector path and the tail do the same two roundings. */
static void axpy(size_t n, float wv, const float *restrict x, size_t stride, float *restrict y)
{
        size_t i = 0;

        if (stride == 1)
                for (; i + 4 <= n; i += 4) {
                        v4f xv, yv;

                        memcpy(&xv, x + i, sizeof(xv));
                        memcpy(&yv, y + i, sizeof(yv));
                        yv += wv * xv;
                        memcpy(y + i, &yv, sizeof(yv));
                }
        for (; i < n; i++)
                y[i] += wv * x[i * stride];
}

/* Adds one input channel's contribution to output plane y; the bounds keep every read inside the image. */
static void conv_channel(const ConvShape *s, const float *x, const float *w, float *y)
{
        for (uint64_t kh = 0; kh < s->h.k; kh++)
                for (uint64_t oh = 0; oh < s->h.out; oh++) {
                        int64_t ih = (int64_t) (oh * s->h.stride + kh * s->h.dil) - (int64_t) s->h.pad;

                        if (ih < 0 || ih >= (int64_t) s->h.in)
                                continue;
                        for (uint64_t kw = 0; kw < s->w.k; kw++) {
                                int64_t off = (int64_t) (kw * s->w.dil) - (int64_t) s->w.pad;
                                int64_t last = (int64_t) s->w.in - 1 - off; /* largest ow*stride allowed */
                                uint64_t lo = off < 0 ? ((uint64_t) -off + s->w.stride - 1) / s->w.stride : 0;
                                uint64_t hi = last < 0 ? 0 : min_u64((uint64_t) last / s->w.stride + 1, s->w.out);

                                if (lo < hi)
                                        axpy(hi - lo, w[kh * s->w.k + kw],
                                             x + (uint64_t) ih * s->w.in + (int64_t) (lo * s->w.stride) + off,
                                             s->w.stride, y + oh * s->w.out + lo);
                        }
                }
}

static void conv2d_run(const BuiltinArg *a, uint64_t begin, uint64_t end)
{
        const float *x = a[CV_X].data, *w = a[CV_W].data, *bias = a[CV_BIAS].data;
        float *y = a[CV_Y].data;
        const char *reason;
        ConvShape s;

        (void) conv_shape(a, &s, &reason);
        for (uint64_t p = begin; p < end; p++) {
                uint64_t n = p / s.o, o = p % s.o, plane = s.h.out * s.w.out;
                float b = a[CV_HAS_BIAS].u32 ? bias[o] : 0.0f;
                float *yp = y + p * plane;

                for (uint64_t i = 0; i < plane; i++)
                        yp[i] = b;
                for (uint64_t c = 0; c < s.c; c++)
                        conv_channel(&s, x + (n * s.c + c) * s.h.in * s.w.in, w + (o * s.c + c) * s.h.k * s.w.k,
                                     yp);
        }
}

const BuiltinKernel builtin_conv2d = {
        .name = "conv2d",
        .signature = "bbbbuuuuuuuuuuuuuu",
        .params = { "X", "weight", "bias", "Y", "N", "C", "H", "W", "O", "KH", "KW", "stride_h", "stride_w",
                    "pad_h", "pad_w", "dil_h", "dil_w", "has_bias" },
        .validate = conv2d_validate,
        .work_items = conv2d_work_items,
        .item_cost = conv2d_item_cost,
        .run = conv2d_run,
};

/* ---- maxpool2d ---- */

enum { MP_X, MP_Y, MP_N, MP_C, MP_H, MP_W, MP_KH, MP_KW, MP_SH, MP_SW, MP_PH, MP_PW };

static VgpuStatus pool_shape(const BuiltinArg *a, Window *h, Window *w, uint64_t *x_n, uint64_t *y_n,
                             const char **reason)
{
        uint64_t n = a[MP_N].u32, c = a[MP_C].u32, cost;

        if (n == 0 || c == 0)
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "maxpool2d: N and C must be at least 1");
        if (!window_init(h, a[MP_H].u32, a[MP_KH].u32, a[MP_SH].u32, a[MP_PH].u32, 1, true) ||
            !window_init(w, a[MP_W].u32, a[MP_KW].u32, a[MP_SW].u32, a[MP_PW].u32, 1, true))
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT,
                              "maxpool2d: sizes and strides must be >= 1, padding at most half the kernel, and "
                              "the kernel no larger than the padded input");
        if (!mul4_ok(n, c, h->in, w->in, x_n) || !mul4_ok(n, c, h->out, w->out, y_n) ||
            !mul4_ok(h->out, w->out, h->k, w->k, &cost))
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "maxpool2d: dimensions overflow");
        if (cost > BUILTIN_ITEM_COST_MAX)
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "maxpool2d: one plane's work is past its limit");
        return VGPU_STATUS_OK;
}

static VgpuStatus maxpool2d_validate(const BuiltinArg *a, const char **reason)
{
        uint64_t x_n, y_n;
        Window h, w;
        VgpuStatus r;

        r = pool_shape(a, &h, &w, &x_n, &y_n, reason);
        if (r != VGPU_STATUS_OK)
                return r;
        if (!holds_floats(&a[MP_X], x_n))
                return refuse(reason, VGPU_STATUS_OUT_OF_BOUNDS, "maxpool2d: X is smaller than N*C*H*W floats");
        if (!holds_floats(&a[MP_Y], y_n))
                return refuse(reason, VGPU_STATUS_OUT_OF_BOUNDS, "maxpool2d: Y is smaller than N*C*OH*OW floats");
        if (ranges_overlap(&a[MP_Y], y_n, &a[MP_X], x_n))
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "maxpool2d: Y overlaps X");
        return VGPU_STATUS_OK;
}

static uint64_t maxpool2d_work_items(const BuiltinArg *a)
{
        return (uint64_t) a[MP_N].u32 * a[MP_C].u32;
}

static uint64_t maxpool2d_item_cost(const BuiltinArg *a)
{
        uint64_t x_n, y_n;
        const char *reason;
        Window h, w;

        (void) pool_shape(a, &h, &w, &x_n, &y_n, &reason);
        return h.out * w.out * h.k * w.k;
}

/* The window [start, start + k) clipped to [0, in): padding is never a candidate. */
static void clip(const Window *w, uint64_t o, uint64_t *lo, uint64_t *hi)
{
        int64_t start = (int64_t) (o * w->stride) - (int64_t) w->pad;

        *lo = start < 0 ? 0 : (uint64_t) start;
        *hi = min_u64((uint64_t) (start + (int64_t) w->k), w->in);
}

static float window_max(const float *x, uint64_t width, uint64_t h0, uint64_t h1, uint64_t w0, uint64_t w1)
{
        float m = -INFINITY;

        for (uint64_t ih = h0; ih < h1; ih++)
                for (uint64_t iw = w0; iw < w1; iw++) {
                        float v = x[ih * width + iw];

                        /* v > m, or v is the window's first NaN: NaN propagates, deterministically. */
                        if (!isnan(m) && !(v <= m))
                                m = v;
                }
        return m;
}

static void maxpool2d_run(const BuiltinArg *a, uint64_t begin, uint64_t end)
{
        const float *x = a[MP_X].data;
        float *y = a[MP_Y].data;
        uint64_t x_n, y_n;
        const char *reason;
        Window h, w;

        (void) pool_shape(a, &h, &w, &x_n, &y_n, &reason);
        for (uint64_t p = begin; p < end; p++)
                for (uint64_t oh = 0; oh < h.out; oh++) {
                        uint64_t h0, h1;

                        clip(&h, oh, &h0, &h1);
                        for (uint64_t ow = 0; ow < w.out; ow++) {
                                uint64_t w0, w1;

                                clip(&w, ow, &w0, &w1);
                                y[(p * h.out + oh) * w.out + ow] = window_max(x + p * h.in * w.in, w.in, h0, h1, w0, w1);
                        }
                }
}

const BuiltinKernel builtin_maxpool2d = {
        .name = "maxpool2d",
        .signature = "bbuuuuuuuuuu",
        .params = { "X", "Y", "N", "C", "H", "W", "KH", "KW", "stride_h", "stride_w", "pad_h", "pad_w" },
        .validate = maxpool2d_validate,
        .work_items = maxpool2d_work_items,
        .item_cost = maxpool2d_item_cost,
        .run = maxpool2d_run,
};
