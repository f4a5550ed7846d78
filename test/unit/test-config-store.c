/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The configuration store against real SQLite files: rules, transactions, audit, migrations, damaged and
 * unwritable files, crashes and concurrent writers. */
#include <check.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "config-store.h"
#include "log.h"
#include "test-helpers.h"

static char *dir;
static char db_path[4096];
static const AuditActor admin = { .uid = 0, .pid = 4242 };

static void setup(void)
{
        dir = test_tmpdir_new();
        snprintf(db_path, sizeof(db_path), "%s/config.db", dir);
}

static void teardown(void)
{
        test_tmpdir_remove(dir);
        dir = NULL;
}

static Store *open_store(void)
{
        Store *s = NULL;
        int r = store_open(db_path, &s);

        ck_assert_msg(r == 0, "store_open(%s) failed: %s", db_path, strerror(-r));
        return s;
}

static VmRecord vm_new(uint32_t id, const char *pool, Priority prio)
{
        VmRecord vm = { .vm_id = id, .priority = prio, .memory_quota = STORE_QUOTA_POOL_DEFAULT };

        snprintf(vm.pool, sizeof(vm.pool), "%s", pool);
        return vm;
}

static int register_vm(Store *s, uint32_t id, const char *pool, Priority prio)
{
        VmRecord vm = vm_new(id, pool, prio), out;

        return store_register_vm(s, &admin, &vm, &out);
}

static uint32_t count_vms(Store *s)
{
        uint32_t n = 0;

        ck_assert_int_eq(store_count_vms(s, &n), 0);
        return n;
}

static int count_audit_cb(const AuditRecord *a, void *userdata)
{
        (*(unsigned *)userdata)++;
        return 0;
}

static unsigned count_audit(Store *s)
{
        unsigned n = 0;

        ck_assert_int_eq(store_read_audit(s, 0, 100000, 0, count_audit_cb, &n), 0);
        return n;
}

static int last_audit_cb(const AuditRecord *a, void *userdata)
{
        *(AuditRecord *)userdata = *a;
        return 0;
}

START_TEST(test_fresh_store_has_pools_a_and_b_with_room_for_16)
{
        _cleanup_(store_freep) Store *s = open_store();
        PoolRecord a, b;

        ck_assert_uint_eq(store_schema_version(s), store_schema_version_latest());
        ck_assert_int_eq(store_get_pool(s, "A", &a), 0);
        ck_assert_int_eq(store_get_pool(s, "B", &b), 0);
        ck_assert_uint_eq(a.capacity, 16);
        ck_assert_uint_eq(b.capacity, 16);
        ck_assert_int_eq(a.mode, POOL_MODE_ISOLATED);
        ck_assert_uint_eq(a.vm_count, 0);
        ck_assert_int_eq(store_get_pool(s, "C", NULL), STORE_E_NO_SUCH_POOL);
}
END_TEST

START_TEST(test_register_then_get_returns_what_was_stored)
{
        _cleanup_(store_freep) Store *s = open_store();
        VmRecord vm = vm_new(3, "A", PRIORITY_HIGH), out, got;

        snprintf(vm.uuid, sizeof(vm.uuid), "0f9c1a2b-1111-2222-3333-444455556666");
        snprintf(vm.name, sizeof(vm.name), "inference-3");
        vm.memory_quota = UINT64_C(2) << 30;
        ck_assert_int_eq(store_register_vm(s, &admin, &vm, &out), 0);
        ck_assert_int_eq(store_get_vm(s, 3, &got), 0);
        ck_assert_str_eq(got.pool, "A");
        ck_assert_int_eq(got.priority, PRIORITY_HIGH);
        ck_assert_str_eq(got.uuid, vm.uuid);
        ck_assert_str_eq(got.name, "inference-3");
        ck_assert_uint_eq(got.memory_quota, UINT64_C(2) << 30);
        ck_assert_int_eq(got.iommu_group, -1);
        ck_assert_int_eq(store_get_vm_by_uuid(s, vm.uuid, &got), 0);
        ck_assert_uint_eq(got.vm_id, 3);
        ck_assert_uint_gt(got.created_usec, 0);
}
END_TEST

START_TEST(test_register_without_quota_takes_the_pools_default)
{
        _cleanup_(store_freep) Store *s = open_store();
        VmRecord got;
        PoolRecord a;

        ck_assert_int_eq(register_vm(s, 1, "A", PRIORITY_LOW), 0);
        ck_assert_int_eq(store_get_vm(s, 1, &got), 0);
        ck_assert_int_eq(store_get_pool(s, "A", &a), 0);
        ck_assert_uint_eq(got.memory_quota, a.default_memory_quota);
}
END_TEST

START_TEST(test_duplicate_vm_id_is_refused_and_changes_nothing)
{
        _cleanup_(store_freep) Store *s = open_store();
        VmRecord got;

        ck_assert_int_eq(register_vm(s, 5, "A", PRIORITY_HIGH), 0);
        ck_assert_int_eq(register_vm(s, 5, "B", PRIORITY_LOW), STORE_E_VM_EXISTS);
        ck_assert_int_eq(store_get_vm(s, 5, &got), 0);
        ck_assert_str_eq(got.pool, "A");
        ck_assert_int_eq(got.priority, PRIORITY_HIGH);
        ck_assert_uint_eq(count_vms(s), 1);
        ck_assert_uint_eq(count_audit(s), 1);
}
END_TEST

START_TEST(test_duplicate_uuid_is_refused)
{
        _cleanup_(store_freep) Store *s = open_store();
        VmRecord a = vm_new(1, "A", PRIORITY_HIGH), b = vm_new(2, "A", PRIORITY_HIGH), out;

        snprintf(a.uuid, sizeof(a.uuid), "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
        b = a;
        b.vm_id = 2;
        ck_assert_int_eq(store_register_vm(s, &admin, &a, &out), 0);
        ck_assert_int_eq(store_register_vm(s, &admin, &b, &out), STORE_E_UUID_IN_USE);
        ck_assert_int_eq(store_get_vm(s, 2, NULL), STORE_E_NO_SUCH_VM);
}
END_TEST

START_TEST(test_unknown_pool_is_refused)
{
        _cleanup_(store_freep) Store *s = open_store();

        ck_assert_int_eq(register_vm(s, 1, "Z", PRIORITY_HIGH), STORE_E_NO_SUCH_POOL);
        ck_assert_uint_eq(count_vms(s), 0);
        ck_assert_uint_eq(count_audit(s), 0);
}
END_TEST

START_TEST(test_full_pool_refuses_the_next_vm)
{
        _cleanup_(store_freep) Store *s = open_store();
        PoolRecord a;

        for (uint32_t id = 1; id <= 16; id++)
                ck_assert_int_eq(register_vm(s, id, "A", PRIORITY_MEDIUM), 0);
        ck_assert_int_eq(register_vm(s, 17, "A", PRIORITY_HIGH), STORE_E_POOL_FULL);
        ck_assert_int_eq(store_get_pool(s, "A", &a), 0);
        ck_assert_uint_eq(a.vm_count, 16);
        ck_assert_int_eq(store_get_vm(s, 17, NULL), STORE_E_NO_SUCH_VM);
}
END_TEST

START_TEST(test_move_respects_the_target_pools_capacity)
{
        _cleanup_(store_freep) Store *s = open_store();
        PoolRecord c = { .pool = "C", .capacity = 1, .mode = POOL_MODE_SHARED }, out;
        VmRecord old, vm;

        ck_assert_int_eq(store_create_pool(s, &admin, &c, &out), 0);
        ck_assert_int_eq(register_vm(s, 1, "A", PRIORITY_HIGH), 0);
        ck_assert_int_eq(register_vm(s, 2, "A", PRIORITY_HIGH), 0);
        ck_assert_int_eq(store_move_vm(s, &admin, 1, "C", &old, &vm), 0);
        ck_assert_str_eq(old.pool, "A");
        ck_assert_str_eq(vm.pool, "C");
        ck_assert_int_eq(store_move_vm(s, &admin, 2, "C", &old, &vm), STORE_E_POOL_FULL);
        ck_assert_int_eq(store_get_vm(s, 2, &vm), 0);
        ck_assert_str_eq(vm.pool, "A");
        ck_assert_int_eq(store_move_vm(s, &admin, 2, "Q", &old, &vm), STORE_E_NO_SUCH_POOL);
        ck_assert_int_eq(store_move_vm(s, &admin, 9, "A", &old, &vm), STORE_E_NO_SUCH_VM);
}
END_TEST

START_TEST(test_priority_change_is_audited_with_old_and_new_value)
{
        _cleanup_(store_freep) Store *s = open_store();
        AuditActor someone = { .uid = 1000, .pid = 77 };
        AuditRecord last = { 0 };
        VmRecord old, vm;

        ck_assert_int_eq(register_vm(s, 4, "B", PRIORITY_LOW), 0);
        ck_assert_int_eq(store_set_priority(s, &someone, 4, PRIORITY_HIGH, &old, &vm), 0);
        ck_assert_int_eq(old.priority, PRIORITY_LOW);
        ck_assert_int_eq(vm.priority, PRIORITY_HIGH);
        ck_assert_int_eq(store_read_audit(s, 0, 100, 4, last_audit_cb, &last), 0);
        ck_assert_str_eq(last.action, "set-priority");
        ck_assert_str_eq(last.old_value, "low");
        ck_assert_str_eq(last.new_value, "high");
        ck_assert_uint_eq(last.uid, 1000);
        ck_assert_uint_eq(last.pid, 77);
        ck_assert_str_eq(last.pool, "B");
}
END_TEST

START_TEST(test_setting_the_same_priority_writes_nothing)
{
        _cleanup_(store_freep) Store *s = open_store();
        VmRecord old, vm;

        ck_assert_int_eq(register_vm(s, 4, "B", PRIORITY_LOW), 0);
        ck_assert_int_eq(store_set_priority(s, &admin, 4, PRIORITY_LOW, &old, &vm), 0);
        ck_assert_uint_eq(old.updated_usec, vm.updated_usec);
        ck_assert_uint_eq(count_audit(s), 1);
}
END_TEST

static int collect_ids_cb(const VmRecord *vm, void *userdata)
{
        char *buf = userdata;
        size_t n = strlen(buf);

        snprintf(buf + n, 256 - n, "%s%" PRIu32, n ? "," : "", vm->vm_id);
        return 0;
}

START_TEST(test_plan_scenario_queries_by_pool_and_priority)
{
        _cleanup_(store_freep) Store *s = open_store();
        char ids[256] = "";

        /* VMs 1–7 in pool A, 8–20 in pool B; every third one high, the rest medium or low. */
        for (uint32_t id = 1; id <= 20; id++)
                ck_assert_int_eq(register_vm(s, id, id <= 7 ? "A" : "B",
                                             id % 3 == 0 ? PRIORITY_HIGH : id % 3 == 1 ? PRIORITY_MEDIUM : PRIORITY_LOW),
                                 0);
        ck_assert_int_eq(store_list_vms(s, "A", _PRIORITY_INVALID, collect_ids_cb, ids), 0);
        ck_assert_str_eq(ids, "1,2,3,4,5,6,7");
        ids[0] = 0;
        ck_assert_int_eq(store_list_vms(s, NULL, PRIORITY_HIGH, collect_ids_cb, ids), 0);
        ck_assert_str_eq(ids, "3,6,9,12,15,18");
        ids[0] = 0;
        ck_assert_int_eq(store_list_vms(s, "B", PRIORITY_HIGH, collect_ids_cb, ids), 0);
        ck_assert_str_eq(ids, "9,12,15,18");
}
END_TEST

START_TEST(test_audit_log_refuses_update_and_delete)
{
        _cleanup_(store_freep) Store *s = open_store();
        char *msg = NULL;

        ck_assert_int_eq(register_vm(s, 1, "A", PRIORITY_HIGH), 0);
        ck_assert_int_ne(sqlite3_exec(store_sqlite(s), "UPDATE audit SET uid = 7", NULL, NULL, &msg), SQLITE_OK);
        ck_assert_ptr_nonnull(strstr(msg, "append-only"));
        sqlite3_free(msg);
        ck_assert_int_ne(sqlite3_exec(store_sqlite(s), "DELETE FROM audit", NULL, NULL, NULL), SQLITE_OK);
        ck_assert_uint_eq(count_audit(s), 1);
}
END_TEST

START_TEST(test_schema_checks_refuse_bad_values_written_behind_the_services_back)
{
        _cleanup_(store_freep) Store *s = open_store();
        static const char *const bad[] = {
                "INSERT INTO vms (vm_id, pool_id, priority, memory_quota, created_usec, updated_usec) "
                "VALUES (1, 'A', 'urgent', 0, 0, 0)",
                "INSERT INTO vms (vm_id, pool_id, priority, memory_quota, created_usec, updated_usec) "
                "VALUES (0, 'A', 'high', 0, 0, 0)",
                "INSERT INTO vms (vm_id, pool_id, priority, memory_quota, created_usec, updated_usec) "
                "VALUES (2, 'NOPE', 'high', 0, 0, 0)",
                "INSERT INTO vms (vm_id, uuid, pool_id, priority, memory_quota, created_usec, updated_usec) "
                "VALUES (3, 'not-a-uuid', 'A', 'high', 0, 0, 0)",
                "INSERT INTO pools (pool_id, capacity, default_memory_quota, created_usec, updated_usec) "
                "VALUES ('1bad', 4, 0, 0, 0)",
                "INSERT INTO pools (pool_id, capacity, default_memory_quota, created_usec, updated_usec) "
                "VALUES ('C', 0, 0, 0, 0)",
                "UPDATE pools SET mode = 'turbo' WHERE pool_id = 'A'",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg((sqlite3_exec(store_sqlite(s), bad[i], NULL, NULL, NULL) & 0xff) == SQLITE_CONSTRAINT,
                              "statement was not refused: %s", bad[i]);
        ck_assert_uint_eq(count_vms(s), 0);
}
END_TEST

START_TEST(test_pool_capacity_cannot_drop_below_its_vms)
{
        _cleanup_(store_freep) Store *s = open_store();
        PoolSettings set = { .has_capacity = true, .capacity = 1 };
        PoolRecord p;

        ck_assert_int_eq(register_vm(s, 1, "A", PRIORITY_HIGH), 0);
        ck_assert_int_eq(register_vm(s, 2, "A", PRIORITY_HIGH), 0);
        ck_assert_int_eq(store_configure_pool(s, &admin, "A", &set, &p), STORE_E_CAPACITY_BELOW_USE);
        ck_assert_int_eq(store_get_pool(s, "A", &p), 0);
        ck_assert_uint_eq(p.capacity, 16);
        set.capacity = 2;
        set.has_mode = true;
        set.mode = POOL_MODE_SHARED;
        ck_assert_int_eq(store_configure_pool(s, &admin, "A", &set, &p), 0);
        ck_assert_uint_eq(p.capacity, 2);
        ck_assert_int_eq(p.mode, POOL_MODE_SHARED);
}
END_TEST

START_TEST(test_only_an_empty_pool_can_be_deleted)
{
        _cleanup_(store_freep) Store *s = open_store();
        PoolRecord last;

        ck_assert_int_eq(register_vm(s, 1, "A", PRIORITY_HIGH), 0);
        ck_assert_int_eq(store_delete_pool(s, &admin, "A", &last), STORE_E_POOL_NOT_EMPTY);
        ck_assert_int_eq(store_delete_pool(s, &admin, "B", &last), 0);
        ck_assert_int_eq(store_get_pool(s, "B", NULL), STORE_E_NO_SUCH_POOL);
        ck_assert_int_eq(store_delete_pool(s, &admin, "B", &last), STORE_E_NO_SUCH_POOL);
}
END_TEST

START_TEST(test_data_survives_close_and_reopen)
{
        Store *s = open_store();
        VmRecord old, vm;

        ck_assert_int_eq(register_vm(s, 11, "B", PRIORITY_LOW), 0);
        ck_assert_int_eq(store_set_priority(s, &admin, 11, PRIORITY_HIGH, &old, &vm), 0);
        store_free(s);
        s = open_store();
        ck_assert_int_eq(store_get_vm(s, 11, &vm), 0);
        ck_assert_int_eq(vm.priority, PRIORITY_HIGH);
        ck_assert_uint_eq(count_audit(s), 2);
        store_free(s);
}
END_TEST

static size_t read_file(const char *path, char **ret)
{
        FILE *f = fopen(path, "rb");
        size_t n = 0, cap = 0;
        char *buf = NULL;
        int c;

        ck_assert_msg(f, "cannot open %s", path);
        while ((c = fgetc(f)) != EOF) {
                if (n == cap) {
                        cap = cap ? cap * 2 : 4096;
                        buf = realloc(buf, cap);
                        ck_assert_ptr_nonnull(buf);
                }
                buf[n++] = (char)c;
        }
        fclose(f);
        *ret = buf;
        return n;
}

static void write_file(const char *path, const void *data, size_t n)
{
        FILE *f = fopen(path, "wb");

        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(data, 1, n, f), n);
        ck_assert_int_eq(fclose(f), 0);
}

/* Opening must fail with `expected` and leave the file's bytes exactly as they were. */
static void assert_refused_untouched(int expected)
{
        _cleanup_free_ char *before = NULL, *after = NULL;
        size_t nb = read_file(db_path, &before), na;
        Store *s = NULL;
        int r;

        r = store_open(db_path, &s);
        ck_assert_msg(r == expected, "store_open returned %d (%s), expected %d", r, strerror(-r), expected);
        ck_assert_ptr_null(s);
        na = read_file(db_path, &after);
        ck_assert_uint_eq(na, nb);
        ck_assert_msg(memcmp(before, after, na) == 0, "the refused database file was modified");
}

START_TEST(test_a_file_that_is_not_a_database_is_refused_untouched)
{
        static const char junk[] = "this is not an SQLite database, it is a configuration file\n";
        char buf[8192];

        for (size_t i = 0; i < sizeof(buf); i++)
                buf[i] = junk[i % (sizeof(junk) - 1)];
        write_file(db_path, buf, sizeof(buf));
        assert_refused_untouched(-EBADMSG);
}
END_TEST

START_TEST(test_a_damaged_database_is_refused_untouched)
{
        _cleanup_free_ char *data = NULL;
        Store *s = open_store();
        size_t n;

        for (uint32_t id = 1; id <= 16; id++)
                ck_assert_int_eq(register_vm(s, id, "A", PRIORITY_HIGH), 0);
        store_free(s); /* checkpoints the WAL into the main file */

        /* Scribble over the middle of every page after the first: the header stays valid, the b-trees do not. */
        n = read_file(db_path, &data);
        ck_assert_uint_gt(n, 8192);
        for (size_t page = 4096; page + 4096 <= n; page += 4096)
                memset(data + page + 8, 0xa5, 2000);
        write_file(db_path, data, n);
        assert_refused_untouched(-EBADMSG);
}
END_TEST

START_TEST(test_another_applications_database_is_refused_untouched)
{
        sqlite3 *db;

        ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
        ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('mine')", NULL,
                                      NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);
        assert_refused_untouched(-EBADMSG);
}
END_TEST

START_TEST(test_a_newer_schema_is_refused_untouched)
{
        Store *s = open_store();

        ck_assert_int_eq(sqlite3_exec(store_sqlite(s), "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
        store_free(s);
        assert_refused_untouched(-EPROTO);
}
END_TEST

START_TEST(test_an_unwritable_database_is_refused)
{
        Store *s = open_store();
        int status;
        pid_t pid;

        ck_assert_int_eq(register_vm(s, 1, "A", PRIORITY_HIGH), 0);
        store_free(s);
        ck_assert_int_eq(chmod(dir, 0755), 0);
        ck_assert_int_eq(chmod(db_path, 0644), 0);

        /* root writes anything, so as root drop to the unprivileged user `nobody` first. */
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                struct passwd *pw = getpwnam("nobody");
                bool root = geteuid() == 0;
                Store *t = NULL;

                if (root && (!pw || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0))
                        _exit(100);
                if (!root && chmod(db_path, 0444) < 0)
                        _exit(101);
                _exit(-store_open(db_path, &t));
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == EROFS, "expected EROFS, child status %d",
                      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        s = open_store();
        ck_assert_int_eq(store_get_vm(s, 1, NULL), 0);
        store_free(s);
}
END_TEST

START_TEST(test_a_full_disk_rolls_the_change_back)
{
        _cleanup_(store_freep) Store *s = open_store();
        PoolRecord c = { .pool = "C", .capacity = 65536 }, out;
        uint32_t registered = 0;
        int r = 0;

        ck_assert_int_eq(store_create_pool(s, &admin, &c, &out), 0);
        /* max_page_count caps the file at its current size: SQLite then fails with SQLITE_FULL exactly as on a
         * full disk. */
        sqlite3_stmt *st;
        char sql[64];
        ck_assert_int_eq(sqlite3_prepare_v2(store_sqlite(s), "PRAGMA page_count", -1, &st, NULL), SQLITE_OK);
        ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
        snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld", (long long)sqlite3_column_int64(st, 0));
        sqlite3_finalize(st);
        ck_assert_int_eq(sqlite3_exec(store_sqlite(s), sql, NULL, NULL, NULL), SQLITE_OK);
        for (uint32_t id = 1; id <= 5000 && r == 0; id++) {
                r = register_vm(s, id, "C", PRIORITY_LOW);
                if (r == 0)
                        registered++;
        }
        ck_assert_int_eq(r, -ENOSPC);
        ck_assert_uint_eq(count_vms(s), registered);
        ck_assert_int_eq(store_get_vm(s, registered + 1, NULL), STORE_E_NO_SUCH_VM);
        ck_assert_uint_eq(count_audit(s), registered + 1); /* + create-pool */
}
END_TEST

START_TEST(test_kill_9_mid_write_loses_nothing_acknowledged)
{
        PoolRecord c = { .pool = "C", .capacity = 65536 }, out;
        uint32_t acked[4096], n = 0, id;
        Store *s = open_store();
        int fds[2], status;
        pid_t pid;

        ck_assert_int_eq(store_create_pool(s, &admin, &c, &out), 0);
        store_free(s);
        ck_assert_int_eq(pipe(fds), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                Store *w = NULL;

                close(fds[0]);
                if (store_open(db_path, &w) < 0)
                        _exit(1);
                for (id = 1;; id++) /* an acknowledgement is written only after the commit returned */
                        if (register_vm(w, id, "C", PRIORITY_MEDIUM) != 0 || write(fds[1], &id, sizeof(id)) < 0)
                                _exit(2);
        }
        close(fds[1]);
        while (n < 200 && read(fds[0], &acked[n], sizeof(id)) == sizeof(id))
                n++;
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        while (n < ELEMENTSOF(acked) && read(fds[0], &acked[n], sizeof(id)) == sizeof(id))
                n++;
        close(fds[0]);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFSIGNALED(status));

        s = open_store(); /* runs the integrity check */
        for (uint32_t i = 0; i < n; i++)
                ck_assert_msg(store_get_vm(s, acked[i], NULL) == 0, "acknowledged VM %u lost", acked[i]);
        ck_assert_uint_ge(count_vms(s), n);
        store_free(s);
}
END_TEST

#define WRITERS 20
#define VMS_PER_WRITER 10

START_TEST(test_twenty_concurrent_writers_lose_no_update)
{
        PoolRecord c = { .pool = "C", .capacity = 1000 }, out;
        Store *s = open_store();
        pid_t pids[WRITERS];

        ck_assert_int_eq(store_create_pool(s, &admin, &c, &out), 0);
        store_free(s);
        for (int w = 0; w < WRITERS; w++) {
                pids[w] = fork();
                ck_assert_int_ge(pids[w], 0);
                if (pids[w] == 0) {
                        Store *own = NULL;
                        VmRecord old, vm;

                        if (store_open(db_path, &own) < 0)
                                _exit(1);
                        for (uint32_t i = 1; i <= VMS_PER_WRITER; i++) {
                                uint32_t id = (uint32_t)(w + 1) * 100 + i;
                                if (register_vm(own, id, "C", PRIORITY_LOW) != 0 ||
                                    store_set_priority(own, &admin, id, PRIORITY_HIGH, &old, &vm) != 0)
                                        _exit(2);
                        }
                        store_free(own);
                        _exit(0);
                }
        }
        for (int w = 0; w < WRITERS; w++) {
                int status;
                ck_assert_int_eq(waitpid(pids[w], &status, 0), pids[w]);
                ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer %d failed (status %d)", w,
                              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        }
        s = open_store();
        ck_assert_uint_eq(count_vms(s), WRITERS * VMS_PER_WRITER);
        ck_assert_uint_eq(count_audit(s), 1 + 2 * WRITERS * VMS_PER_WRITER);
        for (int w = 0; w < WRITERS; w++)
                for (uint32_t i = 1; i <= VMS_PER_WRITER; i++) {
                        VmRecord vm;
                        ck_assert_int_eq(store_get_vm(s, (uint32_t)(w + 1) * 100 + i, &vm), 0);
                        ck_assert_int_eq(vm.priority, PRIORITY_HIGH);
                }
        store_free(s);
}
END_TEST

static Suite *store_suite(void)
{
        Suite *s = suite_create("config-store");
        TCase *rules = tcase_create("rules"), *files = tcase_create("files");

        tcase_add_checked_fixture(rules, setup, teardown);
        tcase_add_test(rules, test_fresh_store_has_pools_a_and_b_with_room_for_16);
        tcase_add_test(rules, test_register_then_get_returns_what_was_stored);
        tcase_add_test(rules, test_register_without_quota_takes_the_pools_default);
        tcase_add_test(rules, test_duplicate_vm_id_is_refused_and_changes_nothing);
        tcase_add_test(rules, test_duplicate_uuid_is_refused);
        tcase_add_test(rules, test_unknown_pool_is_refused);
        tcase_add_test(rules, test_full_pool_refuses_the_next_vm);
        tcase_add_test(rules, test_move_respects_the_target_pools_capacity);
        tcase_add_test(rules, test_priority_change_is_audited_with_old_and_new_value);
        tcase_add_test(rules, test_setting_the_same_priority_writes_nothing);
        tcase_add_test(rules, test_plan_scenario_queries_by_pool_and_priority);
        tcase_add_test(rules, test_audit_log_refuses_update_and_delete);
        tcase_add_test(rules, test_schema_checks_refuse_bad_values_written_behind_the_services_back);
        tcase_add_test(rules, test_pool_capacity_cannot_drop_below_its_vms);
        tcase_add_test(rules, test_only_an_empty_pool_can_be_deleted);
        tcase_add_test(rules, test_data_survives_close_and_reopen);
        tcase_set_timeout(rules, 60);
        suite_add_tcase(s, rules);

        tcase_add_checked_fixture(files, setup, teardown);
        tcase_add_test(files, test_a_file_that_is_not_a_database_is_refused_untouched);
        tcase_add_test(files, test_a_damaged_database_is_refused_untouched);
        tcase_add_test(files, test_another_applications_database_is_refused_untouched);
        tcase_add_test(files, test_a_newer_schema_is_refused_untouched);
        tcase_add_test(files, test_an_unwritable_database_is_refused);
        tcase_add_test(files, test_a_full_disk_rolls_the_change_back);
        tcase_add_test(files, test_kill_9_mid_write_loses_nothing_acknowledged);
        tcase_add_test(files, test_twenty_concurrent_writers_lose_no_update);
        tcase_set_timeout(files, 180);
        suite_add_tcase(s, files);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(store_suite());
        int failed;

        log_set_max_level(LOG_CRIT); /* the refusals under test log errors by design */
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
