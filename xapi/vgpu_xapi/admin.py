# SPDX-License-Identifier: LGPL-2.1-or-later
"""vgpu-configd and vgpu-iommud as the XAPI side reaches them: through `vgpu-admin --json`, the
administrator's own D-Bus client, so that the plugin calls exactly the methods vgpu-admin calls and the
services check, authorize and audit it the same way."""

import json
import os
import shutil
import subprocess

from . import errors

# Where vgpu-admin is looked for when VGPU_ADMIN does not name it: XAPI starts plugins and hooks with a
# short PATH, so the install locations are searched too.
_SEARCH_PATH = ("/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin")


def _find_vgpu_admin():
    explicit = os.environ.get("VGPU_ADMIN")
    if explicit:
        return explicit
    path = os.pathsep.join([os.environ.get("PATH", "")] + list(_SEARCH_PATH))
    found = shutil.which("vgpu-admin", path=path)
    return found or "/usr/sbin/vgpu-admin"


class Admin(object):
    """One vgpu-admin verb per method; each returns the parsed JSON document or raises VgpuError with
    vgpu-admin's own sentence."""

    def __init__(self, program=None, timeout=60):
        self.program = program or _find_vgpu_admin()
        self.timeout = timeout

    def _run(self, argv, json_on_failure=False):
        cmd = [self.program, "--json"] + argv
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  universal_newlines=True, timeout=self.timeout,
                                  env=dict(os.environ, LC_ALL="C.UTF-8"))
        except FileNotFoundError:
            raise errors.VgpuError(errors.REFUSED, "vgpu-admin is not installed (looked for %s)." % self.program)
        except subprocess.TimeoutExpired:
            raise errors.VgpuError(errors.REFUSED, "vgpu-admin %s did not finish within %d seconds."
                                   % (argv[0], self.timeout))
        sentence = self._sentence(proc.stderr)
        if proc.returncode == 0 or (json_on_failure and proc.returncode == 1 and proc.stdout.strip()):
            try:
                document = json.loads(proc.stdout)
            except ValueError:
                raise errors.VgpuError(errors.REFUSED, "vgpu-admin %s printed no JSON: %r"
                                       % (argv[0], proc.stdout[:200]))
            return document, proc.returncode, sentence
        code = errors.USAGE if proc.returncode == 2 else errors.REFUSED
        raise errors.VgpuError(code, sentence or "vgpu-admin %s failed with status %d."
                               % (argv[0], proc.returncode))

    @staticmethod
    def _sentence(stderr):
        lines = [line[len("vgpu-admin: "):] if line.startswith("vgpu-admin: ") else line
                 for line in stderr.splitlines() if line.strip()]
        return " ".join(lines)

    def call(self, argv):
        return self._run(argv)[0]

    def list_vms(self):
        return self.call(["list-vms"])

    def vm_by_uuid(self, uuid):
        """The VM registered with this uuid, or None: read from the list, so that "not registered" is
        never told apart by the wording of an error."""
        for vm in self.list_vms():
            if vm.get("uuid") == uuid:
                return vm
        return None

    def register_vm(self, vm_id, pool, priority, uuid, name):
        argv = ["register-vm", "--vm-id=%d" % vm_id, "--pool=%s" % pool, "--priority=%s" % priority,
                "--uuid=%s" % uuid]
        if name:
            argv.append("--name=%s" % name)
        return self.call(argv)

    def unregister_vm(self, vm_id):
        return self.call(["unregister-vm", "--vm-id=%d" % vm_id])

    def set_pool(self, vm_id, pool):
        return self.call(["set-pool", "--vm-id=%d" % vm_id, "--pool=%s" % pool])

    def set_priority(self, vm_id, priority):
        return self.call(["set-priority", "--vm-id=%d" % vm_id, "--priority=%s" % priority])

    def iommu_status(self, vm_id=None):
        """show-iommu-status: its document even when the host is not compliant (exit status 1), with
        the reasons vgpu-admin gave."""
        argv = ["show-iommu-status"]
        if vm_id is not None:
            argv.append("--vm-id=%d" % vm_id)
        document, status, sentence = self._run(argv, json_on_failure=True)
        return document, status == 0, sentence
