/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-iommud's service context: what main.c, the D-Bus side and the config store mirror share. One
 * thread, one sd-event loop. */
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bus-util.h"
#include "fault-watch.h"
#include "gpus.h"
#include "iommu-error.h"
#include "xen-facts.h"

typedef struct VmEntry {
        uint32_t vm_id;
        char *pool;
        char *iommu_domain; /* as the config store holds it */
        int32_t iommu_group;
} VmEntry;

typedef struct PoolEntry {
        char *pool;
        char *gpu_resource;
} PoolEntry;

typedef struct Manager {
        sd_event *event;
        sd_bus *bus;
        Host host;
        XenFacts *xen;
        FaultWatch *watch;
        char *admin_group; /* NULL: root only */
        bool use_config;   /* follow org.vgpu.Config1 and write the VMs' IOMMU records */
        VmEntry *vms;
        size_t n_vms;
        PoolEntry *pools;
        size_t n_pools;
        bool config_absent_logged;
} Manager;

extern const sd_bus_vtable iommu_vtable[];

/* iommu-bus.c */
int manager_reply_error(sd_bus_error *error, int r, const char *why, const char *action);
int manager_authorize(Manager *m, sd_bus_message *msg, const char *action, sd_bus_error *error);
void manager_on_fault(const FaultRecord *r, void *userdata);

/* iommu-bus-gpu.c: the GPU and boot methods */
int method_list_gpus(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_get_gpu(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_bind_gpu(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_unbind_gpu(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_get_boot_settings(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_apply_boot_settings(sd_bus_message *msg, void *userdata, sd_bus_error *error);

/* config-mirror.c: configd's VMs and pools, and their IOMMU records */
int mirror_start(Manager *m);
void mirror_refresh_all(Manager *m);
void mirror_done(Manager *m);
int method_get_vm_iommu(sd_bus_message *msg, void *userdata, sd_bus_error *error);
