/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-schedd --pool=P: start-up, the one-thread wait loop (spin on the rings, then sleep in sd-event) and
 * readiness of one pool's scheduler. */
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <systemd/sd-daemon.h>

#include "bus-util.h"
#include "log.h"
#include "sched.h"
#include "transport/poller.h"

#define EVENT_SLICE_NS UINT64_C(1000000) /* while the rings stay busy, still serve sd-event every 1 ms */

static char *arg_pool;
static char *arg_executor;
static unsigned arg_max_in_flight = QUEUE_MAX_IN_FLIGHT_DEFAULT;
static uint64_t arg_starvation_ms;
static int64_t arg_spin_usec = -1; /* -1: the poller's start-up policy */
static unsigned arg_restart_limit = SCHED_RESTART_LIMIT_DEFAULT;
static uint64_t arg_restart_window_sec = SCHED_RESTART_WINDOW_SEC_DEFAULT;
static char *arg_mps_pipe_dir;
static bool arg_allow_guest_modules;
static unsigned arg_gpu_sms = SCHED_GPU_SMS_DEFAULT;
static unsigned arg_sm_headroom = SCHED_SM_HEADROOM_DEFAULT;
static unsigned arg_sm_limit[_PRIORITY_MAX] = {0, SCHED_SM_LIMIT_MEDIUM_DEFAULT, SCHED_SM_LIMIT_LOW_DEFAULT};

static void help(void)
{
        printf("Usage: vgpu-schedd --pool=POOL [OPTIONS]\n"
               "\n"
               "One pool's scheduler: priority queues for the commands vgpu-ingestd routes to the pool, one\n"
               "vgpu-executor per attached VM, served on the system bus as org.vgpu.Scheduler.POOL.\n"
               "\n"
               "Options:\n"
               "  --pool=POOL            the pool to serve (required)\n"
               "  --max-in-flight=N      commands dispatched and not yet completed, pool-wide (1-%u,\n"
               "                         default %u)\n"
               "  --starvation-ms=N      dispatch work that waited N ms before newer higher work (default\n"
               "                         0: off)\n"
               "  --spin-usec=N          spin budget before sleeping (default: VGPU_SPIN_USEC, else 0 below\n"
               "                         4 CPUs and 50 above)\n"
               "  --executor=PATH        the executor binary (default: vgpu-executor beside this program,\n"
               "                         else " VGPU_LIBEXECDIR "/vgpu-executor)\n"
               "  --restart-limit=N      restart a VM's dead executor at most N times (0-%u, default %u)\n"
               "  --restart-window-sec=S within any S seconds (1-%u, default %u); past it the VM's\n"
               "                         commands complete 'unavailable' until the window has passed\n"
               "  --mps-pipe-dir=DIR     the MPS control daemon of the pool's GPU (default:\n"
               "                         $VGPU_RUNTIME_DIR/mps/GPU, as vgpu-mps@GPU.service makes it)\n"
               "  --gpu-sms=N            SMs of the pool's GPU (default %u: an H100)\n"
               "  --sm-headroom=N        SMs that lower priorities leave free together, under MPS\n"
               "                         (default %u)\n"
               "  --sm-limit-high=N      SMs a high-priority launch may use (default 0: all, or the\n"
               "                         pool's share)\n"
               "  --sm-limit-medium=N    likewise for medium (default %u)\n"
               "  --sm-limit-low=N       likewise for low (default %u)\n"
               "  --allow-guest-modules-in-shared\n"
               "                         let VMs load their own modules while the pool is shared (MPS);\n"
               "                         by default only vgpu.builtin runs there\n"
               "  -h --help              show this help\n"
               "  --version              show the version\n"
               "\n"
               "See vgpu-schedd(8).\n",
               QUEUE_MAX_IN_FLIGHT_MAX, QUEUE_MAX_IN_FLIGHT_DEFAULT, SCHED_RESTART_LIMIT_MAX,
               SCHED_RESTART_LIMIT_DEFAULT, SCHED_RESTART_WINDOW_SEC_MAX, SCHED_RESTART_WINDOW_SEC_DEFAULT,
               SCHED_GPU_SMS_DEFAULT, SCHED_SM_HEADROOM_DEFAULT, SCHED_SM_LIMIT_MEDIUM_DEFAULT,
               SCHED_SM_LIMIT_LOW_DEFAULT);
}

static int parse_u64(const char *s, uint64_t max, uint64_t *ret)
{
        char *end = NULL;
        unsigned long long v;

        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || *end || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_option(int c, const char *value)
{
        uint64_t v;

        switch (c) {
        case 'p':
                if (!pool_id_is_valid(value))
                        return log_error_errno(-EINVAL, "Invalid pool id '%s'.", value);
                free(arg_pool);
                return (arg_pool = strdup(value)) ? 0 : log_oom();
        case 'm':
                if (parse_u64(value, QUEUE_MAX_IN_FLIGHT_MAX, &v) < 0 || v == 0)
                        return log_error_errno(-EINVAL, "--max-in-flight must be 1-%u.", QUEUE_MAX_IN_FLIGHT_MAX);
                arg_max_in_flight = (unsigned)v;
                return 0;
        case 's':
                if (parse_u64(value, 86400000, &arg_starvation_ms) < 0)
                        return log_error_errno(-EINVAL, "Invalid --starvation-ms '%s'.", value);
                return 0;
        case 'u':
                if (parse_u64(value, VGPU_POLLER_SPIN_USEC_MAX, &v) < 0)
                        return log_error_errno(-EINVAL, "Invalid --spin-usec '%s'.", value);
                arg_spin_usec = (int64_t)v;
                return 0;
        case 'e':
                free(arg_executor);
                return (arg_executor = strdup(value)) ? 0 : log_oom();
        case 'l':
                if (parse_u64(value, SCHED_RESTART_LIMIT_MAX, &v) < 0)
                        return log_error_errno(-EINVAL, "--restart-limit must be 0-%u.", SCHED_RESTART_LIMIT_MAX);
                arg_restart_limit = (unsigned)v;
                return 0;
        case 'w':
                if (parse_u64(value, SCHED_RESTART_WINDOW_SEC_MAX, &arg_restart_window_sec) < 0 ||
                    arg_restart_window_sec == 0)
                        return log_error_errno(-EINVAL, "--restart-window-sec must be 1-%u.",
                                               SCHED_RESTART_WINDOW_SEC_MAX);
                return 0;
        case 'P':
                if (*value != '/' || strlen(value) > 200)
                        return log_error_errno(-EINVAL, "--mps-pipe-dir must be an absolute path of at most 200 "
                                               "characters.");
                free(arg_mps_pipe_dir);
                return (arg_mps_pipe_dir = strdup(value)) ? 0 : log_oom();
        case 'G':
                if (parse_u64(value, SCHED_GPU_SMS_MAX, &v) < 0 || v == 0)
                        return log_error_errno(-EINVAL, "--gpu-sms must be 1-%u.", SCHED_GPU_SMS_MAX);
                arg_gpu_sms = (unsigned)v;
                return 0;
        case 'H':
                if (parse_u64(value, SCHED_GPU_SMS_MAX, &v) < 0)
                        return log_error_errno(-EINVAL, "--sm-headroom must be 0-%u.", SCHED_GPU_SMS_MAX);
                arg_sm_headroom = (unsigned)v;
                return 0;
        case 'A':
                arg_allow_guest_modules = true;
                return 0;
        case '0':
        case '1':
        case '2':
                if (parse_u64(value, SCHED_GPU_SMS_MAX, &v) < 0 || (v == 0 && c != '0'))
                        return log_error_errno(-EINVAL, "--sm-limit-%s must be %s-%u.", priority_to_string(c - '0'),
                                               c == '0' ? "0" : "1", SCHED_GPU_SMS_MAX);
                arg_sm_limit[c - '0'] = (unsigned)v;
                return 0;
        }
        return -EINVAL;
}

/* Returns 1 to go on, 0 to exit successfully, negative on a usage error. */
static int parse_argv(int argc, char *argv[])
{
        enum { ARG_VERSION = 0x100 };
        static const struct option options[] = {
                { "pool", required_argument, NULL, 'p' },
                { "max-in-flight", required_argument, NULL, 'm' },
                { "starvation-ms", required_argument, NULL, 's' },
                { "spin-usec", required_argument, NULL, 'u' },
                { "executor", required_argument, NULL, 'e' },
                { "restart-limit", required_argument, NULL, 'l' },
                { "restart-window-sec", required_argument, NULL, 'w' },
                { "mps-pipe-dir", required_argument, NULL, 'P' },
                { "gpu-sms", required_argument, NULL, 'G' },
                { "sm-headroom", required_argument, NULL, 'H' },
                { "sm-limit-high", required_argument, NULL, '0' },
                { "sm-limit-medium", required_argument, NULL, '1' },
                { "sm-limit-low", required_argument, NULL, '2' },
                { "allow-guest-modules-in-shared", no_argument, NULL, 'A' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (c == 'h') {
                        help();
                        return 0;
                }
                if (c == ARG_VERSION) {
                        printf("vgpu-schedd %s\n", VGPU_VERSION);
                        return 0;
                }
                if (c == '?')
                        return -EINVAL;
                r = parse_option(c, optarg);
                if (r < 0)
                        return r;
        }
        if (optind < argc)
                return log_error_errno(-EINVAL, "Unexpected argument '%s'; see --help.", argv[optind]);
        if (!arg_pool)
                return log_error_errno(-EINVAL, "--pool=POOL is required.");
        return 1;
}

/* The executor beside our own binary (a build tree, or libexecdir), else the installed one. */
static int find_executor(void)
{
        char self[PATH_MAX], path[PATH_MAX + 32];
        ssize_t n;

        if (arg_executor)
                return 0;
        n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n > 0) {
                self[n] = 0;
                snprintf(path, sizeof(path), "%s/vgpu-executor", dirname(self));
                if (access(path, X_OK) == 0)
                        return (arg_executor = strdup(path)) ? 0 : log_oom();
        }
        return (arg_executor = strdup(VGPU_LIBEXECDIR "/vgpu-executor")) ? 0 : log_oom();
}

static int on_signal(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata)
{
        Sched *s = userdata;

        s->stopping = true;
        return sd_event_exit(sd_event_source_get_event(src), 0);
}

static int connect_bus(Sched *s)
{
        char name[sizeof(SCHED_SERVICE_PREFIX) + POOL_ID_MAX];
        char other[64];
        int r;

        snprintf(name, sizeof(name), SCHED_SERVICE_PREFIX "%s", s->pool);
        snprintf(other, sizeof(other), "scheduler of pool %s", s->pool);
        r = bus_serve_object(s->event, SCHED_PATH, SCHED_INTERFACE, sched_vtable, s, &s->bus);
        if (r < 0)
                return r;
        return bus_claim_name(s->bus, name, other);
}

static bool spin(Sched *s)
{
        uint64_t start = now_ns(), budget = s->spin_usec * 1000;

        for (unsigned scans = 1;; scans++) {
                if (sched_has_work(s))
                        return true;
                if (scans % 8 == 0 && now_ns() - start >= budget)
                        return false;
#if defined(__x86_64__) || defined(__i386__)
                __builtin_ia32_pause();
#endif
        }
}

/* One thread: the rings are polled (spin within the budget, then armed), and the only sleep is sd-event's,
 * which also holds every ring's eventfd, the sockets, the bus, the children and the signals. */
static int loop(Sched *s)
{
        uint64_t last_event = 0;
        int r;

        while (sd_event_get_state(s->event) != SD_EVENT_FINISHED && !s->stopping) {
                s->stats.loop_rounds++;
                if (sched_pump(s) > 0) {
                        if (now_ns() - last_event >= EVENT_SLICE_NS) {
                                last_event = now_ns();
                                r = sd_event_run(s->event, 0);
                                if (r < 0)
                                        return r;
                        }
                        continue;
                }
                if (s->spin_usec > 0 && spin(s)) {
                        s->stats.loop_found_spinning++;
                        continue;
                }
                if (sched_prepare_wait(s) != 0) {
                        s->stats.loop_found_arming++;
                        continue;
                }
                s->stats.loop_sleeps++;
                last_event = now_ns();
                r = sd_event_run(s->event, UINT64_MAX);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int setup(Sched *s)
{
        sigset_t mask;
        int r;

        /* Executors are watched with sd_event_add_child(), which needs SIGCHLD blocked. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        r = service_event_open(on_signal, s, &s->event);
        if (r < 0)
                return r;
        r = queue_new(arg_max_in_flight, arg_starvation_ms * 1000000, &s->queue);
        if (r < 0)
                return log_error_errno(r, "Failed to create the run queue: %m");
        r = connect_bus(s);
        if (r < 0)
                return r;
        gpu_exec_update(s);
        r = pool_config_start(s);
        if (r < 0)
                return r;
        return pool_link_listen(s);
}

static int run(int argc, char *argv[])
{
        Sched s = {.link = {.listen_fd = -1, .conn_fd = -1, .wait_fd = -1, .notify_fd = -1}};
        int r;

        log_setup("vgpu-schedd");
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;
        r = find_executor();
        if (r < 0)
                return r;
        s.pool = arg_pool;
        s.mode = POOL_MODE_ISOLATED; /* until the config store says otherwise */
        s.executor_path = arg_executor;
        s.allow_guest_modules = arg_allow_guest_modules;
        s.restart_limit = arg_restart_limit;
        s.restart_window_ns = arg_restart_window_sec * UINT64_C(1000000000);
        s.mps_pipe_dir_arg = arg_mps_pipe_dir;
        s.sm_count = arg_gpu_sms;
        s.sm_headroom = arg_sm_headroom;
        memcpy(s.sm_limit_arg, arg_sm_limit, sizeof(s.sm_limit_arg));
        if (arg_spin_usec >= 0)
                s.spin_usec = (uint64_t)arg_spin_usec;
        else if (vgpu_poller_spin_usec_from_environment(&s.spin_usec) < 0)
                return log_error_errno(-EINVAL, "Invalid VGPU_SPIN_USEC.");
        if (s.spin_usec == 0)
                snprintf(s.wait_policy, sizeof(s.wait_policy), "block");
        else
                snprintf(s.wait_policy, sizeof(s.wait_policy), "spin %" PRIu64 "us", s.spin_usec);

        r = setup(&s);
        if (r >= 0) {
                log_info("Serving pool %s on %s and %s%s: max %u in flight, starvation guard %s, wait %s, "
                         "executor %s, at most %u executor restarts per VM in %" PRIu64 " s, guests' own "
                         "modules while shared: %s.", s.pool, s.socket_path, SCHED_SERVICE_PREFIX, s.pool,
                         arg_max_in_flight, arg_starvation_ms ? "on" : "off", s.wait_policy, s.executor_path,
                         s.restart_limit, arg_restart_window_sec,
                         s.allow_guest_modules ? "allowed (--allow-guest-modules-in-shared)" : "refused");
                (void)sd_notifyf(false, "READY=1\nSTATUS=Serving pool %s", s.pool);
                r = loop(&s);
                (void)sd_notify(false, "STOPPING=1");
                if (r < 0)
                        log_error_errno(r, "Event loop failed: %m");
                else
                        log_info("Pool %s: stopping.", s.pool);
        }
        sched_stop_executors(&s);
        pool_link_close(&s);
        sd_bus_flush_close_unref(s.bus);
        sd_event_unref(s.event);
        queue_free(s.queue);
        return r;
}

int main(int argc, char *argv[])
{
        int r = run(argc, argv);

        free(arg_pool);
        free(arg_executor);
        free(arg_mps_pipe_dir);
        if (r == -EINVAL)
                return 2;
        return r < 0 ? 1 : 0;
}
