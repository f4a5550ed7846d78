/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-xen-channel: the toolstack's part of the vgpu split driver. Creates, removes and shows a domain's
 * frontend directory (device/vgpu/0, the guest's) and backend directory (backend/vgpu/N/0, dom0's) in
 * xenstore, as xl or XAPI does for a vif or vbd. The XAPI VM-start hook and the system tests call it. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "transport/xen.h"
#include "vgpu-util.h"

static uint32_t arg_domid;
static const char *arg_vm_uuid;

typedef struct Verb {
        const char *name;
        int (*run)(const VgpuXenOps *ops, VgpuXs *xs);
} Verb;

static void help(void)
{
        printf("Usage: vgpu-xen-channel VERB --domid=N [--vm-uuid=UUID]\n"
               "\n"
               "Creates or removes the xenstore directories of a domain's vgpu channel (run in domain 0).\n"
               "\n"
               "Verbs:\n"
               "  create --domid=N --vm-uuid=UUID  /local/domain/N/device/vgpu/0 (owner N, dom0 may read)\n"
               "                                   and /local/domain/0/backend/vgpu/N/0 (owner dom0, N may\n"
               "                                   read) with their first keys, both in state Initialising\n"
               "  destroy --domid=N                remove both\n"
               "  show --domid=N                   print both, with their permissions\n"
               "\n"
               "Options:\n"
               "  --domid=N        the guest's domain id (1 … 32751)\n"
               "  --vm-uuid=UUID   the VM's uuid as registered with vgpu (vgpu-admin register-vm --uuid)\n"
               "  -h --help        this text\n"
               "\n"
               "Exit status: 0 done, 1 failed, 2 usage. See vgpu-xen-channel(8) and docs/xen.md.\n");
}

static int verb_create(const VgpuXenOps *ops, VgpuXs *xs)
{
        char frontend[96], backend[96];
        int r;

        if (!arg_vm_uuid) {
                fprintf(stderr, "vgpu-xen-channel: create needs --vm-uuid=UUID.\n");
                return -EINVAL;
        }
        r = vgpu_xen_channel_create(ops, xs, arg_domid, arg_vm_uuid);
        (void)vgpu_xen_frontend_path(arg_domid, frontend, sizeof(frontend));
        (void)vgpu_xen_backend_path(arg_domid, backend, sizeof(backend));
        if (r == -EEXIST)
                fprintf(stderr,
                        "vgpu-xen-channel: domain %u already has a vgpu channel (%s or %s exists); "
                        "destroy it first.\n",
                        arg_domid, frontend, backend);
        else if (r < 0)
                fprintf(stderr, "vgpu-xen-channel: cannot create the vgpu channel of domain %u: %s\n", arg_domid,
                        strerror(-r));
        else
                printf("Created %s and %s (VM %s).\n", frontend, backend, arg_vm_uuid);
        return r < 0 ? -EIO : 0;
}

static int verb_destroy(const VgpuXenOps *ops, VgpuXs *xs)
{
        int r = vgpu_xen_channel_destroy(ops, xs, arg_domid);

        if (r == -ENOENT)
                fprintf(stderr, "vgpu-xen-channel: domain %u has no vgpu channel.\n", arg_domid);
        else if (r < 0)
                fprintf(stderr, "vgpu-xen-channel: cannot remove the vgpu channel of domain %u: %s\n", arg_domid,
                        strerror(-r));
        else
                printf("Removed the vgpu channel of domain %u.\n", arg_domid);
        return r < 0 ? -EIO : 0;
}

/* xenstore-ls -p's letters: n none, r read, w write, b both; the first entry is the owner. */
static void print_perms(const VgpuXenOps *ops, VgpuXs *xs, const char *path)
{
        static const char letters[] = "nrwb";
        VgpuXsPerm *perms = NULL;
        unsigned n = 0;

        if (ops->xs_get_permissions(xs, path, &perms, &n) < 0)
                return;
        printf("  (");
        for (unsigned i = 0; i < n; i++)
                printf("%s%c%u", i ? "," : "", letters[perms[i].perms & 3], perms[i].domid);
        printf(")");
        free(perms);
}

static int show_dir(const VgpuXenOps *ops, VgpuXs *xs, const char *dir)
{
        _cleanup_free_ char **names = NULL;
        unsigned n = 0;
        int r;

        r = ops->xs_directory(xs, dir, &names, &n);
        if (r < 0) {
                printf("%s: %s\n", dir, r == -ENOENT ? "absent" : strerror(-r));
                return r;
        }
        printf("%s", dir);
        print_perms(ops, xs, dir);
        printf("\n");
        for (unsigned i = 0; i < n; i++) {
                _cleanup_free_ char *value = NULL;
                char path[256];

                snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
                r = ops->xs_read(xs, VGPU_XS_NO_TRANSACTION, path, &value);
                printf("  %s = %s", names[i], r < 0 ? "(unreadable)" : value);
                print_perms(ops, xs, path);
                printf("\n");
        }
        return 0;
}

static int verb_show(const VgpuXenOps *ops, VgpuXs *xs)
{
        char frontend[96], backend[96];
        int a, b;

        (void)vgpu_xen_frontend_path(arg_domid, frontend, sizeof(frontend));
        (void)vgpu_xen_backend_path(arg_domid, backend, sizeof(backend));
        a = show_dir(ops, xs, frontend);
        b = show_dir(ops, xs, backend);
        if (a == -ENOENT && b == -ENOENT) {
                fprintf(stderr, "vgpu-xen-channel: domain %u has no vgpu channel.\n", arg_domid);
                return -EIO;
        }
        return 0;
}

static const Verb verbs[] = {
        {"create", verb_create},
        {"destroy", verb_destroy},
        {"show", verb_show},
};

static int parse_argv(int argc, char *argv[], const Verb **ret)
{
        static const struct option options[] = {
                {"domid", required_argument, NULL, 'd'},
                {"vm-uuid", required_argument, NULL, 'u'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        char uuid[37];
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case 'd':
                        if (vgpu_xen_parse_u32(optarg, VGPU_XEN_DOMID_MAX, &arg_domid) < 0 || arg_domid == 0) {
                                fprintf(stderr,
                                        "vgpu-xen-channel: --domid: '%s' is not a guest domain id "
                                        "(1 … %u).\n",
                                        optarg, VGPU_XEN_DOMID_MAX);
                                return -EINVAL;
                        }
                        break;
                case 'u':
                        if (vgpu_xen_uuid_normalize(optarg, uuid) < 0) {
                                fprintf(stderr,
                                        "vgpu-xen-channel: --vm-uuid: '%s' is not a uuid "
                                        "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).\n",
                                        optarg);
                                return -EINVAL;
                        }
                        arg_vm_uuid = optarg;
                        break;
                default:
                        return -EINVAL;
                }
        if (optind + 1 != argc) {
                fprintf(stderr, "vgpu-xen-channel: expected one verb (create, destroy, show); see --help.\n");
                return -EINVAL;
        }
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(argv[optind], verbs[i].name))
                        *ret = &verbs[i];
        if (!*ret) {
                fprintf(stderr, "vgpu-xen-channel: unknown verb '%s' (create, destroy, show).\n", argv[optind]);
                return -EINVAL;
        }
        if (arg_domid == 0) {
                fprintf(stderr, "vgpu-xen-channel: %s needs --domid=N.\n", (*ret)->name);
                return -EINVAL;
        }
        return 1;
}

int main(int argc, char *argv[])
{
        const VgpuXenOps *ops = vgpu_xen_ops();
        const Verb *verb = NULL;
        VgpuXs *xs = NULL;
        int r;

        r = parse_argv(argc, argv, &verb);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        if (!ops) {
                fprintf(stderr, "vgpu-xen-channel: this build has no libxen (install libxen-dev and rebuild).\n");
                return 1;
        }
        r = ops->xs_open(&xs);
        if (r < 0) {
                fprintf(stderr,
                        "vgpu-xen-channel: cannot open xenstore: %s (run it in domain 0, as root, with "
                        "xenstored running).\n",
                        strerror(-r));
                return 1;
        }
        r = verb->run(ops, xs);
        ops->xs_close(xs);
        return r == -EINVAL ? 2 : r < 0 ? 1 : 0;
}
