/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Row reductions: softmax along the last dimension and sum_rows. Sums are kept in double, in ascending
 * order, so the result hardly depends on the order a GPU would pick and one rounding ends each row. */
#include <math.h>

#include "builtin-internal.h"

enum { R_X, R_Y, R_ROWS, R_COLS };

static VgpuStatus rows_validate(const BuiltinArg *a, uint64_t y_per_row, bool in_place, const char **reason)
{
        uint64_t rows = a[R_ROWS].u32, cols = a[R_COLS].u32, n, y_n;

        if (rows == 0 || cols == 0)
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "rows and cols must be at least 1");
        if (!mul_ok(rows, cols, &n) || !mul_ok(rows, y_per_row, &y_n))
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "dimensions overflow");
        if (!holds_floats(&a[R_X], n))
                return refuse(reason, VGPU_STATUS_OUT_OF_BOUNDS, "X is smaller than rows*cols floats");
        if (!holds_floats(&a[R_Y], y_n))
                return refuse(reason, VGPU_STATUS_OUT_OF_BOUNDS, "Y is smaller than its shape");
        if (!output_allowed(&a[R_Y], y_n, &a[R_X], n, in_place))
                return refuse(reason, VGPU_STATUS_INVALID_ARGUMENT, "Y overlaps X");
        return VGPU_STATUS_OK;
}

static uint64_t rows_work_items(const BuiltinArg *a)
{
        return a[R_ROWS].u32;
}

static uint64_t cols_cost(const BuiltinArg *a)
{
        return a[R_COLS].u32;
}

/* ---- softmax ---- */

static VgpuStatus softmax_validate(const BuiltinArg *a, const char **reason)
{
        return rows_validate(a, a[R_COLS].u32, true, reason);
}

/* Y may be X: each pass reads an element before it writes the same element, and nothing else. */
static void softmax_row(const float *x, float *y, size_t cols)
{
        float max = x[0];
        double sum = 0.0;

        /* Subtracting the row's maximum keeps every exponent <= 0: no overflow, and one term is 1. */
        for (size_t c = 1; c < cols; c++)
                if (x[c] > max)
                        max = x[c];
        for (size_t c = 0; c < cols; c++) {
                float e = expf(x[c] - max);

                y[c] = e;
                sum += e;
        }
        for (size_t c = 0; c < cols; c++)
                y[c] = (float) (y[c] / sum);
}

static void softmax_run(const BuiltinArg *a, uint64_t begin, uint64_t end)
{
        const float *x = a[R_X].data;
        float *y = a[R_Y].data;
        size_t cols = a[R_COLS].u32;

        for (size_t r = begin; r < end; r++)
                softmax_row(x + r * cols, y + r * cols, cols);
}

const BuiltinKernel builtin_softmax = {
        .name = "softmax",
        .signature = "bbuu",
        .params = { "X", "Y", "rows", "cols" },
        .validate = softmax_validate,
        .work_items = rows_work_items,
        .item_cost = cols_cost,
        .run = softmax_run,
};

/* ---- sum_rows ---- */

static VgpuStatus sum_rows_validate(const BuiltinArg *a, const char **reason)
{
        return rows_validate(a, 1, false, reason);
}

static void sum_rows_run(const BuiltinArg *a, uint64_t begin, uint64_t end)
{
        const float *restrict x = a[R_X].data;
        float *restrict y = a[R_Y].data;
        size_t cols = a[R_COLS].u32;

        for (size_t r = begin; r < end; r++) {
                double sum = 0.0;

                for (size_t c = 0; c < cols; c++)
                        sum += x[r * cols + c];
                y[r] = (float) sum;
        }
}

const BuiltinKernel builtin_sum_rows = {
        .name = "sum_rows",
        .signature = "bbuu",
        .params = { "X", "Y", "rows", "cols" },
        .validate = sum_rows_validate,
        .work_items = rows_work_items,
        .item_cost = cols_cost,
        .run = sum_rows_run,
};
