/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared helpers of the vgpu-iommud unit tests. */
#include <check.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <sys/stat.h>

#include "test-iommu-util.h"

char *recorded_tree(const char *name)
{
        char *p;

        ck_assert(asprintf(&p, "%s/test/data/iommu/%s", VGPU_SOURCE_ROOT, name) > 0);
        return p;
}

char *tree_new(const char *src)
{
        char *dir = strdup("/tmp/vgpu-iommu-test-XXXXXX"), *cmd;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        if (src) {
                ck_assert(asprintf(&cmd, "cp -a '%s/.' '%s/'", src, dir) > 0);
                ck_assert_msg(system(cmd) == 0, "copying %s failed", src);
                free(cmd);
        }
        return dir;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path);
}

void tree_remove(char *dir)
{
        if (dir)
                nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(dir);
}

static void make_parents(const char *path)
{
        char *copy = strdup(path), *cmd;

        ck_assert(asprintf(&cmd, "mkdir -p '%s'", dirname(copy)) > 0);
        ck_assert(system(cmd) == 0);
        free(cmd);
        free(copy);
}

void tree_write(const char *root, const char *rel, const char *content)
{
        char *path;
        FILE *f;

        ck_assert(asprintf(&path, "%s/%s", root, rel) > 0);
        make_parents(path);
        f = fopen(path, "w");
        ck_assert_msg(f != NULL, "cannot write %s", path);
        fputs(content, f);
        fclose(f);
        free(path);
}

void tree_link(const char *root, const char *rel, const char *target)
{
        char *path;

        ck_assert(asprintf(&path, "%s/%s", root, rel) > 0);
        make_parents(path);
        (void)unlink(path);
        ck_assert_msg(symlink(target, path) == 0, "cannot link %s", path);
        free(path);
}

char *tree_read(const char *root, const char *rel)
{
        char *path, *buf = calloc(1, 65536);
        FILE *f;

        ck_assert(asprintf(&path, "%s/%s", root, rel) > 0);
        f = fopen(path, "r");
        if (f) {
                size_t n = fread(buf, 1, 65535, f);
                buf[n] = '\0';
                fclose(f);
        }
        free(path);
        return buf;
}

static char *snapshot;
static size_t snapshot_len;
static size_t snapshot_root_len;

static void snapshot_add(const char *s)
{
        size_t n = strlen(s);

        snapshot = realloc(snapshot, snapshot_len + n + 1);
        memcpy(snapshot + snapshot_len, s, n + 1);
        snapshot_len += n;
}

static int snapshot_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        char line[PATH_MAX + 64], target[PATH_MAX];

        snprintf(line, sizeof(line), "\n%s ", path + snapshot_root_len);
        snapshot_add(line);
        if (flag == FTW_SL) {
                ssize_t n = readlink(path, target, sizeof(target) - 1);
                target[n > 0 ? n : 0] = '\0';
                snapshot_add("-> ");
                snapshot_add(target);
        } else if (flag == FTW_F) {
                FILE *f = fopen(path, "r");
                char buf[4096];
                size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
                buf[n] = '\0';
                if (f)
                        fclose(f);
                snapshot_add(buf);
        }
        return 0;
}

char *tree_snapshot(const char *root)
{
        snapshot = strdup("");
        snapshot_len = 0;
        snapshot_root_len = strlen(root);
        nftw(root, snapshot_entry, 16, FTW_PHYS);
        return snapshot;
}

void host_open(Host *h, const char *dir)
{
        *h = (Host){ 0 };
        ck_assert_int_eq(sysroot_new(dir, &h->root), 0);
        h->platform = platform_detect(h->root);
}

void host_close(Host *h)
{
        sysroot_free(h->root);
        pci_id_list_done(&h->test_allow);
}

void tree_add_device(const char *root, const char *address, const char *vendor, const char *device, const char *class,
                     int group, const char *driver)
{
        char rel[256], target[256];

        snprintf(rel, sizeof(rel), "sys/devices/pci0000:00/%s/vendor", address);
        tree_write(root, rel, vendor);
        snprintf(rel, sizeof(rel), "sys/devices/pci0000:00/%s/device", address);
        tree_write(root, rel, device);
        snprintf(rel, sizeof(rel), "sys/devices/pci0000:00/%s/class", address);
        tree_write(root, rel, class);
        snprintf(rel, sizeof(rel), "sys/devices/pci0000:00/%s/driver_override", address);
        tree_write(root, rel, "(null)\n");
        snprintf(rel, sizeof(rel), "sys/devices/pci0000:00/%s/enable", address);
        tree_write(root, rel, "0\n");
        snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s", address);
        snprintf(target, sizeof(target), "../../../devices/pci0000:00/%s", address);
        tree_link(root, rel, target);
        if (group >= 0) {
                snprintf(rel, sizeof(rel), "sys/kernel/iommu_groups/%d/type", group);
                tree_write(root, rel, "DMA\n");
                snprintf(rel, sizeof(rel), "sys/kernel/iommu_groups/%d/devices/%s", group, address);
                snprintf(target, sizeof(target), "../../../../devices/pci0000:00/%s", address);
                tree_link(root, rel, target);
                snprintf(rel, sizeof(rel), "sys/devices/pci0000:00/%s/iommu_group", address);
                snprintf(target, sizeof(target), "../../../kernel/iommu_groups/%d", group);
                tree_link(root, rel, target);
        }
        if (driver) {
                snprintf(rel, sizeof(rel), "sys/bus/pci/drivers/%s/bind", driver);
                tree_write(root, rel, "");
                snprintf(rel, sizeof(rel), "sys/bus/pci/drivers/%s/unbind", driver);
                tree_write(root, rel, "");
                snprintf(rel, sizeof(rel), "sys/devices/pci0000:00/%s/driver", address);
                snprintf(target, sizeof(target), "../../../bus/pci/drivers/%s", driver);
                tree_link(root, rel, target);
        }
        tree_write(root, "sys/bus/pci/drivers_probe", "");
}
