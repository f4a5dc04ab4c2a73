"""Notebook helpers: what chapters 1–4 need beyond the core, and the `show` functions behind their sliders.

- `LedgerTrace` is an `on_step` hook for `train()` that writes down every back-prop (which batch,
  its loss), so a chapter can replay the ledger as it stood after any back-prop (chapters 2, 3).
- `partition_of`, `batch_losses` and `sample_losses` recompute what `train()` does not keep: the
  batches of a run, and fresh losses from a trained model (chapter 2's stale losses, hard samples).
- Each `*_explorer` returns a `show(...)` for `ipywidgets.interact`. It redraws only from numbers
  already computed (or, for the budget, from arithmetic), so moving a slider costs well under a
  second on a laptop CPU. A notebook calls `show()` once plainly, so that it also runs headless.
"""
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from . import plots
from .batches import make_partition
from .budget import k_for, plan, round_sizes
from .data import preprocess


# ---------------------------------------------------------------- recording and recomputing


class LedgerTrace:
    """An `on_step` hook for `train()`: the batch and the loss of every back-prop, in order.

    The losses stay 0-d tensors on the training device until asked for, so recording never
    waits for a GPU. Chapters 2 and 3.
    """

    def __init__(self):
        self.batches = []  # batch index trained at back-prop t (t = 0 .. T-1)
        self._losses = []  # its loss, 0-d tensors

    def __call__(self, step, batch, loss):
        self.batches.append(int(batch))
        self._losses.append(loss.detach())

    def __len__(self):
        return len(self.batches)

    @property
    def losses(self):
        """(T,) the loss of every back-prop, on the CPU."""
        return torch.stack(self._losses).float().cpu() if self._losses else torch.zeros(0)

    def replay(self, n_batches):
        """The ledger after every back-prop: (T+1, N) losses (nan: not yet written) and
        (T+1, N) the back-prop that last wrote each entry (-1: never). Row t is after t back-props."""
        T = len(self.batches)
        loss = torch.full((T + 1, n_batches), math.nan)
        last = torch.full((T + 1, n_batches), -1, dtype=torch.long)
        for t, (b, value) in enumerate(zip(self.batches, self.losses.tolist())):
            loss[t + 1], last[t + 1] = loss[t], last[t]
            loss[t + 1, b], last[t + 1, b] = value, t
        return loss, last

    def rounds(self, n_batches, k):
        """(1 + ζ, N) bool: row 0 is the warm-up pass, row r the batches that round r trained."""
        steps = self.batches[n_batches:]
        rows = [self.batches[:n_batches]] + [steps[i:i + k] for i in range(0, len(steps), k)]
        out = torch.zeros(len(rows), n_batches, dtype=torch.bool)
        for r, row in enumerate(rows):
            out[r, row] = True
        return out


def partition_of(cfg, n_train):
    """The N batches `train(cfg)` uses on `n_train` samples (its first draw from a generator seeded
    with cfg.seed). Valid for Algorithm 2 and for Algorithm 1 with order="fixed"."""
    return make_partition(n_train, cfg.batch_size, torch.Generator().manual_seed(cfg.seed), cfg.drop_last)


@torch.no_grad()
def sample_losses(model, data, idx, image_size=0):
    """Per-sample cross-entropy (B,) and predicted class (B,) of the training samples `idx`, in eval mode."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    idx = idx.to(data.x_train.device)
    x = preprocess(data.x_train[idx].to(device), data, image_size)  # (B, C, S, S)
    logits = model(x).float()  # (B, classes)
    model.train(was_training)
    y = data.y_train[idx].to(device)
    return F.cross_entropy(logits, y, reduction="none").cpu(), logits.argmax(1).cpu()


def batch_losses(model, data, partition, image_size=0):
    """(N,) the loss of every batch *now*, with the model as it is (eval mode, no update): what the
    ledger would hold if every entry were fresh. Chapter 2."""
    return torch.stack([sample_losses(model, data, idx, image_size)[0].mean() for idx in partition])


# ---------------------------------------------------------------- chapter 1: the partition


def partition_explorer(n_samples, epochs=3, seed=0):
    """Chapter 1: `show(batch_size)` prints N and the budget and draws the fixed partition next to
    reshuffled batches, over a few epochs."""

    def show(batch_size=32):
        N = math.ceil(n_samples / batch_size)
        last = n_samples - (N - 1) * batch_size
        print(f"B = {batch_size}: N = ceil({n_samples} / {batch_size}) = {N} mini-batches (the last holds {last} "
              f"samples); one epoch = {N} back-props, {epochs} epochs = {N * epochs} back-props")
        plots.partition_figure(n_samples, batch_size, epochs, seed)
        plt.show()

    return show


# ---------------------------------------------------------------- chapter 2: the ledger


def ledger_explorer(trace, n_batches, k):
    """Chapter 2: `show(backprop)` draws the ledger as it stood after that many back-props: one bar
    per batch, coloured by how stale its loss is, the k a round would pick outlined."""
    loss, last = trace.replay(n_batches)  # (T+1, N) each
    T = len(trace)

    def show(backprop=T):
        t = int(min(max(backprop, 0), T))
        stale = torch.where(last[t] >= 0, t - last[t], torch.full_like(last[t], -1))  # updates since measured
        written = int((last[t] >= 0).sum())
        picked = torch.sort(torch.nan_to_num(loss[t], nan=-1.0), descending=True, stable=True).indices[:k]
        print(f"after back-prop {t} (equivalent epoch {t / n_batches:.2f}): {written} of {n_batches} entries "
              f"written; the next round would train batches {sorted(picked.tolist()) if written == n_batches else '-'}")
        plots.ledger_bars(loss[t], staleness=stale, selected=picked if written == n_batches else None,
                          title=f"The ledger after back-prop {t} of {T}")
        plt.show()

    return show


# ---------------------------------------------------------------- chapter 3: selection


def selection_explorer(runs, make_run=None):
    """Chapter 3: `show(delta)` for a δ slider, from runs already made.

    runs: {δ (rounded to 2 places): (record, LedgerTrace)} of Algorithm 2 at one seed; make_run(δ),
    if given, makes a missing one (and it is kept). Draws the warm-up ledger with the top k picked,
    the batches every round trained, and the visits per batch; prints `selected k = .. of N = ..`.
    """

    def show(delta=0.2):
        key = round(float(delta), 2)
        if key not in runs:
            if make_run is None:
                raise KeyError(f"no run at δ = {key}; made: {sorted(runs)}")
            runs[key] = make_run(key)
        record, trace = runs[key]
        N, k = record["n_batches"], k_for(key, record["n_batches"])
        counts = torch.tensor(record["batch_train_counts"])  # (N,)
        starved = int((counts <= 1).sum())
        print(f"δ = {key:.2f}: selected k = {k} of N = {N} batches per round; ζ = {record['rounds']} rounds "
              f"after the warm-up; {starved} of {N} batches starved (never trained after the warm-up)")
        plots.selection_figure(trace, N, k, counts,
                               title=f"δ = {key:.2f}: selected k = {k} of N = {N} batches, {record['rounds']} rounds")
        plt.show()

    return show


def control_explorer(runs):
    """Chapter 3: `show(select)` for a drop-down over the selection strategies at one δ.

    runs: {strategy name: (record, LedgerTrace)} at the same δ and seed."""

    def show(select="hardest"):
        record, trace = runs[select]
        N, k = record["n_batches"], record["k"]
        counts = torch.tensor(record["batch_train_counts"])
        print(f"{select}: k = {k} of N = {N} per round; {int((counts <= 1).sum())} starved batches; "
              f"the most-trained batch ran {int(counts.max())} times; final test top-1 "
              f"{record['history'][-1]['test_acc']:.1f} %")
        plots.selection_figure(trace, N, k, counts, title=f"{select} at δ = {record['config']['delta']:g}")
        plt.show()

    return show


# ---------------------------------------------------------------- chapter 4: the budget


def budget_explorer():
    """Chapter 4: `show(N, E, delta)` prints the plan of Algorithm 2 (k, ζ, the last round, T) and
    draws the back-props of every round against Algorithm 1's epochs. Pure arithmetic: instant."""

    def show(N=41, E=12, delta=0.2):
        p = plan(N, E, delta)
        sizes = round_sizes(N, E, delta)
        assert N + sum(sizes) == N * E, "the rounds must spend exactly the budget"
        print(f"N = {N}, E = {E}, δ = {delta:.2f}")
        print(f"  k = max(1, round(δ·N)) = {p['k']} batches per round")
        print(f"  ζ = ceil((E−1)·N / k) = {p['zeta']} rounds after the warm-up (the paper's (E−1)/δ = {p['paper_zeta']:.2f})")
        print(f"  last round trains {p['last_round']} batches" + ("" if p["last_round"] == p["k"] else " (truncated)"))
        print(f"  back-props: {N} (warm-up) + {sum(sizes)} (rounds) = {N + sum(sizes)} = N·E = {p['T']}")
        plots.budget_figure(N, E, delta)
        plt.show()

    return show


def curves_explorer(records):
    """Chapter 4: `show(delta)` draws Algorithm 1 and both Algorithm-2 arms (hardest, random) at one δ,
    mean ± 95 % CI over seeds, from the runs already made."""

    def show(delta=0.2):
        chosen = [r for r in records if r["config"]["method"] == "minibatch"
                  or abs(r["config"]["delta"] - delta) < 1e-9]
        plots.curves(chosen, keys=("test_acc", "train_loss"), title=f"δ = {delta:g}: equal back-props")
        plt.show()

    return show
