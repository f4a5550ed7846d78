/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-devstack: a private D-Bus bus and every vgpu service as ordinary processes, supervised the way
 * their units would be. The types the modules share: the stack (one per run), its processes, the bus
 * daemon and the services. */
#pragma once

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "vgpu-util.h"

#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_PER_SEC  UINT64_C(1000000)

/* As a unit's TimeoutStartSec= and TimeoutStopSec=. */
#define READY_TIMEOUT_USEC (30 * USEC_PER_SEC)
#define STOP_TIMEOUT_USEC  (10 * USEC_PER_SEC)
#define BUS_TIMEOUT_USEC   (10 * USEC_PER_SEC)
/* As RestartSec=, but doubling after each restart up to RESTART_DELAY_MAX_USEC. */
#define RESTART_DELAY_USEC     (100 * USEC_PER_MSEC)
#define RESTART_DELAY_MAX_USEC (2 * USEC_PER_SEC)
/* As StartLimitBurst= and StartLimitIntervalSec=: more restarts than this within the interval and the
 * service is given up. */
#define RESTART_LIMIT_BURST         10u
#define RESTART_LIMIT_INTERVAL_USEC (60 * USEC_PER_SEC)
/* Pools one devstack runs schedulers for (--pools). */
#define POOL_LIST_MAX 32
/* Lines of a log shown when something fails to start. */
#define LOG_TAIL_LINES 20u

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir)

/* Closes fd if open; returns -1 to store back. */
static inline int safe_close(int fd)
{
        if (fd >= 0)
                (void)close(fd);
        return -1;
}

typedef struct Stack Stack;

/* A child process that devstack watches and can stop: SIGTERM, then SIGKILL after STOP_TIMEOUT_USEC. */
typedef struct Process {
        Stack *stack;
        const char *name; /* for messages */
        pid_t pid;        /* 0 when there is none */
        sd_event_source *child_source;
        sd_event_source *stop_timer;
} Process;

typedef struct SpawnOptions {
        const char *path; /* the executable; NULL: argv[0], searched on PATH */
        char *const *argv;
        char *const *envp;
        int output_fd;   /* becomes stdout and stderr; -1: inherited */
        int address_fd;  /* becomes fd 3 (dbus-daemon --print-address=3); -1: none */
        bool supervised; /* a service or the bus: own session, stdin /dev/null, dies with devstack */
} SpawnOptions;

/* Forks and executes; the exit of the child is reported to `on_exit`. */
int process_spawn(Process *p, const SpawnOptions *o, sd_event_child_handler_t on_exit, void *userdata);
/* Asks the process to stop (once), and kills it if it has not after STOP_TIMEOUT_USEC. */
int process_stop(Process *p);
/* Forgets a process that has been reaped. */
void process_reaped(Process *p);
/* "exited with status 3", "was killed by signal KILL", "dumped core on signal SEGV". */
const char *exit_description(const siginfo_t *si, char *buf, size_t len);
/* The shell's convention: the exit status, or 128 + the signal's number. */
int exit_status_of(const siginfo_t *si);
bool exit_is_clean(const siginfo_t *si);

/* One entry of the services table (service.c), in start order. */
typedef struct ServiceDefinition {
        const char *name;        /* names the log, pid and notify files */
        const char *executable;  /* NULL: the name */
        const char *const *args; /* each may hold "{state_dir}", "{runtime_dir}" or "{pool}" */
        bool takes_admin_group;  /* gets --admin-group=GROUP when vgpu-devstack was given one */
        bool takes_iommu_root;   /* gets --root=DIR when vgpu-devstack was given --iommu-root=DIR */
        bool per_pool;           /* a template (as vgpu-schedd@.service): one instance NAME@POOL per pool */
} ServiceDefinition;

typedef enum ServiceState {
        SERVICE_DEAD,         /* not started yet, stopped, or exited cleanly */
        SERVICE_STARTING,     /* running, READY=1 not received yet */
        SERVICE_RUNNING,      /* ready */
        SERVICE_AUTO_RESTART, /* failed; waiting for the restart delay */
        SERVICE_FAILED,       /* failed too often: given up */
} ServiceState;

typedef struct Service {
        Stack *stack;
        const ServiceDefinition *definition;
        char *name;       /* the definition's name, or NAME@POOL for an instance; names its files */
        const char *pool; /* an instance's pool (the stack's string); NULL otherwise */
        Process process;
        ServiceState state;
        char *binary;
        char **argv;
        char *log_path;
        char *pid_path;
        char *notify_path;
        char *notify_env; /* NOTIFY_SOCKET=notify_path */
        int notify_fd;
        sd_event_source *notify_source;
        sd_event_source *timer; /* the readiness timeout, or the restart delay */
        off_t log_start;        /* where the current process's output begins in its log */
        bool was_ready;         /* has been ready once: later starts are restarts */
        unsigned restarts;
        unsigned restarts_in_window;
        uint64_t window_start;
} Service;

typedef struct BusDaemon {
        Process process;
        char *binary;
        char *config_path;
        char *policy_dir;
        char *socket_path;
        char *log_path;
        char *pid_path;
        char *address; /* what clients use: unix:path=…, escaped */
        int address_fd;
        sd_event_source *address_source;
        sd_event_source *timer;
        off_t log_start;
        char reply[512]; /* what dbus-daemon printed on --print-address so far */
        size_t reply_len;
} BusDaemon;

typedef enum StackPhase {
        STACK_STARTING, /* the bus, then each service in order */
        STACK_RUNNING,  /* every service ready; COMMAND runs, or we wait for a signal */
        STACK_STOPPING, /* COMMAND, then the services in reverse order, then the bus */
} StackPhase;

struct Stack {
        sd_event *event;
        StackPhase phase;
        int exit_status;

        char *state_dir; /* absolute */
        char *runtime_dir;
        char *log_dir;
        char *devstack_dir;
        int lock_fd;

        const char *admin_group; /* NULL: not passed */
        const char *iommu_root;  /* vgpu-iommud's --root (a recorded tree); NULL: the host's own, "/" */
        char **pools;            /* one scheduler instance each; NULL-terminated */
        char **without;          /* services not to start (--without); NULL-terminated, or NULL */
        char **command;          /* NULL: wait for SIGINT or SIGTERM */
        Process command_process;

        BusDaemon bus;
        Service *services;
        size_t n_services;
        size_t n_ready; /* services brought up in order so far */
};

/* stack.c: the phases. */
/* What the command line asks of the stack. */
typedef struct StackOptions {
        const char *state_dir;
        const char *admin_group; /* NULL: not passed */
        const char *iommu_root;  /* NULL: not passed */
        char **pools;
        char **without;
        char **command;
} StackOptions;

int stack_setup(Stack *s, const StackOptions *o);
int stack_run(Stack *s);
void stack_done(Stack *s);
void stack_bus_ready(Stack *s);
void stack_service_ready(Stack *s, Service *svc);
void stack_stop(Stack *s, int exit_status);
void stack_stop_next(Stack *s);

/* layout.c: the state directory, the environment, pid files and logs. */
char *strprintf(const char *format, ...) _printf_(1, 2);
char *path_join(const char *dir, const char *name);
int layout_prepare(Stack *s, const char *state_dir);
int layout_export_environment(const Stack *s);
void layout_print_environment(const Stack *s);
int open_log(const char *path, off_t *ret_start);
void log_tail(const char *path, off_t start);
int pid_file_write(const char *path, pid_t pid);
void pid_file_remove(const char *path);
int find_on_path(const char *name, char **ret);

/* bus-daemon.c: the private bus. */
int bus_daemon_prepare(Stack *s);
int bus_daemon_start(Stack *s);
void bus_daemon_done(BusDaemon *b);

/* service.c: the services table and each service's life. */
int services_prepare(Stack *s);
int service_start(Service *svc);
void service_ready(Service *svc);
int service_stop(Service *svc);
void services_done(Stack *s);

/* notify.c: each service's NOTIFY_SOCKET. */
int service_listen_notify(Service *svc);

/* command.c: COMMAND. */
int command_start(Stack *s);
void command_forward_signal(Stack *s, const struct signalfd_siginfo *si);
