/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The executor's handle table: the only way a VM names its GPU memory, modules and functions. A handle is
 * an opaque 64-bit value — this table's random salt, a generation and a slot index — so that a handle
 * of another VM (another executor, another salt), a freed one (older generation), one of the wrong kind or a
 * made-up one is simply not found; nothing a guest sends is ever used as a pointer. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef enum HandleKind {
        HANDLE_MEMORY = 1,
        HANDLE_MODULE = 2,
        HANDLE_FUNCTION = 3,
} HandleKind;

/* Handle bits: salt (32) | generation (12) | index (20). */
#define HANDLE_INDEX_BITS      20u
#define HANDLE_GENERATION_BITS 12u
#define HANDLE_SLOTS_MAX       (UINT32_C(1) << HANDLE_INDEX_BITS)
#define HANDLE_TABLE_INITIAL   16u

typedef struct HandleTable HandleTable;

/* salt 0: draw a random non-zero one (getrandom). max_slots: 0 for HANDLE_SLOTS_MAX, else at most that;
 * the table starts small and doubles up to it. */
int handle_table_new(uint32_t salt, uint32_t max_slots, HandleTable **ret);
/* Takes NULL; the objects are the caller's and must have been released (handle_table_pop()) first. */
HandleTable *handle_table_free(HandleTable *t);

/* A new handle naming object (not NULL). -ENOSPC when max_slots live handles exist, -ENOMEM. */
int handle_issue(HandleTable *t, HandleKind kind, void *object, uint64_t *ret);
/* The object, or NULL when handle is not a live handle of this kind in this table. */
void *handle_lookup(const HandleTable *t, uint64_t handle, HandleKind kind);
/* Like lookup, and frees the handle: its slot's generation moves on, so the value is stale from now on. */
void *handle_release(HandleTable *t, uint64_t handle, HandleKind kind);
/* Releases any one live handle and returns its object (for tear-down), NULL when empty. */
void *handle_table_pop(HandleTable *t, HandleKind *ret_kind);

uint32_t handle_table_count(const HandleTable *t);    /* live handles */
uint32_t handle_table_capacity(const HandleTable *t); /* slots allocated so far */
uint32_t handle_table_salt(const HandleTable *t);
