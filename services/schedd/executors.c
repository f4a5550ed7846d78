/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Executor processes. The handshake is docs/executor.md's, byte for byte: the start message with the link
 * memfd and both eventfds, then the VM's region reference, then the executor's ready message. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "executors.h"
#include "log.h"

static void kick(int fd)
{
        uint64_t one = 1;

        (void)!write(fd, &one, sizeof(one));
}

Executor *executor_free(Executor *e)
{
        if (!e)
                return NULL;
        closep(&e->control_fd);
        closep(&e->kick_fd);
        closep(&e->notify_fd);
        closep(&e->link_fd);
        if (e->link && e->link != MAP_FAILED)
                munmap(e->link, e->link_size);
        free(e);
        return NULL;
}

static void executor_freep(Executor **e)
{
        executor_free(*e);
}

/* The link: a memfd we format and attach as its scheduler side. */
static int link_create(Executor *e)
{
        VgpuLinkGeometry g;
        int r;

        e->link_size = vgpu_link_region_size(EXECUTOR_RING_COUNT, EXECUTOR_RING_COUNT);
        e->link_fd = memfd_create("vgpu-host-link", MFD_CLOEXEC);
        if (e->link_fd < 0)
                return negative_errno();
        if (ftruncate(e->link_fd, (off_t)e->link_size) < 0)
                return negative_errno();
        e->link = mmap(NULL, e->link_size, PROT_READ | PROT_WRITE, MAP_SHARED, e->link_fd, 0);
        if (e->link == MAP_FAILED)
                return negative_errno();
        r = vgpu_link_format(e->link, e->link_size, EXECUTOR_RING_COUNT, EXECUTOR_RING_COUNT, &g);
        if (r < 0)
                return r;
        return vgpu_link_attach_scheduler(e->link, &g, &e->req, &e->cpl);
}

/* The child: the control socket becomes fd 3 (dup2 clears close-on-exec), everything else we hold is
 * close-on-exec; signals blocked for sd-event must not stay blocked in the executor. */
/* Which MPS server, if any, the executor's CUDA driver joins: the pool's, or none at all. An isolated pool's
 * executor must not join a daemon that happens to run at the driver's default pipe directory, so it gets
 * a pipe directory where no daemon is (its own fault domain, time-sliced). */
static void child_environment(const ExecutorConfig *c)
{
        if (c->mps_pipe_dir)
                (void)setenv("CUDA_MPS_PIPE_DIRECTORY", c->mps_pipe_dir, 1);
        else
                (void)setenv("CUDA_MPS_PIPE_DIRECTORY", "/nonexistent/vgpu-no-mps", 1);
        if (c->mig)
                (void)setenv("CUDA_VISIBLE_DEVICES", c->mig, 1);
}

static _noreturn_ void exec_child(const ExecutorConfig *c, int sock)
{
        char a_vm[64], a_pool[64], a_mode[64], a_quota[64], a_device[GPU_RESOURCE_MAX + 16], a_sm[64];
        const char *argv[12];
        sigset_t none;
        int n = 0;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (dup2(sock, 3) < 0)
                _exit(120);
        snprintf(a_vm, sizeof(a_vm), "--vm-id=%" PRIu32, c->vm_id);
        snprintf(a_pool, sizeof(a_pool), "--pool=%s", c->pool);
        snprintf(a_mode, sizeof(a_mode), "--pool-mode=%s", pool_mode_to_string(c->pool_mode));
        snprintf(a_quota, sizeof(a_quota), "--memory-quota=%" PRIu64, c->memory_quota);
        argv[n++] = "vgpu-executor";
        argv[n++] = a_vm;
        argv[n++] = a_pool;
        argv[n++] = a_mode;
        argv[n++] = a_quota;
        argv[n++] = "--control-fd=3";
        if (c->pool_mode == POOL_MODE_SHARED && c->allow_guest_modules)
                argv[n++] = "--allow-guest-modules";
        if (c->device) {
                snprintf(a_device, sizeof(a_device), "--device=%s", c->device);
                argv[n++] = a_device;
        }
        if (c->mps_pipe_dir) {
                snprintf(a_sm, sizeof(a_sm), "--sm-limits=%u,%u,%u", c->sm_limit[0], c->sm_limit[1], c->sm_limit[2]);
                argv[n++] = a_sm;
        }
        argv[n] = NULL;
        child_environment(c);
        execv(c->path, (char *const *)argv);
        _exit(121);
}

static int handshake(Executor *e, uint32_t vm_id, const VgpuRegionRef *region)
{
        VgpuLinkStart start = {.magic = VGPU_LINK_START_MAGIC, .version = VGPU_LINK_VERSION,
                               .size = sizeof(start), .link_size = e->link_size, .vm_id = vm_id};
        VgpuLinkReady ready;
        int r;

        r = vgpu_link_start_send(e->control_fd, &start, e->link_fd, e->kick_fd, e->notify_fd);
        if (r < 0)
                return r;
        r = vgpu_region_ref_send(e->control_fd, region);
        if (r < 0)
                return r;
        r = vgpu_link_ready_receive(e->control_fd, EXECUTOR_READY_TIMEOUT_MS, &ready);
        if (r < 0)
                return r;
        if (ready.error != 0)
                return -ready.error;
        snprintf(e->backend, sizeof(e->backend), "%s", ready.backend);
        return 0;
}

static void reap(Executor *e)
{
        if (e->pid <= 0)
                return;
        kill(e->pid, SIGKILL);
        (void)waitpid(e->pid, NULL, 0);
        e->pid = 0;
}

int executor_start(const ExecutorConfig *config, const VgpuRegionRef *region, Executor **ret)
{
        _cleanup_(executor_freep) Executor *e = NULL;
        int sv[2], r;

        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        *e = (Executor){.control_fd = -1, .kick_fd = -1, .notify_fd = -1, .link_fd = -1};
        r = link_create(e);
        if (r < 0)
                return r;
        e->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        e->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (e->kick_fd < 0 || e->notify_fd < 0)
                return negative_errno();
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return negative_errno();
        e->pid = fork();
        if (e->pid < 0) {
                r = negative_errno();
                close(sv[0]);
                close(sv[1]);
                return r;
        }
        if (e->pid == 0)
                exec_child(config, sv[1]);
        close(sv[1]);
        e->control_fd = sv[0];
        r = handshake(e, config->vm_id, region);
        if (r < 0) {
                reap(e);
                return r;
        }
        *ret = TAKE_PTR(e);
        return 0;
}

int executor_submit(Executor *e, const VgpuHostRequest *r)
{
        int k = vgpu_host_request_push(&e->req, r);

        if (k < 0)
                return k;
        k = vgpu_ring_producer_publish(&e->req.ring);
        if (k < 0)
                return k;
        if (k > 0)
                kick(e->kick_fd);
        return 0;
}

int executor_pop(Executor *e, VgpuHostCompletion *ret)
{
        return vgpu_host_completion_pop(&e->cpl, ret);
}

int executor_release(Executor *e)
{
        int k = vgpu_ring_consumer_release(&e->cpl.ring);

        if (k > 0)
                kick(e->kick_fd);
        return k < 0 ? k : 0;
}

bool executor_has_work(const Executor *e)
{
        return vgpu_ring_consumer_has_work(&e->cpl.ring);
}

int executor_prepare_wait(Executor *e)
{
        return vgpu_ring_consumer_prepare_wait(&e->cpl.ring);
}

void executor_ack(Executor *e)
{
        uint64_t v;

        (void)!read(e->notify_fd, &v, sizeof(v));
}
