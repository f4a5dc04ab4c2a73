"""Figures: curves against equivalent epochs with confidence bands, and ledger pictures.

Every figure has a title, labelled axes and units. Functions return the matplotlib Figure,
so notebooks show it and scripts save it.
"""
import math
from dataclasses import replace

import matplotlib.pyplot as plt

from . import arms, methods
from .metrics import mean_ci
from .report import arm_label, group
from .selection import hardest
from .train import start


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


# ---------------------------------------------------------------- chapters 1–4: teaching figures
# Each takes plain tensors or run records, draws one figure and returns it. The notebooks of
# chapters 1–4 call them directly or through the `show` functions of hardbatch.widgets.


def image_grid(images, titles=(), ncols=8, title=None):
    """Chapters 1–2: uint8 images (n, C, H, W) in a grid, each with its caption."""
    import torch

    n = len(images)
    nrows = max(1, -(-n // ncols))
    # each row: the square image (1.5 in) and room for its caption's lines above it, so the caption of
    # one row never runs into the image of the row above
    lines = max([str(t).count("\n") + 1 for t in titles[:n]] or [0])
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.5 * ncols, (1.75 + 0.2 * lines) * nrows + (0.4 if title else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            img = torch.as_tensor(images[i]).cpu()
            ax.imshow(img[0] if img.shape[0] == 1 else img.permute(1, 2, 0), cmap="gray_r" if img.shape[0] == 1 else None)
            if i < len(titles):
                ax.set_title(titles[i], fontsize=8, pad=3)
    if title:
        fig.suptitle(title)
    fig.tight_layout(h_pad=1.2)
    return fig


def when_trained(run, epochs):
    """(E, n): the back-prop within each epoch at which every training sample is trained, read from the
    training loop's own queue (`Run.refill_queue`, `Run.samples`) for `epochs` passes, training nothing."""
    import torch

    out = torch.empty(epochs, len(run.data.y_train), dtype=torch.long)
    for e in range(epochs):
        run.refill_queue()
        for j, i in enumerate(run.queue):
            out[e, run.samples(i).cpu()] = j
        run.queue = []
    return out


def partition_figure(cfg, data, epochs=3):
    """Chapter 1: when each sample is trained within each epoch, for the fixed partition (batches keep
    their samples, only their order changes) and for reshuffled batches (new batches every epoch).

    cfg: an Algorithm-1 RunConfig. Both panels come from the loop itself: `train.start` builds the run
    (its partition drawn from the run's generator, as `train()` draws it; it also seeds torch's global
    generator with cfg.seed, as `train()` does) and `when_trained` reads its queue. Columns are samples,
    sorted by when epoch 1 trains them."""
    import torch

    fig, axes = plt.subplots(2, 1, figsize=(10, 1.1 * epochs + 2.2), sharex=True)
    for ax, order, name in zip(axes, ("fixed", "shuffled"), ("fixed partition, batch order reshuffled",
                                                               "samples reshuffled into new batches")):
        s = when_trained(start(replace(cfg, order=order), data), epochs)
        s = s[:, torch.argsort(s[0], stable=True)]
        im = ax.imshow(s.numpy(), aspect="auto", interpolation="nearest", cmap="viridis")
        ax.set_yticks(range(epochs), [f"epoch {e + 1}" for e in range(epochs)])
        ax.set_title(f"{name} (B = {cfg.batch_size})")
        fig.colorbar(im, ax=ax, label="back-prop within the epoch")
    axes[-1].set_xlabel(f"training samples (all {len(data.y_train)}), sorted by when epoch 1 trains them")
    fig.tight_layout()
    return fig


def loss_per_backprop(losses, n_batches, ax=None, title="The loss of every back-prop"):
    """Chapter 1: the mini-batch loss of each back-prop (noisy), with the mean of each epoch."""
    import torch

    losses = torch.as_tensor(losses, dtype=torch.float64).cpu()  # (T,)
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.plot(range(1, len(losses) + 1), losses, ".", ms=3, alpha=0.5, label="one back-prop")
    full = len(losses) // n_batches
    means = losses[: full * n_batches].view(full, n_batches).mean(1)
    ax.hlines(means, [n_batches * e + 0.5 for e in range(full)], [n_batches * (e + 1) + 0.5 for e in range(full)],
              color="black", lw=2, label="mean over the epoch")
    for e in range(1, full):
        ax.axvline(e * n_batches + 0.5, color="gray", lw=0.5, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("back-prop (dotted lines: every N back-props = one epoch)")
    ax.set_ylabel("mini-batch loss (cross-entropy, log scale)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax.figure


def loss_scale(*loss_histories):
    """(low, high) of a log colour scale that holds every finite ledger loss of all the histories, so that
    heat-maps drawn side by side share one scale and the same colour means the same loss (low ≥ 1e-3)."""
    import torch

    finite = torch.cat([torch.as_tensor(h)[1:].flatten() for h in loss_histories])
    finite = finite[torch.isfinite(finite)]
    return max(float(finite.min()), 1e-3), float(finite.max())


def ledger_heatmap(loss_history, n_batches, ax=None, title="The ledger over back-props", order=None, scale=None):
    """Chapter 2: every batch's ledger loss (rows) after every back-prop (columns), log colour scale.

    loss_history: (T+1, N) from `LedgerTrace.replay`; order: the row order (default: batch index); scale:
    (low, high) of the colour scale, e.g. `loss_scale(a, b)` for panels that are compared (default: its own)."""
    import torch
    from matplotlib.colors import LogNorm

    img = torch.as_tensor(loss_history)[1:].T  # (N, T)
    if order is not None:
        img = img[torch.as_tensor(order)]
    low, high = scale or loss_scale(loss_history)
    if ax is None:
        fig, ax = plt.subplots(figsize=(10, 4))
    im = ax.imshow(img.numpy(), aspect="auto", interpolation="nearest", cmap="magma",
                   norm=LogNorm(vmin=low, vmax=high),
                   extent=(0.5, img.shape[1] + 0.5, img.shape[0] - 0.5, -0.5))
    for e in range(1, img.shape[1] // n_batches + 1):
        ax.axvline(e * n_batches + 0.5, color="white", lw=0.6, ls=":")
    ax.figure.colorbar(im, ax=ax, label="ledger loss (cross-entropy, log)")
    ax.set_xlabel("back-prop (dotted: every N back-props)")
    ax.set_ylabel("batch" + (" (sorted)" if order is not None else " index"))
    ax.set_title(title)
    return ax.figure


def ledger_bars(losses, staleness=None, selected=None, ax=None, title="The ledger"):
    """Chapters 2–3: one bar per batch (by index) with its ledger loss; colour = staleness (updates since
    the loss was measured); the `selected` batches outlined in black."""
    import torch
    from matplotlib import cm
    from matplotlib.colors import Normalize

    losses = torch.nan_to_num(torch.as_tensor(losses, dtype=torch.float64), nan=0.0)  # (N,)
    if ax is None:
        fig, ax = plt.subplots(figsize=(10, 3.5))
    colors = "tab:blue"
    if staleness is not None:
        st = torch.as_tensor(staleness, dtype=torch.float64)
        norm = Normalize(vmin=0, vmax=max(1.0, float(st.max())))
        colors = [cm.viridis(norm(float(v))) if v >= 0 else (0.85, 0.85, 0.85, 1) for v in st]
        ax.figure.colorbar(cm.ScalarMappable(norm=norm, cmap="viridis"), ax=ax,
                           label="staleness (updates since measured)")
    bars = ax.bar(range(len(losses)), losses.numpy(), color=colors, width=0.8)
    if selected is not None:
        for i in torch.as_tensor(selected).tolist():
            bars[i].set_edgecolor("black")
            bars[i].set_linewidth(1.8)
    ax.set_xlabel("batch index" + ("  (black outline: the top k a round would train)" if selected is not None else ""))
    ax.set_ylabel("ledger loss (cross-entropy)")
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    return ax.figure


def stale_scatter(ledger_loss, fresh_loss, staleness, ax=None, title="Stale losses: the ledger vs the truth now"):
    """Chapter 2: each batch's ledger loss against its loss now, coloured by staleness."""
    import torch

    ledger_loss, fresh_loss = (torch.as_tensor(v, dtype=torch.float64) for v in (ledger_loss, fresh_loss))
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 4.5))
    sc = ax.scatter(fresh_loss, ledger_loss, c=torch.as_tensor(staleness).numpy(), cmap="viridis", s=25)
    lo, hi = float(min(ledger_loss.min(), fresh_loss.min())), float(max(ledger_loss.max(), fresh_loss.max()))
    ax.plot([lo, hi], [lo, hi], color="gray", ls="--", lw=1, label="ledger = now")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.figure.colorbar(sc, ax=ax, label="staleness (updates since measured)")
    ax.set_xlabel("batch loss now (cross-entropy, eval mode)")
    ax.set_ylabel("ledger loss (cross-entropy)")
    ax.set_title(title)
    ax.legend()
    return ax.figure


def per_sample_strips(groups, ax=None, title="Per-sample losses inside batches", floor=1e-4):
    """Chapter 2: {name: (B,) per-sample losses} as strips, with each batch's mean marked.

    A log axis cannot show a loss of (nearly) 0: losses below `floor` are drawn at `floor` as
    open triangles (◁), and the x label counts them."""
    import torch

    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3.5))
    gen = torch.Generator().manual_seed(0)
    clamped = 0
    for y, (name, v) in enumerate(groups.items()):
        v = torch.as_tensor(v, dtype=torch.float64)
        jitter = (torch.rand(len(v), generator=gen) - 0.5) * 0.3
        low = v < floor
        clamped += int(low.sum())
        (dots,) = ax.plot(v[~low], (y + jitter)[~low], "o", ms=4, alpha=0.7)
        ax.plot([floor] * int(low.sum()), (y + jitter)[low], "<", ms=6, mfc="none", color=dots.get_color())
        ax.plot([float(v.mean())] * 2, [y - 0.3, y + 0.3], color="black", lw=2)
    ax.set_yticks(range(len(groups)), list(groups))
    ax.set_xscale("log")
    ax.set_xlabel("per-sample loss (cross-entropy, log); black bar: the batch's loss (the mean)"
                  + (f"\n◁: {clamped} losses below {floor:g}, drawn at {floor:g}" if clamped else ""))
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="x")
    return ax.figure


def visits_histogram(ledger, ax=None, title="Visits per batch"):
    """Chapter 3: how many batches of a run's `Ledger` were trained how many times; the starved
    (`Ledger.starved`: trained in the warm-up only) in red."""
    import torch

    counts, starved = ledger.train_count.cpu(), ledger.starved().cpu()
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.5))
    values = torch.bincount(counts, minlength=2)  # values[v] = batches trained v times
    red = set(counts[starved].tolist())  # the visit counts of starved batches
    colors = ["tab:red" if v in red else "tab:blue" for v in range(len(values))]
    ax.bar(range(len(values)), values.numpy(), color=colors, width=0.85)
    ax.set_xlabel("times a batch was trained (back-props on it)")
    ax.set_ylabel("number of batches")
    ax.set_title(f"{title}: {int(starved.sum())} starved (red)")
    ax.grid(alpha=0.3, axis="y")
    return ax.figure


def selection_figure(trace, n_batches, k, title=None):
    """Chapter 3: (1) the warm-up ledger sorted, the k batches round 1 trained in orange; (2) which
    batches every round trained, columns sorted by warm-up loss; (3) visits per batch.

    trace: the run's `widgets.LedgerTrace`; the ledgers are rebuilt from it (`LedgerTrace.ledger`)."""
    from matplotlib.ticker import MaxNLocator

    warm_ledger = trace.ledger(n_batches, n_batches)  # the ledger after the warm-up pass
    warm = warm_ledger.loss  # (N,)
    order = hardest(warm_ledger, n_batches)  # every batch, hardest first
    first = set(trace.batches[n_batches:n_batches + k])  # what round 1 trained
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), gridspec_kw={"width_ratios": [1.2, 1.2, 1]})
    ax = axes[0]
    colors = ["tab:orange" if i in first else "lightgray" for i in order.tolist()]
    ax.bar(range(n_batches), warm[order].numpy(), color=colors, width=0.85)
    ax.set_xlabel("batches, sorted by ledger loss (hardest left)")
    ax.set_ylabel("ledger loss after the warm-up (cross-entropy)")
    ax.set_title(f"k = {k} of N = {n_batches}: round 1 trains the orange")
    ax = axes[1]
    trained = trace.rounds(n_batches, k)[:, order]  # (1+ζ, N)
    ax.imshow(trained.numpy(), aspect="auto", interpolation="nearest", cmap="Greys",
              extent=(-0.5, n_batches - 0.5, trained.shape[0] - 0.5, -0.5))
    ax.set_xlabel("batches, sorted by warm-up loss (hardest left)")
    ax.set_ylabel("round (0 = warm-up pass)")
    ax.set_title("black: trained in that round")
    visits_histogram(trace.ledger(n_batches), ax=axes[2])
    axes[2].yaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def budget_figure(n_batches, epochs, delta):
    """Chapter 4: back-props per round of Algorithm 2 (warm-up, rounds of k, a truncated last one)
    and the cumulative count against Algorithm 1's epochs: both end at exactly N·E."""
    from itertools import accumulate

    from .budget import round_sizes

    sizes = [n_batches] + round_sizes(n_batches, epochs, delta)
    k = sizes[1] if len(sizes) > 1 else n_batches
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.5))
    ax = axes[0]
    ax.bar(0, n_batches, color="tab:gray", width=0.9)
    if 1 < len(sizes) <= 200:
        ax.bar(range(1, len(sizes)), sizes[1:], color="tab:orange", width=0.9)
    elif len(sizes) > 200:  # one artist for all rounds: thousands of bars would redraw slowly
        ax.stairs(sizes[1:], [r + 0.5 for r in range(len(sizes))], fill=True, color="tab:orange")
    if len(sizes) > 1 and sizes[-1] != k:
        ax.bar(len(sizes) - 1, sizes[-1], color="tab:red", width=0.9)
    ax.set_xlabel("round (0 = warm-up pass; red: truncated last round)")
    ax.set_ylabel("back-props in the round")
    ax.set_title(f"N = {n_batches}, E = {epochs}, δ = {delta:.2f}: k = {k}, ζ = {len(sizes) - 1}")
    ax = axes[1]
    T = n_batches * epochs
    cum2 = [0] + list(accumulate(sizes))  # back-props spent after each round
    ax.plot([c / n_batches for c in cum2], cum2, ".-", color="tab:orange", ms=4, label="Algorithm 2: after each round")
    ax.plot(range(epochs + 1), [n_batches * e for e in range(epochs + 1)], "o", color="black", ms=6, mfc="none",
            label="Algorithm 1: after each epoch")
    ax.axhline(T, color="tab:red", ls="--", lw=1, label=f"budget T = N·E = {T}")
    ax.set_xlabel("equivalent epoch (back-props / N)")
    ax.set_ylabel("back-props spent")
    ax.set_title("Both spend exactly N·E back-props")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
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


def paired_differences(records, key="test_acc", title=None):
    """The figure of a paired table: for each arm, its final KEY minus Algorithm 1's, one dot per seed, and
    the mean with its 95 % t-interval (filled when it excludes 0, hollow when it contains 0). Seeing the
    seeds shows what a mean ± interval hides: one odd seed, or every seed on one side of 0."""
    from .metrics import excludes_zero

    runs = sorted((r for r in records if r["status"] == "complete"), key=lambda r: arms.sort_key(r["config"]))
    pair = lambda c: (arms.block(c), c["seed"])  # an arm's run is paired with its own block's baseline, same seed
    base = {pair(r["config"]): r["history"][-1][key] for r in runs if arms.is_baseline(r["config"])}
    by_arm = {}  # by the arm's key, never its label: two arms that read the same stay two
    for r in runs:
        if not arms.is_baseline(r["config"]) and pair(r["config"]) in base:
            entry = by_arm.setdefault(arms.arm(r["config"]), {"config": r["config"], "diffs": []})
            entry["diffs"].append(r["history"][-1][key] - base[pair(r["config"])])
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
