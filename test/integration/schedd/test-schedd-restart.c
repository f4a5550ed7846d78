/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-schedd's executor restarts, end to end: this program plays vgpu-ingestd against real schedulers with
 * small restart limits, kills executors with SIGKILL and checks the restart, the crash-loop limit, the
 * window, the reconnect that clears it, and the pool mode a scheduler without vgpu-configd reports and
 * passes to its executors. Speaks TAP. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "ingest.h"
#include "names.h"
#include "vgpu-util.h"

static uint32_t sync_status(Ingest *in, GuestVm *vm, uint64_t seq)
{
        VgpuHostCompletion c;

        if (ingest_call(in, vm, PRIORITY_MEDIUM, &(VgpuRequestDesc){.opcode = VGPU_OP_SYNC, .seq = seq}, &c) < 0)
                return UINT32_MAX;
        return c.cpl.status;
}

/* SIGKILL to the VM's executor; waits until the scheduler has seen it go. */
static bool kill_executor(const char *pool, const GuestVm *vm)
{
        char state[32];
        pid_t pid = (pid_t)vm_u64(pool, vm->vm_id, "executor_pid");

        if (pid <= 0 || pid == (pid_t)UINT32_MAX || kill(pid, SIGKILL) < 0)
                return false;
        for (int i = 0; i < 500; i++) {
                if (!streq(vm_string(pool, vm->vm_id, "state", state, sizeof(state)), "running"))
                        return true;
                usleep(10000);
        }
        return false;
}

static bool attach(Ingest *in, GuestVm *vm)
{
        VgpuPoolEvent ev;

        return ingest_attach(in, vm, 0, &ev) == 0 && ev.kind == VGPU_POOL_EVENT_ATTACHED && ev.error == 0;
}

/* --restart-limit=2: two deaths are restarted, the third suspends the VM until it reconnects. */
static void crash_loop(void)
{
        Ingest in;
        GuestVm vm;
        VgpuPoolEvent ev;
        char state[32];
        bool restarted = true;

        harness_start_sched(0, "C", (const char *const[]){"--restart-limit=2", "--restart-window-sec=600", NULL});
        ok(ingest_connect(&in, harness_sock_path("C")) == 0 && guest_vm_create(&vm, 21, 1) == 0 && attach(&in, &vm),
           "pool C (restart limit 2 in 600 s): VM 21 attached");
        for (uint64_t k = 1; k <= 2; k++)
                restarted = restarted && kill_executor("C", &vm) && sync_status(&in, &vm, k) == VGPU_STATUS_OK &&
                            vm_u64("C", vm.vm_id, "executor_restarts") == k;
        ok(restarted, "two kills: each time the next command is served by a fresh executor");
        ok(kill_executor("C", &vm), "a third kill within the window");
        ok(sync_status(&in, &vm, 10) == VGPU_STATUS_UNAVAILABLE && sync_status(&in, &vm, 11) == VGPU_STATUS_UNAVAILABLE,
           "past the limit the VM's commands complete UNAVAILABLE, without a restart");
        ok(streq(vm_string("C", vm.vm_id, "state", state, sizeof(state)), "suspended") &&
           vm_u64("C", vm.vm_id, "executor_deaths") == 3 && vm_u64("C", vm.vm_id, "executor_restarts") == 2 &&
           vm_u64("C", vm.vm_id, "executor_pid") == 0,
           "ListVms: suspended, 3 deaths, 2 restarts, no executor (%s)", state);
        ok(stat_u32("C", "restart_limit") == 2 && stat_u64("C", "restart_window_sec") == 600,
           "GetStats reports the limit: 2 restarts in 600 s");
        ok(ingest_send_detach(&in, &vm, VGPU_STATUS_CHANNEL_CLOSED) == 0 &&
           ingest_event(&in, INGEST_WAIT_MS, &ev) == 0 && ev.kind == VGPU_POOL_EVENT_DETACHED,
           "a suspended VM detaches at once");
        vm.generation = 2;
        ok(attach(&in, &vm) && sync_status(&in, &vm, 20) == VGPU_STATUS_OK &&
           vm_u64("C", vm.vm_id, "executor_restarts") == 0,
           "reconnected (new attachment): served again, with a clean restart record");
        ingest_close(&in);
        guest_vm_destroy(&vm);
}

/* Without vgpu-configd the pool keeps the default mode, and its executors are told so. */
static void mode_without_configd(void)
{
        char mode[32], gpu[64], cmdline[512] = {}, path[64];
        pid_t pid = (pid_t)vm_u64("D", 31, "executor_pid");
        ssize_t n = -1;
        int fd;

        ok(streq(harness_property("D", "Mode", mode, sizeof(mode)), "isolated") &&
           streq(harness_property("D", "GpuResource", gpu, sizeof(gpu)), ""),
           "no configd: Mode is 'isolated', GpuResource '' ('%s', '%s')", mode, gpu);
        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                n = read(fd, cmdline, sizeof(cmdline) - 1);
                close(fd);
        }
        for (ssize_t i = 0; i < n; i++)
                cmdline[i] = cmdline[i] ? cmdline[i] : ' ';
        ok(n > 0 && strstr(cmdline, "--pool-mode=isolated"), "the executor was started with --pool-mode=isolated");
}

/* --restart-limit=1 --restart-window-sec=1: once the window has passed, the next command restarts it. */
static void window_passes(void)
{
        Ingest in;
        GuestVm vm;
        char state[32];

        harness_start_sched(1, "D", (const char *const[]){"--restart-limit=1", "--restart-window-sec=1", NULL});
        ok(ingest_connect(&in, harness_sock_path("D")) == 0 && guest_vm_create(&vm, 31, 1) == 0 && attach(&in, &vm),
           "pool D (restart limit 1 in 1 s): VM 31 attached");
        ok(kill_executor("D", &vm) && sync_status(&in, &vm, 1) == VGPU_STATUS_OK, "first kill: restarted");
        ok(kill_executor("D", &vm) && sync_status(&in, &vm, 2) == VGPU_STATUS_UNAVAILABLE,
           "second kill within 1 s: UNAVAILABLE");
        usleep(1100 * 1000);
        ok(sync_status(&in, &vm, 3) == VGPU_STATUS_OK &&
           streq(vm_string("D", vm.vm_id, "state", state, sizeof(state)), "running") &&
           vm_u64("D", vm.vm_id, "executor_restarts") == 2,
           "after the window the next command restarts it (%s)", state);
        mode_without_configd();
        ingest_close(&in);
        guest_vm_destroy(&vm);
}

int main(void)
{
        if (harness_setup() < 0)
                return 1;
        crash_loop();
        window_passes();
        return harness_finish();
}
