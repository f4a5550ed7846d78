/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the IOMMU does on this host, read from sysfs and the command line on Linux and from the hypervisor's
 * own facts on Xen, and the compliance verdict over it. */
#include <stdarg.h>

#include "log.h"
#include "status.h"

int evidence_add(IommuStatus *s, const char *conclusion, const char *source, const char *format, ...)
{
        _cleanup_free_ char *text = NULL;
        Evidence *grown;
        va_list ap;
        int n;

        va_start(ap, format);
        n = vasprintf(&text, format, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        /* One line: control characters become blanks, then the ends are trimmed and the length bounded. */
        for (char *p = text; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        *p = ' ';
        if (strlen(text) > EVIDENCE_TEXT_MAX)
                text[EVIDENCE_TEXT_MAX] = '\0';
        grown = realloc(s->evidence, (s->n_evidence + 1) * sizeof(*grown));
        if (!grown)
                return -ENOMEM;
        s->evidence = grown;
        grown[s->n_evidence] = (Evidence){ strdup(conclusion), strdup(source), strdup(strstrip(text)) };
        if (!grown[s->n_evidence].conclusion || !grown[s->n_evidence].source || !grown[s->n_evidence].text) {
                s->n_evidence++;
                return -ENOMEM;
        }
        s->n_evidence++;
        return 0;
}

void iommu_status_done(IommuStatus *s)
{
        for (size_t i = 0; i < s->n_evidence; i++) {
                free(s->evidence[i].conclusion);
                free(s->evidence[i].source);
                free(s->evidence[i].text);
        }
        free(s->evidence);
        strv_free(s->problems);
        *s = (IommuStatus){ 0 };
}

/* Each command line parameter that bears on the IOMMU, as evidence. */
static int cmdline_evidence(IommuStatus *s, const char *cmdline, const char *source, const char *const *keys)
{
        int r = 0;

        for (size_t i = 0; r >= 0 && keys[i]; i++) {
                _cleanup_free_ char *value = NULL;
                const char *conclusion = strstr(keys[i], "strict") || strstr(keys[i], "passthrough") ||
                                                         streq(keys[i], "dom0-iommu")
                                                 ? "iommu.mode"
                                                 : "iommu.enabled";
                if (cmdline_get(cmdline, keys[i], &value) >= 0)
                        r = evidence_add(s, conclusion, source, "%s=%s", keys[i], value);
        }
        return r;
}

/* The source of an evidence entry read from a file: its path as it is on the host ("/" + rel). */
static const char *source_of(const char *rel, char buf[static 160])
{
        snprintf(buf, 160, "/%s", rel);
        return buf;
}

static const char *vendor_of_unit(const Host *h, const char *unit, IommuStatus *s)
{
        _cleanup_free_ char *text = NULL;
        char rel[128], src[160];

        snprintf(rel, sizeof(rel), "sys/class/iommu/%s/intel-iommu/version", unit);
        if (sysroot_read_line(h->root, rel, &text) >= 0) {
                (void)evidence_add(s, "iommu.vendor", source_of(rel, src), "Intel VT-d unit %s, version %s", unit,
                                   text);
                return "intel";
        }
        snprintf(rel, sizeof(rel), "sys/class/iommu/%s/amd-iommu/features", unit);
        if (sysroot_read_line(h->root, rel, &text) >= 0) {
                (void)evidence_add(s, "iommu.vendor", source_of(rel, src), "AMD-Vi unit %s, features %s", unit, text);
                return "amd";
        }
        snprintf(rel, sizeof(rel), "sys/class/iommu/%s", unit);
        if (strncmp(unit, "dmar", 4) == 0 || strncmp(unit, "ivhd", 4) == 0) {
                bool intel = unit[0] == 'd';
                (void)evidence_add(s, "iommu.vendor", source_of(rel, src), "%s unit %s", intel ? "Intel VT-d" : "AMD-Vi",
                                   unit);
                return intel ? "intel" : "amd";
        }
        return "unknown";
}

/* The default domain type of every group: DMA is strict, DMA-FQ lazy (flushes deferred), identity is
 * passthrough (no translation). The weakest group sets the host's mode. */
static const char *mode_from_groups(const Host *h, char **groups, IommuStatus *s)
{
        size_t dma = 0, fq = 0, identity = 0, other = 0;

        for (char **g = groups; g && *g; g++) {
                _cleanup_free_ char *type = NULL;
                char rel[96];

                snprintf(rel, sizeof(rel), "sys/kernel/iommu_groups/%s/type", *g);
                if (sysroot_read_line(h->root, rel, &type) < 0)
                        other++;
                else if (streq(type, "DMA"))
                        dma++;
                else if (streq(type, "DMA-FQ"))
                        fq++;
                else if (streq(type, "identity"))
                        identity++;
                else
                        other++;
        }
        (void)evidence_add(s, "iommu.mode", "/sys/kernel/iommu_groups/*/type",
                           "DMA (strict): %zu, DMA-FQ (lazy): %zu, identity (passthrough): %zu, other or unreadable: %zu",
                           dma, fq, identity, other);
        return identity ? "passthrough" : fq ? "lazy" : dma ? "strict" : NULL;
}

/* Kernels before 5.11 show no group type; then the command line decides, where it says anything. */
static const char *mode_from_cmdline(const char *cmdline)
{
        _cleanup_free_ char *iommu = NULL, *pt = NULL, *strict = NULL, *intel = NULL;

        if ((cmdline_get(cmdline, "iommu", &iommu) >= 0 && list_has_item(iommu, "pt")) ||
            (cmdline_get(cmdline, "iommu.passthrough", &pt) >= 0 && (streq(pt, "1") || streq(pt, "on") || streq(pt, "y"))))
                return "passthrough";
        if (cmdline_get(cmdline, "iommu.strict", &strict) >= 0)
                return streq(strict, "0") || streq(strict, "off") || streq(strict, "n") ? "lazy" : "strict";
        if (cmdline_get(cmdline, "intel_iommu", &intel) >= 0 && list_has_item(intel, "strict"))
                return "strict";
        return "unknown";
}

static int probe_linux(const Host *h, IommuStatus *s)
{
        static const char *const keys[] = { "intel_iommu", "amd_iommu", "iommu", "iommu.strict", "iommu.passthrough",
                                            NULL };
        _cleanup_strv_ char **units = NULL, **groups = NULL;
        _cleanup_free_ char *cmdline = NULL, *unit_list = NULL;
        const char *mode;
        size_t n_groups = 0;

        (void)evidence_add(s, "platform", "/sys/hypervisor/type", "not a Xen domain (no \"xen\" there)");
        if (sysroot_read_line(h->root, "proc/cmdline", &cmdline) >= 0)
                (void)cmdline_evidence(s, cmdline, "/proc/cmdline", keys);
        (void)sysroot_list_dir(h->root, "sys/class/iommu", &units, NULL);
        (void)sysroot_list_dir(h->root, "sys/kernel/iommu_groups", &groups, &n_groups);
        for (char **u = units; u && *u; u++) {
                char *t;
                if (asprintf(&t, "%s%s%s", strempty(unit_list), unit_list ? " " : "", *u) < 0)
                        return -ENOMEM;
                free(unit_list);
                unit_list = t;
        }
        (void)evidence_add(s, "iommu.enabled", "/sys/class/iommu", "%s",
                           unit_list ? unit_list : "no IOMMU units registered");
        (void)evidence_add(s, "iommu.enabled", "/sys/kernel/iommu_groups", "%zu IOMMU groups", n_groups);
        s->enabled = n_groups > 0;
        if (!s->enabled) {
                s->vendor = "";
                s->mode = "off";
                return 0;
        }
        s->vendor = units && units[0] ? vendor_of_unit(h, units[0], s) : "unknown";
        mode = mode_from_groups(h, groups, s);
        if (!mode) {
                mode = mode_from_cmdline(strempty(cmdline));
                (void)evidence_add(s, "iommu.mode", "/proc/cmdline", "no group types to read; the command line says %s",
                                   mode);
        }
        s->mode = mode;
        return 0;
}

/* The first line of `text` that holds `needle`, or NULL. */
static char *line_with(const char *text, const char *needle)
{
        const char *hit = text ? strstr(text, needle) : NULL, *start, *end;

        if (!hit)
                return NULL;
        for (start = hit; start > text && start[-1] != '\n'; start--)
                ;
        end = hit + strcspn(hit, "\n");
        return strndup(start, (size_t)(end - start));
}

static const char *xen_vendor(const Host *h, XenFacts *xen, IommuStatus *s)
{
        static const struct {
                const char *needle, *vendor;
        } marks[] = { { "Intel VT-d", "intel" }, { "[VT-D]", "intel" }, { "AMD-Vi", "amd" } };
        _cleanup_free_ char *console = NULL, *cpu = NULL;
        const char *source;

        if (xen_facts_console(xen, &console, &source) >= 0)
                for (size_t i = 0; i < ELEMENTSOF(marks); i++) {
                        _cleanup_free_ char *line = line_with(console, marks[i].needle);
                        if (line) {
                                (void)evidence_add(s, "iommu.vendor", source, "%s", line);
                                return marks[i].vendor;
                        }
                }
        if (sysroot_read_file(h->root, "proc/cpuinfo", 1024 * 1024, &cpu, NULL) >= 0) {
                _cleanup_free_ char *line = line_with(cpu, "vendor_id");
                if (line && (strstr(line, "GenuineIntel") || strstr(line, "AuthenticAMD"))) {
                        (void)evidence_add(s, "iommu.vendor", "/proc/cpuinfo", "%s (the IOMMU comes with the CPU's "
                                           "platform)", line);
                        return strstr(line, "GenuineIntel") ? "intel" : "amd";
                }
        }
        return "unknown";
}

/* dom0-iommu=strict (or the older iommu=dom0-strict): dom0's devices reach only dom0's own memory.
 * dom0-iommu=passthrough: no translation for dom0's devices. Otherwise a PV dom0 runs relaxed — its
 * devices may reach all RAM but Xen's — reported as "lazy", the weaker of the non-passthrough modes. */
static const char *xen_mode(const char *cmdline, const char *source, IommuStatus *s)
{
        _cleanup_free_ char *iommu = NULL, *dom0 = NULL;

        (void)cmdline_get(cmdline, "iommu", &iommu);
        (void)cmdline_get(cmdline, "dom0-iommu", &dom0);
        if (list_has_item(dom0, "passthrough") || list_has_item(iommu, "dom0-passthrough"))
                return "passthrough";
        if (list_has_item(dom0, "strict") || list_has_item(iommu, "dom0-strict"))
                return "strict";
        (void)evidence_add(s, "iommu.mode", source,
                           "dom0-iommu is not strict: dom0's devices may reach all of the host's RAM (relaxed)");
        return "lazy";
}

static bool xen_iommu_disabled_by(const char *cmdline)
{
        _cleanup_free_ char *iommu = NULL;
        static const char *const off[] = { "0", "off", "no", "false", "disable" };

        if (cmdline_get(cmdline, "iommu", &iommu) < 0)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(off); i++)
                if (list_has_item(iommu, off[i]))
                        return true;
        return false;
}

static int probe_xen(const Host *h, XenFacts *xen, IommuStatus *s)
{
        static const char *const keys[] = { "iommu", "dom0-iommu", NULL };
        _cleanup_free_ char *caps = NULL, *cmdline = NULL, *console = NULL, *io = NULL;
        const char *caps_source, *cmd_source, *con_source;
        int r;

        (void)evidence_add(s, "platform", "/sys/hypervisor/type", "xen");
        (void)evidence_add(s, "platform", "/proc/xen/capabilities", "%s",
                           h->platform == PLATFORM_XEN_DOM0 ? "control_d (this is dom0)" : "no control_d (a guest)");
        r = xen_facts_virt_caps(xen, &caps, &caps_source);
        if (r < 0)
                (void)evidence_add(s, "iommu.enabled", caps_source, "unreadable: %s", strerror(-r));
        else
                (void)evidence_add(s, "iommu.enabled", caps_source, "virt_caps: %s", caps);
        s->xen_directio = caps && xen_virt_caps_have_directio(caps);
        r = xen_facts_commandline(xen, &cmdline, &cmd_source);
        if (r < 0)
                (void)evidence_add(s, "iommu.mode", cmd_source, "unreadable: %s", strerror(-r));
        else
                (void)cmdline_evidence(s, cmdline, cmd_source, keys);
        if (xen_facts_console(xen, &console, &con_source) >= 0 && (io = line_with(console, "I/O virtualisation")))
                (void)evidence_add(s, "iommu.enabled", con_source, "%s", io);
        s->enabled = s->xen_directio && !xen_iommu_disabled_by(strempty(cmdline));
        if (!s->enabled) {
                s->vendor = "";
                s->mode = "off";
                return 0;
        }
        s->vendor = xen_vendor(h, xen, s);
        s->mode = cmdline ? xen_mode(cmdline, cmd_source, s) : "unknown";
        return 0;
}

int iommu_probe(const Host *h, XenFacts *xen, IommuStatus *ret)
{
        *ret = (IommuStatus){ .platform = h->platform, .vendor = "", .mode = "unknown" };
        ret->problems = calloc(1, sizeof(char *));
        if (!ret->problems)
                return -ENOMEM;
        switch (h->platform) {
        case PLATFORM_LINUX:
                return probe_linux(h, ret);
        case PLATFORM_XEN_DOM0:
        case PLATFORM_XEN_DOMU:
                return probe_xen(h, xen, ret);
        default:
                return evidence_add(ret, "platform", "/sys", "neither a Linux sysfs nor a Xen domain below the root");
        }
}

bool gpu_is_confined(const IommuStatus *s, const Gpu *g)
{
        if (g->isolated)
                return true;
        /* Xen: a GPU dom0 keeps is confined to dom0's memory and granted pages under dom0-iommu=strict. */
        return s->platform == PLATFORM_XEN_DOM0 && s->enabled && s->xen_directio && streq(s->mode, "strict");
}

static int problem(IommuStatus *s, const char *format, ...) _printf_(2, 3);
static int problem(IommuStatus *s, const char *format, ...)
{
        _cleanup_free_ char *text = NULL;
        va_list ap;
        int n;

        va_start(ap, format);
        n = vasprintf(&text, format, ap);
        va_end(ap);
        return n < 0 ? -ENOMEM : strv_append(&s->problems, text);
}

static int gpu_verdict(IommuStatus *s, const Gpu *g)
{
        const PciDevice *d = g->device;
        char conclusion[64];

        snprintf(conclusion, sizeof(conclusion), "gpu.%s.isolated", d->name);
        (void)evidence_add(s, conclusion, "/sys/bus/pci/devices/*/driver", "%s on %s; group %d with %zu device(s)%s%s",
                           d->name, isempty(d->driver) ? "no driver" : d->driver, d->iommu_group, g->n_members,
                           g->group_viable ? "" : "; not viable: ", strempty(g->viable_reason));
        if (g->isolated)
                s->gpus_isolated++;
        if (gpu_is_confined(s, g))
                return 0;
        if (s->platform == PLATFORM_XEN_DOM0)
                return problem(s, "GPU %s is used by dom0 while dom0-iommu is not strict; boot Xen with "
                               "dom0-iommu=strict (GetBootSettings) or bind the GPU to pciback.", d->name);
        if (!g->group_viable)
                return problem(s, "GPU %s is not isolated: %s", d->name, g->viable_reason);
        return problem(s,
                       "GPU %s is not isolated: its IOMMU group %d is on %s, not wholly on vfio-pci; bind it with "
                       "vgpu-admin bind-gpu.",
                       d->name, d->iommu_group, isempty(d->driver) ? "no driver" : d->driver);
}

static int host_verdict(IommuStatus *s)
{
        if (s->platform == PLATFORM_XEN_DOMU)
                return problem(s, "This is a Xen guest (domU): the IOMMU belongs to the hypervisor and cannot be "
                               "checked from here; run vgpu-iommud in dom0.");
        if (s->platform == PLATFORM_UNKNOWN)
                return problem(s, "The platform below the root could not be recognized, so nothing could be checked.");
        if (!s->enabled)
                return problem(s, "The IOMMU is off, so nothing confines the GPUs' DMA; turn it on at boot "
                               "(vgpu-admin iommu-setup shows the settings) and reboot.");
        if (streq(s->mode, "lazy"))
                return problem(s, "The IOMMU is not strict (lazy mode): %s; boot with %s.",
                               s->platform == PLATFORM_XEN_DOM0 ? "dom0's devices may reach all RAM"
                                                                : "unmapped pages stay reachable until a deferred flush",
                               s->platform == PLATFORM_XEN_DOM0 ? "dom0-iommu=strict" : "iommu.strict=1");
        if (streq(s->mode, "passthrough"))
                return problem(s, "The IOMMU runs in passthrough mode: devices reach memory untranslated; boot "
                               "without %s.", s->platform == PLATFORM_XEN_DOM0 ? "dom0-iommu=passthrough"
                                                                              : "iommu=pt / iommu.passthrough=1");
        if (!streq(s->mode, "strict"))
                return problem(s, "The IOMMU's mode could not be determined, so it cannot be shown to be strict; "
                               "boot with %s.", s->platform == PLATFORM_XEN_DOM0 ? "dom0-iommu=strict" : "iommu.strict=1");
        return 0;
}

int iommu_status_compute(const Host *h, XenFacts *xen, uint32_t unacknowledged_faults, const char *last_fault,
                         const char *fault_source, IommuStatus *ret)
{
        GpuList l = { 0 };
        int r;

        r = iommu_probe(h, xen, ret);
        if (r >= 0)
                r = host_verdict(ret);
        if (r >= 0)
                r = gpus_discover(h, &l);
        if (r >= 0 && l.n_gpus == 0)
                r = evidence_add(ret, "gpus", "/sys/bus/pci/devices", "no GPU found (PCI class 0x03)");
        for (size_t i = 0; r >= 0 && i < l.n_gpus; i++) {
                ret->gpus++;
                r = gpu_verdict(ret, &l.gpus[i]);
        }
        ret->faults = unacknowledged_faults;
        /* A host whose faults nobody can see cannot be shown to have none. */
        if (r >= 0 && isempty(fault_source)) {
                r = evidence_add(ret, "faults", "", "not watched: neither the kernel log nor the hypervisor's "
                                 "console could be read");
                if (r >= 0)
                        r = problem(ret, "IOMMU faults are not being watched: the service cannot read the kernel log "
                                    "(it needs CAP_SYSLOG) or the hypervisor's console; see its log.");
        }
        if (r >= 0 && unacknowledged_faults > 0) {
                r = evidence_add(ret, "faults", strempty(fault_source), "%s", strempty(last_fault));
                if (r >= 0)
                        r = problem(ret,
                                    "%u IOMMU fault(s) were recorded and not acknowledged; review them with vgpu-admin "
                                    "iommu-faults, then acknowledge them with vgpu-admin iommu-faults --acknowledge.",
                                    unacknowledged_faults);
        }
        gpu_list_done(&l);
        if (r < 0) {
                iommu_status_done(ret);
                return r;
        }
        ret->compliant = strv_length(ret->problems) == 0;
        return 0;
}
