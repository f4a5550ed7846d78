/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pool records and the audit log. */
#include <inttypes.h>

#include "log.h"
#include "store-internal.h"

#define POOL_SELECT                                                                                                    \
        "SELECT p.pool_id, p.capacity, p.mode, p.gpu_resource, p.default_memory_quota, p.description, "              \
        "p.created_usec, p.updated_usec, "                                                                             \
        "(SELECT count(*) FROM vms v WHERE v.pool_id = p.pool_id), "                                                   \
        "(SELECT count(*) FROM vms v WHERE v.pool_id = p.pool_id AND v.priority = 'high'), "                          \
        "(SELECT count(*) FROM vms v WHERE v.pool_id = p.pool_id AND v.priority = 'medium'), "                        \
        "(SELECT count(*) FROM vms v WHERE v.pool_id = p.pool_id AND v.priority = 'low') "                            \
        "FROM pools p"

static void pool_from_row(sqlite3_stmt *st, PoolRecord *p)
{
        char mode[16];

        *p = (PoolRecord){ .capacity = (uint32_t)sqlite3_column_int64(st, 1) };
        store_column_text(st, 0, p->pool, sizeof(p->pool));
        store_column_text(st, 2, mode, sizeof(mode));
        p->mode = pool_mode_from_string(mode);
        store_column_text(st, 3, p->gpu_resource, sizeof(p->gpu_resource));
        p->default_memory_quota = (uint64_t)sqlite3_column_int64(st, 4);
        store_column_text(st, 5, p->description, sizeof(p->description));
        p->created_usec = (uint64_t)sqlite3_column_int64(st, 6);
        p->updated_usec = (uint64_t)sqlite3_column_int64(st, 7);
        p->vm_count = (uint32_t)sqlite3_column_int64(st, 8);
        for (int i = 0; i < _PRIORITY_MAX; i++)
                p->vm_count_by_priority[i] = (uint32_t)sqlite3_column_int64(st, 9 + i);
}

int store_get_pool(Store *s, const char *pool, PoolRecord *ret)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(s, POOL_SELECT " WHERE p.pool_id = ?", &st);
        if (r < 0)
                return r;
        r = store_bind_text(st, 1, pool);
        if (r < 0)
                return r;
        r = store_step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return STORE_E_NO_SUCH_POOL;
        if (ret)
                pool_from_row(st, ret);
        return 0;
}

int store_list_pools(Store *s, StorePoolCallback cb, void *userdata)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(s, POOL_SELECT " ORDER BY p.pool_id", &st);
        if (r < 0)
                return r;
        for (;;) {
                PoolRecord p;

                r = store_step(s, st);
                if (r <= 0)
                        return r;
                pool_from_row(st, &p);
                r = cb(&p, userdata);
                if (r < 0)
                        return r;
        }
}

static void pool_summary(const PoolRecord *p, char *buf, size_t n)
{
        snprintf(buf, n, "capacity=%" PRIu32 " mode=%s gpu_resource=%s default_memory_quota=%" PRIu64
                 " description=%s", p->capacity, pool_mode_to_string(p->mode), p->gpu_resource,
                 p->default_memory_quota, p->description);
}

static int do_create_pool(Store *s, const AuditActor *who, const PoolRecord *p, PoolRecord *ret)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        char summary[AUDIT_VALUE_MAX + 1];
        uint64_t now = store_now_usec();
        int r;

        r = store_get_pool(s, p->pool, NULL);
        if (r == 0)
                return STORE_E_POOL_EXISTS;
        if (r != STORE_E_NO_SUCH_POOL)
                return r;
        r = store_prepare(s,
                          "INSERT INTO pools (pool_id, capacity, mode, gpu_resource, default_memory_quota, "
                          "description, created_usec, updated_usec) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                          &st);
        if (r < 0)
                return r;
        if ((r = store_bind_text(st, 1, p->pool)) < 0 || (r = store_bind_int64(st, 2, p->capacity)) < 0 ||
            (r = store_bind_text(st, 3, pool_mode_to_string(p->mode))) < 0 ||
            (r = store_bind_text(st, 4, p->gpu_resource)) < 0 ||
            (r = store_bind_int64(st, 5, (int64_t)p->default_memory_quota)) < 0 ||
            (r = store_bind_text(st, 6, p->description)) < 0 || (r = store_bind_int64(st, 7, (int64_t)now)) < 0 ||
            (r = store_bind_int64(st, 8, (int64_t)now)) < 0)
                return r;
        r = store_step(s, st);
        if (r < 0)
                return r;
        pool_summary(p, summary, sizeof(summary));
        r = store_audit_append(s, who, "create-pool", 0, p->pool, "", summary);
        if (r < 0)
                return r;
        return store_get_pool(s, p->pool, ret);
}

int store_create_pool(Store *s, const AuditActor *who, const PoolRecord *pool, PoolRecord *ret)
{
        int r = store_begin(s);

        if (r < 0)
                return r;
        return store_end(s, do_create_pool(s, who, pool, ret));
}

static int write_pool(Store *s, const PoolRecord *p)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(s,
                          "UPDATE pools SET capacity = ?, mode = ?, gpu_resource = ?, default_memory_quota = ?, "
                          "description = ?, updated_usec = ? WHERE pool_id = ?",
                          &st);
        if (r < 0)
                return r;
        if ((r = store_bind_int64(st, 1, p->capacity)) < 0 ||
            (r = store_bind_text(st, 2, pool_mode_to_string(p->mode))) < 0 ||
            (r = store_bind_text(st, 3, p->gpu_resource)) < 0 ||
            (r = store_bind_int64(st, 4, (int64_t)p->default_memory_quota)) < 0 ||
            (r = store_bind_text(st, 5, p->description)) < 0 ||
            (r = store_bind_int64(st, 6, (int64_t)store_now_usec())) < 0 || (r = store_bind_text(st, 7, p->pool)) < 0)
                return r;
        r = store_step(s, st);
        return r < 0 ? r : 0;
}

static int do_configure_pool(Store *s, const AuditActor *who, const char *pool, const PoolSettings *set,
                             PoolRecord *ret)
{
        char old_summary[AUDIT_VALUE_MAX + 1], new_summary[AUDIT_VALUE_MAX + 1];
        PoolRecord old, p;
        int r;

        r = store_get_pool(s, pool, &old);
        if (r != 0)
                return r;
        p = old;
        if (set->has_capacity)
                p.capacity = set->capacity;
        if (set->has_mode)
                p.mode = set->mode;
        if (set->has_gpu_resource)
                snprintf(p.gpu_resource, sizeof(p.gpu_resource), "%s", set->gpu_resource);
        if (set->has_default_memory_quota)
                p.default_memory_quota = set->default_memory_quota;
        if (set->has_description)
                snprintf(p.description, sizeof(p.description), "%s", set->description);
        if (p.capacity < old.vm_count)
                return STORE_E_CAPACITY_BELOW_USE;

        pool_summary(&old, old_summary, sizeof(old_summary));
        pool_summary(&p, new_summary, sizeof(new_summary));
        if (!streq(old_summary, new_summary)) {
                r = write_pool(s, &p);
                if (r < 0)
                        return r;
                r = store_audit_append(s, who, "configure-pool", 0, pool, old_summary, new_summary);
                if (r < 0)
                        return r;
        }
        return store_get_pool(s, pool, ret);
}

int store_configure_pool(Store *s, const AuditActor *who, const char *pool, const PoolSettings *settings,
                         PoolRecord *ret)
{
        int r = store_begin(s);

        if (r < 0)
                return r;
        return store_end(s, do_configure_pool(s, who, pool, settings, ret));
}

static int do_delete_pool(Store *s, const AuditActor *who, const char *pool, PoolRecord *ret_last)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        char summary[AUDIT_VALUE_MAX + 1];
        PoolRecord p;
        int r;

        r = store_get_pool(s, pool, &p);
        if (r != 0)
                return r;
        if (p.vm_count > 0)
                return STORE_E_POOL_NOT_EMPTY;
        r = store_prepare(s, "DELETE FROM pools WHERE pool_id = ?", &st);
        if (r < 0)
                return r;
        if ((r = store_bind_text(st, 1, pool)) < 0 || (r = store_step(s, st)) < 0)
                return r;
        pool_summary(&p, summary, sizeof(summary));
        r = store_audit_append(s, who, "delete-pool", 0, pool, summary, "");
        if (r < 0)
                return r;
        if (ret_last)
                *ret_last = p;
        return 0;
}

int store_delete_pool(Store *s, const AuditActor *who, const char *pool, PoolRecord *ret_last)
{
        int r = store_begin(s);

        if (r < 0)
                return r;
        return store_end(s, do_delete_pool(s, who, pool, ret_last));
}

int store_read_audit(Store *s, uint64_t after_seq, uint32_t limit, uint32_t vm_id, StoreAuditCallback cb,
                     void *userdata)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(s,
                          "SELECT seq, time_usec, uid, pid, action, vm_id, pool_id, old_value, new_value FROM audit "
                          "WHERE seq > ?1 AND (?2 = 0 OR vm_id = ?2) ORDER BY seq LIMIT ?3",
                          &st);
        if (r < 0)
                return r;
        if ((r = store_bind_int64(st, 1, (int64_t)(after_seq > INT64_MAX ? INT64_MAX : after_seq))) < 0 ||
            (r = store_bind_int64(st, 2, vm_id)) < 0 || (r = store_bind_int64(st, 3, limit)) < 0)
                return r;
        for (;;) {
                AuditRecord a = { 0 };

                r = store_step(s, st);
                if (r <= 0)
                        return r;
                a.seq = (uint64_t)sqlite3_column_int64(st, 0);
                a.time_usec = (uint64_t)sqlite3_column_int64(st, 1);
                a.uid = (uint32_t)sqlite3_column_int64(st, 2);
                a.pid = (uint32_t)sqlite3_column_int64(st, 3);
                store_column_text(st, 4, a.action, sizeof(a.action));
                a.vm_id = (uint32_t)sqlite3_column_int64(st, 5);
                store_column_text(st, 6, a.pool, sizeof(a.pool));
                store_column_text(st, 7, a.old_value, sizeof(a.old_value));
                store_column_text(st, 8, a.new_value, sizeof(a.new_value));
                r = cb(&a, userdata);
                if (r < 0)
                        return r;
        }
}
