/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Opening, checking and migrating the configuration database; transactions, error mapping and audit. */
#include <time.h>

#include "log.h"
#include "store-internal.h"

/* PRAGMA application_id of a vgpu database: "vgpu" in ASCII. Marks the file as ours, so that a path that
 * points at some other application's database is refused instead of migrated. */
#define STORE_APPLICATION_ID 0x76677075

int store_errno(int rc)
{
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return 0;
        case SQLITE_READONLY:
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EROFS;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
        case SQLITE_FORMAT:
                return -EBADMSG;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        case SQLITE_CONSTRAINT:
        case SQLITE_MISMATCH:
        case SQLITE_RANGE:
        case SQLITE_TOOBIG:
                return -EINVAL;
        default:
                return -EIO;
        }
}

uint64_t store_now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int store_prepare(Store *s, const char *sql, sqlite3_stmt **ret)
{
        int rc = sqlite3_prepare_v2(s->db, sql, -1, ret, NULL);

        if (rc != SQLITE_OK)
                return log_error_errno(store_errno(rc), "Failed to prepare statement on %s: %s", s->path,
                                       sqlite3_errmsg(s->db));
        return 0;
}

int store_step(Store *s, sqlite3_stmt *st)
{
        int rc = sqlite3_step(st);

        if (rc == SQLITE_ROW)
                return 1;
        if (rc == SQLITE_DONE)
                return 0;
        return log_error_errno(store_errno(rc), "Database %s: %s", s->path, sqlite3_errmsg(s->db));
}

int store_exec(Store *s, const char *sql)
{
        char *msg = NULL;
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);

        if (rc != SQLITE_OK) {
                int r = log_error_errno(store_errno(rc), "Database %s: %s", s->path,
                                        msg ? msg : sqlite3_errmsg(s->db));
                sqlite3_free(msg);
                return r;
        }
        return 0;
}

int store_bind_text(sqlite3_stmt *st, int idx, const char *value)
{
        return store_errno(sqlite3_bind_text(st, idx, value, -1, SQLITE_TRANSIENT));
}

int store_bind_int64(sqlite3_stmt *st, int idx, int64_t value)
{
        return store_errno(sqlite3_bind_int64(st, idx, value));
}

void store_column_text(sqlite3_stmt *st, int col, char *buf, size_t size)
{
        const unsigned char *t = sqlite3_column_text(st, col);

        snprintf(buf, size, "%s", t ? (const char *)t : "");
}

int store_begin(Store *s)
{
        return store_exec(s, "BEGIN IMMEDIATE");
}

int store_end(Store *s, int r)
{
        if (r == 0) {
                int k = store_exec(s, "COMMIT");
                if (k == 0)
                        return 0;
                r = k;
        }
        /* A failed COMMIT or statement may already have rolled back; only roll back what is still open. */
        if (!sqlite3_get_autocommit(s->db))
                (void)store_exec(s, "ROLLBACK");
        return r;
}

int store_audit_append(Store *s, const AuditActor *who, const char *action, uint32_t vm_id, const char *pool,
                       const char *old_value, const char *new_value)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(s,
                          "INSERT INTO audit (time_usec, uid, pid, action, vm_id, pool_id, old_value, new_value) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                          &st);
        if (r < 0)
                return r;
        if ((r = store_bind_int64(st, 1, (int64_t)store_now_usec())) < 0 ||
            (r = store_bind_int64(st, 2, who->uid)) < 0 || (r = store_bind_int64(st, 3, who->pid)) < 0 ||
            (r = store_bind_text(st, 4, action)) < 0 || (r = store_bind_int64(st, 5, vm_id)) < 0 ||
            (r = store_bind_text(st, 6, strempty(pool))) < 0 || (r = store_bind_text(st, 7, strempty(old_value))) < 0 ||
            (r = store_bind_text(st, 8, strempty(new_value))) < 0)
                return r;
        r = store_step(s, st);
        return r < 0 ? r : 0;
}

static int pragma_int(Store *s, const char *sql, int64_t *ret)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(s, sql, &st);
        if (r < 0)
                return r;
        r = store_step(s, st);
        if (r < 0)
                return r;
        *ret = r > 0 ? sqlite3_column_int64(st, 0) : 0;
        return 0;
}

/* PRAGMA quick_check: an O(N) structural check that catches a damaged file before it is written to. */
static int check_integrity(Store *s)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        const unsigned char *verdict;
        int r;

        r = store_prepare(s, "PRAGMA quick_check", &st);
        if (r < 0)
                return r;
        r = store_step(s, st);
        if (r < 0)
                return r;
        verdict = r > 0 ? sqlite3_column_text(st, 0) : NULL;
        if (!verdict || !streq((const char *)verdict, "ok"))
                return log_error_errno(-EBADMSG, "Database %s failed its integrity check: %s", s->path,
                                       verdict ? (const char *)verdict : "no verdict");
        return 0;
}

/* A file we may migrate: ours (application_id), or a brand new empty one. */
static int check_ownership(Store *s, unsigned version)
{
        int64_t app_id = 0, objects = 0;
        int r;

        r = pragma_int(s, "PRAGMA application_id", &app_id);
        if (r < 0)
                return r;
        if (app_id == STORE_APPLICATION_ID)
                return 0;
        if (app_id != 0)
                return log_error_errno(-EBADMSG, "Database %s belongs to another application (application_id %#llx); "
                                       "refusing to touch it.", s->path, (unsigned long long)app_id);
        r = pragma_int(s, "SELECT count(*) FROM sqlite_schema", &objects);
        if (r < 0)
                return r;
        if (objects > 0 || version > 0)
                return log_error_errno(-EBADMSG, "Database %s is not a vgpu database (it has tables but no vgpu "
                                       "application id); refusing to touch it.", s->path);
        return 0;
}

/* Reads the file without writing to it: ours, not newer than us, structurally sound. */
static int verify_file(Store *s)
{
        int64_t v = 0;
        int r;

        r = pragma_int(s, "PRAGMA user_version", &v);
        if (r < 0)
                return r;
        r = check_ownership(s, (unsigned)(v < 0 ? 0 : v));
        if (r < 0)
                return r;
        if (v < 0 || v > (int64_t)store_migrations_count)
                return log_error_errno(-EPROTO, "Database %s has schema version %lld, newer than this vgpu-configd "
                                       "understands (%u); refusing to use it.", s->path, (long long)v,
                                       store_migrations_count);
        s->schema_version = (unsigned)v;
        return check_integrity(s);
}

static int migrate(Store *s)
{
        int r;

        for (unsigned i = s->schema_version; i < store_migrations_count; i++) {
                const StoreMigration *m = &store_migrations[i];
                char pragmas[128];

                r = store_begin(s);
                if (r < 0)
                        return r;
                r = store_exec(s, m->sql);
                if (r == 0) {
                        snprintf(pragmas, sizeof(pragmas), "PRAGMA application_id = %d; PRAGMA user_version = %u",
                                 STORE_APPLICATION_ID, m->version);
                        r = store_exec(s, pragmas);
                }
                r = store_end(s, r);
                if (r < 0)
                        return log_error_errno(r, "Failed to apply schema migration %s to %s: %m", m->name, s->path);
                log_info("Applied schema migration %s to %s.", m->name, s->path);
        }
        s->schema_version = store_migrations_count;
        return 0;
}

/* Connection settings that touch nothing in the file. */
static int configure_connection(Store *s)
{
        /* Refuse writes to sqlite_schema through SQL and other ways a connection could damage the file. */
        sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
        sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
        sqlite3_extended_result_codes(s->db, 1);
        sqlite3_busy_timeout(s->db, 5000);

        if (sqlite3_db_readonly(s->db, "main") == 1)
                return log_error_errno(-EROFS, "Database %s is not writable.", s->path);
        return 0;
}

/* Only once the file is known to be ours and sound: WAL changes the file header. */
static int enable_wal(Store *s)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        const unsigned char *mode;
        int r;

        r = store_prepare(s, "PRAGMA journal_mode = WAL", &st);
        if (r < 0)
                return r;
        r = store_step(s, st);
        if (r < 0)
                return r;
        mode = r > 0 ? sqlite3_column_text(st, 0) : NULL;
        if (!mode || !streq((const char *)mode, "wal"))
                return log_error_errno(-EIO, "Database %s could not be switched to WAL mode (journal mode is %s).",
                                       s->path, mode ? (const char *)mode : "unknown");

        /* FULL: a commit is on disk (WAL synced) before it is acknowledged to the caller. */
        return store_exec(s, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON");
}

int store_open(const char *path, Store **ret)
{
        _cleanup_(store_freep) Store *s = NULL;
        int rc, r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->path = strdup(path);
        if (!s->path)
                return -ENOMEM;

        rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXRESCODE,
                             NULL);
        if (rc != SQLITE_OK)
                return log_error_errno(store_errno(rc), "Failed to open database %s: %s", path,
                                       s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));

        r = configure_connection(s);
        if (r < 0)
                return r;
        r = verify_file(s);
        if (r < 0)
                return r;
        r = enable_wal(s);
        if (r < 0)
                return r;
        r = migrate(s);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(s);
        return 0;
}

Store *store_free(Store *s)
{
        if (!s)
                return NULL;
        /* sqlite3_close_v2 checkpoints the WAL when this is the last connection. */
        sqlite3_close_v2(s->db);
        free(s->path);
        free(s);
        return NULL;
}

unsigned store_schema_version(const Store *s)
{
        return s->schema_version;
}

unsigned store_schema_version_latest(void)
{
        return store_migrations_count;
}

const char *store_path(const Store *s)
{
        return s->path;
}

const char *store_error_message(const Store *s)
{
        return sqlite3_errmsg(s->db);
}

sqlite3 *store_sqlite(Store *s)
{
        return s->db;
}
