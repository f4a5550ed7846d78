/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* IOMMU fault lines from the kernel log and the Xen console, parsed into one plain record. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "pci-address.h"

/* Lines longer than this are not fault lines (the kernel's own limit is 1024 bytes per record). */
#define IOMMU_FAULT_LINE_MAX 4096
#define IOMMU_FAULT_REASON_MAX 192

typedef enum FaultSource {
        FAULT_SOURCE_DMAR,   /* Linux, Intel VT-d */
        FAULT_SOURCE_AMD_VI, /* Linux, AMD-Vi */
        FAULT_SOURCE_XEN,    /* the hypervisor's console, either vendor */
        _FAULT_SOURCE_MAX,
} FaultSource;

typedef struct IommuFault {
        FaultSource source;
        char device[PCI_ADDRESS_STRING_MAX]; /* canonical PCI address; "" when the line names none */
        uint64_t address;                    /* the faulting I/O virtual address; 0 when the line names none */
        char reason[IOMMU_FAULT_REASON_MAX]; /* the hardware's reason as logged, e.g. "DMA Read NO_PASID:
                                              * fault reason 0x06 (PTE Read access is not set)" */
} IommuFault;

/* Recognizes one log line (without its newline; any kmsg header or "(XEN)" prefix may still be on it):
 * Intel's "DMAR: [DMA Read …] Request device [bb:ss.f] … fault addr …" in the formats Linux 3.x to 6.x
 * printed, AMD's "AMD-Vi: Event logged [EVENT device=… address=… …]" with or without the device's name in
 * front, and Xen's "[VT-D]DMAR:[DMA …] Request device [ssss:bb:ss.f] fault addr …" and "AMD-Vi: EVENT:
 * ssss:bb:ss.f dN addr … flags …". Reads at most IOMMU_FAULT_LINE_MAX bytes of `line`; never reads past
 * its NUL. Returns false (and leaves *ret undefined) for every other line, including the status lines
 * around a fault ("DMAR: DRHD: handling fault status reg 2"). Linux's DMAR lines carry no PCI segment;
 * segment 0000 is assumed there. */
bool iommu_fault_parse(const char *line, IommuFault *ret);

const char *fault_source_to_string(FaultSource s);
