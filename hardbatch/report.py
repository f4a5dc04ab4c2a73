"""From run records to the paper's tables: group runs by arm, average over seeds, compare.

An *arm* is everything in a config but the seed. Rows follow the paper's Table 3: train and
test top-1 (mean ± 95 % CI over seeds) at the end of the budget, e and Δe. Here e is the
first equivalent epoch at which the arm's mean train loss reaches the baseline's converged
level (`metrics.convergence_epoch` of the baseline's mean curve), so every arm is measured
against the same target; the baseline's own e is its convergence epoch.
"""
from collections import defaultdict

from . import arms as arms_
from .metrics import convergence_epoch, delta_e, epochs_to_target, mean_ci, mean_curve


def arm_of(record):
    """The arm of a record (see arms.py)."""
    return arms_.arm(record["config"])


def arm_label(arm):
    """An arm's name, from its key or a record's config."""
    return arms_.label(dict(arm))


def group(records):
    """{arm: [records of that arm]}; diverged runs are kept apart and never averaged in."""
    arms = defaultdict(list)
    for r in records:
        if r.get("status", "complete") == "complete":
            arms[arm_of(r)].append(r)
    return dict(arms)


def summarize(records, tol=0.05):
    """One row per arm (baseline first), with the Table-3 columns and Δe against the baseline
    of the same dataset/model/epochs/lr/schedule."""
    arms = group(records)
    diverged = defaultdict(int)
    for r in records:
        if r.get("status", "complete") != "complete":
            diverged[arm_of(r)] += 1
    rows = []
    for arm, runs in arms.items():
        a = dict(arm)
        train_curve = mean_curve(runs, "train_loss")
        rows.append({**a, "arm": arm, "label": arm_label(arm), "seeds": len(runs), "diverged": diverged.get(arm, 0),
                     "train_acc": mean_ci([r["history"][-1]["train_acc"] for r in runs]),
                     "test_acc": mean_ci([r["history"][-1]["test_acc"] for r in runs]),
                     "train_loss": mean_ci([r["history"][-1]["train_loss"] for r in runs]),
                     "time_per_backprop_s": mean_ci([r["time_per_backprop_s"] for r in runs]),
                     "_curve": train_curve.tolist()})
    for row in rows:
        base = _baseline_for(row, rows)
        if base is None:
            row["e"] = row["delta_e"] = None
            continue
        curve = base["_curve"]
        e_base = convergence_epoch(curve, tol)
        target = curve[e_base]
        row["e"] = e_base if row is base else epochs_to_target(row["_curve"], target)
        row["delta_e"] = None if row is base else delta_e(e_base, row["e"])
    rows.sort(key=lambda r: (r["dataset"], r["model"], arms_.sort_key(dict(r["arm"]))))
    return rows


def _baseline_for(row, rows):
    base = arms_.baseline_arm(dict(row["arm"]))
    return next((cand for cand in rows if cand["arm"] == base), None)


def _pm(mc, digits=1):
    mean, half = mc
    return f"{mean:.{digits}f}" if half != half else f"{mean:.{digits}f} ± {half:.{digits}f}"


def to_markdown(rows):
    """The Table-3 shape as a Markdown table; a `diverged` column appears when any run diverged."""
    show_diverged = any(r["diverged"] for r in rows)
    extra = (" diverged |", "---|") if show_diverged else ("", "")
    lines = ["| data | model | arm | seeds | train top-1 (%) | test top-1 (%) | e | Δe (%) |" + extra[0],
             "|---|---|---|---|---|---|---|---|" + extra[1]]
    for r in rows:
        e = "not reached" if r["e"] is None and r["method"] != "minibatch" else r["e"]
        de = "-" if r["delta_e"] is None else f"{'▲' if r['delta_e'] >= 0 else '▼'} {abs(r['delta_e']):.2f}"
        lines.append(f"| {r['dataset']} | {r['model']} | {r['label']} | {r['seeds']} | {_pm(r['train_acc'])} "
                     f"| {_pm(r['test_acc'])} | {e} | {de} |" + (f" {r['diverged']} |" if show_diverged else ""))
    return "\n".join(lines)
