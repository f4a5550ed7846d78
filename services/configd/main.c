/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-configd: start-up, the event loop and readiness of the configuration store service. */
#include <getopt.h>
#include <systemd/sd-daemon.h>

#include "config-bus.h"
#include "log.h"

static char *arg_database;
static char *arg_admin_group;

static void help(void)
{
        printf("Usage: vgpu-configd [OPTIONS]\n"
               "\n"
               "The vgpu configuration store: VMs, pools, priorities, quotas and IOMMU policy, kept in an SQLite\n"
               "database and served on the system bus as org.vgpu.Config1.\n"
               "\n"
               "Options:\n"
               "  --database=PATH      the database file (default: $STATE_DIRECTORY/config.db, else\n"
               "                       " VGPU_STATE_DIR_DEFAULT "/config.db); created when missing\n"
               "  --admin-group=GROUP  members may change the configuration, besides root\n"
               "                       (default: " VGPU_ADMIN_GROUP_DEFAULT "; empty: root only)\n"
               "  -h --help            show this help\n"
               "  --version            show the version\n"
               "\n"
               "See vgpu-configd(8).\n");
}

static int set_string(char **dst, const char *value)
{
        return free_and_strdup(dst, value) < 0 ? log_oom() : 0;
}

static int default_database(void)
{
        const char *dir = getenv("STATE_DIRECTORY");
        char path[4096];

        if (!isempty(dir)) {
                /* systemd passes a colon-separated list when a unit has several state directories. */
                size_t n = strcspn(dir, ":");
                snprintf(path, sizeof(path), "%.*s/config.db", (int)n, dir);
        } else
                snprintf(path, sizeof(path), "%s/config.db", VGPU_STATE_DIR_DEFAULT);
        return set_string(&arg_database, path);
}

/* Returns 1 to go on, 0 to exit successfully, negative on a usage error. */
static int parse_argv(int argc, char *argv[])
{
        enum { ARG_DATABASE = 0x100, ARG_ADMIN_GROUP, ARG_VERSION };
        static const struct option options[] = {
                { "database", required_argument, NULL, ARG_DATABASE },
                { "admin-group", required_argument, NULL, ARG_ADMIN_GROUP },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        int c, r;

        r = set_string(&arg_admin_group, VGPU_ADMIN_GROUP_DEFAULT);
        if (r < 0)
                return r;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("vgpu-configd %s\n", VGPU_VERSION);
                        return 0;
                case ARG_DATABASE:
                        if (isempty(optarg))
                                return log_error_errno(-EINVAL, "--database needs a path.");
                        r = set_string(&arg_database, optarg);
                        break;
                case ARG_ADMIN_GROUP:
                        r = set_string(&arg_admin_group, optarg);
                        break;
                default:
                        return -EINVAL;
                }
                if (r < 0)
                        return r;
        }
        if (optind < argc)
                return log_error_errno(-EINVAL, "Unexpected argument '%s'; see --help.", argv[optind]);
        if (!arg_database)
                return default_database();
        return 1;
}

static int connect_bus(Manager *m)
{
        int r;

        r = bus_serve_object(m->event, VGPU_CONFIG_PATH, VGPU_CONFIG_INTERFACE, config_vtable, m, &m->bus);
        if (r < 0)
                return r;
        return bus_claim_name(m->bus, VGPU_CONFIG_SERVICE, "vgpu-configd");
}

static int run(int argc, char *argv[])
{
        Manager m = { 0 };
        uint32_t vms = 0;
        int r;

        log_setup("vgpu-configd");
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;
        if (!isempty(arg_admin_group))
                m.admin_group = arg_admin_group;

        r = store_open(arg_database, &m.store);
        if (r < 0) {
                log_error_errno(r, "Cannot use the configuration database %s: %m", arg_database);
                goto finish;
        }
        (void)store_count_vms(m.store, &vms);

        r = service_event_open(NULL, NULL, &m.event);
        if (r < 0)
                goto finish;
        r = connect_bus(&m);
        if (r < 0)
                goto finish;

        log_info("Serving %s from %s (schema version %u, %" PRIu32 " VMs); changes allowed for root%s%s.",
                 VGPU_CONFIG_SERVICE, arg_database, store_schema_version(m.store), vms,
                 m.admin_group ? " and group " : "", strempty(m.admin_group));
        (void)sd_notifyf(false, "READY=1\nSTATUS=Serving %" PRIu32 " VMs from %s", vms, arg_database);

        r = sd_event_loop(m.event);
        (void)sd_notify(false, "STOPPING=1");
        if (r < 0)
                log_error_errno(r, "Event loop failed: %m");
        else if (r > 0)
                log_error("Lost the bus connection; exiting.");
        else
                log_info("Stopped.");
finish:
        sd_bus_flush_close_unref(m.bus);
        sd_event_unref(m.event);
        store_free(m.store);
        return r;
}

int main(int argc, char *argv[])
{
        int r = run(argc, argv);

        free(arg_database);
        free(arg_admin_group);
        if (r == -EINVAL)
                return 2;
        return r < 0 || r > 0 ? 1 : 0;
}
