/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bus connection, a{sv} records and caller authorization. */
#include <grp.h>
#include <pwd.h>
#include <signal.h>

#include "bus-util.h"
#include "log.h"

int bus_open_system(sd_bus **ret)
{
        /* sd_bus_open_system() honours DBUS_SYSTEM_BUS_ADDRESS, which is how the services and tools reach a
         * private bus under vgpu-devstack. */
        return sd_bus_open_system(ret);
}

int bus_serve_object(sd_event *event, const char *path, const char *interface, const sd_bus_vtable *vtable,
                     void *userdata, sd_bus **ret)
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = bus_open_system(&bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m");
        r = sd_bus_add_object_vtable(bus, NULL, path, interface, vtable, userdata);
        if (r < 0)
                return log_error_errno(r, "Failed to publish %s: %m", path);
        r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
        r = sd_bus_set_exit_on_disconnect(bus, true);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the bus connection: %m");
        *ret = TAKE_PTR(bus);
        return 0;
}

int bus_claim_name(sd_bus *bus, const char *name, const char *what_else)
{
        int r = sd_bus_request_name(bus, name, 0);

        if (r == -EEXIST)
                return log_error_errno(r, "%s is already owned on the bus: another %s is running.", name, what_else);
        if (r < 0)
                return log_error_errno(r, "Failed to own %s (the bus policy allows only root): %m", name);
        return 0;
}

static int dict_append(sd_bus_message *m, const char *key, const char *sig, const void *value)
{
        int r;

        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r < 0)
                return r;
        r = sd_bus_message_append_basic(m, 's', key);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'v', sig);
        if (r < 0)
                return r;
        r = sd_bus_message_append_basic(m, sig[0], value);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

int bus_dict_append_string(sd_bus_message *m, const char *key, const char *value)
{
        return dict_append(m, key, "s", strempty(value));
}

int bus_dict_append_u32(sd_bus_message *m, const char *key, uint32_t value)
{
        return dict_append(m, key, "u", &value);
}

int bus_dict_append_u64(sd_bus_message *m, const char *key, uint64_t value)
{
        return dict_append(m, key, "t", &value);
}

int bus_dict_append_i32(sd_bus_message *m, const char *key, int32_t value)
{
        return dict_append(m, key, "i", &value);
}

int bus_dict_append_bool(sd_bus_message *m, const char *key, bool value)
{
        int b = value;

        return dict_append(m, key, "b", &b);
}

int bus_read_options(sd_bus_message *m, BusOptionHandler handler, void *userdata, sd_bus_error *error)
{
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key, *type;

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                r = sd_bus_message_peek_type(m, NULL, &type);
                if (r < 0)
                        return r;
                r = handler(m, key, type, userdata, error);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

int bus_get_caller(sd_bus_message *m, BusCaller *ret)
{
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        uid_t uid;
        pid_t pid = 0;
        int r;

        /* EUID and PID are what the bus daemon answers itself (GetConnectionCredentials' UnixUserID, from
         * the socket's SO_PEERCRED: the caller's effective uid when it connected; sd-bus files it as EUID).
         * Asking for more, e.g. the real UID or groups, would make sd-bus fill them in from /proc/PID, which
         * races with PID reuse and which a sandboxed service (ProtectProc=invisible) cannot read. */
        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_PID, &creds);
        if (r < 0)
                return r;
        r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                return r;
        (void)sd_bus_creds_get_pid(creds, &pid);
        *ret = (BusCaller){ .uid = uid, .pid = pid };
        return 0;
}

int bus_caller_is_admin(const BusCaller *caller, gid_t admin_gid)
{
        struct passwd pw, *pwp = NULL;
        char buf[4096];
        gid_t groups[256];
        int ngroups = (int)ELEMENTSOF(groups);
        int r;

        if (caller->uid == 0)
                return 1;
        if (admin_gid == (gid_t)-1)
                return 0;

        r = getpwuid_r(caller->uid, &pw, buf, sizeof(buf), &pwp);
        if (r != 0)
                return -r;
        if (!pwp)
                return 0; /* a uid with no account is in no group */
        if (pw.pw_gid == admin_gid)
                return 1;
        if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &ngroups) < 0)
                return -E2BIG; /* more than 256 groups: refuse rather than guess */
        for (int i = 0; i < ngroups; i++)
                if (groups[i] == admin_gid)
                        return 1;
        return 0;
}

int bus_authorize_admin(sd_bus_message *m, const char *admin_group, const char *action, BusCaller *ret,
                        sd_bus_error *error)
{
        struct group gr, *grp = NULL;
        char buf[4096];
        gid_t gid = (gid_t)-1;
        BusCaller caller;
        int r;

        r = bus_get_caller(m, &caller);
        if (r < 0)
                return sd_bus_error_setf(error, VGPU_ERROR_ACCESS_DENIED,
                                         "Could not determine who is calling (%s); refusing.", strerror(-r));
        *ret = caller;
        if (admin_group && getgrnam_r(admin_group, &gr, buf, sizeof(buf), &grp) == 0 && grp)
                gid = grp->gr_gid;
        r = bus_caller_is_admin(&caller, gid);
        if (r > 0)
                return 0;
        if (r < 0)
                log_warning_errno(r, "Failed to check group membership of uid %u: %m", (unsigned)caller.uid);
        log_notice("Refused %s() from uid %u (pid %u): not root and not in group '%s'.",
                   sd_bus_message_get_member(m), (unsigned)caller.uid, (unsigned)caller.pid, strempty(admin_group));
        if (admin_group)
                return sd_bus_error_setf(error, VGPU_ERROR_ACCESS_DENIED,
                                         "%s needs root or membership of group '%s' (caller uid %u).", action,
                                         admin_group, (unsigned)caller.uid);
        return sd_bus_error_setf(error, VGPU_ERROR_ACCESS_DENIED, "%s needs root (caller uid %u).", action,
                                 (unsigned)caller.uid);
}

static int entry_read_value(sd_bus_message *m, BusDictEntry *e)
{
        const char *contents;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'v', contents);
        if (r < 0)
                return r;

        switch (contents[0]) {
        case 's':
        case 'o': {
                const char *s;

                r = sd_bus_message_read_basic(m, contents[0], &s);
                if (r < 0)
                        return r;
                e->type = BUS_VALUE_STRING;
                e->str = strdup(s);
                if (!e->str)
                        return -ENOMEM;
                break;
        }
        case 'y': case 'q': case 'u': case 't': {
                uint64_t v = 0;
                union { uint8_t y; uint16_t q; uint32_t u; uint64_t t; } x = { 0 };

                r = sd_bus_message_read_basic(m, contents[0], &x);
                if (r < 0)
                        return r;
                v = contents[0] == 'y' ? x.y : contents[0] == 'q' ? x.q : contents[0] == 'u' ? x.u : x.t;
                e->type = BUS_VALUE_UINT;
                e->u = v;
                break;
        }
        case 'n': case 'i': case 'x': {
                union { int16_t n; int32_t i; int64_t x; } x = { 0 };

                r = sd_bus_message_read_basic(m, contents[0], &x);
                if (r < 0)
                        return r;
                e->type = BUS_VALUE_INT;
                e->i = contents[0] == 'n' ? x.n : contents[0] == 'i' ? x.i : x.x;
                break;
        }
        case 'b': {
                int b;

                r = sd_bus_message_read_basic(m, 'b', &b);
                if (r < 0)
                        return r;
                e->type = BUS_VALUE_BOOL;
                e->b = b;
                break;
        }
        case 'a':
                if (streq(contents, "as")) {
                        r = sd_bus_message_read_strv(m, &e->strv);
                        if (r < 0)
                                return r;
                        e->type = BUS_VALUE_STRV;
                        break;
                }
                __attribute__((fallthrough));
        default:
                r = sd_bus_message_skip(m, contents);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                return r < 0 ? r : 0; /* skipped */
        }
        r = sd_bus_message_exit_container(m);
        return r < 0 ? r : 1;
}

static void entry_done(BusDictEntry *e)
{
        free(e->key);
        free(e->str);
        strv_free(e->strv);
}

void bus_dict_done(BusDict *d)
{
        for (size_t i = 0; i < d->n; i++)
                entry_done(&d->entries[i]);
        d->entries = mfree(d->entries);
        d->n = 0;
}

int bus_dict_read(sd_bus_message *m, BusDict *ret)
{
        BusDict d = { 0 };
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        for (;;) {
                BusDictEntry e = { 0 };
                BusDictEntry *grown;
                const char *key;
                bool skipped;

                r = sd_bus_message_enter_container(m, 'e', "sv");
                if (r < 0)
                        goto fail;
                if (r == 0)
                        break;
                r = sd_bus_message_read_basic(m, 's', &key);
                if (r < 0)
                        goto fail;
                r = entry_read_value(m, &e);
                if (r < 0) {
                        entry_done(&e);
                        goto fail;
                }
                skipped = r == 0;
                r = sd_bus_message_exit_container(m);
                if (r < 0) {
                        entry_done(&e);
                        goto fail;
                }
                if (skipped)
                        continue;
                e.key = strdup(key);
                grown = realloc(d.entries, (d.n + 1) * sizeof(*d.entries));
                if (!e.key || !grown) {
                        entry_done(&e);
                        if (grown)
                                d.entries = grown;
                        r = -ENOMEM;
                        goto fail;
                }
                d.entries = grown;
                d.entries[d.n++] = e;
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                goto fail;
        *ret = d;
        return 0;
fail:
        bus_dict_done(&d);
        return r;
}

const BusDictEntry *bus_dict_get(const BusDict *d, const char *key)
{
        for (size_t i = 0; i < d->n; i++)
                if (streq(d->entries[i].key, key))
                        return &d->entries[i];
        return NULL;
}

bool bus_dict_get_bool(const BusDict *d, const char *key)
{
        const BusDictEntry *e = bus_dict_get(d, key);

        return e && e->type == BUS_VALUE_BOOL && e->b;
}

char **bus_dict_get_strv(const BusDict *d, const char *key)
{
        const BusDictEntry *e = bus_dict_get(d, key);

        return e && e->type == BUS_VALUE_STRV ? e->strv : NULL;
}

const char *bus_dict_get_string(const BusDict *d, const char *key)
{
        const BusDictEntry *e = bus_dict_get(d, key);

        return e && e->type == BUS_VALUE_STRING ? e->str : NULL;
}

uint64_t bus_dict_get_uint(const BusDict *d, const char *key)
{
        const BusDictEntry *e = bus_dict_get(d, key);

        return e && e->type == BUS_VALUE_UINT ? e->u : 0;
}

int64_t bus_dict_get_int(const BusDict *d, const char *key)
{
        const BusDictEntry *e = bus_dict_get(d, key);

        return e && e->type == BUS_VALUE_INT ? e->i : 0;
}

void bus_dict_array_free(BusDict *a, size_t n)
{
        for (size_t i = 0; i < n; i++)
                bus_dict_done(&a[i]);
        free(a);
}

int bus_dict_array_read(sd_bus_message *m, BusDict **ret, size_t *ret_n)
{
        BusDict *a = NULL;
        size_t n = 0;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "a{sv}");
        if (r < 0)
                return r;
        for (;;) {
                BusDict d;
                BusDict *grown;

                r = sd_bus_message_at_end(m, false);
                if (r < 0)
                        goto fail;
                if (r > 0)
                        break;
                r = bus_dict_read(m, &d);
                if (r < 0)
                        goto fail;
                grown = realloc(a, (n + 1) * sizeof(*a));
                if (!grown) {
                        bus_dict_done(&d);
                        r = -ENOMEM;
                        goto fail;
                }
                a = grown;
                a[n++] = d;
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                goto fail;
        *ret = a;
        *ret_n = n;
        return 0;
fail:
        bus_dict_array_free(a, n);
        return r;
}

int service_event_open(sd_event_signal_handler_t on_stop, void *userdata, sd_event **ret)
{
        sigset_t mask;
        int r;

        /* sd-event takes signals through a signalfd, which needs them blocked. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(negative_errno(), "Failed to block SIGTERM and SIGINT: %m");
        r = sd_event_default(ret);
        if (r < 0)
                return log_error_errno(r, "Failed to create the event loop: %m");
        if ((r = sd_event_add_signal(*ret, NULL, SIGTERM, on_stop, userdata)) < 0 ||
            (r = sd_event_add_signal(*ret, NULL, SIGINT, on_stop, userdata)) < 0)
                return log_error_errno(r, "Failed to watch SIGTERM and SIGINT: %m");
        return 0;
}
