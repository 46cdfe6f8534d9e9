#!/usr/bin/env bash
# docs.man_pages: the generated man pages render with `man -l` without a single warning, and
# document every command and option the binaries accept (so a new flag without a line in its
# man page fails here). The config keys are checked against the daemon's own list in
# daemon/config_test.cpp.
#   man_pages_test.sh TGCTL TASKGROUPD SOURCE_DIR MAN_DIR
set -euo pipefail
tgctl=$1 taskgroupd=$2 src=$3 man_dir=$4
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# Renders one page the way a user's `man -l` does, with every groff warning enabled; prints the
# warnings (nothing when it is clean).
render_warnings() {
  LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings=w -E UTF-8 -l "$1" 2>&1 >/dev/null
}

command -v man >/dev/null || {
  echo "FAIL: man is not installed (scripts/deps.sh installs man-db)" >&2
  exit 1
}

# The check itself must catch a broken page: a text line starting with an apostrophe is a troff
# request, the mistake cmake/man_page.cmake exists to repair.
broken=$(mktemp)
trap 'rm -f "$broken"' EXIT
printf '.TH broken 1\n.SH NAME\nbroken\n%s\n' "'GROUP' is a request here" >"$broken"
[[ -n $(render_warnings "$broken") ]] || fail "man --warnings does not report a broken page"

for page in tgctl.1 taskgroupd.8 taskgroupd.toml.5; do
  file=$man_dir/$page
  [[ -s $file ]] || {
    fail "$file was not generated"
    continue
  }
  warnings=$(render_warnings "$file")
  [[ -z $warnings ]] || fail "man -l $page warns: $warnings"
  LC_ALL=C.UTF-8 MANWIDTH=80 man -E UTF-8 -l "$file" 2>/dev/null | grep -q '^NAME' ||
    fail "man -l $page renders no NAME section"
  grep -q '@VERSION@' "$file" && fail "$page still says @VERSION@"
done

# The long options in the option column of a --help text (not --help itself).
long_options() {
  grep -E '^  -' | sed -E 's/^  (-[^ ]*).*/\1/' | grep -oE -- '--[a-z][a-z-]*' | grep -vx -- '--help' || true
}
# The subcommands listed in a --help text.
subcommands() {
  sed -n '/^Subcommands:/,$p' | grep -E '^  [a-z]' | awk '{print $1}'
}

tgctl_md=$src/docs/man/tgctl.1.md
check_tgctl_command() {  # check_tgctl_command WORD... (e.g. submit, or group set)
  local help
  help=$("$tgctl" "$@" --help)
  grep -qF "tgctl $*" "$tgctl_md" || fail "tgctl.1 does not describe 'tgctl $*'"
  for option in $(long_options <<<"$help"); do
    grep -qF -- "$option" "$tgctl_md" || fail "tgctl.1 does not mention 'tgctl $* $option'"
  done
  for sub in $(subcommands <<<"$help"); do check_tgctl_command "$@" "$sub"; done
}
commands=$("$tgctl" --help | subcommands)
[[ $(wc -w <<<"$commands") -ge 10 ]] || fail "found too few tgctl subcommands: $commands"
for command in $commands; do check_tgctl_command "$command"; done
for option in $("$tgctl" --help | long_options); do
  grep -qF -- "$option" "$tgctl_md" || fail "tgctl.1 does not mention 'tgctl $option'"
done

daemon_options=$("$taskgroupd" --help | long_options)
[[ $(wc -w <<<"$daemon_options") -ge 5 ]] || fail "found too few taskgroupd options"
for option in $daemon_options; do
  grep -qF -- "$option" "$src/docs/man/taskgroupd.8.md" ||
    fail "taskgroupd.8 does not describe '$option'"
done

if ((failures > 0)); then
  echo "$failures problem(s) in the man pages" >&2
  exit 1
fi
echo "man pages: rendered without warnings, every command and option documented"
