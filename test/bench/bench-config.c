/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Benchmark of vgpu-configd at scale: register, show and list 10,000 VMs over the bus, and the service's
 * memory. Run under vgpu-devstack (bench-config.sh does that); prints one table. */
#include <inttypes.h>
#include <stdarg.h>
#include <time.h>

#include "bus-util.h"
#include "vgpu-util.h"

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return x < y ? -1 : x > y;
}

/* One line of results; `total_ns` 0 for measurements that are not a throughput run. */
static void report(const char *what, uint64_t *ns, size_t n, uint64_t total_ns)
{
        qsort(ns, n, sizeof(*ns), cmp_u64);
        printf("%-26s %6zu calls", what, n);
        if (total_ns)
                printf("  total %7.2f s  %7.0f calls/s", (double)total_ns / 1e9, (double)n / ((double)total_ns / 1e9));
        printf("  p50 %9.1f us  p99 %9.1f us  max %9.1f us\n", (double)ns[n / 2] / 1e3,
               (double)ns[(size_t)((double)n * 0.99)] / 1e3, (double)ns[n - 1] / 1e3);
}

static void print_memory(const char *when)
{
        const char *dir = getenv("VGPU_DEVSTACK_DIR");
        char path[4096], line[256];
        FILE *f;
        int pid = 0;

        snprintf(path, sizeof(path), "%s/devstack/vgpu-configd.pid", strempty(dir));
        f = fopen(path, "re");
        if (!f || fscanf(f, "%d", &pid) != 1) {
                printf("configd memory (%s): pid file %s unreadable\n", when, path);
                if (f)
                        fclose(f);
                return;
        }
        fclose(f);
        snprintf(path, sizeof(path), "/proc/%d/status", pid);
        f = fopen(path, "re");
        if (!f)
                return;
        printf("configd memory (%s):", when);
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, "VmRSS:", 6) == 0 || strncmp(line, "VmHWM:", 6) == 0) {
                        line[strcspn(line, "\n")] = 0;
                        printf("  %s", line);
                }
        printf("\n");
        fclose(f);
}

static int call(sd_bus *bus, const char *method, sd_bus_message **reply, const char *types, ...)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, VGPU_CONFIG_SERVICE, VGPU_CONFIG_PATH, VGPU_CONFIG_INTERFACE,
                                           method);
        if (r < 0)
                return r;
        va_start(ap, types);
        r = sd_bus_message_appendv(m, types, ap);
        va_end(ap);
        if (r < 0)
                return r;
        r = sd_bus_call(bus, m, 0, &error, reply);
        if (r < 0)
                fprintf(stderr, "%s failed: %s\n", method, error.message ? error.message : strerror(-r));
        sd_bus_error_free(&error);
        return r;
}

int main(int argc, char *argv[])
{
        static const char *const prio[] = { "high", "medium", "low" };
        unsigned n = argc > 1 ? (unsigned)atoi(argv[1]) : 10000;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ uint64_t *ns = calloc(n, sizeof(uint64_t));
        uint64_t t0, total;
        int r;

        if (!ns || n == 0)
                return 1;
        r = bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, "cannot connect to the bus: %s\n", strerror(-r));
                return 1;
        }
        printf("vgpu-configd benchmark: %u VMs\n", n);
        print_memory("empty");
        r = call(bus, "CreatePool", NULL, "sua{sv}", "Bench", n, 0);
        if (r < 0)
                return 1;

        t0 = now_ns();
        for (unsigned i = 0; i < n; i++) {
                uint64_t s = now_ns();
                if (call(bus, "RegisterVm", NULL, "ussa{sv}", i + 1, "Bench", prio[i % 3], 0) < 0)
                        return 1;
                ns[i] = now_ns() - s;
        }
        total = now_ns() - t0;
        report("register-vm", ns, n, total);

        t0 = now_ns();
        for (unsigned i = 0; i < n; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                uint64_t s = now_ns();
                if (call(bus, "GetVm", &reply, "u", i + 1) < 0)
                        return 1;
                ns[i] = now_ns() - s;
        }
        total = now_ns() - t0;
        report("show-vm (GetVm)", ns, n, total);

        {
                enum { ROUNDS = 20 };
                uint64_t lns[ROUNDS], lfns[ROUNDS];
                size_t count = 0;

                for (unsigned k = 0; k < ROUNDS; k++) {
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                        BusDict *vms = NULL;
                        uint64_t s = now_ns();

                        if (call(bus, "ListVms", &reply, "ss", "", "") < 0 ||
                            bus_dict_array_read(reply, &vms, &count) < 0)
                                return 1;
                        lns[k] = now_ns() - s;
                        bus_dict_array_free(vms, count);
                        if (count != n) {
                                fprintf(stderr, "ListVms returned %zu VMs, expected %u\n", count, n);
                                return 1;
                        }
                }
                report("list-vms (all, parsed)", lns, ROUNDS, 0);
                for (unsigned k = 0; k < ROUNDS; k++) {
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                        uint64_t s = now_ns();

                        if (call(bus, "ListVms", &reply, "ss", "Bench", "high") < 0)
                                return 1;
                        lfns[k] = now_ns() - s;
                }
                report("list-vms (pool, high)", lfns, ROUNDS, 0);
        }
        print_memory("after");
        return 0;
}
