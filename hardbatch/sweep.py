"""Sweeps: every run of a grid of models × data sets × seeds × arms, one record each, resumable.

The arms of one data set, model and seed are Algorithm 1 (the baseline row), Algorithm 2
(`hardest`) at every δ, and the control (`random`) at the smallest δ below 1, where selection
bites hardest and the control tells most. Each run writes one JSON record whose name is fixed
by its config, so a sweep that is stopped and started again finds what is done and runs only
the rest:

- a record that loads (`record.load_record`) and holds the same config is done: it is skipped;
- a missing record is run; a partial or corrupt one is run again, and never counted;
- a run killed half-way continues from its checkpoint (DIR/checkpoints/NAME.pt, written every
  equivalent epoch, deleted once the record is written).

Records are written atomically, so a kill leaves a whole record or none. The runs of one data
set, model and seed follow each other in one process, so their times per back-prop compare
fairly (Table 1); a short untimed warm-up run first pays the one-time costs (cuDNN choosing its
kernels on a GPU, allocator and thread-pool start-up on a CPU), so the first timed run is not
charged for them. Chapter 5 teaches this; `hardbatch sweep` runs it.
"""
import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from .compare import arms
from .config import RunConfig, resolve_device, settings
from .data import load_dataset
from .record import load_record, save_record
from .train import train

# The paper's set-up. tf_efficientnetv2_s is its EfficientNetV2-S: 20.19 M weights at 10 classes,
# the count the paper gives; timm's efficientnetv2_rw_s (a variant Ross Wightman trained) has 22.17 M.
PAPER_MODELS = ("resnet18", "resnet50", "efficientnet_b4", "tf_efficientnetv2_s", "mobilenetv3_small_100")
PAPER_DATASETS = ("cifar10", "cifar100", "stl10")
PAPER_DELTAS = (1.0, 0.8, 0.5, 0.2)
PAPER_BASE = dict(lr=0.005, momentum=0.9, weight_decay=0.0, batch_size=512, image_size=128)

# Two training recipes for every arm alike. `paper`: constant lr, no augmentation (the paper's).
# `tuned`: cosine decay keyed to back-props plus random crop + flip, an honest baseline: gains
# measured against an untuned baseline are known to shrink or vanish against a tuned one.
RECIPES = {"paper": {"lr_schedule": "constant", "augment": False},
           "tuned": {"lr_schedule": "cosine", "augment": True}}


def record_name(cfg, test_subset=0):
    """`dataset-model-method-arm-dδ-sSEED-HASH`: readable, and fixed by the whole config.

    HASH is 8 hex digits of every other setting (epochs, lr, image size, ...; not the device), so
    a folder may hold sweeps of different settings without one ever being mistaken for another.
    """
    named = settings(cfg)
    if test_subset:
        named["test_subset"] = test_subset
    digest = hashlib.sha1(json.dumps(named, sort_keys=True).encode()).hexdigest()[:8]
    arm = cfg.order if cfg.method == "minibatch" else cfg.select
    return f"{cfg.dataset}-{cfg.model}-{cfg.method}-{arm}-d{cfg.delta:g}-s{cfg.seed}-{digest}"


def plan(models, datasets, deltas, seeds, *, controls=("random",), control_deltas=None,
         recipes=("paper",), base=None, test_subset=0):
    """The runs of a sweep, in the order they run: a list of (name, RunConfig)."""
    base = base or RunConfig()
    deltas = tuple(float(d) for d in deltas)
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
                    b = replace(base, dataset=dataset, model=model, seed=seed, **RECIPES[recipe])
                    configs = arms(b, deltas, ("hardest",)) + arms(b, tuple(control_deltas), tuple(controls))[1:]
                    for cfg in configs:
                        name = record_name(cfg, test_subset)
                        if name not in seen:  # e.g. "hardest" named again as a control
                            seen.add(name)
                            out.append((name, cfg))
    return out


def _same_run(record, cfg, test_subset):
    same_test_set = record.get("sweep", {}).get("test_subset", 0) == test_subset
    return settings(cfg) == settings(record["config"]) and same_test_set


def run_status(path, cfg, test_subset=0):
    """('done', record) | ('missing', None) | ('corrupt', None) | ('other', None) for one record file."""
    path = Path(path)
    if not path.exists():
        return "missing", None
    try:
        record = load_record(path)
    except ValueError:  # partial, truncated, or not a run record at all
        return "corrupt", None
    if not _same_run(record, cfg, test_subset):
        return "other", None
    return "done", record


def shrink_test_set(data, n, seed=0):
    """The same data with only `n` test samples (a seeded choice), to make evaluation cheap on a CPU."""
    if not n or n >= len(data.y_test):
        return data
    idx = torch.randperm(len(data.y_test), generator=torch.Generator().manual_seed(seed))[:n]
    return replace(data, x_test=data.x_test[idx.to(data.x_test.device)], y_test=data.y_test[idx.to(data.y_test.device)])


def _usable_checkpoint(path, cfg):
    """True when `path` loads and was written by this very config (else the run starts over)."""
    try:
        saved = torch.load(path, weights_only=True, map_location="cpu")["config"]
    except Exception:  # noqa: BLE001 - any checkpoint that does not load is unusable
        return False
    return settings(saved) == settings(cfg)


def warm_up(cfg, data):
    """An untimed 1-epoch run on a few batches of the run's shapes, so one-time costs (cuDNN's
    autotuning under `cudnn.benchmark`, allocator warm-up) are paid here, not by the first timed run."""
    n = cfg.subset or len(data.y_train)
    size = min(n, 2 * cfg.batch_size + n % cfg.batch_size)  # full batches and the last, smaller one
    small_test = replace(data, x_test=data.x_test[:cfg.batch_size], y_test=data.y_test[:cfg.batch_size])
    train(replace(cfg, method="minibatch", epochs=1, subset=size), data=small_test)


def sweep(out_dir, models=("small_cnn",), datasets=("digits",), deltas=(0.5, 0.2), seeds=(0, 1, 2), *,
          controls=("random",), control_deltas=None, recipes=("paper",), base=None, test_subset=0,
          data_root=None, download=False, checkpoints=True, progress=True, log=None):
    """Run every run of the grid that DIR/records does not already hold; return a summary dict.

    base: a RunConfig with the shared settings (epochs, batch size, lr, image size, device, ...).
    test_subset: evaluate on this many test samples (0 = all). Returns {"ran", "skipped",
    "repaired", "diverged": lists of record names, "records": every record of the grid, "out_dir"}.
    """
    from tqdm.auto import tqdm

    base = base or RunConfig()
    out_dir = Path(out_dir)
    runs = plan(models, datasets, deltas, seeds, controls=controls, control_deltas=control_deltas,
                recipes=recipes, base=base, test_subset=test_subset)
    log = log or tqdm.write
    paths = {name: out_dir / "records" / f"{name}.json" for name, _ in runs}
    status = {name: run_status(paths[name], cfg, test_subset) for name, cfg in runs}
    pending = [(name, cfg) for name, cfg in runs if status[name][0] != "done"]

    device = resolve_device(base.device)
    data = {}  # every data set with a run to do, loaded before the first run: a missing one fails now
    for name, cfg in pending:
        if cfg.dataset not in data:
            data[cfg.dataset] = shrink_test_set(load_dataset(cfg.dataset, data_root, download), test_subset).to(device)

    summary = {"ran": [], "skipped": [], "repaired": [], "diverged": [], "records": [], "out_dir": out_dir}
    warmed = set()
    log(f"sweep: {len(runs)} runs, {len(runs) - len(pending)} already done, {len(pending)} to run on {device} "
        f"-> {out_dir}")
    bar = tqdm(total=len(runs), desc="sweep", unit="run", disable=not progress)
    for i, (name, cfg) in enumerate(runs, 1):
        state, record = status[name]
        ckpt = out_dir / "checkpoints" / f"{name}.pt"
        if state == "done":
            summary["skipped"].append(name)
            summary["records"].append(record)
            ckpt.unlink(missing_ok=True)  # left over from a kill between record and clean-up
            bar.update(1)
            continue
        if state in ("corrupt", "other"):
            what = "corrupt" if state == "corrupt" else "of another run"
            log(f"[{i}/{len(runs)}] {name}: the record there is {what}; running it again")
            summary["repaired"].append(name)
        if (key := (cfg.dataset, cfg.model, cfg.image_size, cfg.batch_size, cfg.subset, cfg.augment)) not in warmed:
            warm_up(cfg, data[cfg.dataset])
            warmed.add(key)
        if ckpt.exists() and not _usable_checkpoint(ckpt, cfg):
            log(f"[{i}/{len(runs)}] {name}: checkpoint unusable; starting the run over")
            ckpt.unlink()
        resumed = checkpoints and ckpt.exists()
        t0 = time.perf_counter()
        record = train(cfg, data=data[cfg.dataset], checkpoint=ckpt if checkpoints else None, resume=True,
                       progress=progress)
        record["sweep"] = {"name": name, "test_subset": test_subset}
        save_record(record, paths[name])
        ckpt.unlink(missing_ok=True)
        summary["ran"].append(name)
        summary["records"].append(record)
        last = record["history"][-1]
        if record["status"] != "complete":
            summary["diverged"].append(name)
        log(f"[{i}/{len(runs)}] {name}: {record['status']}{' (resumed)' if resumed else ''}, "
            f"test top-1 {last['test_acc']:.1f}%, {record['time_per_backprop_s'] * 1e3:.1f} ms/back-prop, "
            f"{time.perf_counter() - t0:.0f} s")
        bar.update(1)
    bar.close()
    log(f"sweep: ran {len(summary['ran'])} ({len(summary['repaired'])} re-run, {len(summary['diverged'])} diverged), "
        f"skipped {len(summary['skipped'])} already done")
    return summary
