/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Xen endpoint's private state, shared by xen-endpoint.c (the backend's mapping, notify, ack, teardown)
 * and xen-guest.c (the frontend's sharing and handshake). */
#pragma once

#include "xen.h"

typedef struct XenEndpoint {
        VgpuEndpoint base; /* first: a VgpuEndpoint * is a XenEndpoint * */
        const VgpuXenOps *ops;
        uint32_t domid; /* the peer's domain */
        uint32_t local_port, remote_port;
        bool port_bound;
        VgpuXenEvtchn *evtchn;
        /* backend */
        VgpuXenGnttab *gnttab;
        void *notify_page; /* the header page mapped once more, with unmap-notify on backend_state */
        uint32_t *refs;    /* the region's grant references, in order: what the executor maps */
        uint32_t n_refs;
        VgpuXenEndpointGone gone;
        void *gone_userdata;
        /* guest */
        VgpuXenGntshr *gntshr;
        VgpuXs *xs;
        bool frontend_found; /* device/vgpu/0 exists: ours to write states into */
} XenEndpoint;

XenEndpoint *xen_endpoint_alloc(const VgpuXenOps *ops, bool host);
