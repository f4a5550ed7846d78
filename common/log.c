/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Log sink selection (journal or stderr) and formatting. */
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "log.h"

static const char *log_ident = "vgpu";
static int log_max_level = LOG_INFO;
static bool log_to_journal;

/* systemd sets JOURNAL_STREAM=dev:inode for a service whose stderr is a journal stream; only trust it when
 * stderr really is that stream (a child with redirected stderr inherits the variable). */
static bool stderr_is_journal(void)
{
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
}

void log_setup(const char *ident)
{
        const char *e;

        if (ident)
                log_ident = ident;
        log_to_journal = stderr_is_journal();

        e = getenv("VGPU_LOG_LEVEL");
        if (e) {
                static const char *const names[] = { "emerg", "alert", "crit", "err", "warning", "notice", "info",
                                                     "debug" };
                for (size_t i = 0; i < ELEMENTSOF(names); i++)
                        if (streq(e, names[i]))
                                log_max_level = (int)i;
        }
}

void log_set_max_level(int level)
{
        log_max_level = level;
}

int log_get_max_level(void)
{
        return log_max_level;
}

static const char *level_name(int level)
{
        switch (level) {
        case LOG_EMERG:
        case LOG_ALERT:
        case LOG_CRIT:
        case LOG_ERR:
                return "error";
        case LOG_WARNING:
                return "warning";
        case LOG_NOTICE:
        case LOG_INFO:
                return "info";
        default:
                return "debug";
        }
}

int log_internal(int level, int error, const LogContext *ctx, const char *file, int line, const char *format, ...)
{
        char message[2048];
        int saved_errno = errno;
        va_list ap;

        if (level > log_max_level)
                return error;

        if (error != 0)
                errno = error < 0 ? -error : error;
        va_start(ap, format);
        vsnprintf(message, sizeof(message), format, ap);
        va_end(ap);

        if (log_to_journal) {
                char fields[8][2200];
                struct iovec iov[8];
                size_t n = 0;

                snprintf(fields[n++], sizeof(fields[0]), "MESSAGE=%s", message);
                snprintf(fields[n++], sizeof(fields[0]), "PRIORITY=%d", level);
                snprintf(fields[n++], sizeof(fields[0]), "SYSLOG_IDENTIFIER=%s", log_ident);
                snprintf(fields[n++], sizeof(fields[0]), "CODE_FILE=%s:%d", file, line);
                if (ctx && ctx->vm_id)
                        snprintf(fields[n++], sizeof(fields[0]), "VM_ID=%u", ctx->vm_id);
                if (ctx && ctx->pool)
                        snprintf(fields[n++], sizeof(fields[0]), "POOL=%s", ctx->pool);
                if (ctx && ctx->priority)
                        snprintf(fields[n++], sizeof(fields[0]), "VM_PRIORITY=%s", ctx->priority);
                if (error != 0)
                        snprintf(fields[n++], sizeof(fields[0]), "ERRNO=%d", error < 0 ? -error : error);
                for (size_t i = 0; i < n; i++)
                        iov[i] = (struct iovec){ .iov_base = fields[i], .iov_len = strlen(fields[i]) };
                sd_journal_sendv(iov, (int)n);
        } else {
                char tail[160] = "";

                if (ctx && (ctx->vm_id || ctx->pool || ctx->priority)) {
                        size_t n = 0;

                        n += (size_t)snprintf(tail + n, sizeof(tail) - n, " [");
                        if (ctx->vm_id)
                                n += (size_t)snprintf(tail + n, sizeof(tail) - n, "vm=%u", ctx->vm_id);
                        if (ctx->pool && n < sizeof(tail))
                                n += (size_t)snprintf(tail + n, sizeof(tail) - n, "%spool=%s",
                                                      ctx->vm_id ? " " : "", ctx->pool);
                        if (ctx->priority && n < sizeof(tail))
                                n += (size_t)snprintf(tail + n, sizeof(tail) - n, " priority=%s", ctx->priority);
                        if (n < sizeof(tail))
                                snprintf(tail + n, sizeof(tail) - n, "]");
                }
                fprintf(stderr, "%s[%d]: %s: %s%s\n", log_ident, (int)getpid(), level_name(level), message, tail);
        }

        errno = saved_errno;
        return error;
}
