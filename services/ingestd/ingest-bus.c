/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-ingestd's D-Bus side, org.vgpu.Ingest1 (dbus-interfaces/org.vgpu.Ingest1.xml is the source of truth):
 * the channels as records, and disconnecting a VM's guest (privileged). */

#include "channel.h"
#include "ingestd.h"
#include "log.h"

static const char *vm_state(const Vm *vm)
{
        return vm->channel ? "connected" : vm->listen_fd >= 0 ? "listening" : "closed";
}

static int append_channel(sd_bus_message *reply, const Vm *vm)
{
        const Channel *c = vm->channel;
        /* Credentials exist for a local peer only; a Xen peer is its domain. */
        const VgpuPeer *peer = c && c->endpoint->kind == VGPU_TRANSPORT_LOCAL ? &c->endpoint->peer : NULL;
        const char *transport = c ? vgpu_transport_kind_to_string(c->endpoint->kind) : "";
        bool announced = vm->stub_state == STUB_STATE_ANNOUNCED;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        if ((r = bus_dict_append_u32(reply, "vm_id", vm->vm_id)) < 0 ||
            (r = bus_dict_append_string(reply, "pool", vm->pool)) < 0 ||
            (r = bus_dict_append_string(reply, "priority", priority_to_string(vm->priority))) < 0 ||
            (r = bus_dict_append_string(reply, "state", vm_state(vm))) < 0 ||
            (r = bus_dict_append_string(reply, "attachment", c ? channel_attach_to_string(c->attach) : "")) < 0 ||
            (r = bus_dict_append_u32(reply, "peer_pid", peer ? (uint32_t)peer->pid : 0)) < 0 ||
            (r = bus_dict_append_u32(reply, "peer_uid", peer ? (uint32_t)peer->uid : 0)) < 0 ||
            (r = bus_dict_append_bool(reply, "negotiated", c && c->negotiated)) < 0 ||
            (r = bus_dict_append_u64(reply, "requests", c ? c->requests : 0)) < 0 ||
            (r = bus_dict_append_u64(reply, "completions", c ? c->completions : 0)) < 0 ||
            (r = bus_dict_append_u64(reply, "errors", c ? c->errors : 0)) < 0 ||
            (r = bus_dict_append_u32(reply, "in_flight", c ? c->in_flight : 0)) < 0 ||
            (r = bus_dict_append_u64(reply, "generation", c ? c->generation : 0)) < 0 ||
            (r = bus_dict_append_u64(reply, "connected_usec", c ? c->connected_usec : 0)) < 0 ||
            (r = bus_dict_append_string(reply, "transport", transport)) < 0 ||
            (r = bus_dict_append_u32(reply, "domid", c ? c->endpoint->peer.domid : 0)) < 0 ||
            (r = bus_dict_append_string(reply, "stub", stub_state_to_string(vm))) < 0 ||
            (r = bus_dict_append_string(reply, "stub_pool", announced ? vm->stub.pool : "")) < 0 ||
            (r = bus_dict_append_string(reply, "stub_priority",
                                        announced ? strempty(priority_to_string(vm->stub.priority)) : "")) < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static int method_list_channels(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        Manager *m = userdata;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "a{sv}");
        for (size_t i = 0; r >= 0 && i < m->vms.n; i++)
                r = append_channel(reply, m->vms.vms[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* Root, or a member of the admin group per the user database: the same rule as configd's. */
static int authorize(Manager *m, sd_bus_message *msg, sd_bus_error *error)
{
        BusCaller caller;

        return bus_authorize_admin(msg, m->admin_group, "Disconnecting a guest", &caller, error);
}

static int method_disconnect_vm(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        uint32_t vm_id;
        Vm *vm;
        int r;

        r = sd_bus_message_read(msg, "u", &vm_id);
        if (r < 0)
                return r;
        if (!vm_id_is_valid(vm_id))
                return sd_bus_error_setf(error, VGPU_ERROR_INVALID_ARGUMENT, "Invalid VM id %u.", vm_id);
        r = authorize(m, msg, error);
        if (r < 0)
                return r;
        vm = vm_table_get(&m->vms, vm_id);
        if (!vm)
                return sd_bus_error_setf(error, VGPU_ERROR_NO_SUCH_VM, "VM %u is not registered.", vm_id);
        if (!vm->channel)
                return sd_bus_error_setf(error, VGPU_ERROR_NOT_CONNECTED, "VM %u has no guest connected.", vm_id);
        channel_close(vm->channel, VGPU_STATUS_CHANNEL_CLOSED, "disconnected by an administrator");
        return sd_bus_reply_method_return(msg, NULL);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        return sd_bus_message_append(reply, "s", VGPU_VERSION);
}

static int property_get_channel_count(sd_bus *bus, const char *path, const char *interface, const char *property,
                                      sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        uint32_t n = 0;

        for (size_t i = 0; i < m->vms.n; i++)
                n += m->vms.vms[i]->channel != NULL;
        return sd_bus_message_append(reply, "u", n);
}

/* Every method is reachable by everyone as far as sd-bus is concerned; DisconnectVm checks its caller. */
const sd_bus_vtable ingest_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ConnectedCount", "u", property_get_channel_count, 0, 0),
        SD_BUS_METHOD_WITH_ARGS("ListChannels", SD_BUS_NO_ARGS, SD_BUS_RESULT("aa{sv}", channels),
                                method_list_channels, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DisconnectVm", SD_BUS_ARGS("u", vm_id), SD_BUS_NO_RESULT, method_disconnect_vm,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};
