"""How much slower `hardbatch compare` gets when another torch process keeps the CPUs busy.

torch runs each operation on all its threads and waits for the slowest; when another process holds
the cores, one of those threads waits for a core and every operation waits with it. hardbatch
therefore gives its own small nets one thread by default (config.default_threads), decided by the model,
never by the load, so a busy machine makes a run slower but never changes its numbers. This script measures the effect end to end: the same reduced compare
(one seed: 7 runs), timed quiet and with a concurrent busy torch process (two threads, matrix
products in a loop), interleaved so that slow drifts of the machine hit both alike. It prints
the median of each, their ratio and the load the machine had, and exits 1 when the ratio
exceeds --target (3 by default).

    python benchmarks/busy_machine.py                      # hardbatch's default threads (1 for small_cnn)
    python benchmarks/busy_machine.py --extra --threads 2  # as before: one thread per core, busy or not

Measure on a machine you know: the load average printed before each timing says what else ran.
The busy process starts in its own session, as one started from another terminal would; with
--same-session it shares compare's, and Linux's autogroup scheduler then splits one session's CPU
share between them (three threads where compare alone had one), which by itself makes compare
about 3x slower whatever hardbatch does.
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BUSY = ("import torch\n"
        "torch.set_num_threads({threads})\n"
        "a = torch.randn(512, 512)\n"
        "while True:\n"
        "    a = torch.tanh(a @ a)\n")


def load():
    """The 1-minute load average and the runnable tasks now, from /proc/loadavg (or os.getloadavg)."""
    try:
        words = open("/proc/loadavg").read().split()
        return f"load {words[0]} (1 min), {words[3].split('/')[0]} runnable"
    except OSError:
        return f"load {os.getloadavg()[0]:.2f} (1 min)"


def time_compare(args, out):
    """Wall-clock seconds of one `hardbatch compare` in a fresh process."""
    cmd = [sys.executable, "-m", "hardbatch", "compare", "--device", "cpu", "--seeds", *args.seeds,
           "--out", out, *args.extra]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS" or args.keep_omp_num_threads}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"compare failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="quiet/busy pairs (interleaved)")
    parser.add_argument("--seeds", nargs="+", default=["0"], help="compare's seeds (default: one, 7 runs)")
    parser.add_argument("--busy-threads", type=int, default=2, help="threads of the concurrent torch process")
    parser.add_argument("--target", type=float, default=3.0, help="largest acceptable busy/quiet ratio")
    parser.add_argument("--same-session", action="store_true",
                        help="start the busy process in this session (default: its own, like another terminal's)")
    parser.add_argument("--keep-omp-num-threads", action="store_true",
                        help="pass OMP_NUM_THREADS on to compare (default: removed, so hardbatch chooses)")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                        help="further compare options, e.g. --extra --threads 2 --epochs 5")
    args = parser.parse_args()

    print(f"compare --seeds {' '.join(args.seeds)} {' '.join(args.extra)}; {os.cpu_count()} CPUs; "
          f"busy process: {args.busy_threads} torch threads, {'this' if args.same_session else 'its own'} session")
    times = {"quiet": [], "busy": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for kind in (("quiet", "busy") if r % 2 == 0 else ("busy", "quiet")):
                busy = None
                if kind == "busy":
                    busy = subprocess.Popen([sys.executable, "-c", BUSY.format(threads=args.busy_threads)],
                                            env={**os.environ, "OMP_NUM_THREADS": str(args.busy_threads)},
                                            start_new_session=not args.same_session)
                    time.sleep(3)  # let it import torch and start computing
                before = load()
                try:
                    seconds = time_compare(args, os.path.join(tmp, f"{kind}{r}"))
                finally:
                    if busy is not None:
                        busy.send_signal(signal.SIGTERM)
                        busy.wait()
                times[kind].append(seconds)
                print(f"repeat {r + 1} {kind:5s}: {seconds:6.1f} s   ({before} before)", flush=True)
    quiet, busy = statistics.median(times["quiet"]), statistics.median(times["busy"])
    ratio = busy / quiet
    print(f"median quiet {quiet:.1f} s, busy {busy:.1f} s: busy / quiet = {ratio:.2f} (target <= {args.target:g})")
    return 0 if ratio <= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
