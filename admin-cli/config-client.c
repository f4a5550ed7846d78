/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-admin's side of the bus: connecting, calling org.vgpu.Config1 and the services of the command path,
 * and turning every failure into a sentence an administrator can act on. */
#include <stdarg.h>

#include "admin.h"

#define IN_SET(x, a, b)            ((x) == (a) || (x) == (b))
#define SYSTEM_BUS_ADDRESS_DEFAULT "unix:path=/run/dbus/system_bus_socket"

void admin_error(const char *format, ...)
{
        va_list ap;

        fflush(stdout); /* keep what was printed so far before the message, when both go to one terminal */
        fputs("vgpu-admin: ", stderr);
        va_start(ap, format);
        vfprintf(stderr, format, ap);
        va_end(ap);
        fputc('\n', stderr);
}

static const char *system_bus_address(void)
{
        const char *e = getenv("DBUS_SYSTEM_BUS_ADDRESS");

        return isempty(e) ? SYSTEM_BUS_ADDRESS_DEFAULT : e;
}

int admin_bus_open(sd_bus **ret)
{
        int r = bus_open_system(ret);

        if (r < 0) {
                admin_error("cannot connect to the system bus at %s%s: %s%s", system_bus_address(),
                            getenv("DBUS_SYSTEM_BUS_ADDRESS") ? " (from DBUS_SYSTEM_BUS_ADDRESS)" : "", strerror(-r),
                            IN_SET(r, -ENOENT, -ECONNREFUSED) ? " (is the D-Bus daemon running?)" : "");
                return r;
        }
        return 0;
}

int call_build_failed(const char *method, int r)
{
        admin_error("cannot build the %s call: %s", method, strerror(-r));
        return r;
}

int config_method_new(sd_bus *bus, sd_bus_message **ret, const char *method)
{
        int r = sd_bus_message_new_method_call(bus, ret, VGPU_CONFIG_SERVICE, VGPU_CONFIG_PATH, VGPU_CONFIG_INTERFACE,
                                               method);

        return r < 0 ? call_build_failed(method, r) : 0;
}

/* Get*, List*, Read* only read; every other method changes something. */
static bool method_is_change(const char *method)
{
        return !(strncmp(method, "Get", 3) == 0 || strncmp(method, "List", 4) == 0 || strncmp(method, "Read", 4) == 0);
}

static void report_no_answer(const ServiceInfo *s, const char *method, const char *why)
{
        if (method_is_change(method))
                admin_error("%s did not answer %s (%s); whether the change was made is unknown: %s.", s->who, method,
                            why, s->check_hint);
        else
                admin_error("%s did not answer %s (%s).", s->who, method, why);
}

static void report_access_denied(const ServiceInfo *s, const char *method, const sd_bus_error *e)
{
        if (sd_bus_error_has_name(e, VGPU_ERROR_ACCESS_DENIED))
                admin_error("access denied: %s", strempty(e->message));
        else /* the bus daemon's policy refused the call before it reached the service */
                admin_error("access denied: the system bus's policy does not let this user call %s.", method);
        admin_error("hint: %s needs root (sudo) or membership of the %s group "
                    "(log in again after being added to it).",
                    s->privileged_action, VGPU_ADMIN_GROUP_DEFAULT);
}

bool bus_error_is_not_running(const sd_bus_error *e)
{
        return sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER);
}

int report_service_error(const ServiceInfo *s, sd_bus_message *m, const sd_bus_error *e, int r)
{
        const char *method = sd_bus_message_get_member(m);

        if (!sd_bus_error_is_set(e)) {
                if (r == -ETIMEDOUT)
                        report_no_answer(s, method, "timed out");
                else
                        admin_error("calling %s failed: %s", method, strerror(-r));
        } else if (bus_error_is_not_running(e))
                admin_error("%s is not running (no %s on the system bus).", s->who,
                            strempty(sd_bus_message_get_destination(m)));
        else if (sd_bus_error_has_names(e, SD_BUS_ERROR_NO_REPLY, SD_BUS_ERROR_TIMEOUT, SD_BUS_ERROR_DISCONNECTED))
                report_no_answer(s, method, isempty(e->message) ? e->name : e->message);
        else if (sd_bus_error_has_names(e, VGPU_ERROR_ACCESS_DENIED, SD_BUS_ERROR_ACCESS_DENIED))
                report_access_denied(s, method, e);
        else
                admin_error("%s", isempty(e->message) ? e->name : e->message);
        return r;
}

static const ServiceInfo config_service = {
        .who = "vgpu-configd",
        .privileged_action = "changing the vgpu configuration",
        .check_hint = "check with show-vm, list-pools or audit",
};

int config_call(sd_bus *bus, sd_bus_message *m, sd_bus_message **ret_reply)
{
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call(bus, m, 0, &error, ret_reply);
        if (r < 0)
                return report_service_error(&config_service, m, &error, r);
        return 0;
}

int service_method_new(sd_bus *bus, sd_bus_message **ret, const char *service, const char *path, const char *interface,
                       const char *method)
{
        int r = sd_bus_message_new_method_call(bus, ret, service, path, interface, method);

        /* Reading the command path must not start a service: "not running" is the answer then. */
        if (r >= 0)
                r = sd_bus_message_set_auto_start(*ret, false);
        return r < 0 ? call_build_failed(method, r) : 0;
}

int service_call(sd_bus *bus, sd_bus_message *m, const ServiceInfo *s, sd_bus_message **ret_reply)
{
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call(bus, m, 0, &error, ret_reply);
        if (r < 0)
                return report_service_error(s, m, &error, r);
        return 0;
}

int call_reply_bad(int r)
{
        admin_error("cannot read the reply from the bus: %s", strerror(-r));
        return r;
}

int reply_read_dict(sd_bus_message *reply, BusDict *ret)
{
        int r = bus_dict_read(reply, ret);

        return r < 0 ? call_reply_bad(r) : 0;
}

int reply_read_dict_array(sd_bus_message *reply, BusDict **ret, size_t *ret_n)
{
        int r = bus_dict_array_read(reply, ret, ret_n);

        return r < 0 ? call_reply_bad(r) : 0;
}

int reply_read_string(sd_bus_message *reply, const char **ret)
{
        int r = sd_bus_message_read_basic(reply, 's', ret);

        return r < 0 ? call_reply_bad(r) : 0;
}

/* Calls a method whose only out argument is one record. */
static int call_for_dict(sd_bus *bus, const char *method, BusDict *ret, const char *types, ...)
{
        _cleanup_bus_message_ sd_bus_message *m = NULL, *reply = NULL;
        va_list ap;
        int r;

        r = config_method_new(bus, &m, method);
        if (r < 0)
                return r;
        va_start(ap, types);
        r = sd_bus_message_appendv(m, types, ap);
        va_end(ap);
        if (r < 0)
                return call_build_failed(method, r);
        r = config_call(bus, m, &reply);
        if (r < 0)
                return r;
        return reply_read_dict(reply, ret);
}

int config_get_vm(sd_bus *bus, uint32_t vm_id, BusDict *ret)
{
        return call_for_dict(bus, "GetVm", ret, "u", vm_id);
}

int config_get_vm_by_uuid(sd_bus *bus, const char *uuid, BusDict *ret)
{
        return call_for_dict(bus, "GetVmByUuid", ret, "s", uuid);
}

int config_get_pool(sd_bus *bus, const char *pool, BusDict *ret)
{
        return call_for_dict(bus, "GetPool", ret, "s", pool);
}

int config_list_vms(sd_bus *bus, const char *pool, const char *priority, BusDict **ret, size_t *ret_n)
{
        _cleanup_bus_message_ sd_bus_message *m = NULL, *reply = NULL;
        int r;

        r = config_method_new(bus, &m, "ListVms");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "ss", strempty(pool), strempty(priority));
        if (r < 0)
                return call_build_failed("ListVms", r);
        r = config_call(bus, m, &reply);
        if (r < 0)
                return r;
        return reply_read_dict_array(reply, ret, ret_n);
}

int bus_name_has_owner(sd_bus *bus, const char *name)
{
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        int owned, r;

        r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "NameHasOwner", &error, &reply, "s", name);
        if (r < 0) {
                admin_error("cannot ask the bus whether %s is running: %s", name,
                            sd_bus_error_is_set(&error) ? error.message : strerror(-r));
                return r;
        }
        r = sd_bus_message_read(reply, "b", &owned);
        if (r < 0)
                return call_reply_bad(r);
        return owned ? 1 : 0;
}
