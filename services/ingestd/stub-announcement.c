/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The parser of the vgpu-stub announcement line, and the sentences that compare it with the configuration
 * store. No I/O and no state: what comes off the socket is judged only after it went through here. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "stub-announcement.h"
#include "vgpu-util.h"

#define PREFIX            "vgpu-stub 1 "
#define VM_ID_DIGITS_MAX  10 /* 2147483647 */
#define PRIORITY_NAME_MAX 6  /* "medium" */

/* A cursor over the line without its LF. */
typedef struct Cursor {
        const char *p, *end;
} Cursor;

/* Takes "key=value" at the cursor; the value runs to the next space or the end of the line. */
static bool take_field(Cursor *c, const char *key, const char **value, size_t *value_len)
{
        size_t key_len = strlen(key);
        const char *space;

        if ((size_t)(c->end - c->p) <= key_len || memcmp(c->p, key, key_len) != 0 || c->p[key_len] != '=')
                return false;
        *value = c->p + key_len + 1;
        space = memchr(*value, ' ', (size_t)(c->end - *value));
        *value_len = (size_t)((space ? space : c->end) - *value);
        c->p = *value + *value_len;
        return true;
}

/* Steps over the single space between two fields; false at the end of the line. */
static bool take_separator(Cursor *c)
{
        if (c->p == c->end || *c->p != ' ')
                return false;
        c->p++;
        return true;
}

/* A later version's field: a non-empty key of [a-z0-9_], '=', a value without spaces (maybe empty). */
static bool take_extension(Cursor *c)
{
        const char *start = c->p;

        while (c->p < c->end && ((*c->p >= 'a' && *c->p <= 'z') || (*c->p >= '0' && *c->p <= '9') || *c->p == '_'))
                c->p++;
        if (c->p == start || c->p == c->end || *c->p != '=')
                return false;
        while (c->p < c->end && *c->p != ' ')
                c->p++;
        return true;
}

static int fail(const char **reason, const char *why)
{
        *reason = why;
        return -EINVAL;
}

static int parse_fields(Cursor *c, StubAnnouncement *ret, const char **reason)
{
        char digits[VM_ID_DIGITS_MAX + 1], prio[PRIORITY_NAME_MAX + 1];
        StubAnnouncement a = {.priority = _PRIORITY_INVALID};
        const char *v;
        size_t n;

        if (!take_field(c, "vm_id", &v, &n))
                return fail(reason, "the first field is not vm_id=");
        if (n == 0 || n > VM_ID_DIGITS_MAX)
                return fail(reason, "vm_id is not a VM id from 1 to 2147483647");
        memcpy(digits, v, n);
        digits[n] = '\0';
        if (vm_id_parse(digits, &a.vm_id) < 0)
                return fail(reason, "vm_id is not a VM id from 1 to 2147483647");
        ret->vm_id = a.vm_id;

        if (!take_separator(c) || !take_field(c, "pool_id", &v, &n))
                return fail(reason, "the second field is not pool_id=");
        if (n > POOL_ID_MAX)
                return fail(reason, "pool_id is longer than 16 characters");
        memcpy(a.pool, v, n);
        a.pool[n] = '\0';
        if (n > 0 && !pool_id_is_valid(a.pool))
                return fail(reason, "pool_id is not a letter followed by up to 15 letters, digits or '_'");

        if (!take_separator(c) || !take_field(c, "priority", &v, &n))
                return fail(reason, "the third field is not priority=");
        if (n > PRIORITY_NAME_MAX)
                return fail(reason, "priority is not high, medium or low");
        memcpy(prio, v, n);
        prio[n] = '\0';
        if (n > 0 && (a.priority = priority_from_string(prio)) == _PRIORITY_INVALID)
                return fail(reason, "priority is not high, medium or low");

        while (c->p < c->end)
                if (!take_separator(c) || !take_extension(c))
                        return fail(reason, "a field after priority= is not a single-space separated key=value");
        *ret = a;
        return 0;
}

/* The line as a whole: its length, its bytes, its end, its prefix. */
static int check_line(const char *line, size_t len, const char **reason)
{
        static const char stub[] = "vgpu-stub ";

        if (len > STUB_LINE_MAX)
                return fail(reason, "the line is longer than 80 bytes");
        if (!line || len == 0 || line[len - 1] != '\n')
                return fail(reason, "the line does not end in a line feed");
        for (size_t i = 0; i + 1 < len; i++)
                if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] > 0x7e)
                        return fail(reason, "the line holds a byte that is not printable ASCII");
        if (len - 1 >= strlen(PREFIX) && memcmp(line, PREFIX, strlen(PREFIX)) == 0)
                return 0;
        if (len - 1 > strlen(stub) && memcmp(line, stub, strlen(stub)) == 0)
                return fail(reason, "the announcement is not of version 1");
        return fail(reason, "the line is not a vgpu-stub announcement");
}

int stub_announcement_parse(const char *line, size_t len, StubAnnouncement *ret, const char **ret_reason)
{
        const char *reason = NULL;
        Cursor c;
        int r;

        *ret = (StubAnnouncement){.priority = _PRIORITY_INVALID};
        r = check_line(line, len, &reason);
        if (r == 0) {
                c = (Cursor){.p = line + strlen(PREFIX), .end = line + len - 1};
                r = parse_fields(&c, ret, &reason);
        }
        if (ret_reason)
                *ret_reason = r < 0 ? reason : NULL;
        return r;
}

bool stub_announcement_agrees(const StubAnnouncement *a, const char *pool, Priority priority)
{
        return (isempty(a->pool) || streq_ptr(a->pool, pool)) &&
               (a->priority == _PRIORITY_INVALID || a->priority == priority);
}

const char *stub_identity_format(const char *pool, Priority priority, char *buf, size_t size)
{
        const char *prio = priority_to_string(priority);

        snprintf(buf, size, "pool %s, priority %s", isempty(pool) ? "(not set)" : pool, prio ? prio : "(not set)");
        return buf;
}

const char *stub_mismatch_format(const StubAnnouncement *a, const char *pool, Priority priority, char *buf, size_t size)
{
        char said[64], store[64];

        snprintf(buf, size, "VM %u's vgpu-stub says %s; the configuration store says %s: the store wins", a->vm_id,
                 stub_identity_format(a->pool, a->priority, said, sizeof(said)),
                 stub_identity_format(pool, priority, store, sizeof(store)));
        return buf;
}
