/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fault watch: follows the kernel log (Linux) or the hypervisor's console (Xen), records each IOMMU
 * fault in a bounded log, and tells its owner about each one. */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

#include "faults.h"
#include "gpus.h"
#include "xen-facts.h"

#define FAULT_LOG_MAX 1024

typedef struct FaultRecord {
        uint64_t seq;           /* from 1, in order of recording */
        uint64_t realtime_usec; /* when it was read */
        IommuFault fault;
        char *line;             /* the log line (without any kmsg header) */
} FaultRecord;

/* The last FAULT_LOG_MAX faults; every fault is counted, including those the ring no longer holds. */
typedef struct FaultLog {
        FaultRecord *ring; /* FAULT_LOG_MAX entries */
        size_t first, n;
        uint64_t total;        /* = the newest seq */
        uint64_t acknowledged; /* every seq up to this one was acknowledged */
} FaultLog;

int fault_log_init(FaultLog *l);
void fault_log_done(FaultLog *l);
const FaultRecord *fault_log_add(FaultLog *l, const IommuFault *f, const char *line, uint64_t realtime_usec);
/* The i-th oldest record still held, i < l->n. */
const FaultRecord *fault_log_get(const FaultLog *l, size_t i);
uint32_t fault_log_unacknowledged(const FaultLog *l);
/* Acknowledges everything recorded so far; returns how many were newly acknowledged. */
uint32_t fault_log_acknowledge(FaultLog *l);

typedef void (*FaultHandler)(const FaultRecord *r, void *userdata);

typedef struct FaultWatch FaultWatch;

/* Reads what the log holds now, then follows it: ROOT/dev/kmsg (the device: as the kernel writes; a
 * recorded regular file: polled every `poll_usec` for appended lines) on Linux; on Xen the console ring
 * through libxenctrl, or ROOT/xen/console polled the same way. A missing log is not an error: the watch
 * says so and records nothing. */
int fault_watch_start(sd_event *event, const Host *h, XenFacts *xen, uint64_t poll_usec, FaultHandler handler,
                      void *userdata, FaultWatch **ret);
FaultWatch *fault_watch_free(FaultWatch *w);
FaultLog *fault_watch_log(FaultWatch *w);
/* What the faults are read from: "kmsg", "/dev/kmsg", "libxenctrl:console", "/xen/console", or "". */
const char *fault_watch_source(const FaultWatch *w);

/* One line of the log as read: a kmsg record ("6,1234,5678,-;text") loses its header, a continuation line
 * (" KEY=value") is skipped. Returns the text to parse, or NULL to skip the line. Exposed for tests. */
const char *fault_watch_line_text(const char *line);
