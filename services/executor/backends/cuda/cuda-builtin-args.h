/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the plugin passes to every vgpu.builtin CUDA kernel: one struct by value, shared by the C side
 * (cuda-launch.c) and the kernels (builtin-kernels.cu), so both agree on it byte for byte. Parameter i of
 * the built-in's signature is ptr[i] (a buffer: the device address of its offset) or val[i] (the 32 bits
 * of a u32/i32/f32), in the order of builtin.h; [begin, end) is the slice of work items this launch
 * computes. */
#pragma once

#define CUDA_BUILTIN_ARGS_MAX 18 /* BUILTIN_ARGS_MAX */
#define CUDA_BUILTIN_BLOCK    256

typedef struct CudaBuiltinArgs {
        unsigned long long ptr[CUDA_BUILTIN_ARGS_MAX];
        unsigned int val[CUDA_BUILTIN_ARGS_MAX];
        unsigned long long begin, end;
} CudaBuiltinArgs;
