# SPDX-License-Identifier: LGPL-2.1-or-later
"""The host plugin's functions and the VM-start mirror. Each takes the XAPI seam (`xapi.XapiSession` or
a fake) and the plugin's string arguments, validates them, changes vgpu-configd through vgpu-admin and
XAPI's VM other-config in an order that leaves both as they were when either refuses, logs what changed
and returns a JSON-ready dict.

A VM's vgpu settings live twice: in XAPI's VM other-config (vgpu-vm-id, vgpu-pool, vgpu-priority),
which XAPI replicates to every host of its pool, and in the vgpu-configd of the host the VM runs on,
which mirrors them when the VM starts there. Where they differ, XAPI's other-config wins."""

import logging
from collections import namedtuple

from . import errors, values
from .admin import Admin
from .errors import VgpuError
from .values import OTHER_CONFIG_KEYS, OTHER_CONFIG_POOL, OTHER_CONFIG_PRIORITY, OTHER_CONFIG_VM_ID

log = logging.getLogger("vgpu-xapi")

# A VM's settings as XAPI holds them; None where a key is absent.
XapiSettings = namedtuple("XapiSettings", "vm_id pool priority")


def _xapi_settings(uuid, other_config):
    def field(key, parse):
        if key not in other_config:
            return None
        return parse(other_config[key], "other-config:%s of VM %s" % (key, uuid))
    return XapiSettings(field(OTHER_CONFIG_VM_ID, values.vm_id), field(OTHER_CONFIG_POOL, values.pool),
                        field(OTHER_CONFIG_PRIORITY, values.priority))


def _settings_dict(settings):
    if settings.pool is None and settings.vm_id is None:
        return None
    return {"vm_id": settings.vm_id, "pool": settings.pool,
            "priority": settings.priority or values.DEFAULT_PRIORITY}


def _vm(xapi, uuid):
    ref = xapi.vm_ref(uuid)
    return ref, xapi.other_config(ref)


def _host_record(host_vms, uuid):
    for vm in host_vms:
        if vm.get("uuid") == uuid:
            return vm
    return None


def _free_vm_id(xapi, host_vms):
    """The smallest VM id that no VM of the XAPI pool (other-config:vgpu-vm-id) and no VM of this host's
    vgpu-configd holds."""
    taken = {vm["vm_id"] for vm in host_vms}
    for text in xapi.vgpu_vm_ids(OTHER_CONFIG_VM_ID).values():
        if text.isdigit():
            taken.add(int(text))
    vm_id = 1
    while vm_id in taken:
        vm_id += 1
    return vm_id


def _set_other_config(xapi, ref, uuid, new, old):
    """Writes the keys of `new`; if XAPI refuses one, puts back those already written, then raises."""
    written = []
    try:
        for key in sorted(new):
            written.append(key)  # a refused write may have removed the old value already
            xapi.set_other_config_key(ref, key, new[key])
    except VgpuError:
        for key in written:
            try:
                if key in old:
                    xapi.set_other_config_key(ref, key, old[key])
                else:
                    xapi.remove_other_config_key(ref, key)
            except VgpuError as exc:
                log.error("VM %s: could not put back other-config:%s: %s", uuid, key, exc)
        raise


def _require(fn, args, required, optional=()):
    values.check_arguments(fn, args, required, optional)
    return values.vm_uuid(args["vm-uuid"]) if "vm-uuid" in args else None


def register_vm(xapi, args, admin=None):
    """register-vm vm-uuid= pool= priority= [vm-id=] [name=]: registers the VM in this host's
    vgpu-configd and records its settings in XAPI's other-config. Without vm-id, the smallest id free in
    the XAPI pool and on this host is taken; without name, the VM's name-label."""
    uuid = _require("register-vm", args, ("vm-uuid", "pool", "priority"), ("vm-id", "name"))
    pool = values.pool(args["pool"])
    priority = values.priority(args["priority"])
    wanted_id = values.vm_id(args["vm-id"]) if args.get("vm-id") else None
    admin = admin or Admin()

    ref, other_config = _vm(xapi, uuid)
    present = ["other-config:%s=%s" % (key, other_config[key]) for key in OTHER_CONFIG_KEYS if key in other_config]
    if present:
        raise VgpuError(errors.REFUSED, "VM %s is already set up for vgpu in XAPI (%s); change it with set-pool "
                        "or set-priority, mirror it here with sync-vm, or remove it with unregister-vm."
                        % (uuid, ", ".join(present)))
    host_vms = admin.list_vms()
    record = _host_record(host_vms, uuid)
    if record is not None:
        raise VgpuError(errors.REFUSED, "VM %s is already registered on this host as VM %d (pool %s, priority %s) "
                        "but XAPI does not know it; unregister it with vgpu-admin unregister-vm --vm-id=%d "
                        "first." % (uuid, record["vm_id"], record["pool"], record["priority"], record["vm_id"]))
    if wanted_id is None:
        vm_id = _free_vm_id(xapi, host_vms)
    else:
        vm_id = wanted_id
        _check_free_in_xapi(xapi, uuid, vm_id)
    name = values.vm_name(args.get("name") or xapi.name_label(ref))

    stored = admin.register_vm(vm_id, pool, priority, uuid, name)
    new = {OTHER_CONFIG_VM_ID: str(vm_id), OTHER_CONFIG_POOL: pool, OTHER_CONFIG_PRIORITY: priority}
    try:
        _set_other_config(xapi, ref, uuid, new, other_config)
    except VgpuError:
        admin.unregister_vm(vm_id)
        raise
    log.info("VM %s: registered as vgpu VM %d in pool %s with priority %s (configd and XAPI other-config)",
             uuid, vm_id, pool, priority)
    return {"vm_uuid": uuid, "vm_id": vm_id, "xapi": new, "vm": stored}


def unregister_vm(xapi, args, admin=None):
    """unregister-vm vm-uuid=: removes the VM's other-config keys and its record on this host."""
    uuid = _require("unregister-vm", args, ("vm-uuid",))
    admin = admin or Admin()
    ref, other_config = _vm(xapi, uuid)
    record = admin.vm_by_uuid(uuid)
    present = [key for key in OTHER_CONFIG_KEYS if key in other_config]
    if record is None and not present:
        raise VgpuError(errors.NOT_REGISTERED, "VM %s is not registered for vgpu." % uuid)
    # XAPI's keys first: they can be put back if vgpu-configd then refuses.
    for key in present:
        xapi.remove_other_config_key(ref, key)
    if record is not None:
        try:
            admin.unregister_vm(record["vm_id"])
        except VgpuError:
            _set_other_config(xapi, ref, uuid, {key: other_config[key] for key in present}, {})
            raise
    log.info("VM %s: unregistered from vgpu%s; removed %s", uuid,
             " (was VM %d on this host)" % record["vm_id"] if record else "",
             ", ".join("other-config:" + key for key in present) or "no other-config keys")
    return {"vm_uuid": uuid, "vm_id": record["vm_id"] if record else None, "unregistered": True,
            "removed_other_config": present}


def _set_one(xapi, args, admin, fn, key, parse, setter_name):
    """set-pool / set-priority: this host's vgpu-configd first (its refusal changes nothing), then XAPI's
    other-config (a refusal there puts the host's value back)."""
    word = key[len("vgpu-"):]
    uuid = _require(fn, args, ("vm-uuid", word))
    value = parse(args[word])
    admin = admin or Admin()
    ref, other_config = _vm(xapi, uuid)
    settings = _xapi_settings(uuid, other_config)
    record = admin.vm_by_uuid(uuid)
    if settings.pool is None:
        raise VgpuError(errors.NOT_REGISTERED, "VM %s is not registered for vgpu (no other-config:%s); register "
                        "it with register-vm first." % (uuid, OTHER_CONFIG_POOL))
    if record is not None and settings.vm_id is not None and settings.vm_id != record["vm_id"]:
        raise _vm_id_mismatch(uuid, record, settings)
    xapi_old = other_config.get(key)
    host_old = None
    if record is not None:
        host_old = record[word]
        getattr(admin, setter_name)(record["vm_id"], value)
    try:
        _set_other_config(xapi, ref, uuid, {key: value}, other_config)
    except VgpuError:
        if record is not None and host_old != value:
            getattr(admin, setter_name)(record["vm_id"], host_old)
        raise
    vm_id = record["vm_id"] if record is not None else settings.vm_id
    log.info("VM %s (vgpu VM %s): %s %s → %s in XAPI other-config%s", uuid, vm_id, word, xapi_old or "-", value,
             ", %s → %s on this host" % (host_old, value) if record is not None else
             "; not registered on this host, so its host mirrors it when the VM starts there")
    result = {"vm_uuid": uuid, "vm_id": vm_id, "old_" + word: xapi_old if xapi_old is not None else host_old,
              word: value, "mirrored_here": record is not None}
    if record is None:
        result["note"] = ("VM %s is not registered on this host; the host it starts on mirrors the new %s "
                          "(run sync-vm there to do it now)." % (uuid, word))
    return result


def set_pool(xapi, args, admin=None):
    """set-pool vm-uuid= pool=: moves the VM to another pool here and in XAPI's other-config."""
    return _set_one(xapi, args, admin, "set-pool", OTHER_CONFIG_POOL, values.pool, "set_pool")


def set_priority(xapi, args, admin=None):
    """set-priority vm-uuid= priority=: changes the VM's priority here and in XAPI's other-config."""
    return _set_one(xapi, args, admin, "set-priority", OTHER_CONFIG_PRIORITY, values.priority, "set_priority")


def show_vm(xapi, args, admin=None):
    """show-vm vm-uuid=: the VM's settings in XAPI, its record on this host, whether they agree, and the
    device argument its QEMU gets from that record."""
    uuid = _require("show-vm", args, ("vm-uuid",))
    admin = admin or Admin()
    ref, other_config = _vm(xapi, uuid)
    settings = _settings_dict(_xapi_settings(uuid, other_config))
    record = admin.vm_by_uuid(uuid)
    in_sync = bool(settings and record and record["pool"] == settings["pool"]
                   and record["priority"] == settings["priority"]
                   and settings["vm_id"] in (None, record["vm_id"]))
    return {"vm_uuid": uuid, "name_label": xapi.name_label(ref), "xapi": settings, "host": record,
            "in_sync": in_sync,
            "device": values.device_argument(record["vm_id"], record["pool"], record["priority"]) if record else None}


def iommu_status(xapi, args, admin=None):
    """iommu-status [vm-uuid=]: vgpu-iommud's verdict with its evidence (and the VM's confinement), with
    "compliant" false and the reasons when the host (or VM) is not protected."""
    uuid = _require("iommu-status", args, (), ("vm-uuid",))
    admin = admin or Admin()
    vm_id = None
    if uuid is not None:
        xapi.vm_ref(uuid)
        record = admin.vm_by_uuid(uuid)
        if record is None:
            raise VgpuError(errors.NOT_REGISTERED, "VM %s is not registered with vgpu on this host." % uuid)
        vm_id = record["vm_id"]
    document, compliant, reasons = admin.iommu_status(vm_id)
    document = dict(document)
    document["compliant"] = compliant
    document["reasons"] = reasons
    return document


def sync_vm(xapi, args, admin=None):
    """sync-vm vm-uuid=: what a VM start does, now: mirror XAPI's settings into this host."""
    uuid = _require("sync-vm", args, ("vm-uuid",))
    return on_vm_start(xapi, uuid, admin)


def _vm_id_mismatch(uuid, record, settings):
    return VgpuError(errors.VM_ID_CLASH, "VM %s is registered on this host as VM %d, but its other-config:%s is "
                     "%d; unregister it here (vgpu-admin unregister-vm --vm-id=%d) to take XAPI's id."
                     % (uuid, record["vm_id"], OTHER_CONFIG_VM_ID, settings.vm_id, record["vm_id"]))


def _check_free_in_xapi(xapi, uuid, vm_id):
    for other_uuid, text in sorted(xapi.vgpu_vm_ids(OTHER_CONFIG_VM_ID).items()):
        if other_uuid != uuid and text == str(vm_id):
            raise VgpuError(errors.VM_ID_CLASH, "VM id %d is already taken by VM %s in this XAPI pool (its "
                            "other-config:%s); choose another vm-id, or leave vm-id out to get a free one."
                            % (vm_id, other_uuid, OTHER_CONFIG_VM_ID))


def on_vm_start(xapi, vm_uuid, admin=None):
    """Mirrors the VM's XAPI settings into this host's vgpu-configd — registering it when missing,
    moving it or changing its priority where they differ (XAPI wins) — and returns what changed and the
    QEMU arguments of its vgpu-stub device. A VM without other-config:vgpu-pool gets no device."""
    uuid = values.vm_uuid(vm_uuid)
    admin = admin or Admin()
    ref, other_config = _vm(xapi, uuid)
    settings = _xapi_settings(uuid, other_config)
    if settings.pool is None:
        stray = [key for key in (OTHER_CONFIG_VM_ID, OTHER_CONFIG_PRIORITY) if key in other_config]
        if stray:
            raise VgpuError(errors.USAGE, "VM %s has other-config:%s but no other-config:%s; set the pool, or "
                            "remove the vgpu keys." % (uuid, stray[0], OTHER_CONFIG_POOL))
        return {"vm_uuid": uuid, "enabled": False, "changes": [], "device_args": []}
    pool = settings.pool
    priority = settings.priority or values.DEFAULT_PRIORITY
    host_vms = admin.list_vms()
    record = _host_record(host_vms, uuid)
    changes = []
    try:
        if record is None:
            vm_id = settings.vm_id
            if vm_id is None:
                vm_id = _free_vm_id(xapi, host_vms)
            else:
                holder = next((vm for vm in host_vms if vm["vm_id"] == vm_id), None)
                if holder is not None:
                    raise VgpuError(errors.VM_ID_CLASH, "VM %s has other-config:%s=%d, but this host already has "
                                    "VM %d registered for another VM (uuid %s, name '%s'); give one of them "
                                    "another id." % (uuid, OTHER_CONFIG_VM_ID, vm_id, vm_id,
                                                     holder.get("uuid") or "-", holder.get("name", "")))
            admin.register_vm(vm_id, pool, priority, uuid, values.vm_name(xapi.name_label(ref)))
            changes.append("registered as VM %d in pool %s with priority %s" % (vm_id, pool, priority))
        else:
            if settings.vm_id is not None and settings.vm_id != record["vm_id"]:
                raise _vm_id_mismatch(uuid, record, settings)
            vm_id = record["vm_id"]
            if settings.vm_id is None:
                _check_free_in_xapi(xapi, uuid, vm_id)
            if record["pool"] != pool:
                admin.set_pool(vm_id, pool)
                changes.append("pool %s → %s" % (record["pool"], pool))
            if record["priority"] != priority:
                admin.set_priority(vm_id, priority)
                changes.append("priority %s → %s" % (record["priority"], priority))
    except VgpuError as exc:
        raise VgpuError(exc.code, "VM %s cannot be given its vgpu settings from XAPI (pool %s, priority %s) on "
                        "this host: %s" % (uuid, pool, priority, exc.message))
    if settings.vm_id is None:
        xapi.set_other_config_key(ref, OTHER_CONFIG_VM_ID, str(vm_id))
        changes.append("other-config:%s=%d recorded in XAPI" % (OTHER_CONFIG_VM_ID, vm_id))
    for change in changes:
        log.info("VM %s (vgpu VM %d): %s, from XAPI's other-config", uuid, vm_id, change)
    return {"vm_uuid": uuid, "enabled": True, "vm_id": vm_id, "pool": pool, "priority": priority,
            "changes": changes, "device_args": ["-device", values.device_argument(vm_id, pool, priority)]}
