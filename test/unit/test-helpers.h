/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers for the Check unit tests: temporary directories that clean up after themselves. */
#pragma once

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

static int test_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path);
}

/* A fresh directory under $TMPDIR; removed by test_tmpdir_remove(). */
static inline char *test_tmpdir_new(void)
{
        const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        char *path = NULL;

        ck_assert_int_gt(asprintf(&path, "%s/vgpu-unit.XXXXXX", base), 0);
        ck_assert_msg(mkdtemp(path), "mkdtemp(%s) failed", path);
        return path;
}

static inline void test_tmpdir_remove(char *path)
{
        if (path)
                nftw(path, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(path);
}
