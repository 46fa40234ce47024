#!/usr/bin/python3
"""Replays the median rule on a sweep that ran without early stopping.

usage: early_stopping_replay.py DISTILL_DB SWEEP_NAME

Reads every run's per-epoch eval/top1 from the coordinator's database (read
only) and replays, for several warm-up / min_completed settings, what the
coordinator's median rule would have stopped had the sweep run with it on
one worker in submission order: the share of epochs that would have run,
and the best member left (the highest mean final top-1 of its seeds, among
members whose every seed completed). Two forms of the rule: per member (a
member's seeds judged as one, on their mean curve, stopped together: what
the coordinator does) and per run (each seed judged alone). Training here is
deterministic, so a run that runs in both arms has the same curve in both:
`bench/run.sh earlystop` checks the replay of the example's own setting
against the arm it measured.
"""
import sqlite3
import statistics
import sys


def load(db_path, sweep):
    db = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
    key = db.execute(
        "SELECT id FROM metric_keys WHERE key = 'eval/top1'").fetchone()[0]
    sweep_id = db.execute("SELECT id FROM sweeps WHERE name = ?",
                          (sweep,)).fetchone()[0]
    curves = {}
    for run_id, member in db.execute(
            "SELECT id, member FROM runs WHERE sweep_id = ? AND kind = 2 "
            "ORDER BY id", (sweep_id,)).fetchall():
        by_epoch = {}
        for epoch, value in db.execute(
                "SELECT epoch, value FROM metric_points WHERE run_id = ? AND "
                "key_id = ? ORDER BY sequence", (run_id, key)):
            if epoch > 0:
                by_epoch[epoch] = value
        curves[member] = [by_epoch[e] for e in sorted(by_epoch)]
    return curves


def without_seed(name):
    at = name.rfind("seed=")
    if at < 0 or (at > 0 and name[at - 1] != "/"):
        return name
    return name[:max(at - 1, 0)]


def replay(curves, warmup, min_completed, per_member):
    """Returns (epochs run / all epochs, best member left, runs stopped)."""
    names = list(curves)
    epochs = max(len(c) for c in curves.values())
    group = (lambda n: without_seed(n)) if per_member else (lambda n: n)
    members = {}
    for n in names:
        members.setdefault(group(n), []).append(n)
    done, stopped, cost = set(), set(), 0

    def mean_at(runs, e):
        return statistics.mean(curves[r][e - 1] for r in runs)

    for n in names:
        if n in stopped:
            continue
        mine = group(n)
        ran = epochs
        for e in range(warmup + 1, epochs):
            complete = [m for m, runs in members.items()
                        if m != mine and all(r in done for r in runs)]
            if len(complete) < min_completed:
                continue
            median = statistics.median(
                mean_at(members[m], e) for m in complete)
            value = mean_at([r for r in members[mine] if r in done] + [n], e)
            if value < median:
                ran = e
                stopped.update(r for r in members[mine] if r not in done)
                break
        cost += ran
        if ran == epochs:
            done.add(n)
    finals = {}
    for n in names:
        m = without_seed(n)
        finals.setdefault(m, []).append(n)
    left = {m: statistics.mean(curves[r][-1] for r in runs)
            for m, runs in finals.items() if all(r in done for r in runs)}
    best = max(left, key=left.get) if left else "-"
    return cost / (epochs * len(names)), best, sorted(stopped)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    curves = load(sys.argv[1], sys.argv[2])
    finals = {}
    for n, c in curves.items():
        finals.setdefault(without_seed(n), []).append(c[-1])
    means = {m: statistics.mean(v) for m, v in finals.items()}
    best = max(means, key=means.get)
    print("without the rule: best member %s at %.3f %% (mean of its seeds)"
          % (best, 100 * means[best]))
    print("%-10s %7s %14s %11s  %s" % ("rule", "warm-up", "min_completed",
                                       "epochs run", "best member left"))
    for per_member in (True, False):
        for warmup in (1, 2, 3):
            for min_completed in (1, 2, 3):
                share, left, _ = replay(curves, warmup, min_completed,
                                        per_member)
                print("%-10s %7d %14d %10.0f%%  %s%s" % (
                    "per member" if per_member else "per run", warmup,
                    min_completed, 100 * share, left,
                    "" if left == best else "  (differs)"))


if __name__ == "__main__":
    main()
