/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Xen channels in vgpu-ingestd: the xenbus watch (common/transport/xen-bus.c) on the event loop, and what it
 * asks of us — which VM a domain's device names (domid → the toolstack's vm-uuid → configd's record), serving
 * a mapped channel exactly like a local one, and closing it when the frontend or its domain goes. */
#include <stdio.h>
#include <string.h>

#include "channel.h"
#include "ingestd.h"
#include "log.h"
#include "transport/xen.h"

const char *xen_mode_to_string(XenMode mode)
{
        return mode == XEN_MODE_ON ? "on" : mode == XEN_MODE_OFF ? "off" : "auto";
}

int xen_mode_from_string(const char *s)
{
        if (streq_ptr(s, "auto"))
                return XEN_MODE_AUTO;
        if (streq_ptr(s, "on"))
                return XEN_MODE_ON;
        if (streq_ptr(s, "off"))
                return XEN_MODE_OFF;
        return -EINVAL;
}

/* dom0 (the control domain) says so in /proc/xen/capabilities. */
static bool running_in_dom0(void)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/xen/capabilities", "re");
        char line[128];

        while (f && fgets(line, sizeof(line), f))
                if (strstr(line, "control_d"))
                        return true;
        return false;
}

static int xen_accept(void *userdata, uint32_t domid, const char *vm_uuid, char *why, size_t why_size)
{
        Manager *m = userdata;
        Vm *vm = vm_table_find_uuid(&m->vms, vm_uuid);

        if (!vm) {
                snprintf(why, why_size,
                         "no VM with uuid %s is registered with vgpu (vgpu-admin register-vm … "
                         "--uuid=%s)",
                         vm_uuid, vm_uuid);
                return -ENOENT;
        }
        if (vm->channel) {
                snprintf(why, why_size, "VM %u already has a channel connected", vm->vm_id);
                return -EBUSY;
        }
        log_vm(LOG_INFO, vm->vm_id, vm->pool, NULL, "VM %u: domain %u asks for a channel (uuid %s).", vm->vm_id, domid,
               vm_uuid);
        return 0;
}

static int xen_connected(void *userdata, uint32_t domid, const char *vm_uuid, VgpuEndpoint *e)
{
        Manager *m = userdata;
        Vm *vm = vm_table_find_uuid(&m->vms, vm_uuid);
        char who[32];

        if (!vm || vm->channel)
                return -EBUSY;
        snprintf(who, sizeof(who), "domain %u", domid);
        return channel_serve(vm, e, who);
}

static void xen_disconnect(void *userdata, uint32_t domid, VgpuEndpoint *e, const char *why)
{
        Manager *m = userdata;

        for (size_t i = 0; i < m->n_channels; i++)
                if (m->channels[i]->endpoint == e) {
                        channel_close(m->channels[i], VGPU_STATUS_CHANNEL_CLOSED, why);
                        return;
                }
}

static void xen_log(void *userdata, int level, uint32_t domid, const char *message)
{
        log_full(level, "Xen: %s", message);
}

static int on_xenstore(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Manager *m = userdata;
        int r = vgpu_xen_bus_dispatch(m->xen);

        if (r < 0)
                log_warning_errno(r, "Xen: reading xenstore watch events failed: %m");
        return 0;
}

static const VgpuXenBusCallbacks xen_callbacks = {
        .accept = xen_accept,
        .connected = xen_connected,
        .disconnect = xen_disconnect,
        .log = xen_log,
};

int xen_start(Manager *m, XenMode mode)
{
        const VgpuXenOps *ops = vgpu_xen_ops();
        int r;

        if (mode == XEN_MODE_OFF) {
                log_info("Xen channels off (--xen=off).");
                return 0;
        }
        if (!ops || (mode == XEN_MODE_AUTO && !running_in_dom0())) {
                const char *why = !ops ? "this build has no libxen"
                                       : "not running in a Xen control domain "
                                         "(/proc/xen/capabilities lacks control_d)";
                if (mode == XEN_MODE_ON)
                        return log_error_errno(-EOPNOTSUPP, "Xen channels requested (--xen=on), but %s.", why);
                log_info("Xen channels off: %s; local channels only.", why);
                return 0;
        }
        r = vgpu_xen_bus_new(ops, &xen_callbacks, m, &m->xen);
        if (r < 0) {
                if (mode == XEN_MODE_ON)
                        return log_error_errno(r, "Xen channels requested (--xen=on), but xenstore cannot be used: %m");
                log_info("Xen channels off: xenstore cannot be opened (%s); local channels only.", strerror(-r));
                return 0;
        }
        r = sd_event_add_io(m->event, &m->xen_source, vgpu_xen_bus_fd(m->xen), EPOLLIN, on_xenstore, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch xenstore: %m");
        log_info("Xen channels on: serving frontends under %s.", VGPU_XEN_BACKEND_ROOT);
        return 0;
}

void xen_stop(Manager *m)
{
        m->xen_source = sd_event_source_disable_unref(m->xen_source);
        m->xen = vgpu_xen_bus_free(m->xen);
}
