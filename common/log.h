/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Logging for vgpu services and tools: the journal with structured fields when stderr is connected to it,
 * plain lines on stderr otherwise. */
#pragma once

#include <stdint.h>
#include <syslog.h>

#include "vgpu-util.h"

/* Call once at start-up. `ident` names the program in stderr lines. */
void log_setup(const char *ident);
void log_set_max_level(int level);
int log_get_max_level(void);

/* Context attached to a message: the VM, pool and priority it concerns (any may be absent: 0 / NULL).
 * In the journal they become VM_ID=, POOL= and VM_PRIORITY= (journald's own PRIORITY= field is the log
 * level, so the VM's priority cannot use that name). */
typedef struct LogContext {
        uint32_t vm_id;
        const char *pool;
        const char *priority;
} LogContext;

/* Logs and returns `error` (a negative errno, or 0). When `error` is non-zero, "%m" in `format` prints it. */
int log_internal(int level, int error, const LogContext *ctx, const char *file, int line, const char *format, ...)
        _printf_(6, 7);

#define log_full_errno(level, error, ...) log_internal((level), (error), NULL, __FILE__, __LINE__, __VA_ARGS__)
#define log_full(level, ...) (void)log_full_errno((level), 0, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(error, ...) log_full_errno(LOG_DEBUG, (error), __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, (error), __VA_ARGS__)
#define log_error_errno(error, ...) log_full_errno(LOG_ERR, (error), __VA_ARGS__)

/* A message about one VM: carries its identity as structured fields. */
#define log_vm(level, vm, poolname, prio, ...)                                                                         \
        (void)log_internal((level), 0, &(const LogContext){ .vm_id = (vm), .pool = (poolname), .priority = (prio) },   \
                           __FILE__, __LINE__, __VA_ARGS__)

/* Logs an out-of-memory condition and returns -ENOMEM. */
#define log_oom() log_full_errno(LOG_ERR, -ENOMEM, "Out of memory.")
