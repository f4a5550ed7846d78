# SPDX-License-Identifier: LGPL-2.1-or-later
"""The one exception the XAPI side raises: a code XAPI shows as the failure's name, and a sentence a
person can act on."""

# The codes, as `xe host-call-plugin` shows them (XenAPIPlugin.Failure(code, [sentence])).
USAGE = "VGPU_INVALID_ARGUMENT"      # a malformed or missing argument; nothing was sent anywhere
REFUSED = "VGPU_REFUSED"             # vgpu-configd (or vgpu-iommud) refused, or is not running
XAPI = "VGPU_XAPI_FAILURE"           # XAPI refused a call or could not be reached
NOT_REGISTERED = "VGPU_VM_NOT_REGISTERED"
VM_ID_CLASH = "VGPU_VM_ID_CLASH"


class VgpuError(Exception):
    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code = code
        self.message = message

    def __str__(self):
        return self.message
