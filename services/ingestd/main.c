/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-ingestd: start-up, the event loop, readiness and shutdown of the service that owns every guest
 * channel (docs/ingestd.md). */
#include <getopt.h>
#include <signal.h>
#include <sys/stat.h>
#include <inttypes.h>
#include <systemd/sd-daemon.h>

#include "channel.h"
#include "ingestd.h"
#include "log.h"
#include "pool-link.h"
#include "transport/poller.h"

static char *arg_admin_group;
static char *arg_runtime_dir;
static XenMode arg_xen = XEN_MODE_AUTO;

static void help(void)
{
        printf("Usage: vgpu-ingestd [OPTIONS]\n"
               "\n"
               "The vgpu ingest service: owns every guest channel. It creates $VGPU_RUNTIME_DIR/vm/N.sock for each\n"
               "VM registered with org.vgpu.Config1, checks every request a guest sends, stamps it with the VM's\n"
               "identity and priority and hands it to its pool's scheduler. Served as org.vgpu.Ingest1.\n"
               "\n"
               "Options:\n"
               "  --runtime-dir=DIR    where vm/, sched/ and stub.sock live (default: $VGPU_RUNTIME_DIR, else\n"
               "                       $RUNTIME_DIRECTORY, else " VGPU_RUNTIME_DIR_DEFAULT ")\n"
               "  --admin-group=GROUP  members may disconnect guests, besides root\n"
               "                       (default: " VGPU_ADMIN_GROUP_DEFAULT "; empty: root only)\n"
               "  --xen=auto|on|off    serve Xen grant channels (auto: in dom0 when xenstore opens)\n"
               "  -h --help            show this help\n"
               "  --version            show the version\n"
               "\n"
               "See vgpu-ingestd(8).\n");
}

static int set_string(char **dst, const char *value)
{
        return free_and_strdup(dst, value) < 0 ? log_oom() : 0;
}

static int parse_argv(int argc, char *argv[])
{
        enum { ARG_ADMIN_GROUP = 0x100, ARG_RUNTIME_DIR, ARG_VERSION, ARG_XEN };
        static const struct option options[] = {
                { "admin-group", required_argument, NULL, ARG_ADMIN_GROUP },
                { "xen", required_argument, NULL, ARG_XEN },
                { "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        const char *dir;
        int c, r;

        r = set_string(&arg_admin_group, VGPU_ADMIN_GROUP_DEFAULT);
        while (r >= 0 && (c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("vgpu-ingestd %s\n", VGPU_VERSION);
                        return 0;
                case ARG_ADMIN_GROUP:
                        r = set_string(&arg_admin_group, optarg);
                        break;
                case ARG_XEN:
                        r = xen_mode_from_string(optarg);
                        if (r < 0)
                                return log_error_errno(r, "--xen: '%s' is not auto, on or off.", optarg);
                        arg_xen = r;
                        break;
                case ARG_RUNTIME_DIR:
                        if (isempty(optarg))
                                return log_error_errno(-EINVAL, "--runtime-dir needs a path.");
                        r = set_string(&arg_runtime_dir, optarg);
                        break;
                default:
                        return -EINVAL;
                }
        }
        if (r < 0)
                return r;
        if (optind < argc)
                return log_error_errno(-EINVAL, "Unexpected argument '%s'; see --help.", argv[optind]);
        if (arg_runtime_dir)
                return 1;
        dir = getenv("VGPU_RUNTIME_DIR");
        if (isempty(dir))
                dir = getenv("RUNTIME_DIRECTORY");
        r = set_string(&arg_runtime_dir, isempty(dir) ? VGPU_RUNTIME_DIR_DEFAULT : dir);
        return r < 0 ? r : 1;
}

static int make_dirs(Manager *m)
{
        if (asprintf(&m->vm_dir, "%s/vm", m->runtime_dir) < 0 || asprintf(&m->sched_dir, "%s/sched", m->runtime_dir) < 0)
                return log_oom();
        /* vm/ is traversable by all (each socket is 0600 and carries its own owner's rights). */
        if (mkdir(m->runtime_dir, 0755) < 0 && errno != EEXIST)
                return log_error_errno(negative_errno(), "Failed to create %s: %m", m->runtime_dir);
        if (mkdir(m->vm_dir, 0755) < 0 && errno != EEXIST)
                return log_error_errno(negative_errno(), "Failed to create %s: %m", m->vm_dir);
        return 0;
}

static int connect_bus(Manager *m)
{
        int r;

        r = bus_serve_object(m->event, VGPU_INGEST_PATH, VGPU_INGEST_INTERFACE, ingest_vtable, m, &m->bus);
        if (r < 0)
                return r;
        /* Subscribed before the name is ours and before the first read: nothing configd says is missed. */
        r = mirror_start(m);
        if (r < 0)
                return r;
        return bus_claim_name(m->bus, VGPU_INGEST_SERVICE, "vgpu-ingestd");
}

/* SIGTERM: every guest learns CHANNEL_CLOSED from its header, every socket goes. */
static void shutdown_channels(Manager *m)
{
        size_t connected = 0;

        for (size_t i = 0; i < m->vms.n; i++)
                if (m->vms.vms[i]->channel) {
                        channel_close(m->vms.vms[i]->channel, VGPU_STATUS_CHANNEL_CLOSED, "vgpu-ingestd is stopping");
                        connected++;
                }
        log_info("Closed %zu channels; removing %zu VM sockets.", connected, m->vms.n);
        vm_table_clear(&m->vms);
}

static int setup_event(Manager *m)
{
        int r;

        r = service_event_open(NULL, NULL, &m->event);
        if (r < 0)
                return r;
        /* A guest that dies mid-write must not kill us with SIGPIPE; sends use MSG_NOSIGNAL, this is the belt. */
        signal(SIGPIPE, SIG_IGN);
        return 0;
}

static int run(int argc, char *argv[])
{
        Manager m = { .next_generation = 0 };
        int r;

        log_setup("vgpu-ingestd");
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;
        m.runtime_dir = arg_runtime_dir;
        m.admin_group = isempty(arg_admin_group) ? NULL : arg_admin_group;
        m.xen_mode = arg_xen;
        r = make_dirs(&m);
        if (r >= 0)
                r = setup_event(&m);
        if (r >= 0)
                r = connect_bus(&m);
        if (r >= 0)
                r = stub_listener_start(&m);
        if (r < 0)
                goto finish;
        log_info("Started; VM sockets in %s, schedulers expected in %s; disconnecting allowed for root%s%s.",
                 m.vm_dir, m.sched_dir, m.admin_group ? " and group " : "", strempty(m.admin_group));

        r = vgpu_poller_spin_usec_from_environment(&m.spin_usec);
        if (r < 0) {
                log_error_errno(r, "Invalid VGPU_SPIN_USEC: %m");
                goto finish;
        }
        log_info("Waiting for guests by %s.", m.spin_usec ? "spinning, then blocking" : "blocking");
        r = manager_run(&m);
        (void)sd_notify(false, "STOPPING=1");
        if (r < 0)
                log_error_errno(r, "Event loop failed: %m");
        else if (r > 0)
                log_error("Lost the bus connection; exiting.");
finish:
        m.stopping = true;
        shutdown_channels(&m);
        xen_stop(&m); /* after the channels: each Xen device is told Closed */
        stub_listener_stop(&m);
        manager_free_links(&m);
        sd_bus_flush_close_unref(m.bus);
        sd_event_unref(m.event);
        free(m.vm_dir);
        free(m.channels);
        free(m.sched_dir);
        if (r == 0)
                log_info("Stopped.");
        return r;
}

int main(int argc, char *argv[])
{
        int r = run(argc, argv);

        free(arg_admin_group);
        free(arg_runtime_dir);
        if (r == -EINVAL)
                return 2;
        return r < 0 || r > 0 ? 1 : 0;
}
