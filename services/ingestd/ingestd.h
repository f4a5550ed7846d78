/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-ingestd's service context: what main.c, the configd mirror, the channels, the pool links and the
 * D-Bus side share. One thread, one sd-event loop. */
#pragma once

#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bus-util.h"
#include "vm-table.h"

typedef struct PoolLink PoolLink;
typedef struct VgpuXenBus VgpuXenBus;
typedef struct StubListener StubListener;

/* --xen: serve Xen channels when in dom0 with xenstore (auto), always (on: failing to is an error), never. */
typedef enum XenMode {
        XEN_MODE_AUTO,
        XEN_MODE_ON,
        XEN_MODE_OFF,
} XenMode;

typedef struct Manager {
        sd_event *event;
        sd_bus *bus;
        char *runtime_dir;
        char *vm_dir;      /* $runtime_dir/vm: the per-VM sockets */
        char *sched_dir;   /* $runtime_dir/sched: the schedulers' sockets */
        char *admin_group; /* NULL: root only */
        VmTable vms;
        PoolLink **links; /* one per pool that a connected VM needed, created on demand */
        size_t n_links;
        uint64_t next_generation; /* attachments: a reconnect or a pool move takes the next one */
        Channel **channels;       /* the connected ones, unordered: what the spin loop polls */
        size_t n_channels, allocated_channels;
        uint64_t spin_usec;       /* 0: block in sd-event only (the poller's start-up policy) */
        XenMode xen_mode;
        VgpuXenBus *xen;          /* the xenbus watch over backend/vgpu; NULL when Xen channels are off */
        sd_event_source *xen_source;
        StubListener *stub;       /* $runtime_dir/stub.sock: the vgpu-stub announcements */
        bool synced;              /* the mirror has read configd's state at least once */
        bool ready;               /* READY=1 sent */
        bool stopping;
} Manager;

/* spin.c: the bounded spin over connected channels and pool links (spin-then-block). */
int manager_add_channel(Manager *m, Channel *c);
void manager_remove_channel(Manager *m, Channel *c);
int manager_run(Manager *m);

/* config-mirror.c: configd's VMs, kept current from its signals. */
int mirror_start(Manager *m);

/* xen.c: Xen channels, started once the mirror has read configd (a frontend names its VM by uuid). */
int xen_start(Manager *m, XenMode mode);
void xen_stop(Manager *m);
const char *xen_mode_to_string(XenMode mode);
int xen_mode_from_string(const char *s);

/* stub-socket.c: QEMU's vgpu-stub announcements, checked against the mirror; the store always wins. */
int stub_listener_start(Manager *m);
void stub_listener_stop(Manager *m);
/* The mirror read configd: announcements that arrived before are checked now. */
void stub_mirror_synced(Manager *m);
/* A VM was registered: the newest announcement naming it (from a QEMU still connected) is checked now. */
void stub_vm_registered(Manager *m, Vm *vm);
/* ListChannels' "stub": "" (nothing heard), "matches", "mismatch" (against the store now), "refused". */
const char *stub_state_to_string(const Vm *vm);

/* ingest-bus.c */
extern const sd_bus_vtable ingest_vtable[];

/* pool-link.c keeps the links; the manager finds or creates them by pool name. */
PoolLink *manager_pool_link(Manager *m, const char *pool);
void manager_free_links(Manager *m);
