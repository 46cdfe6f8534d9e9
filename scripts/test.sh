#!/usr/bin/env bash
# Builds everything with AddressSanitizer + UndefinedBehaviorSanitizer and warnings as errors
# (installing missing Debian packages first), then runs every test with ctest.
# Extra arguments go to ctest (e.g. -L unit, -R cancel).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
build=${TG_BUILD_DIR:-build/asan}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DTG_SANITIZE=ON -DTG_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)"
# The Debian package, a Release build of its own in build/package; ctest's systemd.package
# installs it under a real systemd.
scripts/package.sh >/dev/null
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$build"
ctest --output-on-failure --timeout 300 -j2 "$@"
