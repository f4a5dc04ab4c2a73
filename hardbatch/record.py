"""The run record: one JSON file per run, written atomically, checked in full when read.

A record holds everything a table or figure needs (docs/method.md lists the keys), so sweeps and
reports never re-run anything. It is written and read as files.py writes and reads every file: atomically,
so a killed process leaves either the old file or the new one, never half of one, and never through a path
that is not a regular file (a device, a named pipe, a folder). records.py reads a whole folder of them.

Every record read goes through `load_record`, and every record written through `save_record`:
one validation (`validate_record`) checks every field's type and range, the history entry by
entry, and that a complete run holds only finite numbers. A file that fails it is refused with
its name and why: `report` lists and skips it, `sweep` runs it again.
"""
import json
import math
import numbers

from . import methods
from .files import atomic_write, read_bytes

CONFIG_KEYS = ("method", "delta", "epochs", "batch_size", "lr", "momentum", "weight_decay", "seed",
               "model", "dataset", "image_size", "device")
HISTORY_KEYS = ("epoch", "backprops", "train_loss", "train_acc", "test_loss", "test_acc", "backprop_loss",
                "train_s", "wall_s")
HISTORY_OPTIONAL = ("eval_s", "train_cpu_s")  # added after 0.1.0's first records; checked when present
RECORD_KEYS = {"config": dict, "status": str, "n_train": int, "n_test": int, "n_batches": int, "k": int,
               "rounds": int, "backprops": int, "batch_train_counts": list, "final_ledger_loss": list,
               "history": list, "time_per_backprop_s": numbers.Real, "version": str, "torch": str}
RECORD_OPTIONAL = {"n_train_eval": int, "sweep": dict,
                   "backprop_samples": int, "forward_samples": int, "forward_s": numbers.Real,  # chapter 6's counts
                   "cpu_per_backprop_s": numbers.Real,  # process CPU time per back-prop (newer records)
                   "threads_used": list}  # torch's CPU thread counts in the order they ran (a resumed run: several)
STATUSES = ("complete", "diverged")
MAX_RECORD_BYTES = 64 * 2**20  # a record of 100 epochs and 50 000 batches is ~2 MB
MAX_DEPTH = 4  # record -> history -> entry -> value; anything deeper is not a record


TIMING_KEYS = ("time_per_backprop_s", "cpu_per_backprop_s", "train_s", "train_cpu_s", "eval_s", "wall_s",
               "forward_s")  # the only fields that differ between identical runs


def without_timing(x):
    """A record (or any part of one) without its timing fields: what must be equal between two runs of the
    same config on the CPU, e.g. an uninterrupted run and one killed and resumed."""
    if isinstance(x, dict):
        return {k: without_timing(v) for k, v in x.items() if k not in TIMING_KEYS}
    if isinstance(x, list):
        return [without_timing(v) for v in x]
    return x


def _no_constants(name):
    raise ValueError(f"{name} is not valid JSON (hardbatch writes null for a non-finite number)")


def _depth_over(x, limit):
    """True if lists and objects nest deeper than `limit` (iterative: no recursion limit to hit)."""
    stack = [(x, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth >= limit:
                return True
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return False


# ---------------------------------------------------------------- the schema

def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x):
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def _int(value, where, low=0, high=None):
    if not _is_int(value) or value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"from {low} to {high}"
        raise ValueError(f"{where} must be an integer {allowed}, got {_short(value)}")
    return value


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _metric(value, where, null_ok, low=None, high=None):
    """A finite number in [low, high], or None where null_ok (a non-finite loss of a diverged run)."""
    if value is None and null_ok:
        return
    if not _is_number(value) or (low is not None and value < low) or (high is not None and value > high):
        bounds = "" if low is None else f" in [{low}, {high}]" if high is not None else f" >= {low}"
        raise ValueError(f"{where} must be a finite number{bounds}{' or null' if null_ok else ''}, "
                         f"got {_short(value)}")


def check_history(history, n_batches, complete, exact=True):
    """Raise ValueError unless `history` is a list of entries for equivalent epochs 0, 1, ... whose metrics
    are finite numbers (None allowed only for the losses of a run that is not complete, and for the
    back-prop loss of epoch 0, which has none). Shared by records and checkpoints. exact=False: a method that
    saves back-props (InfoBatch), whose epoch e ends after more back-props than epoch e-1 and at most e·N."""
    if not isinstance(history, list) or not history:
        raise ValueError(f"history must be a non-empty list of objects, got {_short(history)}")
    for e, entry in enumerate(history):
        where = f"history entry {e}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be an object, got {type(entry).__name__}")
        missing = [k for k in HISTORY_KEYS if k not in entry]
        if missing:
            raise ValueError(f"{where} lacks {missing}")
        _int(entry["epoch"], f"{where}: epoch", e, e)
        low = e * n_batches if exact or e == 0 else history[e - 1]["backprops"] + 1
        _int(entry["backprops"], f"{where}: backprops", low, e * n_batches)
        for key in ("train_loss", "test_loss"):
            _metric(entry[key], f"{where}: {key}", null_ok=not complete, low=0)
        _metric(entry["backprop_loss"], f"{where}: backprop_loss", null_ok=e == 0 or not complete, low=0)
        for key in ("train_acc", "test_acc"):
            _metric(entry[key], f"{where}: {key}", null_ok=False, low=0, high=100)
        for key in ("train_s", "wall_s") + tuple(k for k in HISTORY_OPTIONAL if k in entry):
            _metric(entry[key], f"{where}: {key}", null_ok=False, low=0)
    return history


def _check_config(config):
    """Every config field by RunConfig's own check (the model name by its type only, so a record made
    with another timm version stays readable)."""
    from .config import RunConfig

    missing = [k for k in CONFIG_KEYS if k not in config]
    if missing:
        raise ValueError(f"run record config lacks {missing}")
    if not isinstance(config["model"], str) or not config["model"]:
        raise ValueError(f"run record config: model must be a model name, got {_short(config['model'])}")
    try:
        RunConfig.from_dict({**config, "model": "small_cnn"})
    except (ValueError, TypeError) as e:
        raise ValueError(f"run record config: {e}") from None


def _check_batches(config, n_train, n_batches):
    """The partition a record claims fits its training set: n_train is the config's subset when one is set,
    and N = ceil(n_train / B) (floor with drop_last), as batches.n_batches cuts it."""
    B, subset = config["batch_size"], config.get("subset", 0)
    if subset and n_train != subset:
        raise ValueError(f"n_train {n_train} differs from the config's subset {subset}")
    if B > n_train:
        raise ValueError(f"batch_size {B} is larger than the {n_train} training samples")
    expected = n_train // B if config.get("drop_last", False) else -(-n_train // B)
    if n_batches != expected:
        rule = "floor" if config.get("drop_last", False) else "ceil"
        raise ValueError(f"n_batches {n_batches} does not fit n_train {n_train} and batch_size {B}: "
                         f"expected {rule}({n_train}/{B}) = {expected}")


def validate_record(record):
    """Raise ValueError naming the first thing that does not match the schema; return the record."""
    if not isinstance(record, dict):
        raise ValueError(f"a run record must be a JSON object, got {type(record).__name__}")
    if _depth_over(record, MAX_DEPTH):
        raise ValueError(f"run record nests lists and objects deeper than {MAX_DEPTH} levels")
    for key, kind in {**RECORD_KEYS, **RECORD_OPTIONAL}.items():
        if key not in record:
            if key in RECORD_OPTIONAL:
                continue
            raise ValueError(f"run record lacks the key {key!r}")
        if not isinstance(record[key], kind) or isinstance(record[key], bool):
            raise ValueError(f"run record key {key!r} should be {getattr(kind, '__name__', kind)}, "
                             f"got {type(record[key]).__name__}")
    _check_config(record["config"])
    if record["status"] not in STATUSES:
        raise ValueError(f"run record status {record['status']!r} is not one of {STATUSES}")
    complete = record["status"] == "complete"
    N, E = _int(record["n_batches"], "n_batches", 1), record["config"]["epochs"]
    _int(record["k"], "k", 1, N)
    _int(record["backprops"], "backprops", 0, N * E)
    _int(record["rounds"], "rounds", 0, record["backprops"])
    n_train = _int(record["n_train"], "n_train", 1)
    _check_batches(record["config"], n_train, N)
    _int(record["n_test"], "n_test", 1)
    if "n_train_eval" in record:
        _int(record["n_train_eval"], "n_train_eval", 1, n_train)
    _metric(record["time_per_backprop_s"], "time_per_backprop_s", null_ok=False, low=0)
    for key in ("backprop_samples", "forward_samples"):
        if key in record:
            _int(record[key], key, 0)
    for key in ("forward_s", "cpu_per_backprop_s"):
        if key in record:
            _metric(record[key], key, null_ok=False, low=0)
    method = methods.get(record["config"]["method"])
    if complete:
        method.check_record(record, N, E)  # its budget: exactly N*E back-props, or what it saved
    counts, ledger = record["batch_train_counts"], record["final_ledger_loss"]
    if len(counts) != N or not all(_is_int(c) and c >= 0 for c in counts) or sum(counts) != record["backprops"]:
        raise ValueError("batch_train_counts must have n_batches entries, integers >= 0 summing to backprops")
    if len(ledger) != N or not all(_is_number(x) if complete else (x is None or _is_number(x)) for x in ledger):
        raise ValueError(f"final_ledger_loss must have n_batches entries, finite numbers"
                         f"{'' if complete else ' or null'}")
    if "threads_used" in record and not (record["threads_used"] and all(
            _is_int(n) and 1 <= n <= 1024 for n in record["threads_used"])):
        raise ValueError(f"threads_used must be a non-empty list of thread counts from 1 to 1024, "
                         f"got {_short(record['threads_used'])}")
    if "sweep" in record and not isinstance(record["sweep"].get("name"), str):
        raise ValueError("run record key 'sweep' must hold the run's name")
    if not method.saves_backprops and len(record["history"]) != record["backprops"] // N + 1:
        raise ValueError("a record has one history entry per equivalent epoch it reached, plus epoch 0")
    check_history(record["history"], N, complete, exact=not method.saves_backprops)
    last = record["history"][-1]["backprops"]
    if len(record["history"]) > E + 1 or last > record["backprops"] or (complete and last != record["backprops"]):
        raise ValueError("a record's history ends at its back-prop count (before it, if diverged), "
                         "after at most E epochs")
    return record


# ---------------------------------------------------------------- save and load

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
    """Validate the record as it will be read back (non-finite numbers as null), then write it atomically."""
    clean = _clean(record)
    validate_record(clean)
    atomic_write(path, json.dumps(clean, indent=1) + "\n")


def load_record(path):
    """Read and validate a record; anything else (partial, corrupt, special file, too large or too deeply
    nested, a field of the wrong type) raises ValueError starting with the path."""
    data = read_bytes(path, MAX_RECORD_BYTES, "run record")
    try:
        record = json.loads(data.decode("utf-8"), parse_constant=_no_constants)
    except RecursionError:
        raise ValueError(f"{path}: not a readable run record (nested too deeply)") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, NaN, an integer of > 4300 digits
        raise ValueError(f"{path}: not a readable run record ({str(e)[:200]})") from None
    try:
        return validate_record(record)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
