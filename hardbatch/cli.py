"""The command line: `hardbatch run`, `hardbatch compare` (the main job), `hardbatch sweep`, `hardbatch report`.

Every bad value is caught at the boundary and reported in one line that names the value and
what is allowed, with exit status 2 and no traceback. Output paths are checked before any work
(a device, a named pipe or a folder where a file is to be written is refused). Ctrl-C (SIGINT)
and SIGTERM stop a command with one line saying how to continue (exit 130 and 143).
"""
import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from dataclasses import fields
from pathlib import Path

from . import arms
from .config import RunConfig, fast_mode
from .files import check_not_special, file_kind
from .selection import STRATEGIES
from .sweep import PAPER_BASE, PAPER_DATASETS, PAPER_DELTAS, PAPER_MODELS, RECIPES
from .version import __version__

DEFAULTS = RunConfig()


def _parse(f, kind=None):
    """argparse type for one RunConfig field (or an element of a list of them): the text as the field's
    type, checked by the field's own check; a bad value is named as it was typed."""
    kind = kind or f.type

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = text  # not a number: the check below names it
        try:
            return f.metadata["check"](f.name, value)
        except ValueError:
            try:
                f.metadata["check"](f.name, text)  # the same complaint, quoting the text as typed
            except ValueError as e:
                raise argparse.ArgumentTypeError(str(e)) from None
            raise
    return parse


FIELDS = {f.name: f for f in fields(RunConfig)}


def add_config_options(parser, leave_out=(), defaults=None):
    """One option per RunConfig field (name, type, help and choices from the field), except `leave_out`.

    Every option defaults to None, "not given", so RunConfig fills in its own default and can tell a
    knob that was given from one that was not (and refuse a knob the method ignores)."""
    defaults = defaults or {}
    for f in fields(RunConfig):
        if f.name in leave_out:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = defaults.get(f.name, f.default)
        shown = "" if default is None else f" (default: {default})"
        help = f.metadata["help"].replace("%", "%%") + shown
        if f.type is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help)
        elif f.metadata["choices"]:
            parser.add_argument(flag, choices=f.metadata["choices"], default=None, help=help)
        else:
            parser.add_argument(flag, type=_parse(f), default=None, metavar=f.name.upper(), help=help)


def config_from(args, defaults=None, **fixed):
    """The RunConfig of the options given (others: `defaults`, then RunConfig's own), plus `fixed`."""
    given = {k: v for k, v in vars(args).items() if k in FIELDS and v is not None}
    return RunConfig(**{**(defaults or {}), **given, **fixed})


SWEEP_DEFAULTS = {**PAPER_BASE, "epochs": 100}
JOB = arms.ALGORITHM + ("seed",)  # chosen per run by compare and sweep, not given once


def _amount(text):
    """argparse type of a Ray resource amount: a number ≥ 0 (fractions share a GPU or CPU)."""
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 <= value < 1e6:
        raise argparse.ArgumentTypeError(f"must be a number of at least 0, got {text!r}")
    return value


def _arm(text):
    """argparse type of an arm spec (arms.parse_arm): kept as typed once it parses."""
    try:
        arms.parse_arm(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def build_parser():
    parser = argparse.ArgumentParser(prog="hardbatch", description="Train harder on the mini-batches with the highest loss.")
    parser.add_argument("--version", action="version", version=f"hardbatch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="one run; writes its run record")
    add_config_options(run)
    run.add_argument("--download", action="store_true",
                     help="download a missing data set (needs internet; without it nothing is downloaded)")
    run.add_argument("--out", default="runs/run.json", help="run record to write (JSON)")
    run.add_argument("--checkpoint", default=None, help="checkpoint file, written every equivalent epoch")
    run.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists")

    delta, seed = _parse(FIELDS["delta"], float), _parse(FIELDS["seed"], int)
    cmp_ = sub.add_parser("compare", help="the main job: Algorithm 1 vs Algorithm 2 over seeds, table + figure")
    add_config_options(cmp_, leave_out=JOB)
    cmp_.add_argument("--download", action="store_true", help="download a missing data set (needs internet)")
    cmp_.add_argument("--deltas", type=delta, nargs="+", default=[0.8, 0.5, 0.2])
    cmp_.add_argument("--strategies", choices=tuple(STRATEGIES), nargs="+", default=["hardest", "random"])
    cmp_.add_argument("--seeds", type=seed, nargs="+", default=[0, 1, 2], help="distinct seeds")
    cmp_.add_argument("--betas", type=_parse(FIELDS["beta"], float), nargs="*", default=[],
                      help="also Selective-Backprop (per sample, chapter 6) at these β (default: none); "
                           "deprecated: --arms 'selective beta=B' says the same")
    cmp_.add_argument("--arms", nargs="*", default=None, metavar="SPEC", type=_arm,
                      help="the arms beside Algorithm 1 (fixed), each a method and its knobs, e.g. "
                           "'hardbatch select=hardest delta=0.2' 'selective beta=1' 'infobatch prune=0.5' "
                           "'online pressure=100'; instead of --deltas, --strategies and --betas")
    cmp_.add_argument("--out", default="runs/compare", help="folder for records, table.md and compare.png")

    sw = sub.add_parser("sweep", help="every run of a grid (default: the paper's), resumable; then the report",
                        description="Algorithm 1, Algorithm 2 at each δ and the random control, for every model, "
                                    "data set, recipe and seed. Runs already complete in --out are skipped, so the "
                                    "same command continues a sweep that was stopped. Defaults: the paper's grid (its models, data "
                                    "sets, δs, lr 0.005, batch 512, 128²); E = 100 is our reading, since the paper "
                                    "states no E and its convergence epochs reach 100.")
    add_config_options(sw, leave_out=JOB + ("model", "dataset", "augment", "lr_schedule"), defaults=SWEEP_DEFAULTS)
    sw.add_argument("--models", nargs="+", default=list(PAPER_MODELS), help="small_cnn or timm names")
    sw.add_argument("--datasets", nargs="+", choices=FIELDS["dataset"].metadata["choices"],
                    default=list(PAPER_DATASETS))
    sw.add_argument("--deltas", type=delta, nargs="+", default=None,
                    help=f"δs of the hardest arm (default: the paper's, {' '.join(map(str, PAPER_DELTAS))})")
    sw.add_argument("--seeds", type=seed, nargs="+", default=[0, 1, 2], help="distinct seeds")
    sw.add_argument("--arms", nargs="*", default=None, metavar="SPEC", type=_arm,
                    help="the arms beside Algorithm 1 (fixed), each a method and its knobs, e.g. "
                         "'minibatch order=shuffled' 'hardbatch select=random delta=0.2' 'selective beta=1'; "
                         "instead of --deltas, --controls, --control-deltas and --betas (--arms alone: Algorithm 1 only)")
    sw.add_argument("--controls", choices=tuple(STRATEGIES), nargs="*", default=None,
                    help="control strategies (none: --controls with no name)")
    sw.add_argument("--control-deltas", type=delta, nargs="+", default=None,
                    help="δs of the controls (default: the smallest δ below 1)")
    sw.add_argument("--recipes", choices=tuple(RECIPES), nargs="+", default=["paper"],
                    help="paper: constant lr, no augmentation (our reading of the paper); "
                         "tuned: cosine lr keyed to back-props + crop/flip")
    sw.add_argument("--betas", type=_parse(FIELDS["beta"], float), nargs="*", default=[],
                    help="also Selective-Backprop (chapter 6) at each β, beside the other arms of every seed")
    sw.add_argument("--tuned-arms", nargs="+", default=None, metavar="LABEL",
                    help="run the tuned recipe for these arms only, e.g. 'Algorithm 1 (fixed)' 'hardest δ=0.2'")
    sw.add_argument("--data-root", default=None, help="where data sets live (default: $HARDBATCH_DATA or ~/.cache/hardbatch)")
    sw.add_argument("--download", action="store_true", help="download missing data sets (needs internet)")
    sw.add_argument("--no-checkpoints", action="store_true", help="do not checkpoint runs every equivalent epoch")
    sw.add_argument("--dry-run", action="store_true", help="list the runs and which are done; run nothing")
    sw.add_argument("--no-report", action="store_true", help="do not write OUT/report at the end")
    sw.add_argument("--out", default="runs/sweep", help="folder for records/, checkpoints/, claims/ and report/ "
                                                        "(with --engine ray: a folder every worker sees)")
    sw.add_argument("--engine", choices=("local", "ray"), default="local",
                    help="local: one run after another in this process; ray: one Ray task per run "
                         "(needs pip install hardbatch[cluster])")
    sw.add_argument("--address", default=None, metavar="HOST:PORT",
                    help="with --engine ray: join this Ray cluster (ray start --head); default: start a local one")
    sw.add_argument("--gpus-per-run", type=_amount, default=None, metavar="N",
                    help="with --engine ray: GPUs each run asks for (default: 1 if the cluster has a GPU, else 0)")
    sw.add_argument("--cpus-per-run", type=_amount, default=None, metavar="N",
                    help="with --engine ray: CPUs each run asks for, and its CPU threads (default: 1)")

    st = sub.add_parser("study", help="the pre-registered fitting-regime study's report from DIR/stage0 and DIR/main",
                        description="Stage 0's lr rule, the arms' table and the eight Holm-adjusted tests of "
                                    "docs/method.md (\"The fitting-regime study\"), from run records only.")
    st.add_argument("dir", help="the study's folder (e.g. results/fitting), holding stage0/ and main/")
    st.add_argument("--out", default=None, help="file to write (default: DIR/report/report.md)")

    rep = sub.add_parser("report", help="the paper's tables (Markdown, CSV) and figures (PNG) from a folder of run records")
    rep.add_argument("dir", help="folder of run records (read recursively)")
    rep.add_argument("--out", default=None, help="folder to write (default: DIR/report)")
    rep.add_argument("--no-figures", action="store_true", help="tables only")

    ch = sub.add_parser("chapters", help="copy the six chapter notebooks into DIR (hardbatch/chapters.py)")
    ch.add_argument("dir", help="folder to copy them into (created if missing)")
    ch.add_argument("--overwrite", action="store_true", help="replace chapters already in DIR")
    return parser


def _check_writable(path, folder=False):
    """Fail now, not after training, if `path` (a file, or a folder with folder=True) cannot be written:
    a file that exists must be a regular file (a device or a named pipe is never replaced)."""
    path = Path(path)
    parent = path if folder else path.parent
    try:
        if not folder and path.is_dir():
            raise ValueError("it is a folder; give a file name")
        if not folder and path.exists() and not path.is_file():
            raise ValueError(f"it is {file_kind(path.stat().st_mode)}, not a regular file; give a file name")
        for above in (parent, *parent.parents):  # mkdir would only say "File exists"
            if above.exists() and not above.is_dir():
                kind = "a file" if above.is_file() else file_kind(above.stat().st_mode)
                raise ValueError(f"{str(above)!r} is {kind}, not a folder")
        parent.mkdir(parents=True, exist_ok=True)
        # a probe named as atomic_write will name its temporary file (bad bytes, too long a name), gone on close
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{path.name}." if not folder else "tmp", suffix=".tmp"):
            pass
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the path
        raise ValueError(f"cannot write to {str(path)!r}: {getattr(e, 'strerror', None) or e}") from None


def _same_file(a, b):
    """True if paths `a` and `b` name one file (also through links or different spellings)."""
    a, b = Path(a), Path(b)
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except (OSError, ValueError):
        return False


def _check_outputs(paths):
    """Refuse, before any work, an output file that exists and is not a regular file."""
    for path in paths:
        check_not_special(path)


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into the same clean stop as Ctrl-C (KeyboardInterrupt), with its own exit status."""
    signum = signal.SIGTERM


_stopping = []  # the signals being handled; "said" once the stop's one line is printed; "program" (see main)


def _on_signal(signum, frame):
    """Ctrl-C (SIGINT) or SIGTERM: the first stops the command cleanly (KeyboardInterrupt, Terminated). In the
    program, one more while it stops (Ctrl-C pressed twice) leaves at once, with the one line if it is not
    printed yet; called in-process (a notebook), it is a KeyboardInterrupt again."""
    if any(isinstance(s, int) for s in _stopping) and "program" in _stopping:
        if "said" not in _stopping:
            os.write(2, f"hardbatch: {signal.Signals(signum).name} again while stopping; stopped at once\n".encode())
        os._exit(128 + signum)
    _stopping.append(signum)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _install_signal_handlers(program):
    """Ctrl-C and SIGTERM handlers for this command; returns the previous ones, to put back."""
    _stopping[:] = ["program"] if program else []
    return {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}


def _robust_output():
    """Help texts and tables hold δ, ², ·, ±: on a terminal that cannot show them (PYTHONIOENCODING=ascii,
    LANG=C) print a replacement character rather than fail."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="replace")
        except (AttributeError, ValueError, OSError):  # not a text stream we may reconfigure
            pass


def _stopped(args, err):
    """The one line a stopped command prints: what was kept and how to continue."""
    out = getattr(args, "out", None)
    hint = {"run": " (the same command with --resume continues from the last checkpoint)"
                   if getattr(args, "checkpoint", None) else " (nothing was written; --checkpoint FILE makes a run "
                                                             "resumable)",
            "compare": f" (records of the finished runs are in {Path(out or '.') / 'records'}; the same command "
                       f"runs the comparison again)",
            "sweep": "; finished runs are kept: the same command continues the sweep (a run from its checkpoint)",
            }.get(args.command, "")
    return f"hardbatch: {args.command} {'terminated (SIGTERM)' if isinstance(err, Terminated) else 'interrupted'}{hint}\n"


def _check_threads(cfg):
    """Refuse now, not at the first run, a --threads or $OMP_NUM_THREADS above the CPUs this process may use."""
    from .config import resolve_device, resolve_threads

    if resolve_device(cfg.device) == "cpu":
        resolve_threads(cfg.threads, cfg.model)


def _out_of_memory(e):
    """True for an allocation failure (torch raises RuntimeError on the CPU, OutOfMemoryError on a GPU)."""
    import torch

    return isinstance(e, (MemoryError, torch.OutOfMemoryError)) or "can't allocate memory" in str(e)


def main(argv=None):
    in_main_thread = threading.current_thread() is threading.main_thread()
    # first: a Ctrl-C from now on is one line. argv None: the program itself (hardbatch, python -m hardbatch)
    previous = _install_signal_handlers(program=argv is None) if in_main_thread else {}
    args = None
    try:
        _robust_output()
        parser = build_parser()
        args = parser.parse_args(argv)
        fast_mode()  # an environment switch it does not understand is refused here, once, with exit 2
        return _main(args)
    except (ValueError, OSError) as e:  # bad values, missing data, failed downloads, unwritable files
        parser.exit(2, f"hardbatch: error: {e}\n")
    except (MemoryError, RuntimeError) as e:
        if not _out_of_memory(e):
            raise
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        parser.exit(2, f"hardbatch: error: out of memory ({first}); try a smaller --batch-size or --image-size\n")
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (Terminated)
        code = 128 + int(getattr(e, "signum", signal.SIGINT))
        line = (f"hardbatch: {'terminated (SIGTERM)' if isinstance(e, Terminated) else 'interrupted'}\n"
                if args is None else _stopped(args, e))  # args is None: stopped while starting up
        sys.stderr.write(line)
        sys.stderr.flush()
        _stopping.append("said")
        raise SystemExit(code) from None
    finally:
        for sig, handler in previous.items():
            if "program" in _stopping and "said" in _stopping:  # stopped on a signal: ignore more while Python exits
                signal.signal(sig, signal.SIG_IGN)
            else:  # called in-process (tests, a notebook): leave signals as they were
                signal.signal(sig, signal.SIG_DFL if handler is None else handler)


def _run(args):
    from .data import load_dataset
    from .record import save_record
    from .train import train

    cfg = config_from(args)
    _check_threads(cfg)
    if args.resume and not args.checkpoint:
        raise ValueError("--resume needs --checkpoint FILE: the checkpoint to continue from")
    _check_writable(args.out)
    if args.checkpoint:
        _check_writable(args.checkpoint)
        if _same_file(args.checkpoint, args.out):
            raise ValueError(f"--checkpoint and --out name the same file {args.checkpoint!r}; the checkpoint "
                             f"would overwrite the record: give two different files")
    data = load_dataset(cfg.dataset, download=args.download)
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
    saved = (f" ({record['backprops_saved']} of N·E={record['n_batches'] * cfg.epochs} saved, "
             f"{record['samples_pruned']} samples pruned)" if "backprops_saved" in record else "")
    print(f"{record['status']}: {record['backprops']} back-props{saved} over N={record['n_batches']} batches, "
          f"test top-1 {last['test_acc']:.2f}%, {record['time_per_backprop_s'] * 1e3:.2f} ms/back-prop -> {args.out}")
    return 0


def _compare(args):
    from .compare import compare
    from .data import load_dataset
    from .models import preflight

    base = config_from(args)
    _check_threads(base)
    arms.check_seeds(args.seeds)
    preflight(base)  # the model takes the data set's images, the batch fits the training set
    out = Path(args.out)
    if args.arms is not None and (args.betas or args.deltas != [0.8, 0.5, 0.2] or args.strategies != ["hardest", "random"]):
        raise ValueError("--arms names every arm; leave out --deltas, --strategies and --betas (or leave out --arms)")
    configs = arms.job(base, tuple(args.deltas), tuple(args.strategies), tuple(args.seeds), tuple(args.betas),
                       args.arms)  # the plan, made once: checked here, run by compare()
    names = [arms.record_name(cfg) for cfg in configs]
    _check_writable(out, folder=True)
    _check_writable(out / "records", folder=True)
    _check_outputs([out / "records" / f"{name}.json" for name in names]
                   + [out / "table.md", out / "compare.png", out / "compare.tmp.png"])
    if args.download:  # fetch it once here; compare() then finds it on disk
        load_dataset(base.dataset, download=True)
    t0 = time.perf_counter()
    records, rows, table, fig = compare(base, out_dir=args.out, configs=configs)
    diverged = [r for r in records if r["status"] != "complete"]
    if len(diverged) == len(records):  # nothing to compare: say so, never print an empty table
        print(f"hardbatch: every run diverged ({len(records)} of {len(records)}: the loss became NaN or infinite), "
              f"so there is nothing to compare; their records are in {out / 'records'}. Try a smaller --lr "
              f"(now {base.lr:g}).", file=sys.stderr)
        return 1
    print(table)
    if diverged:  # never averaged in, never silently left out
        print(f"hardbatch: {len(diverged)} run(s) diverged and are left out of the table: "
              + ", ".join(f"{arms.label(r['config'])} seed {r['config']['seed']}" for r in diverged), file=sys.stderr)
    print(f"\n{len(records)} runs in {time.perf_counter() - t0:.1f} s; figure: {fig}; records: {out / 'records'}")
    return 0


def _sweep(args):
    from .models import preflight
    from .sweep import plan, run_status, sweep

    base = config_from(args, SWEEP_DEFAULTS, model=args.models[0], dataset=args.datasets[0])
    configs = [RunConfig(**{**base.to_dict(), "model": m, "dataset": d}) for m in args.models for d in args.datasets]
    grid_flags = {"--deltas": args.deltas, "--controls": args.controls, "--control-deltas": args.control_deltas,
                  "--betas": args.betas or None}
    if args.arms is not None and any(v is not None for v in grid_flags.values()):
        given = [k for k, v in grid_flags.items() if v is not None]
        raise ValueError(f"--arms names every arm; leave out {', '.join(given)} (or leave out --arms)")
    if args.arms is None:
        args.deltas = list(PAPER_DELTAS) if args.deltas is None else args.deltas
    grid = dict(controls=tuple(args.controls if args.controls is not None else ["random"]),
                control_deltas=args.control_deltas, recipes=tuple(args.recipes),
                base=base, tuned_arms=args.tuned_arms, betas=tuple(args.betas), specs=args.arms)
    runs = plan(args.models, args.datasets, args.deltas, args.seeds, **grid)
    out = Path(args.out)
    if args.dry_run:
        for name, cfg in runs:
            print(f"{run_status(out / 'records' / f'{name}.json', cfg)[0]:8s} {name}")
        print(f"{len(runs)} runs")
        return 0
    for cfg in configs:  # every model on every data set, before the first run (not at the hundredth)
        preflight(cfg)
        if args.engine == "local":  # a Ray task checks its threads on its own node
            _check_threads(cfg)
    ray_only = [f"--{k.replace('_', '-')}" for k in ("address", "gpus_per_run", "cpus_per_run")
                if getattr(args, k) is not None]
    if args.engine == "local" and ray_only:
        raise ValueError(f"{', '.join(ray_only)}: only with --engine ray")
    if args.engine == "ray":
        if args.cpus_per_run == 0:
            raise ValueError("--cpus-per-run must be above 0: a run needs a CPU")
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ValueError("--engine ray needs Ray: pip install 'hardbatch[cluster]'") from None
    for folder in (out, out / "records", out / "checkpoints", out / "claims") + (() if args.no_report else (out / "report",)):
        _check_writable(folder, folder=True)
    _check_outputs([out / sub / f"{name}{ext}" for name, _ in runs
                    for sub, ext in (("records", ".json"), ("checkpoints", ".pt"), ("checkpoints", ".bad"))])
    summary = sweep(args.out, args.models, args.datasets, args.deltas, args.seeds, data_root=args.data_root,
                    download=args.download, checkpoints=not args.no_checkpoints, progress=sys.stderr.isatty(),
                    engine=args.engine, address=args.address, gpus_per_run=args.gpus_per_run,
                    cpus_per_run=args.cpus_per_run or 1, **grid)
    if not args.no_report:
        from .paper import write_report

        report = write_report(args.out)
        print(f"report: {report['out_dir'] / 'report.md'} ({report['records']} records, {report['diverged']} diverged)")
    if summary["unusable"]:
        print(f"hardbatch: {len(summary['unusable'])} run(s) not run: their claim files are in the way (see above)",
              file=sys.stderr)
        return 1
    return 0


def _study(args):
    from .study import write

    if not Path(args.dir).is_dir():
        raise ValueError(f"no such folder: {args.dir!r}")
    print(write(args.dir, args.out))
    return 0


def _report(args):
    from .paper import write_report

    if not Path(args.dir).is_dir():
        raise ValueError(f"no such folder: {args.dir!r}")
    _check_writable(args.out or Path(args.dir) / "report", folder=True)  # before reading any record
    report = write_report(args.dir, args.out, make_figures=not args.no_figures)
    print(report["markdown"])
    print(f"wrote {', '.join(str(p) for p in report['files'])}")
    return 0


def _chapters(args):
    from .chapters import copy_chapters

    written = copy_chapters(args.dir, overwrite=args.overwrite)
    print(f"{len(written)} files copied to {args.dir}: " + ", ".join(p.name for p in written))
    return 0


def _main(args):
    return {"run": _run, "compare": _compare, "sweep": _sweep, "report": _report, "study": _study,
            "chapters": _chapters}[args.command](args)
