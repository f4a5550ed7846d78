/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Child processes: fork and exec with a clean signal state, watch them, stop them with a deadline, and
 * describe how they ended. */
#include <assert.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "devstack.h"
#include "log.h"

/* The child inherits devstack's blocked signals (which sd-event needs blocked) and, through exec, any
 * signal it ignores; a service must start as it would under systemd, with neither. COMMAND keeps the
 * dispositions devstack was started with, as it would when run directly. */
static void reset_signals(bool dispositions)
{
        sigset_t none;

        sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);
        if (!dispositions)
                return;
        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void)signal(sig, SIG_DFL);
}

/* Runs in the child, between fork and exec: only async-signal-safe calls, plus stdio for the last words. */
static _noreturn_ void child_exec(const SpawnOptions *o, pid_t parent)
{
        reset_signals(o->supervised);

        if (o->supervised) {
                /* Die with devstack even when it is killed with SIGKILL; if it already died before the
                 * prctl() took effect, we were reparented and must not go on. */
                if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
                        _exit(EXIT_FAILURE);
                /* Out of the terminal's process group: Ctrl-C is for devstack and COMMAND, which stop the
                 * services in order. */
                if (setsid() < 0)
                        _exit(EXIT_FAILURE);
                int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0)
                        _exit(EXIT_FAILURE);
        }
        if (o->output_fd >= 0 && (dup2(o->output_fd, STDOUT_FILENO) < 0 || dup2(o->output_fd, STDERR_FILENO) < 0))
                _exit(EXIT_FAILURE);
        if (o->address_fd >= 0) {
                /* dup2() onto itself would leave O_CLOEXEC set. */
                if (o->address_fd == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(o->address_fd, 3) < 0)
                        _exit(EXIT_FAILURE);
        }

        if (o->path)
                execve(o->path, o->argv, o->envp);
        else
                execvpe(o->argv[0], o->argv, o->envp);
        int error = errno;
        fprintf(stderr, "vgpu-devstack: Failed to execute %s: %s\n", o->path ? o->path : o->argv[0], strerror(error));
        _exit(error == ENOENT ? 127 : 126);
}

int process_spawn(Process *p, const SpawnOptions *o, sd_event_child_handler_t on_exit, void *userdata)
{
        pid_t parent = getpid(), pid;
        int r;

        assert(p->pid == 0);

        fflush(NULL);
        pid = fork();
        if (pid < 0)
                return log_error_errno(negative_errno(), "Failed to start %s: %m", p->name);
        if (pid == 0)
                child_exec(o, parent);

        p->pid = pid;
        r = sd_event_add_child(p->stack->event, &p->child_source, pid, WEXITED, on_exit, userdata);
        if (r < 0) {
                /* Without a watch we could neither reap nor supervise it. */
                (void)kill(pid, SIGKILL);
                (void)waitpid(pid, NULL, 0);
                p->pid = 0;
                return log_error_errno(r, "Failed to watch %s (pid %d): %m", p->name, (int)pid);
        }
        return 0;
}

static int on_stop_timeout(sd_event_source *source, uint64_t usec, void *userdata)
{
        Process *p = userdata;

        p->stop_timer = sd_event_source_disable_unref(p->stop_timer);
        if (p->pid <= 0)
                return 0;
        log_warning("%s (pid %d) did not stop within %u s; killing it.", p->name, (int)p->pid,
                    (unsigned)(STOP_TIMEOUT_USEC / USEC_PER_SEC));
        (void)kill(p->pid, SIGKILL);
        return 0;
}

int process_stop(Process *p)
{
        int r;

        if (p->pid <= 0 || p->stop_timer)
                return 0; /* gone, or already asked */
        log_debug("Stopping %s (pid %d).", p->name, (int)p->pid);
        if (kill(p->pid, SIGTERM) < 0 && errno != ESRCH)
                log_warning_errno(negative_errno(), "Failed to send SIGTERM to %s (pid %d): %m", p->name, (int)p->pid);
        r = sd_event_add_time_relative(p->stack->event, &p->stop_timer, CLOCK_MONOTONIC, STOP_TIMEOUT_USEC, 0,
                                       on_stop_timeout, p);
        if (r < 0) {
                (void)kill(p->pid, SIGKILL);
                return log_error_errno(r, "Failed to arm the stop timeout of %s; killed it: %m", p->name);
        }
        return 0;
}

void process_reaped(Process *p)
{
        p->pid = 0;
        p->child_source = sd_event_source_disable_unref(p->child_source);
        p->stop_timer = sd_event_source_disable_unref(p->stop_timer);
}

const char *exit_description(const siginfo_t *si, char *buf, size_t len)
{
        const char *name;

        if (si->si_code == CLD_EXITED) {
                snprintf(buf, len, "exited with status %d", si->si_status);
                return buf;
        }
        name = sigabbrev_np(si->si_status);
        if (name)
                snprintf(buf, len, "%s signal %s", si->si_code == CLD_DUMPED ? "dumped core on" : "was killed by",
                         name);
        else
                snprintf(buf, len, "%s signal %d", si->si_code == CLD_DUMPED ? "dumped core on" : "was killed by",
                         si->si_status);
        return buf;
}

int exit_status_of(const siginfo_t *si)
{
        return si->si_code == CLD_EXITED ? si->si_status : 128 + si->si_status;
}

bool exit_is_clean(const siginfo_t *si)
{
        return si->si_code == CLD_EXITED && si->si_status == 0;
}
