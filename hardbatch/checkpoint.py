"""Checkpoints: a Run saved at an equivalent epoch, and loaded back only if it is whole and is this run.

Everything a run is made of goes in (weights, optimiser, schedule, ledger, partition, every random
generator, the queue, counters, history), so a resumed run equals an uninterrupted one. Files are
written atomically and read with `weights_only=True` (tensors and plain containers, never pickled
code). A payload is checked key by key, type by type and shape by shape before anything is loaded,
so a damaged file is refused with a message naming it, never half-applied. A checksum of the contents
(`sha256`, over every tensor's bytes and every other value) is saved inside and verified before anything
is loaded: bytes flipped on disk, which leave a file that still loads, are refused like any damage.
"""
import hashlib
import io
import math

import torch

from .arms import settings
from .files import atomic_write, open_regular
from .record import check_history

STATE = ("step", "rounds", "queue", "history", "train_s", "eval_s", "status")  # the Run's counters
STATE_OPTIONAL = {"train_cpu_s": 0.0}  # counters newer than some checkpoints: their value when absent
MAX_THREADS = 1024  # config.MAX_THREADS: the most threads a run may have used


class BadCheckpoint(ValueError):
    """A checkpoint that cannot be used for this run; the message names the file and why."""


def save_checkpoint(run, path):
    payload = {"config": run.cfg.to_dict(), "model": run.model.state_dict(), "opt": run.opt.state_dict(),
               "sched": run.sched.state_dict() if run.sched is not None else None,
               "ledger": run.ledger.state_dict(), "partition": [p.cpu() for p in run.partition],
               "epoch_batches": None if run.epoch_batches is None else [p.cpu() for p in run.epoch_batches],
               "rng": {"gen": run.gen.get_state(), "aug_gen": run.aug_gen.get_state(), "torch": torch.get_rng_state(),
                       **({"cuda": torch.cuda.get_rng_state_all()} if torch.cuda.is_available() else {})},
               "state": {name: getattr(run, name) for name in STATE + tuple(STATE_OPTIONAL)}}
    payload["state"]["threads_used"] = list(run.threads_used)
    method = run.method.state_dict()
    if method:  # what the method remembers (e.g. Selective-Backprop's kept samples), under its name
        payload[run.cfg.method] = method
    payload["sha256"] = digest(payload)
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write(path, buf.getvalue())


def digest(payload):
    """sha256 (hex) of a payload's contents, the key "sha256" left out: every tensor's dtype, shape and bytes,
    every other value by its type and repr, in order. Over the contents, not the file's bytes, so the same
    payload saved again (torch.save) has the same checksum."""
    h = hashlib.sha256()
    stack = [payload]
    while stack:
        x = stack.pop()
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous().reshape(-1)
            h.update(f"T{t.dtype}{tuple(x.shape)};".encode())
            h.update(t.view(torch.uint8).numpy().tobytes())
        elif isinstance(x, dict):
            items = [(k, v) for k, v in x.items() if not (x is payload and k == "sha256")]
            h.update(f"D{len(items)};".encode())
            for k, v in reversed(items):
                stack += [v, k]  # popped as key, then value
        elif isinstance(x, (list, tuple)):
            h.update(f"L{len(x)};".encode())
            stack += reversed(x)
        else:
            h.update(f"{type(x).__name__}:{x!r};".encode())
    return h.hexdigest()


def check_digest(path, payload):
    """BadCheckpoint unless the payload's contents match the checksum saved with them (a checkpoint written
    before checksums existed has none and is checked by its structure only)."""
    if "sha256" not in payload:
        return
    try:
        same = isinstance(payload["sha256"], str) and payload["sha256"] == digest(payload)
    except (TypeError, ValueError, RuntimeError):  # e.g. a tensor of a kind numpy cannot view
        same = False
    if not same:
        raise BadCheckpoint(f"checkpoint {path} is damaged: its contents do not match the checksum saved with "
                            f"them (bytes changed on disk or in a copy); delete it to start the run afresh")


def read_payload(path):
    """The checkpoint's payload (a dict), or BadCheckpoint if it does not load safely."""
    try:
        f = open_regular(path)  # never a device or a named pipe (torch.load would wait on it forever)
    except (OSError, ValueError) as e:
        why = getattr(e, "strerror", None) or str(e).replace(str(path), "it")
        raise BadCheckpoint(f"checkpoint {path} cannot be read ({why}); delete it to start the run afresh") from None
    try:  # weights_only: tensors and plain containers only, never arbitrary pickled code
        with f:
            payload = torch.load(f, weights_only=True, map_location="cpu")
    except Exception as e:  # noqa: BLE001 (a corrupt, truncated or unsafe file: torch raises several kinds)
        raise BadCheckpoint(f"checkpoint {path} cannot be loaded safely ({type(e).__name__}); "
                            f"delete it to start the run afresh") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("config"), dict):
        raise BadCheckpoint(f"checkpoint {path} is not a hardbatch checkpoint (no config); delete it to start afresh")
    return payload


def _check(path, ok, what):
    if not ok:
        raise BadCheckpoint(f"checkpoint {path} is malformed: {what}; delete it to start the run afresh")


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _like(saved, current):
    """True if `saved` has the structure of `current`: the same keys, lengths, tensor shapes and dtypes,
    and numbers, flags and text where `current` has them (the values themselves may differ)."""
    if isinstance(current, torch.Tensor):
        return isinstance(saved, torch.Tensor) and saved.shape == current.shape and saved.dtype == current.dtype
    if isinstance(current, dict):
        return isinstance(saved, dict) and saved.keys() == current.keys() and all(
            _like(saved[k], v) for k, v in current.items())
    if isinstance(current, (list, tuple)):
        return (isinstance(saved, (list, tuple)) and len(saved) == len(current)
                and all(_like(a, b) for a, b in zip(saved, current)))
    if isinstance(current, bool) or current is None:
        return saved is None or isinstance(saved, bool)
    if isinstance(current, int):
        return _is_int(saved)
    if isinstance(current, float):
        return isinstance(saved, (int, float)) and not isinstance(saved, bool) and math.isfinite(saved)
    return type(saved) is type(current)


def _same_tensors(saved, current):
    return (isinstance(saved, dict) and saved.keys() == current.keys()
            and all(isinstance(saved[k], torch.Tensor) and saved[k].shape == v.shape for k, v in current.items()))


def _optimizer_fits(saved, run):
    """The optimiser's hyper-parameters are the config's (the lr at most the config's: a schedule only lowers
    it), and every state tensor (a momentum buffer) is finite and has the shape of its parameter."""
    current = run.opt.state_dict()
    if not (isinstance(saved, dict) and saved.keys() == current.keys()
            and _like(saved["param_groups"], current["param_groups"]) and isinstance(saved["state"], dict)):
        return False
    shapes = [p.shape for group in run.opt.param_groups for p in group["params"]]
    groups = zip(saved["param_groups"], current["param_groups"])
    if any(g.get(k) != v for g, c in groups for k, v in c.items() if k != "lr"):  # they come from the config
        return False
    if any(not 0 <= g["lr"] <= run.cfg.lr for g in saved["param_groups"]):  # the schedule only lowers it
        return False
    return all(_is_int(i) and 0 <= i < len(shapes) and isinstance(st, dict)
               and all(v is None or (isinstance(v, torch.Tensor) and v.shape == shapes[i] and _finite([v]))
                       for v in st.values())
               for i, st in saved["state"].items())


def _finite(tensors):
    """True if every floating-point tensor among `tensors` holds finite numbers only."""
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())


def _partition_like(batches, run, exact=True):
    """N (exact=False: at most N) one-dimensional integer tensors of training-sample indices."""
    n = len(run.data.y_train)
    return isinstance(batches, list) and (len(batches) == run.N if exact else len(batches) <= run.N) and all(
        isinstance(b, torch.Tensor) and b.ndim == 1 and b.dtype == torch.long
        and (b.numel() == 0 or (int(b.min()) >= 0 and int(b.max()) < n)) for b in batches)


def check_payload(path, payload, run):
    """Raise BadCheckpoint unless `payload` is a whole checkpoint of this very run: every part of the Run
    it would restore, checked for type, shape and range against the run as it is now."""
    mine = settings(run.cfg)
    try:
        saved = settings(payload["config"])
        differ = [k for k in sorted(set(saved) | set(mine)) if k not in saved or k not in mine or saved[k] != mine[k]]
    except (KeyError, TypeError, ValueError, RuntimeError) as e:  # e.g. keys that are not text, tensors as values
        raise BadCheckpoint(f"checkpoint {path} has an unreadable config ({type(e).__name__}); "
                            f"delete it to start the run afresh") from None
    if differ:
        shown = ", ".join(f"{k}: {_short(saved.get(k))} there, {_short(mine.get(k))} here" for k in differ[:4])
        raise BadCheckpoint(f"checkpoint {path} belongs to another configuration ({shown})")
    for key in ("model", "opt", "sched", "ledger", "partition", "epoch_batches", "rng", "state"):
        _check(path, key in payload, f"the key {key!r} is missing")
    _check(path, _same_tensors(payload["model"], run.model.state_dict()), "its weights do not fit the model")
    _check(path, _finite(payload["model"].values()), "its weights are not all finite (only healthy runs are saved)")
    _check(path, _optimizer_fits(payload["opt"], run), "its optimiser state does not fit the model")
    _check(path, (payload["sched"] is None) == (run.sched is None)
           and (run.sched is None or _like(payload["sched"], run.sched.state_dict())), "its lr schedule")
    part = payload["partition"]
    _check(path, _partition_like(part, run), "its partition is not N index tensors")
    if any(not torch.equal(a.cpu(), b) for a, b in zip(run.partition, part)):
        raise BadCheckpoint(f"checkpoint {path} was made with another partition of the data")
    eb, saves = payload["epoch_batches"], run.method.saves_backprops
    _check(path, eb is None or _partition_like(eb, run, exact=not saves), "its batches of this pass")
    rng = {"gen": run.gen.get_state(), "aug_gen": run.aug_gen.get_state(), "torch": torch.get_rng_state()}
    _check(path, isinstance(payload["rng"], dict) and all(_like(payload["rng"].get(g), t) for g, t in rng.items()),
           "its random states")
    st = payload["state"]
    _check(path, isinstance(st, dict) and all(name in st for name in STATE), "its counters are incomplete")
    step = st["step"]
    _check(path, _is_int(step) and 0 <= step <= run.T and (saves or step % run.N == 0),
           f"back-prop count {step!r} is not an equivalent epoch of this run")
    _check(path, _is_int(st["rounds"]) and 0 <= st["rounds"] <= step, f"round count {st['rounds']!r}")
    _check(path, isinstance(st["queue"], list) and len(st["queue"]) <= run.T - step
           and all(_is_int(i) and 0 <= i < run.N for i in st["queue"]), "its queue holds batch indices out of range")
    _check(path, all(_like(st.get(k, 0.0), 0.0) and st.get(k, 0.0) >= 0 for k in ("train_s", "eval_s", "train_cpu_s")),
           "its clocks")
    _check(path, st["status"] == "complete", f"its status {st['status']!r} (only healthy runs are saved)")
    _check(path, isinstance(st["history"], list) and len(st["history"]) <= run.cfg.epochs + 1
           and (saves or len(st["history"]) == step // run.N + 1)
           and isinstance(st["history"][-1], dict) and st["history"][-1].get("backprops") == step,
           "its history does not match its back-prop count")
    try:
        check_history(st["history"], run.N, complete=True, exact=not saves)
    except ValueError as e:
        raise BadCheckpoint(f"checkpoint {path} is malformed: {e}; delete it to start the run afresh") from None
    if run.method.state_dict():
        _check(path, run.cfg.method in payload, f"its {run.cfg.method} state is missing")
        try:  # checked on a fresh method of this run; copied to the run's own only once all is checked
            type(run.method)(run).load_state_dict(payload[run.cfg.method], run)
        except (ValueError, TypeError, KeyError, RuntimeError) as e:
            raise BadCheckpoint(f"checkpoint {path} is malformed: {e}; delete it to start the run afresh") from None
    used = st.get("threads_used", [1])
    _check(path, isinstance(used, list) and used and all(_is_int(n) and 1 <= n <= MAX_THREADS for n in used),
           f"its thread counts {_short(used)}")
    ledger = payload["ledger"]
    _check(path, _like(ledger, run.ledger.state_dict()) and bool((ledger["train_count"] >= 0).all())
           and bool(torch.isfinite(ledger["loss"][ledger["train_count"] > 0]).all())
           and int(ledger["train_count"].sum()) == step
           and bool(((ledger["last_scored"] >= -1) & (ledger["last_scored"] < max(step, 1))).all()),
           "its ledger does not fit N batches and its back-prop count")
    check_digest(path, payload)  # last: a payload changed by hand is named by what is wrong with it, above


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
        if "cuda" in payload["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(payload["rng"]["cuda"])
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as e:  # a last line of defence
        raise BadCheckpoint(f"checkpoint {path} does not fit this run ({type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else ''}); delete it to start afresh") from None
    for name in STATE:
        setattr(run, name, payload["state"][name])
    for name, absent in STATE_OPTIONAL.items():
        setattr(run, name, payload["state"].get(name, absent))
    run.threads_used = list(payload["state"].get("threads_used", run.threads_used))  # older: this process's
    eb = payload.get("epoch_batches")
    run.epoch_batches = None if eb is None else [p.to(run.device) for p in eb]
    if run.method.state_dict():
        run.method.load_state_dict(payload[run.cfg.method], run)

