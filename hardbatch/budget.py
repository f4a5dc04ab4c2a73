"""The back-prop budget: how Algorithm 2 spends exactly N·E back-props.

Algorithm 1 makes E passes of N back-props. Algorithm 2 makes one warm-up pass of N, then
rounds of k = max(1, round(δ·N)) back-props until the budget T = N·E is spent; the last round
takes only what is left. So the number of rounds is ζ = ceil((E-1)·N / k). That equals the
paper's ζ = (E-1)/δ only when δ·N is a whole number k and k divides (E-1)·N: with N = 10, E = 3,
δ = 0.25, k = round(2.5) = 2 and ζ = 10, while (E-1)/δ = 8. Chapter 4 teaches this.
"""
import math


def check_delta(delta):
    """δ must be a number (not a string, not a bool) in (0, 1]."""
    ok = isinstance(delta, (int, float)) and not isinstance(delta, bool) and 0 < delta <= 1
    if not ok:
        raise ValueError(f"delta must be a number in (0, 1], got {delta!r}")
    return float(delta)


def k_for(delta, n_batches):
    """k, the number of batches one round trains: δ·N rounded (Python's round: an exact half goes to
    the even neighbour, so δ=0.5 of N=41 gives 20), and never less than one."""
    return max(1, round(check_delta(delta) * n_batches))


def total_backprops(n_batches, epochs):
    """T = N·E, the budget of every method."""
    return n_batches * epochs


def round_sizes(n_batches, epochs, delta):
    """Sizes of Algorithm 2's rounds after the warm-up pass: [k, k, ..., r] summing to (E-1)·N."""
    k = k_for(delta, n_batches)
    left = (epochs - 1) * n_batches
    sizes = [k] * (left // k)
    if left % k:
        sizes.append(left % k)
    return sizes


def zeta(n_batches, epochs, delta):
    """ζ, the number of rounds: ceil((E-1)·N / k)."""
    return math.ceil((epochs - 1) * n_batches / k_for(delta, n_batches))


def plan(n_batches, epochs, delta):
    """A small dict a student can print: N, E, δ, k, ζ, the last round's size and T."""
    sizes = round_sizes(n_batches, epochs, delta)
    return {"N": n_batches, "E": epochs, "delta": delta, "k": k_for(delta, n_batches), "zeta": len(sizes),
            "last_round": sizes[-1] if sizes else 0, "T": total_backprops(n_batches, epochs),
            "paper_zeta": (epochs - 1) / delta}
