# SPDX-License-Identifier: LGPL-2.1-or-later
"""The three ways XCP-ng runs the XAPI side: as the host plugin (through XenAPIPlugin.dispatch), as the
vm-pre-start / vm-pre-resume hook script xenopsd runs before it builds a domain, and as the device-model
wrapper xenopsd runs in place of its own qemu-wrapper. The files in xapi/plugins and xapi/hooks only
call these."""

import json
import logging
import logging.handlers
import os
import shutil
import subprocess
import sys

from . import errors, functions
from .admin import Admin
from .errors import VgpuError
from .values import device_argument
from .xapi import XapiSession

log = logging.getLogger("vgpu-xapi")

# xenopsd's own device-model wrapper on XCP-ng 8.x (xapi.spec: --qemu_wrapper_dir=%{_libdir}/xen/bin).
DEFAULT_NEXT_WRAPPER = "/usr/lib64/xen/bin/qemu-wrapper"

# Exit codes of a xenopsd hook script: 0 go on, 1 log and go on, anything else abort the operation.
HOOK_OK, HOOK_LOG_AND_CONTINUE, HOOK_ABORT = 0, 1, 2

PLUGIN_FUNCTIONS = {
    "register-vm": functions.register_vm,
    "unregister-vm": functions.unregister_vm,
    "set-pool": functions.set_pool,
    "set-priority": functions.set_priority,
    "show-vm": functions.show_vm,
    "iommu-status": functions.iommu_status,
    "sync-vm": functions.sync_vm,
}


def setup_logging(ident):
    """INFO and above to syslog (daemon facility, tagged `ident`) where there is one, and to stderr
    (a plugin's stdout is its XML-RPC answer; xenopsd logs what its hooks and wrappers print)."""
    log.setLevel(logging.INFO)
    if log.handlers:
        return
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(logging.Formatter(ident + ": %(message)s"))
    log.addHandler(stderr)
    if os.path.exists("/dev/log"):
        try:
            syslog = logging.handlers.SysLogHandler("/dev/log", logging.handlers.SysLogHandler.LOG_DAEMON)
            syslog.setFormatter(logging.Formatter(ident + "[%d]: %%(message)s" % os.getpid()))
            log.addHandler(syslog)
        except OSError:
            pass


def plugin_table(failure_class):
    """{name: fn(session, args) -> str} for XenAPIPlugin.dispatch: each function's dict as JSON, and
    each VgpuError as failure_class(code, [sentence]), the failure `xe host-call-plugin` shows."""
    def bind(fn):
        def call(session, args):
            try:
                return json.dumps(fn(XapiSession(session), args), sort_keys=True)
            except VgpuError as exc:
                raise failure_class(exc.code, [exc.message])
        call.__name__ = fn.__name__
        return call
    return {name: bind(fn) for name, fn in PLUGIN_FUNCTIONS.items()}


def _parse_hook_args(argv):
    opts = {}
    rest = list(argv)
    while rest:
        key = rest.pop(0)
        if key.startswith("-") and rest:
            opts[key.lstrip("-")] = rest.pop(0)
    return opts


def vm_hook_main(argv):
    """/etc/xapi.d/vm-pre-start/NNvgpu -vmuuid UUID -reason REASON: mirrors the VM's settings before its
    domain is built; a refusal aborts the start with its sentence (xenopsd puts the hook's output in the
    HOOK_FAILED error that `xe vm-start` shows)."""
    setup_logging("vgpu-vm-hook")
    opts = _parse_hook_args(argv[1:])
    uuid = opts.get("vmuuid")
    if not uuid:
        print("vgpu: the hook needs -vmuuid UUID")
        return HOOK_LOG_AND_CONTINUE
    try:
        xapi = XapiSession.open_local("vgpu-vm-hook")
    except VgpuError as exc:
        # The device-model wrapper tries again before QEMU starts.
        log.warning("VM %s: %s; its settings are mirrored when its device model starts.", uuid, exc.message)
        return HOOK_LOG_AND_CONTINUE
    try:
        result = functions.on_vm_start(xapi, uuid)
    except VgpuError as exc:
        log.error("%s", exc.message)
        print("vgpu: " + exc.message)
        return HOOK_ABORT
    finally:
        xapi.close()
    if result["enabled"]:
        log.info("VM %s (%s): vgpu VM %d, pool %s, priority %s; %s", uuid, opts.get("reason", "none"),
                 result["vm_id"], result["pool"], result["priority"],
                 "; ".join(result["changes"]) or "this host already had these settings")
    return HOOK_OK


def _vm_uuid_of_domain(domid):
    """The VM uuid xenopsd wrote for the domain: /local/domain/DOMID/vm is "/vm/UUID"."""
    path = "/local/domain/%d/vm" % domid
    try:
        proc = subprocess.run(["xenstore-read", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VgpuError(errors.XAPI, "cannot read %s from xenstore: %s" % (path, exc))
    value = proc.stdout.strip()
    if proc.returncode != 0 or not value.startswith("/vm/"):
        raise VgpuError(errors.XAPI, "cannot read %s from xenstore: %s" % (path, proc.stderr.strip() or value))
    return value[len("/vm/"):]


def device_args_at_start(uuid):
    """The vgpu-stub arguments of the VM's QEMU, after mirroring XAPI's settings. When XAPI cannot be
    asked, this host's record decides; when nothing says the VM uses vgpu, there are none. Raises
    VgpuError only for a VM that uses vgpu and cannot be given its settings."""
    try:
        xapi = XapiSession.open_local("vgpu-qemu-wrapper")
    except VgpuError as exc:
        xapi = None
        log.warning("VM %s: %s; using this host's vgpu record.", uuid, exc.message)
    if xapi is not None:
        try:
            return functions.on_vm_start(xapi, uuid)["device_args"]
        except VgpuError as exc:
            if exc.code != errors.XAPI:
                raise
            log.warning("VM %s: %s; using this host's vgpu record.", uuid, exc.message)
        finally:
            xapi.close()
    try:
        record = Admin().vm_by_uuid(uuid)
    except VgpuError as exc:
        log.warning("VM %s: %s; starting it without a vgpu-stub device.", uuid, exc.message)
        return []
    if record is None:
        return []
    return ["-device", device_argument(record["vm_id"], record["pool"], record["priority"])]


def _find_program(name, variable):
    explicit = os.environ.get(variable)
    if explicit:
        return explicit
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    return shutil.which(name, path=path)


def create_channel(domid, uuid):
    """The xenstore directories of the VM's vgpu channel (docs/xen.md), made by vgpu-xen-channel now that
    the domain exists. Directories left by an earlier domain with the same id are removed first."""
    program = _find_program("vgpu-xen-channel", "VGPU_XEN_CHANNEL")
    if not program:
        log.warning("domain %d (VM %s): vgpu-xen-channel is not installed; the guest gets no Xen channel.",
                    domid, uuid)
        return
    try:
        subprocess.run([program, "destroy", "--domid=%d" % domid], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)
        proc = subprocess.run([program, "create", "--domid=%d" % domid, "--vm-uuid=%s" % uuid],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VgpuError(errors.REFUSED, "domain %d (VM %s): vgpu-xen-channel failed: %s" % (domid, uuid, exc))
    if proc.returncode != 0:
        raise VgpuError(errors.REFUSED, "domain %d (VM %s): vgpu-xen-channel create failed: %s"
                        % (domid, uuid, proc.stderr.strip() or "exit status %d" % proc.returncode))


def _vgpu_setup(domid):
    """The arguments to append for the domain's VM, its channel created; [] for a VM without vgpu."""
    try:
        uuid = _vm_uuid_of_domain(domid)
    except VgpuError as exc:
        log.error("domain %d: %s; starting its QEMU without a vgpu-stub device.", domid, exc.message)
        return []
    extra = device_args_at_start(uuid)
    if extra:
        create_channel(domid, uuid)
        log.info("domain %d (VM %s): adding %s", domid, uuid, " ".join(extra))
    return extra


def qemu_wrapper_main(argv):
    """xenopsd runs the device-model wrapper as `WRAPPER DOMID --syslog QEMU-ARGS…`, after it has built the
    domain and before QEMU starts; for a vgpu VM this one creates its channel's xenstore directories,
    appends its vgpu-stub device and hands everything to xenopsd's own wrapper (VGPU_QEMU_WRAPPER_NEXT, by
    default /usr/lib64/xen/bin/qemu-wrapper), which starts QEMU. A VM that uses vgpu but cannot be given
    its settings is not started (exit status 1, the reason in the log)."""
    setup_logging("vgpu-qemu-wrapper")
    next_wrapper = os.environ.get("VGPU_QEMU_WRAPPER_NEXT") or DEFAULT_NEXT_WRAPPER
    extra = []
    try:
        domid = int(argv[1])
    except (IndexError, ValueError):
        log.error("expected a domain id as the first argument, got %r; leaving the arguments alone", argv[1:2])
        domid = None
    if domid is not None:
        try:
            extra = _vgpu_setup(domid)
        except VgpuError as exc:
            log.error("%s", exc.message)
            print("vgpu: " + exc.message)
            return 1
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(next_wrapper, [next_wrapper] + argv[1:] + extra)
