#!/usr/bin/env bash
# A service that dies is restarted as Restart=on-failure would: a kill -9 of vgpu-configd is logged, a new
# process takes its place (its pid in the pid file) and answers on the bus; more than 10 restarts within
# 60 s and devstack gives up on the service, says so, and keeps running; a clean exit is not restarted.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/devstack-lib.sh"

# Kills vgpu-configd with SIGKILL and waits until a restarted one is ready; prints the new pid.
kill_and_wait_restart() {
        local dir=$1 old new
        old=$(cat "$dir/devstack/vgpu-configd.pid") || return 1
        kill -KILL "$old" || return 1
        wait_for 20 bash -c '[ "$(cat "$1" 2>/dev/null)" != "$2" ] && grep -q "restarted (pid $(cat "$1"))" "$3"' \
                _ "$dir/devstack/vgpu-configd.pid" "$old" "$dir.err" || return 1
        cat "$dir/devstack/vgpu-configd.pid"
}

r1="$DEVSTACK_TMP/r1"
if ! stack_start "$r1"; then
        not_ok "the stack comes up"
        done_testing
fi
old=$(cat "$r1/devstack/vgpu-configd.pid")
on_stack "$r1" config_call RegisterVm 'ussa{sv}' 9 B low 0 >/dev/null
new=$(kill_and_wait_restart "$r1")
if [ -n "$new" ]; then
        ok "vgpu-configd killed with SIGKILL (pid $old) was restarted (pid $new)"
else
        not_ok "vgpu-configd killed with SIGKILL (pid $old) was restarted"
        diag "$(cat "$r1.err")"
fi
assert_contains "the kill is logged" "vgpu-configd (pid $old) was killed by signal KILL; restarting it (restart 1)" \
        "$(cat "$r1.err")"
assert_contains "the restart is logged with the new pid" "vgpu-configd restarted (pid $new)" "$(cat "$r1.err")"
assert_eq "the new pid is a running vgpu-configd" "vgpu-configd" "$(cat "/proc/$new/comm" 2>/dev/null)"
check "the restarted service answers ListPools" on_stack "$r1" config_call ListPools
out=$(on_stack "$r1" config_call GetVm u 9 2>&1)
assert_contains "and still knows VM 9" '"pool" s "B"' "$out"

# Ten more kills in a row: the eleventh failure within 60 s is one too many.
restarted=1
for i in $(seq 2 10); do
        new=$(kill_and_wait_restart "$r1") || break
        restarted=$i
done
assert_eq "ten restarts in a row are made" 10 "$restarted"
last=$(cat "$r1/devstack/vgpu-configd.pid")
kill -KILL "$last"
if wait_for 10 grep -q "giving up on it" "$r1.err"; then
        ok "after more than 10 restarts within 60 s devstack gives up on vgpu-configd"
else
        not_ok "after more than 10 restarts within 60 s devstack gives up on vgpu-configd"
        diag "$(tail -n 5 "$r1.err")"
fi
assert_contains "it says why" "vgpu-configd (pid $last) was killed by signal KILL; it was restarted 10 times" \
        "$(cat "$r1.err")"
sleep 3
assert_eq "no eleventh restart was made" 0 "$(grep -c 'restart 11' "$r1.err")"
assert_eq "its pid file is removed" "no" "$([ -e "$r1/devstack/vgpu-configd.pid" ] && echo yes || echo no)"
check "devstack itself keeps running" kill -0 "$STACK_PID"
check "and so does the bus" on_stack "$r1" busctl --system status
kill -TERM "$STACK_PID"
stack_stop_wait
assert_eq "devstack then stops on SIGTERM with status 0" 0 "$STACK_STATUS"
assert_eq "no process is left" "" "$(stack_processes "$r1")"

# A clean exit (status 0) is final, as with Restart=on-failure.
r2="$DEVSTACK_TMP/r2"
if stack_start "$r2"; then
        pid=$(cat "$r2/devstack/vgpu-configd.pid")
        kill -TERM "$pid"
        if wait_for 10 grep -q "exited cleanly; not restarting it" "$r2.err"; then
                ok "vgpu-configd stopped with SIGTERM exits cleanly and is not restarted"
        else
                not_ok "vgpu-configd stopped with SIGTERM exits cleanly and is not restarted"
                diag "$(cat "$r2.err")"
        fi
        sleep 1
        assert_eq "no restart follows a clean exit" 0 "$(grep -c 'restarting it (restart' "$r2.err")"
        assert_eq "its pid file is removed" "no" "$([ -e "$r2/devstack/vgpu-configd.pid" ] && echo yes || echo no)"
        kill -TERM "$STACK_PID"
        stack_stop_wait
        assert_eq "devstack exits 0" 0 "$STACK_STATUS"
        assert_eq "no process is left" "" "$(stack_processes "$r2")"
else
        not_ok "the second stack comes up"
fi

done_testing
