/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A guest's own module, as a guest would bring it: compiled to PTX at build time (nvcc -ptx) and loaded
 * with MODULE_LOAD by the gpu suite and bench-gpu. */

/* Nothing: the floor of launch + synchronize. */
extern "C" __global__ void empty(void)
{
}

/* y = a x + y, with n checked. */
extern "C" __global__ void saxpy(unsigned n, float a, const float *x, float *y)
{
        unsigned i = blockIdx.x * blockDim.x + threadIdx.x;

        if (i < n)
                y[i] = a * x[i] + y[i];
}

/* A by-value struct parameter (a BYTES parameter on the wire). */
struct Affine {
        float scale;
        float shift;
        unsigned n;
};

extern "C" __global__ void affine(float *y, struct Affine p)
{
        unsigned i = blockIdx.x * blockDim.x + threadIdx.x;

        if (i < p.n)
                y[i] = y[i] * p.scale + p.shift;
}

/* Writes one float `index` elements past p, whatever p's allocation holds: with a large index, a write to
 * memory this VM was never given. */
extern "C" __global__ void write_at(float *p, unsigned long long index, float v)
{
        if (blockIdx.x == 0 && threadIdx.x == 0)
                p[index] = v;
}

/* Writes to a raw address the guest made up (it never learns a real device address). */
extern "C" __global__ void write_raw(unsigned long long address, float v)
{
        if (blockIdx.x == 0 && threadIdx.x == 0)
                *(float *)address = v;
}
