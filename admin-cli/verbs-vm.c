/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The VM verbs: register, unregister, change priority, pool, quota and IOMMU policy, show and list. */
#include <inttypes.h>

#include "admin.h"

static int open_call(sd_bus **bus, sd_bus_message **m, const char *method)
{
        int r = admin_bus_open(bus);

        return r < 0 ? r : config_method_new(*bus, m, method);
}

static int append_register_options(sd_bus_message *m)
{
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && option_given(OPT_UUID))
                r = bus_dict_append_string(m, "uuid", arg_uuid);
        if (r >= 0 && option_given(OPT_NAME))
                r = bus_dict_append_string(m, "name", arg_name);
        if (r >= 0 && option_given(OPT_MEMORY_QUOTA))
                r = bus_dict_append_u64(m, "memory_quota", arg_memory_quota);
        if (r >= 0 && option_given(OPT_IOMMU_POLICY))
                r = bus_dict_append_string(m, "iommu_policy", iommu_policy_to_string(arg_iommu_policy));
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static void print_vm_json(const BusDict *vm)
{
        JsonWriter w;

        json_start(&w);
        json_vm(&w, vm);
        json_finish(&w);
}

int verb_register_vm(void)
{
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_bus_message_ sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_bus_dict_ BusDict vm = {0};
        char quota[32];
        int r;

        r = open_call(&bus, &m, "RegisterVm");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "uss", arg_vm_id, arg_pool, priority_to_string(arg_priority));
        if (r >= 0)
                r = append_register_options(m);
        if (r < 0)
                return call_build_failed("RegisterVm", r);
        r = config_call(bus, m, &reply);
        if (r < 0)
                return r;
        r = reply_read_dict(reply, &vm);
        if (r < 0)
                return r;

        if (arg_json) {
                print_vm_json(&vm);
                return 0;
        }
        printf("VM %" PRIu64 " registered in pool %s with priority %s (memory quota %s, IOMMU policy %s).\n",
               bus_dict_get_uint(&vm, "vm_id"), strempty(bus_dict_get_string(&vm, "pool")),
               strempty(bus_dict_get_string(&vm, "priority")),
               format_size(bus_dict_get_uint(&vm, "memory_quota"), quota, sizeof(quota)),
               strempty(bus_dict_get_string(&vm, "iommu_policy")));
        return 0;
}

int verb_unregister_vm(void)
{
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_bus_message_ sd_bus_message *m = NULL, *reply = NULL;
        int r;

        r = open_call(&bus, &m, "UnregisterVm");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "u", arg_vm_id);
        if (r < 0)
                return call_build_failed("UnregisterVm", r);
        r = config_call(bus, m, &reply);
        if (r < 0)
                return r;

        if (arg_json)
                json_print_vm_outcome(arg_vm_id, "unregistered");
        else
                printf("VM %" PRIu32 " unregistered; its history stays in the audit log.\n", arg_vm_id);
        return 0;
}

/* Calls a setter that takes (vm_id, value) and returns the previous value. */
static int call_vm_setter(sd_bus **bus, sd_bus_message **reply, const char *method, char type, const void *value)
{
        _cleanup_bus_message_ sd_bus_message *m = NULL;
        int r;

        r = open_call(bus, &m, method);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "u", arg_vm_id);
        if (r >= 0)
                r = sd_bus_message_append_basic(m, type, value);
        if (r < 0)
                return call_build_failed(method, r);
        return config_call(*bus, m, reply);
}

/* {"vm_id": N, "old_<key>": "old", "<key>": "new"} */
static void print_change_json(const char *key, const char *old_value, const char *new_value)
{
        char old_key[64];
        JsonWriter w;

        snprintf(old_key, sizeof(old_key), "old_%s", key);
        json_start(&w);
        json_begin_object(&w);
        json_key(&w, "vm_id");
        json_uint(&w, arg_vm_id);
        json_key(&w, old_key);
        json_string(&w, old_value);
        json_key(&w, key);
        json_string(&w, new_value);
        json_end_object(&w);
        json_finish(&w);
}

/* The text form of a change: "VM 3: priority medium → high" + tail, or that nothing changed. */
static void print_change(const char *what, const char *old_value, const char *new_value, const char *tail)
{
        if (streq(old_value, new_value))
                printf("VM %" PRIu32 ": %s is already %s; nothing changed.\n", arg_vm_id, what, new_value);
        else
                printf("VM %" PRIu32 ": %s %s %s %s%s\n", arg_vm_id, what, old_value, glyph_arrow(), new_value, tail);
}

/* The verbs whose setter takes and returns a string. */
static int set_vm_string(const char *method, const char *key, const char *what, const char *value, const char *tail)
{
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        const char *old_value;
        int r;

        r = call_vm_setter(&bus, &reply, method, 's', value);
        if (r < 0)
                return r;
        r = reply_read_string(reply, &old_value);
        if (r < 0)
                return r;
        if (arg_json)
                print_change_json(key, old_value, value);
        else
                print_change(what, old_value, value, tail);
        return 0;
}

int verb_set_priority(void)
{
        return set_vm_string("SetPriority", "priority", "priority", priority_to_string(arg_priority),
                             "; applies to its next command.");
}

int verb_set_pool(void)
{
        char tail[256];

        /* What the move does to a guest that is connected now (docs/ingestd.md, "Pool moves"). */
        snprintf(tail, sizeof(tail),
                 ". A connected guest keeps its channel, but its GPU memory is freed and zeroed and its "
                 "handles are gone; its next command is served by pool %s.",
                 arg_pool);
        return set_vm_string("MoveVm", "pool", "pool", arg_pool, tail);
}

int verb_set_iommu_policy(void)
{
        return set_vm_string("SetIommuPolicy", "iommu_policy", "IOMMU policy", iommu_policy_to_string(arg_iommu_policy),
                             ".");
}

int verb_set_memory_quota(void)
{
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        char old_text[32], new_text[32];
        uint64_t old_bytes;
        int r;

        r = call_vm_setter(&bus, &reply, "SetMemoryQuota", 't', &arg_memory_quota);
        if (r < 0)
                return r;
        r = sd_bus_message_read_basic(reply, 't', &old_bytes);
        if (r < 0)
                return call_reply_bad(r);

        if (arg_json) {
                JsonWriter w;

                json_start(&w);
                json_begin_object(&w);
                json_key(&w, "vm_id");
                json_uint(&w, arg_vm_id);
                json_key(&w, "old_memory_quota");
                json_uint(&w, old_bytes);
                json_key(&w, "memory_quota");
                json_uint(&w, arg_memory_quota);
                json_end_object(&w);
                json_finish(&w);
                return 0;
        }
        print_change("memory quota", format_size(old_bytes, old_text, sizeof(old_text)),
                     format_size(arg_memory_quota, new_text, sizeof(new_text)), ".");
        return 0;
}

void show_vm_iommu_fields(const BusDict *vm)
{
        const BusDictEntry *group = bus_dict_get(vm, "iommu_group");

        show_field("IOMMU policy", "%s", dash_if_empty(bus_dict_get_string(vm, "iommu_policy")));
        show_field("IOMMU domain", "%s",
                   isempty(bus_dict_get_string(vm, "iommu_domain")) ? "not recorded yet"
                                                                    : bus_dict_get_string(vm, "iommu_domain"));
        if (group && group->type == BUS_VALUE_INT && group->i >= 0)
                show_field("IOMMU group", "%" PRId64, group->i);
        else
                show_field("IOMMU group", "none recorded");
}

static void show_vm_text(const BusDict *vm)
{
        char quota[32], created[64], updated[64];
        uint64_t bytes = bus_dict_get_uint(vm, "memory_quota");

        show_field("VM", "%" PRIu64, bus_dict_get_uint(vm, "vm_id"));
        show_field("Name", "%s", dash_if_empty(bus_dict_get_string(vm, "name")));
        show_field("UUID", "%s", dash_if_empty(bus_dict_get_string(vm, "uuid")));
        show_field("Pool", "%s", dash_if_empty(bus_dict_get_string(vm, "pool")));
        show_field("Priority", "%s", dash_if_empty(bus_dict_get_string(vm, "priority")));
        show_field("Memory quota", "%s (%" PRIu64 " bytes)", format_size(bytes, quota, sizeof(quota)), bytes);
        show_vm_iommu_fields(vm);
        show_field("Registered", "%s",
                   format_timestamp(bus_dict_get_uint(vm, "created_usec"), created, sizeof(created)));
        show_field("Changed", "%s", format_timestamp(bus_dict_get_uint(vm, "updated_usec"), updated, sizeof(updated)));
}

int verb_show_vm(void)
{
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_bus_dict_ BusDict vm = {0};
        int r;

        r = admin_bus_open(&bus);
        if (r < 0)
                return r;
        if (option_given(OPT_UUID))
                r = config_get_vm_by_uuid(bus, arg_uuid, &vm);
        else
                r = config_get_vm(bus, arg_vm_id, &vm);
        if (r < 0)
                return r;
        if (arg_json)
                print_vm_json(&vm);
        else
                show_vm_text(&vm);
        return 0;
}

static int print_vm_table(const BusDictArray *vms)
{
        static const char *const headers[] = {"VM", "POOL", "PRIORITY", "QUOTA", "UUID", "NAME"};
        _cleanup_(table_freep) Table *t = table_new(ELEMENTSOF(headers), headers);
        char quota[32];
        int r = 0;

        if (!t)
                return -ENOMEM;
        table_align_right(t, 0);
        table_align_right(t, 3);
        for (size_t i = 0; i < vms->n && r >= 0; i++) {
                const BusDict *vm = &vms->items[i];

                r = table_addf(t, "%" PRIu64, bus_dict_get_uint(vm, "vm_id"));
                if (r >= 0)
                        r = table_add(t, bus_dict_get_string(vm, "pool"));
                if (r >= 0)
                        r = table_add(t, bus_dict_get_string(vm, "priority"));
                if (r >= 0)
                        r = table_add(t, format_size(bus_dict_get_uint(vm, "memory_quota"), quota, sizeof(quota)));
                if (r >= 0)
                        r = table_add(t, bus_dict_get_string(vm, "uuid"));
                if (r >= 0)
                        r = table_add(t, bus_dict_get_string(vm, "name"));
        }
        if (r >= 0 && vms->n > 0)
                r = table_print(t, stdout);
        return r;
}

int verb_list_vms(void)
{
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_bus_dict_array_ BusDictArray vms = {0};
        int r;

        r = admin_bus_open(&bus);
        if (r < 0)
                return r;
        r = config_list_vms(bus, option_given(OPT_POOL) ? arg_pool : "",
                            option_given(OPT_PRIORITY) ? priority_to_string(arg_priority) : "", &vms.items, &vms.n);
        if (r < 0)
                return r;

        return print_record_list(&vms, &(RecordListFormat){ .json_record = json_vm, .print_table = print_vm_table,
                                                            .singular = "VM", .plural = "VMs" });
}
