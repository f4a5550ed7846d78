# SPDX-License-Identifier: LGPL-2.1-or-later
"""A stand-in for XAPI's XenAPI module in the tests: the few calls vgpu's seam makes, served from a JSON
file ($VGPU_FAKE_XAPI_DB) so that the plugin, the hook and the wrapper, each its own process, share one
"pool database". It behaves as XAPI does where vgpu depends on it: an unknown uuid is UUID_INVALID,
adding a key that exists is MAP_DUPLICATE_KEY, removing an absent key is no error. Tests may make a call
fail ("fail": {"VM.add_to_other_config": "CODE"}) or the whole XAPI unreachable ("unreachable": true)."""

import fcntl
import json
import os
import uuid as uuidlib


class Failure(Exception):
    def __init__(self, details):
        Exception.__init__(self, details)
        self.details = details


def _db_path():
    return os.environ["VGPU_FAKE_XAPI_DB"]


class _Locked(object):
    """The database, read under an exclusive lock and written back when the block ends."""

    def __enter__(self):
        self.fd = os.open(_db_path() + ".lock", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            with open(_db_path()) as f:
                self.db = json.load(f)
        except FileNotFoundError:
            self.db = {"vms": {}, "calls": []}
        return self.db

    def __exit__(self, *exc):
        tmp = _db_path() + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.db, f, indent=1, sort_keys=True)
        os.rename(tmp, _db_path())
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        return False


# The tests' side: put VMs in, look at them.
def fake_add_vm(uuid, name, other_config=None, **flags):
    with _Locked() as db:
        ref = "OpaqueRef:" + str(uuidlib.uuid4())
        record = {"uuid": uuid, "name_label": name, "other_config": dict(other_config or {}),
                  "is_a_template": False, "is_a_snapshot": False, "is_control_domain": False}
        record.update(flags)
        db["vms"][ref] = record
        return ref


def fake_other_config(uuid):
    with _Locked() as db:
        for record in db["vms"].values():
            if record["uuid"] == uuid:
                return dict(record["other_config"])
    raise KeyError(uuid)


def fake_set_other_config(uuid, other_config):
    with _Locked() as db:
        for record in db["vms"].values():
            if record["uuid"] == uuid:
                record["other_config"] = dict(other_config)
                return
    raise KeyError(uuid)


def fake_configure(**settings):
    """fail={method: code} makes those calls fail; unreachable=True makes logins fail."""
    with _Locked() as db:
        db.update(settings)


def fake_state():
    """Every VM's other-config, by uuid: what a refusal must leave as it was."""
    with _Locked() as db:
        return {r["uuid"]: dict(r["other_config"]) for r in db["vms"].values()}


# The module's side, as vgpu's seam calls it.
def _vm_by_ref(db, ref):
    if ref not in db["vms"]:
        raise Failure(["HANDLE_INVALID", "VM", ref])
    return db["vms"][ref]


def _serve(name, args):
    with _Locked() as db:
        db.setdefault("calls", []).append(name)
        if db.get("unreachable"):
            raise OSError(111, "Connection refused (fake XAPI is unreachable)")
        failing = db.get("fail", {}).get(name)
        if failing:
            raise Failure([failing, name])
        if name == "login_with_password":
            return "OpaqueRef:session"
        if name == "session.logout":
            return ""
        if name == "VM.get_by_uuid":
            for ref, record in db["vms"].items():
                if record["uuid"] == args[0]:
                    return ref
            raise Failure(["UUID_INVALID", "VM", args[0]])
        if name == "VM.get_name_label":
            return _vm_by_ref(db, args[0])["name_label"]
        if name == "VM.get_other_config":
            return dict(_vm_by_ref(db, args[0])["other_config"])
        if name == "VM.add_to_other_config":
            other_config = _vm_by_ref(db, args[0])["other_config"]
            if args[1] in other_config:
                raise Failure(["MAP_DUPLICATE_KEY", "VM", "other_config", args[0], args[1]])
            other_config[args[1]] = args[2]
            return ""
        if name == "VM.remove_from_other_config":
            _vm_by_ref(db, args[0])["other_config"].pop(args[1], None)
            return ""
        if name == "VM.get_all_records":
            return json.loads(json.dumps(db["vms"]))
        raise Failure(["MESSAGE_METHOD_UNKNOWN", name])


class _Method(object):
    def __init__(self, name):
        self._name = name

    def __getattr__(self, part):
        return _Method(self._name + "." + part if self._name else part)

    def __call__(self, *args):
        return _serve(self._name, list(args))


class Session(object):
    def __init__(self):
        self._session = None
        self.xenapi = _Method("")


def xapi_local():
    return Session()
