/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A small guest for ingestd's integration tests: connects to $VGPU_RUNTIME_DIR/vm/N.sock with the local
 * transport's guest side and plays one scenario, honest or hostile, printing one line per answer
 * ("<name> <status>") for the test script to compare. Exit 0 when the scenario ran, 1 when it could not. */
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <time.h>

#include "proto/channel.h"
#include "proto/proto-validate.h"
#include "transport/local.h"
#include "vgpu-util.h"

#define REGION_SIZE (1u << 20)
#define SLOTS       64u

typedef struct Guest {
        VgpuEndpoint *e;
        VgpuRequestProducer req;
        VgpuCompletionConsumer cpl;
        uint64_t seq;
} Guest;

static const char *status_name(uint32_t s)
{
        const char *n = vgpu_status_to_string((VgpuStatus)s);
        return n ? n : "?";
}

static bool closed(const Guest *g)
{
        return vgpu_channel_backend_state(g->e->region) == VGPU_PEER_CLOSED;
}

static uint32_t close_reason(const Guest *g)
{
        return __atomic_load_n(&((const VgpuChannelHeader *)g->e->region)->close_reason, __ATOMIC_ACQUIRE);
}

static int send_request(Guest *g, VgpuRequestDesc *d)
{
        int r;

        d->seq = ++g->seq;
        r = vgpu_request_push(&g->req, d);
        if (r < 0)
                return r;
        (void)vgpu_ring_producer_publish(&g->req.ring);
        return vgpu_endpoint_notify(g->e);
}

/* Waits up to timeout_ms for one completion: 0 with *ret, -ECONNRESET when the host closed, -ETIMEDOUT. */
static int wait_completion(Guest *g, VgpuCompletionDesc *ret, int timeout_ms)
{
        struct pollfd p = { .fd = g->e->wait_fd, .events = POLLIN };

        for (int waited = 0; waited <= timeout_ms; waited += 20) {
                int r = vgpu_completion_pop(&g->cpl, ret);
                if (r >= 0) {
                        (void)vgpu_ring_consumer_release(&g->cpl.ring);
                        return 0;
                }
                if (r != -EAGAIN)
                        return r;
                if (closed(g))
                        return -ECONNRESET;
                (void)vgpu_ring_consumer_prepare_wait(&g->cpl.ring);
                if (poll(&p, 1, 20) > 0)
                        (void)vgpu_endpoint_ack(g->e);
        }
        return -ETIMEDOUT;
}

/* Sends one request and prints "<name> <status>" for its completion (or "<name> closed:<reason>"). */
static int call(Guest *g, const char *name, VgpuRequestDesc d, VgpuCompletionDesc *ret)
{
        VgpuCompletionDesc c = {};
        int r = send_request(g, &d);

        if (r >= 0)
                r = wait_completion(g, &c, 5000);
        if (r == -ECONNRESET)
                printf("%s closed:%s\n", name, status_name(close_reason(g)));
        else if (r < 0)
                printf("%s error:%s\n", name, strerror(-r));
        else
                printf("%s %s%s\n", name, status_name(c.status), c.seq == d.seq ? "" : " (wrong seq)");
        fflush(stdout);
        if (ret)
                *ret = c;
        return r;
}

static VgpuRequestDesc hello(uint16_t min, uint16_t max)
{
        return (VgpuRequestDesc){ .opcode = VGPU_OP_HELLO, .u.hello = { .version_min = min, .version_max = max } };
}

static VgpuRequestDesc mem_alloc(uint64_t size)
{
        return (VgpuRequestDesc){ .opcode = VGPU_OP_MEM_ALLOC, .u.mem_alloc = { .size = size } };
}

static int scenario_hello(Guest *g)
{
        VgpuCompletionDesc c;
        int r = call(g, "hello", hello(1, 1), &c);

        printf("version %u min %u\n", c.u.hello.version, c.u.hello.version_min);
        r = r < 0 ? r : call(g, "hello-mismatch", hello(7, 9), &c);
        printf("version %u min %u\n", c.u.hello.version, c.u.hello.version_min);
        return r;
}

static int scenario_lies(Guest *g)
{
        uint64_t area = g->e->geometry.data_size;
        VgpuRequestDesc d;

        call(g, "before-hello", mem_alloc(4096), NULL);
        call(g, "hello", hello(1, 1), NULL);
        call(g, "unknown-opcode", (VgpuRequestDesc){ .opcode = 99 }, NULL);
        d = mem_alloc(4096);
        d.flags = 1;
        call(g, "reserved-flags", d, NULL);
        d = mem_alloc(4096);
        d.u.raw[40] = 1;
        call(g, "reserved-operand-bytes", d, NULL);
        d = (VgpuRequestDesc){ .opcode = VGPU_OP_COPY_H2D,
                               .u.copy_host = { .handle = 1, .data_offset = area - 8, .length = 16 } };
        call(g, "offset-past-data-area", d, NULL);
        d.u.copy_host = (VgpuCopyHostArgs){ .handle = 1, .data_offset = UINT64_MAX - 4, .length = 16 };
        call(g, "offset-overflow", d, NULL);
        d = (VgpuRequestDesc){ .opcode = VGPU_OP_MODULE_LOAD,
                               .u.module_load = { .format = VGPU_MODULE_PTX, .length = VGPU_MODULE_SIZE_MAX + 1 } };
        call(g, "oversize-module", d, NULL);
        d = (VgpuRequestDesc){ .opcode = VGPU_OP_LAUNCH,
                               .u.launch = { .function = 1, .grid = { 1, 1, 1 }, .block = { 1, 1, 1 },
                                             .param_count = VGPU_LAUNCH_PARAMS_MAX + 1, .params_offset = 64 } };
        call(g, "oversize-param-count", d, NULL);
        call(g, "mem-alloc-zero", mem_alloc(0), NULL);
        return call(g, "still-open", hello(1, 1), NULL);
}

/* Publishes a producer index far past the ring: the host must close with PROTOCOL_VIOLATION. */
static int scenario_corrupt_index(Guest *g)
{
        VgpuRingControl *ctrl = &((VgpuChannelHeader *)g->e->region)->req;
        VgpuCompletionDesc c;

        call(g, "hello", hello(1, 1), NULL);
        __atomic_store_n(&ctrl->prod, __atomic_load_n(&ctrl->prod, __ATOMIC_RELAXED) + SLOTS + 7, __ATOMIC_RELEASE);
        (void)vgpu_endpoint_notify(g->e);
        int r = wait_completion(g, &c, 5000);
        printf("corrupt-index %s\n", r == -ECONNRESET ? status_name(close_reason(g)) : "not-closed");
        return 0;
}

/* Invalid requests without end, consuming every answer: past ingestd's limit the channel is closed. */
static int scenario_flood(Guest *g)
{
        VgpuCompletionDesc c;
        unsigned sent = 0;
        int r = 0;

        call(g, "hello", hello(1, 1), NULL);
        while (sent < 100000 && !closed(g)) {
                VgpuRequestDesc d = { .opcode = 99 };
                if (send_request(g, &d) < 0)
                        break;
                sent++;
                r = wait_completion(g, &c, 5000);
                if (r < 0)
                        break;
        }
        printf("flood %s after %u\n", closed(g) ? status_name(close_reason(g)) : "not-closed", sent);
        return 0;
}

/* Connects, says HELLO, then waits for the host to close the channel (or for SIGTERM). */
static int scenario_hold(Guest *g, int seconds, bool push_and_die)
{
        call(g, "hello", hello(1, 1), NULL);
        printf("ready\n");
        fflush(stdout);
        if (push_and_die) {
                /* A command in the ring, then gone without reading the answer. */
                for (int i = 0; i < 8; i++) {
                        VgpuRequestDesc d = mem_alloc(4096);
                        (void)send_request(g, &d);
                }
                raise(SIGKILL);
        }
        for (int i = 0; i < seconds * 50 && !closed(g); i++)
                usleep(20000);
        printf("hold %s\n", closed(g) ? status_name(close_reason(g)) : "still-open");
        return 0;
}

int main(int argc, char *argv[])
{
        const char *dir = getenv("VGPU_RUNTIME_DIR");
        Guest g = {};
        char path[108];
        int r;

        if (argc < 3 || !dir) {
                fprintf(stderr, "Usage: VGPU_RUNTIME_DIR=… ingest-guest SCENARIO VM_ID [SECONDS]\n");
                return 1;
        }
        if (vgpu_local_socket_path(dir, (uint32_t)strtoul(argv[2], NULL, 10), path, sizeof(path)) < 0)
                return 1;
        r = vgpu_local_guest_connect(path, REGION_SIZE, SLOTS, SLOTS, &g.e);
        if (r != 0) {
                printf("connect %s\n", r > 0 ? vgpu_local_refusal_to_string(r) : strerror(-r));
                return 1;
        }
        if (vgpu_channel_attach_guest(g.e->region, &g.e->geometry, &g.req, &g.cpl) < 0)
                return 1;
        if (streq(argv[1], "hello"))
                r = scenario_hello(&g);
        else if (streq(argv[1], "lies"))
                r = scenario_lies(&g);
        else if (streq(argv[1], "corrupt-index"))
                r = scenario_corrupt_index(&g);
        else if (streq(argv[1], "flood"))
                r = scenario_flood(&g);
        else if (streq(argv[1], "busy"))
                r = call(&g, "hello", hello(1, 1), NULL) < 0 ? -1 : call(&g, "mem-alloc", mem_alloc(4096), NULL);
        else if (streq(argv[1], "hold") || streq(argv[1], "die"))
                r = scenario_hold(&g, argc > 3 ? atoi(argv[3]) : 10, streq(argv[1], "die"));
        else {
                fprintf(stderr, "Unknown scenario %s\n", argv[1]);
                r = -EINVAL;
        }
        vgpu_endpoint_free(g.e);
        return r < 0 ? 1 : 0;
}
