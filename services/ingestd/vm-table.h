/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The registered VMs, mirrored from configd: a small struct and one listening socket each. Rings, regions and
 * counters beyond these exist only while a guest is connected (channel.h). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "names.h"
#include "stub-announcement.h"

struct Manager;
typedef struct Channel Channel;

/* What the VM's vgpu-stub last announced (stub-socket.c). */
typedef enum StubState {
        STUB_STATE_NONE,      /* nothing heard since the VM was registered */
        STUB_STATE_ANNOUNCED, /* a line that parsed: Vm.stub holds it */
        STUB_STATE_REFUSED,   /* a line naming this VM that did not parse */
} StubState;

typedef struct Vm {
        struct Manager *manager;
        uint32_t vm_id;
        char uuid[37]; /* lowercase, "" when configd has none: how a Xen domain's device names its VM */
        char pool[POOL_ID_MAX + 1];
        Priority priority;
        uint64_t memory_quota;
        IommuPolicy iommu_policy;
        int listen_fd; /* $VGPU_RUNTIME_DIR/vm/N.sock, -1 while none */
        sd_event_source *listen_source;
        int pending_fd; /* an accepted connection whose hello has not arrived yet; -1 when none */
        sd_event_source *pending_source, *pending_timer;
        Channel *channel; /* the connected guest, or NULL */
        StubState stub_state;
        StubAnnouncement stub;
        bool seen;        /* mark for a resync: set for every VM configd still lists */
} Vm;

/* Sorted by vm_id; lookups by binary search. */
typedef struct VmTable {
        Vm **vms;
        size_t n, allocated;
} VmTable;

Vm *vm_table_get(const VmTable *t, uint32_t vm_id);
/* Inserts a new, empty Vm (socket not yet made). -EEXIST when present. */
int vm_table_add(VmTable *t, struct Manager *m, uint32_t vm_id, Vm **ret);
/* Removes and frees: closes its channel (CHANNEL_CLOSED) and removes its socket. */
void vm_table_remove(VmTable *t, uint32_t vm_id);
void vm_table_clear(VmTable *t);

/* Creates the VM's socket (mode 0600) and starts accepting on it. Idempotent. */
int vm_listen(Vm *vm);
/* Stops accepting, removes the socket node and drops a pending (not yet handshaken) connection. */
void vm_unlisten(Vm *vm);

/* What a configd record says; applied by vm_apply_record(). */
typedef struct VmSettings {
        uint32_t vm_id;
        const char *uuid; /* NULL or "": none */
        const char *pool;
        Priority priority;
        uint64_t memory_quota;
        IommuPolicy iommu_policy;
} VmSettings;

/* Creates or updates the VM from configd's record; a pool change of a connected VM detaches it from the
 * old pool's scheduler (channel_pool_changed()). */
int vm_apply_settings(struct Manager *m, const VmSettings *s);
/* The VM whose configd record carries this (lowercase) uuid; NULL when none does. */
Vm *vm_table_find_uuid(const VmTable *t, const char *uuid);
