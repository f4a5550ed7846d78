/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The mirror of configd's VMs: subscribe to VmChanged / PoolChanged first, then read ListVms, so that no
 * change falls between the two (messages from one sender arrive in order: a signal before the reply is older
 * than it, one after is newer). When configd is absent, wait for it (NameOwnerChanged); when it comes back,
 * read everything again. */
#include <systemd/sd-daemon.h>

#include "channel.h"
#include "ingestd.h"
#include "log.h"

static int settings_from_dict(const BusDict *d, VmSettings *ret)
{
        const char *pool = bus_dict_get_string(d, "pool"), *prio = bus_dict_get_string(d, "priority");
        const char *iommu = bus_dict_get_string(d, "iommu_policy");
        uint64_t vm_id = bus_dict_get_uint(d, "vm_id");

        if (!vm_id_is_valid(vm_id) || !pool || !pool_id_is_valid(pool) || !prio ||
            priority_from_string(prio) == _PRIORITY_INVALID)
                return -EBADMSG;
        *ret = (VmSettings){
                .vm_id = (uint32_t)vm_id,
                .uuid = bus_dict_get_string(d, "uuid"),
                .pool = pool,
                .priority = priority_from_string(prio),
                .memory_quota = bus_dict_get_uint(d, "memory_quota"),
                .iommu_policy = iommu ? iommu_policy_from_string(iommu) : IOMMU_POLICY_REQUIRED,
        };
        return 0;
}

static void mirror_ready(Manager *m)
{
        m->synced = true;
        stub_mirror_synced(m);
        if (m->ready)
                return;
        m->ready = true;
        log_info("Serving %zu VM sockets under %s as %s.", m->vms.n, m->vm_dir, VGPU_INGEST_SERVICE);
        if (xen_start(m, m->xen_mode) < 0) {
                (void)sd_event_exit(m->event, -EOPNOTSUPP);
                return;
        }
        (void)sd_notifyf(false, "READY=1\nSTATUS=Serving %zu VMs", m->vms.n);
}

static int on_list_vms(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        Manager *m = userdata;
        BusDict *records = NULL;
        size_t n = 0;
        int r;

        if (sd_bus_message_is_method_error(reply, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(reply);
                log_notice("Waiting for %s (ListVms failed: %s); VM sockets appear once it answers.",
                           VGPU_CONFIG_SERVICE, e && e->message ? e->message : "no answer");
                return 0;
        }
        r = bus_dict_array_read(reply, &records, &n);
        if (r < 0)
                return log_error_errno(r, "Cannot read %s's VM list: %m", VGPU_CONFIG_SERVICE);
        for (size_t i = 0; i < m->vms.n; i++)
                m->vms.vms[i]->seen = false;
        for (size_t i = 0; i < n; i++) {
                VmSettings s;
                if (settings_from_dict(&records[i], &s) < 0) {
                        log_warning("Skipped a malformed VM record from %s.", VGPU_CONFIG_SERVICE);
                        continue;
                }
                (void)vm_apply_settings(m, &s);
        }
        /* Whatever configd no longer lists was unregistered while we were not looking. */
        for (size_t i = m->vms.n; i > 0; i--)
                if (!m->vms.vms[i - 1]->seen)
                        vm_table_remove(&m->vms, m->vms.vms[i - 1]->vm_id);
        bus_dict_array_free(records, n);
        mirror_ready(m);
        return 0;
}

static int mirror_read(Manager *m)
{
        int r = sd_bus_call_method_async(m->bus, NULL, VGPU_CONFIG_SERVICE, VGPU_CONFIG_PATH, VGPU_CONFIG_INTERFACE,
                                         "ListVms", on_list_vms, m, "ss", "", "");
        if (r < 0)
                return log_error_errno(r, "Failed to ask %s for its VMs: %m", VGPU_CONFIG_SERVICE);
        return 0;
}

static int on_vm_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        Manager *m = userdata;
        const char *change, *old_value;
        BusDict d = {};
        VmSettings s;
        uint32_t vm_id;
        int r;

        r = sd_bus_message_read(msg, "uss", &vm_id, &change, &old_value);
        if (r >= 0)
                r = bus_dict_read(msg, &d);
        if (r < 0)
                return log_warning_errno(r, "Malformed VmChanged signal: %m");
        if (streq(change, "unregistered")) {
                if (vm_table_get(&m->vms, vm_id))
                        log_vm(LOG_INFO, vm_id, NULL, NULL, "VM %u unregistered.", vm_id);
                vm_table_remove(&m->vms, vm_id);
        } else if (settings_from_dict(&d, &s) < 0 || s.vm_id != vm_id)
                log_warning("VmChanged for VM %u carried a malformed record; ignored.", vm_id);
        else
                (void)vm_apply_settings(m, &s);
        bus_dict_done(&d);
        return 0;
}

static int on_pool_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        const char *pool, *change;

        if (sd_bus_message_read(msg, "ss", &pool, &change) >= 0)
                log_debug("Pool %s %s.", pool, change);
        return 0;
}

static int on_owner_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        Manager *m = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(msg, "sss", &name, &old_owner, &new_owner) < 0 || !streq(name, VGPU_CONFIG_SERVICE))
                return 0;
        if (isempty(new_owner)) {
                log_notice("%s left the bus; keeping the %zu VMs mirrored until it is back.", VGPU_CONFIG_SERVICE,
                           m->vms.n);
                return 0;
        }
        log_info("%s is on the bus (%s); reading its VMs.", VGPU_CONFIG_SERVICE, new_owner);
        return mirror_read(m);
}

int mirror_start(Manager *m)
{
        int r;

        r = sd_bus_match_signal(m->bus, NULL, VGPU_CONFIG_SERVICE, VGPU_CONFIG_PATH, VGPU_CONFIG_INTERFACE,
                                "VmChanged", on_vm_changed, m);
        if (r >= 0)
                r = sd_bus_match_signal(m->bus, NULL, VGPU_CONFIG_SERVICE, VGPU_CONFIG_PATH, VGPU_CONFIG_INTERFACE,
                                        "PoolChanged", on_pool_changed, m);
        if (r >= 0)
                r = sd_bus_add_match(m->bus, NULL,
                                     "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                                     "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
                                     "arg0='" VGPU_CONFIG_SERVICE "'",
                                     on_owner_changed, m);
        if (r < 0)
                return log_error_errno(r, "Failed to subscribe to %s's signals: %m", VGPU_CONFIG_SERVICE);
        return mirror_read(m);
}
