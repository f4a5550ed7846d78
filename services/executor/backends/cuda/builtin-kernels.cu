/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu.builtin on the GPU: one kernel per built-in, computing the work items [begin, end) of a slice with the
 * evaluation order builtin.h states, so that results agree with the CPU reference bit for bit (gemm, conv2d,
 * the elementwise kernels, maxpool2d) or within builtin.h's tolerance (softmax, sum_rows: their double sums
 * are reduced in parallel). Built with -fmad=false and explicit __fadd_rn/__fmul_rn: a fused multiply-add
 * would round once where the contract rounds twice. The host has validated every argument (sizes, overlaps)
 * before a launch; the kernels trust them. Grid-stride loops: any grid covers any slice. */
#include "cuda-builtin-args.h"

typedef unsigned long long u64;

#define GRID_STRIDE(i, first, last)                                                                           \
        for (u64 i = (first) + (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (last);                         \
             i += (u64)gridDim.x * blockDim.x)

static __device__ __forceinline__ float f32(const CudaBuiltinArgs &a, int i)
{
        return __uint_as_float(a.val[i]);
}

template <typename T> static __device__ __forceinline__ T *buf(const CudaBuiltinArgs &a, int i)
{
        return reinterpret_cast<T *>(a.ptr[i]);
}

/* ---- gemm "bbbuuuffuu": one thread per element of C, k in order ---- */

extern "C" __global__ void vgpu_builtin_gemm(const CudaBuiltinArgs a)
{
        enum { A_, B_, C_, M_, N_, K_, ALPHA_, BETA_, TRANS_A_, TRANS_B_ };
        const float *A = buf<const float>(a, A_), *B = buf<const float>(a, B_);
        float *C = buf<float>(a, C_);
        const u64 m = a.val[M_], n = a.val[N_], k_total = a.val[K_];
        const float alpha = f32(a, ALPHA_), beta = f32(a, BETA_);
        const bool ta = a.val[TRANS_A_], tb = a.val[TRANS_B_];

        GRID_STRIDE(e, a.begin * n, a.end * n)
        {
                const u64 i = e / n, j = e % n;
                float c = beta == 0.0f ? 0.0f : __fmul_rn(beta, C[e]);

                for (u64 k = 0; k < k_total; k++) {
                        const float av = ta ? A[k * m + i] : A[i * k_total + k];
                        const float bv = tb ? B[j * k_total + k] : B[k * n + j];

                        c = __fadd_rn(c, __fmul_rn(__fmul_rn(alpha, av), bv));
                }
                C[e] = c;
        }
}

/* ---- add, mul "bbbuuu": b_mode 0 full, 1 row vector, 2 column vector, 3 scalar ---- */

enum { EW_A, EW_B, EW_Y, EW_ROWS, EW_COLS, EW_MODE };

static __device__ __forceinline__ float ew_b(const CudaBuiltinArgs &a, u64 r, u64 c, u64 cols)
{
        const float *b = buf<const float>(a, EW_B);

        switch (a.val[EW_MODE]) {
        case 0:
                return b[r * cols + c];
        case 1:
                return b[c];
        case 2:
                return b[r];
        default:
                return b[0];
        }
}

extern "C" __global__ void vgpu_builtin_add(const CudaBuiltinArgs a)
{
        const float *x = buf<const float>(a, EW_A);
        float *y = buf<float>(a, EW_Y);
        const u64 cols = a.val[EW_COLS];

        GRID_STRIDE(e, a.begin * cols, a.end * cols)
        y[e] = __fadd_rn(x[e], ew_b(a, e / cols, e % cols, cols));
}

extern "C" __global__ void vgpu_builtin_mul(const CudaBuiltinArgs a)
{
        const float *x = buf<const float>(a, EW_A);
        float *y = buf<float>(a, EW_Y);
        const u64 cols = a.val[EW_COLS];

        GRID_STRIDE(e, a.begin * cols, a.end * cols)
        y[e] = __fmul_rn(x[e], ew_b(a, e / cols, e % cols, cols));
}

/* ---- relu "bbu": x < 0 ? +0 : x (NaN and -0 pass) ---- */

extern "C" __global__ void vgpu_builtin_relu(const CudaBuiltinArgs a)
{
        const float *x = buf<const float>(a, 0);
        float *y = buf<float>(a, 1);

        GRID_STRIDE(i, a.begin, a.end)
        {
                const float v = x[i];

                y[i] = v < 0.0f ? 0.0f : v;
        }
}

/* ---- bias_add "bbbuuu" (X, bias, Y, N, C, HW): items are planes ---- */

extern "C" __global__ void vgpu_builtin_bias_add(const CudaBuiltinArgs a)
{
        const float *x = buf<const float>(a, 0), *bias = buf<const float>(a, 1);
        float *y = buf<float>(a, 2);
        const u64 c = a.val[4], hw = a.val[5];

        GRID_STRIDE(e, a.begin * hw, a.end * hw)
        y[e] = __fadd_rn(x[e], bias[(e / hw) % c]);
}

/* ---- softmax, sum_rows "bbuu": one block per row, reductions in shared memory ---- */

static __device__ double block_sum(double v, double *scratch)
{
        scratch[threadIdx.x] = v;
        __syncthreads();
        for (unsigned s = blockDim.x / 2; s > 0; s /= 2) {
                if (threadIdx.x < s)
                        scratch[threadIdx.x] += scratch[threadIdx.x + s];
                __syncthreads();
        }
        v = scratch[0];
        __syncthreads();
        return v;
}

/* The largest value, -inf when there is none; NaN never wins (as `v > m` on the CPU). */
static __device__ float block_max(float v, float *scratch)
{
        scratch[threadIdx.x] = v;
        __syncthreads();
        for (unsigned s = blockDim.x / 2; s > 0; s /= 2) {
                if (threadIdx.x < s && scratch[threadIdx.x + s] > scratch[threadIdx.x])
                        scratch[threadIdx.x] = scratch[threadIdx.x + s];
                __syncthreads();
        }
        v = scratch[0];
        __syncthreads();
        return v;
}

extern "C" __global__ void vgpu_builtin_softmax(const CudaBuiltinArgs a)
{
        __shared__ double dsum[CUDA_BUILTIN_BLOCK];
        __shared__ float fmax_[CUDA_BUILTIN_BLOCK];
        const u64 cols = a.val[3];

        for (u64 r = a.begin + blockIdx.x; r < a.end; r += gridDim.x) {
                const float *x = buf<const float>(a, 0) + r * cols;
                float *y = buf<float>(a, 1) + r * cols;
                /* Read before the reduction's barriers: in place, thread 0 overwrites x[0] below. */
                const float first = x[0];
                float m = -__int_as_float(0x7f800000), top;
                double s = 0.0;

                /* The CPU's order: start from x[0], take x[c] when x[c] > max. */
                for (u64 c = 1 + threadIdx.x; c < cols; c += blockDim.x)
                        if (x[c] > m)
                                m = x[c];
                m = block_max(m, fmax_);
                top = m > first ? m : first; /* x[0] NaN: stays NaN */
                for (u64 c = threadIdx.x; c < cols; c += blockDim.x) {
                        const float e = expf(__fsub_rn(x[c], top));

                        y[c] = e; /* in place: this thread read x[c] last, above */
                        s += e;
                }
                s = block_sum(s, dsum);
                for (u64 c = threadIdx.x; c < cols; c += blockDim.x)
                        y[c] = (float)((double)y[c] / s);
                __syncthreads();
        }
}

extern "C" __global__ void vgpu_builtin_sum_rows(const CudaBuiltinArgs a)
{
        __shared__ double dsum[CUDA_BUILTIN_BLOCK];
        const u64 cols = a.val[3];

        for (u64 r = a.begin + blockIdx.x; r < a.end; r += gridDim.x) {
                const float *x = buf<const float>(a, 0) + r * cols;
                double s = 0.0;

                for (u64 c = threadIdx.x; c < cols; c += blockDim.x)
                        s += x[c];
                s = block_sum(s, dsum);
                if (threadIdx.x == 0)
                        buf<float>(a, 1)[r] = (float)s;
        }
}

/* ---- conv2d and maxpool2d: one thread per output element ---- */

/* (in + 2 pad - (dil (k - 1) + 1)) / stride + 1: validated on the host to be at least 1. */
static __device__ __forceinline__ u64 window_out(u64 in, u64 k, u64 stride, u64 pad, u64 dil)
{
        return (in + 2 * pad - (dil * (k - 1) + 1)) / stride + 1;
}

extern "C" __global__ void vgpu_builtin_conv2d(const CudaBuiltinArgs a)
{
        enum { X_, W_, BIAS_, Y_, N_, C_, H_, WIDTH_, O_, KH_, KW_, SH_, SW_, PH_, PW_, DH_, DW_, HAS_BIAS_ };
        const float *x = buf<const float>(a, X_), *w = buf<const float>(a, W_), *bias = buf<const float>(a, BIAS_);
        float *y = buf<float>(a, Y_);
        const u64 cn = a.val[C_], h = a.val[H_], wd = a.val[WIDTH_], o_n = a.val[O_];
        const u64 kh_n = a.val[KH_], kw_n = a.val[KW_], sh = a.val[SH_], sw = a.val[SW_];
        const long long ph = a.val[PH_], pw = a.val[PW_];
        const u64 dh = a.val[DH_], dw = a.val[DW_];
        const u64 oh_n = window_out(h, kh_n, sh, ph, dh), ow_n = window_out(wd, kw_n, sw, pw, dw);
        const u64 plane = oh_n * ow_n;

        GRID_STRIDE(e, a.begin * plane, a.end * plane)
        {
                const u64 p = e / plane, n = p / o_n, o = p % o_n, oh = (e % plane) / ow_n, ow = e % ow_n;
                float acc = a.val[HAS_BIAS_] ? bias[o] : 0.0f;

                /* c, kh, kw ascending; taps in the padding contribute nothing (not even a +0). */
                for (u64 c = 0; c < cn; c++) {
                        const float *xp = x + (n * cn + c) * h * wd, *wp = w + (o * cn + c) * kh_n * kw_n;

                        for (u64 kh = 0; kh < kh_n; kh++) {
                                const long long ih = (long long)(oh * sh + kh * dh) - ph;

                                if (ih < 0 || ih >= (long long)h)
                                        continue;
                                for (u64 kw = 0; kw < kw_n; kw++) {
                                        const long long iw = (long long)(ow * sw + kw * dw) - pw;

                                        if (iw < 0 || iw >= (long long)wd)
                                                continue;
                                        acc = __fadd_rn(acc, __fmul_rn(wp[kh * kw_n + kw], xp[ih * wd + iw]));
                                }
                        }
                }
                y[e] = acc;
        }
}

extern "C" __global__ void vgpu_builtin_maxpool2d(const CudaBuiltinArgs a)
{
        enum { X_, Y_, N_, C_, H_, W_, KH_, KW_, SH_, SW_, PH_, PW_ };
        const float *x = buf<const float>(a, X_);
        float *y = buf<float>(a, Y_);
        const u64 h = a.val[H_], wd = a.val[W_], kh = a.val[KH_], kw = a.val[KW_], sh = a.val[SH_], sw = a.val[SW_];
        const long long ph = a.val[PH_], pw = a.val[PW_];
        const u64 oh_n = window_out(h, kh, sh, ph, 1), ow_n = window_out(wd, kw, sw, pw, 1), plane = oh_n * ow_n;

        GRID_STRIDE(e, a.begin * plane, a.end * plane)
        {
                const u64 p = e / plane, oh = (e % plane) / ow_n, ow = e % ow_n;
                const long long hs = (long long)(oh * sh) - ph, ws = (long long)(ow * sw) - pw;
                const u64 h0 = hs < 0 ? 0 : hs, w0 = ws < 0 ? 0 : ws;
                const u64 h1 = min((u64)(hs + (long long)kh), h), w1 = min((u64)(ws + (long long)kw), wd);
                const float *xp = x + p * h * wd;
                float m = -__int_as_float(0x7f800000);

                for (u64 ih = h0; ih < h1; ih++)
                        for (u64 iw = w0; iw < w1; iw++) {
                                const float v = xp[ih * wd + iw];

                                /* v > m, or v is the window's first NaN: as the CPU reference. */
                                if (!isnan(m) && !(v <= m))
                                        m = v;
                        }
                y[e] = m;
        }
}
