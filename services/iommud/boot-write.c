/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reading and replacing the GRUB defaults file, backups, and running xen-cmdline. */
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "boot-write.h"
#include "log.h"

#define GRUB_FILE_MAX (1024u * 1024u)
#define TOOL_OUTPUT_MAX (64u * 1024u)

extern char **environ;

void grub_defaults_done(GrubDefaults *g)
{
        free(g->text);
        free(g->value);
        *g = (GrubDefaults){ 0 };
}

/* The value after "GRUB_CMDLINE_LINUX=": "…", '…' or a bare word; NULL for anything else. */
static char *parse_value(const char *p, const char *end)
{
        char quote = (*p == '"' || *p == '\'') ? *p : 0;
        const char *close;

        if (!quote) {
                size_t n = strcspn(p, " \t\n#$`\\\"'");
                return p[n] == '\0' || strchr(" \t\n#", p[n]) ? strndup(p, n) : NULL;
        }
        close = memchr(p + 1, quote, (size_t)(end - p - 1));
        if (!close)
                return NULL;
        /* Only plain words: no expansion, escape or command substitution that a rewrite could change. */
        for (const char *q = p + 1; q < close; q++)
                if (strchr("$`\\\"'", *q))
                        return NULL;
        return strndup(p + 1, (size_t)(close - p - 1));
}

int grub_defaults_read(const Sysroot *root, GrubDefaults *ret, char why[static IOMMU_WHY_MAX])
{
        GrubDefaults g = { 0 };
        const char *p;
        int r;

        r = sysroot_read_file(root, GRUB_DEFAULTS, GRUB_FILE_MAX, &g.text, NULL);
        if (r == -ENOENT) {
                snprintf(why, IOMMU_WHY_MAX, "There is no /%s below %s: this boot loader is not set up the way "
                         "vgpu-iommud edits; add the proposed parameters to the kernel command line by hand.",
                         GRUB_DEFAULTS, root->path);
                return IOMMU_E_NOT_SUPPORTED;
        }
        if (r < 0)
                return r;
        for (p = g.text; *p; p += strcspn(p, "\n") + (p[strcspn(p, "\n")] == '\n')) {
                const char *s = p + strspn(p, " \t"), *end = p + strcspn(p, "\n");

                if (strncmp(s, "GRUB_CMDLINE_LINUX=", 19) != 0)
                        continue;
                free(g.value);
                g.value = parse_value(s + 19, end);
                g.line_start = (size_t)(p - g.text);
                g.line_end = (size_t)(end - g.text);
                if (!g.value) {
                        snprintf(why, IOMMU_WHY_MAX, "GRUB_CMDLINE_LINUX in /%s is more than plain words in quotes; "
                                 "edit it by hand.", GRUB_DEFAULTS);
                        grub_defaults_done(&g);
                        return IOMMU_E_NOT_SUPPORTED;
                }
        }
        if (!g.value && !(g.value = strdup(""))) {
                grub_defaults_done(&g);
                return -ENOMEM;
        }
        *ret = g;
        return 0;
}

static int write_all(int fd, const char *data, size_t n)
{
        while (n > 0) {
                ssize_t k = write(fd, data, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return negative_errno();
                data += k;
                n -= (size_t)k;
        }
        return 0;
}

/* Writes `contents` to a new file beside `path`, syncs it and renames it over `path`. */
static int replace_atomic(const char *path, const char *contents, size_t n, mode_t mode)
{
        _cleanup_free_ char *tmp = NULL, *dir_copy = strdup(path);
        _cleanup_close_ int fd = -1, dir = -1;
        int r;

        if (!dir_copy || asprintf(&tmp, "%s.vgpu-tmp-XXXXXX", path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        r = fchmod(fd, mode) < 0 ? negative_errno() : write_all(fd, contents, n);
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r >= 0 && rename(tmp, path) < 0)
                r = negative_errno();
        if (r < 0) {
                (void)unlink(tmp);
                return r;
        }
        dir = open(dirname(dir_copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir >= 0)
                (void)fsync(dir);
        return 0;
}

int file_backup(const Sysroot *root, const char *rel, uint64_t usec, char **ret)
{
        _cleanup_free_ char *path = sysroot_path(root, rel), *backup = NULL, *text = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        size_t n;
        int r;

        if (!path)
                return -errno;
        if (stat(path, &st) < 0)
                return negative_errno();
        r = sysroot_read_file(root, rel, GRUB_FILE_MAX * 8, &text, &n);
        if (r < 0)
                return r;
        if (asprintf(&backup, "%s.vgpu-backup-%llu", path, (unsigned long long)usec) < 0)
                return -ENOMEM;
        fd = open(backup, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, st.st_mode & 07777);
        if (fd < 0)
                return negative_errno();
        r = write_all(fd, text, n);
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r < 0)
                return r;
        *ret = TAKE_PTR(backup);
        return 0;
}

int grub_defaults_write(const Sysroot *root, const GrubDefaults *g, const char *value, char **ret_backup)
{
        _cleanup_free_ char *path = sysroot_path(root, GRUB_DEFAULTS), *text = NULL, *backup = NULL;
        struct timespec ts;
        struct stat st;
        int r;

        if (!path)
                return -errno;
        if (stat(path, &st) < 0)
                return negative_errno();
        if (g->line_start == g->line_end)
                r = asprintf(&text, "%s%sGRUB_CMDLINE_LINUX=\"%s\"\n", g->text,
                             *g->text && g->text[strlen(g->text) - 1] != '\n' ? "\n" : "", value);
        else
                r = asprintf(&text, "%.*sGRUB_CMDLINE_LINUX=\"%s\"%s", (int)g->line_start, g->text, value,
                             g->text + g->line_end);
        if (r < 0)
                return -ENOMEM;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = file_backup(root, GRUB_DEFAULTS, (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u, &backup);
        if (r < 0)
                return log_error_errno(r, "Cannot back up %s: %m", path);
        r = replace_atomic(path, text, strlen(text), st.st_mode & 07777);
        if (r < 0)
                return log_error_errno(r, "Cannot write %s (its backup is %s): %m", path, backup);
        *ret_backup = TAKE_PTR(backup);
        return 0;
}

static int read_output(int fd, char **ret)
{
        _cleanup_free_ char *buf = malloc(TOOL_OUTPUT_MAX + 1);
        size_t n = 0;

        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = read(fd, buf + n, TOOL_OUTPUT_MAX - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return negative_errno();
                if (k == 0 || (n += (size_t)k) == TOOL_OUTPUT_MAX)
                        break;
        }
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}

int xen_cmdline_run(const Sysroot *root, const char *const *args, char **ret_output)
{
        _cleanup_free_ char *tool = sysroot_path(root, XEN_CMDLINE_TOOL), *output = NULL;
        static char *const env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL };
        const char *argv[8] = { NULL };
        posix_spawn_file_actions_t actions;
        int pipefd[2], status, r;
        size_t n = 0;
        pid_t pid;

        if (!tool)
                return -errno;
        if (access(tool, X_OK) < 0)
                return negative_errno();
        argv[n++] = tool;
        for (size_t i = 0; args[i] && n < ELEMENTSOF(argv) - 1; i++)
                argv[n++] = args[i];
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return negative_errno();
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, pipefd[1], STDOUT_FILENO);
        r = -posix_spawn(&pid, tool, &actions, NULL, (char *const *)argv, env);
        posix_spawn_file_actions_destroy(&actions);
        close(pipefd[1]);
        if (r < 0) {
                close(pipefd[0]);
                return r;
        }
        r = read_output(pipefd[0], &output);
        close(pipefd[0]);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        if (r < 0)
                return r;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                log_error("%s %s failed (exit status %d).", tool, strempty(args[0]),
                          WIFEXITED(status) ? WEXITSTATUS(status) : -1);
                return -EIO;
        }
        *ret_output = TAKE_PTR(output);
        return 0;
}
