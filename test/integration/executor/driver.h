/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A stand-in for the pool's scheduler: makes a VM region as a guest does (a sealed memfd with a formatted
 * channel), a host link and two eventfds, starts the real vgpu-executor from $VGPU_BUILD_DIR on a socketpair,
 * hands it everything, and sends it requests one at a time. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/channel.h"
#include "proto/link.h"

#ifndef DRIVER_REGION_SIZE /* the gpu suite builds this driver with a 1 GiB data area */
#define DRIVER_REGION_SIZE (8u << 20) /* the VM's channel region: a data area of a little under 8 MiB */
#endif
#define DRIVER_WAIT_MS     20000

typedef struct Driver {
        pid_t pid;
        int control; /* our end of the control socket */
        int kick;    /* we write: the executor waits on it */
        int notify;  /* the executor writes: we wait on it */
        uint32_t vm_id;
        int region_fd;
        uint8_t *region;
        VgpuChannelGeometry geometry;
        uint8_t *data; /* the region's data area */
        int link_fd;
        uint8_t *link;
        size_t link_size;
        VgpuHostRequestProducer req;
        VgpuHostCompletionConsumer cpl;
        uint64_t tag;
        char backend[24];
} Driver;

/* Starts an executor for vm_id. backend: "auto", "cpu", "cuda". Returns 0 when it reported ready, else the
 * (negative) error it reported or hit; on failure the process has been reaped. */
int driver_start(Driver *d, uint32_t vm_id, const char *quota, const char *backend);
/* The same with more of the executor's options ("--pool-mode=shared", …): a NULL-terminated list of at most
 * DRIVER_EXTRA_ARGS_MAX, or NULL. */
#define DRIVER_EXTRA_ARGS_MAX 4
int driver_start_with(Driver *d, uint32_t vm_id, const char *quota, const char *backend, const char *const *extra);
/* Closes our side (the executor then exits by itself) and reaps it: returns its exit status, or 128 + the
 * signal that ended it. */
int driver_stop(Driver *d);
/* Waits for the process to end without closing anything: as driver_stop(). */
int driver_wait(Driver *d, int timeout_ms);

/* One request, its completion back (the tag, generation and vm_id are checked by the caller). */
VgpuHostCompletion driver_call(Driver *d, const VgpuRequestDesc *req);
/* The status alone / the handle of an OK completion (0 on any other status). */
VgpuStatus driver_status(Driver *d, const VgpuRequestDesc *req);

uint64_t driver_alloc(Driver *d, uint64_t size, VgpuStatus *ret_status);
VgpuStatus driver_free(Driver *d, uint64_t handle);
VgpuStatus driver_h2d(Driver *d, uint64_t handle, uint64_t offset, uint64_t data_offset, uint64_t length);
VgpuStatus driver_d2h(Driver *d, uint64_t handle, uint64_t offset, uint64_t data_offset, uint64_t length);
/* MODULE_LOAD of the given bytes (copied to data offset 0). */
uint64_t driver_module_load(Driver *d, VgpuModuleFormat format, const void *image, size_t length, VgpuStatus *ret);
uint64_t driver_get_function(Driver *d, uint64_t module, const char *name, VgpuStatus *ret);

/* A launch parameter list, built in order and written to the data area at params_offset. */
typedef struct DriverParams {
        VgpuLaunchParam p[32];
        uint16_t n;
} DriverParams;
void driver_param_buffer(DriverParams *p, uint64_t handle, uint64_t offset);
void driver_param_u32(DriverParams *p, uint32_t v);
void driver_param_f32(DriverParams *p, float v);
VgpuStatus driver_launch(Driver *d, uint64_t function, const DriverParams *p, uint64_t params_offset);

/* The path of the executor under test. */
const char *driver_executor_path(void);
