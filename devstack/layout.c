/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The state directory (its layout, its lock, the runtime directory emptied at each start), the
 * environment exported to the services and COMMAND, pid files, and the logs. */
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "devstack.h"
#include "log.h"

char *strprintf(const char *format, ...)
{
        va_list ap;
        char *p;
        int r;

        va_start(ap, format);
        r = vasprintf(&p, format, ap);
        va_end(ap);
        return r < 0 ? NULL : p; /* on failure vasprintf() leaves p undefined */
}

char *path_join(const char *dir, const char *name)
{
        return strprintf("%s/%s", dir, name);
}

/* Creates `path` and its missing parents with `mode`. */
static int mkdir_parents(const char *path, mode_t mode)
{
        _cleanup_free_ char *copy = strdup(path);

        if (!copy)
                return -ENOMEM;
        for (char *p = copy + 1;; p++) {
                if (*p != '/' && *p != '\0')
                        continue;
                char saved = *p;
                *p = '\0';
                if (mkdir(copy, mode) < 0 && errno != EEXIST)
                        return negative_errno();
                *p = saved;
                if (saved == '\0')
                        return 0;
        }
}

/* A directory of ours, with exactly `mode` whatever the umask: other users' clients must reach the bus
 * socket and the runtime directory. */
static int make_dir(Stack *s, char **ret, const char *parent, const char *name, mode_t mode)
{
        _cleanup_free_ char *path = path_join(parent, name);
        struct stat st;

        if (!path)
                return log_oom();
        if (mkdir(path, mode) < 0 && errno != EEXIST)
                return log_error_errno(negative_errno(), "Failed to create %s: %m", path);
        if (lstat(path, &st) < 0)
                return log_error_errno(negative_errno(), "Failed to look at %s: %m", path);
        if (!S_ISDIR(st.st_mode))
                return log_error_errno(-ENOTDIR, "%s is in the way: it is not a directory.", path);
        if ((st.st_mode & 07777) != mode && chmod(path, mode) < 0)
                return log_error_errno(negative_errno(), "Failed to set the mode of %s: %m", path);
        if (ret)
                *ret = TAKE_PTR(path);
        return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
        if (remove(path) < 0 && errno != ENOENT)
                return log_error_errno(negative_errno(), "Failed to remove %s: %m", path);
        return 0;
}

/* Empties the runtime directory left by the last run: its sockets and files belong to processes that are
 * gone. Symbolic links are removed, never followed. */
static int reset_runtime_dir(Stack *s)
{
        struct stat st;

        if (lstat(s->runtime_dir, &st) == 0 &&
            nftw(s->runtime_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0)
                return -EIO;
        return make_dir(s, NULL, s->state_dir, "run", 0755);
}

/* Pid files and sockets of the last run would mislead: a pid may have been reused since. */
static void remove_stale_files(Stack *s)
{
        static const char *const patterns[] = {"*.pid", "*.notify", "*.tmp", "bus.sock", "bus.conf"};
        _cleanup_(closedirp) DIR *d = opendir(s->devstack_dir);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d)))
                for (size_t i = 0; i < ELEMENTSOF(patterns); i++)
                        if (fnmatch(patterns[i], de->d_name, 0) == 0) {
                                if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT)
                                        log_warning_errno(negative_errno(), "Failed to remove %s/%s: %m",
                                                          s->devstack_dir, de->d_name);
                                break;
                        }
}

/* Two devstacks on one directory would share a database and fight over the bus socket. */
static int take_lock(Stack *s)
{
        _cleanup_free_ char *path = path_join(s->devstack_dir, "lock");

        if (!path)
                return log_oom();
        s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
        if (s->lock_fd < 0)
                return log_error_errno(negative_errno(), "Failed to open %s: %m", path);
        if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno == EWOULDBLOCK)
                        return log_error_errno(-EBUSY, "Another vgpu-devstack is running on %s.", s->state_dir);
                return log_error_errno(negative_errno(), "Failed to lock %s: %m", path);
        }
        return 0;
}

int layout_prepare(Stack *s, const char *state_dir)
{
        bool existed = access(state_dir, F_OK) == 0;
        char resolved[PATH_MAX];
        int r;

        r = mkdir_parents(state_dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create the state directory %s: %m", state_dir);
        if (!realpath(state_dir, resolved))
                return log_error_errno(negative_errno(), "Failed to resolve %s: %m", state_dir);
        /* 0755 whatever the umask, so that other users' clients reach the bus; an existing directory keeps
         * the mode its owner chose. */
        if (!existed && chmod(resolved, 0755) < 0)
                return log_error_errno(negative_errno(), "Failed to set the mode of %s: %m", resolved);
        s->state_dir = strdup(resolved);
        if (!s->state_dir)
                return log_oom();

        r = make_dir(s, &s->devstack_dir, s->state_dir, "devstack", 0755);
        if (r < 0)
                return r;
        r = take_lock(s);
        if (r < 0)
                return r;
        remove_stale_files(s);
        r = make_dir(s, &s->log_dir, s->state_dir, "log", 0755);
        if (r < 0)
                return r;
        s->runtime_dir = path_join(s->state_dir, "run");
        if (!s->runtime_dir)
                return log_oom();
        return reset_runtime_dir(s);
}

int layout_export_environment(const Stack *s)
{
        const struct {
                const char *name;
                const char *value;
        } vars[] = {
                {"DBUS_SYSTEM_BUS_ADDRESS", s->bus.address},
                {"VGPU_RUNTIME_DIR", s->runtime_dir},
                {"VGPU_STATE_DIR", s->state_dir},
                {"VGPU_DEVSTACK_DIR", s->state_dir},
        };

        for (size_t i = 0; i < ELEMENTSOF(vars); i++)
                if (setenv(vars[i].name, vars[i].value, 1) < 0)
                        return log_oom();
        /* Each service gets its own; COMMAND gets none, and devstack's own manager (if any) is not theirs. */
        (void)unsetenv("NOTIFY_SOCKET");
        return 0;
}

static void print_shell_quoted(const char *name, const char *value)
{
        printf("export %s='", name);
        for (const char *p = value; *p; p++)
                if (*p == '\'')
                        fputs("'\\''", stdout);
                else
                        putchar(*p);
        fputs("'\n", stdout);
}

/* Lines a shell can eval to reach this stack from elsewhere. */
void layout_print_environment(const Stack *s)
{
        print_shell_quoted("DBUS_SYSTEM_BUS_ADDRESS", s->bus.address);
        print_shell_quoted("VGPU_RUNTIME_DIR", s->runtime_dir);
        print_shell_quoted("VGPU_STATE_DIR", s->state_dir);
        print_shell_quoted("VGPU_DEVSTACK_DIR", s->state_dir);
        fflush(stdout);
}

/* Opens a log for appending; *ret_start is where the new output will begin. */
int open_log(const char *path, off_t *ret_start)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0644);
        off_t end;

        if (fd < 0)
                return log_error_errno(negative_errno(), "Failed to open %s: %m", path);
        end = lseek(fd, 0, SEEK_END);
        *ret_start = end < 0 ? 0 : end;
        return TAKE_FD(fd);
}

/* Shows on stderr the last lines that a process wrote to its log since `start`. */
void log_tail(const char *path, off_t start)
{
        enum { MAX_BYTES = 16384 };
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        _cleanup_free_ char *buf = malloc(MAX_BYTES + 1);
        struct stat st;
        ssize_t n;

        if (fd < 0 || !buf || fstat(fd, &st) < 0)
                return;
        if (st.st_size - start > MAX_BYTES)
                start = st.st_size - MAX_BYTES;
        n = pread(fd, buf, MAX_BYTES, start);
        if (n <= 0) {
                fprintf(stderr, "vgpu-devstack: Nothing was written to %s.\n", path);
                return;
        }
        buf[n] = '\0';

        /* Back up from the end over LOG_TAIL_LINES line breaks (ignoring a final one). */
        size_t begin = (size_t)n, lines = 0;
        if (begin > 0 && buf[begin - 1] == '\n')
                buf[--begin] = '\0';
        while (begin > 0 && !(buf[begin - 1] == '\n' && ++lines == LOG_TAIL_LINES))
                begin--;
        fprintf(stderr, "vgpu-devstack: The end of %s:\n", path);
        for (char *line = buf + begin, *next; line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                fprintf(stderr, "    %s\n", line);
        }
}

/* Written whole or not at all: a reader never sees half a pid. */
int pid_file_write(const char *path, pid_t pid)
{
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        char line[32];
        int len;

        tmp = strprintf("%s.tmp", path);
        if (!tmp)
                return log_oom();
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd < 0)
                return log_error_errno(negative_errno(), "Failed to write %s: %m", tmp);
        len = snprintf(line, sizeof(line), "%d\n", (int)pid);
        if (write(fd, line, (size_t)len) != len || rename(tmp, path) < 0) {
                int r = negative_errno();
                (void)unlink(tmp);
                return log_error_errno(r, "Failed to write %s: %m", path);
        }
        return 0;
}

void pid_file_remove(const char *path)
{
        if (unlink(path) < 0 && errno != ENOENT)
                log_warning_errno(negative_errno(), "Failed to remove %s: %m", path);
}

int find_on_path(const char *name, char **ret)
{
        const char *path = getenv("PATH");

        if (isempty(path))
                path = "/usr/local/bin:/usr/bin:/bin";
        for (const char *p = path; *p;) {
                size_t n = strcspn(p, ":");
                _cleanup_free_ char *candidate = NULL;

                if (n > 0 && !(candidate = strprintf("%.*s/%s", (int)n, p, name)))
                        return -ENOMEM;
                if (candidate && access(candidate, X_OK) == 0) {
                        *ret = TAKE_PTR(candidate);
                        return 0;
                }
                p += n;
                if (*p == ':')
                        p++;
        }
        return -ENOENT;
}
