#!/usr/bin/env bash
# Builds the request fuzzer with clang (a separate build dir: the main build is g++) and runs
# it for SECONDS (default 60) on a copy of the seed corpus, so the checked-in corpus stays
# small. Exits non-zero if the fuzzer finds a crash, a leak, a sanitizer report or a timeout;
# the reproducer is kept in BUILD_DIR/artifacts and named in the output.
#   tests/fuzz/run.sh [SECONDS] [BUILD_DIR]        BUILD_DIR defaults to build/fuzz
# Reproduce:  BUILD_DIR/request_fuzzer BUILD_DIR/artifacts/crash-...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=${1:-60}
build=${2:-$root/build/fuzz}
cxx=${TG_FUZZ_CXX:-$(command -v clang++ || command -v clang++-14 || true)}
if [ -z "$cxx" ]; then
  echo "fuzz: clang++ not found; scripts/deps.sh installs clang-14 and libclang-rt-14-dev" >&2
  exit 1
fi

# The fuzzer has its own ASan/UBSan settings; those exported for the g++ build (test.sh) would
# make every run abort on the first leak report without the reproducer.
unset ASAN_OPTIONS UBSAN_OPTIONS

mkdir -p "$build"
cmake -S "$here" -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  >"$build/configure.log" 2>&1 || { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" -j"${TG_FUZZ_JOBS:-2}"

corpus="$build/corpus"
rm -rf "$corpus"
mkdir -p "$corpus" "$build/artifacts"
cp "$here"/corpus/* "$corpus"/
# -max_len covers a full batch submit; -rss_limit_mb bounds the Engine's growth (rebuilt every
# 2000 inputs); -timeout flags any input that takes more than 10 s.
"$build/request_fuzzer" "$corpus" \
  -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
  -dict="$here/request.dict" -artifact_prefix="$build/artifacts/" -print_final_stats=1
