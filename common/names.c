/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Validation and conversion of the domain's names and values. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "names.h"
#include "vgpu-util.h"

static const char *const priority_names[_PRIORITY_MAX] = {
        [PRIORITY_HIGH] = "high",
        [PRIORITY_MEDIUM] = "medium",
        [PRIORITY_LOW] = "low",
};

static const char *const pool_mode_names[_POOL_MODE_MAX] = {
        [POOL_MODE_ISOLATED] = "isolated",
        [POOL_MODE_SHARED] = "shared",
};

static const char *const iommu_policy_names[_IOMMU_POLICY_MAX] = {
        [IOMMU_POLICY_REQUIRED] = "required",
        [IOMMU_POLICY_AUDIT] = "audit",
};

static int lookup(const char *const *table, size_t n, const char *s)
{
        if (!s)
                return -1;
        for (size_t i = 0; i < n; i++)
                if (streq(table[i], s))
                        return (int)i;
        return -1;
}

bool pool_id_is_valid(const char *s)
{
        size_t n;

        if (!s || !isascii((unsigned char)s[0]) || !isalpha((unsigned char)s[0]))
                return false;
        n = strlen(s);
        if (n > POOL_ID_MAX)
                return false;
        for (size_t i = 1; i < n; i++)
                if (!isascii((unsigned char)s[i]) || !(isalnum((unsigned char)s[i]) || s[i] == '_'))
                        return false;
        return true;
}

Priority priority_from_string(const char *s)
{
        return (Priority)lookup(priority_names, _PRIORITY_MAX, s);
}

const char *priority_to_string(Priority p)
{
        return p >= 0 && p < _PRIORITY_MAX ? priority_names[p] : NULL;
}

PoolMode pool_mode_from_string(const char *s)
{
        return (PoolMode)lookup(pool_mode_names, _POOL_MODE_MAX, s);
}

const char *pool_mode_to_string(PoolMode m)
{
        return m >= 0 && m < _POOL_MODE_MAX ? pool_mode_names[m] : NULL;
}

IommuPolicy iommu_policy_from_string(const char *s)
{
        return (IommuPolicy)lookup(iommu_policy_names, _IOMMU_POLICY_MAX, s);
}

const char *iommu_policy_to_string(IommuPolicy p)
{
        return p >= 0 && p < _IOMMU_POLICY_MAX ? iommu_policy_names[p] : NULL;
}

bool vm_id_is_valid(uint64_t id)
{
        return id >= 1 && id <= VM_ID_MAX;
}

int vm_id_parse(const char *s, uint32_t *ret)
{
        uint64_t v = 0;

        if (isempty(s) || s[0] == '0')
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                v = v * 10 + (uint64_t)(*p - '0');
                if (v > VM_ID_MAX)
                        return -ERANGE;
        }
        *ret = (uint32_t)v;
        return 0;
}

bool uuid_is_valid(const char *s)
{
        if (!s || strlen(s) != UUID_STRING_LEN)
                return false;
        for (size_t i = 0; i < UUID_STRING_LEN; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return false;
                } else if (!isxdigit((unsigned char)s[i]))
                        return false;
        }
        return true;
}

int uuid_normalize(const char *s, char out[static UUID_STRING_LEN + 1])
{
        if (!uuid_is_valid(s))
                return -EINVAL;
        for (size_t i = 0; i <= UUID_STRING_LEN; i++)
                out[i] = (char)tolower((unsigned char)s[i]);
        return 0;
}

/* Accepts well-formed UTF-8 (no overlongs, no surrogates) without C0 controls or DEL. */
bool text_is_valid(const char *s, size_t max)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t n;

        if (!s)
                return false;
        n = strlen(s);
        if (n > max)
                return false;
        while (*p) {
                unsigned c = *p;
                size_t len;
                uint32_t cp;

                if (c < 0x20 || c == 0x7f)
                        return false;
                if (c < 0x80) {
                        p++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf)
                        len = 2, cp = c & 0x1f;
                else if (c >= 0xe0 && c <= 0xef)
                        len = 3, cp = c & 0x0f;
                else if (c >= 0xf0 && c <= 0xf4)
                        len = 4, cp = c & 0x07;
                else
                        return false;
                for (size_t i = 1; i < len; i++) {
                        if ((p[i] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i] & 0x3f);
                }
                if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                p += len;
        }
        return true;
}

int size_parse(const char *s, uint64_t *ret)
{
        static const struct {
                char suffix;
                unsigned shift;
        } units[] = { { 'K', 10 }, { 'M', 20 }, { 'G', 30 }, { 'T', 40 } };
        uint64_t v = 0;
        unsigned shift = 0;
        const char *p = s;

        if (isempty(s) || !isdigit((unsigned char)*p))
                return -EINVAL;
        for (; isdigit((unsigned char)*p); p++) {
                if (v > (UINT64_MAX - 9) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t)(*p - '0');
        }
        if (*p) {
                bool found = false;

                for (size_t i = 0; i < ELEMENTSOF(units); i++)
                        if (toupper((unsigned char)*p) == units[i].suffix) {
                                shift = units[i].shift;
                                found = true;
                        }
                if (found) {
                        p++;
                        if (streq(p, "iB") || streq(p, "B") || streq(p, ""))
                                p += strlen(p);
                } else if (streq(p, "B"))
                        p++;
                if (*p)
                        return -EINVAL;
        }
        if (shift && v > (UINT64_MAX >> shift))
                return -ERANGE;
        *ret = v << shift;
        return 0;
}

const char *size_format(uint64_t bytes, char *buf, size_t len)
{
        static const char suffixes[] = { 'T', 'G', 'M', 'K' };

        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                unsigned shift = (unsigned)(40 - 10 * i);
                uint64_t unit = UINT64_C(1) << shift;

                if (bytes >= unit) {
                        if (bytes % unit == 0)
                                snprintf(buf, len, "%" PRIu64 "%c", bytes >> shift, suffixes[i]);
                        else
                                snprintf(buf, len, "%.1f%c", (double)bytes / (double)unit, suffixes[i]);
                        return buf;
                }
        }
        snprintf(buf, len, "%" PRIu64 "B", bytes);
        return buf;
}

static bool resource_token_is_valid(const char *s, size_t n)
{
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(isalnum((unsigned char)s[i]) || strchr(":.-_", s[i])))
                        return false;
        return true;
}

bool gpu_resource_is_valid(const char *s)
{
        const char *rest, *colon;
        unsigned percent;
        char tail;

        if (!s || strlen(s) > GPU_RESOURCE_MAX)
                return false;
        if (isempty(s))
                return true;
        if (strncmp(s, "gpu:", 4) == 0)
                return resource_token_is_valid(s + 4, strlen(s + 4));
        if (strncmp(s, "mig:", 4) == 0)
                return resource_token_is_valid(s + 4, strlen(s + 4));
        if (strncmp(s, "sm-share:", 9) != 0)
                return false;
        rest = s + 9;
        colon = strrchr(rest, ':');
        if (!colon || !resource_token_is_valid(rest, (size_t)(colon - rest)))
                return false;
        if (sscanf(colon + 1, "%u%c", &percent, &tail) != 1 || !isdigit((unsigned char)colon[1]))
                return false;
        return percent >= 1 && percent <= 100;
}
