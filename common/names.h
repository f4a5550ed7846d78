/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The domain's names and value rules, shared by every service and tool: pool ids, priorities, VM ids,
 * uuids, pool modes and memory sizes. One definition, so the CLI, the services and the database agree. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#define POOL_ID_MAX 16             /* characters, without the terminating NUL */
#define UUID_STRING_LEN 36
#define VM_ID_MAX 2147483647u      /* fits SQLite's INTEGER and a D-Bus int32 */
#define VM_NAME_MAX 128
#define POOL_CAPACITY_MAX 65536u
#define POOL_DESCRIPTION_MAX 256
#define GPU_RESOURCE_MAX 128

typedef enum Priority {
        PRIORITY_HIGH,
        PRIORITY_MEDIUM,
        PRIORITY_LOW,
        _PRIORITY_MAX,
        _PRIORITY_INVALID = -1,
} Priority;

typedef enum PoolMode {
        POOL_MODE_ISOLATED,
        POOL_MODE_SHARED,
        _POOL_MODE_MAX,
        _POOL_MODE_INVALID = -1,
} PoolMode;

typedef enum IommuPolicy {
        IOMMU_POLICY_REQUIRED, /* serve the VM only while the host's IOMMU protection is in force */
        IOMMU_POLICY_AUDIT,    /* serve it regardless, but report every lapse */
        _IOMMU_POLICY_MAX,
        _IOMMU_POLICY_INVALID = -1,
} IommuPolicy;

/* ^[A-Za-z][A-Za-z0-9_]{0,15}$ — valid as a D-Bus name element, an object path element and a systemd
 * instance name. */
bool pool_id_is_valid(const char *s);

Priority priority_from_string(const char *s);
const char *priority_to_string(Priority p);

PoolMode pool_mode_from_string(const char *s);
const char *pool_mode_to_string(PoolMode m);

IommuPolicy iommu_policy_from_string(const char *s);
const char *iommu_policy_to_string(IommuPolicy p);

/* A decimal VM id in 1..VM_ID_MAX with no sign, spaces or leading zeros. Returns 0 or -EINVAL / -ERANGE. */
int vm_id_parse(const char *s, uint32_t *ret);
bool vm_id_is_valid(uint64_t id);

/* The canonical 8-4-4-4-12 hexadecimal form (either case on input). */
bool uuid_is_valid(const char *s);
/* Copies a valid uuid in lowercase into `out` (UUID_STRING_LEN + 1 bytes). */
int uuid_normalize(const char *s, char out[static UUID_STRING_LEN + 1]);

/* Printable text without control characters, at most `max` bytes, valid UTF-8. */
bool text_is_valid(const char *s, size_t max);

/* Memory sizes: "4096", "512K", "8M", "16G", "1T" (binary units; an optional "iB" or "B" suffix). */
int size_parse(const char *s, uint64_t *ret);
/* Formats like "8.0G" / "512M" / "4096B" into buf. */
const char *size_format(uint64_t bytes, char *buf, size_t len);

/* A pool's GPU resource: "" (none yet), "gpu:<pci address or GPU uuid>", "mig:<MIG uuid>",
 * "sm-share:<gpu>:<percent>". Only the grammar is checked here; whether it exists is the GPU service's job. */
bool gpu_resource_is_valid(const char *s);
