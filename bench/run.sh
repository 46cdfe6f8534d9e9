#!/usr/bin/env bash
# taskgroupd benchmarks against xargs -P, GNU parallel and task-spooler (issue 8).
#
#   bench/run.sh [--quick] [--skip-slow-peers] [--only W1,W2] [--tools T1,T2] [--reps R] [--n N1,N2]
#                [--p P1,P2] [--baseline-bin DIR] [--build-dir DIR] [--no-build] [--out DIR]
#
# Installs missing Debian build packages (scripts/deps.sh, as the README's commands do), builds
# taskgroupd and tgctl (Release) in build/bench (or --build-dir), installs the peers
# (Debian packages parallel and task-spooler) with apt-get when run as root and they are
# missing, else skips each missing one with a clear line; then runs bench/bench.py, which starts
# its own taskgroupd per workload (own temp socket and state dir, durable store: the default),
# runs the workloads with the tools interleaved (A B C A B C ...) and prints one table: tool,
# workload, median of the rounds, median ratio to `xargs -P` of the same rounds.
#
# Workloads (--only, comma separated; default: all but profile):
#   trivial  N x `sh -c 'exit 0'` at concurrency P, N = 2000,10000 and P = 1,4,64, end to end
#   sleep    200 x `sleep 0.05` at P = 16 against the ideal 0.625 s
#   queue    batch submit of 100 000 into a paused group, RSS with them queued, cancel of them
#   million  RSS with 1 000 000 queued (10 batches of 100 000), and their cancel
#   latency  submit round trip p50/p99 over one persistent connection (2000 per round)
#   wait     last task exit -> `tgctl wait` (and a raw protocol `wait`) returning
#   idle     wakeups per second of an idle daemon (no watchdog)
#   listload `status` latency while 4 clients each `tgctl list` 100 000 tasks; peak RSS
#   workflow 1000 and 10 000 tasks at P = 1 as a chain, a fan-in and independent: per task
# --quick: trivial at N = 2000, P = 4 only; 500 latency samples; 5 wait samples; 5 s idle
#          window; no `million`. About 2 minutes. The full run takes 25-40 minutes on the
#          reference machine (2 shared vCPUs: it depends on their load; docs/performance.md).
# --skip-slow-peers: leave out GNU parallel at N = 10 000 and tsp at N = 10 000, P = 1 (3-15 ms
#          per job for parallel, 4-8 ms for tsp at P = 1: up to ~20 minutes of the full run).
# --only profile (not in the default set): perf profile of the daemon at N = 2000, P = 4
#          (perf trace -s for time blocked in system calls, perf record for CPU); reports in OUT.
# --baseline-bin DIR: also run another build's taskgroupd/tgctl as tool `taskgroupd@baseline`,
#          interleaved with the others, to measure a change against the version before it.
#
# Raw results (every sample, the machine, load average) go to bench/out/<time>/ (gitignored).
# The figures are noisy on a shared machine: compare ratios, not absolute times.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
build_dir=$repo/build/bench
build=1
out=$here/out/$(date +%Y%m%d-%H%M%S)
args=()
while (($#)); do
  case $1 in
    --build-dir) build_dir=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --out) out=$2; shift 2 ;;
    --quick | --skip-slow-peers) args+=("$1"); shift ;;
    --only | --tools | --reps | --n | --p | --baseline-bin) args+=("$1" "$2"); shift 2 ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

if ((build)); then
  "$repo/scripts/deps.sh"  # A fresh machine: the build's Debian packages (and python3).
  echo "[bench] building Release binaries in $build_dir" >&2
  mkdir -p "$build_dir"
  build_log=$build_dir/bench-build.log
  if ! { cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DTG_BUILD_TESTS=OFF &&
    cmake --build "$build_dir" -j"$(nproc)" --target taskgroupd tgctl; } >"$build_log" 2>&1; then
    tail -30 "$build_log" >&2
    echo "run.sh: the build failed; see $build_log" >&2
    exit 1
  fi
fi
for b in taskgroupd tgctl; do
  [[ -x $build_dir/$b ]] || { echo "run.sh: no $build_dir/$b; build first" >&2; exit 1; }
done

# Peers: Debian packages. Installed only when we are root; otherwise bench.py skips them.
missing=()
command -v parallel >/dev/null || missing+=(parallel)
command -v tsp >/dev/null || missing+=(task-spooler)
if ((${#missing[@]})); then
  if ((EUID == 0)) && command -v apt-get >/dev/null; then
    echo "[bench] installing ${missing[*]}" >&2
    apt-get install -y "${missing[@]}" >/dev/null ||
      { apt-get update >/dev/null && apt-get install -y "${missing[@]}" >/dev/null; } ||
      echo "[bench] could not install ${missing[*]}; those peers will be skipped" >&2
  else
    echo "[bench] not root: skipping missing peers ${missing[*]}" \
      "(to include them: apt-get install ${missing[*]})" >&2
  fi
fi

mkdir -p "$out"
exec python3 "$here/bench.py" --bin "$build_dir" --out "$out" "${args[@]}"
