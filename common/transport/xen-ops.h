/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The seam between the Xen transport and Xen's libraries: exactly the libxenstore, libxengnttab,
 * libxengntshr and libxenevtchn calls the transport makes, as a table of functions. xen-ops-libxen.c fills it
 * from the real libraries (built only when pkg-config finds them); the unit tests fill it with an in-memory
 * xenstore, grant table and event channels. Every function returns 0 (or a value ≥ 0) or a negative errno. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Opaque handles: the real table casts libxen's own handle types to these. */
typedef struct VgpuXs VgpuXs;               /* struct xs_handle */
typedef struct VgpuXenGnttab VgpuXenGnttab; /* xengnttab_handle: mapping another domain's grants */
typedef struct VgpuXenGntshr VgpuXenGntshr; /* xengntshr_handle: granting our pages to another domain */
typedef struct VgpuXenEvtchn VgpuXenEvtchn; /* xenevtchn_handle */

/* xenstore permission bits (xenstore_lib.h's XS_PERM_*). */
enum {
        VGPU_XS_PERM_NONE = 0,
        VGPU_XS_PERM_READ = 1,
        VGPU_XS_PERM_WRITE = 2,
};

/* One entry of a node's permission list: the first names the owner (who may do anything) and what every
 * other domain may do; later entries grant named domains more. */
typedef struct VgpuXsPerm {
        uint32_t domid;
        unsigned perms;
} VgpuXsPerm;

#define VGPU_XS_NO_TRANSACTION 0u

typedef struct VgpuXenOps {
        const char *name; /* "libxen", "fake": for the log */

        /* ---- libxenstore ---- */
        int (*xs_open)(VgpuXs **ret);
        void (*xs_close)(VgpuXs *xs);
        /* Readable when a watch event is queued. */
        int (*xs_fileno)(VgpuXs *xs);
        /* The value, NUL-terminated, malloc()ed, in *ret; -ENOENT when absent; -EBADMSG when it holds a NUL. */
        int (*xs_read)(VgpuXs *xs, uint32_t t, const char *path, char **ret);
        int (*xs_write)(VgpuXs *xs, uint32_t t, const char *path, const char *value);
        int (*xs_mkdir)(VgpuXs *xs, uint32_t t, const char *path);
        int (*xs_rm)(VgpuXs *xs, uint32_t t, const char *path);
        int (*xs_set_permissions)(VgpuXs *xs, uint32_t t, const char *path, const VgpuXsPerm *perms, unsigned n);
        /* The node's permission list, malloc()ed; -ENOENT when absent. */
        int (*xs_get_permissions)(VgpuXs *xs, const char *path, VgpuXsPerm **ret, unsigned *ret_n);
        /* The children's names: one malloc()ed block (free() it once); -ENOENT when absent. */
        int (*xs_directory)(VgpuXs *xs, const char *path, char ***ret, unsigned *ret_n);
        int (*xs_transaction_start)(VgpuXs *xs, uint32_t *ret);
        /* -EAGAIN: a conflicting change; start again. */
        int (*xs_transaction_end)(VgpuXs *xs, uint32_t t, bool abort);
        /* Fires once at once, then on every change at or below path ("@releaseDomain": a domain died). */
        int (*xs_watch)(VgpuXs *xs, const char *path, const char *token);
        int (*xs_unwatch)(VgpuXs *xs, const char *path, const char *token);
        /* Never blocks: 1 with (*ret)[0] the path and (*ret)[1] the token (one malloc()ed block) when an
         * event was queued, 0 when none is. */
        int (*xs_check_watch)(VgpuXs *xs, char ***ret);
        /* 1 while the domain exists (xenstored knows it), 0 once it is gone. */
        int (*xs_domain_exists)(VgpuXs *xs, uint32_t domid);

        /* ---- libxengnttab: the backend and the executor map a domain's grants ---- */
        int (*gnttab_open)(VgpuXenGnttab **ret);
        void (*gnttab_close)(VgpuXenGnttab *g);
        /* count pages, one mapping, in refs' order. */
        int (*gnttab_map)(VgpuXenGnttab *g, uint32_t domid, const uint32_t *refs, uint32_t count, bool writable,
                          void **ret);
        /* One page, read-write, with an unmap notification: when it is unmapped (or this process dies) the
         * byte at notify_offset is zeroed and notify_port signalled. */
        int (*gnttab_map_notify)(VgpuXenGnttab *g, uint32_t domid, uint32_t ref, uint32_t notify_offset,
                                 uint32_t notify_port, void **ret);
        int (*gnttab_unmap)(VgpuXenGnttab *g, void *addr, uint32_t count);

        /* ---- libxengntshr: the guest grants its pages ---- */
        int (*gntshr_open)(VgpuXenGntshr **ret);
        void (*gntshr_close)(VgpuXenGntshr *s);
        /* Allocates count zeroed pages, grants them to domid, returns their references and one mapping. */
        int (*gntshr_share)(VgpuXenGntshr *s, uint32_t domid, uint32_t count, bool writable, uint32_t *refs,
                            void **ret);
        int (*gntshr_unshare)(VgpuXenGntshr *s, void *addr, uint32_t count);

        /* ---- libxenevtchn ---- */
        int (*evtchn_open)(VgpuXenEvtchn **ret);
        void (*evtchn_close)(VgpuXenEvtchn *e);
        /* Readable when a port of this handle is pending; reads never block (O_NONBLOCK). */
        int (*evtchn_fd)(VgpuXenEvtchn *e);
        int (*evtchn_bind_unbound)(VgpuXenEvtchn *e, uint32_t remote_domid, uint32_t *ret_port);
        int (*evtchn_bind_interdomain)(VgpuXenEvtchn *e, uint32_t remote_domid, uint32_t remote_port,
                                       uint32_t *ret_port);
        int (*evtchn_unbind)(VgpuXenEvtchn *e, uint32_t port);
        int (*evtchn_notify)(VgpuXenEvtchn *e, uint32_t port);
        /* The next pending port (masked until unmasked); -EAGAIN when none. */
        int (*evtchn_pending)(VgpuXenEvtchn *e, uint32_t *ret_port);
        int (*evtchn_unmask)(VgpuXenEvtchn *e, uint32_t port);
} VgpuXenOps;

/* The table over the real libraries; NULL when this build has none. */
const VgpuXenOps *vgpu_xen_ops_libxen(void);

/* What the transport uses where no caller passes a table (the executor's vgpu_region_ref_map(), libvgpu's
 * connect): the override when one is set, else the real one (NULL: no Xen in this build). */
const VgpuXenOps *vgpu_xen_ops(void);
/* Tests: put a fake behind every later vgpu_xen_ops(); NULL restores the real table. */
void vgpu_xen_ops_override(const VgpuXenOps *ops);
