"""Metrics (metrics.py) on hand values and hand-made curves, and mean_ci against scipy."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from hardbatch import metrics


@pytest.mark.parametrize("values", [[1.0, 2.0, 3.0], [90.5, 91.25, 89.0, 92.0], [5, 5, 5], [0.1, -0.3, 0.7, 0.2, 0.0]])
def test_mean_ci_is_scipys_t_interval(values):
    mean, half = metrics.mean_ci(values)
    n = len(values)
    sem = stats.sem(values) if len(set(values)) > 1 else 0.0
    lo, hi = stats.t.interval(0.95, n - 1, loc=sum(values) / n, scale=sem) if sem else (mean, mean)
    assert math.isclose(mean, (lo + hi) / 2, rel_tol=1e-12, abs_tol=1e-12)
    assert math.isclose(half, (hi - lo) / 2, rel_tol=1e-9, abs_tol=1e-12)


def test_mean_ci_by_hand():
    # 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.302652729911275 -> half-width 4.3027 / sqrt(3)
    mean, half = metrics.mean_ci([1, 2, 3])
    assert mean == 2 and math.isclose(half, 4.302652729911275 / math.sqrt(3), rel_tol=1e-9)
    assert metrics.mean_ci([7.0])[0] == 7.0 and math.isnan(metrics.mean_ci([7.0])[1])
    assert math.isclose(metrics.mean_ci([1, 2, 3], confidence=0.9)[1],
                        stats.t.ppf(0.95, 2) / math.sqrt(3), rel_tol=1e-9)
    with pytest.raises(ValueError):
        metrics.mean_ci([])


@pytest.mark.parametrize("curve, tol, expected", [
    ([1.0, 0.5, 0.25, 0.1, 0.05, 0.04, 0.04], 0.05, 4),  # monotone: band = 0.04 + 0.05·0.96 = 0.088
    ([1.0, 0.5, 0.1, 0.05, 0.05, 0.5, 0.05], 0.05, 6),  # a late spike: it had not converged at 3
    ([1.0, 0.5, 0.1, 0.05, 0.05, 0.06, 0.05], 0.05, 3),  # a spike inside the band does not count
    ([1.0, 0.1, 0.1, 0.5], 0.05, 3),  # a spike at the very end: never converged, the last index
    ([0.7, 0.7, 0.7, 0.7], 0.05, 0),  # flat: converged from the start
    ([2.0, 1.0, 0.0], 0.05, 2),  # reaches its minimum only at the end
    ([2.0, 1.0, 0.0], 0.5, 1),  # a wider band: 1.0 <= 0 + 0.5·2
    ([3.0], 0.05, 0),
])
def test_convergence_epoch_on_hand_made_curves(curve, tol, expected):
    assert metrics.convergence_epoch(curve, tol) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.0]) | st.floats(0, 5), min_size=1, max_size=15),
       st.sampled_from([0.0, 0.05, 0.2]))
def test_convergence_epoch_matches_its_definition(curve, tol):
    # The definition, brute force: the first e with every later point within the band.
    band = min(curve) + tol * (curve[0] - min(curve))
    ok = [e for e in range(len(curve)) if all(v <= band for v in curve[e:])]
    assert metrics.convergence_epoch(curve, tol) == (ok[0] if ok else len(curve) - 1)


@pytest.mark.parametrize("curve, target, higher, expected", [
    ([2.0, 1.0, 0.5, 0.4], 0.5, False, 2),  # loss reaches 0.5 exactly at 2 (<=)
    ([2.0, 1.0, 0.5, 0.4], 0.1, False, None),  # never reaches
    ([10.0, 50.0, 80.0, 79.0, 85.0], 80.0, True, 2),  # accuracy reaches 80 at 2 (>=)
    ([10.0, 50.0, 80.0], 90.0, True, None),
    ([0.3, 1.0, 0.2], 0.5, False, 0),  # already there at epoch 0
    ([1.0, 0.4, 1.0, 0.3], 0.45, False, 1),  # first time reached, even if it leaves again
])
def test_epochs_to_target_on_hand_made_curves(curve, target, higher, expected):
    assert metrics.epochs_to_target(curve, target, higher_is_better=higher) == expected


def test_delta_e_sign_and_value():
    assert metrics.delta_e(10, 7) == pytest.approx(30.0)  # method faster: positive (the paper's ▲)
    assert metrics.delta_e(8, 10) == pytest.approx(-25.0)  # method slower: negative
    assert metrics.delta_e(5, 5) == 0.0
    assert metrics.delta_e(None, 3) is None and metrics.delta_e(4, None) is None
    assert metrics.delta_e(0, 2) is None  # the baseline needed no epoch: no percentage


def test_top1_and_mean_curve():
    logits = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert metrics.top1(logits, torch.tensor([1, 0, 0, 0])) == 75.0
    runs = [{"history": [{"x": 1.0}, {"x": 3.0}]}, {"history": [{"x": 2.0}, {"x": 5.0}]}]
    assert metrics.mean_curve(runs, "x").tolist() == [1.5, 4.0]
