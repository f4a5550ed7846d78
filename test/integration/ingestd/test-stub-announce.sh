#!/usr/bin/env bash
# vgpu-ingestd's side of the vgpu-stub announcement (docs/ingestd.md, "The vgpu-stub announcement"): the
# socket $VGPU_RUNTIME_DIR/stub.sock, a matching announcement accepted, a VM whose stub says pool A while the
# configuration store says B refused and logged while the store wins, an unregistered VM refused (and checked
# again once registered), hostile lines refused without harm, peers other than root refused by SO_PEERCRED,
# and — when qemu/build-qemu.sh has a QEMU with vgpu-stub in its cache — a real QEMU's announcement.
source "$(dirname "$0")/../lib.sh"

: "${VGPU_INGEST_GUEST:=$VGPU_BUILD_DIR/test/integration/ingestd/ingest-guest}"
# The test runs its own vgpu-ingestd (to watch its log and its exit); no scheduler is needed.
devstack_reexec --without=vgpu-ingestd,vgpu-schedd -- "$@"

stub_sock="$VGPU_RUNTIME_DIR/stub.sock"
log="$VGPU_TEST_TMP/ingestd.log"
client="$VGPU_TEST_TMP/stub-client.py"
ingestd_alive() { kill -0 "$ingestd_pid" 2>/dev/null; }
channels() { busctl --system --json=short call org.vgpu.Ingest1 /org/vgpu/Ingest1 org.vgpu.Ingest1 ListChannels; }
channel_field() { channels | jq -r --argjson id "$1" ".data[0][] | select(.vm_id.data == \$id) | .$2.data"; }
configd_pool() {
        busctl --system --json=short call org.vgpu.Config1 /org/vgpu/Config1 org.vgpu.Config1 GetVm u "$1" |
                jq -r '.data[0].pool.data'
}
# announce LINE [HOLD_SECONDS]: connects to stub.sock, writes LINE (Python escapes: \n, \x00), prints the
# reply line, then "open" or "closed" for what ingestd did with the connection; with HOLD_SECONDS it then
# keeps the connection that long, as QEMU does.
announce() { python3 "$client" "$stub_sock" "$@"; }
# announce_reply LINE: the reply line alone
announce_reply() {
        local out
        out=$(announce "$@")
        printf '%s\n' "${out%%$'\n'*}"
}
# the log's lines since the mark set by log_mark
log_mark() { log_from=$(($(wc -l <"$log") + 1)); }
log_since() { tail -n +"$log_from" "$log"; }

cat >"$client" <<'EOF'
import socket, sys, time
path, line = sys.argv[1], sys.argv[2]
hold = float(sys.argv[3]) if len(sys.argv) > 3 else 0
data = line.encode("latin-1").decode("unicode_escape").encode("latin-1")
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(path)
except OSError as e:
    print("connect: " + e.strerror)
    sys.exit(0)
try:
    s.sendall(data)
except OSError:
    pass  # refused and closed before the line was read: the reply is still there to read
s.settimeout(5)
reply = b""
try:
    while not reply.endswith(b"\n"):
        chunk = s.recv(512)
        if not chunk:
            break
        reply += chunk
except socket.timeout:
    reply += b"<no reply>"
except ConnectionResetError:
    pass
print(reply.decode("ascii", "replace").rstrip("\n"))
s.settimeout(0.5)
try:
    print("closed" if not s.recv(1) else "more")
except socket.timeout:
    print("open")
except ConnectionResetError:
    print("closed")
sys.stdout.flush()
time.sleep(hold)
EOF

expect_exit "VM 1 registered in pool A, high" 0 vgpu-admin register-vm --vm-id=1 --pool=A --priority=high
expect_exit "VM 2 registered in pool B, low" 0 vgpu-admin register-vm --vm-id=2 --pool=B --priority=low

vgpu-ingestd >"$log" 2>&1 &
ingestd_pid=$!
trap 'kill "$ingestd_pid" 2>/dev/null; [ -n "${hold_pid:-}" ] && kill "$hold_pid" 2>/dev/null;
      [ -n "${qemu_pid:-}" ] && kill "$qemu_pid" 2>/dev/null' EXIT
if ! wait_for 10 busctl --system status org.vgpu.Ingest1; then
        not_ok "vgpu-ingestd owns org.vgpu.Ingest1"
        diag "$(cat "$log")"
        done_testing
fi
ok "vgpu-ingestd owns org.vgpu.Ingest1"
check "VM 2's channel socket exists (the mirror has read configd)" wait_for 5 test -S "$VGPU_RUNTIME_DIR/vm/2.sock"

# --- the socket ---
check "stub.sock is a socket" test -S "$stub_sock"
assert_eq "stub.sock is mode 0600" "600" "$(stat -c %a "$stub_sock")"
assert_eq "before any announcement, ListChannels' stub is empty" "" "$(channel_field 1 stub)"

# --- a matching announcement ---
log_mark
assert_eq "VM 1 announcing pool A, high (as the store says) is answered ok and kept open" "ok
open" "$(announce 'vgpu-stub 1 vm_id=1 pool_id=A priority=high\n')"
assert_contains "the match is logged at info" \
        "info: VM 1's vgpu-stub announced pool A, priority high: it agrees with the configuration store" "$(log_since)"
assert_eq "ListChannels: VM 1's stub matches, pool A, priority high" "matches A high" \
        "$(channel_field 1 stub) $(channel_field 1 stub_pool) $(channel_field 1 stub_priority)"
assert_eq "a stub without pool and priority agrees with anything" "ok
open" "$(announce 'vgpu-stub 1 vm_id=1 pool_id= priority=\n')"
assert_eq "ListChannels: VM 1's stub matches, with neither set" "matches||" \
        "$(channel_field 1 stub)|$(channel_field 1 stub_pool)|$(channel_field 1 stub_priority)"
assert_eq "a later key=value field is ignored" "ok" \
        "$(announce_reply 'vgpu-stub 1 vm_id=1 pool_id=A priority=high domid=7\n')"

# --- pool A announced while the configuration store says B: refused, logged, the store wins ---
log_mark
assert_eq "VM 2's stub saying pool A, high while the store says B, low is refused (the connection stays)" \
        "refused VM 2's vgpu-stub says pool A, priority high; the configuration store says pool B, priority low: the store wins
open" "$(announce 'vgpu-stub 1 vm_id=2 pool_id=A priority=high\n')"
assert_contains "the mismatch is logged at error level, naming both sides" \
        "error: VM 2's vgpu-stub says pool A, priority high; the configuration store says pool B, priority low: the store wins" \
        "$(log_since)"
assert_eq "ListChannels: VM 2's stub is a mismatch and says pool A, high" "mismatch A high" \
        "$(channel_field 2 stub) $(channel_field 2 stub_pool) $(channel_field 2 stub_priority)"
assert_eq "ingestd still has VM 2 in pool B, low" "B low" "$(channel_field 2 pool) $(channel_field 2 priority)"
assert_eq "configd still has VM 2 in pool B" "B" "$(configd_pool 2)"
assert_eq "VM 2's guest is still served: HELLO ok" "hello ok" "$("$VGPU_INGEST_GUEST" hello 2 | sed -n 1p)"
assert_eq "only the priority differing is a mismatch too" "refused" \
        "$(announce_reply 'vgpu-stub 1 vm_id=2 pool_id=B priority=high\n' | cut -d' ' -f1)"
assert_eq "VM 2's stub saying pool B, low is ok" "ok" "$(announce_reply 'vgpu-stub 1 vm_id=2 pool_id=B priority=low\n')"
assert_eq "… and ListChannels says matches" "matches" "$(channel_field 2 stub)"
announce 'vgpu-stub 1 vm_id=2 pool_id=A priority=low\n' >/dev/null
assert_eq "ListChannels compares with the store as it is now: VM 2 (stub A) is a mismatch while in B" "mismatch" \
        "$(channel_field 2 stub)"
expect_exit "VM 2 moved to pool A in the store" 0 vgpu-admin set-pool --vm-id=2 --pool=A
check "… after which VM 2's stub matches" wait_for 5 bash -c \
        "[ \"\$(busctl --system --json=short call org.vgpu.Ingest1 /org/vgpu/Ingest1 org.vgpu.Ingest1 ListChannels |
           jq -r '.data[0][] | select(.vm_id.data == 2) | .stub.data')\" = matches ]"

# --- an unregistered VM ---
log_mark
assert_eq "an announcement for VM 9, not registered, is refused" "refused VM 9 is not registered
open" "$(announce 'vgpu-stub 1 vm_id=9 pool_id=A priority=high\n')"
assert_contains "… and logged at error level" "error: VM 9 is not registered: refused its vgpu-stub's announcement" \
        "$(log_since)"
holdout="$VGPU_TEST_TMP/hold9.out"
announce 'vgpu-stub 1 vm_id=9 pool_id=A priority=medium\n' 30 >"$holdout" &
hold_pid=$!
check "a QEMU for VM 9 holds its connection after the refusal" wait_for 5 grep -q open "$holdout"
expect_exit "VM 9 registered in pool A, medium while its QEMU is connected" 0 \
        vgpu-admin register-vm --vm-id=9 --pool=A --priority=medium
check "VM 9's held announcement is checked on registration: matches" wait_for 5 bash -c \
        "[ \"\$(busctl --system --json=short call org.vgpu.Ingest1 /org/vgpu/Ingest1 org.vgpu.Ingest1 ListChannels |
           jq -r '.data[0][] | select(.vm_id.data == 9) | .stub.data')\" = matches ]"
kill "$hold_pid" 2>/dev/null
wait "$hold_pid" 2>/dev/null
hold_pid=

# --- hostile and broken lines: refused, the connection closed, ingestd unharmed ---
assert_eq "garbage is refused and the connection closed" \
        "refused the announcement does not parse: the line is not a vgpu-stub announcement
closed" "$(announce 'GET / HTTP/1.0\n')"
assert_eq "an overlong line is refused and the connection closed" \
        "refused the announcement does not parse: the line is longer than 80 bytes
closed" "$(announce "vgpu-stub 1 vm_id=1 pool_id=A priority=high x=$(printf 'v%.0s' {1..200})\\n")"
assert_eq "a NUL byte is refused" \
        "refused the announcement does not parse: the line holds a byte that is not printable ASCII
closed" "$(announce 'vgpu-stub 1 vm_id=1 pool_id=A\x00 priority=high\n')"
assert_eq "another protocol version is refused" \
        "refused the announcement does not parse: the announcement is not of version 1
closed" "$(announce 'vgpu-stub 2 vm_id=1 pool_id=A priority=high\n')"
assert_eq "two lines at once are refused" \
        "refused the announcement does not parse: more than one line before the reply
closed" "$(announce 'vgpu-stub 1 vm_id=1 pool_id=A priority=high\nvgpu-stub 1 vm_id=2 pool_id=A priority=high\n')"
log_mark
assert_eq "VM 1 with an unknown priority is refused" \
        "refused the announcement does not parse: priority is not high, medium or low
closed" "$(announce 'vgpu-stub 1 vm_id=1 pool_id=A priority=urgent\n')"
assert_eq "… and ListChannels says VM 1's stub was refused" "refused" "$(channel_field 1 stub)"
assert_contains "… logged at warning" "warning: stub.sock: refused the line from pid" "$(log_since)"
start=$SECONDS
assert_eq "a line that never ends is refused after 2 s" "refused no whole announcement line within 2 s
closed" "$(announce 'vgpu-stub 1 vm_id=1')"
assert_eq "… within 2 to 4 s" "yes" "$([ $((SECONDS - start)) -ge 1 ] && [ $((SECONDS - start)) -le 4 ] && echo yes)"
assert_eq "a connection that says nothing is refused too" "refused no whole announcement line within 2 s" \
        "$(announce_reply '')"
check "vgpu-ingestd is still running" ingestd_alive
assert_eq "VM 1's guest is still served: HELLO ok" "hello ok" "$("$VGPU_INGEST_GUEST" hello 1 | sed -n 1p)"

# --- who may announce (as nobody, with the system's python3: a per-user one may sit in root's home) ---
as_nobody() { setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups "$@"; }
nobody_python=/usr/bin/python3
[ -x "$nobody_python" ] || nobody_python=python3
assert_eq "nobody cannot even connect (mode 0600)" "connect: Permission denied" \
        "$(as_nobody "$nobody_python" "$client" "$stub_sock" 'vgpu-stub 1 vm_id=1 pool_id=A priority=high\n')"
chmod 0666 "$stub_sock"
log_mark
assert_eq "with the mode opened, nobody is still refused by SO_PEERCRED" "refused only root may announce a VM's identity
closed" "$(as_nobody "$nobody_python" "$client" "$stub_sock" 'vgpu-stub 1 vm_id=1 pool_id=A priority=high\n')"
assert_contains "… and logged with the peer's uid" "stub.sock: refused pid" "$(log_since)"
chmod 0600 "$stub_sock"

# --- a real QEMU with vgpu-stub, when qemu/build-qemu.sh has one cached (this test never builds it) ---
qemu=${VGPU_QEMU:-}
if [ -z "$qemu" ]; then
        qemu=$("$VGPU_SOURCE_DIR/qemu/build-qemu.sh" --cached-only 2>/dev/null) || qemu=
fi
if [ -z "$qemu" ] || [ ! -x "$qemu" ]; then
        ok "# SKIP a real QEMU's announcement: no QEMU with vgpu-stub is cached (qemu/build-qemu.sh builds one, or set VGPU_QEMU)"
elif [ ! -f /usr/share/seabios/bios-256k.bin ] && [ ! -f /usr/share/qemu/bios-256k.bin ]; then
        ok "# SKIP a real QEMU's announcement: QEMU's firmware (bios-256k.bin) is missing (the seabios package)"
else
        expect_exit "VM 3 registered in pool B, low" 0 vgpu-admin register-vm --vm-id=3 --pool=B --priority=low
        log_mark
        "$qemu" -M q35 -accel tcg -display none -nodefaults -S \
                -chardev "socket,id=vs0,path=$stub_sock,reconnect=2" \
                -device vgpu-stub,vm_id=3,pool_id=A,priority=high,chardev=vs0 >"$VGPU_TEST_TMP/qemu.log" 2>&1 &
        qemu_pid=$!
        check "QEMU's announcement for VM 3 is recorded" wait_for 20 bash -c \
                "[ -n \"\$(busctl --system --json=short call org.vgpu.Ingest1 /org/vgpu/Ingest1 org.vgpu.Ingest1 \
                   ListChannels | jq -r '.data[0][] | select(.vm_id.data == 3) | .stub.data')\" ]"
        assert_eq "ListChannels: QEMU's stub for VM 3 says pool A, high: a mismatch" "mismatch A high" \
                "$(channel_field 3 stub) $(channel_field 3 stub_pool) $(channel_field 3 stub_priority)"
        assert_contains "the mismatch is logged at error level, with QEMU's pid" \
                "error: VM 3's vgpu-stub says pool A, priority high; the configuration store says pool B, priority low: the store wins (QEMU pid $qemu_pid)" \
                "$(log_since)"
        assert_eq "the store wins: VM 3 stays in pool B in ingestd and configd" "B B" \
                "$(channel_field 3 pool) $(configd_pool 3)"
        check "QEMU keeps running with its connection" kill -0 "$qemu_pid"
        kill "$qemu_pid" 2>/dev/null
        wait "$qemu_pid" 2>/dev/null
        qemu_pid=
        diag "QEMU: $qemu"
fi

# --- stopping removes the socket ---
kill -TERM "$ingestd_pid"
wait "$ingestd_pid"
assert_eq "vgpu-ingestd exits 0 on SIGTERM" "0" "$?"
check "stub.sock is removed at exit" bash -c "! test -e '$stub_sock'"
done_testing
