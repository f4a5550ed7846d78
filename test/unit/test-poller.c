/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The spin-then-block poller over real rings and eventfds shared with fork()ed producers: work on any of
 * many rings is found, a batch costs one wake-up, a long ping-pong loses no wake-up in either mode, and a
 * spin never outlives its budget. Timing is asserted only through counters and generous bounds. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
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

#define REGION     (64u * 1024u)
#define RINGS      64
#define WAIT_MS    10000
#define PING_PONGS 200000u

/* One channel with both ends in this address space (MAP_SHARED, so fork()ed children share it). */
typedef struct Channel {
        void *region;
        VgpuChannelGeometry g;
        VgpuEndpoint *host, *guest;
        VgpuRequestConsumer req;     /* host end */
        VgpuCompletionProducer cpl;  /* host end */
        VgpuRequestProducer greq;    /* guest end */
        VgpuCompletionConsumer gcpl; /* guest end */
        uint64_t popped, last_seq;
} Channel;

static void channel_init(Channel *c)
{
        int to_host = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), to_guest = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

        ck_assert_int_ge(to_host, 0);
        ck_assert_int_ge(to_guest, 0);
        *c = (Channel){};
        c->region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        ck_assert(c->region != MAP_FAILED);
        ck_assert_int_eq(vgpu_channel_format(c->region, REGION, 16, 16, &c->g), 0);
        ck_assert_int_eq(vgpu_local_endpoint_new(c->region, REGION, &c->g, to_host, to_guest, &c->host), 0);
        ck_assert_int_eq(vgpu_local_endpoint_new(c->region, REGION, &c->g, fcntl(to_guest, F_DUPFD_CLOEXEC, 3),
                                                 fcntl(to_host, F_DUPFD_CLOEXEC, 3), &c->guest),
                         0);
        ck_assert_int_eq(vgpu_channel_attach_host(c->region, &c->g, &c->req, &c->cpl), 0);
        ck_assert_int_eq(vgpu_channel_attach_guest(c->region, &c->g, &c->greq, &c->gcpl), 0);
}

static void channel_done(Channel *c)
{
        c->host = vgpu_endpoint_free(c->host);
        c->guest = vgpu_endpoint_free(c->guest);
        munmap(c->region, REGION);
}

/* Guest side: one request, published, notified when the host asked for it. Returns the notifications. */
static int guest_send(Channel *c, uint64_t seq)
{
        int r;

        if (vgpu_request_push(&c->greq, &(VgpuRequestDesc){.opcode = VGPU_OP_SYNC, .seq = seq}) < 0)
                return -1;
        r = vgpu_ring_producer_publish(&c->greq.ring);
        if (r > 0 && vgpu_endpoint_notify(c->guest) < 0)
                return -1;
        return r;
}

/* ---- The host's consumer callbacks: drain the request ring ---- */

static bool req_has_work(void *userdata)
{
        Channel *c = userdata;
        return vgpu_ring_consumer_has_work(&c->req.ring);
}

static int req_prepare_wait(void *userdata)
{
        Channel *c = userdata;
        return vgpu_ring_consumer_prepare_wait(&c->req.ring);
}

static int req_drain(void *userdata)
{
        Channel *c = userdata;
        VgpuRequestDesc d;
        int r;

        while ((r = vgpu_request_pop(&c->req, &d)) == 0) {
                c->popped++;
                c->last_seq = d.seq;
        }
        if (r != -EAGAIN)
                return r;
        r = vgpu_ring_consumer_release(&c->req.ring);
        return r < 0 ? r : 0;
}

static void add_request_consumer(VgpuPoller *p, Channel *c)
{
        VgpuPollerConsumer pc = {.has_work = req_has_work,
                                 .prepare_wait = req_prepare_wait,
                                 .dispatch = req_drain,
                                 .endpoint = c->host,
                                 .userdata = c};

        ck_assert_int_eq(vgpu_poller_add(p, &pc, NULL), 0);
}

static int wait_child(pid_t pid)
{
        int status = 0;

        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

START_TEST(test_policy_blocks_below_four_cpus_and_spins_otherwise)
{
        VgpuPoller *p = NULL;
        uint64_t usec = 99;

        ck_assert_int_eq(vgpu_poller_spin_usec_policy(NULL, 2, &usec), 0);
        ck_assert_uint_eq(usec, 0);
        ck_assert_int_eq(vgpu_poller_spin_usec_policy(NULL, 3, &usec), 0);
        ck_assert_uint_eq(usec, 0);
        ck_assert_int_eq(vgpu_poller_spin_usec_policy(NULL, 16, &usec), 0);
        ck_assert_uint_eq(usec, VGPU_POLLER_SPIN_USEC_DEFAULT);
        ck_assert_int_eq(vgpu_poller_spin_usec_policy("7", 2, &usec), 0);
        ck_assert_uint_eq(usec, 7);
        ck_assert_int_eq(vgpu_poller_spin_usec_policy("0", 64, &usec), 0);
        ck_assert_uint_eq(usec, 0);
        ck_assert_int_eq(vgpu_poller_spin_usec_policy("-5", 64, &usec), -EINVAL);
        ck_assert_int_eq(vgpu_poller_spin_usec_policy("50us", 64, &usec), -EINVAL);
        ck_assert_int_eq(vgpu_poller_spin_usec_policy("99999999", 64, &usec), -EINVAL);

        ck_assert_int_eq(vgpu_poller_new(50, &p), 0);
        ck_assert_str_eq(vgpu_poller_mode(p), "spin 50us");
        p = vgpu_poller_free(p);
        ck_assert_int_eq(vgpu_poller_new(0, &p), 0);
        ck_assert_str_eq(vgpu_poller_mode(p), "block");
        p = vgpu_poller_free(p);
}
END_TEST

/* The child puts one request on ring order[k], waits until the parent says it saw it, next ring. */
static int producer_over_many_rings(Channel *ch, const unsigned *order, int go_fd)
{
        for (unsigned k = 0; k < RINGS; k++) {
                char byte;

                if (guest_send(&ch[order[k]], 1000 + order[k]) < 0)
                        return 10;
                if (read(go_fd, &byte, 1) != 1)
                        return 11;
        }
        return 0;
}

static void work_on_any_ring_is_found(uint64_t spin_usec)
{
        static Channel ch[RINGS];
        unsigned order[RINGS];
        VgpuPoller *p = NULL;
        int go[2];
        pid_t pid;

        for (unsigned i = 0; i < RINGS; i++) {
                channel_init(&ch[i]);
                order[i] = (i * 37 + 11) % RINGS; /* 37 is prime to 64: a permutation */
        }
        ck_assert_int_eq(vgpu_poller_new(spin_usec, &p), 0);
        for (unsigned i = 0; i < RINGS; i++)
                add_request_consumer(p, &ch[i]);
        ck_assert_int_eq(pipe2(go, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
                _exit(producer_over_many_rings(ch, order, go[0]));

        for (unsigned k = 0; k < RINGS; k++) {
                Channel *want = &ch[order[k]];
                int r = vgpu_poller_run_once(p, WAIT_MS);

                while (r == 0) /* a stale notification from an earlier arming: go round again */
                        r = vgpu_poller_run_once(p, WAIT_MS);
                ck_assert_msg(r == 1, "round %u: run_once returned %d", k, r);
                ck_assert_msg(want->popped == 1 && want->last_seq == 1000 + order[k],
                              "ring %u: popped %" PRIu64 " (seq %" PRIu64 ")", order[k], want->popped, want->last_seq);
                ck_assert_int_eq(write(go[1], "g", 1), 1);
        }
        ck_assert_int_eq(wait_child(pid), 0);
        fprintf(stderr, "64 rings, %s: %" PRIu64 " sleeps, %" PRIu64 " wake-ups, %" PRIu64 " found spinning\n",
                vgpu_poller_mode(p), vgpu_poller_stats(p)->sleeps, vgpu_poller_stats(p)->wakeups,
                vgpu_poller_stats(p)->found_spinning);
        vgpu_poller_free(p);
        for (unsigned i = 0; i < RINGS; i++)
                channel_done(&ch[i]);
        close(go[0]);
        close(go[1]);
}

START_TEST(test_work_on_any_of_64_rings_is_found_when_blocking)
{
        work_on_any_ring_is_found(0);
}
END_TEST

START_TEST(test_work_on_any_of_64_rings_is_found_when_spinning)
{
        work_on_any_ring_is_found(200);
}
END_TEST

START_TEST(test_a_batch_costs_one_wake_up)
{
        Channel c;
        VgpuPoller *p = NULL;
        pid_t pid;

        channel_init(&c);
        ck_assert_int_eq(vgpu_poller_new(0, &p), 0);
        add_request_consumer(p, &c);
        /* Arms the ring and finds nothing. */
        ck_assert_int_eq(vgpu_poller_run_once(p, 0), -ETIMEDOUT);

        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int notified = 0;

                usleep(20 * 1000); /* most likely after the parent is asleep; either order must pass */
                for (uint64_t seq = 0; seq < 16; seq++)
                        if (vgpu_request_push(&c.greq, &(VgpuRequestDesc){.opcode = VGPU_OP_SYNC, .seq = seq}) < 0)
                                _exit(100);
                /* One publish for the batch: the event index lies inside it once, so one notification. */
                if (vgpu_ring_producer_publish(&c.greq.ring) > 0) {
                        notified++;
                        if (vgpu_endpoint_notify(c.guest) < 0)
                                _exit(101);
                }
                _exit(notified);
        }
        /* One round drains the batch with one dispatch, after one wake-up (or none, when the batch
         * landed before the final check). */
        ck_assert_int_eq(vgpu_poller_run_once(p, WAIT_MS), 1);
        ck_assert_int_eq(wait_child(pid), 1);
        ck_assert_uint_eq(c.popped, 16);
        ck_assert_uint_eq(vgpu_poller_stats(p)->wakeups + vgpu_poller_stats(p)->found_arming, 1);
        ck_assert_uint_eq(vgpu_poller_stats(p)->dispatches, 1);
        fprintf(stderr, "batch of 16: %" PRIu64 " wake-up(s), %" PRIu64 " sleeps\n", vgpu_poller_stats(p)->wakeups,
                vgpu_poller_stats(p)->sleeps);
        vgpu_poller_free(p);
        channel_done(&c);
}
END_TEST

/* ---- Ping-pong: a host poller answers, a guest poller sends the next request on each answer ---- */

static int host_answer(void *userdata)
{
        Channel *c = userdata;
        VgpuRequestDesc d;
        int r;

        while ((r = vgpu_request_pop(&c->req, &d)) == 0) {
                c->popped++;
                if (vgpu_completion_push(&c->cpl, &(VgpuCompletionDesc){.seq = d.seq, .opcode = d.opcode}) < 0)
                        return -EIO;
        }
        if (r != -EAGAIN)
                return r;
        if (vgpu_ring_consumer_release(&c->req.ring) > 0 && vgpu_endpoint_notify(c->host) < 0)
                return -EIO;
        r = vgpu_ring_producer_publish(&c->cpl.ring);
        if (r > 0)
                r = vgpu_endpoint_notify(c->host);
        return r;
}

static bool cpl_has_work(void *userdata)
{
        Channel *c = userdata;
        return vgpu_ring_consumer_has_work(&c->gcpl.ring);
}

static int cpl_prepare_wait(void *userdata)
{
        Channel *c = userdata;
        return vgpu_ring_consumer_prepare_wait(&c->gcpl.ring);
}

/* Guest: each completion must carry the next sequence number; it triggers the next request. */
static int guest_next(void *userdata)
{
        Channel *c = userdata;
        VgpuCompletionDesc d;
        int r;

        while ((r = vgpu_completion_pop(&c->gcpl, &d)) == 0) {
                if (d.seq != c->popped)
                        return -EBADMSG;
                c->popped++;
                /* Hand the slot back before asking for more: a fast host could otherwise answer faster
                 * than this loop releases and fill the completion ring. */
                r = vgpu_ring_consumer_release(&c->gcpl.ring);
                if (r < 0)
                        return r;
                if (c->popped < PING_PONGS && guest_send(c, c->popped) < 0)
                        return -EIO;
        }
        if (r != -EAGAIN)
                return r;
        r = vgpu_ring_consumer_release(&c->gcpl.ring);
        return r < 0 ? r : 0;
}

static int ping_pong_guest(Channel *c, uint64_t spin_usec)
{
        VgpuPollerConsumer pc = {.has_work = cpl_has_work,
                                 .prepare_wait = cpl_prepare_wait,
                                 .dispatch = guest_next,
                                 .endpoint = c->guest,
                                 .userdata = c};
        VgpuPoller *p = NULL;

        c->popped = 0;
        if (vgpu_poller_new(spin_usec, &p) < 0 || vgpu_poller_add(p, &pc, NULL) < 0)
                return 10;
        if (guest_send(c, 0) < 0)
                return 11;
        while (c->popped < PING_PONGS) {
                int r = vgpu_poller_run_once(p, WAIT_MS);
                if (r == -ETIMEDOUT)
                        return 12; /* a lost wake-up */
                if (r < 0)
                        return 13;
        }
        vgpu_poller_free(p);
        return 0;
}

static void ping_pong(uint64_t spin_usec)
{
        Channel c;
        VgpuPollerConsumer pc;
        VgpuPoller *p = NULL;
        struct timespec t0, t1;
        const VgpuPollerStats *st;
        pid_t pid;

        channel_init(&c);
        ck_assert_int_eq(vgpu_poller_new(spin_usec, &p), 0);
        pc = (VgpuPollerConsumer){.has_work = req_has_work,
                                  .prepare_wait = req_prepare_wait,
                                  .dispatch = host_answer,
                                  .endpoint = c.host,
                                  .userdata = &c};
        ck_assert_int_eq(vgpu_poller_add(p, &pc, NULL), 0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
                _exit(ping_pong_guest(&c, spin_usec));
        while (c.popped < PING_PONGS) {
                int r = vgpu_poller_run_once(p, WAIT_MS);
                ck_assert_msg(r != -ETIMEDOUT, "host: lost wake-up after %" PRIu64 " requests", c.popped);
                ck_assert_msg(r >= 0, "host: run_once: %s", strerror(-r));
        }
        ck_assert_int_eq(wait_child(pid), 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        st = vgpu_poller_stats(p);
        fprintf(stderr,
                "ping-pong %s: %u round trips in %.2f s; host: %" PRIu64 " sleeps, %" PRIu64 " found spinning, %" PRIu64
                " found arming\n",
                vgpu_poller_mode(p), PING_PONGS,
                (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, st->sleeps,
                st->found_spinning, st->found_arming);
        vgpu_poller_free(p);
        channel_done(&c);
}

START_TEST(test_no_lost_wake_up_in_200000_ping_pongs_when_blocking)
{
        ping_pong(0);
}
END_TEST

START_TEST(test_no_lost_wake_up_in_200000_ping_pongs_when_spinning)
{
        ping_pong(VGPU_POLLER_SPIN_USEC_DEFAULT);
}
END_TEST

START_TEST(test_spin_mode_blocks_once_its_budget_is_spent)
{
        const uint64_t budget_usec = 2000;
        const VgpuPollerStats *st;
        VgpuPoller *p = NULL;
        Channel c;

        channel_init(&c);
        ck_assert_int_eq(vgpu_poller_new(budget_usec, &p), 0);
        add_request_consumer(p, &c);
        for (int i = 0; i < 5; i++)
                ck_assert_int_eq(vgpu_poller_run_once(p, 20), -ETIMEDOUT);
        st = vgpu_poller_stats(p);
        /* Every idle round ended in epoll_wait: the spin gave up. */
        ck_assert_uint_eq(st->sleeps, 5);
        ck_assert_uint_eq(st->found_spinning, 0);
        /* It spun the whole budget, and not wildly past it (generous: a preempted spinner overshoots). */
        ck_assert_uint_ge(st->spin_ns_max, budget_usec * 1000);
        ck_assert_msg(st->spin_ns_max < UINT64_C(1000000000), "one spin lasted %" PRIu64 " ns", st->spin_ns_max);
        vgpu_poller_free(p);
        channel_done(&c);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("poller");
        TCase *tc = tcase_create("poller");
        SRunner *sr;
        int failed;

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_policy_blocks_below_four_cpus_and_spins_otherwise);
        tcase_add_test(tc, test_work_on_any_of_64_rings_is_found_when_blocking);
        tcase_add_test(tc, test_work_on_any_of_64_rings_is_found_when_spinning);
        tcase_add_test(tc, test_a_batch_costs_one_wake_up);
        tcase_add_test(tc, test_no_lost_wake_up_in_200000_ping_pongs_when_blocking);
        tcase_add_test(tc, test_no_lost_wake_up_in_200000_ping_pongs_when_spinning);
        tcase_add_test(tc, test_spin_mode_blocks_once_its_budget_is_spent);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
