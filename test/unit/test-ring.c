/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The descriptor ring and channel layout: order, wrap, notification suppression, and what happens when the
 * peer lies about an index or the geometry. (Two real processes over shared memory: test-ring-shm.c.) */
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

typedef struct Pair {
        void *region;
        VgpuChannelHeader *header;
        VgpuChannelGeometry geometry;
        VgpuRequestProducer guest;
        VgpuRequestConsumer host;
} Pair;

/* A formatted channel with its request ring attached from both ends, indices starting at `start`. */
static void pair_init(Pair *p, uint32_t req_count, uint32_t start)
{
        VgpuCompletionConsumer gc;
        VgpuCompletionProducer hc;

        p->region = aligned_alloc(4096, REGION_SIZE);
        ck_assert_ptr_nonnull(p->region);
        memset(p->region, 0, REGION_SIZE);
        ck_assert_int_eq(vgpu_channel_format(p->region, REGION_SIZE, req_count, 8, &p->geometry), 0);
        p->header = p->region;
        p->header->req.prod = p->header->req.cons = start;
        ck_assert_int_eq(vgpu_channel_attach_guest(p->region, &p->geometry, &p->guest, &gc), 0);
        ck_assert_int_eq(vgpu_channel_attach_host(p->region, &p->geometry, &p->host, &hc), 0);
}

static void pair_done(Pair *p)
{
        free(p->region);
}

static VgpuRequestDesc request(uint64_t seq)
{
        return (VgpuRequestDesc){.opcode = VGPU_OP_SYNC, .seq = seq, .u.raw = {(uint8_t)seq, 0xa5}};
}

START_TEST(test_descriptors_come_out_in_fifo_order)
{
        Pair p;
        VgpuRequestDesc d;

        pair_init(&p, 16, 0);
        for (uint64_t i = 0; i < 10; i++)
                ck_assert_int_eq(vgpu_request_push(&p.guest, &(VgpuRequestDesc){.seq = i}), 0);
        vgpu_ring_producer_publish(&p.guest.ring);
        for (uint64_t i = 0; i < 10; i++) {
                ck_assert_int_eq(vgpu_request_pop(&p.host, &d), 0);
                ck_assert_msg(d.seq == i, "descriptor %" PRIu64 " came out as %" PRIu64, i, d.seq);
        }
        ck_assert_int_eq(vgpu_request_pop(&p.host, &d), -EAGAIN);
        pair_done(&p);
}
END_TEST

START_TEST(test_unpublished_descriptors_are_invisible)
{
        Pair p;
        VgpuRequestDesc d;

        pair_init(&p, 4, 0);
        ck_assert_int_eq(vgpu_request_push(&p.guest, &(VgpuRequestDesc){.seq = 1}), 0);
        ck_assert(!vgpu_ring_consumer_has_work(&p.host.ring));
        ck_assert_int_eq(vgpu_request_pop(&p.host, &d), -EAGAIN);
        vgpu_ring_producer_publish(&p.guest.ring);
        ck_assert(vgpu_ring_consumer_has_work(&p.host.ring));
        ck_assert_int_eq(vgpu_request_pop(&p.host, &d), 0);
        pair_done(&p);
}
END_TEST

START_TEST(test_free_running_indices_wrap_past_uint32_max)
{
        Pair p;
        VgpuRequestDesc d, sent;
        uint64_t next_in = 0, next_out = 0;

        pair_init(&p, 8, UINT32_MAX - 20);
        /* 50 laps of a few descriptors each: prod and cons both cross 2^32 part-way. */
        for (int round = 0; round < 50; round++) {
                for (int k = 0; k < 5; k++) {
                        sent = request(next_in++);
                        ck_assert_int_eq(vgpu_request_push(&p.guest, &sent), 0);
                }
                vgpu_ring_producer_publish(&p.guest.ring);
                for (int k = 0; k < 5; k++) {
                        ck_assert_int_eq(vgpu_request_pop(&p.host, &d), 0);
                        sent = request(next_out++);
                        ck_assert_msg(memcmp(&d, &sent, sizeof(d)) == 0, "descriptor %" PRIu64 " garbled",
                                      next_out - 1);
                }
                ck_assert_int_ge(vgpu_ring_consumer_release(&p.host.ring), 0);
        }
        ck_assert_uint_lt(p.header->req.prod, 1000); /* it did wrap */
        pair_done(&p);
}
END_TEST

START_TEST(test_full_ring_refuses_a_push_until_a_slot_is_released)
{
        Pair p;
        VgpuRequestDesc d = request(0);

        pair_init(&p, 4, 0);
        ck_assert_int_eq(vgpu_ring_producer_space(&p.guest.ring), 4);
        for (int i = 0; i < 4; i++)
                ck_assert_int_eq(vgpu_request_push(&p.guest, &d), 0);
        ck_assert_int_eq(vgpu_request_push(&p.guest, &d), -EAGAIN);
        vgpu_ring_producer_publish(&p.guest.ring);

        /* Read but not released: the slot still belongs to the consumer. */
        ck_assert_int_eq(vgpu_request_pop(&p.host, &d), 0);
        ck_assert_int_eq(vgpu_request_push(&p.guest, &d), -EAGAIN);
        vgpu_ring_consumer_release(&p.host.ring);
        ck_assert_int_eq(vgpu_request_push(&p.guest, &d), 0);
        ck_assert_int_eq(vgpu_ring_producer_space(&p.guest.ring), 0);
        pair_done(&p);
}
END_TEST

START_TEST(test_a_batch_costs_one_notification_when_the_consumer_armed_once)
{
        Pair p;
        VgpuRequestDesc d = request(0);
        int notifications = 0;

        pair_init(&p, 64, 0);
        ck_assert_int_eq(vgpu_ring_consumer_prepare_wait(&p.host.ring), 0); /* armed, would sleep */
        for (int i = 0; i < 32; i++) {
                ck_assert_int_eq(vgpu_request_push(&p.guest, &d), 0);
                notifications += vgpu_ring_producer_publish(&p.guest.ring); /* one publish per descriptor */
        }
        ck_assert_msg(notifications == 1, "32 publishes sent %d notifications, want 1", notifications);

        /* The same holds for one publish of a whole batch. */
        for (int i = 0; i < 32; i++)
                ck_assert_int_eq(vgpu_request_pop(&p.host, &d), 0);
        vgpu_ring_consumer_release(&p.host.ring);
        ck_assert_int_eq(vgpu_ring_consumer_prepare_wait(&p.host.ring), 0);
        for (int i = 0; i < 32; i++)
                ck_assert_int_eq(vgpu_request_push(&p.guest, &d), 0);
        ck_assert_int_eq(vgpu_ring_producer_publish(&p.guest.ring), 1);
        pair_done(&p);
}
END_TEST

START_TEST(test_no_notification_when_the_consumer_did_not_ask)
{
        Pair p;
        VgpuRequestDesc d = request(0);

        pair_init(&p, 64, 0);
        for (int i = 0; i < 40; i++) {
                ck_assert_int_eq(vgpu_request_push(&p.guest, &d), 0);
                ck_assert_int_eq(vgpu_ring_producer_publish(&p.guest.ring), 0);
        }
        /* A consumer that is polling (has work) does not arm; the producer keeps quiet. */
        ck_assert_int_eq(vgpu_request_pop(&p.host, &d), 0);
        ck_assert_int_gt(vgpu_ring_consumer_prepare_wait(&p.host.ring), 0);
        ck_assert_int_eq(vgpu_request_push(&p.guest, &d), 0);
        ck_assert_int_eq(vgpu_ring_producer_publish(&p.guest.ring), 0);
        pair_done(&p);
}
END_TEST

START_TEST(test_final_check_sees_work_published_while_arming)
{
        Pair p;
        VgpuRequestDesc d = request(0);

        pair_init(&p, 8, 0);
        /* The producer published between the consumer's last look and its arming: prepare_wait must
         * report the work instead of letting the consumer sleep on it. */
        ck_assert_int_eq(vgpu_ring_consumer_available(&p.host.ring), 0);
        ck_assert_int_eq(vgpu_request_push(&p.guest, &d), 0);
        vgpu_ring_producer_publish(&p.guest.ring);
        ck_assert_int_eq(vgpu_ring_consumer_prepare_wait(&p.host.ring), 1);
        pair_done(&p);
}
END_TEST

START_TEST(test_a_waiting_producer_is_notified_once_a_slot_frees)
{
        Pair p;
        VgpuRequestDesc d = request(0);

        pair_init(&p, 4, 0);
        for (int i = 0; i < 4; i++)
                ck_assert_int_eq(vgpu_request_push(&p.guest, &d), 0);
        vgpu_ring_producer_publish(&p.guest.ring);
        ck_assert_int_eq(vgpu_request_pop(&p.host, &d), 0);
        ck_assert_int_eq(vgpu_ring_consumer_release(&p.host.ring), 0); /* nobody asked */

        ck_assert_int_eq(vgpu_request_push(&p.guest, &d), 0);
        vgpu_ring_producer_publish(&p.guest.ring);
        ck_assert_int_eq(vgpu_ring_producer_prepare_wait(&p.guest.ring), 0); /* full: armed */
        ck_assert_int_eq(vgpu_request_pop(&p.host, &d), 0);
        ck_assert_int_eq(vgpu_request_pop(&p.host, &d), 0);
        ck_assert_int_eq(vgpu_ring_consumer_release(&p.host.ring), 1);
        ck_assert_int_eq(vgpu_ring_producer_space(&p.guest.ring), 2);
        pair_done(&p);
}
END_TEST

START_TEST(test_a_producer_index_past_the_ring_size_is_a_violation)
{
        Pair p;
        VgpuRequestDesc d;

        pair_init(&p, 8, 100);
        /* The guest claims 9 descriptors in an 8-slot ring. */
        __atomic_store_n(&p.header->req.prod, 109u, __ATOMIC_RELEASE);
        ck_assert(vgpu_ring_consumer_has_work(&p.host.ring));
        memset(&d, 0x5a, sizeof(d));
        ck_assert_int_eq(vgpu_request_pop(&p.host, &d), -EPROTO);
        ck_assert_msg(d.seq == UINT64_C(0x5a5a5a5a5a5a5a5a), "a descriptor was copied from a bad ring");

        /* Sticky: putting the index back does not make the ring trusted again. */
        __atomic_store_n(&p.header->req.prod, 101u, __ATOMIC_RELEASE);
        ck_assert_int_eq(vgpu_request_pop(&p.host, &d), -EPROTO);
        ck_assert_int_eq(vgpu_ring_consumer_prepare_wait(&p.host.ring), -EPROTO);
        ck_assert_int_eq(vgpu_ring_consumer_release(&p.host.ring), -EPROTO);
        pair_done(&p);
}
END_TEST

START_TEST(test_a_producer_index_behind_the_consumer_or_moving_back_is_a_violation)
{
        Pair p;
        VgpuRequestDesc d = request(0);

        pair_init(&p, 8, 0);
        __atomic_store_n(&p.header->req.prod, UINT32_MAX, __ATOMIC_RELEASE); /* "cons is ahead of prod" */
        ck_assert_int_eq(vgpu_ring_consumer_available(&p.host.ring), -EPROTO);
        pair_done(&p);

        pair_init(&p, 8, 0);
        for (int i = 0; i < 3; i++)
                ck_assert_int_eq(vgpu_request_push(&p.guest, &d), 0);
        vgpu_ring_producer_publish(&p.guest.ring);
        ck_assert_int_eq(vgpu_ring_consumer_available(&p.host.ring), 3);
        __atomic_store_n(&p.header->req.prod, 2u, __ATOMIC_RELEASE); /* takes one back */
        ck_assert_int_eq(vgpu_ring_consumer_available(&p.host.ring), -EPROTO);
        pair_done(&p);
}
END_TEST

START_TEST(test_a_consumer_index_outside_its_window_is_a_violation)
{
        Pair p;
        VgpuRequestDesc d = request(0);

        pair_init(&p, 8, 0);
        ck_assert_int_eq(vgpu_request_push(&p.guest, &d), 0);
        vgpu_ring_producer_publish(&p.guest.ring);
        /* The consumer claims to have consumed two of one published descriptor. */
        __atomic_store_n(&p.header->req.cons, 2u, __ATOMIC_RELEASE);
        ck_assert_int_eq(vgpu_ring_producer_space(&p.guest.ring), -EPROTO);
        ck_assert_int_eq(vgpu_request_push(&p.guest, &d), -EPROTO);
        ck_assert_int_eq(vgpu_ring_producer_publish(&p.guest.ring), -EPROTO);
        pair_done(&p);
}
END_TEST

START_TEST(test_inconsistent_indices_are_refused_at_attach)
{
        Pair p;
        VgpuRequestConsumer c;

        pair_init(&p, 8, 0);
        p.header->req.prod = 9;
        ck_assert_int_eq(vgpu_ring_consumer_attach(&c.ring, &p.header->req, (uint8_t *)p.region + 4096, 8, 64),
                         -EPROTO);
        ck_assert_int_eq(vgpu_ring_consumer_attach(&c.ring, &p.header->req, (uint8_t *)p.region + 4096, 6, 64),
                         -EINVAL);
        pair_done(&p);
}
END_TEST

/* Formats a region (16 + 16 slots: request ring at 4096, completion ring at 8192, data area at 12288),
 * overwrites one header field with `value`, and returns what the attaching side says. */
static int geometry_after(size_t offset, size_t width, uint64_t value)
{
        void *region = aligned_alloc(4096, REGION_SIZE);
        VgpuChannelGeometry g;
        int r;

        ck_assert_ptr_nonnull(region);
        memset(region, 0, REGION_SIZE);
        ck_assert_int_eq(vgpu_channel_format(region, REGION_SIZE, 16, 16, &g), 0);
        ck_assert(g.req_offset == 4096 && g.cpl_offset == 8192 && g.data_offset == 12288);
        if (width > 0)
                memcpy((uint8_t *)region + offset, &value, width); /* little-endian host */
        r = vgpu_channel_geometry_read(region, REGION_SIZE, &g);
        free(region);
        return r;
}

#define FIELD(f) offsetof(VgpuChannelHeader, f), sizeof(((VgpuChannelHeader *)0)->f)

START_TEST(test_channel_geometry_is_checked_at_attach)
{
        static const struct {
                const char *what;
                size_t offset, width;
                uint64_t value;
                int want;
        } cases[] = {
                {"untouched", 0, 0, 0, 0},
                {"bad magic", FIELD(magic), VGPU_CHANNEL_MAGIC ^ 1, -EPROTO},
                {"newer layout", FIELD(layout_version), 2, -EPROTONOSUPPORT},
                {"other header size", FIELD(header_size), 512, -EPROTO},
                {"count not a power of two", FIELD(req_count), 12, -EPROTO},
                {"count too large", FIELD(cpl_count), 1u << 20, -EPROTO},
                {"ring past the end", FIELD(cpl_offset), REGION_SIZE - 64, -EPROTO},
                {"ring over the header", FIELD(req_offset), 64, -EPROTO},
                {"rings overlap", FIELD(cpl_offset), 4096 + 512, -EPROTO},
                {"data size overflows", FIELD(data_size), UINT64_MAX - 4095, -EPROTO},
                {"data over a ring", FIELD(data_offset), 8192, -EPROTO},
                {"region size lie", FIELD(region_size), 2 * REGION_SIZE, -EPROTO},
                {"unaligned ring", FIELD(cpl_offset), 8192 + 8, -EPROTO},
                {"unknown flag", FIELD(flags), 1, -EPROTO},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int r = geometry_after(cases[i].offset, cases[i].width, cases[i].value);
                ck_assert_msg(r == cases[i].want, "%s: got %d, want %d", cases[i].what, r, cases[i].want);
        }
}
END_TEST

START_TEST(test_geometry_is_not_read_again_after_attach)
{
        Pair p;
        VgpuRequestDesc d = request(7);

        pair_init(&p, 8, 0);
        /* The guest enlarges its ring after the host attached: the host keeps its own copy. */
        p.header->req_count = 4096;
        for (int i = 0; i < 8; i++)
                ck_assert_int_eq(vgpu_request_push(&p.guest, &d), 0);
        vgpu_ring_producer_publish(&p.guest.ring);
        __atomic_store_n(&p.header->req.prod, 9u, __ATOMIC_RELEASE);
        ck_assert_int_eq(vgpu_ring_consumer_available(&p.host.ring), -EPROTO);
        pair_done(&p);
}
END_TEST

/* ---- Two processes over a memfd ---- */

int main(void)
{
        Suite *s = suite_create("ring");
        TCase *tc = tcase_create("ring");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_descriptors_come_out_in_fifo_order);
        tcase_add_test(tc, test_unpublished_descriptors_are_invisible);
        tcase_add_test(tc, test_free_running_indices_wrap_past_uint32_max);
        tcase_add_test(tc, test_full_ring_refuses_a_push_until_a_slot_is_released);
        tcase_add_test(tc, test_a_batch_costs_one_notification_when_the_consumer_armed_once);
        tcase_add_test(tc, test_no_notification_when_the_consumer_did_not_ask);
        tcase_add_test(tc, test_final_check_sees_work_published_while_arming);
        tcase_add_test(tc, test_a_waiting_producer_is_notified_once_a_slot_frees);
        tcase_add_test(tc, test_a_producer_index_past_the_ring_size_is_a_violation);
        tcase_add_test(tc, test_a_producer_index_behind_the_consumer_or_moving_back_is_a_violation);
        tcase_add_test(tc, test_a_consumer_index_outside_its_window_is_a_violation);
        tcase_add_test(tc, test_inconsistent_indices_are_refused_at_attach);
        tcase_add_test(tc, test_channel_geometry_is_checked_at_attach);
        tcase_add_test(tc, test_geometry_is_not_read_again_after_attach);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
