/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-devstack: a private D-Bus bus and every vgpu service as ordinary processes, for development and
 * tests. This file reads the command line and runs the stack (stack.c). */
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>

#include "devstack.h"
#include "log.h"
#include "names.h"

#define EXIT_USAGE 2

static const char *arg_state_dir;
static const char *arg_admin_group;
static const char *arg_iommu_root;
static char *arg_iommu_root_storage; /* absolute: the services run from another directory */
static bool arg_quiet;
static char **arg_command;
/* The pools of a fresh store: one scheduler each unless --pools says otherwise. */
static char *arg_pools_storage[POOL_LIST_MAX + 1] = {(char *)"A", (char *)"B"};
static char *arg_pools_text;
static char *arg_without_storage[8];
static char *arg_without_text;

static void help(void)
{
        printf("Usage: vgpu-devstack --state-dir=DIR [OPTIONS] [-- COMMAND [ARGUMENT…]]\n"
               "\n"
               "Starts a private D-Bus bus and every vgpu service as ordinary processes, restarting a service\n"
               "that fails, then runs COMMAND with DBUS_SYSTEM_BUS_ADDRESS pointing at that bus and stops\n"
               "everything when it ends. Without COMMAND, prints the environment to reach the stack and runs\n"
               "until interrupted. The database in DIR is kept from one run to the next.\n"
               "\n"
               "Options:\n"
               "  --state-dir=DIR      where the stack keeps its database, logs and sockets (required;\n"
               "                       created when missing)\n"
               "  --admin-group=GROUP  pass --admin-group=GROUP to the services\n"
               "  --pools=A,B,…        start one scheduler (vgpu-schedd --pool=P) per pool (default: A,B,\n"
               "                       the pools of a fresh store); name every pool the store holds\n"
               "  --without=NAME,…     do not start these services (e.g. vgpu-ingestd, to run it by hand)\n"
               "  --iommu-root=DIR     vgpu-iommud reads (and bind-gpu writes) the system below DIR, a recorded\n"
               "                       tree such as test/data/iommu/intel-vtd, instead of this host's (give it\n"
               "                       a copy: binding writes into it)\n"
               "  -q --quiet           show only warnings and errors\n"
               "  -h --help            show this help\n"
               "  --version            show the version\n"
               "\n"
               "Exit status: COMMAND's (128+N if it died of signal N); without COMMAND, 0 after SIGINT or\n"
               "SIGTERM; 1 if the stack failed; 2 on a usage error.\n"
               "\n"
               "See vgpu-devstack(1).\n");
}

_printf_(1, 2) static int usage_error(const char *format, ...)
{
        va_list ap;

        fputs("vgpu-devstack: ", stderr);
        va_start(ap, format);
        vfprintf(stderr, format, ap);
        va_end(ap);
        fputs("\nTry 'vgpu-devstack --help' for more information.\n", stderr);
        return -EINVAL;
}

/* "A,B,C" into arg_pools_storage (pointing into a copy of the text); -EINVAL on a bad or repeated id. */
static int parse_pools(const char *text)
{
        size_t n = 0;

        free(arg_pools_text);
        arg_pools_text = strdup(text);
        if (!arg_pools_text)
                return -ENOMEM;
        for (char *save = NULL, *id = strtok_r(arg_pools_text, ",", &save); id; id = strtok_r(NULL, ",", &save)) {
                if (!pool_id_is_valid(id) || n >= POOL_LIST_MAX)
                        return -EINVAL;
                for (size_t k = 0; k < n; k++)
                        if (streq(arg_pools_storage[k], id))
                                return -EINVAL;
                arg_pools_storage[n++] = id;
        }
        arg_pools_storage[n] = NULL;
        return n > 0 ? 0 : -EINVAL;
}

/* "vgpu-ingestd,vgpu-schedd" into arg_without_storage (pointing into a copy of the text). Names are not
 * checked against the table: a name that matches nothing simply starts nothing less. */
static int parse_without(const char *text)
{
        size_t n = 0;

        free(arg_without_text);
        arg_without_text = strdup(text);
        if (!arg_without_text)
                return -ENOMEM;
        for (char *save = NULL, *w = strtok_r(arg_without_text, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
                if (n + 1 >= ELEMENTSOF(arg_without_storage))
                        return -EINVAL;
                arg_without_storage[n++] = w;
        }
        arg_without_storage[n] = NULL;
        return n > 0 ? 0 : -EINVAL;
}

/* Returns 1 to go on, 0 to exit successfully, -EINVAL on a usage error. */
static int parse_argv(int argc, char *argv[])
{
        enum { ARG_STATE_DIR = 0x100, ARG_ADMIN_GROUP, ARG_IOMMU_ROOT, ARG_POOLS, ARG_WITHOUT, ARG_VERSION };
        static const struct option options[] = {
                {"state-dir", required_argument, NULL, ARG_STATE_DIR},
                {"admin-group", required_argument, NULL, ARG_ADMIN_GROUP},
                {"iommu-root", required_argument, NULL, ARG_IOMMU_ROOT},
                {"pools", required_argument, NULL, ARG_POOLS},
                {"without", required_argument, NULL, ARG_WITHOUT},
                {"quiet", no_argument, NULL, 'q'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION},
                {},
        };
        int c;

        opterr = 0; /* our own messages */
        /* '+': stop at the first argument that is not an option, never permute COMMAND's options;
         * ':': tell a missing value from an unknown option. */
        while ((c = getopt_long(argc, argv, "+:hq", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("vgpu-devstack %s\n", VGPU_VERSION);
                        return 0;
                case ARG_STATE_DIR:
                        if (isempty(optarg))
                                return usage_error("--state-dir needs a directory.");
                        arg_state_dir = optarg;
                        break;
                case ARG_ADMIN_GROUP:
                        arg_admin_group = optarg;
                        break;
                case ARG_IOMMU_ROOT:
                        if (isempty(optarg))
                                return usage_error("--iommu-root needs a directory.");
                        free(arg_iommu_root_storage);
                        arg_iommu_root_storage = realpath(optarg, NULL);
                        if (!arg_iommu_root_storage)
                                return usage_error("Invalid --iommu-root '%s': %s.", optarg, strerror(errno));
                        arg_iommu_root = arg_iommu_root_storage;
                        break;
                case ARG_WITHOUT:
                        if (parse_without(optarg) < 0)
                                return usage_error("Invalid --without '%s': expected service names separated by "
                                                   "commas (at most %zu).", optarg,
                                                   ELEMENTSOF(arg_without_storage) - 1);
                        break;
                case ARG_POOLS:
                        if (parse_pools(optarg) < 0)
                                return usage_error("Invalid --pools '%s': expected pool ids separated by commas "
                                                   "(at most %d, each a letter followed by letters, digits or '_').",
                                                   optarg, POOL_LIST_MAX);
                        break;
                case 'q':
                        arg_quiet = true;
                        break;
                case ':':
                        return usage_error("Option '%s' needs a value.", argv[optind - 1]);
                case '?':
                        if (optopt > 0)
                                return usage_error("Unknown option '-%c'.", optopt);
                        return usage_error("Unknown option '%s'.", argv[optind - 1]);
                default:
                        return usage_error("Unexpected option '%s'.", argv[optind - 1]);
                }

        if (optind < argc) {
                if (!streq(argv[optind - 1], "--"))
                        return usage_error("Unexpected argument '%s'; put COMMAND after '--'.", argv[optind]);
                arg_command = argv + optind;
        }
        if (!arg_state_dir)
                return usage_error("--state-dir=DIR is required.");
        return 1;
}

/* Files opened later must not land on fd 0, 1 or 2 if devstack was started with them closed: a child's
 * dup2() onto its stdio would then clobber them. open() takes the lowest free fd, which is `fd` here
 * since the lower ones are open by then. */
static int ensure_stdio(void)
{
        for (int fd = 0; fd <= 2; fd++)
                if (fcntl(fd, F_GETFD) < 0 && errno == EBADF && open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) != fd)
                        return negative_errno();
        return 0;
}

int main(int argc, char *argv[])
{
        Stack stack;
        int r, status;

        log_setup("vgpu-devstack");
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;
        if (arg_quiet && log_get_max_level() > LOG_NOTICE)
                log_set_max_level(LOG_NOTICE);
        r = ensure_stdio();
        if (r < 0) {
                log_error_errno(r, "Failed to open /dev/null: %m");
                return EXIT_FAILURE;
        }

        r = stack_setup(&stack, &(StackOptions){.state_dir = arg_state_dir,
                                                .admin_group = arg_admin_group,
                                                .iommu_root = arg_iommu_root,
                                                .pools = arg_pools_storage,
                                                .without = arg_without_storage,
                                                .command = arg_command});
        status = r < 0 ? EXIT_FAILURE : stack_run(&stack);
        stack_done(&stack);
        free(arg_pools_text);
        free(arg_without_text);
        free(arg_iommu_root_storage);
        return status;
}
