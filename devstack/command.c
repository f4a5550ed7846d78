/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* COMMAND: run once the stack is up, in devstack's own process group and with its stdio, so it behaves as
 * if started directly; its end ends the stack, and its exit status becomes devstack's. */
#include "devstack.h"
#include "log.h"

static int on_command_exit(sd_event_source *source, const siginfo_t *si, void *userdata)
{
        Stack *s = userdata;
        char how[64];

        log_debug("%s (pid %d) %s.", s->command_process.name, (int)s->command_process.pid,
                  exit_description(si, how, sizeof(how)));
        process_reaped(&s->command_process);
        if (s->phase == STACK_STOPPING)
                stack_stop_next(s);
        else
                stack_stop(s, exit_status_of(si));
        return 0;
}

int command_start(Stack *s)
{
        int r;

        /* Searched on PATH by the child: a missing COMMAND ends as it would in a shell, with 127. */
        r = process_spawn(&s->command_process,
                          &(SpawnOptions){.argv = s->command, .envp = environ, .output_fd = -1, .address_fd = -1},
                          on_command_exit, s);
        if (r < 0)
                return r;
        log_debug("Running %s (pid %d).", s->command[0], (int)s->command_process.pid);
        return 0;
}

void command_forward_signal(Stack *s, const struct signalfd_siginfo *si)
{
        const char *name = sigabbrev_np((int)si->ssi_signo);
        pid_t pid = s->command_process.pid;

        /* The terminal signals its whole foreground process group, COMMAND included: forwarding Ctrl-C
         * would deliver it twice. */
        if (si->ssi_code == SI_KERNEL) {
                log_debug("SIG%s came from the terminal, which sent it to %s too.", name, s->command[0]);
                return;
        }
        log_debug("Forwarding SIG%s to %s (pid %d).", name, s->command[0], (int)pid);
        if (kill(pid, (int)si->ssi_signo) < 0 && errno != ESRCH)
                log_warning_errno(negative_errno(), "Failed to forward SIG%s to %s (pid %d): %m", name, s->command[0],
                                  (int)pid);
}
