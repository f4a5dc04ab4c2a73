"""Checkpoints: a Run saved at an equivalent epoch, and loaded back only if it is whole and is this run.

Everything a run is made of goes in (weights, optimiser, schedule, ledger, partition, every random
generator, the queue, counters, history), so a resumed run equals an uninterrupted one. Files are
written atomically and read with `weights_only=True` (tensors and plain containers, never pickled
code). A payload is checked key by key, type by type and shape by shape before anything is loaded,
so a damaged file is refused with a message naming it, never half-applied.
"""
import io

import torch

from .arms import settings
from .record import atomic_write

STATE = ("step", "rounds", "queue", "history", "train_s", "eval_s", "status")  # the Run's counters


class BadCheckpoint(ValueError):
    """A checkpoint that cannot be used for this run; the message names the file and why."""


def save_checkpoint(run, path):
    payload = {"config": run.cfg.to_dict(), "model": run.model.state_dict(), "opt": run.opt.state_dict(),
               "sched": run.sched.state_dict() if run.sched is not None else None,
               "ledger": run.ledger.state_dict(), "partition": [p.cpu() for p in run.partition],
               "epoch_batches": None if run.epoch_batches is None else [p.cpu() for p in run.epoch_batches],
               "rng": {"gen": run.gen.get_state(), "aug_gen": run.aug_gen.get_state(), "torch": torch.get_rng_state(),
                       **({"cuda": torch.cuda.get_rng_state_all()} if torch.cuda.is_available() else {})},
               "state": {name: getattr(run, name) for name in STATE}}
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write(path, buf.getvalue())


def read_payload(path):
    """The checkpoint's payload (a dict), or BadCheckpoint if it does not load safely."""
    try:  # weights_only: tensors and plain containers only, never arbitrary pickled code
        payload = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as e:  # noqa: BLE001 (a corrupt, truncated or unsafe file: torch raises several kinds)
        raise BadCheckpoint(f"checkpoint {path} cannot be loaded safely ({type(e).__name__}); "
                            f"delete it to start the run afresh") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("config"), dict):
        raise BadCheckpoint(f"checkpoint {path} is not a hardbatch checkpoint (no config); delete it to start afresh")
    return payload


def _check(path, ok, what):
    if not ok:
        raise BadCheckpoint(f"checkpoint {path} is malformed: {what}; delete it to start the run afresh")


def _same_tensors(saved, current):
    return (isinstance(saved, dict) and saved.keys() == current.keys()
            and all(isinstance(saved[k], torch.Tensor) and saved[k].shape == v.shape for k, v in current.items()))


def check_payload(path, payload, run):
    """Raise BadCheckpoint unless `payload` is a whole checkpoint of this very run."""
    try:
        saved = settings(payload["config"])
    except (KeyError, TypeError) as e:
        raise BadCheckpoint(f"checkpoint {path} has an unreadable config ({e})") from None
    if saved != settings(run.cfg):
        raise BadCheckpoint(f"checkpoint {path} belongs to another configuration: {saved}")
    for key in ("model", "opt", "ledger", "partition", "rng", "state"):
        _check(path, key in payload, f"the key {key!r} is missing")
    _check(path, _same_tensors(payload["model"], run.model.state_dict()), "its weights do not fit the model")
    _check(path, _same_tensors(payload["ledger"], run.ledger.state_dict()), "its ledger does not fit N batches")
    part = payload["partition"]
    _check(path, isinstance(part, list) and len(part) == run.N and all(isinstance(p, torch.Tensor) for p in part),
           "its partition is not N index tensors")
    if any(not torch.equal(a.cpu(), b) for a, b in zip(run.partition, part)):
        raise BadCheckpoint(f"checkpoint {path} was made with another partition of the data")
    st = payload["state"]
    _check(path, isinstance(st, dict) and all(name in st for name in STATE), "its counters are incomplete")
    _check(path, isinstance(st["step"], int) and 0 <= st["step"] <= run.T and st["step"] % run.N == 0,
           f"back-prop count {st.get('step')!r} is not an equivalent epoch of this run")
    _check(path, isinstance(st["queue"], list) and all(isinstance(i, int) and 0 <= i < run.N for i in st["queue"]),
           "its queue holds batch indices out of range")
    _check(path, isinstance(st["history"], list) and len(st["history"]) == st["step"] // run.N + 1
           and all(isinstance(h, dict) for h in st["history"]), "its history does not match its back-prop count")
    _check(path, isinstance(payload["rng"], dict) and all(isinstance(payload["rng"].get(g), torch.Tensor)
                                                          for g in ("gen", "aug_gen", "torch")), "its random states")


def load_checkpoint(run, path):
    """Restore `run` from the checkpoint at `path` (BadCheckpoint if it is not a whole checkpoint of this run)."""
    payload = read_payload(path)
    check_payload(path, payload, run)
    try:
        run.model.load_state_dict(payload["model"])
        run.opt.load_state_dict(payload["opt"])
        if run.sched is not None:
            run.sched.load_state_dict(payload["sched"])
        run.ledger.load_state_dict(payload["ledger"])
        run.gen.set_state(payload["rng"]["gen"])
        if run.aug_gen is not run.gen:
            run.aug_gen.set_state(payload["rng"]["aug_gen"])
        torch.set_rng_state(payload["rng"]["torch"])
    except (RuntimeError, ValueError, KeyError, TypeError) as e:  # e.g. an optimiser state of another shape
        raise BadCheckpoint(f"checkpoint {path} does not fit this run ({type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else ''}); delete it to start afresh") from None
    if "cuda" in payload["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["rng"]["cuda"])
    for name in STATE:
        setattr(run, name, payload["state"][name])
    eb = payload.get("epoch_batches")
    run.epoch_batches = None if eb is None else [p.to(run.device) for p in eb]

