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


@pytest.mark.parametrize("curve, expected", [
    ([2.0, 1.0, 0.5, 0.4, 0.39, 0.39], True),  # the last 20 % (one step) drops 0.0 < 5 % of 1.61
    ([2.0, 1.5, 1.0, 0.8, 0.6, 0.4], False),  # still falling: 0.2 of a 1.6 drop is 12.5 %
    ([2.0, 1.0, 0.5, 0.45, 0.5, 0.6], True),  # noisy but not falling at the end
    ([2.0, 2.0, 2.0, 2.0], False),  # never dropped: nothing converged
    ([2.0, 1.0], False),  # too short to tell
    ([2.0, 1.0, float("nan"), 0.5], False),
])
def test_converged_on_hand_made_curves(curve, expected):
    assert metrics.converged(curve) is expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0, 5), min_size=3, max_size=30))
def test_converged_matches_its_definition(curve):
    E = len(curve) - 1
    m = max(1, math.ceil(0.2 * E))
    drop = curve[0] - min(curve)
    assert metrics.converged(curve) == (drop > 0 and curve[E - m] - min(curve[E - m:]) < 0.05 * drop)


def test_target_level_is_five_percent_of_the_drop_above_the_minimum():
    assert metrics.target_level([2.0, 1.0, 0.5, 0.4]) == pytest.approx(0.4 + 0.05 * 1.6)
    assert metrics.target_level([3.0, 1.0], tol=0.5) == pytest.approx(2.0)


@pytest.mark.parametrize("curve, target, higher, expected", [
    ([2.0, 1.0, 0.5, 0.4], 0.5, False, 2.0),  # reached exactly at 2
    ([2.0, 1.0, 0.5, 0.4], 0.75, False, 1.5),  # half-way between 1.0 and 0.5
    ([2.0, 1.0, 0.5, 0.4], 0.1, False, None),  # never reached
    ([10.0, 50.0, 80.0, 79.0], 65.0, True, 1.5),  # accuracy: half-way from 50 to 80
    ([0.3, 1.0, 0.2], 0.5, False, 0.0),  # already there at epoch 0
    ([1.0, 0.4, 1.0, 0.3], 0.7, False, 0.5),  # the first crossing, even if it leaves again
])
def test_epochs_to_target_interpolates_between_evaluations(curve, target, higher, expected):
    got = metrics.epochs_to_target(curve, target, higher_is_better=higher)
    assert got == (None if expected is None else pytest.approx(expected))


def test_time_to_target_on_a_seconds_axis_and_value_at():
    secs, loss = [0.0, 10.0, 30.0], [2.0, 1.0, 0.5]
    assert metrics.time_to_target(secs, loss, 0.75) == pytest.approx(20.0)
    assert metrics.value_at(secs, loss, 20.0) == pytest.approx(0.75)
    assert metrics.value_at(secs, loss, 30.0) == 0.5 and metrics.value_at(secs, loss, 0.0) == 2.0
    with pytest.raises(ValueError, match="outside"):
        metrics.value_at(secs, loss, 31.0)


def test_delta_e_both_conventions_on_the_papers_table_5():
    # The paper's Table 5, EfficientNet-B4 on STL-10: e = 43 for δ = 1, 34 for δ = 0.5 (printed ▲26.47)
    # and 47 for δ = 0.8 (printed ▼8.51): its convention divides by the method's own e.
    assert round(metrics.delta_e(43, 34, "paper"), 2) == 26.47
    assert round(metrics.delta_e(43, 47, "paper"), 2) == -8.51
    assert round(metrics.delta_e(43, 34, "ours"), 2) == 20.93  # ours divides by the baseline's
    assert metrics.delta_e(10, 7) == pytest.approx(30.0)  # default: ours; faster is positive
    assert metrics.delta_e(8, 10) == pytest.approx(-25.0)
    assert metrics.delta_e(None, 3) is None and metrics.delta_e(4, None) is None
    assert metrics.delta_e(0, 2) is None and metrics.delta_e(2, 0, "paper") is None
    with pytest.raises(ValueError, match="ours, paper"):
        metrics.delta_e(1, 1, "percent")


def test_paired_ci_uses_only_shared_seeds_and_their_differences():
    a, b = {0: 90.0, 1: 92.0, 2: 91.0, 3: 50.0}, {0: 89.0, 1: 90.0, 2: 91.0}
    mean, half, n = metrics.paired_ci(a, b)
    assert n == 3 and mean == pytest.approx(1.0)
    assert half == pytest.approx(metrics.mean_ci([1.0, 2.0, 0.0])[1])
    assert metrics.paired_ci({0: 1.0}, {1: 2.0}) is None
    assert metrics.excludes_zero((1.0, 0.5, 3)) and not metrics.excludes_zero((1.0, 1.5, 3))
    assert not metrics.excludes_zero((1.0, float("nan"), 1)) and not metrics.excludes_zero(None)
    assert not metrics.excludes_zero((1.0, 0.0, 2))  # two seeds with equal differences: no finding


def test_top1():
    logits = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert metrics.top1(logits, torch.tensor([1, 0, 0, 0])) == 75.0
