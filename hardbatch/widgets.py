"""Notebook helpers: what chapters 1–4 need beyond the core, and the live figures behind their sliders.

- `Live` puts one figure under its controls and redraws that same figure when a control moves.
  The first drawing is an ordinary cell output (text and a PNG), so it shows where no kernel runs
  (nbval, GitHub); with a live kernel each move replaces it in place (IPython display ids). There is
  never a second, frozen copy.
- `LedgerTrace` is an `on_step` hook for `train()` that writes down every back-prop (which batch,
  its loss), so a chapter can rebuild the `Ledger` as it stood after any back-prop (chapters 2, 3).
- `partition_of`, `batch_losses` and `sample_losses` give what `train()` does not keep: the
  batches of a run, and fresh losses from a trained model (chapter 2's stale losses, hard samples).
- Each `*_explorer` returns a `show(...)` that prints a line and returns a figure, for `Live`. It
  draws only from numbers already computed (or, for the budget, from arithmetic), so moving a
  slider costs well under a second on a laptop CPU.

Everything here calls the core (`Ledger`, `selection`, `batches`, `budget`, `arms`, `train.start`)
rather than recomputing it, so a figure shows what the package does.
"""
import contextlib
import io
import math
from dataclasses import replace

import ipywidgets
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from IPython.display import Image, Pretty, display

from . import arms, figures_batches, figures_ledger, plots
from .batches import n_batches
from .budget import k_for, plan, round_sizes
from .data import preprocess
from .ledger import Ledger
from .selection import hardest
from .train import start

# ---------------------------------------------------------------- one live figure per widget


class Live:
    """A figure under its controls, redrawn in place whenever a control moves.

    draw(**values) may print a few lines and returns a matplotlib Figure; `controls` are ipywidgets
    (sliders, drop-downs) named like draw's arguments. Put `Live(...)` on the last line of a cell (or
    `display` it): it shows the controls, the printed text and the figure as a PNG. Sliders redraw
    when released, not at every pixel of a drag.
    """

    def __init__(self, draw, **controls):
        self.draw, self.controls = draw, controls
        self.handles = None  # (text, figure) display handles, once shown
        for control in controls.values():
            if "continuous_update" in control.keys:
                control.continuous_update = False
            control.observe(self.redraw, names="value")
        self.text, self.png = self.render()

    def values(self):
        return {name: control.value for name, control in self.controls.items()}

    def render(self):
        """(printed text, PNG bytes) of draw at the controls' values; the figure is closed."""
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            fig = self.draw(**self.values())
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        plt.close(fig)
        return out.getvalue().rstrip("\n"), buf.getvalue()

    def redraw(self, change=None):
        """Draw again and replace the shown text and figure (called when a control moves)."""
        try:
            self.text, self.png = self.render()
        except Exception as e:  # a callback's error would vanish into the kernel log: show it instead
            plt.close("all")
            self.text = f"{type(e).__name__}: {e}"
        if self.handles is not None:
            self.handles[0].update(Pretty(self.text))
            self.handles[1].update(Image(self.png))

    def _ipython_display_(self):
        box = ipywidgets.HBox(list(self.controls.values()))
        box.add_class("hardbatch-live")  # the browser test finds the controls by this class
        bundle = widget_bundle(box)  # the widget where a kernel runs, this text where none does
        bundle["text/plain"] = "controls: " + ", ".join(f"{n} = {v}" for n, v in self.values().items())
        display(bundle, raw=True)
        self.handles = (display(Pretty(self.text), display_id=True), display(Image(self.png), display_id=True))


def widget_bundle(widget):
    """The MIME bundle that shows `widget`. ipywidgets 8 gives it (`_repr_mimebundle_`); ipywidgets 7, which
    Colab ships (7.7), displays widgets through `_ipython_display_` instead, so build the same bundle here."""
    if hasattr(widget, "_repr_mimebundle_"):
        return widget._repr_mimebundle_()
    return {"text/plain": repr(widget),
            "application/vnd.jupyter.widget-view+json": {"version_major": 2, "version_minor": 0,
                                                         "model_id": widget._model_id}}


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

    def ledger(self, n_batches, t=None):
        """The run's `Ledger` after its first t back-props (all by default), rebuilt write by write."""
        ledger = Ledger(n_batches)
        for step, (b, loss) in enumerate(zip(self.batches[:t], self.losses[:t])):
            ledger.write(b, loss, step)
        return ledger

    def replay(self, n_batches):
        """The ledger after every back-prop: (T+1, N) losses (nan: not yet written) and (T+1, N) the
        back-prop that last wrote each entry (-1: never). Row t is after t back-props."""
        ledger = Ledger(n_batches)
        loss, last = [ledger.loss.clone()], [ledger.last_scored.clone()]
        for step, (b, value) in enumerate(zip(self.batches, self.losses)):
            ledger.write(b, value, step)
            loss.append(ledger.loss.clone())
            last.append(ledger.last_scored.clone())
        return torch.stack(loss), torch.stack(last)

    def rounds(self, n_batches, k):
        """(1 + ζ, N) bool: row 0 is the warm-up pass, row r the batches that round r trained."""
        steps = self.batches[n_batches:]
        rows = [self.batches[:n_batches]] + [steps[i:i + k] for i in range(0, len(steps), k)]
        out = torch.zeros(len(rows), n_batches, dtype=torch.bool)
        for r, row in enumerate(rows):
            out[r, row] = True
        return out


def partition_of(cfg, data):
    """The N batches `train(cfg, data)` uses: the partition of the run `train.start` builds (on the CPU)."""
    return [idx.cpu() for idx in start(cfg, data).partition]


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


def partition_explorer(cfg, data, epochs=3):
    """Chapter 1: `show(batch_size)` prints N and the budget and draws the fixed partition next to
    reshuffled batches over a few epochs, as `train(cfg, data)` at that batch size would draw them.

    cfg: an Algorithm-1 RunConfig (its seed, threads and other settings are kept)."""
    n = len(data.y_train)

    def show(batch_size=32):
        N = n_batches(n, batch_size, cfg.drop_last)
        last = n - (N - 1) * batch_size
        print(f"B = {batch_size}: N = ceil({n} / {batch_size}) = {N} mini-batches (the last holds {last} "
              f"samples); one epoch = {N} back-props, {epochs} epochs = {N * epochs} back-props")
        return figures_batches.partition_figure(replace(cfg, batch_size=batch_size), data, epochs)

    return show


# ---------------------------------------------------------------- chapter 2: the ledger


def ledger_explorer(trace, n_batches, k):
    """Chapter 2: `show(backprop)` draws the ledger as it stood after that many back-props: one bar
    per batch, coloured by how stale its loss is, the k a round would pick outlined."""
    T = len(trace)

    def show(backprop=T):
        t = int(min(max(backprop, 0), T))
        ledger = trace.ledger(n_batches, t)
        written = int((ledger.last_scored >= 0).sum())
        full = written == n_batches
        picked = hardest(ledger, k) if full else None  # the next round's choice, once every entry is written
        print(f"after back-prop {t} (equivalent epoch {t / n_batches:.2f}): {written} of {n_batches} entries "
              f"written; the next round would train batches {sorted(picked.tolist()) if full else '-'}")
        return figures_ledger.ledger_bars(ledger.loss, staleness=ledger.staleness(t), selected=picked,
                                 title=f"The ledger after back-prop {t} of {T}")

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
        N = record["n_batches"]
        k = k_for(key, N)
        starved = int(trace.ledger(N).starved().sum())
        print(f"δ = {key:.2f}: selected k = {k} of N = {N} batches per round; ζ = {record['rounds']} rounds "
              f"after the warm-up; {starved} of {N} batches starved (never trained after the warm-up)")
        return figures_ledger.selection_figure(trace, N, k,
                                      title=f"δ = {key:.2f}: selected k = {k} of N = {N} batches, "
                                            f"{record['rounds']} rounds")

    return show


def control_explorer(runs):
    """Chapter 3: `show(select)` for a drop-down over the selection strategies at one δ.

    runs: {strategy name: (record, LedgerTrace)} at the same δ and seed."""

    def show(select="hardest"):
        record, trace = runs[select]
        N, k = record["n_batches"], record["k"]
        ledger = trace.ledger(N)
        print(f"{select}: k = {k} of N = {N} per round; {int(ledger.starved().sum())} starved batches; "
              f"the most-trained batch ran {int(ledger.train_count.max())} times; final test top-1 "
              f"{record['history'][-1]['test_acc']:.1f} %")
        return figures_ledger.selection_figure(trace, N, k, title=f"{select} at δ = {record['config']['delta']:g}")

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
        return figures_ledger.budget_figure(N, E, delta)

    return show


def curves_explorer(records):
    """Chapter 4: `show(delta)` draws Algorithm 1 and every Algorithm-2 arm at one δ (hardest and its
    controls), mean ± 95 % CI over seeds, from the runs already made."""

    def show(delta=0.2):
        chosen = [r for r in records if arms.is_baseline(r["config"])
                  or (r["config"]["method"] == "hardbatch" and math.isclose(r["config"]["delta"], delta))]
        shown = sorted({arms.arm(r["config"]): r["config"] for r in chosen}.values(), key=arms.sort_key)
        print(f"δ = {delta:g}: " + ", ".join(arms.label(c) for c in shown))
        return plots.curves(chosen, keys=("train_loss", "test_acc"), title=f"δ = {delta:g}: equal back-props")

    return show
