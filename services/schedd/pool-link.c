/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The ingestd side: the listening socket $VGPU_RUNTIME_DIR/sched/<POOL>.sock, the start handshake of the
 * pool link (common/proto/pool-link.h), the control messages (ATTACH + region, DETACH, events) and the
 * link's two rings. One ingestd at a time; a violation or a hang-up drops everything. */
#include <errno.h>
#include <inttypes.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "log.h"
#include "sched.h"
#include "transport/local.h"

#define CONTROL_TIMEOUT_SEC 5

static void notify_ingestd(Sched *s)
{
        uint64_t one = 1;

        (void)!write(s->link.notify_fd, &one, sizeof(one));
}

static int on_wait_fd(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
        uint64_t v;

        (void)!read(fd, &v, sizeof(v));
        return 0;
}

/* Maps the link ingestd made and attaches as its consumer of requests, producer of completions. */
static int link_map(Sched *s, const VgpuLinkStart *start, int link_fd)
{
        VgpuLinkGeometry g;
        struct stat st;
        int r;

        if (start->magic != VGPU_LINK_START_MAGIC || start->version != VGPU_LINK_VERSION ||
            start->size != sizeof(*start) || start->vm_id != 0 || start->flags != 0)
                return -EBADMSG;
        if (fstat(link_fd, &st) < 0)
                return negative_errno();
        if ((uint64_t)st.st_size != start->link_size || st.st_size <= 0)
                return -EBADMSG;
        s->link.region_size = (size_t)st.st_size;
        s->link.region = mmap(NULL, s->link.region_size, PROT_READ | PROT_WRITE, MAP_SHARED, link_fd, 0);
        if (s->link.region == MAP_FAILED) {
                s->link.region = NULL;
                return negative_errno();
        }
        r = vgpu_link_geometry_read(s->link.region, s->link.region_size, &g);
        if (r < 0)
                return r;
        return vgpu_link_attach_executor(s->link.region, &g, &s->link.req, &s->link.cpl);
}

static int link_start(Sched *s)
{
        VgpuLinkStart start;
        int fds[VGPU_LINK_START_FDS], r;

        r = vgpu_link_start_receive(s->link.conn_fd, &start, fds);
        if (r < 0)
                return r;
        r = link_map(s, &start, fds[0]);
        close(fds[0]);
        s->link.wait_fd = fds[1];
        s->link.notify_fd = fds[2];
        if (r >= 0)
                r = sd_event_add_io(s->event, &s->link.wait_source, s->link.wait_fd, EPOLLIN, on_wait_fd, s);
        (void)vgpu_link_ready_send(s->link.conn_fd, r < 0 ? -r : 0, "");
        if (r < 0)
                return r;
        s->link.up = true;
        log_info("Pool %s: ingestd connected; serving its pool link (%zu bytes).", s->pool, s->link.region_size);
        return 0;
}

static int control_attach(Sched *s, const VgpuPoolAttach *a)
{
        VgpuRegionRef ref = VGPU_REGION_REF_NULL;
        int r;

        if (a->version != VGPU_POOL_LINK_VERSION || a->size != sizeof(*a) || !vm_id_is_valid(a->vm_id))
                return -EBADMSG;
        r = vgpu_region_ref_receive(s->link.conn_fd, &ref);
        if (r < 0)
                return r;
        vm_attach(s, a, &ref);
        vgpu_region_ref_done(&ref);
        return 0;
}

static int control_message(Sched *s)
{
        union {
                VgpuPoolAttach attach;
                VgpuPoolDetach detach;
                uint32_t magic;
                uint8_t raw[64];
        } m;
        ssize_t n = recv(s->link.conn_fd, &m, sizeof(m), MSG_DONTWAIT);

        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : negative_errno();
        if (n == 0)
                return -ECONNRESET;
        if ((size_t)n == sizeof(m.attach) && m.magic == VGPU_POOL_ATTACH_MAGIC)
                return control_attach(s, &m.attach);
        if ((size_t)n == sizeof(m.detach) && m.magic == VGPU_POOL_DETACH_MAGIC && m.detach.size == n &&
            m.detach.version == VGPU_POOL_LINK_VERSION && m.detach.status < _VGPU_STATUS_MAX) {
                vm_detach(s, &m.detach);
                return 0;
        }
        return -EBADMSG;
}

static int on_connection(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
        Sched *s = userdata;
        int r;

        if (!s->link.up)
                r = link_start(s);
        else if (revents & EPOLLIN)
                r = control_message(s);
        else
                r = -ECONNRESET;
        if (r == -ECONNRESET)
                pool_link_disconnect(s, "ingestd hung up");
        else if (r < 0) {
                log_error_errno(r, "Pool %s: malformed message from ingestd: %m", s->pool);
                pool_link_disconnect(s, "protocol error on the control socket");
        }
        return 0;
}

static int on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
        Sched *s = userdata;
        struct timeval tv = {.tv_sec = CONTROL_TIMEOUT_SEC};
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC), r;

        if (c < 0)
                return 0;
        if (s->link.conn_fd >= 0) {
                log_warning("Pool %s: refused a second ingestd connection while one is open.", s->pool);
                close(c);
                return 0;
        }
        /* Blocking, bounded: a region reference follows its ATTACH message at once. */
        (void)setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void)setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        s->link.conn_fd = c;
        r = sd_event_add_io(s->event, &s->link.conn_source, c, EPOLLIN, on_connection, s);
        if (r < 0) {
                log_error_errno(r, "Failed to watch the ingestd connection: %m");
                pool_link_disconnect(s, "no event source");
        }
        return 0;
}

int pool_link_listen(Sched *s)
{
        const char *runtime = getenv("VGPU_RUNTIME_DIR");
        char dir[sizeof(s->socket_path)];
        int r;

        if (isempty(runtime))
                runtime = VGPU_RUNTIME_DIR_DEFAULT;
        r = snprintf(dir, sizeof(dir), "%s/sched", runtime);
        if (r < 0 || (size_t)r >= sizeof(dir) ||
            (size_t)snprintf(s->socket_path, sizeof(s->socket_path), "%s/%s.sock", dir, s->pool) >=
                    sizeof(s->socket_path))
                return log_error_errno(-ENAMETOOLONG, "The runtime directory path is too long.");
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return log_error_errno(negative_errno(), "Failed to create %s: %m", dir);
        s->link.listen_fd = vgpu_local_listen(s->socket_path);
        if (s->link.listen_fd < 0)
                return log_error_errno(s->link.listen_fd, "Failed to listen on %s: %m", s->socket_path);
        r = sd_event_add_io(s->event, &s->link.listen_source, s->link.listen_fd, EPOLLIN, on_accept, s);
        if (r < 0)
                return log_error_errno(r, "Failed to watch %s: %m", s->socket_path);
        return 0;
}

void pool_link_disconnect(Sched *s, const char *why)
{
        PoolLink *l = &s->link;

        if (l->conn_fd >= 0)
                log_notice("Pool %s: dropping the ingestd connection (%s); every VM detached.", s->pool, why);
        vm_drop_all(s);
        l->conn_source = sd_event_source_disable_unref(l->conn_source);
        l->wait_source = sd_event_source_disable_unref(l->wait_source);
        closep(&l->conn_fd);
        closep(&l->wait_fd);
        closep(&l->notify_fd);
        l->conn_fd = l->wait_fd = l->notify_fd = -1;
        if (l->region)
                munmap(l->region, l->region_size);
        l->region = NULL;
        l->up = l->broken = false;
        l->n_outbox = 0;
}

void pool_link_close(Sched *s)
{
        pool_link_disconnect(s, "stopping");
        s->link.listen_source = sd_event_source_disable_unref(s->link.listen_source);
        closep(&s->link.listen_fd);
        s->link.listen_fd = -1;
        free(s->link.outbox);
        s->link.outbox = NULL;
        if (s->socket_path[0])
                (void)unlink(s->socket_path);
}

int pool_link_send_event(Sched *s, VgpuPoolEventKind kind, uint32_t vm_id, uint64_t generation, int error,
                         const char *backend)
{
        VgpuPoolEvent ev = {.magic = VGPU_POOL_EVENT_MAGIC, .version = VGPU_POOL_LINK_VERSION, .size = sizeof(ev),
                            .kind = kind, .vm_id = vm_id, .generation = generation, .error = error};

        if (s->link.conn_fd < 0)
                return -ENOTCONN;
        snprintf(ev.backend, sizeof(ev.backend), "%s", strempty(backend));
        if (send(s->link.conn_fd, &ev, sizeof(ev), MSG_NOSIGNAL) != (ssize_t)sizeof(ev))
                return log_error_errno(negative_errno(), "Pool %s: failed to send an event to ingestd: %m", s->pool);
        return 0;
}

void pool_link_complete(Sched *s, const VgpuHostCompletion *c)
{
        PoolLink *l = &s->link;

        if (!l->up)
                return;
        if (l->n_outbox == l->allocated_outbox) {
                size_t n = l->allocated_outbox ? l->allocated_outbox * 2 : 64;
                VgpuHostCompletion *grown = realloc(l->outbox, n * sizeof(*grown));

                if (!grown) {
                        log_oom();
                        l->broken = true;
                        return;
                }
                l->outbox = grown;
                l->allocated_outbox = n;
        }
        l->outbox[l->n_outbox++] = *c;
}

int pool_link_flush(Sched *s)
{
        PoolLink *l = &s->link;
        size_t sent = 0;
        int r;

        if (!l->up || l->n_outbox == 0)
                return 0;
        while (sent < l->n_outbox) {
                r = vgpu_host_completion_push(&l->cpl, &l->outbox[sent]);
                if (r == -EAGAIN)
                        break;
                if (r < 0) {
                        l->broken = true;
                        return r;
                }
                sent++;
        }
        memmove(l->outbox, l->outbox + sent, (l->n_outbox - sent) * sizeof(*l->outbox));
        l->n_outbox -= sent;
        r = vgpu_ring_producer_publish(&l->cpl.ring);
        if (r < 0)
                l->broken = true;
        else if (r > 0)
                notify_ingestd(s);
        return (int)sent;
}

int pool_link_receive(Sched *s)
{
        PoolLink *l = &s->link;
        VgpuHostRequest req;
        int n = 0, r;

        if (!l->up)
                return 0;
        while ((r = vgpu_host_request_pop(&l->req, &req)) == 0) {
                s->stats.received++;
                sched_ingest(s, &req);
                n++;
        }
        if (r != -EAGAIN) {
                l->broken = true;
                return n;
        }
        r = vgpu_ring_consumer_release(&l->req.ring);
        if (r < 0)
                l->broken = true;
        else if (r > 0)
                notify_ingestd(s);
        return n;
}

bool pool_link_has_work(const Sched *s)
{
        return s->link.up && vgpu_ring_consumer_has_work(&s->link.req.ring);
}

int pool_link_prepare_wait(Sched *s)
{
        int r;

        if (!s->link.up)
                return 0;
        r = vgpu_ring_consumer_prepare_wait(&s->link.req.ring);
        if (r != 0 || s->link.n_outbox == 0)
                return r;
        return vgpu_ring_producer_prepare_wait(&s->link.cpl.ring);
}
