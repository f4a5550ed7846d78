/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Following the kernel log or the Xen console for IOMMU faults, and the bounded log of what was found. */
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "fault-watch.h"
#include "log.h"

#define KMSG_RECORD_MAX 8192
#define FILE_CHUNK 65536

typedef enum WatchKind {
        WATCH_NONE,
        WATCH_KMSG_DEVICE,
        WATCH_FILE,
        WATCH_XEN_RING,
} WatchKind;

struct FaultWatch {
        sd_event *event;
        FaultLog log;
        FaultHandler handler;
        void *userdata;
        WatchKind kind;
        const char *source;
        char *path; /* WATCH_FILE, WATCH_KMSG_DEVICE */
        int fd;
        off_t offset;
        ino_t inode;
        XenFacts *xen;
        uint64_t poll_usec;
        sd_event_source *io, *timer;
        char partial[IOMMU_FAULT_LINE_MAX + 1]; /* a line not yet ended */
        size_t partial_len;
        bool partial_overflow; /* the current line is too long to be a fault line */
};

int fault_log_init(FaultLog *l)
{
        *l = (FaultLog){ .ring = calloc(FAULT_LOG_MAX, sizeof(FaultRecord)) };
        return l->ring ? 0 : -ENOMEM;
}

void fault_log_done(FaultLog *l)
{
        for (size_t i = 0; l->ring && i < FAULT_LOG_MAX; i++)
                free(l->ring[i].line);
        free(l->ring);
        *l = (FaultLog){ 0 };
}

const FaultRecord *fault_log_add(FaultLog *l, const IommuFault *f, const char *line, uint64_t realtime_usec)
{
        FaultRecord *r;
        char *copy = strdup(line);

        if (!copy)
                return NULL;
        if (l->n == FAULT_LOG_MAX) {
                r = &l->ring[l->first];
                l->first = (l->first + 1) % FAULT_LOG_MAX;
        } else
                r = &l->ring[(l->first + l->n++) % FAULT_LOG_MAX];
        free(r->line);
        *r = (FaultRecord){ .seq = ++l->total, .realtime_usec = realtime_usec, .fault = *f, .line = copy };
        return r;
}

const FaultRecord *fault_log_get(const FaultLog *l, size_t i)
{
        return i < l->n ? &l->ring[(l->first + i) % FAULT_LOG_MAX] : NULL;
}

uint32_t fault_log_unacknowledged(const FaultLog *l)
{
        uint64_t n = l->total - l->acknowledged;

        return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

uint32_t fault_log_acknowledge(FaultLog *l)
{
        uint32_t n = fault_log_unacknowledged(l);

        l->acknowledged = l->total;
        return n;
}

const char *fault_watch_line_text(const char *line)
{
        const char *p = line;

        if (*line == ' ')
                return NULL;
        /* "PRI,SEQ,USEC,FLAGS[,…];TEXT": three decimal fields, then anything up to ';'. */
        for (int field = 0; field < 3; field++) {
                size_t digits = strspn(p, "0123456789");
                if (digits == 0 || digits > 20)
                        return line;
                p += digits;
                if (*p != ',' && !(field == 2 && *p == ';'))
                        return line;
                p++;
        }
        p = strchr(p - 1, ';');
        return p ? p + 1 : line;
}

static uint64_t now_realtime_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void handle_line(FaultWatch *w, const char *line)
{
        const char *text = fault_watch_line_text(line);
        const FaultRecord *r;
        IommuFault f;

        if (!text || !iommu_fault_parse(text, &f))
                return;
        r = fault_log_add(&w->log, &f, text, now_realtime_usec());
        if (!r) {
                log_oom();
                return;
        }
        log_warning("IOMMU fault #%llu (%s) from %s at 0x%llx: %s", (unsigned long long)r->seq,
                    fault_source_to_string(f.source), isempty(f.device) ? "an unnamed device" : f.device,
                    (unsigned long long)f.address, f.reason);
        if (w->handler)
                w->handler(r, w->userdata);
}

/* Splits text into lines; a line cut by the end of `data` waits in `partial` for the rest. */
static void feed(FaultWatch *w, const char *data, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (data[i] == '\n') {
                        if (!w->partial_overflow) {
                                w->partial[w->partial_len] = '\0';
                                handle_line(w, w->partial);
                        }
                        w->partial_len = 0;
                        w->partial_overflow = false;
                } else if (w->partial_len < IOMMU_FAULT_LINE_MAX && data[i] != '\0')
                        w->partial[w->partial_len++] = data[i];
                else
                        w->partial_overflow = true;
        }
}

/* /dev/kmsg: one record per read(); EPIPE says records were overwritten before we read them. */
static void read_kmsg(FaultWatch *w)
{
        char buf[KMSG_RECORD_MAX + 1];

        for (;;) {
                ssize_t n = read(w->fd, buf, KMSG_RECORD_MAX);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EPIPE) {
                        log_notice("The kernel log overwrote records before they were read; faults among them "
                                   "were missed.");
                        continue;
                }
                if (n < 0 && errno == EINVAL)
                        continue; /* a record longer than the buffer: not a fault line */
                if (n <= 0)
                        return;
                /* The record's first line is the message; continuation lines (" KEY=value") follow. */
                buf[n] = '\0';
                buf[strcspn(buf, "\n")] = '\0';
                handle_line(w, buf);
        }
}

static int on_kmsg(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        read_kmsg(userdata);
        return 0;
}

static int open_file(FaultWatch *w)
{
        struct stat st;

        if (w->fd >= 0)
                close(w->fd);
        w->fd = open(w->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (w->fd < 0 || fstat(w->fd, &st) < 0)
                return negative_errno();
        w->inode = st.st_ino;
        w->offset = 0;
        w->partial_len = 0;
        w->partial_overflow = false;
        return 0;
}

/* A recorded log file: whatever was appended since the last look. A file replaced or cut short is read
 * again from its start. */
static void read_file(FaultWatch *w)
{
        char buf[FILE_CHUNK];
        struct stat st;

        if (stat(w->path, &st) < 0)
                return;
        if (w->fd < 0 || st.st_ino != w->inode || st.st_size < w->offset) {
                if (open_file(w) < 0)
                        return;
        }
        for (;;) {
                ssize_t n = pread(w->fd, buf, sizeof(buf), w->offset);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return;
                w->offset += n;
                feed(w, buf, (size_t)n);
        }
}

static void read_xen_ring(FaultWatch *w)
{
        _cleanup_free_ char *text = NULL;

        if (xen_facts_console_new(w->xen, &text) >= 0)
                feed(w, text, strlen(text));
}

static int on_poll(sd_event_source *s, uint64_t usec, void *userdata)
{
        FaultWatch *w = userdata;

        if (w->kind == WATCH_FILE)
                read_file(w);
        else
                read_xen_ring(w);
        return sd_event_source_set_time(s, usec + w->poll_usec);
}

static int start_polling(FaultWatch *w)
{
        uint64_t now;
        int r;

        r = sd_event_now(w->event, CLOCK_MONOTONIC, &now);
        if (r >= 0)
                r = sd_event_add_time(w->event, &w->timer, CLOCK_MONOTONIC, now + w->poll_usec, 0, on_poll, w);
        if (r >= 0)
                r = sd_event_source_set_enabled(w->timer, SD_EVENT_ON);
        return r;
}

static int start_kmsg(FaultWatch *w, const Host *h)
{
        struct stat st;
        int r;

        w->path = sysroot_path(h->root, "dev/kmsg");
        if (!w->path)
                return -errno;
        if (stat(w->path, &st) < 0) {
                log_notice("No kernel log at %s (%m); IOMMU faults will not be seen.", w->path);
                return 0;
        }
        if (S_ISREG(st.st_mode)) {
                w->kind = WATCH_FILE;
                w->source = "/dev/kmsg";
                read_file(w);
                return start_polling(w);
        }
        w->fd = open(w->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (w->fd < 0) {
                /* Not fatal: the status reports that faults are not watched (fault_watch_source() is ""). */
                log_warning_errno(negative_errno(),
                                  "Cannot read the kernel log %s (%m): IOMMU faults will not be seen. The service "
                                  "needs CAP_SYSLOG where kernel.dmesg_restrict=1.",
                                  w->path);
                return 0;
        }
        w->kind = WATCH_KMSG_DEVICE;
        w->source = "kmsg";
        read_kmsg(w);
        r = sd_event_add_io(w->event, &w->io, w->fd, EPOLLIN, on_kmsg, w);
        return r < 0 ? log_error_errno(r, "Cannot watch the kernel log: %m") : 0;
}

static int start_xen_console(FaultWatch *w, const Host *h)
{
        if (xen_facts_uses_xenctrl(w->xen)) {
                w->kind = WATCH_XEN_RING;
                w->source = "libxenctrl:console";
                read_xen_ring(w);
                return start_polling(w);
        }
        w->path = sysroot_path(h->root, "xen/console");
        if (!w->path)
                return -errno;
        if (access(w->path, R_OK) < 0) {
                log_notice("No hypervisor console at %s (%m); IOMMU faults will not be seen.", w->path);
                return 0;
        }
        w->kind = WATCH_FILE;
        w->source = "/xen/console";
        read_file(w);
        return start_polling(w);
}

int fault_watch_start(sd_event *event, const Host *h, XenFacts *xen, uint64_t poll_usec, FaultHandler handler,
                      void *userdata, FaultWatch **ret)
{
        FaultWatch *w = calloc(1, sizeof(*w));
        int r;

        if (!w)
                return -ENOMEM;
        *w = (FaultWatch){ .event = sd_event_ref(event), .handler = handler, .userdata = userdata, .fd = -1,
                           .xen = xen, .poll_usec = poll_usec ? poll_usec : 1000000, .source = "" };
        r = fault_log_init(&w->log);
        if (r >= 0)
                r = platform_is_xen(h->platform) ? start_xen_console(w, h) : start_kmsg(w, h);
        if (r < 0) {
                fault_watch_free(w);
                return r;
        }
        if (w->kind != WATCH_NONE)
                log_info("Watching %s for IOMMU faults (%llu recorded from what it holds now).", w->path ? w->path : w->source,
                         (unsigned long long)w->log.total);
        *ret = w;
        return 0;
}

FaultWatch *fault_watch_free(FaultWatch *w)
{
        if (!w)
                return NULL;
        sd_event_source_disable_unref(w->io);
        sd_event_source_disable_unref(w->timer);
        if (w->fd >= 0)
                close(w->fd);
        sd_event_unref(w->event);
        fault_log_done(&w->log);
        free(w->path);
        free(w);
        return NULL;
}

FaultLog *fault_watch_log(FaultWatch *w)
{
        return &w->log;
}

const char *fault_watch_source(const FaultWatch *w)
{
        return w ? w->source : "";
}
