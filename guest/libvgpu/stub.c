/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The platform's word on who this VM is: finds the vgpu-stub PCI device in sysfs and reads its registers
 * through the BAR's sysfs file (resource0). The register map is the device's own header, shared with it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../qemu/hw/misc/vgpu-stub.h"
#include "client-internal.h"
#include "vgpu-util.h"

#define SYSFS_PCI_DEVICES "/sys/bus/pci/devices"

_Static_assert(sizeof(((VgpuStubInfo *)0)->pool_id) == VGPU_STUB_POOL_ID_SIZE + 1, "pool_id holds the register");

/* A sysfs attribute holding one hexadecimal number ("0x1af4\n"). */
static int read_hex_attr(const char *dir, const char *name, unsigned long *ret)
{
        char path[512], buf[32];
        _cleanup_close_ int fd = -1;
        ssize_t n;
        char *end;

        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
                return -ENAMETOOLONG;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        errno = 0;
        *ret = strtoul(buf, &end, 16);
        if (errno != 0 || end == buf || (*end != '\n' && *end != '\0'))
                return -EINVAL;
        return 0;
}

static bool is_stub(const char *dir)
{
        unsigned long vendor, device;

        return read_hex_attr(dir, "vendor", &vendor) == 0 && vendor == VGPU_STUB_VENDOR_ID &&
               read_hex_attr(dir, "device", &device) == 0 && device == VGPU_STUB_DEVICE_ID;
}

/* The first vgpu-stub by PCI address (a VM has one): its address into ret. */
static int find_stub(char *ret, size_t size)
{
        struct dirent **entries = NULL;
        int n, r = -ENODEV;

        n = scandir(SYSFS_PCI_DEVICES, &entries, NULL, alphasort);
        if (n < 0)
                return errno == ENOENT ? -ENODEV : -errno;
        for (int i = 0; i < n; i++) {
                char dir[512];

                size_t len = strlen(entries[i]->d_name);

                if (r == -ENODEV && entries[i]->d_name[0] != '.' && len < size &&
                    (size_t)snprintf(dir, sizeof(dir), SYSFS_PCI_DEVICES "/%s", entries[i]->d_name) < sizeof(dir) &&
                    is_stub(dir)) {
                        memcpy(ret, entries[i]->d_name, len + 1);
                        r = 0;
                }
                free(entries[i]);
        }
        free(entries);
        return r;
}

static uint32_t reg(const volatile uint8_t *bar, unsigned offset)
{
        /* One 32-bit load per register: the device answers aligned dword reads. Little-endian host. */
        return *(const volatile uint32_t *)(bar + offset);
}

static int read_registers(const volatile uint8_t *bar, VgpuStubInfo *info)
{
        uint32_t priority;

        if (reg(bar, VGPU_STUB_REG_MAGIC) != VGPU_STUB_MAGIC) {
                client_set_error("the vgpu-stub device at %s answers magic 0x%08x, not 0x%08x ('VGPU')",
                                 info->pci_address, reg(bar, VGPU_STUB_REG_MAGIC), VGPU_STUB_MAGIC);
                return -EPROTO;
        }
        /* Later versions only add registers: version 1's stay where they are. */
        info->version = reg(bar, VGPU_STUB_REG_VERSION);
        if (info->version < 1) {
                client_set_error("the vgpu-stub device at %s has interface version %u", info->pci_address,
                                 info->version);
                return -EPROTO;
        }
        info->vm_id = reg(bar, VGPU_STUB_REG_VM_ID);
        priority = reg(bar, VGPU_STUB_REG_PRIORITY);
        for (unsigned i = 0; i < VGPU_STUB_POOL_ID_SIZE; i += 4) {
                uint32_t v = reg(bar, VGPU_STUB_REG_POOL_ID + i);

                for (unsigned b = 0; b < 4; b++)
                        info->pool_id[i + b] = (char)((v >> (8 * b)) & 0xff);
        }
        info->pool_id[VGPU_STUB_POOL_ID_SIZE] = '\0';
        info->status = reg(bar, VGPU_STUB_REG_STATUS);
        info->ignored_writes = reg(bar, VGPU_STUB_REG_IGNORED_WRITES);
        info->doorbell_count = reg(bar, VGPU_STUB_REG_DOORBELL_COUNT);

        if (info->vm_id == 0 || info->vm_id > VGPU_STUB_VM_ID_MAX) {
                client_set_error("the vgpu-stub device at %s reports vm_id %u", info->pci_address, info->vm_id);
                return -EPROTO;
        }
        if (priority == VGPU_STUB_PRIORITY_UNSET)
                info->priority = VGPU_PRIORITY_NONE;
        else if (priority <= VGPU_STUB_PRIORITY_LOW)
                info->priority = (int)priority;
        else {
                client_set_error("the vgpu-stub device at %s reports priority %u", info->pci_address, priority);
                return -EPROTO;
        }
        for (unsigned i = 0; i < VGPU_STUB_POOL_ID_SIZE && info->pool_id[i]; i++) {
                char ch = info->pool_id[i];

                if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (i > 0 && ch >= '0' && ch <= '9') ||
                      (i > 0 && ch == '_'))) {
                        client_set_error("the vgpu-stub device at %s reports a malformed pool id", info->pci_address);
                        return -EPROTO;
                }
        }
        return 0;
}

VGPU_API int vgpu_stub_read(VgpuStubInfo *ret)
{
        VgpuStubInfo info = {.priority = VGPU_PRIORITY_NONE};
        _cleanup_close_ int fd = -1;
        char path[512];
        struct stat st;
        void *bar;
        int r;

        if (!ret)
                return -EINVAL;
        r = find_stub(info.pci_address, sizeof(info.pci_address));
        if (r == -ENODEV) {
                client_set_error("no vgpu-stub device found (no PCI device %04x:%04x)", VGPU_STUB_VENDOR_ID,
                                 VGPU_STUB_DEVICE_ID);
                return r;
        }
        if (r < 0) {
                client_set_error("cannot list " SYSFS_PCI_DEVICES ": %s", strerror(-r));
                return r;
        }
        snprintf(path, sizeof(path), SYSFS_PCI_DEVICES "/%s/resource0", info.pci_address);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0) {
                r = -errno;
                client_set_error("cannot open the vgpu-stub registers %s: %s%s", path, strerror(-r),
                                 r == -EACCES || r == -EPERM ? " (root only)" : "");
                return r;
        }
        if (st.st_size < VGPU_STUB_BAR_SIZE) {
                client_set_error("the vgpu-stub registers %s are %lld bytes, not %d", path, (long long)st.st_size,
                                 VGPU_STUB_BAR_SIZE);
                return -EPROTO;
        }
        bar = mmap(NULL, VGPU_STUB_BAR_SIZE, PROT_READ, MAP_SHARED, fd, 0);
        if (bar == MAP_FAILED) {
                r = -errno;
                client_set_error("cannot map the vgpu-stub registers %s: %s%s", path, strerror(-r),
                                 r == -EPERM ? " (root only; a locked-down kernel refuses it)" : "");
                return r;
        }
        r = read_registers(bar, &info);
        munmap(bar, VGPU_STUB_BAR_SIZE);
        if (r < 0)
                return r;
        *ret = info;
        return 0;
}

VGPU_API const char *vgpu_stub_priority_name(int priority)
{
        switch (priority) {
        case 0: return "high";
        case 1: return "medium";
        case 2: return "low";
        default: return "";
        }
}
