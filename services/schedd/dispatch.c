/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Attached VMs and the data path: requests from the pool link into the run queue, dispatch to each VM's
 * executor within the in-flight bound, completions back to ingestd; detach and executor death. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "log.h"
#include "sched.h"

uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static Vm *vm_find(Sched *s, uint32_t vm_id)
{
        for (Vm *vm = s->vms; vm; vm = vm->next)
                if (vm->vm_id == vm_id)
                        return vm;
        return NULL;
}

static void vm_free(Sched *s, Vm *vm)
{
        for (Vm **p = &s->vms; *p; p = &(*p)->next)
                if (*p == vm) {
                        *p = vm->next;
                        s->n_vms--;
                        break;
                }
        sd_event_source_disable_unref(vm->child_source);
        sd_event_source_disable_unref(vm->notify_source);
        sd_event_source_disable_unref(vm->kill_timer);
        executor_free(vm->executor);
        free(vm);
}

/* Answers a command that never reached (or never came back from) an executor. */
static void complete_unexecuted(Sched *s, uint32_t vm_id, uint64_t generation, uint64_t tag, uint64_t seq,
                                uint16_t opcode, uint8_t priority, uint32_t status)
{
        VgpuHostCompletion c = {.cpl = {.seq = seq, .status = status, .opcode = opcode}, .vm_id = vm_id,
                                .tag = tag, .generation = generation};

        stats_record(&s->stats, (Priority)priority, status, 0, 0, 0);
        pool_link_complete(s, &c);
}

typedef struct FailContext {
        Vm *vm;
        uint32_t status;
} FailContext;

static void fail_queued(const QueueItem *it, void *userdata)
{
        FailContext *f = userdata;

        f->vm->errors++;
        complete_unexecuted(f->vm->sched, it->req.vm_id, it->req.generation, it->req.tag, it->req.req.seq,
                            it->req.req.opcode, it->req.priority, f->status);
}

/* Completes every command of the VM, dispatched or queued, with `status`. */
static void vm_fail_all(Vm *vm, uint32_t status)
{
        Sched *s = vm->sched;
        FailContext f = {.vm = vm, .status = status};

        for (; vm->n_in_flight > 0; vm->n_in_flight--) {
                InFlight *i = &vm->in_flight[vm->in_flight_head];

                vm->in_flight_head = (vm->in_flight_head + 1) % QUEUE_MAX_IN_FLIGHT_MAX;
                vm->errors++;
                complete_unexecuted(s, vm->vm_id, vm->generation, i->tag, i->seq, i->opcode, i->priority, status);
                queue_complete(s->queue);
        }
        (void)queue_remove_vm(s->queue, vm->vm_id, fail_queued, &f);
}

void sched_ingest(Sched *s, const VgpuHostRequest *r)
{
        Vm *vm = vm_find(s, r->vm_id);
        uint32_t status = VGPU_STATUS_CHANNEL_CLOSED;
        int k;

        if (vm && vm->generation == r->generation) {
                if (vm->state == VM_RUNNING) {
                        k = queue_push(s->queue, r, now_ns());
                        if (k == 0)
                                return;
                        status = k == -EINVAL ? VGPU_STATUS_INVALID_ARGUMENT : VGPU_STATUS_BUSY;
                } else
                        status = vm->state == VM_DEAD ? VGPU_STATUS_DEVICE_ERROR : vm->detach_status;
        }
        s->stats.refused++;
        complete_unexecuted(s, r->vm_id, r->generation, r->tag, r->req.seq, r->req.opcode, r->priority, status);
}

static int on_notify(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
        Vm *vm = userdata;

        if (vm->executor)
                executor_ack(vm->executor);
        return 0;
}

static void vm_kill(Vm *vm, int sig)
{
        if (vm->pid > 0)
                (void)kill(vm->pid, sig);
}

/* Executor completions, in order, matched against what was sent. */
static int vm_collect(Vm *vm)
{
        Sched *s = vm->sched;
        VgpuHostCompletion c;
        int n = 0, r;

        if (!vm->executor)
                return 0;
        while ((r = executor_pop(vm->executor, &c)) == 0) {
                InFlight *i = &vm->in_flight[vm->in_flight_head];

                if (vm->n_in_flight == 0 || c.vm_id != vm->vm_id || c.generation != vm->generation || c.tag != i->tag) {
                        s->stats.dropped_completions++;
                        log_vm(LOG_ERR, vm->vm_id, s->pool, NULL,
                               "Executor %d sent a completion for VM %" PRIu32 " generation %" PRIu64 " tag %" PRIu64
                               " that does not match what was sent: dropped, executor ended.",
                               (int)vm->pid, c.vm_id, c.generation, c.tag);
                        vm_kill(vm, SIGKILL);
                        break;
                }
                vm->in_flight_head = (vm->in_flight_head + 1) % QUEUE_MAX_IN_FLIGHT_MAX;
                vm->n_in_flight--;
                queue_complete(s->queue);
                vm->commands++;
                vm->exec_ns += c.exec_ns;
                vm->errors += c.cpl.status != VGPU_STATUS_OK;
                stats_record(&s->stats, (Priority)i->priority, c.cpl.status, 1, i->wait_ns, c.exec_ns);
                pool_link_complete(s, &c);
                n++;
        }
        if (r == -EPROTO) {
                log_vm(LOG_ERR, vm->vm_id, s->pool, NULL, "Executor %d broke the ring discipline; ending it.",
                       (int)vm->pid);
                vm_kill(vm, SIGKILL);
        }
        (void)executor_release(vm->executor);
        return n;
}

static int on_child_exit(sd_event_source *src, const siginfo_t *si, void *userdata)
{
        Vm *vm = userdata;
        Sched *s = vm->sched;

        (void)vm_collect(vm); /* what it finished before it went */
        vm->pid = 0;
        vm->child_source = sd_event_source_disable_unref(vm->child_source);
        vm->notify_source = sd_event_source_disable_unref(vm->notify_source);
        vm->kill_timer = sd_event_source_disable_unref(vm->kill_timer);
        vm->executor = executor_free(vm->executor);
        if (vm->state == VM_DETACHING) {
                vm_fail_all(vm, vm->detach_status);
                log_vm(LOG_INFO, vm->vm_id, s->pool, NULL, "VM %" PRIu32 " detached (generation %" PRIu64 ").",
                       vm->vm_id, vm->generation);
                (void)pool_link_send_event(s, VGPU_POOL_EVENT_DETACHED, vm->vm_id, vm->generation, 0, NULL);
                vm_free(s, vm);
                return 0;
        }
        s->stats.executor_deaths++;
        log_vm(LOG_ERR, vm->vm_id, s->pool, NULL, "Executor of VM %" PRIu32 " died (%s %d); its commands complete "
               "DEVICE_ERROR.", vm->vm_id, si->si_code == CLD_EXITED ? "exit status" : "signal", si->si_status);
        vm_fail_all(vm, VGPU_STATUS_DEVICE_ERROR);
        vm->state = VM_DEAD;
        (void)pool_link_send_event(s, VGPU_POOL_EVENT_EXECUTOR_DIED, vm->vm_id, vm->generation, 0, NULL);
        return 0;
}

static int vm_watch(Vm *vm)
{
        Sched *s = vm->sched;
        int r;

        r = sd_event_add_child(s->event, &vm->child_source, vm->pid, WEXITED, on_child_exit, vm);
        if (r < 0)
                return r;
        return sd_event_add_io(s->event, &vm->notify_source, vm->executor->notify_fd, EPOLLIN, on_notify, vm);
}

void vm_attach(Sched *s, const VgpuPoolAttach *a, const VgpuRegionRef *region)
{
        Vm *vm = vm_find(s, a->vm_id);
        int r;

        if (vm && vm->state != VM_DEAD) {
                log_vm(LOG_WARNING, a->vm_id, s->pool, NULL, "VM %" PRIu32 " is already attached; refused.", a->vm_id);
                (void)pool_link_send_event(s, VGPU_POOL_EVENT_ATTACHED, a->vm_id, a->generation, EBUSY, NULL);
                return;
        }
        if (vm)
                vm_free(s, vm);
        vm = calloc(1, sizeof(*vm));
        if (!vm) {
                (void)pool_link_send_event(s, VGPU_POOL_EVENT_ATTACHED, a->vm_id, a->generation, ENOMEM, NULL);
                return;
        }
        *vm = (Vm){.sched = s, .vm_id = a->vm_id, .generation = a->generation, .memory_quota = a->memory_quota,
                   .last_priority = PRIORITY_LOW, .next = s->vms};
        s->vms = vm;
        s->n_vms++;
        r = executor_start(s->executor_path, s->pool, a->vm_id, a->memory_quota, region, &vm->executor);
        if (r >= 0) {
                vm->pid = vm->executor->pid;
                r = vm_watch(vm);
                if (r < 0) {
                        vm_kill(vm, SIGKILL);
                        (void)waitpid(vm->pid, NULL, 0);
                }
        }
        if (r < 0) {
                log_vm(LOG_ERR, a->vm_id, s->pool, NULL, "Cannot start the executor of VM %" PRIu32 ": %s",
                       a->vm_id, strerror(-r));
                (void)pool_link_send_event(s, VGPU_POOL_EVENT_ATTACHED, a->vm_id, a->generation, -r, NULL);
                vm_free(s, vm);
                return;
        }
        log_vm(LOG_INFO, a->vm_id, s->pool, NULL, "VM %" PRIu32 " attached (generation %" PRIu64 "): executor %d, "
               "backend %s.", a->vm_id, a->generation, (int)vm->pid, vm->executor->backend);
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
        FailContext f;

        if (!vm || vm->generation != d->generation || vm->state == VM_DEAD) {
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
        f = (FailContext){.vm = vm, .status = d->status};
        (void)queue_remove_vm(s->queue, vm->vm_id, fail_queued, &f);
        vm_kill(vm, SIGTERM);
        (void)sd_event_add_time_relative(s->event, &vm->kill_timer, CLOCK_MONOTONIC, SCHED_STOP_TIMEOUT_USEC, 0,
                                         on_kill_timer, vm);
}

static int dispatch(Sched *s)
{
        QueueItem it;
        int n = 0;

        while (queue_pick(s->queue, now_ns(), &it) > 0) {
                Vm *vm = vm_find(s, it.req.vm_id);
                uint64_t t = now_ns(), since = it.req.ingest_ns && it.req.ingest_ns <= t ? it.req.ingest_ns : it.enqueue_ns;
                InFlight *i;

                if (!vm || vm->state != VM_RUNNING || !vm->executor ||
                    executor_submit(vm->executor, &it.req) < 0) {
                        if (vm)
                                vm_kill(vm, SIGKILL); /* a full or broken link: the executor is not serving */
                        queue_complete(s->queue);
                        complete_unexecuted(s, it.req.vm_id, it.req.generation, it.req.tag, it.req.req.seq,
                                            it.req.req.opcode, it.req.priority, VGPU_STATUS_DEVICE_ERROR);
                        continue;
                }
                i = &vm->in_flight[(vm->in_flight_head + vm->n_in_flight++) % QUEUE_MAX_IN_FLIGHT_MAX];
                *i = (InFlight){.tag = it.req.tag, .seq = it.req.req.seq, .opcode = it.req.req.opcode,
                                .priority = it.req.priority, .wait_ns = t - since};
                vm->last_priority = it.req.priority;
                n++;
        }
        return n;
}

int sched_pump(Sched *s)
{
        int n = pool_link_receive(s);

        for (Vm *vm = s->vms; vm; vm = vm->next)
                n += vm_collect(vm);
        n += dispatch(s);
        (void)pool_link_flush(s);
        if (s->link.broken)
                pool_link_disconnect(s, "ring discipline broken");
        return n;
}

bool sched_has_work(const Sched *s)
{
        if (pool_link_has_work(s))
                return true;
        for (const Vm *vm = s->vms; vm; vm = vm->next)
                if (vm->executor && executor_has_work(vm->executor))
                        return true;
        return false;
}

int sched_prepare_wait(Sched *s)
{
        int found = 0, r;

        r = pool_link_prepare_wait(s);
        if (r != 0)
                return r;
        for (Vm *vm = s->vms; vm; vm = vm->next) {
                if (!vm->executor)
                        continue;
                r = executor_prepare_wait(vm->executor);
                if (r != 0)
                        found = 1; /* work, or a violation that vm_collect() will report */
        }
        return found;
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
                for (; vm->n_in_flight > 0; vm->n_in_flight--)
                        queue_complete(s->queue);
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
