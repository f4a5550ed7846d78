/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An in-memory Xen behind the transport's seam (xen-ops.h): a xenstore with permissions, watches and
 * @releaseDomain; a grant table whose mappings alias the granted pages (memfds mapped twice); event channels
 * with pending and mask bits. The calling thread's domain is xen_fake_domid. Every call the transport makes
 * that releases something is recorded, in order, for the teardown tests. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "transport/xen-ops.h"

extern const VgpuXenOps xen_fake_ops;

/* The domain the calling thread acts as (0: dom0). Handles remember it when opened. */
extern __thread uint32_t xen_fake_domid;

void xen_fake_reset(void);

/* Direct access, as domain 0 would have it, for setting up and checking. */
int xen_fake_write(const char *path, const char *value);
/* A copy of the value (free() it), NULL when absent. */
char *xen_fake_read(const char *path);
bool xen_fake_exists(const char *path);
/* Destroys a domain: it no longer exists for xs_domain_exists(), @releaseDomain fires. */
void xen_fake_destroy_domain(uint32_t domid);

/* Grants a domain may hold at once (the guest's xen_gntalloc limit / max_grant_frames); default: plenty. */
void xen_fake_set_grant_limit(uint32_t limit);
/* Live mappings made through gnttab handles, and grants still shared. */
unsigned xen_fake_live_mappings(void);

/* The release log: "gnttab_unmap N", "gntshr_unshare N", "evtchn_unbind", "evtchn_close", "gnttab_close",
 * and "state PATH=V" for every write of a key named state. Returns the index of the first entry at or after
 * `from` that starts with prefix, or -1. */
int xen_fake_log_find(int from, const char *prefix);
int xen_fake_log_count(void);
const char *xen_fake_log_entry(int i);
