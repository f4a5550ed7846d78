/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The vgpu-stub announcement, the one line QEMU writes when its chardev opens (docs/vgpu-stub.md):
 * "vgpu-stub 1 vm_id=N pool_id=P priority=L\n". Parsed here and nowhere else, into a plain struct. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "names.h"

#define STUB_LINE_MAX 80 /* bytes, the LF included */

typedef struct StubAnnouncement {
        uint32_t vm_id;
        char pool[POOL_ID_MAX + 1]; /* "" when the device's pool_id is not set */
        Priority priority;          /* _PRIORITY_INVALID when the device's priority is not set */
} StubAnnouncement;

/* Parses the `len` bytes at `line`, which must be one whole line: at most STUB_LINE_MAX bytes, printable
 * ASCII, ending in its only LF. The prefix "vgpu-stub 1 ", then vm_id=, pool_id=, priority= in that order,
 * single spaces; further " key=value" fields (a later device may add some) are checked for form and
 * ignored. Returns 0, or -EINVAL with *ret_reason set to a static sentence naming what is wrong; then *ret
 * is empty but for vm_id, which is the line's VM when the line got as far as a valid vm_id (else 0). */
int stub_announcement_parse(const char *line, size_t len, StubAnnouncement *ret, const char **ret_reason);

/* Whether the announcement agrees with the configuration store's pool and priority; a field the device
 * leaves unset agrees with anything. */
bool stub_announcement_agrees(const StubAnnouncement *a, const char *pool, Priority priority);

/* "pool A, priority high" ("(not set)" for an unset field) into buf; returns buf. */
const char *stub_identity_format(const char *pool, Priority priority, char *buf, size_t size);

/* The refusal of a disagreeing announcement, one sentence: "VM 3's vgpu-stub says pool A, priority high;
 * the configuration store says pool B, priority low: the store wins". Returns buf. */
const char *stub_mismatch_format(const StubAnnouncement *a, const char *pool, Priority priority, char *buf,
                                 size_t size);
