/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-executor: one VM's GPU work, in a process of its own (its own GPU address space and fault
 * domain). Started by the pool's scheduler with an inherited control socket: receives the host link and
 * the VM's region on it, then serves the link until SIGTERM or until the scheduler hangs up. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>

#include "executor.h"
#include "log.h"
#include "names.h"
#include "serve.h"

static uint32_t arg_vm_id;
static char arg_pool[POOL_ID_MAX + 1];
static uint64_t arg_memory_quota;
static bool arg_memory_quota_set;
static int arg_control_fd = -1;
static BackendChoice arg_backend = BACKEND_AUTO;
static PoolMode arg_pool_mode = POOL_MODE_ISOLATED; /* the pool's mode when the scheduler started us */
static char *arg_device;             /* the pool's GPU: PCI bus id or GPU-uuid; NULL: the first device */
static uint32_t arg_sm_limit[3];     /* per priority (high, medium, low); 0: no limit */
static bool arg_allow_guest_modules; /* in a shared pool too (the administrator's override) */

static void help(void)
{
        printf("vgpu-executor --vm-id=N --pool=P --memory-quota=BYTES --control-fd=FD [--backend=auto|cpu|cuda]\n"
               "              [--pool-mode=MODE] [--allow-guest-modules] [--device=GPU]\n"
               "              [--sm-limits=HIGH,MEDIUM,LOW]\n\n"
               "Executes one VM's GPU commands. Started by the pool's scheduler (vgpu-schedd), which passes\n"
               "the control socket FD; not meant to be run by hand.\n\n"
               "  -h --help              Show this help\n"
               "     --version           Show the version\n"
               "     --vm-id=N           The VM this executor serves\n"
               "     --pool=P            Its pool (for the log)\n"
               "     --pool-mode=MODE    The pool's mode: isolated (default) or shared; a shared pool's\n"
               "                         executor runs vgpu.builtin only and refuses guests' own modules\n"
               "     --allow-guest-modules\n"
               "                         Load guests' own modules in a shared pool too\n"
               "     --memory-quota=SIZE Device memory the VM may allocate (\"512M\", \"8G\"; 0: none)\n"
               "     --control-fd=FD     The inherited AF_UNIX SOCK_SEQPACKET socket from the scheduler\n"
               "     --backend=B         auto (CUDA plugin if it loads, else CPU), cpu, or cuda\n"
               "     --device=GPU        The pool's GPU: a PCI bus id or GPU-uuid (default: the first)\n"
               "     --sm-limits=H,M,L   SMs a launch of each priority may use (MPS only; 0: no limit)\n");
}

static int parse_fd(const char *s)
{
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < 0 || v > INT32_MAX)
                return -EINVAL;
        return (int)v;
}

enum {
        ARG_VERSION = 0x100,
        ARG_VM_ID,
        ARG_POOL,
        ARG_MEMORY_QUOTA,
        ARG_CONTROL_FD,
        ARG_BACKEND,
        ARG_POOL_MODE,
        ARG_DEVICE,
        ARG_SM_LIMITS,
        ARG_ALLOW_GUEST_MODULES,
};

/* "H,M,L": three SM counts, each 0 (no limit) to 65535. */
static int parse_sm_limits(const char *s, uint32_t ret[3])
{
        const char *p = s;

        for (int i = 0; i < 3; i++) {
                char *end;
                unsigned long v;

                if (*p < '0' || *p > '9')
                        return -EINVAL;
                errno = 0;
                v = strtoul(p, &end, 10);
                if (errno || v > 65535 || *end != (i < 2 ? ',' : '\0'))
                        return -EINVAL;
                ret[i] = (uint32_t)v;
                p = end + 1;
        }
        return 0;
}

static int parse_one(int c, const char *value)
{
        switch (c) {
        case ARG_VM_ID:
                if (vm_id_parse(value, &arg_vm_id) < 0)
                        return log_error_errno(-EINVAL, "Invalid --vm-id '%s': a decimal VM id is expected.", value);
                return 0;
        case ARG_POOL:
                if (!pool_id_is_valid(value))
                        return log_error_errno(-EINVAL, "Invalid --pool '%s'.", value);
                snprintf(arg_pool, sizeof(arg_pool), "%s", value);
                return 0;
        case ARG_MEMORY_QUOTA:
                if (size_parse(value, &arg_memory_quota) < 0)
                        return log_error_errno(-EINVAL, "Invalid --memory-quota '%s'.", value);
                arg_memory_quota_set = true;
                return 0;
        case ARG_CONTROL_FD:
                arg_control_fd = parse_fd(value);
                if (arg_control_fd < 0)
                        return log_error_errno(-EINVAL, "Invalid --control-fd '%s'.", value);
                return 0;
        case ARG_BACKEND:
                arg_backend = backend_choice_from_string(value);
                if (arg_backend < 0)
                        return log_error_errno(-EINVAL, "Invalid --backend '%s': auto, cpu or cuda.", value);
                return 0;
        case ARG_POOL_MODE:
                arg_pool_mode = pool_mode_from_string(value);
                if (arg_pool_mode < 0)
                        return log_error_errno(-EINVAL, "Invalid --pool-mode '%s': isolated or shared.", value);
                return 0;
        case ARG_DEVICE:
                if (!text_is_valid(value, GPU_RESOURCE_MAX) || strchr(value, ' '))
                        return log_error_errno(-EINVAL, "Invalid --device '%s'.", value);
                free(arg_device);
                arg_device = strdup(value);
                return arg_device ? 0 : log_oom();
        case ARG_ALLOW_GUEST_MODULES:
                arg_allow_guest_modules = true;
                return 0;
        case ARG_SM_LIMITS:
                if (parse_sm_limits(value, arg_sm_limit) < 0)
                        return log_error_errno(-EINVAL, "Invalid --sm-limits '%s': three SM counts, HIGH,MEDIUM,LOW.",
                                               value);
                return 0;
        }
        return -EINVAL;
}

/* 0: run; 1: exit successfully (help, version); < 0: exit with an error. */
static int parse_argv(int argc, char *argv[])
{
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION},
                {"vm-id", required_argument, NULL, ARG_VM_ID},
                {"pool", required_argument, NULL, ARG_POOL},
                {"memory-quota", required_argument, NULL, ARG_MEMORY_QUOTA},
                {"control-fd", required_argument, NULL, ARG_CONTROL_FD},
                {"backend", required_argument, NULL, ARG_BACKEND},
                {"pool-mode", required_argument, NULL, ARG_POOL_MODE},
                {"device", required_argument, NULL, ARG_DEVICE},
                {"sm-limits", required_argument, NULL, ARG_SM_LIMITS},
                {"allow-guest-modules", no_argument, NULL, ARG_ALLOW_GUEST_MODULES},
                {},
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (c == 'h') {
                        help();
                        return 1;
                }
                if (c == ARG_VERSION) {
                        puts(VGPU_VERSION);
                        return 1;
                }
                if (c == '?')
                        return -EINVAL;
                r = parse_one(c, optarg);
                if (r < 0)
                        return r;
        }
        if (optind < argc)
                return log_error_errno(-EINVAL, "This program takes no positional arguments.");
        if (arg_vm_id == 0 || isempty(arg_pool) || !arg_memory_quota_set || arg_control_fd < 0)
                return log_error_errno(-EINVAL, "--vm-id, --pool, --memory-quota and --control-fd are required.");
        return 0;
}

/* SIGTERM and SIGINT arrive on a signalfd, so the serving loop sees them between commands and between
 * slices of a launch, never in the middle of one. */
static int signals_setup(void)
{
        sigset_t mask;
        int fd;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return negative_errno();
        signal(SIGPIPE, SIG_IGN);
        fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        return fd < 0 ? negative_errno() : fd;
}

static int control_fd_check(int fd)
{
        struct stat st;

        if (fstat(fd, &st) < 0)
                return log_error_errno(negative_errno(), "--control-fd=%d is not open: %m", fd);
        if (!S_ISSOCK(st.st_mode))
                return log_error_errno(-ENOTSOCK, "--control-fd=%d is not a socket.", fd);
        /* Nothing this process starts may inherit it: the scheduler must see the hang-up when we die. */
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
                return log_error_errno(negative_errno(), "Failed to set FD_CLOEXEC on the control socket: %m");
        return 0;
}

int main(int argc, char *argv[])
{
        int r;

        log_setup("vgpu-executor");
        r = parse_argv(argc, argv);
        if (r != 0)
                return r > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
        r = control_fd_check(arg_control_fd);
        if (r < 0)
                return EXIT_FAILURE;
        r = signals_setup();
        if (r < 0) {
                log_error_errno(r, "Failed to set up signal handling: %m");
                return EXIT_FAILURE;
        }
        if (arg_pool_mode == POOL_MODE_SHARED && arg_allow_guest_modules)
                log_vm(LOG_NOTICE, arg_vm_id, arg_pool, NULL, "Pool %s is shared, yet guests' own modules are "
                       "allowed (--allow-guest-modules): one VM's faulting kernel can abort its neighbours' work.",
                       arg_pool);
        r = serve(&(ServeConfig){.vm_id = arg_vm_id,
                                 .pool = arg_pool,
                                 .memory_quota = arg_memory_quota,
                                 .control_fd = arg_control_fd,
                                 .signal_fd = r,
                                 .backend = arg_backend,
                                 .device = arg_device,
                                 .sm_limit = {arg_sm_limit[0], arg_sm_limit[1], arg_sm_limit[2]},
                                 .builtin_only = arg_pool_mode == POOL_MODE_SHARED && !arg_allow_guest_modules});
        free(arg_device);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
