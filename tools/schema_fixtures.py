#!/usr/bin/python3
"""Builds a coordinator data directory at every schema version, as the
coordinator of that version left it: OUT/schema-NNN/distill.db (migrations/
001 to NNN applied, as each release applied them) with its run-files/.

Each holds the same lab history, written in the columns its version has:
a sweep "old-sweep" whose teacher (run 1) succeeded with a checkpoint and
metrics, students that succeeded (2, with a t-SNE file from version 2 on),
is running (3, leased to worker gpu-old-1), is queued (4) and failed (5);
a lone teacher that is running (6) and a student waiting on it (7); a
cancelled run (8) and, from version 7 (early stopping), a pruned one (9);
a worker; from version 4 tokens; from 9 tags and a note; from 10
provenance. tests/upgrade_test.py opens each with the current coordinator.

Usage: schema_fixtures.py OUT SOURCE_DIR
"""

import glob
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

OUT, SOURCE = sys.argv[1], sys.argv[2]
NOW = 1_764_000_000_000  # 2025-11-24, a fixed moment: listings compare.

# Python modules for the specs, generated from proto/ as any client's.
gen = tempfile.mkdtemp(prefix="distill-fixtures-")
subprocess.run(
    ["protoc", "-I", os.path.join(SOURCE, "proto"), "--python_out", gen] +
    [os.path.relpath(p, os.path.join(SOURCE, "proto"))
     for p in glob.glob(os.path.join(SOURCE, "proto/distill/v1/*.proto"))],
    check=True)
sys.path.insert(0, gen)
from distill.v1 import spec_pb2  # noqa: E402

WAITING, QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, PRUNED = range(1, 8)
TRAIN_TEACHER, DISTILL = 1, 2


def spec(kind, ce=0.0, ikd=0.0, teacher_run=0):
    s = spec_pb2.ExperimentSpec()
    s.kind = kind
    s.dataset.name = "fashion-mnist"
    s.dataset.train_limit = 512
    s.epochs = 2
    s.batch_size = 32
    s.seed = 7
    if kind == TRAIN_TEACHER:
        s.teacher.vit.preset = "small-28"
    else:
        s.student.arch = "resnet18"
        s.student.width = 8
        s.losses.ce = ce
        s.losses.ikd.weight = ikd
        s.teacher.run_id = teacher_run
    return s.SerializeToString()


def sweep_spec():
    s = spec_pb2.SweepSpec()
    s.name = "old-sweep"
    s.base.dataset.name = "fashion-mnist"
    s.teacher.train.teacher.vit.preset = "small-28"
    for name, ce, ikd in (("D", 1, 0), ("G", 1, 1), ("H", 1, 1), ("B", 0, 1)):
        m = s.members.add()
        m.name = name
        m.losses.ce = ce
        m.losses.ikd.weight = ikd
    return s.SerializeToString()


# id, sweep, member, kind, spec, status, attempt, worker, message,
# teacher run, result top-1, since version
RUNS = [
    (1, 1, "teacher", TRAIN_TEACHER, spec(TRAIN_TEACHER), SUCCEEDED, 1,
     "gpu-old-1", "", 0, 0.83, 1),
    (2, 1, "D", DISTILL, spec(DISTILL, 1, 0, 1), SUCCEEDED, 2, "gpu-old-1",
     "", 1, 0.78, 1),
    (3, 1, "G", DISTILL, spec(DISTILL, 1, 1, 1), RUNNING, 1, "gpu-old-1",
     "", 1, None, 1),
    (4, 1, "H", DISTILL, spec(DISTILL, 1, 1, 1), QUEUED, 0, "", "", 1, None,
     1),
    (5, 1, "B", DISTILL, spec(DISTILL, 0, 1, 1), FAILED, 1, "gpu-old-1",
     "CUDA out of memory", 1, None, 1),
    (6, 0, "", TRAIN_TEACHER, spec(TRAIN_TEACHER), RUNNING, 1, "gpu-old-1",
     "", 0, None, 1),
    (7, 0, "", DISTILL, spec(DISTILL, 1, 0, 6), WAITING, 0, "", "", 6, None,
     1),
    (8, 0, "", DISTILL, spec(DISTILL, 1, 0, 1), CANCELLED, 0, "",
     "cancelled by request", 1, None, 1),
    (9, 1, "D/late", DISTILL, spec(DISTILL, 1, 0, 1), PRUNED, 1,
     "gpu-old-1", "pruned at epoch 1: eval/top1 0.41 below the median 0.60",
     1, None, 7),
]


def columns(db, table):
    return [row[1] for row in db.execute("PRAGMA table_info(%s)" % table)]


def insert(db, table, row):
    """Inserts the values of `row` the table has columns for."""
    have = set(columns(db, table))
    row = {k: v for k, v in row.items() if k in have}
    db.execute("INSERT INTO %s(%s) VALUES (%s)" % (
        table, ", ".join(row), ", ".join("?" * len(row))), list(row.values()))


def run_file(directory, db, version, run_id, attempt, name, content):
    digest = hashlib.sha256(content).hexdigest()
    # Before version 3 run files were checkpoints, in checkpoints/.
    folder = os.path.join(directory,
                          "checkpoints" if version < 3 else "run-files")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, digest)
    with open(path, "wb") as f:
        f.write(content)
    table = "run_files" if "run_files" in tables(db) else "checkpoints"
    # Before version 11 a record held the file's absolute path.
    insert(db, table, {"sha256": digest, "run_id": run_id,
                       "attempt": attempt, "size": len(content),
                       "path": os.path.abspath(path) if version < 11
                       else "run-files/" + digest,
                       "created_ms": NOW, "name": name})
    return digest


def tables(db):
    return {row[0] for row in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}


def metrics(db, run_id, attempt, points):
    """points: (step, epoch, key, value), in the table of the version."""
    if "metric_points" not in tables(db):
        for step, epoch, key, value in points:
            insert(db, "metrics", {"run_id": run_id, "attempt": attempt,
                                   "step": step, "epoch": epoch, "key": key,
                                   "value": value, "time_ms": NOW + step})
        return
    last = db.execute("SELECT COALESCE(MAX(sequence), 0) FROM metric_points "
                      "WHERE run_id = ?", [run_id]).fetchone()[0]
    for sequence, (step, epoch, key, value) in enumerate(points, last + 1):
        db.execute("INSERT OR IGNORE INTO metric_keys(key) VALUES (?)",
                   [key])
        key_id = db.execute("SELECT id FROM metric_keys WHERE key = ?",
                            [key]).fetchone()[0]
        db.execute("INSERT INTO metric_points VALUES (?,?,?,?,?,?,?,?)",
                   [run_id, key_id, sequence, attempt, step, epoch, value,
                    NOW + step])
        db.execute(
            "INSERT INTO run_metric_keys VALUES (?, ?, 1, ?, ?) "
            "ON CONFLICT(run_id, key_id) DO UPDATE SET "
            "points = points + 1, last_sequence = excluded.last_sequence",
            [run_id, key_id, sequence, sequence])


def build(version, migrations):
    directory = os.path.join(OUT, "schema-%03d" % version)
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    db = sqlite3.connect(os.path.join(directory, "distill.db"))
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, "
               "applied_ms INTEGER NOT NULL)")
    for v, path in enumerate(migrations[:version], 1):
        db.executescript(open(path).read())
        db.execute("INSERT INTO schema_version VALUES (?, ?)", [v, NOW])
    insert(db, "sweeps", {"id": 1, "name": "old-sweep", "spec": sweep_spec(),
                          "teacher_run_id": 1, "created_ms": NOW,
                          "max_concurrent": 0, "note": "the first sweep"})
    for (run_id, sweep, member, kind, blob, status, attempt, worker, message,
         teacher, top1, since) in RUNS:
        if version < since:
            continue
        leased = status == RUNNING
        insert(db, "runs", {
            "id": run_id, "sweep_id": sweep, "member": member, "kind": kind,
            "spec": blob, "status": status, "attempt": attempt,
            "max_restarts": 2, "worker_id": worker if leased else "",
            "lease_expires_ms": NOW + 60_000 if leased else 0,
            "message": message, "teacher_run_id": teacher,
            "created_ms": NOW + run_id, "started_ms":
            NOW + 100 * run_id if attempt else 0,
            "finished_ms": NOW + 1000 * run_id
            if status in (SUCCEEDED, FAILED, CANCELLED, PRUNED) else 0,
            "releases": 0, "priority": 0, "note": ""})
        if top1 is not None:
            insert(db, "run_results", {"run_id": run_id, "key": "eval/top1",
                                       "value": top1})
    teacher_sha = run_file(directory, db, version, 1, 1, "checkpoint",
                           b"teacher weights of schema %03d" % version)
    db.execute("UPDATE runs SET checkpoint_sha256 = ? WHERE id = 1",
               [teacher_sha])
    student_sha = run_file(directory, db, version, 2, 2, "checkpoint",
                           b"student D weights")
    db.execute("UPDATE runs SET checkpoint_sha256 = ? WHERE id = 2",
               [student_sha])
    if version >= 2:
        run_file(directory, db, version, 2, 2, "tsne.csv",
                 b"model,x,y,label\nteacher,1,2,3\nstudent,4,5,6\n")
        run_file(directory, db, version, 3, 1, "resume.pt", b"G after epoch 1")
    metrics(db, 1, 1, [(10, 0, "train/loss", 2.0), (20, 1, "train/loss", 1.0),
                       (20, 1, "eval/top1", 0.83)])
    metrics(db, 2, 1, [(10, 0, "train/loss", 2.5)])
    metrics(db, 2, 2, [(10, 0, "train/loss", 2.4), (20, 1, "eval/top1", 0.78)])
    metrics(db, 3, 1, [(10, 0, "train/loss", 2.2)])
    insert(db, "workers", {
        "id": "gpu-old-1", "hostname": "gpu-old", "device": "cuda:0",
        "threads": 8, "libtorch_version": "1.13.1", "blas": "openblas",
        "registered_ms": NOW, "last_seen_ms": NOW + 50_000, "token_id": 2,
        "draining": 0, "stopped_ms": 0, "distill_version": "0.9.0"})
    if "tokens" in tables(db):
        for token_id, name, role in ((1, "admin", 4), (2, "gpu-old", 3)):
            insert(db, "tokens", {
                "id": token_id, "name": name, "role": role,
                "sha256": hashlib.sha256(name.encode()).hexdigest(),
                "created_ms": NOW})
    if "tags" in tables(db):
        insert(db, "tags", {"kind": 1, "target_id": 2, "key": "paper",
                            "value": "table1"})
        db.execute("UPDATE runs SET note = 'the best so far' WHERE id = 2")
    if "run_provenance" in tables(db):
        insert(db, "run_provenance", {"run_id": 2, "key": "host",
                                      "value": "gpu-old"})
    db.commit()
    db.close()
    return directory


def main():
    migrations = sorted(glob.glob(os.path.join(SOURCE,
                                               "migrations/[0-9]*.sql")))
    os.makedirs(OUT, exist_ok=True)
    for version in range(1, len(migrations) + 1):
        print(build(version, migrations))
    shutil.rmtree(gen, ignore_errors=True)


main()
