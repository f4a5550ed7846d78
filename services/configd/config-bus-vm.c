/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.vgpu.Config1 methods on VMs. Each reads its arguments, validates them, authorizes the caller,
 * acts on the store, names any refusal, logs what changed, signals it, and replies. */
#include <inttypes.h>
#include <stdarg.h>

#include "config-bus.h"
#include "log.h"

_printf_(2, 3) static int invalid(sd_bus_error *error, const char *format, ...)
{
        char message[512];
        va_list ap;

        va_start(ap, format);
        vsnprintf(message, sizeof(message), format, ap);
        va_end(ap);
        return sd_bus_error_set(error, VGPU_ERROR_INVALID_ARGUMENT, message);
}

static int check_vm_id(uint32_t vm_id, sd_bus_error *error)
{
        if (vm_id_is_valid(vm_id))
                return 0;
        return invalid(error, "Invalid VM id %" PRIu32 ": expected an integer from 1 to 2147483647.", vm_id);
}

static int check_pool(const char *pool, sd_bus_error *error)
{
        if (pool_id_is_valid(pool))
                return 0;
        return invalid(error, "Invalid pool id '%s': expected a letter followed by up to 15 letters, digits or '_'.",
                       pool);
}

static int parse_priority(const char *s, Priority *ret, sd_bus_error *error)
{
        *ret = priority_from_string(s);
        if (*ret >= 0)
                return 0;
        return invalid(error, "Invalid priority '%s': expected high, medium or low.", s);
}

/* One of RegisterVm's options, into the VmRecord at `userdata`: uuid (s), name (s), memory_quota (t),
 * iommu_policy (s). */
static int register_option(sd_bus_message *msg, const char *key, const char *type, void *userdata,
                           sd_bus_error *error)
{
        VmRecord *vm = userdata;
        const char *s;
        int r;

        if (streq(key, "memory_quota") && streq(type, "t"))
                return sd_bus_message_read(msg, "v", "t", &vm->memory_quota);
        if (!streq(type, "s") || !(streq(key, "uuid") || streq(key, "name") || streq(key, "iommu_policy")))
                return invalid(error, "Unknown option '%s' of type '%s' (known: uuid s, name s, memory_quota t, "
                               "iommu_policy s).", key, type);
        r = sd_bus_message_read(msg, "v", "s", &s);
        if (r < 0)
                return r;
        if (streq(key, "uuid")) {
                if (uuid_normalize(s, vm->uuid) < 0)
                        return invalid(error, "Invalid uuid '%s': expected the form "
                                       "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.", s);
        } else if (streq(key, "name")) {
                if (!text_is_valid(s, VM_NAME_MAX))
                        return invalid(error, "Invalid VM name '%s': at most 128 bytes of printable UTF-8.", s);
                snprintf(vm->name, sizeof(vm->name), "%s", s);
        } else {
                vm->iommu_policy = iommu_policy_from_string(s);
                if (vm->iommu_policy < 0)
                        return invalid(error, "Invalid IOMMU policy '%s': expected required or audit.", s);
        }
        return 0;
}

static int append_vm(sd_bus_message *reply, const void *record)
{
        return bus_append_vm_record(reply, record);
}

static int reply_vm(sd_bus_message *msg, const VmRecord *vm)
{
        return manager_reply_record(msg, append_vm, vm);
}

int method_register_vm(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        VmRecord vm = { .memory_quota = STORE_QUOTA_POOL_DEFAULT, .iommu_policy = IOMMU_POLICY_REQUIRED };
        const char *pool, *priority;
        char quota[32];
        AuditActor who;
        int r;

        r = sd_bus_message_read(msg, "uss", &vm.vm_id, &pool, &priority);
        if (r < 0)
                return r;
        r = bus_read_options(msg, register_option, &vm, error);
        if (r < 0)
                return r;
        if ((r = check_vm_id(vm.vm_id, error)) < 0 || (r = check_pool(pool, error)) < 0 ||
            (r = parse_priority(priority, &vm.priority, error)) < 0)
                return r;
        snprintf(vm.pool, sizeof(vm.pool), "%s", pool);

        r = manager_authorize(m, msg, &who, error);
        if (r < 0)
                return r;

        r = store_register_vm(m->store, &who, &vm, &vm);
        if (r != 0)
                return manager_store_error(m, error, r, vm.vm_id, pool, vm.uuid);

        log_vm(LOG_INFO, vm.vm_id, vm.pool, priority_to_string(vm.priority),
               "Registered VM %" PRIu32 " in pool %s with priority %s, memory quota %s (uid %u).", vm.vm_id, vm.pool,
               priority_to_string(vm.priority), size_format(vm.memory_quota, quota, sizeof(quota)), who.uid);
        manager_emit_vm_changed(m, &vm, "registered", "");
        return reply_vm(msg, &vm);
}

int method_unregister_vm(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        AuditActor who;
        uint32_t vm_id;
        VmRecord last;
        int r;

        r = sd_bus_message_read(msg, "u", &vm_id);
        if (r < 0)
                return r;
        if ((r = check_vm_id(vm_id, error)) < 0 || (r = manager_authorize(m, msg, &who, error)) < 0)
                return r;

        r = store_unregister_vm(m->store, &who, vm_id, &last);
        if (r != 0)
                return manager_store_error(m, error, r, vm_id, NULL, NULL);

        log_vm(LOG_INFO, vm_id, last.pool, priority_to_string(last.priority),
               "Unregistered VM %" PRIu32 " from pool %s (uid %u).", vm_id, last.pool, who.uid);
        manager_emit_vm_changed(m, &last, "unregistered", "");
        return sd_bus_reply_method_return(msg, NULL);
}

/* The tail every setter shares: name a refusal, or log, signal and reply with the old value. */
static int finish_change(Manager *m, sd_bus_message *msg, sd_bus_error *error, int r, uint32_t vm_id,
                         const char *pool, const char *change, const char *old_text, const char *new_text,
                         const VmRecord *vm, const AuditActor *who)
{
        if (r != 0)
                return manager_store_error(m, error, r, vm_id, pool, NULL);
        if (!streq(old_text, new_text)) {
                log_vm(LOG_INFO, vm_id, vm->pool, priority_to_string(vm->priority),
                       "VM %" PRIu32 ": %s changed from %s to %s (uid %u).", vm_id, change, old_text, new_text,
                       who->uid);
                manager_emit_vm_changed(m, vm, change, old_text);
        }
        return 0;
}

int method_set_priority(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        const char *priority_s;
        Priority priority;
        VmRecord old, vm;
        AuditActor who;
        uint32_t vm_id;
        int r;

        r = sd_bus_message_read(msg, "us", &vm_id, &priority_s);
        if (r < 0)
                return r;
        if ((r = check_vm_id(vm_id, error)) < 0 || (r = parse_priority(priority_s, &priority, error)) < 0 ||
            (r = manager_authorize(m, msg, &who, error)) < 0)
                return r;

        r = store_set_priority(m->store, &who, vm_id, priority, &old, &vm);
        r = finish_change(m, msg, error, r, vm_id, NULL, "priority", r ? "" : priority_to_string(old.priority),
                          r ? "" : priority_to_string(vm.priority), &vm, &who);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "s", priority_to_string(old.priority));
}

int method_move_vm(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        VmRecord old, vm;
        const char *pool;
        AuditActor who;
        uint32_t vm_id;
        int r;

        r = sd_bus_message_read(msg, "us", &vm_id, &pool);
        if (r < 0)
                return r;
        if ((r = check_vm_id(vm_id, error)) < 0 || (r = check_pool(pool, error)) < 0 ||
            (r = manager_authorize(m, msg, &who, error)) < 0)
                return r;

        r = store_move_vm(m->store, &who, vm_id, pool, &old, &vm);
        r = finish_change(m, msg, error, r, vm_id, pool, "pool", r ? "" : old.pool, r ? "" : vm.pool, &vm, &who);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "s", old.pool);
}

int method_set_memory_quota(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        char old_s[32] = "", new_s[32] = "";
        VmRecord old, vm;
        AuditActor who;
        uint32_t vm_id;
        uint64_t bytes;
        int r;

        r = sd_bus_message_read(msg, "ut", &vm_id, &bytes);
        if (r < 0)
                return r;
        if ((r = check_vm_id(vm_id, error)) < 0 || (r = manager_authorize(m, msg, &who, error)) < 0)
                return r;
        if (bytes > INT64_MAX)
                return invalid(error, "Invalid memory quota %" PRIu64 ": at most 8 EiB.", bytes);

        r = store_set_memory_quota(m->store, &who, vm_id, bytes, &old, &vm);
        if (r == 0) {
                size_format(old.memory_quota, old_s, sizeof(old_s));
                size_format(vm.memory_quota, new_s, sizeof(new_s));
        }
        r = finish_change(m, msg, error, r, vm_id, NULL, "memory_quota", old_s, new_s, &vm, &who);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "t", old.memory_quota);
}

int method_set_iommu_policy(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        const char *policy_s;
        IommuPolicy policy;
        VmRecord old, vm;
        AuditActor who;
        uint32_t vm_id;
        int r;

        r = sd_bus_message_read(msg, "us", &vm_id, &policy_s);
        if (r < 0)
                return r;
        policy = iommu_policy_from_string(policy_s);
        if (policy < 0)
                return invalid(error, "Invalid IOMMU policy '%s': expected required or audit.", policy_s);
        if ((r = check_vm_id(vm_id, error)) < 0 || (r = manager_authorize(m, msg, &who, error)) < 0)
                return r;

        r = store_set_iommu_policy(m->store, &who, vm_id, policy, &old, &vm);
        r = finish_change(m, msg, error, r, vm_id, NULL, "iommu_policy",
                          r ? "" : iommu_policy_to_string(old.iommu_policy),
                          r ? "" : iommu_policy_to_string(vm.iommu_policy), &vm, &who);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "s", iommu_policy_to_string(old.iommu_policy));
}

int method_set_iommu_record(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        char old_s[96] = "", new_s[96] = "";
        const char *domain;
        VmRecord old, vm;
        AuditActor who;
        uint32_t vm_id;
        int32_t group;
        int r;

        r = sd_bus_message_read(msg, "usi", &vm_id, &domain, &group);
        if (r < 0)
                return r;
        if (!text_is_valid(domain, IOMMU_DOMAIN_MAX) || strchr(domain, ' '))
                return invalid(error, "Invalid IOMMU domain '%s': at most 64 printable characters, no spaces.",
                               domain);
        if (group < -1)
                return invalid(error, "Invalid IOMMU group %" PRId32 ": expected -1 (none) or a group number.", group);
        if ((r = check_vm_id(vm_id, error)) < 0 || (r = manager_authorize(m, msg, &who, error)) < 0)
                return r;

        r = store_set_iommu_record(m->store, &who, vm_id, domain, group, &old, &vm);
        if (r == 0) {
                snprintf(old_s, sizeof(old_s), "%s/%" PRId32, old.iommu_domain, old.iommu_group);
                snprintf(new_s, sizeof(new_s), "%s/%" PRId32, vm.iommu_domain, vm.iommu_group);
        }
        r = finish_change(m, msg, error, r, vm_id, NULL, "iommu_record", old_s, new_s, &vm, &who);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, NULL);
}

int method_get_vm(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        uint32_t vm_id;
        VmRecord vm;
        int r;

        r = sd_bus_message_read(msg, "u", &vm_id);
        if (r < 0)
                return r;
        if ((r = check_vm_id(vm_id, error)) < 0)
                return r;
        r = store_get_vm(m->store, vm_id, &vm);
        if (r != 0)
                return manager_store_error(m, error, r, vm_id, NULL, NULL);
        return reply_vm(msg, &vm);
}

int method_get_vm_by_uuid(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        char uuid[UUID_STRING_LEN + 1];
        Manager *m = userdata;
        const char *s;
        VmRecord vm;
        int r;

        r = sd_bus_message_read(msg, "s", &s);
        if (r < 0)
                return r;
        if (uuid_normalize(s, uuid) < 0)
                return invalid(error, "Invalid uuid '%s': expected the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.", s);
        r = store_get_vm_by_uuid(m->store, uuid, &vm);
        if (r != 0)
                return manager_store_error(m, error, r, 0, NULL, uuid);
        return reply_vm(msg, &vm);
}

static int append_vm_cb(const VmRecord *vm, void *userdata)
{
        return bus_append_vm_record(userdata, vm);
}

typedef struct VmFilter {
        Store *store;
        const char *pool;
        Priority priority;
} VmFilter;

static int fill_vms(sd_bus_message *reply, void *userdata)
{
        const VmFilter *f = userdata;

        return store_list_vms(f->store, f->pool, f->priority, append_vm_cb, reply);
}

int method_list_vms(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Priority priority = _PRIORITY_INVALID;
        const char *pool, *priority_s;
        Manager *m = userdata;
        int r;

        r = sd_bus_message_read(msg, "ss", &pool, &priority_s);
        if (r < 0)
                return r;
        if (!isempty(pool) && (r = check_pool(pool, error)) < 0)
                return r;
        if (!isempty(priority_s) && (r = parse_priority(priority_s, &priority, error)) < 0)
                return r;
        if (!isempty(pool) && (r = store_get_pool(m->store, pool, NULL)) != 0)
                return manager_store_error(m, error, r, 0, pool, NULL);
        return manager_reply_list(m, msg, fill_vms,
                                  &(VmFilter){ .store = m->store, .pool = isempty(pool) ? NULL : pool,
                                               .priority = priority },
                                  error);
}
