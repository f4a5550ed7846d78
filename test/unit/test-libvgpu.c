/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libvgpu against a host: connect and HELLO, copies (chunked past the data area), a gemm checked against
 * a naive loop, batching, errors at sync, and a host that closes, dies or lies.
 *
 * THE HOST HERE IS A STAND-IN for ingestd/schedd/executor until they exist: a forked process serving one
 * channel with the real host side of the local transport (vgpu_local_host_accept), the real rings and
 * validator, and the real vgpu.builtin registry doing the work. It is kept minimal on purpose. */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "builtin.h"
#include "proto/channel.h"
#include "proto/proto-validate.h"
#include "test-helpers.h"
#include "transport/local.h"
#include "vgpu-util.h"
#include "vgpu.h"

#define MOD_HANDLE UINT64_C(0x7000)
#define FN_BASE    UINT64_C(0x9000)
#define MEM_BASE   UINT64_C(0x1000)
#define MEM_MAX    64u
#define WATCHDOG_S 20

typedef enum HostMode { HOST_NORMAL, HOST_VERSION_2, HOST_CLOSE_ON_LAUNCH, HOST_STALL_ON_LAUNCH, HOST_BAD_SEQ } HostMode;

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
static char sock_path[108];
static int listen_fd = -1;
static pid_t host_pid = -1;

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
                    memcmp(h->data + rq->u.module_load.image.offset, builtin, sizeof(builtin)) != 0)
                        return VGPU_STATUS_NOT_SUPPORTED;
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

static void setup(void)
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

static void teardown(void)
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

static void host_start(HostMode mode)
{
        host_pid = fork();
        ck_assert_int_ge(host_pid, 0);
        if (host_pid == 0)
                host_serve(mode);
        closep(&listen_fd);
}

static VgpuClient *connect_vm7(uint64_t data_size)
{
        VgpuConnectOptions o = {.vm_id = 7, .requests = 64, .data_size = data_size};
        VgpuClient *c = NULL;
        int r = vgpu_connect(&o, &c);

        ck_assert_msg(r == 0, "connect: %s (%s)", vgpu_strerror(r), vgpu_last_error());
        return c;
}

/* ---- Tests ---- */

START_TEST(test_connect_negotiates_version_over_the_vm_socket)
{
        VgpuClient *c;
        VgpuClientInfo info;

        host_start(HOST_NORMAL);
        setenv("VGPU_VM_ID", "7", 1); /* vm_id 0 in the options: the environment decides */
        ck_assert_int_eq(vgpu_connect(NULL, &c), 0);
        ck_assert_int_eq(vgpu_client_info(c, &info), 0);
        ck_assert_uint_eq(info.vm_id, 7);
        ck_assert_int_eq(info.transport, VGPU_CONNECT_LOCAL);
        ck_assert_str_eq(info.socket_path, sock_path);
        ck_assert_uint_eq(info.protocol_version, 1);
        ck_assert_uint_eq(info.requests, VGPU_CONNECT_REQUESTS_DEFAULT);
        ck_assert_uint_ge(info.data_size, VGPU_CONNECT_DATA_SIZE_DEFAULT);
        vgpu_disconnect(c);
        unsetenv("VGPU_VM_ID");
}
END_TEST

START_TEST(test_version_mismatch_is_refused_with_both_ranges)
{
        VgpuClient *c = NULL;

        host_start(HOST_VERSION_2);
        ck_assert_int_eq(vgpu_connect(&(VgpuConnectOptions){.vm_id = 7}, &c), VGPU_E_VERSION_MISMATCH);
        ck_assert_ptr_null(c);
        ck_assert_msg(strstr(vgpu_last_error(), "versions 2 to 3"), "message: %s", vgpu_last_error());
}
END_TEST

START_TEST(test_no_socket_and_no_vm_are_refused_plainly)
{
        VgpuClient *c = NULL;

        unsetenv("VGPU_VM_ID");
        ck_assert_int_eq(vgpu_connect(NULL, &c), -ENODEV);
        ck_assert_msg(strstr(vgpu_last_error(), "no vgpu-stub device found"), "%s", vgpu_last_error());
        ck_assert_int_eq(vgpu_connect(&(VgpuConnectOptions){.vm_id = 8}, &c), -EOPNOTSUPP); /* no vm/8.sock */
        ck_assert_int_eq(vgpu_connect(&(VgpuConnectOptions){.vm_id = 8, .transport = VGPU_CONNECT_LOCAL}, &c), -ENOENT);
}
END_TEST

static void gemm_naive(const float *a, const float *b, float *c, uint32_t m, uint32_t n, uint32_t k, float alpha)
{
        for (uint32_t i = 0; i < m; i++)
                for (uint32_t j = 0; j < n; j++) {
                        double s = 0;

                        for (uint32_t l = 0; l < k; l++)
                                s += (double)a[i * k + l] * b[l * n + j];
                        c[i * n + j] = (float)(alpha * s);
                }
}

START_TEST(test_gemm_through_the_channel_matches_a_naive_loop)
{
        enum { M = 37, N = 29, K = 50 };
        static float a[M * K], b[K * N], got[M * N], want[M * N];
        VgpuMemHandle ha, hb, hc;
        VgpuModuleHandle mod;
        VgpuFunctionHandle fn;
        VgpuClient *c;

        for (size_t i = 0; i < ELEMENTSOF(a); i++)
                a[i] = (float)((int)(i * 7 % 23) - 11) / 8.0f;
        for (size_t i = 0; i < ELEMENTSOF(b); i++)
                b[i] = (float)((int)(i * 5 % 17) - 8) / 4.0f;
        host_start(HOST_NORMAL);
        c = connect_vm7(1 << 20);
        ck_assert_int_eq(vgpu_mem_alloc(c, sizeof(a), &ha), 0);
        ck_assert_int_eq(vgpu_mem_alloc(c, sizeof(b), &hb), 0);
        ck_assert_int_eq(vgpu_mem_alloc(c, sizeof(got), &hc), 0);
        ck_assert_int_eq(vgpu_memcpy_htod(c, ha, 0, a, sizeof(a)), 0);
        ck_assert_int_eq(vgpu_memcpy_htod(c, hb, 0, b, sizeof(b)), 0);
        ck_assert_int_eq(vgpu_module_builtin(c, &mod), 0);
        ck_assert_int_eq(vgpu_get_function(c, mod, "gemm", &fn), 0);
        ck_assert_int_eq(vgpu_get_function(c, mod, "no-such-kernel", &(VgpuFunctionHandle){0}), VGPU_E_INVALID_ARGUMENT);
        VgpuParam p[] = {vgpu_param_buffer(ha, 0), vgpu_param_buffer(hb, 0), vgpu_param_buffer(hc, 0),
                         vgpu_param_u32(M),        vgpu_param_u32(N),        vgpu_param_u32(K),
                         vgpu_param_f32(0.5f),     vgpu_param_f32(0.0f),     vgpu_param_u32(0),
                         vgpu_param_u32(0)};
        ck_assert_int_eq(vgpu_launch(c, fn, VGPU_DIM3(1, 1, 1), VGPU_DIM3(1, 1, 1), 0, p, ELEMENTSOF(p)), 0);
        ck_assert_int_eq(vgpu_sync(c), 0);
        ck_assert_int_eq(vgpu_memcpy_dtoh(c, got, hc, 0, sizeof(got)), 0);
        gemm_naive(a, b, want, M, N, K, 0.5f);
        for (size_t i = 0; i < ELEMENTSOF(got); i++)
                ck_assert_msg(fabsf(got[i] - want[i]) <= 1e-4f * (1 + fabsf(want[i])), "C[%zu] = %g, want %g", i,
                              (double)got[i], (double)want[i]);
        vgpu_disconnect(c);
}
END_TEST

START_TEST(test_copies_larger_than_the_data_area_are_chunked)
{
        enum { SIZE = 1 << 20 };
        uint8_t *in = malloc(SIZE), *out = calloc(1, SIZE);
        VgpuStatsSnapshot s;
        VgpuMemHandle m;
        VgpuClient *c;

        for (size_t i = 0; i < SIZE; i++)
                in[i] = (uint8_t)(i * 131 + (i >> 11));
        host_start(HOST_NORMAL);
        c = connect_vm7(16 * 1024); /* 16 KiB of data area for 1 MiB each way */
        ck_assert_int_eq(vgpu_mem_alloc(c, SIZE, &m), 0);
        ck_assert_int_eq(vgpu_memcpy_htod(c, m, 0, in, SIZE), 0);
        ck_assert_int_eq(vgpu_memcpy_dtoh(c, out, m, 0, SIZE), 0);
        ck_assert_int_eq(memcmp(in, out, SIZE), 0);
        ck_assert_int_eq(vgpu_memcpy_dtoh(c, out, m, SIZE - 10, 20), VGPU_E_NO_SUCH_HANDLE); /* past the end */
        vgpu_client_counters(c, &s);
        ck_assert_uint_ge(s.chunks, 2 * (SIZE / (8 * 1024)));
        ck_assert_int_eq(vgpu_stats(c, &s), 0);
        ck_assert_uint_gt(s.host_requests, 256);
        vgpu_disconnect(c);
        free(in);
        free(out);
}
END_TEST

START_TEST(test_an_async_batch_costs_one_notification)
{
        VgpuStatsSnapshot before, after;
        VgpuMemHandle m;
        VgpuModuleHandle mod;
        VgpuFunctionHandle relu;
        VgpuClient *c;
        float x[64];

        host_start(HOST_NORMAL);
        c = connect_vm7(1 << 20);
        ck_assert_int_eq(vgpu_mem_alloc(c, 2 * sizeof(x), &m), 0);
        ck_assert_int_eq(vgpu_module_builtin(c, &mod), 0);
        ck_assert_int_eq(vgpu_get_function(c, mod, "relu", &relu), 0);
        usleep(100 * 1000); /* the host is asleep now: a batch must wake it exactly once */
        vgpu_client_counters(c, &before);
        for (int i = 0; i < 20; i++) {
                VgpuParam p[] = {vgpu_param_buffer(m, 0), vgpu_param_buffer(m, sizeof(x)), vgpu_param_u32(64)};

                ck_assert_int_eq(vgpu_memset(c, m, 0, 0xbf800000u /* -1.0f */, 4, sizeof(x)), 0);
                ck_assert_int_eq(vgpu_launch(c, relu, VGPU_DIM3(1, 1, 1), VGPU_DIM3(64, 1, 1), 0, p, 3), 0);
        }
        ck_assert_int_eq(vgpu_sync(c), 0);
        vgpu_client_counters(c, &after);
        ck_assert_uint_eq(after.requests - before.requests, 41);
        ck_assert_uint_eq(after.publishes - before.publishes, 1);
        ck_assert_uint_eq(after.notifications - before.notifications, 1);
        ck_assert_int_eq(vgpu_memcpy_dtoh(c, x, m, sizeof(x), sizeof(x)), 0);
        ck_assert(x[0] == 0.0f && x[63] == 0.0f);
        vgpu_disconnect(c);
}
END_TEST

START_TEST(test_an_error_in_a_queued_op_is_reported_at_sync)
{
        VgpuFailure f;
        VgpuMemHandle m;
        VgpuClient *c;

        host_start(HOST_NORMAL);
        c = connect_vm7(1 << 20);
        ck_assert_int_eq(vgpu_mem_alloc(c, 64, &m), 0);
        ck_assert_int_eq(vgpu_memset(c, m, 0, 1, 4, 64), 0);
        ck_assert_int_eq(vgpu_memset(c, 0xdead, 0, 1, 4, 64), 0); /* queued: fails later */
        ck_assert_int_eq(vgpu_mem_free(c, m), 0);
        ck_assert_int_eq(vgpu_sync(c), VGPU_E_NO_SUCH_HANDLE);
        ck_assert_int_eq(vgpu_last_failure(c, &f), 0);
        ck_assert_str_eq(f.op, "MEMSET");
        ck_assert_uint_eq(f.opcode, 7);
        ck_assert_msg(strstr(vgpu_last_error(), "MEMSET (seq"), "%s", vgpu_last_error());
        ck_assert_int_eq(vgpu_sync(c), 0); /* reported once */
        vgpu_disconnect(c);
}
END_TEST

/* Queues work the host will not finish, then checks every call fails with err and none hangs. */
static void check_pending_calls_fail(VgpuClient *c, int err)
{
        VgpuMemHandle m;
        float buf[16];

        ck_assert_int_eq(vgpu_mem_alloc(c, sizeof(buf), &m), 0);
        ck_assert_int_eq(vgpu_launch(c, FN_BASE, VGPU_DIM3(1, 1, 1), VGPU_DIM3(1, 1, 1), 0, NULL, 0), 0);
        ck_assert_int_eq(vgpu_memset(c, m, 0, 0, 4, sizeof(buf)), 0);
        ck_assert_int_eq(vgpu_memcpy_htod(c, m, 0, buf, sizeof(buf)), 0);
        ck_assert_int_eq(vgpu_sync(c), err);
        ck_assert_int_eq(vgpu_memcpy_dtoh(c, buf, m, 0, sizeof(buf)), err);
        ck_assert_int_eq(vgpu_mem_alloc(c, 16, &m), err);
        ck_assert_int_eq(vgpu_sync(c), err);
}

START_TEST(test_host_closing_the_channel_fails_every_pending_call)
{
        VgpuClient *c;

        host_start(HOST_CLOSE_ON_LAUNCH);
        c = connect_vm7(1 << 20);
        check_pending_calls_fail(c, VGPU_E_VM_MOVED);
        ck_assert_msg(strstr(vgpu_last_error(), "closed the channel"), "%s", vgpu_last_error());
        vgpu_disconnect(c);
}
END_TEST

START_TEST(test_host_killed_fails_every_pending_call)
{
        VgpuClient *c;
        pid_t killer;

        host_start(HOST_STALL_ON_LAUNCH);
        c = connect_vm7(1 << 20);
        killer = fork();
        ck_assert_int_ge(killer, 0);
        if (killer == 0) {
                usleep(200 * 1000); /* let the guest block in vgpu_sync() first */
                kill(host_pid, SIGKILL);
                _exit(0);
        }
        check_pending_calls_fail(c, -ECONNRESET);
        ck_assert_int_eq(waitpid(killer, NULL, 0), killer);
        vgpu_disconnect(c);
}
END_TEST

START_TEST(test_a_completion_with_an_unknown_seq_is_refused)
{
        VgpuClient *c;

        host_start(HOST_BAD_SEQ);
        c = connect_vm7(1 << 20);
        ck_assert_int_eq(vgpu_sync(c), -EPROTO);
        ck_assert_msg(strstr(vgpu_last_error(), "matches no request"), "%s", vgpu_last_error());
        ck_assert_int_eq(vgpu_mem_alloc(c, 16, &(VgpuMemHandle){0}), -EPROTO);
        vgpu_disconnect(c);
}
END_TEST

static Suite *libvgpu_suite(void)
{
        Suite *s = suite_create("libvgpu");
        TCase *tc = tcase_create("client");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, WATCHDOG_S + 10);
        tcase_add_test(tc, test_connect_negotiates_version_over_the_vm_socket);
        tcase_add_test(tc, test_version_mismatch_is_refused_with_both_ranges);
        tcase_add_test(tc, test_no_socket_and_no_vm_are_refused_plainly);
        tcase_add_test(tc, test_gemm_through_the_channel_matches_a_naive_loop);
        tcase_add_test(tc, test_copies_larger_than_the_data_area_are_chunked);
        tcase_add_test(tc, test_an_async_batch_costs_one_notification);
        tcase_add_test(tc, test_an_error_in_a_queued_op_is_reported_at_sync);
        tcase_add_test(tc, test_host_closing_the_channel_fails_every_pending_call);
        tcase_add_test(tc, test_host_killed_fails_every_pending_call);
        tcase_add_test(tc, test_a_completion_with_an_unknown_seq_is_refused);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(libvgpu_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
