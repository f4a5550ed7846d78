/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The run queue. Every queued command sits on two intrusive lists: its level's FIFO and its VM's FIFO.
 * Picking chooses a level head, then dispatches that VM's oldest command instead when it is not the head
 * itself (priority inheritance): O(1) per pick, and a VM whose priority rose never overtakes its own past. */
#include <errno.h>
#include <stdlib.h>

#include "queue.h"

typedef struct QueueVm QueueVm;
typedef struct Entry Entry;

struct Entry {
        QueueItem item;
        uint64_t arrival; /* pool-wide arrival order */
        Entry *level_prev, *level_next;
        Entry *vm_next;
        QueueVm *vm;
};

struct QueueVm {
        uint32_t vm_id;
        Entry *head, *tail; /* oldest first; commands leave from the head only */
        size_t n;
};

typedef struct Level {
        Entry *head, *tail;
        size_t n;
} Level;

struct Queue {
        Level levels[_PRIORITY_MAX];
        QueueVm **vms;
        size_t n_vms, allocated_vms;
        size_t n_queued;
        uint64_t next_arrival;
        unsigned in_flight, max_in_flight;
        uint64_t starvation_ns;
        uint64_t promoted, inherited;
};

int queue_new(unsigned max_in_flight, uint64_t starvation_ns, Queue **ret)
{
        Queue *q;

        if (max_in_flight < 1 || max_in_flight > QUEUE_MAX_IN_FLIGHT_MAX)
                return -EINVAL;
        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->max_in_flight = max_in_flight;
        q->starvation_ns = starvation_ns;
        *ret = q;
        return 0;
}

Queue *queue_free(Queue *q)
{
        if (!q)
                return NULL;
        for (size_t i = 0; i < q->n_vms; i++) {
                for (Entry *e = q->vms[i]->head, *next; e; e = next) {
                        next = e->vm_next;
                        free(e);
                }
                free(q->vms[i]);
        }
        free(q->vms);
        free(q);
        return NULL;
}

static QueueVm *vm_find(const Queue *q, uint32_t vm_id, size_t *ret_index)
{
        for (size_t i = 0; i < q->n_vms; i++)
                if (q->vms[i]->vm_id == vm_id) {
                        if (ret_index)
                                *ret_index = i;
                        return q->vms[i];
                }
        return NULL;
}

static QueueVm *vm_get(Queue *q, uint32_t vm_id)
{
        QueueVm *vm = vm_find(q, vm_id, NULL);

        if (vm)
                return vm;
        if (q->n_vms == q->allocated_vms) {
                size_t n = q->allocated_vms ? q->allocated_vms * 2 : 8;
                QueueVm **grown = realloc(q->vms, n * sizeof(*grown));
                if (!grown)
                        return NULL;
                q->vms = grown;
                q->allocated_vms = n;
        }
        vm = calloc(1, sizeof(*vm));
        if (!vm)
                return NULL;
        vm->vm_id = vm_id;
        q->vms[q->n_vms++] = vm;
        return vm;
}

/* A VM with nothing queued is dropped from the table, so the table holds only VMs with work. */
static void vm_put(Queue *q, QueueVm *vm)
{
        size_t i;

        if (vm->n > 0 || !vm_find(q, vm->vm_id, &i))
                return;
        q->vms[i] = q->vms[--q->n_vms];
        free(vm);
}

int queue_push(Queue *q, const VgpuHostRequest *req, uint64_t now_ns)
{
        Level *l;
        QueueVm *vm;
        Entry *e;

        if (req->priority >= _PRIORITY_MAX)
                return -EINVAL;
        if (q->n_queued >= QUEUE_MAX_QUEUED)
                return -ENOBUFS;
        vm = vm_get(q, req->vm_id);
        if (!vm)
                return -ENOMEM;
        e = calloc(1, sizeof(*e));
        if (!e) {
                vm_put(q, vm);
                return -ENOMEM;
        }
        *e = (Entry){.item = {.req = *req, .enqueue_ns = now_ns, .level = (Priority)req->priority},
                     .arrival = q->next_arrival++, .vm = vm};
        l = &q->levels[req->priority];
        e->level_prev = l->tail;
        if (l->tail)
                l->tail->level_next = e;
        else
                l->head = e;
        l->tail = e;
        l->n++;
        if (vm->tail)
                vm->tail->vm_next = e;
        else
                vm->head = e;
        vm->tail = e;
        vm->n++;
        q->n_queued++;
        return 0;
}

/* Unlinks an entry that is its VM's head from both lists and frees it, leaving its item in *ret. */
static void entry_take(Queue *q, Entry *e, QueueItem *ret)
{
        Level *l = &q->levels[e->item.level];
        QueueVm *vm = e->vm;

        if (e->level_prev)
                e->level_prev->level_next = e->level_next;
        else
                l->head = e->level_next;
        if (e->level_next)
                e->level_next->level_prev = e->level_prev;
        else
                l->tail = e->level_prev;
        l->n--;
        vm->head = e->vm_next;
        if (!vm->head)
                vm->tail = NULL;
        vm->n--;
        q->n_queued--;
        *ret = e->item;
        free(e);
        vm_put(q, vm);
}

/* The level head to serve: with the guard on, the oldest head that waited past the bound; else the head of
 * the highest non-empty level. *ret_promoted says the guard chose it over higher work. */
static Entry *choose_head(const Queue *q, uint64_t now_ns, unsigned levels, bool *ret_promoted)
{
        Entry *highest = NULL, *overdue = NULL;

        for (int l = 0; l < _PRIORITY_MAX; l++) {
                Entry *h = q->levels[l].head;

                if (!h || !(levels & (1u << l)))
                        continue;
                if (!highest)
                        highest = h;
                if (q->starvation_ns > 0 && now_ns - h->item.enqueue_ns >= q->starvation_ns &&
                    (!overdue || h->arrival < overdue->arrival))
                        overdue = h;
        }
        *ret_promoted = overdue && overdue != highest;
        return overdue ? overdue : highest;
}

int queue_pick_levels(Queue *q, uint64_t now_ns, unsigned levels, QueueItem *ret)
{
        bool promoted;
        Entry *chosen, *oldest;
        Priority level;

        if (q->in_flight >= q->max_in_flight || q->n_queued == 0)
                return 0;
        chosen = choose_head(q, now_ns, levels, &promoted);
        if (!chosen)
                return 0;
        level = chosen->item.level;
        oldest = chosen->vm->head;
        entry_take(q, oldest, ret);
        ret->promoted = promoted;
        ret->inherited = oldest != chosen;
        ret->chosen = level;
        q->promoted += promoted;
        q->inherited += ret->inherited;
        q->in_flight++;
        return 1;
}

int queue_pick(Queue *q, uint64_t now_ns, QueueItem *ret)
{
        return queue_pick_levels(q, now_ns, (1u << _PRIORITY_MAX) - 1, ret);
}

void queue_complete(Queue *q)
{
        if (q->in_flight > 0)
                q->in_flight--;
}

size_t queue_remove_vm(Queue *q, uint32_t vm_id, QueueRemoveFunc done, void *userdata)
{
        QueueVm *vm = vm_find(q, vm_id, NULL);
        size_t n = 0;

        while (vm) {
                bool last = vm->n == 1;
                QueueItem item;

                entry_take(q, vm->head, &item); /* frees vm with its last entry */
                n++;
                if (done)
                        done(&item, userdata);
                if (last)
                        break;
        }
        return n;
}

size_t queue_depth(const Queue *q, Priority level)
{
        return level >= 0 && level < _PRIORITY_MAX ? q->levels[level].n : 0;
}

size_t queue_depth_vm(const Queue *q, uint32_t vm_id)
{
        const QueueVm *vm = vm_find(q, vm_id, NULL);

        return vm ? vm->n : 0;
}

unsigned queue_in_flight(const Queue *q)
{
        return q->in_flight;
}

unsigned queue_max_in_flight(const Queue *q)
{
        return q->max_in_flight;
}

uint64_t queue_starvation_ns(const Queue *q)
{
        return q->starvation_ns;
}

uint64_t queue_promoted(const Queue *q)
{
        return q->promoted;
}

uint64_t queue_inherited(const Queue *q)
{
        return q->inherited;
}
