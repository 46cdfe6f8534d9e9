#!/usr/bin/env bash
# Builds taskgroupd and tgctl (installing missing Debian packages first) and runs the daemon
# in the foreground, with its socket and state in ./.run/. Ctrl+C drains it; a second Ctrl+C
# stops running tasks now, a third kills them. Extra arguments go to taskgroupd.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTG_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j"$(nproc)" --target taskgroupd tgctl

run_dir=${TG_RUN_DIR:-$PWD/.run}
# A Unix socket path must fit in 108 bytes.
if [ ${#run_dir} -gt 80 ]; then run_dir=/tmp/taskgroupd-$(id -un)-run; fi
mkdir -p "$run_dir"
socket=$run_dir/control.sock

cat >&2 <<MSG
taskgroupd: starting; in another shell:
  export TASKGROUPD_SOCKET=$socket
  $PWD/build/release/tgctl submit -- echo hello
  $PWD/build/release/tgctl list
MSG
exec build/release/taskgroupd --socket "$socket" --state-dir "$run_dir/state" "$@"
