/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The GPU methods of org.vgpu.Iommu1 (ListGpus, GetGpu, BindGpu, UnbindGpu) and the boot settings. */
#include "bind.h"
#include "boot-settings.h"
#include "iommud.h"
#include "log.h"

/* vendor_id and device_id are 'q' in the contract; bus-util has no 16-bit helper. */
static int dict_append_u16(sd_bus_message *m, const char *key, uint16_t value)
{
        return sd_bus_message_append(m, "{sv}", key, "q", value);
}

static int append_strv_entry(sd_bus_message *m, const char *key, char **strv)
{
        int r;

        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", key);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "as");
        if (r >= 0)
                r = sd_bus_message_append_strv(m, strv);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static int append_gpu(sd_bus_message *m, const Gpu *g)
{
        const PciDevice *d = g->device;
        _cleanup_strv_ char **members = calloc(1, sizeof(char *));
        int r = members ? 0 : -ENOMEM;

        for (size_t i = 0; r >= 0 && i < g->n_members; i++)
                r = strv_append(&members, g->members[i]->name);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        if ((r = bus_dict_append_string(m, "address", d->name)) < 0 ||
            (r = dict_append_u16(m, "vendor_id", d->vendor_id)) < 0 ||
            (r = dict_append_u16(m, "device_id", d->device_id)) < 0 ||
            (r = bus_dict_append_u32(m, "class", d->class)) < 0 ||
            (r = bus_dict_append_string(m, "vendor_name", d->vendor_name)) < 0 ||
            (r = bus_dict_append_string(m, "device_name", d->device_name)) < 0 ||
            (r = bus_dict_append_string(m, "driver", d->driver)) < 0 ||
            (r = bus_dict_append_i32(m, "iommu_group", d->iommu_group)) < 0 ||
            (r = append_strv_entry(m, "group_members", members)) < 0 ||
            (r = bus_dict_append_bool(m, "group_viable", g->group_viable)) < 0 ||
            (r = bus_dict_append_string(m, "group_viable_reason", strempty(g->viable_reason))) < 0 ||
            (r = bus_dict_append_bool(m, "boot_vga", d->boot_vga)) < 0 ||
            (r = bus_dict_append_bool(m, "isolated", g->isolated)) < 0 ||
            (r = bus_dict_append_bool(m, "allowed_by_test_list", g->allowed_by_test_list)) < 0)
                return r;
        return sd_bus_message_close_container(m);
}

int method_list_gpus(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        Manager *m = userdata;
        GpuList l = { 0 };
        int r;

        r = gpus_discover(&m->host, &l);
        if (r < 0)
                return manager_reply_error(error, r, NULL, "Reading the PCI devices");
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "a{sv}");
        for (size_t i = 0; r >= 0 && i < l.n_gpus; i++)
                r = append_gpu(reply, &l.gpus[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        gpu_list_done(&l);
        return r < 0 ? r : sd_bus_send(NULL, reply, NULL);
}

int method_get_gpu(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        Manager *m = userdata;
        char name[PCI_ADDRESS_STRING_MAX];
        const PciDevice *d;
        const Gpu *g = NULL;
        const char *address;
        GpuList l = { 0 };
        PciAddress a;
        int r;

        r = sd_bus_message_read(msg, "s", &address);
        if (r < 0)
                return r;
        if (pci_address_parse(address, &a) < 0)
                return sd_bus_error_setf(error, VGPU_ERROR_INVALID_ARGUMENT,
                                         "'%.32s' is not a PCI address; write it as 0000:41:00.0 (or 41:00.0).", address);
        r = gpus_discover(&m->host, &l);
        if (r < 0)
                return manager_reply_error(error, r, NULL, "Reading the PCI devices");
        d = gpu_list_find_device(&l, &a);
        g = gpu_list_find_gpu(&l, &a);
        if (!d)
                r = sd_bus_error_setf(error, VGPU_ERROR_NO_SUCH_DEVICE,
                                      "There is no PCI device %s on this host; ListGpus shows the GPUs.",
                                      pci_address_format(&a, name));
        else if (!g)
                r = sd_bus_error_setf(error, VGPU_ERROR_NOT_A_GPU, "%s (%04x:%04x, class 0x%06x) is not a GPU.",
                                      d->name, d->vendor_id, d->device_id, d->class);
        else {
                r = sd_bus_message_new_method_return(msg, &reply);
                if (r >= 0)
                        r = append_gpu(reply, g);
                if (r >= 0)
                        r = sd_bus_send(NULL, reply, NULL);
        }
        gpu_list_done(&l);
        return r;
}

static int reply_strv(sd_bus_message *msg, char **strv)
{
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_append_strv(reply, strv);
        return r < 0 ? r : sd_bus_send(NULL, reply, NULL);
}

static void emit_binding_changed(Manager *m, const char *address, const char *driver)
{
        int r = sd_bus_emit_signal(m->bus, VGPU_IOMMU_PATH, VGPU_IOMMU_INTERFACE, "GpuBindingChanged", "ss", address,
                                   driver);

        if (r < 0)
                log_warning_errno(r, "Failed to emit GpuBindingChanged for %s: %m", address);
}

int method_bind_gpu(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_strv_ char **bound = NULL;
        char why[IOMMU_WHY_MAX] = "";
        const char *address, *driver, *used;
        Manager *m = userdata;
        PciAddress a;
        char name[PCI_ADDRESS_STRING_MAX];
        int r;

        r = sd_bus_message_read(msg, "ss", &address, &driver);
        if (r < 0)
                return r;
        if (pci_address_parse(address, &a) < 0)
                return sd_bus_error_setf(error, VGPU_ERROR_INVALID_ARGUMENT,
                                         "'%.32s' is not a PCI address; write it as 0000:41:00.0 (or 41:00.0).", address);
        r = manager_authorize(m, msg, "Binding a GPU", error);
        if (r < 0)
                return r;
        r = gpu_bind(&m->host, address, driver, &bound, &used, why);
        if (r != 0) {
                if (r > 0)
                        log_notice("Refused to bind %s: %s", address, why);
                return manager_reply_error(error, r, why, "Binding the GPU");
        }
        emit_binding_changed(m, pci_address_format(&a, name), used);
        mirror_refresh_all(m);
        return reply_strv(msg, bound);
}

int method_unbind_gpu(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_strv_ char **released = NULL;
        char why[IOMMU_WHY_MAX] = "";
        char name[PCI_ADDRESS_STRING_MAX];
        Manager *m = userdata;
        const char *address;
        PciAddress a;
        int r;

        r = sd_bus_message_read(msg, "s", &address);
        if (r < 0)
                return r;
        if (pci_address_parse(address, &a) < 0)
                return sd_bus_error_setf(error, VGPU_ERROR_INVALID_ARGUMENT,
                                         "'%.32s' is not a PCI address; write it as 0000:41:00.0 (or 41:00.0).", address);
        r = manager_authorize(m, msg, "Releasing a GPU", error);
        if (r < 0)
                return r;
        r = gpu_unbind(&m->host, address, &released, why);
        if (r != 0) {
                if (r > 0)
                        log_notice("Refused to release %s: %s", address, why);
                return manager_reply_error(error, r, why, "Releasing the GPU");
        }
        if (strv_length(released) > 0) {
                emit_binding_changed(m, pci_address_format(&a, name), "");
                mirror_refresh_all(m);
        }
        return reply_strv(msg, released);
}

static int append_boot_settings(sd_bus_message *m, Platform platform, const BootSettings *s)
{
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        if ((r = bus_dict_append_string(m, "platform", platform_to_string(platform))) < 0 ||
            (r = bus_dict_append_string(m, "target", s->target)) < 0 ||
            (r = bus_dict_append_string(m, "current", s->current)) < 0 ||
            (r = bus_dict_append_string(m, "proposed", s->proposed)) < 0 ||
            (r = append_strv_entry(m, "add", s->add)) < 0 ||
            (r = bus_dict_append_bool(m, "change_needed", s->change_needed)) < 0 ||
            (r = bus_dict_append_bool(m, "reboot_required", s->reboot_required)) < 0)
                return r;
        return sd_bus_message_close_container(m);
}

static int append_apply_result(sd_bus_message *m, const BootApplyResult *res)
{
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        if ((r = bus_dict_append_string(m, "target", res->target)) < 0 ||
            (r = bus_dict_append_string(m, "backup", res->backup)) < 0 ||
            (r = bus_dict_append_bool(m, "changed", res->changed)) < 0 ||
            (r = bus_dict_append_bool(m, "reboot_required", res->reboot_required)) < 0)
                return r;
        return sd_bus_message_close_container(m);
}

int method_get_boot_settings(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        char why[IOMMU_WHY_MAX] = "";
        Manager *m = userdata;
        BootSettings s;
        int r;

        r = boot_settings_get(&m->host, m->xen, &s, why);
        if (r != 0)
                return manager_reply_error(error, r, why, "Reading the boot settings");
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = append_boot_settings(reply, m->host.platform, &s);
        boot_settings_done(&s);
        return r < 0 ? r : sd_bus_send(NULL, reply, NULL);
}

int method_apply_boot_settings(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        char why[IOMMU_WHY_MAX] = "";
        Manager *m = userdata;
        BootApplyResult res;
        int r;

        r = manager_authorize(m, msg, "Changing the boot settings", error);
        if (r < 0)
                return r;
        r = boot_settings_apply(&m->host, m->xen, &res, why);
        if (r != 0)
                return manager_reply_error(error, r, why, "Changing the boot settings");
        if (!res.changed)
                log_info("Boot settings in %s already turn the IOMMU on in strict mode; nothing written.", res.target);
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = append_apply_result(reply, &res);
        boot_apply_result_done(&res);
        return r < 0 ? r : sd_bus_send(NULL, reply, NULL);
}
