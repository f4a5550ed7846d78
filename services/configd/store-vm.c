/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* VM records: register, change, remove and query, each change with its audit entry in the same transaction. */
#include <inttypes.h>

#include "log.h"
#include "store-internal.h"

#define VM_COLUMNS                                                                                                     \
        "vm_id, ifnull(uuid, ''), name, pool_id, priority, memory_quota, iommu_policy, iommu_domain, iommu_group, "    \
        "created_usec, updated_usec"

static void vm_from_row(sqlite3_stmt *st, VmRecord *vm)
{
        char text[32];

        *vm = (VmRecord){ .vm_id = (uint32_t)sqlite3_column_int64(st, 0) };
        store_column_text(st, 1, vm->uuid, sizeof(vm->uuid));
        store_column_text(st, 2, vm->name, sizeof(vm->name));
        store_column_text(st, 3, vm->pool, sizeof(vm->pool));
        store_column_text(st, 4, text, sizeof(text));
        vm->priority = priority_from_string(text);
        vm->memory_quota = (uint64_t)sqlite3_column_int64(st, 5);
        store_column_text(st, 6, text, sizeof(text));
        vm->iommu_policy = iommu_policy_from_string(text);
        store_column_text(st, 7, vm->iommu_domain, sizeof(vm->iommu_domain));
        vm->iommu_group = (int32_t)sqlite3_column_int64(st, 8);
        vm->created_usec = (uint64_t)sqlite3_column_int64(st, 9);
        vm->updated_usec = (uint64_t)sqlite3_column_int64(st, 10);
}

static int vm_query_one(Store *s, const char *where, const char *key_text, int64_t key_int, VmRecord *ret)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        char sql[256];
        int r;

        snprintf(sql, sizeof(sql), "SELECT " VM_COLUMNS " FROM vms WHERE %s", where);
        r = store_prepare(s, sql, &st);
        if (r < 0)
                return r;
        r = key_text ? store_bind_text(st, 1, key_text) : store_bind_int64(st, 1, key_int);
        if (r < 0)
                return r;
        r = store_step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return STORE_E_NO_SUCH_VM;
        if (ret)
                vm_from_row(st, ret);
        return 0;
}

int store_get_vm(Store *s, uint32_t vm_id, VmRecord *ret)
{
        return vm_query_one(s, "vm_id = ?", NULL, vm_id, ret);
}

int store_get_vm_by_uuid(Store *s, const char *uuid, VmRecord *ret)
{
        return vm_query_one(s, "uuid = ?", uuid, 0, ret);
}

int store_count_vms(Store *s, uint32_t *ret)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(s, "SELECT count(*) FROM vms", &st);
        if (r < 0)
                return r;
        r = store_step(s, st);
        if (r < 0)
                return r;
        *ret = (uint32_t)sqlite3_column_int64(st, 0);
        return 0;
}

int store_list_vms(Store *s, const char *pool, Priority priority, StoreVmCallback cb, void *userdata)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(s,
                          "SELECT " VM_COLUMNS " FROM vms WHERE (?1 IS NULL OR pool_id = ?1) "
                          "AND (?2 IS NULL OR priority = ?2) ORDER BY vm_id",
                          &st);
        if (r < 0)
                return r;
        if (pool && (r = store_bind_text(st, 1, pool)) < 0)
                return r;
        if (priority != _PRIORITY_INVALID && (r = store_bind_text(st, 2, priority_to_string(priority))) < 0)
                return r;
        for (;;) {
                VmRecord vm;

                r = store_step(s, st);
                if (r <= 0)
                        return r;
                vm_from_row(st, &vm);
                r = cb(&vm, userdata);
                if (r < 0)
                        return r;
        }
}

/* Capacity and existence of a pool, read inside the caller's transaction. */
static int pool_room(Store *s, const char *pool, uint32_t *ret_capacity, uint32_t *ret_count)
{
        PoolRecord p;
        int r;

        r = store_get_pool(s, pool, &p);
        if (r != 0)
                return r;
        *ret_capacity = p.capacity;
        *ret_count = p.vm_count;
        return 0;
}

static int pool_default_quota(Store *s, const char *pool, uint64_t *ret)
{
        PoolRecord p;
        int r;

        r = store_get_pool(s, pool, &p);
        if (r != 0)
                return r;
        *ret = p.default_memory_quota;
        return 0;
}

static int insert_vm(Store *s, const VmRecord *vm, uint64_t quota, uint64_t now)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(s,
                          "INSERT INTO vms (vm_id, uuid, name, pool_id, priority, memory_quota, iommu_policy, "
                          "created_usec, updated_usec) VALUES (?, nullif(?, ''), ?, ?, ?, ?, ?, ?, ?)",
                          &st);
        if (r < 0)
                return r;
        if ((r = store_bind_int64(st, 1, vm->vm_id)) < 0 || (r = store_bind_text(st, 2, vm->uuid)) < 0 ||
            (r = store_bind_text(st, 3, vm->name)) < 0 || (r = store_bind_text(st, 4, vm->pool)) < 0 ||
            (r = store_bind_text(st, 5, priority_to_string(vm->priority))) < 0 ||
            (r = store_bind_int64(st, 6, (int64_t)quota)) < 0 ||
            (r = store_bind_text(st, 7, iommu_policy_to_string(vm->iommu_policy))) < 0 ||
            (r = store_bind_int64(st, 8, (int64_t)now)) < 0 || (r = store_bind_int64(st, 9, (int64_t)now)) < 0)
                return r;
        r = store_step(s, st);
        return r < 0 ? r : 0;
}

static int do_register(Store *s, const AuditActor *who, const VmRecord *vm, VmRecord *ret)
{
        uint32_t capacity, count;
        uint64_t quota = vm->memory_quota;
        char summary[AUDIT_VALUE_MAX + 1];
        int r;

        r = store_get_vm(s, vm->vm_id, NULL);
        if (r == 0)
                return STORE_E_VM_EXISTS;
        if (r != STORE_E_NO_SUCH_VM)
                return r;
        if (!isempty(vm->uuid)) {
                r = store_get_vm_by_uuid(s, vm->uuid, NULL);
                if (r == 0)
                        return STORE_E_UUID_IN_USE;
                if (r != STORE_E_NO_SUCH_VM)
                        return r;
        }
        r = pool_room(s, vm->pool, &capacity, &count);
        if (r != 0)
                return r;
        if (count >= capacity)
                return STORE_E_POOL_FULL;
        if (quota == STORE_QUOTA_POOL_DEFAULT) {
                r = pool_default_quota(s, vm->pool, &quota);
                if (r != 0)
                        return r;
        }
        r = insert_vm(s, vm, quota, store_now_usec());
        if (r < 0)
                return r;
        snprintf(summary, sizeof(summary), "pool=%s priority=%s memory_quota=%" PRIu64 " uuid=%s name=%s", vm->pool,
                 priority_to_string(vm->priority), quota, vm->uuid, vm->name);
        r = store_audit_append(s, who, "register-vm", vm->vm_id, vm->pool, "", summary);
        if (r < 0)
                return r;
        return store_get_vm(s, vm->vm_id, ret);
}

int store_register_vm(Store *s, const AuditActor *who, const VmRecord *vm, VmRecord *ret)
{
        int r = store_begin(s);

        if (r < 0)
                return r;
        return store_end(s, do_register(s, who, vm, ret));
}

static int do_unregister(Store *s, const AuditActor *who, uint32_t vm_id, VmRecord *ret_last)
{
        char summary[AUDIT_VALUE_MAX + 1];
        char sql[64];
        VmRecord vm;
        int r;

        r = store_get_vm(s, vm_id, &vm);
        if (r != 0)
                return r;
        snprintf(sql, sizeof(sql), "DELETE FROM vms WHERE vm_id = %" PRIu32, vm_id);
        r = store_exec(s, sql);
        if (r < 0)
                return r;
        snprintf(summary, sizeof(summary), "pool=%s priority=%s memory_quota=%" PRIu64 " uuid=%s name=%s", vm.pool,
                 priority_to_string(vm.priority), vm.memory_quota, vm.uuid, vm.name);
        r = store_audit_append(s, who, "unregister-vm", vm_id, vm.pool, summary, "");
        if (r < 0)
                return r;
        if (ret_last)
                *ret_last = vm;
        return 0;
}

int store_unregister_vm(Store *s, const AuditActor *who, uint32_t vm_id, VmRecord *ret_last)
{
        int r = store_begin(s);

        if (r < 0)
                return r;
        return store_end(s, do_unregister(s, who, vm_id, ret_last));
}

/* The fields a setter may change; each is rendered as text for the audit log and for the
 * "did anything change" test. */
typedef enum VmField {
        VM_FIELD_PRIORITY,
        VM_FIELD_POOL,
        VM_FIELD_MEMORY_QUOTA,
        VM_FIELD_IOMMU_POLICY,
        VM_FIELD_IOMMU_RECORD,
} VmField;

static const char *const vm_field_action[] = {
        [VM_FIELD_PRIORITY] = "set-priority",
        [VM_FIELD_POOL] = "move-vm",
        [VM_FIELD_MEMORY_QUOTA] = "set-memory-quota",
        [VM_FIELD_IOMMU_POLICY] = "set-iommu-policy",
        [VM_FIELD_IOMMU_RECORD] = "set-iommu-record",
};

static void render_field(const VmRecord *vm, VmField f, char *buf, size_t n)
{
        switch (f) {
        case VM_FIELD_PRIORITY:
                snprintf(buf, n, "%s", priority_to_string(vm->priority));
                break;
        case VM_FIELD_POOL:
                snprintf(buf, n, "%s", vm->pool);
                break;
        case VM_FIELD_MEMORY_QUOTA:
                snprintf(buf, n, "%" PRIu64, vm->memory_quota);
                break;
        case VM_FIELD_IOMMU_POLICY:
                snprintf(buf, n, "%s", iommu_policy_to_string(vm->iommu_policy));
                break;
        case VM_FIELD_IOMMU_RECORD:
                snprintf(buf, n, "domain=%s group=%" PRId32, vm->iommu_domain, vm->iommu_group);
                break;
        }
}

static int update_field(Store *s, uint32_t vm_id, VmField f, const VmRecord *want)
{
        static const char *const sql[] = {
                [VM_FIELD_PRIORITY] = "UPDATE vms SET priority = ?1, updated_usec = ?3 WHERE vm_id = ?4",
                [VM_FIELD_POOL] = "UPDATE vms SET pool_id = ?1, updated_usec = ?3 WHERE vm_id = ?4",
                [VM_FIELD_MEMORY_QUOTA] = "UPDATE vms SET memory_quota = ?2, updated_usec = ?3 WHERE vm_id = ?4",
                [VM_FIELD_IOMMU_POLICY] = "UPDATE vms SET iommu_policy = ?1, updated_usec = ?3 WHERE vm_id = ?4",
                [VM_FIELD_IOMMU_RECORD] = "UPDATE vms SET iommu_domain = ?1, iommu_group = ?2, updated_usec = ?3 "
                                          "WHERE vm_id = ?4",
        };
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        const char *text = NULL;
        int64_t number = 0;
        int r;

        switch (f) {
        case VM_FIELD_PRIORITY:
                text = priority_to_string(want->priority);
                break;
        case VM_FIELD_POOL:
                text = want->pool;
                break;
        case VM_FIELD_MEMORY_QUOTA:
                number = (int64_t)want->memory_quota;
                break;
        case VM_FIELD_IOMMU_POLICY:
                text = iommu_policy_to_string(want->iommu_policy);
                break;
        case VM_FIELD_IOMMU_RECORD:
                text = want->iommu_domain;
                number = want->iommu_group;
                break;
        }
        r = store_prepare(s, sql[f], &st);
        if (r < 0)
                return r;
        if ((text && (r = store_bind_text(st, 1, text)) < 0) || (r = store_bind_int64(st, 2, number)) < 0 ||
            (r = store_bind_int64(st, 3, (int64_t)store_now_usec())) < 0 || (r = store_bind_int64(st, 4, vm_id)) < 0)
                return r;
        r = store_step(s, st);
        return r < 0 ? r : 0;
}

/* A move needs room in the target pool, checked in the same transaction as the move. */
static int check_move(Store *s, const VmRecord *want)
{
        uint32_t capacity, count;
        int r;

        r = pool_room(s, want->pool, &capacity, &count);
        if (r != 0)
                return r;
        return count >= capacity ? STORE_E_POOL_FULL : 0;
}

/* Sets field `f` of VM `vm_id` to its value in `want`, in one transaction with its audit entry. A change
 * that changes nothing writes nothing (no audit entry); *ret_old and *ret are then equal. */
static int change_vm(Store *s, const AuditActor *who, uint32_t vm_id, VmField f, const VmRecord *want,
                     VmRecord *ret_old, VmRecord *ret)
{
        char old_text[AUDIT_VALUE_MAX + 1], new_text[AUDIT_VALUE_MAX + 1];
        int r;

        r = store_begin(s);
        if (r < 0)
                return r;
        r = store_get_vm(s, vm_id, ret_old);
        if (r == 0) {
                render_field(ret_old, f, old_text, sizeof(old_text));
                render_field(want, f, new_text, sizeof(new_text));
                if (!streq(old_text, new_text)) {
                        if (f == VM_FIELD_POOL)
                                r = check_move(s, want);
                        if (r == 0)
                                r = update_field(s, vm_id, f, want);
                        if (r == 0)
                                r = store_audit_append(s, who, vm_field_action[f], vm_id, ret_old->pool, old_text,
                                                       new_text);
                }
        }
        if (r == 0)
                r = store_get_vm(s, vm_id, ret);
        return store_end(s, r);
}

int store_set_priority(Store *s, const AuditActor *who, uint32_t vm_id, Priority priority, VmRecord *ret_old,
                       VmRecord *ret)
{
        return change_vm(s, who, vm_id, VM_FIELD_PRIORITY, &(VmRecord){ .priority = priority }, ret_old, ret);
}

int store_move_vm(Store *s, const AuditActor *who, uint32_t vm_id, const char *pool, VmRecord *ret_old,
                  VmRecord *ret)
{
        VmRecord want = { 0 };

        snprintf(want.pool, sizeof(want.pool), "%s", pool);
        return change_vm(s, who, vm_id, VM_FIELD_POOL, &want, ret_old, ret);
}

int store_set_memory_quota(Store *s, const AuditActor *who, uint32_t vm_id, uint64_t bytes, VmRecord *ret_old,
                           VmRecord *ret)
{
        return change_vm(s, who, vm_id, VM_FIELD_MEMORY_QUOTA, &(VmRecord){ .memory_quota = bytes }, ret_old, ret);
}

int store_set_iommu_policy(Store *s, const AuditActor *who, uint32_t vm_id, IommuPolicy policy, VmRecord *ret_old,
                           VmRecord *ret)
{
        return change_vm(s, who, vm_id, VM_FIELD_IOMMU_POLICY, &(VmRecord){ .iommu_policy = policy }, ret_old, ret);
}

int store_set_iommu_record(Store *s, const AuditActor *who, uint32_t vm_id, const char *domain, int32_t group,
                           VmRecord *ret_old, VmRecord *ret)
{
        VmRecord want = { .iommu_group = group };

        snprintf(want.iommu_domain, sizeof(want.iommu_domain), "%s", domain);
        return change_vm(s, who, vm_id, VM_FIELD_IOMMU_RECORD, &want, ret_old, ret);
}
