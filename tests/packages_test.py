#!/usr/bin/env python3
"""The images cannot drift from the build: each stage of deploy/Dockerfile
installs a role of scripts/packages.txt (the list scripts/setup.sh installs
from too), and every file the stage's CMake targets use must come from a
package that role brings, directly or as a dependency, or that a bare
Debian image has (Priority: required).

  tests/packages_test.py BUILD_DIR SOURCE_DIR

What a target uses, read from the build tree this machine made: the headers
its objects were compiled with (ninja -t deps), the libraries it links
(ninja -t inputs) and the tools that built it (CMakeCache.txt, build.ninja)
for a build stage; the shared libraries the program loads (ldd) for a
runtime stage. Each file's package comes from dpkg -S. Seconds, not the
minutes building the images takes, so it runs with every test run.
"""
import os
import re
import subprocess
import sys

build, src = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
failures = []


def fail(message):
    failures.append(message)
    print("FAIL: " + message)


def run(*args, cwd=None):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True,
                          check=True).stdout


def roles(*names):
    out = run(os.path.join(src, "scripts/packages.sh"), *names)
    return set(out.split())


# --- What each installed package depends on, and what a bare image has ---
installed = {}  # name -> (priority, essential, [[alternatives], ...], provides)
for line in run("dpkg-query", "-W", "-f",
                "${Package}\t${db:Status-Abbrev}\t${Priority}\t${Essential}\t"
                "${Depends}, ${Pre-Depends}\t${Provides}\n").splitlines():
    name, status, priority, essential, depends, provides = line.split("\t")
    if not status.startswith("ii"):
        continue
    groups = []
    for group in depends.split(","):
        alternatives = [re.split(r"[\s(:]", a.strip())[0]
                        for a in group.split("|") if a.strip()]
        if alternatives:
            groups.append(alternatives)
    installed[name] = (priority, essential, groups,
                       [re.split(r"[\s(]", p.strip())[0]
                        for p in provides.split(",") if p.strip()])
providers = {}
for name, (_, _, _, provides) in installed.items():
    for virtual in provides:
        providers.setdefault(virtual, []).append(name)


def closure(packages):
    """The packages apt installs for `packages`: each with its dependencies
    (an alternative met by the first installed one), transitively."""
    seen, todo = set(), list(packages)
    while todo:
        name = todo.pop()
        candidates = [name] if name in installed else providers.get(name, [])
        for real in candidates[:1]:
            if real in seen:
                continue
            seen.add(real)
            for alternatives in installed[real][2]:
                if any(a in seen for a in alternatives):
                    continue
                met = [a for a in alternatives
                       if a in installed or a in providers]
                todo.extend(met[:1])
    return seen


base = closure([n for n, (priority, essential, _, _) in installed.items()
                if priority == "required" or essential == "yes"])


def owners(paths):
    """path -> set of packages owning it (or its real path), via dpkg -S."""
    candidates = {}
    for p in paths:
        forms = {p, os.path.realpath(p)}
        for f in list(forms):  # Merged /usr: dpkg may know either name.
            if f.startswith("/usr/lib/") or f.startswith("/usr/bin/"):
                forms.add(f[4:])
            elif f.startswith("/lib/") or f.startswith("/bin/"):
                forms.add("/usr" + f)
        candidates[p] = forms
    every = sorted(set().union(*candidates.values())) if candidates else []
    found = {}
    for start in range(0, len(every), 500):
        out = subprocess.run(["dpkg", "-S", *every[start:start + 500]],
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            if ": " not in line:
                continue
            packages, path = line.split(": ", 1)
            for package in packages.split(", "):
                found.setdefault(path, set()).add(package.split(":")[0])
    return {p: set().union(*(found.get(f, set()) for f in forms))
            for p, forms in candidates.items()}


# --- What the targets use ---
deps = {}  # object's source -> headers
current = None
for line in run("ninja", "-t", "deps", cwd=build).splitlines():
    if not line.startswith(" "):
        current = None
        if line.strip():
            current = []
            deps[id(current)] = current
        continue
    if current is not None:
        current.append(line.strip())
headers_by_source = {}
for headers in deps.values():
    if headers:
        source = os.path.normpath(os.path.join(build, headers[0]))
        headers_by_source[source] = headers[1:]


def build_files(target):
    inputs = [os.path.normpath(os.path.join(build, p)) for p in
              run("ninja", "-t", "inputs", target, cwd=build).split()]
    files = {p for p in inputs if p.startswith("/usr/")}
    for source in inputs:
        for header in headers_by_source.get(source, []):
            header = os.path.normpath(os.path.join(build, header))
            if header.startswith("/usr/"):
                files.add(header)
    return files


def tools():
    cache = open(os.path.join(build, "CMakeCache.txt")).read()
    paths = set()
    for key in ["CMAKE_CXX_COMPILER", "CMAKE_MAKE_PROGRAM", "CMAKE_COMMAND",
                "PKG_CONFIG_EXECUTABLE", "Protobuf_PROTOC_EXECUTABLE"]:
        m = re.search(r"^%s:\w+=(.+)$" % key, cache, re.M)
        if m and m.group(1).startswith("/"):
            paths.add(m.group(1))
    ninja_file = open(os.path.join(build, "build.ninja")).read()
    paths.update(re.findall(r"(/usr/\S*grpc_cpp_plugin)", ninja_file))
    return paths


def runtime_files(binary):
    files = set()
    for line in run("ldd", os.path.join(build, binary)).splitlines():
        m = re.search(r"=> (/\S+)", line) or re.match(r"\s*(/\S+)", line)
        if m:
            files.add(m.group(1))
    return files


def check(stage, role_names, files, what):
    brought = closure(roles(*role_names)) | base
    by_file = owners(sorted(files))
    missing = {}
    for path, packages in sorted(by_file.items()):
        if not packages:
            fail("%s: no package owns %s (%s uses it)" % (stage, path, what))
        elif not packages & brought:
            missing.setdefault(", ".join(sorted(packages)), path)
    for packages, path in sorted(missing.items()):
        fail("%s: %s needs %s (e.g. %s), which role %s does not bring "
             "(scripts/packages.txt)" % (stage, what, packages, path,
                                         " + ".join(role_names)))
    print("%-20s %4d files of %s: every one from %s%s" % (
        stage, len(by_file), what, " + ".join(role_names),
        "" if not missing else " -- except the above"))


stages = [
    ("build-coordinator", ["coordinator-build"],
     build_files("server/distill-coordinator") | build_files("client/distill")
     | tools(), "distill-coordinator and distill's build"),
    ("build-worker", ["coordinator-build", "worker-build"],
     build_files("worker/distill-worker") | tools(), "distill-worker's build"),
    ("coordinator", ["coordinator-runtime"],
     runtime_files("server/distill-coordinator")
     | runtime_files("client/distill"), "distill-coordinator and distill"),
    ("worker", ["worker-runtime"],
     runtime_files("worker/distill-worker") | runtime_files("client/distill"),
     "distill-worker and distill"),
]
for stage, role_names, files, what in stages:
    check(stage, role_names, files, what)

# --- The Dockerfile and setup.sh take their packages from the list only ---
dockerfile = open(os.path.join(src, "deploy/Dockerfile")).read()
want = {"build-coordinator": "coordinator-build", "build-worker": "worker-build",
        "coordinator": "coordinator-runtime", "worker": "worker-runtime"}
stage_of = None
for block in re.split(r"\n(?=FROM )", dockerfile):
    m = re.match(r"FROM \S+ AS (\S+)", block)
    if not m:
        continue
    stage_of = m.group(1)
    installs = re.findall(r"apt-get install(?:[^\n\\]|\\\n)*", block)
    if stage_of in want and not installs:
        fail("Dockerfile stage %s installs no packages" % stage_of)
    for install in installs:
        words = re.sub(r"\\\n", " ", install).split()
        listed = re.findall(r"packages\.sh ([\w-]+)\)", install)
        if listed != [want.get(stage_of)]:
            fail("Dockerfile stage %s installs %s, not role %s" %
                 (stage_of, listed or "packages named inline",
                  want.get(stage_of)))
        names = [w for w in words[2:] if not w.startswith("-")
                 and "packages.sh" not in w and not w.startswith("$(")
                 and w not in ("&&", "rm", "-rf") and not w.endswith(")")]
        inline = [w for w in names if re.match(r"^[a-z0-9][a-z0-9.+-]+$", w)
                  and w not in ("install",)]
        if inline:
            fail("Dockerfile stage %s names packages inline: %s" %
                 (stage_of, " ".join(inline)))
all_roles = sorted(set(re.findall(r"^([\w-]+):", open(
    os.path.join(src, "scripts/packages.txt")).read(), re.M)))
setup = open(os.path.join(src, "scripts/setup.sh")).read()
m = re.search(r"packages\.sh ((?:[\w-]+\s*\\?\s*)+)\)", setup)
if not m or sorted(m.group(1).replace("\\", " ").split()) != all_roles:
    fail("scripts/setup.sh does not install every role of packages.txt (%s)"
         % ", ".join(all_roles))

if failures:
    print("%d failures" % len(failures))
    sys.exit(1)
print("packages: every stage's list brings what its targets use")
