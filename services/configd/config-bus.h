/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-configd's D-Bus side: the service context, the org.vgpu.Config1 vtable and the helpers its
 * methods share (authorization, record encoding, error naming, change signals). */
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bus-util.h"
#include "config-store.h"

typedef struct Manager {
        sd_event *event;
        sd_bus *bus;
        Store *store;
        char *admin_group; /* group whose members may change the configuration; NULL: root only */
} Manager;

extern const sd_bus_vtable config_vtable[];

/* Checks that the caller may change the configuration; fills `who` for the audit log. Returns 0 when
 * allowed, or a negative value with `error` set (org.vgpu.Error.AccessDenied). */
int manager_authorize(Manager *m, sd_bus_message *msg, AuditActor *who, sd_bus_error *error);

/* Turns a store failure into a named D-Bus error with a sentence a person can act on. The arguments give
 * the context the sentence needs (vm_id 0, pool/uuid NULL when not relevant). Returns a negative value. */
int manager_store_error(Manager *m, sd_bus_error *error, int r, uint32_t vm_id, const char *pool, const char *uuid);

/* Replies with one record, appended by `append`. */
int manager_reply_record(sd_bus_message *msg, int (*append)(sd_bus_message *reply, const void *record),
                         const void *record);
/* Replies with an aa{sv} that `fill` appends records to; a store failure becomes a named error. */
int manager_reply_list(Manager *m, sd_bus_message *msg, int (*fill)(sd_bus_message *reply, void *userdata),
                       void *userdata, sd_bus_error *error);

int bus_append_vm_record(sd_bus_message *msg, const VmRecord *vm);
int bus_append_pool_record(sd_bus_message *msg, const PoolRecord *p);

void manager_emit_vm_changed(Manager *m, const VmRecord *vm, const char *change, const char *old_value);
void manager_emit_pool_changed(Manager *m, const PoolRecord *p, const char *change);

/* Method handlers, split by what they act on. */
int method_register_vm(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_unregister_vm(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_set_priority(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_move_vm(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_set_memory_quota(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_set_iommu_policy(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_set_iommu_record(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_get_vm(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_get_vm_by_uuid(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_list_vms(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_list_pools(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_get_pool(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_create_pool(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_configure_pool(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_delete_pool(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_read_audit(sd_bus_message *msg, void *userdata, sd_bus_error *error);
