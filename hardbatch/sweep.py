"""Sweeps: every run of a grid of models × data sets × seeds × arms, one record each, resumable.

The arms of one data set, model and seed are Algorithm 1 (the baseline row), Algorithm 2
(`hardest`) at every δ, and the control (`random`) at the smallest δ below 1, where selection
bites hardest and the control tells most. Each run writes one JSON record whose name is fixed
by its config, so a sweep that is stopped and started again finds what is done and runs only
the rest:

- a record that loads (`record.load_record`) and holds the same config is done: it is skipped;
- a missing record is run; a record that does not load (partial, corrupt, or of a newer or older schema)
  or holds another run is moved aside, never overwritten (NAME.json.unreadable-1, -2, ...), and the run
  is run again;
- a run killed half-way continues from its checkpoint (DIR/checkpoints/NAME.pt, written every
  equivalent epoch, deleted once the record is written).

Before training a run, a sweep claims it (`Claim`: DIR/claims/NAME.claim, created atomically),
so two sweeps on one folder, or a retried Ray task, never train the same run twice: a run a live
other sweep holds is skipped and reported; a claim whose owner died is taken over and the run
resumes from its checkpoint. `run_one` (claim, train, record, release) is the same for every
engine (runner.py): `engine="local"` runs one run after another in this process, `engine="ray"` one
Ray task per run (cluster.py).

Records are written atomically, so a kill leaves a whole record or none. The runs of one data
set, model and seed follow each other in one process, in a seeded random order (`seeded_order`,
which `compare` uses too), so their times per back-prop compare fairly (Table 1): no arm always
runs first, on a cold machine, or last, on a loaded one; a short untimed warm-up run first pays the one-time costs (cuDNN choosing its
kernels on a GPU, allocator and thread-pool start-up on a CPU), so the first timed run is not
charged for them. Chapter 5 teaches this; `hardbatch sweep` runs it.
"""
import random
import time
from itertools import groupby
from dataclasses import replace
from pathlib import Path

from . import arms
from .claims import CLAIM_STALE_S
from .cluster import run_on_ray
from .config import RunConfig, resolve_device
from .data import load_dataset
from .runner import move_aside, run_one, run_status, warm_up, why_unusable

# The paper's set-up. tf_efficientnetv2_s is its EfficientNetV2-S: 20.19 M weights at 10 classes,
# the count the paper gives; timm's efficientnetv2_rw_s (a variant Ross Wightman trained) has 22.17 M.
PAPER_MODELS = ("resnet18", "resnet50", "efficientnet_b4", "tf_efficientnetv2_s", "mobilenetv3_small_100")
PAPER_DATASETS = ("cifar10", "cifar100", "stl10")
PAPER_DELTAS = (1.0, 0.8, 0.5, 0.2)
PAPER_BASE = dict(lr=0.005, momentum=0.9, weight_decay=0.0, batch_size=512, image_size=128)

# Two training recipes for every arm alike. `paper`: constant lr, no augmentation (our reading of the
# paper, which states neither a schedule nor augmentation). `tuned`: cosine decay keyed to back-props
# plus random crop + flip, an honest baseline: gains measured against an untuned baseline are known
# to shrink or vanish against a tuned one.
# `cosine`: the decay to zero alone, without augmentation, for studies of nets that fit their training set.
RECIPES = {"paper": {"lr_schedule": "constant", "augment": False},
           "tuned": {"lr_schedule": "cosine", "augment": True},
           "cosine": {"lr_schedule": "cosine", "augment": False}}


def plan(models, datasets, deltas, seeds, *, controls=("random",), control_deltas=None,
         recipes=("paper",), base=None, tuned_arms=None, betas=(), specs=None):
    """The runs of a sweep, in the order they run: a list of (record name, RunConfig).

    tuned_arms: if given, the arm labels (arms.label) that the `tuned` recipe runs (default: every arm).
    betas: Selective-Backprop at each β (chapter 6), beside the other arms of each seed.
    specs: arm specs (arms.parse_arm, e.g. "hardbatch select=random delta=0.2"): Algorithm 1 (fixed) and these
    arms for every seed, instead of deltas, controls and betas. Recipes run one after another, the first first."""
    base = base or RunConfig()
    deltas = tuple(float(d) for d in deltas or ())
    arms.check_seeds(seeds)
    if control_deltas is None:  # the smallest δ below 1 (at δ = 1 every strategy trains every batch)
        below = [d for d in deltas if d < 1]
        control_deltas = (min(below),) if below else ()
    for recipe in recipes:
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; allowed: {', '.join(RECIPES)}")
    out, seen = [], set()
    for dataset in datasets:
        for model in models:
            for recipe in recipes:
                for seed in seeds:
                    b = replace(base, dataset=dataset, model=model, **RECIPES[recipe])
                    configs = (arms.job(b, seeds=(seed,), specs=specs) if specs is not None else
                               arms.job(b, deltas, ("hardest",), (seed,))
                               + arms.job(b, tuple(control_deltas), tuple(controls), (seed,), tuple(betas))[1:])
                    for cfg in configs:
                        if recipe == "tuned" and tuned_arms is not None and arms.label(cfg) not in tuned_arms:
                            continue
                        name = arms.record_name(cfg)
                        if name not in seen:  # e.g. "hardest" named again as a control
                            seen.add(name)
                            out.append((name, cfg))
    return out


def seeded_order(items, seed_of=lambda cfg: cfg.seed):
    """items (configs, or anything `seed_of` reads a seed from) with each stretch of one seed's arms shuffled by
    random.Random(seed), the stretches kept in place. The order runs go in, never their names: a machine that
    slows down, or a first run that pays start-up costs, must not always favour or penalise the same arm."""
    out = []
    for seed, stretch in groupby(items, key=seed_of):
        stretch = list(stretch)
        random.Random(seed).shuffle(stretch)
        out += stretch
    return out


ENGINES = ("local", "ray")


def sweep(out_dir, models=("small_cnn",), datasets=("digits",), deltas=(0.5, 0.2), seeds=(0, 1, 2), *,
          controls=("random",), control_deltas=None, recipes=("paper",), base=None, tuned_arms=None, betas=(),
          specs=None, data_root=None, download=False, checkpoints=True, progress=True, log=None, engine="local",
          address=None, gpus_per_run=None, cpus_per_run=1, stale_s=CLAIM_STALE_S):
    """Run every run of the grid that DIR/records does not already hold; return a summary dict.

    base: a RunConfig with the shared settings (epochs, batch size, lr, image size, device, ...).
    engine: "local" (one run after another in this process) or "ray" (one Ray task per run on the cluster
    at `address`, or a local one; `gpus_per_run`, `cpus_per_run`: each task's resources; cluster.py).
    Returns {"ran", "skipped", "repaired" (its unusable record moved aside), "diverged", "claimed" (held by
    another live sweep), "unusable" (its claim path is not a claim file): lists of record names, "records":
    every record of the grid this sweep has, "out_dir"}.
    """
    from tqdm.auto import tqdm

    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; allowed: {', '.join(ENGINES)}")
    base = base or RunConfig()
    out_dir = Path(out_dir)
    runs = plan(models, datasets, deltas, seeds, controls=controls, control_deltas=control_deltas,
                recipes=recipes, base=base, tuned_arms=tuned_arms, betas=betas, specs=specs)
    log = log or tqdm.write
    paths = {name: out_dir / "records" / f"{name}.json" for name, _ in runs}
    status = {name: run_status(paths[name], cfg) for name, cfg in runs}
    pending = [(name, cfg) for name, cfg in runs if status[name][0] != "done"]

    device = resolve_device(base.device) if engine == "local" else "the cluster"
    data = {}  # every data set with a run to do, loaded before the first run: a missing one fails now
    for name, cfg in pending:
        if cfg.dataset not in data and engine == "local":
            data[cfg.dataset] = load_dataset(cfg.dataset, data_root, download).to(device)

    summary = {"ran": [], "skipped": [], "repaired": [], "diverged": [], "claimed": [], "unusable": [],
               "records": [], "out_dir": out_dir}
    warmed = set()
    log(f"sweep: {len(runs)} runs, {len(runs) - len(pending)} already done, {len(pending)} to run on {device} "
        f"-> {out_dir}")
    bar = tqdm(total=len(runs), desc="sweep", unit="run", disable=not progress)

    def account(i, name, result, seconds):
        """Add one run's outcome (run_one's dict) to the summary and log it."""
        record = result["record"]
        if result["outcome"] == "claimed":
            summary["claimed"].append(name)
            log(f"[{i}/{len(runs)}] {name}: claimed by {result['holder']}, a sweep still running; skipped here")
        elif result["outcome"] == "unusable":
            summary["unusable"].append(name)
            log(f"[{i}/{len(runs)}] {name}: not run: {result['holder']}")
        elif result["outcome"] == "done":
            summary["skipped"].append(name)
            summary["records"].append(record)
        else:
            summary["ran"].append(name)
            summary["records"].append(record)
            if record["status"] != "complete":
                summary["diverged"].append(name)
            last = record["history"][-1]
            log(f"[{i}/{len(runs)}] {name}: {record['status']}{' (resumed)' if result['resumed'] else ''}, "
                f"test top-1 {last['test_acc']:.1f}%, {record['time_per_backprop_s'] * 1e3:.1f} ms/back-prop, "
                f"{seconds:.0f} s")
        bar.update(1)

    for i, (name, cfg) in enumerate(seeded_order(runs, seed_of=lambda run: run[1].seed), 1):  # each seed's arms shuffled
        state, record = status[name]
        ckpt = out_dir / "checkpoints" / f"{name}.pt"
        if state == "done":
            summary["skipped"].append(name)
            summary["records"].append(record)
            ckpt.unlink(missing_ok=True)  # left over from a kill between record and clean-up
            bar.update(1)
            continue
        if state in ("corrupt", "other"):  # never overwritten: it may be a newer version's record
            why = why_unusable(paths[name], cfg)
            aside = move_aside(paths[name])
            log(f"[{i}/{len(runs)}] {name}: the record there cannot be used ({why}); moved it to {aside} "
                f"and running the run again")
            summary["repaired"].append(name)
        if engine == "ray":
            continue  # submitted below, all at once

        def warm(cfg=cfg):
            if arms.block(cfg) not in warmed:
                warm_up(cfg, data[cfg.dataset])
                warmed.add(arms.block(cfg))

        t0 = time.perf_counter()
        result = run_one(out_dir, name, cfg, data[cfg.dataset], checkpoints=checkpoints, progress=progress,
                         log=lambda m, i=i, name=name: log(f"[{i}/{len(runs)}] {name}: {m}"), warm=warm,
                         stale_s=stale_s)
        account(i, name, result, time.perf_counter() - t0)
    if engine == "ray":
        index = {name: i for i, (name, _) in enumerate(runs, 1)}
        for name, result, seconds in run_on_ray(out_dir, pending, address=address, gpus_per_run=gpus_per_run,
                                                cpus_per_run=cpus_per_run, data_root=data_root,
                                                checkpoints=checkpoints, stale_s=stale_s, log=log):
            account(index[name], name, result, seconds)
    bar.close()
    order = {name: i for i, (name, _) in enumerate(runs)}  # records in plan order, whatever finished first
    summary["records"].sort(key=lambda r: order.get(r.get("sweep", {}).get("name"), -1))
    log(f"sweep: ran {len(summary['ran'])} ({len(summary['repaired'])} re-run, {len(summary['diverged'])} diverged), "
        f"skipped {len(summary['skipped'])} already done"
        + (f", left {len(summary['claimed'])} to the other sweep that holds them (run again to collect them)"
           if summary["claimed"] else "")
        + (f"; could not claim {len(summary['unusable'])} (see above: remove what is in the way and run again)"
           if summary["unusable"] else ""))
    return summary
