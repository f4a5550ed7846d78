/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* .npy float32 read and write. The header is a Python dict literal; it is parsed here by a small
 * recursive-descent reader that accepts exactly the three keys numpy writes and nothing else. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "npy.h"

static const uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t size, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        if (err && size > 0)
                vsnprintf(err, size, fmt, ap);
        va_end(ap);
        return -EBADMSG;
}

typedef struct Cursor {
        const char *p, *end;
} Cursor;

static void skip_spaces(Cursor *c)
{
        while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
                c->p++;
}

static bool eat(Cursor *c, char ch)
{
        skip_spaces(c);
        if (c->p >= c->end || *c->p != ch)
                return false;
        c->p++;
        return true;
}

/* 'text' or "text", at most size-1 bytes. */
static bool parse_string(Cursor *c, char *buf, size_t size)
{
        char quote;
        size_t n = 0;

        skip_spaces(c);
        if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
                return false;
        quote = *c->p++;
        while (c->p < c->end && *c->p != quote) {
                if (n + 1 >= size || *c->p == '\\')
                        return false;
                buf[n++] = *c->p++;
        }
        if (c->p >= c->end)
                return false;
        c->p++;
        buf[n] = '\0';
        return true;
}

static bool parse_word(Cursor *c, const char *word)
{
        size_t n = strlen(word);

        skip_spaces(c);
        if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
                return false;
        c->p += n;
        return true;
}

/* (d0, d1, …) with an optional trailing comma; () is a scalar. */
static int parse_shape(Cursor *c, NpyArray *a, char *err, size_t size)
{
        if (!eat(c, '('))
                return fail(err, size, "shape is not a tuple");
        a->rank = 0;
        while (!eat(c, ')')) {
                uint64_t v = 0;

                skip_spaces(c);
                if (c->p >= c->end || *c->p < '0' || *c->p > '9')
                        return fail(err, size, "shape holds something other than non-negative integers");
                while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
                        if (v > (UINT64_MAX - 9) / 10)
                                return fail(err, size, "a dimension is absurdly large");
                        v = v * 10 + (uint64_t)(*c->p++ - '0');
                }
                if (a->rank >= NPY_RANK_MAX)
                        return fail(err, size, "rank above %u is not supported", NPY_RANK_MAX);
                a->shape[a->rank++] = v;
                if (!eat(c, ',') && !(skip_spaces(c), c->p < c->end && *c->p == ')'))
                        return fail(err, size, "malformed shape tuple");
        }
        return 0;
}

static int parse_value(Cursor *c, const char *key, NpyArray *a, unsigned *seen, char *err, size_t size)
{
        char descr[16];

        if (strcmp(key, "descr") == 0 && !(*seen & 1)) {
                *seen |= 1;
                if (!parse_string(c, descr, sizeof(descr)))
                        return fail(err, size, "descr is not a short string");
                if (strcmp(descr, "<f4") != 0)
                        return fail(err, size, "dtype '%s' is not supported: only little-endian float32 ('<f4')",
                                    descr);
                return 0;
        }
        if (strcmp(key, "fortran_order") == 0 && !(*seen & 2)) {
                *seen |= 2;
                if (parse_word(c, "False"))
                        return 0;
                if (parse_word(c, "True"))
                        return fail(err, size, "Fortran-order arrays are not supported: save it in C order");
                return fail(err, size, "fortran_order is neither True nor False");
        }
        if (strcmp(key, "shape") == 0 && !(*seen & 4)) {
                *seen |= 4;
                return parse_shape(c, a, err, size);
        }
        return fail(err, size, "unexpected or repeated header key '%s'", key);
}

static int parse_dict(const char *text, size_t len, NpyArray *a, char *err, size_t size)
{
        Cursor c = {text, text + len};
        unsigned seen = 0;
        char key[32];
        int r;

        if (memchr(text, '\0', len))
                return fail(err, size, "header contains a NUL byte");
        if (!eat(&c, '{'))
                return fail(err, size, "header is not a dict");
        while (!eat(&c, '}')) {
                if (!parse_string(&c, key, sizeof(key)) || !eat(&c, ':'))
                        return fail(err, size, "malformed header dict");
                r = parse_value(&c, key, a, &seen, err, size);
                if (r < 0)
                        return r;
                if (!eat(&c, ',') && !(skip_spaces(&c), c.p < c.end && *c.p == '}'))
                        return fail(err, size, "malformed header dict");
        }
        while (c.p < c.end && (*c.p == ' ' || *c.p == '\n'))
                c.p++;
        if (c.p != c.end)
                return fail(err, size, "garbage after the header dict");
        if (seen != 7)
                return fail(err, size, "header lacks descr, fortran_order or shape");
        return 0;
}

static int check_count(NpyArray *a, char *err, size_t size)
{
        a->count = 1;
        for (uint32_t i = 0; i < a->rank; i++) {
                if (a->shape[i] != 0 && a->count > NPY_DATA_SIZE_MAX / 4 / a->shape[i])
                        return fail(err, size, "array of more than %llu bytes",
                                    (unsigned long long)NPY_DATA_SIZE_MAX);
                a->count *= a->shape[i];
        }
        return 0;
}

int npy_parse_header(const uint8_t *buf, size_t len, NpyArray *ret, uint64_t *ret_data_offset, char *err,
                     size_t err_size)
{
        uint64_t header_len, offset;
        NpyArray a = {};
        int r;

        if (len < 10)
                return fail(err, err_size, "file too short for a .npy header");
        if (memcmp(buf, magic, sizeof(magic)) != 0)
                return fail(err, err_size, "not a .npy file (no \\x93NUMPY magic)");
        if (buf[6] != 1 && buf[6] != 2)
                return fail(err, err_size, ".npy format version %u.%u is not supported (1.0 and 2.0 are)", buf[6],
                            buf[7]);
        if (buf[6] == 1) {
                header_len = (uint64_t)buf[8] | (uint64_t)buf[9] << 8;
                offset = 10;
        } else {
                if (len < 12)
                        return fail(err, err_size, "file too short for a .npy header");
                header_len = (uint64_t)buf[8] | (uint64_t)buf[9] << 8 | (uint64_t)buf[10] << 16 |
                             (uint64_t)buf[11] << 24;
                offset = 12;
        }
        if (header_len > NPY_HEADER_LEN_MAX)
                return fail(err, err_size, "header length %llu is absurd", (unsigned long long)header_len);
        if (len < offset + header_len) {
                *ret_data_offset = offset + header_len;
                return -EAGAIN;
        }
        r = parse_dict((const char *)buf + offset, header_len, &a, err, err_size);
        if (r >= 0)
                r = check_count(&a, err, err_size);
        if (r < 0)
                return r;
        *ret = a;
        *ret_data_offset = offset + header_len;
        return 0;
}

int npy_parse(const uint8_t *buf, size_t len, NpyArray *ret, char *err, size_t err_size)
{
        NpyArray a = {};
        uint64_t offset;
        int r;

        r = npy_parse_header(buf, len, &a, &offset, err, err_size);
        if (r == -EAGAIN)
                return fail(err, err_size, "file truncated inside the header");
        if (r < 0)
                return r;
        if (len - offset != a.count * 4)
                return fail(err, err_size, "%s: %llu data bytes for %llu floats",
                            len - offset < a.count * 4 ? "truncated" : "trailing bytes",
                            (unsigned long long)(len - offset), (unsigned long long)a.count);
        a.data = malloc(a.count ? a.count * 4 : 1);
        if (!a.data)
                return -ENOMEM;
        memcpy(a.data, buf + offset, a.count * 4);
        *ret = a;
        return 0;
}

static int read_all(int fd, void *buf, size_t size)
{
        for (size_t done = 0; done < size;) {
                ssize_t n = read(fd, (uint8_t *)buf + done, size - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -ENODATA;
                done += (size_t)n;
        }
        return 0;
}

/* Reads the header, checks the file's size against it, then reads the floats straight into place. */
int npy_read(const char *path, NpyArray *ret, char *err, size_t err_size)
{
        uint8_t head[12 + NPY_HEADER_LEN_MAX];
        uint64_t need = 12, offset;
        NpyArray a = {};
        struct stat st;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0) {
                r = -errno;
                snprintf(err, err_size, "cannot open: %s", strerror(errno));
                goto out;
        }
        r = S_ISREG(st.st_mode) ? 0 : fail(err, err_size, "not a regular file");
        for (bool more = true; r >= 0 && more;) {
                if ((uint64_t)st.st_size < need) {
                        r = fail(err, err_size, "file truncated inside the header");
                        break;
                }
                r = pread(fd, head, need, 0) == (ssize_t)need ? 0 : fail(err, err_size, "cannot read the header");
                if (r >= 0)
                        r = npy_parse_header(head, need, &a, &offset, err, err_size);
                more = r == -EAGAIN;
                if (more) {
                        need = offset;
                        r = 0;
                }
        }
        if (r >= 0 && (uint64_t)st.st_size - offset != a.count * 4)
                r = fail(err, err_size, "%s: %llu data bytes for %llu floats",
                         (uint64_t)st.st_size - offset < a.count * 4 ? "truncated" : "trailing bytes",
                         (unsigned long long)((uint64_t)st.st_size - offset), (unsigned long long)a.count);
        if (r >= 0 && !(a.data = malloc(a.count ? a.count * 4 : 1)))
                r = -ENOMEM;
        if (r >= 0 && (lseek(fd, (off_t)offset, SEEK_SET) < 0 || read_all(fd, a.data, a.count * 4) < 0))
                r = fail(err, err_size, "cannot read the data");
        if (r >= 0) {
                *ret = a;
                a.data = NULL;
        }
out:
        free(a.data);
        if (fd >= 0)
                close(fd);
        return r;
}

static int write_all(int fd, const void *buf, size_t size)
{
        for (size_t done = 0; done < size;) {
                ssize_t n = write(fd, (const uint8_t *)buf + done, size - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                done += (size_t)n;
        }
        return 0;
}

/* Version 1: magic, 1.0, u16 length, the dict padded with spaces and ended by '\n' to a multiple of 64. */
static size_t format_header(const NpyArray *a, char *buf, size_t size)
{
        char shape[128];
        size_t n, total;

        npy_shape_to_string(a, shape, sizeof(shape));
        shape[0] = '(';
        n = strlen(shape);
        /* Python's tuples: "()", "(3,)", "(2, 3)". */
        if (a->rank == 1) {
                shape[n - 1] = ',';
                shape[n++] = ')';
                shape[n] = '\0';
        } else
                shape[n - 1] = ')';
        n = (size_t)snprintf(buf + 10, size - 10, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape);
        total = (10 + n + 1 + 63) / 64 * 64;
        memset(buf + 10 + n, ' ', total - 10 - n - 1);
        buf[total - 1] = '\n';
        memcpy(buf, magic, sizeof(magic));
        buf[6] = 1;
        buf[7] = 0;
        buf[8] = (char)((total - 10) & 0xff);
        buf[9] = (char)((total - 10) >> 8);
        return total;
}

int npy_write(const char *path, const NpyArray *a, char *err, size_t err_size)
{
        char header[256], tmp[PATH_MAX];
        mode_t mode;
        size_t n;
        int fd, r;

        if (a->rank > NPY_RANK_MAX)
                return -EINVAL;
        n = format_header(a, header, sizeof(header));
        if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp))
                return -ENAMETOOLONG;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                snprintf(err, err_size, "cannot create a file beside it: %s", strerror(errno));
                return r;
        }
        r = write_all(fd, header, n);
        if (r >= 0)
                r = write_all(fd, a->data, a->count * 4);
        mode = umask(0);
        umask(mode);
        if (r >= 0 && fchmod(fd, 0666 & ~mode) < 0)
                r = -errno;
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                snprintf(err, err_size, "cannot write: %s", strerror(-r));
                unlink(tmp);
        }
        return r;
}

void npy_array_done(NpyArray *a)
{
        free(a->data);
        *a = (NpyArray){};
}

const char *npy_shape_to_string(const NpyArray *a, char *buf, size_t size)
{
        size_t n = 0;

        n += (size_t)snprintf(buf, size, "[");
        for (uint32_t i = 0; i < a->rank && n < size; i++)
                n += (size_t)snprintf(buf + n, size - n, "%s%llu", i ? ", " : "", (unsigned long long)a->shape[i]);
        if (n < size)
                snprintf(buf + n, size - n, "]");
        return buf;
}
