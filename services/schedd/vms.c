/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Attached VMs and their executors' lives: attach (start), detach (stop), death, restart within the limit
 * (docs/scheduler.md, "Executors' lifecycle" and "Executor restarts"), and the end of everything. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/wait.h>

#include "log.h"
#include "sched.h"

static const char *const vm_state_names[_VM_STATE_MAX] = {
        [VM_RUNNING] = "running",
        [VM_DETACHING] = "detaching",
        [VM_DEAD] = "dead",
        [VM_SUSPENDED] = "suspended",
};

const char *vm_state_to_string(VmState state)
{
        return state >= 0 && state < _VM_STATE_MAX ? vm_state_names[state] : "unknown";
}

Vm *vm_find(Sched *s, uint32_t vm_id)
{
        for (Vm *vm = s->vms; vm; vm = vm->next)
                if (vm->vm_id == vm_id)
                        return vm;
        return NULL;
}

void vm_kill(Vm *vm, int sig)
{
        if (vm->pid > 0)
                (void)kill(vm->pid, sig);
}

/* Forgets the executor process and its link (the process is gone or being reaped by the caller). */
static void vm_executor_forget(Vm *vm)
{
        vm->pid = 0;
        vm->child_source = sd_event_source_disable_unref(vm->child_source);
        vm->notify_source = sd_event_source_disable_unref(vm->notify_source);
        vm->kill_timer = sd_event_source_disable_unref(vm->kill_timer);
        vm->executor = executor_free(vm->executor);
}

static void vm_free(Sched *s, Vm *vm)
{
        for (Vm **p = &s->vms; *p; p = &(*p)->next)
                if (*p == vm) {
                        *p = vm->next;
                        s->n_vms--;
                        break;
                }
        vm_executor_forget(vm);
        vgpu_region_ref_done(&vm->region);
        free(vm);
}

static int on_notify(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
        Vm *vm = userdata;

        if (vm->executor)
                executor_ack(vm->executor);
        return 0;
}

/* True when a restart now keeps within the limit: fewer than `limit` restarts in the last window. The ring
 * holds the last `limit` restart times, so its oldest entry decides. */
static bool restart_allowed(const Vm *vm, uint64_t now, uint64_t *ret_wait_ns)
{
        const Sched *s = vm->sched;
        uint64_t oldest;

        *ret_wait_ns = s->restart_window_ns;
        if (s->restart_limit == 0)
                return false;
        if (vm->restarts < s->restart_limit)
                return true;
        oldest = vm->restart_ns[vm->restarts % s->restart_limit];
        if (now - oldest >= s->restart_window_ns)
                return true;
        *ret_wait_ns = s->restart_window_ns - (now - oldest);
        return false;
}

static int on_child_exit(sd_event_source *src, const siginfo_t *si, void *userdata);

/* Starts the VM's executor with the pool's current mode and watches it. On failure nothing is left. */
static int vm_start_executor(Vm *vm)
{
        Sched *s = vm->sched;
        ExecutorConfig c = {.path = s->executor_path, .pool = s->pool, .pool_mode = s->mode, .vm_id = vm->vm_id,
                            .memory_quota = vm->memory_quota, .allow_guest_modules = s->allow_guest_modules};
        int r;

        gpu_exec_executor_config(s, &c);

        r = executor_start(&c, &vm->region, &vm->executor);
        if (r < 0)
                return r;
        vm->pid = vm->executor->pid;
        r = sd_event_add_child(s->event, &vm->child_source, vm->pid, WEXITED, on_child_exit, vm);
        if (r >= 0)
                r = sd_event_add_io(s->event, &vm->notify_source, vm->executor->notify_fd, EPOLLIN, on_notify, vm);
        if (r < 0) {
                vm->child_source = sd_event_source_disable_unref(vm->child_source);
                vm_kill(vm, SIGKILL);
                (void)waitpid(vm->pid, NULL, 0);
                vm_executor_forget(vm);
        }
        return r;
}

/* Its executor ended without being asked: what it finished goes out, the rest completes STATE_LOST (its
 * handles died with it), and the VM waits for its next command to get a fresh one. The guest's channel
 * stays open: ingestd is not told. */
static void vm_executor_died(Vm *vm, const siginfo_t *si)
{
        Sched *s = vm->sched;
        uint64_t wait_ns;
        unsigned failed;

        s->stats.executor_deaths++;
        vm->deaths++;
        failed = vm_fail_all(vm, VGPU_STATUS_STATE_LOST);
        if (restart_allowed(vm, now_ns(), &wait_ns)) {
                vm->state = VM_DEAD;
                log_vm(LOG_ERR, vm->vm_id, s->pool, NULL,
                       "Executor of VM %" PRIu32 " died (%s %d); %u outstanding commands complete STATE_LOST, its "
                       "GPU state is gone; a fresh executor starts with its next command.",
                       vm->vm_id, si->si_code == CLD_EXITED ? "exit status" : "signal", si->si_status, failed);
                return;
        }
        vm->state = VM_SUSPENDED;
        log_vm(LOG_ERR, vm->vm_id, s->pool, NULL,
               "Executor of VM %" PRIu32 " died (%s %d) after %u restarts within %" PRIu64 " s: restart limit "
               "reached; %u outstanding commands complete STATE_LOST and its commands complete UNAVAILABLE for "
               "%" PRIu64 " s, or until the VM reconnects.",
               vm->vm_id, si->si_code == CLD_EXITED ? "exit status" : "signal", si->si_status, s->restart_limit,
               s->restart_window_ns / 1000000000, failed, (wait_ns + 999999999) / 1000000000);
}

static int on_child_exit(sd_event_source *src, const siginfo_t *si, void *userdata)
{
        Vm *vm = userdata;
        Sched *s = vm->sched;

        (void)vm_collect(vm); /* what it finished before it went */
        vm_executor_forget(vm);
        if (vm->state != VM_DETACHING) {
                vm_executor_died(vm, si);
                return 0;
        }
        (void)vm_fail_all(vm, vm->detach_status);
        log_vm(LOG_INFO, vm->vm_id, s->pool, NULL, "VM %" PRIu32 " detached (generation %" PRIu64 ").", vm->vm_id,
               vm->generation);
        (void)pool_link_send_event(s, VGPU_POOL_EVENT_DETACHED, vm->vm_id, vm->generation, 0, NULL);
        vm_free(s, vm);
        return 0;
}

uint32_t vm_revive(Vm *vm)
{
        Sched *s = vm->sched;
        uint64_t now = now_ns(), wait_ns;
        int r;

        if (!restart_allowed(vm, now, &wait_ns)) {
                vm->state = VM_SUSPENDED;
                return VGPU_STATUS_UNAVAILABLE;
        }
        if (vm->state == VM_SUSPENDED)
                log_vm(LOG_NOTICE, vm->vm_id, s->pool, NULL,
                       "VM %" PRIu32 ": the restart window has passed; restarting its executor.", vm->vm_id);
        if (s->restart_limit > 0)
                vm->restart_ns[vm->restarts % s->restart_limit] = now;
        vm->restarts++;
        s->stats.executor_restarts++;
        r = vm_start_executor(vm);
        if (r < 0) {
                vm->state = VM_DEAD;
                log_vm(LOG_ERR, vm->vm_id, s->pool, NULL,
                       "Cannot restart the executor of VM %" PRIu32 " (restart %" PRIu64 "): %s; the command "
                       "completes DEVICE_ERROR.", vm->vm_id, vm->restarts, strerror(-r));
                return VGPU_STATUS_DEVICE_ERROR;
        }
        vm->state = VM_RUNNING;
        log_vm(LOG_NOTICE, vm->vm_id, s->pool, NULL,
               "Executor of VM %" PRIu32 " restarted (restart %" PRIu64 ", generation %" PRIu64 "): executor %d, "
               "backend %s, mode %s; it starts with no handles.", vm->vm_id, vm->restarts, vm->generation,
               (int)vm->pid, vm->executor->backend, pool_mode_to_string(s->mode));
        return VGPU_STATUS_OK;
}

void vm_attach(Sched *s, const VgpuPoolAttach *a, VgpuRegionRef *region)
{
        Vm *vm = vm_find(s, a->vm_id);
        int r;

        if (vm && (vm->state == VM_RUNNING || vm->state == VM_DETACHING)) {
                log_vm(LOG_WARNING, a->vm_id, s->pool, NULL, "VM %" PRIu32 " is already attached; refused.", a->vm_id);
                (void)pool_link_send_event(s, VGPU_POOL_EVENT_ATTACHED, a->vm_id, a->generation, EBUSY, NULL);
                return;
        }
        if (vm)
                vm_free(s, vm); /* an attachment whose executor died: the new one starts afresh */
        vm = calloc(1, sizeof(*vm));
        if (!vm) {
                (void)pool_link_send_event(s, VGPU_POOL_EVENT_ATTACHED, a->vm_id, a->generation, ENOMEM, NULL);
                return;
        }
        *vm = (Vm){.sched = s, .vm_id = a->vm_id, .generation = a->generation, .memory_quota = a->memory_quota,
                   .last_priority = PRIORITY_LOW, .region = *region, .next = s->vms};
        *region = VGPU_REGION_REF_NULL;
        s->vms = vm;
        s->n_vms++;
        r = vm_start_executor(vm);
        if (r < 0) {
                log_vm(LOG_ERR, a->vm_id, s->pool, NULL, "Cannot start the executor of VM %" PRIu32 ": %s",
                       a->vm_id, strerror(-r));
                (void)pool_link_send_event(s, VGPU_POOL_EVENT_ATTACHED, a->vm_id, a->generation, -r, NULL);
                vm_free(s, vm);
                return;
        }
        log_vm(LOG_INFO, a->vm_id, s->pool, NULL, "VM %" PRIu32 " attached (generation %" PRIu64 "): executor %d, "
               "backend %s, mode %s.", a->vm_id, a->generation, (int)vm->pid, vm->executor->backend,
               pool_mode_to_string(s->mode));
        (void)pool_link_send_event(s, VGPU_POOL_EVENT_ATTACHED, a->vm_id, a->generation, 0, vm->executor->backend);
}

static int on_kill_timer(sd_event_source *src, uint64_t usec, void *userdata)
{
        Vm *vm = userdata;

        log_vm(LOG_WARNING, vm->vm_id, vm->sched->pool, NULL, "Executor %d did not stop in time; killing it.",
               (int)vm->pid);
        vm_kill(vm, SIGKILL);
        return 0;
}

void vm_detach(Sched *s, const VgpuPoolDetach *d)
{
        Vm *vm = vm_find(s, d->vm_id);

        if (!vm || vm->generation != d->generation || vm->state == VM_DEAD || vm->state == VM_SUSPENDED) {
                /* Nothing (left) to wait for: a dead executor's commands already completed. */
                if (vm && vm->generation == d->generation)
                        vm_free(s, vm);
                (void)pool_link_send_event(s, VGPU_POOL_EVENT_DETACHED, d->vm_id, d->generation, vm ? 0 : ENOENT, NULL);
                return;
        }
        if (vm->state == VM_DETACHING)
                return;
        vm->state = VM_DETACHING;
        vm->detach_status = d->status;
        /* Queued commands go at once; dispatched ones when the executor has exited (on_child_exit). */
        (void)vm_fail_queued(vm, d->status);
        vm_kill(vm, SIGTERM);
        (void)sd_event_add_time_relative(s->event, &vm->kill_timer, CLOCK_MONOTONIC, SCHED_STOP_TIMEOUT_USEC, 0,
                                         on_kill_timer, vm);
}

/* Without a pool link there is nobody to answer: every VM goes, silently. */
void vm_drop_all(Sched *s)
{
        while (s->vms) {
                Vm *vm = s->vms;

                vm->child_source = sd_event_source_disable_unref(vm->child_source);
                if (vm->pid > 0) {
                        vm_kill(vm, SIGKILL);
                        (void)waitpid(vm->pid, NULL, 0);
                }
                for (; vm->n_in_flight > 0; vm->n_in_flight--) {
                        InFlight *i = &vm->in_flight[vm->in_flight_head];

                        vm->in_flight_head = (vm->in_flight_head + 1) % QUEUE_MAX_IN_FLIGHT_MAX;
                        gpu_exec_release(s, i->priority, i->sm);
                        queue_complete(s->queue);
                }
                (void)queue_remove_vm(s->queue, vm->vm_id, NULL, NULL);
                vm_free(s, vm);
        }
}

void sched_stop_executors(Sched *s)
{
        uint64_t deadline = now_ns() + SCHED_STOP_TIMEOUT_USEC * 1000;
        bool left = true;

        for (Vm *vm = s->vms; vm; vm = vm->next) {
                vm->child_source = sd_event_source_disable_unref(vm->child_source);
                vm_kill(vm, SIGTERM);
        }
        while (left && now_ns() < deadline) {
                left = false;
                for (Vm *vm = s->vms; vm; vm = vm->next)
                        if (vm->pid > 0 && waitpid(vm->pid, NULL, WNOHANG) == 0)
                                left = true;
                        else
                                vm->pid = 0;
                if (left)
                        usleep(10000);
        }
        vm_drop_all(s);
}
