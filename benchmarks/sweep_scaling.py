"""Runs per minute of a sweep: the local engine (one run after another) against Ray with 2 one-thread workers.

Method: the same 12 small digits runs (small_cnn, 3 arms × 4 seeds, 1 CPU thread each) are swept into a
fresh folder by each engine, `--repeats` times, the two engines interleaved (local, ray, local, ray, ...)
so that a machine whose load changes slows both alike. The Ray cluster (2 CPUs) is started once, before
timing: its start-up (~20-30 s here) is paid once per sweep, not per run, and is printed apart; an untimed
first round of both engines starts Ray's worker processes (each imports torch, loads digits). The ratio is
the median over repeats of (Ray runs/min ÷ local runs/min) within the same repeat. Target: ≥ 1.6× on a
2-core machine, which needs both cores free: the last line says how busy the machine was.

    python benchmarks/sweep_scaling.py                 # 12 runs, 3 repeats
    python benchmarks/sweep_scaling.py --repeats 1 --epochs 4
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import hardbatch.sweep as sw  # noqa: E402
from hardbatch import RunConfig  # noqa: E402
from hardbatch.config import idle_cpus  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--target", type=float, default=1.6)
    args = p.parse_args(argv)

    import ray

    base = RunConfig(model="small_cnn", dataset="digits", batch_size=64, epochs=args.epochs, lr=0.05, device="cpu",
                     threads=1)
    grid = dict(models=("small_cnn",), datasets=("digits",), deltas=(0.2,), seeds=(0, 1, 2, 3))
    n = len(sw.plan(**grid, base=base))
    idle = [idle_cpus(1.0)]
    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    print(f"Ray start-up: {time.perf_counter() - t0:.1f} s (once per sweep, not counted below)")
    rates = {"local": [], "ray": []}
    try:
        for r in range(-1, args.repeats):  # round -1: untimed warm-up
            for engine in ("local", "ray"):
                with tempfile.TemporaryDirectory() as out:
                    t = time.perf_counter()
                    s = sw.sweep(out, **grid, base=base, engine=engine, cpus_per_run=1, progress=False,
                                 log=lambda *_: None)
                    wall = time.perf_counter() - t
                assert len(s["ran"]) == n, s
                if r < 0:
                    continue
                rates[engine].append(n / wall * 60)
                print(f"repeat {r + 1} {engine:5s}: {n} runs in {wall:5.1f} s = {rates[engine][-1]:5.1f} runs/min",
                      flush=True)
            idle.append(idle_cpus(1.0))
    finally:
        ray.shutdown()
    ratio = statistics.median(b / a for a, b in zip(rates["local"], rates["ray"]))
    print(f"local {statistics.median(rates['local']):.1f} runs/min, Ray ({args.workers} workers) "
          f"{statistics.median(rates['ray']):.1f} runs/min: ratio {ratio:.2f}x (target {args.target}x)")
    idle = [i for i in idle if i is not None]
    if idle:
        print(f"machine: {os.cpu_count()} CPUs, {min(idle):.1f}-{max(idle):.1f} of them idle between repeats, "
              f"load average {os.getloadavg()[0]:.1f}")
    return 0 if ratio >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
