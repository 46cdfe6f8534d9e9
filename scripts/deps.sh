#!/usr/bin/env bash
# Installs the Debian 12 packages taskgroupd needs to build and test. Idempotent: only what is
# missing is installed. Not root: prints the apt-get line to run instead and exits 1.
set -euo pipefail

packages=(
  build-essential cmake pkg-config systemd python3
  strace  # tests: fault injection (a failing fsync) into the running daemon.
  libboost1.81-dev nlohmann-json3-dev libspdlog-dev libsystemd-dev libsqlite3-dev
  libcli11-dev libtomlplusplus-dev doctest-dev
  clang-14 libclang-rt-14-dev  # tests/fuzz: libFuzzer and the sanitizers' clang runtimes.
  go-md2man man-db  # the man pages (docs/man/) and their test, which renders them with man -l.
  bash fish zsh  # tests/integration/completions_test.cpp: the completion scripts in each shell.
  tmux  # tests/integration/top_test.cpp: tgctl top driven on a real terminal.
  dpkg-dev file lintian  # scripts/package.sh (CPack DEB, dpkg-shlibdeps) and its test (lintian).
  ${TG_EXTRA_PACKAGES:-}
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "taskgroupd: missing Debian packages; run as root:" >&2
  echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "taskgroupd: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# apt-get update once per machine boot is enough; the lists are needed on a fresh machine.
if ! apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi
