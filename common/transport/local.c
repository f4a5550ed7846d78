/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The local backend's endpoint (eventfd notify/ack), the guest side of the handshake and the per-VM
 * socket. The host side of the handshake is in local-host.c. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "local-internal.h"
#include "vgpu-util.h"

static const char *const refusal_table[_VGPU_LOCAL_REFUSED_MAX] = {
        [VGPU_LOCAL_REFUSED_HELLO] = "malformed hello",
        [VGPU_LOCAL_REFUSED_VERSION] = "unsupported transport version",
        [VGPU_LOCAL_REFUSED_FD_COUNT] = "not exactly three file descriptors",
        [VGPU_LOCAL_REFUSED_NOT_MEMFD] = "region is not a read-write memfd",
        [VGPU_LOCAL_REFUSED_SEALS] = "memfd seals are not shrink|grow|seal (without write)",
        [VGPU_LOCAL_REFUSED_SIZE_MISMATCH] = "memfd size differs from the hello",
        [VGPU_LOCAL_REFUSED_SIZE_RANGE] = "region size out of range",
        [VGPU_LOCAL_REFUSED_NOT_EVENTFD] = "notification fds are not an eventfd and a datagram socket",
        [VGPU_LOCAL_REFUSED_GEOMETRY] = "channel header geometry is invalid",
        [VGPU_LOCAL_REFUSED_LAYOUT_VERSION] = "channel layout version not supported",
};

const char *vgpu_local_refusal_to_string(int refusal)
{
        if (refusal <= 0 || refusal >= _VGPU_LOCAL_REFUSED_MAX)
                return "unknown refusal";
        return refusal_table[refusal];
}

/* ---- The endpoint ---- */

static int local_notify(VgpuEndpoint *e)
{
        LocalEndpoint *l = (LocalEndpoint *)e;
        uint64_t one = 1;
        ssize_t n;

        if (l->notify_is_socket) {
                /* The host wakes its guest with a one-byte datagram. MSG_DONTWAIT makes this send
                 * non-blocking whatever the guest does to the shared file description (it could clear
                 * O_NONBLOCK, which a write() to a shared eventfd would obey, and fill the counter: the host
                 * would then block). A full queue (EAGAIN, ENOBUFS) already holds a wake-up; a guest that is
                 * gone (ECONNREFUSED) is noticed through the hang-up. */
                n = send(l->notify_fd, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n >= 0 || errno == EAGAIN || errno == ENOBUFS || errno == ECONNREFUSED)
                        return 0;
                return negative_errno();
        }
        n = write(l->notify_fd, &one, sizeof(one));
        if (n == sizeof(one))
                return 0;
        /* EAGAIN: the counter is saturated, so the peer has a wake-up pending anyway. */
        if (n < 0 && errno == EAGAIN)
                return 0;
        return n < 0 ? negative_errno() : -EIO;
}

static int local_ack(VgpuEndpoint *e)
{
        LocalEndpoint *l = (LocalEndpoint *)e;
        uint64_t value;
        struct iovec iov = {.iov_base = &value, .iov_len = sizeof(value)};
        ssize_t n;

        if (l->wait_is_socket) {
                char drain[64];

                /* Every queued wake-up at once: one per notification, all meaning "look at the rings". */
                while ((n = recv(e->wait_fd, drain, sizeof(drain), MSG_DONTWAIT)) >= 0)
                        ;
                return errno == EAGAIN ? 0 : negative_errno();
        }
        /* RWF_NOWAIT makes this one read non-blocking whatever the file's flags: the guest shares the
         * file description of the host's eventfds and could clear O_NONBLOCK on it, then drain the
         * counter between our wake-up and this read. Older kernels: fall back on our O_NONBLOCK. */
        n = preadv2(e->wait_fd, &iov, 1, -1, RWF_NOWAIT);
        if (n < 0 && errno == EOPNOTSUPP)
                n = read(e->wait_fd, &value, sizeof(value));
        if (n == sizeof(value) || (n < 0 && errno == EAGAIN))
                return 0;
        return n < 0 ? negative_errno() : -EIO;
}

static int local_region_ref(const VgpuEndpoint *e, VgpuRegionRef *ret)
{
        const LocalEndpoint *l = (const LocalEndpoint *)e;
        int fd;

        if (l->memfd < 0)
                return -EOPNOTSUPP;
        fd = fcntl(l->memfd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return negative_errno();
        *ret = (VgpuRegionRef){.kind = VGPU_TRANSPORT_LOCAL, .size = e->region_size, .fd = fd};
        return 0;
}

static void local_free(VgpuEndpoint *e)
{
        LocalEndpoint *l = (LocalEndpoint *)e;

        if (l->owns_region && e->region)
                munmap(e->region, e->region_size);
        closep(&e->wait_fd);
        closep(&e->hangup_fd);
        closep(&l->notify_fd);
        closep(&l->memfd);
        free(l);
}

static const VgpuEndpointOps local_ops = {
        .notify = local_notify,
        .ack = local_ack,
        .region_ref = local_region_ref,
        .free = local_free,
};

LocalEndpoint *local_endpoint_alloc(void)
{
        LocalEndpoint *l = calloc(1, sizeof(*l));

        if (!l)
                return NULL;
        l->base = (VgpuEndpoint){.ops = &local_ops, .kind = VGPU_TRANSPORT_LOCAL, .wait_fd = -1, .hangup_fd = -1};
        l->notify_fd = -1;
        l->memfd = -1;
        return l;
}

int vgpu_local_endpoint_new(void *region, size_t region_size, const VgpuChannelGeometry *g, int wait_fd, int notify_fd,
                            VgpuEndpoint **ret)
{
        LocalEndpoint *l;

        if (!region || !g || wait_fd < 0 || notify_fd < 0 || !ret)
                return -EINVAL;
        l = local_endpoint_alloc();
        if (!l)
                return -ENOMEM;
        l->base.region = region;
        l->base.region_size = region_size;
        l->base.geometry = *g;
        l->base.wait_fd = wait_fd;
        l->notify_fd = notify_fd;
        *ret = &l->base;
        return 0;
}

/* ---- The per-VM socket ---- */

int vgpu_local_socket_path(const char *runtime_dir, uint32_t vm_id, char *buf, size_t size)
{
        int n;

        if (isempty(runtime_dir) || !buf)
                return -EINVAL;
        n = snprintf(buf, size, "%s/vm/%u.sock", runtime_dir, vm_id);
        if (n < 0 || (size_t)n >= size || (size_t)n >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
                return -ENAMETOOLONG;
        return 0;
}

static int sockaddr_fill(struct sockaddr_un *sa, const char *path)
{
        size_t len = strlen(path);

        if (len == 0 || len >= sizeof(sa->sun_path))
                return -ENAMETOOLONG;
        *sa = (struct sockaddr_un){.sun_family = AF_UNIX};
        memcpy(sa->sun_path, path, len + 1);
        return 0;
}

/* Binds and listens at tmp_path (inside a fresh 0700 directory nobody else can enter), narrows the mode
 * to 0600, then moves it to path. The umask is process-wide and not thread-safe, so it is not touched;
 * fchmod() on a socket fd does not change the inode bind() created. */
static int listen_via_private_dir(const char *tmp_path, const char *path)
{
        _cleanup_close_ int fd = -1;
        struct sockaddr_un sa;
        struct stat st;
        int r;

        r = sockaddr_fill(&sa, tmp_path);
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return negative_errno();
        if (chmod(tmp_path, 0600) < 0 || listen(fd, SOMAXCONN) < 0)
                r = negative_errno();
        /* Only a stale socket is replaced; a file or directory of that name is somebody else's. */
        else if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
                r = -EEXIST;
        else if (unlink(path) < 0 && errno != ENOENT)
                r = negative_errno();
        /* NOREPLACE: anything that appeared since the lstat() is not clobbered. */
        else if (renameat2(AT_FDCWD, tmp_path, AT_FDCWD, path, RENAME_NOREPLACE) < 0)
                r = negative_errno();
        if (r < 0) {
                unlink(tmp_path);
                return r;
        }
        return TAKE_FD(fd);
}

int vgpu_local_listen(const char *path)
{
        char dir[PATH_MAX], tmp_path[PATH_MAX];
        const char *slash;
        int r, n;

        if (!path || strlen(path) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
                return -ENAMETOOLONG;
        slash = strrchr(path, '/');
        n = slash ? snprintf(dir, sizeof(dir), "%.*s/.vgpu-XXXXXX", (int)(slash - path), path)
                  : snprintf(dir, sizeof(dir), ".vgpu-XXXXXX");
        if (n < 0 || (size_t)n >= sizeof(dir))
                return -ENAMETOOLONG;
        if (!mkdtemp(dir))
                return negative_errno();
        n = snprintf(tmp_path, sizeof(tmp_path), "%s/s", dir);
        r = (n < 0 || (size_t)n >= sizeof(tmp_path)) ? -ENAMETOOLONG : listen_via_private_dir(tmp_path, path);
        rmdir(dir);
        return r;
}

/* ---- Guest side ---- */

int vgpu_local_send_hello(int sock, const VgpuLocalHello *hello, const int *fds, size_t n_fds)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * 16)];
        } control = {};
        struct iovec iov = {.iov_base = (void *)hello, .iov_len = sizeof(*hello)};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

        if (n_fds > 16)
                return -EINVAL;
        if (n_fds > 0) {
                struct cmsghdr *c;

                msg.msg_control = control.buf;
                msg.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                c = CMSG_FIRSTHDR(&msg);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
        }
        if (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0)
                return negative_errno();
        return 0;
}

int vgpu_local_receive_reply(int sock, int timeout_ms)
{
        struct pollfd pfd = {.fd = sock, .events = POLLIN};
        VgpuLocalReply reply;
        char buf[sizeof(reply) + 1];
        ssize_t n;

        n = poll(&pfd, 1, timeout_ms);
        if (n < 0)
                return negative_errno();
        if (n == 0)
                return -ETIMEDOUT;
        n = recv(sock, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0)
                return negative_errno();
        if (n == 0)
                return -ECONNRESET;
        if ((size_t)n != sizeof(reply))
                return -EBADMSG;
        memcpy(&reply, buf, sizeof(reply));
        switch (reply.status) {
        case VGPU_LOCAL_ACCEPTED:
                return 0;
        case VGPU_LOCAL_REFUSED:
                return reply.reason > 0 && reply.reason < INT_MAX ? (int)reply.reason : -EBADMSG;
        case VGPU_LOCAL_HOST_ERROR:
                return reply.reason > 0 && reply.reason < 4096 ? -(int)reply.reason : -EIO;
        default:
                return -EBADMSG;
        }
}

/* The guest's region: a memfd sized, mapped, formatted and then sealed, so that no later ftruncate()
 * can pull pages out from under the host's mapping. */
static int guest_region_create(size_t size, uint32_t req_count, uint32_t cpl_count, LocalEndpoint *l)
{
        void *region;
        int r;

        l->memfd = memfd_create("vgpu-channel", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (l->memfd < 0)
                return negative_errno();
        if (ftruncate(l->memfd, (off_t)size) < 0)
                return negative_errno();
        region = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, l->memfd, 0);
        if (region == MAP_FAILED)
                return negative_errno();
        l->base.region = region;
        l->base.region_size = size;
        l->owns_region = true;
        r = vgpu_channel_format(region, size, req_count, cpl_count, &l->base.geometry);
        if (r < 0)
                return r;
        if (fcntl(l->memfd, F_ADD_SEALS, VGPU_LOCAL_SEALS_REQUIRED) < 0)
                return negative_errno();
        return 0;
}

static int guest_handshake(const char *path, LocalEndpoint *l)
{
        VgpuLocalHello hello = {
                .magic = VGPU_LOCAL_HELLO_MAGIC,
                .version = VGPU_LOCAL_TRANSPORT_VERSION,
                .hello_size = sizeof(VgpuLocalHello),
                .region_size = l->base.region_size,
        };
        struct sockaddr_un sa;
        int r, fds[VGPU_LOCAL_HELLO_FDS], pair[2];

        r = sockaddr_fill(&sa, path);
        if (r < 0)
                return r;
        /* Guest → host: an eventfd the host waits on. Host → guest: a datagram socket pair, one end for us to
         * wait on, the other for the host to send on (docs/transport.md: why not a second eventfd). */
        l->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0)
                return negative_errno();
        l->base.wait_fd = pair[0];
        l->wait_is_socket = true;
        l->base.hangup_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (l->notify_fd < 0 || l->base.hangup_fd < 0) {
                close(pair[1]);
                return negative_errno();
        }
        if (connect(l->base.hangup_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                close(pair[1]);
                return negative_errno();
        }

        fds[0] = l->memfd;
        fds[1] = l->notify_fd;
        fds[2] = pair[1];
        r = vgpu_local_send_hello(l->base.hangup_fd, &hello, fds, ELEMENTSOF(fds));
        close(pair[1]); /* the host's end: ours no longer */
        if (r < 0)
                return r;
        return vgpu_local_receive_reply(l->base.hangup_fd, VGPU_LOCAL_HANDSHAKE_TIMEOUT_MS);
}

int vgpu_local_guest_connect(const char *path, size_t region_size, uint32_t req_count, uint32_t cpl_count,
                             VgpuEndpoint **ret)
{
        _cleanup_endpoint_ VgpuEndpoint *e = NULL;
        LocalEndpoint *l;
        int r;

        if (!path || !ret)
                return -EINVAL;
        if (region_size < VGPU_LOCAL_REGION_SIZE_MIN || region_size > VGPU_REGION_SIZE_MAX ||
            region_size % (size_t)sysconf(_SC_PAGESIZE) != 0)
                return -EINVAL;
        l = local_endpoint_alloc();
        if (!l)
                return -ENOMEM;
        e = &l->base;

        r = guest_region_create(region_size, req_count, cpl_count, l);
        if (r < 0)
                return r;
        r = guest_handshake(path, l);
        if (r != 0)
                return r;
        *ret = TAKE_PTR(e);
        return 0;
}
