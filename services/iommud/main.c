/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-iommud: start-up, the event loop and readiness of the IOMMU service (org.vgpu.Iommu1). */
#include <getopt.h>
#include <systemd/sd-daemon.h>

#include "iommud.h"
#include "log.h"

static char *arg_root;
static char *arg_admin_group;
static PciIdList arg_test_allow;
static bool arg_no_config;

static void help(void)
{
        printf("Usage: vgpu-iommud [OPTIONS]\n"
               "\n"
               "The vgpu IOMMU service: reports whether the host's IOMMU confines its GPUs (with the evidence),\n"
               "finds the GPUs and their IOMMU groups, binds a GPU's whole group to vfio-pci (Linux/KVM) or\n"
               "pciback (Xen), watches the kernel log or the hypervisor's console for IOMMU faults, and records\n"
               "each VM's IOMMU domain in the configuration store. Served on the system bus as org.vgpu.Iommu1.\n"
               "\n"
               "Options:\n"
               "  --root=DIR                 read sysfs, procfs and the logs below DIR (default: $VGPU_IOMMU_ROOT,\n"
               "                             else /); a recorded tree of a real machine in tests\n"
               "  --test-allow-pci-id=VVVV:DDDD\n"
               "                             for tests only: treat devices with this vendor:device ID as GPUs\n"
               "                             (e.g. QEMU's edu device, 1234:11e8); may repeat; never on a host\n"
               "  --no-config                do not follow " VGPU_CONFIG_SERVICE " (no VM IOMMU records)\n"
               "  --admin-group=GROUP        members may bind GPUs, acknowledge faults and change boot settings,\n"
               "                             besides root (default: " VGPU_ADMIN_GROUP_DEFAULT "; empty: root only)\n"
               "  -h --help                  show this help\n"
               "  --version                  show the version\n"
               "\n"
               "See vgpu-iommud(8).\n");
}

static int set_string(char **dst, const char *value)
{
        return free_and_strdup(dst, value) < 0 ? log_oom() : 0;
}

static int add_test_id(const char *s)
{
        PciId id;

        if (pci_id_parse(s, &id) < 0)
                return log_error_errno(-EINVAL, "--test-allow-pci-id needs VVVV:DDDD (four hexadecimal digits each), "
                                       "not '%s'.", s);
        return pci_id_list_add(&arg_test_allow, id) < 0 ? log_oom() : 0;
}

/* Returns 1 to go on, 0 to exit successfully, negative on a usage error. */
static int parse_argv(int argc, char *argv[])
{
        enum { ARG_ROOT = 0x100, ARG_TEST_ALLOW, ARG_NO_CONFIG, ARG_ADMIN_GROUP, ARG_VERSION };
        static const struct option options[] = {
                { "root", required_argument, NULL, ARG_ROOT },
                { "test-allow-pci-id", required_argument, NULL, ARG_TEST_ALLOW },
                { "no-config", no_argument, NULL, ARG_NO_CONFIG },
                { "admin-group", required_argument, NULL, ARG_ADMIN_GROUP },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        const char *env;
        int c, r;

        r = set_string(&arg_admin_group, VGPU_ADMIN_GROUP_DEFAULT);
        while (r >= 0 && (c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("vgpu-iommud %s\n", VGPU_VERSION);
                        return 0;
                case ARG_ROOT:
                        if (isempty(optarg))
                                return log_error_errno(-EINVAL, "--root needs a directory.");
                        r = set_string(&arg_root, optarg);
                        break;
                case ARG_TEST_ALLOW:
                        r = add_test_id(optarg);
                        break;
                case ARG_NO_CONFIG:
                        arg_no_config = true;
                        break;
                case ARG_ADMIN_GROUP:
                        r = set_string(&arg_admin_group, optarg);
                        break;
                default:
                        return -EINVAL;
                }
        }
        if (r < 0)
                return r;
        if (optind < argc)
                return log_error_errno(-EINVAL, "Unexpected argument '%s'; see --help.", argv[optind]);
        if (arg_root)
                return 1;
        env = getenv("VGPU_IOMMU_ROOT");
        r = set_string(&arg_root, isempty(env) ? "/" : env);
        return r < 0 ? r : 1;
}

static int setup_event(Manager *m)
{
        return service_event_open(NULL, NULL, &m->event);
}

static int setup_host(Manager *m)
{
        int r;

        r = sysroot_new(arg_root, &m->host.root);
        if (r < 0)
                return log_error_errno(r, "Cannot use %s as the root to read the system below: %m", arg_root);
        m->host.platform = platform_detect(m->host.root);
        m->host.test_allow = arg_test_allow;
        arg_test_allow = (PciIdList){ 0 };
        for (size_t i = 0; i < m->host.test_allow.n; i++)
                log_warning("TEST-ONLY SETTING: devices %04x:%04x are treated as GPUs (--test-allow-pci-id); never use "
                            "this on a host.", m->host.test_allow.ids[i].vendor, m->host.test_allow.ids[i].device);
        r = xen_facts_new(m->host.root, &m->xen);
        if (r < 0)
                return log_error_errno(r, "Cannot set up the Xen facts: %m");
        return 0;
}

static int connect_bus(Manager *m)
{
        int r;

        r = bus_serve_object(m->event, VGPU_IOMMU_PATH, VGPU_IOMMU_INTERFACE, iommu_vtable, m, &m->bus);
        if (r < 0)
                return r;
        /* Subscribed before the name is ours and before the first read: nothing configd says is missed. */
        r = mirror_start(m);
        if (r < 0)
                return r;
        return bus_claim_name(m->bus, VGPU_IOMMU_SERVICE, "vgpu-iommud");
}

static int run(int argc, char *argv[])
{
        Manager m = { .use_config = true };
        int r;

        log_setup("vgpu-iommud");
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;
        m.use_config = !arg_no_config;
        m.admin_group = isempty(arg_admin_group) ? NULL : arg_admin_group;
        r = setup_host(&m);
        if (r >= 0)
                r = setup_event(&m);
        if (r >= 0)
                r = connect_bus(&m);
        if (r >= 0)
                r = fault_watch_start(m.event, &m.host, m.xen, 0, manager_on_fault, &m, &m.watch);
        if (r < 0)
                goto finish;
        log_info("Serving %s for the %s system below %s; changes allowed for root%s%s.", VGPU_IOMMU_SERVICE,
                 platform_to_string(m.host.platform), m.host.root->path, m.admin_group ? " and group " : "",
                 strempty(m.admin_group));
        (void)sd_notifyf(false, "READY=1\nSTATUS=Serving %s (%s)", m.host.root->path,
                         platform_to_string(m.host.platform));
        r = sd_event_loop(m.event);
        (void)sd_notify(false, "STOPPING=1");
        if (r < 0)
                log_error_errno(r, "Event loop failed: %m");
        else if (r > 0)
                log_error("Lost the bus connection; exiting.");
        else
                log_info("Stopped.");
finish:
        m.watch = fault_watch_free(m.watch);
        mirror_done(&m);
        sd_bus_flush_close_unref(m.bus);
        sd_event_unref(m.event);
        m.xen = xen_facts_free(m.xen);
        pci_id_list_done(&m.host.test_allow);
        sysroot_free(m.host.root);
        return r;
}

int main(int argc, char *argv[])
{
        int r = run(argc, argv);

        free(arg_root);
        free(arg_admin_group);
        pci_id_list_done(&arg_test_allow);
        if (r == -EINVAL)
                return 2;
        return r < 0 || r > 0 ? 1 : 0;
}
