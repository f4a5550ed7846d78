/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The boot settings that turn the IOMMU on in strict mode: the command line rules, the GRUB defaults file
 * (backed up, replaced atomically, left alone when nothing changes or when it is more than plain words),
 * and XCP-ng's xen-cmdline, played by a recording script in a copied Xen tree. */
#include <check.h>
#include <glob.h>
#include <sys/stat.h>

#include "boot-settings.h"
#include "test-iommu-util.h"

static void assert_linux_rule(const char *cmdline, const char *vendor, const char *proposed, const char *add,
                              bool changed)
{
        char *p = NULL, **a = NULL, *joined = strdup("");
        bool c;

        ck_assert_int_eq(boot_cmdline_linux(cmdline, vendor, &p, &a, &c), 0);
        ck_assert_msg(streq(p, proposed), "'%s' became '%s', not '%s'", cmdline, p, proposed);
        for (char **w = a; *w; w++) {
                char *t;
                ck_assert(asprintf(&t, "%s%s%s", joined, *joined ? " " : "", *w) > 0);
                free(joined);
                joined = t;
        }
        ck_assert_msg(streq(joined, add), "'%s' adds '%s', not '%s'", cmdline, joined, add);
        ck_assert(c == changed);
        free(p);
        free(joined);
        strv_free(a);
}

START_TEST(test_linux_rule_turns_the_iommu_on_and_strict)
{
        assert_linux_rule("quiet splash", "intel", "quiet splash intel_iommu=on iommu.strict=1",
                          "intel_iommu=on iommu.strict=1", true);
        assert_linux_rule("intel_iommu=off iommu=pt iommu.strict=0 quiet", "intel", "intel_iommu=on quiet iommu.strict=1",
                          "intel_iommu=on iommu.strict=1", true);
        assert_linux_rule("intel_iommu=on iommu.strict=1", "intel", "intel_iommu=on iommu.strict=1", "", false);
        assert_linux_rule("intel_iommu=on,sm_on iommu.passthrough=1 iommu.strict=1", "intel",
                          "intel_iommu=on,sm_on iommu.strict=1", "", true);
        /* AMD-Vi is on by default; 6.1 answers amd_iommu=on with "Unknown option", so nothing is added for it. */
        assert_linux_rule("amd_iommu=off quiet", "amd", "quiet iommu.strict=1", "iommu.strict=1", true);
        assert_linux_rule("", "unknown", "iommu.strict=1", "iommu.strict=1", true);
}
END_TEST

START_TEST(test_xen_rule_forces_the_iommu_and_strict_dom0)
{
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "iommu=verbose dom0-iommu=strict", "iommu=verbose,force dom0-iommu=strict" },
                { "iommu=force dom0-iommu=strict", "iommu=force dom0-iommu=strict" },
                { "dom0-iommu=relaxed,map-reserved", "dom0-iommu=map-reserved,strict iommu=force" },
                { "iommu=0", "iommu=force dom0-iommu=strict" },
                { "", "iommu=force dom0-iommu=strict" },
                { "dom0_mem=768M iommu=required dom0-iommu=passthrough", "dom0_mem=768M iommu=required dom0-iommu=strict" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *p = NULL, **a = NULL;
                bool c;

                ck_assert_int_eq(boot_cmdline_xen(cases[i].in, &p, &a, &c), 0);
                ck_assert_msg(streq(p, cases[i].out), "'%s' became '%s', not '%s'", cases[i].in, p, cases[i].out);
                ck_assert(c == !streq(cases[i].in, cases[i].out));
                free(p);
                strv_free(a);
        }
}
END_TEST

static const char grub_text[] = "# Defaults for grub\n"
                                "GRUB_DEFAULT=0\n"
                                "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n"
                                "GRUB_CMDLINE_LINUX=\"console=ttyS0 iommu=pt\"\n"
                                "GRUB_TIMEOUT=5\n";

static size_t count_backups(const char *dir, const char *rel)
{
        char *pattern;
        glob_t g;
        size_t n;

        ck_assert(asprintf(&pattern, "%s/%s.vgpu-backup-*", dir, rel) > 0);
        n = glob(pattern, 0, NULL, &g) == 0 ? g.gl_pathc : 0;
        if (n)
                globfree(&g);
        free(pattern);
        return n;
}

START_TEST(test_grub_defaults_are_backed_up_and_rewritten_once)
{
        char *dir = tree_new(recorded_tree("intel-vtd")), why[IOMMU_WHY_MAX] = "", *text, *backup_text;
        BootSettings s;
        BootApplyResult res;
        Host h;

        tree_write(dir, "etc/default/grub", grub_text);
        host_open(&h, dir);
        ck_assert_int_eq(boot_settings_get(&h, NULL, &s, why), 0);
        ck_assert_str_eq(s.current, "console=ttyS0 iommu=pt");
        ck_assert_str_eq(s.proposed, "console=ttyS0 intel_iommu=on iommu.strict=1");
        ck_assert(s.change_needed);
        /* The recorded kernel runs with intel_iommu=on iommu.strict=1 already. */
        ck_assert(!s.reboot_required);
        ck_assert(strstr(s.target, "/etc/default/grub (then run update-grub)"));
        boot_settings_done(&s);

        ck_assert_int_eq(boot_settings_apply(&h, NULL, &res, why), 0);
        ck_assert(res.changed);
        ck_assert(strstr(res.backup, "/etc/default/grub.vgpu-backup-"));
        text = tree_read(dir, "etc/default/grub");
        ck_assert_str_eq(text, "# Defaults for grub\n"
                               "GRUB_DEFAULT=0\n"
                               "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n"
                               "GRUB_CMDLINE_LINUX=\"console=ttyS0 intel_iommu=on iommu.strict=1\"\n"
                               "GRUB_TIMEOUT=5\n");
        backup_text = tree_read("/", res.backup + 1);
        ck_assert_str_eq(backup_text, grub_text);
        free(text);
        free(backup_text);
        boot_apply_result_done(&res);

        /* Nothing left to change: nothing written, no second backup. */
        ck_assert_int_eq(boot_settings_apply(&h, NULL, &res, why), 0);
        ck_assert(!res.changed);
        ck_assert_str_eq(res.backup, "");
        ck_assert_uint_eq(count_backups(dir, "etc/default/grub"), 1);
        boot_apply_result_done(&res);
        host_close(&h);
        tree_remove(dir);
}
END_TEST

START_TEST(test_grub_shell_it_cannot_read_exactly_is_left_alone)
{
        char *dir = tree_new(recorded_tree("intel-vtd")), why[IOMMU_WHY_MAX] = "", *before, *after;
        BootApplyResult res;
        Host h;

        tree_write(dir, "etc/default/grub", "GRUB_CMDLINE_LINUX=\"$EXTRA iommu=pt\"\n");
        host_open(&h, dir);
        before = tree_snapshot(dir);
        ck_assert_int_eq(boot_settings_apply(&h, NULL, &res, why), IOMMU_E_NOT_SUPPORTED);
        ck_assert_msg(strstr(why, "edit it by hand"), "%s", why);
        after = tree_snapshot(dir);
        ck_assert(streq(before, after));
        free(before);
        free(after);
        host_close(&h);
        tree_remove(dir);

        dir = tree_new(recorded_tree("amd-vi"));
        host_open(&h, dir);
        ck_assert_int_eq(boot_settings_apply(&h, NULL, &res, why), IOMMU_E_NOT_SUPPORTED);
        ck_assert_msg(strstr(why, "/etc/default/grub"), "%s", why);
        host_close(&h);
        tree_remove(dir);
}
END_TEST

/* XCP-ng's tool, played by a script that keeps the Xen command line in a file and logs each call. */
static const char xen_cmdline_script[] =
        "#!/bin/sh\n"
        "d=$(dirname \"$0\")\n"
        "echo \"$*\" >> \"$d/calls.log\"\n"
        "case \"$1\" in\n"
        "--get-xen) shift; for k in \"$@\"; do tr ' ' '\\n' < \"$d/state\" | grep \"^$k=\"; done ;;\n"
        "--set-xen) shift; for kv in \"$@\"; do k=${kv%%=*}; s=$(tr ' ' '\\n' < \"$d/state\" | grep -v \"^$k=\" | tr '\\n' ' ');"
        " echo \"$s$kv\" > \"$d/state\"; done ;;\n"
        "*) exit 1 ;;\n"
        "esac\n";

START_TEST(test_xen_settings_go_through_xen_cmdline)
{
        char *dir = tree_new(recorded_tree("xen-dom0")), why[IOMMU_WHY_MAX] = "", *path, *calls, *state;
        BootSettings s;
        BootApplyResult res;
        XenFacts *xen;
        Host h;

        tree_write(dir, "opt/xensource/libexec/xen-cmdline", xen_cmdline_script);
        tree_write(dir, "opt/xensource/libexec/state", "console=com1 iommu=verbose dom0-iommu=relaxed");
        tree_write(dir, "boot/grub/grub.cfg", "menuentry XCP-ng {}\n");
        ck_assert(asprintf(&path, "%s/opt/xensource/libexec/xen-cmdline", dir) > 0);
        ck_assert_int_eq(chmod(path, 0755), 0);
        host_open(&h, dir);
        ck_assert_int_eq(xen_facts_new(h.root, &xen), 0);

        ck_assert_int_eq(boot_settings_get(&h, xen, &s, why), 0);
        ck_assert_str_eq(s.current, "iommu=verbose dom0-iommu=relaxed");
        ck_assert_str_eq(s.proposed, "iommu=verbose,force dom0-iommu=strict");
        ck_assert(s.change_needed);
        /* The running Xen (xen/commandline) lacks iommu=force. */
        ck_assert(s.reboot_required);
        boot_settings_done(&s);

        ck_assert_int_eq(boot_settings_apply(&h, xen, &res, why), 0);
        ck_assert(res.changed);
        ck_assert_msg(strstr(res.backup, "/boot/grub/grub.cfg.vgpu-backup-"), "%s", res.backup);
        calls = tree_read(dir, "opt/xensource/libexec/calls.log");
        ck_assert_msg(strstr(calls, "--set-xen iommu=verbose,force dom0-iommu=strict"), "calls: %s", calls);
        state = tree_read(dir, "opt/xensource/libexec/state");
        ck_assert_msg(strstr(state, "dom0-iommu=strict") && strstr(state, "iommu=verbose,force"), "%s", state);
        boot_apply_result_done(&res);

        ck_assert_int_eq(boot_settings_apply(&h, xen, &res, why), 0);
        ck_assert(!res.changed);
        ck_assert_str_eq(res.backup, "");
        boot_apply_result_done(&res);
        free(calls);
        free(state);
        free(path);
        xen_facts_free(xen);
        host_close(&h);
        tree_remove(dir);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("iommu-boot-settings");
        TCase *tc = tcase_create("boot-settings");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_linux_rule_turns_the_iommu_on_and_strict);
        tcase_add_test(tc, test_xen_rule_forces_the_iommu_and_strict_dom0);
        tcase_add_test(tc, test_grub_defaults_are_backed_up_and_rewritten_once);
        tcase_add_test(tc, test_grub_shell_it_cannot_read_exactly_is_left_alone);
        tcase_add_test(tc, test_xen_settings_go_through_xen_cmdline);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
