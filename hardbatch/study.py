"""The fitting-regime study, as pre-registered in docs/method.md ("The fitting-regime study").

The paper's networks fit their training sets; `results/underfitting/` asked its question of a net that
does not. This module reads the records of the study that asks it of a net that does, and computes only
what was written down before the runs:

- `choose_lr`: stage 0's rule for Algorithm 1's learning rate, per schedule;
- `primary`, `e_target`, `area_log_loss`: the endpoints P (final test top-1; under a constant lr the mean
  of the last 3 evaluations), C (equivalent epochs to ≥ 99 % train top-1, the same target for every arm)
  and a secondary one;
- `contrasts`: the eight pre-registered paired tests with Holm's correction, each with its MDE and the
  bounds its interval excludes; `verdict` says them in words, and says nothing until every seed is in;
- `exploratory`: stage 2's paired contrasts (Selective-Backprop on the same net, the MLP), outside the
  family: unadjusted, described (`described`) and never called findings.

`hardbatch study DIR` writes DIR/report/report.md from DIR/stage0, DIR/main and DIR/stage2-mlp.
"""
import math
from collections import defaultdict
from pathlib import Path

from . import arms
from .files import atomic_write
from .metrics import area_log_loss, epochs_to_target, holm, mde, mean_ci, paired_test
from .records import read_records

TARGET = 99.0  # % train top-1: the fixed absolute target of endpoint C, the same for every arm and seed
LAST = 3  # under a constant lr, P is the mean test top-1 of the last LAST evaluations
TIE = 0.1  # points: stage 0 prefers a smaller lr within TIE of the best
SEEDS = tuple(range(10))  # stage 1's paired seeds, fixed in advance
ALPHA = 0.05  # family-wise, over the eight primary tests
BASELINE, HARDEST, RANDOM = "Algorithm 1 (fixed)", "hardest δ=0.2", "random δ=0.2"
PRIMARY = ((HARDEST, BASELINE), (HARDEST, RANDOM))  # per schedule, on P and on C
SCHEDULES = ("cosine", "constant")  # decayed first: it is the primary schedule and runs first
ENDPOINTS = {"P": "test top-1 (points)", "C": "epochs to 99 % train top-1 (ratio)"}
STAGE1 = (BASELINE, "Algorithm 1 (shuffled)", HARDEST, "hardest δ=0.5", RANDOM, "random δ=0.5", "easiest δ=0.2")
SELECTIVE = "selective β=1"  # stage 2, in main/ beside stage 1's seeds
STAGE2 = {"main": ((SELECTIVE, BASELINE), (SELECTIVE, HARDEST)),  # under cosine, on P and on C
          "stage2-mlp": ((HARDEST, BASELINE), (HARDEST, RANDOM))}


def schedule(record):
    return record["config"].get("lr_schedule", "constant")


def curve(record, key):
    return [h[key] for h in record["history"]]


def primary(record):
    """Endpoint P: the final test top-1 under a decaying lr; under a constant lr the mean of the last LAST
    evaluations, whose last point alone is noisy."""
    accs = curve(record, "test_acc")
    return accs[-1] if schedule(record) != "constant" else sum(accs[-LAST:]) / len(accs[-LAST:])


def e_target(record, target=TARGET):
    """Endpoint C: the equivalent epoch at which train top-1 first reaches `target`, interpolated; None if never."""
    return epochs_to_target(curve(record, "train_acc"), target, higher_is_better=True)


def area(record):
    """Secondary: the area under the log train-loss curve, per equivalent epoch."""
    return area_log_loss(curve(record, "train_loss"))


def _complete(records):
    return [r for r in records if r["status"] == "complete"]


# ---------------------------------------------------------------- stage 0

def calibration(records):
    """One row per (schedule, lr) of stage 0's Algorithm 1 runs: seeds, complete, final train top-1 per seed,
    mean final test top-1, mean P, and whether the lr is eligible under the rule."""
    runs = defaultdict(list)
    for r in records:
        if r["config"]["method"] == "minibatch":
            runs[(schedule(r), r["config"]["lr"])].append(r)
    rows = []
    for (sched, lr), rs in sorted(runs.items(), key=lambda kv: (SCHEDULES.index(kv[0][0]), kv[0][1])):
        done = _complete(rs)
        train = [r["history"][-1]["train_acc"] for r in done]
        eligible = len(done) == len(rs) >= 2 and (sched == "constant" or all(a >= TARGET for a in train))
        rows.append({"schedule": sched, "lr": lr, "seeds": len(rs), "complete": len(done), "train_top1": train,
                     "test_top1": sum(r["history"][-1]["test_acc"] for r in done) / len(done) if done else math.nan,
                     "P": sum(primary(r) for r in done) / len(done) if done else math.nan, "eligible": eligible})
    return rows


def choose_lr(rows):
    """Stage 0's rule: per schedule, the eligible lr with the highest mean P (final test top-1 under cosine,
    last-3 mean under constant); an lr within TIE points of the best that is smaller wins. {schedule: lr or None}."""
    out = {}
    for sched in SCHEDULES:
        ok = [r for r in rows if r["schedule"] == sched and r["eligible"]]
        if not any(r["schedule"] == sched for r in rows):
            continue
        best = max((r["P"] for r in ok), default=None)
        out[sched] = None if best is None else min(r["lr"] for r in ok if r["P"] >= best - TIE)
    return out


def calibration_markdown(rows):
    lines = ["| schedule | lr | runs (complete) | final train top-1 per seed (%) | final test top-1 (%) | P (%) | "
             "eligible |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['schedule']} | {r['lr']:g} | {r['seeds']} ({r['complete']}) | "
                     f"{', '.join(f'{a:.2f}' for a in r['train_top1']) or '-'} | {r['test_top1']:.2f} | "
                     f"{r['P']:.2f} | {'yes' if r['eligible'] else 'no'} |")
    chosen = choose_lr(rows)
    words = []
    for sched, lr in chosen.items():
        words.append(f"{sched}: lr = {lr:g}" if lr is not None else
                     f"{sched}: no lr is eligible" + (f" (none reaches {TARGET:g} % train top-1 in every seed)"
                                                      if sched == "cosine" else ""))
    return "\n".join(lines) + "\n\nChosen by the pre-registered rule: " + "; ".join(words) + ".\n"


# ---------------------------------------------------------------- stage 1

def by_arm(records):
    """{(schedule, arm label): {seed: record}} of stage 1's runs (diverged ones included: they count). Two runs
    with the same schedule, label and seed (another lr, say) are refused by name, never one silently kept."""
    out = defaultdict(dict)
    for r in records:
        key, seed = (schedule(r), arms.label(r["config"])), r["config"]["seed"]
        if seed in out[key]:
            other = out[key][seed]["config"]
            differ = sorted(k for k in set(other) | set(r["config"]) if other.get(k) != r["config"].get(k))
            raise ValueError(f"two runs of {key[1]} under {key[0]} with seed {seed} (they differ in "
                             f"{', '.join(differ) or 'nothing'}): a study folder holds one run per arm, schedule "
                             f"and seed; move one of them out")
        out[key][seed] = r
    return dict(out)


def _endpoint(r, which):
    """P in points, or log e₉₉ (a run that never reaches the target enters at E, a lower bound)."""
    if which == "P":
        return primary(r)
    e = e_target(r)
    return math.log(max(e if e is not None else r["config"]["epochs"], 1e-9))


def paired_tests(records, pairs, schedules=SCHEDULES, seeds=SEEDS):
    """For each schedule and (arm, other) pair, the paired test of arm − other on P and on C over `seeds`. A seed
    enters only if both arms ran it; a diverged run fails the test of its seed (counted, with no number)."""
    groups = by_arm(records)
    tests = []
    for sched in schedules:
        for arm, other in pairs:
            a, b = groups.get((sched, arm), {}), groups.get((sched, other), {})
            both = sorted(set(a) & set(b) & set(seeds))
            ok = [s for s in both if a[s]["status"] == b[s]["status"] == "complete"]
            for which in ENDPOINTS:
                diffs = [_endpoint(a[s], which) - _endpoint(b[s], which) for s in ok]
                t = paired_test(diffs) if diffs else {"mean": math.nan, "half": math.nan, "p": math.nan,
                                                      "sd": math.nan, "n": 0}
                reached = (sum(e_target(a[s]) is not None for s in ok), sum(e_target(b[s]) is not None for s in ok))
                tests.append({"schedule": sched, "arm": arm, "other": other, "endpoint": which, **t,
                              "mde": mde(t["sd"], t["n"]), "diverged": len(both) - len(ok), "reached": reached,
                              "complete": len(ok) == len(seeds)})
    return tests


def contrasts(records, seeds=SEEDS):
    """The eight pre-registered tests: for each schedule, hardest δ=0.2 − Algorithm 1 and hardest δ=0.2 −
    random δ=0.2, on P and on C, paired by seed, Holm-adjusted together."""
    tests = paired_tests(records, PRIMARY, SCHEDULES, seeds)
    waiting = sum(not t["complete"] for t in tests)  # Holm is over all eight: no adjusted p before all are in
    for t, p in zip(tests, holm([t["p"] for t in tests])):
        t["holm_p"], t["waiting"] = (math.nan if waiting else p), waiting
    return tests


def exploratory(records, folder):
    """Stage 2's paired tests for FOLDER ("main": Selective-Backprop; "stage2-mlp": the MLP), under cosine. Not
    in the pre-registered family: no correction, so no test here is a finding."""
    return paired_tests(records, STAGE2[folder], ("cosine",))


def _effect(t, x):
    """A difference in the endpoint's own unit: points for P; for C the ratio e₉₉(arm)/e₉₉(other)."""
    return f"{round(x, 2) + 0.0:+.2f} points" if t["endpoint"] == "P" else f"×{math.exp(x):.3f}"  # never -0.00


def verdict(t):
    """One pre-registered test in words, computed: finding or not (Holm), interval, MDE, the excluded bounds."""
    name = f"{t['arm']} − {t['other']} ({t['schedule']}, {ENDPOINTS[t['endpoint']]})"
    if not t["complete"] or t["n"] < 2:
        return f"{name}: {t['n']} of {len(SEEDS)} paired seeds in; no verdict until all are."
    lo, hi = t["mean"] - t["half"], t["mean"] + t["half"]
    interval = f"{_effect(t, t['mean'])}, 95 % CI [{_effect(t, lo)}, {_effect(t, hi)}]"
    power = f"MDE (80 % power) {_effect(t, t['mde']).lstrip('+')}"
    if t["endpoint"] == "C":
        power += f"; 99 % reached in {t['reached'][0]} and {t['reached'][1]} of {t['n']} seeds"
    if t["waiting"]:  # this test's seeds are in, not the family's: its Holm-adjusted p is not known yet
        return (f"{name}: all {t['n']} seeds in, interim: {interval}, unadjusted p = {t['p']:.3g}; {power}; "
                f"no verdict until the other {t['waiting']} pre-registered tests are in (Holm's correction is "
                f"over all eight).")
    if t["holm_p"] <= ALPHA:
        if t["endpoint"] == "P":
            side = "higher" if t["mean"] > 0 else "lower"
            return (f"{name}: **{t['arm']} is {side}**, {interval}, Holm-adjusted p = {t['holm_p']:.3g}; {power}.")
        side = "more" if t["mean"] > 0 else "fewer"
        return (f"{name}: **{t['arm']} needs {side} epochs**, {interval}, Holm-adjusted p = {t['holm_p']:.3g}; "
                f"{power}.")
    return (f"{name}: no difference detected after Holm's correction, {interval}, Holm-adjusted p = "
            f"{t['holm_p']:.3g}; {power}; "
            f"{excluded(t, lo, hi)}.")


def excluded(t, lo, hi):
    """What a 95 % interval [lo, hi] rules out, in the endpoint's unit: gains above hi and losses beyond lo when
    it contains 0; when it lies on one side (unadjusted: Holm may still call it nothing), every effect of the
    other sign as well."""
    if t["endpoint"] == "P":
        gain, loss = f"gains above {hi:.2f} points", f"losses beyond {-lo:.2f} points"
        if hi < 0:
            return f"its interval lies below 0 (unadjusted): any gain is excluded, and {loss}"
        if lo > 0:
            return f"its interval lies above 0 (unadjusted): any loss is excluded, and {gain}"
        return f"{gain} and {loss} are excluded"
    fast, slow = f"a speed-up beyond ×{math.exp(lo):.3f}", f"a slow-down beyond ×{math.exp(hi):.3f}"
    if hi < 0:
        return f"its interval lies below ×1 (unadjusted): any slow-down is excluded, and {fast} (epochs, arm ÷ other)"
    if lo > 0:
        return f"its interval lies above ×1 (unadjusted): any speed-up is excluded, and {slow} (epochs, arm ÷ other)"
    return f"{fast} and {slow} (epochs, arm ÷ other) are excluded"


def described(t):
    """A stage-2 test in words: its interval, unadjusted p and MDE, what the interval excludes, and never a
    verdict (it is outside the pre-registered family)."""
    name = f"{t['arm']} − {t['other']} ({t['schedule']}, {ENDPOINTS[t['endpoint']]})"
    if not t["complete"] or t["n"] < 2:
        return f"{name}: {t['n']} of {len(SEEDS)} paired seeds in."
    if t["endpoint"] == "C" and t["reached"] == (0, 0):
        return (f"{name}: no run of either arm reached {TARGET:g} % train top-1, so this endpoint cannot tell "
                f"them apart (every seed enters at E).")
    lo, hi = t["mean"] - t["half"], t["mean"] + t["half"]
    text = (f"{name}: {_effect(t, t['mean'])}, 95 % CI [{_effect(t, lo)}, {_effect(t, hi)}], unadjusted "
            f"p = {t['p']:.3g}; MDE (80 % power) {_effect(t, t['mde']).lstrip('+')}")
    if t["endpoint"] == "C":
        text += f"; 99 % reached in {t['reached'][0]} and {t['reached'][1]} of {t['n']} seeds"
    if lo <= 0 <= hi:
        return f"{text}; {excluded(t, lo, hi)}."
    return (f"{text}; the interval excludes no difference, unadjusted: a lead for a new pre-registered test, not a "
            f"finding; {excluded(t, lo, hi)}.")


def arm_rows(records, only=None):
    """One descriptive row per (schedule, arm), for the arms in `only` (default all): seeds, diverged, final
    train top-1, P, e₉₉ (reached), area, paired P − Algorithm 1, time per back-prop (process CPU and wall)."""
    groups = by_arm(records)
    order = {a: i for i, a in enumerate(STAGE1)}
    rows = []
    for (sched, label), runs in sorted(groups.items(), key=lambda kv: (SCHEDULES.index(kv[0][0]),
                                                                        order.get(kv[0][1], 99), kv[0][1])):
        if only is not None and label not in only:
            continue
        done = {s: r for s, r in runs.items() if r["status"] == "complete"}
        base = {s: r for s, r in groups.get((sched, BASELINE), {}).items() if r["status"] == "complete"}
        paired = sorted(set(done) & set(base))
        es = [e_target(r) for r in done.values()]

        def ci(values):
            return mean_ci(values) if values else None
        rows.append({
            "schedule": sched, "arm": label, "seeds": len(runs), "diverged": len(runs) - len(done),
            "train_top1": ci([r["history"][-1]["train_acc"] for r in done.values()]),
            "fit": sum(r["history"][-1]["train_acc"] >= TARGET for r in done.values()),
            "P": ci([primary(r) for r in done.values()]),
            "P_vs_baseline": None if label == BASELINE or not paired else
            ci([primary(done[s]) - primary(base[s]) for s in paired]),
            "e": ci([e for e in es if e is not None]), "reached": sum(e is not None for e in es),
            "area": ci([area(r) for r in done.values()]),
            "cpu_ms": ci([r["cpu_per_backprop_s"] * 1e3 for r in done.values() if "cpu_per_backprop_s" in r]),
            "wall_ms": ci([r["time_per_backprop_s"] * 1e3 for r in done.values()]),
        })
    return rows


def _pm(mc, digits=2, sign=False):
    if mc is None:
        return "-"
    text = f"{mc[0]:+.{digits}f}" if sign else f"{mc[0]:.{digits}f}"
    return text + (f" ± {mc[1]:.{digits}f}" if math.isfinite(mc[1]) else " (1 seed)")


def rows_markdown(rows):
    lines = ["| schedule | arm | seeds (diverged) | train top-1 (%) | ≥ 99 % train | P: test top-1 (%) | "
             "P − Algorithm 1 (points, paired) | e₉₉ (epochs; reached) | area log train loss | "
             "CPU ms / back-prop | wall ms / back-prop |", "|" + "---|" * 11]
    for r in rows:
        lines.append(f"| {r['schedule']} | {r['arm']} | {r['seeds']} ({r['diverged']}) | {_pm(r['train_top1'])} | "
                     f"{r['fit']}/{r['seeds'] - r['diverged']} | {_pm(r['P'])} | {_pm(r['P_vs_baseline'], sign=True)} | "
                     f"{_pm(r['e'])}; {r['reached']}/{r['seeds'] - r['diverged']} | {_pm(r['area'], 3)} | "
                     f"{_pm(r['cpu_ms'], 1)} | {_pm(r['wall_ms'], 1)} |")
    return "\n".join(lines) + "\n"


def regime(records):
    """The study's premise, checked: in how many seeds Algorithm 1 under cosine ends at ≥ TARGET train top-1."""
    base = [r for r in by_arm(records).get(("cosine", BASELINE), {}).values() if r["status"] == "complete"]
    if not base:
        return "No Algorithm 1 run under cosine yet: the regime is not known."
    fit = sum(r["history"][-1]["train_acc"] >= TARGET for r in base)
    lo = min(r["history"][-1]["train_acc"] for r in base)
    words = ("fits its training set" if fit == len(base) else "does not fit its training set in any seed"
             if fit == 0 else "does not fit its training set in every seed")
    return (f"Regime: Algorithm 1 (cosine) ends at ≥ {TARGET:g} % train top-1 in {fit} of {len(base)} seeds "
            f"(lowest {lo:.2f} %, highest {max(r['history'][-1]['train_acc'] for r in base):.2f} %): the network "
            f"{words}.")


def setup(records):
    c = records[0]["config"]
    r = records[0]
    return (f"{c['model']} on {c['dataset']} ({r['n_train']} training, {r['n_test']} test images), "
            f"{c['image_size'] or 'native'} px, B = {c['batch_size']} (N = {r['n_batches']}), E = {c['epochs']}, "
            f"momentum {c['momentum']:g}, weight decay {c['weight_decay']:g}, augmentation "
            f"{'on' if c['augment'] else 'off'}; train loss and top-1 on {r.get('n_train_eval', r['n_train'])} "
            f"fixed training images; {c['threads']} CPU thread(s) per run.")


def load(folder):
    """(stage 0, stage 1 and Selective-Backprop, the MLP): the records of FOLDER/stage0, main and stage2-mlp."""
    return tuple(read_records(Path(folder) / sub)[0] if (Path(folder) / sub).is_dir() else []
                 for sub in ("stage0", "main", "stage2-mlp"))


def figures(main, mlp):
    """The report's figures as (section, file name, caption, records, kind), kind "curves" or "paired": per
    schedule for stage 1's arms, then Selective-Backprop and the MLP under cosine if they ran."""
    plan = []
    for sched in SCHEDULES:
        recs = [r for r in main if schedule(r) == sched and arms.label(r["config"]) in STAGE1]
        if recs:
            near = [r for r in recs if arms.label(r["config"]) != "easiest δ=0.2"]  # its points off the scale
            plan += [("stage1", f"fig-{sched}-curves.png", f"Stage 1, {sched}: the arms over seeds", recs, "curves"),
                     ("stage1", f"fig-{sched}-paired.png", f"Stage 1, {sched}: P − Algorithm 1, per seed (easiest "
                      "δ=0.2, far below, in the table only)" if len(near) < len(recs) else
                      f"Stage 1, {sched}: P − Algorithm 1, per seed", near, "paired")]
    sel = [r for r in main if schedule(r) == "cosine" and arms.label(r["config"]) in (BASELINE, HARDEST, SELECTIVE)]
    if any(arms.label(r["config"]) == SELECTIVE for r in sel):
        plan += [("selective", "fig-selective-curves.png", "Selective-Backprop beside Algorithm 1 and hardest δ=0.2",
                  sel, "curves"), ("selective", "fig-selective-paired.png", "P − Algorithm 1, per seed", sel, "paired")]
    if mlp:
        plan += [("mlp", "fig-mlp-curves.png", "The MLP: the arms over seeds", mlp, "curves"),
                 ("mlp", "fig-mlp-paired.png", "The MLP: P − Algorithm 1, per seed", mlp, "paired")]
    return plan


def compute(stage0, main, mlp):
    """The study's cost, from its records: runs, process-CPU hours of training (one thread a run), and wall hours
    with evaluation, per part; the wall hours depend on what else the machine ran, the CPU hours much less."""
    parts = [("stage 0", stage0), ("stage 1", [r for r in main if arms.label(r["config"]) in STAGE1]),
             ("stage 2, Selective-Backprop", [r for r in main if arms.label(r["config"]) not in STAGE1]),
             ("stage 2, the MLP", mlp)]
    lines = ["| part | runs | training CPU (core-hours) | wall time with evaluation (hours) |", "|---|---|---|---|"]
    for name, recs in parts:
        if recs:
            cpu = sum(r["history"][-1].get("train_cpu_s", math.nan) for r in recs) / 3600
            wall = sum(r["history"][-1]["wall_s"] for r in recs) / 3600
            lines.append(f"| {name} | {len(recs)} | {cpu:.2f} | {wall:.2f} |")
    return "\n".join(lines) + "\n"


def _pictures(plan, section):
    return [f"![{caption}](figures/{name})\n" for sec, name, caption, _, _ in plan if sec == section]


def report(folder, records=None):
    """The study's report (Markdown) from FOLDER/stage0, FOLDER/main and FOLDER/stage2-mlp (or `records`, as
    `load` gives them); the same records give the same bytes."""
    stage0, main, mlp = records or load(folder)
    plan = figures(main, mlp)
    out = ["# The fitting-regime study", "",
           "Pre-registered in docs/method.md (\"The fitting-regime study\"): the endpoints, contrasts, seeds and "
           "correction were written down before any run. Made by `hardbatch study` from the run records.", ""]
    if stage0:
        out += ["## Stage 0: Algorithm 1's learning rate", "", setup(stage0), "",
                f"Seeds {', '.join(str(s) for s in sorted({r['config']['seed'] for r in stage0}))} (not stage 1's). "
                f"Eligible under cosine: complete and ≥ {TARGET:g} % final train top-1 in every seed; under "
                f"constant: complete. P = final test top-1 (cosine) or the mean of the last {LAST} evaluations "
                f"(constant).", "", calibration_markdown(calibration(stage0))]
    if main:
        tests = contrasts(main)
        done = {sched: min(t["n"] + t["diverged"] for t in tests if t["schedule"] == sched) for sched in SCHEDULES}
        complete = all(n == len(SEEDS) for n in done.values())
        out += ["## Stage 1: the main study", "", setup(main), "", regime(main), "",
                f"Seeds: {len(SEEDS)} paired seeds are pre-registered; the primary contrasts have "
                + ", ".join(f"{n} under {sched}" for sched, n in done.items()) + " so far"
                + ("." if complete else ": an interim table, and no verdict yet.") + " ± is the 95 % "
                "t-interval over seeds; P − Algorithm 1 is paired by seed. CPU ms is the process's CPU time per "
                "back-prop, which other processes on the machine inflate less than wall time, but still inflate "
                "(shared caches and memory): compare time between the arms of one schedule, whose runs of a seed "
                "ran one after another, not between schedules, which ran at other times.",
                "", rows_markdown(arm_rows(main, only=STAGE1)), "### The pre-registered tests (Holm over all eight)",
                ""]
        out += [f"- {verdict(t)}" for t in tests]
        out += ["", "In the figures, bands and bars are 95 % intervals over seeds; the dotted line is endpoint C's "
                f"{TARGET:g} % train target; a filled bar excludes 0 unadjusted, which is not a verdict (the tests "
                "above are).", ""] + _pictures(plan, "stage1")
    if any(arms.label(r["config"]) == SELECTIVE for r in main) or mlp:
        out += ["## Stage 2: beyond the pre-registered tests", "",
                "Pre-registered as stage 2 (docs/method.md), outside the eight tests' family: each interval below is "
                "unadjusted and paired by seed, and none is a finding. An interval that excludes 0 is a question "
                "for a new pre-registered study; one that contains 0 says which effects the data rule out.", ""]
    if any(arms.label(r["config"]) == SELECTIVE for r in main):
        out += ["### Selective-Backprop on the same net", "",
                "β = 1, cosine, the stage-1 set-up and seeds; it back-propagates N·E batches of its chosen samples, "
                "and its time per back-prop includes the forward passes that score the candidates.", "",
                rows_markdown(arm_rows(main, only=(SELECTIVE,)))]
        out += [f"- {described(t)}" for t in exploratory(main, "main")] + [""] + _pictures(plan, "selective")
    if mlp:
        out += ["### The MLP", "", setup(mlp), "", regime(mlp), "", rows_markdown(arm_rows(mlp))]
        out += [f"- {described(t)}" for t in exploratory(mlp, "stage2-mlp")] + [""] + _pictures(plan, "mlp")
    if stage0 or main or mlp:
        out += ["## Compute", "", "Summed over the committed records (one CPU thread per run).", "",
                compute(stage0, main, mlp)]
    return "\n".join(out)


def write(folder, out=None):
    """Write the report to OUT (default FOLDER/report/report.md) and its figures beside it, in figures/, each
    atomically; return the report's text."""
    from .figures_study import fit_curves, paired_endpoint, save

    records = load(folder)
    text = report(folder, records)
    path = Path(out) if out else Path(folder) / "report" / "report.md"
    (path.parent / "figures").mkdir(parents=True, exist_ok=True)
    for _, name, caption, recs, kind in figures(*records[1:]):
        fig = (fit_curves(recs, TARGET, caption) if kind == "curves" else
               paired_endpoint(recs, primary, "P: test top-1", caption))
        save(fig, path.parent / "figures" / name)
    atomic_write(path, text.encode())
    return text
