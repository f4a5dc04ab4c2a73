"""The run record: one JSON file per run, written atomically, checked against a schema.

A record holds everything a table or figure needs (METHOD.md lists the keys), so sweeps and
reports never re-run anything. Files are written to a temporary name and renamed into place,
so a killed process leaves either the old file or the new one, never half of one.
"""
import json
import math
import os
import tempfile
from pathlib import Path

CONFIG_KEYS = ("method", "delta", "epochs", "batch_size", "lr", "momentum", "weight_decay", "seed",
               "model", "dataset", "image_size", "device")
HISTORY_KEYS = ("epoch", "backprops", "train_loss", "test_loss", "test_acc", "wall_s")
RECORD_KEYS = {"config": dict, "n_batches": int, "k": int, "rounds": int, "backprops": int,
               "batch_train_counts": list, "history": list, "time_per_backprop_s": (int, float),
               "version": str, "status": str}
STATUSES = ("complete", "diverged")


TIMING_KEYS = ("time_per_backprop_s", "train_s", "eval_s", "wall_s")  # the only fields that differ between identical runs


def without_timing(x):
    """A record (or any part of one) without its timing fields: what must be equal between two runs of the
    same config on the CPU, e.g. an uninterrupted run and one killed and resumed."""
    if isinstance(x, dict):
        return {k: without_timing(v) for k, v in x.items() if k not in TIMING_KEYS}
    if isinstance(x, list):
        return [without_timing(v) for v in x]
    return x


def atomic_write(path, data):
    """Write bytes or str to `path` through a temporary file in the same folder and os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes owner-only files; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _clean(x):
    """JSON has no NaN: write non-finite floats as null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def save_record(record, path):
    validate_record(record)
    atomic_write(path, json.dumps(_clean(record), indent=1) + "\n")


def validate_record(record):
    """Raise ValueError naming the first thing that does not match the schema."""
    if not isinstance(record, dict):
        raise ValueError(f"a run record must be a JSON object, got {type(record).__name__}")
    for key, kind in RECORD_KEYS.items():
        if key not in record:
            raise ValueError(f"run record lacks the key {key!r}")
        if not isinstance(record[key], kind) or isinstance(record[key], bool):
            raise ValueError(f"run record key {key!r} should be {kind}, got {type(record[key]).__name__}")
    missing = [k for k in CONFIG_KEYS if k not in record["config"]]
    if missing:
        raise ValueError(f"run record config lacks {missing}")
    if record["status"] not in STATUSES:
        raise ValueError(f"run record status {record['status']!r} is not one of {STATUSES}")
    if len(record["batch_train_counts"]) != record["n_batches"]:
        raise ValueError("batch_train_counts must have n_batches entries")
    for entry in record["history"]:
        missing = [k for k in HISTORY_KEYS if k not in entry]
        if missing:
            raise ValueError(f"history entry {entry.get('epoch')} lacks {missing}")
    if record["status"] == "complete":
        if record["backprops"] != record["n_batches"] * record["config"]["epochs"]:
            raise ValueError("a complete record must have spent exactly N*E back-props")
        if len(record["history"]) != record["config"]["epochs"] + 1:
            raise ValueError("a complete record has one history entry per equivalent epoch, plus epoch 0")
    return record


def load_record(path):
    """Read and validate a record; a partial or corrupt file raises ValueError."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable run record ({e})") from e
    try:
        return validate_record(record)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from e
