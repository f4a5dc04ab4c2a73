"""The command line: `hardbatch run`, `hardbatch compare` (the main job).

Every bad value is caught at the boundary and reported in one line that names the value and
what is allowed, with exit status 2 and no traceback.
"""
import argparse
import math
import sys
from dataclasses import fields, replace
from pathlib import Path

from .config import DEVICES, METHODS, ORDERS, RunConfig
from .data import DATASETS
from .selection import STRATEGIES

DEFAULTS = RunConfig()


def _delta(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"delta must be a number in (0, 1], got {text!r}") from None
    if not (math.isfinite(v) and 0 < v <= 1):
        raise argparse.ArgumentTypeError(f"delta must be a number in (0, 1], got {text!r}")
    return v


def _int(low, name):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer >= {low}, got {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"{name} must be an integer >= {low}, got {text!r}")
        return v
    return parse


def _float(name, low, inclusive):
    def parse(text):
        try:
            v = float(text)
        except ValueError:
            v = math.nan
        if not math.isfinite(v) or v < low or (v == low and not inclusive):
            raise argparse.ArgumentTypeError(f"{name} must be a finite number {'>=' if inclusive else '>'} {low}, got {text!r}")
        return v
    return parse


def _add_run_options(p, compare=False):
    d = DEFAULTS
    p.add_argument("--dataset", choices=DATASETS, default=d.dataset, help="data set (default: %(default)s, embedded)")
    p.add_argument("--model", default=d.model, help="small_cnn or any timm model name (default: %(default)s)")
    if not compare:
        p.add_argument("--method", choices=METHODS, default=d.method, help="minibatch = Algorithm 1, hardbatch = Algorithm 2")
        p.add_argument("--order", choices=ORDERS, default=d.order, help="Algorithm 1's batch order")
        p.add_argument("--select", choices=tuple(STRATEGIES), default=d.select, help="Algorithm 2's strategy")
        p.add_argument("--delta", type=_delta, default=d.delta, help="fraction of batches per round, in (0, 1]")
        p.add_argument("--seed", type=_int(0, "seed"), default=d.seed)
    p.add_argument("--epochs", type=_int(1, "epochs"), default=d.epochs, help="E; the budget is N·E back-props")
    p.add_argument("--batch-size", type=_int(1, "batch size"), default=d.batch_size)
    p.add_argument("--lr", type=_float("lr", 0, False), default=d.lr)
    p.add_argument("--momentum", type=_float("momentum", 0, True), default=d.momentum)
    p.add_argument("--weight-decay", type=_float("weight decay", 0, True), default=d.weight_decay)
    p.add_argument("--image-size", type=_int(0, "image size"), default=d.image_size, help="0 = native size")
    p.add_argument("--subset", type=_int(0, "subset"), default=d.subset, help="train on this many samples (0 = all)")
    p.add_argument("--lr-schedule", choices=("constant", "cosine"), default=d.lr_schedule)
    p.add_argument("--augment", action="store_true", help="random crop + flip on the device")
    p.add_argument("--device", choices=DEVICES, default=d.device)


def build_parser():
    parser = argparse.ArgumentParser(prog="hardbatch", description="Train harder on the mini-batches with the highest loss.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="one run; writes its run record")
    _add_run_options(run)
    run.add_argument("--out", default="runs/run.json", help="run record to write (JSON)")
    run.add_argument("--checkpoint", default=None, help="checkpoint file, written every equivalent epoch")
    run.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists")

    cmp_ = sub.add_parser("compare", help="the main job: Algorithm 1 vs Algorithm 2 over seeds, table + figure")
    _add_run_options(cmp_, compare=True)
    cmp_.add_argument("--deltas", type=_delta, nargs="+", default=[0.8, 0.5, 0.2])
    cmp_.add_argument("--strategies", choices=tuple(STRATEGIES), nargs="+", default=["hardest", "random"])
    cmp_.add_argument("--seeds", type=_int(0, "seed"), nargs="+", default=[0, 1, 2])
    cmp_.add_argument("--out", default="runs/compare", help="folder for records, table.md and compare.png")
    return parser


def _config(args):
    names = {f.name for f in fields(RunConfig)}
    return RunConfig(**{k: v for k, v in vars(args).items() if k in names})


def _check_writable(path):
    path = Path(path)
    parent = path if path.suffix == "" and not path.exists() or path.is_dir() else path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = parent / ".hardbatch-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ValueError(f"cannot write to {str(path)!r}: {e.strerror or e}") from None


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _main(args)
    except (ValueError, FileNotFoundError) as e:
        parser.exit(2, f"hardbatch: error: {e}\n")


def _main(args):
    import time

    if args.command == "run":
        from .record import save_record
        from .train import train

        cfg = _config(args)
        _check_writable(Path(args.out).parent)
        record = train(cfg, checkpoint=args.checkpoint, resume=args.resume, progress=sys.stderr.isatty())
        save_record(record, args.out)
        last = record["history"][-1]
        print(f"{record['status']}: {record['backprops']} back-props over N={record['n_batches']} batches, "
              f"test top-1 {last['test_acc']:.2f}%, {record['time_per_backprop_s'] * 1e3:.2f} ms/back-prop -> {args.out}")
        return 0 if record["status"] == "complete" else 1

    if args.command == "compare":
        from .compare import compare

        _check_writable(args.out)
        base = replace(_config(args), method="hardbatch")
        t0 = time.perf_counter()
        records, rows, table, fig = compare(base, tuple(args.deltas), tuple(args.strategies), tuple(args.seeds), args.out)
        print(table)
        print(f"\n{len(records)} runs in {time.perf_counter() - t0:.1f} s; figure: {fig}; records: {Path(args.out) / 'records'}")
        return 0
    return 2
