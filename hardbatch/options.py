"""The command line's options: what `hardbatch run`, `compare`, `sweep`, `study`, `report` and `chapters` accept.

Why a module of its own: the options are derived, not re-declared. Each RunConfig field becomes one option
(its name, type, help and choices come from the field, and a bad value is refused by the field's own check),
so a knob added to the config is on the command line by itself. cli.py says what each command then does.
"""
import argparse
from dataclasses import fields

from . import arms
from .config import RunConfig
from .selection import STRATEGIES
from .sweep import PAPER_BASE, PAPER_DATASETS, PAPER_DELTAS, PAPER_MODELS, RECIPES
from .version import __version__


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
