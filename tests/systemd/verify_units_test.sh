#!/usr/bin/env bash
# The shipped units, as `cmake --install` installs them, pass `systemd-analyze verify` with no
# output at all (no warnings), and point at what was installed.
#
# Usage: verify_units_test.sh TASKGROUPD SOURCE_DIR BUILD_DIR CMAKE_COMMAND
#
# How, honestly: `DESTDIR=TMP cmake --install BUILD_DIR` installs exactly what a user gets, with
# the configure-time paths inside (ExecStart=<prefix>/sbin/taskgroupd, Documentation=file:...).
# Those paths are checked against the DESTDIR tree: ExecStart names the installed (built) daemon,
# Documentation names an installed file. systemd-analyze verify then runs on copies of the
# installed units in which the one thing that cannot exist on this host, the ExecStart path,
# is prefixed with TMP (so verify checks that real, executable binary); every other byte is the
# installed unit's. (`verify --root=TMP` is no substitute: TMP has no sysinit.target or
# /bin/kill, so it warns about the root, not the units.) System units verify in the system
# scope, user units with --user. The sysusers.d entry is applied by systemd-sysusers to an empty
# root and must create group taskgroupd.
# Exit 77 (ctest: skipped) only if systemd-analyze is not installed.
set -euo pipefail

built_daemon=$(readlink -f "$1")
src=$(readlink -f "$2")
build=$(readlink -f "$3")
cmake=$4
t0=$SECONDS

if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze not found (Debian package: systemd)"
  exit 77
fi

tmp=$(mktemp -d /tmp/tg-verify.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
fail() { echo "FAIL: $*"; exit 1; }

dest=$tmp/dest
DESTDIR=$dest "$cmake" --install "$build" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; fail "cmake --install failed"; }
installed() {  # the installed path (without DESTDIR) matching the pattern
  sed -n 's/^-- \(Installing\|Up-to-date\): //p' "$tmp/install.log" | sed "s|^$dest||" | grep -E "$1" | head -n 1
}

# check_paths UNIT: ExecStart= is the installed daemon, Documentation= an installed file.
check_paths() {
  local exec_start doc
  exec_start=$(sed -n 's/^ExecStart=//p' "$dest$1")
  [[ -n $exec_start && $exec_start != *@* ]] || fail "$1: ExecStart='$exec_start' was not configured"
  [[ -x $dest$exec_start ]] || fail "$1: ExecStart=$exec_start is not where cmake --install put taskgroupd"
  cmp -s "$dest$exec_start" "$built_daemon" || fail "$1: $exec_start is not the built taskgroupd"
  doc=$(sed -n 's/^Documentation=.*file:\([^ ]*\).*/\1/p' "$dest$1")
  if [[ -n $doc ]]; then [[ -f $dest$doc ]] || fail "$1: Documentation=file:$doc is not installed"; fi
  [[ $(grep -c '^ExecStart=' "$dest$1") == 1 ]] || fail "$1: more than one ExecStart="
}

# verify_units DIR [--user] UNIT...: copies into DIR, prefixes ExecStart, verifies.
verify_units() {
  local dir=$1; shift
  local scope=()
  if [[ $1 == --user ]]; then scope=(--user); shift; fi
  mkdir -p "$dir"
  local u files=()
  for u in "$@"; do
    cp "$dest$u" "$dir/"
    files+=("$dir/$(basename "$u")")
  done
  sed -i "s|^ExecStart=/|ExecStart=$dest/|" "$dir"/*.service
  local out rc=0
  # --user needs a runtime dir for its manager; a private one, so the host's is never touched.
  mkdir -p -m 0700 "$tmp/xdg-runtime"
  # MANPATH: verify looks up Documentation=man:... pages, which must be the installed ones.
  out=$(cd / && XDG_RUNTIME_DIR=$tmp/xdg-runtime SYSTEMD_LOG_COLOR=0 MANPATH=$man_path \
        timeout 60 systemd-analyze "${scope[@]}" verify "${files[@]}" 2>&1) || rc=$?
  if ((rc != 0)) || [[ -n $out ]]; then
    fail "systemd-analyze ${scope[*]} verify $(basename -a "${files[@]}" | tr '\n' ' ')(rc=$rc) said:"$'\n'"$out"
  fi
  echo "systemd-analyze${scope[*]:+ ${scope[*]}} verify: $(basename -a "${files[@]}" | tr '\n' ' ')clean"
}

man_page=$(installed '/man8/taskgroupd\.8$')
[[ -n $man_page ]] || fail "cmake --install did not install the man page taskgroupd(8)"
man_path=$dest${man_page%/man8/taskgroupd.8}
service=$(installed '/systemd/system/taskgroupd\.service$')
socket=$(installed '/systemd/system/taskgroupd\.socket$')
user_service=$(installed '/systemd/user/taskgroupd\.service$')
user_socket=$(installed '/systemd/user/taskgroupd\.socket$')
sysusers=$(installed '/sysusers\.d/taskgroupd\.conf$')
for f in service socket user_service user_socket sysusers; do
  [[ -n ${!f} ]] || fail "cmake --install did not install the $f file"
done
check_paths "$service"
check_paths "$user_service"
cmp -s "$dest$socket" "$src/systemd/taskgroupd.socket" || fail "installed $socket differs from the source"
cmp -s "$dest$user_socket" "$src/systemd/user/taskgroupd.socket" || fail "installed $user_socket differs from the source"

# The directives the stop, reload and watchdog semantics rest on (docs/systemd.md).
directive() { sed -n "s/^$2=//p" "$dest$1" | tail -n 1; }
seconds() {  # "60s", "2min", "90" -> seconds
  local v=$1
  case $v in
    *min) echo $((${v%min} * 60)) ;;
    *s) echo "${v%s}" ;;
    *) echo "$v" ;;
  esac
}
for unit in "$service" "$user_service"; do
  [[ $(directive "$unit" Type) == notify ]] || fail "$unit: Type= is not notify"
  [[ $(directive "$unit" KillMode) == mixed ]] || fail "$unit: KillMode= is not mixed (systemd would race the drain)"
  [[ $(directive "$unit" ExecReload) == *'kill -HUP $MAINPID'* ]] || fail "$unit: ExecReload= does not send SIGHUP"
  [[ -n $(directive "$unit" WatchdogSec) ]] || fail "$unit: no WatchdogSec="
  # Longer than the daemon's default drain_timeout (30 s) plus kill_grace (10 s): systemd must
  # not SIGKILL a drain that is going by the book.
  stop=$(seconds "$(directive "$unit" TimeoutStopSec)")
  ((stop > 40)) || fail "$unit: TimeoutStopSec=${stop}s is not longer than drain_timeout + kill_grace (40 s)"
done
[[ $(directive "$service" StateDirectory) == taskgroupd ]] || fail "$service: no StateDirectory=taskgroupd"
[[ $(directive "$service" RuntimeDirectory) == taskgroupd ]] || fail "$service: no RuntimeDirectory=taskgroupd"
[[ -z $(directive "$service" ProtectClock) ]] || fail "$service: ProtectClock= closes devices to tasks"
[[ $(directive "$socket" ListenStream) == /run/taskgroupd/control.sock ]] || fail "$socket: ListenStream="
[[ $(directive "$socket" SocketMode) == 0660 ]] || fail "$socket: SocketMode= is not 0660"
[[ $(directive "$socket" SocketGroup) == taskgroupd ]] || fail "$socket: SocketGroup= is not taskgroupd"
echo "directives: Type=notify, KillMode=mixed, ExecReload, WatchdogSec, TimeoutStopSec > 40 s, socket 0660 group taskgroupd"

verify_units "$tmp/system" "$socket" "$service"
verify_units "$tmp/user" --user "$user_socket" "$user_service"

mkdir -p "$tmp/sysroot/etc"
systemd-sysusers --root="$tmp/sysroot" "$dest$sysusers" >"$tmp/sysusers.log" 2>&1 ||
  { cat "$tmp/sysusers.log"; fail "systemd-sysusers rejected $sysusers"; }
grep -q '^taskgroupd:' "$tmp/sysroot/etc/group" || fail "$sysusers did not create group taskgroupd"
echo "systemd-sysusers: $sysusers creates group taskgroupd"
echo "PASS: verify_units_test ($((SECONDS - t0))s)"
