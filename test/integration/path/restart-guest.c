/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* restart-guest VM_ID [MAX_BATCHES]: a guest for test-path-faults.sh that lives through its executor's deaths
 * on one connection: it keeps gemm launches outstanding, and when they fail it reports the status, checks
 * that a handle from before is refused, re-creates its state and checks a result, then goes on — until the
 * host answers UNAVAILABLE (the restart limit: it then keeps its connection open until SIGTERM, so the test
 * can look at the suspended VM) or MAX_BATCHES batches have run. One line per event on stdout:
 *   ready | error STATUS | old-handle STATUS | recovered | unavailable | done N | unexpected WHAT */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vgpu.h"

#define SIZE    192u /* one gemm: 7M multiply-adds, some ms on one core: the executor is nearly always busy */
#define LAUNCHES 8u  /* per batch, then a sync */

typedef struct State {
        VgpuMemHandle a, b, c;
        VgpuFunctionHandle gemm;
} State;

static VgpuClient *client;

/* One event line: "EVENT" or "EVENT DETAIL". */
static void say(const char *event, const char *detail)
{
        printf("%s%s%s\n", event, detail ? " " : "", detail ? detail : "");
        fflush(stdout);
}

static const char *status_name(int r)
{
        switch (r) {
        case 0:
                return "ok";
        case VGPU_E_STATE_LOST:
                return "state-lost";
        case VGPU_E_UNAVAILABLE:
                return "unavailable";
        case VGPU_E_NO_SUCH_HANDLE:
                return "no-such-handle";
        case VGPU_E_DEVICE_ERROR:
                return "device-error";
        default:
                return vgpu_strerror(r);
        }
}

/* A = B = ones: every element of C = A·B is SIZE, exactly. */
static int state_create(State *s)
{
        const size_t bytes = (size_t)SIZE * SIZE * sizeof(float);
        VgpuModuleHandle module;
        int r;

        if ((r = vgpu_mem_alloc(client, bytes, &s->a)) < 0 || (r = vgpu_mem_alloc(client, bytes, &s->b)) < 0 ||
            (r = vgpu_mem_alloc(client, bytes, &s->c)) < 0 || (r = vgpu_module_builtin(client, &module)) < 0 ||
            (r = vgpu_get_function(client, module, "gemm", &s->gemm)) < 0)
                return r;
        (void)vgpu_memset(client, s->a, 0, 0x3f800000u /* 1.0f */, 4, bytes);
        (void)vgpu_memset(client, s->b, 0, 0x3f800000u, 4, bytes);
        return vgpu_sync(client);
}

static int batch(const State *s)
{
        const VgpuParam p[] = {
                vgpu_param_buffer(s->a, 0), vgpu_param_buffer(s->b, 0), vgpu_param_buffer(s->c, 0),
                vgpu_param_u32(SIZE),       vgpu_param_u32(SIZE),       vgpu_param_u32(SIZE),
                vgpu_param_f32(1.0f),       vgpu_param_f32(0.0f),       vgpu_param_u32(0),
                vgpu_param_u32(0),
        };

        for (unsigned i = 0; i < LAUNCHES; i++)
                (void)vgpu_launch(client, s->gemm, VGPU_DIM3(1, 1, 1), VGPU_DIM3(1, 1, 1), 0, p, 10);
        return vgpu_sync(client);
}

static int result_check(const State *s)
{
        float row[SIZE];
        int r = batch(s);

        if (r >= 0)
                r = vgpu_memcpy_dtoh(client, row, s->c, 0, sizeof(row));
        if (r < 0)
                return r;
        for (unsigned i = 0; i < SIZE; i++)
                if (row[i] != (float)SIZE)
                        return -EIO;
        return 0;
}

/* After STATE_LOST: the old handle must be unknown to the fresh executor, then everything works again. 0
 * when recovered, 1 when the host answered UNAVAILABLE, -1 on anything unexpected. */
static int recover(State *s)
{
        int r;

        (void)vgpu_memset(client, s->c, 0, 0, 4, 64);
        r = vgpu_sync(client);
        say("old-handle", status_name(r));
        if (r == VGPU_E_UNAVAILABLE)
                return 1;
        if (r != VGPU_E_NO_SUCH_HANDLE)
                return -1;
        r = state_create(s);
        if (r >= 0)
                r = result_check(s);
        if (r == VGPU_E_UNAVAILABLE)
                return 1;
        if (r < 0) {
                say("unexpected", r == -EIO ? "wrong result" : status_name(r));
                return -1;
        }
        say("recovered", NULL);
        return 0;
}

int main(int argc, char *argv[])
{
        unsigned long batches = 0, max_batches = 0;
        VgpuConnectOptions o = {.timeout_ms = 20000, .data_size = 1u << 20};
        State s;
        int r;

        if (argc < 2) {
                fprintf(stderr, "Usage: restart-guest VM_ID [MAX_BATCHES]\n");
                return 2;
        }
        o.vm_id = (uint32_t)strtoul(argv[1], NULL, 10);
        if (argc > 2)
                max_batches = strtoul(argv[2], NULL, 10);
        r = vgpu_connect(&o, &client);
        if (r < 0) {
                fprintf(stderr, "restart-guest: %s\n", vgpu_last_error());
                return 1;
        }
        r = state_create(&s);
        if (r < 0) {
                say("unexpected", status_name(r));
                return 1;
        }
        say("ready", NULL);
        for (;;) {
                if (max_batches && batches >= max_batches) {
                        printf("done %lu\n", batches);
                        fflush(stdout);
                        break;
                }
                r = batch(&s);
                batches++;
                if (r >= 0)
                        continue;
                say("error", status_name(r));
                if (r == VGPU_E_UNAVAILABLE) {
                        say("unavailable", NULL);
                        break;
                }
                if (r != VGPU_E_STATE_LOST)
                        return 1;
                r = recover(&s);
                if (r < 0)
                        return 1;
                if (r > 0) {
                        say("unavailable", NULL);
                        break;
                }
        }
        if (r == VGPU_E_UNAVAILABLE || r > 0)
                for (;;)
                        pause(); /* until SIGTERM: the channel stays connected meanwhile */
        vgpu_disconnect(client);
        return 0;
}
