/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The scheduler tests' harness: a private bus, real schedulers, their D-Bus records. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "harness.h"

int harness_n_test, harness_n_failed;

static char dir[] = "/tmp/vgpu-schedd-test-XXXXXX";
static pid_t bus_pid, sched_pid[HARNESS_SCHEDULERS_MAX];

static pid_t spawn(char *const argv[])
{
        pid_t pid = fork();

        if (pid == 0) {
                execv(argv[0], argv);
                _exit(127);
        }
        return pid;
}

static int start_bus(void)
{
        char conf[256], sock[256], addr[300], arg[300];
        FILE *f;

        snprintf(conf, sizeof(conf), "%s/bus.conf", dir);
        snprintf(sock, sizeof(sock), "%s/bus.socket", dir);
        f = fopen(conf, "w");
        if (!f)
                return -errno;
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
        snprintf(arg, sizeof(arg), "--config-file=%s", conf);
        bus_pid = spawn((char *[]){"/usr/bin/dbus-daemon", arg, "--nofork", "--nopidfile", NULL});
        snprintf(addr, sizeof(addr), "unix:path=%s", sock);
        setenv("DBUS_SYSTEM_BUS_ADDRESS", addr, 1);
        for (int i = 0; i < 200 && access(sock, F_OK) != 0; i++)
                usleep(10000);
        return access(sock, F_OK) == 0 ? 0 : -ETIMEDOUT;
}

int harness_setup(void)
{
        char run[256];

        if (!mkdtemp(dir))
                return -errno;
        snprintf(run, sizeof(run), "%s/run", dir);
        if (mkdir(run, 0755) < 0)
                return -errno;
        setenv("VGPU_RUNTIME_DIR", run, 1);
        return start_bus();
}

const char *harness_sock_path(const char *pool)
{
        static char p[256];

        snprintf(p, sizeof(p), "%s/run/sched/%s.sock", dir, pool);
        return p;
}

pid_t harness_start_sched(int i, const char *pool, const char *const *options)
{
        char exe[512], a_pool[64];
        const char *build = getenv("VGPU_BUILD_DIR");
        char *argv[16];
        int n = 0;

        snprintf(exe, sizeof(exe), "%s/vgpu-schedd", build ? build : ".");
        snprintf(a_pool, sizeof(a_pool), "--pool=%s", pool);
        argv[n++] = exe;
        argv[n++] = a_pool;
        for (; options && *options && n < 15; options++)
                argv[n++] = (char *)*options;
        argv[n] = NULL;
        sched_pid[i] = spawn(argv);
        for (int k = 0; k < 500 && access(harness_sock_path(pool), F_OK) != 0; k++)
                usleep(10000);
        return sched_pid[i];
}

int harness_finish(void)
{
        for (int i = 0; i < HARNESS_SCHEDULERS_MAX; i++)
                if (sched_pid[i] > 0) {
                        kill(sched_pid[i], SIGTERM);
                        waitpid(sched_pid[i], NULL, 0);
                }
        if (bus_pid > 0) {
                kill(bus_pid, SIGTERM);
                waitpid(bus_pid, NULL, 0);
        }
        if (harness_n_failed == 0) {
                char cmd[300];

                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
                (void)!system(cmd);
        } else
                printf("# state kept in %s\n", dir);
        printf("1..%d\n", harness_n_test);
        return harness_n_failed ? 1 : 0;
}

int harness_bus_call(const char *pool, const char *method, void *ret_message)
{
        char name[64];
        sd_bus *bus = NULL;
        int r;

        snprintf(name, sizeof(name), "org.vgpu.Scheduler.%s", pool);
        r = sd_bus_open_system(&bus);
        if (r < 0)
                return r;
        r = sd_bus_call_method(bus, name, "/org/vgpu/Scheduler1", "org.vgpu.Scheduler1", method, NULL,
                               (sd_bus_message **)ret_message, "");
        sd_bus_flush_close_unref(bus);
        return r;
}

const char *harness_property(const char *pool, const char *name, char *buf, size_t size)
{
        char service[64];
        sd_bus *bus = NULL;
        char *v = NULL;

        buf[0] = 0;
        snprintf(service, sizeof(service), "org.vgpu.Scheduler.%s", pool);
        if (sd_bus_open_system(&bus) < 0)
                return buf;
        if (sd_bus_get_property_string(bus, service, "/org/vgpu/Scheduler1", "org.vgpu.Scheduler1", name, NULL,
                                       &v) >= 0)
                snprintf(buf, size, "%s", v);
        free(v);
        sd_bus_flush_close_unref(bus);
        return buf;
}

/* Reads the current {sv} entry's variant into a number or a string, whatever its type among u, t, s. */
static void read_variant(sd_bus_message *m, uint64_t *ret_u, char *buf, size_t size)
{
        const char *contents = NULL, *str;
        uint32_t u32;
        uint64_t u64;

        sd_bus_message_peek_type(m, NULL, &contents);
        if (contents && strcmp(contents, "u") == 0 && sd_bus_message_read(m, "v", "u", &u32) >= 0)
                *ret_u = u32;
        else if (contents && strcmp(contents, "t") == 0 && sd_bus_message_read(m, "v", "t", &u64) >= 0)
                *ret_u = u64;
        else if (contents && strcmp(contents, "s") == 0 && sd_bus_message_read(m, "v", "s", &str) >= 0) {
                if (buf)
                        snprintf(buf, size, "%s", str);
        } else
                sd_bus_message_skip(m, "v");
}

/* Finds `key` in the a{sv} the message is at (entered by the caller). */
static void dict_find(sd_bus_message *m, const char *key, uint64_t *ret_u, char *buf, size_t size)
{
        const char *k;

        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                sd_bus_message_read(m, "s", &k);
                if (strcmp(k, key) == 0)
                        read_variant(m, ret_u, buf, size);
                else
                        sd_bus_message_skip(m, "v");
                sd_bus_message_exit_container(m);
        }
}

uint64_t stat_u64(const char *pool, const char *key)
{
        sd_bus_message *m = NULL;
        uint64_t v = UINT64_MAX;

        if (harness_bus_call(pool, "GetStats", &m) < 0)
                return v;
        sd_bus_message_enter_container(m, 'a', "{sv}");
        dict_find(m, key, &v, NULL, 0);
        sd_bus_message_unref(m);
        return v;
}

uint32_t stat_u32(const char *pool, const char *key)
{
        uint64_t v = stat_u64(pool, key);

        return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* The record of vm_id in ListVms: `key` as a number and/or a string. */
static void vm_record(const char *pool, uint32_t vm_id, const char *key, uint64_t *ret_u, char *buf, size_t size)
{
        sd_bus_message *m = NULL;

        if (harness_bus_call(pool, "ListVms", &m) < 0)
                return;
        sd_bus_message_enter_container(m, 'a', "a{sv}");
        while (sd_bus_message_enter_container(m, 'a', "{sv}") > 0) {
                uint64_t id = 0;

                /* vm_id comes first in every record (sched-bus.c), so one pass finds both. */
                if (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                        const char *k;

                        sd_bus_message_read(m, "s", &k);
                        read_variant(m, &id, NULL, 0);
                        sd_bus_message_exit_container(m);
                }
                if (id == vm_id)
                        dict_find(m, key, ret_u, buf, size);
                else
                        dict_find(m, "", ret_u, NULL, 0); /* no key is empty: skips the record */
                sd_bus_message_exit_container(m);
        }
        sd_bus_message_unref(m);
}

uint64_t vm_u64(const char *pool, uint32_t vm_id, const char *key)
{
        uint64_t v = UINT64_MAX;

        vm_record(pool, vm_id, key, &v, NULL, 0);
        return v;
}

const char *vm_string(const char *pool, uint32_t vm_id, const char *key, char *buf, size_t size)
{
        uint64_t ignored;

        buf[0] = 0;
        vm_record(pool, vm_id, key, &ignored, buf, size);
        return buf;
}
