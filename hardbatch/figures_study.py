"""The fitting-regime study's figures (results/fitting/report/figures): what its tables say, as pictures.

Why apart from study.py: study.py computes the pre-registered numbers and words them; this file only draws
them. Two pictures per schedule: the arms' curves over seeds with the study's train target marked (where
endpoint C is read), and each seed's paired difference in endpoint P from Algorithm 1.
"""
import io

import matplotlib.pyplot as plt

from .files import atomic_write
from .plots import curves, paired_differences


def fit_curves(records, target, title):
    """Train top-1 (zoomed to where the target is crossed), train loss and test top-1 against equivalent epochs,
    mean and 95 % band over seeds per arm; the dotted line is the train target of endpoint C."""
    fig = curves(records, keys=("train_acc", "train_loss", "test_acc"), title=title)
    train, test = fig.axes[0], fig.axes[2]
    train.axhline(target, color="black", lw=0.8, ls=":", label=f"target {target:g} %")
    train.set_ylim(target - 4, 100.2)
    train.set_title(f"Train top-1 near the {target:g} % target")
    late = [y for line in test.get_lines() for y in line.get_ydata()[len(line.get_ydata()) // 3:]]
    if late:  # the last two thirds of training, where the arms differ
        test.set_ylim(min(late) - 1, max(late) + 0.5)
    return fig


def paired_endpoint(records, endpoint, name, title):
    """Each seed's `endpoint(record)` minus Algorithm 1's (same schedule and seed): dots, and the mean with its
    95 % interval."""
    fig = paired_differences(records, value=endpoint, title=title)
    fig.axes[0].set_ylabel(f"{name} − Algorithm 1's (points)")
    return fig


def save(fig, path):
    """Write FIG as a PNG at PATH atomically (the same figure gives the same bytes) and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    atomic_write(path, buf.getvalue())
    return path
