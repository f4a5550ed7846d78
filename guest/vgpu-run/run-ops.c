/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-run's operations: shapes are checked here, before anything is sent, so that a mistake reads as a
 * sentence about the files; the host checks everything again (docs/builtins.md). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "run.h"
#include "vgpu-util.h"

static double now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

char run_error[512];

/* Says why on stderr, and keeps the sentence for --json. */
_printf_(2, 3) static int failed(const RunReport *rep, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(run_error, sizeof(run_error), fmt, ap);
        va_end(ap);
        fprintf(stderr, "vgpu-run: %s: %s\n", rep->kernel, run_error);
        return 1;
}

static int host_failed(const RunReport *rep, const char *what, int r)
{
        return failed(rep, "%s: %s", what, *vgpu_last_error() ? vgpu_last_error() : vgpu_strerror(r));
}

static int load(RunReport *rep, const char *name, const char *path)
{
        NpyArray *a = &rep->inputs[rep->n_inputs];
        char err[256] = "";

        if (npy_read(path, a, err, sizeof(err)) < 0)
                return failed(rep, "%s: %s", path, err);
        rep->input_names[rep->n_inputs] = name;
        rep->input_paths[rep->n_inputs++] = path;
        if (a->count == 0)
                return failed(rep, "%s: an empty array: nothing to compute", path);
        return 0;
}

static int dim32(const RunReport *rep, uint64_t v, const char *what, uint32_t *ret)
{
        if (v == 0 || v > UINT32_MAX)
                return failed(rep, "%s = %llu is out of range (1 … %u)", what, (unsigned long long)v, UINT32_MAX);
        *ret = (uint32_t)v;
        return 0;
}

static int set_output(RunReport *rep, const RunArgs *a, uint32_t rank, const uint64_t *shape)
{
        rep->output = (NpyArray){.rank = rank, .count = 1};
        for (uint32_t i = 0; i < rank; i++)
                rep->output.count *= rep->output.shape[i] = shape[i];
        rep->output.data = calloc(rep->output.count, sizeof(float));
        rep->output_path = a->out;
        return rep->output.data ? 0 : failed(rep, "out of memory");
}

/* Uploads every input, allocates the output (initialized from input init_from, or -1), and returns the
 * handles: h[i] for inputs, h[n_inputs] for the output. */
static int upload(VgpuClient *c, RunReport *rep, int init_from, VgpuMemHandle *h)
{
        double t = now_ms();
        int r;

        for (unsigned i = 0; i <= rep->n_inputs; i++) {
                const NpyArray *x = i < rep->n_inputs ? &rep->inputs[i] : &rep->output;
                const NpyArray *src = i == rep->n_inputs && init_from >= 0 ? &rep->inputs[init_from] : x;

                r = vgpu_mem_alloc(c, x->count * sizeof(float), &h[i]);
                if (r < 0)
                        return host_failed(rep, "cannot allocate device memory", r);
                if (src != &rep->output)
                        r = vgpu_memcpy_htod(c, h[i], 0, src->data, src->count * sizeof(float));
                if (r < 0)
                        return host_failed(rep, "cannot copy to the device", r);
        }
        r = vgpu_sync(c);
        if (r < 0)
                return host_failed(rep, "cannot copy to the device", r);
        rep->upload_ms = now_ms() - t;
        return 0;
}

static int launch(VgpuClient *c, RunReport *rep, const VgpuParam *p, size_t n, VgpuMemHandle out)
{
        VgpuModuleHandle mod;
        VgpuFunctionHandle fn;
        double t;
        int r;

        r = vgpu_module_builtin(c, &mod);
        if (r < 0)
                return host_failed(rep, "cannot load vgpu.builtin", r);
        r = vgpu_get_function(c, mod, rep->kernel, &fn);
        if (r < 0)
                return host_failed(rep, "cannot find the kernel", r);
        t = now_ms();
        r = vgpu_launch(c, fn, VGPU_DIM3(1, 1, 1), VGPU_DIM3(1, 1, 1), 0, p, n);
        if (r >= 0)
                r = vgpu_sync(c);
        if (r < 0)
                return host_failed(rep, "the kernel failed", r);
        rep->kernel_ms = now_ms() - t;
        t = now_ms();
        r = vgpu_memcpy_dtoh(c, rep->output.data, out, 0, rep->output.count * sizeof(float));
        if (r < 0)
                return host_failed(rep, "cannot copy from the device", r);
        rep->download_ms = now_ms() - t;
        return 0;
}

static int op_gemm(VgpuClient *c, const RunArgs *a, RunReport *rep)
{
        uint32_t m = 0, n = 0, k = 0, kb = 0;
        VgpuMemHandle h[4];
        const NpyArray *A, *B;
        int r;

        if ((r = load(rep, "A", a->a)) || (r = load(rep, "B", a->b)))
                return r;
        A = &rep->inputs[0];
        B = &rep->inputs[1];
        if (A->rank != 2 || B->rank != 2)
                return failed(rep, "A and B must be matrices (rank 2)");
        if (dim32(rep, A->shape[a->trans_a], "M", &m) || dim32(rep, A->shape[!a->trans_a], "K", &k) ||
            dim32(rep, B->shape[!a->trans_b], "N", &n) || dim32(rep, B->shape[a->trans_b], "K of B", &kb))
                return 1;
        if (k != kb)
                return failed(rep, "op(A) is %ux%u but op(B) is %ux%u: inner dimensions differ", m, k, kb, n);
        if (a->beta != 0.0f && !a->c)
                return failed(rep, "--beta needs --c, the matrix C to scale and add");
        if (a->c && (r = load(rep, "C", a->c)))
                return r;
        if (a->c && (rep->inputs[2].rank != 2 || rep->inputs[2].shape[0] != m || rep->inputs[2].shape[1] != n))
                return failed(rep, "C must be %ux%u", m, n);
        if ((r = set_output(rep, a, 2, (uint64_t[]){m, n})) || (r = upload(c, rep, a->c ? 2 : -1, h)))
                return r;
        VgpuParam p[] = {vgpu_param_buffer(h[0], 0), vgpu_param_buffer(h[1], 0), vgpu_param_buffer(h[rep->n_inputs], 0),
                         vgpu_param_u32(m), vgpu_param_u32(n), vgpu_param_u32(k), vgpu_param_f32(a->alpha),
                         vgpu_param_f32(a->beta), vgpu_param_u32(a->trans_a), vgpu_param_u32(a->trans_b)};
        return launch(c, rep, p, ELEMENTSOF(p), h[rep->n_inputs]);
}

/* A seen as [rows, cols] (cols the last dimension); B's shape picks the broadcast mode. */
static int broadcast_mode(const NpyArray *A, const NpyArray *B, uint64_t rows, uint64_t cols, uint32_t *ret)
{
        bool same = A->rank == B->rank && memcmp(A->shape, B->shape, sizeof(A->shape[0]) * A->rank) == 0;

        if (same)
                *ret = 0;
        else if (B->count == 1)
                *ret = 3;
        else if (B->rank == 1 && B->count == cols)
                *ret = 1;
        else if (B->count == rows && (B->rank == 1 || B->shape[B->rank - 1] == 1))
                *ret = 2;
        else
                *ret = 4;
        return *ret <= 3 ? 0 : -EINVAL;
}

static int op_elementwise(VgpuClient *c, const RunArgs *a, RunReport *rep)
{
        uint32_t rows = 0, cols = 0, mode = 0;
        VgpuMemHandle h[3];
        const NpyArray *A;
        int r;

        if ((r = load(rep, "A", a->a)) || (r = load(rep, "B", a->b)))
                return r;
        A = &rep->inputs[0];
        if (dim32(rep, A->rank ? A->shape[A->rank - 1] : 1, "columns", &cols) ||
            dim32(rep, A->count / cols, "rows", &rows))
                return 1;
        if (broadcast_mode(A, &rep->inputs[1], rows, cols, &mode) < 0)
                return failed(rep, "B does not broadcast against A: it must have A's shape, [%u] (one value per "
                                   "column), [%u] or [%u, 1] (one per row) or one element", cols, rows, rows);
        if ((r = set_output(rep, a, A->rank, A->shape)) || (r = upload(c, rep, -1, h)))
                return r;
        VgpuParam p[] = {vgpu_param_buffer(h[0], 0), vgpu_param_buffer(h[1], 0), vgpu_param_buffer(h[2], 0),
                         vgpu_param_u32(rows), vgpu_param_u32(cols), vgpu_param_u32(mode)};
        return launch(c, rep, p, ELEMENTSOF(p), h[2]);
}

static int op_unary(VgpuClient *c, const RunArgs *a, RunReport *rep)
{
        uint32_t rows = 0, cols = 0;
        VgpuMemHandle h[2];
        const NpyArray *X;
        int r;

        if ((r = load(rep, "X", a->in)))
                return r;
        X = &rep->inputs[0];
        if (dim32(rep, X->rank ? X->shape[X->rank - 1] : 1, "columns", &cols) ||
            dim32(rep, X->count / cols, "rows", &rows))
                return 1;
        if (streq(rep->kernel, "relu") && dim32(rep, X->count, "elements", &cols))
                return 1;
        if ((r = set_output(rep, a, X->rank, X->shape)) || (r = upload(c, rep, -1, h)))
                return r;
        VgpuParam p[] = {vgpu_param_buffer(h[0], 0), vgpu_param_buffer(h[1], 0), vgpu_param_u32(rows),
                         vgpu_param_u32(cols)};
        if (streq(rep->kernel, "relu"))
                p[2] = vgpu_param_u32(cols);
        return launch(c, rep, p, streq(rep->kernel, "relu") ? 3 : 4, h[1]);
}

/* OH = floor((H + 2 pad - dil (K - 1) - 1) / stride) + 1, refused when the window does not fit. */
static int out_extent(const RunReport *rep, uint64_t in, uint32_t k, uint32_t stride, uint32_t pad, uint32_t dil,
                      const char *what, uint64_t *ret)
{
        uint64_t extent = (uint64_t)dil * (k - 1) + 1;

        if (stride == 0 || dil == 0 || extent > in + 2 * (uint64_t)pad)
                return failed(rep, "the %s window (extent %llu) does not fit the padded input (%llu)", what,
                              (unsigned long long)extent, (unsigned long long)(in + 2 * (uint64_t)pad));
        *ret = (in + 2 * (uint64_t)pad - extent) / stride + 1;
        return 0;
}


static int op_conv2d(VgpuClient *c, const RunArgs *a, RunReport *rep)
{
        const NpyArray *X, *W;
        uint64_t oh = 0, ow = 0;
        uint32_t d[7] = {};
        VgpuMemHandle h[4];
        int r;

        if ((r = load(rep, "X", a->in)) || (r = load(rep, "weight", a->weight)) ||
            (a->bias && (r = load(rep, "bias", a->bias))))
                return r;
        X = &rep->inputs[0];
        W = &rep->inputs[1];
        if (X->rank != 4 || W->rank != 4)
                return failed(rep, "X must be [N, C, H, W] and weight [O, C, KH, KW]");
        if (W->shape[1] != X->shape[1])
                return failed(rep, "weight has %llu input channels, X has %llu", (unsigned long long)W->shape[1],
                              (unsigned long long)X->shape[1]);
        if (a->bias && (rep->inputs[2].rank != 1 || rep->inputs[2].shape[0] != W->shape[0]))
                return failed(rep, "bias must be [%llu]", (unsigned long long)W->shape[0]);
        for (unsigned i = 0; i < 4; i++)
                if (dim32(rep, X->shape[i], "a dimension of X", &d[i]))
                        return 1;
        if (dim32(rep, W->shape[0], "O", &d[4]) || dim32(rep, W->shape[2], "KH", &d[5]) ||
            dim32(rep, W->shape[3], "KW", &d[6]))
                return 1;
        if (out_extent(rep, d[2], d[5], a->stride[0], a->padding[0], a->dilation[0], "convolution", &oh) ||
            out_extent(rep, d[3], d[6], a->stride[1], a->padding[1], a->dilation[1], "convolution", &ow))
                return 1;
        if ((r = set_output(rep, a, 4, (uint64_t[]){d[0], d[4], oh, ow})) || (r = upload(c, rep, -1, h)))
                return r;
        VgpuMemHandle y = h[rep->n_inputs];
        VgpuParam p[] = {vgpu_param_buffer(h[0], 0), vgpu_param_buffer(h[1], 0),
                         vgpu_param_buffer(a->bias ? h[2] : h[1], 0), vgpu_param_buffer(y, 0),
                         vgpu_param_u32(d[0]), vgpu_param_u32(d[1]), vgpu_param_u32(d[2]), vgpu_param_u32(d[3]),
                         vgpu_param_u32(d[4]), vgpu_param_u32(d[5]), vgpu_param_u32(d[6]),
                         vgpu_param_u32(a->stride[0]), vgpu_param_u32(a->stride[1]),
                         vgpu_param_u32(a->padding[0]), vgpu_param_u32(a->padding[1]),
                         vgpu_param_u32(a->dilation[0]), vgpu_param_u32(a->dilation[1]),
                         vgpu_param_u32(a->bias ? 1 : 0)};
        return launch(c, rep, p, ELEMENTSOF(p), y);
}

static int op_maxpool2d(VgpuClient *c, const RunArgs *a, RunReport *rep)
{
        uint32_t stride[2] = {a->stride[0], a->stride[1]}, d[4] = {};
        const NpyArray *X;
        uint64_t oh = 0, ow = 0;
        VgpuMemHandle h[2];
        int r;

        if ((r = load(rep, "X", a->in)))
                return r;
        X = &rep->inputs[0];
        if (X->rank != 4)
                return failed(rep, "X must be [N, C, H, W]");
        for (unsigned i = 0; i < 4; i++)
                if (dim32(rep, X->shape[i], "a dimension of X", &d[i]))
                        return 1;
        if (!(a->given & OPT_STRIDE)) /* as the frameworks do: non-overlapping windows */
                memcpy(stride, a->kernel, sizeof(stride));
        if (out_extent(rep, d[2], a->kernel[0], stride[0], a->padding[0], 1, "pooling", &oh) ||
            out_extent(rep, d[3], a->kernel[1], stride[1], a->padding[1], 1, "pooling", &ow))
                return 1;
        if ((r = set_output(rep, a, 4, (uint64_t[]){d[0], d[1], oh, ow})) || (r = upload(c, rep, -1, h)))
                return r;
        VgpuParam p[] = {vgpu_param_buffer(h[0], 0), vgpu_param_buffer(h[1], 0), vgpu_param_u32(d[0]),
                         vgpu_param_u32(d[1]),       vgpu_param_u32(d[2]),       vgpu_param_u32(d[3]),
                         vgpu_param_u32(a->kernel[0]), vgpu_param_u32(a->kernel[1]), vgpu_param_u32(stride[0]),
                         vgpu_param_u32(stride[1]),  vgpu_param_u32(a->padding[0]), vgpu_param_u32(a->padding[1])};
        return launch(c, rep, p, ELEMENTSOF(p), h[1]);
}

static const RunOp ops[] = {
        {"gemm", OPT_A | OPT_B | OPT_OUT, OPT_C | OPT_ALPHA | OPT_BETA | OPT_TRANS_A | OPT_TRANS_B,
         "--a A.npy --b B.npy --out C.npy [--c C0.npy] [--alpha X] [--beta X] [--trans-a] [--trans-b]", op_gemm},
        {"add", OPT_A | OPT_B | OPT_OUT, 0, "--a A.npy --b B.npy --out Y.npy", op_elementwise},
        {"mul", OPT_A | OPT_B | OPT_OUT, 0, "--a A.npy --b B.npy --out Y.npy", op_elementwise},
        {"relu", OPT_IN | OPT_OUT, 0, "--in X.npy --out Y.npy", op_unary},
        {"softmax", OPT_IN | OPT_OUT, 0, "--in X.npy --out Y.npy", op_unary},
        {"conv2d", OPT_IN | OPT_WEIGHT | OPT_OUT, OPT_BIAS | OPT_STRIDE | OPT_PADDING | OPT_DILATION,
         "--in X.npy --weight W.npy [--bias B.npy] [--stride S[,S]] [--padding P[,P]] [--dilation D[,D]] --out Y.npy",
         op_conv2d},
        {"maxpool2d", OPT_IN | OPT_KERNEL | OPT_OUT, OPT_STRIDE | OPT_PADDING,
         "--in X.npy --kernel K[,K] [--stride S[,S]] [--padding P[,P]] --out Y.npy", op_maxpool2d},
};

const RunOp *run_op_find(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(ops); i++)
                if (streq(ops[i].name, name))
                        return &ops[i];
        return NULL;
}

const RunOp *run_op_get(unsigned i)
{
        return i < ELEMENTSOF(ops) ? &ops[i] : NULL;
}

void run_report_done(RunReport *rep)
{
        for (unsigned i = 0; i < rep->n_inputs; i++)
                npy_array_done(&rep->inputs[i]);
        npy_array_done(&rep->output);
}
