#!/usr/bin/env bash
# ctest: the repository keeps its layers, and the check catches a violation (a copy of the
# tree with an engine header that includes the server: it must fail, naming the file).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python3 "$here/check_layers.py" "$root"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$root/common" "$root/client" "$root/daemon" "$tmp/"
printf '#include "daemon/server/server.h"\n' >> "$tmp/daemon/engine/engine.h"
printf '#include "daemon/exec/local/child.h"\n' >> "$tmp/daemon/engine/cancel.cpp"
if out=$(python3 "$here/check_layers.py" "$tmp"); then
  echo "layers_test: a planted upward include was not caught" >&2
  exit 1
fi
grep -q 'daemon/engine/engine.h includes "daemon/server/server.h"' <<<"$out"
grep -q 'daemon/engine/cancel.cpp includes "daemon/exec/local/child.h"' <<<"$out"
echo "layers: ok, and a planted violation is caught"
