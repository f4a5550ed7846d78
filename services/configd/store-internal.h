/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared by the store's source files only: the Store object, transactions, SQLite error mapping and
 * the audit append. */
#pragma once

#include <sqlite3.h>

#include "config-store.h"
#include "store-migrations.h"

struct Store {
        sqlite3 *db;
        char *path;
        unsigned schema_version;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt *, sqlite3_finalize)
#define _cleanup_stmt_ _cleanup_(sqlite3_finalizep)

/* Maps an SQLite result code to a negative errno (0 for SQLITE_OK/ROW/DONE). */
int store_errno(int sqlite_rc);

/* Prepares `sql`; returns a negative errno (and logs SQLite's message) on failure. */
int store_prepare(Store *s, const char *sql, sqlite3_stmt **ret);
/* Runs a statement that returns no rows. */
int store_exec(Store *s, const char *sql);

/* BEGIN IMMEDIATE: takes the write lock up front, so the checks inside see what the write will see. */
int store_begin(Store *s);
/* Commits when r == 0, rolls back otherwise; returns r, or the commit's failure. */
int store_end(Store *s, int r);

int store_audit_append(Store *s, const AuditActor *who, const char *action, uint32_t vm_id, const char *pool,
                       const char *old_value, const char *new_value);

uint64_t store_now_usec(void);

/* Copies column `col` of the current row into a fixed buffer (truncating safely; the schema's CHECKs keep
 * stored values within the buffers' sizes). */
void store_column_text(sqlite3_stmt *st, int col, char *buf, size_t size);

/* Bind helpers that turn failures into negative errno. */
int store_bind_text(sqlite3_stmt *st, int idx, const char *value);
int store_bind_int64(sqlite3_stmt *st, int idx, int64_t value);
/* Steps once; returns 1 for a row, 0 for done, negative errno otherwise. */
int store_step(Store *s, sqlite3_stmt *st);
