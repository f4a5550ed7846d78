# SPDX-License-Identifier: LGPL-2.1-or-later
"""vgpu's XAPI side: the host plugin's functions, and what a VM's start does with its XAPI settings.

Everything here reaches XAPI only through `xapi.XapiSession` (the seam) and vgpu-configd only through
`admin.Admin` (vgpu-admin --json, the administrator's own D-Bus client)."""

from .errors import VgpuError
from .values import OTHER_CONFIG_POOL, OTHER_CONFIG_PRIORITY, OTHER_CONFIG_VM_ID, device_argument

__all__ = ["VgpuError", "OTHER_CONFIG_POOL", "OTHER_CONFIG_PRIORITY", "OTHER_CONFIG_VM_ID", "device_argument"]
