/*
 * vgpu-stub: shows a guest the identity its host gave it (vm_id, pool,
 * priority) in read-only registers, and announces that identity to the
 * host's vgpu-ingestd through an optional chardev. Register map,
 * announcement line and PCI IDs: docs/vgpu-stub.md of the vgpu project.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/error-report.h"
#include "qemu/module.h"
#include "qapi/error.h"
#include "hw/pci/pci.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "chardev/char-fe.h"
#include "migration/vmstate.h"
#include "qom/object.h"

#include "vgpu-stub.h"

#define TYPE_VGPU_STUB "vgpu-stub"
OBJECT_DECLARE_SIMPLE_TYPE(VgpuStubState, VGPU_STUB)

struct VgpuStubState {
    PCIDevice parent_obj;
    MemoryRegion mmio;

    /* Configuration: the properties, fixed at realize. */
    uint32_t vm_id;
    char *pool_id;
    char *priority_name;
    CharBackend announce_chr;

    /* Derived from the configuration in realize. */
    uint32_t priority;
    uint8_t pool_reg[VGPU_STUB_POOL_ID_SIZE];

    /*
     * Host-side fact, not guest state: each QEMU (a migration's destination
     * too) announces on its own chardev, so it is neither migrated nor
     * cleared at reset.
     */
    bool announced;

    /* Guest-visible state: migrated, cleared at reset. */
    uint32_t ignored_writes;
    uint32_t doorbell_count;
};

static const char *const vgpu_stub_priority_names[] = {
    [VGPU_STUB_PRIORITY_HIGH] = "high",
    [VGPU_STUB_PRIORITY_MEDIUM] = "medium",
    [VGPU_STUB_PRIORITY_LOW] = "low",
};

static const char *vgpu_stub_priority_name(uint32_t priority)
{
    if (priority >= ARRAY_SIZE(vgpu_stub_priority_names)) {
        return "";
    }
    return vgpu_stub_priority_names[priority];
}

/*
 * The project's rule for pool ids: an ASCII letter, then up to 15 ASCII
 * letters, digits or '_'.
 */
static bool vgpu_stub_pool_id_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > VGPU_STUB_POOL_ID_SIZE || !g_ascii_isalpha(s[0])) {
        return false;
    }
    for (size_t i = 1; i < n; i++) {
        if (!g_ascii_isalnum(s[i]) && s[i] != '_') {
            return false;
        }
    }
    return true;
}

static uint32_t vgpu_stub_reg(VgpuStubState *s, hwaddr reg)
{
    switch (reg) {
    case VGPU_STUB_REG_MAGIC:
        return VGPU_STUB_MAGIC;
    case VGPU_STUB_REG_VERSION:
        return VGPU_STUB_VERSION;
    case VGPU_STUB_REG_VM_ID:
        return s->vm_id;
    case VGPU_STUB_REG_PRIORITY:
        return s->priority;
    case VGPU_STUB_REG_POOL_ID ...
         VGPU_STUB_REG_POOL_ID + VGPU_STUB_POOL_ID_SIZE - 1:
        return ldl_le_p(s->pool_reg + (reg - VGPU_STUB_REG_POOL_ID));
    case VGPU_STUB_REG_STATUS:
        return s->announced ? VGPU_STUB_STATUS_ANNOUNCED : 0;
    case VGPU_STUB_REG_IGNORED_WRITES:
        return s->ignored_writes;
    case VGPU_STUB_REG_DOORBELL_COUNT:
        return s->doorbell_count;
    default:
        return 0; /* the doorbell and everything unassigned */
    }
}

/*
 * Byte by byte, so that aligned 1-, 2- and 4-byte reads all see the same
 * little-endian registers.
 */
static uint64_t vgpu_stub_mmio_read(void *opaque, hwaddr addr, unsigned size)
{
    VgpuStubState *s = opaque;
    uint64_t val = 0;

    for (unsigned i = 0; i < size; i++) {
        hwaddr a = addr + i;
        uint32_t reg = vgpu_stub_reg(s, a & ~(hwaddr)3);
        uint32_t byte = (reg >> ((a & 3) * 8)) & 0xff;

        val |= (uint64_t)byte << (i * 8);
    }
    return val;
}

/*
 * The guest may ring the doorbell and nothing else: every other write is
 * dropped and counted, so that a guest probing its identity registers shows
 * up in IGNORED_WRITES instead of changing them.
 */
static void vgpu_stub_mmio_write(void *opaque, hwaddr addr, uint64_t val,
                                 unsigned size)
{
    VgpuStubState *s = opaque;

    if ((addr & ~(hwaddr)3) == VGPU_STUB_REG_DOORBELL) {
        s->doorbell_count++;
    } else {
        s->ignored_writes++;
    }
}

static const MemoryRegionOps vgpu_stub_mmio_ops = {
    .read = vgpu_stub_mmio_read,
    .write = vgpu_stub_mmio_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 4,
    },
    .impl = {
        .min_access_size = 1,
        .max_access_size = 4,
    },
};

/*
 * One line, "vgpu-stub 1 vm_id=N pool_id=P priority=L\n"; an empty value:
 * the property was not given.
 */
static void vgpu_stub_announce(VgpuStubState *s)
{
    g_autofree char *line =
        g_strdup_printf("vgpu-stub %u vm_id=%" PRIu32
                        " pool_id=%s priority=%s\n", VGPU_STUB_VERSION,
                        s->vm_id, s->pool_id ? s->pool_id : "",
                        vgpu_stub_priority_name(s->priority));
    int len = strlen(line);

    if (qemu_chr_fe_write_all(&s->announce_chr, (const uint8_t *)line,
                              len) == len) {
        s->announced = true;
    } else {
        s->announced = false;
        warn_report("vgpu-stub: vm_id %" PRIu32 ": the identity could not "
                    "be written to chardev '%s'", s->vm_id,
                    qemu_chr_fe_get_driver(&s->announce_chr)->label);
    }
}

/*
 * Announce on every new connection (and at once for a file or pty), so that
 * a restarted receiver hears it again.
 */
static void vgpu_stub_chr_event(void *opaque, QEMUChrEvent event)
{
    VgpuStubState *s = opaque;

    switch (event) {
    case CHR_EVENT_OPENED:
        vgpu_stub_announce(s);
        break;
    case CHR_EVENT_CLOSED:
        s->announced = false;
        break;
    default:
        break;
    }
}

/* Whatever the receiver sends is read and dropped (reserved for later). */
static int vgpu_stub_chr_can_read(void *opaque)
{
    return 256;
}

static void vgpu_stub_chr_read(void *opaque, const uint8_t *buf, int size)
{
}

static void vgpu_stub_realize(PCIDevice *pdev, Error **errp)
{
    VgpuStubState *s = VGPU_STUB(pdev);

    if (s->vm_id == 0) {
        error_setg(errp, "property 'vm_id' is missing (or 0): "
                   "give the VM's id, 1 to %u", VGPU_STUB_VM_ID_MAX);
        return;
    }
    if (s->vm_id > VGPU_STUB_VM_ID_MAX) {
        error_setg(errp, "property 'vm_id' is %" PRIu32 ": "
                   "expected a VM id from 1 to %u", s->vm_id,
                   VGPU_STUB_VM_ID_MAX);
        return;
    }

    s->priority = VGPU_STUB_PRIORITY_UNSET;
    if (s->priority_name) {
        for (uint32_t i = 0; i < ARRAY_SIZE(vgpu_stub_priority_names); i++) {
            if (strcmp(s->priority_name, vgpu_stub_priority_names[i]) == 0) {
                s->priority = i;
            }
        }
        if (s->priority == VGPU_STUB_PRIORITY_UNSET) {
            error_setg(errp, "property 'priority' is '%s': "
                       "expected high, medium or low", s->priority_name);
            return;
        }
    }

    memset(s->pool_reg, 0, sizeof(s->pool_reg));
    if (s->pool_id) {
        if (!vgpu_stub_pool_id_valid(s->pool_id)) {
            error_setg(errp, "property 'pool_id' is '%s': expected a letter, "
                       "then up to 15 letters, digits or '_'", s->pool_id);
            return;
        }
        memcpy(s->pool_reg, s->pool_id, strlen(s->pool_id));
    }

    pci_config_set_interrupt_pin(pdev->config, 0);
    memory_region_init_io(&s->mmio, OBJECT(s), &vgpu_stub_mmio_ops, s,
                          "vgpu-stub-mmio", VGPU_STUB_BAR_SIZE);
    pci_register_bar(pdev, 0, PCI_BASE_ADDRESS_SPACE_MEMORY, &s->mmio);

    s->announced = false;
    if (qemu_chr_fe_backend_connected(&s->announce_chr)) {
        qemu_chr_fe_set_handlers(&s->announce_chr, vgpu_stub_chr_can_read,
                                 vgpu_stub_chr_read, vgpu_stub_chr_event,
                                 NULL, s, NULL, true);
    }
}

static void vgpu_stub_exit(PCIDevice *pdev)
{
    VgpuStubState *s = VGPU_STUB(pdev);

    qemu_chr_fe_deinit(&s->announce_chr, false);
}

static void vgpu_stub_reset(DeviceState *dev)
{
    VgpuStubState *s = VGPU_STUB(dev);

    s->ignored_writes = 0;
    s->doorbell_count = 0;
}

static const VMStateDescription vgpu_stub_vmstate = {
    .name = TYPE_VGPU_STUB,
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, VgpuStubState),
        /*
         * A VM keeps its identity across a migration: a destination
         * configured with another vm_id refuses the stream.
         */
        VMSTATE_UINT32_EQUAL(vm_id, VgpuStubState,
                             "the destination's vgpu-stub has another vm_id"),
        VMSTATE_UINT32(ignored_writes, VgpuStubState),
        VMSTATE_UINT32(doorbell_count, VgpuStubState),
        VMSTATE_END_OF_LIST()
    },
};

static Property vgpu_stub_properties[] = {
    DEFINE_PROP_UINT32("vm_id", VgpuStubState, vm_id, 0),
    DEFINE_PROP_STRING("pool_id", VgpuStubState, pool_id),
    DEFINE_PROP_STRING("priority", VgpuStubState, priority_name),
    DEFINE_PROP_CHR("chardev", VgpuStubState, announce_chr),
    DEFINE_PROP_END_OF_LIST(),
};

static void vgpu_stub_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = vgpu_stub_realize;
    k->exit = vgpu_stub_exit;
    k->vendor_id = VGPU_STUB_VENDOR_ID;
    k->device_id = VGPU_STUB_DEVICE_ID;
    k->revision = VGPU_STUB_REVISION;
    k->class_id = VGPU_STUB_CLASS;
    k->subsystem_vendor_id = VGPU_STUB_VENDOR_ID;
    k->subsystem_id = VGPU_STUB_DEVICE_ID;
    dc->desc = "vgpu identity stub: vm_id, pool and priority for the guest";
    dc->reset = vgpu_stub_reset;
    dc->vmsd = &vgpu_stub_vmstate;
    device_class_set_props(dc, vgpu_stub_properties);
    object_class_property_set_description(klass, "vm_id",
        "the VM's id, 1 to 2147483647 (required)");
    object_class_property_set_description(klass, "pool_id",
        "the VM's pool: a letter, then up to 15 letters, digits or '_'");
    object_class_property_set_description(klass, "priority",
        "the VM's priority: high, medium or low");
    object_class_property_set_description(klass, "chardev",
        "where QEMU announces the identity to the host's vgpu-ingestd");
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo vgpu_stub_info = {
    .name = TYPE_VGPU_STUB,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(VgpuStubState),
    .class_init = vgpu_stub_class_init,
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_CONVENTIONAL_PCI_DEVICE },
        { },
    },
};

static void vgpu_stub_register_types(void)
{
    type_register_static(&vgpu_stub_info);
}

type_init(vgpu_stub_register_types)
