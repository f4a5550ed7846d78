/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Where boot settings live: the GRUB defaults file (read, backed up, replaced atomically) and XCP-ng's
 * xen-cmdline tool (run without a shell). */
#pragma once

#include <stdint.h>

#include "iommu-error.h"
#include "sysroot.h"

#define GRUB_DEFAULTS "etc/default/grub"
#define XEN_CMDLINE_TOOL "opt/xensource/libexec/xen-cmdline"

typedef struct GrubDefaults {
        char *text;        /* the whole file */
        size_t line_start; /* the last GRUB_CMDLINE_LINUX= line (the one the shell keeps); */
        size_t line_end;   /* line_start == line_end: there is none */
        char *value;       /* its value, unquoted */
} GrubDefaults;

/* IOMMU_E_NOT_SUPPORTED (with `why`) when the file is missing or its value is more than plain words in
 * quotes (variables, escapes): vgpu-iommud does not rewrite shell it cannot read exactly. */
int grub_defaults_read(const Sysroot *root, GrubDefaults *ret, char why[static IOMMU_WHY_MAX]);
/* Backs the file up to FILE.vgpu-backup-<realtime usec>, then replaces it atomically with the line set to
 * GRUB_CMDLINE_LINUX="value". */
int grub_defaults_write(const Sysroot *root, const GrubDefaults *g, const char *value, char **ret_backup);
void grub_defaults_done(GrubDefaults *g);

/* Copies ROOT/rel to ROOT/rel.vgpu-backup-<usec>; *ret is the backup's absolute path. */
int file_backup(const Sysroot *root, const char *rel, uint64_t usec, char **ret);

/* Runs ROOT/opt/xensource/libexec/xen-cmdline with `args`; its standard output in *ret_output. -ENOENT
 * when the tool is not there; -EIO when it exits non-zero. */
int xen_cmdline_run(const Sysroot *root, const char *const *args, char **ret_output);
