/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small helpers every vgpu program uses: scope-bound cleanup, array sizes, errno plumbing. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define _pure_ __attribute__((pure))
#define _const_ __attribute__((const))

static inline void freep(void *p)
{
        free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Declares a function `namep(T **p)` that frees *p with `fn` when it is not NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, fn)                                                                          \
        static inline void fn##p(type *p)                                                                              \
        {                                                                                                              \
                if (*p)                                                                                                \
                        fn(*p);                                                                                        \
        }

/* A NULL-terminated array of strings, each allocated, as sd_bus_message_read_strv() returns it. */
static inline void strv_free(char **l)
{
        for (char **p = l; p && *p; p++)
                free(*p);
        free(l);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free)
#define _cleanup_strv_ _cleanup_(strv_freep)

static inline size_t strv_length(char **l)
{
        size_t n = 0;

        while (l && l[n])
                n++;
        return n;
}

/* Hands ownership out of a cleanup variable: returns its value and leaves NULL behind. */
#define TAKE_PTR(p)                                                                                                    \
        ({                                                                                                             \
                __typeof__(p) _taken = (p);                                                                            \
                (p) = NULL;                                                                                            \
                _taken;                                                                                                \
        })

#define TAKE_FD(fd)                                                                                                    \
        ({                                                                                                             \
                int _taken = (fd);                                                                                     \
                (fd) = -1;                                                                                             \
                _taken;                                                                                                \
        })

static inline bool streq(const char *a, const char *b)
{
        return strcmp(a, b) == 0;
}

static inline bool streq_ptr(const char *a, const char *b)
{
        if (!a || !b)
                return a == b;
        return streq(a, b);
}

static inline bool isempty(const char *s)
{
        return !s || !*s;
}

static inline const char *strempty(const char *s)
{
        return s ? s : "";
}

/* Turns a -1/errno style return into a negative errno. */
static inline int negative_errno(void)
{
        return errno > 0 ? -errno : -EIO;
}

/* Free-and-return-NULL for owning pointers in structs. */
static inline void *mfree(void *p)
{
        free(p);
        return NULL;
}

/* Replaces *dst with a copy of value (NULL stays NULL); -ENOMEM leaves *dst as it was. */
static inline int free_and_strdup(char **dst, const char *value)
{
        char *copy = NULL;

        if (value) {
                copy = strdup(value);
                if (!copy)
                        return -ENOMEM;
        }
        free(*dst);
        *dst = copy;
        return 0;
}
