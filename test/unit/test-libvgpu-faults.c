/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libvgpu when the host fails it (libvgpu-host.h): a host that closes the channel, is killed, or lies about
 * a completion makes every pending and later call fail with the right error, and none hangs. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libvgpu-host.h"
#include "vgpu-util.h"
#include "vgpu.h"

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
        Suite *s = suite_create("libvgpu-faults");
        TCase *tc = tcase_create("client");

        tcase_add_checked_fixture(tc, host_fixture_setup, host_fixture_teardown);
        tcase_set_timeout(tc, WATCHDOG_S + 10);
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
