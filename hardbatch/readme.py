"""The README's computed parts: its Results table, its `make compare` table and chapter 6's answer.

Why: a number in the README that a person copies by hand drifts from the records it came from. These are
computed from the committed run records (results/, docs/compare/records) and written between the README's
`<!-- NAME:start -->` and `<!-- NAME:end -->` markers by `make report`; tests/test_results.py recomputes them.
"""
import math
from pathlib import Path

from .files import atomic_write
from .metrics import mde, mean_ci, paired_test
from .records import read_records
from .report import compare_markdown
from .study import (ALPHA, BASELINE, HARDEST, RANDOM, SEEDS, TARGET, by_arm, calibration, contrasts, schedule)


def _final(r):
    return r["history"][-1]["test_acc"]


def _paired(groups, arm, other, endpoint):
    a, b = groups.get(arm, {}), groups.get(other, {})
    seeds = sorted(s for s in set(a) & set(b) if a[s]["status"] == b[s]["status"] == "complete")
    if len(seeds) < 2:
        return None
    t = paired_test([endpoint(a[s]) - endpoint(b[s]) for s in seeds])
    return {**t, "mde": mde(t["sd"], t["n"])}


def _cell(t):
    if t is None:
        return "-"
    mean, lo, hi = (round(x, 2) + 0.0 for x in (t["mean"], t["mean"] - t["half"], t["mean"] + t["half"]))  # no -0.00
    return f"{mean:+.2f} points, 95 % CI [{lo:+.2f}, {hi:+.2f}]"


def _short(t):
    """A complete pre-registered test in a few words: the finding with its Holm p, or the null with what its
    interval excludes (points for P, the epoch ratio arm ÷ other for C); the report words each one in full."""
    lo, hi = t["mean"] - t["half"], t["mean"] + t["half"]
    if t["endpoint"] == "C":
        span = f"×{math.exp(t['mean']):.3f} [×{math.exp(lo):.3f}, ×{math.exp(hi):.3f}]"
        if t["holm_p"] <= ALPHA:
            return f"**{'more' if t['mean'] > 0 else 'fewer'} epochs**, {span}, Holm p = {t['holm_p']:.2g}"
        if lo > 0 or hi < 0:
            return (f"no difference after Holm's correction (p = {t['holm_p']:.2g}), {span}: "
                    f"{'above' if lo > 0 else 'below'} ×1 unadjusted only")
        return f"no difference detected, {span}"
    if t["holm_p"] <= ALPHA:
        return (f"**{t['arm']} {'higher' if t['mean'] > 0 else 'lower'}** by {abs(t['mean']):.2f} points, "
                f"Holm p = {t['holm_p']:.2g}")
    if hi < 0:
        return f"no difference after Holm's correction; below 0 unadjusted, so any gain is excluded (MDE {t['mde']:.2f})"
    if lo > 0:
        return f"no difference after Holm's correction; above 0 unadjusted, gains above {hi:.2f} points excluded"
    return f"no difference detected, gains above {hi:.2f} points excluded (MDE {t['mde']:.2f})"


def _by_chance(tests):
    """The sentence that keeps noise from passing for a finding: how many of the pre-registered tests have an
    unadjusted interval that excludes 0, which, how many would by chance alone, and how many survive Holm."""
    off = [t for t in tests if t["mean"] - t["half"] > 0 or t["mean"] + t["half"] < 0]
    which = "; ".join(f"hardest δ=0.2 vs {t['other'].replace(' (fixed)', '')} under {t['schedule']} on "
                      f"{'epochs to 99 % train' if t['endpoint'] == 'C' else 'test top-1'}, "
                      + (f"{'more' if t['mean'] > 0 else 'fewer'} epochs (×{math.exp(t['mean']):.3f})"
                         if t["endpoint"] == "C" else f"{t['mean']:+.2f} points") for t in off)
    kept = sum(t["holm_p"] <= ALPHA for t in tests)
    opposite = len({t["mean"] > 0 for t in off}) == 2
    return (f"\nThe fitting study: of its {len(tests)} pre-registered tests, {len(off)} have an unadjusted 95 % "
            f"interval that excludes 0{f' ({which})' if off else ''}{', in opposite directions' if opposite else ''}; "
            f"about {len(tests) * ALPHA:.1f} would by chance alone, and after Holm's correction "
            + ("none remains: none is a finding." if not kept else f"{kept} remain{'s' if kept == 1 else ''}."))


def results_markdown(root):
    """The README's Results table: one row per study in ROOT (underfitting/, fitting/), its regime measured
    from Algorithm 1's final train top-1, the two contrasts of the question, and a verdict worded within what
    the intervals support (a null names the gains it excludes and the MDE). Computed, so it cannot drift."""
    root = Path(root)
    threads = set()  # torch threads of every run the table rests on, stated under it
    chance = []  # the fitting study's sentence on its unadjusted intervals, under the table
    lines = ["| study | net, and does it fit its training set? | paired seeds | hardest δ=0.2 − Algorithm 1 "
             "(final test top-1) | hardest δ=0.2 − random δ=0.2 | verdict |", "|---|---|---|---|---|---|"]
    if (root / "underfitting").is_dir():
        recs, _ = read_records(root / "underfitting")
        threads |= {r["config"].get("threads") for r in recs}
        groups = by_arm([r for r in recs if schedule(r) == "constant" and not r["config"].get("augment")])
        groups = {label: runs for (_, label), runs in groups.items()}
        base = [r for r in groups.get(BASELINE, {}).values() if r["status"] == "complete"]
        train = mean_ci([r["history"][-1]["train_acc"] for r in base])
        c = recs[0]["config"]
        t1, t2 = _paired(groups, HARDEST, BASELINE, _final), _paired(groups, HARDEST, RANDOM, _final)
        found = [t for t in (t1, t2) if t and t["p"] <= ALPHA]
        if found:
            words = "a difference at p ≤ 0.05 (unadjusted): see its report"
        else:
            hi = max(t["mean"] + t["half"] for t in (t1, t2))
            words = (f"no difference detected in an underfitting regime; gains above {hi:.2f} points are excluded "
                     f"(MDE at 80 % power: {t1['mde']:.2f} and {t2['mde']:.2f} points)")
        lines.append(f"| [underfitting](results/underfitting/report/report.md) | {c['model']} at {c['image_size']}², "
                     f"lr {c['lr']:g} constant, E = {c['epochs']}: Algorithm 1 ends at {train[0]:.1f} ± {train[1]:.1f} % "
                     f"train top-1, **{'fits' if min(r['history'][-1]['train_acc'] for r in base) >= TARGET else 'underfits'}**"
                     f" | {t1['n']} | {_cell(t1)} | {_cell(t2)} | {words} |")
    if (root / "fitting").is_dir():
        stage0, _ = read_records(root / "fitting" / "stage0") if (root / "fitting" / "stage0").is_dir() else ([], [])
        main, _ = read_records(root / "fitting" / "main") if (root / "fitting" / "main").is_dir() else ([], [])
        threads |= {r["config"].get("threads") for r in stage0 + main}
        base = [r for r in by_arm(main).get(("cosine", BASELINE), {}).values() if r["status"] == "complete"]
        fits = [r["history"][-1]["train_acc"] for r in base] or \
            [a for row in calibration(stage0) if row["schedule"] == "cosine" for a in row["train_top1"]]
        where = f"{sum(f >= TARGET for f in fits)}/{len(fits)} seeds of stage 1" if base else "stage 0"
        regime_words = (f"Algorithm 1 (cosine) ends at {min(fits):.2f}–{max(fits):.2f} % train top-1 ({where}), "
                        f"**{'fits' if min(fits) >= TARGET else 'does not fit'}**" if fits else "regime not yet measured")
        flat = [r["history"][-1]["train_acc"] for r in by_arm(main).get(("constant", BASELINE), {}).values()
                if r["status"] == "complete"]
        if flat:  # the constant lr does not decay: say how close it comes
            regime_words += (f"; under the constant lr it ends at {min(flat):.2f}–{max(flat):.2f} % "
                             f"({sum(f >= TARGET for f in flat)}/{len(flat)} seeds ≥ {TARGET:g} %)")
        c = (main or stage0)[0]["config"] if (main or stage0) else {"model": "?", "image_size": 0, "epochs": "?"}
        tests = contrasts(main) if main else []
        p_tests = [t for t in tests if t["endpoint"] == "P"]
        cosine = [t for t in p_tests if t["schedule"] == "cosine"]
        if tests and all(t["complete"] for t in tests):
            cells = ["; ".join(f"{t['schedule']}: {_cell(t)}" for t in p_tests if t["other"] == other)
                     for other in (BASELINE, RANDOM)]
            words = "in a fitting regime, Holm over the 8 pre-registered tests: " + "; ".join(
                f"vs {t['other'].replace(' (fixed)', '')} under {t['schedule']}: test top-1: {_short(t)}; epochs to "
                f"99 % train: {_short(c)}" for t, c in zip(tests[0::2], tests[1::2]))
            chance.append(_by_chance(tests))
            n = str(tests[0]["n"])
        elif cosine and all(t["complete"] for t in cosine):  # the cosine half is in, the constant half is not
            cells = [_cell(t) + " (cosine, interim)" for t in cosine]
            words = (f"pre-registered (docs/method.md); interim: the cosine half's four primary tests are complete, the constant half has "
                     f"{len({r['config']['seed'] for r in main if schedule(r) == 'constant'})} of {len(SEEDS)} seeds; "
                     f"no verdict until all eight tests are in (Holm's correction is over all of them)")
            n = str(cosine[0]["n"])
        else:
            done = len({r["config"]["seed"] for r in main})
            cells = ["running", "running"]
            words = (f"pre-registered (docs/method.md); stage 0: {len(stage0)} runs; stage 1: {len(main)} runs, "
                     f"{done} of {len(SEEDS)} seeds begun; no verdict until all are in")
            n = f"{len(SEEDS)} planned"
        lines.append(f"| [fitting](results/fitting/report/report.md) | {c['model']} at {c['image_size'] or 28}², "
                     f"stage 0's lr, cosine to zero and constant, E = {c['epochs']}: "
                     f"{regime_words} | {n} | {cells[0]} | {cells[1]} | {words} |")
    lines += [line for line in chance if line]
    if threads:
        shown = ", ".join("unrecorded" if t is None else str(t) for t in sorted(threads, key=str))
        lines += ["", f"Every run: {shown} torch thread(s) (`config.threads` of its record); its accuracies repeat "
                      f"exactly on a CPU of the same kind with the same torch version and thread count."]
    return "\n".join(lines) + "\n"


def replace_block(readme, name, text):
    """Replace what lies between the README's `<!-- NAME:start -->` and `<!-- NAME:end -->` markers by TEXT."""
    content = Path(readme).read_text()
    head, rest = content.split(f"<!-- {name}:start -->\n")
    _, tail = rest.split(f"<!-- {name}:end -->")
    atomic_write(readme, f"{head}<!-- {name}:start -->\n{text}<!-- {name}:end -->{tail}")


def update_readme(readme="README.md", root="results", compare="docs/compare/records"):
    """Replace the README's Results table and its `make compare` table by the ones computed from the committed
    records (results/, and the records of the `make compare` run shown in docs/compare/records)."""
    replace_block(readme, "results", results_markdown(root))
    if Path(compare).is_dir():
        replace_block(readme, "compare", compare_markdown(compare))
