/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Elementwise kernels: add and mul with broadcasting, relu, and the per-channel bias of NCHW tensors.
 * Each output element is one IEEE operation, so every backend must agree bit for bit. */
#include "builtin-internal.h"
#include "vgpu-util.h"

/* ---- add, mul: Y[rows, cols] = A op B, B's shape chosen by b_mode ---- */

enum { EW_A, EW_B, EW_Y, EW_ROWS, EW_COLS, EW_MODE };

enum {
        B_FULL = 0,   /* [rows, cols] */
        B_ROW = 1,    /* [cols], broadcast over rows */
        B_COLUMN = 2, /* [rows], broadcast over columns */
        B_SCALAR = 3, /* [1] */
};

static VgpuStatus binary_validate(const BuiltinArg *a, const char **reason)
{
        uint64_t rows = a[EW_ROWS].u32, cols = a[EW_COLS].u32, n, b_n;

        if (rows == 0 || cols == 0)
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "add/mul: rows and cols must be at least 1");
        if (a[EW_MODE].u32 > B_SCALAR)
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "add/mul: b_mode must be 0, 1, 2 or 3");
        if (!mul_ok(rows, cols, &n))
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "add/mul: dimensions overflow");
        b_n = a[EW_MODE].u32 == B_FULL ? n : a[EW_MODE].u32 == B_ROW ? cols : a[EW_MODE].u32 == B_COLUMN ? rows : 1;
        if (!holds_floats(&a[EW_A], n))
                return refuse(reason, VGPU_STATUS_OUT_OF_BOUNDS, "add/mul: A is smaller than rows*cols floats");
        if (!holds_floats(&a[EW_B], b_n))
                return refuse(reason, VGPU_STATUS_OUT_OF_BOUNDS, "add/mul: B is smaller than its b_mode's shape");
        if (!holds_floats(&a[EW_Y], n))
                return refuse(reason, VGPU_STATUS_OUT_OF_BOUNDS, "add/mul: Y is smaller than rows*cols floats");
        /* A broadcast B is read again for every row: writing over it would change later rows. */
        if (!output_allowed(&a[EW_Y], n, &a[EW_A], n, true) ||
            !output_allowed(&a[EW_Y], n, &a[EW_B], b_n, a[EW_MODE].u32 == B_FULL))
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "add/mul: Y overlaps A or B (only Y == A, "
                                                                    "or Y == B of the same shape, is allowed)");
        return VGPU_STATUS_OK;
}

static uint64_t rows_items(const BuiltinArg *a)
{
        return a[EW_ROWS].u32;
}

static uint64_t cols_cost(const BuiltinArg *a)
{
        return a[EW_COLS].u32;
}

/* Where row r's B values start, and how far apart they are (0: one value for the whole row). */
static const float *b_row(const BuiltinArg *a, size_t r, size_t *stride)
{
        const float *b = a[EW_B].data;
        size_t cols = a[EW_COLS].u32;

        switch (a[EW_MODE].u32) {
        case B_FULL:
                *stride = 1;
                return b + r * cols;
        case B_ROW:
                *stride = 1;
                return b;
        case B_COLUMN:
                *stride = 0;
                return b + r;
        default:
                *stride = 0;
                return b;
        }
}

/* In place is allowed, so no restrict on y: x and y may be the same row. */
static void add_run(const BuiltinArg *a, uint64_t begin, uint64_t end)
{
        const float *x = a[EW_A].data;
        float *y = a[EW_Y].data;
        size_t cols = a[EW_COLS].u32;

        for (size_t r = begin; r < end; r++) {
                size_t s;
                const float *b = b_row(a, r, &s);

                for (size_t c = 0; c < cols; c++)
                        y[r * cols + c] = x[r * cols + c] + b[c * s];
        }
}

static void mul_run(const BuiltinArg *a, uint64_t begin, uint64_t end)
{
        const float *x = a[EW_A].data;
        float *y = a[EW_Y].data;
        size_t cols = a[EW_COLS].u32;

        for (size_t r = begin; r < end; r++) {
                size_t s;
                const float *b = b_row(a, r, &s);

                for (size_t c = 0; c < cols; c++)
                        y[r * cols + c] = x[r * cols + c] * b[c * s];
        }
}

const BuiltinKernel builtin_add = {
        .name = "add",
        .signature = "bbbuuu",
        .params = { "A", "B", "Y", "rows", "cols", "b_mode" },
        .validate = binary_validate,
        .work_items = rows_items,
        .item_cost = cols_cost,
        .run = add_run,
};

const BuiltinKernel builtin_mul = {
        .name = "mul",
        .signature = "bbbuuu",
        .params = { "A", "B", "Y", "rows", "cols", "b_mode" },
        .validate = binary_validate,
        .work_items = rows_items,
        .item_cost = cols_cost,
        .run = mul_run,
};

/* ---- relu: Y[n] = max(X, 0), NaN passing through ---- */

enum { RELU_X, RELU_Y, RELU_N };

static VgpuStatus relu_validate(const BuiltinArg *a, const char **reason)
{
        uint64_t n = a[RELU_N].u32;

        if (n == 0)
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "relu: n must be at least 1");
        if (!holds_floats(&a[RELU_X], n) || !holds_floats(&a[RELU_Y], n))
                return refuse(reason, VGPU_STATUS_OUT_OF_BOUNDS, "relu: X or Y is smaller than n floats");
        if (!output_allowed(&a[RELU_Y], n, &a[RELU_X], n, true))
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "relu: Y overlaps X (only Y == X is allowed)");
        return VGPU_STATUS_OK;
}

static uint64_t relu_work_items(const BuiltinArg *a)
{
        return a[RELU_N].u32;
}

static uint64_t one_cost(const BuiltinArg *a _unused_)
{
        return 1;
}

static void relu_run(const BuiltinArg *a, uint64_t begin, uint64_t end)
{
        const float *x = a[RELU_X].data;
        float *y = a[RELU_Y].data;

        /* `x < 0 ? 0 : x`, not fmaxf: NaN must pass through (as in the frameworks), and a CUDA kernel
         * writing the same expression gets the same bits. */
        for (size_t i = begin; i < end; i++)
                y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

const BuiltinKernel builtin_relu = {
        .name = "relu",
        .signature = "bbu",
        .params = { "X", "Y", "n" },
        .validate = relu_validate,
        .work_items = relu_work_items,
        .item_cost = one_cost,
        .run = relu_run,
};

/* ---- bias_add: Y[n, c, s] = X[n, c, s] + bias[c] ---- */

enum { BA_X, BA_BIAS, BA_Y, BA_N, BA_C, BA_HW };

static VgpuStatus bias_add_validate(const BuiltinArg *a, const char **reason)
{
        uint64_t n = a[BA_N].u32, c = a[BA_C].u32, hw = a[BA_HW].u32, total;

        if (n == 0 || c == 0 || hw == 0)
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "bias_add: N, C and HW must be at least 1");
        if (!mul3_ok(n, c, hw, &total))
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "bias_add: dimensions overflow");
        if (!holds_floats(&a[BA_X], total) || !holds_floats(&a[BA_Y], total))
                return refuse(reason, VGPU_STATUS_OUT_OF_BOUNDS, "bias_add: X or Y is smaller than N*C*HW floats");
        if (!holds_floats(&a[BA_BIAS], c))
                return refuse(reason, VGPU_STATUS_OUT_OF_BOUNDS, "bias_add: bias is smaller than C floats");
        if (!output_allowed(&a[BA_Y], total, &a[BA_X], total, true) ||
            ranges_overlap(&a[BA_Y], total, &a[BA_BIAS], c))
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "bias_add: Y overlaps X or bias");
        return VGPU_STATUS_OK;
}

static uint64_t bias_add_work_items(const BuiltinArg *a)
{
        return (uint64_t) a[BA_N].u32 * a[BA_C].u32;
}

static uint64_t bias_add_item_cost(const BuiltinArg *a)
{
        return a[BA_HW].u32;
}

static void bias_add_run(const BuiltinArg *a, uint64_t begin, uint64_t end)
{
        const float *x = a[BA_X].data, *bias = a[BA_BIAS].data;
        float *y = a[BA_Y].data;
        size_t c = a[BA_C].u32, hw = a[BA_HW].u32;

        for (size_t p = begin; p < end; p++) {
                float b = bias[p % c];

                for (size_t s = 0; s < hw; s++)
                        y[p * hw + s] = x[p * hw + s] + b;
        }
}

const BuiltinKernel builtin_bias_add = {
        .name = "bias_add",
        .signature = "bbbuuu",
        .params = { "X", "bias", "Y", "N", "C", "HW" },
        .validate = bias_add_validate,
        .work_items = bias_add_work_items,
        .item_cost = bias_add_item_cost,
        .run = bias_add_run,
};
