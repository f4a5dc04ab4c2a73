"""Metrics that turn run records into honest numbers (docs/method.md, "Measuring").

- `top1`: accuracy in percent.
- `mean_ci`: mean ± half-width of the 95 % confidence interval over seeds (Student's t).
- `paired_ci`: the same for per-seed differences a_s − b_s of two arms that share seed s (and so
  their initial weights, partition and warm-up): the comparison tables make.
- `target_level`: a curve's converged level, min + tol·(start − min): the target every arm of a
  block must reach (the baseline's, seed by seed).
- `converged`: a run has converged when the last `tail` of its equivalent epochs lowers its
  train loss by less than `tol` of its total drop. A run that has not gets no e in any table.
- `time_to_target`: when a curve first reaches a target, interpolated linearly between evaluation
  points, so e is not quantised to whole epochs; on any x axis (epochs, or training seconds).
- `value_at`: a curve's value at any x (linear interpolation), e.g. test top-1 at equal time.
- `delta_e`: Δe (%) in two conventions, positive when the method is faster: ours divides by the
  baseline's e, (e₁ − e_δ)/e₁; the paper's (its Table 5) divides by the method's, (e₁ − e_δ)/e_δ.
"""
import math

CONVENTIONS = ("ours", "paper")


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


def paired_ci(a, b, confidence=0.95):
    """(mean, half-width, n) of the differences a[s] − b[s] over the seeds s both dicts hold; None if none."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    return (*mean_ci([a[s] - b[s] for s in seeds], confidence), len(seeds))


MIN_SEEDS = 3  # fewer paired seeds than this make no finding, whatever their interval


def excludes_zero(ci):
    """True when a (mean, half-width[, n]) interval lies wholly above or below 0 (a finding, not noise) and, when
    it says how many seeds it rests on, they are at least MIN_SEEDS."""
    enough = len(ci) < 3 or ci[2] >= MIN_SEEDS if ci is not None else False
    return enough and math.isfinite(ci[1]) and abs(ci[0]) > ci[1]


def target_level(curve, tol=0.05):
    """A loss curve's converged level: its minimum plus `tol` of its total drop."""
    curve = [float(v) for v in curve]
    lo = min(curve)
    return lo + tol * (curve[0] - lo)


def converged(curve, tol=0.05, tail=0.2):
    """True when the last `tail` of the epochs (at least one) lowers the loss by less than `tol` of the
    total drop (curve[0] − min). A curve still falling at the end has not converged."""
    curve = [float(v) for v in curve]
    if len(curve) < 3 or not all(math.isfinite(v) for v in curve):
        return False
    start = len(curve) - 1 - max(1, math.ceil(tail * (len(curve) - 1)))
    drop = curve[0] - min(curve)
    return drop > 0 and curve[start] - min(curve[start:]) < tol * drop


def time_to_target(xs, curve, target, higher_is_better=False):
    """The first x at which `curve` reaches `target` (<= for losses, >= for accuracies), interpolated
    linearly between the two evaluation points around the crossing; None if it never does."""
    reached = (lambda v: v >= target) if higher_is_better else (lambda v: v <= target)
    for i, (x, v) in enumerate(zip(xs, curve)):
        if reached(v):
            if i == 0:
                return float(x)
            x0, v0 = xs[i - 1], curve[i - 1]
            return float(x0 + (x - x0) * (v0 - target) / (v0 - v))
    return None


def epochs_to_target(curve, target, higher_is_better=False):
    """`time_to_target` on the equivalent-epoch axis 0, 1, ..., E."""
    return time_to_target(range(len(curve)), curve, target, higher_is_better)


def value_at(xs, curve, x):
    """The curve's value at x, interpolated linearly (xs increasing; x within [xs[0], xs[-1]])."""
    if not xs[0] <= x <= xs[-1]:
        raise ValueError(f"x = {x} is outside the curve's range [{xs[0]}, {xs[-1]}]")
    for i in range(1, len(xs)):
        if x <= xs[i]:
            span = xs[i] - xs[i - 1]
            w = 0.0 if span == 0 else (x - xs[i - 1]) / span
            return float(curve[i - 1] + w * (curve[i] - curve[i - 1]))
    return float(curve[-1])


def delta_e(e_baseline, e_method, convention="ours"):
    """Δe in percent, positive when the method is faster; None when either e is missing or is 0.

    ours: (e₁ − e_δ)/e₁, the share of the baseline's epochs saved. paper: (e₁ − e_δ)/e_δ, the paper's Table 5
    convention (EfficientNet-B4 on STL-10: 43 → 34 gives 26.47 %)."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown Δe convention {convention!r}; allowed: {', '.join(CONVENTIONS)}")
    if e_baseline is None or e_method is None:
        return None
    divisor = e_baseline if convention == "ours" else e_method
    return None if divisor == 0 else 100.0 * (e_baseline - e_method) / divisor


# ---------------------------------------------------------------- tests of a pre-registered study (study.py)

def paired_test(diffs, confidence=0.95):
    """A paired t-test of per-seed differences: {"mean", "half" (of the CI), "p" (two-sided, H0: mean 0),
    "sd", "n"}. p is nan with fewer than 2 seeds; with sd = 0 it is 1 for a zero mean, else 0."""
    from scipy.stats import t

    diffs = [float(d) for d in diffs]
    n = len(diffs)
    mean, half = mean_ci(diffs, confidence)
    if n < 2:
        return {"mean": mean, "half": half, "p": math.nan, "sd": math.nan, "n": n}
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    if sd == 0:
        p = 1.0 if mean == 0 else 0.0
    else:
        p = float(2 * t.sf(abs(mean) / (sd / math.sqrt(n)), n - 1))
    return {"mean": mean, "half": half, "p": p, "sd": sd, "n": n}


def holm(pvalues):
    """Holm's step-down adjustment: adjusted p-values in the input order; reject where adjusted p ≤ α keeps
    the family-wise error rate at α for any dependence between the tests. nan stays nan (a test not run)."""
    order = sorted((p, i) for i, p in enumerate(pvalues) if not math.isnan(p))
    m, out, running = len(order), [math.nan] * len(pvalues), 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))  # adjusted p never falls as p rises
        out[i] = running
    return out


def mde(sd, n, alpha=0.05, power=0.8):
    """The minimum detectable effect of a paired two-sided t-test with n seeds: (t_{1−α/2} + t_{power}) · sd/√n,
    n − 1 degrees of freedom (the usual approximation). nan when n < 2."""
    from scipy.stats import t

    if n < 2 or not math.isfinite(sd):
        return math.nan
    return float(t.ppf(1 - alpha / 2, n - 1) + t.ppf(power, n - 1)) * sd / math.sqrt(n)


def area_log_loss(curve):
    """The area under the natural log of a loss curve over equivalent epochs 0…E (trapezoids), divided by E:
    one number for how low the loss was throughout, not only at the end."""
    logs = [math.log(max(float(v), 1e-12)) for v in curve]
    if len(logs) < 2:
        raise ValueError("area_log_loss needs a curve of at least two points")
    return sum((a + b) / 2 for a, b in zip(logs, logs[1:])) / (len(logs) - 1)
