"""Figures: curves against equivalent epochs with confidence bands, and ledger pictures.

Every figure has a title, labelled axes and units. Functions return the matplotlib Figure,
so notebooks show it and scripts save it.
"""
import matplotlib.pyplot as plt

from .metrics import mean_ci
from .report import arm_label, group


def curves(records, keys=("test_acc", "train_loss"), title=None):
    """One panel per history key: the mean over seeds of each arm, with its 95 % CI band."""
    names = {"test_acc": "test top-1 (%)", "train_loss": "train loss (cross-entropy, eval mode)",
             "train_acc": "train top-1 (%)", "test_loss": "test loss (cross-entropy)"}
    fig, axes = plt.subplots(1, len(keys), figsize=(5.5 * len(keys), 4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for arm, runs in group(records).items():
            epochs = [h["epoch"] for h in runs[0]["history"]]
            stats = [mean_ci([r["history"][i][key] for r in runs]) for i in range(len(epochs))]
            mean = [m for m, _ in stats]
            half = [0.0 if h != h else h for _, h in stats]
            style = {"color": "black", "lw": 2.5} if dict(arm)["method"] == "minibatch" else {}
            (line,) = ax.plot(epochs, mean, label=f"{arm_label(arm)} (n={len(runs)})", **style)
            ax.fill_between(epochs, [m - h for m, h in zip(mean, half)], [m + h for m, h in zip(mean, half)],
                            color=line.get_color(), alpha=0.15)
        ax.set_xlabel("equivalent epoch (back-props / N)")
        ax.set_ylabel(names.get(key, key))
        ax.set_title(names.get(key, key).split(" (")[0] + " at equal back-props")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
