/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-run's operations: each reads its .npy inputs, checks their shapes, runs one vgpu.builtin kernel
 * through libvgpu and writes the output. main.c parses the command line into RunArgs and prints RunReport. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "npy.h"
#include "vgpu.h"

/* Which options an operation takes (bits of RunArgs.given). */
enum {
        OPT_A = 1u << 0,
        OPT_B = 1u << 1,
        OPT_C = 1u << 2,
        OPT_IN = 1u << 3,
        OPT_WEIGHT = 1u << 4,
        OPT_BIAS = 1u << 5,
        OPT_OUT = 1u << 6,
        OPT_ALPHA = 1u << 7,
        OPT_BETA = 1u << 8,
        OPT_TRANS_A = 1u << 9,
        OPT_TRANS_B = 1u << 10,
        OPT_STRIDE = 1u << 11,
        OPT_PADDING = 1u << 12,
        OPT_DILATION = 1u << 13,
        OPT_KERNEL = 1u << 14,
};

typedef struct RunArgs {
        unsigned given; /* OPT_* */
        const char *a, *b, *c, *in, *weight, *bias, *out;
        float alpha, beta;
        bool trans_a, trans_b;
        uint32_t stride[2], padding[2], dilation[2], kernel[2]; /* [h, w] */
} RunArgs;

#define RUN_INPUTS_MAX 4

typedef struct RunReport {
        const char *kernel;
        const char *input_names[RUN_INPUTS_MAX]; /* "A", "B", … */
        const char *input_paths[RUN_INPUTS_MAX];
        NpyArray inputs[RUN_INPUTS_MAX]; /* shapes (and data, freed by run_report_done()) */
        unsigned n_inputs;
        NpyArray output;
        const char *output_path;
        double upload_ms, kernel_ms, download_ms;
} RunReport;

typedef struct RunOp {
        const char *name;
        unsigned required; /* OPT_* that must be given */
        unsigned optional; /* OPT_* that may be given */
        const char *usage;
        /* 0; 1 failed (message printed); 2 usage (message printed). Fills the report as it goes. */
        int (*run)(VgpuClient *c, const RunArgs *a, RunReport *rep);
} RunOp;

const RunOp *run_op_find(const char *name);
const RunOp *run_op_get(unsigned i); /* NULL past the end */
void run_report_done(RunReport *rep);
/* Why the last operation failed, as printed on stderr; "" if it did not. */
extern char run_error[512];

/* output.c: what vgpu-run prints, as text or as one JSON object on stdout. */
void print_report(const RunReport *rep, bool json);
void print_failure(const char *op, const char *error, bool json);
void print_info(const VgpuClientInfo *info, const char *error, const VgpuStubInfo *stub, const char *stub_error,
                bool json);
