"""Run identity, in one place: which settings make a run, which runs form an arm, which arm is the baseline.

- A run's **settings** are every RunConfig field except how it is executed (EXECUTION below) and the
  knobs its method ignores (each knob belongs to one method, methods.ONLY_FOR; `alpha` only to select
  `proportional`: config.reads). Two runs
  with equal settings are the same run, wherever and however they ran: a checkpoint, a sweep record
  or a report row is matched by them.
- An **arm** is the settings without the seed: the runs of one arm differ only in their seed, and
  tables average over them.
- A **block** is an arm without the algorithm's knobs (ALGORITHM: the method and every method's knobs): the arms of one
  block are compared with each other in one table block, one figure, one set of paired differences.
- The **baseline** of a block is Algorithm 1 on the fixed partition (`minibatch`, order `fixed`).

Checkpoints (train.py), sweeps, compare, reports, plots and notebooks all call these functions.
A new RunConfig field joins the settings by itself; it stays out only by being named in EXECUTION.
"""
import hashlib
import json
from dataclasses import MISSING, fields

from . import methods
from .config import ONLY_FOR, RunConfig, reads

# How a run is executed, not what it computes: never part of a run's identity.
EXECUTION = (
    "device",  # the same run on a CPU or a GPU is the same run (its record says where it ran)
    "amp",  # bf16 autocast: a speed switch on recent GPUs, no effect on a CPU
    "compile",  # torch.compile: the same model, compiled
    "threads",  # CPU threads: speed only
)
ALGORITHM = ("method",) + tuple(ONLY_FOR)  # what an arm varies within a block: the method and the methods' knobs
DEFAULTS = {f.name: f.default for f in fields(RunConfig) if f.default is not MISSING}


def settings(config):
    """The settings that define a run (a dict), from a RunConfig or a record's config dict.

    Fields a record predates take their defaults, so records of older versions keep their identity."""
    c = config.to_dict() if isinstance(config, RunConfig) else {**DEFAULTS, **config}
    return {k: v for k, v in sorted(c.items())
            if k not in EXECUTION and reads(k, c)}


def _frozen(d):
    return tuple(sorted(d.items()))


def run_key(config):
    """A hashable key of a run: equal for the same run, different otherwise."""
    return _frozen(settings(config))


def arm(config):
    """A hashable key of a run's arm: its settings without the seed."""
    return _frozen({k: v for k, v in settings(config).items() if k != "seed"})


def block(config):
    """A hashable key of a run's block: its arm without the algorithm's knobs."""
    return _frozen({k: v for k, v in settings(config).items() if k != "seed" and k not in ALGORITHM})


def baseline_arm(config):
    """The arm of the baseline of `config`'s block: Algorithm 1 on the fixed partition."""
    s = {k: v for k, v in settings(config).items() if k not in ALGORITHM}
    return arm({**s, "method": "minibatch", "order": "fixed"})


def is_baseline(config):
    return arm(config) == baseline_arm(config)


def _method(config):
    c = config.to_dict() if isinstance(config, RunConfig) else {**DEFAULTS, **dict(config)}
    return methods.get(c["method"]), c


def label(config):
    """An arm's name in tables and legends, as its method words it: 'Algorithm 1 (fixed)', 'hardest δ=0.2',
    'proportional α=1 δ=0.2', 'selective β=1', 'infobatch r=0.5', 'online s=100'."""
    method, c = _method(config)
    return method.label(c)


def sort_key(config):
    """Baseline first, then by the methods' table order (Algorithm 1, Algorithm 2 with hardest by δ descending
    and then the controls, Selective-Backprop by β, InfoBatch, online selection), then within each method."""
    method, c = _method(config)
    return (method.order, method.name, *method.sort_key(c))


def record_name(config):
    """`dataset-model-method-arm[-dδ]-sSEED-HASH`: readable, and fixed by the run's settings.

    HASH is 8 hex digits of the settings that differ from RunConfig's defaults, so a folder may hold
    runs of different settings (epochs, lr, image size, ...) without one ever being taken for another,
    and a field added to RunConfig later (at its default) leaves every name as it was."""
    c = settings(config)
    changed = {k: v for k, v in c.items() if v != DEFAULTS.get(k)}
    digest = hashlib.sha1(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:8]
    what = methods.get(c["method"]).tag(c)
    return f"{c['dataset']}-{c['model']}-{c['method']}-{what}-s{c['seed']}-{digest}"


def check_seeds(seeds):
    """Seeds of a job: at least one, none repeated (a repeated seed is the same run twice, not two seeds)."""
    seeds = list(seeds)
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if not seeds or repeated:
        raise ValueError(f"seeds must be distinct (a repeated seed trains the same run twice and reports it "
                         f"as two), got {seeds}" if seeds else "seeds: give at least one seed")
    return seeds


ARM_KNOBS = {f.name: f.type for f in fields(RunConfig) if f.name in ONLY_FOR}  # every method's knobs, by type


def parse_arm(spec):
    """An arm written as words, e.g. "minibatch order=shuffled", "hardbatch select=random delta=0.2",
    "selective beta=1", "infobatch prune=0.5": the method, then its knobs as key=value. Returns the knobs as a dict (with "method"),
    checked by RunConfig, so a knob the method ignores or a bad value is refused with what is allowed."""
    words = str(spec).split()
    if not words or words[0] not in methods.METHODS:
        raise ValueError(f"arm {spec!r} must start with a method ({', '.join(methods.METHODS)}), then key=value knobs")
    knobs = {"method": words[0]}
    for word in words[1:]:
        key, eq, value = word.partition("=")
        if not eq or key not in ARM_KNOBS or key in knobs:
            raise ValueError(f"arm {spec!r}: {word!r} is not one knob=value; knobs: {', '.join(ARM_KNOBS)}, "
                             f"each once")
        try:
            knobs[key] = ARM_KNOBS[key](value)
        except ValueError:
            raise ValueError(f"arm {spec!r}: {key} must be a{'n integer' if ARM_KNOBS[key] is int else ' number'}, "
                             f"got {value!r}") from None
    RunConfig(**knobs)  # refuses an unknown rule, a bad δ, a knob this method ignores
    return knobs


def job(base, deltas=(0.8, 0.5, 0.2), strategies=("hardest", "random"), seeds=(0,), betas=(), specs=None):
    """The runs of one comparison, seed by seed: Algorithm 1 (fixed partition), then each strategy at each δ,
    then Selective-Backprop at each β in `betas` (chapter 6). With `specs` (arm specs, parse_arm), the arms
    are Algorithm 1 (fixed) and those specs instead, and deltas, strategies and betas are not read.

    base: a RunConfig whose shared settings (data set, model, epochs, ...) every run takes. A run that
    would repeat another (the same settings) is listed once."""
    common = {k: v for k, v in base.to_dict().items() if k not in ALGORITHM}
    out, seen = [], set()
    for seed in check_seeds(seeds):
        configs = [RunConfig(**{**common, "seed": seed}, method="minibatch", order="fixed")]
        if specs is not None:
            configs += [RunConfig(**{**common, "seed": seed}, **parse_arm(spec)) for spec in specs]
        else:
            configs += [RunConfig(**{**common, "seed": seed}, method="hardbatch", select=s, delta=float(d))
                        for s in strategies for d in deltas]
            configs += [RunConfig(**{**common, "seed": seed}, method="selective", beta=float(b)) for b in betas]
        for cfg in configs:
            if (key := run_key(cfg)) not in seen:
                seen.add(key)
                out.append(cfg)
    return out
