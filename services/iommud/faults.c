/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fault line parser: a cursor over a bounded span of text, never past its end, no allocation. */
#include <stdio.h>
#include <string.h>

#include "faults.h"

typedef struct Span {
        const char *p;
        const char *end;
} Span;

static size_t span_len(const Span *s)
{
        return (size_t)(s->end - s->p);
}

/* The first occurrence of `needle` in the span, or NULL. */
static const char *span_find(const Span *s, const char *needle)
{
        size_t n = strlen(needle), len = span_len(s);

        if (n == 0 || n > len)
                return NULL;
        for (const char *q = s->p; q + n <= s->end; q++)
                if (memcmp(q, needle, n) == 0)
                        return q;
        return NULL;
}

static bool span_skip(Span *s, const char *literal)
{
        size_t n = strlen(literal);

        if (span_len(s) < n || memcmp(s->p, literal, n) != 0)
                return false;
        s->p += n;
        return true;
}

static void span_skip_spaces(Span *s)
{
        while (s->p < s->end && *s->p == ' ')
                s->p++;
}

static int hex_value(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* 1 to 16 hexadecimal digits, with or without 0x. */
static bool span_hex(Span *s, uint64_t *ret)
{
        uint64_t v = 0;
        size_t digits = 0;

        if (span_len(s) >= 2 && s->p[0] == '0' && (s->p[1] == 'x' || s->p[1] == 'X'))
                s->p += 2;
        while (s->p < s->end && hex_value(*s->p) >= 0) {
                if (++digits > 16)
                        return false;
                v = v * 16 + (uint64_t)hex_value(*s->p++);
        }
        if (digits == 0)
                return false;
        *ret = v;
        return true;
}

/* The text up to `close` (not included), at most `max` bytes; the cursor moves past `close`. */
static bool span_until(Span *s, char close, size_t max, Span *ret)
{
        const char *q = s->p;

        while (q < s->end && *q != close && (size_t)(q - s->p) < max)
                q++;
        if (q >= s->end || *q != close)
                return false;
        *ret = (Span){ s->p, q };
        s->p = q + 1;
        return true;
}

/* A PCI address as the logs print it: "bb:ss.f", "ssss:bb:ss.f", or with "0x" before bus and slot (one
 * Linux release printed "[0x00:0x03.0]"). Written out canonically into `out`. */
static bool span_pci_address(Span a, char out[static PCI_ADDRESS_STRING_MAX])
{
        char compact[16];
        size_t n = 0;
        PciAddress addr;

        while (a.p < a.end) {
                if (span_len(&a) >= 2 && a.p[0] == '0' && (a.p[1] == 'x' || a.p[1] == 'X') &&
                    (n == 0 || compact[n - 1] == ':'))
                        a.p += 2;
                else if (n < sizeof(compact) - 1)
                        compact[n++] = *a.p++;
                else
                        return false;
        }
        if (pci_address_parse_n(compact, n, &addr) < 0)
                return false;
        pci_address_format(&addr, out);
        return true;
}

/* Appends a span to the reason, replacing anything unprintable; always NUL-terminated. */
static void reason_append(char reason[static IOMMU_FAULT_REASON_MAX], const char *p, size_t n)
{
        size_t len = strnlen(reason, IOMMU_FAULT_REASON_MAX - 1);

        for (size_t i = 0; i < n && len < IOMMU_FAULT_REASON_MAX - 1; i++)
                reason[len++] = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '?';
        reason[len] = '\0';
}

static void reason_append_str(char reason[static IOMMU_FAULT_REASON_MAX], const char *s)
{
        reason_append(reason, s, strlen(s));
}

static bool is_xen_line(const Span *line)
{
        return span_find(line, "(XEN)") || span_find(line, "[VT-D]");
}

/* "[DMA Read NO_PASID] Request device [00:03.0] fault addr 0x1000 [fault reason 0x06] PTE Read access is
 * not set", the older "[DMA Read] Request device [00:02.0] PASID ffffffff fault addr 7f8e5000 [fault
 * reason 06] …", Xen's "[DMA Read] Request device [0000:41:00.0] fault addr 1000[, iommu reg = …]", and
 * "[INTR-REMAP] Request device [..] fault index …" (an interrupt remapping fault: no address). */
static bool parse_dmar(Span line, const char *marker, IommuFault *ret)
{
        Span s = { marker + strlen("DMAR:"), line.end }, type, device;
        uint64_t value = 0, code;
        bool intr;

        span_skip_spaces(&s);
        if (!span_skip(&s, "[") || !span_until(&s, ']', 48, &type))
                return false;
        intr = span_len(&type) >= 10 && memcmp(type.p, "INTR-REMAP", 10) == 0;
        if (!intr && !(span_len(&type) >= 8 && (memcmp(type.p, "DMA Read", 8) == 0 ||
                                                  (span_len(&type) >= 9 && memcmp(type.p, "DMA Write", 9) == 0))))
                return false;
        if (!span_skip(&s, " Request device [") || !span_until(&s, ']', 24, &device) ||
            !span_pci_address(device, ret->device))
                return false;
        if (span_skip(&s, " PASID ") && !span_hex(&s, &value))
                return false;
        if (!span_skip(&s, intr ? " fault index " : " fault addr ") || !span_hex(&s, &value))
                return false;
        ret->address = intr ? 0 : value;
        ret->source = is_xen_line(&line) ? FAULT_SOURCE_XEN : FAULT_SOURCE_DMAR;
        reason_append(ret->reason, type.p, span_len(&type));
        if (intr) {
                char index[40];
                snprintf(index, sizeof(index), ": fault index 0x%llx", (unsigned long long)value);
                reason_append_str(ret->reason, index);
        }
        span_skip_spaces(&s);
        if (span_skip(&s, "[fault reason ") && span_hex(&s, &code) && span_skip(&s, "]")) {
                char head[40];
                snprintf(head, sizeof(head), ": fault reason 0x%02llx", (unsigned long long)code);
                reason_append_str(ret->reason, head);
                span_skip_spaces(&s);
                if (s.p < s.end) {
                        reason_append_str(ret->reason, " (");
                        reason_append(ret->reason, s.p, span_len(&s));
                        reason_append_str(ret->reason, ")");
                }
        }
        return true;
}

static bool is_event_name(Span name)
{
        if (span_len(&name) == 0 || span_len(&name) > 40)
                return false;
        for (const char *q = name.p; q < name.end; q++)
                if (!((*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_'))
                        return false;
        return true;
}

/* The device named in front of "AMD-Vi:", as dev_err() prints it: "vfio-pci 0000:41:00.0: AMD-Vi: …". */
static void amd_device_prefix(Span line, const char *marker, char out[static PCI_ADDRESS_STRING_MAX])
{
        const char *end = marker, *start;

        if (end - line.p < 2 || end[-1] != ' ' || end[-2] != ':')
                return;
        end -= 2;
        start = end;
        while (start > line.p && start[-1] != ' ')
                start--;
        (void)span_pci_address((Span){ start, end }, out);
}

/* "[IO_PAGE_FAULT domain=0x000b address=0x1000 flags=0x0000]", optionally with device=bb:ss.f. */
static bool parse_amd_event(Span line, const char *marker, IommuFault *ret)
{
        Span s = { marker + strlen("AMD-Vi: Event logged ["), line.end }, body, name;

        if (!span_until(&s, ']', 256, &body))
                return false;
        name = (Span){ body.p, body.p };
        while (name.end < body.end && *name.end != ' ')
                name.end++;
        if (!is_event_name(name))
                return false;
        ret->source = FAULT_SOURCE_AMD_VI;
        reason_append(ret->reason, name.p, span_len(&name));
        amd_device_prefix(line, marker, ret->device);
        body.p = name.end;
        while (body.p < body.end) {
                Span token;
                span_skip_spaces(&body);
                token = (Span){ body.p, body.p };
                while (token.end < body.end && *token.end != ' ')
                        token.end++;
                body.p = token.end;
                if (span_skip(&token, "device=")) {
                        if (!span_pci_address(token, ret->device))
                                return false;
                } else if (span_skip(&token, "address=")) {
                        if (!span_hex(&token, &ret->address) || token.p != token.end)
                                return false;
                } else if (token.p < token.end) {
                        reason_append_str(ret->reason, " ");
                        reason_append(ret->reason, token.p, span_len(&token));
                }
        }
        return true;
}

/* Xen's "AMD-Vi: IO_PAGE_FAULT: 0000:41:00.0 d1 addr 0000000000001000 flags 0x20 RW". */
static bool parse_xen_amd(Span line, const char *marker, IommuFault *ret)
{
        Span s = { marker + strlen("AMD-Vi: "), line.end }, name, device, domain;

        name = (Span){ s.p, s.p };
        while (name.end < s.end && *name.end != ':')
                name.end++;
        if (!is_event_name(name))
                return false;
        s.p = name.end;
        if (!span_skip(&s, ": ") || !span_until(&s, ' ', 16, &device) || !span_pci_address(device, ret->device))
                return false;
        if (!span_skip(&s, "d") || !span_until(&s, ' ', 8, &domain) || !span_skip(&s, "addr ") ||
            !span_hex(&s, &ret->address))
                return false;
        ret->source = FAULT_SOURCE_XEN;
        reason_append(ret->reason, name.p, span_len(&name));
        reason_append_str(ret->reason, " d");
        reason_append(ret->reason, domain.p, span_len(&domain));
        span_skip_spaces(&s);
        if (s.p < s.end) {
                reason_append_str(ret->reason, " ");
                reason_append(ret->reason, s.p, span_len(&s));
        }
        return true;
}

bool iommu_fault_parse(const char *line, IommuFault *ret)
{
        Span s;
        const char *marker;

        if (!line || !ret)
                return false;
        s = (Span){ line, line + strnlen(line, IOMMU_FAULT_LINE_MAX + 1) };
        if (span_len(&s) > IOMMU_FAULT_LINE_MAX)
                return false;
        while (s.end > s.p && (s.end[-1] == '\n' || s.end[-1] == '\r' || s.end[-1] == ' '))
                s.end--;
        *ret = (IommuFault){ 0 };

        marker = span_find(&s, "DMAR:");
        if (marker)
                return parse_dmar(s, marker, ret);
        marker = span_find(&s, "AMD-Vi: Event logged [");
        if (marker)
                return parse_amd_event(s, marker, ret);
        /* Only Xen prints "AMD-Vi: EVENT: address …"; Linux's other AMD-Vi lines have no such shape. */
        marker = span_find(&s, "AMD-Vi: ");
        if (marker)
                return parse_xen_amd(s, marker, ret);
        return false;
}

const char *fault_source_to_string(FaultSource s)
{
        static const char *const names[_FAULT_SOURCE_MAX] = {
                [FAULT_SOURCE_DMAR] = "dmar",
                [FAULT_SOURCE_AMD_VI] = "amd-vi",
                [FAULT_SOURCE_XEN] = "xen",
        };

        return s >= 0 && s < _FAULT_SOURCE_MAX ? names[s] : NULL;
}
