"""Chapter 6's two rules against hand-written references, their laws checked statistically, and their budget.

- `proportional` (batches drawn ∝ loss^α without replacement) against the exact probabilities of sequential
  draws, worked out by hand for 4 batches.
- Selective-Backprop's keep rule (CDF(loss)^β over a window of recent losses) against a plain Python loop,
  and its law: with losses spread evenly the kept fraction is 1/(β+1) (β=1: 1/2, β=2: 1/3).
- The budget, by hypothesis over N, E, B and the window: exactly N·E back-props of B samples, counted by
  hooks on the model, not by the record's own fields.
- Run identity: α, β and the window are settings only where they are read; old record names do not move.
"""
import json
import math
from itertools import permutations
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import hardbatch as hb
from hardbatch import budget, checkpoint
from hardbatch import arms
from hardbatch.ledger import Ledger
from hardbatch.record import validate_record, without_timing
from hardbatch.selection import keep_probability, keep_samples, proportional, select

from test_train import Stop, assert_same_weights, tiny_data, tiny_model


def cfg_for(**kw):
    base = dict(device="cpu", lr=0.1, momentum=0.9, weight_decay=1e-3, batch_size=6, epochs=3)
    return hb.RunConfig(**{**base, **kw})


# ---------------------------------------------------------------- proportional: an oracle for the law

def ordered_pair_probability(w, i, j):
    """P(first draw i, then j) when drawing without replacement ∝ w: w_i/W · w_j/(W - w_i)."""
    total = sum(w)
    return w[i] / total * w[j] / (total - w[i])


@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.0])
def test_proportional_draws_ordered_pairs_as_sequential_sampling(alpha):
    losses = torch.tensor([0.5, 1.0, 2.0, 4.0])
    w = [float(x) ** alpha for x in losses]
    g = torch.Generator().manual_seed(0)
    n = 20000
    counts = {}
    for _ in range(n):
        pair = tuple(proportional(Ledger.of(losses), 2, g, alpha=alpha).tolist())
        counts[pair] = counts.get(pair, 0) + 1
    for i, j in permutations(range(4), 2):
        p = ordered_pair_probability(w, i, j)
        sd = math.sqrt(p * (1 - p) / n)
        assert abs(counts.get((i, j), 0) / n - p) < 5 * sd + 1e-3, (i, j)


def test_proportional_returns_k_distinct_batches_even_when_losses_are_zero():
    g = torch.Generator().manual_seed(1)
    picked = select("proportional", torch.tensor([0.0, 0.0, 3.0, 0.0, 0.0]), 5, g, alpha=2.0)
    assert sorted(picked.tolist()) == [0, 1, 2, 3, 4] and picked[0] == 2  # the only hard batch comes first
    assert select("proportional", torch.tensor([1.0, 2.0]), 1, g).dtype == torch.long


def test_a_larger_alpha_picks_the_hardest_batches_more_often():
    losses = torch.linspace(0.1, 2.0, 20)  # the hardest three: 2.0, 1.9, 1.8
    g = torch.Generator().manual_seed(3)
    top = set(select("hardest", losses, 3).tolist())

    def hits(alpha):
        return sum(set(select("proportional", losses, 3, g, alpha=alpha).tolist()) == top for _ in range(500))

    uniform, one, strong = hits(0.0), hits(1.0), hits(15.0)
    assert uniform < 5 and one < 15 and strong > 75  # C(20,3) = 1140: uniform finds the top 3 in ~0.4 of 500


# ---------------------------------------------------------------- Selective-Backprop's keep rule

def reference_keep_probability(losses, window, beta):
    """By hand: the share of the window at most this loss, to the power beta."""
    return [(sum(1 for w in window if w <= x) / len(window)) ** beta for x in losses]


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 3.0])
def test_keep_probability_matches_a_plain_loop(beta):
    g = torch.Generator().manual_seed(4)
    window = torch.rand(50, generator=g, dtype=torch.double)
    losses = torch.cat([window[-10:], torch.tensor([0.0, 2.0], dtype=torch.double)])  # ties, below, above all
    got = keep_probability(losses, window, beta).tolist()
    assert got == pytest.approx(reference_keep_probability(losses.tolist(), window.tolist(), beta))
    assert got[-2] == (0.0 if beta > 0 else 1.0) and got[-1] == 1.0


def test_keep_samples_draws_one_uniform_per_sample():
    losses = torch.tensor([0.1, 0.5, 0.9, 0.3], dtype=torch.double)
    kept = keep_samples(losses, losses, 1.0, torch.Generator().manual_seed(5))
    draws = torch.rand(4, generator=torch.Generator().manual_seed(5), dtype=torch.double)
    assert kept.tolist() == [u < p for u, p in zip(draws.tolist(), reference_keep_probability(
        losses.tolist(), losses.tolist(), 1.0))]


@pytest.mark.parametrize("beta, expected", [(1.0, 1 / 2), (2.0, 1 / 3), (0.0, 1.0)])
def test_kept_fraction_is_one_over_beta_plus_one(beta, expected):
    """Losses streamed in batches of 64 through a window of 1024, as the loop does: the CDF of a fresh loss
    is spread evenly, so E[CDF^β] = 1/(β+1)."""
    g = torch.Generator().manual_seed(6)
    window, kept, seen = torch.zeros(0, dtype=torch.double), 0, 0
    for _ in range(400):
        losses = torch.rand(64, generator=g, dtype=torch.double)
        window = torch.cat([window, losses])[-1024:]
        kept += int(keep_samples(losses, window, beta, g).sum())
        seen += 64
    assert kept / seen == pytest.approx(expected, abs=0.01)


# ---------------------------------------------------------------- the loop: budget over N, E, B, window

def count_samples(model):
    """Back-props, back-propagated samples and samples scored: counted by a forward hook that asks whether
    autograd is recording (a training step) or not (scoring, in train mode), and a gradient hook."""
    counts = {"backprops": 0, "grad_samples": 0, "scored": 0}

    def on_forward(module, inputs, output):
        if torch.is_grad_enabled() and module.training:  # start's check that the model fits runs in eval mode
            counts["grad_samples"] += inputs[0].shape[0]
        elif module.training:  # evaluation (and start's check that the model fits) run in eval mode
            counts["scored"] += inputs[0].shape[0]

    model.register_forward_hook(on_forward)
    model[1].weight.register_hook(lambda g: counts.__setitem__("backprops", counts["backprops"] + 1))
    return counts


@settings(max_examples=40, deadline=None)
@given(n=st.integers(4, 40), data=st.data(), E=st.integers(1, 3), beta=st.sampled_from([0.0, 1.0, 3.0]),
       drop_last=st.booleans(), seed=st.integers(0, 1000))
def test_selective_spends_exactly_n_e_backprops_of_b_samples(n, data, E, beta, drop_last, seed):
    B = data.draw(st.integers(1, n // 2), label="batch_size")
    window = data.draw(st.integers(1, 3 * n), label="window")
    cfg = cfg_for(method="selective", beta=beta, window=window, epochs=E, batch_size=B, drop_last=drop_last,
                  seed=seed)
    model = tiny_model()
    counts = count_samples(model)
    steps = []
    record = hb.train(cfg, data=tiny_data(n), model=model, on_step=lambda s, i, loss: steps.append(s))
    validate_record(json.loads(json.dumps(record)))
    N = record["n_batches"]
    assert counts["backprops"] == record["backprops"] == len(steps) == N * E
    assert counts["grad_samples"] == record["backprop_samples"] == N * E * B  # every back-prop has B samples
    assert counts["scored"] == record["forward_samples"] >= N * E * B  # a sample is scored before it is kept
    if beta == 0.0:  # keeps every sample: scoring is one pass ahead at most
        assert record["forward_samples"] < N * E * B + len(tiny_data(n).y_train) + B
    assert sum(record["batch_train_counts"]) == N * E and record["rounds"] == 0
    assert [h["backprops"] for h in record["history"]] == [N * e for e in range(E + 1)]
    assert 0 < record["forward_s"] <= record["history"][-1]["train_s"]  # scoring is timed inside training


@settings(max_examples=30, deadline=None)
@given(n=st.integers(4, 40), data=st.data(), E=st.integers(1, 4), delta=st.sampled_from([0.05, 0.3, 0.5, 1.0]),
       alpha=st.sampled_from([0.0, 1.0, 4.0]), seed=st.integers(0, 1000))
def test_proportional_spends_exactly_the_budget(n, data, E, delta, alpha, seed):
    B = data.draw(st.integers(1, n // 2), label="batch_size")
    cfg = cfg_for(select="proportional", alpha=alpha, delta=delta, epochs=E, batch_size=B, seed=seed)
    model = tiny_model()
    counts = count_samples(model)
    record = hb.train(cfg, data=tiny_data(n), model=model)
    N = record["n_batches"]
    assert counts["backprops"] == record["backprops"] == N * E
    assert record["rounds"] == budget.zeta(N, E, delta) and counts["scored"] == record["forward_samples"] == 0
    assert counts["grad_samples"] == record["backprop_samples"] == sum(
        c * len(b) for c, b in zip(record["batch_train_counts"], hb.make_partition(n, B, torch.Generator().manual_seed(seed))))


def test_selective_resumes_exactly_from_a_checkpoint(tmp_path):
    data = tiny_data(40)
    cfg = cfg_for(method="selective", beta=2.0, window=17, epochs=4, lr_schedule="cosine")
    whole_model, part_model = tiny_model(), tiny_model()
    whole = hb.train(cfg, data=data, model=whole_model)

    def stop_at_2(entry):
        if entry["epoch"] == 2:
            raise Stop

    ckpt = tmp_path / "run.pt"
    with pytest.raises(Stop):
        hb.train(cfg, data=data, model=tiny_model(), checkpoint=ckpt, on_epoch=stop_at_2)
    saved = torch.load(ckpt, weights_only=True)["selective"]
    assert len(saved["recent"]) == 17 and saved["forward_samples"] > 0  # the window and counters were saved
    resumed = hb.train(cfg, data=data, model=part_model, checkpoint=ckpt, resume=True)
    assert_same_weights(whole_model, part_model)
    assert without_timing(whole) == without_timing(resumed)


def test_a_checkpoint_without_the_selective_state_is_refused(tmp_path):
    data = tiny_data(40)
    cfg = cfg_for(method="selective", epochs=2)
    ckpt = tmp_path / "run.pt"
    hb.train(cfg, data=data, model=tiny_model(), checkpoint=ckpt)
    payload = torch.load(ckpt, weights_only=True)
    payload["state"]["step"] = payload["state"]["step"] // 2  # back to epoch 1 so that resuming has work left
    payload["state"]["history"] = payload["state"]["history"][:2]
    del payload["selective"]
    torch.save(payload, ckpt)
    with pytest.raises(checkpoint.BadCheckpoint, match="selective state"):
        hb.train(cfg, data=data, model=tiny_model(), checkpoint=ckpt, resume=True)


def test_a_selective_record_with_another_sample_count_is_refused():
    record = json.loads(json.dumps(hb.train(cfg_for(method="selective", epochs=1), data=tiny_data(20),
                                            model=tiny_model())))
    record["backprop_samples"] -= 1
    with pytest.raises(ValueError, match=r"N\*E\*B samples"):
        validate_record(record)


# ---------------------------------------------------------------- run identity

@pytest.mark.parametrize("kw, why", [
    (dict(method="hardbatch", select="hardest", alpha=1.0), "select='proportional' only"),
    (dict(method="minibatch", alpha=1.0), "'hardbatch' only"),
    (dict(method="hardbatch", beta=1.0), "'selective' only"),
    (dict(method="minibatch", window=10), "'selective' only"),
    (dict(method="selective", delta=0.2), "'hardbatch' only"),
    (dict(method="selective", select="hardest"), "'hardbatch' only"),
    (dict(method="selective", beta=-1.0), "beta must be"),
    (dict(method="selective", window=0), "window must be"),
    (dict(method="hardbatch", select="proportional", alpha=math.inf), "alpha must be"),
])
def test_a_knob_the_method_or_rule_ignores_is_refused(kw, why):
    with pytest.raises(ValueError, match=why):
        hb.RunConfig(**kw)


def test_strength_knobs_are_settings_only_where_read():
    prop = hb.RunConfig(select="proportional")
    assert prop.alpha == 1.0 and arms.settings(prop)["alpha"] == 1.0
    assert arms.run_key(prop) != arms.run_key(hb.RunConfig(select="proportional", alpha=2.0))
    sel = hb.RunConfig(method="selective")
    assert (sel.beta, sel.window) == (1.0, 1024) and {"beta", "window"} <= set(arms.settings(sel))
    for cfg in (hb.RunConfig(), hb.RunConfig(method="minibatch"), sel):
        assert "alpha" not in arms.settings(cfg)
    for cfg in (hb.RunConfig(), prop, hb.RunConfig(method="minibatch")):
        assert not {"beta", "window"} & set(arms.settings(cfg))
    # all of them share one block with Algorithm 1, so they are compared in one table
    assert arms.block(prop) == arms.block(sel) == arms.block(hb.RunConfig(method="minibatch"))
    assert arms.label(prop) == "proportional α=1 δ=0.2" and arms.label(sel) == "selective β=1"
    assert arms.record_name(sel).startswith("digits-small_cnn-selective-b1-s0-")
    assert arms.record_name(prop).startswith("digits-small_cnn-hardbatch-proportional-a1-d0.2-s0-")
    assert hb.RunConfig.from_dict(json.loads(json.dumps(sel.to_dict()))) == sel


def test_existing_record_names_do_not_move():
    """Records written before chapter 6 keep their names: new fields at their default change no hash."""
    files = sorted(Path(__file__).parents[1].glob("results/**/*.json"))
    checked = 0
    for f in files:
        try:
            record = hb.load_record(f)
        except (ValueError, AttributeError):
            continue
        if f.stem.startswith(arms.record_name(record["config"]).rsplit("-", 1)[0]):
            assert f.stem == arms.record_name(record["config"])
            checked += 1
    assert checked > 0
