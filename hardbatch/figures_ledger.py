"""Chapters 2–4's figures: the ledger of batch losses, the batches selection takes from it, and the budget.

Why apart from plots.py: these draw the algorithm's bookkeeping (a ledger's losses, their staleness, which
batches a round trains, back-props per round), not results over seeds. Each takes plain tensors, draws one
figure and returns it; the chapters call them as hb.plots.ledger_heatmap and so on (plots.py re-exports them),
or through the `show` functions of hardbatch.widgets.
"""
import matplotlib.pyplot as plt

from .selection import hardest


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
