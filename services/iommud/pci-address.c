/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Strict parsing and canonical formatting of PCI addresses and vendor:device IDs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "pci-address.h"

static int hex_digit(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Exactly `digits` hexadecimal digits at s. */
static int hex_field(const char *s, size_t digits, unsigned *ret)
{
        unsigned v = 0;

        for (size_t i = 0; i < digits; i++) {
                int d = hex_digit(s[i]);
                if (d < 0)
                        return -EINVAL;
                v = v * 16 + (unsigned)d;
        }
        *ret = v;
        return 0;
}

int pci_address_parse_n(const char *s, size_t len, PciAddress *ret)
{
        unsigned domain = 0, bus, slot, function;
        const char *p = s;

        if (!s)
                return -EINVAL;
        if (len == 12) {
                if (hex_field(p, 4, &domain) < 0 || p[4] != ':')
                        return -EINVAL;
                p += 5;
        } else if (len != 7)
                return -EINVAL;
        if (hex_field(p, 2, &bus) < 0 || p[2] != ':' || hex_field(p + 3, 2, &slot) < 0 || p[5] != '.' ||
            hex_field(p + 6, 1, &function) < 0)
                return -EINVAL;
        if (slot > 0x1f || function > 7)
                return -EINVAL;
        *ret = (PciAddress){ .domain = (uint16_t)domain, .bus = (uint8_t)bus, .slot = (uint8_t)slot,
                             .function = (uint8_t)function };
        return 0;
}

int pci_address_parse(const char *s, PciAddress *ret)
{
        size_t len = 0;

        if (!s)
                return -EINVAL;
        /* Bounded: anything longer than the long form is refused without reading further. */
        while (len < 13 && s[len])
                len++;
        return pci_address_parse_n(s, len, ret);
}

char *pci_address_format(const PciAddress *a, char buf[static PCI_ADDRESS_STRING_MAX])
{
        snprintf(buf, PCI_ADDRESS_STRING_MAX, "%04x:%02x:%02x.%x", a->domain, a->bus, a->slot, a->function);
        return buf;
}

bool pci_address_equal(const PciAddress *a, const PciAddress *b)
{
        return pci_address_same_slot(a, b) && a->function == b->function;
}

bool pci_address_same_slot(const PciAddress *a, const PciAddress *b)
{
        return a->domain == b->domain && a->bus == b->bus && a->slot == b->slot;
}

int pci_id_parse(const char *s, PciId *ret)
{
        unsigned vendor, device;

        if (!s || hex_field(s, 4, &vendor) < 0 || s[4] != ':' || hex_field(s + 5, 4, &device) < 0 || s[9] != '\0')
                return -EINVAL;
        *ret = (PciId){ .vendor = (uint16_t)vendor, .device = (uint16_t)device };
        return 0;
}

int pci_id_list_add(PciIdList *l, PciId id)
{
        PciId *grown;

        if (pci_id_list_contains(l, id.vendor, id.device))
                return 0;
        grown = realloc(l->ids, (l->n + 1) * sizeof(*grown));
        if (!grown)
                return -ENOMEM;
        grown[l->n++] = id;
        l->ids = grown;
        return 0;
}

bool pci_id_list_contains(const PciIdList *l, uint16_t vendor, uint16_t device)
{
        for (size_t i = 0; l && i < l->n; i++)
                if (l->ids[i].vendor == vendor && l->ids[i].device == device)
                        return true;
        return false;
}

void pci_id_list_done(PciIdList *l)
{
        free(l->ids);
        l->ids = NULL;
        l->n = 0;
}
