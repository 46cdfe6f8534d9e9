#!/usr/bin/env bash
# The Debian package (scripts/package.sh), installed with apt-get under a real systemd (PID 1
# of private namespaces, booted by shared/tools/systemd-harness.sh on a throw-away overlay of /).
#
# Usage: package_test.sh SOURCE_DIR
#
# Runs scripts/package.sh, which builds build/package ($TG_PACKAGE_DIR) incrementally (nothing
# to do when scripts/test.sh built it just before) and packages the working tree. The upgrade
# is tested with two "older" packages made from the same build with older version strings
# (scripts/package.sh --version: the previous commit's version, and one below it): their
# binaries are this tree's. What changes across the upgrade is what dpkg and the maintainer
# scripts do, which is what is tested.
#
# Proves, of the .deb: its name is taskgroupd_<version of HEAD>_<arch>.deb; lintian reports no
# error; it holds every file `cmake --install` installs (man pages gzipped), plus copyright,
# changelog.gz and the conffile /etc/taskgroupd/taskgroupd.toml, every line of it a comment;
# Depends: names the package of every shared library the binaries need (dpkg-shlibdeps).
# Inside the instance: `apt-get install ./taskgroupd_*.deb` creates group taskgroupd, enables
# and starts taskgroupd.socket only; a non-root member of the group submits, lists and cancels
# through socket activation, and a non-member is refused; `systemctl stop taskgroupd` drains
# (the stop waits for the running task, which succeeds); an upgrade with a task running
# re-executes the daemon (same MainPID, the task runs on, queued tasks stay queued, the admin's
# edited conffile is kept); an upgrade with nothing running restarts it (a new MainPID, the
# queued tasks still queued, and they run once resumed); `apt-get remove` stops the socket, the
# service and every task; `apt-get purge` leaves no unit file or symlink, no process of the
# user, no /var/lib/taskgroupd, /etc/taskgroupd or /run/taskgroupd.
#
# Needs root (exit 77 = ctest "skipped" otherwise) and the harness at
# SOURCE_DIR/../shared/tools/systemd-harness.sh (or $TG_SYSTEMD_HARNESS).
set -euo pipefail

src=$(readlink -f "$1")
t0=$SECONDS

source "$(dirname "$0")/harness_setup.sh"
harness_setup package_test "apt-get inside a systemd booted as PID 1" "$src" 900 120

# wait_for SECONDS WHAT CMD...: polls CMD every 50 ms until it succeeds.
wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out after ${secs}s waiting for $what"
    sleep 0.05
  done
}

# ---------------------------------------------------------------- the .deb itself
step "scripts/package.sh (incremental build of build/package, then cpack)"
package() { (cd "$src" && scripts/package.sh "$@" 2>>"$tmp/package.log" | tail -n 1); }
deb=$(package) || { cat "$tmp/package.log"; fail "scripts/package.sh failed"; }
version=$(cd "$src" && scripts/package.sh --print-version)
arch=$(dpkg --print-architecture)
[[ $(basename "$deb") == "taskgroupd_${version}_${arch}.deb" ]] ||
  fail "the package is $deb, expected taskgroupd_${version}_${arch}.deb"
[[ $(dpkg-deb -f "$deb" Version) == "$version" ]] || fail "Version: $(dpkg-deb -f "$deb" Version)"
# Older versions for the upgrade: the previous commit's (if the clone has it), and one below.
prev=$(cd "$src" && scripts/package.sh --print-version HEAD^ 2>/dev/null) || prev="$version~prev"
older="$prev~older"
dpkg --compare-versions "$older" lt "$prev" && dpkg --compare-versions "$prev" lt "$version" ||
  fail "versions do not increase: $older, $prev, $version"
deb_prev=$(package --version "$prev" --out "$tmp/prev") || fail "packaging as $prev failed"
deb_older=$(package --version "$older" --out "$tmp/older") || fail "packaging as $older failed"
echo "  $deb; upgrade path: $older -> $prev -> $version"

step "lintian: no error"
# Exit 0: no tag of severity error; 1: some; 2: lintian itself failed.
rc=0
lintian --fail-on error --display-info "$deb" >"$tmp/lintian.log" 2>&1 || rc=$?
sed 's/^/  /' "$tmp/lintian.log"
((rc == 0)) && ! grep -q '^E: ' "$tmp/lintian.log" || fail "lintian exited $rc (errors above)"

step "the .deb holds what cmake --install installs, and the package's own files"
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|; s|/$||' | sort >"$tmp/deb.files"
build=$(dirname "$deb")
DESTDIR=$tmp/dest cmake --install "$build" >"$tmp/why" 2>&1 || fail "cmake --install $build failed"
(cd "$tmp/dest" && find . -type f -o -type l) | sed 's|^\.||' |
  sed -E 's|^(/usr/share/man/.*\.[1-9])$|\1.gz|' | sort >"$tmp/installed.files"
missing=$(comm -23 "$tmp/installed.files" "$tmp/deb.files")
[[ -z $missing ]] || fail "cmake --install installs files the .deb lacks: $missing"
for f in /usr/sbin/taskgroupd /usr/bin/tgctl /usr/lib/systemd/system/taskgroupd.service \
  /usr/lib/systemd/system/taskgroupd.socket /usr/lib/systemd/user/taskgroupd.service \
  /usr/lib/systemd/user/taskgroupd.socket /usr/lib/sysusers.d/taskgroupd.conf \
  /usr/share/bash-completion/completions/tgctl /usr/share/zsh/vendor-completions/_tgctl \
  /usr/share/fish/vendor_completions.d/tgctl.fish /usr/share/doc/taskgroupd/README.md \
  /usr/share/doc/taskgroupd/usage.md /usr/share/doc/taskgroupd/systemd.md \
  /usr/share/doc/taskgroupd/copyright /usr/share/doc/taskgroupd/changelog.gz \
  /etc/taskgroupd/taskgroupd.toml; do
  grep -qx "$f" "$tmp/deb.files" || fail "the .deb has no $f"
done
if ls "$tmp"/dest/usr/share/man/man*/* >/dev/null 2>&1; then
  echo "  man pages: $(grep '^/usr/share/man/.*\.gz$' "$tmp/deb.files" | xargs -n1 basename | tr '\n' ' ')"
else
  echo "  man pages: none installed by cmake --install yet"
fi
[[ $(dpkg-deb -I "$deb" conffiles) == /etc/taskgroupd/taskgroupd.toml ]] ||
  fail "conffiles is '$(dpkg-deb -I "$deb" conffiles)'"
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./etc/taskgroupd/taskgroupd.toml >"$tmp/example.toml"
[[ -s $tmp/example.toml ]] || fail "the example config is empty"
! grep -nvE '^(#.*)?$' "$tmp/example.toml" || fail "the example config has lines that are not comments (above)"
depends=$(dpkg-deb -f "$deb" Depends)
echo "  Depends: $depends"
ldconfig -p >"$tmp/ldconfig"  # Built here, for this architecture: its libraries are ours.
for bin in usr/sbin/taskgroupd usr/bin/tgctl; do
  for lib in $(readelf -d "$tmp/dest/$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    path=$(awk -v l="$lib" '$1 == l {print $NF}' "$tmp/ldconfig" | head -n 1)
    owner=
    real=$(readlink -f "$path")
    # dpkg knows a file by the path its package ships it at: /lib or /usr/lib (merged /usr).
    for p in "$path" "/usr${path#/usr}" "${path#/usr}" "$real" "/usr${real#/usr}" "${real#/usr}"; do
      owner=$(dpkg -S "$p" 2>/dev/null | sed -n '1s/[:,].*//p') || true
      [[ -z $owner ]] || break
    done
    [[ -n $owner ]] || fail "no Debian package owns $lib ($path), needed by $bin"
    # The owner itself, or a name it provides (libspdlog1.10 provides libspdlog1.10-fmt9).
    names=$(printf '%s, %s' "$owner" "$(dpkg-query -W -f '${Provides}' "$owner")" | sed 's/ ([^)]*)//g')
    [[ -n $(comm -12 <(tr ',' '\n' <<<"$names" | tr -d ' ' | sort -u) \
      <(sed 's/ ([^)]*)//g' <<<"$depends" | tr ',|' '\n\n' | tr -d ' ' | sort -u)) ]] ||
      fail "Depends: lacks $owner (or what it provides), for $lib of $bin"
  done
done

# ---------------------------------------------------------------- inside a real systemd
step "booting systemd"
"$harness" up 2>&1 | sed 's/^/  /'
root=$("$harness" path /); root=${root%/}
inside() { "$harness" exec "$@"; }
prop() { inside systemctl show -p "$2" --value "$1"; }
has_state() { [[ $(prop "$1" ActiveState) == "$2" ]]; }
# This host is a container image whose policy-rc.d forbids starting services (exit 101), as
# Docker's do; a machine has none. Removed in the instance's throw-away root only.
rm -f "$root/usr/sbin/policy-rc.d"
mkdir -p "$root/tmp/debs/new" "$root/tmp/debs/prev" "$root/tmp/debs/older"
cp "$deb" "$root/tmp/debs/new/"
cp "$deb_prev" "$root/tmp/debs/prev/"
cp "$deb_older" "$root/tmp/debs/older/"
apt() {  # apt-get ARGS... in the instance, in /tmp/debs/$1; its output to $tmp/apt.log
  local dir=$1; shift
  inside "${clean_env[@]}" DEBIAN_FRONTEND=noninteractive sh -c "cd /tmp/debs/$dir && apt-get -y -q $*" \
    >"$tmp/apt.log" 2>&1 || { cp "$tmp/apt.log" "$tmp/why"; return 1; }
  sed -n 's/^\(taskgroupd: .*\)/  \1/p' "$tmp/apt.log"
}
user=tgpkg
clean_env=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/ LANG=C.UTF-8)
as_user() { inside setpriv --reuid="$user" --regid=users --init-groups "${clean_env[@]}" tgctl "$@"; }
json_task() {  # FIELD < `tgctl show ID --json`
  python3 -c 'import json, sys; v = json.load(sys.stdin)["task"][sys.argv[1]]; print("" if v is None else v)' "$1"
}
state_of() { as_user show "$1" --json | json_task state; }
is_state() { [[ $(state_of "$1") == "$2" ]]; }
no_unit_files() {
  local left
  left=$(inside find /etc/systemd /lib/systemd /usr/lib/systemd -name 'taskgroupd*' 2>/dev/null)
  [[ -z $left ]] || { echo "unit files or links left: $left" >"$tmp/why"; return 1; }
}

step "apt-get install ./taskgroupd_${version}_${arch}.deb"
apt new install "./taskgroupd_*.deb" || fail "apt-get install of the package failed"
inside getent group taskgroupd >/dev/null || fail "the install created no group taskgroupd"
[[ $(inside systemctl is-enabled taskgroupd.socket) == enabled ]] || fail "taskgroupd.socket is not enabled"
[[ $(prop taskgroupd.socket ActiveState) == active ]] || fail "taskgroupd.socket is not active"
[[ $(prop taskgroupd.service ActiveState) == inactive ]] || fail "the service started without a connection"
[[ $(inside stat -c '%a %U:%G %F' /run/taskgroupd/control.sock) == "660 root:taskgroupd socket" ]] ||
  fail "the socket is $(inside stat -c '%a %U:%G %F' /run/taskgroupd/control.sock)"

step "a non-root member of group taskgroupd submits, lists and cancels (socket activation)"
inside useradd -M -N -s /usr/sbin/nologin -G taskgroupd "$user"
inside useradd -M -N -s /usr/sbin/nologin tgpkg_out
id=$(as_user submit -- sleep 1000) || fail "tgctl submit as $user failed"
[[ $(prop taskgroupd.service ActiveState) == active ]] || fail "the submit did not start the service"
wait_for 10 "task $id to run" is_state "$id" running
as_user list >"$tmp/why" || fail "tgctl list as $user failed"
grep -Eq "^ *$id +default +running " "$tmp/why" || fail "tgctl list does not show task $id running"
pid=$(as_user show "$id" --json | json_task pid)
[[ $(inside ps -o user= -p "$pid") == "$user" ]] || fail "task $id (pid $pid) does not run as $user"
as_user cancel --task "$id" --wait >/dev/null || true  # Exits 1: the task did not succeed.
is_state "$id" cancelled || fail "task $id is $(state_of "$id") after tgctl cancel"
! inside setpriv --reuid=tgpkg_out --regid=users --clear-groups "${clean_env[@]}" tgctl status >"$tmp/why" 2>&1 ||
  fail "a user outside group taskgroupd reached the daemon"

step "systemctl stop taskgroupd drains: the stop waits for the running task"
id=$(as_user submit --shell -- 'while [ ! -e /tmp/go ]; do sleep 0.05; done') || fail "submit failed"
wait_for 10 "task $id to run" is_state "$id" running
inside systemctl stop taskgroupd.service &
stopper=$!
wait_for 10 "the service to start draining" has_state taskgroupd.service deactivating
touch "$root/tmp/go"
wait "$stopper" || fail "systemctl stop failed"
[[ $(prop taskgroupd.service Result) == success ]] || fail "Result=$(prop taskgroupd.service Result)"
[[ $(prop taskgroupd.socket ActiveState) == active ]] || fail "the socket is not active after the stop"
is_state "$id" succeeded || fail "task $id is $(state_of "$id") after the drain, expected succeeded"

step "apt-get remove stops the socket, the service and every task"
# The admin's edit of the conffile: a short drain, so that the remove stops the task quickly.
printf 'drain_timeout = "1s"\nkill_grace = "2s"\n' >>"$root/etc/taskgroupd/taskgroupd.toml"
inside systemctl restart taskgroupd.service
id=$(as_user submit -- sleep 1000) || fail "submit failed"
wait_for 10 "task $id to run" is_state "$id" running
apt new remove taskgroupd || fail "apt-get remove failed"
for u in taskgroupd.socket taskgroupd.service; do
  [[ $(prop $u ActiveState) == inactive ]] || fail "$u is $(prop $u ActiveState) after the remove"
done
! inside pgrep -u "$user" >/dev/null || fail "processes of $user are left: $(inside pgrep -a -u "$user")"
[[ -d $root/var/lib/taskgroupd && -f $root/etc/taskgroupd/taskgroupd.toml ]] ||
  fail "the remove took the state directory or the conffile"

step "apt-get purge leaves no unit, task, state, config"
apt new purge taskgroupd || fail "apt-get purge failed"
no_unit_files || fail "the purge left units behind"
[[ -z $(inside systemctl list-unit-files --no-legend 'taskgroupd*') ]] || fail "systemd still knows taskgroupd units"
for d in /var/lib/taskgroupd /etc/taskgroupd /run/taskgroupd; do
  [[ ! -e $root$d ]] || fail "the purge left $d"
done
! inside pgrep -u "$user" >/dev/null || fail "processes of $user are left"
! inside dpkg -s taskgroupd >/dev/null 2>&1 || fail "dpkg still knows taskgroupd"

step "install $older, queue tasks behind a running one"
apt older install "./taskgroupd_*.deb" || fail "apt-get install of $older failed"
as_user group set work --limit 1 >/dev/null || fail "tgctl group set failed"
running=$(as_user submit -g work -- sleep 1000) || fail "submit failed"
wait_for 10 "task $running to run" is_state "$running" running
queued=$(as_user submit -g work -- true && as_user submit -g work -- true) || fail "submit failed"
for q in $queued; do is_state "$q" queued || fail "task $q is $(state_of "$q"), expected queued"; done
main_pid=$(prop taskgroupd.service MainPID)
task_pid=$(as_user show "$running" --json | json_task pid)
printf 'drain_timeout = "2s"\n' >>"$root/etc/taskgroupd/taskgroupd.toml"  # Edited by the admin.
cp "$root/etc/taskgroupd/taskgroupd.toml" "$tmp/edited.toml"

step "upgrade to $prev with a task running: re-exec in place"
apt prev install "./taskgroupd_*.deb" || fail "apt-get install of $prev (an upgrade) failed"
grep -q "task(s) running: the new daemon takes over in place" "$tmp/apt.log" ||
  { cp "$tmp/apt.log" "$tmp/why"; fail "postinst did not re-exec the daemon"; }
[[ $(inside dpkg-query -W -f '${Version}' taskgroupd) == "$prev" ]] || fail "$prev is not installed"
[[ $(prop taskgroupd.service MainPID) == "$main_pid" ]] || fail "MainPID changed: not a re-exec"
"$harness" journal taskgroupd.service | grep -q "ready: .*(re-executed)" || fail "no re-exec in the journal"
[[ $(as_user show "$running" --json | json_task pid) == "$task_pid" ]] && is_state "$running" running ||
  fail "task $running did not run on through the upgrade"
for q in $queued; do is_state "$q" queued || fail "task $q is $(state_of "$q") after the upgrade"; done
cmp -s "$root/etc/taskgroupd/taskgroupd.toml" "$tmp/edited.toml" || fail "the upgrade changed the admin's conffile"

step "upgrade to $version with nothing running: restart, queued tasks kept"
as_user pause work >/dev/null || fail "tgctl pause failed"
as_user cancel --task "$running" --wait >/dev/null || true
is_state "$running" cancelled || fail "task $running is $(state_of "$running")"
apt new install "./taskgroupd_*.deb" || fail "apt-get install of $version (an upgrade) failed"
grep -q "no task running: restarting taskgroupd.service" "$tmp/apt.log" ||
  { cp "$tmp/apt.log" "$tmp/why"; fail "postinst did not restart the idle daemon"; }
[[ $(inside dpkg-query -W -f '${Version}' taskgroupd) == "$version" ]] || fail "$version is not installed"
new_pid=$(prop taskgroupd.service MainPID)
[[ $(prop taskgroupd.service ActiveState) == active && $new_pid != "$main_pid" ]] ||
  fail "the service was not restarted (MainPID $main_pid -> $new_pid)"
for q in $queued; do is_state "$q" queued || fail "task $q is $(state_of "$q") after the restart"; done
as_user resume work >/dev/null || fail "tgctl resume failed"
timeout 30 "$harness" exec setpriv --reuid="$user" --regid=users --init-groups "${clean_env[@]}" \
  tgctl wait --task $queued >"$tmp/why" 2>&1 || fail "the queued tasks did not succeed after the upgrade"
echo "  MainPID $main_pid -> $new_pid; tasks $(echo $queued) ran after the upgrade"

step "apt-get purge"
apt new purge taskgroupd || fail "apt-get purge failed"
no_unit_files || fail "the purge left units behind"
[[ ! -e $root/var/lib/taskgroupd ]] || fail "the purge left /var/lib/taskgroupd"
echo "PASS: package_test ($((SECONDS - t0))s)"
