"""The notebook helpers of chapters 1–4, outside any notebook: the ledger trace replays the run's own
ledger, `partition_of` finds the run's own batches, each `show` the sliders call says what its
arguments ask for (two δ give two k), and `Live` redraws its one figure in place when a control moves."""
import re
from dataclasses import replace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from ipywidgets import FloatSlider, IntSlider  # noqa: E402

import hardbatch as hb  # noqa: E402
from hardbatch import widgets  # noqa: E402

PHRASE = re.compile(r"selected k = (\d+) of N = (\d+) batches")
CFG = hb.RunConfig(method="hardbatch", select="hardest", epochs=3, batch_size=64, lr=0.01, seed=3, device="cpu",
                   threads=1)


@pytest.fixture(scope="module")
def data(digits):
    return digits


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def traced(cfg, data, model=None):
    trace = widgets.LedgerTrace()
    return hb.train(cfg, data=data, model=model, on_step=trace), trace


@pytest.fixture(scope="module")
def run02(data):
    return traced(replace(CFG, delta=0.2), data)


def test_trace_replays_the_runs_own_ledger(run02):
    record, trace = run02
    N, k, T = record["n_batches"], record["k"], record["backprops"]
    loss, last = trace.replay(N)  # (T+1, N) each
    assert len(trace) == T == N * CFG.epochs and loss.shape == last.shape == (T + 1, N)
    assert torch.isnan(loss[0]).all() and (last[0] == -1).all()
    assert torch.allclose(loss[-1], torch.tensor(record["final_ledger_loss"]))
    assert torch.bincount(torch.tensor(trace.batches), minlength=N).tolist() == record["batch_train_counts"]
    ledger = trace.ledger(N)  # the run's Ledger, rebuilt write by write
    assert ledger.train_count.tolist() == record["batch_train_counts"]
    assert torch.allclose(ledger.loss, torch.tensor(record["final_ledger_loss"]))
    assert torch.equal(ledger.last_scored, last[-1]) and torch.equal(trace.ledger(N, N).loss, loss[N])
    rounds = trace.rounds(N, k)  # (1 + ζ, N)
    assert rounds.shape[0] == 1 + record["rounds"] == 1 + hb.zeta(N, CFG.epochs, 0.2)
    assert rounds[0].all(), "the warm-up trains every batch"
    assert [int(r.sum()) for r in rounds[1:]] == hb.round_sizes(N, CFG.epochs, 0.2)


def test_first_round_is_the_top_k_of_the_warm_up_ledger(run02):
    record, trace = run02
    N, k = record["n_batches"], record["k"]
    loss, _ = trace.replay(N)
    by_hand = sorted(range(N), key=lambda i: -loss[N][i].item())[:k]
    assert trace.batches[N:N + k] == by_hand


def test_partition_of_finds_the_batches_train_used(data):
    torch.manual_seed(CFG.seed)
    model = hb.create_model(CFG.model, data.num_classes, data.in_chans)
    initial = hb.create_model(CFG.model, data.num_classes, data.in_chans)
    initial.load_state_dict(model.state_dict())
    record, trace = traced(replace(CFG, epochs=1), data, model=model)
    partition = widgets.partition_of(CFG, data)
    assert len(partition) == record["n_batches"]
    first = trace.batches[0]  # the first back-prop's loss came from the untrained model
    fresh = widgets.batch_losses(initial, data, partition)  # (N,)
    assert torch.isclose(fresh[first], trace.losses[0], atol=1e-5)
    losses, preds = widgets.sample_losses(initial, data, partition[first])
    assert losses.shape == preds.shape == (len(partition[first]),)
    assert torch.isclose(losses.mean(), fresh[first])


def test_delta_slider_shows_a_different_k_for_another_delta(data, run02, capsys):
    made = []

    def make_run(delta):
        made.append(delta)
        return traced(replace(CFG, delta=delta), data)

    show = widgets.selection_explorer({0.2: run02}, make_run=make_run)
    ks = {}
    for delta in (0.2, 0.7):
        fig = show(delta=delta)
        k, n = map(int, PHRASE.search(capsys.readouterr().out).groups())
        assert k == hb.k_for(delta, n) and n == run02[0]["n_batches"]
        assert PHRASE.search(fig._suptitle.get_text()).groups() == (str(k), str(n)), "the title names k and N"
        ks[delta] = k
    assert ks[0.2] != ks[0.7]
    assert made == [0.7], "only the missing δ is trained, once"


def test_selection_explorer_without_make_run_refuses_unknown_delta(run02):
    show = widgets.selection_explorer({0.2: run02})
    with pytest.raises(KeyError, match="no run at δ = 0.5"):
        show(delta=0.5)


def test_budget_explorer_prints_the_plan(capsys):
    show = widgets.budget_explorer()
    show(N=10, E=4, delta=0.4)  # k = 4, (E-1)·N = 30 = 7·4 + 2: ζ = 8, last round 2
    out = capsys.readouterr().out
    assert "k = max(1, round(δ·N)) = 4" in out and "= 8 rounds" in out
    assert "last round trains 2 batches (truncated)" in out and "= N·E = 40" in out
    show(N=10, E=3, delta=0.5)
    assert "(truncated)" not in capsys.readouterr().out


def test_ledger_explorer_outlines_the_next_round(run02, capsys):
    record, trace = run02
    N, k = record["n_batches"], record["k"]
    show = widgets.ledger_explorer(trace, N, k)
    show(backprop=N)
    out = capsys.readouterr().out
    assert f"{N} of {N} entries written" in out
    assert str(sorted(trace.batches[N:N + k])) in out, "after the warm-up, the next round is round 1"
    show(backprop=0)
    assert f"0 of {N} entries written" in capsys.readouterr().out


def test_partition_explorer_counts_batches(data, capsys):
    cfg = hb.RunConfig(method="minibatch", batch_size=30, device="cpu", threads=1)
    widgets.partition_explorer(cfg, data.subset(100), epochs=2)(batch_size=30)
    out = capsys.readouterr().out
    assert "N = ceil(100 / 30) = 4 mini-batches (the last holds 10 samples)" in out
    assert "2 epochs = 8 back-props" in out


def test_control_and_curves_explorers_draw(data, run02, capsys):
    controls = {"hardest": run02, "easiest": traced(replace(CFG, delta=0.2, select="easiest"), data)}
    show = widgets.control_explorer(controls)
    show("easiest")
    out = capsys.readouterr().out
    starved = int(controls["easiest"][1].ledger(run02[0]["n_batches"]).starved().sum())
    assert out.startswith("easiest: k = ") and f"; {starved} starved batches" in out
    base = hb.train(replace(CFG, method="minibatch", select=None, delta=None), data=data)
    fig = widgets.curves_explorer([base, run02[0], controls["easiest"][0]])(delta=0.2)
    assert fig.axes, "a figure was drawn"
    assert capsys.readouterr().out.startswith("δ = 0.2: Algorithm 1 (fixed), hardest δ=0.2, easiest δ=0.2")


class FakeHandle:
    """Stands in for IPython's DisplayHandle outside a kernel: keeps what it was last given."""

    def __init__(self, obj):
        self.obj = obj

    def update(self, obj):
        self.obj = obj


def test_live_draws_one_figure_and_redraws_it_in_place(monkeypatch):
    shown = []

    def fake_display(obj, raw=False, display_id=None):
        shown.append(obj)
        return FakeHandle(obj) if display_id else None

    monkeypatch.setattr(widgets, "display", fake_display)

    def draw(n=3, scale=1.0):
        print(f"n = {n}, scale = {scale}")
        fig, ax = plt.subplots()
        ax.plot(range(n), [scale * i for i in range(n)])
        return fig

    slider = IntSlider(value=3, min=2, max=9)
    live = widgets.Live(draw, n=slider, scale=FloatSlider(value=1.0))
    assert live.text == "n = 3, scale = 1.0" and live.png.startswith(b"\x89PNG")
    assert not slider.continuous_update, "a slider redraws when released, not at every pixel"
    assert not plt.get_fignums(), "the figure is closed once drawn: nothing else shows it"
    live._ipython_display_()
    assert len(shown) == 3, "the controls, the text, the figure: one of each"
    assert "application/vnd.jupyter.widget-view+json" in shown[0] and shown[0]["text/plain"].startswith("controls: n = 3")
    text, figure = live.handles
    first = figure.obj.data
    slider.value = 7  # as a reader moving the slider
    assert len(shown) == 3, "nothing new is displayed: the same outputs are replaced"
    assert text.obj.data == "n = 7, scale = 1.0"
    assert figure.obj.data == live.png != first
    assert not plt.get_fignums()


def test_live_shows_an_error_instead_of_losing_it():
    def draw(x=1):
        if x == 2:
            raise ValueError("no figure for x = 2")
        fig, _ = plt.subplots()
        return fig

    slider = IntSlider(value=1)
    live = widgets.Live(draw, x=slider)
    slider.value = 2
    assert live.text == "ValueError: no figure for x = 2"


def test_live_displays_its_controls_on_ipywidgets_7_too():
    """Colab ships ipywidgets 7.7, whose widgets have no `_repr_mimebundle_` (they display through
    `_ipython_display_`): `widget_bundle` builds the same bundle from the widget's model id."""
    slider = IntSlider(value=3)
    bundle = widgets.widget_bundle(slider)  # the installed ipywidgets' own bundle
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == slider.model_id and view["version_major"] == 2

    class Widget7:  # what ipywidgets 7.7 offers: a model id and _ipython_display_, no _repr_mimebundle_
        _model_id = "abc123"

        def _ipython_display_(self):
            raise AssertionError("Live must not display the controls a second time")

    bundle = widgets.widget_bundle(Widget7())
    assert bundle["application/vnd.jupyter.widget-view+json"] == {"version_major": 2, "version_minor": 0,
                                                                 "model_id": "abc123"}
    assert "text/plain" in bundle
