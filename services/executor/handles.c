/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The per-VM handle table. Freed slots are reused first-in first-out, so a slot's 12-bit generation
 * comes round again only after 4096 reuses of that very slot, each of which needed every other free slot to be
 * reused before it; together with the per-process salt this makes a stale or forged handle a lookup miss. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/random.h>

#include "handles.h"

#define INDEX_MASK      ((UINT64_C(1) << HANDLE_INDEX_BITS) - 1)
#define GENERATION_MASK ((UINT32_C(1) << HANDLE_GENERATION_BITS) - 1)
#define NO_SLOT         UINT32_MAX

typedef struct HandleSlot {
        void *object;     /* NULL: free */
        uint32_t generation;
        uint32_t next_free; /* the FIFO of free slots */
        HandleKind kind;
} HandleSlot;

struct HandleTable {
        HandleSlot *slots;
        uint32_t capacity;
        uint32_t max_slots;
        uint32_t count;
        uint32_t free_head, free_tail;
        uint32_t salt;
        uint32_t scan; /* handle_table_pop()'s cursor */
};

static uint32_t random_salt(void)
{
        uint32_t s = 0;

        /* Never 0, so that no handle is ever VGPU_HANDLE_NULL. getrandom() without flags blocks only
         * until the entropy pool is initialized and fails only on EINTR; the fallback is weaker but still
         * differs between processes. */
        while (s == 0) {
                if (getrandom(&s, sizeof(s), 0) != sizeof(s))
                        s = (uint32_t)(uintptr_t)&s ^ (uint32_t)random();
        }
        return s;
}

int handle_table_new(uint32_t salt, uint32_t max_slots, HandleTable **ret)
{
        HandleTable *t;

        if (max_slots == 0)
                max_slots = HANDLE_SLOTS_MAX;
        if (max_slots > HANDLE_SLOTS_MAX || !ret)
                return -EINVAL;
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->salt = salt != 0 ? salt : random_salt();
        t->max_slots = max_slots;
        t->free_head = t->free_tail = NO_SLOT;
        *ret = t;
        return 0;
}

HandleTable *handle_table_free(HandleTable *t)
{
        if (!t)
                return NULL;
        free(t->slots);
        free(t);
        return NULL;
}

static void free_list_append(HandleTable *t, uint32_t i)
{
        t->slots[i].next_free = NO_SLOT;
        if (t->free_tail == NO_SLOT)
                t->free_head = i;
        else
                t->slots[t->free_tail].next_free = i;
        t->free_tail = i;
}

static int table_grow(HandleTable *t)
{
        uint32_t n = t->capacity == 0 ? HANDLE_TABLE_INITIAL : t->capacity * 2;
        HandleSlot *s;

        if (n > t->max_slots)
                n = t->max_slots;
        if (n <= t->capacity)
                return -ENOSPC;
        s = reallocarray(t->slots, n, sizeof(*s));
        if (!s)
                return -ENOMEM;
        t->slots = s;
        for (uint32_t i = t->capacity; i < n; i++) {
                t->slots[i] = (HandleSlot){.generation = 1};
                free_list_append(t, i);
        }
        t->capacity = n;
        return 0;
}

int handle_issue(HandleTable *t, HandleKind kind, void *object, uint64_t *ret)
{
        HandleSlot *s;
        uint32_t i;
        int r;

        if (!t || !object || !ret)
                return -EINVAL;
        if (t->free_head == NO_SLOT) {
                r = table_grow(t);
                if (r < 0)
                        return r;
        }
        i = t->free_head;
        s = &t->slots[i];
        t->free_head = s->next_free;
        if (t->free_head == NO_SLOT)
                t->free_tail = NO_SLOT;
        s->object = object;
        s->kind = kind;
        t->count++;
        *ret = (uint64_t)t->salt << 32 | (uint64_t)s->generation << HANDLE_INDEX_BITS | i;
        return 0;
}

static HandleSlot *slot_of(const HandleTable *t, uint64_t handle, HandleKind kind)
{
        uint32_t i = (uint32_t)(handle & INDEX_MASK);
        uint32_t generation = (uint32_t)(handle >> HANDLE_INDEX_BITS) & GENERATION_MASK;
        HandleSlot *s;

        if (!t || (uint32_t)(handle >> 32) != t->salt || i >= t->capacity)
                return NULL;
        s = &t->slots[i];
        if (!s->object || s->generation != generation || s->kind != kind)
                return NULL;
        return s;
}

void *handle_lookup(const HandleTable *t, uint64_t handle, HandleKind kind)
{
        HandleSlot *s = slot_of(t, handle, kind);

        return s ? s->object : NULL;
}

static void *slot_release(HandleTable *t, uint32_t i)
{
        HandleSlot *s = &t->slots[i];
        void *object = s->object;

        s->object = NULL;
        /* Generation 0 is skipped so that a zeroed handle field never matches a fresh slot. */
        s->generation = (s->generation + 1) & GENERATION_MASK;
        if (s->generation == 0)
                s->generation = 1;
        free_list_append(t, i);
        t->count--;
        return object;
}

void *handle_release(HandleTable *t, uint64_t handle, HandleKind kind)
{
        HandleSlot *s = slot_of(t, handle, kind);

        return s ? slot_release(t, (uint32_t)(s - t->slots)) : NULL;
}

void *handle_table_pop(HandleTable *t, HandleKind *ret_kind)
{
        if (!t || t->count == 0)
                return NULL;
        /* The cursor wraps, so slots issued again behind it are still found; tear-down stays linear. */
        for (uint32_t n = 0; n < t->capacity; n++, t->scan = (t->scan + 1) % t->capacity)
                if (t->slots[t->scan].object) {
                        if (ret_kind)
                                *ret_kind = t->slots[t->scan].kind;
                        return slot_release(t, t->scan);
                }
        return NULL;
}

uint32_t handle_table_count(const HandleTable *t)
{
        return t ? t->count : 0;
}

uint32_t handle_table_capacity(const HandleTable *t)
{
        return t ? t->capacity : 0;
}

uint32_t handle_table_salt(const HandleTable *t)
{
        return t ? t->salt : 0;
}
