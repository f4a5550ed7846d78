/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SM limits per priority under MPS (a shared pool): one context per priority with an SM-count execution
 * affinity, made on the first launch of that priority, the built-ins and the guest's modules loaded into it
 * as they are needed. Without MPS the driver refuses such contexts, so the limits apply only to an MPS
 * client, and everything runs in the primary context otherwise (time-sliced with other processes). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>

#include "cuda-internal.h"

static const char *const lane_names[CUDA_LANES] = {"high", "medium", "low"};

void cuda_lanes_setup(Backend *b)
{
        char limits[CUDA_LANES][24];
        bool asked = false;
        int mps = 0;

        for (int i = 0; i < CUDA_LANES; i++)
                asked |= b->config.sm_limit[i] != 0;
        if (!asked)
                return;
        if (cuDeviceGetAttribute(&b->sm_total, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, b->device) != CUDA_SUCCESS)
                b->sm_total = 0;
        if (cuDeviceGetAttribute(&mps, CU_DEVICE_ATTRIBUTE_MPS_ENABLED, b->device) != CUDA_SUCCESS || !mps) {
                cuda_log(b, LOG_WARNING, "SM limits were asked for, but this executor is not an MPS client: its "
                         "launches are time-sliced with the GPU's other processes, without SM limits.");
                return;
        }
        for (int i = 0; i < CUDA_LANES; i++) {
                if (b->config.sm_limit[i] == 0)
                        snprintf(limits[i], sizeof(limits[i]), "all");
                else
                        snprintf(limits[i], sizeof(limits[i]), "%u", b->config.sm_limit[i]);
        }
        b->sm_limits = true;
        cuda_log(b, LOG_INFO, "MPS client; SMs a launch may use: high %s, medium %s, low %s (of %d).", limits[0],
                 limits[1], limits[2], b->sm_total);
}

static void lane_free(CudaLane *lane)
{
        if (lane->context)
                (void)cuCtxDestroy(lane->context); /* its modules go with it */
        free(lane->builtin_functions);
        *lane = (CudaLane){};
}

/* The context for priority p, current on success. On failure the primary context is current again and the
 * limits are off for good: a refusal here (the MPS server left, no room for another context) would repeat. */
static int lane_create(Backend *b, int p)
{
        CUexecAffinityParam affinity = {.type = CU_EXEC_AFFINITY_TYPE_SM_COUNT,
                                        .param.smCount.val = b->config.sm_limit[p]};
        CUctxCreateParams params = {.execAffinityParams = &affinity, .numExecAffinityParams = 1};
        CudaLane *lane = &b->lanes[p];
        const char *reason = NULL;
        char text[160];
        CUresult r;

        r = cuCtxCreate(&lane->context, &params, 0, b->device);
        if (r != CUDA_SUCCESS) {
                lane->context = NULL;
                reason = cuda_result_text(r, text, sizeof(text));
        } else if (cuda_builtins_load_into(b, &lane->builtins, &lane->builtin_functions, &reason) == 0) {
                if (cuCtxGetExecAffinity(&affinity, CU_EXEC_AFFINITY_TYPE_SM_COUNT) == CUDA_SUCCESS)
                        lane->sm_count = affinity.param.smCount.val;
                cuda_log(b, LOG_INFO, "Launches at priority %s run in a context of %u SMs (asked %u).", lane_names[p],
                         lane->sm_count, b->config.sm_limit[p]);
                return 0;
        }
        lane_free(lane);
        (void)cuCtxSetCurrent(b->context);
        b->sm_limits = false;
        cuda_log(b, LOG_WARNING, "Cannot create a context limited to %u SMs for priority %s (%s): SM limits are off "
                 "for this executor; every launch uses the whole GPU.", b->config.sm_limit[p], lane_names[p],
                 reason ? reason : "unknown");
        return -EIO;
}

CudaLane *cuda_lane_enter(Backend *b, uint8_t priority)
{
        CudaLane *lane;

        if (!b->sm_limits || priority >= CUDA_LANES || b->config.sm_limit[priority] == 0)
                return NULL;
        lane = &b->lanes[priority];
        /* Memory work in the primary context must be done before a kernel in another context reads it. */
        if (b->primary_dirty) {
                if (cuCtxSynchronize() != CUDA_SUCCESS)
                        return NULL; /* the launch runs in the primary context and reports the fault */
                b->primary_dirty = false;
        }
        if (!lane->context) {
                if (lane_create(b, priority) < 0)
                        return NULL;
        } else if (cuCtxSetCurrent(lane->context) != CUDA_SUCCESS)
                return NULL;
        return lane;
}

void cuda_lane_leave(Backend *b, CudaLane *lane)
{
        if (lane)
                (void)cuCtxSetCurrent(b->context);
}

CUfunction cuda_lane_function(Backend *b, CudaLane *lane, CudaFunction *f, const char **reason)
{
        int p = (int)(lane - b->lanes);
        CudaModule *m = f->module;
        CUresult r;

        if (f->lane[p])
                return f->lane[p];
        if (!m->lane[p]) {
                if (!m->image) {
                        *reason = "the module was loaded before SM limits applied; load it again";
                        return NULL;
                }
                r = cuModuleLoadData(&m->lane[p], m->image);
                if (r != CUDA_SUCCESS) {
                        (void)cuda_error(b, r, "cuModuleLoadData (in a priority's context)");
                        *reason = "the module does not load in the context of this priority";
                        return NULL;
                }
        }
        r = cuModuleGetFunction(&f->lane[p], m->lane[p], f->name);
        if (r != CUDA_SUCCESS) {
                (void)cuda_error(b, r, "cuModuleGetFunction (in a priority's context)");
                *reason = "the kernel cannot be found in the context of this priority";
                return NULL;
        }
        return f->lane[p];
}

void cuda_lanes_done(Backend *b)
{
        for (int i = 0; i < CUDA_LANES; i++)
                lane_free(&b->lanes[i]);
        (void)cuCtxSetCurrent(b->context);
}
