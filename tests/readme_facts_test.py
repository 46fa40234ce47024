#!/usr/bin/env python3
"""The README says the defaults the code has: every place it names
optimizer.lr's default for SGD and AdamW gives common/catalog.h's kSgdLr and
kAdamWLr (issue 32: one said 0.1, another 0.05).

Usage: readme_facts_test.py SOURCE_DIR
"""
import re
import sys

src = sys.argv[1]
catalog = open(src + "/common/catalog.h").read()
readme = open(src + "/README.md").read()


def constant(name):
    m = re.search(r"constexpr double %s = ([0-9.e+-]+);" % name, catalog)
    if not m:
        sys.exit("FAIL: no %s in common/catalog.h" % name)
    return float(m.group(1))


want = {"SGD": constant("kSgdLr"), "AdamW": constant("kAdamWLr")}
said = []
# "`optimizer.lr` 0.1 for SGD, 0.001 for AdamW" and the table's
# "| 0.1 (SGD), 0.001 (AdamW) |".
for m in re.finditer(r"`optimizer\.lr`[^\n]*", readme):
    line = m.group(0)
    for value, kind in re.findall(r"([0-9][0-9.e-]*) for (SGD|AdamW)", line):
        said.append((kind, float(value), line))
    for value, kind in re.findall(r"([0-9][0-9.e-]*) \((SGD|AdamW)\)", line):
        said.append((kind, float(value), line))
if len(said) < 4:
    sys.exit("FAIL: the README names optimizer.lr's defaults %d times, "
             "expected at least 4" % len(said))
wrong = [(k, v, l) for k, v, l in said if v != want[k]]
for kind, value, line in wrong:
    print("FAIL: README says %s's default lr is %g, the code %g: %s"
          % (kind, value, want[kind], line.strip()))
if wrong:
    sys.exit(1)
print("README: optimizer.lr's defaults named %d times, each as the code has "
      "them" % len(said))
