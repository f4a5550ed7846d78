/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Serving the host link. The scheduler is trusted, yet every index it publishes still goes through the
 * ring checks (ring.h): a violation ends this executor with an error rather than letting it read or write
 * outside its rings. The wait is spin-then-block (docs/architecture.md, "The command path, layer by
 * layer"): a bounded spin on the request index, then the ring's final check, then poll() on the kick
 * eventfd, the control socket and signals. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "executor.h"
#include "log.h"
#include "proto/channel.h"
#include "proto/link.h"
#include "serve.h"
#include "transport/poller.h"
#include "transport/transport.h"

typedef struct Server {
        const ServeConfig *config;
        int fds[VGPU_LINK_START_FDS]; /* link memfd, kick (we wait), notify (we signal) */
        void *link;
        size_t link_size;
        VgpuRegionRef region_ref;
        VgpuRegionMap region;
        VgpuChannelGeometry geometry;
        VgpuHostRequestConsumer req;
        VgpuHostCompletionProducer cpl;
        const BackendOps *ops;
        Backend *backend;
        void *plugin;
        Executor executor;
        bool executor_ready;
        uint64_t spin_usec;
        bool stopping;
} Server;

#define SERVER_NULL {.fds = {-1, -1, -1}, .region_ref = VGPU_REGION_REF_NULL}

#define log_server(s, level, ...) log_vm((level), (s)->config->vm_id, (s)->config->pool, NULL, __VA_ARGS__)

static void server_done(Server *s)
{
        if (s->executor_ready)
                executor_done(&s->executor); /* zeroes every allocation while the backend still exists */
        backend_close(s->ops, s->backend, s->plugin);
        vgpu_region_unmap(&s->region);
        vgpu_region_ref_done(&s->region_ref);
        if (s->link)
                munmap(s->link, s->link_size);
        for (size_t i = 0; i < VGPU_LINK_START_FDS; i++)
                closep(&s->fds[i]);
}

static int wait_readable(int fd, int timeout_ms)
{
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, timeout_ms);

        if (r < 0)
                return negative_errno();
        return r == 0 ? -ETIMEDOUT : 0;
}

/* The link memfd: mapped with the size fstat() reports (the start message's is only compared), its
 * geometry copied once and checked against that size. */
static int link_map(Server *s, const VgpuLinkStart *start)
{
        VgpuLinkGeometry g;
        struct stat st;
        int r;

        if (fstat(s->fds[0], &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) || st.st_size <= 0 || (uint64_t)st.st_size != start->link_size)
                return -EBADMSG;
        s->link_size = (size_t)st.st_size;
        s->link = mmap(NULL, s->link_size, PROT_READ | PROT_WRITE, MAP_SHARED, s->fds[0], 0);
        if (s->link == MAP_FAILED) {
                s->link = NULL;
                return negative_errno();
        }
        r = vgpu_link_geometry_read(s->link, s->link_size, &g);
        if (r < 0)
                return r;
        return vgpu_link_attach_executor(s->link, &g, &s->req, &s->cpl);
}

static int handshake(Server *s)
{
        VgpuLinkStart start;
        int r;

        r = wait_readable(s->config->control_fd, SERVE_HANDSHAKE_TIMEOUT_MS);
        if (r >= 0)
                r = vgpu_link_start_receive(s->config->control_fd, &start, s->fds);
        if (r < 0)
                return log_error_errno(r, "No valid start message from the scheduler: %m");
        if (start.vm_id != s->config->vm_id)
                return log_error_errno(-EBADMSG, "The start message is for VM %u, not %u.", start.vm_id, s->config->vm_id);
        r = link_map(s, &start);
        if (r < 0)
                return log_error_errno(r, "The host link is unusable: %m");
        r = wait_readable(s->config->control_fd, SERVE_HANDSHAKE_TIMEOUT_MS);
        if (r >= 0)
                r = vgpu_region_ref_receive(s->config->control_fd, &s->region_ref);
        if (r < 0)
                return log_error_errno(r, "No valid region reference from the scheduler: %m");
        r = vgpu_region_ref_map(&s->region_ref, &s->region);
        if (r < 0)
                return log_error_errno(r, "Failed to map the VM's region: %m");
        /* Read once; from here on only the data area is touched, through this private geometry. */
        r = vgpu_channel_geometry_read(s->region.addr, s->region.size, &s->geometry);
        if (r < 0)
                return log_error_errno(r, "The VM's region has no valid channel geometry: %m");
        return 0;
}

static void eventfd_signal(int fd)
{
        uint64_t one = 1;

        /* EAGAIN: the counter is saturated, so a wake-up is pending anyway. */
        (void)!write(fd, &one, sizeof(one));
}

static void eventfd_drain(int fd)
{
        uint64_t v;

        (void)!read(fd, &v, sizeof(v));
}

/* Looks at the control socket and signals without blocking (timeout 0) or sleeps up to timeout_ms, also
 * on the kick eventfd. Sets s->stopping on a signal or a hang-up. */
static int server_poll(Server *s, int timeout_ms)
{
        struct pollfd p[3] = {
                {.fd = s->config->control_fd, .events = POLLIN},
                {.fd = s->config->signal_fd, .events = POLLIN},
                {.fd = s->fds[1], .events = POLLIN},
        };
        struct signalfd_siginfo si;
        char byte;

        if (poll(p, timeout_ms == 0 ? 2 : 3, timeout_ms) < 0)
                return errno == EINTR ? 0 : negative_errno();
        if (p[1].revents & POLLIN && read(s->config->signal_fd, &si, sizeof(si)) == sizeof(si)) {
                log_server(s, LOG_INFO, "Received %s, exiting.", strsignal((int)si.ssi_signo));
                s->stopping = true;
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t n = recv(s->config->control_fd, &byte, sizeof(byte), MSG_DONTWAIT);

                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                        log_server(s, LOG_INFO, "The scheduler hung up, exiting.");
                        s->stopping = true;
                } else if (n > 0)
                        log_server(s, LOG_WARNING, "Ignoring an unexpected message on the control socket.");
        }
        if (p[2].revents & POLLIN)
                eventfd_drain(s->fds[1]);
        return 0;
}

static bool server_should_stop(void *userdata)
{
        Server *s = userdata;

        if (!s->stopping)
                (void)server_poll(s, 0);
        return s->stopping;
}

/* One command: take it, execute it, hand the slot back and publish its completion at once, so the
 * scheduler (which keeps only a few commands in flight) sees each result as soon as it exists. */
static int serve_one(Server *s)
{
        VgpuHostRequest hr;
        VgpuHostCompletion c;
        int r, notify;

        r = vgpu_ring_producer_space(&s->cpl.ring);
        if (r <= 0)
                return r == 0 ? -EAGAIN : r;
        r = vgpu_host_request_pop(&s->req, &hr);
        if (r < 0)
                return r;
        executor_execute(&s->executor, &hr, &c);
        r = vgpu_host_completion_push(&s->cpl, &c);
        if (r < 0)
                return r;
        notify = vgpu_ring_consumer_release(&s->req.ring);
        if (notify < 0)
                return notify;
        r = vgpu_ring_producer_publish(&s->cpl.ring);
        if (r < 0)
                return r;
        if (notify > 0 || r > 0)
                eventfd_signal(s->fds[2]);
        return 1;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield");
#endif
}

static uint64_t now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Bounded spin on the request index (a relaxed load per round): true when work showed up. */
static bool spin_for_work(Server *s)
{
        uint64_t deadline;

        if (s->spin_usec == 0)
                return false;
        deadline = now_usec() + s->spin_usec;
        for (unsigned i = 0;; i++) {
                if (vgpu_ring_consumer_has_work(&s->req.ring))
                        return true;
                if (i % 64 == 63 && now_usec() >= deadline)
                        return false;
                cpu_relax();
        }
}

/* Arms the event index of whatever we would wait for (requests, or completion space when the ring is
 * full), fenced, and looks once more: > 0 means do not sleep. */
static int prepare_wait(Server *s)
{
        int r = vgpu_ring_producer_space(&s->cpl.ring);

        if (r < 0)
                return r;
        if (r == 0)
                return vgpu_ring_producer_prepare_wait(&s->cpl.ring);
        return vgpu_ring_consumer_prepare_wait(&s->req.ring);
}

static int serve_loop(Server *s)
{
        int r;

        while (!s->stopping) {
                r = serve_one(s);
                if (r > 0 && s->executor.backend_failed) {
                        /* Its completion is out; the context cannot run anything more for this VM. */
                        log_server(s, LOG_ERR, "The VM's GPU context is lost to a fault; exiting so that the "
                                   "scheduler starts a fresh executor (the VM's GPU memory is gone).");
                        return -ENOTRECOVERABLE;
                }
                if (r > 0)
                        continue;
                if (r != -EAGAIN)
                        return r;
                if (spin_for_work(s))
                        continue;
                r = prepare_wait(s);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                r = server_poll(s, -1);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void backend_log(const BackendConfig *config, int level, const char *format, ...)
{
        char message[1024];
        va_list ap;

        va_start(ap, format);
        vsnprintf(message, sizeof(message), format, ap);
        va_end(ap);
        log_vm(level, config->vm_id, config->pool, NULL, "%s", message);
}

static int server_start(Server *s)
{
        BackendConfig bc = {.abi_version = VGPU_BACKEND_ABI_VERSION, .vm_id = s->config->vm_id,
                            .pool = s->config->pool, .should_stop = server_should_stop, .userdata = s,
                            .log = backend_log, .device = s->config->device};
        int r;

        r = handshake(s);
        if (r < 0)
                return r;
        /* The mapping outlives the backend (server_done() closes the backend first), so a backend may
         * register the data area for DMA once, here. */
        bc.data = (uint8_t *)s->region.addr + s->geometry.data_offset;
        bc.data_size = s->geometry.data_size;
        memcpy(bc.sm_limit, s->config->sm_limit, sizeof(bc.sm_limit));
        r = backend_open(s->config->backend, &bc, &s->ops, &s->backend, &s->plugin);
        if (r < 0)
                return r;
        r = executor_init(&s->executor, s->config->vm_id, s->config->pool, s->config->memory_quota, s->ops,
                          s->backend, (uint8_t *)s->region.addr + s->geometry.data_offset, s->geometry.data_size);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the executor: %m");
        s->executor.builtin_only = s->config->builtin_only;
        s->executor_ready = true;
        if (vgpu_poller_spin_usec_from_environment(&s->spin_usec) < 0)
                s->spin_usec = 0;
        return 0;
}

int serve(const ServeConfig *config)
{
        Server s = SERVER_NULL;
        int r;

        s.config = config;
        r = server_start(&s);
        if (r < 0) {
                (void)vgpu_link_ready_send(config->control_fd, r, NULL);
                server_done(&s);
                return r;
        }
        r = vgpu_link_ready_send(config->control_fd, 0, s.ops->name);
        if (r < 0)
                log_server(&s, LOG_INFO, "The scheduler left before the executor was ready.");
        else {
                log_server(&s, LOG_INFO, "Serving VM %u (backend %s, quota %" PRIu64 " bytes, data area %" PRIu64 " bytes, %s, %s).",
                           config->vm_id, s.ops->name, config->memory_quota, s.geometry.data_size,
                           s.spin_usec ? "spin-then-block" : "block",
                           config->builtin_only ? "vgpu.builtin only: the pool is shared" : "guest modules allowed");
                r = serve_loop(&s);
                if (r < 0 && r != -ENOTRECOVERABLE)
                        log_server(&s, LOG_ERR, "The host link broke (%s), exiting.",
                                   r == -EPROTO ? "the scheduler violated the ring discipline" : strerror(-r));
        }
        server_done(&s);
        return r < 0 ? r : 0;
}
