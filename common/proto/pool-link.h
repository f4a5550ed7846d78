/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Between vgpu-ingestd and one pool's scheduler (vgpu-schedd --pool=P): the pool link and its control
 * messages. Requests and completions travel on a host link (link.h: VgpuHostRequest / VgpuHostCompletion),
 * created by ingestd, which takes the producer side of requests (vgpu_link_attach_scheduler(): the side
 * that feeds work in) while the scheduler consumes them (vgpu_link_attach_executor()). The control socket
 * carries which VMs are attached and hands over their regions; it never carries commands.
 *
 * The scheduler listens on $VGPU_RUNTIME_DIR/sched/<POOL>.sock (AF_UNIX, SOCK_SEQPACKET, mode 0600). One
 * ingestd connects; a second connection is refused while the first is open. In order:
 *   1. ingestd → scheduler: VgpuLinkStart (link.h) with vm_id 0 and its three fds: the link memfd, the
 *      eventfd the scheduler waits on, the eventfd the scheduler notifies.
 *   2. scheduler → ingestd: VgpuLinkReady (link.h; backend "" — it names no backend).
 *   3. then, any number of times, in either direction, the messages below. */
#pragma once

#include <stdint.h>

#define VGPU_POOL_LINK_VERSION 1

#define VGPU_POOL_ATTACH_MAGIC UINT32_C(0x41504756) /* "VGPA" */
#define VGPU_POOL_DETACH_MAGIC UINT32_C(0x44504756) /* "VGPD" */
#define VGPU_POOL_EVENT_MAGIC  UINT32_C(0x45504756) /* "VGPE" */

/* ingestd → scheduler: serve VM vm_id from now on; immediately followed by the VM's region as a
 * VgpuRegionRef message (vgpu_region_ref_send(), transport.h). The scheduler starts the VM's executor and
 * answers VGPU_POOL_EVENT_ATTACHED (or the error). Requests of that VM carry the same generation. */
typedef struct VgpuPoolAttach {
        uint32_t magic; /* VGPU_POOL_ATTACH_MAGIC */
        uint16_t version;
        uint16_t size; /* sizeof(VgpuPoolAttach) */
        uint32_t vm_id;
        uint32_t reserved;
        uint64_t generation;
        uint64_t memory_quota; /* bytes; 0: none */
} VgpuPoolAttach;

_Static_assert(sizeof(VgpuPoolAttach) == 32, "attach message size");

/* ingestd → scheduler: stop serving this attachment (the guest left, the VM moved pools or was
 * unregistered). The scheduler completes its queued commands with `status` (a VgpuStatus, e.g.
 * CHANNEL_CLOSED or VM_MOVED), ends the executor (whose memory is zeroed on the way out) and answers
 * VGPU_POOL_EVENT_DETACHED. */
typedef struct VgpuPoolDetach {
        uint32_t magic; /* VGPU_POOL_DETACH_MAGIC */
        uint16_t version;
        uint16_t size;
        uint32_t vm_id;
        uint32_t status;
        uint64_t generation;
} VgpuPoolDetach;

_Static_assert(sizeof(VgpuPoolDetach) == 24, "detach message size");

typedef enum VgpuPoolEventKind {
        VGPU_POOL_EVENT_ATTACHED = 1,      /* error 0: the executor is ready; else it could not start */
        VGPU_POOL_EVENT_DETACHED = 2,      /* every command of that generation has completed */
        /* 3 is retired (an executor's death once closed the guest's channel; the scheduler now restarts the
         * executor itself and the channel stays open): never reuse it. */
} VgpuPoolEventKind;

/* scheduler → ingestd. */
typedef struct VgpuPoolEvent {
        uint32_t magic; /* VGPU_POOL_EVENT_MAGIC */
        uint16_t version;
        uint16_t size;
        uint32_t kind; /* VgpuPoolEventKind */
        uint32_t vm_id;
        uint64_t generation;
        int32_t error; /* 0 or a positive errno */
        char backend[20]; /* ATTACHED: the executor's backend, "cpu" or "cuda"; NUL-terminated */
} VgpuPoolEvent;

_Static_assert(sizeof(VgpuPoolEvent) == 48, "event message size");
