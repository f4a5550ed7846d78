/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-schedd end to end: this program plays vgpu-ingestd against two real schedulers (pools A and B) on a
 * private D-Bus bus, with real executors serving three VMs. Speaks TAP. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "ingest.h"
#include "names.h"
#include "vgpu-util.h"

#define BIG (256u << 20) /* the blocker's MEMSET: tens of ms, long enough to queue a burst behind it */

static uint64_t alloc(Ingest *in, GuestVm *vm, uint64_t size)
{
        VgpuHostCompletion c;
        VgpuRequestDesc d = {.opcode = VGPU_OP_MEM_ALLOC, .seq = 1, .u.mem_alloc.size = size};

        if (ingest_call(in, vm, 1, &d, &c) < 0 || c.cpl.status != VGPU_STATUS_OK)
                return 0;
        return c.cpl.u.handle;
}

static VgpuRequestDesc memset_desc(uint64_t handle, uint64_t seq, uint64_t length)
{
        return (VgpuRequestDesc){.opcode = VGPU_OP_MEMSET, .seq = seq,
                                 .u.memset = {.handle = handle, .length = length, .element_size = 1}};
}

/* Collects n completions into seqs[] (VM id in the high 32 bits of each entry's key). */
static int collect(Ingest *in, int n, uint64_t *keys, uint32_t *statuses)
{
        for (int i = 0; i < n; i++) {
                VgpuHostCompletion c;

                if (ingest_next(in, INGEST_WAIT_MS, &c) < 0)
                        return i;
                keys[i] = (uint64_t)c.vm_id << 32 | c.cpl.seq;
                if (statuses)
                        statuses[i] = c.cpl.status;
        }
        return n;
}

#define KEY(vm, seq) ((uint64_t)(vm) << 32 | (seq))

static bool expect_order(const uint64_t *keys, int got, const uint64_t *want, int n, const char *what)
{
        if (got != n) {
                printf("# %s: %d of %d completions arrived\n", what, got, n);
                return false;
        }
        for (int i = 0; i < n; i++)
                if (keys[i] != want[i]) {
                        printf("# %s: completion %d is VM %u seq %u, expected VM %u seq %u\n", what, i,
                               (unsigned)(keys[i] >> 32), (unsigned)keys[i], (unsigned)(want[i] >> 32),
                               (unsigned)want[i]);
                        return false;
                }
        return true;
}

/* Low work queued first, then medium, then high, behind one long command holding the only in-flight slot. */
/* atomic: no blocker, the whole burst becomes visible in one publish, so the order is independent of timing
 * (used while another pool floods the machine's CPUs). */
static bool burst(const char *pool, Ingest *in, GuestVm *vm, int n, uint64_t base, bool atomic)
{
        uint64_t keys[1 + 3 * 64], want[1 + 3 * 64];
        int k = 0;
        VgpuRequestDesc d = memset_desc(vm[0].buffer, base, BIG);

        if (!atomic) {
                ingest_submit(in, &vm[0], PRIORITY_LOW, &d);
                want[k++] = KEY(vm[0].vm_id, base);
        }
        ingest_publish(in);
        /* Until the blocker holds the only in-flight slot (it runs for several ms). */
        for (int i = 0; !atomic && i < 500 && stat_u32(pool, "in_flight") != 1; i++)
                usleep(200);
        for (int level = PRIORITY_LOW; level >= PRIORITY_HIGH; level--) {
                GuestVm *v = &vm[level == PRIORITY_LOW ? 0 : level == PRIORITY_MEDIUM ? 1 : 2];

                for (int i = 1; i <= n; i++) {
                        d = memset_desc(v->buffer, base + (uint64_t)level * 100 + (uint64_t)i, 65536);
                        ingest_submit(in, v, (uint8_t)level, &d);
                }
                if (!atomic)
                        ingest_publish(in);
        }
        ingest_publish(in);
        for (int level = PRIORITY_HIGH; level <= PRIORITY_LOW; level++)
                for (int i = 1; i <= n; i++)
                        want[k++] = KEY(vm[level == PRIORITY_LOW ? 0 : level == PRIORITY_MEDIUM ? 1 : 2].vm_id,
                                        base + (uint64_t)level * 100 + (uint64_t)i);
        return expect_order(keys, collect(in, k, keys, NULL), want, k, "burst");
}

static bool priority_change(Ingest *in, GuestVm *vm)
{
        uint64_t keys[8];
        const uint64_t want[8] = {KEY(1, 2000), KEY(1, 2004), KEY(1, 2005), KEY(1, 2006), KEY(1, 2007),
                                  KEY(2, 2001), KEY(2, 2002), KEY(2, 2003)};
        VgpuRequestDesc d = memset_desc(vm[0].buffer, 2000, BIG);

        ingest_submit(in, &vm[0], PRIORITY_LOW, &d);
        ingest_publish(in);
        usleep(5000);
        for (uint64_t s = 2001; s <= 2003; s++)
                ingest_submit(in, &vm[1], PRIORITY_MEDIUM, &(VgpuRequestDesc){.opcode = VGPU_OP_SYNC, .seq = s});
        for (uint64_t s = 2004; s <= 2006; s++)
                ingest_submit(in, &vm[0], PRIORITY_LOW, &(VgpuRequestDesc){.opcode = VGPU_OP_SYNC, .seq = s});
        /* VM 1's priority was raised: its next command is stamped high. */
        ingest_submit(in, &vm[0], PRIORITY_HIGH, &(VgpuRequestDesc){.opcode = VGPU_OP_SYNC, .seq = 2007});
        ingest_publish(in);
        return expect_order(keys, collect(in, 8, keys, NULL), want, 8, "priority change");
}

/* Ten long commands of VM 1 at low priority: the commands queued behind them (low, FIFO) wait ~100 ms. */
static void block(Ingest *in, GuestVm *vm, uint64_t base)
{
        for (uint64_t i = 0; i < 10; i++) {
                VgpuRequestDesc d = memset_desc(vm->buffer, base + i, BIG);
                ingest_submit(in, vm, PRIORITY_LOW, &d);
        }
        ingest_publish(in);
}

static bool detach(Ingest *in, GuestVm *vm)
{
        uint64_t keys[16];
        uint32_t st[16];
        VgpuPoolEvent ev;
        int moved = 0, got;

        block(in, &vm[0], 3100);
        for (uint64_t s = 3001; s <= 3005; s++)
                ingest_submit(in, &vm[1], PRIORITY_LOW, &(VgpuRequestDesc){.opcode = VGPU_OP_SYNC, .seq = s});
        ingest_publish(in);
        usleep(5000);
        ingest_send_detach(in, &vm[1], VGPU_STATUS_VM_MOVED);
        got = collect(in, 15, keys, st);
        for (int i = 0; i < got; i++)
                moved += (keys[i] >> 32) == vm[1].vm_id && st[i] == VGPU_STATUS_VM_MOVED;
        ok(got == 15 && moved == 5, "detach completes the VM's 5 queued commands VM_MOVED (%d of %d)", moved, got);
        return ingest_event(in, INGEST_WAIT_MS, &ev) == 0 && ev.kind == VGPU_POOL_EVENT_DETACHED &&
               ev.vm_id == vm[1].vm_id && ev.generation == vm[1].generation;
}

/* kill -9 of VM 3's executor with work outstanding: that work completes STATE_LOST, the attachment stays
 * (no event to ingestd), the next command gets a fresh executor on which the old handles are unknown. */
static void executor_death(Ingest *in, GuestVm *vm)
{
        uint64_t keys[16];
        uint32_t st[16];
        VgpuPoolEvent ev;
        VgpuHostCompletion c;
        VgpuRequestDesc d;
        pid_t pid = (pid_t)vm_u64("A", vm[2].vm_id, "executor_pid"), fresh;
        char state[32];
        int lost = 0, got, r;

        ok(pid > 0 && pid != (pid_t)UINT64_MAX, "ListVms names VM 3's executor (pid %d)", (int)pid);
        block(in, &vm[0], 4100);
        for (uint64_t s = 4001; s <= 4005; s++)
                ingest_submit(in, &vm[2], PRIORITY_LOW, &(VgpuRequestDesc){.opcode = VGPU_OP_SYNC, .seq = s});
        ingest_publish(in);
        usleep(5000);
        kill(pid, SIGKILL);
        got = collect(in, 15, keys, st);
        for (int i = 0; i < got; i++)
                lost += (keys[i] >> 32) == vm[2].vm_id && st[i] == VGPU_STATUS_STATE_LOST;
        ok(got == 15 && lost == 5, "kill -9 of VM 3's executor: its 5 commands complete STATE_LOST (%d)", lost);
        r = ingest_event(in, 300, &ev);
        ok(r == -ETIMEDOUT, "no event goes to ingestd: the guest's channel stays open (%d, kind %u)", r,
           r == 0 ? ev.kind : 0);
        ok(streq(vm_string("A", vm[2].vm_id, "state", state, sizeof(state)), "dead") &&
           vm_u64("A", vm[2].vm_id, "executor_pid") == 0, "ListVms: VM 3 is dead, no executor (%s)", state);
        r = ingest_call(in, &vm[0], PRIORITY_LOW, &(VgpuRequestDesc){.opcode = VGPU_OP_SYNC, .seq = 4100}, &c);
        ok(r == 0 && c.cpl.status == VGPU_STATUS_OK, "VM 1 is unaffected by VM 3's executor dying");
        c = (VgpuHostCompletion){};
        d = memset_desc(vm[2].buffer, 4101, 4096);
        r = ingest_call(in, &vm[2], PRIORITY_HIGH, &d, &c);
        ok(r == 0 && c.cpl.status == VGPU_STATUS_NO_SUCH_HANDLE,
           "VM 3's next command runs on a fresh executor, which does not know the old handle (status %u)",
           c.cpl.status);
        fresh = (pid_t)vm_u64("A", vm[2].vm_id, "executor_pid");
        ok(fresh > 0 && fresh != pid && vm_u64("A", vm[2].vm_id, "executor_restarts") == 1 &&
           vm_u64("A", vm[2].vm_id, "executor_deaths") == 1 &&
           vm_u64("A", vm[2].vm_id, "generation") == vm[2].generation,
           "ListVms: same generation, a new executor (pid %d), 1 death, 1 restart", (int)fresh);
        vm[2].buffer = alloc(in, &vm[2], 4096);
        ok(vm[2].buffer != 0, "VM 3 allocates again on its fresh executor");
}

static bool attach_all(Ingest *in, GuestVm *vm, int n, uint32_t first_id)
{
        VgpuPoolEvent ev;

        for (int i = 0; i < n; i++) {
                if (guest_vm_create(&vm[i], first_id + (uint32_t)i, 1) < 0 || ingest_attach(in, &vm[i], 0, &ev) < 0 ||
                    ev.kind != VGPU_POOL_EVENT_ATTACHED || ev.error != 0)
                        return false;
                vm[i].buffer = alloc(in, &vm[i], BIG);
                if (!vm[i].buffer)
                        return false;
        }
        printf("# attached %d VMs from %u, backend %s\n", n, first_id, ev.backend);
        return true;
}

static void two_pools(Ingest *a, GuestVm *vm)
{
        Ingest b;
        GuestVm vb[1];
        uint64_t keys[1000];
        int got;

        harness_start_sched(1, "B", (const char *const[]){"--max-in-flight=4", NULL});
        ok(ingest_connect(&b, harness_sock_path("B")) == 0 && attach_all(&b, vb, 1, 11), "pool B: connected, VM 11 attached");
        for (int i = 0; i < 1000; i++) {
                VgpuRequestDesc d = memset_desc(vb[0].buffer, 5000 + (uint64_t)i, 1 << 20);
                ingest_submit(&b, &vb[0], PRIORITY_HIGH, &d);
        }
        ingest_publish(&b);
        ok(burst("A", a, vm, 10, 6000, true), "a flood of 1000 high commands on pool B leaves pool A's order intact");
        got = collect(&b, 1000, keys, NULL);
        ok(got == 1000, "pool B completed its flood (%d)", got);
        ingest_close(&b);
        guest_vm_destroy(&vb[0]);
}

int main(void)
{
        Ingest in;
        GuestVm vm[3];
        VgpuPoolEvent ev;

        if (harness_setup() < 0)
                return 1;
        harness_start_sched(0, "A", (const char *const[]){"--max-in-flight=1", NULL});
        ok(ingest_connect(&in, harness_sock_path("A")) == 0, "ingestd's pool link to pool A is up");
        ok(attach_all(&in, vm, 3, 1), "three VMs attached, each with its own executor");
        ok(burst("A", &in, vm, 20, 1000, false), "burst: high before medium before low, FIFO within each, behind max-in-flight 1");
        ok(priority_change(&in, vm), "a VM whose priority rose keeps its order and its backlog goes first");
        ok(detach(&in, vm), "DETACHED follows once every command of the generation completed");
        vm[1].generation = 2;
        ok(ingest_attach(&in, &vm[1], 0, &ev) == 0 && ev.kind == VGPU_POOL_EVENT_ATTACHED && ev.error == 0,
           "VM 2 re-attached with a new generation");
        vm[1].buffer = alloc(&in, &vm[1], BIG);
        executor_death(&in, vm);
        ok(stat_u64("A", "completed_high") >= 20 && stat_u64("A", "failed_low") >= 10 &&
           stat_u64("A", "executor_deaths") == 1 && stat_u64("A", "executor_restarts") == 1,
           "GetStats: completed_high %llu, failed_low %llu, deaths %llu, restarts %llu",
           (unsigned long long)stat_u64("A", "completed_high"), (unsigned long long)stat_u64("A", "failed_low"),
           (unsigned long long)stat_u64("A", "executor_deaths"),
           (unsigned long long)stat_u64("A", "executor_restarts"));
        two_pools(&in, vm);
        ingest_close(&in);
        return harness_finish();
}
