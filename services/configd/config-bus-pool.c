/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.vgpu.Config1 methods on pools, and the audit log reader. */
#include <inttypes.h>

#include "config-bus.h"
#include "log.h"

#define AUDIT_LIMIT_DEFAULT 1000u
#define AUDIT_LIMIT_MAX 10000u

static int check_pool_id(const char *pool, sd_bus_error *error)
{
        if (pool_id_is_valid(pool))
                return 0;
        return sd_bus_error_setf(error, VGPU_ERROR_INVALID_ARGUMENT,
                                 "Invalid pool id '%s': expected a letter followed by up to 15 letters, digits or "
                                 "'_'.", pool);
}

static int check_capacity(uint32_t capacity, sd_bus_error *error)
{
        if (capacity >= 1 && capacity <= POOL_CAPACITY_MAX)
                return 0;
        return sd_bus_error_setf(error, VGPU_ERROR_INVALID_ARGUMENT,
                                 "Invalid capacity %" PRIu32 ": expected 1 to %u VMs.", capacity, POOL_CAPACITY_MAX);
}

/* One {sv} entry of CreatePool's options or ConfigurePool's settings, validated into `set`. */
static int read_pool_setting(sd_bus_message *msg, const char *key, const char *contents, PoolSettings *set,
                             bool allow_capacity, sd_bus_error *error)
{
        const char *s;
        int r;

        if (allow_capacity && streq(key, "capacity") && streq(contents, "u")) {
                r = sd_bus_message_read(msg, "v", "u", &set->capacity);
                if (r < 0)
                        return r;
                set->has_capacity = true;
                return check_capacity(set->capacity, error);
        }
        if (streq(key, "default_memory_quota") && streq(contents, "t")) {
                r = sd_bus_message_read(msg, "v", "t", &set->default_memory_quota);
                if (r < 0)
                        return r;
                set->has_default_memory_quota = true;
                if (set->default_memory_quota > INT64_MAX)
                        return sd_bus_error_set(error, VGPU_ERROR_INVALID_ARGUMENT,
                                                "Invalid default memory quota: too large.");
                return 0;
        }
        if (!streq(contents, "s") || !(streq(key, "mode") || streq(key, "gpu_resource") || streq(key, "description")))
                return sd_bus_error_setf(error, VGPU_ERROR_INVALID_ARGUMENT,
                                         "Unknown setting '%s' of type '%s' (known: %smode s, gpu_resource s, "
                                         "default_memory_quota t, description s).", key, contents,
                                         allow_capacity ? "capacity u, " : "");
        r = sd_bus_message_read(msg, "v", "s", &s);
        if (r < 0)
                return r;
        if (streq(key, "mode")) {
                set->mode = pool_mode_from_string(s);
                set->has_mode = true;
                if (set->mode < 0)
                        return sd_bus_error_setf(error, VGPU_ERROR_INVALID_ARGUMENT,
                                                 "Invalid pool mode '%s': expected isolated or shared.", s);
        } else if (streq(key, "gpu_resource")) {
                set->gpu_resource = s;
                set->has_gpu_resource = true;
                if (!gpu_resource_is_valid(s))
                        return sd_bus_error_setf(error, VGPU_ERROR_INVALID_ARGUMENT,
                                                 "Invalid GPU resource '%s': expected gpu:<PCI address or GPU uuid>, "
                                                 "mig:<MIG uuid> or sm-share:<gpu>:<percent>.", s);
        } else {
                set->description = s;
                set->has_description = true;
                if (!text_is_valid(s, POOL_DESCRIPTION_MAX))
                        return sd_bus_error_setf(error, VGPU_ERROR_INVALID_ARGUMENT,
                                                 "Invalid description: at most %u bytes of printable UTF-8.",
                                                 POOL_DESCRIPTION_MAX);
        }
        return 0;
}

typedef struct PoolSettingsReader {
        PoolSettings *set;
        bool allow_capacity;
} PoolSettingsReader;

static int pool_option(sd_bus_message *msg, const char *key, const char *type, void *userdata, sd_bus_error *error)
{
        PoolSettingsReader *reader = userdata;

        return read_pool_setting(msg, key, type, reader->set, reader->allow_capacity, error);
}

/* Strings in `set` point into `msg`, which outlives every use. */
static int read_pool_settings(sd_bus_message *msg, PoolSettings *set, bool allow_capacity, sd_bus_error *error)
{
        return bus_read_options(msg, pool_option, &(PoolSettingsReader){ .set = set, .allow_capacity = allow_capacity },
                                error);
}

static int append_pool(sd_bus_message *reply, const void *record)
{
        return bus_append_pool_record(reply, record);
}

static int reply_pool(sd_bus_message *msg, const PoolRecord *p)
{
        return manager_reply_record(msg, append_pool, p);
}

static int append_pool_cb(const PoolRecord *p, void *userdata)
{
        return bus_append_pool_record(userdata, p);
}

static int fill_pools(sd_bus_message *reply, void *userdata)
{
        return store_list_pools(userdata, append_pool_cb, reply);
}

int method_list_pools(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;

        return manager_reply_list(m, msg, fill_pools, m->store, error);
}

int method_get_pool(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        const char *pool;
        PoolRecord p;
        int r;

        r = sd_bus_message_read(msg, "s", &pool);
        if (r < 0)
                return r;
        if ((r = check_pool_id(pool, error)) < 0)
                return r;
        r = store_get_pool(m->store, pool, &p);
        if (r != 0)
                return manager_store_error(m, error, r, 0, pool, NULL);
        return reply_pool(msg, &p);
}

int method_create_pool(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        PoolSettings set = { .mode = POOL_MODE_ISOLATED, .default_memory_quota = UINT64_C(8) << 30 };
        PoolRecord p = { 0 };
        Manager *m = userdata;
        const char *pool;
        AuditActor who;
        char quota[32];
        int r;

        r = sd_bus_message_read(msg, "su", &pool, &p.capacity);
        if (r < 0)
                return r;
        if ((r = check_pool_id(pool, error)) < 0 || (r = check_capacity(p.capacity, error)) < 0)
                return r;
        r = read_pool_settings(msg, &set, false, error);
        if (r < 0)
                return r;
        r = manager_authorize(m, msg, &who, error);
        if (r < 0)
                return r;

        snprintf(p.pool, sizeof(p.pool), "%s", pool);
        p.mode = set.mode;
        p.default_memory_quota = set.default_memory_quota;
        snprintf(p.gpu_resource, sizeof(p.gpu_resource), "%s", strempty(set.gpu_resource));
        snprintf(p.description, sizeof(p.description), "%s", strempty(set.description));

        r = store_create_pool(m->store, &who, &p, &p);
        if (r != 0)
                return manager_store_error(m, error, r, 0, pool, NULL);
        log_vm(LOG_INFO, 0, p.pool, NULL, "Created pool %s: capacity %" PRIu32 ", mode %s, default quota %s (uid %u).",
               p.pool, p.capacity, pool_mode_to_string(p.mode),
               size_format(p.default_memory_quota, quota, sizeof(quota)), who.uid);
        manager_emit_pool_changed(m, &p, "created");
        return reply_pool(msg, &p);
}

int method_configure_pool(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        PoolSettings set = { 0 };
        Manager *m = userdata;
        PoolRecord before, p;
        const char *pool;
        AuditActor who;
        int r;

        r = sd_bus_message_read(msg, "s", &pool);
        if (r < 0)
                return r;
        if ((r = check_pool_id(pool, error)) < 0)
                return r;
        r = read_pool_settings(msg, &set, true, error);
        if (r < 0)
                return r;
        r = manager_authorize(m, msg, &who, error);
        if (r < 0)
                return r;

        r = store_get_pool(m->store, pool, &before);
        if (r == 0)
                r = store_configure_pool(m->store, &who, pool, &set, &p);
        if (r != 0)
                return manager_store_error(m, error, r, 0, pool, NULL);
        if (p.updated_usec != before.updated_usec) {
                log_vm(LOG_INFO, 0, p.pool, NULL, "Configured pool %s: capacity %" PRIu32 ", mode %s, GPU '%s' (uid %u).",
                       p.pool, p.capacity, pool_mode_to_string(p.mode), p.gpu_resource, who.uid);
                manager_emit_pool_changed(m, &p, "configured");
        }
        return reply_pool(msg, &p);
}

int method_delete_pool(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        const char *pool;
        AuditActor who;
        PoolRecord last;
        int r;

        r = sd_bus_message_read(msg, "s", &pool);
        if (r < 0)
                return r;
        if ((r = check_pool_id(pool, error)) < 0 || (r = manager_authorize(m, msg, &who, error)) < 0)
                return r;
        r = store_delete_pool(m->store, &who, pool, &last);
        if (r != 0)
                return manager_store_error(m, error, r, 0, pool, NULL);
        log_vm(LOG_INFO, 0, pool, NULL, "Deleted pool %s (uid %u).", pool, who.uid);
        manager_emit_pool_changed(m, &last, "deleted");
        return sd_bus_reply_method_return(msg, NULL);
}

static int append_audit_cb(const AuditRecord *a, void *userdata)
{
        sd_bus_message *reply = userdata;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        if ((r = bus_dict_append_u64(reply, "seq", a->seq)) < 0 ||
            (r = bus_dict_append_u64(reply, "time_usec", a->time_usec)) < 0 ||
            (r = bus_dict_append_u32(reply, "uid", a->uid)) < 0 || (r = bus_dict_append_u32(reply, "pid", a->pid)) < 0 ||
            (r = bus_dict_append_string(reply, "action", a->action)) < 0 ||
            (r = bus_dict_append_u32(reply, "vm_id", a->vm_id)) < 0 ||
            (r = bus_dict_append_string(reply, "pool", a->pool)) < 0 ||
            (r = bus_dict_append_string(reply, "old_value", a->old_value)) < 0 ||
            (r = bus_dict_append_string(reply, "new_value", a->new_value)) < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

typedef struct AuditQuery {
        Store *store;
        uint64_t after;
        uint32_t limit, vm_id;
} AuditQuery;

static int fill_audit(sd_bus_message *reply, void *userdata)
{
        const AuditQuery *q = userdata;

        return store_read_audit(q->store, q->after, q->limit, q->vm_id, append_audit_cb, reply);
}

int method_read_audit(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        uint64_t after;
        uint32_t limit, vm_id;
        int r;

        r = sd_bus_message_read(msg, "tuu", &after, &limit, &vm_id);
        if (r < 0)
                return r;
        if (limit == 0)
                limit = AUDIT_LIMIT_DEFAULT;
        if (limit > AUDIT_LIMIT_MAX)
                return sd_bus_error_setf(error, VGPU_ERROR_INVALID_ARGUMENT,
                                         "Invalid limit %" PRIu32 ": at most %u entries per call; page with after_seq.",
                                         limit, AUDIT_LIMIT_MAX);
        return manager_reply_list(m, msg, fill_audit,
                                  &(AuditQuery){ .store = m->store, .after = after, .limit = limit, .vm_id = vm_id },
                                  error);
}
