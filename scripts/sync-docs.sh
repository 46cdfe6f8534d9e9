#!/usr/bin/env bash
# Copies the sections that docs/usage.md shares with the man pages from their one source, the
# man page's Markdown (docs/man/*.md), into usage.md, so the two cannot drift. In usage.md such
# a part sits between
#   <!-- from docs/man/tgctl.1.md section "COMMANDS": edit it there, then run scripts/sync-docs.sh -->
#   <!-- end of the part from docs/man/tgctl.1.md -->
# and gets the section's text with its headings one level deeper (a man page's `##` is a
# subsection, usage.md's `###`).
#
#   scripts/sync-docs.sh           rewrite docs/usage.md
#   scripts/sync-docs.sh --check   exit 1, showing the difference, if it is out of date
# A second argument names another checkout's root (the tests use a copy).
set -euo pipefail
check=false
if [[ ${1:-} == --check ]]; then
  check=true
  shift
fi
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
usage=$root/docs/usage.md
synced=$(mktemp)
trap 'rm -f "$synced"' EXIT

# mawk (Debian's awk) has no match() with groups: the marker is taken apart with index/substr.
awk -v root="$root" '
  function fail(why) { print "sync-docs: " why > "/dev/stderr"; failed = 1; exit 1 }
  # Prints section `title` of `file` (up to the next top-level heading outside a code block).
  function copy_section(file, title,   line, fenced, inside, found, blanks, printed) {
    fenced = 0; inside = 0; found = 0; blanks = 0; printed = 0
    while ((getline line < file) > 0) {
      if (line ~ /^```/) fenced = !fenced
      if (!fenced && line ~ /^# /) {
        if (inside) break
        if (line == "# " title) { inside = 1; found = 1 }
        continue
      }
      if (!inside) continue
      if (line == "") { blanks++; continue }
      if (printed) for (; blanks > 0; blanks--) print ""
      blanks = 0
      if (!fenced && line ~ /^##+ /) line = "#" line
      print line
      printed = 1
    }
    close(file)
    if (!found) fail(file ": no section \"" title "\"")
  }
  skipping {
    if (index($0, "<!-- end of the part from ") == 1) { print ""; print; skipping = 0 }
    next
  }
  index($0, "<!-- from docs/man/") == 1 {
    rest = substr($0, length("<!-- from ") + 1)
    file = substr(rest, 1, index(rest, " ") - 1)
    rest = substr(rest, index(rest, "section \"") + length("section \""))
    title = substr(rest, 1, index(rest, "\"") - 1)
    if (file == "" || title == "") fail("usage.md:" NR ": a marker without a file or section")
    print; print ""
    copy_section(root "/" file, title)
    skipping = 1
    next
  }
  { print }
  END { if (!failed && skipping) fail("usage.md: a part that never ends") }
' "$usage" >"$synced"

if $check; then
  if ! diff -u "$usage" "$synced"; then
    echo "sync-docs: docs/usage.md differs from the man pages' sources; run scripts/sync-docs.sh" >&2
    exit 1
  fi
elif ! cmp -s "$usage" "$synced"; then
  cp "$synced" "$usage"
  echo "sync-docs: updated docs/usage.md"
fi
