/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Boot settings: the command line rules, and reading and writing where each platform keeps them. The
 * writing itself (a GRUB defaults file, or XCP-ng's xen-cmdline) is in boot-write.c. */
#include "boot-settings.h"
#include "boot-write.h"
#include "log.h"
#include "platform.h"

#include <time.h>

static int join_words(char **words, char **ret)
{
        size_t len = 1;
        char *s;

        for (char **w = words; w && *w; w++)
                len += strlen(*w) + 1;
        s = calloc(1, len);
        if (!s)
                return -ENOMEM;
        for (char **w = words; w && *w; w++) {
                if (w != words)
                        strcat(s, " ");
                strcat(s, *w);
        }
        *ret = s;
        return 0;
}

static bool word_has_key(const char *word, const char *key)
{
        size_t n = strlen(key);

        return strncmp(word, key, n) == 0 && (word[n] == '=' || word[n] == '\0');
}

static const char *word_value(const char *word)
{
        const char *eq = strchr(word, '=');

        return eq ? eq + 1 : "";
}

/* The words of `cmdline` with `drop` removed and `add` appended (each only when needed). */
typedef struct Edit {
        char **words; /* the result */
        char **add;   /* what was added or changed */
        bool changed;
} Edit;

static int edit_keep(Edit *e, const char *word)
{
        return strv_append(&e->words, word);
}

static int edit_set(Edit *e, const char *word)
{
        int r = strv_append(&e->words, word);

        if (r >= 0)
                r = strv_append(&e->add, word);
        e->changed = true;
        return r;
}

static int edit_start(Edit *e, const char *cmdline, char ***ret_words)
{
        *e = (Edit){ .words = calloc(1, sizeof(char *)), .add = calloc(1, sizeof(char *)) };
        if (!e->words || !e->add)
                return -ENOMEM;
        return cmdline_split(cmdline, ret_words);
}

static int edit_finish(Edit *e, char **ret_proposed, char ***ret_add, bool *ret_changed)
{
        int r = join_words(e->words, ret_proposed);

        strv_free(e->words);
        if (r < 0) {
                strv_free(e->add);
                return r;
        }
        *ret_add = e->add;
        *ret_changed = e->changed;
        return 0;
}

static bool linux_word_weakens(const char *w)
{
        return streq(w, "iommu=pt") || streq(w, "iommu=off") || word_has_key(w, "iommu.passthrough") ||
               (word_has_key(w, "iommu.strict") && !streq(word_value(w), "1")) ||
               (word_has_key(w, "amd_iommu") && list_has_item(word_value(w), "off"));
}

int boot_cmdline_linux(const char *cmdline, const char *vendor, char **ret_proposed, char ***ret_add,
                       bool *ret_changed)
{
        _cleanup_strv_ char **words = NULL;
        bool intel = streq(vendor, "intel"), have_intel = false, have_strict = false;
        Edit e;
        int r;

        r = edit_start(&e, cmdline, &words);
        for (char **w = words; r >= 0 && w && *w; w++) {
                if (linux_word_weakens(*w))
                        e.changed = true;
                else if (intel && word_has_key(*w, "intel_iommu") &&
                         (!list_has_item(word_value(*w), "on") || list_has_item(word_value(*w), "off"))) {
                        have_intel = true;
                        r = edit_set(&e, "intel_iommu=on");
                } else {
                        have_intel = have_intel || word_has_key(*w, "intel_iommu");
                        have_strict = have_strict || streq(*w, "iommu.strict=1");
                        r = edit_keep(&e, *w);
                }
        }
        if (r >= 0 && intel && !have_intel)
                r = edit_set(&e, "intel_iommu=on");
        if (r >= 0 && !have_strict)
                r = edit_set(&e, "iommu.strict=1");
        if (r < 0) {
                strv_free(e.words);
                strv_free(e.add);
                return r;
        }
        return edit_finish(&e, ret_proposed, ret_add, ret_changed);
}

/* `word` ("key=a,b") with the items in `drop` removed and `need` added unless one of `enough` is there. */
static int fix_list(const char *word, const char *key, const char *const *drop, const char *const *enough,
                    const char *need, char **ret)
{
        _cleanup_free_ char *items = strdup(word_value(word)), *out = NULL;
        bool satisfied = false;
        char *save = NULL;

        if (!items || asprintf(&out, "%s=", key) < 0)
                return -ENOMEM;
        for (char *item = strtok_r(items, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
                bool dropped = false;
                char *t;
                for (size_t i = 0; drop[i]; i++)
                        dropped = dropped || streq(item, drop[i]);
                for (size_t i = 0; enough[i]; i++)
                        satisfied = satisfied || streq(item, enough[i]);
                if (dropped)
                        continue;
                if (asprintf(&t, "%s%s%s", out, out[strlen(out) - 1] == '=' ? "" : ",", item) < 0)
                        return -ENOMEM;
                free(out);
                out = t;
        }
        if (!satisfied) {
                char *t;
                if (asprintf(&t, "%s%s%s", out, out[strlen(out) - 1] == '=' ? "" : ",", need) < 0)
                        return -ENOMEM;
                free(out);
                out = t;
        }
        *ret = TAKE_PTR(out);
        return 0;
}

int boot_cmdline_xen(const char *cmdline, char **ret_proposed, char ***ret_add, bool *ret_changed)
{
        static const char *const iommu_drop[] = { "0", "off", "no", "false", "disable", "dom0-passthrough", NULL };
        static const char *const iommu_enough[] = { "force", "required", NULL };
        static const char *const dom0_drop[] = { "relaxed", "passthrough", NULL };
        static const char *const dom0_enough[] = { "strict", NULL };
        _cleanup_strv_ char **words = NULL;
        bool have_iommu = false, have_dom0 = false;
        Edit e;
        int r;

        r = edit_start(&e, cmdline, &words);
        for (char **w = words; r >= 0 && w && *w; w++) {
                _cleanup_free_ char *fixed = NULL;
                bool iommu = word_has_key(*w, "iommu"), dom0 = word_has_key(*w, "dom0-iommu");

                if (!iommu && !dom0) {
                        r = edit_keep(&e, *w);
                        continue;
                }
                have_iommu = have_iommu || iommu;
                have_dom0 = have_dom0 || dom0;
                r = fix_list(*w, iommu ? "iommu" : "dom0-iommu", iommu ? iommu_drop : dom0_drop,
                             iommu ? iommu_enough : dom0_enough, iommu ? "force" : "strict", &fixed);
                if (r >= 0)
                        r = streq(fixed, *w) ? edit_keep(&e, *w) : edit_set(&e, fixed);
        }
        if (r >= 0 && !have_iommu)
                r = edit_set(&e, "iommu=force");
        if (r >= 0 && !have_dom0)
                r = edit_set(&e, "dom0-iommu=strict");
        if (r < 0) {
                strv_free(e.words);
                strv_free(e.add);
                return r;
        }
        return edit_finish(&e, ret_proposed, ret_add, ret_changed);
}

void boot_settings_done(BootSettings *s)
{
        free(s->target);
        free(s->current);
        free(s->proposed);
        strv_free(s->add);
        *s = (BootSettings){ 0 };
}

void boot_apply_result_done(BootApplyResult *r)
{
        free(r->target);
        free(r->backup);
        *r = (BootApplyResult){ 0 };
}

/* Which IOMMU the machine has: the kernel's units when it runs one, else the firmware's ACPI table (DMAR
 * for VT-d, IVRS for AMD-Vi; there even with the IOMMU off), else the CPU's vendor. The CPU alone can
 * mislead (an emulated machine may pair any CPU with either IOMMU), so it comes last. */
static const char *iommu_vendor(const Host *h)
{
        _cleanup_strv_ char **units = NULL;
        _cleanup_free_ char *cpuinfo = NULL;
        const char *line;

        if (sysroot_list_dir(h->root, "sys/class/iommu", &units, NULL) >= 0 && units[0])
                return strncmp(units[0], "dmar", 4) == 0 ? "intel" : strncmp(units[0], "ivhd", 4) == 0 ? "amd" : "unknown";
        if (sysroot_exists(h->root, "sys/firmware/acpi/tables/DMAR"))
                return "intel";
        if (sysroot_exists(h->root, "sys/firmware/acpi/tables/IVRS"))
                return "amd";
        if (sysroot_read_file(h->root, "proc/cpuinfo", 4u * 1024u * 1024u, &cpuinfo, NULL) < 0)
                return "unknown";
        line = strstr(cpuinfo, "vendor_id");
        if (!line)
                return "unknown";
        line = strndupa(line, strcspn(line, "\n"));
        return strstr(line, "GenuineIntel") ? "intel" : strstr(line, "AuthenticAMD") ? "amd" : "unknown";
}

static int get_linux(const Host *h, BootSettings *s, GrubDefaults *g, char why[static IOMMU_WHY_MAX])
{
        _cleanup_free_ char *running = NULL, *running_proposed = NULL;
        _cleanup_strv_ char **running_add = NULL;
        const char *vendor = iommu_vendor(h);
        int r;

        r = grub_defaults_read(h->root, g, why);
        if (r != 0)
                return r;
        if (asprintf(&s->target, "%s/%s (then run update-grub)", sysroot_is_host(h->root) ? "" : h->root->path,
                     GRUB_DEFAULTS) < 0 || !(s->current = strdup(g->value)))
                return -ENOMEM;
        r = boot_cmdline_linux(g->value, vendor, &s->proposed, &s->add, &s->change_needed);
        if (r < 0)
                return r;
        /* The running kernel lacks them when the same rule would still change its command line. */
        s->reboot_required = true;
        if (sysroot_read_line(h->root, "proc/cmdline", &running) >= 0)
                r = boot_cmdline_linux(running, vendor, &running_proposed, &running_add, &s->reboot_required);
        return r < 0 ? r : 0;
}

/* "iommu=… dom0-iommu=…" from what xen-cmdline --get-xen prints (one key=value per word or line). */
static int xen_current(const Host *h, char **ret, char why[static IOMMU_WHY_MAX])
{
        static const char *const args[] = { "--get-xen", "iommu", "dom0-iommu", NULL };
        _cleanup_free_ char *output = NULL;
        _cleanup_strv_ char **words = NULL, **kept = calloc(1, sizeof(char *));
        int r;

        if (!kept)
                return -ENOMEM;
        r = xen_cmdline_run(h->root, args, &output);
        if (r == -ENOENT || r == -EACCES) {
                snprintf(why, IOMMU_WHY_MAX, "XCP-ng's /%s is not there; set iommu=force dom0-iommu=strict on the Xen "
                         "command line in the boot loader's configuration by hand.", XEN_CMDLINE_TOOL);
                return IOMMU_E_NOT_SUPPORTED;
        }
        if (r < 0) {
                snprintf(why, IOMMU_WHY_MAX, "/%s --get-xen failed (%s).", XEN_CMDLINE_TOOL, strerror(-r));
                return IOMMU_E_FAILED;
        }
        r = cmdline_split(output, &words);
        for (char **w = words; r >= 0 && w && *w; w++)
                if (strncmp(*w, "iommu=", 6) == 0 || strncmp(*w, "dom0-iommu=", 11) == 0)
                        r = strv_append(&kept, *w);
        return r < 0 ? r : join_words(kept, ret);
}

static int get_xen(const Host *h, XenFacts *xen, BootSettings *s, char why[static IOMMU_WHY_MAX])
{
        _cleanup_free_ char *running = NULL, *running_proposed = NULL;
        _cleanup_strv_ char **running_add = NULL;
        const char *source;
        int r;

        r = xen_current(h, &s->current, why);
        if (r != 0)
                return r;
        if (asprintf(&s->target, "%s/%s", sysroot_is_host(h->root) ? "" : h->root->path, XEN_CMDLINE_TOOL) < 0)
                return -ENOMEM;
        r = boot_cmdline_xen(s->current, &s->proposed, &s->add, &s->change_needed);
        if (r < 0)
                return r;
        s->reboot_required = true;
        if (xen_facts_commandline(xen, &running, &source) >= 0)
                r = boot_cmdline_xen(running, &running_proposed, &running_add, &s->reboot_required);
        return r < 0 ? r : 0;
}

int boot_settings_get(const Host *h, XenFacts *xen, BootSettings *ret, char why[static IOMMU_WHY_MAX])
{
        GrubDefaults g = { 0 };
        int r;

        *ret = (BootSettings){ 0 };
        if (h->platform == PLATFORM_LINUX)
                r = get_linux(h, ret, &g, why);
        else if (h->platform == PLATFORM_XEN_DOM0)
                r = get_xen(h, xen, ret, why);
        else {
                snprintf(why, IOMMU_WHY_MAX, "Boot settings are kept on the host (a Linux/KVM host or the Xen "
                         "dom0); this system is %s.", platform_to_string(h->platform));
                r = IOMMU_E_NOT_SUPPORTED;
        }
        grub_defaults_done(&g);
        if (r != 0)
                boot_settings_done(ret);
        return r;
}

static int apply_linux(const Host *h, BootApplyResult *res, char why[static IOMMU_WHY_MAX])
{
        BootSettings s = { 0 };
        GrubDefaults g = { 0 };
        int r;

        r = get_linux(h, &s, &g, why);
        if (r == 0 && s.change_needed) {
                r = grub_defaults_write(h->root, &g, s.proposed, &res->backup);
                if (r < 0) {
                        snprintf(why, IOMMU_WHY_MAX, "Writing %s failed (%s); it was left as it was.", s.target,
                                 strerror(-r));
                        r = IOMMU_E_FAILED;
                } else
                        log_notice("Changed GRUB_CMDLINE_LINUX in %s from \"%s\" to \"%s\" (backup: %s); run "
                                   "update-grub and reboot.", s.target, s.current, s.proposed, res->backup);
        }
        if (r == 0) {
                res->changed = s.change_needed;
                res->reboot_required = s.reboot_required || s.change_needed;
                res->target = TAKE_PTR(s.target);
        }
        grub_defaults_done(&g);
        boot_settings_done(&s);
        return r;
}

/* xen-cmdline edits the boot loader's configuration itself; each one present is backed up first. */
static int backup_xen_configs(const Host *h, uint64_t usec, char **ret)
{
        static const char *const configs[] = { "boot/grub/grub.cfg", "boot/efi/EFI/xenserver/grub.cfg" };
        _cleanup_free_ char *list = NULL;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(configs); i++) {
                _cleanup_free_ char *backup = NULL;
                char *t;

                if (!sysroot_exists(h->root, configs[i]))
                        continue;
                r = file_backup(h->root, configs[i], usec, &backup);
                if (r < 0)
                        return log_error_errno(r, "Cannot back up /%s: %m", configs[i]);
                if (asprintf(&t, "%s%s%s", strempty(list), list ? ", " : "", backup) < 0)
                        return -ENOMEM;
                free(list);
                list = t;
        }
        *ret = list ? TAKE_PTR(list) : strdup("");
        return *ret ? 0 : -ENOMEM;
}

static int apply_xen(const Host *h, XenFacts *xen, BootApplyResult *res, char why[static IOMMU_WHY_MAX])
{
        const char *args[6] = { "--set-xen" };
        _cleanup_free_ char *output = NULL;
        BootSettings s = { 0 };
        struct timespec ts;
        int r;

        r = get_xen(h, xen, &s, why);
        if (r == 0 && s.change_needed) {
                clock_gettime(CLOCK_REALTIME, &ts);
                r = backup_xen_configs(h, (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u, &res->backup);
                for (size_t i = 0; s.add[i] && i < ELEMENTSOF(args) - 2; i++)
                        args[i + 1] = s.add[i];
                if (r >= 0)
                        r = xen_cmdline_run(h->root, args, &output);
                if (r < 0) {
                        snprintf(why, IOMMU_WHY_MAX, "%s --set-xen failed (%s).", s.target, strerror(-r));
                        r = IOMMU_E_FAILED;
                } else
                        log_notice("Changed the Xen command line with %s from \"%s\" to \"%s\" (backups: %s); reboot "
                                   "to apply.", s.target, s.current, s.proposed, res->backup);
        }
        if (r == 0) {
                res->changed = s.change_needed;
                res->reboot_required = s.reboot_required || s.change_needed;
                res->target = TAKE_PTR(s.target);
        }
        boot_settings_done(&s);
        return r;
}

int boot_settings_apply(const Host *h, XenFacts *xen, BootApplyResult *ret, char why[static IOMMU_WHY_MAX])
{
        int r;

        *ret = (BootApplyResult){ 0 };
        if (h->platform == PLATFORM_LINUX)
                r = apply_linux(h, ret, why);
        else if (h->platform == PLATFORM_XEN_DOM0)
                r = apply_xen(h, xen, ret, why);
        else {
                snprintf(why, IOMMU_WHY_MAX, "Boot settings are kept on the host (a Linux/KVM host or the Xen "
                         "dom0); this system is %s.", platform_to_string(h->platform));
                r = IOMMU_E_NOT_SUPPORTED;
        }
        if (r == 0 && !ret->backup && !(ret->backup = strdup("")))
                r = -ENOMEM;
        if (r != 0)
                boot_apply_result_done(ret);
        return r;
}
