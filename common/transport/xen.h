/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Xen backend of the transport: a channel region shared by a guest with grants, an interdomain event
 * channel, and a xenbus handshake in xenstore. The keys, states and permissions are docs/xen.md's; every
 * library call goes through the seam in xen-ops.h. */
#pragma once

#include <stdarg.h>
#include <stdint.h>

#include "transport.h"
#include "xen-ops.h"

#define VGPU_XEN_PAGE_SIZE            4096u
#define VGPU_XEN_REFS_PER_DIR_PAGE    1024u /* little-endian u32 grant references per page-directory page */
#define VGPU_XEN_GRANTS_PER_FRAME     512u  /* v1 grant entries (8 bytes) per 4 KiB grant-table frame */
#define VGPU_XEN_RESERVED_REFS        8u    /* refs 0–7 are the toolstack's (console, xenstore): never ours */
#define VGPU_XEN_REGION_PAGES_MAX     ((uint32_t)(VGPU_REGION_SIZE_MAX / VGPU_XEN_PAGE_SIZE))
#define VGPU_XEN_DIR_REFS_MAX         (VGPU_XEN_REGION_PAGES_MAX / VGPU_XEN_REFS_PER_DIR_PAGE)
#define VGPU_XEN_EVTCHN_PORT_MAX      131071u /* the FIFO ABI's 2^17 ports */
#define VGPU_XEN_DOMID_MAX            0x7fefu /* DOMID_FIRST_RESERVED - 1 */
#define VGPU_XEN_HANDSHAKE_TIMEOUT_MS 10000

#define VGPU_XEN_BACKEND_ROOT "/local/domain/0/backend/vgpu"

/* xenbus states, as every split driver writes them into its "state" key. */
typedef enum VgpuXenbusState {
        VGPU_XENBUS_UNKNOWN = 0,
        VGPU_XENBUS_INITIALISING = 1,
        VGPU_XENBUS_INIT_WAIT = 2,
        VGPU_XENBUS_INITIALISED = 3,
        VGPU_XENBUS_CONNECTED = 4,
        VGPU_XENBUS_CLOSING = 5,
        VGPU_XENBUS_CLOSED = 6,
        VGPU_XENBUS_RECONFIGURING = 7,
        VGPU_XENBUS_RECONFIGURED = 8,
        _VGPU_XENBUS_MAX,
} VgpuXenbusState;

const char *vgpu_xenbus_state_to_string(int state);

/* ---- Strict parsing of xenstore values (decimal, no sign, no spaces, no leading zeros) ---- */

int vgpu_xen_parse_u64(const char *s, uint64_t max, uint64_t *ret);
int vgpu_xen_parse_u32(const char *s, uint32_t max, uint32_t *ret);
/* A state key's value: -EINVAL unless "0" … "8". */
int vgpu_xen_parse_state(const char *s, VgpuXenbusState *ret);
/* xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, hex, either case; lowercased into buf[37]. */
int vgpu_xen_uuid_normalize(const char *s, char buf[static 37]);

/* ---- Paths ---- */

/* "/local/domain/N/device/vgpu/0" and "/local/domain/0/backend/vgpu/N/0"; -EINVAL for a domid out of range. */
int vgpu_xen_frontend_path(uint32_t domid, char *buf, size_t size);
int vgpu_xen_backend_path(uint32_t domid, char *buf, size_t size);

/* ---- Sizing ---- */

/* Page-directory pages for a region of `pages` pages. */
uint32_t vgpu_xen_dir_pages(uint32_t region_pages);
/* v1 grant-table frames a channel of region_size bytes takes in the guest: its pages and its directory,
 * 512 grants per frame, rounded up. */
uint32_t vgpu_xen_grant_frames_needed(uint64_t region_size);

/* ---- The frontend's keys: the one place where they are parsed ---- */

/* Looks a frontend key up: 0 with *ret (valid until the lookup's owner frees it), -ENOENT when missing,
 * -EBADMSG when unreadable (a NUL inside), other negative errnos from xenstore. */
typedef int (*VgpuXenKeyLookup)(void *userdata, const char *key, const char **ret);

typedef struct VgpuXenFrontend {
        uint32_t protocol_version; /* the channel layout version, VGPU_LAYOUT_VERSION */
        uint64_t region_size;      /* bytes, whole pages, ≤ VGPU_REGION_SIZE_MAX */
        uint32_t region_pages;
        uint32_t n_dir_refs; /* exactly vgpu_xen_dir_pages(region_pages) */
        uint32_t dir_refs[VGPU_XEN_DIR_REFS_MAX];
        uint32_t event_channel; /* the guest's unbound port for domain 0 */
} VgpuXenFrontend;

/* Reads protocol-version, region-size, nr-page-dir-refs, page-dir-ref-0 … and event-channel through
 * lookup, checks each (docs/xen.md, "The frontend's keys") and fills *ret. On failure returns -EINVAL
 * (a missing or bad value), -EPROTONOSUPPORT (another layout version) or lookup's errno, with a sentence
 * naming the key in why. */
int vgpu_xen_frontend_parse(VgpuXenKeyLookup lookup, void *userdata, VgpuXenFrontend *ret, char *why, size_t why_size);

/* ---- Backend: map what a frontend shared ---- */

/* Called once the endpoint has been torn down (after its grants are unmapped and its port unbound). */
typedef void (*VgpuXenEndpointGone)(void *userdata);

/* Maps the directory (read-only, copied once, unmapped), the region (read-write, one mapping) and, again,
 * the header page with an unmap notification on its backend_state byte; binds the event channel; reads
 * the geometry once. The endpoint's hangup_fd is -1: departures come through xenstore (xen-bus.c). */
int vgpu_xen_backend_map(const VgpuXenOps *ops, uint32_t domid, const VgpuXenFrontend *fe, VgpuEndpoint **ret,
                         char *why, size_t why_size);
void vgpu_xen_endpoint_on_gone(VgpuEndpoint *e, VgpuXenEndpointGone fn, void *userdata);
/* The local port, the remote port and the domid, for the log. */
void vgpu_xen_endpoint_ports(const VgpuEndpoint *e, uint32_t *ret_local, uint32_t *ret_remote);

/* The executor's side of a region reference: its own gntdev handle, the same refs, read-write. */
int vgpu_xen_region_map(const VgpuXenOps *ops, const VgpuRegionRef *ref, VgpuRegionMap *ret);
void vgpu_xen_region_unmap(VgpuRegionMap *m);

/* ---- Guest: connect ---- */

/* In a domU: finds device/vgpu/0, waits for the backend's InitWait, shares the region and its directory
 * with domain 0, allocates an unbound port, publishes the keys, Initialised, waits for Connected, then
 * Connected. On failure: a negative errno with a sentence in why (-ENODEV: no device; -ETIMEDOUT: no
 * backend; -ENOSPC: too few grants, naming max_grant_frames; -ECONNREFUSED: the backend refused, with its
 * reason). */
int vgpu_xen_guest_connect(const VgpuXenOps *ops, size_t region_size, uint32_t req_count, uint32_t cpl_count,
                           VgpuEndpoint **ret, char *why, size_t why_size);

/* ---- Backend: the xenbus side, one watch over backend/vgpu (xen-bus.c) ---- */

typedef struct VgpuXenBus VgpuXenBus;

typedef struct VgpuXenBusCallbacks {
        /* A frontend is Initialised and its keys are valid: may this domain's VM connect? 0, or a negative
         * errno with the reason in why (told to the guest in the backend's "error" key). */
        int (*accept)(void *userdata, uint32_t domid, const char *vm_uuid, char *why, size_t why_size);
        /* The channel is mapped: serve it. 0 takes e; < 0 leaves it to the bus (torn down, Closing). */
        int (*connected)(void *userdata, uint32_t domid, const char *vm_uuid, VgpuEndpoint *e);
        /* The frontend closed, its domain died, its device went away: close the channel now, which frees e. */
        void (*disconnect)(void *userdata, uint32_t domid, VgpuEndpoint *e, const char *why);
        /* Every step, for the journal: a syslog level and a finished sentence. */
        void (*log)(void *userdata, int level, uint32_t domid, const char *message);
} VgpuXenBusCallbacks;

/* Opens xenstore through ops and watches VGPU_XEN_BACKEND_ROOT and @releaseDomain. */
int vgpu_xen_bus_new(const VgpuXenOps *ops, const VgpuXenBusCallbacks *cb, void *userdata, VgpuXenBus **ret);
/* Readable when there is something to dispatch. */
int vgpu_xen_bus_fd(const VgpuXenBus *b);
/* Handles every queued watch event; never blocks. */
int vgpu_xen_bus_dispatch(VgpuXenBus *b);
/* Disconnects every device (Closing → Closed) and closes xenstore. Takes NULL; returns NULL. */
VgpuXenBus *vgpu_xen_bus_free(VgpuXenBus *b);
/* The device's backend state as last written, or -ENOENT (for tests and ListChannels). */
int vgpu_xen_bus_device_state(const VgpuXenBus *b, uint32_t domid);

/* ---- The toolstack's part (vgpu-xen-channel) ---- */

/* Creates both directories with their keys and permissions in one transaction (docs/xen.md). -EEXIST when
 * the frontend or backend directory exists already. */
int vgpu_xen_channel_create(const VgpuXenOps *ops, VgpuXs *xs, uint32_t domid, const char *vm_uuid);
/* Removes both directories; -ENOENT when neither existed. */
int vgpu_xen_channel_destroy(const VgpuXenOps *ops, VgpuXs *xs, uint32_t domid);
