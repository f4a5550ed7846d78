/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One thread, many rings: spin within a budget, then arm every ring and sleep on their wait fds. The
 * no-lost-wake-up argument is the ring's (docs/protocol.md, "Notification suppression"): a consumer is slept
 * on only after its prepare_wait() stored its event index, fenced and found nothing, so a producer that
 * publishes afterwards sees the event index and notifies, which makes the wait fd readable. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "poller.h"
#include "vgpu-util.h"

#define EVENTS_PER_WAIT 64
#define SCANS_PER_CLOCK 8 /* clock reads are cheap (vDSO) but not free: look at it every few scans */

typedef struct Slot {
        VgpuPollerConsumer c;
        unsigned id;
} Slot;

struct VgpuPoller {
        int epoll_fd;
        uint64_t spin_ns;
        Slot **slots;
        size_t n_slots, allocated;
        unsigned next_id;
        char mode[32];
        VgpuPollerStats stats;
};

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield");
#endif
}

int vgpu_poller_spin_usec_policy(const char *env_value, long online_cpus, uint64_t *ret_usec)
{
        char *end = NULL;
        unsigned long long v;

        if (!env_value) {
                *ret_usec = online_cpus < VGPU_POLLER_MIN_CPUS_TO_SPIN ? 0 : VGPU_POLLER_SPIN_USEC_DEFAULT;
                return 0;
        }
        if (*env_value < '0' || *env_value > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(env_value, &end, 10);
        if (errno != 0 || *end != '\0' || v > VGPU_POLLER_SPIN_USEC_MAX)
                return -EINVAL;
        *ret_usec = v;
        return 0;
}

int vgpu_poller_spin_usec_from_environment(uint64_t *ret_usec)
{
        return vgpu_poller_spin_usec_policy(getenv("VGPU_SPIN_USEC"), sysconf(_SC_NPROCESSORS_ONLN), ret_usec);
}

int vgpu_poller_new(uint64_t spin_usec, VgpuPoller **ret)
{
        VgpuPoller *p;

        if (!ret || spin_usec > VGPU_POLLER_SPIN_USEC_MAX)
                return -EINVAL;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (p->epoll_fd < 0) {
                int r = negative_errno();
                free(p);
                return r;
        }
        p->spin_ns = spin_usec * 1000;
        if (spin_usec == 0)
                snprintf(p->mode, sizeof(p->mode), "block");
        else
                snprintf(p->mode, sizeof(p->mode), "spin %" PRIu64 "us", spin_usec);
        *ret = p;
        return 0;
}

VgpuPoller *vgpu_poller_free(VgpuPoller *p)
{
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_slots; i++)
                free(p->slots[i]);
        free(p->slots);
        closep(&p->epoll_fd);
        free(p);
        return NULL;
}

const char *vgpu_poller_mode(const VgpuPoller *p)
{
        return p->mode;
}

const VgpuPollerStats *vgpu_poller_stats(const VgpuPoller *p)
{
        return &p->stats;
}

int vgpu_poller_add(VgpuPoller *p, const VgpuPollerConsumer *c, unsigned *ret_id)
{
        struct epoll_event ev = {.events = EPOLLIN};
        Slot *s;

        if (!c || !c->has_work || !c->prepare_wait || !c->dispatch || !c->endpoint)
                return -EINVAL;
        if (p->n_slots == p->allocated) {
                size_t n = p->allocated ? p->allocated * 2 : 16;
                Slot **grown = realloc(p->slots, n * sizeof(*grown));
                if (!grown)
                        return -ENOMEM;
                p->slots = grown;
                p->allocated = n;
        }
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *s = (Slot){.c = *c, .id = p->next_id++};
        ev.data.ptr = s;
        /* Level-triggered: a notification not yet acked keeps the fd ready, so none is ever missed. */
        if (epoll_ctl(p->epoll_fd, EPOLL_CTL_ADD, vgpu_endpoint_wait_fd(c->endpoint), &ev) < 0) {
                int r = negative_errno();
                free(s);
                return r;
        }
        p->slots[p->n_slots++] = s;
        if (ret_id)
                *ret_id = s->id;
        return 0;
}

int vgpu_poller_remove(VgpuPoller *p, unsigned id)
{
        for (size_t i = 0; i < p->n_slots; i++) {
                Slot *s = p->slots[i];

                if (s->id != id)
                        continue;
                (void)epoll_ctl(p->epoll_fd, EPOLL_CTL_DEL, vgpu_endpoint_wait_fd(s->c.endpoint), NULL);
                p->slots[i] = p->slots[--p->n_slots];
                free(s);
                return 0;
        }
        return -ENOENT;
}

static bool any_work(const VgpuPoller *p)
{
        for (size_t i = 0; i < p->n_slots; i++)
                if (p->slots[i]->c.has_work(p->slots[i]->c.userdata))
                        return true;
        return false;
}

/* Dispatches every consumer that has work now. */
static int dispatch_ready(VgpuPoller *p)
{
        int n = 0;

        for (size_t i = 0; i < p->n_slots; i++) {
                const VgpuPollerConsumer *c = &p->slots[i]->c;
                int r;

                if (!c->has_work(c->userdata))
                        continue;
                r = c->dispatch(c->userdata);
                if (r < 0)
                        return r;
                p->stats.dispatches++;
                n++;
        }
        return n;
}

/* Spins until some consumer has work or the budget is spent; true when work was found. The budget is
 * checked every SCANS_PER_CLOCK scans, so one spin lasts at most the budget plus that many scans. */
static bool spin(VgpuPoller *p)
{
        uint64_t start = now_ns(), elapsed = 0;
        bool found = false;

        for (unsigned scans = 1;; scans++) {
                if (any_work(p)) {
                        found = true;
                        break;
                }
                if (scans % SCANS_PER_CLOCK == 0) {
                        elapsed = now_ns() - start;
                        if (elapsed >= p->spin_ns)
                                break;
                }
                cpu_relax();
        }
        if (found)
                elapsed = now_ns() - start;
        p->stats.spin_ns_total += elapsed;
        if (elapsed > p->stats.spin_ns_max)
                p->stats.spin_ns_max = elapsed;
        return found;
}

/* The final check of every consumer. Returns > 0 when any reported work: then nobody may sleep. Arming
 * consumers that then go unslept on is harmless: at worst a later notification wakes us spuriously. */
static int arm(VgpuPoller *p)
{
        int found = 0;

        for (size_t i = 0; i < p->n_slots; i++) {
                const VgpuPollerConsumer *c = &p->slots[i]->c;
                int r = c->prepare_wait(c->userdata);

                if (r < 0)
                        return r;
                if (r > 0)
                        found++;
        }
        return found;
}

static int sleep_and_ack(VgpuPoller *p, int timeout_ms)
{
        struct epoll_event events[EVENTS_PER_WAIT];
        int n;

        p->stats.sleeps++;
        n = epoll_wait(p->epoll_fd, events, EVENTS_PER_WAIT, timeout_ms);
        if (n < 0)
                return errno == EINTR ? 0 : negative_errno();
        if (n == 0)
                return -ETIMEDOUT;
        /* Ack before looking at the rings: a notification sent after the ack makes the fd ready again, so
         * work published after our look is never left without a wake-up. */
        for (int i = 0; i < n; i++) {
                Slot *s = events[i].data.ptr;
                int r = vgpu_endpoint_ack(s->c.endpoint);

                if (r < 0)
                        return r;
                p->stats.wakeups++;
        }
        return n;
}

int vgpu_poller_run_once(VgpuPoller *p, int timeout_ms)
{
        int r;

        p->stats.rounds++;
        if (p->spin_ns > 0 && spin(p)) {
                p->stats.found_spinning++;
                return dispatch_ready(p);
        }
        r = arm(p);
        if (r < 0)
                return r;
        if (r > 0) {
                p->stats.found_arming++;
                return dispatch_ready(p);
        }
        r = sleep_and_ack(p, timeout_ms);
        if (r <= 0)
                return r;
        return dispatch_ready(p);
}
