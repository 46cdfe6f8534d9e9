#!/usr/bin/env bash
# Issue 14 under a real systemd (PID 1 of private namespaces, booted by
# shared/tools/systemd-harness.sh), with the shipped unit as `cmake --install` installs it
# (Delegate=yes): every task runs in a cgroup of its own.
#
# Usage: cgroup_harness_test.sh TASKGROUPD TGCTL SOURCE_DIR BUILD_DIR CMAKE_COMMAND
#
# Proves: `tgctl status` says `isolation: cgroups`, and the daemon has moved itself into the leaf
# `daemon` of its service's cgroup; a task's `setsid` child and a daemon that double-forks out of
# its session run in the task's cgroup `task-ID`; a group cancel leaves no process of either
# (checked through /proc inside the instance, not through the daemon) and removes the cgroups;
# after `kill -9` of the daemon with such tasks running, systemd restarts it, and then none of
# their processes is left, the tasks are recorded `lost`, and no task cgroup remains.
#
# Needs root (exit 77 = ctest "skipped" otherwise) and the harness at
# SOURCE_DIR/../shared/tools/systemd-harness.sh (or $TG_SYSTEMD_HARNESS).
set -euo pipefail

built_daemon=$(readlink -f "$1")
src=$(readlink -f "$3")
build=$(readlink -f "$4")
cmake=$5
t0=$SECONDS

source "$(dirname "$0")/harness_setup.sh"
harness_setup cgroup_harness_test "it boots systemd as PID 1 in private namespaces" "$src" 600 60

inside() { "$harness" exec "$@"; }  # a command in the instance, as root, cwd /
prop() { inside systemctl show -p "$2" --value "$1"; }
wait_for() {  # SECONDS WHAT CMD...: polls CMD every 50 ms until it succeeds.
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out after ${secs}s waiting for $what"
    sleep 0.05
  done
}
# alive PID: the process exists in the instance and is not a zombie (read from its /proc).
alive() {
  local stat
  stat=$(inside cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}
# A task leaving a `setsid` child and a double-forked daemon; each writes its pid to
# /tmp/esc/NAME-ID.pid, in the instance.
escaping='I=$TASKGROUPD_TASK_ID; setsid sh -c '"'"'echo $$ > "$0"; exec sleep 1000'"'"' /tmp/esc/setsid-$I.pid & ( setsid sh -c '"'"'echo $$ > "$0"; exec sleep 1000'"'"' /tmp/esc/daemon-$I.pid & ) ; exec sleep 1000'
escapes_of() {  # ID: both pids, once written
  local f1=$root/tmp/esc/setsid-$1.pid f2=$root/tmp/esc/daemon-$1.pid
  wait_for 15 "task $1's escapes" test -s "$f1" -a -s "$f2"
  echo "$(cat "$f1") $(cat "$f2")"
}

step "booting systemd"
"$harness" up 2>&1 | sed 's/^/  /'
root=$("$harness" path /); root=${root%/}
DESTDIR=$root "$cmake" --install "$build" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; fail "cmake --install failed"; }
tgctl=$(sed -n 's/^-- \(Installing\|Up-to-date\): //p' "$tmp/install.log" | sed "s|^$root||" |
  grep -E '/bin/tgctl$' | head -n 1)
unit=$(sed -n 's/^-- \(Installing\|Up-to-date\): //p' "$tmp/install.log" | sed "s|^$root||" |
  grep -E '/systemd/system/taskgroupd\.service$' | head -n 1)
grep -qx 'Delegate=yes' "$root$unit" || fail "the installed unit has no Delegate=yes"
inside systemctl daemon-reload
inside systemd-sysusers >/dev/null
mkdir -p "$root/etc/taskgroupd" "$root/tmp/esc"
printf 'drain_timeout = "1s"\nkill_grace = "2s"\n' > "$root/etc/taskgroupd/taskgroupd.toml"
inside systemctl start taskgroupd.socket
tg() { inside "$tgctl" "$@"; }

step "status says cgroups; the daemon sits in the leaf 'daemon' of its delegated cgroup"
status=$(tg status) || fail "tgctl status failed"
grep -Eq '^isolation: +cgroups$' <<<"$status" || fail "status does not say 'isolation: cgroups': $status"
main_pid=$(prop taskgroupd.service MainPID)
cg=$(inside grep '^0::' "/proc/$main_pid/cgroup")  # The cgroup2 line (v1 lines may be there too).
[[ $cg == *"/taskgroupd.service/daemon" ]] || fail "the daemon's cgroup is '$cg'"
service_cg_in=/sys/fs/cgroup${cg#0::}
service_cg_in=${service_cg_in%/daemon}  # Inside the instance (pids in cgroup.procs are its own).
service_cg=$root$service_cg_in          # The same directory, seen from here.

step "a group cancel leaves no process of a setsid child or a double-forked daemon"
a=$(tg submit -g g --shell -- "$escaping") || fail "submit failed"
b=$(tg submit -g g --shell -- "$escaping") || fail "submit failed"
read -r -a pids <<<"$(escapes_of "$a") $(escapes_of "$b")"
for p in "${pids[@]}"; do alive "$p" || fail "escape $p is not running"; done
inside grep -qx "${pids[0]}" "$service_cg_in/task-$a/cgroup.procs" ||
  fail "the setsid child ${pids[0]} is not in task-$a's cgroup"
tg cancel g --grace 5s >/dev/null || fail "tgctl cancel failed"
timeout 30 "$harness" exec "$tgctl" wait g >/dev/null && fail "tgctl wait g says the cancelled tasks succeeded"
for p in "${pids[@]}"; do alive "$p" && fail "process $p of a cancelled task is still alive"; done
[[ $(tg show "$a" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["task"]["state"])') == cancelled ]] ||
  fail "task $a is not cancelled"
compgen -G "$service_cg/task-*" >/dev/null && fail "task cgroups left after the cancel: $(ls "$service_cg")"

step "kill -9 of the daemon with such tasks running, then systemd's restart"
c=$(tg submit -g c --shell -- "$escaping") || fail "submit failed"
read -r -a pids <<<"$(escapes_of "$c")"
inside kill -9 "$main_pid"
restarted() {
  local p
  p=$(prop taskgroupd.service MainPID)
  [[ $p =~ ^[1-9][0-9]*$ && $p != "$main_pid" ]]
}
wait_for 30 "systemd to restart taskgroupd" restarted
status=$(tg status) || fail "tgctl status after the restart failed"
grep -Eq '^isolation: +cgroups$' <<<"$status" || fail "status after the restart: $status"
for p in "${pids[@]}"; do alive "$p" && fail "process $p of the crashed task survived the restart"; done
state=$(tg show "$c" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["task"]["state"])')
[[ $state == lost ]] || fail "task $c is '$state' after the restart, not lost"
compgen -G "$service_cg/task-*" >/dev/null && fail "task cgroups left after the restart: $(ls "$service_cg")"
step "ok"
