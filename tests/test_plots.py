"""The teaching figures show what the package does, not a copy of it.

`partition_figure` must show the batches `train()` really trains: here a model that records which
samples each back-prop sees (every image carries its own index in its pixels) is trained by `train()`,
and the figure's numbers must be exactly those. The other figures count what the core counts.
"""
from dataclasses import replace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import hardbatch as hb  # noqa: E402
from hardbatch import plots, widgets  # noqa: E402
from hardbatch.data import ImageData  # noqa: E402
from hardbatch.train import start  # noqa: E402

N_SAMPLES, BATCH, EPOCHS = 300, 32, 3


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def numbered_images(n):
    """n 2×2 one-channel images whose first two pixels spell the sample's index (i // 256, i % 256);
    mean 0 and std 1/255, so `preprocess` hands the model the raw pixel values."""
    i = torch.arange(n)
    x = torch.zeros(n, 1, 2, 2, dtype=torch.uint8)
    x[:, 0, 0, 0], x[:, 0, 0, 1] = i // 256, i % 256
    y = i % 10
    return ImageData("digits", x, y, x[:20], y[:20], 10, (0.0,), (1 / 255,))


class Recorder(nn.Module):
    """A linear model that writes down the sample indices of every training forward pass."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(4, 10)
        self.seen = []  # one (B,) tensor of sample indices per back-prop

    def forward(self, x):  # (B, 1, 2, 2) raw pixel values
        if self.training and torch.is_grad_enabled():
            self.seen.append(x[:, 0, 0, 0].round().long() * 256 + x[:, 0, 0, 1].round().long())
        return self.head(x.flatten(1) / 255)


@pytest.mark.parametrize("order", ["fixed", "shuffled"])
def test_partition_figure_shows_the_batches_train_used(order):
    data = numbered_images(N_SAMPLES)
    cfg = hb.RunConfig(method="minibatch", order=order, epochs=EPOCHS, batch_size=BATCH, seed=5, device="cpu",
                       threads=1)
    model = Recorder()
    record = hb.train(cfg, data=data, model=model)
    N = record["n_batches"]
    assert len(model.seen) == N * EPOCHS
    trained = torch.empty(EPOCHS, N_SAMPLES, dtype=torch.long)  # back-prop within the epoch of every sample
    for t, idx in enumerate(model.seen):
        trained[t // N, idx] = t % N

    assert torch.equal(plots.when_trained(start(cfg, data), EPOCHS), trained)
    fig = plots.partition_figure(replace(cfg, order="fixed"), data, EPOCHS)
    panel = 0 if order == "fixed" else 1
    shown = torch.as_tensor(fig.axes[panel].images[0].get_array().data)  # (E, n), columns sorted
    assert torch.equal(shown, trained[:, torch.argsort(trained[0], stable=True)])


def test_partition_of_is_the_partition_of_the_run():
    data = numbered_images(N_SAMPLES)
    cfg = hb.RunConfig(method="hardbatch", epochs=2, batch_size=BATCH, seed=2, device="cpu", threads=1)
    model = Recorder()
    trace = widgets.LedgerTrace()
    hb.train(cfg, data=data, model=model, on_step=trace)
    partition = widgets.partition_of(cfg, data)
    for batch, idx in zip(trace.batches, model.seen):
        assert torch.equal(partition[batch], idx)


def test_per_sample_strips_marks_clamped_losses():
    fig = plots.per_sample_strips({"a": torch.tensor([1e-6, 0.5, 2.0]), "b": torch.tensor([0.0, 1e-5, 1.0])})
    label = fig.axes[0].get_xlabel()
    assert "3 losses below 0.0001, drawn at 0.0001" in label


def test_visits_histogram_counts_what_the_ledger_calls_starved():
    ledger = hb.Ledger.of(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    ledger.train_count.copy_(torch.tensor([1, 5, 1, 3]))
    fig = plots.visits_histogram(ledger)
    assert fig.axes[0].get_title().endswith(f"{int(ledger.starved().sum())} starved (red)")
    assert "2 starved" in fig.axes[0].get_title()


# ---------------------------------------------------------------- bands on a log axis
NOISY_LOSSES = [0.01, 0.1, 0.05]  # three seeds a decade apart: mean ± t·s/√n of the values goes below 0


def test_arithmetic_band_of_noisy_losses_would_go_below_zero():
    """Why bands of losses are taken on log loss: the plain band of this example reaches below 0."""
    mean, lower, _ = plots.band(NOISY_LOSSES)
    assert lower < 0 < mean


def test_log_band_stays_positive_and_near_the_mean():
    centre, lower, upper = plots.band(NOISY_LOSSES, log=True)
    geometric = (0.01 * 0.1 * 0.05) ** (1 / 3)
    assert centre == pytest.approx(geometric)
    assert 0 < lower < centre < upper
    assert centre / lower == pytest.approx(upper / centre)  # symmetric on the log axis
    assert centre / lower < 30, "a band of three seeds that spread over a decade stays within a sane factor"
    assert plots.band([0.2], log=True) == pytest.approx((0.2, 0.2, 0.2))  # one seed: no band


def loss_records(per_seed):
    """Algorithm-1 run records, one per seed, whose train loss at epoch e is per_seed[s][e]."""
    cfg = hb.RunConfig(method="minibatch", epochs=len(per_seed[0]) - 1, batch_size=BATCH, device="cpu", threads=1)
    return [{"config": replace(cfg, seed=s).to_dict(), "status": "complete",
             "history": [{"epoch": e, "train_loss": v, "test_acc": 50.0 + e} for e, v in enumerate(losses)]}
            for s, losses in enumerate(per_seed)]


def test_curves_draw_loss_bands_on_log_loss():
    per_seed = [[2.3, 0.5, 0.01], [2.3, 0.6, 0.1], [2.3, 0.4, 0.05]]  # the last epoch spreads over a decade
    fig = plots.curves(loss_records(per_seed), keys=("train_loss",))
    ax = fig.axes[0]
    (line,) = ax.get_lines()
    centre = line.get_ydata()
    assert centre[-1] == pytest.approx(plots.band(NOISY_LOSSES, log=True)[0])
    vertices = ax.collections[0].get_paths()[0].vertices  # the band's outline: (x, y) pairs
    assert (vertices[:, 1] > 0).all(), "a loss band on a log axis never reaches 0 or below"
    last = vertices[vertices[:, 0] == 2, 1]
    assert last.min() > centre[-1] / 30 and last.max() < centre[-1] * 30
    assert ax.get_yscale() == "log"


CHAPTER_4_ARMS = {"Algorithm 1": {"method": "minibatch", "order": "fixed"},
                  **{f"hardest δ={d}": {"method": "hardbatch", "select": "hardest", "delta": d} for d in (1.0, 0.8, 0.5, 0.2)},
                  **{f"random δ={d}": {"method": "hardbatch", "select": "random", "delta": d} for d in (0.8, 0.5, 0.2)},
                  "easiest δ=0.2": {"method": "hardbatch", "select": "easiest", "delta": 0.2}}  # exercise 3
CHAPTER_6_ARMS = {"Algorithm 1": {"method": "minibatch", "order": "fixed"},
                  "hardest": {"method": "hardbatch", "select": "hardest", "delta": 0.2},
                  "random": {"method": "hardbatch", "select": "random", "delta": 0.2},
                  "proportional": {"method": "hardbatch", "select": "proportional", "delta": 0.2, "alpha": 1.0},
                  "selective": {"method": "selective", "beta": 1.0}}


@pytest.mark.parametrize("arms_", [CHAPTER_4_ARMS, CHAPTER_6_ARMS], ids=["chapter 4", "chapter 6"])
def test_the_arms_a_chapter_draws_have_colours_that_can_be_told_apart(arms_):
    """Issue 20: chapter 4's five hardest bands were shades of one orange, and hardest and Selective-Backprop
    shared a colour in chapter 6. Every two arms a chapter draws differ by a clear distance in RGB (the old
    oranges of hardest δ = 0.8 and 0.5 were 0.13 apart)."""
    from itertools import combinations

    rgb = {name: matplotlib.colors.to_rgb(plots.arm_color(c)) for name, c in arms_.items()}
    for a, b in combinations(rgb, 2):
        distance = sum((x - y) ** 2 for x, y in zip(rgb[a], rgb[b])) ** 0.5
        assert distance > 0.3, f"{a} and {b} are drawn in nearly the same colour ({rgb[a]} and {rgb[b]})"


def test_an_arm_keeps_its_colour_whatever_describes_it():
    """A RunConfig, its dict and a record's config (all knobs filled in) give the arm one colour, in every figure."""
    cfg = hb.RunConfig(method="hardbatch", select="random", delta=0.5, epochs=3, seed=4)
    assert plots.arm_color(cfg) == plots.arm_color(cfg.to_dict()) == plots.arm_color(CHAPTER_4_ARMS["random δ=0.5"])
    assert plots.arm_color(hb.RunConfig(method="minibatch")) == "black"
    other = plots.arm_color({"method": "hardbatch", "select": "hardest", "delta": 0.3})  # not listed: its family's shade
    assert other not in plots.ARM_COLORS.values() and matplotlib.colors.to_rgb(other)[0] > 0.5  # an orange


def test_paired_differences_draws_each_seed_and_marks_only_intervals_that_exclude_0():
    cfg = hb.RunConfig(method="minibatch", epochs=1, batch_size=BATCH, device="cpu", threads=1)
    hard = hb.RunConfig(method="hardbatch", delta=0.2, epochs=1, batch_size=BATCH, device="cpu", threads=1)
    rand = replace(hard, select="random")
    final = [(cfg, [90.0, 91.0, 92.0]), (hard, [91.0, 92.1, 92.9]), (rand, [89.0, 92.5, 91.0])]  # hard: +1 ± small
    records = [{"config": replace(c, seed=s).to_dict(), "status": "complete", "history": [{"test_acc": v}]}
               for c, values in final for s, v in enumerate(values)]
    ax = plots.paired_differences(records).axes[0]
    dots = [c.get_offsets()[:, 1].tolist() for c in ax.collections if len(c.get_offsets()) == 3]
    assert dots[0] == pytest.approx([1.0, 1.1, 0.9]) and dots[1] == pytest.approx([-1.0, 1.5, -1.0])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["hardest δ=0.2", "random δ=0.2"]
    means = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert [m.get_ydata()[0] for m in means] == pytest.approx([1.0, -0.5 / 3])
    assert means[0].get_markerfacecolor() != "white" and means[1].get_markerfacecolor() == "white"
    assert "3 seeds" in ax.get_title()


def test_heatmaps_drawn_for_comparison_share_one_colour_scale():
    a = torch.tensor([[2.0, 2.0], [1.0, 2.0], [0.5, 1.5]])  # (T+1, N): the first row (before any back-prop) is skipped
    b = torch.tensor([[2.0, 2.0], [3.0, 0.01], [float("nan"), 0.2]])
    assert plots.loss_scale(a, b) == pytest.approx((0.01, 3.0))
    assert plots.loss_scale(torch.tensor([[1.0], [0.0]]))[0] == 1e-3  # a zero loss cannot sit on a log scale
    fig, axes = plt.subplots(2, 1)
    for h, ax in zip((a, b), axes):
        plots.ledger_heatmap(h, 2, ax=ax, scale=plots.loss_scale(a, b))
    norms = [ax.images[0].norm for ax in axes]
    assert all((n.vmin, n.vmax) == pytest.approx((0.01, 3.0)) for n in norms)
