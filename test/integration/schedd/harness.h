/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the scheduler's integration tests share: TAP output, a private D-Bus bus, real vgpu-schedd processes
 * under a temporary runtime directory, and reading their org.vgpu.Scheduler1 records. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define HARNESS_SCHEDULERS_MAX 4

extern int harness_n_test, harness_n_failed;

#define ok(cond, ...)                                                                                              \
        do {                                                                                                       \
                bool _c = (cond);                                                                                  \
                harness_n_failed += !_c;                                                                           \
                printf("%s %d - ", _c ? "ok" : "not ok", ++harness_n_test);                                        \
                printf(__VA_ARGS__);                                                                               \
                printf("\n");                                                                                      \
                fflush(stdout);                                                                                    \
        } while (0)

/* A temporary directory with run/ (exported as VGPU_RUNTIME_DIR) and a private bus (exported as
 * DBUS_SYSTEM_BUS_ADDRESS). 0 or a negative errno. */
int harness_setup(void);
/* Starts scheduler slot i for `pool` with the extra options (NULL-terminated) and waits for its socket. */
pid_t harness_start_sched(int i, const char *pool, const char *const *options);
const char *harness_sock_path(const char *pool);
/* Ends every scheduler and the bus; prints the TAP plan; returns the exit status. */
int harness_finish(void);

int harness_bus_call(const char *pool, const char *method, void *ret_message);
/* A string property of the pool's scheduler into buf ("" on failure). */
const char *harness_property(const char *pool, const char *name, char *buf, size_t size);
/* GetStats entries; UINT64_MAX / UINT32_MAX when absent. */
uint64_t stat_u64(const char *pool, const char *key);
uint32_t stat_u32(const char *pool, const char *key);
/* One key of a VM's ListVms record, as a number (u or t; UINT64_MAX when absent) or a string. */
uint64_t vm_u64(const char *pool, uint32_t vm_id, const char *key);
const char *vm_string(const char *pool, uint32_t vm_id, const char *key, char *buf, size_t size);
