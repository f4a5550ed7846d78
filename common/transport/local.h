/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The local backend: a guest process hands the host a sealed memfd (the channel region) and two eventfds
 * over its VM's unix socket, $VGPU_RUNTIME_DIR/vm/N.sock. The wire of that hello lives here; its prose,
 * the checks and the security argument are in docs/transport.md. */
#pragma once

#include <fcntl.h>
#include <stdint.h>

#include "transport.h"

/* ---- The handshake: one SOCK_SEQPACKET message each way ---- */

#define VGPU_LOCAL_HELLO_MAGIC          UINT32_C(0x484c4756) /* "VGLH" in memory */
#define VGPU_LOCAL_TRANSPORT_VERSION    1
#define VGPU_LOCAL_HELLO_FDS            3 /* memfd, guest→host eventfd, host→guest datagram socket, in order */
#define VGPU_LOCAL_REGION_SIZE_MIN      4096u
#define VGPU_LOCAL_SEALS_REQUIRED       (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
#define VGPU_LOCAL_HANDSHAKE_TIMEOUT_MS 5000

/* Guest → host, with the three fds as one SCM_RIGHTS control message. */
typedef struct VgpuLocalHello {
        uint32_t magic;       /* VGPU_LOCAL_HELLO_MAGIC */
        uint16_t version;     /* VGPU_LOCAL_TRANSPORT_VERSION */
        uint16_t hello_size;  /* sizeof(VgpuLocalHello) */
        uint64_t region_size; /* a claim, checked against fstat() of the memfd, never used for mapping */
        uint32_t flags;       /* none defined: 0 */
        uint32_t reserved;    /* 0 */
} VgpuLocalHello;

_Static_assert(sizeof(VgpuLocalHello) == 24, "hello size is part of the wire format");

enum {
        VGPU_LOCAL_ACCEPTED = 0,
        VGPU_LOCAL_REFUSED = 1,    /* reason: a VgpuLocalRefusal */
        VGPU_LOCAL_HOST_ERROR = 2, /* reason: a positive errno; the guest did nothing wrong */
};

/* Host → guest: the answer, always exactly these 8 bytes, no fds. */
typedef struct VgpuLocalReply {
        uint8_t status;  /* VGPU_LOCAL_ACCEPTED / _REFUSED / _HOST_ERROR */
        uint8_t version; /* the host's VGPU_LOCAL_TRANSPORT_VERSION */
        uint16_t reserved;
        uint32_t reason;
} VgpuLocalReply;

_Static_assert(sizeof(VgpuLocalReply) == 8, "reply size is part of the wire format");

/* Why the host refused a hello: positive, stable, documented in docs/transport.md. */
typedef enum VgpuLocalRefusal {
        VGPU_LOCAL_REFUSED_HELLO = 1,           /* not exactly 24 bytes; wrong magic, hello_size, flags, reserved */
        VGPU_LOCAL_REFUSED_VERSION = 2,         /* transport version not spoken here */
        VGPU_LOCAL_REFUSED_FD_COUNT = 3,        /* not exactly 3 fds, or control data truncated / of another kind */
        VGPU_LOCAL_REFUSED_NOT_MEMFD = 4,       /* fd 0 is not a read-write memfd (a file, a pipe, …) */
        VGPU_LOCAL_REFUSED_SEALS = 5,           /* memfd lacks SHRINK|GROW|SEAL, or carries WRITE/FUTURE_WRITE */
        VGPU_LOCAL_REFUSED_SIZE_MISMATCH = 6,   /* fstat size differs from the hello's region_size */
        VGPU_LOCAL_REFUSED_SIZE_RANGE = 7,      /* size outside [4096, VGPU_REGION_SIZE_MAX] or not whole pages */
        VGPU_LOCAL_REFUSED_NOT_EVENTFD = 8,     /* fd 1 is not an eventfd, or fd 2 not an AF_UNIX datagram socket */
        VGPU_LOCAL_REFUSED_GEOMETRY = 9,        /* vgpu_channel_geometry_read(): -EPROTO */
        VGPU_LOCAL_REFUSED_LAYOUT_VERSION = 10, /* vgpu_channel_geometry_read(): -EPROTONOSUPPORT */
        _VGPU_LOCAL_REFUSED_MAX,
} VgpuLocalRefusal;

const char *vgpu_local_refusal_to_string(int refusal);

/* ---- The per-VM socket ---- */

/* "$runtime_dir/vm/N.sock" into buf; -ENAMETOOLONG when it does not fit a sockaddr_un. */
int vgpu_local_socket_path(const char *runtime_dir, uint32_t vm_id, char *buf, size_t size);

/* Creates a listening SOCK_SEQPACKET socket at path with mode 0600, whatever the umask, with no moment at
 * which the path exists with a wider mode (bound in a private 0700 directory, chmod-ed, renamed into
 * place). A stale socket at path is replaced; anything else there is left alone: -EEXIST. The parent
 * directory must exist. Returns the fd (O_CLOEXEC) or a negative errno. */
int vgpu_local_listen(const char *path);

/* ---- Guest side ---- */

/* Creates and seals the memfd, formats the channel (req_count / cpl_count slots), makes the eventfds,
 * connects to path and does the handshake. Returns 0 with *ret set; a positive VgpuLocalRefusal when the
 * host refused; a negative errno otherwise (-ECONNREFUSED/-ENOENT: no host; -ETIMEDOUT: no answer;
 * host errors as the host's errno). */
int vgpu_local_guest_connect(const char *path, size_t region_size, uint32_t req_count, uint32_t cpl_count,
                             VgpuEndpoint **ret);

/* The two halves of the guest's handshake, public so that tests can send what a hostile guest would. */
int vgpu_local_send_hello(int sock, const VgpuLocalHello *hello, const int *fds, size_t n_fds);
/* Waits up to timeout_ms for the reply. Returns 0, >0 refusal, <0 errno (as vgpu_local_guest_connect). */
int vgpu_local_receive_reply(int sock, int timeout_ms);

/* ---- Host side ---- */

/* Serves one accepted connection (takes ownership of conn: on success it becomes the endpoint's
 * hangup_fd, otherwise it is closed). Waits up to timeout_ms for the hello, checks it, maps the region,
 * reads its geometry, answers. Returns 0 with *ret set; a positive VgpuLocalRefusal (already told to the
 * guest; every received fd closed); a negative errno (-ECONNRESET: the peer left before a whole hello;
 * -ETIMEDOUT). ret_peer, if set, is filled from SO_PEERCRED on every outcome, for the caller's log. */
int vgpu_local_host_accept(int conn, int timeout_ms, VgpuEndpoint **ret, VgpuPeer *ret_peer);

/* An endpoint over fds the caller already has (host-internal rings: ingestd → scheduler → executor, tests,
 * benchmarks). Takes ownership of both fds; the region stays the caller's (not unmapped on free). */
int vgpu_local_endpoint_new(void *region, size_t region_size, const VgpuChannelGeometry *g, int wait_fd, int notify_fd,
                            VgpuEndpoint **ret);

/* Checks that fd is a read-write memfd carrying exactly the seals the host relies on, and returns its
 * size. 0 or a positive VgpuLocalRefusal (NOT_MEMFD, SEALS, SIZE_RANGE); negative errno on a syscall. */
int vgpu_local_check_memfd(int fd, uint64_t *ret_size);
