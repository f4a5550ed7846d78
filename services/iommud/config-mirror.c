/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The VMs and pools of org.vgpu.Config1, followed from its signals (subscribed before the first read, as
 * ingestd does), and each VM's IOMMU record: computed from its pool's GPU, written back with
 * SetIommuRecord whenever it differs from what the store holds. Without configd the service carries on. */
#include "iommud.h"
#include "log.h"
#include "names.h"
#include "vm-confinement.h"

static VmEntry *vm_find(Manager *m, uint32_t vm_id)
{
        for (size_t i = 0; i < m->n_vms; i++)
                if (m->vms[i].vm_id == vm_id)
                        return &m->vms[i];
        return NULL;
}

static PoolEntry *pool_find(Manager *m, const char *pool)
{
        for (size_t i = 0; pool && i < m->n_pools; i++)
                if (streq(m->pools[i].pool, pool))
                        return &m->pools[i];
        return NULL;
}

static void vm_remove(Manager *m, uint32_t vm_id)
{
        VmEntry *v = vm_find(m, vm_id);

        if (!v)
                return;
        free(v->pool);
        free(v->iommu_domain);
        *v = m->vms[--m->n_vms];
}

static void pool_remove(Manager *m, const char *pool)
{
        PoolEntry *p = pool_find(m, pool);

        if (!p)
                return;
        free(p->pool);
        free(p->gpu_resource);
        *p = m->pools[--m->n_pools];
}

/* Creates or updates the VM from a VM record. */
static VmEntry *vm_update(Manager *m, const BusDict *d)
{
        uint64_t vm_id = bus_dict_get_uint(d, "vm_id");
        const char *pool = bus_dict_get_string(d, "pool"), *domain = bus_dict_get_string(d, "iommu_domain");
        VmEntry *v;

        if (!vm_id_is_valid(vm_id) || !pool || !pool_id_is_valid(pool))
                return NULL;
        v = vm_find(m, (uint32_t)vm_id);
        if (!v) {
                VmEntry *grown = realloc(m->vms, (m->n_vms + 1) * sizeof(*grown));
                if (!grown)
                        return NULL;
                m->vms = grown;
                v = &grown[m->n_vms++];
                *v = (VmEntry){ .vm_id = (uint32_t)vm_id, .iommu_group = -1 };
        }
        if (free_and_strdup(&v->pool, pool) < 0 || free_and_strdup(&v->iommu_domain, strempty(domain)) < 0)
                return NULL;
        if (bus_dict_get(d, "iommu_group"))
                v->iommu_group = (int32_t)bus_dict_get_int(d, "iommu_group");
        return v;
}

static int pool_update(Manager *m, const BusDict *d)
{
        const char *pool = bus_dict_get_string(d, "pool"), *resource = bus_dict_get_string(d, "gpu_resource");
        PoolEntry *p;

        if (!pool || !pool_id_is_valid(pool))
                return -EBADMSG;
        p = pool_find(m, pool);
        if (!p) {
                PoolEntry *grown = realloc(m->pools, (m->n_pools + 1) * sizeof(*grown));
                if (!grown)
                        return -ENOMEM;
                m->pools = grown;
                p = &grown[m->n_pools++];
                *p = (PoolEntry){ 0 };
        }
        if (free_and_strdup(&p->pool, pool) < 0 || free_and_strdup(&p->gpu_resource, strempty(resource)) < 0)
                return -ENOMEM;
        return 0;
}

static int on_set_record(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        if (e)
                log_warning("%s refused the IOMMU record of a VM: %s", VGPU_CONFIG_SERVICE, strempty(e->message));
        return 0;
}

static int vm_confinement(Manager *m, const VmEntry *v, VmConfinement *ret)
{
        const PoolEntry *p = pool_find(m, v->pool);

        return vm_confinement_compute(&m->host, m->xen, p ? p->gpu_resource : "", ret);
}

static void refresh_vm(Manager *m, const VmEntry *v)
{
        VmConfinement c;
        int r;

        if (vm_confinement(m, v, &c) < 0)
                return;
        if (streq_ptr(c.domain, v->iommu_domain) && c.group == v->iommu_group)
                return;
        r = sd_bus_call_method_async(m->bus, NULL, VGPU_CONFIG_SERVICE, VGPU_CONFIG_PATH, VGPU_CONFIG_INTERFACE,
                                     "SetIommuRecord", on_set_record, m, "usi", v->vm_id, c.domain, c.group);
        if (r < 0)
                log_warning_errno(r, "Failed to send VM %u's IOMMU record: %m", v->vm_id);
        else
                log_vm(LOG_INFO, v->vm_id, v->pool, NULL, "VM %u (pool %s): IOMMU domain \"%s\", group %d%s%s.",
                       v->vm_id, v->pool, c.domain, c.group, c.protected_ ? "" : "; not protected: ",
                       c.protected_ ? "" : c.reason);
}

void mirror_refresh_all(Manager *m)
{
        if (!m->use_config)
                return;
        for (size_t i = 0; i < m->n_vms; i++)
                refresh_vm(m, &m->vms[i]);
}

static int on_list_vms(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        Manager *m = userdata;
        BusDict *records = NULL;
        size_t n = 0;
        int r;

        if (sd_bus_message_is_method_error(reply, NULL))
                return 0;
        r = bus_dict_array_read(reply, &records, &n);
        if (r < 0)
                return log_warning_errno(r, "Cannot read %s's VM list: %m", VGPU_CONFIG_SERVICE);
        while (m->n_vms > 0)
                vm_remove(m, m->vms[0].vm_id);
        for (size_t i = 0; i < n; i++)
                if (!vm_update(m, &records[i]))
                        log_warning("Skipped a malformed VM record from %s.", VGPU_CONFIG_SERVICE);
        bus_dict_array_free(records, n);
        log_info("Following %zu VMs in %zu pools from %s.", m->n_vms, m->n_pools, VGPU_CONFIG_SERVICE);
        mirror_refresh_all(m);
        return 0;
}

static int on_list_pools(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        Manager *m = userdata;
        BusDict *records = NULL;
        size_t n = 0;
        int r;

        if (sd_bus_message_is_method_error(reply, NULL)) {
                if (!m->config_absent_logged)
                        log_notice("%s does not answer (%s); VM IOMMU records will be written once it is on the bus.",
                                   VGPU_CONFIG_SERVICE, strempty(sd_bus_message_get_error(reply)->message));
                m->config_absent_logged = true;
                return 0;
        }
        r = bus_dict_array_read(reply, &records, &n);
        if (r < 0)
                return log_warning_errno(r, "Cannot read %s's pools: %m", VGPU_CONFIG_SERVICE);
        while (m->n_pools > 0)
                pool_remove(m, m->pools[0].pool);
        for (size_t i = 0; i < n; i++)
                if (pool_update(m, &records[i]) < 0)
                        log_warning("Skipped a malformed pool record from %s.", VGPU_CONFIG_SERVICE);
        bus_dict_array_free(records, n);
        r = sd_bus_call_method_async(m->bus, NULL, VGPU_CONFIG_SERVICE, VGPU_CONFIG_PATH, VGPU_CONFIG_INTERFACE,
                                     "ListVms", on_list_vms, m, "ss", "", "");
        return r < 0 ? log_warning_errno(r, "Failed to ask %s for its VMs: %m", VGPU_CONFIG_SERVICE) : 0;
}

static int mirror_read(Manager *m)
{
        int r = sd_bus_call_method_async(m->bus, NULL, VGPU_CONFIG_SERVICE, VGPU_CONFIG_PATH, VGPU_CONFIG_INTERFACE,
                                         "ListPools", on_list_pools, m, "");

        return r < 0 ? log_error_errno(r, "Failed to ask %s for its pools: %m", VGPU_CONFIG_SERVICE) : 0;
}

static int on_vm_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        Manager *m = userdata;
        const char *change, *old_value;
        BusDict d = { 0 };
        uint32_t vm_id;
        VmEntry *v;
        int r;

        r = sd_bus_message_read(msg, "uss", &vm_id, &change, &old_value);
        if (r >= 0)
                r = bus_dict_read(msg, &d);
        if (r < 0)
                return log_warning_errno(r, "Malformed VmChanged signal: %m");
        if (streq(change, "unregistered"))
                vm_remove(m, vm_id);
        else if (!(v = vm_update(m, &d)) || v->vm_id != vm_id)
                log_warning("VmChanged for VM %u carried a malformed record; ignored.", vm_id);
        else if (streq(change, "registered") || streq(change, "pool"))
                refresh_vm(m, v);
        bus_dict_done(&d);
        return 0;
}

static int on_pool_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        Manager *m = userdata;
        const char *pool, *change;
        BusDict d = { 0 };
        int r;

        r = sd_bus_message_read(msg, "ss", &pool, &change);
        if (r >= 0)
                r = bus_dict_read(msg, &d);
        if (r < 0)
                return log_warning_errno(r, "Malformed PoolChanged signal: %m");
        if (streq(change, "deleted"))
                pool_remove(m, pool);
        else if (pool_update(m, &d) < 0)
                log_warning("PoolChanged for pool %s carried a malformed record; ignored.", pool);
        else
                for (size_t i = 0; i < m->n_vms; i++)
                        if (streq(m->vms[i].pool, pool))
                                refresh_vm(m, &m->vms[i]);
        bus_dict_done(&d);
        return 0;
}

static int on_owner_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        Manager *m = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(msg, "sss", &name, &old_owner, &new_owner) < 0 || !streq(name, VGPU_CONFIG_SERVICE))
                return 0;
        if (isempty(new_owner)) {
                log_notice("%s left the bus; VM IOMMU records wait until it is back.", VGPU_CONFIG_SERVICE);
                return 0;
        }
        log_info("%s is on the bus (%s); reading its VMs.", VGPU_CONFIG_SERVICE, new_owner);
        return mirror_read(m);
}

int mirror_start(Manager *m)
{
        int r;

        if (!m->use_config) {
                log_info("Not following %s (--no-config): VM IOMMU records are not written.", VGPU_CONFIG_SERVICE);
                return 0;
        }
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

void mirror_done(Manager *m)
{
        while (m->n_vms > 0)
                vm_remove(m, m->vms[0].vm_id);
        while (m->n_pools > 0)
                pool_remove(m, m->pools[0].pool);
        m->vms = mfree(m->vms);
        m->pools = mfree(m->pools);
}

static int append_vm(sd_bus_message *reply, uint32_t vm_id, const VmEntry *v, const VmConfinement *c)
{
        int r;

        r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        if ((r = bus_dict_append_u32(reply, "vm_id", vm_id)) < 0 ||
            (r = bus_dict_append_string(reply, "pool", v->pool)) < 0 ||
            (r = bus_dict_append_string(reply, "gpu", c->gpu)) < 0 ||
            (r = bus_dict_append_string(reply, "domain", c->domain)) < 0 ||
            (r = bus_dict_append_i32(reply, "group", c->group)) < 0 ||
            (r = bus_dict_append_bool(reply, "protected", c->protected_)) < 0 ||
            (r = bus_dict_append_string(reply, "reason", c->protected_ ? "" : c->reason)) < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

int method_get_vm_iommu(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        Manager *m = userdata;
        VmConfinement c;
        const VmEntry *v;
        uint32_t vm_id;
        int r;

        r = sd_bus_message_read(msg, "u", &vm_id);
        if (r < 0)
                return r;
        if (!vm_id_is_valid(vm_id))
                return sd_bus_error_setf(error, VGPU_ERROR_INVALID_ARGUMENT, "Invalid VM id %u.", vm_id);
        if (!m->use_config)
                return sd_bus_error_setf(error, VGPU_ERROR_NOT_SUPPORTED, "vgpu-iommud runs without the configuration "
                                         "store (--no-config), so it knows no VMs.");
        v = vm_find(m, vm_id);
        if (!v)
                return sd_bus_error_setf(error, VGPU_ERROR_NO_SUCH_VM, "VM %u is not registered (or %s is not "
                                         "running).", vm_id, VGPU_CONFIG_SERVICE);
        r = vm_confinement(m, v, &c);
        if (r < 0)
                return manager_reply_error(error, r, NULL, "Reading the VM's IOMMU confinement");
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = append_vm(reply, vm_id, v, &c);
        return r < 0 ? r : sd_bus_send(NULL, reply, NULL);
}
