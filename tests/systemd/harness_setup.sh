# Sourced by the tests that boot a real systemd with ../shared/tools/systemd-harness.sh
# (harness_test.sh, cgroup_harness_test.sh, package_test.sh): the checks that make them skip
# (exit 77) without root or the harness, a private harness state, step/fail reporting, and a
# teardown on every exit.
#
#   harness_setup NAME WHY_ROOT SRC LIFETIME CTL_TIMEOUT
# NAME prefixes the output, WHY_ROOT says why root is needed, SRC is the source tree (the
# harness is SRC/../shared/tools/systemd-harness.sh unless $TG_SYSTEMD_HARNESS names one).
# Sets `harness` and `tmp` (a private directory; $tmp/why, if written, is shown on failure).
harness_setup() {
  tg_test_name=$1
  if [[ $EUID -ne 0 ]]; then
    echo "SKIP: $1 needs root ($2)"
    exit 77
  fi
  harness=${TG_SYSTEMD_HARNESS:-$3/../shared/tools/systemd-harness.sh}
  if [[ ! -x $harness ]]; then
    echo "SKIP: no systemd harness at $harness (set TG_SYSTEMD_HARNESS)"
    exit 77
  fi
  harness=$(readlink -f "$harness")
  tmp=$(mktemp -d "/tmp/tg-$1.XXXXXX")
  export SDH_STATE=$tmp/sdh
  export SDH_MAX_LIFETIME=$4  # If the test is killed outright, the reaper still tears down.
  export SDH_CTL_TIMEOUT=$5
  export SDH_BIND=""
  trap harness_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

step() { printf '[%s %3ds] %s\n' "$tg_test_name" $((SECONDS - t0)) "$*"; }

fail() {
  echo "FAIL: $*"
  if [[ -s $tmp/why ]]; then echo "--- the last check said:"; tail -n 60 "$tmp/why"; fi
  if "$harness" status >/dev/null 2>&1; then
    echo "--- journal of taskgroupd.service (last 60 lines)"
    "$harness" journal taskgroupd.service -n 60 2>&1 || true
    echo "--- systemctl status"
    "$harness" ctl status taskgroupd.service taskgroupd.socket 2>&1 | head -n 30 || true
    echo "---"
  fi
  exit 1
}

harness_cleanup() {
  local rc=$?
  if [[ -e $SDH_STATE ]]; then
    "$harness" down >/dev/null 2>&1 || echo "WARNING: systemd-harness down failed; see $SDH_STATE.last"
  fi
  if ((rc == 0)); then rm -rf "$tmp"; else echo "logs kept in $tmp (the harness's in $SDH_STATE.last)"; fi
  exit "$rc"
}
