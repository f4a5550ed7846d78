/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The services table, and each service's life: start, readiness, restart on failure as the units'
 * Restart=on-failure would, stop. */
#include <libgen.h>
#include <limits.h>

#include "devstack.h"
#include "log.h"

/* Every vgpu service, in start order (each may need the ones before it on the bus). A new service is one
 * more entry; arguments may name "{state_dir}", "{runtime_dir}" and, in a per-pool template, "{pool}". */
static const ServiceDefinition service_table[] = {
        {
                .name = "vgpu-configd",
                .args = (const char *const[]){"--database={state_dir}/config.db", NULL},
                .takes_admin_group = true,
        },
        {
                .name = "vgpu-iommud",
                .takes_admin_group = true,
                .takes_iommu_root = true,
        },
        {
                .name = "vgpu-schedd",
                .args = (const char *const[]){"--pool={pool}", NULL},
                .per_pool = true,
        },
        {
                .name = "vgpu-ingestd",
                .takes_admin_group = true,
        },
};

static char *expand_arg(const Stack *s, const char *pool, const char *template)
{
        static const char state_key[] = "{state_dir}", runtime_key[] = "{runtime_dir}", pool_key[] = "{pool}";
        _cleanup_fclose_ FILE *f = NULL;
        char *result = NULL;
        size_t size;

        f = open_memstream(&result, &size);
        if (!f)
                return NULL;
        for (const char *p = template; *p;)
                if (strncmp(p, state_key, strlen(state_key)) == 0) {
                        fputs(s->state_dir, f);
                        p += strlen(state_key);
                } else if (strncmp(p, runtime_key, strlen(runtime_key)) == 0) {
                        fputs(s->runtime_dir, f);
                        p += strlen(runtime_key);
                } else if (pool && strncmp(p, pool_key, strlen(pool_key)) == 0) {
                        fputs(pool, f);
                        p += strlen(pool_key);
                } else
                        fputc(*p++, f);
        if (fclose(TAKE_PTR(f)) != 0)
                return mfree(result);
        return result;
}

static int build_argv(Service *svc)
{
        const ServiceDefinition *d = svc->definition;
        const Stack *s = svc->stack;
        size_t n = 0, i = 0;

        while (d->args && d->args[n])
                n++;
        svc->argv = calloc(n + 4, sizeof(char *));
        if (!svc->argv)
                return log_oom();
        svc->argv[i++] = strdup(svc->binary);
        for (size_t k = 0; k < n; k++)
                svc->argv[i++] = expand_arg(s, svc->pool, d->args[k]);
        if (d->takes_admin_group && s->admin_group)
                svc->argv[i++] = strprintf("--admin-group=%s", s->admin_group);
        if (d->takes_iommu_root && s->iommu_root)
                svc->argv[i++] = strprintf("--root=%s", s->iommu_root);
        for (size_t k = 0; k < i; k++)
                if (!svc->argv[k])
                        return log_oom();
        return 0;
}

/* In the build tree every executable sits beside vgpu-devstack; installed, services live in libexecdir. */
static int find_binary(const char *executable, char **ret)
{
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        const char *dirs[2] = {NULL, VGPU_LIBEXECDIR};

        if (n > 0) {
                self[n] = '\0';
                dirs[0] = dirname(self);
        }
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_free_ char *candidate = NULL;

                if (!dirs[i])
                        continue;
                candidate = path_join(dirs[i], executable);
                if (!candidate)
                        return log_oom();
                if (access(candidate, X_OK) == 0) {
                        *ret = TAKE_PTR(candidate);
                        return 0;
                }
        }
        return log_error_errno(-ENOENT,
                               "%s was found neither in %s nor in %s; build it (meson compile) or install it "
                               "(meson install).",
                               executable, strempty(dirs[0]), dirs[1]);
}

static int service_init(Stack *s, Service *svc, const ServiceDefinition *d, const char *pool)
{
        const char *name;
        int r;

        *svc = (Service){.stack = s, .definition = d, .pool = pool, .notify_fd = -1};
        svc->name = pool ? strprintf("%s@%s", d->name, pool) : strdup(d->name);
        if (!svc->name)
                return log_oom();
        name = svc->name;
        svc->process = (Process){.stack = s, .name = name};
        r = find_binary(d->executable ?: d->name, &svc->binary);
        if (r < 0)
                return r;
        svc->log_path = strprintf("%s/%s.log", s->log_dir, name);
        svc->pid_path = strprintf("%s/%s.pid", s->devstack_dir, name);
        svc->notify_path = strprintf("%s/%s.notify", s->devstack_dir, name);
        svc->notify_env = strprintf("NOTIFY_SOCKET=%s/%s.notify", s->devstack_dir, name);
        if (!svc->log_path || !svc->pid_path || !svc->notify_path || !svc->notify_env)
                return log_oom();
        r = build_argv(svc);
        if (r < 0)
                return r;
        return service_listen_notify(svc);
}

static bool service_wanted(const Stack *s, const ServiceDefinition *d)
{
        for (char **w = s->without; w && *w; w++)
                if (streq(*w, d->name))
                        return false;
        return true;
}

/* How many processes a definition stands for: one, one per pool, or none (--without). */
static size_t service_instances(const Stack *s, const ServiceDefinition *d, size_t n_pools)
{
        if (!service_wanted(s, d))
                return 0;
        return d->per_pool ? n_pools : 1;
}

int services_prepare(Stack *s)
{
        size_t n_pools = 0, n = 0;
        int r;

        while (s->pools && s->pools[n_pools])
                n_pools++;
        for (size_t i = 0; i < ELEMENTSOF(service_table); i++)
                n += service_instances(s, &service_table[i], n_pools);
        s->services = calloc(n ? n : 1, sizeof(Service));
        if (!s->services)
                return log_oom();
        for (size_t i = 0; i < ELEMENTSOF(service_table); i++)
                for (size_t k = 0; k < service_instances(s, &service_table[i], n_pools); k++) {
                        r = service_init(s, &s->services[s->n_services], &service_table[i],
                                         service_table[i].per_pool ? s->pools[k] : NULL);
                        s->n_services++;
                        if (r < 0)
                                return r;
                }
        return 0;
}

/* devstack's environment, plus the service's own NOTIFY_SOCKET; the strings stay the owners'. */
static char **service_environment(const Service *svc)
{
        size_t n = 0;
        char **envp;

        while (environ[n])
                n++;
        envp = calloc(n + 2, sizeof(char *));
        if (!envp)
                return NULL;
        memcpy(envp, environ, n * sizeof(char *));
        envp[n] = svc->notify_env;
        return envp;
}

static int on_ready_timeout(sd_event_source *source, uint64_t usec, void *userdata)
{
        Service *svc = userdata;
        const char *name = svc->name;
        unsigned seconds = (unsigned)(READY_TIMEOUT_USEC / USEC_PER_SEC);

        svc->timer = sd_event_source_disable_unref(svc->timer);
        if (!svc->was_ready) {
                log_error("%s (pid %d) did not report readiness within %u s; see %s.", name, (int)svc->process.pid,
                          seconds, svc->log_path);
                log_tail(svc->log_path, svc->log_start);
                stack_stop(svc->stack, EXIT_FAILURE);
                return 0;
        }
        /* Killed, not asked: a clean exit on SIGTERM would look like a service that chose to end. */
        log_warning("%s (pid %d) did not report readiness within %u s of its restart; killing it.", name,
                    (int)svc->process.pid, seconds);
        (void)kill(svc->process.pid, SIGKILL);
        return 0;
}

static int on_service_exit(sd_event_source *source, const siginfo_t *si, void *userdata);

int service_start(Service *svc)
{
        _cleanup_close_ int log_fd = -1;
        _cleanup_free_ char **envp = NULL;
        int r;

        log_fd = open_log(svc->log_path, &svc->log_start);
        if (log_fd < 0)
                return log_fd;
        envp = service_environment(svc);
        if (!envp)
                return log_oom();
        r = process_spawn(&svc->process,
                          &(SpawnOptions){.path = svc->binary,
                                          .argv = svc->argv,
                                          .envp = envp,
                                          .output_fd = log_fd,
                                          .address_fd = -1,
                                          .supervised = true},
                          on_service_exit, svc);
        if (r < 0)
                return r;
        svc->state = SERVICE_STARTING;
        log_debug("Started %s (pid %d).", svc->name, (int)svc->process.pid);

        r = sd_event_add_time_relative(svc->stack->event, &svc->timer, CLOCK_MONOTONIC, READY_TIMEOUT_USEC, 0,
                                       on_ready_timeout, svc);
        if (r < 0)
                return log_error_errno(r, "Failed to arm the readiness timeout of %s: %m", svc->name);
        return 0;
}

void service_ready(Service *svc)
{
        const char *name = svc->name;

        if (svc->state != SERVICE_STARTING)
                return; /* READY=1 again, e.g. after a reload */
        svc->timer = sd_event_source_disable_unref(svc->timer);
        svc->state = SERVICE_RUNNING;
        (void)pid_file_write(svc->pid_path, svc->process.pid);
        if (svc->was_ready) {
                log_notice("%s restarted (pid %d).", name, (int)svc->process.pid);
                return;
        }
        svc->was_ready = true;
        log_info("%s is ready (pid %d).", name, (int)svc->process.pid);
        stack_service_ready(svc->stack, svc);
}

static int on_restart_timer(sd_event_source *source, uint64_t usec, void *userdata)
{
        Service *svc = userdata;
        int r;

        svc->timer = sd_event_source_disable_unref(svc->timer);
        r = service_start(svc);
        if (r < 0) {
                log_error_errno(r, "Failed to restart %s; giving up on it: %m", svc->name);
                svc->state = SERVICE_FAILED;
        }
        return 0;
}

/* As StartLimitBurst= within StartLimitIntervalSec=; the delay doubles from RESTART_DELAY_USEC. */
static void service_schedule_restart(Service *svc, pid_t pid, const char *how)
{
        const char *name = svc->name;
        uint64_t now = 0, delay = RESTART_DELAY_USEC;
        int r;

        (void)sd_event_now(svc->stack->event, CLOCK_MONOTONIC, &now);
        if (svc->restarts_in_window == 0 || now - svc->window_start > RESTART_LIMIT_INTERVAL_USEC) {
                svc->window_start = now;
                svc->restarts_in_window = 0;
        }
        if (svc->restarts_in_window >= RESTART_LIMIT_BURST) {
                log_error("%s (pid %d) %s; it was restarted %u times within %u s, giving up on it.", name, (int)pid,
                          how, svc->restarts_in_window, (unsigned)(RESTART_LIMIT_INTERVAL_USEC / USEC_PER_SEC));
                svc->state = SERVICE_FAILED;
                pid_file_remove(svc->pid_path);
                return;
        }
        svc->restarts_in_window++;
        svc->restarts++;
        for (unsigned i = 1; i < svc->restarts_in_window && delay < RESTART_DELAY_MAX_USEC; i++)
                delay *= 2;
        if (delay > RESTART_DELAY_MAX_USEC)
                delay = RESTART_DELAY_MAX_USEC;

        log_warning("%s (pid %d) %s; restarting it (restart %u).", name, (int)pid, how, svc->restarts);
        svc->state = SERVICE_AUTO_RESTART;
        r = sd_event_add_time_relative(svc->stack->event, &svc->timer, CLOCK_MONOTONIC, delay, 0, on_restart_timer,
                                       svc);
        if (r < 0) {
                log_error_errno(r, "Failed to arm the restart timer of %s; giving up on it: %m", name);
                svc->state = SERVICE_FAILED;
        }
}

static int on_service_exit(sd_event_source *source, const siginfo_t *si, void *userdata)
{
        Service *svc = userdata;
        Stack *s = svc->stack;
        const char *name = svc->name;
        pid_t pid = svc->process.pid;
        bool starting = svc->state == SERVICE_STARTING;
        char how[64];

        exit_description(si, how, sizeof(how));
        process_reaped(&svc->process);
        svc->timer = sd_event_source_disable_unref(svc->timer);
        svc->state = SERVICE_DEAD;

        if (s->phase == STACK_STOPPING) {
                pid_file_remove(svc->pid_path);
                if (exit_is_clean(si))
                        log_info("%s stopped.", name);
                else
                        log_info("%s (pid %d) %s while stopping.", name, (int)pid, how);
                stack_stop_next(s);
        } else if (starting && !svc->was_ready) {
                log_error("%s (pid %d) %s before it was ready; see %s.", name, (int)pid, how, svc->log_path);
                log_tail(svc->log_path, svc->log_start);
                stack_stop(s, EXIT_FAILURE);
        } else if (exit_is_clean(si)) {
                log_notice("%s (pid %d) exited cleanly; not restarting it.", name, (int)pid);
                pid_file_remove(svc->pid_path);
        } else
                service_schedule_restart(svc, pid, how);
        return 0;
}

/* Returns 1 while a process remains to wait for, 0 once there is none. */
int service_stop(Service *svc)
{
        if (svc->state == SERVICE_AUTO_RESTART) {
                svc->timer = sd_event_source_disable_unref(svc->timer);
                svc->state = SERVICE_DEAD;
        }
        if (svc->process.pid <= 0)
                return 0;
        svc->timer = sd_event_source_disable_unref(svc->timer);
        (void)process_stop(&svc->process);
        return 1;
}

void services_done(Stack *s)
{
        for (size_t i = 0; i < s->n_services; i++) {
                Service *svc = &s->services[i];

                process_reaped(&svc->process);
                svc->timer = sd_event_source_disable_unref(svc->timer);
                svc->notify_source = sd_event_source_disable_unref(svc->notify_source);
                svc->notify_fd = safe_close(svc->notify_fd);
                if (svc->notify_path)
                        (void)unlink(svc->notify_path);
                for (char **a = svc->argv; a && *a; a++)
                        free(*a);
                free(svc->argv);
                free(svc->binary);
                free(svc->log_path);
                free(svc->name);
                free(svc->pid_path);
                free(svc->notify_path);
                free(svc->notify_env);
        }
        s->services = mfree(s->services);
        s->n_services = 0;
}
