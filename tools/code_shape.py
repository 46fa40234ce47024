#!/usr/bin/env python3
"""The shape the coordinator, the CLI, what they share, the worker and its
engine keep (issues 23 and 33):

  * no .cc file in server/ (and its layers' folders), client/, common/,
    render/, worker/ or worker/engine/ over 600 lines;
  * no function there over 80 lines (a definition that starts at the left
    margin, to its closing brace at the left margin: Google style's free
    functions and out-of-class methods; in-class ones are short);
  * nothing in server/ includes client/.

Prints what breaks a rule and exits 1; with --list, every function over
--lines (default 60) too, longest first.
Usage: tools/code_shape.py [--list] [--lines=N] [SOURCE_DIR]
"""

import os
import re
import sys

DIRS = ("server", "server/base", "server/storage", "server/scheduling",
        "server/operations", "server/rpc", "server/web", "client", "common",
        "render", "worker", "worker/engine")
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80

# A line that starts a definition: at the left margin (free functions,
# out-of-class methods) or indented by two (methods in a class body); not a
# statement, a type, or a declaration.
START = re.compile(
    r"^( {0,2})(?!(if|for|while|switch|return|else|do|case|namespace|class|"
    r"struct|enum|union|using|typedef|template|extern|public|private|"
    r"protected|ABSL_FLAG)\b)[A-Za-z_~][^;=]*\(")


def functions(path):
    """(name, first line, length) of each function defined in `path`."""
    lines = open(path, encoding="utf-8").read().split("\n")
    out = []
    i = 0
    while i < len(lines):
        m = START.match(lines[i])
        if not m:
            i += 1
            continue
        indent = m.group(1)
        # The body opens on this line or a following one of the header.
        j = i
        while j < len(lines) and not lines[j].rstrip().endswith(("{", "}", ";")):
            j += 1
        if j >= len(lines) or not lines[j].rstrip().endswith("{"):
            i += 1  # A declaration, or a definition ending on one line.
            continue
        k = j + 1
        while k < len(lines) and lines[k] != indent + "}":
            k += 1
        head = lines[i].split("(")[0].split()
        out.append((head[-1] if head else "?", i + 1, k - i + 1))
        i = k + 1
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    listing = "--list" in sys.argv
    shown = 60
    for a in sys.argv[1:]:
        if a.startswith("--lines="):
            shown = int(a.split("=", 1)[1])
    root = args[0] if args else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    broken = []
    found = []
    for d in DIRS:
        for name in sorted(os.listdir(os.path.join(root, d))):
            path = os.path.join(root, d, name)
            if not name.endswith((".cc", ".h")):
                continue
            rel = os.path.join(d, name)
            text = open(path, encoding="utf-8").read()
            n = text.count("\n")
            if name.endswith(".cc") and n > MAX_FILE_LINES:
                broken.append("%s: %d lines (at most %d)" % (rel, n, MAX_FILE_LINES))
            if d.startswith("server") and re.search(r'#include "client/', text):
                broken.append("%s includes client/" % rel)
            for fn, line, length in functions(path):
                found.append((length, "%s:%d %s" % (rel, line, fn)))
                if length > MAX_FUNCTION_LINES:
                    broken.append("%s:%d %s: %d lines (at most %d)" %
                                  (rel, line, fn, length, MAX_FUNCTION_LINES))
    if listing:
        for length, where in sorted(found, reverse=True):
            if length > shown:
                print("%4d  %s" % (length, where))
    for b in broken:
        print("code shape:", b)
    print("code shape: %d files' functions measured, %d rules broken" %
          (len(set(w.split(":")[0] for _, w in found)), len(broken)))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
