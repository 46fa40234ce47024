#!/usr/bin/python3
"""Upgrades from every schema version: tools/schema_fixtures.py builds a data
directory at each version 1 to now, with runs in every state; each is moved
(its old absolute run-file paths then point nowhere) and opened by this
build's coordinator, which migrates it; then every listing is read with the
CLI and checked, the same for every version: runs and their states (the
leases of the gone coordinator expired, their runs queued again), a run's
details, files and metrics, the sweep's results, workers, downloads, a write,
a restart on the migrated directory.

Usage: upgrade_test.py BUILD_DIR SOURCE_DIR
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BUILD, SOURCE = sys.argv[1], sys.argv[2]
WORK = tempfile.mkdtemp(prefix="distill-upgrade-")
COORDINATOR = os.path.join(BUILD, "server/distill-coordinator")
DISTILL = os.path.join(BUILD, "client/distill")
PROCS = []


def cleanup():
    for p in PROCS:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(WORK, ignore_errors=True)


def fail(message, log=None):
    print("FAIL:", message, file=sys.stderr)
    if log and os.path.exists(log):
        print(open(log).read()[-3000:], file=sys.stderr)
    cleanup()
    sys.exit(1)


def start(data, log):
    before = len(re.findall(r"\(port (\d+)\)", open(log).read())
                 ) if os.path.exists(log) else 0
    with open(log, "a") as out:
        p = subprocess.Popen([COORDINATOR, "--listen=127.0.0.1:0",
                              "--auth=none", "--data_dir=" + data,
                              "--min_free_disk=0", "--gc_every=0"],
                             stdout=out, stderr=subprocess.STDOUT)
    PROCS.append(p)
    for _ in range(200):
        ports = re.findall(r"\(port (\d+)\)", open(log).read())
        if len(ports) > before and p.poll() is None:
            return p, "127.0.0.1:" + ports[-1]
        if p.poll() is not None:
            fail("the coordinator exited %s on %s" % (p.returncode, data), log)
        time.sleep(0.05)
    fail("the coordinator did not start on " + data, log)


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)


def cli(address, *args, ok=True):
    r = subprocess.run([DISTILL, "--coordinator=" + address] + list(args),
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, DISTILL_TOKEN_FILE=""))
    if ok and r.returncode != 0:
        fail("distill %s exited %d: %s%s" % (" ".join(args), r.returncode,
                                             r.stdout, r.stderr))
    return r.stdout


def statuses(listing):
    """run id -> status word of `runs list`."""
    found = {}
    for line in listing.splitlines():
        words = line.split()
        if len(words) > 4 and words[0].isdigit():
            found[int(words[0])] = words[4]  # id sweep kind member status
    return found


def without(text, *patterns):
    return "\n".join(line for line in text.splitlines()
                     if not any(re.search(p, line) for p in patterns))


def check_version(version, fixture):
    data = os.path.join(WORK, "v%03d" % version)
    shutil.copytree(fixture, data)
    shutil.rmtree(fixture)  # Its absolute run-file paths now lead nowhere.
    log = os.path.join(WORK, "v%03d.log" % version)
    coordinator, address = start(data, log)
    where = "schema %d" % version

    # The gone coordinator's leases expired long ago: runs 3 and 6 are
    # queued again (attempt fenced) within a second of the start.
    for _ in range(100):
        listing = cli(address, "runs", "list")
        if statuses(listing).get(3) == "QUEUED":
            break
        time.sleep(0.1)
    want = {1: "SUCCEEDED", 2: "SUCCEEDED", 3: "QUEUED", 4: "QUEUED",
            5: "FAILED", 6: "QUEUED", 7: "WAITING", 8: "CANCELLED"}
    if version >= 7:
        want[9] = "PRUNED"
    if statuses(listing) != want:
        fail("%s: runs list shows %s, want %s\n%s" % (
            where, statuses(listing), want, listing), log)

    show = cli(address, "runs", "show", "2")
    for expected in ["eval/top1 = 0.7800", "file checkpoint (17 B",
                     "SUCCEEDED"] + (["file tsne.csv"] if version >= 2
                                     else []) + (
            ["paper=table1", "the best so far"] if version >= 9 else []):
        if expected not in show:
            fail("%s: runs show 2 lacks %r:\n%s" % (where, expected, show),
                 log)
    metrics = cli(address, "runs", "metrics", "2").strip().splitlines()
    if len(metrics) != 4 or not metrics[-1].startswith("20,1,2,eval/top1"):
        fail("%s: runs metrics 2: %s" % (where, metrics), log)
    results = cli(address, "results", "old-sweep")
    for expected in [r"\bD\b.*78\.0", r"teacher ViT.*83\.0", r"\bG\b.*QUEUED",
                     r"\bB\b.*FAILED"]:
        if not re.search(expected, results):
            fail("%s: results lack %r:\n%s" % (where, expected, results), log)
    workers = cli(address, "workers", "list")
    if not re.search(r"gpu-old-1\s+lost", workers):
        fail("%s: workers list:\n%s" % (where, workers), log)
    target = os.path.join(WORK, "teacher-%03d.pt" % version)
    cli(address, "download", "1", "checkpoint", target)
    if open(target, "rb").read() != b"teacher weights of schema %03d" % version:
        fail("%s: the teacher's checkpoint downloads other bytes" % where, log)
    if version < 8:
        # The migration to 8 derives every stored spec's fields.
        found = statuses(cli(address, "runs", "list", "--where",
                             "losses.ikd.weight=1"))
        if sorted(found) != [3, 4, 5]:
            fail("%s: --where losses.ikd.weight=1 finds %s" % (where, found),
                 log)
    # Writes work, and a restart on the migrated directory keeps them.
    if "CANCELLED" not in cli(address, "cancel", "4"):
        fail("%s: cancel 4" % where, log)
    stop(coordinator)
    coordinator, address = start(data, log)
    after = cli(address, "runs", "list")
    if statuses(after).get(4) != "CANCELLED":
        fail("%s: the cancel is lost across a restart:\n%s" % (where, after),
             log)
    csv = cli(address, "results", "old-sweep", "--format=csv")
    stop(coordinator)
    # What every version shows alike: the listing without the run a version
    # before early stopping cannot have, the results without their bytes.
    rows = without(csv, r"^D/late,").splitlines()
    bytes_at = rows[0].split(",").index("file_bytes") if rows else -1
    return (without(listing, r"^\s*9\s"),
            "\n".join(",".join(c for i, c in enumerate(line.split(","))
                               if i != bytes_at) for line in rows))


def main():
    fixtures = os.path.join(WORK, "fixtures")
    made = subprocess.run(
        ["/usr/bin/python3", os.path.join(SOURCE, "tools/schema_fixtures.py"),
         fixtures, SOURCE], capture_output=True, text=True)
    if made.returncode != 0:
        fail("schema_fixtures.py: " + made.stderr)
    directories = made.stdout.split()
    seen = {}
    for version, fixture in enumerate(directories, 1):
        seen[version] = check_version(version, fixture)
        print("schema %3d: migrated, every listing as expected" % version)
    newest = seen[len(directories)]
    for version, shown in seen.items():
        for name, a, b in (("runs list", shown[0], newest[0]),
                           ("results", shown[1], newest[1])):
            if a != b:
                fail("schema %d's %s differs from schema %d's:\n%s\n---\n%s"
                     % (version, name, len(directories), a, b))
    print("upgrade: %d schema versions, each migrated to %d and listed alike"
          % (len(directories), len(directories)))
    cleanup()


main()
