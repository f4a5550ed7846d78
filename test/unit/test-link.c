/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The host link: the creator's layout reads back through the once-only geometry check, every lie in the
 * geometry line is refused, typed host requests and completions cross both rings, index violations stick,
 * and the start-up message carries its three fds and refuses anything else. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/link.h"

static void *region_new(size_t size)
{
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        ck_assert_ptr_ne(p, MAP_FAILED);
        return p;
}

START_TEST(test_formatted_link_reads_back_the_same_geometry)
{
        size_t size = vgpu_link_region_size(16, 8);
        void *region = region_new(size);
        VgpuLinkGeometry made, read;

        ck_assert_uint_eq(size % 4096, 0);
        ck_assert_uint_ge(size, sizeof(VgpuLinkHeader) + 16 * VGPU_HOST_REQUEST_SIZE + 8 * VGPU_HOST_COMPLETION_SIZE);
        ck_assert_int_eq(vgpu_link_format(region, size, 16, 8, &made), 0);
        ck_assert_int_eq(vgpu_link_geometry_read(region, size, &read), 0);
        ck_assert_mem_eq(&made, &read, sizeof(made));
        ck_assert_uint_eq(vgpu_link_region_size(3, 8), 0);
        ck_assert_uint_eq(vgpu_link_region_size(16, 8192), 0);
        ck_assert_int_eq(vgpu_link_format(region, size - 1, 16, 8, NULL), -EINVAL);
        ck_assert_int_eq(vgpu_link_format((uint8_t *)region + 8, size - 64, 16, 8, NULL), -EINVAL);
        munmap(region, size);
}
END_TEST

/* Each lie in the geometry line, one at a time: the attaching side must refuse it. */
START_TEST(test_every_lie_in_the_geometry_line_is_refused)
{
        size_t size = vgpu_link_region_size(16, 16);
        VgpuLinkHeader *h = region_new(size);
        VgpuLinkGeometry g;

        for (int lie = 0; lie < 12; lie++) {
                ck_assert_int_eq(vgpu_link_format(h, size, 16, 16, NULL), 0);
                switch (lie) {
                case 0: h->magic ^= 1; break;
                case 1: h->header_size = 64; break;
                case 2: h->region_size = size * 2; break;
                case 3: h->req_count = 15; break;
                case 4: h->cpl_count = 8192; break;
                case 5: h->req_slot_size = 64; break;
                case 6: h->cpl_slot_size = 128; break;
                case 7: h->req_offset = 8; break;
                case 8: h->cpl_offset = h->req_offset; break; /* overlapping rings */
                case 9: h->cpl_offset = (uint32_t)size - 64; break; /* past the end */
                case 10: h->flags = 1; break;
                case 11: h->req_count = 4096; break; /* does not fit the region */
                }
                ck_assert_msg(vgpu_link_geometry_read(h, size, &g) == -EPROTO, "lie %d accepted", lie);
        }
        ck_assert_int_eq(vgpu_link_format(h, size, 16, 16, NULL), 0);
        h->version = 2;
        ck_assert_int_eq(vgpu_link_geometry_read(h, size, &g), -EPROTONOSUPPORT);
        ck_assert_int_eq(vgpu_link_geometry_read(h, 100, &g), -EPROTO);
        munmap(h, size);
}
END_TEST

START_TEST(test_host_requests_and_completions_cross_both_rings_in_order)
{
        size_t size = vgpu_link_region_size(4, 4);
        void *region = region_new(size);
        VgpuHostRequestProducer rp;
        VgpuHostCompletionConsumer cc;
        VgpuHostRequestConsumer rc;
        VgpuHostCompletionProducer cp;
        VgpuLinkGeometry g;

        ck_assert_int_eq(vgpu_link_format(region, size, 4, 4, &g), 0);
        ck_assert_int_eq(vgpu_link_attach_scheduler(region, &g, &rp, &cc), 0);
        ck_assert_int_eq(vgpu_link_attach_executor(region, &g, &rc, &cp), 0);
        for (uint64_t i = 0; i < 100; i++) {
                VgpuHostRequest in = {.req = {.opcode = VGPU_OP_SYNC, .seq = i}, .vm_id = 5, .tag = i * 3,
                                      .generation = 2}, out;
                VgpuHostCompletion c;

                ck_assert_int_eq(vgpu_host_request_push(&rp, &in), 0);
                ck_assert_int_eq(vgpu_host_request_pop(&rc, &out), -EAGAIN); /* not published yet */
                vgpu_ring_producer_publish(&rp.ring);
                ck_assert_int_eq(vgpu_host_request_pop(&rc, &out), 0);
                ck_assert_mem_eq(&in, &out, sizeof(in));
                vgpu_ring_consumer_release(&rc.ring);
                ck_assert_int_eq(vgpu_host_completion_push(&cp, &(VgpuHostCompletion){.cpl.seq = i, .tag = out.tag}), 0);
                vgpu_ring_producer_publish(&cp.ring);
                ck_assert_int_eq(vgpu_host_completion_pop(&cc, &c), 0);
                ck_assert_uint_eq(c.tag, i * 3);
                vgpu_ring_consumer_release(&cc.ring);
        }
        munmap(region, size);
}
END_TEST

START_TEST(test_an_index_past_the_ring_is_a_sticky_protocol_violation)
{
        size_t size = vgpu_link_region_size(4, 4);
        VgpuLinkHeader *h = region_new(size);
        VgpuHostRequestConsumer rc;
        VgpuHostCompletionProducer cp;
        VgpuHostRequest r;
        VgpuLinkGeometry g;

        ck_assert_int_eq(vgpu_link_format(h, size, 4, 4, &g), 0);
        ck_assert_int_eq(vgpu_link_attach_executor(h, &g, &rc, &cp), 0);
        __atomic_store_n(&h->req.prod, 5u, __ATOMIC_RELEASE); /* five requests in four slots */
        ck_assert_int_eq(vgpu_host_request_pop(&rc, &r), -EPROTO);
        __atomic_store_n(&h->req.prod, 1u, __ATOMIC_RELEASE);
        ck_assert_int_eq(vgpu_host_request_pop(&rc, &r), -EPROTO);
        h->cpl.cons = 9; /* an attach sees inconsistent indices too */
        ck_assert_int_eq(vgpu_link_attach_executor(h, &g, &rc, &cp), -EPROTO);
        munmap(h, size);
}
END_TEST

START_TEST(test_start_message_carries_three_fds_and_refuses_anything_else)
{
        VgpuLinkStart s = {.magic = VGPU_LINK_START_MAGIC, .version = VGPU_LINK_VERSION, .size = sizeof(s),
                           .link_size = 4096, .vm_id = 3}, got;
        int sv[2], fds[3], e = eventfd(0, EFD_CLOEXEC);
        VgpuLinkReady ready;

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        ck_assert_int_eq(vgpu_link_start_send(sv[0], &s, e, e, e), 0);
        ck_assert_int_eq(vgpu_link_start_receive(sv[1], &got, fds), 0);
        ck_assert_uint_eq(got.vm_id, 3);
        for (int i = 0; i < 3; i++) {
                ck_assert_int_ge(fds[i], 0);
                ck_assert_int_eq(fcntl(fds[i], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
                close(fds[i]);
        }
        s.flags = 1;
        ck_assert_int_eq(vgpu_link_start_send(sv[0], &s, e, e, e), 0);
        ck_assert_int_eq(vgpu_link_start_receive(sv[1], &got, fds), -EBADMSG);
        ck_assert_int_eq(send(sv[0], &s, sizeof(s), 0), (ssize_t)sizeof(s)); /* no fds */
        ck_assert_int_eq(vgpu_link_start_receive(sv[1], &got, fds), -EBADMSG);

        ck_assert_int_eq(vgpu_link_ready_send(sv[1], 0, "cpu"), 0);
        ck_assert_int_eq(vgpu_link_ready_receive(sv[0], 1000, &ready), 0);
        ck_assert_str_eq(ready.backend, "cpu");
        ck_assert_int_eq(vgpu_link_ready_receive(sv[0], 10, &ready), -ETIMEDOUT);
        close(sv[1]);
        ck_assert_int_eq(vgpu_link_ready_receive(sv[0], 1000, &ready), -ECONNRESET);
        ck_assert_int_eq(vgpu_link_start_receive(sv[0], &got, fds), -ECONNRESET);
        close(sv[0]);
        close(e);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("link");
        TCase *t = tcase_create("link");
        SRunner *r;
        int failed;

        tcase_add_test(t, test_formatted_link_reads_back_the_same_geometry);
        tcase_add_test(t, test_every_lie_in_the_geometry_line_is_refused);
        tcase_add_test(t, test_host_requests_and_completions_cross_both_rings_in_order);
        tcase_add_test(t, test_an_index_past_the_ring_is_a_sticky_protocol_violation);
        tcase_add_test(t, test_start_message_carries_three_fds_and_refuses_anything_else);
        suite_add_tcase(s, t);
        r = srunner_create(s);
        srunner_run_all(r, CK_NORMAL);
        failed = srunner_ntests_failed(r);
        srunner_free(r);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
