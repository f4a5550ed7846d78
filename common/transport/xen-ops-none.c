/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A build without libxen's development files: no real Xen table. The transport then answers -EOPNOTSUPP
 * for Xen channels, and the tests still run their fakes. */
#include <stddef.h>

#include "xen-ops.h"

const VgpuXenOps *vgpu_xen_ops_libxen(void)
{
        return NULL;
}
