#!/usr/bin/env python3
"""Fails when a lower layer includes a higher one (STYLE.md rule 1, docs/design.md "Layers").

Usage: check_layers.py [ROOT]   (default: the repository). Prints one line per violation.

From the bottom: common; daemon/model; daemon/log; daemon/sys; daemon/store and daemon/exec
(siblings: neither includes the other); daemon/engine; daemon/server; daemon/ itself (run,
config, main). A file may include its own layer and the layers below it. Inside exec, the
interfaces (exec/*.h, *.cpp) include neither exec/local nor exec/fake, and those two not each
other; the engine includes only the interfaces (its unit tests may use the fakes). client/
uses only common/, and common/ nothing of ours.
"""
import pathlib
import re
import sys

RANK = {"common": 0, "model": 1, "log": 2, "sys": 3, "store": 4, "exec": 4, "engine": 5,
        "server": 6, "top": 7}
INCLUDE = re.compile(r'^#include "((?:common|client|daemon)/[^"]+)"', re.M)


def layer_of(path):
    parts = path.split("/")
    if parts[0] in ("common", "client"):
        return parts[0]
    return parts[1] if len(parts) > 2 else "top"


def exec_part(path):  # exec/x.h -> core, exec/local/x.h -> local
    parts = path.split("/")
    return parts[2] if len(parts) > 3 else "core"


def violations(root):
    for file in sorted(p for d in ("common", "client", "daemon")
                       for p in (root / d).rglob("*") if p.suffix in (".h", ".cpp")):
        rel = file.relative_to(root).as_posix()
        src = layer_of(rel)
        test = rel.endswith(("_test.cpp", "_test.h"))
        for inc in INCLUDE.findall(file.read_text()):
            dst = layer_of(inc)
            why = None
            if src == "common" and dst != "common":
                why = "common/ depends on nothing of ours"
            elif src == "client" and dst not in ("common", "client"):
                why = "client/ uses only common/"
            elif src in ("common", "client"):
                pass
            elif dst == "client":
                why = "daemon/ never includes client/"
            elif src == "exec" and dst == "exec":
                a, b = exec_part(rel), exec_part(inc)
                if b != "core" and b != a:
                    why = f"exec/{a} may not use exec/{b}"
            elif src == "engine" and inc.startswith(("daemon/exec/local/", "daemon/exec/fake/")):
                if not test:
                    why = "the engine sees executors only through exec/executor.h"
            elif src != dst and RANK[dst] >= RANK[src]:
                why = f"{src} may include only lower layers, not {dst}"
            if why:
                yield f'layers: {rel} includes "{inc}": {why}'


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parents[2])
    found = list(violations(root))
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
