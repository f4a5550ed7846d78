/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one directory everything vgpu-iommud reads and writes lives below: "/" on a host, a recorded tree of
 * a real machine in tests. Paths given to these helpers are relative ("sys/bus/pci/devices/…") and may not
 * climb out ("..") — every caller builds them from validated parts, and these helpers check again. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "vgpu-util.h"

typedef struct Sysroot Sysroot;

/* Called after every successful write, with the relative path and the value written. Only tests set it:
 * in a recorded tree nothing reacts to a write, so a test plays the kernel's part here. */
typedef void (*SysrootWriteHook)(const Sysroot *root, const char *rel, const char *value, void *userdata);

struct Sysroot {
        char *path; /* absolute, no trailing slash except for "/" itself */
        SysrootWriteHook write_hook;
        void *write_hook_data;
};

/* `path` must name an existing directory; it is made absolute. */
int sysroot_new(const char *path, Sysroot **ret);
Sysroot *sysroot_free(Sysroot *root);
bool sysroot_is_host(const Sysroot *root);

/* A relative path is valid when it is non-empty, does not start with '/', and has no empty, "." or ".."
 * component. */
bool sysroot_rel_is_valid(const char *rel);

/* The absolute path of `rel` below the root (NULL: out of memory or an invalid rel, errno set). */
char *sysroot_path(const Sysroot *root, const char *rel);

/* Reads a whole small file (at most `max` bytes; -EFBIG beyond). */
int sysroot_read_file(const Sysroot *root, const char *rel, size_t max, char **ret, size_t *ret_size);
/* The first line of a file, without surrounding white space. */
int sysroot_read_line(const Sysroot *root, const char *rel, char **ret);
/* A number in a sysfs attribute: decimal, or hexadecimal with 0x. */
int sysroot_read_u64(const Sysroot *root, const char *rel, unsigned long long *ret);

/* Writes `value` to an existing file (never creates one, never follows a final symlink). */
int sysroot_write(const Sysroot *root, const char *rel, const char *value);

/* The last component of a symlink's target (e.g. "vfio-pci" for …/driver); -ENOENT when there is none. */
int sysroot_link_name(const Sysroot *root, const char *rel, char **ret);
bool sysroot_exists(const Sysroot *root, const char *rel);
bool sysroot_is_dir(const Sysroot *root, const char *rel);

/* The names in a directory, sorted, without "." and ".."; a NULL-terminated array. */
int sysroot_list_dir(const Sysroot *root, const char *rel, char ***ret, size_t *ret_n);

/* Appends a copy of `s` to a NULL-terminated array (strv_free() and strv_length() are in vgpu-util.h). */
int strv_append(char ***l, const char *s);

/* Removes leading and trailing white space in place; returns s. */
char *strstrip(char *s);
