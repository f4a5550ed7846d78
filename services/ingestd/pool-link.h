/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ingestd's end of one pool link (common/proto/pool-link.h): the connection to that pool's scheduler, the
 * host link whose request ring ingestd produces into, and the ATTACH / DETACH / EVENT messages. Made on
 * demand, when a VM of the pool first needs its scheduler; retried no more than once a second. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "proto/link.h"
#include "names.h"

struct Manager;
typedef struct Channel Channel;

#define POOL_LINK_SLOTS          1024u /* requests and completions in flight between ingestd and one pool */
#define POOL_LINK_RETRY_USEC     (1000u * 1000u)
#define POOL_LINK_READY_TIMEOUT_USEC (5000u * 1000u)

typedef enum PoolLinkState {
        POOL_LINK_DOWN,       /* no scheduler reached (yet, or any more) */
        POOL_LINK_CONNECTING, /* VgpuLinkStart sent; waiting for VgpuLinkReady */
        POOL_LINK_READY,
} PoolLinkState;

typedef struct PoolLink {
        struct Manager *manager;
        char pool[POOL_ID_MAX + 1];
        PoolLinkState state;
        int sock;
        void *region;
        size_t region_size;
        VgpuHostRequestProducer req;
        VgpuHostCompletionConsumer cpl;
        int kick_fd;   /* the scheduler waits on it: we write */
        int notify_fd; /* the scheduler writes it: we wait */
        sd_event_source *sock_source, *notify_source, *ready_timer;
        uint64_t next_attempt_usec; /* CLOCK_MONOTONIC */
        uint64_t submitted, completed;
} PoolLink;

/* Connects if the link is down and the retry delay has passed. True while the link is up or coming up. */
bool pool_link_available(PoolLink *l);
/* Asks the scheduler to serve the channel's VM (ATTACH + its region); sent now if the link is ready, else
 * when it becomes ready. The answer arrives as channel_attached(). */
int pool_link_attach(PoolLink *l, Channel *c);
void pool_link_detach(PoolLink *l, uint32_t vm_id, uint64_t generation, uint32_t status);
/* Pushes one stamped request; -EAGAIN when the link's ring is full, -ENOTCONN when not ready. */
int pool_link_submit(PoolLink *l, const VgpuHostRequest *hr);
const char *pool_link_state_to_string(PoolLinkState s);

/* Internal to pool-link.c and pool-link-connect.c. */
void pool_link_lost(PoolLink *l, const char *why);
int pool_link_on_completions(sd_event_source *s, int fd, uint32_t revents, void *userdata);
PoolLink *pool_link_free(PoolLink *l);
void pool_link_teardown(PoolLink *l);
