#!/usr/bin/env bash
# vgpu-configd and its database file: a damaged, foreign, newer or unwritable file is refused with a clear
# message and a non-zero exit, and left exactly as it was; a good file is reused across restarts.
source "$(dirname "$0")/../lib.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-db.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 0755 "$tmp"

# Runs vgpu-configd on FILE; it must exit 1 before touching the bus, say MESSAGE, and leave FILE unchanged.
refuses() {
        local name=$1 file=$2 message=$3
        shift 3
        local before after out rc
        before=$(sha256sum "$file")
        out=$(DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent timeout 20 "$@" vgpu-configd --database="$file" 2>&1)
        rc=$?
        after=$(sha256sum "$file")
        assert_eq "$name: exit status 1" 1 "$rc"
        assert_contains "$name: says why" "$message" "$out"
        assert_eq "$name: file untouched" "$before" "$after"
}

head -c 65536 /dev/urandom >"$tmp/random.db"
refuses "random bytes" "$tmp/random.db" "file is not a database"

printf 'pools:\n  A: 16\n' >"$tmp/text.db"
refuses "a text file" "$tmp/text.db" "file is not a database"

sqlite3 "$tmp/foreign.db" "CREATE TABLE notes (x); INSERT INTO notes VALUES ('someone else''s data');"
refuses "another application's database" "$tmp/foreign.db" "not a vgpu database"

# A good database made by vgpu-configd itself, then damaged in different ways.
make_good() {
        rm -f "$1" "$1-wal" "$1-shm"
        sqlite3 "$1" <"$VGPU_SOURCE_DIR/db/migrations/0001-initial.sql"
        sqlite3 "$1" "PRAGMA application_id = 1986490485; PRAGMA user_version = 1;
                INSERT INTO vms (vm_id, pool_id, priority, memory_quota, created_usec, updated_usec)
                VALUES (7, 'A', 'high', 0, 0, 0);"
        for i in $(seq 100 400); do echo "INSERT INTO audit (time_usec, uid, pid, action) VALUES ($i, 0, 1, 'x');"; done |
                sqlite3 "$1"
}

make_good "$tmp/newer.db"
sqlite3 "$tmp/newer.db" "PRAGMA user_version = 42"
refuses "a newer schema" "$tmp/newer.db" "newer than this vgpu-configd"

make_good "$tmp/damaged.db"
size=$(stat -c %s "$tmp/damaged.db")
for off in $(seq 4096 4096 $((size - 4096))); do
        printf '\xa5%.0s' $(seq 1 600) | dd of="$tmp/damaged.db" bs=1 seek=$((off + 100)) conv=notrunc status=none
done
refuses "a damaged database" "$tmp/damaged.db" "integrity check"

if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
        make_good "$tmp/readonly.db"
        chmod 0644 "$tmp/readonly.db"
        refuses "a database the service cannot write" "$tmp/readonly.db" "not writable" \
                setpriv --reuid=nobody --regid=nogroup --clear-groups
else
        ok "# SKIP unwritable database (needs root to run the service as nobody)"
fi

expect_exit "a missing directory is a clear error" 1 env DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent \
        vgpu-configd --database="$tmp/no/such/dir/config.db"
assert_contains "it names the database" "$tmp/no/such/dir/config.db" "$LAST_ERR"
expect_exit "a bad option is a usage error" 2 vgpu-configd --no-such-option
expect_exit "an unexpected argument is a usage error" 2 vgpu-configd extra

# Under vgpu-devstack: a damaged database stops the stack from starting, with the reason shown.
out=$(vgpu-devstack --state-dir "$tmp/stack-bad" -- true 2>&1 </dev/null)
rc=$?
assert_eq "a fresh devstack starts and stops" 0 "$rc"
cp "$tmp/random.db" "$tmp/stack-bad/config.db"
rm -f "$tmp/stack-bad/config.db-wal" "$tmp/stack-bad/config.db-shm"
out=$(vgpu-devstack --state-dir "$tmp/stack-bad" -- true 2>&1 </dev/null)
rc=$?
assert_eq "devstack with a damaged database fails" 1 "$rc"
assert_contains "devstack shows why" "not a database" "$out"

done_testing
