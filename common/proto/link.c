/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The host link between a pool's scheduler and one VM's executor: layout, the once-only geometry check
 * (as channel.c does for guest channels: both sides are host services, but a confused scheduler must not
 * make the executor read past its mapping), and the start-up messages on the control socket. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "link.h"

#define LINK_PAGE 4096u

_Static_assert(VGPU_HOST_REQUEST_SIZE % VGPU_AREA_ALIGN == 0, "request slots keep cache-line alignment");
_Static_assert(VGPU_HOST_COMPLETION_SIZE % VGPU_AREA_ALIGN == 0, "completion slots keep cache-line alignment");

static uint64_t align_up(uint64_t v, uint64_t a)
{
        return (v + a - 1) & ~(a - 1);
}

/* The creator's layout: header, then the request ring, then the completion ring, each cache-line aligned,
 * the whole rounded up to pages (the region is a memfd). */
static void link_layout(uint32_t req_count, uint32_t cpl_count, VgpuLinkGeometry *g)
{
        g->req_count = req_count;
        g->cpl_count = cpl_count;
        g->req_offset = (uint32_t)align_up(sizeof(VgpuLinkHeader), VGPU_AREA_ALIGN);
        g->cpl_offset = (uint32_t)align_up((uint64_t)g->req_offset + (uint64_t)req_count * VGPU_HOST_REQUEST_SIZE,
                                           VGPU_AREA_ALIGN);
        g->region_size = align_up((uint64_t)g->cpl_offset + (uint64_t)cpl_count * VGPU_HOST_COMPLETION_SIZE, LINK_PAGE);
}

size_t vgpu_link_region_size(uint32_t req_count, uint32_t cpl_count)
{
        VgpuLinkGeometry g;

        if (!vgpu_ring_count_is_valid(req_count) || !vgpu_ring_count_is_valid(cpl_count))
                return 0;
        link_layout(req_count, cpl_count, &g);
        return (size_t)g.region_size;
}

int vgpu_link_format(void *region, size_t region_size, uint32_t req_count, uint32_t cpl_count,
                     VgpuLinkGeometry *ret)
{
        VgpuLinkHeader *h = region;
        VgpuLinkGeometry g;
        size_t need = vgpu_link_region_size(req_count, cpl_count);

        if (!region || ((uintptr_t)region % VGPU_AREA_ALIGN) != 0 || need == 0 || region_size < need)
                return -EINVAL;
        link_layout(req_count, cpl_count, &g);
        g.region_size = region_size; /* a larger region is fine: the tail is unused */

        /* Not shared yet (the memfd is handed over afterwards, which orders these stores before the
         * executor's first load), so plain stores suffice. */
        *h = (VgpuLinkHeader){
                .magic = VGPU_LINK_MAGIC,
                .version = VGPU_LINK_VERSION,
                .header_size = sizeof(VgpuLinkHeader),
                .req_count = g.req_count,
                .cpl_count = g.cpl_count,
                .req_slot_size = VGPU_HOST_REQUEST_SIZE,
                .cpl_slot_size = VGPU_HOST_COMPLETION_SIZE,
                .region_size = g.region_size,
                .req_offset = g.req_offset,
                .cpl_offset = g.cpl_offset,
        };
        if (ret)
                *ret = g;
        return 0;
}

static bool area_fits(uint64_t offset, uint64_t size, uint64_t region_size)
{
        return offset <= region_size && size <= region_size - offset;
}

static int link_geometry_check(const VgpuLinkHeader *h, uint64_t region_size)
{
        uint64_t req_size, cpl_size;

        if (h->magic != VGPU_LINK_MAGIC)
                return -EPROTO;
        if (h->version != VGPU_LINK_VERSION)
                return -EPROTONOSUPPORT;
        if (h->header_size != sizeof(VgpuLinkHeader) || h->flags != 0 || h->region_size != region_size)
                return -EPROTO;
        if (h->req_slot_size != VGPU_HOST_REQUEST_SIZE || h->cpl_slot_size != VGPU_HOST_COMPLETION_SIZE)
                return -EPROTO;
        if (!vgpu_ring_count_is_valid(h->req_count) || !vgpu_ring_count_is_valid(h->cpl_count))
                return -EPROTO;
        if (h->req_offset % VGPU_AREA_ALIGN || h->cpl_offset % VGPU_AREA_ALIGN ||
            h->req_offset < sizeof(VgpuLinkHeader) || h->cpl_offset < sizeof(VgpuLinkHeader))
                return -EPROTO;
        /* Counts are at most 4096, so the sizes cannot overflow; area_fits() cannot either. */
        req_size = (uint64_t)h->req_count * VGPU_HOST_REQUEST_SIZE;
        cpl_size = (uint64_t)h->cpl_count * VGPU_HOST_COMPLETION_SIZE;
        if (!area_fits(h->req_offset, req_size, region_size) || !area_fits(h->cpl_offset, cpl_size, region_size))
                return -EPROTO;
        if (!((uint64_t)h->req_offset + req_size <= h->cpl_offset || (uint64_t)h->cpl_offset + cpl_size <= h->req_offset))
                return -EPROTO;
        return 0;
}

int vgpu_link_geometry_read(const void *region, size_t region_size, VgpuLinkGeometry *ret)
{
        VgpuLinkHeader h;
        int r;

        if (!region || ((uintptr_t)region % VGPU_AREA_ALIGN) != 0 || !ret)
                return -EINVAL;
        if (region_size < sizeof(VgpuLinkHeader))
                return -EPROTO;
        /* The one read of the geometry line; everything below looks at the private copy only. */
        vgpu_shared_copy_from(&h, region, offsetof(VgpuLinkHeader, req));
        r = link_geometry_check(&h, region_size);
        if (r < 0)
                return r;
        *ret = (VgpuLinkGeometry){
                .region_size = h.region_size,
                .req_offset = h.req_offset,
                .req_count = h.req_count,
                .cpl_offset = h.cpl_offset,
                .cpl_count = h.cpl_count,
        };
        return 0;
}

int vgpu_link_attach_scheduler(void *region, const VgpuLinkGeometry *g, VgpuHostRequestProducer *req,
                               VgpuHostCompletionConsumer *cpl)
{
        VgpuLinkHeader *h = region;
        uint8_t *base = region;
        int r;

        r = vgpu_ring_producer_attach(&req->ring, &h->req, base + g->req_offset, g->req_count, VGPU_HOST_REQUEST_SIZE);
        if (r < 0)
                return r;
        return vgpu_ring_consumer_attach(&cpl->ring, &h->cpl, base + g->cpl_offset, g->cpl_count,
                                         VGPU_HOST_COMPLETION_SIZE);
}

int vgpu_link_attach_executor(void *region, const VgpuLinkGeometry *g, VgpuHostRequestConsumer *req,
                              VgpuHostCompletionProducer *cpl)
{
        VgpuLinkHeader *h = region;
        uint8_t *base = region;
        int r;

        r = vgpu_ring_consumer_attach(&req->ring, &h->req, base + g->req_offset, g->req_count, VGPU_HOST_REQUEST_SIZE);
        if (r < 0)
                return r;
        return vgpu_ring_producer_attach(&cpl->ring, &h->cpl, base + g->cpl_offset, g->cpl_count,
                                         VGPU_HOST_COMPLETION_SIZE);
}

/* ---- Start-up messages ---- */

int vgpu_link_start_send(int sock, const VgpuLinkStart *start, int link_fd, int kick_fd, int notify_fd)
{
        int fds[VGPU_LINK_START_FDS] = {link_fd, kick_fd, notify_fd};
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(fds))];
        } control = {};
        struct iovec iov = {.iov_base = (void *)start, .iov_len = sizeof(*start)};
        struct msghdr msg = {
                .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof(control.buf)};
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

        if (!start || link_fd < 0 || kick_fd < 0 || notify_fd < 0)
                return -EINVAL;
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(fds));
        memcpy(CMSG_DATA(c), fds, sizeof(fds));
        if (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0)
                return errno > 0 ? -errno : -EIO;
        return 0;
}

static void close_fds(int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (fds[i] >= 0) {
                        close(fds[i]);
                        fds[i] = -1;
                }
}

/* Collects every fd of every SCM_RIGHTS message first, so each is closed on every failure path. */
static size_t collect_fds(struct msghdr *msg, int *fds, size_t max)
{
        size_t n = 0;

        for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
                        int got;

                        memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(got));
                        if (n < max)
                                fds[n] = got;
                        else
                                close(got);
                        n++;
                }
        }
        return n;
}

int vgpu_link_start_receive(int sock, VgpuLinkStart *ret, int ret_fds[VGPU_LINK_START_FDS])
{
        int fds[VGPU_LINK_START_FDS + 1] = {-1, -1, -1, -1};
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * 8)];
        } control;
        char buf[sizeof(VgpuLinkStart) + 1];
        struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
        struct msghdr msg = {
                .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof(control.buf)};
        VgpuLinkStart s;
        size_t n_fds;
        ssize_t n;

        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0)
                return errno > 0 ? -errno : -EIO;
        n_fds = collect_fds(&msg, fds, (sizeof(fds) / sizeof(fds[0])));
        if (n == 0 && n_fds == 0)
                return -ECONNRESET;
        if ((size_t)n != sizeof(s) || n_fds != VGPU_LINK_START_FDS || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
                close_fds(fds, (sizeof(fds) / sizeof(fds[0])));
                return -EBADMSG;
        }
        memcpy(&s, buf, sizeof(s));
        if (s.magic != VGPU_LINK_START_MAGIC || s.version != VGPU_LINK_VERSION || s.size != sizeof(s) ||
            s.flags != 0 || s.link_size == 0) {
                close_fds(fds, (sizeof(fds) / sizeof(fds[0])));
                return -EBADMSG;
        }
        *ret = s;
        memcpy(ret_fds, fds, sizeof(int) * VGPU_LINK_START_FDS);
        return 0;
}

int vgpu_link_ready_send(int sock, int error, const char *backend)
{
        VgpuLinkReady m = {.magic = VGPU_LINK_READY_MAGIC, .error = error < 0 ? -error : error};

        if (backend)
                strncpy(m.backend, backend, sizeof(m.backend) - 1);
        if (send(sock, &m, sizeof(m), MSG_NOSIGNAL) < 0)
                return errno > 0 ? -errno : -EIO;
        return 0;
}

int vgpu_link_ready_receive(int sock, int timeout_ms, VgpuLinkReady *ret)
{
        struct pollfd p = {.fd = sock, .events = POLLIN};
        char buf[sizeof(VgpuLinkReady) + 1];
        ssize_t n;
        int r;

        r = poll(&p, 1, timeout_ms);
        if (r < 0)
                return errno > 0 ? -errno : -EIO;
        if (r == 0)
                return -ETIMEDOUT;
        n = recv(sock, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0)
                return errno > 0 ? -errno : -EIO;
        if (n == 0)
                return -ECONNRESET;
        if ((size_t)n != sizeof(*ret))
                return -EBADMSG;
        memcpy(ret, buf, sizeof(*ret));
        if (ret->magic != VGPU_LINK_READY_MAGIC || ret->error < 0)
                return -EBADMSG;
        ret->backend[sizeof(ret->backend) - 1] = 0;
        return 0;
}
