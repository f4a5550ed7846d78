/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The registered VMs mirrored from configd, each with its socket $VGPU_RUNTIME_DIR/vm/N.sock, and the first
 * step of a guest's connection: accept, then wait (without blocking the loop) for its hello. */
#include <ctype.h>
#include <sys/socket.h>
#include <time.h>

#include "channel.h"
#include "ingestd.h"
#include "transport/local.h"
#include "log.h"

#define HANDSHAKE_TIMEOUT_USEC ((uint64_t)VGPU_LOCAL_HANDSHAKE_TIMEOUT_MS * 1000)

static size_t vm_table_index(const VmTable *t, uint32_t vm_id, bool *found)
{
        size_t lo = 0, hi = t->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (t->vms[mid]->vm_id < vm_id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *found = lo < t->n && t->vms[lo]->vm_id == vm_id;
        return lo;
}

Vm *vm_table_get(const VmTable *t, uint32_t vm_id)
{
        bool found;
        size_t i = vm_table_index(t, vm_id, &found);

        return found ? t->vms[i] : NULL;
}

int vm_table_add(VmTable *t, Manager *m, uint32_t vm_id, Vm **ret)
{
        bool found;
        size_t i = vm_table_index(t, vm_id, &found);
        Vm *vm;

        if (found)
                return -EEXIST;
        if (t->n == t->allocated) {
                size_t n = t->allocated ? t->allocated * 2 : 64;
                Vm **a = reallocarray(t->vms, n, sizeof(Vm *));
                if (!a)
                        return -ENOMEM;
                t->vms = a;
                t->allocated = n;
        }
        vm = calloc(1, sizeof(Vm));
        if (!vm)
                return -ENOMEM;
        *vm = (Vm){ .manager = m, .vm_id = vm_id, .listen_fd = -1, .pending_fd = -1 };
        memmove(t->vms + i + 1, t->vms + i, (t->n - i) * sizeof(Vm *));
        t->vms[i] = vm;
        t->n++;
        *ret = vm;
        return 0;
}

static void vm_free(Vm *vm)
{
        if (vm->channel)
                channel_close(vm->channel, VGPU_STATUS_CHANNEL_CLOSED, "the VM was unregistered");
        vm_unlisten(vm);
        free(vm);
}

void vm_table_remove(VmTable *t, uint32_t vm_id)
{
        bool found;
        size_t i = vm_table_index(t, vm_id, &found);
        Vm *vm;

        if (!found)
                return;
        vm = t->vms[i];
        memmove(t->vms + i, t->vms + i + 1, (t->n - i - 1) * sizeof(Vm *));
        t->n--;
        vm_free(vm);
}

void vm_table_clear(VmTable *t)
{
        while (t->n > 0)
                vm_table_remove(t, t->vms[t->n - 1]->vm_id);
        t->vms = mfree(t->vms);
        t->allocated = 0;
}

static void vm_drop_pending(Vm *vm)
{
        vm->pending_source = sd_event_source_disable_unref(vm->pending_source);
        vm->pending_timer = sd_event_source_disable_unref(vm->pending_timer);
        closep(&vm->pending_fd);
        vm->pending_fd = -1;
}

/* The hello arrived (or the peer hung up): the transport reads and checks it without waiting. */
static int on_pending_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Vm *vm = userdata;
        int conn = TAKE_FD(vm->pending_fd);

        vm_drop_pending(vm);
        (void)channel_accept(vm, conn);
        return 0;
}

static int on_pending_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
        Vm *vm = userdata;

        log_vm(LOG_NOTICE, vm->vm_id, vm->pool, NULL, "VM %u: no hello within %d ms; dropped the connection.",
               vm->vm_id, VGPU_LOCAL_HANDSHAKE_TIMEOUT_MS);
        vm_drop_pending(vm);
        return 0;
}

/* A second connection while one is served or pending: told "busy" in the transport's reply format, closed. */
static void refuse_busy(Vm *vm, int conn)
{
        VgpuLocalReply reply = { .status = VGPU_LOCAL_HOST_ERROR, .version = VGPU_LOCAL_TRANSPORT_VERSION,
                                 .reason = EBUSY };

        log_vm(LOG_NOTICE, vm->vm_id, vm->pool, NULL,
               "VM %u: refused a second connection while one is %s.", vm->vm_id,
               vm->channel ? "connected" : "being set up");
        (void)send(conn, &reply, sizeof(reply), MSG_DONTWAIT | MSG_NOSIGNAL);
        close(conn);
}

static int on_listen_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Vm *vm = userdata;
        sd_event *e = vm->manager->event;
        int conn, r;

        conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (conn < 0) {
                if (errno != EAGAIN && errno != EINTR)
                        log_warning_errno(negative_errno(), "VM %u: accept() failed: %m", vm->vm_id);
                return 0;
        }
        if (vm->channel || vm->pending_fd >= 0) {
                refuse_busy(vm, conn);
                return 0;
        }
        vm->pending_fd = conn;
        r = sd_event_add_io(e, &vm->pending_source, conn, EPOLLIN, on_pending_readable, vm);
        if (r >= 0)
                r = sd_event_add_time_relative(e, &vm->pending_timer, CLOCK_MONOTONIC, HANDSHAKE_TIMEOUT_USEC, 0,
                                               on_pending_timeout, vm);
        if (r < 0) {
                log_warning_errno(r, "VM %u: cannot wait for the guest's hello: %m", vm->vm_id);
                vm_drop_pending(vm);
        }
        return 0;
}

int vm_listen(Vm *vm)
{
        Manager *m = vm->manager;
        char path[108];
        int r;

        if (vm->listen_fd >= 0)
                return 0;
        r = vgpu_local_socket_path(m->runtime_dir, vm->vm_id, path, sizeof(path));
        if (r < 0)
                return log_error_errno(r, "VM %u: socket path under %s too long: %m", vm->vm_id, m->runtime_dir);
        r = vgpu_local_listen(path);
        if (r < 0)
                return log_error_errno(r, "VM %u: cannot create %s: %m", vm->vm_id, path);
        vm->listen_fd = r;
        r = sd_event_add_io(m->event, &vm->listen_source, vm->listen_fd, EPOLLIN, on_listen_readable, vm);
        if (r < 0) {
                vm_unlisten(vm);
                return log_error_errno(r, "VM %u: cannot watch %s: %m", vm->vm_id, path);
        }
        log_vm(LOG_DEBUG, vm->vm_id, vm->pool, NULL, "VM %u: listening on %s.", vm->vm_id, path);
        return 0;
}

void vm_unlisten(Vm *vm)
{
        char path[108];

        vm_drop_pending(vm);
        vm->listen_source = sd_event_source_disable_unref(vm->listen_source);
        if (vm->listen_fd < 0)
                return;
        close(vm->listen_fd);
        vm->listen_fd = -1;
        if (vgpu_local_socket_path(vm->manager->runtime_dir, vm->vm_id, path, sizeof(path)) >= 0 &&
            unlink(path) < 0 && errno != ENOENT)
                log_warning_errno(negative_errno(), "VM %u: cannot remove %s: %m", vm->vm_id, path);
}

int vm_apply_settings(Manager *m, const VmSettings *s)
{
        char old_pool[POOL_ID_MAX + 1];
        Vm *vm = vm_table_get(&m->vms, s->vm_id);
        bool created = false;
        int r;

        if (!vm) {
                r = vm_table_add(&m->vms, m, s->vm_id, &vm);
                if (r < 0)
                        return log_error_errno(r, "VM %u: cannot mirror it: %m", s->vm_id);
                created = true;
        }
        snprintf(old_pool, sizeof(old_pool), "%s", vm->pool);
        snprintf(vm->pool, sizeof(vm->pool), "%s", s->pool);
        if (!created && vm->priority != s->priority)
                log_vm(LOG_INFO, vm->vm_id, vm->pool, priority_to_string(s->priority),
                       "VM %u: priority %s → %s, from its next command.", vm->vm_id,
                       priority_to_string(vm->priority), priority_to_string(s->priority));
        vm->priority = s->priority;
        snprintf(vm->uuid, sizeof(vm->uuid), "%s", strempty(s->uuid));
        for (char *p = vm->uuid; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        vm->memory_quota = s->memory_quota;
        vm->iommu_policy = s->iommu_policy;
        vm->seen = true;
        if (!created && !streq(old_pool, vm->pool) && vm->channel)
                channel_pool_changed(vm->channel, old_pool);
        if (created) {
                log_vm(LOG_INFO, vm->vm_id, vm->pool, priority_to_string(vm->priority),
                       "VM %u registered in pool %s.", vm->vm_id, vm->pool);
                stub_vm_registered(m, vm);
        }
        return vm_listen(vm);
}

Vm *vm_table_find_uuid(const VmTable *t, const char *uuid)
{
        if (isempty(uuid))
                return NULL;
        for (size_t i = 0; i < t->n; i++)
                if (streq(t->vms[i]->uuid, uuid))
                        return t->vms[i];
        return NULL;
}
