/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The data path: requests from the pool link into the run queue, dispatch to each VM's executor within the
 * in-flight bound, completions back to ingestd. The VMs' and executors' lives are in vms.c. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <time.h>

#include "log.h"
#include "sched.h"

uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

void complete_unexecuted(Sched *s, uint32_t vm_id, uint64_t generation, uint64_t tag, uint64_t seq,
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

unsigned vm_fail_queued(Vm *vm, uint32_t status)
{
        FailContext f = {.vm = vm, .status = status};

        return (unsigned)queue_remove_vm(vm->sched->queue, vm->vm_id, fail_queued, &f);
}

unsigned vm_fail_all(Vm *vm, uint32_t status)
{
        Sched *s = vm->sched;
        unsigned n = vm->n_in_flight;

        for (; vm->n_in_flight > 0; vm->n_in_flight--) {
                InFlight *i = &vm->in_flight[vm->in_flight_head];

                vm->in_flight_head = (vm->in_flight_head + 1) % QUEUE_MAX_IN_FLIGHT_MAX;
                gpu_exec_release(s, i->priority, i->sm);
                vm->errors++;
                complete_unexecuted(s, vm->vm_id, vm->generation, i->tag, i->seq, i->opcode, i->priority, status);
                queue_complete(s->queue);
        }
        return n + vm_fail_queued(vm, status);
}

void sched_ingest(Sched *s, const VgpuHostRequest *r)
{
        Vm *vm = vm_find(s, r->vm_id);
        uint32_t status = VGPU_STATUS_CHANNEL_CLOSED;
        int k;

        if (vm && vm->generation == r->generation) {
                if (vm->state == VM_DETACHING)
                        status = vm->detach_status;
                else if (vm->state != VM_RUNNING)
                        status = vm_revive(vm); /* its executor died: a fresh one, within the limit */
                else
                        status = VGPU_STATUS_OK;
                if (status == VGPU_STATUS_OK) {
                        k = queue_push(s->queue, r, now_ns());
                        if (k == 0)
                                return;
                        status = k == -EINVAL ? VGPU_STATUS_INVALID_ARGUMENT : VGPU_STATUS_BUSY;
                }
        }
        s->stats.refused++;
        complete_unexecuted(s, r->vm_id, r->generation, r->tag, r->req.seq, r->req.opcode, r->priority, status);
}

int vm_collect(Vm *vm)
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
                gpu_exec_release(s, i->priority, i->sm);
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

static int dispatch(Sched *s)
{
        unsigned levels = gpu_exec_levels_allowed(s);
        QueueItem it;
        int n = 0;

        while (levels && queue_pick_levels(s->queue, now_ns(), levels, &it) > 0) {
                Vm *vm = vm_find(s, it.req.vm_id);
                uint64_t t = now_ns(), since = it.req.ingest_ns && it.req.ingest_ns <= t ? it.req.ingest_ns : it.enqueue_ns;
                InFlight *i;

                /* A raised VM's older commands go out at the level that was chosen: its priority now. */
                if (it.inherited)
                        it.req.priority = (uint8_t)it.chosen;

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
                                .priority = it.req.priority, .wait_ns = t - since,
                                .sm = gpu_exec_charge(s, it.req.priority, it.req.req.opcode)};
                vm->last_priority = it.req.priority;
                n++;
                levels = gpu_exec_levels_allowed(s);
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
