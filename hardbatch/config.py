"""The knobs of one run, in one small dataclass, and the fast-mode switch.

Every field carries its own help text and its own check (dataclass field metadata), so the
command line is generated from this class (cli.py) and a value is validated here and nowhere
else: a bad value fails at once with a message naming the field and what is allowed.
Defaults suit the embedded digits data on a laptop CPU.

Some knobs belong to one method only (the registry, methods/__init__.py, says which): `order` to
Algorithm 1 (`minibatch`), `select` and `delta` to Algorithm 2 (`hardbatch`), `alpha` to Algorithm 2's
`proportional` rule, `beta` and `window` to Selective-Backprop (`selective`), `prune`, `anneal` and `prune_by`
to InfoBatch (`infobatch`), `pressure` and `recompute` to online batch selection (`online`). They default
to None ("not given"); the method fills in its own defaults, and a knob given to a method that ignores
it is refused, so two runs that differ only in a knob nobody reads can never be stored as two different runs.
"""
import math
import numbers
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .budget import check_delta
from .data import DATASETS
from .methods import METHOD_DEFAULTS, METHODS, ONLY_FOR  # noqa: F401 (derived from the methods' registry)
from .methods.infobatch import PRUNE_BY
from .selection import STRATEGIES

ORDERS = ("fixed", "shuffled")  # Algorithm 1's two baselines
DEVICES = ("auto", "cpu", "cuda")
LR_SCHEDULES = ("constant", "cosine")
MAX_SEED = 2**63 - 1  # torch's generators take 64-bit seeds
MAX_IMAGE_SIZE = 512  # larger images would not fit one evaluation chunk in memory
MAX_FLOAT32 = 3.4028234663852886e38  # SGD does its arithmetic in float32: a larger lr or weight decay overflows
MAX_THREADS = 1024  # what a record may hold (from a big machine); a run here gets at most available_cpus()
ONLY_FOR_SELECT = {"alpha": "proportional"}  # knob -> the selection rule that reads it (within its method)
SELECT_DEFAULTS = {"proportional": {"alpha": 1.0}}


def reads(name, settings):
    """True if a run with these settings (a dict with its method and, for Algorithm 2, its select) reads the
    knob `name`: every knob not in ONLY_FOR; `alpha` only for Algorithm 2 with select="proportional"."""
    method_ok = ONLY_FOR.get(name, settings["method"]) == settings["method"]
    return method_ok and ONLY_FOR_SELECT.get(name, settings.get("select")) == settings.get("select")


FAST_ON, FAST_OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _switch(name, strict=True):
    """An environment switch: one of FAST_ON / FAST_OFF (any case, spaces around allowed), else ValueError.
    strict=False: any other value means on (CI systems set CI to their own name, e.g. CI=woodpecker)."""
    raw = os.environ.get(name)
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in FAST_ON:
        return True
    if value in FAST_OFF:
        return False
    if not strict:
        return True
    raise ValueError(f"environment variable {name}={raw!r} is not understood; allowed: "
                     f"{', '.join(FAST_ON)} (on) or {', '.join(v or repr(v) for v in FAST_OFF)} (off)")


def fast_mode():
    """True when HARDBATCH_SMOKE is on, or (when it is unset) when CI is on: notebooks and jobs shrink their
    sizes, never their code path. HARDBATCH_SMOKE: 1/true/yes/on or 0/false/no/off/empty, any case, anything
    else is refused (ValueError); CI: 0/false/no/off/empty mean off, any other value on."""
    smoke = _switch("HARDBATCH_SMOKE")
    return smoke if smoke is not None else bool(_switch("CI", strict=False))


def resolve_device(device="auto"):
    """'auto' -> 'cuda' when a GPU is present, else 'cpu'. Asking for cuda without one is an error."""
    import torch

    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; allowed: {', '.join(DEVICES)}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu or auto")
    return device


def available_cpus():
    """The CPUs this process may really use: its affinity mask, capped by a cgroup CPU quota (containers such
    as Binder show the host's core count but grant one or two; a quota of 1.5 CPUs counts as 1)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        n = os.cpu_count() or 1
    for quota_file, period_file in (("/sys/fs/cgroup/cpu.max", None),  # cgroup v2: "QUOTA PERIOD" or "max PERIOD"
                                    ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us")):
        try:
            words = Path(quota_file).read_text().split()
            quota, period = (words[0], words[1]) if period_file is None else (words[0], Path(period_file).read_text())
            if quota not in ("max", "-1"):
                n = min(n, max(1, int(quota) // int(period)))
            break
        except (OSError, ValueError, IndexError, ZeroDivisionError):
            continue
    return n


def _cpu_times():
    """(idle, total) CPU time of the whole machine so far, in ticks, from /proc/stat (Linux); None elsewhere."""
    try:
        ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return ticks[3] + ticks[4], sum(ticks[:8])  # idle + iowait; user..steal (guest time is inside user)


def idle_cpus(seconds=0.1):
    """How many CPUs of the machine nobody used over the last `seconds` (this process sleeps meanwhile, so
    it measures the others); None where /proc/stat is not available. Benchmarks print it to say what else
    ran; a run's thread count never depends on it (resolve_threads)."""
    before = _cpu_times()
    if before is None:
        return None
    time.sleep(seconds)
    after = _cpu_times()
    busy_total = after[1] - before[1]
    if busy_total <= 0:
        return None
    return (after[0] - before[0]) / busy_total * (os.cpu_count() or 1)


SMALL_MODELS = ("small_cnn", "two_conv_cnn", "mlp")  # models.OURS: too small to gain from a second thread


def default_threads(model, cpus=None):
    """The thread count a run of `model` gets when none is asked for: 1 for our own small nets, else the CPUs
    this process may use (`cpus`, default available_cpus()). A function of the model and of what the process
    may use, never of the momentary load, so the same command gives the same numbers on a busy machine.

    Why 1 for the small nets: an operation on their tensors is too short to share among threads, and torch
    waits for its slowest thread at every operation; with a neighbour on the other core a second thread made
    them 10-20x slower (benchmarks/busy_machine.py), and it does not make them faster on a quiet machine."""
    if model in SMALL_MODELS:
        return 1
    return cpus if cpus is not None else available_cpus()


def check_threads(threads, where="--threads"):
    """`threads` if it is an integer from 1 to the CPUs this process may use; else ValueError naming it.
    More threads than CPUs only wait for each other, and under a process limit creating them can crash torch."""
    cpus = available_cpus()
    if not isinstance(threads, int) or isinstance(threads, bool) or not 1 <= threads <= cpus:
        raise ValueError(f"{where} must be an integer from 1 to {cpus}, the CPUs this process may use "
                         f"(affinity, cgroup quota), got {threads!r}")
    return threads


def omp_num_threads():
    """$OMP_NUM_THREADS as a number of threads, or None when it is unset or empty. OpenMP's list form
    ("4,2": 4 threads at the outer level) counts its first entry; anything else is refused (ValueError)."""
    raw = os.environ.get("OMP_NUM_THREADS", "").strip()
    if not raw:
        return None
    first = raw.split(",")[0].strip()
    if not (first.isascii() and first.isdigit()) or int(first) < 1:
        raise ValueError(f"environment variable OMP_NUM_THREADS={raw!r} is not understood; allowed: "
                         f"an integer from 1 to {available_cpus()} (or unset it)")
    return int(first)


def resolve_threads(threads=0, model=None):
    """torch's CPU threads for a run: `threads` when given, else $OMP_NUM_THREADS when set, else
    default_threads(model). Either of the first two must be at most the CPUs this process may use
    (check_threads: ValueError otherwise). Never depends on how busy the machine is right now."""
    if threads:
        return check_threads(threads)
    env = omp_num_threads()
    if env is not None:
        return check_threads(env, where=f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS'].strip()!r}")
    return default_threads(model)


# ---------------------------------------------------------------- one check per kind of field

def _r(value):
    """A value as an error message shows it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _one_of(allowed):
    """allowed: a tuple, or a dict read when a value is checked (selection.STRATEGIES, which
    selection.register extends at run time)."""
    def check(name, value):
        if not isinstance(value, str) or value not in allowed:
            raise ValueError(f"unknown {name} {_r(value)}; allowed: {', '.join(allowed)}")
        return value
    return check


def _integer(low, high=None, zero_means=None):
    def check(name, value):
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)  # int, or numpy's integers
        value = int(value) if ok else value
        if ok and zero_means and value == 0:
            return value
        if not ok or value < low or (high is not None and value > high):
            allowed = f">= {low}" if high is None else f"from {low} to {high}"
            zero = f"0 ({zero_means}) or " if zero_means else ""
            raise ValueError(f"{name} must be {zero}an integer {allowed}, got {_r(value)}")
        return value
    return check


def _number(low, inclusive, below=None, at_most=None):
    """A real number (not a bool, not a string) in the range; returned as float."""
    def check(name, value):
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        try:
            v = float(value) if ok else math.nan
        except OverflowError:  # an int too large for a float
            v = math.inf
        if (not math.isfinite(v) or v < low or (v == low and not inclusive) or (below is not None and v >= below)
                or (at_most is not None and v > at_most)):
            allowed = f"{'>=' if inclusive else '>'} {low}" + (f" and < {below}" if below is not None else "")
            allowed += f" and <= {at_most:.8g} (the largest float32)" if at_most is not None else ""
            raise ValueError(f"{name} must be a finite number {allowed}, got {_r(value)}")
        return v
    return check


def _flag(name, value):
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {_r(value)}")
    return value


def _delta(name, value):
    if not isinstance(value, numbers.Real) or isinstance(value, bool):  # check_delta would read "0.5" as 0.5
        raise ValueError(f"delta must be a number in (0, 1], got {_r(value)}")
    return check_delta(value)


def _model(name, value):
    from .models import check_model_name
    return check_model_name(value)


def _knob(default, check, help, choices=None):
    """A RunConfig field: its default, its check(name, value) -> value, its help, its choices."""
    return field(default=default, metadata={"check": check, "help": help, "choices": choices})


@dataclass
class RunConfig:
    method: str = _knob("hardbatch", _one_of(METHODS), "minibatch = Algorithm 1, hardbatch = Algorithm 2, "
                        "selective = Selective-Backprop, infobatch = InfoBatch, online = online batch selection "
                        "(the last three per sample, chapter 6)", METHODS)
    order: str = _knob(None, _one_of(ORDERS), "Algorithm 1 only: fixed partition reshuffled by batch "
                       "(default), or samples reshuffled into new batches", ORDERS)
    select: str = _knob(None, _one_of(STRATEGIES), "Algorithm 2 only: which k batches a round trains "
                        "(default hardest; random and easiest are the controls)", tuple(STRATEGIES))
    delta: float = _knob(None, _delta, "Algorithm 2 only: fraction of the N batches a round trains, in (0, 1] "
                         "(default 0.2)")
    alpha: float = _knob(None, _number(0, True, below=16), "Algorithm 2 with select=proportional only: batches are "
                         "drawn with probability ∝ (ledger loss)^alpha; 0 = uniform (default 1)")
    beta: float = _knob(None, _number(0, True, below=16), "selective only: keep a sample with probability "
                        "CDF(loss)^beta over the recent losses; 0 keeps all (default 1: half)")
    window: int = _knob(None, _integer(1, 2**20), "selective only: how many recent sample losses the CDF is "
                        "taken over (default 1024)")
    prune: float = _knob(None, _number(0, True, below=1), "infobatch only: each pass prunes this fraction r of the "
                         "samples whose latest loss is below the mean, and scales the rest of them by 1/(1-r) "
                         "(default 0.5)")
    anneal: float = _knob(None, _number(0, True, at_most=1), "infobatch only: the last fraction of the passes "
                          "trains on all data (default 0.125)")
    prune_by: str = _knob(None, _one_of(PRUNE_BY), "infobatch only: loss = InfoBatch's rule (default); random = "
                          "its control, as many samples pruned per pass, drawn from all samples, none rescaled", PRUNE_BY)
    pressure: float = _knob(None, _number(1, True, at_most=1e12), "online only: selection pressure s, the ratio "
                            "of the highest-ranked sample's probability to the lowest's (default 100)")
    recompute: int = _knob(None, _integer(0, 2**20), "online only: every this many equivalent epochs, score every "
                           "sample forward-only (0 = never; default 2)")
    epochs: int = _knob(15, _integer(1), "E: the budget is N·E back-props")
    batch_size: int = _knob(64, _integer(1), "B (N = 21 batches on digits)")
    lr: float = _knob(0.005, _number(0, False, at_most=MAX_FLOAT32),
                     "learning rate (the paper's 0.005)")
    momentum: float = _knob(0.9, _number(0, True, below=1), "SGD momentum")
    weight_decay: float = _knob(0.0, _number(0, True, at_most=MAX_FLOAT32),
                               "SGD weight decay")
    seed: int = _knob(0, _integer(0, MAX_SEED), "seeds the partition, the weights, the order and the controls")
    model: str = _knob("small_cnn", _model, "small_cnn or any timm model name (from scratch)")
    dataset: str = _knob("digits", _one_of(DATASETS), "data set (digits is embedded; the others are read by "
                         "torchvision)", DATASETS)
    image_size: int = _knob(0, _integer(2, MAX_IMAGE_SIZE, zero_means="the data set's own size"),
                            "resize images to this side (0 = the data set's own size)")
    augment: bool = _knob(False, _flag, "random crop + flip, on the device")
    lr_schedule: str = _knob("constant", _one_of(LR_SCHEDULES),
                             "constant (our reading of the paper) or cosine (keyed to back-props)", LR_SCHEDULES)
    drop_last: bool = _knob(False, _flag, "drop the last, smaller batch of the partition")
    subset: int = _knob(0, _integer(1, zero_means="all"), "train on this many samples (0 = all)")
    train_eval_subset: int = _knob(0, _integer(1, zero_means="all"),
                                   "measure the train loss on a fixed sample of this many training images "
                                   "(0 = all); cheaper evaluation, stated in every table")
    test_subset: int = _knob(0, _integer(1, zero_means="all"), "test on a fixed sample of this many images (0 = all)")
    # How a run is executed, not what it computes: not part of a run's identity (arms.EXECUTION).
    device: str = _knob("auto", _one_of(DEVICES), "auto = cuda when a GPU is present", DEVICES)
    amp: bool = _knob(True, _flag, "bf16 autocast on CUDA GPUs that compute in bf16 (no effect on CPU)")
    compile: bool = _knob(False, _flag, "torch.compile the model")
    threads: int = _knob(0, _integer(1, MAX_THREADS, zero_means="the default"),
                         "CPU threads for torch, at most the CPUs this process may use (0 = $OMP_NUM_THREADS "
                         "if set, else 1 for our small nets and the usable CPUs for timm models; never the load)")

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in ONLY_FOR:
                continue
            setattr(self, f.name, f.metadata["check"](f.name, value))
        for name, method in ONLY_FOR.items():
            if self.method != method and getattr(self, name) is not None:
                raise ValueError(f"{name} is for method {method!r} only; method {self.method!r} ignores it, "
                                 f"so leave it out (got {name}={getattr(self, name)!r})")
        for name, default in METHOD_DEFAULTS[self.method].items():
            if getattr(self, name) is None:
                setattr(self, name, default)
        for name, rule in ONLY_FOR_SELECT.items():
            if self.select != rule and getattr(self, name) is not None:
                raise ValueError(f"{name} is for select={rule!r} only; select={self.select!r} ignores it, "
                                 f"so leave it out (got {name}={getattr(self, name)!r})")
        for name, default in SELECT_DEFAULTS.get(self.select, {}).items():
            if getattr(self, name) is None:
                setattr(self, name, default)

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        """A RunConfig from a record's config: unknown keys refused, ignored knobs (None) left out."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(map(str, set(d) - names))
        if unknown:
            raise ValueError(f"config has unknown keys {unknown}; allowed: {sorted(names)}")
        return cls(**{k: v for k, v in d.items() if not (v is None and k in ONLY_FOR)})
