/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vgpu-ingestd's loop: sd-event is where it sleeps; on hosts with cores to spare (the poller's start-up
 * policy), it first polls its connected channels and pool links for a bounded time after each wake-up, so
 * the next request or completion is taken without a sleep and a wake-up (measured: about 6.5 µs a
 * blocking hop, 0.25 µs a spinning one). Only connected channels are polled, never the VM table, so
 * thousands of registered VMs cost the spin nothing. */
#include <time.h>

#include "channel.h"
#include "ingestd.h"
#include "log.h"
#include "pool-link.h"

/* While spinning, other event sources (the bus, new guests, timers) still get a turn this often. */
#define EVENT_SLICE_NS (1000u * 1000u)

int manager_add_channel(Manager *m, Channel *c)
{
        if (m->n_channels == m->allocated_channels) {
                size_t n = m->allocated_channels ? 2 * m->allocated_channels : 16;
                Channel **grown = realloc(m->channels, n * sizeof(*grown));

                if (!grown)
                        return -ENOMEM;
                m->channels = grown;
                m->allocated_channels = n;
        }
        m->channels[m->n_channels++] = c;
        return 0;
}

void manager_remove_channel(Manager *m, Channel *c)
{
        for (size_t i = 0; i < m->n_channels; i++)
                if (m->channels[i] == c) {
                        m->channels[i] = m->channels[--m->n_channels];
                        return;
                }
}

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One pass over everything that can have work: true if anything moved. Work that cannot be taken now (a
 * channel held back by its in-flight limit or waiting for its scheduler) does not count, so a stalled
 * channel never keeps the loop spinning. A channel may close (and leave the array, swapped with the
 * last) while it runs, so the index advances only past a channel still in place. */
static bool poll_once(Manager *m)
{
        bool moved = false;

        for (size_t i = 0; i < m->n_channels;) {
                Channel *c = m->channels[i];

                if (vgpu_ring_consumer_has_work(&c->req.ring)) {
                        uint64_t before = c->requests;

                        channel_run(c);
                        if (i < m->n_channels && m->channels[i] == c && c->requests != before)
                                moved = true;
                }
                if (i < m->n_channels && m->channels[i] == c)
                        i++;
        }
        for (size_t i = 0; i < m->n_links; i++) {
                PoolLink *l = m->links[i];
                uint64_t before = l->completed;

                if (l->state == POOL_LINK_READY && vgpu_ring_consumer_has_work(&l->cpl.ring)) {
                        (void)pool_link_on_completions(NULL, l->notify_fd, 0, l);
                        moved |= l->completed != before;
                }
        }
        return moved;
}

/* Polls until nothing has come for spin_usec; the handlers re-arm their rings when they find them empty,
 * so the sleep that follows misses nothing. */
static int spin(Manager *m)
{
        uint64_t budget = m->spin_usec * 1000u, idle_since = now_ns(), last_event = idle_since;
        int r;

        while (sd_event_get_state(m->event) != SD_EVENT_FINISHED) {
                uint64_t now;

                if (poll_once(m))
                        idle_since = now_ns();
                now = now_ns();
                if (now - idle_since >= budget)
                        return 0;
                if (now - last_event >= EVENT_SLICE_NS) {
                        last_event = now;
                        r = sd_event_run(m->event, 0);
                        if (r < 0)
                                return r;
                }
#if defined(__x86_64__) || defined(__i386__)
                __builtin_ia32_pause();
#endif
        }
        return 0;
}

int manager_run(Manager *m)
{
        int r, code = 0;

        if (m->spin_usec == 0)
                return sd_event_loop(m->event);
        while (sd_event_get_state(m->event) != SD_EVENT_FINISHED) {
                r = sd_event_run(m->event, UINT64_MAX);
                if (r < 0)
                        return r;
                r = spin(m);
                if (r < 0)
                        return r;
        }
        r = sd_event_get_exit_code(m->event, &code);
        return r < 0 ? r : code;
}
