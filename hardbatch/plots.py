"""Figures of results: curves over seeds against equivalent epochs with confidence bands, and paired differences.

Every figure has a title, labelled axes and units. Functions return the matplotlib Figure,
so notebooks show it and scripts save it. The chapters' step-by-step pictures live by concept in
figures_batches.py (chapter 1) and figures_ledger.py (chapters 2–4); they are re-exported here, so that
a notebook finds every figure as hb.plots.NAME.
"""
import math

import matplotlib.pyplot as plt

from . import arms, methods
from .figures_batches import image_grid, loss_per_backprop, partition_figure, when_trained  # noqa: F401
from .figures_ledger import (budget_figure, ledger_bars, ledger_heatmap, loss_scale,  # noqa: F401
                             per_sample_strips, selection_figure, stale_scatter, visits_histogram)
from .metrics import mean_ci
from .report import arm_label, group


# One colour per arm the course draws, told apart at a glance (chapter 4 draws four hardest and three random arms
# in one figure): hardest in warm hues, olive to dark red as δ falls; random in cool ones, cyan to navy; easiest
# green, proportional purple, Selective-Backprop pink to plum as β grows. Keyed by (method, rule, δ or β).
ARM_COLORS = {("minibatch", "fixed"): "black", ("minibatch", "shuffled"): "tab:gray",
              ("hardbatch", "hardest", 1.0): "#bcbd22", ("hardbatch", "hardest", 0.8): "#ff7f0e",
              ("hardbatch", "hardest", 0.5): "#d62728", ("hardbatch", "hardest", 0.2): "#7f2704",
              ("hardbatch", "random", 0.8): "#17becf", ("hardbatch", "random", 0.5): "#1f4fd1",
              ("hardbatch", "random", 0.2): "#08306b",
              ("hardbatch", "easiest", 0.2): "#2ca02c", ("hardbatch", "proportional", 0.2): "#9467bd",
              ("selective", 1.0): "#e377c2", ("selective", 2.0): "#c51b7d", ("selective", 3.0): "#67001f"}


def arm_color(config):
    """One fixed colour per arm in every figure (ARM_COLORS, keyed by the method and its `color_key`); an arm the
    table does not list (another δ, a rule or method you registered) gets its method's shade (methods/): oranges
    for hardest, blues for random, greens for easiest, purples otherwise, darker for smaller δ; magentas for
    selective; yellow-green-blues for InfoBatch; coppers for online selection."""
    c = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    method = methods.get(c.get("method"))
    key = (method.name, *method.color_key(c))
    if key in ARM_COLORS:
        return ARM_COLORS[key]
    colour = method.color(c)
    return plt.get_cmap(colour[0])(colour[1]) if isinstance(colour, tuple) else colour


def band(values, log=False, confidence=0.95):
    """(centre, lower, upper) of a confidence band over seeds for one point of a curve.

    log=False: the mean and mean ± t·s/√n. log=True (losses, drawn on a log axis): the same interval
    taken on log(value) and exponentiated, so the centre is the geometric mean and the band is
    mean·/×exp(t·s/√n): it stays positive and symmetric on the log axis, where mean ± t·s/√n of the
    values themselves falls below 0 (a band a decade or more down) as soon as three noisy seeds
    spread over a factor of a few. A value ≤ 0 (a loss that underflowed) counts as 1e-12."""
    values = [float(v) for v in values]
    if log:
        values = [math.log(max(v, 1e-12)) if v == v else v for v in values]
    mean, half = mean_ci(values, confidence)
    half = 0.0 if half != half else half  # one seed: no band
    if log:
        return math.exp(mean), math.exp(mean - half), math.exp(mean + half)
    return mean, mean - half, mean + half


CURVE_NAMES = {"test_acc": "test top-1 (%)", "train_loss": "train loss (cross-entropy, eval mode)",
               "train_acc": "train top-1 (%)", "test_loss": "test loss (cross-entropy)"}


def curves(records, keys=("test_acc", "train_loss"), title=None):
    """One panel per history key: the mean over seeds of each arm, with its 95 % CI band (for a loss, on a
    log axis: the geometric mean, and the interval taken on log loss; see `band`).

    A key is plotted against equivalent epochs (equal back-props), or, written "KEY@train_s", against
    the mean training seconds spent by each equivalent epoch (equal wall-clock)."""
    fig, axes = plt.subplots(1, len(keys), figsize=(5.5 * len(keys), 4), squeeze=False)
    by_arm = sorted(group(records).items(), key=lambda kv: arms.sort_key(dict(kv[0])))
    for ax, key in zip(axes[0], keys):
        key, _, x_key = key.partition("@")
        for arm, runs in by_arm:
            n = len(runs[0]["history"])
            xs = ([h["epoch"] for h in runs[0]["history"]] if not x_key
                  else [sum(r["history"][i][x_key] for r in runs) / len(runs) for i in range(n)])
            log = "loss" in key  # a loss is drawn on a log axis: its band is taken on log loss (`band`)
            stats = [band([r["history"][i][key] for r in runs], log=log) for i in range(n)]
            mean, lo, hi = ([s[j] for s in stats] for j in range(3))
            if "acc" in key:  # an accuracy band never leaves [0, 100]
                lo, hi = [max(0.0, v) for v in lo], [min(100.0, v) for v in hi]
            color = arm_color(arm)
            baseline = arms.is_baseline(dict(arm))
            ax.plot(xs, mean, label=f"{arm_label(arm)} (n={len(runs)})", color=color, lw=2.5 if baseline else 1.5)
            ax.fill_between(xs, lo, hi, color=color, alpha=0.15)
        ax.set_xlabel("training seconds (mean over seeds; evaluation excluded)" if x_key
                      else "equivalent epoch (back-props / N)")
        ax.set_ylabel(CURVE_NAMES.get(key, key) + ("\ngeometric mean over seeds, 95 % band on log loss"
                                                    if "loss" in key else ""))
        if "loss" in key:  # losses fall over orders of magnitude: a log axis shows the late epochs
            ax.set_yscale("log")
        ax.set_title(CURVE_NAMES.get(key, key).split(" (")[0] + (" at equal training time" if x_key
                                                                else " at equal back-props"))
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def rounds_vs_epochs(records, key="test_acc"):
    """Chapter 4: the same runs against two x-axes: 'iterations' (Algorithm 1's epochs, Algorithm 2's
    rounds, the warm-up counted as one) and equivalent epochs. Only the second compares equal work."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    names = {"test_acc": "test top-1 (%)", "train_loss": "train loss (cross-entropy, eval mode)"}
    for arm, runs in sorted(group(records).items(), key=lambda kv: arms.sort_key(dict(kv[0]))):
        a = dict(arm)
        N, k = runs[0]["n_batches"], runs[0]["k"]
        hist = runs[0]["history"]
        mean = [sum(r["history"][i][key] for r in runs) / len(runs) for i in range(len(hist))]
        eq = [h["epoch"] for h in hist]
        it = eq if a["method"] == "minibatch" else [0.0] + [1 + (h["backprops"] - N) / k for h in hist[1:]]
        style = {"color": arm_color(arm), "lw": 2.5 if arms.is_baseline(a) else 1.5}
        axes[0].plot(it, mean, ".-", label=arm_label(arm), **style)
        axes[1].plot(eq, mean, ".-", label=arm_label(arm), **style)
    axes[0].set_xlabel("iterations: epochs of Algorithm 1, rounds of Algorithm 2")
    axes[0].set_title("Unequal work: one round of Algorithm 2 is only δ of an epoch")
    axes[1].set_xlabel("equivalent epoch (back-props / N)")
    axes[1].set_title("Equal work: the same back-props at every x")
    axes[0].set_ylabel(names.get(key, key))
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def paired_differences(records, key="test_acc", title=None, value=None):
    """The figure of a paired table: for each arm, its final KEY (or `value(record)`, if given) minus Algorithm
    1's, one dot per seed, and the mean with its 95 % t-interval (filled when it excludes 0, hollow when it
    contains 0). Seeing the seeds shows what a mean ± interval hides: one odd seed, or every seed on one side."""
    from .metrics import excludes_zero

    value = value or (lambda r: r["history"][-1][key])
    runs = sorted((r for r in records if r["status"] == "complete"), key=lambda r: arms.sort_key(r["config"]))
    pair = lambda c: (arms.block(c), c["seed"])  # an arm's run is paired with its own block's baseline, same seed
    base = {pair(r["config"]): value(r) for r in runs if arms.is_baseline(r["config"])}
    by_arm = {}  # by the arm's key, never its label: two arms that read the same stay two
    for r in runs:
        if not arms.is_baseline(r["config"]) and pair(r["config"]) in base:
            entry = by_arm.setdefault(arms.arm(r["config"]), {"config": r["config"], "diffs": []})
            entry["diffs"].append(value(r) - base[pair(r["config"])])
    fig, ax = plt.subplots(figsize=(max(5.0, 1.0 * len(by_arm) + 2), 4))
    for i, entry in enumerate(by_arm.values()):
        diffs, color = entry["diffs"], arm_color(entry["config"])
        spread = [i - 0.25 + 0.2 * j / max(1, len(diffs) - 1) for j in range(len(diffs))]
        ax.scatter(spread, diffs, color=color, s=18, alpha=0.7, zorder=2)
        mean, half = mean_ci(diffs)
        if half == half:  # two seeds or more: an interval
            filled = excludes_zero((mean, half, len(diffs)))
            ax.errorbar(i + 0.15, mean, yerr=half, fmt="o", color=color, mfc=color if filled else "white",
                        capsize=4, zorder=3)
    ax.axhline(0, color="black", lw=0.8, ls="--")
    ax.set_xticks(range(len(by_arm)), [arms.label(e["config"]) for e in by_arm.values()], rotation=30, ha="right")
    unit = " (points)" if key.endswith("_acc") else ""
    ax.set_ylabel(f"final {CURVE_NAMES.get(key, key).split(' (')[0]} − Algorithm 1's{unit}")
    seeds = len({seed for _, seed in base})
    ax.set_title(title or f"Each seed's difference from Algorithm 1 ({seeds} seeds): dots; mean and 95 % interval: "
                          f"bar (filled: excludes 0)", fontsize=9)
    fig.tight_layout()
    return fig
