#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The XAPI side of vgpu against the services of the vgpu-devstack this runs in (test-xapi.sh starts it),
over real D-Bus: every plugin function, the VM-start mirror, the refusals (each leaves vgpu-configd, its
audit log and XAPI's other-config as they were), and the plugin, hook and wrapper files run as XCP-ng
runs them. XAPI is the fake XenAPI module in fake/; vgpu-configd and vgpu-iommud are the real ones.
Prints TAP."""

import json
import logging
import os
import stat
import subprocess
import sys
import traceback
import xmlrpc.client

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ["VGPU_SOURCE_DIR"]
XAPI_DIR = os.path.join(SOURCE, "xapi")
FAKE_DIR = os.path.join(HERE, "fake")
TMP = os.environ["VGPU_TEST_TMP"]

os.environ["VGPU_FAKE_XAPI_DB"] = os.path.join(TMP, "xapi-db.json")
os.environ["PYTHONPATH"] = os.pathsep.join([FAKE_DIR, XAPI_DIR])
sys.path[:0] = [FAKE_DIR, XAPI_DIR]

import XenAPI  # noqa: E402  (the fake)

from vgpu_xapi import errors, functions  # noqa: E402
from vgpu_xapi.xapi import XapiSession  # noqa: E402

# The VMs of the fake XAPI pool.
U = {n: "5e7a0b1c-0000-4000-8000-%012d" % n for n in range(1, 20)}


class Tap(object):
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, *diag):
        self.n += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, name))
        if not cond:
            self.failed += 1
            for line in diag:
                for part in str(line).splitlines():
                    print("# " + part)
        sys.stdout.flush()
        return cond

    def eq(self, want, got, name, *diag):
        return self.ok(want == got, name, "expected: %r" % (want,), "actual:   %r" % (got,), *diag)

    def contains(self, needle, haystack, name):
        return self.ok(needle in (haystack or ""), name, "expected to find: %r" % needle, "in: %r" % haystack)

    def done(self):
        print("1..%d" % self.n)
        return 1 if self.failed else 0


t = Tap()


class LogCapture(logging.Handler):
    def __init__(self):
        logging.Handler.__init__(self)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


LOG = LogCapture()
logging.getLogger("vgpu-xapi").addHandler(LOG)
logging.getLogger("vgpu-xapi").setLevel(logging.INFO)


def admin(*argv, check=True):
    proc = subprocess.run(["vgpu-admin", "--json"] + list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    if check and proc.returncode != 0:
        raise AssertionError("vgpu-admin %s failed: %s" % (" ".join(argv), proc.stderr))
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def host_vm(vm_id):
    return admin("show-vm", str(vm_id), check=False)


def snapshot():
    """Everything a refusal must leave alone: the host's VMs, pools and audit log, and XAPI's other-config."""
    return (admin("list-vms"), admin("list-pools"), len(admin("audit")), XenAPI.fake_state())


def xapi():
    return XapiSession(XenAPI.xapi_local())


def call(fn, args):
    """A plugin function, as the plugin calls it: (result, None) or (None, VgpuError)."""
    try:
        return fn(xapi(), args), None
    except errors.VgpuError as exc:
        return None, exc


def expect_refusal(name, code, needle, fn, args, undone=False):
    """The call is refused with `code` and a sentence holding `needle`, and nothing changed. With
    `undone`, a change was made on this host and then undone: the audit log records both, the rest is
    as it was."""
    before = snapshot()
    result, err = call(fn, args)
    if not t.ok(err is not None, "%s: refused" % name, "result: %r" % (result,)):
        return
    t.eq(code, err.code, "%s: %s" % (name, code))
    t.contains(needle, err.message, "%s: says '%s'" % (name, needle))
    after = snapshot()
    if undone:
        def unstamped(state):
            vms = [{k: v for k, v in vm.items() if k != "updated_usec"} for vm in state[0]]
            return (vms, state[1], state[3])
        t.ok(unstamped(before) == unstamped(after),
             "%s: configd's VMs and pools and XAPI's other-config are as they were" % name,
             "before: %r" % (before,), "after:  %r" % (after,))
        t.eq(before[2] + 2, after[2], "%s: the audit log records the change and its undoing" % name)
    else:
        t.ok(before == after, "%s: nothing changed (configd, audit log, XAPI other-config)" % name,
             "before: %r" % (before,), "after:  %r" % (after,))


def set_up_the_fake_pool():
    XenAPI.fake_add_vm(U[1], "inference-1")
    XenAPI.fake_add_vm(U[2], "batch-2")
    XenAPI.fake_add_vm(U[3], "web\tfront")
    # Registered on another host of the XAPI pool: only XAPI's other-config has it.
    XenAPI.fake_add_vm(U[9], "elsewhere-9", {"vgpu-vm-id": "2", "vgpu-pool": "B", "vgpu-priority": "medium"})
    # A snapshot of VM 9 carries a copy of its keys; it is not a VM of its own.
    XenAPI.fake_add_vm(U[19], "elsewhere-9 snapshot", {"vgpu-vm-id": "3", "vgpu-pool": "B"}, is_a_snapshot=True)
    XenAPI.fake_add_vm(U[4], "plain-4")


def test_register_vm_stores_it_in_configd_and_xapi():
    result, err = call(functions.register_vm, {"vm-uuid": U[1], "pool": "A", "priority": "high", "vm-id": "1"})
    t.ok(err is None, "register-vm VM 1 in A, high", err)
    vm = host_vm(1)
    t.ok(vm is not None and vm["uuid"] == U[1] and vm["pool"] == "A" and vm["priority"] == "high"
         and vm["name"] == "inference-1", "vgpu-admin show-vm 1 shows it, with its uuid and name-label", vm)
    t.eq({"vgpu-vm-id": "1", "vgpu-pool": "A", "vgpu-priority": "high"}, XenAPI.fake_other_config(U[1]),
         "XAPI's other-config holds its id, pool and priority")
    t.ok(result and result["vm"]["vm_id"] == 1, "the result carries the stored record", result)


def test_register_vm_without_an_id_takes_one_free_in_the_whole_xapi_pool():
    result, err = call(functions.register_vm, {"vm-uuid": U[2], "pool": "B", "priority": "low"})
    t.ok(err is None, "register-vm VM batch-2 without vm-id", err)
    # 1 is on this host; 2 belongs to VM 9 on another host (XAPI's other-config); the snapshot's 3 is no VM's.
    t.eq(3, result and result["vm_id"], "it gets id 3: 1 is here, 2 is VM 9's in XAPI, a snapshot holds none")
    vm = host_vm(3)
    t.ok(vm and vm["uuid"] == U[2] and vm["pool"] == "B" and vm["priority"] == "low", "show-vm 3 shows it", vm)


def test_register_vm_makes_the_name_label_acceptable():
    result, err = call(functions.register_vm, {"vm-uuid": U[3], "pool": "A", "priority": "medium", "vm-id": "30"})
    t.ok(err is None, "register-vm of a VM whose name-label holds a tab", err)
    t.eq("webfront", (host_vm(30) or {}).get("name"), "the stored name drops the control character")


def test_set_pool_and_set_priority_change_both_sides():
    result, err = call(functions.set_pool, {"vm-uuid": U[1], "pool": "B"})
    t.ok(err is None and result["old_pool"] == "A" and result["pool"] == "B" and result["mirrored_here"],
         "set-pool VM 1 → B", err, result)
    t.eq("B", (host_vm(1) or {}).get("pool"), "configd has VM 1 in pool B")
    t.eq("B", XenAPI.fake_other_config(U[1]).get("vgpu-pool"), "XAPI's other-config says B")
    result, err = call(functions.set_priority, {"vm-uuid": U[1], "priority": "low"})
    t.ok(err is None and result["old_priority"] == "high" and result["priority"] == "low",
         "set-priority VM 1 → low", err, result)
    t.eq("low", (host_vm(1) or {}).get("priority"), "configd has VM 1 at low")
    t.eq("low", XenAPI.fake_other_config(U[1]).get("vgpu-priority"), "XAPI's other-config says low")
    audit = admin("audit", "--vm-id=1")
    t.eq(["register-vm", "move-vm", "set-priority"], [e["action"] for e in audit],
         "the audit log records the registration, the move and the priority change")


def test_show_vm_reports_both_sides():
    result, err = call(functions.show_vm, {"vm-uuid": U[1]})
    t.ok(err is None, "show-vm VM 1", err)
    t.ok(result and result["in_sync"] and result["xapi"] == {"vm_id": 1, "pool": "B", "priority": "low"}
         and result["host"]["vm_id"] == 1 and result["name_label"] == "inference-1",
         "XAPI's settings and this host's record agree", result)
    t.eq("vgpu-stub,vm_id=1,pool_id=B,priority=low", result and result["device"], "the device argument")
    result, err = call(functions.show_vm, {"vm-uuid": U[9]})
    t.ok(err is None and result["host"] is None and not result["in_sync"]
         and result["xapi"] == {"vm_id": 2, "pool": "B", "priority": "medium"},
         "show-vm of a VM registered elsewhere: XAPI's settings, no record here", err, result)


def test_iommu_status_reports_the_verdict_and_its_evidence():
    result, err = call(functions.iommu_status, {})
    t.ok(err is None, "iommu-status", err)
    status = (result or {}).get("status", {})
    t.ok(status.get("platform") == "linux" and status.get("vendor") == "intel" and status.get("mode") == "strict"
         and status.get("gpus") == 3 and status.get("gpus_isolated") == 1,
         "vgpu-iommud's status of the recorded Intel VT-d host", status)
    t.ok(result and result["compliant"] is False and "not compliant" in result["reasons"]
         and len(result["evidence"]) > 0, "not compliant, with the reason and the evidence", result)
    result, err = call(functions.iommu_status, {"vm-uuid": U[1]})
    t.ok(err is None and result["vm"]["vm_id"] == 1 and result["vm"]["protected"] is False
         and "VM 1 is not protected" in result["reasons"], "iommu-status vm-uuid=VM 1: its confinement", err, result)


def test_vm_start_mirrors_xapi_into_configd():
    # An administrator changes VM 1 with xe vm-param-set while configd still has pool B, low.
    oc = XenAPI.fake_other_config(U[1])
    oc.update({"vgpu-pool": "A", "vgpu-priority": "high"})
    XenAPI.fake_set_other_config(U[1], oc)
    del LOG.lines[:]
    result, err = call(lambda x, a: functions.on_vm_start(x, a["vm-uuid"]), {"vm-uuid": U[1]})
    t.ok(err is None, "on_vm_start VM 1", err)
    vm = host_vm(1)
    t.ok(vm and vm["pool"] == "A" and vm["priority"] == "high", "configd now has VM 1 in A at high", vm)
    t.eq(["pool B → A", "priority low → high"], result and result["changes"], "the changes are reported")
    t.ok(any("pool B → A" in line and U[1] in line for line in LOG.lines)
         and any("priority low → high" in line for line in LOG.lines), "and logged", LOG.lines)
    t.eq(["-device", "vgpu-stub,vm_id=1,pool_id=A,priority=high"], result and result["device_args"],
         "QEMU gets -device vgpu-stub,vm_id=1,pool_id=A,priority=high")
    result, err = call(lambda x, a: functions.on_vm_start(x, a["vm-uuid"]), {"vm-uuid": U[1]})
    t.ok(err is None and result["changes"] == [], "a second start changes nothing", err, result)


def test_vm_start_registers_a_vm_set_up_on_another_host():
    result, err = call(functions.sync_vm, {"vm-uuid": U[9]})
    t.ok(err is None, "sync-vm (what a start does) of VM 9, known only to XAPI", err)
    vm = host_vm(2)
    t.ok(vm and vm["uuid"] == U[9] and vm["pool"] == "B" and vm["priority"] == "medium"
         and vm["name"] == "elsewhere-9", "configd registered it as VM 2 in B, medium", vm)
    t.eq(["-device", "vgpu-stub,vm_id=2,pool_id=B,priority=medium"], result and result["device_args"],
         "its device argument")


def test_vm_start_of_a_vm_set_up_with_xe_only():
    XenAPI.fake_add_vm(U[5], "xe-only-5", {"vgpu-pool": "A"})
    result, err = call(functions.sync_vm, {"vm-uuid": U[5]})
    t.ok(err is None, "start of a VM with only other-config:vgpu-pool=A", err)
    vm_id = result and result["vm_id"]
    t.eq(4, vm_id, "it gets the first id free in the XAPI pool and here")
    vm = host_vm(4)
    t.ok(vm and vm["uuid"] == U[5] and vm["priority"] == "medium", "registered at the default priority", vm)
    t.eq("4", XenAPI.fake_other_config(U[5]).get("vgpu-vm-id"), "its id is written to XAPI's other-config")


def test_vm_start_of_a_vm_without_vgpu_changes_nothing():
    before = snapshot()
    result, err = call(functions.sync_vm, {"vm-uuid": U[4]})
    t.ok(err is None and result["enabled"] is False and result["device_args"] == [],
         "a VM without vgpu keys: no device", err, result)
    t.ok(before == snapshot(), "and nothing changed")


def test_refusals_change_nothing():
    expect_refusal("register-vm into an unknown pool", errors.REFUSED, "Pool 'Nope' does not exist",
                   functions.register_vm, {"vm-uuid": U[4], "pool": "Nope", "priority": "low"})
    expect_refusal("register-vm with priority 'urgent'", errors.USAGE, "invalid priority 'urgent'",
                   functions.register_vm, {"vm-uuid": U[4], "pool": "A", "priority": "urgent"})
    expect_refusal("register-vm with vm-id 0", errors.USAGE, "invalid vm-id '0'",
                   functions.register_vm, {"vm-uuid": U[4], "pool": "A", "priority": "low", "vm-id": "0"})
    expect_refusal("register-vm with pool '1A'", errors.USAGE, "invalid pool '1A'",
                   functions.register_vm, {"vm-uuid": U[4], "pool": "1A", "priority": "low"})
    XenAPI.fake_add_vm(U[8], "elsewhere-8", {"vgpu-vm-id": "7", "vgpu-pool": "A"})
    expect_refusal("register-vm with an id another XAPI VM holds", errors.VM_ID_CLASH,
                   "VM id 7 is already taken by VM %s" % U[8],
                   functions.register_vm, {"vm-uuid": U[4], "pool": "A", "priority": "low", "vm-id": "7"})
    subprocess.run(["vgpu-admin", "register-vm", "--vm-id=40", "--pool=A", "--priority=low"], check=True,
                   stdout=subprocess.DEVNULL)
    expect_refusal("register-vm with an id configd already has", errors.REFUSED, "VM 40 is already registered",
                   functions.register_vm, {"vm-uuid": U[4], "pool": "A", "priority": "low", "vm-id": "40"})
    expect_refusal("register-vm of a VM already set up", errors.REFUSED, "already set up for vgpu",
                   functions.register_vm, {"vm-uuid": U[1], "pool": "A", "priority": "low"})
    expect_refusal("register-vm of a VM XAPI does not know", errors.XAPI, "XAPI has no VM with uuid",
                   functions.register_vm, {"vm-uuid": U[18], "pool": "A", "priority": "low"})
    expect_refusal("register-vm with an unknown argument", errors.USAGE, "unknown argument 'colour'",
                   functions.register_vm, {"vm-uuid": U[4], "pool": "A", "priority": "low", "colour": "red"})
    expect_refusal("register-vm without priority", errors.USAGE, "register-vm needs args:priority",
                   functions.register_vm, {"vm-uuid": U[4], "pool": "A"})
    expect_refusal("set-pool to an unknown pool", errors.REFUSED, "Pool 'Nope' does not exist",
                   functions.set_pool, {"vm-uuid": U[1], "pool": "Nope"})
    expect_refusal("set-priority 'urgent'", errors.USAGE, "invalid priority 'urgent'",
                   functions.set_priority, {"vm-uuid": U[1], "priority": "urgent"})
    expect_refusal("set-pool of a VM not set up for vgpu", errors.NOT_REGISTERED, "is not registered for vgpu",
                   functions.set_pool, {"vm-uuid": U[4], "pool": "A"})
    expect_refusal("iommu-status of a VM not registered here", errors.NOT_REGISTERED, "not registered with vgpu",
                   functions.iommu_status, {"vm-uuid": U[4]})
    expect_refusal("show-vm with a malformed uuid", errors.USAGE, "invalid vm-uuid 'nope'",
                   functions.show_vm, {"vm-uuid": "nope"})


def test_a_start_that_cannot_be_mirrored_is_refused():
    start = lambda x, a: functions.on_vm_start(x, a["vm-uuid"])  # noqa: E731
    # A clone of VM 1 carries VM 1's id.
    XenAPI.fake_add_vm(U[6], "clone-of-1", {"vgpu-vm-id": "1", "vgpu-pool": "A", "vgpu-priority": "high"})
    expect_refusal("start of a clone that carries VM 1's id", errors.VM_ID_CLASH,
                   "this host already has VM 1 registered for another VM (uuid %s" % U[1], start, {"vm-uuid": U[6]})
    XenAPI.fake_add_vm(U[7], "lost-7", {"vgpu-vm-id": "70", "vgpu-pool": "Nope"})
    expect_refusal("start with other-config:vgpu-pool=Nope", errors.REFUSED, "Pool 'Nope' does not exist",
                   start, {"vm-uuid": U[7]})
    XenAPI.fake_add_vm(U[10], "urgent-10", {"vgpu-pool": "A", "vgpu-priority": "urgent"})
    expect_refusal("start with other-config:vgpu-priority=urgent", errors.USAGE,
                   "invalid other-config:vgpu-priority of VM %s 'urgent'" % U[10], start, {"vm-uuid": U[10]})
    oc = XenAPI.fake_other_config(U[2])
    XenAPI.fake_set_other_config(U[2], dict(oc, **{"vgpu-vm-id": "33"}))
    expect_refusal("start of a VM whose XAPI id differs from this host's", errors.VM_ID_CLASH,
                   "registered on this host as VM 3, but its other-config:vgpu-vm-id is 33", start, {"vm-uuid": U[2]})
    XenAPI.fake_set_other_config(U[2], oc)


def test_a_refused_xapi_write_leaves_configd_as_it_was():
    XenAPI.fake_configure(fail={"VM.remove_from_other_config": "RBAC_PERMISSION_DENIED"})
    expect_refusal("register-vm when XAPI refuses the other-config write", errors.XAPI, "RBAC_PERMISSION_DENIED",
                   functions.register_vm, {"vm-uuid": U[4], "pool": "A", "priority": "low", "vm-id": "44"},
                   undone=True)
    t.eq(None, host_vm(44), "VM 44 was taken out of configd again")
    expect_refusal("set-pool when XAPI refuses the other-config write", errors.XAPI, "RBAC_PERMISSION_DENIED",
                   functions.set_pool, {"vm-uuid": U[1], "pool": "B"}, undone=True)
    t.eq("A", (host_vm(1) or {}).get("pool"), "VM 1 was moved back to pool A")
    XenAPI.fake_configure(fail={})


def run(argv, env=None, **kwargs):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          env=dict(os.environ, **(env or {})), **kwargs)


def plugin(fn, **args):
    """The plugin file, run the way XAPI runs a host plugin."""
    request = xmlrpc.client.dumps(("OpaqueRef:session", args), methodname=fn)
    proc = run([os.path.join(XAPI_DIR, "plugins", "vgpu"), request])
    (answer,), _ = xmlrpc.client.loads(proc.stdout)
    return answer, proc


def test_the_plugin_file_answers_as_xapi_expects():
    answer, proc = plugin("show-vm", **{"vm-uuid": U[1]})
    t.eq("Success", answer.get("Status"), "plugin show-vm: Success")
    value = json.loads(answer.get("Value", "null"))
    t.ok(value and value["host"]["vm_id"] == 1 and value["in_sync"], "its value is the VM as JSON", value)
    before = snapshot()
    answer, proc = plugin("register-vm", **{"vm-uuid": U[4], "pool": "Nope", "priority": "low"})
    t.eq(["VGPU_REFUSED", "Pool 'Nope' does not exist (list-pools shows the pools)."],
         answer.get("ErrorDescription"), "plugin register-vm into pool Nope: a Failure with vgpu-admin's sentence")
    t.ok(before == snapshot(), "and nothing changed")
    answer, proc = plugin("register-vm", **{"vm-uuid": U[4], "pool": "A", "priority": "low"})
    value = json.loads(answer.get("Value", "null"))
    t.ok(answer.get("Status") == "Success" and value["vm"]["uuid"] == U[4], "plugin register-vm: Success",
         answer, proc.stderr)
    t.contains("registered as vgpu VM %d" % (value or {}).get("vm_id", 0), proc.stderr, "the plugin logs it")
    answer, proc = plugin("unregister-vm", **{"vm-uuid": U[4]})
    t.eq("Success", answer.get("Status"), "plugin unregister-vm: Success")
    t.ok(XenAPI.fake_other_config(U[4]) == {} and not any(vm["uuid"] == U[4] for vm in admin("list-vms")),
         "its keys and its record are gone")


def make_executable(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)


def test_the_vm_pre_start_hook():
    hook = os.path.join(XAPI_DIR, "hooks", "vgpu-vm-hook")
    XenAPI.fake_add_vm(U[11], "hooked-11", {"vgpu-pool": "B", "vgpu-priority": "high"})
    proc = run([hook, "-vmuuid", U[11], "-reason", "none"])
    t.eq(0, proc.returncode, "the hook exits 0 for a VM it could set up")
    vm = next((vm for vm in admin("list-vms") if vm["uuid"] == U[11]), None)
    t.ok(vm and vm["pool"] == "B" and vm["priority"] == "high", "the VM is registered here", vm, proc.stderr)
    before = snapshot()
    proc = run([hook, "-vmuuid", U[7], "-reason", "none"])
    t.eq(2, proc.returncode, "the hook exits 2 (abort the start) for other-config:vgpu-pool=Nope")
    t.contains("Pool 'Nope' does not exist", proc.stdout, "its output, which XAPI shows in HOOK_FAILED, says why")
    t.ok(before == snapshot(), "and nothing changed")
    proc = run([hook, "-vmuuid", U[4], "-reason", "none"])
    t.eq(0, proc.returncode, "the hook exits 0 for a VM without vgpu")


def test_the_device_model_wrapper():
    bindir = os.path.join(TMP, "fakebin")
    os.makedirs(bindir, exist_ok=True)
    # Domain 7 is VM 1, 8 a VM without vgpu, 9 a clone carrying VM 1's id, 10 a VM whose channel fails.
    domains = {"7": U[1], "8": U[4], "9": U[6], "10": U[2]}
    channel_log = os.path.join(TMP, "vgpu-xen-channel.calls")
    make_executable(os.path.join(bindir, "vgpu-xen-channel"),
                    "#!/bin/sh\necho \"$*\" >> %s\n[ \"$1 $2\" != 'create --domid=10' ]\n" % channel_log)
    make_executable(os.path.join(bindir, "xenstore-read"), "#!/bin/sh\ncase \"$1\" in\n" + "".join(
        "/local/domain/%s/vm) echo /vm/%s ;;\n" % (d, u) for d, u in domains.items()) + "*) exit 1 ;;\nesac\n")
    argv_file = os.path.join(TMP, "next-wrapper.argv")
    next_wrapper = os.path.join(bindir, "qemu-wrapper")
    make_executable(next_wrapper, "#!/bin/sh\nprintf '%%s\\n' \"$@\" > %s\n" % argv_file)
    wrapper = os.path.join(XAPI_DIR, "hooks", "vgpu-qemu-wrapper")
    env = {"PATH": bindir + os.pathsep + os.environ["PATH"], "VGPU_QEMU_WRAPPER_NEXT": next_wrapper}
    qemu_args = ["7", "--syslog", "-xen-domid", "7", "-m", "1024", "-boot", "order=cd"]

    def next_argv():
        with open(argv_file) as f:
            return f.read().splitlines()

    proc = run([wrapper] + qemu_args, env)
    t.eq(0, proc.returncode, "the wrapper hands over to xenopsd's wrapper", proc.stderr)
    t.eq(qemu_args + ["-device", "vgpu-stub,vm_id=1,pool_id=A,priority=high"], next_argv(),
         "which gets every argument, then -device vgpu-stub,vm_id=1,pool_id=A,priority=high")
    with open(channel_log) as f:
        t.eq(["destroy --domid=7", "create --domid=7 --vm-uuid=%s" % U[1]], f.read().splitlines(),
             "vgpu-xen-channel made the channel's directories for domain 7, after removing stale ones")
    os.unlink(channel_log)
    plain = ["8", "--syslog", "-xen-domid", "8"]
    proc = run([wrapper] + plain, env)
    t.eq(plain, next_argv(), "a VM without vgpu: the arguments unchanged")
    t.ok(not os.path.exists(channel_log), "and no channel")
    XenAPI.fake_configure(unreachable=True)
    proc = run([wrapper] + qemu_args, env)
    t.eq(qemu_args + ["-device", "vgpu-stub,vm_id=1,pool_id=A,priority=high"], next_argv(),
         "XAPI unreachable: this host's record gives the device")
    t.contains("using this host's vgpu record", proc.stderr, "and the wrapper says so")
    XenAPI.fake_configure(unreachable=False)
    os.unlink(argv_file)
    proc = run([wrapper, "9", "--syslog", "-xen-domid", "9"], env)
    t.eq(1, proc.returncode, "a vgpu VM that cannot be set up (a clone carrying VM 1's id): the wrapper fails")
    t.ok(not os.path.exists(argv_file), "and QEMU is not started")
    proc = run([wrapper, "10", "--syslog", "-xen-domid", "10"], env)
    t.eq(1, proc.returncode, "vgpu-xen-channel create fails: the wrapper fails")
    t.contains("vgpu-xen-channel create failed", proc.stdout, "and says so")
    t.ok(not os.path.exists(argv_file), "and QEMU is not started")


def test_the_files_are_python_3_6():
    import ast
    files = [os.path.join(XAPI_DIR, "vgpu_xapi", f) for f in sorted(os.listdir(os.path.join(XAPI_DIR, "vgpu_xapi")))
             if f.endswith(".py")]
    files += [os.path.join(XAPI_DIR, "plugins", "vgpu"), os.path.join(XAPI_DIR, "hooks", "vgpu-vm-hook"),
              os.path.join(XAPI_DIR, "hooks", "vgpu-qemu-wrapper")]
    bad = []
    for path in files:
        try:
            with open(path) as f:
                ast.parse(f.read(), path, feature_version=(3, 6))
        except SyntaxError as exc:
            bad.append("%s: %s" % (path, exc))
    t.ok(not bad, "every file parses as Python 3.6 (XCP-ng 8's dom0)", *bad)


TESTS = [
    test_register_vm_stores_it_in_configd_and_xapi,
    test_register_vm_without_an_id_takes_one_free_in_the_whole_xapi_pool,
    test_register_vm_makes_the_name_label_acceptable,
    test_set_pool_and_set_priority_change_both_sides,
    test_show_vm_reports_both_sides,
    test_iommu_status_reports_the_verdict_and_its_evidence,
    test_vm_start_mirrors_xapi_into_configd,
    test_vm_start_registers_a_vm_set_up_on_another_host,
    test_vm_start_of_a_vm_set_up_with_xe_only,
    test_vm_start_of_a_vm_without_vgpu_changes_nothing,
    test_refusals_change_nothing,
    test_a_start_that_cannot_be_mirrored_is_refused,
    test_a_refused_xapi_write_leaves_configd_as_it_was,
    test_the_plugin_file_answers_as_xapi_expects,
    test_the_vm_pre_start_hook,
    test_the_device_model_wrapper,
    test_the_files_are_python_3_6,
]


def main():
    set_up_the_fake_pool()
    for test in TESTS:
        try:
            test()
        except Exception:
            t.ok(False, "%s ran to its end" % test.__name__, traceback.format_exc())
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
