# SPDX-License-Identifier: LGPL-2.1-or-later
"""The value domains vgpu shares with vgpu-admin and the vgpu-stub device, the VM other-config keys that
carry a VM's settings through XAPI's pool database, and the device argument built from them."""

import re

from . import errors

# VM other-config keys (replicated to every host of an XAPI pool by XAPI's own database).
OTHER_CONFIG_VM_ID = "vgpu-vm-id"
OTHER_CONFIG_POOL = "vgpu-pool"
OTHER_CONFIG_PRIORITY = "vgpu-priority"
OTHER_CONFIG_KEYS = (OTHER_CONFIG_VM_ID, OTHER_CONFIG_POOL, OTHER_CONFIG_PRIORITY)

# A VM that names a pool but no priority runs at this one (docs/xapi.md).
DEFAULT_PRIORITY = "medium"

VM_ID_MAX = 2147483647
PRIORITIES = ("high", "medium", "low")
NAME_MAX_BYTES = 128

_POOL_RE = re.compile(r"\A[A-Za-z][A-Za-z0-9_]{0,15}\Z")
_VM_ID_RE = re.compile(r"\A[1-9][0-9]{0,9}\Z")
_UUID_RE = re.compile(r"\A[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")


def vm_id(text, what="vm-id"):
    """A VM id as vgpu-admin accepts it: 1 to 2147483647, decimal, no sign or leading zeros."""
    if not isinstance(text, str) or not _VM_ID_RE.match(text) or int(text) > VM_ID_MAX:
        raise errors.VgpuError(errors.USAGE, "invalid %s '%s': expected a number from 1 to %d."
                               % (what, text, VM_ID_MAX))
    return int(text)


def pool(text, what="pool"):
    if not isinstance(text, str) or not _POOL_RE.match(text):
        raise errors.VgpuError(errors.USAGE, "invalid %s '%s': expected a letter followed by up to 15 "
                               "letters, digits or underscores." % (what, text))
    return text


def priority(text, what="priority"):
    if text not in PRIORITIES:
        raise errors.VgpuError(errors.USAGE, "invalid %s '%s': expected high, medium or low." % (what, text))
    return text


def vm_uuid(text, what="vm-uuid"):
    if not isinstance(text, str) or not _UUID_RE.match(text):
        raise errors.VgpuError(errors.USAGE, "invalid %s '%s': expected a VM uuid "
                               "(8-4-4-4-12 hexadecimal digits)." % (what, text))
    return text.lower()


def vm_name(label):
    """A VM's XAPI name-label made acceptable as a vgpu name: printable characters only, at most 128
    bytes of UTF-8, cut at a character boundary."""
    printable = "".join(c for c in label if c.isprintable())
    return printable.encode("utf-8")[:NAME_MAX_BYTES].decode("utf-8", "ignore")


def device_argument(vm_id_, pool_, priority_):
    """The value of QEMU's -device option for one VM's vgpu-stub device."""
    return "vgpu-stub,vm_id=%d,pool_id=%s,priority=%s" % (vm_id_, pool_, priority_)


def check_arguments(fn, args, required, optional=()):
    """The plugin arguments of `fn`: every required one present and non-empty, nothing unknown."""
    if not isinstance(args, dict):
        raise errors.VgpuError(errors.USAGE, "%s: arguments must be key=value pairs." % fn)
    known = tuple(required) + tuple(optional)
    for key in sorted(args):
        if key not in known:
            raise errors.VgpuError(errors.USAGE, "%s: unknown argument '%s'; it takes %s."
                                   % (fn, key, ", ".join(known) or "no arguments"))
    for key in required:
        if args.get(key, "") == "":
            raise errors.VgpuError(errors.USAGE, "%s needs args:%s=…" % (fn, key))
