"""hardbatch: train harder on the mini-batches with the highest loss.

One module per idea, grouped so the layers show; no import runs in a circle, and none runs back up to this
package (tests/test_layers.py checks):
- the algorithm: batches (the fixed partition) · ledger (loss bookkeeping) · selection (which batches) ·
  budget (k, ζ, N·E back-props) · methods/ (one file per way of spending the budget);
- a run: config (the knobs of a run) · arms (which runs are the same run, the same arm, the baseline) · data ·
  models · device · train (the loop) · checkpoint · record (one run record) · files (atomic, regular files only);
- jobs: runner (one run of a sweep) · compare (the main job) · sweep · claims · cluster (sweeps on Ray);
- reading results: records (a folder of records) · metrics · report (paired tables) · paper · study · readme ·
  plots (and figures_batches, figures_ledger for the chapters' pictures; figures_study for the study's);
- the command line: cli · options · outputs · signals; teaching: widgets · chapters; version.
"""
import sys
import types

from .version import __version__  # the one place the version lives

# Imported on first use (PEP 562), so that `import hardbatch` and the command line start in a blink and
# Ctrl-C while torch loads is handled (hardbatch/__main__.py): each name below lives in the module it names.
_EXPORTS = {
    "make_partition": "batches", "n_batches": "batches",
    "k_for": "budget", "plan": "budget", "round_sizes": "budget", "total_backprops": "budget", "zeta": "budget",
    "RunConfig": "config", "fast_mode": "config", "resolve_device": "config",
    "load_dataset": "data", "load_fashion_mnist": "data", "preprocess": "data",
    "Ledger": "ledger",
    "converged": "metrics", "delta_e": "metrics", "epochs_to_target": "metrics", "mean_ci": "metrics",
    "paired_ci": "metrics", "target_level": "metrics", "time_to_target": "metrics",
    "create_model": "models",
    "load_record": "record", "save_record": "record",
    "STRATEGIES": "selection", "select": "selection",
    "train": "train",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name):
    """hb.train, hb.Ledger, ... from their modules, and hb.plots, hb.report, ... (any submodule) on first use."""
    import importlib

    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    try:
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise  # the submodule exists but something it imports is missing: say that
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__():
    return sorted(__all__)


class _Package(types.ModuleType):
    """Importing the submodule hardbatch.train binds it as the package's attribute `train`; the function of
    that name stays hb.train (a module's __class__ may be replaced for this; see Python's data model)."""

    def __setattr__(self, name, value):
        if name in _EXPORTS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
