"""The knobs of one run, in one small dataclass, and the fast-mode switch.

Defaults suit the embedded digits data on a laptop CPU. Every value is checked when the
config is made, so a bad value fails at once with a message naming it and what is allowed.
"""
import math
import os
from dataclasses import asdict, dataclass

from .budget import check_delta

METHODS = ("minibatch", "hardbatch")  # Algorithm 1, Algorithm 2
ORDERS = ("fixed", "shuffled")  # Algorithm 1's two baselines
DEVICES = ("auto", "cpu", "cuda")


def fast_mode():
    """True when HARDBATCH_SMOKE or CI is set: notebooks and jobs shrink their sizes, never their code path."""
    flag = os.environ.get("HARDBATCH_SMOKE", "")
    if flag:
        return flag.lower() not in ("0", "false", "no")
    return bool(os.environ.get("CI"))


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


MAX_SEED = 2**63 - 1  # torch's generators take 64-bit seeds
MAX_IMAGE_SIZE = 512  # larger images would not fit one evaluation chunk in memory


def _positive_int(name, value, low=1, high=None):
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"from {low} to {high}"
        raise ValueError(f"{name} must be an integer {allowed}, got {value!r}")


def _number(name, value, low, low_inclusive):
    try:
        v = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not math.isfinite(v) or v < low or (v == low and not low_inclusive):
        bound = f">= {low}" if low_inclusive else f"> {low}"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")


def settings(config):
    """A run's config (a RunConfig or a record's config dict) without the device: two runs with equal
    settings are the same run, wherever they ran. Used to match records and checkpoints to configs."""
    d = config.to_dict() if isinstance(config, RunConfig) else dict(config)
    d.pop("device", None)
    return d


@dataclass
class RunConfig:
    method: str = "hardbatch"  # minibatch (Algorithm 1) or hardbatch (Algorithm 2)
    order: str = "fixed"  # Algorithm 1: fixed partition reshuffled by batch, or shuffled samples
    select: str = "hardest"  # Algorithm 2: hardest | random | easiest | all
    delta: float = 0.2  # fraction of the N batches one round trains, in (0, 1]
    epochs: int = 15  # E: the budget is N·E back-props
    batch_size: int = 64  # B: N = 21 batches on digits
    lr: float = 0.005  # the paper's; on digits the baseline converges in ~8 of 15 epochs
    momentum: float = 0.9
    weight_decay: float = 0.0
    seed: int = 0
    model: str = "small_cnn"  # or any timm model name
    dataset: str = "digits"
    image_size: int = 0  # 0 = the data set's own size
    device: str = "auto"
    augment: bool = False  # random crop + flip, on the device
    lr_schedule: str = "constant"  # constant (the paper) or cosine (keyed to back-props)
    amp: bool = True  # bf16 autocast, on CUDA only
    compile: bool = False  # torch.compile the model
    drop_last: bool = False
    subset: int = 0  # use only this many training samples (0 = all)

    def __post_init__(self):
        from .selection import STRATEGIES

        for name, allowed in (("method", METHODS), ("order", ORDERS), ("select", tuple(STRATEGIES)),
                              ("device", DEVICES), ("lr_schedule", ("constant", "cosine"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; allowed: {', '.join(allowed)}")
        self.delta = check_delta(self.delta)
        _positive_int("epochs", self.epochs)
        _positive_int("batch_size", self.batch_size)
        _positive_int("seed", self.seed, low=0, high=MAX_SEED)
        size = self.image_size  # 0 = the data set's own size; 1 pixel is too small for any model
        if isinstance(size, bool) or not isinstance(size, int) or not (size == 0 or 2 <= size <= MAX_IMAGE_SIZE):
            raise ValueError(f"image_size must be 0 (the data set's own size) or an integer from 2 to "
                             f"{MAX_IMAGE_SIZE}, got {size!r}")
        _positive_int("subset", self.subset, low=0)
        _number("lr", self.lr, 0, low_inclusive=False)
        _number("momentum", self.momentum, 0, low_inclusive=True)
        _number("weight_decay", self.weight_decay, 0, low_inclusive=True)
        if self.momentum >= 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")

    def to_dict(self):
        return asdict(self)
