/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The org.vgpu.Iommu1 vtable (dbus-interfaces/org.vgpu.Iommu1.xml is the source of truth): the verdict,
 * the faults, the properties, error naming and authorization. The GPU and boot methods are in
 * iommu-bus-gpu.c, the VM records in config-mirror.c. */
#include "iommud.h"
#include "log.h"
#include "status.h"

int manager_reply_error(sd_bus_error *error, int r, const char *why, const char *action)
{
        static const char *const names[] = {
                [IOMMU_E_INVALID_ARGUMENT] = VGPU_ERROR_INVALID_ARGUMENT,
                [IOMMU_E_NO_SUCH_DEVICE] = VGPU_ERROR_NO_SUCH_DEVICE,
                [IOMMU_E_NOT_A_GPU] = VGPU_ERROR_NOT_A_GPU,
                [IOMMU_E_GROUP_NOT_VIABLE] = VGPU_ERROR_GROUP_NOT_VIABLE,
                [IOMMU_E_DEVICE_IN_USE] = VGPU_ERROR_DEVICE_IN_USE,
                [IOMMU_E_HOST_CONSOLE] = VGPU_ERROR_HOST_CONSOLE,
                [IOMMU_E_NOT_SUPPORTED] = VGPU_ERROR_NOT_SUPPORTED,
                [IOMMU_E_FAILED] = VGPU_ERROR_FAILED,
        };

        if (r > 0 && (size_t)r < ELEMENTSOF(names) && names[r])
                return sd_bus_error_set(error, names[r], why);
        log_error_errno(r < 0 ? r : -EIO, "%s failed: %m", action);
        return sd_bus_error_setf(error, VGPU_ERROR_FAILED, "%s failed: %s.", action, strerror(r < 0 ? -r : EIO));
}

int manager_authorize(Manager *m, sd_bus_message *msg, const char *action, sd_bus_error *error)
{
        BusCaller caller;

        return bus_authorize_admin(msg, m->admin_group, action, &caller, error);
}

static int append_fault(sd_bus_message *msg, const FaultRecord *r)
{
        int k;

        k = sd_bus_message_open_container(msg, 'a', "{sv}");
        if (k < 0)
                return k;
        if ((k = bus_dict_append_u64(msg, "seq", r->seq)) < 0 ||
            (k = bus_dict_append_u64(msg, "realtime_usec", r->realtime_usec)) < 0 ||
            (k = bus_dict_append_string(msg, "source", fault_source_to_string(r->fault.source))) < 0 ||
            (k = bus_dict_append_string(msg, "device", r->fault.device)) < 0 ||
            (k = bus_dict_append_u64(msg, "address", r->fault.address)) < 0 ||
            (k = bus_dict_append_string(msg, "reason", r->fault.reason)) < 0 ||
            (k = bus_dict_append_string(msg, "line", r->line)) < 0)
                return k;
        return sd_bus_message_close_container(msg);
}

/* FaultRecorded is best effort: the fault is in the log already, and ListFaults returns it. */
void manager_on_fault(const FaultRecord *r, void *userdata)
{
        _cleanup_bus_message_ sd_bus_message *sig = NULL;
        Manager *m = userdata;
        int k;

        if (!m->bus)
                return;
        k = sd_bus_message_new_signal(m->bus, &sig, VGPU_IOMMU_PATH, VGPU_IOMMU_INTERFACE, "FaultRecorded");
        if (k >= 0)
                k = append_fault(sig, r);
        if (k >= 0)
                k = sd_bus_send(m->bus, sig, NULL);
        if (k < 0)
                log_warning_errno(k, "Failed to emit FaultRecorded for fault #%llu: %m", (unsigned long long)r->seq);
}

static int append_status(sd_bus_message *reply, const IommuStatus *s, const PciIdList *allow)
{
        int r;

        r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        if ((r = bus_dict_append_string(reply, "platform", platform_to_string(s->platform))) < 0 ||
            (r = bus_dict_append_bool(reply, "iommu_enabled", s->enabled)) < 0 ||
            (r = bus_dict_append_string(reply, "vendor", s->vendor)) < 0 ||
            (r = bus_dict_append_string(reply, "mode", s->mode)) < 0 ||
            (r = bus_dict_append_u32(reply, "gpus", s->gpus)) < 0 ||
            (r = bus_dict_append_u32(reply, "gpus_isolated", s->gpus_isolated)) < 0 ||
            (r = bus_dict_append_u32(reply, "faults", s->faults)) < 0 ||
            (r = bus_dict_append_bool(reply, "compliant", s->compliant)) < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(reply, "s", "problems");
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'v', "as");
        if (r >= 0)
                r = sd_bus_message_append_strv(reply, s->problems);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(reply, "s", "test_allow_list");
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'v', "as");
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "s");
        for (size_t i = 0; r >= 0 && i < allow->n; i++) {
                char id[10];
                snprintf(id, sizeof(id), "%04x:%04x", allow->ids[i].vendor, allow->ids[i].device);
                r = sd_bus_message_append(reply, "s", id);
        }
        for (int i = 0; r >= 0 && i < 4; i++)
                r = sd_bus_message_close_container(reply);
        return r;
}

static int method_get_status(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        Manager *m = userdata;
        FaultLog *log = m->watch ? fault_watch_log(m->watch) : NULL;
        const FaultRecord *last = log && log->n ? fault_log_get(log, log->n - 1) : NULL;
        IommuStatus s;
        int r;

        r = iommu_status_compute(&m->host, m->xen, log ? fault_log_unacknowledged(log) : 0, last ? last->line : NULL,
                                 fault_watch_source(m->watch), &s);
        if (r < 0)
                return manager_reply_error(error, r, NULL, "Reading the IOMMU status");
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = append_status(reply, &s, &m->host.test_allow);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sss)");
        for (size_t i = 0; r >= 0 && i < s.n_evidence; i++)
                r = sd_bus_message_append(reply, "(sss)", s.evidence[i].conclusion, s.evidence[i].source,
                                          s.evidence[i].text);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        iommu_status_done(&s);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_list_faults(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        Manager *m = userdata;
        FaultLog *log = m->watch ? fault_watch_log(m->watch) : NULL;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "a{sv}");
        for (size_t i = 0; r >= 0 && log && i < log->n; i++)
                r = append_fault(reply, fault_log_get(log, i));
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_acknowledge_faults(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        uint32_t n = 0;
        int r;

        r = manager_authorize(m, msg, "Acknowledging IOMMU faults", error);
        if (r < 0)
                return r;
        if (m->watch)
                n = fault_log_acknowledge(fault_watch_log(m->watch));
        log_notice("Acknowledged %u IOMMU fault(s).", n);
        return sd_bus_reply_method_return(msg, "u", n);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        return sd_bus_message_append(reply, "s", VGPU_VERSION);
}

static int property_get_platform(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;

        return sd_bus_message_append(reply, "s", platform_to_string(m->host.platform));
}

static int property_get_root(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;

        return sd_bus_message_append(reply, "s", m->host.root->path);
}

static int property_get_fault_count(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        uint64_t n = m->watch ? fault_watch_log(m->watch)->total : 0;

        return sd_bus_message_append(reply, "u", n > UINT32_MAX ? UINT32_MAX : (uint32_t)n);
}

/* Every method is reachable by everyone as far as sd-bus is concerned; the privileged ones (org.vgpu.Privileged
 * in the XML) check their caller themselves. */
const sd_bus_vtable iommu_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Platform", "s", property_get_platform, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Root", "s", property_get_root, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("FaultCount", "u", property_get_fault_count, 0, 0),
        SD_BUS_METHOD_WITH_ARGS("GetStatus", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sv}", status, "a(sss)", evidence),
                                method_get_status, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListGpus", SD_BUS_NO_ARGS, SD_BUS_RESULT("aa{sv}", gpus), method_list_gpus,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetGpu", SD_BUS_ARGS("s", address), SD_BUS_RESULT("a{sv}", gpu), method_get_gpu,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("BindGpu", SD_BUS_ARGS("s", address, "s", driver), SD_BUS_RESULT("as", bound),
                                method_bind_gpu, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("UnbindGpu", SD_BUS_ARGS("s", address), SD_BUS_RESULT("as", released),
                                method_unbind_gpu, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListFaults", SD_BUS_NO_ARGS, SD_BUS_RESULT("aa{sv}", faults), method_list_faults,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("AcknowledgeFaults", SD_BUS_NO_ARGS, SD_BUS_RESULT("u", acknowledged),
                                method_acknowledge_faults, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetBootSettings", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sv}", settings),
                                method_get_boot_settings, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ApplyBootSettings", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sv}", result),
                                method_apply_boot_settings, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetVmIommu", SD_BUS_ARGS("u", vm_id), SD_BUS_RESULT("a{sv}", vm),
                                method_get_vm_iommu, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("FaultRecorded", SD_BUS_ARGS("a{sv}", fault), 0),
        SD_BUS_SIGNAL_WITH_ARGS("GpuBindingChanged", SD_BUS_ARGS("s", address, "s", driver), 0),
        SD_BUS_VTABLE_END,
};
