# SPDX-License-Identifier: LGPL-2.1-or-later
"""The seam between vgpu and XAPI: every XAPI call the XAPI side makes is a method of XapiSession, and
nothing else imports XenAPI. Tests put a fake XenAPI module in its place."""

from . import errors


def _xenapi_module():
    try:
        import XenAPI
    except ImportError:
        raise errors.VgpuError(errors.XAPI, "The XenAPI Python module is not installed: this is not an "
                               "XCP-ng host, or its xapi packages are missing.")
    return XenAPI


def _failure_sentence(exc):
    details = getattr(exc, "details", None)
    if details:
        return "XAPI refused the call: %s" % " ".join(str(d) for d in details)
    return "XAPI could not be reached: %s" % exc


class XapiSession(object):
    """The XAPI calls vgpu makes, on a session XAPI gave us (a plugin's) or that we opened (a hook's)."""

    def __init__(self, session, owned=False):
        self._session = session
        self._owned = owned

    @classmethod
    def open_local(cls, originator="vgpu"):
        """A session on this host's XAPI over its local socket, as root in dom0 may open one."""
        XenAPI = _xenapi_module()
        try:
            session = XenAPI.xapi_local()
            session.xenapi.login_with_password("root", "", "1.0", originator)
        except Exception as exc:
            raise errors.VgpuError(errors.XAPI, _failure_sentence(exc))
        return cls(session, owned=True)

    def close(self):
        if self._owned:
            try:
                self._session.xenapi.session.logout()
            except Exception:
                pass
            self._owned = False

    def _call(self, what, *args):
        method = self._session.xenapi
        for part in what.split("."):
            method = getattr(method, part)
        try:
            return method(*args)
        except errors.VgpuError:
            raise
        except Exception as exc:
            details = getattr(exc, "details", None) or []
            if details[:1] == ["UUID_INVALID"]:
                raise errors.VgpuError(errors.XAPI, "XAPI has no VM with uuid %s." % args[0])
            raise errors.VgpuError(errors.XAPI, _failure_sentence(exc))

    def vm_ref(self, uuid):
        return self._call("VM.get_by_uuid", uuid)

    def name_label(self, vm_ref):
        return self._call("VM.get_name_label", vm_ref)

    def other_config(self, vm_ref):
        return dict(self._call("VM.get_other_config", vm_ref))

    def set_other_config_key(self, vm_ref, key, value):
        """Sets one key. XAPI refuses to add a key that exists (MAP_DUPLICATE_KEY), so it is removed
        first; XAPI replicates the change to every host of the pool."""
        self._call("VM.remove_from_other_config", vm_ref, key)
        self._call("VM.add_to_other_config", vm_ref, key, value)

    def remove_other_config_key(self, vm_ref, key):
        self._call("VM.remove_from_other_config", vm_ref, key)

    def vgpu_vm_ids(self, key):
        """{VM uuid: value of other-config:`key`} for every VM of the XAPI pool that has the key.
        Snapshots and templates carry a copy of their VM's other-config and are left out."""
        records = self._call("VM.get_all_records")
        found = {}
        for record in records.values():
            if record.get("is_a_snapshot") or record.get("is_a_template") or record.get("is_control_domain"):
                continue
            value = (record.get("other_config") or {}).get(key)
            if value is not None:
                found[record["uuid"]] = value
        return found
