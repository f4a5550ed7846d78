/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A guest developer's own kernels, compiled to PTX (nvcc -ptx) and loaded through libvgpu by
 * vgpu-user-kernel.c. extern "C" keeps the names unmangled, so the guest finds them by these names. */

/* y = a x + y over n elements, one thread per element. */
extern "C" __global__ void saxpy(unsigned n, float a, const float *x, float *y)
{
        unsigned i = blockIdx.x * blockDim.x + threadIdx.x;

        if (i < n)
                y[i] = a * x[i] + y[i];
}

/* A struct passed by value: the guest sends its 8 bytes as one 8-byte value parameter. */
struct Shape2D {
        unsigned width;  /* columns of the input */
        unsigned height; /* rows of the input */
};

/* out = scale · inᵀ: in is height × width, out width × height (row-major), on a 2-D grid of 2-D blocks. */
extern "C" __global__ void transpose_scale(const float *in, float *out, struct Shape2D shape, float scale)
{
        unsigned x = blockIdx.x * blockDim.x + threadIdx.x;
        unsigned y = blockIdx.y * blockDim.y + threadIdx.y;

        if (x < shape.width && y < shape.height)
                out[(unsigned long long)x * shape.height + y] = in[(unsigned long long)y * shape.width + x] * scale;
}
