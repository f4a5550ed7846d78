/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The request ring between two real processes over a shared memfd mapping: a million descriptors, spin then
 * sleep on eventfds, every byte checked. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "proto/channel.h"
#include "proto/ring.h"
#include "vgpu-util.h"

#define REGION_SIZE (64u * 1024u)

#define SHM_MESSAGES 1000000u
#define SHM_SPIN     64    /* polls before arming and sleeping */
#define SHM_WAIT_MS  10000 /* a wake-up later than this is a lost one */

typedef struct Peer {
        int wake_self;  /* eventfd this side sleeps on */
        int wake_other; /* eventfd the other side sleeps on */
        uint64_t sleeps;
} Peer;

static uint64_t mix(uint64_t x)
{
        x ^= x >> 33;
        x *= UINT64_C(0xff51afd7ed558ccd);
        x ^= x >> 33;
        return x;
}

static VgpuRequestDesc shm_request(uint64_t seq)
{
        VgpuRequestDesc d = {.opcode = VGPU_OP_SYNC, .seq = seq};
        uint64_t w[6];

        for (size_t k = 0; k < ELEMENTSOF(w); k++)
                w[k] = mix(seq * 7 + k);
        memcpy(d.u.raw, w, sizeof(w));
        return d;
}

static uint64_t checksum(const VgpuRequestDesc *d)
{
        const uint64_t *w = (const uint64_t *)d;
        uint64_t sum = 0;

        for (size_t k = 0; k < sizeof(*d) / 8; k++)
                sum = mix(sum ^ w[k]);
        return sum;
}

static void notify(const Peer *p, int r)
{
        ck_assert_int_ge(r, 0);
        if (r > 0)
                ck_assert_int_eq(eventfd_write(p->wake_other, 1), 0);
}

/* Sleeps until the other side notifies; a timeout means a lost wake-up. */
static bool sleep_until_notified(Peer *p)
{
        struct pollfd pfd = {.fd = p->wake_self, .events = POLLIN};
        eventfd_t v;

        p->sleeps++;
        if (poll(&pfd, 1, SHM_WAIT_MS) != 1)
                return false;
        return eventfd_read(p->wake_self, &v) == 0;
}

/* The host: checks every request against its sequence number, answers with a checksum of what it read. */
static int shm_host(void *region, size_t size, Peer *peer)
{
        VgpuChannelGeometry g;
        VgpuRequestConsumer req;
        VgpuCompletionProducer cpl;
        uint64_t expected = 0;
        int idle = 0;

        if (vgpu_channel_geometry_read(region, size, &g) < 0 || vgpu_channel_attach_host(region, &g, &req, &cpl) < 0)
                return 10;
        while (expected < SHM_MESSAGES) {
                bool progress = false;
                VgpuRequestDesc d, want;

                while (vgpu_ring_producer_space(&cpl.ring) > 0 && vgpu_request_pop(&req, &d) == 0) {
                        want = shm_request(expected);
                        if (memcmp(&d, &want, sizeof(d)) != 0)
                                return 11;
                        if (vgpu_completion_push(&cpl, &(VgpuCompletionDesc){.seq = d.seq,
                                                                             .opcode = d.opcode,
                                                                             .u.raw = {checksum(&d)}}) < 0)
                                return 12;
                        expected++;
                        progress = true;
                }
                notify(peer, vgpu_ring_consumer_release(&req.ring));
                notify(peer, vgpu_ring_producer_publish(&cpl.ring));
                if (progress || ++idle < SHM_SPIN) {
                        idle = progress ? 0 : idle;
                        continue;
                }
                idle = 0;
                if (vgpu_ring_producer_space(&cpl.ring) == 0 && vgpu_ring_producer_prepare_wait(&cpl.ring) != 0)
                        continue;
                if (vgpu_ring_consumer_prepare_wait(&req.ring) != 0)
                        continue;
                if (!sleep_until_notified(peer))
                        return 13;
        }
        return 0;
}

/* The guest: keeps the request ring full, checks every completion's order and checksum. */
static void shm_guest(void *region, const VgpuChannelGeometry *g, Peer *peer)
{
        VgpuRequestProducer req;
        VgpuCompletionConsumer cpl;
        uint64_t sent = 0, received = 0;
        int idle = 0;

        ck_assert_int_eq(vgpu_channel_attach_guest(region, g, &req, &cpl), 0);
        while (received < SHM_MESSAGES) {
                bool progress = false;
                VgpuCompletionDesc c;

                while (sent < SHM_MESSAGES) {
                        VgpuRequestDesc d = shm_request(sent);
                        int r = vgpu_request_push(&req, &d);
                        if (r == -EAGAIN)
                                break;
                        ck_assert_int_eq(r, 0);
                        sent++;
                        progress = true;
                }
                notify(peer, vgpu_ring_producer_publish(&req.ring));
                while (vgpu_completion_pop(&cpl, &c) == 0) {
                        VgpuRequestDesc d = shm_request(received);
                        ck_assert_msg(c.seq == received, "completion %" PRIu64 " out of order (%" PRIu64 ")", received,
                                      c.seq);
                        ck_assert_msg(c.u.raw[0] == checksum(&d), "checksum mismatch at %" PRIu64, received);
                        received++;
                        progress = true;
                }
                notify(peer, vgpu_ring_consumer_release(&cpl.ring));
                if (progress || ++idle < SHM_SPIN) {
                        idle = progress ? 0 : idle;
                        continue;
                }
                idle = 0;
                if (sent < SHM_MESSAGES && vgpu_ring_producer_prepare_wait(&req.ring) != 0)
                        continue;
                if (vgpu_ring_consumer_prepare_wait(&cpl.ring) != 0)
                        continue;
                ck_assert_msg(sleep_until_notified(peer), "guest: lost wake-up after %" PRIu64 " completions",
                              received);
        }
}

START_TEST(test_two_processes_move_a_million_descriptors_over_shared_memory)
{
        _cleanup_close_ int mfd = memfd_create("vgpu-test-ring", MFD_CLOEXEC);
        int to_host = eventfd(0, EFD_CLOEXEC), to_guest = eventfd(0, EFD_CLOEXEC), status = 0;
        VgpuChannelGeometry g;
        void *region;
        pid_t pid;

        ck_assert_int_ge(mfd, 0);
        ck_assert_int_ge(to_host, 0);
        ck_assert_int_ge(to_guest, 0);
        ck_assert_int_eq(ftruncate(mfd, REGION_SIZE), 0);
        region = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
        ck_assert(region != MAP_FAILED);

        /* Formatted before the fork, as a transport hands over a channel only once it is laid out. */
        ck_assert_int_eq(vgpu_channel_format(region, REGION_SIZE, 64, 64, &g), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                Peer host = {.wake_self = to_host, .wake_other = to_guest};
                _exit(shm_host(region, REGION_SIZE, &host));
        }

        Peer guest = {.wake_self = to_guest, .wake_other = to_host};
        shm_guest(region, &g, &guest);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "host side failed: status %d", status);
        fprintf(stderr, "\ntwo processes: %u round trips, guest slept %" PRIu64 " times\n", SHM_MESSAGES, guest.sleeps);
        munmap(region, REGION_SIZE);
        close(to_host);
        close(to_guest);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("ring-shm");
        TCase *tc = tcase_create("two-processes");
        SRunner *sr;
        int failed;

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_two_processes_move_a_million_descriptors_over_shared_memory);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
