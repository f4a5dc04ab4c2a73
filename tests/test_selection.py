"""Selection rules (selection.py) against plain `sorted()` oracles, ties included.

Losses are drawn from a handful of values so that ties are the rule, not the exception:
ties must go to the lower batch index (a stable sort), as docs/method.md says. Rules receive
the Ledger; `select` also takes a plain tensor of losses.
"""
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hardbatch import selection
from hardbatch.ledger import Ledger

# Many duplicates: a few fixed values (with -0.0 == 0.0), plus any float32.
values = st.sampled_from([0.0, -0.0, 0.5, 1.0, 2.5, 1e-30, 7.0]) | st.floats(
    min_value=-1e6, max_value=1e6, allow_nan=False, width=32)


@st.composite
def losses_and_k(draw):
    losses = draw(st.lists(values, min_size=1, max_size=40))
    k = draw(st.integers(1, len(losses)))
    return torch.tensor(losses, dtype=torch.float32), k


def as_list(t):
    return [int(i) for i in t.tolist()]


@settings(max_examples=300, deadline=None)
@given(losses_and_k())
def test_hardest_is_the_sorted_oracle(lk):
    losses, k = lk
    loss = losses.tolist()  # the float32 values, as Python floats
    oracle = sorted(range(len(loss)), key=lambda i: (-loss[i], i))[:k]
    assert as_list(selection.hardest(Ledger.of(losses), k)) == oracle
    assert as_list(selection.select("hardest", losses, k)) == oracle


@settings(max_examples=300, deadline=None)
@given(losses_and_k())
def test_easiest_is_the_sorted_oracle(lk):
    losses, k = lk
    loss = losses.tolist()
    oracle = sorted(range(len(loss)), key=lambda i: (loss[i], i))[:k]
    assert as_list(selection.easiest(Ledger.of(losses), k)) == oracle
    assert as_list(selection.select("easiest", losses, k)) == oracle


@settings(max_examples=200, deadline=None)
@given(losses_and_k(), st.integers(0, 2**32))
def test_random_is_k_distinct_indices_deterministic_per_seed(lk, seed):
    losses, k = lk
    picked = as_list(selection.random(Ledger.of(losses), k, torch.Generator().manual_seed(seed)))
    assert len(picked) == k == len(set(picked))
    assert all(0 <= i < len(losses) for i in picked)
    again = as_list(selection.select("random", losses, k, torch.Generator().manual_seed(seed)))
    assert again == picked


def test_random_ignores_the_losses_and_is_roughly_uniform():
    gen = torch.Generator().manual_seed(0)
    N, k, draws = 10, 3, 3000
    losses = torch.arange(N, dtype=torch.float32)  # if it looked at the loss, 7, 8, 9 would win
    counts = Counter(i for _ in range(draws) for i in as_list(selection.random(Ledger.of(losses), k, gen)))
    expected = draws * k / N  # 900 per batch
    assert set(counts) == set(range(N))
    assert all(abs(c - expected) < 0.15 * expected for c in counts.values()), counts
    seeds = {tuple(as_list(selection.random(Ledger.of(losses), k, torch.Generator().manual_seed(s)))) for s in range(20)}
    assert len(seeds) > 1  # different seeds, different draws


def test_ties_go_to_the_lower_index_by_hand():
    losses = torch.tensor([1.0, 3.0, 3.0, 0.0, 3.0, 0.0])
    assert as_list(selection.hardest(Ledger.of(losses), 4)) == [1, 2, 4, 0]
    assert as_list(selection.easiest(Ledger.of(losses), 3)) == [3, 5, 0]


def test_unknown_strategy_names_the_allowed_ones():
    with pytest.raises(ValueError, match="hardest"):
        selection.select("hardst", torch.zeros(3), 1)
    assert set(selection.STRATEGIES) == {"hardest", "random", "easiest", "proportional"}


def test_a_rule_registered_at_run_time_is_accepted_and_trained(monkeypatch):
    """Chapter 3, exercise 4: RunConfig checks `select` against the rules as they are now, not at import."""
    from hardbatch import RunConfig, load_dataset, train

    monkeypatch.setattr(selection, "STRATEGIES", selection.STRATEGIES)  # restored below, whatever happens
    calls = []

    def last_k(ledger, k, generator=None):
        calls.append(k)
        return torch.arange(len(ledger) - k, len(ledger))  # the k batches with the highest index

    with pytest.raises(ValueError, match="allowed: hardest, random, easiest, proportional"):
        RunConfig(select="last_k")
    try:
        selection.register("last_k", last_k)
        cfg = RunConfig(method="hardbatch", select="last_k", delta=0.5, epochs=2, batch_size=256, device="cpu")
        record = train(cfg, data=load_dataset("digits"))
        n = record["n_batches"]
        assert calls and record["backprops"] == 2 * n
        k = record["k"]  # after the warm-up, only the last k batches are ever trained again
        assert record["batch_train_counts"] == [1] * (n - k) + [1 + n // k] * k, record["batch_train_counts"]
        with pytest.raises(ValueError, match="allowed: .*last_k"):
            RunConfig(select="nope")
    finally:
        selection.STRATEGIES.pop("last_k", None)
    with pytest.raises(ValueError, match="built-in"):
        selection.register("hardest", last_k)
    with pytest.raises(TypeError):
        selection.register("mine", 3)
