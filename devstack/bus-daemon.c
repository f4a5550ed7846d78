/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The private bus: a dbus-daemon with the system bus's default policy and the project's own policy files,
 * listening on DIR/devstack/bus.sock; it is up once it prints its address. */
#include <fcntl.h>
#include <fnmatch.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "devstack.h"
#include "log.h"

#define POLICY_PATTERN "org.vgpu.*.conf"

/* In the build tree, the sources' copy; installed, the one the host's bus reads. */
static const char *const policy_sources[] = {
        VGPU_SOURCE_ROOT "/systemd-units/dbus",
        VGPU_DBUS_POLICY_DIR,
};

/* The D-Bus address syntax: bytes outside [-0-9A-Za-z_/.\*] are written %XX. */
static char *bus_address_for(const char *socket_path)
{
        static const char prefix[] = "unix:path=";
        char *a = malloc(strlen(prefix) + 3 * strlen(socket_path) + 1), *p;

        if (!a)
                return NULL;
        p = stpcpy(a, prefix);
        for (const unsigned char *c = (const unsigned char *)socket_path; *c; c++)
                if ((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                    strchr("-_/.\\*", *c))
                        *p++ = (char)*c;
                else
                        p += sprintf(p, "%%%02x", *c);
        *p = '\0';
        return a;
}

static void fputs_xml(const char *s, FILE *f)
{
        for (; *s; s++)
                switch (*s) {
                case '&':
                        fputs("&amp;", f);
                        break;
                case '<':
                        fputs("&lt;", f);
                        break;
                case '>':
                        fputs("&gt;", f);
                        break;
                case '"':
                        fputs("&quot;", f);
                        break;
                case '\'':
                        fputs("&apos;", f);
                        break;
                default:
                        fputc(*s, f);
                }
}

/* The policy of Debian's /usr/share/dbus-1/system.conf: anyone may connect, signals and replies flow,
 * nobody may own a name or call a method unless a policy file opens it, and everyone may talk to the bus. */
static const char default_policy[] =
        "  <policy context=\"default\">\n"
        "    <allow user=\"*\"/>\n"
        "    <deny own=\"*\"/>\n"
        "    <deny send_type=\"method_call\"/>\n"
        "    <allow send_type=\"signal\"/>\n"
        "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
        "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
        "    <allow receive_type=\"method_call\"/>\n"
        "    <allow receive_type=\"method_return\"/>\n"
        "    <allow receive_type=\"error\"/>\n"
        "    <allow receive_type=\"signal\"/>\n"
        "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"/>\n"
        "    <allow send_destination=\"org.freedesktop.DBus\"\n"
        "           send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
        "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus.Properties\"/>\n"
        "    <deny send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"\n"
        "          send_member=\"UpdateActivationEnvironment\"/>\n"
        "    <deny send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus.Debug.Stats\"/>\n"
        "  </policy>\n"
        "  <policy user=\"root\">\n"
        "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus.Monitoring\"/>\n"
        "  </policy>\n";

static int write_config(BusDaemon *b)
{
        _cleanup_fclose_ FILE *f = fopen(b->config_path, "we");

        if (!f)
                return log_error_errno(negative_errno(), "Failed to write %s: %m", b->config_path);
        fputs("<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
              " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
              "<!-- Written by vgpu-devstack at each start: a private system bus for vgpu's services. -->\n"
              "<busconfig>\n"
              "  <type>system</type>\n  <listen>",
              f);
        fputs_xml(b->address, f);
        fputs("</listen>\n  <auth>EXTERNAL</auth>\n", f);
        fputs(default_policy, f);
        fputs("  <includedir>", f);
        fputs_xml(b->policy_dir, f);
        fputs("</includedir>\n", f);
        if (geteuid() != 0)
                /* Only root may own org.vgpu.* by the project's policy; here the services run as us. */
                fprintf(f,
                        "  <policy user=\"%u\">\n"
                        "    <allow own_prefix=\"org.vgpu\"/>\n"
                        "    <allow send_destination_prefix=\"org.vgpu\"/>\n"
                        "  </policy>\n",
                        (unsigned)geteuid());
        fputs("</busconfig>\n", f);
        if (fflush(f) != 0 || ferror(f))
                return log_error_errno(negative_errno(), "Failed to write %s: %m", b->config_path);
        return 0;
}

static int copy_file(int from_dir, int to_dir, const char *name)
{
        _cleanup_close_ int in = openat(from_dir, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        _cleanup_close_ int out = -1;
        char buf[8192];
        ssize_t n;

        if (in < 0)
                return negative_errno();
        out = openat(to_dir, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
        if (out < 0)
                return negative_errno();
        while ((n = read(in, buf, sizeof(buf))) > 0)
                if (write(out, buf, (size_t)n) != n)
                        return errno > 0 ? -errno : -EIO;
        return n < 0 ? negative_errno() : 0;
}

/* Copies org.vgpu.*.conf into bus.d/, after emptying it: a policy file removed from the tree must not
 * linger. Finding none is not an error here; the services will say which name they could not own. */
static int install_policies(BusDaemon *b)
{
        _cleanup_(closedirp) DIR *to = opendir(b->policy_dir), *from = NULL;
        const char *source = NULL;
        struct dirent *de;
        unsigned n = 0;
        int r;

        if (!to)
                return log_error_errno(negative_errno(), "Failed to open %s: %m", b->policy_dir);
        while ((de = readdir(to)))
                if (de->d_name[0] != '.' && unlinkat(dirfd(to), de->d_name, 0) < 0)
                        return log_error_errno(negative_errno(), "Failed to remove %s/%s: %m", b->policy_dir,
                                               de->d_name);

        for (size_t i = 0; i < ELEMENTSOF(policy_sources) && !from; i++)
                if ((from = opendir(policy_sources[i])))
                        source = policy_sources[i];
        if (!from) {
                log_warning("No D-Bus policy directory found (looked in %s and %s); nobody may own org.vgpu.* "
                            "names on this bus.",
                            policy_sources[0], policy_sources[1]);
                return 0;
        }
        while ((de = readdir(from))) {
                if (fnmatch(POLICY_PATTERN, de->d_name, 0) != 0)
                        continue;
                r = copy_file(dirfd(from), dirfd(to), de->d_name);
                if (r < 0)
                        return log_error_errno(r, "Failed to copy %s/%s to %s: %m", source, de->d_name, b->policy_dir);
                n++;
        }
        log_debug("Bus policy: %u file(s) %s from %s.", n, POLICY_PATTERN, source);
        if (n == 0)
                log_warning("No %s in %s; nobody may own org.vgpu.* names on this bus.", POLICY_PATTERN, source);
        return 0;
}

static void log_user_policy(void)
{
        struct passwd *pw = getpwuid(geteuid());

        if (pw)
                log_notice("Not running as root: the services run as %s, and the bus lets %s own and call "
                           "org.vgpu.* (on a host, only root may own them).",
                           pw->pw_name, pw->pw_name);
        else
                log_notice("Not running as root: the services run as uid %u, and the bus lets that uid own "
                           "and call org.vgpu.* (on a host, only root may own them).",
                           (unsigned)geteuid());
}

static int set_paths(Stack *s, BusDaemon *b)
{
        struct sockaddr_un sa;

        b->config_path = path_join(s->devstack_dir, "bus.conf");
        b->socket_path = path_join(s->devstack_dir, "bus.sock");
        b->policy_dir = path_join(s->devstack_dir, "bus.d");
        b->pid_path = path_join(s->devstack_dir, "dbus-daemon.pid");
        b->log_path = path_join(s->log_dir, "dbus-daemon.log");
        if (!b->config_path || !b->socket_path || !b->policy_dir || !b->pid_path || !b->log_path)
                return log_oom();
        if (strlen(b->socket_path) >= sizeof(sa.sun_path))
                return log_error_errno(-ENAMETOOLONG,
                                       "The bus socket path %s is longer than a unix socket allows (%zu bytes); "
                                       "use a shorter --state-dir.",
                                       b->socket_path, sizeof(sa.sun_path) - 1);
        b->address = bus_address_for(b->socket_path);
        return b->address ? 0 : log_oom();
}

int bus_daemon_prepare(Stack *s)
{
        BusDaemon *b = &s->bus;
        int r;

        r = find_on_path("dbus-daemon", &b->binary);
        if (r == -ENOENT)
                return log_error_errno(r, "dbus-daemon was not found on PATH; install it (Debian: apt-get "
                                          "install dbus-daemon).");
        if (r < 0)
                return log_oom();
        r = set_paths(s, b);
        if (r < 0)
                return r;
        if (mkdir(b->policy_dir, 0755) < 0 && errno != EEXIST)
                return log_error_errno(negative_errno(), "Failed to create %s: %m", b->policy_dir);
        r = install_policies(b);
        if (r < 0)
                return r;
        if (geteuid() != 0)
                log_user_policy();
        return write_config(b);
}

static void bus_daemon_failed(Stack *s, const char *why)
{
        if (s->phase == STACK_STOPPING)
                return; /* already said */
        log_error("dbus-daemon %s; see %s.", why, s->bus.log_path);
        log_tail(s->bus.log_path, s->bus.log_start);
        stack_stop(s, EXIT_FAILURE);
}

static void bus_daemon_up(Stack *s, BusDaemon *b)
{
        b->address_source = sd_event_source_disable_unref(b->address_source);
        b->timer = sd_event_source_disable_unref(b->timer);
        b->address_fd = safe_close(b->address_fd);

        /* The system bus's socket is 0666: every local user may connect, the policy decides the rest. */
        if (chmod(b->socket_path, 0666) < 0)
                log_warning_errno(negative_errno(), "Failed to open %s to other users: %m", b->socket_path);
        (void)pid_file_write(b->pid_path, b->process.pid);
        log_info("The bus is up at %s (dbus-daemon pid %d).", b->socket_path, (int)b->process.pid);
        stack_bus_ready(s);
}

static int on_address(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
        Stack *s = userdata;
        BusDaemon *b = &s->bus;
        ssize_t n;

        n = read(fd, b->reply + b->reply_len, sizeof(b->reply) - 1 - b->reply_len);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n > 0) {
                b->reply_len += (size_t)n;
                b->reply[b->reply_len] = '\0';
                if (strchr(b->reply, '\n')) {
                        log_debug("dbus-daemon printed its address: %.*s", (int)strcspn(b->reply, "\n"), b->reply);
                        bus_daemon_up(s, b);
                        return 0;
                }
                if (b->reply_len < sizeof(b->reply) - 1)
                        return 0;
        }
        /* End of file, an error, or a line too long to be an address: it will not come up. */
        b->address_source = sd_event_source_disable_unref(b->address_source);
        bus_daemon_failed(s, "did not start");
        return 0;
}

static int on_bus_timeout(sd_event_source *source, uint64_t usec, void *userdata)
{
        Stack *s = userdata;

        s->bus.timer = sd_event_source_disable_unref(s->bus.timer);
        bus_daemon_failed(s, "did not print its address in time");
        return 0;
}

static int on_bus_exit(sd_event_source *source, const siginfo_t *si, void *userdata)
{
        Stack *s = userdata;
        BusDaemon *b = &s->bus;
        char how[64], why[128];

        snprintf(why, sizeof(why), "(pid %d) %s", (int)b->process.pid, exit_description(si, how, sizeof(how)));
        process_reaped(&b->process);
        pid_file_remove(b->pid_path);
        b->address_source = sd_event_source_disable_unref(b->address_source);
        b->timer = sd_event_source_disable_unref(b->timer);
        if (s->phase == STACK_STOPPING) {
                log_debug("dbus-daemon %s.", why);
                stack_stop_next(s);
        } else
                bus_daemon_failed(s, why);
        return 0;
}

int bus_daemon_start(Stack *s)
{
        BusDaemon *b = &s->bus;
        _cleanup_free_ char *config_arg = NULL;
        _cleanup_close_ int log_fd = -1, write_end = -1;
        int pipe_fds[2], r;

        config_arg = strprintf("--config-file=%s", b->config_path);
        if (!config_arg)
                return log_oom();
        log_fd = open_log(b->log_path, &b->log_start);
        if (log_fd < 0)
                return log_fd;
        if (pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) < 0)
                return log_error_errno(negative_errno(), "Failed to create a pipe: %m");
        b->address_fd = pipe_fds[0];
        write_end = pipe_fds[1];

        char *argv[] = {b->binary, (char *)"--nofork", config_arg, (char *)"--print-address=3", NULL};
        r = process_spawn(&b->process,
                          &(SpawnOptions){.path = b->binary,
                                          .argv = argv,
                                          .envp = environ,
                                          .output_fd = log_fd,
                                          .address_fd = write_end,
                                          .supervised = true},
                          on_bus_exit, s);
        if (r < 0)
                return r;
        log_debug("Started dbus-daemon (pid %d).", (int)b->process.pid);

        r = sd_event_add_io(s->event, &b->address_source, b->address_fd, EPOLLIN, on_address, s);
        if (r < 0)
                return log_error_errno(r, "Failed to watch dbus-daemon's address: %m");
        r = sd_event_add_time_relative(s->event, &b->timer, CLOCK_MONOTONIC, BUS_TIMEOUT_USEC, 0, on_bus_timeout, s);
        if (r < 0)
                return log_error_errno(r, "Failed to arm a timer: %m");
        return 0;
}

void bus_daemon_done(BusDaemon *b)
{
        b->address_source = sd_event_source_disable_unref(b->address_source);
        b->timer = sd_event_source_disable_unref(b->timer);
        b->address_fd = safe_close(b->address_fd);
        process_reaped(&b->process);
        free(b->binary);
        free(b->config_path);
        free(b->policy_dir);
        free(b->socket_path);
        free(b->log_path);
        free(b->pid_path);
        free(b->address);
}
