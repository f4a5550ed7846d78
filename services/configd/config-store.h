/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The configuration store: VMs, pools and the audit log in one SQLite file. Every change is one
 * BEGIN IMMEDIATE transaction that checks its rules, writes, and appends its audit entry, or changes
 * nothing. */
#pragma once

#include <sqlite3.h>
#include <stdint.h>

#include "names.h"
#include "vgpu-util.h"

/* Outcomes a caller must handle (positive); system failures are negative errno values:
 * -EROFS (database not writable), -ENOSPC (disk or page limit full), -EIO (I/O error),
 * -EBADMSG (database corrupt or not a vgpu database), -EBUSY (locked by another writer for too long),
 * -EPROTO (schema newer than this program), -ENOMEM. */
typedef enum StoreError {
        STORE_E_NO_SUCH_VM = 1,
        STORE_E_NO_SUCH_POOL,
        STORE_E_VM_EXISTS,
        STORE_E_UUID_IN_USE,
        STORE_E_POOL_EXISTS,
        STORE_E_POOL_FULL,
        STORE_E_POOL_NOT_EMPTY,
        STORE_E_CAPACITY_BELOW_USE,
} StoreError;

/* "Use the pool's default" for a VM's memory quota. */
#define STORE_QUOTA_POOL_DEFAULT UINT64_MAX
#define IOMMU_DOMAIN_MAX 64
#define AUDIT_VALUE_MAX 512

typedef struct VmRecord {
        uint32_t vm_id;
        char uuid[UUID_STRING_LEN + 1]; /* "" when none */
        char name[VM_NAME_MAX + 1];
        char pool[POOL_ID_MAX + 1];
        Priority priority;
        uint64_t memory_quota; /* bytes */
        IommuPolicy iommu_policy;
        char iommu_domain[IOMMU_DOMAIN_MAX + 1]; /* "" until the IOMMU service records one */
        int32_t iommu_group;                     /* -1 until recorded */
        uint64_t created_usec;
        uint64_t updated_usec;
} VmRecord;

typedef struct PoolRecord {
        char pool[POOL_ID_MAX + 1];
        uint32_t capacity;
        uint32_t vm_count;
        uint32_t vm_count_by_priority[_PRIORITY_MAX];
        PoolMode mode;
        char gpu_resource[GPU_RESOURCE_MAX + 1];
        uint64_t default_memory_quota;
        char description[POOL_DESCRIPTION_MAX + 1];
        uint64_t created_usec;
        uint64_t updated_usec;
} PoolRecord;

/* A change to a pool: only the fields whose has_ flag is set are applied. */
typedef struct PoolSettings {
        bool has_capacity, has_mode, has_gpu_resource, has_default_memory_quota, has_description;
        uint32_t capacity;
        PoolMode mode;
        const char *gpu_resource;
        uint64_t default_memory_quota;
        const char *description;
} PoolSettings;

/* Who asked for a change, as the bus reported it. Recorded with every audit entry. */
typedef struct AuditActor {
        uint32_t uid;
        uint32_t pid;
} AuditActor;

typedef struct AuditRecord {
        uint64_t seq;
        uint64_t time_usec;
        uint32_t uid;
        uint32_t pid;
        char action[32];
        uint32_t vm_id;
        char pool[POOL_ID_MAX + 1];
        char old_value[AUDIT_VALUE_MAX + 1];
        char new_value[AUDIT_VALUE_MAX + 1];
} AuditRecord;

typedef struct Store Store;

/* Opens (creating if missing) and migrates the database at `path`. Refuses a file that is not a vgpu
 * database, is corrupt, is read-only, or has a newer schema; never rewrites such a file. */
int store_open(const char *path, Store **ret);
Store *store_free(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_free)

unsigned store_schema_version(const Store *s);
unsigned store_schema_version_latest(void);
const char *store_path(const Store *s);
/* SQLite's last message, for logs. */
const char *store_error_message(const Store *s);
/* The connection itself, for tests that need to provoke SQLite failures. */
sqlite3 *store_sqlite(Store *s);

/* VMs. `vm->memory_quota` may be STORE_QUOTA_POOL_DEFAULT. */
int store_register_vm(Store *s, const AuditActor *who, const VmRecord *vm, VmRecord *ret);
int store_unregister_vm(Store *s, const AuditActor *who, uint32_t vm_id, VmRecord *ret_last);
int store_set_priority(Store *s, const AuditActor *who, uint32_t vm_id, Priority priority, VmRecord *ret_old,
                       VmRecord *ret);
int store_move_vm(Store *s, const AuditActor *who, uint32_t vm_id, const char *pool, VmRecord *ret_old,
                  VmRecord *ret);
int store_set_memory_quota(Store *s, const AuditActor *who, uint32_t vm_id, uint64_t bytes, VmRecord *ret_old,
                           VmRecord *ret);
int store_set_iommu_policy(Store *s, const AuditActor *who, uint32_t vm_id, IommuPolicy policy, VmRecord *ret_old,
                           VmRecord *ret);
int store_set_iommu_record(Store *s, const AuditActor *who, uint32_t vm_id, const char *domain, int32_t group,
                           VmRecord *ret_old, VmRecord *ret);
int store_get_vm(Store *s, uint32_t vm_id, VmRecord *ret);
int store_get_vm_by_uuid(Store *s, const char *uuid, VmRecord *ret);
int store_count_vms(Store *s, uint32_t *ret);

/* Calls `cb` for each VM in vm_id order; NULL pool / _PRIORITY_INVALID match any. A negative return
 * from `cb` stops the walk and is returned. */
typedef int (*StoreVmCallback)(const VmRecord *vm, void *userdata);
int store_list_vms(Store *s, const char *pool, Priority priority, StoreVmCallback cb, void *userdata);

/* Pools. */
int store_create_pool(Store *s, const AuditActor *who, const PoolRecord *pool, PoolRecord *ret);
int store_configure_pool(Store *s, const AuditActor *who, const char *pool, const PoolSettings *settings,
                         PoolRecord *ret);
int store_delete_pool(Store *s, const AuditActor *who, const char *pool, PoolRecord *ret_last);
int store_get_pool(Store *s, const char *pool, PoolRecord *ret);
typedef int (*StorePoolCallback)(const PoolRecord *pool, void *userdata);
int store_list_pools(Store *s, StorePoolCallback cb, void *userdata);

/* The audit log, oldest first: entries with seq > after_seq, at most `limit`; vm_id 0 means every VM. */
typedef int (*StoreAuditCallback)(const AuditRecord *entry, void *userdata);
int store_read_audit(Store *s, uint64_t after_seq, uint32_t limit, uint32_t vm_id, StoreAuditCallback cb,
                     void *userdata);
