/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* $VGPU_RUNTIME_DIR/stub.sock: where QEMU (trusted, in dom0) announces a VM's identity when its vgpu-stub's
 * chardev opens. Each line is parsed (stub-announcement.c), checked against the configd mirror, answered
 * with one line and remembered for ListChannels. The store always wins: nothing here changes a VM or its
 * channel (docs/ingestd.md, "The vgpu-stub announcement"). */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "ingestd.h"
#include "log.h"

#define STUB_SOCKET_NAME       "stub.sock"
#define STUB_LINE_TIMEOUT_USEC (2u * 1000000u) /* from accept() to a whole line */
#define STUB_ACCEPT_RETRY_USEC (1u * 1000000u) /* out of file descriptors: try accepting again after this */
#define STUB_CONNECTIONS_MAX   4096u           /* one per running QEMU is the normal load */
#define STUB_REPLY_MAX         256

typedef struct StubConnection StubConnection;

struct StubConnection {
        StubListener *listener;
        StubConnection *prev, *next; /* newest first */
        int fd;
        sd_event_source *io_source, *timer;
        struct ucred peer;
        char buf[STUB_LINE_MAX + 1]; /* one byte more than a line may have, so that a long one is seen */
        size_t len;
        bool parsed;   /* the line arrived and parsed: `announcement` holds it */
        bool answered; /* the reply was written */
        StubAnnouncement announcement;
};

struct StubListener {
        Manager *manager;
        char *path;
        int fd;
        uid_t self_uid;
        sd_event_source *source, *retry;
        StubConnection *connections;
        size_t n_connections;
};

/* One reply line, "ok" or "refused <sentence>"; QEMU reads and drops it, so a short write is not retried. */
static void send_reply(int fd, const char *refusal)
{
        char line[STUB_REPLY_MAX];
        int n = refusal ? snprintf(line, sizeof(line), "refused %s\n", refusal) : snprintf(line, sizeof(line), "ok\n");

        if (n < 0)
                return;
        if ((size_t)n >= sizeof(line)) {
                n = sizeof(line) - 1;
                line[n - 1] = '\n';
        }
        if (send(fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) != n)
                log_debug_errno(negative_errno(), "stub.sock: the reply could not be written: %m");
}

static void connection_reply(StubConnection *c, const char *refusal)
{
        send_reply(c->fd, refusal);
        c->answered = true;
}

static void connection_free(StubConnection *c)
{
        StubListener *l = c->listener;

        if (c->prev)
                c->prev->next = c->next;
        else
                l->connections = c->next;
        if (c->next)
                c->next->prev = c->prev;
        l->n_connections--;
        sd_event_source_disable_unref(c->io_source);
        sd_event_source_disable_unref(c->timer);
        closep(&c->fd);
        free(c);
}

/* Checks a parsed announcement against the mirror, records it with its VM and, unless answered already,
 * replies. The connection stays open either way: QEMU keeps it, and it is checked again when its VM is
 * registered later. */
static void connection_judge(StubConnection *c)
{
        const StubAnnouncement *a = &c->announcement;
        Vm *vm = vm_table_get(&c->listener->manager->vms, a->vm_id);
        char said[64], sentence[192];
        bool reply = !c->answered;

        stub_identity_format(a->pool, a->priority, said, sizeof(said));
        if (!vm) {
                snprintf(sentence, sizeof(sentence), "VM %u is not registered", a->vm_id);
                log_vm(LOG_ERR, a->vm_id, NULL, NULL, "%s: refused its vgpu-stub's announcement (%s; QEMU pid %d).",
                       sentence, said, (int)c->peer.pid);
                if (reply)
                        connection_reply(c, sentence);
                return;
        }
        vm->stub_state = STUB_STATE_ANNOUNCED;
        vm->stub = *a;
        if (stub_announcement_agrees(a, vm->pool, vm->priority)) {
                log_vm(LOG_INFO, vm->vm_id, vm->pool, priority_to_string(vm->priority),
                       "VM %u's vgpu-stub announced %s: it agrees with the configuration store (QEMU pid %d).",
                       vm->vm_id, said, (int)c->peer.pid);
                if (reply)
                        connection_reply(c, NULL);
                return;
        }
        stub_mismatch_format(a, vm->pool, vm->priority, sentence, sizeof(sentence));
        log_vm(LOG_ERR, vm->vm_id, vm->pool, priority_to_string(vm->priority), "%s (QEMU pid %d).", sentence,
               (int)c->peer.pid);
        if (reply)
                connection_reply(c, sentence);
}

/* A refusal that ends the connection: a line that does not parse, or more than one. A line that named a
 * registered VM before going wrong is still that VM's last word. */
static void connection_refuse(StubConnection *c, uint32_t vm_id, const char *why)
{
        Vm *vm = vm_id ? vm_table_get(&c->listener->manager->vms, vm_id) : NULL;
        char sentence[160];

        if (vm) {
                vm->stub_state = STUB_STATE_REFUSED;
                vm->stub = (StubAnnouncement){.vm_id = vm_id, .priority = _PRIORITY_INVALID};
        }
        snprintf(sentence, sizeof(sentence), "the announcement does not parse: %s", why);
        log_vm(LOG_WARNING, vm_id, NULL, NULL, "stub.sock: refused the line from pid %d, uid %u: %s.", (int)c->peer.pid,
               (unsigned)c->peer.uid, why);
        connection_reply(c, sentence);
        connection_free(c);
}

static void connection_take_line(StubConnection *c, size_t line_len)
{
        Manager *m = c->listener->manager;
        const char *why;

        if (stub_announcement_parse(c->buf, line_len, &c->announcement, &why) < 0) {
                connection_refuse(c, c->announcement.vm_id, why);
                return;
        }
        if (line_len < c->len) {
                connection_refuse(c, c->announcement.vm_id, "more than one line before the reply");
                return;
        }
        c->parsed = true;
        c->timer = sd_event_source_disable_unref(c->timer);
        if (!m->synced) {
                log_debug("stub.sock: VM %u's announcement waits until configd's VMs are read.", c->announcement.vm_id);
                return;
        }
        connection_judge(c);
}

/* After the line only the end of the connection is expected (QEMU stopped, or reconnects later). */
static void connection_after_line(StubConnection *c)
{
        char byte;
        ssize_t n = recv(c->fd, &byte, 1, MSG_DONTWAIT);

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        if (n > 0)
                log_vm(LOG_NOTICE, c->announcement.vm_id, NULL, NULL,
                       "stub.sock: VM %u's QEMU (pid %d) wrote after its announcement; closed the connection.",
                       c->announcement.vm_id, (int)c->peer.pid);
        else
                log_vm(LOG_DEBUG, c->announcement.vm_id, NULL, NULL,
                       "stub.sock: VM %u's QEMU (pid %d) closed its connection.", c->announcement.vm_id,
                       (int)c->peer.pid);
        connection_free(c);
}

static int on_connection_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        StubConnection *c = userdata;
        const char *lf;
        ssize_t n;

        if (c->parsed) {
                connection_after_line(c);
                return 0;
        }
        n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n < 0) {
                log_full_errno(LOG_NOTICE, negative_errno(), "stub.sock: reading pid %d's line failed: %m",
                               (int)c->peer.pid);
                connection_free(c);
                return 0;
        }
        if (n == 0) {
                log_notice("stub.sock: pid %d closed the connection before a whole line (%zu bytes).", (int)c->peer.pid,
                           c->len);
                connection_free(c);
                return 0;
        }
        c->len += (size_t)n;
        lf = memchr(c->buf, '\n', c->len);
        if (lf)
                connection_take_line(c, (size_t)(lf - c->buf) + 1);
        else if (c->len == sizeof(c->buf))
                connection_take_line(c, c->len); /* the parser refuses it as too long */
        return 0;
}

static int on_connection_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
        StubConnection *c = userdata;

        log_notice("stub.sock: no whole line from pid %d within %u ms; closed the connection.", (int)c->peer.pid,
                   STUB_LINE_TIMEOUT_USEC / 1000u);
        connection_reply(c, "no whole announcement line within 2 s");
        connection_free(c);
        return 0;
}

static int connection_new(StubListener *l, int fd, const struct ucred *peer)
{
        sd_event *e = l->manager->event;
        StubConnection *c;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c) {
                close(fd);
                return log_oom();
        }
        *c = (StubConnection){.listener = l, .fd = fd, .peer = *peer, .next = l->connections};
        if (l->connections)
                l->connections->prev = c;
        l->connections = c;
        l->n_connections++;
        r = sd_event_add_io(e, &c->io_source, fd, EPOLLIN, on_connection_readable, c);
        if (r >= 0)
                r = sd_event_add_time_relative(e, &c->timer, CLOCK_MONOTONIC, STUB_LINE_TIMEOUT_USEC, 0,
                                               on_connection_timeout, c);
        if (r < 0) {
                log_warning_errno(r, "stub.sock: cannot wait for pid %d's line: %m", (int)peer->pid);
                connection_free(c);
        }
        return r;
}

static int on_accept_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
        StubListener *l = userdata;

        l->retry = sd_event_source_disable_unref(l->retry);
        (void)sd_event_source_set_enabled(l->source, SD_EVENT_ON);
        return 0;
}

/* Out of file descriptors: the pending connection keeps the socket readable, so stop watching it for a while
 * rather than spin. */
static void listener_pause(StubListener *l, int error)
{
        log_warning_errno(error, "stub.sock: accept() failed: %m; trying again in %u s.",
                          STUB_ACCEPT_RETRY_USEC / 1000000u);
        if (sd_event_add_time_relative(l->manager->event, &l->retry, CLOCK_MONOTONIC, STUB_ACCEPT_RETRY_USEC, 0,
                                       on_accept_retry, l) >= 0)
                (void)sd_event_source_set_enabled(l->source, SD_EVENT_OFF);
}

static int on_listen_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        StubListener *l = userdata;
        _cleanup_close_ int conn = -1;
        struct ucred peer = {};
        socklen_t len = sizeof(peer);

        conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (conn < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                        listener_pause(l, negative_errno());
                else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                        log_warning_errno(negative_errno(), "stub.sock: accept() failed: %m");
                return 0;
        }
        if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &peer, &len) < 0) {
                log_warning_errno(negative_errno(), "stub.sock: SO_PEERCRED failed: %m");
                return 0;
        }
        /* Only QEMU in dom0 (root) speaks here; ingestd's own user too, for an unprivileged devstack. */
        if (peer.uid != 0 && peer.uid != l->self_uid) {
                log_warning("stub.sock: refused pid %d, uid %u: only root may announce a VM's identity.", (int)peer.pid,
                            (unsigned)peer.uid);
                send_reply(conn, "only root may announce a VM's identity");
                return 0;
        }
        if (l->n_connections >= STUB_CONNECTIONS_MAX) {
                log_warning("stub.sock: refused pid %d: %u connections are open already.", (int)peer.pid,
                            STUB_CONNECTIONS_MAX);
                send_reply(conn, "too many connections");
                return 0;
        }
        (void)connection_new(l, TAKE_FD(conn), &peer);
        return 0;
}

/* Bound inside a fresh 0700 directory, narrowed to 0600 and renamed into place, so the socket is never
 * reachable with the mode the umask gave it (the transport's vgpu_local_listen() does the same for its
 * SOCK_SEQPACKET sockets; this one is a stream, as QEMU's socket chardev needs). */
static int stub_socket_create(const char *runtime_dir, const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        char dir[PATH_MAX], tmp[PATH_MAX];
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r = 0;

        if (strlen(path) >= sizeof(sa.sun_path) ||
            (size_t)snprintf(dir, sizeof(dir), "%s/.stub-XXXXXX", runtime_dir) >= sizeof(dir) ||
            strlen(dir) + strlen("/s") >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        if (!mkdtemp(dir))
                return negative_errno();
        snprintf(tmp, sizeof(tmp), "%s/s", dir);
        memcpy(sa.sun_path, tmp, strlen(tmp) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(tmp, 0600) < 0 ||
            listen(fd, SOMAXCONN) < 0)
                r = negative_errno();
        /* Only a stale socket is replaced; anything else of that name is somebody else's. */
        else if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
                r = -EEXIST;
        else if (unlink(path) < 0 && errno != ENOENT)
                r = negative_errno();
        else if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0)
                r = negative_errno();
        if (r < 0)
                (void)unlink(tmp);
        (void)rmdir(dir);
        return r < 0 ? r : TAKE_FD(fd);
}

int stub_listener_start(Manager *m)
{
        StubListener *l;
        int r;

        l = calloc(1, sizeof(*l));
        if (!l)
                return log_oom();
        *l = (StubListener){.manager = m, .fd = -1, .self_uid = geteuid()};
        m->stub = l;
        if (asprintf(&l->path, "%s/" STUB_SOCKET_NAME, m->runtime_dir) < 0) {
                l->path = NULL;
                return log_oom();
        }
        r = stub_socket_create(m->runtime_dir, l->path);
        if (r < 0)
                return log_error_errno(r, "Cannot create %s: %m", l->path);
        l->fd = r;
        r = sd_event_add_io(m->event, &l->source, l->fd, EPOLLIN, on_listen_readable, l);
        if (r < 0)
                return log_error_errno(r, "Cannot watch %s: %m", l->path);
        log_info("vgpu-stub announcements on %s.", l->path);
        return 0;
}

void stub_listener_stop(Manager *m)
{
        StubListener *l = m->stub;

        if (!l)
                return;
        while (l->connections)
                connection_free(l->connections);
        sd_event_source_disable_unref(l->source);
        sd_event_source_disable_unref(l->retry);
        if (l->fd >= 0) {
                close(l->fd);
                if (unlink(l->path) < 0 && errno != ENOENT)
                        log_warning_errno(negative_errno(), "Cannot remove %s: %m", l->path);
        }
        free(l->path);
        free(l);
        m->stub = NULL;
}

void stub_mirror_synced(Manager *m)
{
        if (!m->stub)
                return;
        for (StubConnection *c = m->stub->connections, *next; c; c = next) {
                next = c->next;
                if (c->parsed && !c->answered)
                        connection_judge(c);
        }
}

void stub_vm_registered(Manager *m, Vm *vm)
{
        if (!m->stub || !m->synced)
                return; /* the first read of configd ends in stub_mirror_synced() */
        for (StubConnection *c = m->stub->connections; c; c = c->next)
                if (c->parsed && c->announcement.vm_id == vm->vm_id) {
                        connection_judge(c); /* the newest QEMU to speak for this VM */
                        return;
                }
}

const char *stub_state_to_string(const Vm *vm)
{
        switch (vm->stub_state) {
        case STUB_STATE_ANNOUNCED:
                return stub_announcement_agrees(&vm->stub, vm->pool, vm->priority) ? "matches" : "mismatch";
        case STUB_STATE_REFUSED:
                return "refused";
        default:
                return "";
        }
}
