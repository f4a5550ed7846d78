/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Backend-neutral pieces of transport.h: endpoint release, kind names, and region references — how
 * ingestd hands a VM's region to the executor that serves it, which maps it itself. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "local.h"
#include "transport.h"
#include "vgpu-util.h"
#include "xen.h"

#define REGION_REF_MAGIC   UINT32_C(0x52524756) /* "VGRR" in memory */
#define REGION_REF_VERSION 1

/* The fixed part of a reference on the wire; local: the memfd rides along as SCM_RIGHTS. */
typedef struct RegionRefWire {
        uint32_t magic;
        uint16_t version;
        uint16_t kind;
        uint64_t size;
        uint32_t domid;
        uint32_t n_refs; /* Xen: the references follow; local: 0 */
} RegionRefWire;

_Static_assert(sizeof(RegionRefWire) == 24, "region reference header");

VgpuEndpoint *vgpu_endpoint_free(VgpuEndpoint *e)
{
        if (e)
                e->ops->free(e);
        return NULL;
}

const char *vgpu_transport_kind_to_string(VgpuTransportKind kind)
{
        switch (kind) {
        case VGPU_TRANSPORT_LOCAL:
                return "local";
        case VGPU_TRANSPORT_XEN:
                return "xen";
        }
        return "unknown";
}

int vgpu_transport_kind_from_string(const char *s)
{
        if (streq_ptr(s, "local"))
                return VGPU_TRANSPORT_LOCAL;
        if (streq_ptr(s, "xen"))
                return VGPU_TRANSPORT_XEN;
        return -EINVAL;
}

void vgpu_region_ref_done(VgpuRegionRef *ref)
{
        if (!ref)
                return;
        closep(&ref->fd);
        free(ref->refs);
        *ref = VGPU_REGION_REF_NULL;
}

int vgpu_endpoint_region_ref(const VgpuEndpoint *e, VgpuRegionRef *ret)
{
        if (!e || !ret)
                return -EINVAL;
        if (!e->host)
                return -EOPNOTSUPP;
        return e->ops->region_ref(e, ret);
}

/* Xen: the references travel in a sealed memfd, so that a 4 GiB region's million references need no
 * socket buffer that large. */
static int refs_memfd(const uint32_t *refs, uint32_t n)
{
        _cleanup_close_ int fd = memfd_create("vgpu-xen-refs", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        size_t size = (size_t)n * sizeof(uint32_t);

        if (fd < 0)
                return negative_errno();
        if (pwrite(fd, refs, size, 0) != (ssize_t)size)
                return -EIO;
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
                return negative_errno();
        return TAKE_FD(fd);
}

/* The receiving end of refs_memfd(): exactly n references, read once. */
static int refs_read(int fd, uint32_t n, uint32_t **ret)
{
        size_t size = (size_t)n * sizeof(uint32_t);
        struct stat st;
        uint32_t *refs;

        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != size)
                return -EBADMSG;
        refs = malloc(size);
        if (!refs)
                return -ENOMEM;
        if (pread(fd, refs, size, 0) != (ssize_t)size) {
                free(refs);
                return -EBADMSG;
        }
        *ret = refs;
        return 0;
}

int vgpu_region_ref_send(int sock, const VgpuRegionRef *ref)
{
        RegionRefWire w;
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct iovec iov = {.iov_base = &w, .iov_len = sizeof(w)};
        struct msghdr msg = {
                .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof(control.buf)};
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

        _cleanup_close_ int refs_fd = -1;
        int fd;

        if (!ref)
                return -EINVAL;
        w = (RegionRefWire){
                .magic = REGION_REF_MAGIC, .version = REGION_REF_VERSION, .kind = ref->kind, .size = ref->size};
        if (ref->kind == VGPU_TRANSPORT_XEN) {
                if (ref->n_refs == 0 || !ref->refs)
                        return -EINVAL;
                refs_fd = refs_memfd(ref->refs, ref->n_refs);
                if (refs_fd < 0)
                        return refs_fd;
                fd = refs_fd;
                w.domid = ref->domid;
                w.n_refs = ref->n_refs;
        } else if (ref->kind == VGPU_TRANSPORT_LOCAL) {
                if (ref->fd < 0 || ref->size == 0)
                        return -EINVAL;
                fd = ref->fd;
        } else
                return -EOPNOTSUPP;
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        if (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0)
                return negative_errno();
        return 0;
}

static int receive_xen(const RegionRefWire *w, int fd, VgpuRegionRef *ret)
{
        uint32_t *refs = NULL;
        int r;

        if (w->domid == 0 || w->domid > VGPU_XEN_DOMID_MAX || w->n_refs == 0 ||
            w->n_refs > VGPU_XEN_REGION_PAGES_MAX || w->size != (uint64_t)w->n_refs * VGPU_XEN_PAGE_SIZE)
                return -EBADMSG;
        r = refs_read(fd, w->n_refs, &refs);
        if (r < 0)
                return r;
        *ret = (VgpuRegionRef){.kind = VGPU_TRANSPORT_XEN, .size = w->size, .fd = -1, .domid = w->domid,
                               .n_refs = w->n_refs, .refs = refs};
        return 0;
}

int vgpu_region_ref_receive(int sock, VgpuRegionRef *ret)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * 4)];
        } control;
        char buf[sizeof(RegionRefWire) + 1];
        struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
        struct msghdr msg = {
                .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof(control.buf)};
        _cleanup_close_ int fd = -1;
        int n_fds = 0;
        RegionRefWire w;
        ssize_t n;

        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0)
                return negative_errno();
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
                        int got;

                        memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(got));
                        if (n_fds++ == 0)
                                fd = got;
                        else
                                close(got);
                }
        }
        if (n == 0 && n_fds == 0)
                return -ECONNRESET;
        if ((size_t)n != sizeof(w) || n_fds != 1 || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
                return -EBADMSG;
        memcpy(&w, buf, sizeof(w));
        if (w.magic != REGION_REF_MAGIC || w.version != REGION_REF_VERSION || w.size == 0 ||
            w.size > VGPU_REGION_SIZE_MAX)
                return -EBADMSG;
        if (w.kind == VGPU_TRANSPORT_XEN)
                return receive_xen(&w, fd, ret);
        if (w.kind != VGPU_TRANSPORT_LOCAL || w.domid != 0 || w.n_refs != 0)
                return -EBADMSG;
        *ret = (VgpuRegionRef){.kind = VGPU_TRANSPORT_LOCAL, .size = w.size, .fd = TAKE_FD(fd)};
        return 0;
}

int vgpu_region_ref_map(const VgpuRegionRef *ref, VgpuRegionMap *ret)
{
        uint64_t size;
        void *addr;
        int r;

        if (!ref || !ret)
                return -EINVAL;
        if (ref->kind == VGPU_TRANSPORT_XEN)
                return vgpu_xen_region_map(vgpu_xen_ops(), ref, ret);
        if (ref->kind != VGPU_TRANSPORT_LOCAL)
                return -EOPNOTSUPP;
        /* The same checks the handshake made: this process maps it too and must not be made to fault. */
        r = vgpu_local_check_memfd(ref->fd, &size);
        if (r < 0)
                return r;
        if (r == VGPU_LOCAL_REFUSED_NOT_MEMFD)
                return -EBADF;
        if (r == VGPU_LOCAL_REFUSED_SEALS)
                return -EPERM;
        if (r > 0 || size != ref->size)
                return -EBADMSG;
        addr = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, ref->fd, 0);
        if (addr == MAP_FAILED)
                return negative_errno();
        *ret = (VgpuRegionMap){.kind = VGPU_TRANSPORT_LOCAL, .addr = addr, .size = (size_t)size};
        return 0;
}

void vgpu_region_unmap(VgpuRegionMap *m)
{
        if (!m || !m->addr)
                return;
        if (m->kind == VGPU_TRANSPORT_XEN)
                vgpu_xen_region_unmap(m);
        else
                munmap(m->addr, m->size);
        *m = (VgpuRegionMap){};
}
