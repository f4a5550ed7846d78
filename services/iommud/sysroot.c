/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reading and writing below the configured root: path checks, small-file reads, sysfs-style writes. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "sysroot.h"
#include "vgpu-util.h"

int sysroot_new(const char *path, Sysroot **ret)
{
        _cleanup_free_ char *abs = NULL;
        Sysroot *root;
        struct stat st;

        if (isempty(path))
                return -EINVAL;
        abs = realpath(path, NULL);
        if (!abs)
                return negative_errno();
        if (stat(abs, &st) < 0)
                return negative_errno();
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        root = calloc(1, sizeof(*root));
        if (!root)
                return -ENOMEM;
        root->path = TAKE_PTR(abs);
        *ret = root;
        return 0;
}

Sysroot *sysroot_free(Sysroot *root)
{
        if (root) {
                free(root->path);
                free(root);
        }
        return NULL;
}

bool sysroot_is_host(const Sysroot *root)
{
        return streq(root->path, "/");
}

bool sysroot_rel_is_valid(const char *rel)
{
        const char *p = rel;

        if (isempty(rel) || rel[0] == '/')
                return false;
        while (*p) {
                size_t n = strcspn(p, "/");

                if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return false;
                p += n;
                if (*p == '/')
                        p++;
                if (*p == '\0' && p[-1] == '/')
                        return false;
        }
        return true;
}

char *sysroot_path(const Sysroot *root, const char *rel)
{
        char *s = NULL;

        if (!sysroot_rel_is_valid(rel)) {
                errno = EINVAL;
                return NULL;
        }
        if (asprintf(&s, "%s/%s", sysroot_is_host(root) ? "" : root->path, rel) < 0) {
                errno = ENOMEM;
                return NULL;
        }
        return s;
}

static int read_fd(int fd, size_t max, char **ret, size_t *ret_size)
{
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, allocated = 0;

        for (;;) {
                ssize_t n;

                if (allocated - size < 4097) {
                        size_t want = allocated ? allocated * 2 : 4097 + 1;
                        char *grown = realloc(buf, want);

                        if (!grown)
                                return -ENOMEM;
                        buf = grown;
                        allocated = want;
                }
                n = read(fd, buf + size, allocated - size - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;
                size += (size_t)n;
                if (size > max)
                        return -EFBIG;
        }
        buf[size] = '\0';
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = size;
        return 0;
}

int sysroot_read_file(const Sysroot *root, const char *rel, size_t max, char **ret, size_t *ret_size)
{
        _cleanup_free_ char *path = sysroot_path(root, rel);
        _cleanup_close_ int fd = -1;

        if (!path)
                return -errno;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return negative_errno();
        return read_fd(fd, max, ret, ret_size);
}

char *strstrip(char *s)
{
        size_t n;

        s += strspn(s, " \t\r\n");
        n = strlen(s);
        while (n > 0 && strchr(" \t\r\n", s[n - 1]))
                s[--n] = '\0';
        return s;
}

int sysroot_read_line(const Sysroot *root, const char *rel, char **ret)
{
        _cleanup_free_ char *text = NULL;
        char *line;
        int r;

        r = sysroot_read_file(root, rel, 64 * 1024, &text, NULL);
        if (r < 0)
                return r;
        line = strstrip(text);
        line[strcspn(line, "\n")] = '\0';
        line = strdup(strstrip(line));
        if (!line)
                return -ENOMEM;
        *ret = line;
        return 0;
}

int sysroot_read_u64(const Sysroot *root, const char *rel, unsigned long long *ret)
{
        _cleanup_free_ char *line = NULL;
        unsigned long long v;
        char *end;
        int r;

        r = sysroot_read_line(root, rel, &line);
        if (r < 0)
                return r;
        if (!line[0] || line[0] == '-')
                return -EINVAL;
        errno = 0;
        v = strtoull(line, &end, 0);
        if (errno != 0 || *end != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

int sysroot_write(const Sysroot *root, const char *rel, const char *value)
{
        _cleanup_free_ char *path = sysroot_path(root, rel);
        _cleanup_close_ int fd = -1;
        size_t len = strlen(value);
        ssize_t n;

        if (!path)
                return -errno;
        fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (fd < 0)
                return negative_errno();
        /* A sysfs attribute takes the value in one write(); a short write is a failure, not a retry. */
        n = write(fd, value, len);
        if (n < 0)
                return negative_errno();
        if ((size_t)n != len)
                return -EIO;
        if (root->write_hook)
                root->write_hook(root, rel, value, root->write_hook_data);
        return 0;
}

int sysroot_link_name(const Sysroot *root, const char *rel, char **ret)
{
        _cleanup_free_ char *path = sysroot_path(root, rel);
        char target[PATH_MAX];
        const char *base;
        ssize_t n;

        if (!path)
                return -errno;
        n = readlink(path, target, sizeof(target) - 1);
        if (n < 0)
                return negative_errno();
        target[n] = '\0';
        while (n > 1 && target[n - 1] == '/')
                target[--n] = '\0';
        base = strrchr(target, '/');
        base = base ? base + 1 : target;
        if (isempty(base) || streq(base, ".") || streq(base, ".."))
                return -EINVAL;
        *ret = strdup(base);
        return *ret ? 0 : -ENOMEM;
}

bool sysroot_exists(const Sysroot *root, const char *rel)
{
        _cleanup_free_ char *path = sysroot_path(root, rel);

        return path && access(path, F_OK) == 0;
}

bool sysroot_is_dir(const Sysroot *root, const char *rel)
{
        _cleanup_free_ char *path = sysroot_path(root, rel);
        struct stat st;

        return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int compare_strings(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int sysroot_list_dir(const Sysroot *root, const char *rel, char ***ret, size_t *ret_n)
{
        _cleanup_free_ char *path = sysroot_path(root, rel);
        _cleanup_strv_ char **names = NULL;
        struct dirent *de;
        DIR *d;
        int r = 0;

        if (!path)
                return -errno;
        d = opendir(path);
        if (!d)
                return negative_errno();
        names = calloc(1, sizeof(char *));
        if (!names)
                r = -ENOMEM;
        while (r >= 0 && (de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        r = strv_append(&names, de->d_name);
        closedir(d);
        if (r < 0)
                return r;
        qsort(names, strv_length(names), sizeof(char *), compare_strings);
        if (ret_n)
                *ret_n = strv_length(names);
        *ret = TAKE_PTR(names);
        return 0;
}

int strv_append(char ***l, const char *s)
{
        size_t n = strv_length(*l);
        char *copy = strdup(s);
        char **grown;

        if (!copy)
                return -ENOMEM;
        grown = realloc(*l, (n + 2) * sizeof(char *));
        if (!grown) {
                free(copy);
                return -ENOMEM;
        }
        grown[n] = copy;
        grown[n + 1] = NULL;
        *l = grown;
        return 0;
}
