"""The command line: `hardbatch run`, `hardbatch compare` (the main job), `hardbatch sweep`, `hardbatch report`.

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


def _float(name, low, inclusive, below=None):
    def parse(text):
        try:
            v = float(text)
        except ValueError:
            v = math.nan
        if not math.isfinite(v) or v < low or (v == low and not inclusive) or (below is not None and v >= below):
            allowed = f"{'>=' if inclusive else '>'} {low}" + (f" and < {below}" if below is not None else "")
            raise argparse.ArgumentTypeError(f"{name} must be a finite number {allowed}, got {text!r}")
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
    p.add_argument("--momentum", type=_float("momentum", 0, True, below=1), default=d.momentum)
    p.add_argument("--weight-decay", type=_float("weight decay", 0, True), default=d.weight_decay)
    p.add_argument("--image-size", type=_int(0, "image size"), default=d.image_size, help="0 = native size")
    p.add_argument("--subset", type=_int(0, "subset"), default=d.subset, help="train on this many samples (0 = all)")
    p.add_argument("--lr-schedule", choices=("constant", "cosine"), default=d.lr_schedule)
    p.add_argument("--augment", action="store_true", help="random crop + flip on the device")
    p.add_argument("--device", choices=DEVICES, default=d.device)
    p.add_argument("--download", action="store_true",
                   help="download a missing data set (needs internet; without it nothing is downloaded)")


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

    from .sweep import PAPER_BASE, PAPER_DATASETS, PAPER_DELTAS, PAPER_MODELS, RECIPES

    sw = sub.add_parser("sweep", help="every run of a grid (default: the paper's), resumable; then the report",
                        description="Algorithm 1, Algorithm 2 at each δ and the random control, for every model, "
                                    "data set, recipe and seed. Runs already complete in --out are skipped, so the "
                                    "same command continues a sweep that was stopped. Defaults: the paper's grid.")
    sw.add_argument("--models", nargs="+", default=list(PAPER_MODELS), help="small_cnn or timm names")
    sw.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(PAPER_DATASETS))
    sw.add_argument("--deltas", type=_delta, nargs="+", default=list(PAPER_DELTAS))
    sw.add_argument("--seeds", type=_int(0, "seed"), nargs="+", default=[0, 1, 2])
    sw.add_argument("--epochs", type=_int(1, "epochs"), default=100,
                    help="E (default %(default)s: the paper does not state E; its convergence epochs reach 80)")
    sw.add_argument("--controls", choices=tuple(STRATEGIES), nargs="*", default=["random"],
                    help="control strategies (none: --controls with no name)")
    sw.add_argument("--control-deltas", type=_delta, nargs="+", default=None,
                    help="δs of the controls (default: the smallest δ below 1)")
    sw.add_argument("--recipes", choices=tuple(RECIPES), nargs="+", default=["paper"],
                    help="paper: constant lr, no augmentation; tuned: cosine lr keyed to back-props + crop/flip")
    sw.add_argument("--batch-size", type=_int(1, "batch size"), default=PAPER_BASE["batch_size"])
    sw.add_argument("--lr", type=_float("lr", 0, False), default=PAPER_BASE["lr"])
    sw.add_argument("--momentum", type=_float("momentum", 0, True, below=1), default=PAPER_BASE["momentum"])
    sw.add_argument("--weight-decay", type=_float("weight decay", 0, True), default=PAPER_BASE["weight_decay"])
    sw.add_argument("--image-size", type=_int(0, "image size"), default=PAPER_BASE["image_size"], help="0 = native size")
    sw.add_argument("--subset", type=_int(0, "subset"), default=0, help="train on this many samples (0 = all)")
    sw.add_argument("--test-subset", type=_int(0, "test subset"), default=0, help="test on this many samples (0 = all)")
    sw.add_argument("--device", choices=DEVICES, default="auto")
    sw.add_argument("--compile", action="store_true", help="torch.compile each model")
    sw.add_argument("--no-amp", action="store_true", help="no bf16 autocast on the GPU")
    sw.add_argument("--data-root", default=None, help="where data sets live (default: $HARDBATCH_DATA or ~/.cache/hardbatch)")
    sw.add_argument("--download", action="store_true", help="download missing data sets (needs internet)")
    sw.add_argument("--no-checkpoints", action="store_true", help="do not checkpoint runs every equivalent epoch")
    sw.add_argument("--dry-run", action="store_true", help="list the runs and which are done; run nothing")
    sw.add_argument("--no-report", action="store_true", help="do not write OUT/report at the end")
    sw.add_argument("--out", default="runs/sweep", help="folder for records/, checkpoints/ and report/")

    rep = sub.add_parser("report", help="the paper's tables (Markdown, CSV) and figures (PNG) from a folder of run records")
    rep.add_argument("dir", help="folder of run records (read recursively)")
    rep.add_argument("--out", default=None, help="folder to write (default: DIR/report)")
    rep.add_argument("--no-figures", action="store_true", help="tables only")
    return parser


def _config(args):
    names = {f.name for f in fields(RunConfig)}
    return RunConfig(**{k: v for k, v in vars(args).items() if k in names})


def _check_writable(path, folder=False):
    """Fail now, not after training, if `path` (a file, or a folder with folder=True) cannot be written."""
    import tempfile

    path = Path(path)
    parent = path if folder else path.parent
    try:
        if not folder and path.is_dir():
            raise ValueError("it is a folder; give a file name")
        for above in (parent, *parent.parents):  # mkdir would only say "File exists"
            if above.exists() and not above.is_dir():
                raise ValueError(f"{str(above)!r} is a file, not a folder")
        parent.mkdir(parents=True, exist_ok=True)
        # a probe named as atomic_write will name its temporary file (bad bytes, too long a name), gone on close
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{path.name}." if not folder else "tmp", suffix=".tmp"):
            pass
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the path
        raise ValueError(f"cannot write to {str(path)!r}: {getattr(e, 'strerror', None) or e}") from None


def _check_model_takes(cfg, data):
    """Fail now, with a hint, if the model cannot take this data set's images (e.g. a ViT fixed at 224²).

    One forward pass of two images through a throwaway model; train() reseeds, so this draws nothing
    from the run's random numbers.
    """
    import torch

    from .data import preprocess
    from .models import create_model

    model = create_model(cfg.model, data.num_classes, data.in_chans).eval()
    x = preprocess(data.x_train[:2], data, cfg.image_size)  # (2, C, S, S)
    try:
        with torch.no_grad():
            model(x)
    except (RuntimeError, AssertionError, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(f"model {cfg.model!r} cannot take the {data.name} images at {tuple(x.shape[1:])}: "
                         f"{first} Choose another --image-size (timm names a model's own, e.g. _224) "
                         f"or another model.") from None


def _check_before_data(cfg):
    """The checks that need no data: device, model name. Run them before loading a data set."""
    from .config import resolve_device
    from .models import check_model_name

    resolve_device(cfg.device)
    check_model_name(cfg.model)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _main(args)
    except (ValueError, OSError) as e:  # bad values, missing data, failed downloads, unwritable files
        parser.exit(2, f"hardbatch: error: {e}\n")
    except KeyboardInterrupt:
        resumable = getattr(args, "checkpoint", None)
        hint = " (the same command with --resume continues from the last checkpoint)" if resumable else ""
        parser.exit(130, f"hardbatch: interrupted{hint}\n")


def _main(args):
    import time

    if args.command == "run":
        from .data import load_dataset
        from .record import save_record
        from .train import train

        cfg = _config(args)
        if args.resume and not args.checkpoint:
            raise ValueError("--resume needs --checkpoint FILE: the checkpoint to continue from")
        _check_writable(args.out)
        if args.checkpoint:
            _check_writable(args.checkpoint)
        _check_before_data(cfg)
        data = load_dataset(cfg.dataset, download=args.download)
        _check_model_takes(cfg, data)
        record = train(cfg, data=data, checkpoint=args.checkpoint, resume=args.resume, progress=sys.stderr.isatty())
        save_record(record, args.out)
        if record["status"] == "diverged":
            print(f"hardbatch: the run diverged: the loss became NaN or infinite by back-prop {record['backprops']} "
                  f"of {record['n_batches'] * cfg.epochs} and the run stopped there (the loss is checked at every "
                  f"round and every equivalent epoch, not at every step, so the GPU never waits). Its record, with "
                  f"status 'diverged', is in {args.out}; reports leave it out. Try a smaller --lr (now {cfg.lr:g}).",
                  file=sys.stderr)
            return 1
        last = record["history"][-1]
        print(f"{record['status']}: {record['backprops']} back-props over N={record['n_batches']} batches, "
              f"test top-1 {last['test_acc']:.2f}%, {record['time_per_backprop_s'] * 1e3:.2f} ms/back-prop -> {args.out}")
        return 0

    if args.command == "compare":
        from .compare import compare

        base = replace(_config(args), method="hardbatch")
        _check_writable(args.out, folder=True)
        _check_before_data(base)
        if args.download:  # fetch it once here; compare() then finds it on disk
            from .data import load_dataset
            load_dataset(base.dataset, download=True)
        t0 = time.perf_counter()
        records, rows, table, fig = compare(base, tuple(args.deltas), tuple(args.strategies), tuple(args.seeds), args.out)
        print(table)
        diverged = [r for r in records if r["status"] != "complete"]
        if diverged:  # never averaged in, never silently left out
            from .report import arm_label, arm_of
            print(f"hardbatch: {len(diverged)} run(s) diverged and are left out of the table: "
                  + ", ".join(f"{arm_label(arm_of(r))} seed {r['config']['seed']}" for r in diverged), file=sys.stderr)
        print(f"\n{len(records)} runs in {time.perf_counter() - t0:.1f} s; figure: {fig}; records: {Path(args.out) / 'records'}")
        return 0

    if args.command == "sweep":
        from .models import check_model_name
        from .sweep import plan, run_status, sweep

        base = RunConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
                         weight_decay=args.weight_decay, image_size=args.image_size, subset=args.subset,
                         device=args.device, compile=args.compile, amp=not args.no_amp)
        grid = dict(controls=tuple(args.controls), control_deltas=args.control_deltas, recipes=tuple(args.recipes),
                    base=base, test_subset=args.test_subset)
        for model in args.models:
            check_model_name(model)
        if args.dry_run:
            runs = plan(args.models, args.datasets, args.deltas, args.seeds, **grid)
            for name, cfg in runs:
                print(f"{run_status(Path(args.out) / 'records' / f'{name}.json', cfg, args.test_subset)[0]:8s} {name}")
            print(f"{len(runs)} runs")
            return 0
        _check_writable(args.out, folder=True)
        try:
            result = sweep(args.out, args.models, args.datasets, args.deltas, args.seeds, data_root=args.data_root,
                           download=args.download, checkpoints=not args.no_checkpoints,
                           progress=sys.stderr.isatty(), **grid)
        except KeyboardInterrupt:
            print("hardbatch: sweep interrupted; finished runs are kept: run the same command again to continue",
                  file=sys.stderr)
            return 130
        if not args.no_report:
            from .paper import write_report

            report = write_report(args.out)
            print(f"report: {report['out_dir'] / 'report.md'} ({report['records']} records, {report['diverged']} diverged)")
        return 0

    if args.command == "report":
        from .paper import write_report

        if not Path(args.dir).is_dir():
            raise ValueError(f"no such folder: {args.dir!r}")
        report = write_report(args.dir, args.out, make_figures=not args.no_figures)
        print(report["markdown"])
        print(f"wrote {', '.join(str(p) for p in report['files'])}")
        return 0
    return 2
