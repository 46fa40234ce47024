#!/usr/bin/env python3
"""The coordinator's layers (issue 33): each folder of server/ is one, and a
file may include only its own layer's headers and those of the layers it
is allowed below it. Prints each include that breaks the table, and any
file of server/ in no layer, and exits 1; exits 0 printing the table
otherwise.

  folder               may include
  server/base/         (nothing of server/)
  server/storage/      base
  server/scheduling/   storage, base
  server/operations/   scheduling, storage, base (and render/: the
                       notifications' text)
  server/rpc/          operations, scheduling, storage, base
  server/web/          scheduling, storage, base
  server/ (top)        every layer: the coordinator puts them together

base: the clock, fsync, the disk guard, metrics, no-throw, periodic threads,
the watch hub. storage: SQLite and the run files. scheduling: the facade
(Scheduler) and its rooms, tokens and who may do what. operations: backups
and the Slurm launcher. rpc: the gRPC services. web: the pages. Nothing in
server/ includes client/, worker/ or render/ (but web/, which renders, and
operations/, whose notifications quote a sweep's claims).
Usage: tools/server_layers.py [SOURCE_DIR]
"""

import os
import re
import sys

# Layer -> the layers it may include besides itself.
MAY_INCLUDE = {
    "base": [],
    "storage": ["base"],
    "scheduling": ["storage", "base"],
    "operations": ["scheduling", "storage", "base"],
    "rpc": ["operations", "scheduling", "storage", "base"],
    "web": ["scheduling", "storage", "base"],
    "": ["rpc", "web", "operations", "scheduling", "storage", "base"],
}
# Folders outside server/ a layer may include ("proto" and "common" any).
OUTSIDE = {"web": ["render", "http"], "operations": ["render"], "": ["http"]}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(rel):
    """The layer of server/-relative path `rel`: its folder, "" at the top."""
    parts = rel.split("/")
    return parts[0] if len(parts) > 1 else ""


def check(root):
    broken = []
    server = os.path.join(root, "server")
    for dirpath, _, names in os.walk(server):
        for name in sorted(names):
            if not name.endswith((".cc", ".h")):
                continue
            rel = os.path.relpath(os.path.join(dirpath, name), server)
            layer = layer_of(rel)
            if layer not in MAY_INCLUDE:
                broken.append("server/%s: in no layer (%s)" % (rel, ", ".join(
                    sorted(l + "/" for l in MAY_INCLUDE if l))))
                continue
            text = open(os.path.join(dirpath, name), encoding="utf-8").read()
            for included in INCLUDE.findall(text):
                top = included.split("/")[0]
                if top == "server":
                    target = layer_of(included[len("server/"):])
                    if target == layer or target in MAY_INCLUDE[layer]:
                        continue
                    broken.append("server/%s includes %s: %s/ may include %s" % (
                        rel, included, layer or "server",
                        ", ".join(MAY_INCLUDE[layer]) or "nothing of server/"))
                elif top in ("client", "worker", "render", "http") and \
                        top not in OUTSIDE.get(layer, []):
                    broken.append("server/%s includes %s: server/%s may not "
                                  "include %s/" % (rel, included,
                                                   layer + "/" if layer else "",
                                                   top))
    return broken


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))
    broken = check(root)
    for line in broken:
        print(line)
    if broken:
        print("server layers: %d includes break the table" % len(broken))
        return 1
    print("%-20s %s" % ("folder", "may include"))
    for layer, below in MAY_INCLUDE.items():
        print("%-20s %s" % ("server/%s" % (layer + "/" if layer else ""),
                             ", ".join(below) or "(nothing of server/)"))
    print("server layers: every include keeps to the table")
    return 0


if __name__ == "__main__":
    sys.exit(main())
