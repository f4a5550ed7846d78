/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The scheduler's side of an executor, for tests: real memfds, eventfds, a socketpair and the real binary. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"
#include "transport/local.h"
#include "transport/transport.h"

const char *driver_executor_path(void)
{
        static char path[4096];
        const char *dir = getenv("VGPU_BUILD_DIR");

        snprintf(path, sizeof(path), "%s/vgpu-executor", dir ? dir : VGPU_BUILD_ROOT);
        return path;
}

/* As a guest makes it: memfd, formatted, then sealed so that it can never shrink under a mapping. */
static void region_create(Driver *d)
{
        d->region_fd = memfd_create("vm-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        ck_assert_int_ge(d->region_fd, 0);
        ck_assert_int_eq(ftruncate(d->region_fd, DRIVER_REGION_SIZE), 0);
        d->region = mmap(NULL, DRIVER_REGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, d->region_fd, 0);
        ck_assert_ptr_ne(d->region, MAP_FAILED);
        ck_assert_int_eq(vgpu_channel_format(d->region, DRIVER_REGION_SIZE, 4, 4, &d->geometry), 0);
        ck_assert_int_eq(fcntl(d->region_fd, F_ADD_SEALS, VGPU_LOCAL_SEALS_REQUIRED), 0);
        d->data = d->region + d->geometry.data_offset;
}

static void link_create(Driver *d)
{
        VgpuLinkGeometry g;

        d->link_size = vgpu_link_region_size(16, 16);
        d->link_fd = memfd_create("host-link", MFD_CLOEXEC);
        ck_assert_int_ge(d->link_fd, 0);
        ck_assert_int_eq(ftruncate(d->link_fd, (off_t)d->link_size), 0);
        d->link = mmap(NULL, d->link_size, PROT_READ | PROT_WRITE, MAP_SHARED, d->link_fd, 0);
        ck_assert_ptr_ne(d->link, MAP_FAILED);
        ck_assert_int_eq(vgpu_link_format(d->link, d->link_size, 16, 16, &g), 0);
        ck_assert_int_eq(vgpu_link_attach_scheduler(d->link, &g, &d->req, &d->cpl), 0);
}

static pid_t spawn(int sock, uint32_t vm_id, const char *quota, const char *backend, const char *const *extra)
{
        char a_vm[64], a_quota[64], a_backend[64];
        const char *argv[6 + DRIVER_EXTRA_ARGS_MAX + 1];
        size_t n = 0;
        pid_t pid = fork();

        ck_assert_int_ge(pid, 0);
        if (pid > 0)
                return pid;
        /* The child: the socket becomes fd 3 (dup2 clears close-on-exec), everything else is closed on exec. */
        if (dup2(sock, 3) < 0)
                _exit(120);
        snprintf(a_vm, sizeof(a_vm), "--vm-id=%u", vm_id);
        snprintf(a_quota, sizeof(a_quota), "--memory-quota=%s", quota);
        snprintf(a_backend, sizeof(a_backend), "--backend=%s", backend);
        argv[n++] = "vgpu-executor";
        argv[n++] = a_vm;
        argv[n++] = "--pool=A";
        argv[n++] = a_quota;
        argv[n++] = "--control-fd=3";
        argv[n++] = a_backend;
        for (size_t i = 0; extra && i < DRIVER_EXTRA_ARGS_MAX && extra[i]; i++)
                argv[n++] = extra[i];
        argv[n] = NULL;
        execv(driver_executor_path(), (char *const *)argv);
        _exit(121);
}

int driver_start(Driver *d, uint32_t vm_id, const char *quota, const char *backend)
{
        return driver_start_with(d, vm_id, quota, backend, NULL);
}

int driver_start_with(Driver *d, uint32_t vm_id, const char *quota, const char *backend, const char *const *extra)
{
        int sv[2], efd_kick, efd_notify, r;
        VgpuLinkStart start;
        VgpuRegionRef ref;
        VgpuLinkReady ready;

        *d = (Driver){.vm_id = vm_id, .tag = 1000};
        region_create(d);
        link_create(d);
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        efd_kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        efd_notify = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        ck_assert(efd_kick >= 0 && efd_notify >= 0);
        d->pid = spawn(sv[1], vm_id, quota, backend, extra);
        close(sv[1]);
        d->control = sv[0];
        d->kick = efd_kick;
        d->notify = efd_notify;

        start = (VgpuLinkStart){.magic = VGPU_LINK_START_MAGIC, .version = VGPU_LINK_VERSION,
                                .size = sizeof(start), .link_size = d->link_size, .vm_id = vm_id};
        ck_assert_int_eq(vgpu_link_start_send(d->control, &start, d->link_fd, d->kick, d->notify), 0);
        ref = (VgpuRegionRef){.kind = VGPU_TRANSPORT_LOCAL, .size = DRIVER_REGION_SIZE, .fd = d->region_fd};
        ck_assert_int_eq(vgpu_region_ref_send(d->control, &ref), 0);
        r = vgpu_link_ready_receive(d->control, DRIVER_WAIT_MS, &ready);
        if (r == 0 && ready.error != 0)
                r = -ready.error;
        if (r < 0) {
                (void)driver_stop(d);
                return r;
        }
        snprintf(d->backend, sizeof(d->backend), "%s", ready.backend);
        return 0;
}

int driver_wait(Driver *d, int timeout_ms)
{
        int status = 0;

        for (int waited = 0;; waited += 10) {
                pid_t p = waitpid(d->pid, &status, WNOHANG);

                ck_assert_int_ge(p, 0);
                if (p == d->pid)
                        break;
                if (waited >= timeout_ms) {
                        kill(d->pid, SIGKILL);
                        ck_assert_int_eq(waitpid(d->pid, &status, 0), d->pid);
                        ck_abort_msg("vgpu-executor (VM %u) did not exit within %d ms", d->vm_id, timeout_ms);
                }
                usleep(10000);
        }
        d->pid = 0;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int driver_stop(Driver *d)
{
        int r = 0;

        if (d->control >= 0)
                close(d->control);
        d->control = -1;
        if (d->pid > 0)
                r = driver_wait(d, DRIVER_WAIT_MS);
        close(d->kick);
        close(d->notify);
        close(d->link_fd);
        close(d->region_fd);
        munmap(d->link, d->link_size);
        munmap(d->region, DRIVER_REGION_SIZE);
        return r;
}

static void wait_notified(Driver *d)
{
        struct pollfd p = {.fd = d->notify, .events = POLLIN};
        uint64_t v;

        ck_assert_msg(poll(&p, 1, DRIVER_WAIT_MS) == 1, "no completion from VM %u's executor within %d ms", d->vm_id,
                      DRIVER_WAIT_MS);
        (void)!read(d->notify, &v, sizeof(v));
}

VgpuHostCompletion driver_call(Driver *d, const VgpuRequestDesc *req)
{
        VgpuHostRequest hr = {.req = *req, .vm_id = d->vm_id, .priority = 1, .tag = ++d->tag, .generation = 7};
        VgpuHostCompletion c;
        uint64_t one = 1;
        int r;

        ck_assert_int_eq(vgpu_host_request_push(&d->req, &hr), 0);
        if (vgpu_ring_producer_publish(&d->req.ring) > 0)
                ck_assert_int_eq(write(d->kick, &one, sizeof(one)), (ssize_t)sizeof(one));
        while ((r = vgpu_host_completion_pop(&d->cpl, &c)) == -EAGAIN)
                if (vgpu_ring_consumer_prepare_wait(&d->cpl.ring) == 0)
                        wait_notified(d);
        ck_assert_int_eq(r, 0);
        if (vgpu_ring_consumer_release(&d->cpl.ring) > 0)
                ck_assert_int_eq(write(d->kick, &one, sizeof(one)), (ssize_t)sizeof(one));
        ck_assert_uint_eq(c.tag, hr.tag);
        ck_assert_uint_eq(c.generation, hr.generation);
        ck_assert_uint_eq(c.vm_id, d->vm_id);
        ck_assert_uint_eq(c.cpl.seq, req->seq);
        ck_assert_uint_eq(c.cpl.opcode, req->opcode);
        return c;
}

VgpuStatus driver_status(Driver *d, const VgpuRequestDesc *req)
{
        return (VgpuStatus)driver_call(d, req).cpl.status;
}

uint64_t driver_alloc(Driver *d, uint64_t size, VgpuStatus *ret_status)
{
        VgpuHostCompletion c = driver_call(d, &(VgpuRequestDesc){.opcode = VGPU_OP_MEM_ALLOC, .seq = 1,
                                                                 .u.mem_alloc.size = size});

        if (ret_status)
                *ret_status = c.cpl.status;
        return c.cpl.status == VGPU_STATUS_OK ? c.cpl.u.handle : 0;
}

VgpuStatus driver_free(Driver *d, uint64_t handle)
{
        return driver_status(d, &(VgpuRequestDesc){.opcode = VGPU_OP_MEM_FREE, .seq = 2, .u.mem_free.handle = handle});
}

static VgpuStatus copy_host(Driver *d, VgpuOpcode op, uint64_t handle, uint64_t offset, uint64_t data_offset,
                            uint64_t length)
{
        return driver_status(d, &(VgpuRequestDesc){.opcode = op, .seq = 3,
                                                   .u.copy_host = {.handle = handle, .offset = offset,
                                                                   .data_offset = data_offset, .length = length}});
}

VgpuStatus driver_h2d(Driver *d, uint64_t handle, uint64_t offset, uint64_t data_offset, uint64_t length)
{
        return copy_host(d, VGPU_OP_COPY_H2D, handle, offset, data_offset, length);
}

VgpuStatus driver_d2h(Driver *d, uint64_t handle, uint64_t offset, uint64_t data_offset, uint64_t length)
{
        return copy_host(d, VGPU_OP_COPY_D2H, handle, offset, data_offset, length);
}

uint64_t driver_module_load(Driver *d, VgpuModuleFormat format, const void *image, size_t length, VgpuStatus *ret)
{
        VgpuHostCompletion c;

        memcpy(d->data, image, length);
        c = driver_call(d, &(VgpuRequestDesc){.opcode = VGPU_OP_MODULE_LOAD, .seq = 4,
                                              .u.module_load = {.format = format, .length = length}});
        *ret = c.cpl.status;
        return c.cpl.status == VGPU_STATUS_OK ? c.cpl.u.handle : 0;
}

uint64_t driver_get_function(Driver *d, uint64_t module, const char *name, VgpuStatus *ret)
{
        VgpuHostCompletion c;

        memcpy(d->data, name, strlen(name));
        c = driver_call(d, &(VgpuRequestDesc){.opcode = VGPU_OP_GET_FUNCTION, .seq = 5,
                                              .u.get_function = {.module = module, .name_length = strlen(name)}});
        *ret = c.cpl.status;
        return c.cpl.status == VGPU_STATUS_OK ? c.cpl.u.handle : 0;
}

void driver_param_buffer(DriverParams *p, uint64_t handle, uint64_t offset)
{
        p->p[p->n++] = (VgpuLaunchParam){.kind = VGPU_PARAM_BUFFER, .size = 8, .value = handle, .offset = offset};
}

void driver_param_u32(DriverParams *p, uint32_t v)
{
        p->p[p->n++] = (VgpuLaunchParam){.kind = VGPU_PARAM_VALUE, .size = 4, .value = v};
}

void driver_param_f32(DriverParams *p, float v)
{
        uint32_t bits;

        memcpy(&bits, &v, sizeof(bits));
        driver_param_u32(p, bits);
}

VgpuStatus driver_launch(Driver *d, uint64_t function, const DriverParams *p, uint64_t params_offset)
{
        memcpy(d->data + params_offset, p->p, p->n * sizeof(VgpuLaunchParam));
        return driver_status(d, &(VgpuRequestDesc){.opcode = VGPU_OP_LAUNCH, .seq = 6,
                                                   .u.launch = {.function = function, .grid = {1, 1, 1},
                                                                .block = {1, 1, 1}, .param_count = p->n,
                                                                .params_offset = params_offset}});
}
