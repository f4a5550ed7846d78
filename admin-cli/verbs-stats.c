/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* stats: each pool's scheduler (org.vgpu.Scheduler.POOL) as its GetStats reports it. A pool whose scheduler
 * is not running is said to have none, never shown with numbers, and makes the verb fail. */
#include <inttypes.h>

#include "admin.h"

#define SCHED_SERVICE_PREFIX "org.vgpu.Scheduler."
#define SCHED_PATH           "/org/vgpu/Scheduler1"
#define SCHED_INTERFACE      "org.vgpu.Scheduler1"

static const ServiceInfo sched_service = {
        .who = "the pool's scheduler (vgpu-schedd)",
        .privileged_action = "this call",
        .check_hint = "check with vgpu-admin stats",
};

/* One pool's statistics; running false when no scheduler owns its name. */
typedef struct PoolStats {
        char pool[POOL_ID_MAX + 1];
        bool running;
        BusDict stats;
        BusDictArray vms; /* ListVms: each attached VM and its executor */
} PoolStats;

/* Reads the pool's GetStats into *ret. Returns 0 (ret->running says whether a scheduler answered) or a
 * negative errno after saying what went wrong. */
static int pool_stats_read(sd_bus *bus, const char *pool, PoolStats *ret)
{
        _cleanup_bus_message_ sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        char service[sizeof(SCHED_SERVICE_PREFIX) + POOL_ID_MAX];
        int r;

        snprintf(ret->pool, sizeof(ret->pool), "%s", pool);
        snprintf(service, sizeof(service), SCHED_SERVICE_PREFIX "%s", pool);
        r = service_method_new(bus, &m, service, SCHED_PATH, SCHED_INTERFACE, "GetStats");
        if (r < 0)
                return r;
        r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0 && bus_error_is_not_running(&error))
                return 0;
        if (r < 0)
                return report_service_error(&sched_service, m, &error, r);
        r = reply_read_dict(reply, &ret->stats);
        if (r < 0)
                return r;
        ret->running = true;

        m = sd_bus_message_unref(m);
        reply = sd_bus_message_unref(reply);
        r = service_method_new(bus, &m, service, SCHED_PATH, SCHED_INTERFACE, "ListVms");
        if (r >= 0)
                r = service_call(bus, m, &sched_service, &reply);
        if (r >= 0)
                r = reply_read_dict_array(reply, &ret->vms.items, &ret->vms.n);
        return r;
}

/* The attached VMs and their executors: what an operator looks at after a crash or a restart storm. */
static int print_vm_table(const BusDictArray *vms)
{
        static const char *const headers[] = {"VM",     "STATE",    "BACKEND",  "EXECUTOR PID",
                                              "DEATHS", "RESTARTS", "COMMANDS", "ERRORS"};
        static const char *const counters[] = {"executor_deaths", "executor_restarts", "commands", "errors"};
        _cleanup_(table_freep) Table *t = table_new(ELEMENTSOF(headers), headers);
        int r = 0;

        if (!t)
                return -ENOMEM;
        if (vms->n == 0)
                return arg_legend ? printf("\nNo VMs attached.\n"), 0 : 0;
        table_align_right(t, 0);
        for (size_t c = 3; c < ELEMENTSOF(headers); c++)
                table_align_right(t, c);
        for (size_t i = 0; i < vms->n && r >= 0; i++) {
                const BusDict *vm = &vms->items[i];
                uint64_t pid = bus_dict_get_uint(vm, "executor_pid");

                r = table_addf(t, "%" PRIu64, bus_dict_get_uint(vm, "vm_id"));
                if (r >= 0)
                        r = table_add(t, dash_if_empty(bus_dict_get_string(vm, "state")));
                if (r >= 0)
                        r = table_add(t, dash_if_empty(bus_dict_get_string(vm, "backend")));
                if (r >= 0)
                        r = pid == 0 ? table_add(t, "-") : table_addf(t, "%" PRIu64, pid);
                for (size_t c = 0; c < ELEMENTSOF(counters) && r >= 0; c++)
                        r = table_addf(t, "%" PRIu64, bus_dict_get_uint(vm, counters[c]));
        }
        if (r >= 0) {
                putchar('\n');
                r = table_print(t, stdout);
        }
        return r;
}

/* One row of the per-priority table; a key the scheduler did not report is shown as "-". */
static int add_priority_row(Table *t, const BusDict *stats, Priority p)
{
        static const char *const keys[] = {"queued",      "completed",   "failed",     "wait_p50_us",
                                           "wait_p99_us", "exec_p50_us", "exec_p99_us"};
        const char *level = priority_to_string(p);
        char key[64];
        int r;

        r = table_add(t, level);
        for (size_t k = 0; k < ELEMENTSOF(keys) && r >= 0; k++) {
                const BusDictEntry *e;

                snprintf(key, sizeof(key), "%s_%s", keys[k], level);
                e = bus_dict_get(stats, key);
                r = e && e->type == BUS_VALUE_UINT ? table_addf(t, "%" PRIu64, e->u) : table_add(t, "-");
        }
        return r;
}

static int print_priority_table(const BusDict *stats)
{
        static const char *const headers[] = {"PRIORITY",    "QUEUED",      "COMPLETED",   "FAILED",
                                              "WAIT P50 US", "WAIT P99 US", "EXEC P50 US", "EXEC P99 US"};
        _cleanup_(table_freep) Table *t = table_new(ELEMENTSOF(headers), headers);
        int r = 0;

        if (!t)
                return -ENOMEM;
        for (size_t c = 1; c < ELEMENTSOF(headers); c++)
                table_align_right(t, c);
        for (Priority p = 0; p < _PRIORITY_MAX && r >= 0; p++)
                r = add_priority_row(t, stats, p);
        if (r >= 0)
                r = table_print(t, stdout);
        return r;
}

/* "123", or "-" when the scheduler did not report the key. */
static const char *stat_text(const BusDict *stats, const char *key, char *buf, size_t len)
{
        const BusDictEntry *e = bus_dict_get(stats, key);

        if (!e || e->type != BUS_VALUE_UINT)
                return "-";
        snprintf(buf, len, "%" PRIu64, e->u);
        return buf;
}

/* "mps: SMs per launch high all, medium 48, low 32; lower priorities together at most 100 of 132" or
 * "time-sliced" (an isolated pool, or a shared one without MPS). */
static void print_execution(const BusDict *stats)
{
        const char *e = bus_dict_get_string(stats, "execution");
        char h[32], m[32], l[32], cap[32], budget[32];
        const BusDictEntry *v;

        if (!e || !streq(e, "mps")) {
                show_field("Execution", "%s", dash_if_empty(e));
                return;
        }
        v = bus_dict_get(stats, "sm_limit_high");
        if (v && v->type == BUS_VALUE_UINT && v->u == 0)
                snprintf(h, sizeof(h), "all");
        else
                stat_text(stats, "sm_limit_high", h, sizeof(h));
        v = bus_dict_get(stats, "sm_budget");
        snprintf(cap, sizeof(cap), "-");
        if (v && v->type == BUS_VALUE_UINT) {
                const BusDictEntry *hr = bus_dict_get(stats, "sm_headroom");

                snprintf(cap, sizeof(cap), "%" PRIu64, v->u - (hr && hr->type == BUS_VALUE_UINT ? hr->u : 0));
        }
        show_field("Execution", "mps: SMs per launch high %s, medium %s, low %s; lower priorities together at most "
                   "%s of %s", h, stat_text(stats, "sm_limit_medium", m, sizeof(m)),
                   stat_text(stats, "sm_limit_low", l, sizeof(l)), cap,
                   stat_text(stats, "sm_budget", budget, sizeof(budget)));
}

static int print_pool_stats_text(const PoolStats *ps)
{
        char a[32], b[32], c[32], d[32];
        int r;

        show_field("Pool", "%s", ps->pool);
        if (!ps->running) {
                show_field("Scheduler", "not running (no %s%s on the bus); no statistics", SCHED_SERVICE_PREFIX,
                           ps->pool);
                return 0;
        }
        show_field("Scheduler", "running");
        show_field("Mode", "%s", dash_if_empty(bus_dict_get_string(&ps->stats, "mode")));
        show_field("GPU", "%s", dash_if_empty(bus_dict_get_string(&ps->stats, "gpu_resource")));
        print_execution(&ps->stats);
        show_field("Wait policy", "%s", dash_if_empty(bus_dict_get_string(&ps->stats, "wait_policy")));
        show_field("In flight", "%s of at most %s", stat_text(&ps->stats, "in_flight", a, sizeof(a)),
                   stat_text(&ps->stats, "max_in_flight", b, sizeof(b)));
        show_field("Received", "%s commands", stat_text(&ps->stats, "received", a, sizeof(a)));
        show_field("Executors died", "%s (restarted %s; at most %s restarts per VM in %s s)",
                   stat_text(&ps->stats, "executor_deaths", a, sizeof(a)),
                   stat_text(&ps->stats, "executor_restarts", b, sizeof(b)),
                   stat_text(&ps->stats, "restart_limit", c, sizeof(c)),
                   stat_text(&ps->stats, "restart_window_sec", d, sizeof(d)));
        putchar('\n');
        r = print_priority_table(&ps->stats);
        return r < 0 ? r : print_vm_table(&ps->vms);
}

/* The pools to report on: --pool, or every pool vgpu-configd knows. */
static int pools_to_report(sd_bus *bus, BusDictArray *ret)
{
        _cleanup_bus_message_ sd_bus_message *m = NULL, *reply = NULL;
        int r;

        if (option_given(OPT_POOL))
                return 0;
        r = config_method_new(bus, &m, "ListPools");
        if (r >= 0)
                r = config_call(bus, m, &reply);
        if (r >= 0)
                r = reply_read_dict_array(reply, &ret->items, &ret->n);
        return r;
}

static void print_stats(const PoolStats *all, size_t n)
{
        JsonWriter w;

        if (arg_json) {
                json_start(&w);
                json_begin_array(&w);
                for (size_t i = 0; i < n; i++)
                        json_pool_stats(&w, all[i].pool, all[i].running ? &all[i].stats : NULL, &all[i].vms);
                json_end_array(&w);
                json_finish(&w);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        putchar('\n');
                if (print_pool_stats_text(&all[i]) < 0)
                        admin_error("cannot print the statistics of pool %s.", all[i].pool);
        }
        if (n == 0 && arg_legend)
                printf("No pools.\n");
}

static const char *pool_of(const BusDict *pool)
{
        return strempty(bus_dict_get_string(pool, "pool"));
}

static void pool_stats_free(PoolStats *all, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                bus_dict_done(&all[i].stats);
                bus_dict_array_free(all[i].vms.items, all[i].vms.n);
        }
        free(all);
}

int verb_stats(void)
{
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_bus_dict_array_ BusDictArray pools = {0};
        PoolStats *all;
        size_t n, missing = 0;
        int r;

        r = admin_bus_open(&bus);
        if (r >= 0)
                r = pools_to_report(bus, &pools);
        if (r < 0)
                return r;
        n = option_given(OPT_POOL) ? 1 : pools.n;
        all = calloc(n > 0 ? n : 1, sizeof(*all));
        if (!all) {
                admin_error("out of memory.");
                return -ENOMEM;
        }
        for (size_t i = 0; i < n && r >= 0; i++)
                r = pool_stats_read(bus, option_given(OPT_POOL) ? arg_pool : pool_of(&pools.items[i]), &all[i]);
        if (r >= 0) {
                print_stats(all, n);
                for (size_t i = 0; i < n; i++)
                        if (!all[i].running) {
                                admin_error("no scheduler is running for pool %s: its statistics are unknown.",
                                            all[i].pool);
                                missing++;
                        }
        }
        pool_stats_free(all, n);
        if (r < 0)
                return r;
        return missing > 0 ? -ESRCH : 0;
}
