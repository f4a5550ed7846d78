/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The backend-neutral transport interface of the command path: an endpoint is one mapped channel region, a
 * way to notify the peer, an fd to wait on and an ack to re-arm it. The local backend (memfd + eventfds over
 * a unix socket) and the Xen backend (grants + event channels + xenstore) both fit it; docs/transport.md
 * maps every function onto both. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/channel.h"

typedef enum VgpuTransportKind {
        VGPU_TRANSPORT_LOCAL = 1, /* memfd + eventfds handed over a unix socket */
        VGPU_TRANSPORT_XEN = 2,   /* grant references + an event channel, found through xenstore */
} VgpuTransportKind;

const char *vgpu_transport_kind_to_string(VgpuTransportKind kind);
/* "local" or "xen" (VGPU_TRANSPORT); -EINVAL otherwise. */
int vgpu_transport_kind_from_string(const char *s);

/* Who is at the other end, as the kernel (SO_PEERCRED) or the hypervisor (domid) vouches for it. Only for
 * the log: the VM is decided by which socket or domain the channel came from, never by this. */
typedef struct VgpuPeer {
        pid_t pid; /* local: SO_PEERCRED; Xen: 0 */
        uid_t uid;
        gid_t gid;
        uint32_t domid; /* Xen: the frontend's domain; local: 0 */
} VgpuPeer;

typedef struct VgpuEndpoint VgpuEndpoint;
typedef struct VgpuRegionRef VgpuRegionRef;

/* What a backend implements. Every function returns 0 or a negative errno. */
typedef struct VgpuEndpointOps {
        /* Wakes the peer. Never blocks: a notification that is already pending is enough. */
        int (*notify)(VgpuEndpoint *e);
        /* After wait_fd fired: consumes the notification so that the next one fires again (local: reads
         * the eventfd; Xen: reads the pending port and unmasks it). Never blocks. */
        int (*ack)(VgpuEndpoint *e);
        /* Host side: a reference another process can map the same region with (local: a dup of the memfd;
         * Xen: the domid and the grant references). -EOPNOTSUPP on a guest endpoint. */
        int (*region_ref)(const VgpuEndpoint *e, VgpuRegionRef *ret);
        /* Unmaps the region, closes every fd, frees the endpoint. */
        void (*free)(VgpuEndpoint *e);
} VgpuEndpointOps;

/* Backends embed this as their first member. The geometry is the private copy: the creator's from
 * vgpu_channel_format(), the host's from vgpu_channel_geometry_read(); attach ring ends with
 * vgpu_channel_attach_host()/_guest() on (region, &geometry). */
struct VgpuEndpoint {
        const VgpuEndpointOps *ops;
        VgpuTransportKind kind;
        bool host;
        void *region;
        size_t region_size;
        VgpuChannelGeometry geometry;
        int wait_fd;   /* readable (EPOLLIN) when the peer has notified; then ack() */
        int hangup_fd; /* readable or POLLHUP when the peer is gone (local: the connection; Xen: the
                        * xenstore watch fd on the frontend's state); -1 when there is none */
        VgpuPeer peer; /* host side: who connected */
};

static inline int vgpu_endpoint_notify(VgpuEndpoint *e)
{
        return e->ops->notify(e);
}

static inline int vgpu_endpoint_ack(VgpuEndpoint *e)
{
        return e->ops->ack(e);
}

static inline int vgpu_endpoint_wait_fd(const VgpuEndpoint *e)
{
        return e->wait_fd;
}

/* Takes NULL; returns NULL so that `e = vgpu_endpoint_free(e)` leaves nothing dangling. */
VgpuEndpoint *vgpu_endpoint_free(VgpuEndpoint *e);

static inline void vgpu_endpoint_freep(VgpuEndpoint **e)
{
        vgpu_endpoint_free(*e);
}
#define _cleanup_endpoint_ __attribute__((cleanup(vgpu_endpoint_freep)))

/* ---- Handing a VM's region to another host process (ingestd → scheduler → executor) ---- */

#define VGPU_REGION_REF_XEN_MAX_REFS (VGPU_REGION_SIZE_MAX / 4096)

/* A serializable, backend-tagged reference to a region. Owns its fd / refs array; release with
 * vgpu_region_ref_done(). Both ends of a hand-off are host services, but the receiver still re-checks
 * everything it maps (a memfd's seals and size), so a confused sender cannot make it fault. */
struct VgpuRegionRef {
        VgpuTransportKind kind;
        uint64_t size;   /* bytes to map */
        int fd;          /* local: the sealed memfd; -1 otherwise */
        uint32_t domid;  /* Xen: the granting domain */
        uint32_t n_refs; /* Xen: one grant reference per page */
        uint32_t *refs;
};
#define VGPU_REGION_REF_NULL ((VgpuRegionRef){.fd = -1})

void vgpu_region_ref_done(VgpuRegionRef *ref);

int vgpu_endpoint_region_ref(const VgpuEndpoint *e, VgpuRegionRef *ret);

/* One message on a unix socket (SOCK_SEQPACKET preferred): a fixed header and, as SCM_RIGHTS, local: the
 * region's memfd; Xen: a sealed memfd holding the n_refs u32 grant references (no message-size limit). receive() takes exactly one message; -EBADMSG for anything malformed (every received fd
 * closed), -ECONNRESET when the peer hung up. */
int vgpu_region_ref_send(int sock, const VgpuRegionRef *ref);
int vgpu_region_ref_receive(int sock, VgpuRegionRef *ret);

/* A mapping made from a reference. */
typedef struct VgpuRegionMap {
        VgpuTransportKind kind;
        void *addr;
        size_t size;
        const struct VgpuXenOps *xen_ops;  /* Xen: the seam and the gntdev handle that made the mapping */
        struct VgpuXenGnttab *xen_gnttab;
} VgpuRegionMap;

/* Maps the region read-write, shared. Local: re-checks that the fd is a sealed memfd of exactly
 * ref->size bytes (-EBADF / -EPERM / -EBADMSG otherwise). Xen: this process's own gntdev handle maps
 * ref->n_refs grants of ref->domid (vgpu_xen_ops(); -EOPNOTSUPP in a build without libxen). */
int vgpu_region_ref_map(const VgpuRegionRef *ref, VgpuRegionMap *ret);
void vgpu_region_unmap(VgpuRegionMap *m);
