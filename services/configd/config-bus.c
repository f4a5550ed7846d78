/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The org.vgpu.Config1 vtable, properties, authorization, error naming and change signals. */
#include <inttypes.h>

#include "config-bus.h"
#include "log.h"

int manager_authorize(Manager *m, sd_bus_message *msg, AuditActor *who, sd_bus_error *error)
{
        BusCaller caller = { 0 };
        int r;

        r = bus_authorize_admin(msg, m->admin_group, "Changing the vgpu configuration", &caller, error);
        *who = (AuditActor){ .uid = (uint32_t)caller.uid, .pid = (uint32_t)caller.pid };
        return r;
}

static int storage_error(Manager *m, sd_bus_error *error, int r)
{
        const char *why;

        switch (r) {
        case -EROFS:
                why = "the database is read-only";
                break;
        case -ENOSPC:
                why = "the disk is full";
                break;
        case -EBADMSG:
                why = "the database file is damaged";
                break;
        case -EBUSY:
                why = "the database stayed locked by another writer";
                break;
        case -EINVAL:
                why = "the database refused a value that breaks its rules";
                break;
        default:
                why = strerror(-r);
        }
        log_error_errno(r, "Database %s: change refused: %s (%s).", store_path(m->store), why,
                        store_error_message(m->store));
        return sd_bus_error_setf(error, VGPU_ERROR_STORAGE_FAILURE,
                                 "The configuration database %s could not be written: %s. Nothing was changed.",
                                 store_path(m->store), why);
}

int manager_store_error(Manager *m, sd_bus_error *error, int r, uint32_t vm_id, const char *pool, const char *uuid)
{
        PoolRecord p;

        if (r < 0)
                return storage_error(m, error, r);

        switch ((StoreError)r) {
        case STORE_E_NO_SUCH_VM:
                if (uuid)
                        return sd_bus_error_setf(error, VGPU_ERROR_NO_SUCH_VM, "No VM is registered with uuid %s.",
                                                 uuid);
                return sd_bus_error_setf(error, VGPU_ERROR_NO_SUCH_VM, "VM %" PRIu32 " is not registered.", vm_id);
        case STORE_E_NO_SUCH_POOL:
                return sd_bus_error_setf(error, VGPU_ERROR_NO_SUCH_POOL,
                                         "Pool '%s' does not exist (list-pools shows the pools).", pool);
        case STORE_E_VM_EXISTS:
                return sd_bus_error_setf(error, VGPU_ERROR_VM_EXISTS, "VM %" PRIu32 " is already registered.", vm_id);
        case STORE_E_UUID_IN_USE:
                return sd_bus_error_setf(error, VGPU_ERROR_UUID_IN_USE,
                                         "uuid %s is already used by another VM.", uuid);
        case STORE_E_POOL_EXISTS:
                return sd_bus_error_setf(error, VGPU_ERROR_POOL_EXISTS, "Pool '%s' already exists.", pool);
        case STORE_E_POOL_FULL:
                if (store_get_pool(m->store, pool, &p) == 0)
                        return sd_bus_error_setf(error, VGPU_ERROR_POOL_FULL,
                                                 "Pool '%s' is full (%" PRIu32 " of %" PRIu32 " VMs); raise its "
                                                 "capacity with configure-pool or choose another pool.",
                                                 pool, p.vm_count, p.capacity);
                return sd_bus_error_setf(error, VGPU_ERROR_POOL_FULL, "Pool '%s' is full.", pool);
        case STORE_E_POOL_NOT_EMPTY:
                return sd_bus_error_setf(error, VGPU_ERROR_POOL_NOT_EMPTY,
                                         "Pool '%s' still has VMs; move or unregister them first.", pool);
        case STORE_E_CAPACITY_BELOW_USE:
                if (store_get_pool(m->store, pool, &p) == 0)
                        return sd_bus_error_setf(error, VGPU_ERROR_CAPACITY_BELOW_USE,
                                                 "Pool '%s' holds %" PRIu32 " VMs; its capacity cannot go below "
                                                 "that.", pool, p.vm_count);
                return sd_bus_error_setf(error, VGPU_ERROR_CAPACITY_BELOW_USE,
                                         "Pool '%s' holds more VMs than that capacity.", pool);
        }
        return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED, "Unexpected store result %d.", r);
}

int manager_reply_record(sd_bus_message *msg, int (*append)(sd_bus_message *reply, const void *record),
                         const void *record)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = append(reply, record);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

int manager_reply_list(Manager *m, sd_bus_message *msg, int (*fill)(sd_bus_message *reply, void *userdata),
                       void *userdata, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "a{sv}");
        if (r < 0)
                return r;
        r = fill(reply, userdata);
        if (r < 0)
                return manager_store_error(m, error, r, 0, NULL, NULL);
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

int bus_append_vm_record(sd_bus_message *msg, const VmRecord *vm)
{
        int r;

        r = sd_bus_message_open_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        if ((r = bus_dict_append_u32(msg, "vm_id", vm->vm_id)) < 0 ||
            (r = bus_dict_append_string(msg, "uuid", vm->uuid)) < 0 ||
            (r = bus_dict_append_string(msg, "name", vm->name)) < 0 ||
            (r = bus_dict_append_string(msg, "pool", vm->pool)) < 0 ||
            (r = bus_dict_append_string(msg, "priority", priority_to_string(vm->priority))) < 0 ||
            (r = bus_dict_append_u64(msg, "memory_quota", vm->memory_quota)) < 0 ||
            (r = bus_dict_append_string(msg, "iommu_policy", iommu_policy_to_string(vm->iommu_policy))) < 0 ||
            (r = bus_dict_append_string(msg, "iommu_domain", vm->iommu_domain)) < 0 ||
            (r = bus_dict_append_i32(msg, "iommu_group", vm->iommu_group)) < 0 ||
            (r = bus_dict_append_u64(msg, "created_usec", vm->created_usec)) < 0 ||
            (r = bus_dict_append_u64(msg, "updated_usec", vm->updated_usec)) < 0)
                return r;
        return sd_bus_message_close_container(msg);
}

int bus_append_pool_record(sd_bus_message *msg, const PoolRecord *p)
{
        int r;

        r = sd_bus_message_open_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        if ((r = bus_dict_append_string(msg, "pool", p->pool)) < 0 ||
            (r = bus_dict_append_u32(msg, "capacity", p->capacity)) < 0 ||
            (r = bus_dict_append_u32(msg, "vm_count", p->vm_count)) < 0 ||
            (r = bus_dict_append_u32(msg, "vm_count_high", p->vm_count_by_priority[PRIORITY_HIGH])) < 0 ||
            (r = bus_dict_append_u32(msg, "vm_count_medium", p->vm_count_by_priority[PRIORITY_MEDIUM])) < 0 ||
            (r = bus_dict_append_u32(msg, "vm_count_low", p->vm_count_by_priority[PRIORITY_LOW])) < 0 ||
            (r = bus_dict_append_string(msg, "mode", pool_mode_to_string(p->mode))) < 0 ||
            (r = bus_dict_append_string(msg, "gpu_resource", p->gpu_resource)) < 0 ||
            (r = bus_dict_append_u64(msg, "default_memory_quota", p->default_memory_quota)) < 0 ||
            (r = bus_dict_append_string(msg, "description", p->description)) < 0 ||
            (r = bus_dict_append_u64(msg, "created_usec", p->created_usec)) < 0 ||
            (r = bus_dict_append_u64(msg, "updated_usec", p->updated_usec)) < 0)
                return r;
        return sd_bus_message_close_container(msg);
}

/* Signals are best effort: the change is committed already, and a listener that misses one re-reads the
 * state (every record carries updated_usec). */
void manager_emit_vm_changed(Manager *m, const VmRecord *vm, const char *change, const char *old_value)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *sig = NULL;
        int r;

        r = sd_bus_message_new_signal(m->bus, &sig, VGPU_CONFIG_PATH, VGPU_CONFIG_INTERFACE, "VmChanged");
        if (r >= 0)
                r = sd_bus_message_append(sig, "uss", vm->vm_id, change, strempty(old_value));
        if (r >= 0)
                r = bus_append_vm_record(sig, vm);
        if (r >= 0)
                r = sd_bus_send(m->bus, sig, NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to emit VmChanged for VM %" PRIu32 ": %m", vm->vm_id);
}

void manager_emit_pool_changed(Manager *m, const PoolRecord *p, const char *change)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *sig = NULL;
        int r;

        r = sd_bus_message_new_signal(m->bus, &sig, VGPU_CONFIG_PATH, VGPU_CONFIG_INTERFACE, "PoolChanged");
        if (r >= 0)
                r = sd_bus_message_append(sig, "ss", p->pool, change);
        if (r >= 0)
                r = bus_append_pool_record(sig, p);
        if (r >= 0)
                r = sd_bus_send(m->bus, sig, NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to emit PoolChanged for pool %s: %m", p->pool);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        return sd_bus_message_append(reply, "s", VGPU_VERSION);
}

static int property_get_schema_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                       sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;

        return sd_bus_message_append(reply, "u", store_schema_version(m->store));
}

static int property_get_database_path(sd_bus *bus, const char *path, const char *interface, const char *property,
                                      sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;

        return sd_bus_message_append(reply, "s", store_path(m->store));
}

static int property_get_vm_count(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        uint32_t n = 0;
        int r;

        r = store_count_vms(m->store, &n);
        if (r < 0)
                return manager_store_error(m, error, r, 0, NULL, NULL);
        return sd_bus_message_append(reply, "u", n);
}

/* Every method is marked SD_BUS_VTABLE_UNPRIVILEGED: sd-bus's own check (CAP_SYS_ADMIN) knows nothing of
 * the vgpu-admin group, so the privileged methods call manager_authorize() themselves. */

const sd_bus_vtable config_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("SchemaVersion", "u", property_get_schema_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("DatabasePath", "s", property_get_database_path, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("VmCount", "u", property_get_vm_count, 0, 0),
        SD_BUS_METHOD_WITH_ARGS("RegisterVm", SD_BUS_ARGS("u", vm_id, "s", pool, "s", priority, "a{sv}", options),
                    SD_BUS_RESULT("a{sv}", vm), method_register_vm, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("UnregisterVm", SD_BUS_ARGS("u", vm_id), SD_BUS_NO_RESULT, method_unregister_vm, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetPriority", SD_BUS_ARGS("u", vm_id, "s", priority), SD_BUS_RESULT("s", old_priority),
                    method_set_priority, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("MoveVm", SD_BUS_ARGS("u", vm_id, "s", pool), SD_BUS_RESULT("s", old_pool), method_move_vm, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetMemoryQuota", SD_BUS_ARGS("u", vm_id, "t", bytes), SD_BUS_RESULT("t", old_bytes),
                    method_set_memory_quota, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetIommuPolicy", SD_BUS_ARGS("u", vm_id, "s", policy), SD_BUS_RESULT("s", old_policy),
                    method_set_iommu_policy, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetIommuRecord", SD_BUS_ARGS("u", vm_id, "s", domain, "i", group), SD_BUS_NO_RESULT,
                    method_set_iommu_record, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetVm", SD_BUS_ARGS("u", vm_id), SD_BUS_RESULT("a{sv}", vm), method_get_vm, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetVmByUuid", SD_BUS_ARGS("s", uuid), SD_BUS_RESULT("a{sv}", vm), method_get_vm_by_uuid, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListVms", SD_BUS_ARGS("s", pool, "s", priority), SD_BUS_RESULT("aa{sv}", vms),
                    method_list_vms, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListPools", SD_BUS_NO_ARGS, SD_BUS_RESULT("aa{sv}", pools), method_list_pools, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetPool", SD_BUS_ARGS("s", pool), SD_BUS_RESULT("a{sv}", record), method_get_pool, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CreatePool", SD_BUS_ARGS("s", pool, "u", capacity, "a{sv}", options),
                    SD_BUS_RESULT("a{sv}", record), method_create_pool, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ConfigurePool", SD_BUS_ARGS("s", pool, "a{sv}", settings), SD_BUS_RESULT("a{sv}", record),
                    method_configure_pool, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DeletePool", SD_BUS_ARGS("s", pool), SD_BUS_NO_RESULT, method_delete_pool, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ReadAudit", SD_BUS_ARGS("t", after_seq, "u", limit, "u", vm_id),
                    SD_BUS_RESULT("aa{sv}", entries), method_read_audit, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("VmChanged", SD_BUS_ARGS("u", vm_id, "s", change, "s", old_value, "a{sv}", vm), 0),
        SD_BUS_SIGNAL_WITH_ARGS("PoolChanged", SD_BUS_ARGS("s", pool, "s", change, "a{sv}", record), 0),
        SD_BUS_VTABLE_END,
};
