#!/usr/bin/env bash
# Socket activation without systemd as PID 1: `systemd-socket-activate -l PATH taskgroupd ...`
# binds and listens on PATH, and on the first connection execs the daemon in its own process
# with that socket as fd 3 (LISTEN_FDS=1, LISTEN_PID = its pid).
#
# Usage: socket_activate_test.sh TASKGROUPD TGCTL
#
# Proves: the daemon starts on the first tgctl connection, serves tgctl over the passed socket
# (status, submit, wait, logs), says it uses the passed socket, never binds or removes a socket
# file of its own (PATH keeps its inode through the daemon's whole life and after its exit), and
# exits 0 on SIGTERM. Exit 77 (ctest: skipped) only if systemd-socket-activate is not installed.
set -euo pipefail

daemon=$(readlink -f "$1")
tgctl=$(readlink -f "$2")
t0=$SECONDS

activate=$(command -v systemd-socket-activate || true)
[[ -n $activate ]] || { [[ -x /lib/systemd/systemd-socket-activate ]] && activate=/lib/systemd/systemd-socket-activate; }
if [[ -z $activate ]]; then
  echo "SKIP: systemd-socket-activate not found (Debian package: systemd)"
  exit 77
fi
activate=$(readlink -f "$activate")

tmp=$(mktemp -d /tmp/tg-sa.XXXXXX)
sock=$tmp/control.sock
pid=""
cleanup() {
  local rc=$?
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [[ -s $tmp/task.pid ]]; then kill -KILL "$(cat "$tmp/task.pid")" 2>/dev/null || true; fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
  echo "FAIL: $*"
  if [[ -f $tmp/daemon.log ]]; then echo "--- daemon log"; tail -n 40 "$tmp/daemon.log"; echo "---"; fi
  exit 1
}
# wait_for SECONDS WHAT CMD...: polls CMD every 20 ms until it succeeds.
wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out after ${secs}s waiting for $what"
    sleep 0.02
  done
}

printf 'drain_timeout = "1s"\nkill_grace = "2s"\n' > "$tmp/taskgroupd.toml"
# --socket names the same path on purpose: a daemon that ignored LISTEN_FDS would bind it
# itself (or refuse, finding it taken) and the inode/log checks below would catch it.
"$activate" -l "$sock" -- "$daemon" --socket "$sock" --state-dir "$tmp/state" \
  --config "$tmp/taskgroupd.toml" >"$tmp/daemon.log" 2>&1 </dev/null &
pid=$!
wait_for 10 "systemd-socket-activate to listen on $sock" test -S "$sock"
inode=$(stat -c %i "$sock")
[[ $(readlink "/proc/$pid/exe") == "$activate" ]] ||
  fail "the daemon started before any connection (pid $pid is $(readlink "/proc/$pid/exe"))"

# The first connection starts the daemon; tgctl's connect waits in the backlog meanwhile.
out=$(timeout 20 "$tgctl" --socket "$sock" status) || fail "tgctl status over the passed socket failed (rc=$?)"
[[ $(readlink "/proc/$pid/exe") == "$daemon" ]] || fail "pid $pid is not taskgroupd after the first connection"
grep -q "listening on the socket systemd passed (fd 3)" "$tmp/daemon.log" ||
  fail "the daemon did not say it uses the passed socket"
echo "first connection started taskgroupd (pid $pid); tgctl status:"
echo "$out" | sed 's/^/  /'

id=$(timeout 10 "$tgctl" --socket "$sock" submit -- echo activated) || fail "submit failed"
timeout 20 "$tgctl" --socket "$sock" wait --task "$id" >/dev/null || fail "tgctl wait --task $id failed"
log=$(timeout 10 "$tgctl" --socket "$sock" logs "$id") || fail "tgctl logs $id failed"
[[ $log == activated ]] || fail "task $id printed '$log', expected 'activated'"

# A task running at SIGTERM: the daemon drains it, then exits 0 (systemd-socket-activate exec'd
# into the daemon, so $pid is the daemon and `wait` reports its exit status).
id=$(timeout 10 "$tgctl" --socket "$sock" submit --shell -- "echo \$\$ > $tmp/task.pid; exec sleep 30") ||
  fail "submit of the long task failed"
wait_for 10 "task $id to start" test -s "$tmp/task.pid"
[[ $(stat -c %i "$sock") == "$inode" ]] || fail "$sock was replaced while the daemon ran"
kill -TERM "$pid"
deadline=$((SECONDS + 15))
while kill -0 "$pid" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; do
  ((SECONDS < deadline)) || fail "the daemon did not exit within 15s of SIGTERM"
  sleep 0.02
done
rc=0; wait "$pid" || rc=$?
pid=""
((rc == 0)) || fail "the daemon exited $rc after SIGTERM, not 0"

# The socket file belongs to whoever passed it: still there, same inode.
[[ -S $sock ]] || fail "$sock is gone after the daemon exited: the daemon removed a socket it did not create"
[[ $(stat -c %i "$sock") == "$inode" ]] || fail "$sock has a new inode: the daemon re-created it"
! grep -Eq "listening on '|replaced stale socket" "$tmp/daemon.log" ||
  fail "the daemon bound a socket of its own despite LISTEN_FDS"
echo "PASS: socket_activate_test ($((SECONDS - t0))s)"
