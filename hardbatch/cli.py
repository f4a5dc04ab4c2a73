"""The command line: `hardbatch run`, `hardbatch compare` (the main job), `hardbatch sweep`, `hardbatch report`.

Every bad value is caught at the boundary and reported in one line that names the value and
what is allowed, with exit status 2 and no traceback (the options and their checks: options.py). Output
paths are checked before any work (outputs.py: a device, a named pipe or a folder where a file is to be
written is refused). Ctrl-C (SIGINT) and SIGTERM stop a command with one line saying how to continue
(signals.py; exit 130 and 143). This module says what each command does, in that order.
"""
import signal
import sys
import threading
import time
from pathlib import Path

from . import arms, signals
from .config import RunConfig, fast_mode, resolve_device, resolve_threads
from .options import SWEEP_DEFAULTS, build_parser, config_from
from .outputs import check_outputs, check_writable, same_file
from .sweep import PAPER_DELTAS


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
    return f"hardbatch: {args.command} {'terminated (SIGTERM)' if isinstance(err, signals.Terminated) else 'interrupted'}{hint}\n"


def _check_threads(cfg):
    """Refuse now, not at the first run, a --threads or $OMP_NUM_THREADS above the CPUs this process may use."""
    if resolve_device(cfg.device) == "cpu":
        resolve_threads(cfg.threads, cfg.model)


def _out_of_memory(e):
    """True for an allocation failure (torch raises RuntimeError on the CPU, OutOfMemoryError on a GPU)."""
    import torch

    return isinstance(e, (MemoryError, torch.OutOfMemoryError)) or "can't allocate memory" in str(e)


def main(argv=None):
    in_main_thread = threading.current_thread() is threading.main_thread()
    # first: a Ctrl-C from now on is one line. argv None: the program itself (hardbatch, python -m hardbatch)
    previous = signals.install(program=argv is None) if in_main_thread else {}
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
        line = (f"hardbatch: {'terminated (SIGTERM)' if isinstance(e, signals.Terminated) else 'interrupted'}\n"
                if args is None else _stopped(args, e))  # args is None: stopped while starting up
        with signals.held():  # a second Ctrl-C now waits until the line is out and marked said: one line
            sys.stderr.write(line)
            sys.stderr.flush()
            signals.stopping.append("said")
        raise SystemExit(code) from None
    finally:
        signals.restore(previous)


def _run(args):
    from .data import load_dataset
    from .record import save_record
    from .train import train

    cfg = config_from(args)
    _check_threads(cfg)
    if args.resume and not args.checkpoint:
        raise ValueError("--resume needs --checkpoint FILE: the checkpoint to continue from")
    check_writable(args.out)
    if args.checkpoint:
        check_writable(args.checkpoint)
        if same_file(args.checkpoint, args.out):
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
    check_writable(out, folder=True)
    check_writable(out / "records", folder=True)
    check_outputs([out / "records" / f"{name}.json" for name in names]
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
        check_writable(folder, folder=True)
    check_outputs([out / sub / f"{name}{ext}" for name, _ in runs
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
    check_writable(args.out or Path(args.dir) / "report", folder=True)  # before reading any record
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
