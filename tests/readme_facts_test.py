#!/usr/bin/env python3
"""The README says the numbers the code has. Each fact below is a number
(or a few) the README states and the constant in the source it states:
optimizer.lr's defaults wherever they are named (issue 32: one place said
0.1, another 0.05), the spec's limits and defaults, the evaluation's
settings, the pages' and /metrics' bounds, the coordinator's flags.
Figures measured (bench/, tests' printed lines) are not constants: the
README names the bench or test that measures each.

Usage: readme_facts_test.py SOURCE_DIR
"""
import math
import re
import sys

src = sys.argv[1]
readme = open(src + "/README.md").read()
failures = []


def read(path):
    return open("%s/%s" % (src, path)).read()


def number(text):
    text = text.replace(",", "").replace("'", "")
    m = re.fullmatch(r"(\d+) << 10", text)
    if m:
        return float(int(m.group(1)) << 10)
    m = re.fullmatch(r"(\d+) \* (\d+)", text)
    if m:
        return float(int(m.group(1)) * int(m.group(2)))
    return float(text)


def groups(text, pattern, where):
    m = re.search(pattern, text, re.S)
    if not m:
        failures.append("%s: nothing matches /%s/" % (where, pattern))
        return None
    return [number(g) for g in m.groups()]


# (what, README pattern, [(source file, pattern)] whose groups, in order,
# are the README's; a transform of the source's numbers when they differ
# in unit).
FACTS = [
    ("k-NN's k and temperature", r"k = (\d+), T = ([0-9.]+), as DINO",
     [("worker/engine/evaluation.h",
       r"int64_t k = (\d+), double temperature = ([0-9.]+)\)")]),
    ("t-SNE points at most", r"t-SNE map of up to ([0-9,]+) test embeddings",
     [("common/catalog.h", r"kMaxTsnePoints = ([0-9']+);")]),
    ("t-SNE points by default",
     r"`evaluation\.tsne_points`, ([0-9,]+) by default",
     [("common/catalog.h", r"kTsnePoints = ([0-9']+);")]),
    ("k-NN bank by default",
     r"`evaluation\.knn_bank` training images, ([0-9,]+) by default",
     [("common/catalog.h", r"kKnnBank = ([0-9']+);")]),
    ("t-SNE iterations", r"exact t-SNE's (\d+) iterations",
     [("worker/engine/judge.cc", r"Tsne\(embedding\.slice\(0, 0, n\), 30, (\d+),")]),
    ("points per drawn curve", r"thinned to (\d+) points for drawing",
     [("render/report.h", r"kReportPointsPerCurve = (\d+);")]),
    ("the pages' reload", r"reloading every (\d+) s while runs run",
     [("server/web/pages.cc", r"kRefreshSeconds = (\d+);")]),
    ("the pages' deadlines",
     r"(\d+) s for the request\s+line and headers.*?(\d+) s for a body,\s+(\d+) s idle"
     r" between keep-alive requests, (\d+) s to take an answer",
     [("http/http_server.h", r"header_timeout = absl::Seconds\((\d+)\)"),
      ("http/http_server.h", r"body_timeout = absl::Seconds\((\d+)\)"),
      ("http/http_server.h", r"idle_timeout = absl::Seconds\((\d+)\)"),
      ("http/http_server.h", r"write_timeout = absl::Seconds\((\d+)\)")]),
    ("the pages' connections",
     r"address may hold (\d+) connections at once \(([0-9,]+) in all",
     [("http/http_server.h", r"max_connections_per_address = (\d+);"),
      ("http/http_server.h", r"max_connections = (\d+);")]),
    ("the pages' head and body sizes (KiB)",
     r"Heads are at\s+most (\d+) KiB, bodies (\d+) KiB",
     [("http/http_message.h", r"max_head_bytes = (\d+ << 10);"),
      ("http/http_message.h", r"max_body_bytes = (\d+ << 10);")],
     lambda v: [x / 1024 for x in v]),
    ("/metrics' RPC method names", r"keep at most (\d+) method names",
     [("server/base/metrics.cc", r"kMaxRpcMethods = (\d+);")]),
    ("IKD temperature: limit and default",
     r"\| `losses\.ikd\.temperature` \| \(0, (\d+)\] when IKD is on \| (\d+) \|",
     [("common/catalog.h", r"limits \{.*?kTemperature = (\d+);"),
      ("common/catalog.h", r"defaults \{.*?kTemperature = (\d+);")]),
    ("lr's limit", r"\| `optimizer\.lr` \| \(0, (\d+)\]",
     [("common/catalog.h", r"kLr = (\d+);")]),
    ("loss weights' limit (log10)", r"\| \[0, 10\^(\d+)\] \| off \|",
     [("common/catalog.h", r"kLossWeight = ([0-9e.]+);")],
     lambda v: [math.log10(v[0])]),
    ("names and paths (bytes)", r"names ≤ (\d+) bytes, paths ≤ (\d+)",
     [("common/catalog.h", r"kNameBytes = (\d+);"),
      ("common/catalog.h", r"kPathBytes = (\d+);")]),
    ("members of a sweep", r"a sweep expands to at most ([0-9,]+) of them",
     [("common/catalog.h", r"kSweepMembers = (\d+);")]),
    ("lease (s)", r"`--lease_seconds`, default (\d+)",
     [("server/coordinator_main.cc", r"lease_seconds, (\d+),")]),
    ("fair share's half-life (days)", r"`--fair_share_half_life` \(default (\d+) days",
     [("server/coordinator_main.cc",
       r"fair_share_half_life, absl::Hours\((\d+ \* \d+)\)")],
     lambda v: [v[0] / 24]),
    ("preemption's margin", r"`--preempt_share_margin` \((\d+)\)",
     [("server/coordinator_main.cc", r"preempt_share_margin, (\d+),")]),
    ("preemption's hold and interval (min)",
     r"`--preempt_after` \((\d+) minutes\).*?`--preempt_every` \((\d+) minutes\)",
     [("server/coordinator_main.cc", r"preempt_after, absl::Minutes\((\d+)\)"),
      ("server/coordinator_main.cc", r"preempt_every, absl::Minutes\((\d+)\)")]),
]

checked = 0
for fact in FACTS:
    what, pattern, sources = fact[0], fact[1], fact[2]
    transform = fact[3] if len(fact) > 3 else (lambda v: v)
    said = groups(readme, pattern, "README (%s)" % what)
    code = []
    for path, source_pattern in sources:
        got = groups(read(path), source_pattern, "%s (%s)" % (path, what))
        code += got or []
    if said is None or len(code) != len(said):
        continue
    code = transform(code)
    checked += 1
    if said != code:
        failures.append("README says %s is %s, the code %s" % (what, said, code))

# optimizer.lr's defaults, every place the README names them.
catalog = read("common/catalog.h")
want = {}
for kind, name in (("SGD", "kSgdLr"), ("AdamW", "kAdamWLr")):
    m = re.search(r"constexpr double %s = ([0-9.e+-]+);" % name, catalog)
    want[kind] = float(m.group(1))
said = []
for m in re.finditer(r"`optimizer\.lr`[^\n]*", readme):
    line = m.group(0)
    for value, kind in re.findall(r"([0-9][0-9.e-]*) for (SGD|AdamW)", line):
        said.append((kind, float(value), line))
    for value, kind in re.findall(r"([0-9][0-9.e-]*) \((SGD|AdamW)\)", line):
        said.append((kind, float(value), line))
if len(said) < 4:
    failures.append("the README names optimizer.lr's defaults %d times, "
                    "expected at least 4" % len(said))
for kind, value, line in said:
    if value != want[kind]:
        failures.append("README says %s's default lr is %g, the code %g: %s"
                        % (kind, value, want[kind], line.strip()))

for f in failures:
    print("FAIL: " + f)
if failures:
    sys.exit(1)
print("README: %d facts as the code has them, and optimizer.lr's defaults "
      "named %d times as the code has them" % (checked, len(said)))
