/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the gpu suite and bench-gpu share: whether this machine can run CUDA at all (without linking
 * libcuda, so the programs start where there is none), and the guest module compiled from test-kernels.cu. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define GPU_SKIP 77 /* meson's "skipped" */

/* true when libcuda.so.1 loads, cuInit() succeeds and a device exists; otherwise *why says why not. */
bool gpu_available(const char **why);

/* test-kernels.cu as PTX text, NUL included in gpu_test_kernels_ptx_size + 1 bytes. */
extern const unsigned char gpu_test_kernels_ptx[];
extern const unsigned long gpu_test_kernels_ptx_size;
