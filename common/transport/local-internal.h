/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The local endpoint's private state, shared by local.c (endpoint, guest side) and local-host.c. */
#pragma once

#include "local.h"

typedef struct LocalEndpoint {
        VgpuEndpoint base; /* first: a VgpuEndpoint * is a LocalEndpoint * */
        int notify_fd;     /* the peer's wake-up: guest → host an eventfd, host → guest a datagram socket */
        bool notify_is_socket; /* the host's side: send(MSG_DONTWAIT), which no flag of the guest's can block */
        bool wait_is_socket;   /* the guest's side: drain datagrams rather than read a counter */
        int memfd;         /* the region's memfd, kept for vgpu_endpoint_region_ref(); -1 when not ours */
        bool owns_region;  /* unmap on free */
} LocalEndpoint;

LocalEndpoint *local_endpoint_alloc(void);
