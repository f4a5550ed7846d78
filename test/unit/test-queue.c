/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The scheduler's run queue: strict priority between levels, FIFO within one, a VM's commands in order
 * whatever its priority does, the in-flight bound, the starvation guard (off unless asked for) and the
 * removal of a detached VM's queued commands. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "services/schedd/queue.h"

#define MS UINT64_C(1000000)

static void push(Queue *q, uint32_t vm, Priority p, uint64_t seq, uint64_t now)
{
        VgpuHostRequest r = {.req = {.opcode = VGPU_OP_SYNC, .seq = seq}, .vm_id = vm, .priority = (uint8_t)p,
                             .tag = seq, .generation = 1};

        ck_assert_int_eq(queue_push(q, &r, now), 0);
}

/* Picks one and completes it at once, so the in-flight bound never interferes. */
static uint64_t next_seq(Queue *q, uint64_t now)
{
        QueueItem it;

        ck_assert_msg(queue_pick(q, now, &it) == 1, "expected a command to dispatch");
        queue_complete(q);
        return it.req.req.seq;
}

static Queue *queue(unsigned max_in_flight, uint64_t starvation_ns)
{
        Queue *q = NULL;

        ck_assert_int_eq(queue_new(max_in_flight, starvation_ns, &q), 0);
        return q;
}

START_TEST(test_high_before_medium_before_low)
{
        Queue *q = queue(1, 0);

        push(q, 1, PRIORITY_LOW, 1, 0);
        push(q, 2, PRIORITY_MEDIUM, 2, 0);
        push(q, 3, PRIORITY_HIGH, 3, 0);
        ck_assert_uint_eq(queue_depth(q, PRIORITY_LOW), 1);
        ck_assert_uint_eq(next_seq(q, 0), 3);
        ck_assert_uint_eq(next_seq(q, 0), 2);
        ck_assert_uint_eq(next_seq(q, 0), 1);
        ck_assert_int_eq(queue_pick(q, 0, &(QueueItem){0}), 0);
        queue_free(q);
}
END_TEST

START_TEST(test_fifo_within_a_level_across_vms)
{
        Queue *q = queue(1, 0);

        for (uint64_t s = 1; s <= 6; s++)
                push(q, (uint32_t)(s % 3) + 1, PRIORITY_MEDIUM, s, 0);
        for (uint64_t s = 1; s <= 6; s++)
                ck_assert_uint_eq(next_seq(q, 0), s);
        queue_free(q);
}
END_TEST

START_TEST(test_raised_priority_does_not_overtake_the_vms_older_commands)
{
        Queue *q = queue(1, 0);
        QueueItem it;

        push(q, 1, PRIORITY_LOW, 1, 0);
        push(q, 1, PRIORITY_LOW, 2, 0);
        push(q, 2, PRIORITY_MEDIUM, 3, 0);
        push(q, 1, PRIORITY_HIGH, 4, 0); /* VM 1's priority rose */
        /* VM 1 is now high: its whole backlog goes first, oldest first, before VM 2's medium work. */
        ck_assert_int_eq(queue_pick(q, 0, &it), 1);
        ck_assert_uint_eq(it.req.req.seq, 1);
        ck_assert(it.inherited);
        queue_complete(q);
        ck_assert_uint_eq(next_seq(q, 0), 2);
        ck_assert_uint_eq(next_seq(q, 0), 4);
        ck_assert_uint_eq(next_seq(q, 0), 3);
        ck_assert_uint_eq(queue_inherited(q), 2);
        queue_free(q);
}
END_TEST

START_TEST(test_lowered_priority_keeps_the_vms_order)
{
        Queue *q = queue(1, 0);

        push(q, 1, PRIORITY_HIGH, 1, 0);
        push(q, 2, PRIORITY_MEDIUM, 2, 0);
        push(q, 1, PRIORITY_LOW, 3, 0);
        ck_assert_uint_eq(next_seq(q, 0), 1);
        ck_assert_uint_eq(next_seq(q, 0), 2);
        ck_assert_uint_eq(next_seq(q, 0), 3);
        queue_free(q);
}
END_TEST

START_TEST(test_in_flight_bound_holds_back_dispatch_until_a_completion)
{
        Queue *q = queue(2, 0);
        QueueItem it;

        for (uint64_t s = 1; s <= 4; s++)
                push(q, 1, PRIORITY_LOW, s, 0);
        ck_assert_int_eq(queue_pick(q, 0, &it), 1);
        ck_assert_int_eq(queue_pick(q, 0, &it), 1);
        ck_assert_uint_eq(queue_in_flight(q), 2);
        ck_assert_msg(queue_pick(q, 0, &it) == 0, "a third command left with max-in-flight 2");
        /* A late high command waits only for a slot, not for the low backlog. */
        push(q, 2, PRIORITY_HIGH, 9, 0);
        queue_complete(q);
        ck_assert_int_eq(queue_pick(q, 0, &it), 1);
        ck_assert_uint_eq(it.req.req.seq, 9);
        ck_assert_int_eq(queue_new(0, 0, &(Queue *){NULL}), -EINVAL);
        ck_assert_int_eq(queue_new(QUEUE_MAX_IN_FLIGHT_MAX + 1, 0, &(Queue *){NULL}), -EINVAL);
        queue_free(q);
}
END_TEST

START_TEST(test_starvation_guard_is_off_by_default)
{
        Queue *q = queue(1, 0);

        push(q, 1, PRIORITY_LOW, 1, 0);
        push(q, 2, PRIORITY_HIGH, 2, 1000 * MS);
        ck_assert_uint_eq(next_seq(q, 3600000 * MS), 2);
        ck_assert_uint_eq(queue_promoted(q), 0);
        queue_free(q);
}
END_TEST

START_TEST(test_starvation_guard_promotes_after_the_bound)
{
        Queue *q = queue(1, 100 * MS);
        QueueItem it;

        push(q, 1, PRIORITY_LOW, 1, 0);
        push(q, 2, PRIORITY_HIGH, 2, 50 * MS);
        push(q, 2, PRIORITY_HIGH, 3, 60 * MS);
        /* At 99 ms the low command has not waited past the bound: high goes first. */
        ck_assert_uint_eq(next_seq(q, 99 * MS), 2);
        /* At 100 ms it has: it goes before the remaining high command, and is marked promoted. */
        ck_assert_int_eq(queue_pick(q, 100 * MS, &it), 1);
        ck_assert_uint_eq(it.req.req.seq, 1);
        ck_assert(it.promoted);
        queue_complete(q);
        ck_assert_uint_eq(next_seq(q, 100 * MS), 3);
        ck_assert_uint_eq(queue_promoted(q), 1);
        queue_free(q);
}
END_TEST

typedef struct Removed {
        uint64_t seqs[8];
        size_t n;
} Removed;

static void collect(const QueueItem *item, void *userdata)
{
        Removed *r = userdata;

        r->seqs[r->n++] = item->req.req.seq;
}

START_TEST(test_removing_a_vm_completes_its_queued_commands_only)
{
        Queue *q = queue(1, 0);
        Removed removed = {0};

        push(q, 1, PRIORITY_LOW, 1, 0);
        push(q, 2, PRIORITY_LOW, 2, 0);
        push(q, 1, PRIORITY_HIGH, 3, 0);
        push(q, 1, PRIORITY_MEDIUM, 4, 0);
        ck_assert_uint_eq(queue_depth_vm(q, 1), 3);
        ck_assert_uint_eq(queue_remove_vm(q, 1, collect, &removed), 3);
        ck_assert_uint_eq(removed.n, 3);
        ck_assert_uint_eq(removed.seqs[0], 1);
        ck_assert_uint_eq(removed.seqs[1], 3);
        ck_assert_uint_eq(removed.seqs[2], 4);
        ck_assert_uint_eq(queue_depth_vm(q, 1), 0);
        ck_assert_uint_eq(queue_depth(q, PRIORITY_HIGH), 0);
        ck_assert_uint_eq(queue_depth(q, PRIORITY_LOW), 1);
        ck_assert_uint_eq(next_seq(q, 0), 2);
        ck_assert_uint_eq(queue_remove_vm(q, 7, collect, &removed), 0);
        queue_free(q);
}
END_TEST

START_TEST(test_bad_priority_is_refused)
{
        Queue *q = queue(1, 0);
        VgpuHostRequest r = {.vm_id = 1, .priority = 3};

        ck_assert_int_eq(queue_push(q, &r, 0), -EINVAL);
        ck_assert_uint_eq(queue_depth_vm(q, 1), 0);
        queue_free(q);
}
END_TEST

static Suite *queue_suite(void)
{
        Suite *s = suite_create("queue");
        TCase *t = tcase_create("queue");

        tcase_add_test(t, test_high_before_medium_before_low);
        tcase_add_test(t, test_fifo_within_a_level_across_vms);
        tcase_add_test(t, test_raised_priority_does_not_overtake_the_vms_older_commands);
        tcase_add_test(t, test_lowered_priority_keeps_the_vms_order);
        tcase_add_test(t, test_in_flight_bound_holds_back_dispatch_until_a_completion);
        tcase_add_test(t, test_starvation_guard_is_off_by_default);
        tcase_add_test(t, test_starvation_guard_promotes_after_the_bound);
        tcase_add_test(t, test_removing_a_vm_completes_its_queued_commands_only);
        tcase_add_test(t, test_bad_priority_is_refused);
        suite_add_tcase(s, t);
        return s;
}

int main(void)
{
        SRunner *r = srunner_create(queue_suite());
        int failed;

        srunner_run_all(r, CK_NORMAL);
        failed = srunner_ntests_failed(r);
        srunner_free(r);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
