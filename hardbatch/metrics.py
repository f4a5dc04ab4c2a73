"""Metrics that turn run records into the paper's numbers.

- `top1`: accuracy in percent.
- `mean_ci`: mean ± half-width of the 95 % confidence interval over seeds (Student's t).
- `convergence_epoch` (the paper's e): the first equivalent epoch from which a curve stays
  within `tol` of its total drop, i.e. loss[e'] <= min + tol·(loss[0] − min) for every e' >= e.
  Deterministic, needs no smoothing, and a late spike pushes e back (it did not converge).
- `epochs_to_target`: the first equivalent epoch at which a curve reaches a target value.
- `delta_e`: Δe (%) = (e_baseline − e_method) / e_baseline · 100, positive when the method is faster.
"""
import math

import torch


def top1(logits, labels):
    """Percentage of rows whose arg-max is the label. logits (B, C), labels (B,)."""
    return 100.0 * (logits.argmax(1) == labels).float().mean().item()


def mean_ci(values, confidence=0.95):
    """(mean, half-width) of the t-distribution confidence interval; half-width is nan for one value."""
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        raise ValueError("mean_ci needs at least one value")
    mean = sum(values) / n
    if n == 1:
        return mean, math.nan
    from scipy.stats import t

    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, float(t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)


def convergence_epoch(losses, tol=0.05):
    """Index of the first point after which the curve stays within tol of its total drop (see above).

    A curve that ends outside the band never converged; it gets the last index, len(losses) - 1."""
    losses = [float(v) for v in losses]
    if not losses:
        raise ValueError("convergence_epoch needs a non-empty curve")
    lo = min(losses)
    band = lo + tol * (losses[0] - lo)
    e = len(losses) - 1
    while e > 0 and losses[e] <= band and losses[e - 1] <= band:  # a spike at the very end counts too
        e -= 1
    return e


def epochs_to_target(curve, target, higher_is_better=False):
    """First index at which curve reaches target (<= for losses, >= for accuracies); None if never."""
    for e, v in enumerate(curve):
        if (v >= target) if higher_is_better else (v <= target):
            return e
    return None


def delta_e(e_baseline, e_method):
    """Δe in percent; None when either epoch is missing or the baseline needed none."""
    if e_baseline is None or e_method is None or e_baseline == 0:
        return None
    return 100.0 * (e_baseline - e_method) / e_baseline


def mean_curve(records, key):
    """(E+1,) mean over runs of one history key, as a tensor."""
    return torch.tensor([[h[key] for h in r["history"]] for r in records], dtype=torch.float64).mean(0)
