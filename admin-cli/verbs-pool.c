/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The pool verbs: list, show, create, configure and delete. */
#include <inttypes.h>

#include "admin.h"

#define MEMBERS_SHOWN_MAX 64

static const char *mode_explained(const char *mode)
{
        if (streq_ptr(mode, "isolated"))
                return "isolated (each VM its own fault domain, time-sliced)";
        if (streq_ptr(mode, "shared"))
                return "shared (MPS: VMs run side by side; one VM's fault can abort the others' work)";
        return dash_if_empty(mode);
}

static void warn_if_shared(void)
{
        if (option_given(OPT_MODE) && arg_mode == POOL_MODE_SHARED)
                fprintf(stderr, "Note: in a shared pool a faulting kernel of one VM can abort the work of the "
                                "other VMs in it; use it for vetted workloads.\n");
}

static int print_pool_table(const BusDictArray *pools)
{
        static const char *const headers[] = {"POOL", "VMS", "CAPACITY", "HIGH", "MEDIUM", "LOW", "MODE", "GPU"};
        _cleanup_(table_freep) Table *t = table_new(ELEMENTSOF(headers), headers);
        static const char *const counts[] = {"vm_count", "capacity", "vm_count_high", "vm_count_medium",
                                             "vm_count_low"};
        int r = 0;

        if (!t)
                return -ENOMEM;
        for (size_t c = 1; c <= ELEMENTSOF(counts); c++)
                table_align_right(t, c);
        for (size_t i = 0; i < pools->n && r >= 0; i++) {
                const BusDict *p = &pools->items[i];

                r = table_add(t, bus_dict_get_string(p, "pool"));
                for (size_t c = 0; c < ELEMENTSOF(counts) && r >= 0; c++)
                        r = table_addf(t, "%" PRIu64, bus_dict_get_uint(p, counts[c]));
                if (r >= 0)
                        r = table_add(t, bus_dict_get_string(p, "mode"));
                if (r >= 0)
                        r = table_add(t, bus_dict_get_string(p, "gpu_resource"));
        }
        if (r >= 0 && pools->n > 0)
                r = table_print(t, stdout);
        return r;
}

int verb_list_pools(void)
{
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_bus_message_ sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_bus_dict_array_ BusDictArray pools = {0};
        int r;

        r = admin_bus_open(&bus);
        if (r >= 0)
                r = config_method_new(bus, &m, "ListPools");
        if (r >= 0)
                r = config_call(bus, m, &reply);
        if (r >= 0)
                r = reply_read_dict_array(reply, &pools.items, &pools.n);
        if (r < 0)
                return r;

        return print_record_list(&pools, &(RecordListFormat){ .json_record = json_pool, .print_table = print_pool_table,
                                                            .singular = "pool", .plural = "pools" });
}

static void show_members(const BusDictArray *vms)
{
        char line[1024] = "";
        size_t n = 0;

        for (size_t i = 0; i < vms->n && i < MEMBERS_SHOWN_MAX && n < sizeof(line); i++)
                n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%" PRIu64, i == 0 ? "" : " ",
                                      bus_dict_get_uint(&vms->items[i], "vm_id"));
        if (vms->n > MEMBERS_SHOWN_MAX && n < sizeof(line))
                snprintf(line + n, sizeof(line) - n, " ... (%zu more: vgpu-admin list-vms --pool=%s)",
                         vms->n - MEMBERS_SHOWN_MAX, arg_pool);
        show_field("Members", "%s", vms->n == 0 ? "none" : line);
}

static void show_pool_text(const BusDict *p, const BusDictArray *vms)
{
        char quota[32], created[64], updated[64];
        uint64_t count = bus_dict_get_uint(p, "vm_count"), capacity = bus_dict_get_uint(p, "capacity");
        uint64_t bytes = bus_dict_get_uint(p, "default_memory_quota");
        const char *gpu = bus_dict_get_string(p, "gpu_resource");

        show_field("Pool", "%s", dash_if_empty(bus_dict_get_string(p, "pool")));
        show_field("Description", "%s", dash_if_empty(bus_dict_get_string(p, "description")));
        show_field("VMs", "%" PRIu64 " of %" PRIu64 " (%" PRIu64 " free)", count, capacity,
                   capacity > count ? capacity - count : 0);
        show_field("By priority", "high %" PRIu64 ", medium %" PRIu64 ", low %" PRIu64,
                   bus_dict_get_uint(p, "vm_count_high"), bus_dict_get_uint(p, "vm_count_medium"),
                   bus_dict_get_uint(p, "vm_count_low"));
        show_members(vms);
        show_field("Mode", "%s", mode_explained(bus_dict_get_string(p, "mode")));
        show_field("GPU", "%s", isempty(gpu) ? "none assigned yet" : gpu);
        show_field("Default quota", "%s (%" PRIu64 " bytes)", format_size(bytes, quota, sizeof(quota)), bytes);
        show_field("Created", "%s", format_timestamp(bus_dict_get_uint(p, "created_usec"), created, sizeof(created)));
        show_field("Changed", "%s", format_timestamp(bus_dict_get_uint(p, "updated_usec"), updated, sizeof(updated)));
}

int verb_show_pool(void)
{
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_bus_dict_ BusDict pool = {0};
        _cleanup_bus_dict_array_ BusDictArray vms = {0};
        int r;

        r = admin_bus_open(&bus);
        if (r >= 0)
                r = config_get_pool(bus, arg_pool, &pool);
        if (r >= 0)
                r = config_list_vms(bus, arg_pool, "", &vms.items, &vms.n);
        if (r < 0)
                return r;

        if (arg_json) {
                JsonWriter w;

                json_start(&w);
                json_pool_with_members(&w, &pool, &vms);
                json_finish(&w);
        } else
                show_pool_text(&pool, &vms);
        return 0;
}

/* The settings given on the command line, as CreatePool's options or ConfigurePool's settings. */
static int append_pool_settings(sd_bus_message *m, bool with_capacity)
{
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && with_capacity && option_given(OPT_CAPACITY))
                r = bus_dict_append_u32(m, "capacity", arg_capacity);
        if (r >= 0 && option_given(OPT_MODE))
                r = bus_dict_append_string(m, "mode", pool_mode_to_string(arg_mode));
        if (r >= 0 && option_given(OPT_GPU))
                r = bus_dict_append_string(m, "gpu_resource", arg_gpu);
        if (r >= 0 && option_given(OPT_DEFAULT_MEMORY_QUOTA))
                r = bus_dict_append_u64(m, "default_memory_quota", arg_default_memory_quota);
        if (r >= 0 && option_given(OPT_DESCRIPTION))
                r = bus_dict_append_string(m, "description", arg_description);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static void print_pool_result(const char *done, const BusDict *p)
{
        char quota[32];
        const char *gpu = bus_dict_get_string(p, "gpu_resource");
        JsonWriter w;

        if (arg_json) {
                json_start(&w);
                json_pool(&w, p);
                json_finish(&w);
                return;
        }
        printf("Pool %s %s: capacity %" PRIu64 ", mode %s, GPU %s, default memory quota %s.\n",
               strempty(bus_dict_get_string(p, "pool")), done, bus_dict_get_uint(p, "capacity"),
               strempty(bus_dict_get_string(p, "mode")), isempty(gpu) ? "none yet" : gpu,
               format_size(bus_dict_get_uint(p, "default_memory_quota"), quota, sizeof(quota)));
}

/* CreatePool (pool, capacity, options) and ConfigurePool (pool, settings) both return the record. */
static int change_pool(const char *method, bool create)
{
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_bus_message_ sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_bus_dict_ BusDict pool = {0};
        int r;

        r = admin_bus_open(&bus);
        if (r >= 0)
                r = config_method_new(bus, &m, method);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "s", arg_pool);
        if (r >= 0 && create)
                r = sd_bus_message_append(m, "u", arg_capacity);
        if (r >= 0)
                r = append_pool_settings(m, !create);
        if (r < 0)
                return call_build_failed(method, r);
        r = config_call(bus, m, &reply);
        if (r >= 0)
                r = reply_read_dict(reply, &pool);
        if (r < 0)
                return r;
        print_pool_result(create ? "created" : "configured", &pool);
        warn_if_shared();
        return 0;
}

int verb_create_pool(void)
{
        return change_pool("CreatePool", true);
}

int verb_configure_pool(void)
{
        return change_pool("ConfigurePool", false);
}

int verb_delete_pool(void)
{
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_bus_message_ sd_bus_message *m = NULL, *reply = NULL;
        int r;

        r = admin_bus_open(&bus);
        if (r >= 0)
                r = config_method_new(bus, &m, "DeletePool");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "s", arg_pool);
        if (r < 0)
                return call_build_failed("DeletePool", r);
        r = config_call(bus, m, &reply);
        if (r < 0)
                return r;

        if (arg_json)
                json_print_pool_outcome(arg_pool, "deleted");
        else
                printf("Pool %s deleted.\n", arg_pool);
        return 0;
}
