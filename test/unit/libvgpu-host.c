/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The stand-in host of libvgpu's unit tests (libvgpu-host.h). */
#include <check.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "builtin.h"
#include "libvgpu-host.h"
#include "proto/channel.h"
#include "proto/proto-validate.h"
#include "test-helpers.h"
#include "transport/local.h"
#include "vgpu-util.h"

#define MOD_HANDLE UINT64_C(0x7000)
#define MEM_BASE   UINT64_C(0x1000)
#define MEM_MAX    64u

typedef struct Host {
        HostMode mode;
        VgpuEndpoint *e;
        VgpuRequestConsumer req;
        VgpuCompletionProducer cpl;
        uint8_t *data;
        uint64_t data_size;
        struct {
                uint8_t *p;
                uint64_t size;
        } mem[MEM_MAX];
        uint64_t served;
} Host;

static char *tmpdir;
char sock_path[108];
static int listen_fd = -1;
pid_t host_pid = -1;

/* ---- The stand-in host ---- */

static uint8_t *host_range(Host *h, uint64_t handle, uint64_t offset, uint64_t length)
{
        uint64_t i = handle - MEM_BASE;

        if (handle < MEM_BASE || i >= MEM_MAX || !h->mem[i].p || !vgpu_range_fits(offset, length, h->mem[i].size))
                return NULL;
        return h->mem[i].p + offset;
}

static VgpuStatus host_launch(Host *h, const VgpuRequest *rq)
{
        VgpuLaunchParam wire[BUILTIN_ARGS_MAX];
        VgpuKernelParam kp[BUILTIN_ARGS_MAX];
        BuiltinArg args[BUILTIN_ARGS_MAX] = {};
        const BuiltinKernel *k = builtin_get(rq->u.launch.function - FN_BASE);
        uint16_t n = rq->u.launch.param_count;
        const char *reason;
        VgpuStatus s;

        if (rq->u.launch.function < FN_BASE || !k || n > BUILTIN_ARGS_MAX)
                return VGPU_STATUS_NO_SUCH_HANDLE;
        memcpy(wire, h->data + rq->u.launch.params.offset, n * sizeof(VgpuLaunchParam));
        s = vgpu_launch_params_validate(wire, n, h->data_size, kp);
        for (uint16_t i = 0; s == VGPU_STATUS_OK && i < n; i++) {
                if (kp[i].kind == VGPU_PARAM_BUFFER) {
                        args[i].data = host_range(h, kp[i].value, kp[i].offset, 0);
                        args[i].size = args[i].data ? h->mem[kp[i].value - MEM_BASE].size - kp[i].offset : 0;
                        s = args[i].data ? s : VGPU_STATUS_NO_SUCH_HANDLE;
                } else
                        args[i].u32 = (uint32_t)kp[i].value;
        }
        if (s != VGPU_STATUS_OK)
                return s;
        s = builtin_validate(k, args, n, &reason);
        return s != VGPU_STATUS_OK ? s : builtin_run(k, args, n, 0, k->work_items(args), &reason);
}

static VgpuStatus host_memory(Host *h, const VgpuRequest *rq, VgpuCompletionDesc *cd)
{
        uint8_t *p, *q;

        switch (rq->opcode) {
        case VGPU_OP_MEM_ALLOC:
                for (uint32_t i = 0; i < MEM_MAX; i++)
                        if (!h->mem[i].p) {
                                h->mem[i].p = calloc(1, rq->u.mem_alloc.size);
                                h->mem[i].size = rq->u.mem_alloc.size;
                                cd->u.handle = MEM_BASE + i;
                                return h->mem[i].p ? VGPU_STATUS_OK : VGPU_STATUS_OUT_OF_MEMORY;
                        }
                return VGPU_STATUS_OUT_OF_MEMORY;
        case VGPU_OP_MEM_FREE:
                if (!host_range(h, rq->u.mem_free.handle, 0, 0))
                        return VGPU_STATUS_NO_SUCH_HANDLE;
                h->mem[rq->u.mem_free.handle - MEM_BASE].p = mfree(h->mem[rq->u.mem_free.handle - MEM_BASE].p);
                return VGPU_STATUS_OK;
        case VGPU_OP_COPY_H2D:
        case VGPU_OP_COPY_D2H:
                p = host_range(h, rq->u.copy_host.handle, rq->u.copy_host.offset, rq->u.copy_host.data.length);
                if (!p)
                        return VGPU_STATUS_NO_SUCH_HANDLE;
                q = h->data + rq->u.copy_host.data.offset;
                memcpy(rq->opcode == VGPU_OP_COPY_H2D ? p : q, rq->opcode == VGPU_OP_COPY_H2D ? q : p,
                       rq->u.copy_host.data.length);
                return VGPU_STATUS_OK;
        case VGPU_OP_MEMSET:
                p = host_range(h, rq->u.memset.handle, rq->u.memset.offset, rq->u.memset.length);
                if (!p)
                        return VGPU_STATUS_NO_SUCH_HANDLE;
                for (uint64_t i = 0; i < rq->u.memset.length; i += rq->u.memset.element_size)
                        memcpy(p + i, &rq->u.memset.value, rq->u.memset.element_size);
                return VGPU_STATUS_OK;
        default:
                return VGPU_STATUS_NOT_SUPPORTED;
        }
}

static VgpuStatus host_execute(Host *h, const VgpuRequest *rq, VgpuCompletionDesc *cd)
{
        static const char builtin[] = "vgpu.builtin";
        char name[64] = {};

        switch (rq->opcode) {
        case VGPU_OP_HELLO:
                if (h->mode == HOST_VERSION_2) { /* a host of the future: speaks 2 … 3 only */
                        cd->u.hello.version = 3;
                        cd->u.hello.version_min = 2;
                        return rq->u.hello.version_max < 2 ? VGPU_STATUS_VERSION_MISMATCH : VGPU_STATUS_OK;
                }
                cd->u.hello.version_min = VGPU_PROTOCOL_VERSION_MIN;
                return vgpu_hello_negotiate(rq->u.hello.version_min, rq->u.hello.version_max, &cd->u.hello.version);
        case VGPU_OP_MODULE_LOAD:
                if (rq->u.module_load.image.length != sizeof(builtin) ||
                    memcmp(h->data + rq->u.module_load.image.offset, builtin, sizeof(builtin)) != 0) {
                        /* As the executor does: the reason over the image's own range, NUL-terminated. */
                        snprintf((char *)h->data + rq->u.module_load.image.offset, rq->u.module_load.image.length,
                                 "%s", HOST_MODULE_REASON);
                        return VGPU_STATUS_NOT_SUPPORTED;
                }
                cd->u.handle = MOD_HANDLE;
                return VGPU_STATUS_OK;
        case VGPU_OP_GET_FUNCTION:
                if (rq->u.get_function.module != MOD_HANDLE || rq->u.get_function.name.length >= sizeof(name))
                        return VGPU_STATUS_NO_SUCH_HANDLE;
                memcpy(name, h->data + rq->u.get_function.name.offset, rq->u.get_function.name.length);
                for (size_t i = 0; builtin_get(i); i++)
                        if (streq(builtin_get(i)->name, name))
                                cd->u.handle = FN_BASE + i;
                return cd->u.handle ? VGPU_STATUS_OK : VGPU_STATUS_INVALID_ARGUMENT;
        case VGPU_OP_LAUNCH:
                if (h->mode == HOST_CLOSE_ON_LAUNCH) {
                        vgpu_channel_set_backend_state(h->e->region, VGPU_PEER_CLOSED, VGPU_STATUS_VM_MOVED);
                        vgpu_endpoint_notify(h->e);
                }
                while (h->mode == HOST_CLOSE_ON_LAUNCH || h->mode == HOST_STALL_ON_LAUNCH)
                        pause();
                return host_launch(h, rq);
        case VGPU_OP_SYNC:
                cd->seq += h->mode == HOST_BAD_SEQ ? 1000 : 0;
                return VGPU_STATUS_OK;
        case VGPU_OP_STATS:
                memcpy(h->data + rq->u.stats.out.offset, &(VgpuStats){.requests = h->served}, sizeof(VgpuStats));
                return VGPU_STATUS_OK;
        default:
                return host_memory(h, rq, cd);
        }
}

/* Blocks until notified; exits when the guest hangs up. */
static void host_sleep(Host *h)
{
        struct pollfd p[2] = {{.fd = h->e->wait_fd, .events = POLLIN}, {.fd = h->e->hangup_fd, .events = POLLIN}};

        if (poll(p, 2, -1) < 1 || p[1].revents)
                _exit(0);
        vgpu_endpoint_ack(h->e);
}

static void host_answer(Host *h, const VgpuCompletionDesc *cd)
{
        while (vgpu_completion_push(&h->cpl, cd) == -EAGAIN)
                if (vgpu_ring_producer_prepare_wait(&h->cpl.ring) == 0)
                        host_sleep(h);
        if (vgpu_ring_producer_publish(&h->cpl.ring) > 0)
                vgpu_endpoint_notify(h->e);
}

static _noreturn_ void host_serve(HostMode mode)
{
        Host h = {.mode = mode};
        int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

        if (conn < 0 || vgpu_local_host_accept(conn, 5000, &h.e, NULL) != 0 ||
            vgpu_channel_attach_host(h.e->region, &h.e->geometry, &h.req, &h.cpl) < 0)
                _exit(2);
        h.data = (uint8_t *)h.e->region + h.e->geometry.data_offset;
        h.data_size = h.e->geometry.data_size;
        for (;;) {
                VgpuRequestDesc d;
                VgpuRequest rq;
                VgpuCompletionDesc cd;

                if (vgpu_request_pop(&h.req, &d) == -EAGAIN) {
                        if (vgpu_ring_consumer_release(&h.req.ring) > 0)
                                vgpu_endpoint_notify(h.e);
                        if (vgpu_ring_consumer_prepare_wait(&h.req.ring) == 0)
                                host_sleep(&h);
                        continue;
                }
                cd = (VgpuCompletionDesc){.seq = d.seq, .opcode = d.opcode};
                cd.status = vgpu_request_validate(&d, h.data_size, &rq);
                if (cd.status == VGPU_STATUS_OK)
                        cd.status = host_execute(&h, &rq, &cd);
                h.served++;
                host_answer(&h, &cd);
        }
}

/* ---- Fixture ---- */

void host_fixture_setup(void)
{
        char vm_dir[PATH_MAX];

        alarm(WATCHDOG_S); /* nothing may hang: a hang is a failure, not a stuck test run */
        tmpdir = test_tmpdir_new();
        snprintf(vm_dir, sizeof(vm_dir), "%s/vm", tmpdir);
        ck_assert_int_eq(mkdir(vm_dir, 0755), 0);
        ck_assert_int_eq(vgpu_local_socket_path(tmpdir, 7, sock_path, sizeof(sock_path)), 0);
        listen_fd = vgpu_local_listen(sock_path);
        ck_assert_int_ge(listen_fd, 0);
        setenv("VGPU_RUNTIME_DIR", tmpdir, 1);
        unsetenv("VGPU_TRANSPORT");
}

void host_fixture_teardown(void)
{
        if (host_pid > 0) {
                kill(host_pid, SIGKILL);
                waitpid(host_pid, NULL, 0);
        }
        host_pid = -1;
        closep(&listen_fd);
        test_tmpdir_remove(tmpdir);
        tmpdir = NULL;
}

void host_start(HostMode mode)
{
        host_pid = fork();
        ck_assert_int_ge(host_pid, 0);
        if (host_pid == 0)
                host_serve(mode);
        closep(&listen_fd);
}

VgpuClient *connect_vm7(uint64_t data_size)
{
        VgpuConnectOptions o = {.vm_id = 7, .requests = 64, .data_size = data_size};
        VgpuClient *c = NULL;
        int r = vgpu_connect(&o, &c);

        ck_assert_msg(r == 0, "connect: %s (%s)", vgpu_strerror(r), vgpu_last_error());
        return c;
}
