"""One run of a sweep, the same for every engine: claim it, train it (resuming its checkpoint), record it, release it.

Why a module of its own: the local engine (sweep.py) and the Ray engine (cluster.py) both run exactly this, so
both import it from here, and neither imports the other's module for it. Also here: what a record file on disk
says about its run (`run_status`), setting aside one that cannot be used (`move_aside`, never overwriting it),
and the untimed warm-up run that pays one-time costs before the first timed run (`warm_up`, which `compare`
uses too).
"""
import os
from dataclasses import replace
from pathlib import Path

from . import arms
from .checkpoint import BadCheckpoint
from .claims import CLAIM_STALE_S, Claim, ClaimLost, UnusableClaim
from .config import RunConfig
from .record import load_record, save_record
from .train import train


def run_status(path, cfg):
    """('done', record) | ('missing', None) | ('corrupt', None) | ('other', None) for one record file."""
    path = Path(path)
    if not path.exists():
        return "missing", None
    try:
        record = load_record(path)
    except ValueError:  # partial, truncated, malformed, or not a run record at all
        return "corrupt", None
    if arms.run_key(record["config"]) != arms.run_key(cfg):
        return "other", None
    return "done", record


def move_aside(path):
    """Rename a record that cannot be used to NAME.json.unreadable-<n> (the first n free) and return the new
    name: it may be a newer version's record, or one a person wants to look at; it is never overwritten.
    None if it is gone already (another sweep moved it)."""
    path = Path(path)
    n = 1
    while True:
        aside = path.with_name(f"{path.name}.unreadable-{n}")
        try:
            os.link(path, aside, follow_symlinks=False)  # fails if `aside` exists: never replaces one set aside
        except FileExistsError:
            n += 1
            continue
        except FileNotFoundError:
            return None
        except OSError:  # a filesystem without hard links: rename, after checking the name is free
            if aside.exists() or aside.is_symlink():
                n += 1
                continue
            try:
                path.rename(aside)
            except FileNotFoundError:
                return None
            return aside.name
        path.unlink(missing_ok=True)
        return aside.name


def why_unusable(path, cfg):
    """Why the record at `path` cannot be this run's record, in a few words (for messages)."""
    try:
        record = load_record(path)
    except ValueError as e:
        return str(e).removeprefix(f"{path}: ")
    return f"it holds another run ({arms.record_name(record['config'])})"


def run_one(out_dir, name, cfg, data, *, checkpoints=True, progress=False, log=print, warm=None,
            stale_s=CLAIM_STALE_S):
    """One run of a sweep, the same for every engine: claim it, train it (from its checkpoint if there is
    one), write its record atomically, release the claim. `warm()`, if given, runs once the claim is held.

    Returns {"outcome": "ran" | "done" (finished by another sweep meanwhile) | "claimed" (a live other
    sweep holds it) | "unusable" (its claim path is a link or a special file: `holder` says so), "record",
    "resumed", "holder"}."""
    out_dir = Path(out_dir)
    path, ckpt = out_dir / "records" / f"{name}.json", out_dir / "checkpoints" / f"{name}.pt"
    claim = Claim(out_dir / "claims" / f"{name}.claim", stale_s)
    try:
        if not claim.acquire():
            return {"outcome": "claimed", "record": None, "resumed": False, "holder": claim.holder}
    except UnusableClaim as e:
        return {"outcome": "unusable", "record": None, "resumed": False, "holder": str(e)}
    try:
        state, record = run_status(path, cfg)  # another sweep may have finished it since we looked
        if state == "done":
            ckpt.unlink(missing_ok=True)
            return {"outcome": "done", "record": record, "resumed": False, "holder": None}
        if state in ("corrupt", "other"):  # appeared since the sweep looked: kept, out of the way
            log(f"the record there cannot be used ({why_unusable(path, cfg)}); moved it to {move_aside(path)}")
        if claim.took_over:
            log(f"took over the claim of {claim.took_over} (it stopped)")
        if warm is not None:
            warm()
        resumed = checkpoints and ckpt.exists()
        try:
            try:
                record = train(cfg, data=data, checkpoint=ckpt if checkpoints else None, resume=True,
                               progress=progress, on_epoch=claim.check)
            except BadCheckpoint as e:  # a damaged checkpoint must not block the run on every retry
                ckpt.replace(ckpt.with_suffix(".bad"))
                log(f"{e}; moved it to {ckpt.with_suffix('.bad').name} and starting over")
                resumed = False
                record = train(cfg, data=data, checkpoint=ckpt if checkpoints else None, progress=progress,
                               on_epoch=claim.check)
        except ClaimLost as e:  # ours went stale (this process was frozen) and another sweep trains it now
            log(f"{e}; stopped training it here")
            return {"outcome": "claimed", "record": None, "resumed": False, "holder": (claim.read() or ("?",))[0]}
        record["sweep"] = {"name": name}
        save_record(record, path)
        ckpt.unlink(missing_ok=True)
        return {"outcome": "ran", "record": record, "resumed": resumed, "holder": None}
    finally:
        claim.release()


def warm_up(cfg, data):
    """An untimed 1-epoch run on a few batches of the run's shapes, so one-time costs (cuDNN's
    autotuning under `cudnn.benchmark`, allocator warm-up) are paid here, not by the first timed run."""
    n = cfg.subset or len(data.y_train)
    size = min(n, 2 * cfg.batch_size + n % cfg.batch_size)  # full batches and the last, smaller one
    small_test = replace(data, x_test=data.x_test[:cfg.batch_size], y_test=data.y_test[:cfg.batch_size])
    common = {k: v for k, v in cfg.to_dict().items() if k not in arms.ALGORITHM}
    train(RunConfig(**{**common, "epochs": 1, "subset": size, "train_eval_subset": 0, "test_subset": 0},
                    method="minibatch"), data=small_test)
