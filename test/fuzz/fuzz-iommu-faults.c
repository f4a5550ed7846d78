/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target for the IOMMU fault-line parser of vgpu-iommud. Input: one log line (any bytes; a NUL
 * ends it early, as it would a C string). Besides "does not crash", it checks the parser's promise about
 * what it accepts: a known source, a device that is "" or a canonical PCI address, and a reason that is a
 * NUL-terminated string inside its buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/iommud/faults.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int ok)
{
        if (!ok)
                abort(); /* the parser accepted something it promised to refuse, or wrote past a field */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        IommuFault fault;
        char *line;

        if (size > 4096)
                return 0; /* kmsg records are at most about 1 KiB; longer inputs only slow the search */
        line = malloc(size + 1);
        if (!line)
                return 0;
        memcpy(line, data, size);
        line[size] = '\0';
        memset(&fault, 0x5a, sizeof(fault));
        if (iommu_fault_parse(line, &fault)) {
                require(memchr(fault.device, '\0', sizeof(fault.device)) != NULL);
                require(memchr(fault.reason, '\0', sizeof(fault.reason)) != NULL);
                if (fault.device[0] != '\0') {
                        PciAddress a;
                        char canonical[PCI_ADDRESS_STRING_MAX];

                        require(pci_address_parse(fault.device, &a) == 0);
                        require(!strcmp(pci_address_format(&a, canonical), fault.device));
                }
                require(fault.source >= 0 && fault.source < _FAULT_SOURCE_MAX);
        }
        free(line);
        return 0;
}
