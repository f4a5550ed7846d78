/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The local transport over real sockets, memfds, eventfds and fork()ed guests: channels work, forged hellos
 * are refused with their code and leak no fd, a killed guest hangs up, a handed-on region maps the same bytes. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/channel.h"
#include "test-helpers.h"
#include "transport/local.h"
#include "transport/local-internal.h"
#include "vgpu-util.h"

#define REGION   (64u * 1024u)
#define WAIT_MS  10000
#define MESSAGES 2000u

static char *tmpdir;
static char sock_path[108];
static int listen_fd = -1;

static void setup(void)
{
        char vm_dir[PATH_MAX];

        tmpdir = test_tmpdir_new();
        snprintf(vm_dir, sizeof(vm_dir), "%s/vm", tmpdir);
        ck_assert_int_eq(mkdir(vm_dir, 0755), 0);
        ck_assert_int_eq(vgpu_local_socket_path(tmpdir, 1, sock_path, sizeof(sock_path)), 0);
        listen_fd = vgpu_local_listen(sock_path);
        ck_assert_msg(listen_fd >= 0, "listen on %s: %s", sock_path, strerror(-listen_fd));
}

static void teardown(void)
{
        closep(&listen_fd);
        test_tmpdir_remove(tmpdir);
        tmpdir = NULL;
}

static int count_open_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        int n = 0;

        ck_assert_ptr_nonnull(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

static int host_accept(VgpuEndpoint **e, VgpuPeer *peer)
{
        int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

        ck_assert_int_ge(conn, 0);
        return vgpu_local_host_accept(conn, WAIT_MS, e, peer);
}

static int wait_child(pid_t pid)
{
        int status = 0;

        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Blocks until the endpoint is notified; false on a timeout (a lost wake-up). */
static bool wait_notified(VgpuEndpoint *e)
{
        struct pollfd p = {.fd = vgpu_endpoint_wait_fd(e), .events = POLLIN};

        if (poll(&p, 1, WAIT_MS) != 1)
                return false;
        return vgpu_endpoint_ack(e) == 0;
}

/* ---- A working channel ---- */

static int guest_ping_pong(void)
{
        _cleanup_endpoint_ VgpuEndpoint *e = NULL;
        VgpuRequestProducer req;
        VgpuCompletionConsumer cpl;

        if (vgpu_local_guest_connect(sock_path, REGION, 16, 16, &e) != 0)
                return 10;
        if (vgpu_channel_attach_guest(e->region, &e->geometry, &req, &cpl) < 0)
                return 11;
        for (uint64_t seq = 0; seq < MESSAGES; seq++) {
                VgpuCompletionDesc c;

                if (vgpu_request_push(&req, &(VgpuRequestDesc){.opcode = VGPU_OP_SYNC, .seq = seq}) < 0)
                        return 12;
                if (vgpu_ring_producer_publish(&req.ring) > 0 && vgpu_endpoint_notify(e) < 0)
                        return 13;
                while (vgpu_completion_pop(&cpl, &c) == -EAGAIN)
                        if (vgpu_ring_consumer_prepare_wait(&cpl.ring) == 0 && !wait_notified(e))
                                return 14;
                if (c.seq != seq || c.u.raw[0] != seq * 3)
                        return 15;
                if (vgpu_ring_consumer_release(&cpl.ring) > 0 && vgpu_endpoint_notify(e) < 0)
                        return 16;
        }
        return 0;
}

START_TEST(test_guest_and_host_move_requests_and_completions_with_notifications)
{
        _cleanup_endpoint_ VgpuEndpoint *e = NULL;
        VgpuRequestConsumer req;
        VgpuCompletionProducer cpl;
        VgpuPeer peer;
        pid_t pid;

        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
                _exit(guest_ping_pong());
        ck_assert_int_eq(host_accept(&e, &peer), 0);
        ck_assert_int_eq(peer.pid, pid);
        ck_assert_int_eq(peer.uid, getuid());
        ck_assert(e->host);
        ck_assert_uint_eq(e->region_size, REGION);
        ck_assert_int_eq(vgpu_channel_frontend_state(e->region), VGPU_PEER_ALIVE);
        ck_assert_int_eq(vgpu_channel_attach_host(e->region, &e->geometry, &req, &cpl), 0);
        for (uint64_t seq = 0; seq < MESSAGES; seq++) {
                VgpuRequestDesc d;

                while (vgpu_request_pop(&req, &d) == -EAGAIN)
                        if (vgpu_ring_consumer_prepare_wait(&req.ring) == 0)
                                ck_assert_msg(wait_notified(e), "host: lost wake-up at request %lu", seq);
                ck_assert_uint_eq(d.seq, seq);
                ck_assert_int_eq(vgpu_completion_push(&cpl, &(VgpuCompletionDesc){.seq = d.seq, .u.raw = {seq * 3}}),
                                 0);
                if (vgpu_ring_consumer_release(&req.ring) > 0)
                        ck_assert_int_eq(vgpu_endpoint_notify(e), 0);
                if (vgpu_ring_producer_publish(&cpl.ring) > 0)
                        ck_assert_int_eq(vgpu_endpoint_notify(e), 0);
        }
        ck_assert_int_eq(wait_child(pid), 0);
}
END_TEST

/* A guest that never takes its wake-ups and does what it can to make the host's notify block: it clears
 * O_NONBLOCK on every fd it shares with the host and writes the largest value an eventfd counter takes
 * into both of its notification fds (were the host's wake-up an eventfd shared with the guest, as it once
 * was, the host's next write would then block for ever). It then sleeps until killed. */
static int stubborn_guest(int ready_fd)
{
        _cleanup_endpoint_ VgpuEndpoint *e = NULL;
        uint64_t max = UINT64_C(0xfffffffffffffffe);
        LocalEndpoint *view;

        if (vgpu_local_guest_connect(sock_path, REGION, 16, 16, &e) != 0)
                return 10;
        view = (LocalEndpoint *)e;
        for (int fd = 3; fd < 64; fd++) {
                int flags = fcntl(fd, F_GETFL);
                if (flags >= 0)
                        (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
        }
        (void)!write(view->notify_fd, &max, sizeof(max));
        (void)!write(e->wait_fd, &max, sizeof(max));
        (void)!write(ready_fd, "r", 1);
        pause();
        return 0;
}

START_TEST(test_a_guest_cannot_make_the_hosts_notify_block)
{
        _cleanup_endpoint_ VgpuEndpoint *e = NULL;
        VgpuPeer peer;
        int ready[2];
        char c;
        pid_t pid;

        ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
                _exit(stubborn_guest(ready[1]));
        ck_assert_int_eq(host_accept(&e, &peer), 0);
        ck_assert_int_eq(read(ready[0], &c, 1), 1);
        /* Far more wake-ups than any queue holds; a blocked send would hang here (the test's timeout). */
        for (unsigned i = 0; i < 100000; i++)
                ck_assert_int_eq(vgpu_endpoint_notify(e), 0);
        ck_assert_int_eq(vgpu_endpoint_ack(e), 0);
        kill(pid, SIGKILL);
        ck_assert_int_eq(wait_child(pid), 128 + SIGKILL);
        close(ready[0]);
        close(ready[1]);
}
END_TEST

/* ---- Refusals: a hostile guest builds the hello by hand ---- */

/* clang-format off */
typedef enum Forgery {
        FORGE_REGULAR_FILE, FORGE_PIPE, FORGE_UNSEALED, FORGE_SIZE_MISMATCH, FORGE_OVER_LIMIT, FORGE_BAD_HEADER,
        FORGE_TWO_FDS, FORGE_FOUR_FDS, FORGE_GARBAGE, FORGE_NOT_EVENTFD, FORGE_EVENTFD_FOR_SOCKET, FORGE_OLD_VERSION, FORGE_WRITE_SEALED,
} Forgery;
/* clang-format on */

static int forged_region(Forgery f, uint64_t size)
{
        int fd, seals = VGPU_LOCAL_SEALS_REQUIRED;
        void *p;

        if (f == FORGE_REGULAR_FILE) {
                char path[PATH_MAX];

                snprintf(path, sizeof(path), "%s/not-a-memfd", tmpdir);
                fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
                return fd < 0 || ftruncate(fd, (off_t)size) < 0 ? -1 : fd;
        }
        fd = memfd_create("forged", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
                return -1;
        if (size <= REGION) {
                p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                if (p == MAP_FAILED || vgpu_channel_format(p, size, 4, 4, &(VgpuChannelGeometry){}) < 0)
                        return -1;
                if (f == FORGE_BAD_HEADER)
                        memset(p, 0xa5, 64); /* the geometry line */
                munmap(p, size);
        }
        if (f == FORGE_WRITE_SEALED)
                seals |= F_SEAL_WRITE;
        if (f != FORGE_UNSEALED && fcntl(fd, F_ADD_SEALS, seals) < 0)
                return -1;
        return fd;
}

/* The forged guest: sends its hello and exits with what the host answered (a refusal code, or 100 + errno). */
static int forging_guest(Forgery f)
{
        uint64_t size = f == FORGE_OVER_LIMIT ? VGPU_REGION_SIZE_MAX + 4096 : REGION;
        VgpuLocalHello hello = {.magic = VGPU_LOCAL_HELLO_MAGIC,
                                .version = VGPU_LOCAL_TRANSPORT_VERSION,
                                .hello_size = sizeof(hello),
                                .region_size = size};
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fds[4], pipefd[2], pair[2], sock, r;
        size_t n_fds = f == FORGE_TWO_FDS ? 2 : f == FORGE_FOUR_FDS ? 4 : 3;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return 99;
        fds[0] = f == FORGE_PIPE ? pipefd[0] : forged_region(f, size);
        fds[1] = f == FORGE_NOT_EVENTFD ? pipefd[1] : eventfd(0, EFD_CLOEXEC);
        if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair) < 0)
                return 99;
        fds[2] = f == FORGE_EVENTFD_FOR_SOCKET ? eventfd(0, EFD_CLOEXEC) : pair[1];
        fds[3] = eventfd(0, EFD_CLOEXEC);
        if (f == FORGE_SIZE_MISMATCH)
                hello.region_size = 2 * REGION;
        if (f == FORGE_OLD_VERSION)
                hello.version = 0;
        if (f == FORGE_GARBAGE)
                for (size_t i = 0; i < sizeof(hello); i++)
                        ((uint8_t *)&hello)[i] = (uint8_t)(i * 37 + 11);
        memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
        sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fds[0] < 0 || sock < 0 || connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return 98;
        if (vgpu_local_send_hello(sock, &hello, fds, n_fds) < 0)
                return 97;
        r = vgpu_local_receive_reply(sock, WAIT_MS);
        return r >= 0 ? r : 100 - r;
}

static void assert_refused(Forgery f, int expected, const char *behaviour)
{
        _cleanup_endpoint_ VgpuEndpoint *e = NULL;
        int before = count_open_fds(), r;
        pid_t pid;

        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
                _exit(forging_guest(f));
        r = host_accept(&e, NULL);
        ck_assert_msg(r == expected, "%s: host returned %d (%s), expected %d (%s)", behaviour, r,
                      vgpu_local_refusal_to_string(r), expected, vgpu_local_refusal_to_string(expected));
        ck_assert_ptr_null(e);
        ck_assert_msg(count_open_fds() == before, "%s: %d fds open after the refusal, %d before", behaviour,
                      count_open_fds(), before);
        ck_assert_int_eq(wait_child(pid), expected);
}

/* Each forgery and the refusal it must earn; one loop test per row, named in its failure message. */
static const struct {
        Forgery forgery;
        int refusal;
        const char *behaviour;
} refusals[] = {
        {FORGE_REGULAR_FILE, VGPU_LOCAL_REFUSED_NOT_MEMFD, "host refuses a regular file as region"},
        {FORGE_PIPE, VGPU_LOCAL_REFUSED_NOT_MEMFD, "host refuses a pipe as region"},
        {FORGE_UNSEALED, VGPU_LOCAL_REFUSED_SEALS, "host refuses a memfd without seals"},
        {FORGE_WRITE_SEALED, VGPU_LOCAL_REFUSED_SEALS, "host refuses a write-sealed memfd"},
        {FORGE_SIZE_MISMATCH, VGPU_LOCAL_REFUSED_SIZE_MISMATCH, "host refuses a size that differs from the hello"},
        {FORGE_OVER_LIMIT, VGPU_LOCAL_REFUSED_SIZE_RANGE, "host refuses a region over the limit"},
        {FORGE_BAD_HEADER, VGPU_LOCAL_REFUSED_GEOMETRY, "host refuses a corrupted channel header"},
        {FORGE_TWO_FDS, VGPU_LOCAL_REFUSED_FD_COUNT, "host refuses too few fds"},
        {FORGE_FOUR_FDS, VGPU_LOCAL_REFUSED_FD_COUNT, "host refuses too many fds"},
        {FORGE_GARBAGE, VGPU_LOCAL_REFUSED_HELLO, "host refuses garbage hello bytes"},
        {FORGE_NOT_EVENTFD, VGPU_LOCAL_REFUSED_NOT_EVENTFD, "host refuses a pipe as eventfd"},
        {FORGE_EVENTFD_FOR_SOCKET, VGPU_LOCAL_REFUSED_NOT_EVENTFD,
         "host refuses an eventfd for its wake-up of the guest (it must be a datagram socket)"},
        {FORGE_OLD_VERSION, VGPU_LOCAL_REFUSED_VERSION, "host refuses another transport version"},
};

START_TEST(test_host_refuses_each_forged_hello_closes_its_fds_and_tells_the_guest_why)
{
        assert_refused(refusals[_i].forgery, refusals[_i].refusal, refusals[_i].behaviour);
}
END_TEST

/* A guest that connects, sends half a hello with three fds and leaves without waiting for the answer. */
static int half_hello_guest(bool send_anything)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        int fds[3] = {forged_region(FORGE_UNSEALED, REGION), eventfd(0, 0), eventfd(0, 0)};
        struct iovec iov = {.iov_base = "VGLH\1\0\30\0", .iov_len = 8};
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(fds))];
        } control = {};
        struct msghdr msg = {
                .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof(control.buf)};
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

        memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
        if (sock < 0 || connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return 98;
        *c = (struct cmsghdr){.cmsg_len = CMSG_LEN(sizeof(fds)), .cmsg_level = SOL_SOCKET, .cmsg_type = SCM_RIGHTS};
        memcpy(CMSG_DATA(c), fds, sizeof(fds));
        if (send_anything && sendmsg(sock, &msg, MSG_NOSIGNAL) < 0)
                return 97;
        close(sock);
        return 0;
}

START_TEST(test_host_survives_a_peer_that_disconnects_mid_hello)
{
        _cleanup_endpoint_ VgpuEndpoint *e = NULL;
        int before = count_open_fds();
        pid_t pid;

        /* Half a hello (8 bytes, with fds), then gone: refused as malformed, its fds closed. */
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
                _exit(half_hello_guest(true));
        ck_assert_int_eq(wait_child(pid), 0);
        ck_assert_int_eq(host_accept(&e, NULL), VGPU_LOCAL_REFUSED_HELLO);
        ck_assert_int_eq(count_open_fds(), before);

        /* Connected and gone without a byte: nothing to answer. */
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
                _exit(half_hello_guest(false));
        ck_assert_int_eq(wait_child(pid), 0);
        ck_assert_int_eq(host_accept(&e, NULL), -ECONNRESET);
        ck_assert_ptr_null(e);
        ck_assert_int_eq(count_open_fds(), before);
}
END_TEST

START_TEST(test_host_sees_the_hangup_of_a_killed_guest)
{
        _cleanup_endpoint_ VgpuEndpoint *e = NULL;
        struct pollfd p;
        char byte;
        ssize_t r;
        pid_t pid;

        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                VgpuEndpoint *g = NULL;

                if (vgpu_local_guest_connect(sock_path, REGION, 4, 4, &g) != 0)
                        _exit(10);
                pause();
                _exit(0);
        }
        ck_assert_int_eq(host_accept(&e, NULL), 0);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_int_eq(wait_child(pid), 128 + SIGKILL);
        p = (struct pollfd){.fd = e->hangup_fd, .events = POLLIN | POLLRDHUP};
        ck_assert_int_eq(poll(&p, 1, WAIT_MS), 1);
        ck_assert_msg(p.revents & (POLLHUP | POLLRDHUP), "revents 0x%x without a hang-up", p.revents);
        /* End of stream, or ECONNRESET when it died before reading the host's accept reply. */
        r = recv(e->hangup_fd, &byte, 1, MSG_DONTWAIT);
        ck_assert_msg(r == 0 || (r < 0 && errno == ECONNRESET), "recv after hang-up: %zd (%m)", r);
}
END_TEST

/* The executor's side: receives the reference, maps it, checks the guest's bytes, answers in place. */
static int third_process(int sock)
{
        VgpuRegionRef ref = VGPU_REGION_REF_NULL;
        VgpuRegionMap map;
        VgpuChannelGeometry g;
        uint8_t *data;

        if (vgpu_region_ref_receive(sock, &ref) < 0)
                return 20;
        if (vgpu_region_ref_map(&ref, &map) < 0)
                return 21;
        if (vgpu_channel_geometry_read(map.addr, map.size, &g) < 0)
                return 22;
        data = (uint8_t *)map.addr + g.data_offset;
        for (size_t i = 0; i < 4096; i++)
                if (data[i] != (uint8_t)(i * 7))
                        return 23;
        memset(data + 4096, 0x5a, 4096);
        vgpu_region_unmap(&map);
        vgpu_region_ref_done(&ref);
        return 0;
}

static int pattern_guest(void)
{
        _cleanup_endpoint_ VgpuEndpoint *e = NULL;
        uint8_t *data;

        if (vgpu_local_guest_connect(sock_path, REGION, 4, 4, &e) != 0)
                return 10;
        data = (uint8_t *)e->region + e->geometry.data_offset;
        for (size_t i = 0; i < 4096; i++)
                data[i] = (uint8_t)(i * 7);
        if (vgpu_endpoint_notify(e) < 0 || !wait_notified(e))
                return 11;
        for (size_t i = 4096; i < 8192; i++)
                if (data[i] != 0x5a)
                        return 12;
        return 0;
}

START_TEST(test_region_ref_maps_the_same_bytes_in_a_third_process_and_only_a_sealed_memfd)
{
        _cleanup_endpoint_ VgpuEndpoint *e = NULL;
        VgpuRegionRef ref = VGPU_REGION_REF_NULL;
        int sp[2];
        pid_t guest, executor;

        guest = fork();
        ck_assert_int_ge(guest, 0);
        if (guest == 0)
                _exit(pattern_guest());
        ck_assert_int_eq(host_accept(&e, NULL), 0);
        ck_assert(wait_notified(e));

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        executor = fork();
        ck_assert_int_ge(executor, 0);
        if (executor == 0) {
                close(sp[0]);
                _exit(third_process(sp[1]));
        }
        close(sp[1]);
        ck_assert_int_eq(vgpu_endpoint_region_ref(e, &ref), 0);
        ck_assert_int_eq(ref.kind, VGPU_TRANSPORT_LOCAL);
        ck_assert_int_eq(vgpu_region_ref_send(sp[0], &ref), 0);
        vgpu_region_ref_done(&ref);
        ck_assert_int_eq(wait_child(executor), 0);
        close(sp[0]);

        ck_assert_int_eq(vgpu_endpoint_notify(e), 0);
        ck_assert_int_eq(wait_child(guest), 0);
        /* The receiver re-checks: a reference to an unsealed memfd is not mapped. */
        ref = (VgpuRegionRef){
                .kind = VGPU_TRANSPORT_LOCAL, .size = REGION, .fd = forged_region(FORGE_UNSEALED, REGION)};
        ck_assert_int_eq(vgpu_region_ref_map(&ref, &(VgpuRegionMap){}), -EPERM);
        vgpu_region_ref_done(&ref);
}
END_TEST

START_TEST(test_listening_socket_is_0600_and_replaces_only_a_stale_socket)
{
        char file_path[PATH_MAX];
        struct stat st;
        int fd;

        umask(0);
        ck_assert_int_eq(lstat(sock_path, &st), 0);
        ck_assert(S_ISSOCK(st.st_mode));
        ck_assert_int_eq(st.st_mode & 07777, 0600);

        /* A second ingestd start finds the old socket and replaces it. */
        fd = vgpu_local_listen(sock_path);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(lstat(sock_path, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0600);
        close(fd);

        /* A regular file of that name is somebody else's: left alone. */
        snprintf(file_path, sizeof(file_path), "%s/vm/2.sock", tmpdir);
        fd = open(file_path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        close(fd);
        ck_assert_int_eq(vgpu_local_listen(file_path), -EEXIST);
        ck_assert_int_eq(lstat(file_path, &st), 0);
        ck_assert(S_ISREG(st.st_mode));
}
END_TEST

START_TEST(test_guest_sees_that_nobody_listens)
{
        VgpuEndpoint *e = NULL;
        char path[PATH_MAX];

        ck_assert_int_eq(vgpu_local_socket_path(tmpdir, 9, path, sizeof(path)), 0);
        ck_assert_int_eq(vgpu_local_guest_connect(path, REGION, 4, 4, &e), -ENOENT);
        ck_assert_ptr_null(e);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("transport-local");
        TCase *tc = tcase_create("local");
        SRunner *sr;
        int failed;

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_guest_and_host_move_requests_and_completions_with_notifications);
        tcase_add_loop_test(tc, test_host_refuses_each_forged_hello_closes_its_fds_and_tells_the_guest_why, 0,
                            (int)ELEMENTSOF(refusals));
        tcase_add_test(tc, test_host_survives_a_peer_that_disconnects_mid_hello);
        tcase_add_test(tc, test_a_guest_cannot_make_the_hosts_notify_block);
        tcase_add_test(tc, test_host_sees_the_hangup_of_a_killed_guest);
        tcase_add_test(tc, test_region_ref_maps_the_same_bytes_in_a_third_process_and_only_a_sealed_memfd);
        tcase_add_test(tc, test_listening_socket_is_0600_and_replaces_only_a_stale_socket);
        tcase_add_test(tc, test_guest_sees_that_nobody_listens);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
