/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the fake's xenstore half (xen-fake.c) and its grant and event-channel half (xen-fake-grants.c) share. */
#pragma once

#include <pthread.h>

#include "xen-fake.h"

extern pthread_mutex_t xen_fake_lock;

void xen_fake_log_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void xen_fake_grants_reset(void);

int fx_gnttab_open(VgpuXenGnttab **ret);
void fx_gnttab_close(VgpuXenGnttab *g);
int fx_gnttab_map(VgpuXenGnttab *g, uint32_t domid, const uint32_t *refs, uint32_t count, bool writable, void **ret);
int fx_gnttab_map_notify(VgpuXenGnttab *g, uint32_t domid, uint32_t ref, uint32_t notify_offset, uint32_t notify_port,
                         void **ret);
int fx_gnttab_unmap(VgpuXenGnttab *g, void *addr, uint32_t count);
int fx_gntshr_open(VgpuXenGntshr **ret);
void fx_gntshr_close(VgpuXenGntshr *s);
int fx_gntshr_share(VgpuXenGntshr *s, uint32_t domid, uint32_t count, bool writable, uint32_t *refs, void **ret);
int fx_gntshr_unshare(VgpuXenGntshr *s, void *addr, uint32_t count);
int fx_evtchn_open(VgpuXenEvtchn **ret);
void fx_evtchn_close(VgpuXenEvtchn *e);
int fx_evtchn_fd(VgpuXenEvtchn *e);
int fx_evtchn_bind_unbound(VgpuXenEvtchn *e, uint32_t remote_domid, uint32_t *ret_port);
int fx_evtchn_bind_interdomain(VgpuXenEvtchn *e, uint32_t remote_domid, uint32_t remote_port, uint32_t *ret_port);
int fx_evtchn_unbind(VgpuXenEvtchn *e, uint32_t port);
int fx_evtchn_notify(VgpuXenEvtchn *e, uint32_t port);
int fx_evtchn_pending(VgpuXenEvtchn *e, uint32_t *ret_port);
int fx_evtchn_unmask(VgpuXenEvtchn *e, uint32_t port);
