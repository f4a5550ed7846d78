/*
 * vgpu-stub's guest interface: the PCI IDs and the register map of BAR0
 * (docs/vgpu-stub.md of the vgpu project). Plain C with no QEMU types, so
 * that the device (hw/misc/vgpu-stub.c) and the guest's reader
 * (guest/libvgpu/stub.c) share this one definition.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef VGPU_STUB_H
#define VGPU_STUB_H

/*
 * QEMU's range for experimental devices (docs/specs/pci-ids.txt): usable
 * without registration, not in a shipped product. docs/vgpu-stub.md says
 * why, and what must replace it.
 */
#define VGPU_STUB_VENDOR_ID 0x1af4
#define VGPU_STUB_DEVICE_ID 0x10f0
#define VGPU_STUB_REVISION  0x01
/* Base class 08 (system peripheral), subclass 80 (other). */
#define VGPU_STUB_CLASS     0x0880

#define VGPU_STUB_BAR_SIZE 0x1000

/* Little-endian 32-bit registers; every offset not named here reads 0. */
#define VGPU_STUB_REG_MAGIC          0x00 /* VGPU_STUB_MAGIC */
#define VGPU_STUB_REG_VERSION        0x04 /* VGPU_STUB_VERSION */
#define VGPU_STUB_REG_VM_ID          0x08 /* 1 ... VGPU_STUB_VM_ID_MAX */
#define VGPU_STUB_REG_PRIORITY       0x0c /* VGPU_STUB_PRIORITY_* */
#define VGPU_STUB_REG_POOL_ID        0x10 /* 16 ASCII bytes, NUL-padded */
#define VGPU_STUB_REG_STATUS         0x20 /* VGPU_STUB_STATUS_* */
#define VGPU_STUB_REG_IGNORED_WRITES 0x24 /* dropped guest writes */
#define VGPU_STUB_REG_DOORBELL       0x28 /* write-only, reads 0 */
#define VGPU_STUB_REG_DOORBELL_COUNT 0x2c /* doorbell writes */

#define VGPU_STUB_MAGIC   0x55504756u /* "VGPU" in memory order */
#define VGPU_STUB_VERSION 1u

#define VGPU_STUB_VM_ID_MAX       2147483647u
#define VGPU_STUB_POOL_ID_SIZE    16
#define VGPU_STUB_PRIORITY_HIGH   0u
#define VGPU_STUB_PRIORITY_MEDIUM 1u
#define VGPU_STUB_PRIORITY_LOW    2u
#define VGPU_STUB_PRIORITY_UNSET  0xffffffffu /* the toolstack gave none */

/* The identity line went out on the chardev's current connection. */
#define VGPU_STUB_STATUS_ANNOUNCED 0x1u

#endif
