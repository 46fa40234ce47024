#!/usr/bin/python3
"""Times two training-step programs in lockstep: A's step, B's step, B's, A's,
... each started by a line on its stdin and answered with its seconds, so
that both see the same machine at (nearly) the same moment. On a shared,
noisy machine the speed drifts by 30 % within a minute; whole-run timings of
one program after the other then measure the drift, not the programs.

  bench/lockstep.py PAIRS A-COMMAND... -- B-COMMAND...

Each program builds its model, warms up, prints "ready IMAGES_PER_STEP", then
steps once per line read. Prints each program's images/s of its median step,
the ratio A/B of those, and the median of the pair-by-pair ratios."""
import statistics
import subprocess
import sys


def start(command):
    process = subprocess.Popen(command, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    ready = process.stdout.readline().split()
    if not ready or ready[0] != "ready":
        sys.exit("%s did not start: %r" % (command[0], ready))
    return process, int(ready[1])


def step(process):
    process.stdin.write("\n")
    process.stdin.flush()
    return float(process.stdout.readline())


def main():
    pairs = int(sys.argv[1])
    split = sys.argv.index("--")
    a, images_a = start(sys.argv[2:split])
    b, images_b = start(sys.argv[split + 1:])
    ratios, rates_a, rates_b = [], [], []
    for i in range(pairs):
        if i % 2 == 0:
            sa = step(a)
            sb = step(b)
        else:
            sb = step(b)
            sa = step(a)
        rates_a.append(images_a / sa)
        rates_b.append(images_b / sb)
        ratios.append(rates_a[-1] / rates_b[-1])
    for process in (a, b):
        process.stdin.close()
        process.wait()
    ma, mb = statistics.median(rates_a), statistics.median(rates_b)
    wins = sum(r > 1 for r in ratios)
    print("A images/s, median step of %d: %.1f (range %.1f-%.1f)"
          % (pairs, ma, min(rates_a), max(rates_a)))
    print("B images/s, median step of %d: %.1f (range %.1f-%.1f)"
          % (pairs, mb, min(rates_b), max(rates_b)))
    print("ratio A/B of the medians: %.3f; median of the %d pair ratios: %.3f"
          " (A faster in %d)" % (ma / mb, pairs, statistics.median(ratios),
                                 wins))


if __name__ == "__main__":
    main()
