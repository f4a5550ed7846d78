/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Outcomes of vgpu-iommud's actions that a caller must handle (positive), beside system errors (negative
 * errno). Each comes with a sentence for the person who asked; at the D-Bus edge each becomes the
 * org.vgpu.Error.* of the same name. */
#pragma once

typedef enum IommuError {
        IOMMU_E_INVALID_ARGUMENT = 1,
        IOMMU_E_NO_SUCH_DEVICE,
        IOMMU_E_NOT_A_GPU,
        IOMMU_E_GROUP_NOT_VIABLE,
        IOMMU_E_DEVICE_IN_USE,
        IOMMU_E_HOST_CONSOLE,
        IOMMU_E_NOT_SUPPORTED,
        IOMMU_E_FAILED,
} IommuError;

#define IOMMU_WHY_MAX 512
