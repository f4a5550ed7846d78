/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.vgpu.Scheduler1 on /org/vgpu/Scheduler1 (dbus-interfaces/org.vgpu.Scheduler1.xml): read-only
 * properties and two read-only methods, open to local users. */
#include <errno.h>

#include "bus-util.h"
#include "sched.h"

static const char *const level_names[_PRIORITY_MAX] = {"high", "medium", "low"};

static int append_histogram(sd_bus_message *m, const char *key, const Histogram *h)
{
        int r;

        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", key);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "at");
        if (r >= 0)
                r = sd_bus_message_append_array(m, 't', h->buckets, sizeof(h->buckets));
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static int append_level(sd_bus_message *m, const Sched *s, Priority p)
{
        const PriorityStats *ps = &s->stats.priority[p];
        const char *n = level_names[p];
        char key[64];
        int r;

#define KEY(fmt) (snprintf(key, sizeof(key), fmt, n), key)
        r = bus_dict_append_u64(m, KEY("queued_%s"), queue_depth(s->queue, p));
        if (r >= 0)
                r = bus_dict_append_u64(m, KEY("completed_%s"), ps->completed);
        if (r >= 0)
                r = bus_dict_append_u64(m, KEY("failed_%s"), ps->failed);
        if (r >= 0)
                r = append_histogram(m, KEY("wait_hist_us_%s"), &ps->wait);
        if (r >= 0)
                r = append_histogram(m, KEY("exec_hist_us_%s"), &ps->exec);
        if (r >= 0)
                r = bus_dict_append_u64(m, KEY("wait_p50_us_%s"), histogram_quantile_us(&ps->wait, 0.50));
        if (r >= 0)
                r = bus_dict_append_u64(m, KEY("wait_p99_us_%s"), histogram_quantile_us(&ps->wait, 0.99));
        if (r >= 0)
                r = bus_dict_append_u64(m, KEY("exec_p50_us_%s"), histogram_quantile_us(&ps->exec, 0.50));
        if (r >= 0)
                r = bus_dict_append_u64(m, KEY("exec_p99_us_%s"), histogram_quantile_us(&ps->exec, 0.99));
#undef KEY
        return r;
}

static int append_vm(sd_bus_message *m, const Vm *vm)
{
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0)
                r = bus_dict_append_u32(m, "vm_id", vm->vm_id);
        if (r >= 0)
                r = bus_dict_append_u64(m, "generation", vm->generation);
        if (r >= 0)
                r = bus_dict_append_string(m, "state", vm_state_to_string(vm->state));
        if (r >= 0)
                r = bus_dict_append_string(m, "priority", priority_to_string((Priority)vm->last_priority));
        if (r >= 0)
                r = bus_dict_append_u64(m, "commands", vm->commands);
        if (r >= 0)
                r = bus_dict_append_u64(m, "errors", vm->errors);
        if (r >= 0)
                r = bus_dict_append_u64(m, "exec_ns", vm->exec_ns);
        if (r >= 0)
                r = bus_dict_append_u64(m, "queued", queue_depth_vm(vm->sched->queue, vm->vm_id));
        if (r >= 0)
                r = bus_dict_append_u32(m, "in_flight", vm->n_in_flight);
        if (r >= 0)
                r = bus_dict_append_u32(m, "executor_pid", (uint32_t)(vm->pid > 0 ? vm->pid : 0));
        if (r >= 0)
                r = bus_dict_append_u64(m, "memory_quota", vm->memory_quota);
        if (r >= 0)
                r = bus_dict_append_string(m, "backend", vm->executor ? vm->executor->backend : "");
        if (r >= 0)
                r = bus_dict_append_u64(m, "executor_deaths", vm->deaths);
        if (r >= 0)
                r = bus_dict_append_u64(m, "executor_restarts", vm->restarts);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static int append_vms(sd_bus_message *m, const Sched *s)
{
        int r = sd_bus_message_open_container(m, 'a', "a{sv}");

        for (const Vm *vm = s->vms; r >= 0 && vm; vm = vm->next)
                r = append_vm(m, vm);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static int append_totals(sd_bus_message *m, const Sched *s)
{
        const SchedStats *st = &s->stats;
        int r;

        r = bus_dict_append_string(m, "pool", s->pool);
        if (r >= 0)
                r = bus_dict_append_string(m, "mode", pool_mode_to_string(s->mode));
        if (r >= 0)
                r = bus_dict_append_string(m, "gpu_resource", s->gpu_resource);
        if (r >= 0)
                r = bus_dict_append_string(m, "execution", gpu_execution_to_string(s));
        if (r >= 0)
                r = bus_dict_append_string(m, "mps_pipe_dir", s->mps ? s->mps_pipe_dir : "");
        if (r >= 0)
                r = bus_dict_append_u32(m, "sm_count", s->sm_count);
        if (r >= 0)
                r = bus_dict_append_u32(m, "sm_budget", s->sm_budget);
        if (r >= 0)
                r = bus_dict_append_u32(m, "sm_headroom", s->sm_budget - s->sm_lower_cap);
        if (r >= 0)
                r = bus_dict_append_u32(m, "sm_limit_high", s->mps ? s->sm_limit[PRIORITY_HIGH] : 0);
        if (r >= 0)
                r = bus_dict_append_u32(m, "sm_limit_medium", s->mps ? s->sm_limit[PRIORITY_MEDIUM] : 0);
        if (r >= 0)
                r = bus_dict_append_u32(m, "sm_limit_low", s->mps ? s->sm_limit[PRIORITY_LOW] : 0);
        if (r >= 0)
                r = bus_dict_append_u32(m, "sm_in_use", s->sm_in_use);
        if (r >= 0)
                r = bus_dict_append_u32(m, "sm_lower_in_use", s->sm_lower_in_use);
        if (r >= 0)
                r = bus_dict_append_string(m, "wait_policy", s->wait_policy);
        if (r >= 0)
                r = bus_dict_append_u32(m, "in_flight", queue_in_flight(s->queue));
        if (r >= 0)
                r = bus_dict_append_u32(m, "max_in_flight", queue_max_in_flight(s->queue));
        if (r >= 0)
                r = bus_dict_append_u64(m, "starvation_ms", queue_starvation_ns(s->queue) / 1000000);
        if (r >= 0)
                r = bus_dict_append_u64(m, "promoted", queue_promoted(s->queue));
        if (r >= 0)
                r = bus_dict_append_u64(m, "inherited", queue_inherited(s->queue));
        if (r >= 0)
                r = bus_dict_append_u64(m, "received", st->received);
        if (r >= 0)
                r = bus_dict_append_u64(m, "refused", st->refused);
        if (r >= 0)
                r = bus_dict_append_u64(m, "dropped_completions", st->dropped_completions);
        if (r >= 0)
                r = bus_dict_append_u64(m, "executor_deaths", st->executor_deaths);
        if (r >= 0)
                r = bus_dict_append_u64(m, "executor_restarts", st->executor_restarts);
        if (r >= 0)
                r = bus_dict_append_u32(m, "restart_limit", s->restart_limit);
        if (r >= 0)
                r = bus_dict_append_u64(m, "restart_window_sec", s->restart_window_ns / 1000000000);
        if (r >= 0)
                r = bus_dict_append_u64(m, "loop_rounds", st->loop_rounds);
        if (r >= 0)
                r = bus_dict_append_u64(m, "loop_found_spinning", st->loop_found_spinning);
        if (r >= 0)
                r = bus_dict_append_u64(m, "loop_found_arming", st->loop_found_arming);
        if (r >= 0)
                r = bus_dict_append_u64(m, "loop_sleeps", st->loop_sleeps);
        if (r >= 0)
                r = bus_dict_append_bool(m, "ingestd_connected", s->link.up);
        return r;
}

static int method_get_stats(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        Sched *s = userdata;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r >= 0)
                r = append_totals(reply, s);
        for (int p = 0; r >= 0 && p < _PRIORITY_MAX; p++)
                r = append_level(reply, s, (Priority)p);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(reply, "s", "vms");
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'v', "aa{sv}");
        if (r >= 0)
                r = append_vms(reply, s);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_list_vms(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = append_vms(reply, userdata);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int property_get_mode(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Sched *s = userdata;

        return sd_bus_message_append(reply, "s", pool_mode_to_string(s->mode));
}

static int property_get_execution(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        return sd_bus_message_append(reply, "s", gpu_execution_to_string(userdata));
}

static int property_get_gpu_resource(sd_bus *bus, const char *path, const char *interface,
                                     const char *property, sd_bus_message *reply, void *userdata,
                                     sd_bus_error *error)
{
        Sched *s = userdata;

        return sd_bus_message_append(reply, "s", s->gpu_resource);
}

static int property_get_max_in_flight(sd_bus *bus, const char *path, const char *interface,
                                      const char *property, sd_bus_message *reply, void *userdata,
                                      sd_bus_error *error)
{
        Sched *s = userdata;

        return sd_bus_message_append(reply, "u", queue_max_in_flight(s->queue));
}

static int property_get_wait_policy(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Sched *s = userdata;

        return sd_bus_message_append(reply, "s", s->wait_policy);
}

static int property_get_pool(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Sched *s = userdata;

        return sd_bus_message_append(reply, "s", s->pool);
}

const sd_bus_vtable sched_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Pool", "s", property_get_pool, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Mode", "s", property_get_mode, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("GpuResource", "s", property_get_gpu_resource, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Execution", "s", property_get_execution, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("WaitPolicy", "s", property_get_wait_policy, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MaxInFlight", "u", property_get_max_in_flight, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("GetStats", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sv}", stats), method_get_stats,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListVms", SD_BUS_NO_ARGS, SD_BUS_RESULT("aa{sv}", vms), method_list_vms,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};
