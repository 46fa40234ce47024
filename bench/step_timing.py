"""How bench/'s PyTorch programs time a training step, as the engine's do:
warm-up steps, then either lockstep (bench/lockstep.py: one step per line
read, its seconds printed) or each of `steps` steps timed on its own, the
median step (what a shared, noisy machine distorts least) and the mean."""
import sys
import time


def run(step, batch, args, describe):
    """Runs `step` as args (warmup, steps, lockstep) say; prints
    "pytorch DESCRIBE images/s MEDIAN mean MEAN" unless in lockstep."""
    for _ in range(args.warmup):
        step()
    if args.lockstep:
        print("ready %d" % batch, flush=True)
        for _ in sys.stdin:
            start = time.perf_counter()
            step()
            print(time.perf_counter() - start, flush=True)
        return
    seconds = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    median = sorted(seconds)[args.steps // 2]
    print("pytorch %s images/s %.1f mean %.1f"
          % (describe, batch / median, batch * args.steps / sum(seconds)))
