/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* D-Bus helpers shared by the vgpu services and clients: the names fixed in docs/architecture.md, the error names,
 * a{sv} records, and the caller authorization rule. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "vgpu-util.h"

#define VGPU_CONFIG_SERVICE "org.vgpu.Config1"
#define VGPU_CONFIG_PATH "/org/vgpu/Config1"
#define VGPU_CONFIG_INTERFACE "org.vgpu.Config1"

#define VGPU_INGEST_SERVICE "org.vgpu.Ingest1"
#define VGPU_INGEST_PATH "/org/vgpu/Ingest1"
#define VGPU_INGEST_INTERFACE "org.vgpu.Ingest1"

#define VGPU_IOMMU_SERVICE "org.vgpu.Iommu1"
#define VGPU_IOMMU_PATH "/org/vgpu/Iommu1"
#define VGPU_IOMMU_INTERFACE "org.vgpu.Iommu1"

#define VGPU_ADMIN_GROUP_DEFAULT "vgpu-admin"

#define VGPU_ERROR_INVALID_ARGUMENT "org.vgpu.Error.InvalidArgument"
#define VGPU_ERROR_NO_SUCH_VM "org.vgpu.Error.NoSuchVm"
#define VGPU_ERROR_NO_SUCH_POOL "org.vgpu.Error.NoSuchPool"
#define VGPU_ERROR_VM_EXISTS "org.vgpu.Error.VmExists"
#define VGPU_ERROR_UUID_IN_USE "org.vgpu.Error.UuidInUse"
#define VGPU_ERROR_POOL_EXISTS "org.vgpu.Error.PoolExists"
#define VGPU_ERROR_POOL_FULL "org.vgpu.Error.PoolFull"
#define VGPU_ERROR_POOL_NOT_EMPTY "org.vgpu.Error.PoolNotEmpty"
#define VGPU_ERROR_CAPACITY_BELOW_USE "org.vgpu.Error.CapacityBelowUse"
#define VGPU_ERROR_ACCESS_DENIED "org.vgpu.Error.AccessDenied"
#define VGPU_ERROR_STORAGE_FAILURE "org.vgpu.Error.StorageFailure"
#define VGPU_ERROR_NOT_CONNECTED "org.vgpu.Error.NotConnected" /* Ingest1: the VM has no guest connected */
/* Iommu1 (vgpu-iommud) */
#define VGPU_ERROR_NO_SUCH_DEVICE "org.vgpu.Error.NoSuchDevice"
#define VGPU_ERROR_NOT_A_GPU "org.vgpu.Error.NotAGpu"
#define VGPU_ERROR_GROUP_NOT_VIABLE "org.vgpu.Error.GroupNotViable"
#define VGPU_ERROR_DEVICE_IN_USE "org.vgpu.Error.DeviceInUse"
#define VGPU_ERROR_HOST_CONSOLE "org.vgpu.Error.HostConsole"
#define VGPU_ERROR_NOT_SUPPORTED "org.vgpu.Error.NotSupported"
#define VGPU_ERROR_FAILED "org.vgpu.Error.Failed"

/* sd-bus.h defines sd_bus_flush_close_unrefp(), sd_bus_message_unrefp(), … for these. */
#define _cleanup_bus_ _cleanup_(sd_bus_flush_close_unrefp)
#define _cleanup_bus_message_ _cleanup_(sd_bus_message_unrefp)
#define _cleanup_bus_error_ _cleanup_(sd_bus_error_free)

/* Opens the system bus, or the bus named by DBUS_SYSTEM_BUS_ADDRESS (vgpu-devstack's private one). */
int bus_open_system(sd_bus **ret);

/* A service's event loop: the default sd-event loop, with SIGTERM and SIGINT blocked and delivered to it
 * (through a signalfd). `on_stop` handles both; NULL ends the loop with status 0. Logs what failed. */
int service_event_open(sd_event_signal_handler_t on_stop, void *userdata, sd_event **ret);

/* A service's start on the bus, in two steps so that a service can subscribe to signals in between:
 * bus_serve_object() opens the system bus, publishes `vtable` at `path`, attaches the bus to `event` and
 * makes a lost bus end the event loop with an error (so Restart=on-failure restarts the service);
 * bus_claim_name() then owns `name`. Both log what failed and why; `what_else` completes "another … is
 * running" when the name is taken (e.g. "vgpu-configd"). */
int bus_serve_object(sd_event *event, const char *path, const char *interface, const sd_bus_vtable *vtable,
                     void *userdata, sd_bus **ret);
int bus_claim_name(sd_bus *bus, const char *name, const char *what_else);

/* {sv} entries inside an open a{sv} container. */
int bus_dict_append_string(sd_bus_message *m, const char *key, const char *value);
int bus_dict_append_u32(sd_bus_message *m, const char *key, uint32_t value);
int bus_dict_append_u64(sd_bus_message *m, const char *key, uint64_t value);
int bus_dict_append_i32(sd_bus_message *m, const char *key, int32_t value);
int bus_dict_append_bool(sd_bus_message *m, const char *key, bool value);

/* Reads an a{sv} of options, calling `handler` for each entry with the key and the variant's signature;
 * the handler must read the variant (e.g. sd_bus_message_read(m, "v", "s", &s)) or set `error` and fail. */
typedef int (*BusOptionHandler)(sd_bus_message *m, const char *key, const char *type, void *userdata,
                                sd_bus_error *error);
int bus_read_options(sd_bus_message *m, BusOptionHandler handler, void *userdata, sd_bus_error *error);

/* The caller of a method, as the bus daemon reports it (never as the caller claims). */
typedef struct BusCaller {
        uid_t uid;
        pid_t pid;
} BusCaller;

int bus_get_caller(sd_bus_message *m, BusCaller *ret);

/* Privileged methods are allowed for root and for users whose account is a member of `admin_gid`
 * (primary or supplementary, per the user database: the bus cannot forge a uid, and the membership is
 * read from /etc/group and NSS, not from the calling process, so it cannot be raced through PID reuse).
 * Returns 1 if allowed, 0 if not, negative errno on failure. admin_gid (gid_t)-1 means root only. */
int bus_caller_is_admin(const BusCaller *caller, gid_t admin_gid);

/* The whole check of a privileged method: who calls (from the bus), whether that is root or a member of
 * `admin_group` (looked up now, so a group created later counts at once; NULL: root only), a notice in the
 * log when refused, and org.vgpu.Error.AccessDenied saying that `action` (e.g. "Changing the vgpu
 * configuration") needs it. Returns 0 when allowed (with the caller in *ret), else a negative value with
 * `error` set. */
int bus_authorize_admin(sd_bus_message *m, const char *admin_group, const char *action, BusCaller *ret,
                        sd_bus_error *error);

/* A variant value read out of an a{sv} record, for clients that print records generically. */
typedef enum BusValueType {
        BUS_VALUE_STRING,
        BUS_VALUE_UINT,
        BUS_VALUE_INT,
        BUS_VALUE_BOOL,
        BUS_VALUE_STRV, /* as */
} BusValueType;

typedef struct BusDictEntry {
        char *key;
        BusValueType type;
        char *str;
        uint64_t u;
        int64_t i;
        bool b;
        char **strv; /* NULL-terminated */
} BusDictEntry;

typedef struct BusDict {
        BusDictEntry *entries;
        size_t n;
} BusDict;

/* Reads one a{sv} (string, integer, boolean and string-array variants; other types are skipped). */
int bus_dict_read(sd_bus_message *m, BusDict *ret);
void bus_dict_done(BusDict *d);
const BusDictEntry *bus_dict_get(const BusDict *d, const char *key);
const char *bus_dict_get_string(const BusDict *d, const char *key);
uint64_t bus_dict_get_uint(const BusDict *d, const char *key);
int64_t bus_dict_get_int(const BusDict *d, const char *key);
/* false / NULL when the key is absent or of another type. */
bool bus_dict_get_bool(const BusDict *d, const char *key);
char **bus_dict_get_strv(const BusDict *d, const char *key);

/* Reads aa{sv} into an array of BusDict. */
int bus_dict_array_read(sd_bus_message *m, BusDict **ret, size_t *ret_n);
void bus_dict_array_free(BusDict *a, size_t n);
