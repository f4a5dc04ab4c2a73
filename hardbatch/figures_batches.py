"""Chapter 1's figures: the images, when each sample is trained, and the loss of every back-prop.

Why apart from plots.py: these draw what one run does step by step (plain tensors, or the training loop's own
queue), not results over seeds. Each takes its data, draws one figure and returns it; the chapters call them as
hb.plots.image_grid and so on (plots.py re-exports them), or through the `show` functions of hardbatch.widgets.
"""
from dataclasses import replace

import matplotlib.pyplot as plt

from .train import start



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
