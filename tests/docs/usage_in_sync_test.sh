#!/usr/bin/env bash
# docs.usage_in_sync: the parts of docs/usage.md that come from the man pages' sources
# (scripts/sync-docs.sh) are up to date, and the check catches a part edited in usage.md only.
#   usage_in_sync_test.sh SOURCE_DIR
set -euo pipefail
src=$1
"$src/scripts/sync-docs.sh" --check "$src"

copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
mkdir -p "$copy/docs/man"
cp "$src/docs/usage.md" "$copy/docs/"
cp "$src"/docs/man/*.md "$copy/docs/man/"
# An edit inside a copied part (the first line after the COMMANDS marker's blank line).
awk '/^<!-- from docs\/man\/tgctl.1.md section "COMMANDS"/ { print; getline; print; getline
       print "edited in usage.md only"; next } { print }' "$src/docs/usage.md" >"$copy/docs/usage.md"
if "$src/scripts/sync-docs.sh" --check "$copy" >/dev/null 2>&1; then
  echo "FAIL: sync-docs.sh --check accepted a usage.md edited inside a copied part" >&2
  exit 1
fi
echo "usage.md: in sync with docs/man/*.md, and a drift is caught"
