/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-schedd end to end: this program plays vgpu-ingestd against two real schedulers (pools A and B) on a
 * private D-Bus bus, with real executors serving three VMs. Speaks TAP. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "ingest.h"
#include "names.h"

#define BIG (256u << 20) /* the blocker's MEMSET: tens of ms, long enough to queue a burst behind it */

static int n_test, n_failed;
static char dir[] = "/tmp/vgpu-schedd-test-XXXXXX";
static pid_t bus_pid, sched_pid[2];

#define ok(cond, ...)                                                                                              \
        do {                                                                                                       \
                bool _c = (cond);                                                                                  \
                n_failed += !_c;                                                                                   \
                printf("%s %d - ", _c ? "ok" : "not ok", ++n_test);                                                \
                printf(__VA_ARGS__);                                                                               \
                printf("\n");                                                                                      \
                fflush(stdout);                                                                                    \
        } while (0)

static pid_t spawn(char *const argv[])
{
        pid_t pid = fork();

        if (pid == 0) {
                execv(argv[0], argv);
                _exit(127);
        }
        return pid;
}

static void start_bus(void)
{
        char conf[256], sock[256], addr[300];
        FILE *f;

        snprintf(conf, sizeof(conf), "%s/bus.conf", dir);
        snprintf(sock, sizeof(sock), "%s/bus.socket", dir);
        f = fopen(conf, "w");
        fprintf(f, "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n"
                   " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig>\n"
                   "<listen>unix:path=%s</listen><auth>EXTERNAL</auth><policy context=\"default\">"
                   "<allow user=\"*\"/><allow own=\"*\"/><allow send_type=\"method_call\"/>"
                   "<allow send_requested_reply=\"true\" send_type=\"method_return\"/>"
                   "<allow send_requested_reply=\"true\" send_type=\"error\"/>"
                   "<allow receive_type=\"method_call\"/><allow receive_type=\"method_return\"/>"
                   "<allow receive_type=\"error\"/><allow receive_type=\"signal\"/><allow send_type=\"signal\"/>"
                   "</policy></busconfig>\n", sock);
        fclose(f);
        char arg[300];
        snprintf(arg, sizeof(arg), "--config-file=%s", conf);
        bus_pid = spawn((char *[]){"/usr/bin/dbus-daemon", arg, "--nofork", "--nopidfile", NULL});
        snprintf(addr, sizeof(addr), "unix:path=%s", sock);
        setenv("DBUS_SYSTEM_BUS_ADDRESS", addr, 1);
        for (int i = 0; i < 200 && access(sock, F_OK) != 0; i++)
                usleep(10000);
}

static void start_sched(int i, const char *pool, const char *max_in_flight)
{
        char exe[512], a_pool[64], a_mif[64], sock[256];
        const char *build = getenv("VGPU_BUILD_DIR");

        snprintf(exe, sizeof(exe), "%s/vgpu-schedd", build ? build : ".");
        snprintf(a_pool, sizeof(a_pool), "--pool=%s", pool);
        snprintf(a_mif, sizeof(a_mif), "--max-in-flight=%s", max_in_flight);
        snprintf(sock, sizeof(sock), "%s/run/sched/%s.sock", dir, pool);
        sched_pid[i] = spawn((char *[]){exe, a_pool, a_mif, NULL});
        for (int k = 0; k < 500 && access(sock, F_OK) != 0; k++)
                usleep(10000);
}

static char *sock_path(const char *pool)
{
        static char p[256];

        snprintf(p, sizeof(p), "%s/run/sched/%s.sock", dir, pool);
        return p;
}

static void stop_all(void)
{
        for (int i = 0; i < 2; i++)
                if (sched_pid[i] > 0) {
                        kill(sched_pid[i], SIGTERM);
                        waitpid(sched_pid[i], NULL, 0);
                }
        if (bus_pid > 0) {
                kill(bus_pid, SIGTERM);
                waitpid(bus_pid, NULL, 0);
        }
}

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

static uint32_t stat_u32(const char *pool, const char *want);

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

static int bus_call(const char *pool, const char *method, sd_bus_message **ret)
{
        char name[64];
        sd_bus *bus = NULL;
        int r;

        snprintf(name, sizeof(name), "org.vgpu.Scheduler.%s", pool);
        r = sd_bus_open_system(&bus);
        if (r < 0)
                return r;
        r = sd_bus_call_method(bus, name, "/org/vgpu/Scheduler1", "org.vgpu.Scheduler1", method, NULL, ret, "");
        sd_bus_flush_close_unref(bus);
        return r;
}

static pid_t executor_pid(const char *pool, uint32_t vm_id)
{
        sd_bus_message *m = NULL;
        pid_t pid = 0;
        uint32_t id, p;
        const char *key;

        if (bus_call(pool, "ListVms", &m) < 0)
                return 0;
        sd_bus_message_enter_container(m, 'a', "a{sv}");
        while (sd_bus_message_enter_container(m, 'a', "{sv}") > 0) {
                id = 0, p = 0;
                while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                        sd_bus_message_read(m, "s", &key);
                        if (strcmp(key, "vm_id") == 0)
                                sd_bus_message_read(m, "v", "u", &id);
                        else if (strcmp(key, "executor_pid") == 0)
                                sd_bus_message_read(m, "v", "u", &p);
                        else
                                sd_bus_message_skip(m, "v");
                        sd_bus_message_exit_container(m);
                }
                sd_bus_message_exit_container(m);
                if (id == vm_id)
                        pid = (pid_t)p;
        }
        sd_bus_message_unref(m);
        return pid;
}

static uint64_t stat_u64(const char *pool, const char *want)
{
        sd_bus_message *m = NULL;
        const char *key;
        uint64_t v = UINT64_MAX;

        if (bus_call(pool, "GetStats", &m) < 0)
                return v;
        sd_bus_message_enter_container(m, 'a', "{sv}");
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                sd_bus_message_read(m, "s", &key);
                if (strcmp(key, want) == 0)
                        sd_bus_message_read(m, "v", "t", &v);
                else
                        sd_bus_message_skip(m, "v");
                sd_bus_message_exit_container(m);
        }
        sd_bus_message_unref(m);
        return v;
}

static uint32_t stat_u32(const char *pool, const char *want)
{
        sd_bus_message *m = NULL;
        const char *key;
        uint32_t v = UINT32_MAX;

        if (bus_call(pool, "GetStats", &m) < 0)
                return v;
        sd_bus_message_enter_container(m, 'a', "{sv}");
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                sd_bus_message_read(m, "s", &key);
                if (strcmp(key, want) == 0)
                        sd_bus_message_read(m, "v", "u", &v);
                else
                        sd_bus_message_skip(m, "v");
                sd_bus_message_exit_container(m);
        }
        sd_bus_message_unref(m);
        return v;
}

static void executor_death(Ingest *in, GuestVm *vm)
{
        uint64_t keys[16];
        uint32_t st[16];
        VgpuPoolEvent ev;
        VgpuHostCompletion c;
        pid_t pid = executor_pid("A", vm[2].vm_id);
        int dead = 0, got, r;

        ok(pid > 0, "ListVms names VM 3's executor (pid %d)", (int)pid);
        block(in, &vm[0], 4100);
        for (uint64_t s = 4001; s <= 4005; s++)
                ingest_submit(in, &vm[2], PRIORITY_LOW, &(VgpuRequestDesc){.opcode = VGPU_OP_SYNC, .seq = s});
        ingest_publish(in);
        usleep(5000);
        kill(pid, SIGKILL);
        got = collect(in, 15, keys, st);
        for (int i = 0; i < got; i++)
                dead += (keys[i] >> 32) == vm[2].vm_id && st[i] == VGPU_STATUS_DEVICE_ERROR;
        ok(got == 15 && dead == 5, "kill -9 of VM 3's executor: its 5 commands complete DEVICE_ERROR (%d)", dead);
        r = ingest_event(in, INGEST_WAIT_MS, &ev);
        ok(r == 0 && ev.kind == VGPU_POOL_EVENT_EXECUTOR_DIED && ev.vm_id == vm[2].vm_id,
           "EXECUTOR_DIED is sent for VM 3");
        r = ingest_call(in, &vm[0], PRIORITY_LOW, &(VgpuRequestDesc){.opcode = VGPU_OP_SYNC, .seq = 4100}, &c);
        ok(r == 0 && c.cpl.status == VGPU_STATUS_OK, "VM 1 is unaffected by VM 3's executor dying");
        r = ingest_call(in, &vm[2], PRIORITY_HIGH, &(VgpuRequestDesc){.opcode = VGPU_OP_SYNC, .seq = 4101}, &c);
        ok(r == 0 && c.cpl.status == VGPU_STATUS_DEVICE_ERROR, "VM 3's later commands complete DEVICE_ERROR until re-attached");
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

        start_sched(1, "B", "4");
        ok(ingest_connect(&b, sock_path("B")) == 0 && attach_all(&b, vb, 1, 11), "pool B: connected, VM 11 attached");
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
        char run[256];
        Ingest in;
        GuestVm vm[3];
        VgpuPoolEvent ev;

        if (!mkdtemp(dir))
                return 1;
        snprintf(run, sizeof(run), "%s/run", dir);
        mkdir(run, 0755);
        setenv("VGPU_RUNTIME_DIR", run, 1);
        start_bus();
        start_sched(0, "A", "1");
        ok(ingest_connect(&in, sock_path("A")) == 0, "ingestd's pool link to pool A is up");
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
           stat_u64("A", "executor_deaths") == 1, "GetStats: completed_high %llu, failed_low %llu, deaths %llu",
           (unsigned long long)stat_u64("A", "completed_high"), (unsigned long long)stat_u64("A", "failed_low"),
           (unsigned long long)stat_u64("A", "executor_deaths"));
        two_pools(&in, vm);
        ingest_close(&in);
        stop_all();
        printf("1..%d\n", n_test);
        return n_failed ? 1 : 0;
}
