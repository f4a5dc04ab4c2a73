"""hardbatch: train harder on the mini-batches with the highest loss.

One module per idea, in the order the chapters teach them:
batches (the fixed partition) · ledger (loss bookkeeping) · selection (which batches) ·
budget (k, ζ, N·E back-props) · config (the knobs of a run) · arms (which runs are the same run,
the same arm, the baseline) · train (Algorithms 1 and 2) · checkpoint · data · models · metrics ·
record (run records) · report (paired tables) · plots · compare (the main job) · sweep · claims ·
cluster (sweeps on Ray) · paper · cli.
"""
__version__ = "0.1.0"

from . import arms, metrics, report
from .batches import make_partition, n_batches
from .budget import k_for, plan, round_sizes, total_backprops, zeta
from .config import RunConfig, fast_mode, resolve_device
from .data import load_dataset, preprocess
from .ledger import Ledger
from .metrics import converged, delta_e, epochs_to_target, mean_ci, paired_ci, target_level, time_to_target
from .models import create_model
from .record import load_record, save_record
from .selection import STRATEGIES, select
from .train import train


def __getattr__(name):
    """hb.plots and hb.widgets are imported on first use: they pull in matplotlib and ipywidgets, which the
    command line and the training loop do not need."""
    if name in ("plots", "widgets", "compare", "sweep", "paper"):
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'hardbatch' has no attribute {name!r}")
