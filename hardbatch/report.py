"""From run records to tables a reader can trust: arms over seeds, compared seed by seed.

Runs are grouped into blocks (`arms.block`: the same data, model and settings) and, within a block,
into arms (`arms.arm`: the same settings but the seed). Arms that share a seed share their initial
weights, partition and warm-up pass, so every comparison is **paired**: per-seed differences, then
their mean ± 95 % t-interval (`metrics.paired_ci`). An interval that excludes 0 is a finding (bold in
tables); one that does not is noise, and the verdict says so in words.

Each row says: how many seeds, how many converged (`metrics.converged` on the run's own train loss),
final test top-1 and its paired differences to Algorithm 1 and to the random control at the same δ,
e (the interpolated equivalent epoch at which the train loss first reaches the baseline's converged
level, seed by seed; printed only when every run converged), Δe in both conventions (ours and the
paper's), and the clock view: time per back-prop on the wall clock and on the process's CPU clock,
the wall time per back-prop against Algorithm 1's, training seconds to the target, and test top-1
against Algorithm 1's at equal training seconds. Diverged runs are
counted, never averaged in. docs/method.md states every definition.
"""
import math
from collections import Counter, defaultdict

from . import arms, methods
from .metrics import (MIN_SEEDS, converged, delta_e, excludes_zero, holm, mean_ci, paired_ci, target_level,
                      time_to_target, value_at)
from .records import read_records

TOL, TAIL = 0.05, 0.2  # converged: the last 20 % of the epochs lower the train loss by < 5 % of its total drop


def arm_of(record):
    """The arm of a record (see arms.py)."""
    return arms.arm(record["config"])


def arm_label(arm):
    """An arm's name, from its key or a record's config."""
    return arms.label(dict(arm))


def group(records):
    """{arm: [complete records of that arm]}; diverged runs are kept apart and never averaged in."""
    out = defaultdict(list)
    for r in records:
        if r.get("status", "complete") == "complete":
            out[arm_of(r)].append(r)
    return dict(out)


def recipe(config):
    """'paper' (constant lr, no augmentation: our reading of the paper), 'tuned' (cosine + augmentation), or what it is."""
    sched, aug = config.get("lr_schedule", "constant"), bool(config.get("augment", False))
    names = {("constant", False): "paper", ("cosine", True): "tuned"}
    return names.get((sched, aug), f"{sched}{' + augment' if aug else ''}")


def setting_label(config):
    """What the runs of one block share, in words: 'paper, E=15, 14², B=128, lr=0.005, train loss on 10000 images'."""
    c = {**arms.DEFAULTS, **config}
    size = f"{c['image_size']}²" if c["image_size"] else "native size"
    extra = "".join(f", {name} {c[key]:g}" for key, name, usual in (("momentum", "momentum", 0.9),
                    ("weight_decay", "weight decay", 0.0)) if c[key] != usual)
    extra += ", drop last" if c["drop_last"] else ""
    extra += f", {c['subset']} training images" if c["subset"] else ""
    extra += f", train loss on {c['train_eval_subset']} images" if c["train_eval_subset"] else ""
    extra += f", tested on {c['test_subset']} images" if c["test_subset"] else ""
    return f"{recipe(c)}, E={c['epochs']}, {size}, B={c['batch_size']}, lr={c['lr']:g}{extra}"


def blocks(records):
    """{block: records}: the runs that one table block, one figure and one set of comparisons share."""
    out = defaultdict(list)
    for r in records:
        out[arms.block(r["config"])].append(r)
    return dict(sorted(out.items(), key=lambda kv: (kv[1][0]["config"]["dataset"], kv[1][0]["config"]["model"],
                                                    setting_label(kv[1][0]["config"]))))


# ---------------------------------------------------------------- per run, then per arm

def _curve(r, key):
    return [h[key] for h in r["history"]]


def _per_seed(runs, targets, tol, tail):
    """Per-seed numbers of one arm: {name: {seed: value}} (a seed is absent where a value does not exist)."""
    out = defaultdict(dict)
    for s, r in runs.items():
        loss, secs = _curve(r, "train_loss"), _curve(r, "train_s")
        out["acc"][s] = r["history"][-1]["test_acc"]
        out["train_acc"][s] = r["history"][-1]["train_acc"]
        out["dt"][s] = r["time_per_backprop_s"]
        if "cpu_per_backprop_s" in r:  # records from before 0.1.0's CPU clock have none
            out["cpu"][s] = r["cpu_per_backprop_s"]
        out["total_s"][s] = secs[-1]
        if converged(loss, tol, tail):
            out["converged"][s] = True
            if s in targets:
                for name, xs in (("e", range(len(loss))), ("secs", secs)):
                    value = time_to_target(xs, loss, targets[s])
                    if value is not None:
                        out[name][s] = value
    return out


def _all_or_none(values, n):
    """mean ± CI when every one of the n seeds has a value, else None."""
    return mean_ci(list(values.values())) if values and len(values) == n else None


def _at_equal_time(run, base):
    """Test top-1 of run minus base's, both read at the training seconds the shorter of the two spent."""
    t = min(run["history"][-1]["train_s"], base["history"][-1]["train_s"])
    return (value_at(_curve(run, "train_s"), _curve(run, "test_acc"), t)
            - value_at(_curve(base, "train_s"), _curve(base, "test_acc"), t))


def _smallest_delta(by_arm):
    """The smallest δ of the block's `hardest` arms (None without one): per-sample arms (selective, no δ) are
    paired with the batch-level hardest and random arms at this δ."""
    deltas = [dict(a)["delta"] for a in by_arm if dict(a)["method"] == "hardbatch" and dict(a)["select"] == "hardest"]
    return min(deltas) if deltas else None


def _block_rows(recs, tol, tail):
    by_arm, diverged = defaultdict(dict), Counter()
    for r in recs:
        if r.get("status", "complete") == "complete":
            by_arm[arm_of(r)][r["config"]["seed"]] = r
        else:
            diverged[arm_of(r)] += 1
    base_arm = arms.baseline_arm(recs[0]["config"])
    base_runs = by_arm.get(base_arm, {})
    targets = {s: target_level(_curve(r, "train_loss"), tol) for s, r in base_runs.items()
               if converged(_curve(r, "train_loss"), tol, tail)}
    stats = {arm: _per_seed(runs, targets, tol, tail) for arm, runs in by_arm.items()}
    base = stats.get(base_arm)
    rows = []
    for arm in sorted(set(by_arm) | set(diverged), key=lambda a: arms.sort_key(dict(a))):
        runs, st, a = by_arm.get(arm, {}), stats.get(arm, {}), dict(arm)
        n = len(runs)
        at = methods.get(a["method"]).paired_delta(a, _smallest_delta(by_arm))  # the δ to pair with
        control = arms.arm({**a, "method": "hardbatch", "select": "random", "delta": at}) if at else None
        ctrl = stats.get(control) if control != arm else None
        hardest = arms.arm({**a, "method": "hardbatch", "select": "hardest", "delta": at}) if at else None
        hard = stats.get(hardest) if hardest != arm else None
        is_base = arm == base_arm
        row = {"dataset": a["dataset"], "model": a["model"], "setting": setting_label(a), "block": arms.block(a),
               "arm": arm, "label": arm_label(arm), "method": a["method"], "select": a.get("select"),
               "delta": a.get("delta"), "baseline": is_base, "seeds": n, "diverged": diverged[arm],
               "converged": len(st.get("converged", {})),
               "test_acc": mean_ci(st["acc"].values()) if n else None,
               "train_acc": mean_ci(st["train_acc"].values()) if n else None,
               "vs_baseline": None if is_base or not base or not n else paired_ci(st["acc"], base["acc"]),
               "vs_random": None if not ctrl or not n else paired_ci(st["acc"], ctrl["acc"]),
               "vs_hardest": None if not hard or not n or a.get("select") in ("random", "easiest")
               else paired_ci(st["acc"], hard["acc"]), "paired_delta": at,
               "e": _all_or_none(st.get("e"), n), "secs_to_target": _all_or_none(st.get("secs"), n),
               "wall_ms": _all_or_none({s: v * 1e3 for s, v in st.get("dt", {}).items()}, n),
               "cpu_ms": _all_or_none({s: v * 1e3 for s, v in st.get("cpu", {}).items()}, n),
               "de_ours": None, "de_paper": None, "time_ratio": None, "equal_time_vs_baseline": None}
        if n and len(st.get("converged", {})) < n:
            row["e_note"] = f"not converged ({len(st.get('converged', {}))}/{n})"
        elif n and not targets:
            row["e_note"] = "baseline not converged"
        elif n and row["e"] is None:
            row["e_note"] = "target not reached"
        if base and not is_base and n:
            if row["e"] is not None and base.get("e") and len(base["e"]) == len(base_runs):
                for conv in ("ours", "paper"):
                    per = {s: delta_e(base["e"][s], st["e"][s], conv) for s in st["e"] if s in base["e"]}
                    per = {s: v for s, v in per.items() if v is not None}
                    row[f"de_{conv}"] = mean_ci(per.values()) + (len(per),) if len(per) == n else None
            ratios = {s: st["dt"][s] / base["dt"][s] for s in st["dt"] if s in base["dt"] and base["dt"][s] > 0}
            row["time_ratio"] = mean_ci(ratios.values()) + (len(ratios),) if ratios else None
            equal = {s: _at_equal_time(runs[s], base_runs[s]) for s in runs if s in base_runs}
            row["equal_time_vs_baseline"] = mean_ci(equal.values()) + (len(equal),) if equal else None
        rows.append(row)
    return rows


def summarize(records, tol=TOL, tail=TAIL):
    """One row per arm of every block (baseline first), with the columns described at the top."""
    return [row for recs in blocks(records).values() for row in _block_rows(recs, tol, tail)]


# ---------------------------------------------------------------- words and Markdown

def _pm(mc, digits=1, sign=False):
    """'mean ± half' ('mean (1 seed)' without an interval); bold when a paired difference excludes 0."""
    if mc is None:
        return "-"
    mean, half = mc[0], mc[1]
    text = f"{mean:+.{digits}f}" if sign else f"{mean:.{digits}f}"
    if not math.isfinite(half):
        return f"{text} (1 seed)"
    text += f" ± {half:.{digits}f}"
    return f"**{text}**" if sign and excludes_zero(mc) else text


COLUMNS = ("arm", "seeds", "converged", "test top-1 (%)", "− Algorithm 1 (points)", "− random, same δ (points)",
           "− hardest, same δ (points)",
           "e (epochs)", "Δe ours (%)", "Δe paper's (%)", "wall ms / back-prop", "CPU ms / back-prop",
           "Δt ÷ Algorithm 1's", "training s to target",
           "top-1 − Algorithm 1's at equal training s")


def by_block(rows):
    """{block key (arms.block): its rows}, in the order the rows come. Rows are grouped by the key, never by the
    words of their heading: two settings that read the same stay two tables."""
    out = {}
    for r in rows:
        out.setdefault(r["block"], []).append(r)
    return out


def to_markdown(rows):
    """One Markdown table per block, headed by what the block's runs share."""
    out = []
    for rs in by_block(rows).values():
        lines = [f"**{rs[0]['model']} on {rs[0]['dataset']}** ({rs[0]['setting']})", "",
                 "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        for r in rs:
            e = _pm(r["e"], 2) if r["e"] is not None else r.get("e_note", "-")
            ratio = "-" if r["time_ratio"] is None else f"{_pm(r['time_ratio'], 2)}×"
            name = f"{r['label']} (baseline)" if r["baseline"] else r["label"]
            diverged = f" (+{r['diverged']} diverged)" if r["diverged"] else ""
            cells = [name, f"{r['seeds']}{diverged}", f"{r['converged']}/{r['seeds']}", _pm(r["test_acc"]),
                     _pm(r["vs_baseline"], sign=True), _pm(r["vs_random"], sign=True),
                     _pm(r["vs_hardest"], sign=True), e,
                     _pm(r["de_ours"], 1, sign=True), _pm(r["de_paper"], 1, sign=True), _pm(r["wall_ms"], 2),
                     _pm(r["cpu_ms"], 2), ratio,
                     _pm(r["secs_to_target"], 0 if r["secs_to_target"] and r["secs_to_target"][0] >= 10 else 2), _pm(r["equal_time_vs_baseline"], sign=True)]
            lines.append("| " + " | ".join(cells) + " |")
        out.append("\n".join(lines))
    legend = ("Means ± 95 % t-intervals over seeds; differences are paired by seed (arms with one seed share "
              "weights, partition and warm-up); **bold**: the interval excludes 0. e: the equivalent epoch "
              "(interpolated) at which the train loss first reaches Algorithm 1's converged level of the same "
              "seed, shown only when every run converged (the last 20 % of epochs lowered its train loss by "
              "< 5 % of its total drop). Δe > 0: faster than Algorithm 1; ours = (e₁ − e)/e₁, the paper's = "
              "(e₁ − e)/e. Time per back-prop: training seconds (evaluation excluded; for selective including "
              "its forward-only scoring) per back-prop, on the wall clock and on this process's CPU clock (which "
              "other programs on the machine barely move); Δt ÷ Algorithm 1's: the wall time per back-prop over "
              "Algorithm 1's of the same seed; training s to target: wall seconds until the train loss first "
              "reaches the target of e; top-1 − Algorithm 1's at equal training s: the two test top-1 of a seed, "
              "both read at the training seconds the shorter run of the pair spent. Selective-Backprop has no δ: "
              "it is paired with hardest and random at the block's smallest hardest δ.")
    return "\n\n".join(out + [legend])


def _finding(ci, unit="points", up="higher", down="lower"):
    if ci is None:
        return None
    if not math.isfinite(ci[1]) or ci[2] < MIN_SEEDS:
        return f"{ci[0]:+.1f} {unit} over {ci[2]} paired seed(s): too few for a conclusion (at least {MIN_SEEDS})"
    words = f"{up if ci[0] > 0 else down}: the 95 % interval excludes 0" if excludes_zero(ci) \
        else "not distinguishable from 0"
    return f"{ci[0]:+.1f} ± {ci[1]:.1f} {unit} over {ci[2]} paired seeds, {words}"


def p_value(ci):
    """The two-sided p-value of a paired t-interval (mean, half-width at 95 %, n): nan below MIN_SEEDS."""
    from scipy.stats import t

    mean, half, n = ci
    if n < MIN_SEEDS or not math.isfinite(half):
        return math.nan
    if half == 0:
        return 1.0 if mean == 0 else 0.0
    se = half / t.ppf(0.975, n - 1)
    return float(2 * t.sf(abs(mean) / se, n - 1))


def verdict(rows):
    """Every comparison of every block in plain words, one line each; then how many intervals exclude 0, how
    many that would be by chance, and which survive Holm's correction for all of them (docs/method.md)."""
    out, tests, block = [], [], None
    for r in rows:
        if r["block"] != block:
            block = r["block"]
            out.append(f"{r['model']} on {r['dataset']} ({r['setting']}):")
        if r["baseline"]:
            continue
        for key, text in (("vs_baseline", f"{r['label']} − Algorithm 1, final test top-1"),
                          ("vs_random", f"{r['select'] or r['label']} − random at δ={r['paired_delta'] or 0:g}, final test top-1"),
                          ("vs_hardest", f"{r['select'] or r['label']} − hardest at δ={r['paired_delta'] or 0:g}, final test top-1")):
            if r[key] is not None:
                out.append(f"  {text}: {_finding(r[key])}.")
                tests.append((text, r[key]))
        if r["de_ours"] is not None:
            text = f"{r['label']}, epochs to Algorithm 1's converged train loss, Δe (ours)"
            out.append(f"  {text}: {_finding(r['de_ours'], '%', up='faster', down='slower')}.")
            tests.append((text, r["de_ours"]))
        elif r.get("e_note"):
            out.append(f"  {r['label']}: no e ({r['e_note']}).")
    if tests:
        out.append(multiplicity(tests))
    return out


def multiplicity(tests):
    """One sentence on a family of (name, ci) comparisons: how many intervals exclude 0, how many would by
    chance alone, and which remain after Holm's step-down correction at a family-wise 5 %."""
    m = len(tests)
    raw = [name for name, ci in tests if excludes_zero(ci)]
    adjusted = holm([p_value(ci) for _, ci in tests])
    kept = [name for (name, _), p in zip(tests, adjusted) if p <= 0.05]
    chance = f"{m} comparisons at 95 %: {len(raw)} interval(s) exclude 0, where about {m / 20:.1f} would by chance alone"
    if not raw:
        return chance + "; no difference is detected."
    if not kept:
        return chance + f"; after Holm's correction for the {m} comparisons none remains, so none is a finding."
    return chance + f"; after Holm's correction for the {m} comparisons {len(kept)} remain(s): " + "; ".join(kept) + "."


def compare_markdown(folder):
    """The README's `make compare` table, computed from a folder of its records: the table, the verdict's
    count of intervals against chance and Holm, and the torch thread count the numbers repeat with."""
    records, _ = read_records(folder)
    rows = summarize(records)
    threads = sorted({r["config"].get("threads") for r in records}, key=str)
    shown = ", ".join("unrecorded" if t is None else str(t) for t in threads)
    return (f"{to_markdown(rows)}\n\n{verdict(rows)[-1]} {len(records)} runs, {shown} torch thread(s) per run "
            f"(`config.threads` of every record): the accuracy and e columns repeat exactly on a CPU of the "
            f"same kind with the same torch version and thread count; the time columns are measured and vary.\n")


def verdict_markdown(rows):
    """`verdict` as a Markdown list: one item per block, its comparisons nested under it."""
    return "\n".join(f"  - {line.strip()}" if line.startswith("  ") else f"- {line}" for line in verdict(rows))
