/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The stack's phases: bring up the bus, then each service in order, each waited for until ready; run
 * COMMAND or wait for a signal; then stop COMMAND, the services in reverse order, and the bus. */
#include <sys/signalfd.h>
#include <sys/wait.h>

#include "devstack.h"
#include "log.h"

static int on_signal(sd_event_source *source, const struct signalfd_siginfo *si, void *userdata)
{
        Stack *s = userdata;

        if (s->phase == STACK_RUNNING && s->command_process.pid > 0) {
                command_forward_signal(s, si);
                return 0;
        }
        if (s->phase == STACK_STOPPING) {
                log_info("Received SIG%s; already stopping.", sigabbrev_np((int)si->ssi_signo));
                return 0;
        }
        log_info("Received SIG%s; stopping.", sigabbrev_np((int)si->ssi_signo));
        /* Interrupted before COMMAND could run: the shell's status for death by that signal. */
        stack_stop(s, s->command ? 128 + (int)si->ssi_signo : EXIT_SUCCESS);
        return 0;
}

static int setup_event_loop(Stack *s)
{
        static const int signals[] = {SIGINT, SIGTERM};
        sigset_t mask;
        int r;

        /* sd-event takes signals and child exits through signalfd and pidfd, which need them blocked. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        for (size_t i = 0; i < ELEMENTSOF(signals); i++)
                sigaddset(&mask, signals[i]);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(negative_errno(), "Failed to block signals: %m");

        r = sd_event_new(&s->event);
        if (r < 0)
                return log_error_errno(r, "Failed to create the event loop: %m");
        for (size_t i = 0; i < ELEMENTSOF(signals); i++) {
                r = sd_event_add_signal(s->event, NULL, signals[i], on_signal, s);
                if (r < 0)
                        return log_error_errno(r, "Failed to watch SIG%s: %m", sigabbrev_np(signals[i]));
        }
        return 0;
}

int stack_setup(Stack *s, const StackOptions *o)
{
        char **command = o->command;
        int r;

        *s = (Stack){.lock_fd = -1, .admin_group = o->admin_group, .iommu_root = o->iommu_root, .pools = o->pools,
                     .without = o->without, .command = command};
        s->bus.address_fd = -1;
        s->bus.process = (Process){.stack = s, .name = "dbus-daemon"};
        s->command_process = (Process){.stack = s, .name = command ? command[0] : "COMMAND"};

        r = setup_event_loop(s);
        if (r < 0)
                return r;
        r = layout_prepare(s, o->state_dir);
        if (r < 0)
                return r;
        r = bus_daemon_prepare(s);
        if (r < 0)
                return r;
        r = layout_export_environment(s);
        if (r < 0)
                return r;
        return services_prepare(s);
}

/* Returns the exit status: COMMAND's, 0 after a signal without COMMAND, 1 when the stack failed. */
int stack_run(Stack *s)
{
        int r;

        if (bus_daemon_start(s) < 0)
                stack_stop(s, EXIT_FAILURE);
        r = sd_event_loop(s->event);
        if (r < 0) {
                log_error_errno(r, "The event loop failed: %m");
                return EXIT_FAILURE;
        }
        return r;
}

static void stack_start_next(Stack *s)
{
        if (s->n_ready < s->n_services) {
                if (service_start(&s->services[s->n_ready]) < 0)
                        stack_stop(s, EXIT_FAILURE);
                return;
        }

        s->phase = STACK_RUNNING;
        if (s->command) {
                if (command_start(s) < 0)
                        stack_stop(s, EXIT_FAILURE);
                return;
        }
        layout_print_environment(s);
        log_info("stack is up; press Ctrl-C to stop.");
}

void stack_bus_ready(Stack *s)
{
        if (s->phase == STACK_STARTING)
                stack_start_next(s);
}

void stack_service_ready(Stack *s, Service *svc)
{
        if (s->phase != STACK_STARTING || svc != &s->services[s->n_ready])
                return;
        s->n_ready++;
        stack_start_next(s);
}

void stack_stop(Stack *s, int exit_status)
{
        if (s->phase == STACK_STOPPING)
                return; /* the first reason decides the exit status */
        s->phase = STACK_STOPPING;
        s->exit_status = exit_status;
        log_debug("Stopping the stack (exit status %d).", exit_status);
        stack_stop_next(s);
}

/* One step at a time: each exit calls this again, until nothing is left. */
void stack_stop_next(Stack *s)
{
        if (s->command_process.pid > 0) {
                (void)process_stop(&s->command_process);
                return;
        }
        for (size_t i = s->n_services; i > 0; i--)
                if (service_stop(&s->services[i - 1]) > 0)
                        return;
        if (s->bus.process.pid > 0) {
                (void)process_stop(&s->bus.process);
                return;
        }
        (void)sd_event_exit(s->event, s->exit_status);
}

/* Only reached with a process still there when the event loop itself failed. */
static void kill_leftover(Process *p)
{
        if (p->pid <= 0)
                return;
        log_warning("Killing %s (pid %d).", p->name, (int)p->pid);
        (void)kill(p->pid, SIGKILL);
        (void)waitpid(p->pid, NULL, 0);
        process_reaped(p);
}

void stack_done(Stack *s)
{
        kill_leftover(&s->command_process);
        for (size_t i = s->n_services; i > 0; i--)
                kill_leftover(&s->services[i - 1].process);
        kill_leftover(&s->bus.process);

        services_done(s);
        bus_daemon_done(&s->bus);
        s->event = sd_event_unref(s->event);
        s->lock_fd = safe_close(s->lock_fd);
        free(s->state_dir);
        free(s->runtime_dir);
        free(s->log_dir);
        free(s->devstack_dir);
}
