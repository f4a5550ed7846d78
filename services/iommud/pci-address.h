/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* PCI addresses (DDDD:BB:SS.F) and vendor:device IDs, parsed strictly: an address from a D-Bus caller or a
 * log line becomes part of a path below the root only in the canonical form produced here. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCI_ADDRESS_STRING_MAX 16 /* "dddd:bb:ss.f", the NUL, and room */

typedef struct PciAddress {
        uint16_t domain;
        uint8_t bus;
        uint8_t slot;     /* 0..0x1f */
        uint8_t function; /* 0..7 */
} PciAddress;

/* "DDDD:BB:SS.F" or "BB:SS.F" (domain 0), hexadecimal digits in either case, exactly 4/2/2/1 digits.
 * Returns 0 or -EINVAL. */
int pci_address_parse(const char *s, PciAddress *ret);
/* Like pci_address_parse(), for the first `len` bytes of `s` (which need not be NUL-terminated). */
int pci_address_parse_n(const char *s, size_t len, PciAddress *ret);
/* Writes the canonical lowercase form "dddd:bb:ss.f" into buf; returns buf. */
char *pci_address_format(const PciAddress *a, char buf[static PCI_ADDRESS_STRING_MAX]);
bool pci_address_equal(const PciAddress *a, const PciAddress *b);
/* Two functions of one device: same domain, bus and slot. */
bool pci_address_same_slot(const PciAddress *a, const PciAddress *b);

typedef struct PciId {
        uint16_t vendor;
        uint16_t device;
} PciId;

/* "VVVV:DDDD", exactly four hexadecimal digits each. */
int pci_id_parse(const char *s, PciId *ret);

typedef struct PciIdList {
        PciId *ids;
        size_t n;
} PciIdList;

int pci_id_list_add(PciIdList *l, PciId id);
bool pci_id_list_contains(const PciIdList *l, uint16_t vendor, uint16_t device);
void pci_id_list_done(PciIdList *l);
