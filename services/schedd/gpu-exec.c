/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* How the pool's executors run on the GPU (docs/scheduler.md, "GPU execution"): which device (the pool's GPU
 * resource), whether they are MPS clients (a shared pool whose MPS control daemon answers) or time-sliced
 * processes, the SMs each priority's launches may use, and the rule that keeps SMs free for high-priority
 * work: under MPS, SM limits overlap and what a high-priority kernel waits for follows their *sum*
 * (measured), so in-flight lower-priority launches together may hold at most the pool's SMs minus the
 * headroom, and all of the pool's launches together at most the pool's SMs when it has a share of a GPU. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "sched.h"

#define log_pool(level, s, ...) log_vm((level), 0, (s)->pool, NULL, __VA_ARGS__)

const char *gpu_execution_to_string(const Sched *s)
{
        return s->mps ? "mps" : "time-sliced";
}

/* The resource's parts: "gpu:G", "sm-share:G:P", "mig:U"; "" leaves the first GPU, whole. */
static void resource_parse(Sched *s)
{
        const char *r = s->gpu_resource, *colon;
        unsigned long percent;

        s->device[0] = s->mig[0] = 0;
        s->sm_share_percent = 0;
        if (strncmp(r, "gpu:", 4) == 0)
                snprintf(s->device, sizeof(s->device), "%s", r + 4);
        else if (strncmp(r, "mig:", 4) == 0)
                snprintf(s->mig, sizeof(s->mig), "%s%s", strncmp(r + 4, "MIG-", 4) == 0 ? "" : "MIG-", r + 4);
        else if (strncmp(r, "sm-share:", 9) == 0 && (colon = strrchr(r + 9, ':'))) {
                snprintf(s->device, sizeof(s->device), "%.*s", (int)(colon - (r + 9)), r + 9);
                percent = strtoul(colon + 1, NULL, 10);
                s->sm_share_percent = percent >= 1 && percent <= 100 ? (unsigned)percent : 100;
        }
}

/* The MPS daemon's pipe directory for the pool's GPU: --mps-pipe-dir, else RUNTIME/mps/<GPU> as
 * vgpu-mps@<GPU>.service makes it (<GPU> "0" when the resource names none). */
static void pipe_dir_choose(Sched *s)
{
        const char *runtime = getenv("VGPU_RUNTIME_DIR");

        if (s->mps_pipe_dir_arg)
                snprintf(s->mps_pipe_dir, sizeof(s->mps_pipe_dir), "%s", s->mps_pipe_dir_arg);
        else
                snprintf(s->mps_pipe_dir, sizeof(s->mps_pipe_dir), "%s/mps/%s",
                         runtime && *runtime ? runtime : "/run/vgpu", *s->device ? s->device : "0");
}

static bool mps_daemon_present(const Sched *s)
{
        char path[sizeof(s->mps_pipe_dir) + 16];
        struct stat st;

        snprintf(path, sizeof(path), "%s/control", s->mps_pipe_dir);
        return stat(path, &st) == 0 && (S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode));
}

static unsigned clamp(unsigned v, unsigned lo, unsigned hi)
{
        return v < lo ? lo : v > hi ? hi : v;
}

void gpu_exec_update(Sched *s)
{
        bool was = s->mps;
        unsigned cap;

        resource_parse(s);
        pipe_dir_choose(s);
        s->sm_budget = s->sm_share_percent ? clamp(s->sm_count * s->sm_share_percent / 100, 1, s->sm_count)
                                           : s->sm_count;
        cap = s->sm_budget > s->sm_headroom ? s->sm_budget - s->sm_headroom : 1;
        s->sm_lower_cap = cap;
        /* A whole GPU's high-priority launches have no limit; a share's are held to the share. */
        s->sm_limit[PRIORITY_HIGH] = s->sm_limit_arg[PRIORITY_HIGH]
                                             ? clamp(s->sm_limit_arg[PRIORITY_HIGH], 1, s->sm_budget)
                                             : (s->sm_share_percent ? s->sm_budget : 0);
        s->sm_limit[PRIORITY_MEDIUM] = clamp(s->sm_limit_arg[PRIORITY_MEDIUM], 1, cap);
        s->sm_limit[PRIORITY_LOW] = clamp(s->sm_limit_arg[PRIORITY_LOW], 1, cap);
        s->mps = s->mode == POOL_MODE_SHARED && !*s->mig && mps_daemon_present(s);
        if (s->mode == POOL_MODE_SHARED && !s->mps && !s->mps_warned) {
                log_pool(LOG_WARNING, s, "Pool %s is shared, but %s: its executors run time-sliced, without SM "
                         "limits, until it is there (checked at each executor start).", s->pool,
                         *s->mig ? "it runs on a MIG instance (MPS is not used there)"
                                 : "no MPS control daemon answers in its pipe directory");
                s->mps_warned = true;
        }
        if (s->mps && !was)
                log_pool(LOG_NOTICE, s, "Pool %s runs under MPS (%s): SMs per launch high %s%u, medium %u, low %u; "
                         "lower priorities together at most %u of the pool's %u SMs (%u of the GPU's %u).", s->pool,
                         s->mps_pipe_dir, s->sm_limit[PRIORITY_HIGH] ? "" : "all ", s->sm_limit[PRIORITY_HIGH],
                         s->sm_limit[PRIORITY_MEDIUM], s->sm_limit[PRIORITY_LOW], cap, s->sm_budget, s->sm_budget,
                         s->sm_count);
        if (s->mps)
                s->mps_warned = false;
        if (s->mps != was && s->bus)
                (void)sd_bus_emit_properties_changed(s->bus, SCHED_PATH, SCHED_INTERFACE, "Execution", NULL);
}

void gpu_exec_executor_config(Sched *s, ExecutorConfig *c)
{
        gpu_exec_update(s); /* a daemon started or stopped since: this executor sees it */
        c->device = *s->device ? s->device : NULL;
        c->mig = *s->mig ? s->mig : NULL;
        c->mps_pipe_dir = s->mps ? s->mps_pipe_dir : NULL;
        if (s->mps)
                memcpy(c->sm_limit, s->sm_limit, sizeof(c->sm_limit));
}

unsigned gpu_exec_levels_allowed(const Sched *s)
{
        unsigned allowed = 1u << PRIORITY_HIGH;

        if (!s->mps)
                return (1u << _PRIORITY_MAX) - 1;
        /* One in-flight slot stays free for high-priority work. */
        if (queue_max_in_flight(s->queue) > 1 && queue_in_flight(s->queue) + 1 >= queue_max_in_flight(s->queue))
                return s->sm_share_percent && s->sm_in_use + s->sm_limit[PRIORITY_HIGH] > s->sm_budget ? 0 : allowed;
        if (s->sm_share_percent && s->sm_in_use + s->sm_limit[PRIORITY_HIGH] > s->sm_budget)
                allowed = 0;
        for (Priority p = PRIORITY_MEDIUM; p <= PRIORITY_LOW; p++)
                if (s->sm_lower_in_use + s->sm_limit[p] <= s->sm_lower_cap &&
                    (!s->sm_share_percent || s->sm_in_use + s->sm_limit[p] <= s->sm_budget))
                        allowed |= 1u << p;
        return allowed;
}

unsigned gpu_exec_charge(Sched *s, uint8_t priority, uint16_t opcode)
{
        unsigned sm;

        if (!s->mps || opcode != VGPU_OP_LAUNCH || priority >= _PRIORITY_MAX)
                return 0;
        sm = s->sm_limit[priority];
        if (priority == PRIORITY_HIGH && !s->sm_share_percent)
                return 0; /* a whole GPU's high priority: the headroom is for it */
        s->sm_in_use += sm;
        if (priority != PRIORITY_HIGH)
                s->sm_lower_in_use += sm;
        return sm;
}

void gpu_exec_release(Sched *s, uint8_t priority, unsigned sm)
{
        if (sm == 0)
                return;
        s->sm_in_use -= sm <= s->sm_in_use ? sm : s->sm_in_use;
        if (priority != PRIORITY_HIGH)
                s->sm_lower_in_use -= sm <= s->sm_lower_in_use ? sm : s->sm_lower_in_use;
}
