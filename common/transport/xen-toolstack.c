/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The toolstack's part of a split driver, as xl or XAPI does it for a vif or a vbd: the frontend directory
 * (owned by the guest, readable by domain 0) and the backend directory (owned by domain 0, readable by the
 * guest), with their first keys, in one transaction. vgpu-xen-channel calls this; so do the tests. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vgpu-util.h"
#include "xen.h"

#define TRANSACTION_ATTEMPTS 16

typedef struct Channel {
        const VgpuXenOps *ops;
        VgpuXs *xs;
        uint32_t t;
        uint32_t domid;
        char frontend[96], backend[96], backend_parent[96];
} Channel;

static int write_key(Channel *c, const char *dir, const char *key, const char *value, const VgpuXsPerm *perms)
{
        char path[160];
        int r;

        snprintf(path, sizeof(path), "%s/%s", dir, key);
        r = c->ops->xs_write(c->xs, c->t, path, value);
        if (r >= 0)
                r = c->ops->xs_set_permissions(c->xs, c->t, path, perms, 2);
        return r;
}

static int make_dir(Channel *c, const char *path, const VgpuXsPerm *perms)
{
        int r = c->ops->xs_mkdir(c->xs, c->t, path);

        if (r >= 0)
                r = c->ops->xs_set_permissions(c->xs, c->t, path, perms, 2);
        return r;
}

static int create_in_transaction(Channel *c, const char *vm_uuid)
{
        /* The first entry is the owner (and what everybody else may do: nothing); the second the peer. */
        const VgpuXsPerm fe_perms[2] = {{c->domid, VGPU_XS_PERM_NONE}, {0, VGPU_XS_PERM_READ}};
        const VgpuXsPerm be_perms[2] = {{0, VGPU_XS_PERM_NONE}, {c->domid, VGPU_XS_PERM_READ}};
        char domid[16];
        int r;

        snprintf(domid, sizeof(domid), "%u", c->domid);
        r = make_dir(c, c->frontend, fe_perms);
        if (r >= 0)
                r = write_key(c, c->frontend, "backend", c->backend, fe_perms);
        if (r >= 0)
                r = write_key(c, c->frontend, "backend-id", "0", fe_perms);
        if (r >= 0)
                r = write_key(c, c->frontend, "state", "1", fe_perms);
        if (r >= 0)
                r = make_dir(c, c->backend_parent, be_perms);
        if (r >= 0)
                r = make_dir(c, c->backend, be_perms);
        if (r >= 0)
                r = write_key(c, c->backend, "frontend", c->frontend, be_perms);
        if (r >= 0)
                r = write_key(c, c->backend, "frontend-id", domid, be_perms);
        if (r >= 0)
                r = write_key(c, c->backend, "vm-uuid", vm_uuid, be_perms);
        if (r >= 0)
                r = write_key(c, c->backend, "state", "1", be_perms);
        return r;
}

static int exists(Channel *c, const char *path)
{
        VgpuXsPerm *perms = NULL;
        unsigned n = 0;
        int r = c->ops->xs_get_permissions(c->xs, path, &perms, &n);

        free(perms);
        return r == -ENOENT ? 0 : r < 0 ? r : 1;
}

static int channel_init(Channel *c, const VgpuXenOps *ops, VgpuXs *xs, uint32_t domid)
{
        int r;

        *c = (Channel){.ops = ops, .xs = xs, .domid = domid};
        r = vgpu_xen_frontend_path(domid, c->frontend, sizeof(c->frontend));
        if (r >= 0)
                r = vgpu_xen_backend_path(domid, c->backend, sizeof(c->backend));
        snprintf(c->backend_parent, sizeof(c->backend_parent), VGPU_XEN_BACKEND_ROOT "/%u", domid);
        return r;
}

/* Runs step in a transaction, again while xenstored reports a conflicting change. */
static int in_transaction(Channel *c, int (*step)(Channel *c, const void *arg), const void *arg)
{
        int r = -EAGAIN;

        for (int attempt = 0; attempt < TRANSACTION_ATTEMPTS && r == -EAGAIN; attempt++) {
                r = c->ops->xs_transaction_start(c->xs, &c->t);
                if (r < 0)
                        return r;
                r = step(c, arg);
                if (r < 0) {
                        (void)c->ops->xs_transaction_end(c->xs, c->t, true);
                        return r;
                }
                r = c->ops->xs_transaction_end(c->xs, c->t, false);
        }
        return r;
}

static int create_step(Channel *c, const void *arg)
{
        int r;

        /* Checked inside the transaction: a concurrent create makes one of the two fail with -EAGAIN. */
        r = exists(c, c->frontend);
        if (r == 0)
                r = exists(c, c->backend);
        if (r > 0)
                return -EEXIST;
        if (r < 0)
                return r;
        return create_in_transaction(c, arg);
}

int vgpu_xen_channel_create(const VgpuXenOps *ops, VgpuXs *xs, uint32_t domid, const char *vm_uuid)
{
        char uuid[37];
        Channel c;
        int r;

        if (!ops || !xs || vgpu_xen_uuid_normalize(vm_uuid, uuid) < 0)
                return -EINVAL;
        r = channel_init(&c, ops, xs, domid);
        if (r < 0)
                return r;
        return in_transaction(&c, create_step, uuid);
}

static int destroy_step(Channel *c, const void *arg)
{
        int fe = exists(c, c->frontend), be = exists(c, c->backend_parent), r = 0;

        if (fe < 0 || be < 0)
                return fe < 0 ? fe : be;
        if (!fe && !be)
                return -ENOENT;
        if (fe)
                r = c->ops->xs_rm(c->xs, c->t, c->frontend);
        if (r >= 0 && be)
                r = c->ops->xs_rm(c->xs, c->t, c->backend_parent);
        return r;
}

int vgpu_xen_channel_destroy(const VgpuXenOps *ops, VgpuXs *xs, uint32_t domid)
{
        Channel c;
        int r;

        if (!ops || !xs)
                return -EINVAL;
        r = channel_init(&c, ops, xs, domid);
        if (r < 0)
                return r;
        return in_transaction(&c, destroy_step, NULL);
}
