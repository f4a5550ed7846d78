#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck source-path=SCRIPTDIR
# `meson install` puts the units, the bus policy, the sysusers and tmpfiles files and the programs
# where meson.build says, and those are places where systemd, systemd-sysusers, systemd-tmpfiles and the
# system bus look: checked in a DESTDIR, by running sysusers and tmpfiles on it.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib.sh
. "$here/../lib.sh"

: "${VGPU_SOURCE_DIR:?VGPU_SOURCE_DIR must name the source directory}"
command -v meson >/dev/null || { echo "1..0 # SKIP meson is not in PATH"; exit 0; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/root

expect_exit "meson install --destdir succeeds" 0 \
        meson install -C "$VGPU_BUILD_DIR" --destdir "$dest" --no-rebuild --quiet

# The directories as meson.build computes them from this build's options.
bindir='' sbindir='' libexecdir='' unitdir='' dbuspolicydir='' sysusersdir='' tmpfilesdir=''
eval "$(meson introspect "$VGPU_BUILD_DIR" --buildoptions | python3 -c '
import json, os, shlex, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
prefix = o["prefix"]
def under(d):
    return os.path.join(prefix, d)
dirs = {
    "bindir": under(o["bindir"]), "sbindir": under(o["sbindir"]), "libexecdir": under(o["libexecdir"]),
    "unitdir": o["systemdunitdir"] or under("lib/systemd/system"),
    "dbuspolicydir": o["dbuspolicydir"] or "/usr/share/dbus-1/system.d",
    "sysusersdir": under("lib/sysusers.d"), "tmpfilesdir": under("lib/tmpfiles.d"),
}
for k, v in dirs.items():
    print(f"{k}={shlex.quote(os.path.normpath(v))}")
')"

# installed NAME SOURCE PATH: PATH exists under DESTDIR with SOURCE's content.
installed() {
        if [ ! -f "$dest$3" ]; then
                not_ok "$1 lands in $3"
                diag "$(cd "$dest" && find . -type f | sort)"
        elif ! cmp -s "$2" "$dest$3"; then
                not_ok "$1 lands in $3"
                diag "$dest$3 differs from $2"
        else
                ok "$1 lands in $3"
        fi
}

unit=$dest$unitdir/vgpu-configd.service
installed "vgpu-configd.service (as configured)" "$VGPU_BUILD_DIR/systemd-units/vgpu-configd.service" \
        "$unitdir/vgpu-configd.service"
installed "vgpu.target" "$VGPU_SOURCE_DIR/systemd-units/vgpu.target" "$unitdir/vgpu.target"
installed "the bus policy org.vgpu.Config1.conf" "$VGPU_SOURCE_DIR/systemd-units/dbus/org.vgpu.Config1.conf" \
        "$dbuspolicydir/org.vgpu.Config1.conf"
installed "sysusers.d/vgpu.conf" "$VGPU_SOURCE_DIR/systemd-units/sysusers/vgpu.conf" "$sysusersdir/vgpu.conf"
installed "tmpfiles.d/vgpu.conf" "$VGPU_SOURCE_DIR/systemd-units/tmpfiles/vgpu.conf" "$tmpfilesdir/vgpu.conf"

# The binary the unit starts is installed there, executable.
exec_start=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit" 2>/dev/null)
assert_eq "the unit's ExecStart= is vgpu-configd in libexecdir/vgpu" "$libexecdir/vgpu/vgpu-configd" "$exec_start"
if [ -x "$VGPU_BUILD_DIR/vgpu-configd" ]; then
        check "vgpu-configd is installed where ExecStart= looks, executable" test -x "$dest$exec_start"
else
        ok "vgpu-configd is installed where ExecStart= looks # SKIP vgpu-configd is not built"
fi

# Every program meson installs is there and executable: vgpu-admin in sbindir, vgpu-devstack in bindir, …
meson introspect "$VGPU_BUILD_DIR" --targets | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    if t["type"] == "executable" and t.get("installed"):
        for path in t.get("install_filename", []):
            print(t["name"], path)' >"$tmp/programs"
while read -r name path; do
        check "$name is installed executable as $path" test -x "$dest$path"
done <"$tmp/programs"
for program in vgpu-admin:"$sbindir" vgpu-devstack:"$bindir"; do
        name=${program%%:*}
        dir=${program#*:}
        if grep -q "^$name " "$tmp/programs"; then
                assert_contains "$name goes to $dir" " $dir/$name" "$(grep "^$name " "$tmp/programs")"
        else
                ok "$name goes to $dir # SKIP $name is not built"
        fi
done

# Where the system looks.
if command -v systemd-analyze >/dev/null; then
        assert_contains "systemd looks for units in $unitdir" "$unitdir" "$(systemd-analyze unit-paths 2>/dev/null)"
fi
# dbus-daemon and dbus-broker read /usr/share/dbus-1/system.d and /etc/dbus-1/system.d, nothing else.
case "$dbuspolicydir" in
/usr/share/dbus-1/system.d | /etc/dbus-1/system.d) ok "the system bus reads policies from $dbuspolicydir" ;;
*) not_ok "the system bus reads policies from $dbuspolicydir (it reads only /usr/share/dbus-1/system.d and /etc/dbus-1/system.d)" ;;
esac

if command -v systemd-sysusers >/dev/null; then
        # sysusers finds the file in the installed tree by itself (its search path) and creates the group.
        mkdir -p "$dest/etc"
        expect_exit "systemd-sysusers --root applies the installed vgpu.conf" 0 systemd-sysusers --root="$dest"
        assert_contains "it creates the system group vgpu-admin" "vgpu-admin:x:" "$(cat "$dest/etc/group" 2>/dev/null)"
else
        ok "systemd-sysusers creates vgpu-admin # SKIP systemd-sysusers is not installed"
fi
if command -v systemd-tmpfiles >/dev/null; then
        expect_exit "systemd-tmpfiles --root --create applies the installed vgpu.conf" 0 \
                systemd-tmpfiles --root="$dest" --create --prefix=/var/lib/vgpu --prefix=/run/vgpu
        # Only root can create root-owned directories; anyone else sees the mode alone checked.
        owner=" root:root"
        fmt='%a %U:%G'
        if [ "$(id -u)" -ne 0 ]; then
                owner=
                fmt='%a'
        fi
        assert_eq "/var/lib/vgpu is created 0750${owner}" "750${owner}" "$(stat -c "$fmt" "$dest/var/lib/vgpu" 2>&1)"
        assert_eq "/run/vgpu is created 0755${owner}" "755${owner}" "$(stat -c "$fmt" "$dest/run/vgpu" 2>&1)"
else
        ok "systemd-tmpfiles creates the directories # SKIP systemd-tmpfiles is not installed"
fi

done_testing
