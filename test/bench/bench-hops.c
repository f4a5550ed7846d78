/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The floor of the four-process path (measured): a message handed guest → ingestd → scheduler → executor
 * and back — six one-way hops between four processes — over this project's rings, local endpoints and
 * spin-then-block poller, with nothing else done. The "bare hand-offs" baseline the real path is compared
 * against. Prints p50/p99 of the round trip and of each hop, in blocking mode and in spin mode. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/channel.h"
#include "transport/local.h"
#include "transport/poller.h"
#include "vgpu-util.h"

#define REGION  (64u * 1024u)
#define STAMPS  7 /* 0 guest sends … 3 executor answers … 6 guest receives */
#define WARMUP  1000u
#define WAIT_MS 10000

static unsigned arg_round_trips = 20000;
static uint64_t arg_spin_usec = VGPU_POLLER_SPIN_USEC_DEFAULT;
static const char *arg_modes = "both";

static const char *const hop_names[STAMPS - 1] = {
        "guest→ingestd", "ingestd→sched", "sched→executor", "executor→sched", "sched→ingestd", "ingestd→guest",
};

/* One ring pair between two neighbouring processes: the upstream side is its "guest" end. */
typedef struct Link {
        void *region;
        VgpuEndpoint *down; /* downstream end (host role): waits for requests, notifies completions */
        VgpuEndpoint *up;   /* upstream end (guest role): waits for completions, notifies requests */
        VgpuRequestConsumer req_in;
        VgpuCompletionProducer cpl_out;
        VgpuRequestProducer req_out;
        VgpuCompletionConsumer cpl_in;
} Link;

static uint64_t (*stamps)[STAMPS]; /* shared by all four processes, indexed by seq */

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static int link_init(Link *l)
{
        int to_down = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), to_up = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        VgpuChannelGeometry g;
        int r;

        if (to_down < 0 || to_up < 0)
                return -errno;
        l->region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (l->region == MAP_FAILED)
                return -errno;
        r = vgpu_channel_format(l->region, REGION, 16, 16, &g);
        if (r >= 0)
                r = vgpu_local_endpoint_new(l->region, REGION, &g, to_down, to_up, &l->down);
        if (r >= 0)
                r = vgpu_local_endpoint_new(l->region, REGION, &g, fcntl(to_up, F_DUPFD_CLOEXEC, 3),
                                            fcntl(to_down, F_DUPFD_CLOEXEC, 3), &l->up);
        if (r >= 0)
                r = vgpu_channel_attach_host(l->region, &g, &l->req_in, &l->cpl_out);
        if (r >= 0)
                r = vgpu_channel_attach_guest(l->region, &g, &l->req_out, &l->cpl_in);
        return r;
}

static void link_done(Link *l)
{
        l->down = vgpu_endpoint_free(l->down);
        l->up = vgpu_endpoint_free(l->up);
        munmap(l->region, REGION);
}

/* ---- What each process does with what it receives ---- */

typedef struct Stage {
        Link *up, *down; /* up: towards the guest; down: towards the executor (NULL at the ends) */
        int req_stamp;   /* stamp written when a request arrives from up */
        int cpl_stamp;   /* stamp written when a completion arrives from down */
        uint64_t done;   /* completions passed on (guest: received); executor: requests answered */
} Stage;

static int publish_and_notify(int r, VgpuEndpoint *e)
{
        if (r > 0)
                r = vgpu_endpoint_notify(e);
        return r;
}

/* ingestd, scheduler: a request from up goes down; the executor answers it at once instead. */
static int on_request(void *userdata)
{
        Stage *s = userdata;
        VgpuRequestDesc d;
        int r;

        while ((r = vgpu_request_pop(&s->up->req_in, &d)) == 0) {
                stamps[d.seq][s->req_stamp] = now_ns();
                if (s->down) {
                        r = vgpu_request_push(&s->down->req_out, &d);
                } else {
                        r = vgpu_completion_push(&s->up->cpl_out, &(VgpuCompletionDesc){.seq = d.seq});
                        s->done++;
                }
                if (r < 0)
                        return r;
        }
        if (r != -EAGAIN)
                return r;
        (void)vgpu_ring_consumer_release(&s->up->req_in.ring); /* nobody waits for space: one in flight */
        if (s->down)
                return publish_and_notify(vgpu_ring_producer_publish(&s->down->req_out.ring), s->down->up);
        return publish_and_notify(vgpu_ring_producer_publish(&s->up->cpl_out.ring), s->up->down);
}

/* ingestd, scheduler: a completion from down goes up; the guest counts it. */
static int on_completion(void *userdata)
{
        Stage *s = userdata;
        VgpuCompletionDesc c;
        int r;

        while ((r = vgpu_completion_pop(&s->down->cpl_in, &c)) == 0) {
                stamps[c.seq][s->cpl_stamp] = now_ns();
                s->done++;
                if (s->up && (r = vgpu_completion_push(&s->up->cpl_out, &c)) < 0)
                        return r;
        }
        if (r != -EAGAIN)
                return r;
        (void)vgpu_ring_consumer_release(&s->down->cpl_in.ring);
        if (!s->up)
                return 0;
        return publish_and_notify(vgpu_ring_producer_publish(&s->up->cpl_out.ring), s->up->down);
}

static bool req_has_work(void *userdata)
{
        return vgpu_ring_consumer_has_work(&((Stage *)userdata)->up->req_in.ring);
}

static int req_prepare_wait(void *userdata)
{
        return vgpu_ring_consumer_prepare_wait(&((Stage *)userdata)->up->req_in.ring);
}

static bool cpl_has_work(void *userdata)
{
        return vgpu_ring_consumer_has_work(&((Stage *)userdata)->down->cpl_in.ring);
}

static int cpl_prepare_wait(void *userdata)
{
        return vgpu_ring_consumer_prepare_wait(&((Stage *)userdata)->down->cpl_in.ring);
}

static int stage_poller(Stage *s, uint64_t spin_usec, VgpuPoller **ret)
{
        VgpuPoller *p = NULL;
        int r;

        r = vgpu_poller_new(spin_usec, &p);
        if (r < 0)
                return r;
        if (s->up)
                r = vgpu_poller_add(p,
                                    &(VgpuPollerConsumer){.has_work = req_has_work,
                                                          .prepare_wait = req_prepare_wait,
                                                          .dispatch = on_request,
                                                          .endpoint = s->up->down,
                                                          .userdata = s},
                                    NULL);
        if (r >= 0 && s->down)
                r = vgpu_poller_add(p,
                                    &(VgpuPollerConsumer){.has_work = cpl_has_work,
                                                          .prepare_wait = cpl_prepare_wait,
                                                          .dispatch = on_completion,
                                                          .endpoint = s->down->up,
                                                          .userdata = s},
                                    NULL);
        if (r < 0) {
                vgpu_poller_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

/* ingestd, scheduler, executor: serve until the guest's last completion has passed through. */
static int run_stage(Stage *s, uint64_t spin_usec, uint64_t total)
{
        VgpuPoller *p = NULL;
        int r;

        if (stage_poller(s, spin_usec, &p) < 0)
                return 10;
        /* done: completions passed up, or (executor) requests answered. */
        while (s->done < total) {
                r = vgpu_poller_run_once(p, WAIT_MS);
                if (r == -ETIMEDOUT)
                        return 11;
                if (r < 0)
                        return 12;
        }
        vgpu_poller_free(p);
        return 0;
}

/* The guest: one request at a time, waits for its completion through its own poller. */
static int run_guest(Stage *s, uint64_t spin_usec, uint64_t total)
{
        VgpuPoller *p = NULL;

        if (stage_poller(s, spin_usec, &p) < 0)
                return 20;
        for (uint64_t seq = 0; seq < total; seq++) {
                stamps[seq][0] = now_ns();
                if (vgpu_request_push(&s->down->req_out, &(VgpuRequestDesc){.opcode = VGPU_OP_SYNC, .seq = seq}) < 0)
                        return 21;
                if (publish_and_notify(vgpu_ring_producer_publish(&s->down->req_out.ring), s->down->up) < 0)
                        return 22;
                while (s->done <= seq) {
                        int r = vgpu_poller_run_once(p, WAIT_MS);
                        if (r == -ETIMEDOUT || r < 0)
                                return 23;
                }
        }
        vgpu_poller_free(p);
        return 0;
}

/* ---- Measuring ---- */

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

static double percentile_us(uint64_t *v, size_t n, double q)
{
        qsort(v, n, sizeof(*v), cmp_u64);
        return (double)v[(size_t)(q * (double)(n - 1))] / 1000.0;
}

static void report(const char *mode, uint64_t total)
{
        size_t n = total - WARMUP;
        uint64_t *v = calloc(n, sizeof(*v));

        if (!v)
                exit(EXIT_FAILURE);
        for (size_t i = 0; i < n; i++)
                v[i] = stamps[WARMUP + i][STAMPS - 1] - stamps[WARMUP + i][0];
        printf("%-10s round trip   p50 %8.2f us  p99 %8.2f us\n", mode, percentile_us(v, n, 0.50),
               percentile_us(v, n, 0.99));
        for (int h = 0; h < STAMPS - 1; h++) {
                for (size_t i = 0; i < n; i++)
                        v[i] = stamps[WARMUP + i][h + 1] - stamps[WARMUP + i][h];
                printf("%-10s %-15s p50 %8.2f us  p99 %8.2f us\n", mode, hop_names[h], percentile_us(v, n, 0.50),
                       percentile_us(v, n, 0.99));
        }
        free(v);
}

/* Four processes over three links: guest |A| ingestd |B| scheduler |C| executor. */
static int run_mode(uint64_t spin_usec)
{
        uint64_t total = arg_round_trips + WARMUP;
        Link links[3] = {};
        Stage stages[4] = {
                {.down = &links[0], .cpl_stamp = 6},
                {.up = &links[0], .down = &links[1], .req_stamp = 1, .cpl_stamp = 5},
                {.up = &links[1], .down = &links[2], .req_stamp = 2, .cpl_stamp = 4},
                {.up = &links[2], .req_stamp = 3},
        };
        pid_t pids[4];
        int failed = 0;

        for (int i = 0; i < 3; i++)
                if (link_init(&links[i]) < 0)
                        return -1;
        for (int i = 0; i < 4; i++) {
                pids[i] = fork();
                if (pids[i] < 0)
                        return -1;
                if (pids[i] == 0)
                        _exit(i == 0 ? run_guest(&stages[0], spin_usec, total)
                                     : run_stage(&stages[i], spin_usec, total));
        }
        for (int i = 0; i < 4; i++) {
                int status = 0;

                if (waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                        fprintf(stderr, "process %d failed: status 0x%x\n", i, status);
                        failed = -1;
                }
        }
        for (int i = 0; i < 3; i++)
                link_done(&links[i]);
        return failed;
}

static int parse_argv(int argc, char **argv)
{
        static const struct option options[] = {
                {"round-trips", required_argument, NULL, 'n'},
                {"spin-usec", required_argument, NULL, 's'},
                {"mode", required_argument, NULL, 'm'},
                {},
        };
        int c;

        if (getenv("VGPU_SPIN_USEC") && vgpu_poller_spin_usec_from_environment(&arg_spin_usec) < 0)
                return -EINVAL;
        while ((c = getopt_long(argc, argv, "n:s:m:", options, NULL)) >= 0) {
                switch (c) {
                case 'n':
                        arg_round_trips = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 's':
                        if (vgpu_poller_spin_usec_policy(optarg, 0, &arg_spin_usec) < 0 || arg_spin_usec == 0)
                                return -EINVAL;
                        break;
                case 'm':
                        arg_modes = optarg;
                        break;
                default:
                        return -EINVAL;
                }
        }
        if (arg_round_trips < 100 ||
            !(streq(arg_modes, "both") || streq(arg_modes, "block") || streq(arg_modes, "spin")))
                return -EINVAL;
        return 0;
}

int main(int argc, char **argv)
{
        char spin_mode[32];
        size_t size;

        if (parse_argv(argc, argv) < 0) {
                fprintf(stderr,
                        "Usage: bench-hops [--round-trips N ≥ 100] [--spin-usec U > 0] [--mode both|block|spin]\n");
                return EXIT_FAILURE;
        }
        size = (size_t)(arg_round_trips + WARMUP) * sizeof(*stamps);
        stamps = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (stamps == MAP_FAILED)
                return EXIT_FAILURE;
        printf("bench-hops: %u round trips (after %u warm-up), 4 processes, 6 hops, %ld online CPUs\n", arg_round_trips,
               WARMUP, sysconf(_SC_NPROCESSORS_ONLN));
        if (!streq(arg_modes, "spin")) {
                if (run_mode(0) < 0)
                        return EXIT_FAILURE;
                report("block", arg_round_trips + WARMUP);
        }
        if (!streq(arg_modes, "block")) {
                snprintf(spin_mode, sizeof(spin_mode), "spin%" PRIu64 "us", arg_spin_usec);
                if (run_mode(arg_spin_usec) < 0)
                        return EXIT_FAILURE;
                report(spin_mode, arg_round_trips + WARMUP);
        }
        munmap(stamps, size);
        return EXIT_SUCCESS;
}
