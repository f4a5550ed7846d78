/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The executor's life after its arguments are parsed: the start-up handshake on the control socket,
 * mapping the link and the VM's region, choosing the backend, then serving the link until told to stop. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"

#define SERVE_HANDSHAKE_TIMEOUT_MS 5000

typedef struct ServeConfig {
        uint32_t vm_id;
        const char *pool;
        uint64_t memory_quota;
        int control_fd; /* the scheduler's socket: its hang-up ends this process */
        int signal_fd;  /* SIGTERM, SIGINT */
        BackendChoice backend;
        const char *device;   /* the pool's GPU (BackendConfig.device); NULL: the first */
        uint32_t sm_limit[3]; /* per priority; 0: none (BackendConfig.sm_limit) */
        bool builtin_only;    /* refuse guests' own modules (a shared pool, unless allowed) */
} ServeConfig;

/* 0 after an orderly stop (SIGTERM, the scheduler hung up); a negative errno when start-up failed or the
 * scheduler broke the ring discipline (logged). */
int serve(const ServeConfig *config);
