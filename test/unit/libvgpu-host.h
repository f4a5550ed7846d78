/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A stand-in host for libvgpu's unit tests: a forked process serving one channel (VM 7's socket in a
 * temporary runtime directory) with the real host side of the local transport (vgpu_local_host_accept),
 * the real rings and validator, and the real vgpu.builtin registry doing the work; it stands in for ingestd,
 * the scheduler and the executor so that the library is tested alone, and is kept minimal on purpose.
 * Modes make it misbehave on cue. Code in libvgpu-host.c. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "vgpu.h"

#define FN_BASE    UINT64_C(0x9000) /* function handles: FN_BASE + the built-in's index */
#define WATCHDOG_S 20
/* What the stand-in host says when it refuses a module: a JIT log's shape, with a control character that
 * the library must not pass on as it is. */
#define HOST_MODULE_REASON "ptxas line 6; error   : Not a name of any known instruction: 'nope'\x1b[0m"

typedef enum HostMode {
        HOST_NORMAL,
        HOST_VERSION_2,       /* speaks protocol versions 2 … 3 only */
        HOST_CLOSE_ON_LAUNCH, /* closes the channel (VM_MOVED) at the first LAUNCH, then stalls */
        HOST_STALL_ON_LAUNCH, /* never answers a LAUNCH */
        HOST_BAD_SEQ,         /* answers SYNC with a seq nobody sent */
} HostMode;

extern pid_t host_pid;
extern char sock_path[108];

/* The checked fixture: a watchdog alarm, a runtime directory with VM 7's listening socket
 * (VGPU_RUNTIME_DIR), and, at teardown, the host killed and everything removed. */
void host_fixture_setup(void);
void host_fixture_teardown(void);
/* Forks the host, which accepts one connection on VM 7's socket and serves it in `mode`. */
void host_start(HostMode mode);
/* Connects to VM 7 with 64 request slots and `data_size` bytes of data area; fails the test if it cannot. */
VgpuClient *connect_vm7(uint64_t data_size);
