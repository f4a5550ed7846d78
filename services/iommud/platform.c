/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Platform detection and command line words. */
#include "platform.h"
#include "vgpu-util.h"

const char *platform_to_string(Platform p)
{
        static const char *const names[_PLATFORM_MAX] = {
                [PLATFORM_LINUX] = "linux",
                [PLATFORM_XEN_DOM0] = "xen-dom0",
                [PLATFORM_XEN_DOMU] = "xen-domU",
                [PLATFORM_UNKNOWN] = "unknown",
        };

        return p >= 0 && p < _PLATFORM_MAX ? names[p] : "unknown";
}

bool platform_is_xen(Platform p)
{
        return p == PLATFORM_XEN_DOM0 || p == PLATFORM_XEN_DOMU;
}

Platform platform_detect(const Sysroot *root)
{
        _cleanup_free_ char *type = NULL, *caps = NULL;

        if (sysroot_read_line(root, "sys/hypervisor/type", &type) >= 0 && streq(type, "xen")) {
                if (sysroot_read_line(root, "proc/xen/capabilities", &caps) >= 0 && list_has_item(caps, "control_d"))
                        return PLATFORM_XEN_DOM0;
                return PLATFORM_XEN_DOMU;
        }
        if (sysroot_is_dir(root, "sys/bus/pci") || sysroot_exists(root, "proc/cmdline"))
                return PLATFORM_LINUX;
        return PLATFORM_UNKNOWN;
}

int cmdline_split(const char *cmdline, char ***ret)
{
        _cleanup_strv_ char **words = calloc(1, sizeof(char *));
        const char *p = cmdline;
        int r;

        if (!words)
                return -ENOMEM;
        while (p && *p) {
                _cleanup_free_ char *word = NULL;
                size_t n = 0;
                bool quoted = false;

                p += strspn(p, " \t\r\n");
                if (!*p)
                        break;
                word = malloc(strlen(p) + 1);
                if (!word)
                        return -ENOMEM;
                for (; *p && (quoted || !strchr(" \t\r\n", *p)); p++)
                        if (*p == '"')
                                quoted = !quoted;
                        else
                                word[n++] = *p;
                word[n] = '\0';
                r = strv_append(&words, word);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(words);
        return 0;
}

int cmdline_get(const char *cmdline, const char *key, char **ret)
{
        _cleanup_strv_ char **words = NULL;
        size_t n = strlen(key);
        const char *value = NULL;
        int r;

        r = cmdline_split(cmdline, &words);
        if (r < 0)
                return r;
        for (char **w = words; *w; w++)
                if (strncmp(*w, key, n) == 0 && ((*w)[n] == '=' || (*w)[n] == '\0'))
                        value = (*w)[n] == '=' ? *w + n + 1 : *w + n;
        if (!value)
                return -ENOENT;
        *ret = strdup(value);
        return *ret ? 0 : -ENOMEM;
}

bool list_has_item(const char *list, const char *item)
{
        size_t n = strlen(item);

        for (const char *p = list; p && *p;) {
                size_t len = strcspn(p, ",");
                if (len == n && strncmp(p, item, n) == 0)
                        return true;
                p += len;
                if (*p == ',')
                        p++;
        }
        return false;
}
