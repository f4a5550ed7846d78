#!/usr/bin/env bash
# vgpu-devstack's life from the outside: usage errors exit 2; COMMAND's exit status is devstack's (0, 3,
# 128+signal, 127 for a missing COMMAND); the database survives a second run on the same directory while
# the runtime directory does not; without COMMAND the stack runs until SIGTERM or SIGINT and then exits 0;
# after every run no service or dbus-daemon is left, not even when devstack itself is killed with SIGKILL.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/devstack-lib.sh"

# Usage errors.
expect_exit "no --state-dir is a usage error" 2 vgpu-devstack -- true
assert_contains "it says what is missing" "--state-dir" "$LAST_ERR"
expect_exit "an unknown option is a usage error" 2 vgpu-devstack --state-dir "$DEVSTACK_TMP/u" --no-such-option
assert_contains "it names the option" "--no-such-option" "$LAST_ERR"
expect_exit "an option without its value is a usage error" 2 vgpu-devstack --state-dir
expect_exit "COMMAND without '--' is a usage error" 2 vgpu-devstack --state-dir "$DEVSTACK_TMP/u" true
assert_eq "a usage error starts nothing" "no" "$([ -e "$DEVSTACK_TMP/u" ] && echo yes || echo no)"
expect_exit "--help exits 0" 0 vgpu-devstack --help
assert_contains "--help shows the synopsis" "--state-dir=DIR" "$LAST_OUT"
expect_exit "--version exits 0" 0 vgpu-devstack --version

# COMMAND's exit status is devstack's.
s1="$DEVSTACK_TMP/s1"
expect_exit "COMMAND exiting 0 makes devstack exit 0" 0 vgpu-devstack -q --state-dir "$s1" -- true
assert_eq "--quiet says nothing when all goes well" "" "$LAST_ERR"
expect_exit "COMMAND exiting 3 makes devstack exit 3" 3 vgpu-devstack -q --state-dir "$s1" -- sh -c 'exit 3'
expect_exit "COMMAND killed by SIGKILL makes devstack exit 137" 137 \
        vgpu-devstack -q --state-dir "$s1" -- sh -c 'kill -KILL $$'
expect_exit "COMMAND killed by SIGTERM makes devstack exit 143" 143 \
        vgpu-devstack -q --state-dir "$s1" -- sh -c 'kill -TERM $$'
expect_exit "a COMMAND that does not exist makes devstack exit 127" 127 \
        vgpu-devstack -q --state-dir "$s1" -- /nonexistent/command
assert_contains "and says so" "/nonexistent/command" "$LAST_ERR"
assert_eq "no process is left after these runs" "" "$(stack_processes "$s1")"
assert_eq "no pid file is left" "" "$(ls "$s1"/devstack/*.pid 2>/dev/null)"
assert_eq "the state directory is mode 0755" "755" "$(stat -c %a "$s1")"

# The layout and the environment seen by COMMAND (a real path: the directory was given relative).
s2="$DEVSTACK_TMP/s2"
expect_exit "a relative --state-dir works" 0 \
        bash -c 'cd "$1" && vgpu-devstack -q --state-dir s2 -- env' _ "$DEVSTACK_TMP"
env_out=$LAST_OUT
assert_contains "COMMAND gets DBUS_SYSTEM_BUS_ADDRESS" "DBUS_SYSTEM_BUS_ADDRESS=unix:path=$s2/devstack/bus.sock" "$env_out"
assert_contains "COMMAND gets VGPU_RUNTIME_DIR" "VGPU_RUNTIME_DIR=$s2/run" "$env_out"
assert_contains "COMMAND gets VGPU_STATE_DIR" "VGPU_STATE_DIR=$s2" "$env_out"
assert_contains "COMMAND gets VGPU_DEVSTACK_DIR" "VGPU_DEVSTACK_DIR=$s2" "$env_out"
assert_eq "COMMAND gets no NOTIFY_SOCKET" "" "$(grep '^NOTIFY_SOCKET=' <<<"$env_out")"
check "the config service created its database" test -s "$s2/config.db"
check "the service's output is in log/vgpu-configd.log" grep -q "Serving org.vgpu.Config1" "$s2/log/vgpu-configd.log"
check "dbus-daemon's output has a log" test -e "$s2/log/dbus-daemon.log"
check "the bus configuration is in devstack/bus.conf" grep -q "<type>system</type>" "$s2/devstack/bus.conf"

# A second run on the same directory keeps the database and empties the runtime directory.
s3="$DEVSTACK_TMP/s3"
expect_exit "first run: RegisterVm 5" 0 vgpu-devstack -q --state-dir "$s3" -- sh -c '
        busctl --system call org.vgpu.Config1 /org/vgpu/Config1 org.vgpu.Config1 RegisterVm "ussa{sv}" 5 A high 0 &&
        touch "$VGPU_RUNTIME_DIR/left-over"'
expect_exit "second run: GetVm 5" 0 vgpu-devstack -q --state-dir "$s3" -- \
        busctl --system call org.vgpu.Config1 /org/vgpu/Config1 org.vgpu.Config1 GetVm u 5
assert_contains "VM 5 registered in the first run is there in the second" '"pool" s "A"' "$LAST_OUT"
assert_contains "with its priority" '"priority" s "high"' "$LAST_OUT"
assert_eq "the runtime directory was emptied" "no" "$([ -e "$s3/run/left-over" ] && echo yes || echo no)"
assert_eq "the runtime directory is mode 0755" "755" "$(stat -c %a "$s3/run")"
assert_eq "both runs appended to the service's log" "2" "$(grep -c 'Serving org.vgpu.Config1' "$s3/log/vgpu-configd.log")"

# --admin-group reaches the services; without it they are given none.
expect_exit "--admin-group is passed on" 0 vgpu-devstack -q --state-dir "$s3" --admin-group=wheel -- \
        sh -c 'tr "\0" " " </proc/$(cat "$VGPU_DEVSTACK_DIR/devstack/vgpu-configd.pid")/cmdline'
assert_contains "vgpu-configd runs with --admin-group=wheel" "--admin-group=wheel" "$LAST_OUT"
assert_contains "and with its database in the state directory" "--database=$s3/config.db" "$LAST_OUT"
expect_exit "without --admin-group" 0 vgpu-devstack -q --state-dir "$s3" -- \
        sh -c 'tr "\0" " " </proc/$(cat "$VGPU_DEVSTACK_DIR/devstack/vgpu-configd.pid")/cmdline'
assert_eq "vgpu-configd gets no --admin-group" "" "$(grep -o -- '--admin-group' <<<"$LAST_OUT")"

# A service that fails to start stops the stack, exit 1, with the end of its log.
s4="$DEVSTACK_TMP/s4"
mkdir -p "$s4"
head -c 16384 /dev/urandom >"$s4/config.db"
expect_exit "a service that fails to start makes devstack exit 1" 1 vgpu-devstack --state-dir "$s4" -- true
assert_contains "the reason from the service's log is shown" "not a database" "$LAST_ERR"
assert_contains "and the log is named" "$s4/log/vgpu-configd.log" "$LAST_ERR"
assert_eq "nothing is left of the failed start" "" "$(stack_processes "$s4")"

# Without COMMAND: the environment on stdout, then SIGTERM stops everything and devstack exits 0.
s5="$DEVSTACK_TMP/s5"
if stack_start "$s5"; then
        ok "without COMMAND the stack comes up"
        assert_contains "it prints the bus address for a shell" \
                "export DBUS_SYSTEM_BUS_ADDRESS='unix:path=$s5/devstack/bus.sock'" "$(cat "$s5.out")"
        check "the printed lines reach the stack" \
                bash -c 'eval "$(cat "$1")" && busctl --system call org.vgpu.Config1 /org/vgpu/Config1 \
                        org.vgpu.Config1 ListPools' _ "$s5.out"
        expect_exit "a second devstack on the same directory is refused" 1 vgpu-devstack --state-dir "$s5" -- true
        assert_contains "it says why" "Another vgpu-devstack" "$LAST_ERR"
        kill -TERM "$STACK_PID"
        stack_stop_wait
        assert_eq "SIGTERM makes devstack exit 0" 0 "$STACK_STATUS"
        assert_eq "no process is left after SIGTERM" "" "$(stack_processes "$s5")"
        assert_eq "the pid file was removed" "no" "$([ -e "$s5/devstack/vgpu-configd.pid" ] && echo yes || echo no)"
else
        not_ok "without COMMAND the stack comes up"
fi

# SIGINT (Ctrl-C) does the same.
if stack_start "$s5"; then
        kill -INT "$STACK_PID"
        stack_stop_wait
        assert_eq "SIGINT makes devstack exit 0" 0 "$STACK_STATUS"
        assert_eq "no process is left after SIGINT" "" "$(stack_processes "$s5")"
else
        not_ok "the stack comes up a second time"
fi

# SIGTERM with COMMAND is forwarded to COMMAND, whose exit status is devstack's.
s6="$DEVSTACK_TMP/s6"
vgpu-devstack -q --state-dir "$s6" -- \
        sh -c 'trap "exit 42" TERM; touch "$VGPU_STATE_DIR/command-runs"; while :; do sleep 0.1; done' &
pid=$!
_stack_pids+=("$pid")
if wait_for 40 test -e "$s6/command-runs"; then
        kill -TERM "$pid"
        wait "$pid"
        assert_eq "SIGTERM reaches COMMAND, which exits 42" 42 "$?"
else
        not_ok "COMMAND started"
fi
assert_eq "no process is left after the forwarded SIGTERM" "" "$(stack_processes "$s6")"

# Even devstack killed with SIGKILL leaves nothing behind: its children die with it.
if stack_start "$s6"; then
        kill -KILL "$STACK_PID"
        stack_stop_wait
        if wait_for 10 no_stack_processes "$s6"; then
                ok "dbus-daemon and vgpu-configd die with a SIGKILLed devstack"
        else
                not_ok "dbus-daemon and vgpu-configd die with a SIGKILLed devstack"
                diag "left: $(stack_processes "$s6" | xargs -r ps -o pid=,args= -p)"
        fi
        expect_exit "the directory can be used again at once" 0 vgpu-devstack -q --state-dir "$s6" -- true
else
        not_ok "the stack comes up for the SIGKILL test"
fi

# Not root: the services run as the same user, whom the bus then lets own and call org.vgpu.*.
s7="$DEVSTACK_TMP/s7"
mkdir -p "$s7"
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null && chown nobody "$s7" &&
        setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups test -x "$VGPU_BUILD_DIR/vgpu-devstack"; then
        expect_exit "devstack runs as an ordinary user (nobody)" 0 \
                setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups \
                "$VGPU_BUILD_DIR/vgpu-devstack" --state-dir "$s7/stack" --admin-group="$(id -gn nobody)" -- \
                busctl --system call org.vgpu.Config1 /org/vgpu/Config1 org.vgpu.Config1 RegisterVm 'ussa{sv}' 6 A \
                medium 0
        assert_contains "it says the bus lets that user own org.vgpu.*" "Not running as root" "$LAST_ERR"
        assert_eq "the service ran as nobody" "nobody" "$(stat -c %U "$s7/stack/config.db")"
else
        ok "# SKIP devstack as an ordinary user (needs root, setpriv, and a build directory nobody may run)"
fi

done_testing
