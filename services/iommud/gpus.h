/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The host's PCI devices as libpci and sysfs show them below the root, its GPUs, their IOMMU groups, and
 * whether each group can be handed to a guest as a whole. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "pci-address.h"
#include "platform.h"
#include "sysroot.h"

/* What the service looks at: the root, the platform found there, and the test-only allow-list of PCI IDs
 * that are treated like GPUs (empty on a host). */
typedef struct Host {
        Sysroot *root;
        Platform platform;
        PciIdList test_allow;
} Host;

typedef struct PciDevice {
        PciAddress address;
        char name[PCI_ADDRESS_STRING_MAX]; /* canonical address */
        uint16_t vendor_id, device_id;
        uint32_t class;     /* 24 bits: class, subclass, programming interface */
        char *vendor_name;  /* from the PCI ID database; "" when unknown */
        char *device_name;
        char *driver;       /* "" when none is bound */
        int32_t iommu_group; /* -1 when the platform shows none */
        bool boot_vga;      /* the firmware console is on it */
} PciDevice;

typedef struct Gpu {
        const PciDevice *device;
        const PciDevice **members; /* the whole group (or, with no groups, the device's functions), the GPU too */
        size_t n_members;
        bool group_viable;
        char *viable_reason;        /* a sentence when not viable */
        bool isolated;
        bool allowed_by_test_list;
} Gpu;

typedef struct GpuList {
        PciDevice *devices; /* every PCI device, by address */
        size_t n_devices;
        Gpu *gpus;          /* by address */
        size_t n_gpus;
} GpuList;

/* Reads every PCI device (libpci's sysfs method on ROOT/sys/bus/pci, names from the PCI ID database) and
 * assesses each GPU. A root without a PCI bus gives an empty list. */
int gpus_discover(const Host *h, GpuList *ret);
void gpu_list_done(GpuList *l);
const PciDevice *gpu_list_find_device(const GpuList *l, const PciAddress *a);
const Gpu *gpu_list_find_gpu(const GpuList *l, const PciAddress *a);

bool pci_class_is_display(uint32_t class);
bool pci_class_is_bridge(uint32_t class);
/* A device this service treats as a GPU: display class, or on the test-only allow-list. */
bool host_device_is_gpu(const Host *h, const PciDevice *d, bool *ret_by_test_list);

/* The driver that isolates a GPU on this platform: vfio-pci on Linux, pciback on Xen. */
const char *platform_isolation_driver(Platform p);
