-- vgpu configuration store, schema version 1: pools, VMs and the append-only audit log.
-- Applied inside one transaction by vgpu-configd; PRAGMA user_version is set to 1 afterwards.

CREATE TABLE pools (
        pool_id TEXT PRIMARY KEY NOT NULL
                CHECK (length(pool_id) BETWEEN 1 AND 16
                       AND substr(pool_id, 1, 1) GLOB '[A-Za-z]'
                       AND pool_id NOT GLOB '*[^A-Za-z0-9_]*'),
        capacity INTEGER NOT NULL CHECK (capacity BETWEEN 1 AND 65536),
        mode TEXT NOT NULL DEFAULT 'isolated' CHECK (mode IN ('isolated', 'shared')),
        -- "" (none yet), "gpu:<pci address or GPU uuid>", "mig:<MIG uuid>", "sm-share:<gpu>:<percent>"
        gpu_resource TEXT NOT NULL DEFAULT '' CHECK (length(gpu_resource) <= 128),
        default_memory_quota INTEGER NOT NULL CHECK (default_memory_quota >= 0),
        description TEXT NOT NULL DEFAULT '' CHECK (length(description) <= 256),
        created_usec INTEGER NOT NULL CHECK (created_usec >= 0),
        updated_usec INTEGER NOT NULL CHECK (updated_usec >= 0)
) STRICT;

CREATE TABLE vms (
        vm_id INTEGER PRIMARY KEY NOT NULL CHECK (vm_id BETWEEN 1 AND 2147483647),
        uuid TEXT UNIQUE
                CHECK (uuid IS NULL OR (length(uuid) = 36 AND uuid GLOB
                       '[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]')),
        name TEXT NOT NULL DEFAULT '' CHECK (length(name) <= 128),
        pool_id TEXT NOT NULL REFERENCES pools (pool_id) ON UPDATE RESTRICT ON DELETE RESTRICT,
        priority TEXT NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
        memory_quota INTEGER NOT NULL CHECK (memory_quota >= 0),
        iommu_policy TEXT NOT NULL DEFAULT 'required' CHECK (iommu_policy IN ('required', 'audit')),
        iommu_domain TEXT NOT NULL DEFAULT '' CHECK (length(iommu_domain) <= 64),
        iommu_group INTEGER NOT NULL DEFAULT -1 CHECK (iommu_group >= -1),
        created_usec INTEGER NOT NULL CHECK (created_usec >= 0),
        updated_usec INTEGER NOT NULL CHECK (updated_usec >= 0)
) STRICT;

CREATE INDEX vms_by_pool_priority ON vms (pool_id, priority, vm_id);

CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        time_usec INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        pid INTEGER NOT NULL,
        action TEXT NOT NULL,
        vm_id INTEGER NOT NULL DEFAULT 0,
        pool_id TEXT NOT NULL DEFAULT '',
        old_value TEXT NOT NULL DEFAULT '',
        new_value TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX audit_by_vm ON audit (vm_id, seq);

-- The audit log is append-only: neither the service nor anyone with a SQL shell rewrites history
-- without first dropping these triggers, which is itself visible in the schema.
CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
BEGIN
        SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
BEGIN
        SELECT RAISE(ABORT, 'the audit log is append-only');
END;

-- A fresh store has pools A and B with room for 16 VMs each, isolated mode, 8 GiB default quota.
INSERT INTO pools (pool_id, capacity, mode, default_memory_quota, description, created_usec, updated_usec)
VALUES ('A', 16, 'isolated', 8589934592, 'Pool A', CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER),
        CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)),
       ('B', 16, 'isolated', 8589934592, 'Pool B', CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER),
        CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER));
