#!/usr/bin/env bash
# taskgroupd under a real systemd (PID 1 of private namespaces, booted by
# shared/tools/systemd-harness.sh on a throw-away overlay of /), installed by `cmake --install`.
#
# Usage: harness_test.sh TASKGROUPD TGCTL SOURCE_DIR BUILD_DIR CMAKE_COMMAND
#
# What goes into the instance is exactly what `cmake --install BUILD_DIR` installs, with
# DESTDIR = the instance's root: the built binaries at the configured prefix (ExecStart= as
# configured), the units in the configured unit dir, the sysusers.d entry. Nothing is edited
# or overridden; only /etc/taskgroupd/taskgroupd.toml is written, as an admin would, to make
# the drain short (drain_timeout 1s, kill_grace 2s).
#
# Proves: `systemd-sysusers` creates group taskgroupd; the socket unit alone listens on
# /run/taskgroupd/control.sock (0660 root:taskgroupd) and the first tgctl connection starts
# the service through it (Type=notify: active only after READY=1); the daemon logs to the
# journal through its own sink (sd_journal_sendv), and a task's lines carry the fields
# TASKGROUPD_TASK_ID, TASKGROUPD_GROUP, TASKGROUPD_UID and CODE_FILE/CODE_LINE, so
# `journalctl -u taskgroupd TASKGROUPD_TASK_ID=N` finds them (a group's own lines carry the
# group and uid); `systemctl reload` keeps MainPID and the running task; so does `tgctl reexec`
# (the socket systemd passed is handed over, and the re-executed daemon is the one that drains);
# `systemctl stop` drains (the task gets TERM from the daemon's drain and runs its trap) and
# ends with Result=success, exit 0, nothing left running, the socket still there; the task is
# recorded `interrupted`; the next tgctl connection starts the service again through the socket
# and the history is still there.
#
# Needs root (exit 77 = ctest "skipped" otherwise) and the harness at
# SOURCE_DIR/../shared/tools/systemd-harness.sh (or $TG_SYSTEMD_HARNESS).
set -euo pipefail

built_daemon=$(readlink -f "$1")
built_tgctl=$(readlink -f "$2")
src=$(readlink -f "$3")
build=$(readlink -f "$4")
cmake=$5
t0=$SECONDS

source "$(dirname "$0")/harness_setup.sh"
harness_setup harness_test "it boots systemd as PID 1 in private namespaces" "$src" 600 60

inside() { "$harness" exec "$@"; }            # a command in the instance, as root, cwd /
prop() { inside systemctl show -p "$2" --value "$1"; }
# wait_for SECONDS WHAT CMD...: polls CMD every 50 ms until it succeeds.
wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out after ${secs}s waiting for $what"
    sleep 0.05
  done
}
# journal_fields TASK_ID GROUP MESSAGE_PART...: exit 0 when, for each MESSAGE_PART, the journal
# holds a line of taskgroupd.service matched by `journalctl TASKGROUPD_TASK_ID=TASK_ID` whose
# MESSAGE contains it and whose fields name the task, its group and uid 0, and where it was
# logged; else says what it found in $tmp/why.
journal_fields() {
  local task_id=$1 group=$2; shift 2
  "$harness" journal taskgroupd.service "TASKGROUPD_TASK_ID=$task_id" -o json >"$tmp/task-journal.json" || return 1
  # Polled by wait_for: the reason goes to $tmp/why, which fail() prints.
  python3 - "$task_id" "$group" "$tmp/task-journal.json" "$@" 2>"$tmp/why" <<'EOF'
import json, sys
task_id, group, path, wanted = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
lines = [json.loads(l) for l in open(path) if l.strip()]
for part in wanted:
    hits = [j for j in lines if part in j.get("MESSAGE", "")]
    if not hits:
        sys.exit(f"no line with TASKGROUPD_TASK_ID={task_id} says '{part}': {[j.get('MESSAGE') for j in lines]}")
    j = hits[0]
    want = {"TASKGROUPD_TASK_ID": task_id, "TASKGROUPD_GROUP": group, "TASKGROUPD_UID": "0",
            "SYSLOG_IDENTIFIER": "taskgroupd", "_TRANSPORT": "journal"}
    bad = {k: j.get(k) for k, v in want.items() if j.get(k) != v}
    if bad or not j.get("CODE_FILE", "").endswith(".cpp") or not j.get("CODE_LINE", "").isdigit():
        sys.exit(f"'{j.get('MESSAGE')}': wrong or missing fields {bad}, CODE_FILE={j.get('CODE_FILE')} CODE_LINE={j.get('CODE_LINE')}")
EOF
}
json_task() {  # FIELD < `tgctl show ID --json`
  python3 -c 'import json, sys; v = json.load(sys.stdin)["task"][sys.argv[1]]; print("" if v is None else v)' "$1"
}

step "booting systemd"
"$harness" up 2>&1 | sed 's/^/  /'
root=$("$harness" path /); root=${root%/}

step "cmake --install $build with DESTDIR=<instance root>"
DESTDIR=$root "$cmake" --install "$build" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; fail "cmake --install failed"; }
installed() {  # the instance path of the installed file matching the pattern
  sed -n 's/^-- \(Installing\|Up-to-date\): //p' "$tmp/install.log" | sed "s|^$root||" | grep -E "$1" | head -n 1
}
unit=$(installed '/systemd/system/taskgroupd\.service$')
[[ -n $unit ]] || fail "cmake --install installed no system taskgroupd.service"
tgctl=$(installed '/bin/tgctl$')
exec_start=$(sed -n 's/^ExecStart=//p' "$root$unit")
[[ -x $root$exec_start ]] || fail "ExecStart=$exec_start of the installed unit is not an installed binary"
cmp -s "$root$exec_start" "$built_daemon" || fail "$exec_start is not the built $built_daemon"
cmp -s "$root$tgctl" "$built_tgctl" || fail "$tgctl is not the built $built_tgctl"
inside systemd-analyze unit-paths | grep -qx "$(dirname "$unit")" ||
  fail "units were installed in $(dirname "$unit"), which systemd does not search"
inside systemctl daemon-reload
tg() { inside "$tgctl" "$@"; }

step "systemd-sysusers (group taskgroupd), config, start taskgroupd.socket only"
inside systemd-sysusers >/dev/null
inside getent group taskgroupd >/dev/null || fail "systemd-sysusers did not create group taskgroupd"
mkdir -p "$root/etc/taskgroupd"
printf 'drain_timeout = "1s"\nkill_grace = "2s"\n' > "$root/etc/taskgroupd/taskgroupd.toml"
inside systemctl start taskgroupd.socket
sock=/run/taskgroupd/control.sock
read -r mode owner kind inode < <(inside stat -c '%a %U:%G %F %i' "$sock") || fail "no $sock"
[[ "$mode $owner $kind" == "660 root:taskgroupd socket" ]] ||
  fail "$sock is '$mode $owner $kind', expected '660 root:taskgroupd socket'"
[[ $(prop taskgroupd.service ActiveState) == inactive ]] || fail "the service started without a connection"

step "first tgctl connection starts the service through the socket"
status=$(tg status) || fail "tgctl status through $sock failed"
main_pid=$(prop taskgroupd.service MainPID)
[[ $(prop taskgroupd.service ActiveState) == active ]] || fail "taskgroupd.service is not active after tgctl status"
grep -Eq "^pid: +$main_pid\$" <<<"$status" || fail "tgctl status answered from a pid other than MainPID=$main_pid: $status"
status_text=$(prop taskgroupd.service StatusText)
[[ $status_text == *running*queued* ]] || fail "StatusText='$status_text', expected the STATUS= summary"
"$harness" journal taskgroupd.service -o json >"$tmp/journal.json"
python3 - "$main_pid" "$tmp/journal.json" <<'EOF' || fail "the daemon's log lines did not reach the journal through its journal sink"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
ours = [j for j in lines if j.get("_PID") == sys.argv[1]]
want = [j for j in ours if "listening on the socket systemd passed" in j.get("MESSAGE", "")]
if not want:
    sys.exit(f"no 'listening on the socket systemd passed' from pid {sys.argv[1]}: {[j.get('MESSAGE') for j in ours]}")
# _TRANSPORT=journal: sent with sd_journal_sendv (daemon/journal_sink.cpp), not written to stderr.
if want[0].get("_TRANSPORT") != "journal" or want[0].get("SYSLOG_IDENTIFIER") != "taskgroupd":
    sys.exit(f"logged via {want[0].get('_TRANSPORT')} as {want[0].get('SYSLOG_IDENTIFIER')}, not the journal sink")
EOF
echo "  MainPID=$main_pid StatusText='$status_text'"

step "a task's log lines carry its id, group and uid as journal fields"
quick=$(tg submit -g nightly -- true) || fail "tgctl submit -g nightly failed"
timeout 30 "$harness" exec "$tgctl" wait --task "$quick" >/dev/null || fail "task $quick did not succeed"
# journald files what the daemon sent in its own time: wait for it, with a bound.
wait_for 10 "task $quick's lines with its fields in the journal" \
  journal_fields "$quick" nightly "task $quick running" "task $quick succeeded"
"$harness" journal taskgroupd.service TASKGROUPD_GROUP=nightly -o json >"$tmp/group-journal.json"
python3 - "$tmp/group-journal.json" <<'EOF' || fail "the group's own lines lack their fields"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
sub = [j for j in lines if "task(s) submitted group='nightly'" in j.get("MESSAGE", "")]
if not sub:
    sys.exit(f"TASKGROUPD_GROUP=nightly matches no 'submitted' line: {[j.get('MESSAGE') for j in lines]}")
if sub[0].get("TASKGROUPD_UID") != "0" or "TASKGROUPD_TASK_ID" in sub[0]:
    sys.exit(f"the submit line has TASKGROUPD_UID={sub[0].get('TASKGROUPD_UID')} TASKGROUPD_TASK_ID={sub[0].get('TASKGROUPD_TASK_ID')}")
EOF
echo "  task $quick: running and succeeded lines have TASKGROUPD_TASK_ID=$quick TASKGROUPD_GROUP=nightly"

step "a task that cleans up on TERM"
id=$(tg submit --shell -- "trap 'echo cleaned > /tmp/tg-cleaned; exit 0' TERM; echo \$\$ > /tmp/tg-started; sleep 1000 & wait") ||
  fail "tgctl submit failed"
wait_for 10 "task $id to run its shell" test -s "$root/tmp/tg-started"
task_pid=$(tg show "$id" --json | json_task pid)
[[ $(tg show "$id" --json | json_task state) == running ]] || fail "task $id is not running"

step "systemctl reload: same MainPID, task undisturbed"
applied_before=$("$harness" journal taskgroupd.service | grep -c "config applied" || true)
inside systemctl reload taskgroupd.service || fail "systemctl reload failed"
"$harness" wait-state taskgroupd.service active 10 || fail "not active again after the reload"
[[ $(prop taskgroupd.service ReloadResult) == success ]] || fail "ReloadResult=$(prop taskgroupd.service ReloadResult)"
applied=$("$harness" journal taskgroupd.service | grep -c "config applied" || true)
((applied > applied_before)) || fail "the daemon never re-read its config on systemctl reload"
[[ $(prop taskgroupd.service MainPID) == "$main_pid" ]] || fail "MainPID changed across the reload"
shown=$(tg show "$id" --json)
[[ $(json_task state <<<"$shown") == running && $(json_task pid <<<"$shown") == "$task_pid" ]] ||
  fail "task $id was disturbed by the reload: $shown"
inside kill -0 "$task_pid" || fail "task $id's process $task_pid is gone after the reload"

step "tgctl reexec (an upgrade): same MainPID, still active, the task runs on"
out=$(tg reexec) || fail "tgctl reexec failed: $out"
[[ $out == *"re-executed: taskgroupd"*"pid $main_pid,"* ]] || fail "tgctl reexec said: $out"
"$harness" wait-state taskgroupd.service active 10 || fail "not active again after the re-exec"
[[ $(prop taskgroupd.service MainPID) == "$main_pid" ]] || fail "MainPID changed across the re-exec"
[[ $(prop taskgroupd.service NRestarts) == 0 ]] || fail "systemd restarted the service"
"$harness" journal taskgroupd.service | grep -q "ready: .*(re-executed)" ||
  fail "the daemon never said it was ready after the re-exec"
shown=$(tg show "$id" --json)
[[ $(json_task state <<<"$shown") == running && $(json_task pid <<<"$shown") == "$task_pid" ]] ||
  fail "task $id was disturbed by the re-exec: $shown"
inside kill -0 "$task_pid" || fail "task $id's process $task_pid is gone after the re-exec"

step "systemctl stop: drain, Result=success"
t_stop=$SECONDS
timeout 60 "$harness" ctl stop taskgroupd.service || fail "systemctl stop failed"
echo "  stop took $((SECONDS - t_stop))s"
for p in ActiveState=inactive Result=success ExecMainCode=1 ExecMainStatus=0; do
  got=$(prop taskgroupd.service "${p%%=*}")
  [[ $got == "${p#*=}" ]] || fail "after systemctl stop: ${p%%=*}=$got, expected ${p#*=}"
done
[[ $(cat "$root/tmp/tg-cleaned" 2>/dev/null) == cleaned ]] || fail "task $id never ran its TERM trap"
"$harness" journal taskgroupd.service | grep -q "drain timeout: stopping 1 running task" ||
  fail "the task was not stopped by the daemon's drain"
wait_for 10 "task $id's drain lines with its fields in the journal" \
  journal_fields "$id" default "task $id stopping with signal" "task $id interrupted"
! inside pgrep -f "sleep 1000" >/dev/null || fail "a process of task $id is still running after stop"
[[ $(prop taskgroupd.socket ActiveState) == active ]] || fail "taskgroupd.socket is not active after the service stopped"
[[ $(inside stat -c %i "$sock") == "$inode" ]] || fail "$sock was removed or replaced"

step "the next connection starts the service again; the history is there"
shown=$(tg show "$id" --json) || fail "tgctl show through the socket failed after the stop"
state=$(json_task state <<<"$shown")
reason=$(json_task reason <<<"$shown")
[[ $state == interrupted && $reason == *drain* ]] ||
  fail "task $id is '$state' ($reason) after the drain, expected interrupted by the drain timeout"
new_pid=$(prop taskgroupd.service MainPID)
[[ $(prop taskgroupd.service ActiveState) == active && $new_pid != 0 && $new_pid != "$main_pid" ]] ||
  fail "the service was not started again through the socket (MainPID=$new_pid)"
echo "  task $id: $state ($reason); MainPID $main_pid -> $new_pid"
inside systemctl stop taskgroupd.service taskgroupd.socket
echo "PASS: harness_test ($((SECONDS - t0))s)"
