"""The back-prop budget (budget.py) against docs/method.md, by property tests over N, E and δ.

The oracles here use integer arithmetic (ceil by floor division of negatives), never the
module's own formulas, so a slip in budget.py shows up as a counter-example.
"""
import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardbatch import budget

Ns = st.integers(1, 400)
Es = st.integers(1, 30)
deltas = st.floats(min_value=1e-6, max_value=1.0, allow_nan=False, exclude_min=False)


@settings(max_examples=300, deadline=None)
@given(Ns, deltas)
def test_k_is_the_nearest_integer_to_delta_n_and_at_least_one(N, delta):
    k = budget.k_for(delta, N)
    assert isinstance(k, int)
    assert 1 <= k <= N
    if delta * N >= 0.5:  # otherwise max(1, ·) lifts it to 1
        assert abs(Fraction(k) - Fraction(delta) * N) <= Fraction(1, 2) + Fraction(1, 10**9)
    assert budget.k_for(1.0, N) == N


@settings(max_examples=300, deadline=None)
@given(Ns, Es, deltas)
def test_round_sizes_spend_exactly_the_budget(N, E, delta):
    k = budget.k_for(delta, N)
    sizes = budget.round_sizes(N, E, delta)
    assert N + sum(sizes) == N * E == budget.total_backprops(N, E)  # warm-up pass + rounds = T
    assert all(s == k for s in sizes[:-1])
    if sizes:
        assert 1 <= sizes[-1] <= k  # the last round takes what is left: r < k, or a full k
    zeta = -(-((E - 1) * N) // k)  # ceil((E-1)N / k) in integers
    assert budget.zeta(N, E, delta) == len(sizes) == zeta
    p = budget.plan(N, E, delta)
    assert (p["N"], p["E"], p["k"], p["zeta"], p["T"]) == (N, E, k, zeta, N * E)
    assert p["last_round"] == (sizes[-1] if sizes else 0)


@settings(max_examples=300, deadline=None)
@given(st.data(), Ns, Es)
def test_zeta_is_the_papers_when_k_divides(data, N, E):
    # The paper's ζ = (E-1)/δ holds when δN is a whole number k and k divides (E-1)N.
    k = data.draw(st.integers(1, N))
    delta = k / N
    assert budget.k_for(delta, N) == k
    if ((E - 1) * N) % k == 0:
        assert budget.zeta(N, E, delta) == round((E - 1) * N / k)
        assert math.isclose(budget.zeta(N, E, delta), (E - 1) / delta, rel_tol=1e-9, abs_tol=1e-9)
        assert budget.round_sizes(N, E, delta) == [k] * budget.zeta(N, E, delta)
    else:
        assert budget.round_sizes(N, E, delta)[-1] == ((E - 1) * N) % k


def test_zeta_differs_from_the_papers_when_delta_n_is_not_whole():
    # N = 10, E = 3, δ = 0.25: δN = 2.5 rounds to k = 2 (to even), so ζ = ceil(20 / 2) = 10, not (E-1)/δ = 8.
    assert budget.k_for(0.25, 10) == 2
    assert budget.zeta(10, 3, 0.25) == 10 != (3 - 1) / 0.25 == 8
    assert budget.plan(10, 3, 0.25)["paper_zeta"] == 8.0


def test_hand_values():
    # N = 41 digits batches, E = 12, δ = 0.2: k = 8, (E-1)N = 451 = 56·8 + 3.
    assert budget.k_for(0.2, 41) == 8
    assert budget.round_sizes(41, 12, 0.2) == [8] * 56 + [3]
    assert budget.zeta(41, 12, 0.2) == 57
    assert budget.plan(10, 5, 0.5) == {"N": 10, "E": 5, "delta": 0.5, "k": 5, "zeta": 8, "last_round": 5,
                                       "T": 50, "paper_zeta": 8.0}
    assert budget.k_for(0.01, 10) == 1  # never zero batches a round
    assert budget.round_sizes(7, 1, 0.5) == [] and budget.zeta(7, 1, 0.5) == 0  # E = 1: the warm-up only


@pytest.mark.parametrize("bad", [0, -0.1, 1.0001, float("nan"), float("inf"), "half", "0.5", None, True])
def test_bad_delta_is_refused_with_its_name(bad):
    with pytest.raises(ValueError, match="delta"):
        budget.k_for(bad, 10)
