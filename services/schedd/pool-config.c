/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The pool's own record in vgpu-configd: its mode and GPU resource. Subscribe to PoolChanged and to
 * configd's NameOwnerChanged first, then ask GetPool, so no change falls in between (a sender's messages
 * arrive in order); when configd returns, ask again. Without configd the pool keeps what it had (isolated,
 * no resource, at start) and the log says so. */
#include <errno.h>

#include "bus-util.h"
#include "log.h"
#include "sched.h"

#define log_pool(level, s, ...) log_vm((level), 0, (s)->pool, NULL, __VA_ARGS__)

static void pool_config_apply(Sched *s, const BusDict *d, const char *source)
{
        const char *mode = bus_dict_get_string(d, "mode"), *gpu = bus_dict_get_string(d, "gpu_resource");
        PoolMode m = mode ? pool_mode_from_string(mode) : _POOL_MODE_INVALID;
        int r;

        if (m < 0 || !gpu || !gpu_resource_is_valid(gpu)) {
                log_pool(LOG_WARNING, s, "Pool %s: %s carried a malformed pool record (mode '%s', GPU resource "
                         "'%s'); keeping mode %s.", s->pool, source, strempty(mode), strempty(gpu),
                         pool_mode_to_string(s->mode));
                return;
        }
        if (m == s->mode && streq(gpu, s->gpu_resource)) {
                log_pool(LOG_INFO, s, "Pool %s: mode %s, GPU resource '%s' (%s).", s->pool, pool_mode_to_string(m),
                         gpu, source);
                return;
        }
        log_pool(LOG_NOTICE, s, "Pool %s: mode %s → %s, GPU resource '%s' → '%s' (%s). Executors started from now "
                 "on get the new mode; running ones keep theirs until they restart.", s->pool,
                 pool_mode_to_string(s->mode), pool_mode_to_string(m), s->gpu_resource, gpu, source);
        s->mode = m;
        snprintf(s->gpu_resource, sizeof(s->gpu_resource), "%s", gpu);
        gpu_exec_update(s);
        r = sd_bus_emit_properties_changed(s->bus, SCHED_PATH, SCHED_INTERFACE, "Mode", "GpuResource", NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to announce the pool's new settings on the bus: %m");
}

static int on_get_pool(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        Sched *s = userdata;
        BusDict d = {};
        int r;

        if (sd_bus_message_is_method_error(reply, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(reply);

                if (sd_bus_error_has_name(e, VGPU_ERROR_NO_SUCH_POOL))
                        log_pool(LOG_WARNING, s, "Pool %s is not in the configuration store; serving it %s until "
                                 "it is created there.", s->pool, pool_mode_to_string(s->mode));
                else
                        log_pool(LOG_NOTICE, s, "Pool %s: %s did not answer GetPool (%s); serving the pool %s until "
                                 "it does.", s->pool, VGPU_CONFIG_SERVICE, e && e->message ? e->message : "no answer",
                                 pool_mode_to_string(s->mode));
                return 0;
        }
        r = bus_dict_read(reply, &d);
        if (r < 0)
                return log_warning_errno(r, "Cannot read pool %s's record from %s: %m", s->pool, VGPU_CONFIG_SERVICE);
        pool_config_apply(s, &d, "from the configuration store");
        bus_dict_done(&d);
        return 0;
}

static int pool_config_read(Sched *s)
{
        int r = sd_bus_call_method_async(s->bus, NULL, VGPU_CONFIG_SERVICE, VGPU_CONFIG_PATH, VGPU_CONFIG_INTERFACE,
                                         "GetPool", on_get_pool, s, "s", s->pool);
        if (r < 0)
                return log_error_errno(r, "Failed to ask %s for pool %s: %m", VGPU_CONFIG_SERVICE, s->pool);
        return 0;
}

static int on_pool_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        Sched *s = userdata;
        const char *pool, *change;
        BusDict d = {};
        int r;

        r = sd_bus_message_read(msg, "ss", &pool, &change);
        if (r < 0)
                return log_warning_errno(r, "Malformed PoolChanged signal: %m");
        if (!streq(pool, s->pool))
                return 0;
        if (streq(change, "deleted")) {
                log_pool(LOG_WARNING, s, "Pool %s was deleted from the configuration store; keeping mode %s.",
                         s->pool, pool_mode_to_string(s->mode));
                return 0;
        }
        r = bus_dict_read(msg, &d);
        if (r < 0)
                return log_warning_errno(r, "Malformed PoolChanged signal for pool %s: %m", s->pool);
        pool_config_apply(s, &d, change);
        bus_dict_done(&d);
        return 0;
}

static int on_owner_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        Sched *s = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(msg, "sss", &name, &old_owner, &new_owner) < 0 || !streq(name, VGPU_CONFIG_SERVICE))
                return 0;
        if (isempty(new_owner)) {
                log_pool(LOG_NOTICE, s, "%s left the bus; pool %s keeps mode %s until it is back.",
                         VGPU_CONFIG_SERVICE, s->pool, pool_mode_to_string(s->mode));
                return 0;
        }
        return pool_config_read(s);
}

int pool_config_start(Sched *s)
{
        int r;

        r = sd_bus_match_signal(s->bus, NULL, VGPU_CONFIG_SERVICE, VGPU_CONFIG_PATH, VGPU_CONFIG_INTERFACE,
                                "PoolChanged", on_pool_changed, s);
        if (r >= 0)
                r = sd_bus_add_match(s->bus, NULL,
                                     "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                                     "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
                                     "arg0='" VGPU_CONFIG_SERVICE "'",
                                     on_owner_changed, s);
        if (r < 0)
                return log_error_errno(r, "Failed to subscribe to %s's signals: %m", VGPU_CONFIG_SERVICE);
        return pool_config_read(s);
}
