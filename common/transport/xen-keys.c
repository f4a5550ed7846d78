/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Everything a guest writes into xenstore is parsed here, and only here: strict numbers, the frontend's keys
 * into one checked struct, plus the paths, xenbus state names and grant sizing that both sides share. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "proto/protocol.h"
#include "vgpu-util.h"
#include "xen.h"

static const VgpuXenOps *ops_override;

const VgpuXenOps *vgpu_xen_ops(void)
{
        return ops_override ? ops_override : vgpu_xen_ops_libxen();
}

void vgpu_xen_ops_override(const VgpuXenOps *ops)
{
        ops_override = ops;
}

const char *vgpu_xenbus_state_to_string(int state)
{
        static const char *const names[_VGPU_XENBUS_MAX] = {
                [VGPU_XENBUS_UNKNOWN] = "Unknown",
                [VGPU_XENBUS_INITIALISING] = "Initialising",
                [VGPU_XENBUS_INIT_WAIT] = "InitWait",
                [VGPU_XENBUS_INITIALISED] = "Initialised",
                [VGPU_XENBUS_CONNECTED] = "Connected",
                [VGPU_XENBUS_CLOSING] = "Closing",
                [VGPU_XENBUS_CLOSED] = "Closed",
                [VGPU_XENBUS_RECONFIGURING] = "Reconfiguring",
                [VGPU_XENBUS_RECONFIGURED] = "Reconfigured",
        };
        return state >= 0 && state < _VGPU_XENBUS_MAX ? names[state] : "invalid";
}

int vgpu_xen_parse_u64(const char *s, uint64_t max, uint64_t *ret)
{
        uint64_t v = 0;

        if (isempty(s) || strlen(s) > 20 || (s[0] == '0' && s[1] != '\0'))
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                unsigned d;

                if (*p < '0' || *p > '9')
                        return -EINVAL;
                d = (unsigned)(*p - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        if (v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int vgpu_xen_parse_u32(const char *s, uint32_t max, uint32_t *ret)
{
        uint64_t v;
        int r = vgpu_xen_parse_u64(s, max, &v);

        if (r < 0)
                return r;
        *ret = (uint32_t)v;
        return 0;
}

int vgpu_xen_parse_state(const char *s, VgpuXenbusState *ret)
{
        uint32_t v;
        int r = vgpu_xen_parse_u32(s, _VGPU_XENBUS_MAX - 1, &v);

        if (r < 0)
                return -EINVAL;
        *ret = (VgpuXenbusState)v;
        return 0;
}

int vgpu_xen_uuid_normalize(const char *s, char buf[static 37])
{
        if (!s || strlen(s) != 36)
                return -EINVAL;
        for (size_t i = 0; i < 36; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;

                if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
                        return -EINVAL;
                buf[i] = (char)tolower((unsigned char)s[i]);
        }
        buf[36] = '\0';
        return 0;
}

static bool domid_is_valid(uint32_t domid)
{
        return domid >= 1 && domid <= VGPU_XEN_DOMID_MAX;
}

int vgpu_xen_frontend_path(uint32_t domid, char *buf, size_t size)
{
        int n;

        if (!domid_is_valid(domid))
                return -EINVAL;
        n = snprintf(buf, size, "/local/domain/%u/device/vgpu/0", domid);
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int vgpu_xen_backend_path(uint32_t domid, char *buf, size_t size)
{
        int n;

        if (!domid_is_valid(domid))
                return -EINVAL;
        n = snprintf(buf, size, VGPU_XEN_BACKEND_ROOT "/%u/0", domid);
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

uint32_t vgpu_xen_dir_pages(uint32_t region_pages)
{
        return (region_pages + VGPU_XEN_REFS_PER_DIR_PAGE - 1) / VGPU_XEN_REFS_PER_DIR_PAGE;
}

uint32_t vgpu_xen_grant_frames_needed(uint64_t region_size)
{
        uint64_t pages = (region_size + VGPU_XEN_PAGE_SIZE - 1) / VGPU_XEN_PAGE_SIZE;
        uint64_t grants = pages + vgpu_xen_dir_pages((uint32_t)pages);

        return (uint32_t)((grants + VGPU_XEN_GRANTS_PER_FRAME - 1) / VGPU_XEN_GRANTS_PER_FRAME);
}

/* ---- The frontend's keys ---- */

typedef struct KeyReader {
        VgpuXenKeyLookup lookup;
        void *userdata;
        char *why;
        size_t why_size;
} KeyReader;

static int key_error(const KeyReader *k, int r, const char *key, const char *value, const char *what)
{
        if (value)
                snprintf(k->why, k->why_size, "frontend key '%s' is '%.40s': %s", key, value, what);
        else
                snprintf(k->why, k->why_size, "frontend key '%s' %s", key, what);
        return r;
}

/* One key as a number in [min, max]; every failure names the key and the value. */
static int key_number(const KeyReader *k, const char *key, uint64_t min, uint64_t max, uint64_t *ret)
{
        const char *value = NULL;
        char range[96];
        int r;

        r = k->lookup(k->userdata, key, &value);
        if (r == -ENOENT)
                return key_error(k, -EINVAL, key, NULL, "is missing");
        if (r == -EBADMSG)
                return key_error(k, -EINVAL, key, NULL, "holds a NUL byte");
        if (r < 0)
                return key_error(k, r, key, NULL, "cannot be read");
        r = vgpu_xen_parse_u64(value, UINT64_MAX, ret);
        if (r == -EINVAL)
                return key_error(k, -EINVAL, key, value,
                                 "not a decimal number (digits only, no sign, no leading zero)");
        snprintf(range, sizeof(range), "out of range (%" PRIu64 " … %" PRIu64 ")", min, max);
        if (r < 0 || *ret < min || *ret > max)
                return key_error(k, -EINVAL, key, value, range);
        return 0;
}

static int parse_dir_refs(const KeyReader *k, VgpuXenFrontend *fe)
{
        uint64_t n, ref;
        char key[32], what[128];
        int r;

        r = key_number(k, "nr-page-dir-refs", 1, VGPU_XEN_DIR_REFS_MAX, &n);
        if (r < 0)
                return r;
        /* Exactly as many as the region needs: one more would be a page we map for nothing. */
        if (n != vgpu_xen_dir_pages(fe->region_pages)) {
                snprintf(what, sizeof(what), "a region of %u pages needs exactly %u page-directory pages",
                         fe->region_pages, vgpu_xen_dir_pages(fe->region_pages));
                snprintf(key, sizeof(key), "%" PRIu64, n);
                return key_error(k, -EINVAL, "nr-page-dir-refs", key, what);
        }
        fe->n_dir_refs = (uint32_t)n;
        for (uint32_t i = 0; i < fe->n_dir_refs; i++) {
                snprintf(key, sizeof(key), "page-dir-ref-%u", i);
                r = key_number(k, key, VGPU_XEN_RESERVED_REFS, UINT32_MAX, &ref);
                if (r < 0)
                        return r;
                fe->dir_refs[i] = (uint32_t)ref;
        }
        return 0;
}

int vgpu_xen_frontend_parse(VgpuXenKeyLookup lookup, void *userdata, VgpuXenFrontend *ret, char *why, size_t why_size)
{
        KeyReader k = {.lookup = lookup, .userdata = userdata, .why = why, .why_size = why_size};
        VgpuXenFrontend fe = {};
        uint64_t v;
        char text[24];
        int r;

        if (!lookup || !ret || !why || why_size == 0)
                return -EINVAL;
        why[0] = '\0';
        r = key_number(&k, "protocol-version", 0, UINT32_MAX, &v);
        if (r < 0)
                return r;
        if (v != VGPU_LAYOUT_VERSION) {
                snprintf(text, sizeof(text), "%" PRIu64, v);
                snprintf(why, why_size, "frontend key 'protocol-version' is '%s': this host speaks version %u", text,
                         VGPU_LAYOUT_VERSION);
                return -EPROTONOSUPPORT;
        }
        fe.protocol_version = (uint32_t)v;
        r = key_number(&k, "region-size", VGPU_XEN_PAGE_SIZE, VGPU_REGION_SIZE_MAX, &fe.region_size);
        if (r < 0)
                return r;
        if (fe.region_size % VGPU_XEN_PAGE_SIZE != 0) {
                snprintf(text, sizeof(text), "%" PRIu64, fe.region_size);
                return key_error(&k, -EINVAL, "region-size", text, "not a multiple of 4096");
        }
        fe.region_pages = (uint32_t)(fe.region_size / VGPU_XEN_PAGE_SIZE);
        r = parse_dir_refs(&k, &fe);
        if (r < 0)
                return r;
        r = key_number(&k, "event-channel", 1, VGPU_XEN_EVTCHN_PORT_MAX, &v);
        if (r < 0)
                return r;
        fe.event_channel = (uint32_t)v;
        *ret = fe;
        return 0;
}
