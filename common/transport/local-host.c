/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The host side of the local handshake: one hello from an untrusted peer, checked byte by byte and fd by fd
 * before anything is mapped. Every fd received is closed on every path that does not keep it. */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "local-internal.h"
#include "vgpu-util.h"

/* Room for more fds than a hello carries, so that "too many" is counted rather than truncated; past this
 * the kernel sets MSG_CTRUNC and closes the rest itself. */
#define HELLO_FDS_ROOM 8

typedef struct HelloMessage {
        VgpuLocalHello hello;
        size_t length;    /* bytes received */
        bool truncated;   /* MSG_TRUNC: the datagram was longer than a hello */
        bool bad_control; /* MSG_CTRUNC, or a control message other than SCM_RIGHTS */
        int fds[HELLO_FDS_ROOM];
        size_t n_fds;
} HelloMessage;

static void hello_message_close(HelloMessage *m)
{
        for (size_t i = 0; i < m->n_fds; i++)
                closep(&m->fds[i]);
        m->n_fds = 0;
}

/* Takes every fd out of the control data first, so that each is closed whatever is wrong with the rest. */
static void hello_collect_fds(struct msghdr *msg, HelloMessage *m)
{
        for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
                size_t n;

                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
                        m->bad_control = true;
                        continue;
                }
                n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < n; i++) {
                        int fd;

                        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
                        if (m->n_fds < HELLO_FDS_ROOM)
                                m->fds[m->n_fds++] = fd;
                        else
                                close(fd); /* cannot happen with this buffer size; never leak one */
                }
        }
        if (msg->msg_flags & MSG_CTRUNC)
                m->bad_control = true;
}

static int hello_receive(int conn, int timeout_ms, HelloMessage *m)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * HELLO_FDS_ROOM)];
        } control;
        char buf[sizeof(VgpuLocalHello) + 1]; /* one spare byte: a longer message shows as MSG_TRUNC */
        struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
        struct msghdr msg = {
                .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof(control.buf)};
        struct pollfd pfd = {.fd = conn, .events = POLLIN};
        ssize_t n;

        n = poll(&pfd, 1, timeout_ms);
        if (n < 0)
                return negative_errno();
        if (n == 0)
                return -ETIMEDOUT;
        /* CMSG_CLOEXEC: the fds must not leak into anything this service spawns (executors). */
        n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n < 0)
                return negative_errno();
        hello_collect_fds(&msg, m);
        if (n == 0 && m->n_fds == 0)
                return -ECONNRESET; /* hung up before saying anything: there is nobody to answer */
        m->length = (size_t)n;
        m->truncated = msg.msg_flags & MSG_TRUNC;
        if (m->length >= sizeof(m->hello))
                memcpy(&m->hello, buf, sizeof(m->hello));
        return 0;
}

static int hello_check(const HelloMessage *m)
{
        const VgpuLocalHello *h = &m->hello;

        if (m->length != sizeof(*h) || m->truncated)
                return VGPU_LOCAL_REFUSED_HELLO;
        if (h->magic != VGPU_LOCAL_HELLO_MAGIC || h->hello_size != sizeof(*h) || h->flags != 0 || h->reserved != 0)
                return VGPU_LOCAL_REFUSED_HELLO;
        if (h->version != VGPU_LOCAL_TRANSPORT_VERSION)
                return VGPU_LOCAL_REFUSED_VERSION;
        if (h->region_size < VGPU_LOCAL_REGION_SIZE_MIN || h->region_size > VGPU_REGION_SIZE_MAX ||
            h->region_size % (uint64_t)sysconf(_SC_PAGESIZE) != 0)
                return VGPU_LOCAL_REFUSED_SIZE_RANGE;
        if (m->bad_control || m->n_fds != VGPU_LOCAL_HELLO_FDS)
                return VGPU_LOCAL_REFUSED_FD_COUNT;
        return 0;
}

/* What the fd is, as the kernel names it: "/memfd:NAME (deleted)", "anon_inode:[eventfd]", "pipe:[N]". */
static int fd_kind(int fd, char *buf, size_t size)
{
        char path[64];
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        n = readlink(path, buf, size - 1);
        if (n < 0)
                return negative_errno();
        buf[n] = '\0';
        return 0;
}

int vgpu_local_check_memfd(int fd, uint64_t *ret_size)
{
        char kind[256];
        struct statfs sfs;
        struct stat st;
        int r, seals, flags;

        if (fstat(fd, &st) < 0 || fstatfs(fd, &sfs) < 0)
                return negative_errno();
        r = fd_kind(fd, kind, sizeof(kind));
        if (r < 0)
                return r;
        /* A memfd is a shmem file whose link reads "/memfd:…"; hugetlbfs memfds are not accepted. */
        if (!S_ISREG(st.st_mode) || sfs.f_type != TMPFS_MAGIC || strncmp(kind, "/memfd:", 7) != 0)
                return VGPU_LOCAL_REFUSED_NOT_MEMFD;
        flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return negative_errno();
        if ((flags & O_ACCMODE) != O_RDWR)
                return VGPU_LOCAL_REFUSED_NOT_MEMFD;
        seals = fcntl(fd, F_GET_SEALS);
        if (seals < 0)
                return errno == EINVAL ? VGPU_LOCAL_REFUSED_NOT_MEMFD : negative_errno();
        /* SHRINK: no ftruncate() can turn our mapped pages into SIGBUS. GROW: the size we checked stays
         * the size. SEAL: nobody can add WRITE or FUTURE_WRITE later. A write seal would make our writable
         * mapping fail (or, FUTURE_WRITE, a later one: the executor's), so it is refused too. */
        if ((seals & VGPU_LOCAL_SEALS_REQUIRED) != VGPU_LOCAL_SEALS_REQUIRED ||
            (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) != 0)
                return VGPU_LOCAL_REFUSED_SEALS;
        if (st.st_size < (off_t)VGPU_LOCAL_REGION_SIZE_MIN || (uint64_t)st.st_size > VGPU_REGION_SIZE_MAX ||
            st.st_size % sysconf(_SC_PAGESIZE) != 0)
                return VGPU_LOCAL_REFUSED_SIZE_RANGE;
        *ret_size = (uint64_t)st.st_size;
        return 0;
}

static int check_eventfd(int fd)
{
        char kind[64];
        int r, flags;

        r = fd_kind(fd, kind, sizeof(kind));
        if (r < 0)
                return r;
        if (!streq(kind, "anon_inode:[eventfd]"))
                return VGPU_LOCAL_REFUSED_NOT_EVENTFD;
        /* Our ack must never block. The guest shares this file description and can clear the flag again;
         * ack() does not depend on it (RWF_NOWAIT). The host never writes an eventfd of the guest's. */
        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return negative_errno();
        return 0;
}

/* The host's wake-up for the guest: an AF_UNIX datagram socket (the guest keeps the other end). */
static int check_notify_socket(int fd)
{
        int domain = 0, type = 0;
        socklen_t len = sizeof(int);

        if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_UNIX)
                return VGPU_LOCAL_REFUSED_NOT_EVENTFD;
        len = sizeof(int);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_DGRAM)
                return VGPU_LOCAL_REFUSED_NOT_EVENTFD;
        return 0;
}

static int hello_check_fds(const HelloMessage *m)
{
        uint64_t size;
        int r;

        r = vgpu_local_check_memfd(m->fds[0], &size);
        if (r != 0)
                return r;
        /* The hello's size is only a claim; it must agree with what the kernel says, and only the
         * kernel's value is ever used. */
        if (size != m->hello.region_size)
                return VGPU_LOCAL_REFUSED_SIZE_MISMATCH;
        r = check_eventfd(m->fds[1]);
        if (r != 0)
                return r;
        return check_notify_socket(m->fds[2]);
}

static int reply_send(int conn, uint8_t status, uint32_t reason)
{
        VgpuLocalReply reply = {.status = status, .version = VGPU_LOCAL_TRANSPORT_VERSION, .reason = reason};

        /* MSG_DONTWAIT: a peer that stopped reading must not stall the host; the reply is best effort. */
        if (send(conn, &reply, sizeof(reply), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
                return negative_errno();
        return 0;
}

static void peer_credentials(int conn, VgpuPeer *ret)
{
        struct ucred cred = {};
        socklen_t len = sizeof(cred);

        if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                cred = (struct ucred){.pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1};
        *ret = (VgpuPeer){.pid = cred.pid, .uid = cred.uid, .gid = cred.gid};
}

/* Maps the checked memfd and reads the geometry out of it once. Takes the three fds from m. */
static int host_endpoint_build(HelloMessage *m, LocalEndpoint *l)
{
        size_t size = (size_t)m->hello.region_size; /* equal to the fstat() size by now */
        void *region;
        int r;

        l->memfd = TAKE_FD(m->fds[0]);
        l->base.wait_fd = TAKE_FD(m->fds[1]);
        l->notify_fd = TAKE_FD(m->fds[2]);
        l->notify_is_socket = true;
        region = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, l->memfd, 0);
        if (region == MAP_FAILED)
                return negative_errno();
        l->base.region = region;
        l->base.region_size = size;
        l->owns_region = true;
        l->base.host = true;
        r = vgpu_channel_geometry_read(region, size, &l->base.geometry);
        if (r == -EPROTONOSUPPORT)
                return VGPU_LOCAL_REFUSED_LAYOUT_VERSION;
        if (r < 0)
                return VGPU_LOCAL_REFUSED_GEOMETRY;
        return 0;
}

int vgpu_local_host_accept(int conn_in, int timeout_ms, VgpuEndpoint **ret, VgpuPeer *ret_peer)
{
        _cleanup_close_ int conn = conn_in;
        _cleanup_(hello_message_close) HelloMessage m = {};
        _cleanup_endpoint_ VgpuEndpoint *e = NULL;
        LocalEndpoint *l;
        VgpuPeer peer;
        int r;

        if (conn < 0 || !ret)
                return -EINVAL;
        peer_credentials(conn, &peer);
        if (ret_peer)
                *ret_peer = peer;

        r = hello_receive(conn, timeout_ms, &m);
        if (r < 0)
                return r;
        r = hello_check(&m);
        if (r == 0)
                r = hello_check_fds(&m);
        if (r == 0) {
                l = local_endpoint_alloc();
                if (!l)
                        return -ENOMEM;
                e = &l->base;
                e->peer = peer;
                r = host_endpoint_build(&m, l);
        }
        if (r != 0) {
                (void)reply_send(conn, r > 0 ? VGPU_LOCAL_REFUSED : VGPU_LOCAL_HOST_ERROR, (uint32_t)(r > 0 ? r : -r));
                return r;
        }
        /* Alive before the guest can learn it was accepted. */
        vgpu_channel_set_backend_state(e->region, VGPU_PEER_ALIVE, 0);
        r = reply_send(conn, VGPU_LOCAL_ACCEPTED, 0);
        if (r < 0)
                return r;
        e->hangup_fd = TAKE_FD(conn);
        *ret = TAKE_PTR(e);
        return 0;
}
