"""Reports on hand-made records: paired differences, convergence marks, e, both Δe conventions, equal time.

The records are built here with known curves, so every number a table prints can be recomputed
by hand: the test is an oracle for report.summarize, not a snapshot of it.
"""
import math

import pytest

from hardbatch import RunConfig, arms, metrics
from hardbatch.report import summarize, to_markdown, verdict

E = 10


def record(seed, curve, acc, secs_per_epoch=1.0, status="complete", cpu_per_epoch=None, **algorithm):
    """A complete run record whose train loss follows `curve` and whose final test top-1 is `acc` (with a CPU clock
    when cpu_per_epoch is given, as records since 0.1.0 have)."""
    cfg = RunConfig(epochs=E, seed=seed, device="cpu", **algorithm).to_dict()
    history = [{"epoch": e, "backprops": 10 * e, "train_loss": curve[e], "train_acc": 50.0 + e,
                "test_loss": curve[e], "test_acc": acc * e / E, "backprop_loss": None if e == 0 else curve[e],
                "train_s": secs_per_epoch * e, "eval_s": 0.1 * e, "wall_s": (secs_per_epoch + 0.1) * e}
               for e in range(E + 1)]
    out = {"config": cfg, "status": status, "n_train": 100, "n_test": 50, "n_batches": 10, "k": 2, "rounds": 45,
           "backprops": 10 * E, "batch_train_counts": [E] * 10, "history": history,
           "time_per_backprop_s": secs_per_epoch / 10, "version": "test"}
    if cpu_per_epoch is not None:
        out["cpu_per_backprop_s"] = cpu_per_epoch / 10
    return out


def falling(rate, floor=0.2):
    """A converged curve: 2.0 at epoch 0, decaying geometrically to `floor`."""
    return [floor + (2.0 - floor) * rate ** e for e in range(E + 1)]


BASE = dict(method="minibatch")
HARD = dict(method="hardbatch", select="hardest", delta=0.2)
RANDOM = dict(method="hardbatch", select="random", delta=0.2)


@pytest.fixture
def records():
    out = []
    for seed, (acc_b, acc_h, acc_r) in enumerate([(90.0, 91.0, 89.5), (88.0, 90.0, 88.0), (89.0, 89.5, 88.5)]):
        out.append(record(seed, falling(0.5), acc_b, **BASE))
        out.append(record(seed, falling(0.4), acc_h, secs_per_epoch=1.5, **HARD))  # faster per epoch, slower per s
        out.append(record(seed, falling(0.5), acc_r, **RANDOM))
    return out


def row(rows, label):
    return next(r for r in rows if r["label"] == label)


def test_paired_differences_are_the_per_seed_differences(records):
    rows = summarize(records)
    assert [r["label"] for r in rows] == ["Algorithm 1 (fixed)", "hardest δ=0.2", "random δ=0.2"]
    hard = row(rows, "hardest δ=0.2")
    assert hard["seeds"] == 3 and hard["converged"] == 3
    mean, half = metrics.mean_ci([1.0, 2.0, 0.5])
    assert hard["vs_baseline"] == (pytest.approx(mean), pytest.approx(half), 3)
    mean, half = metrics.mean_ci([1.5, 2.0, 1.0])
    assert hard["vs_random"] == (pytest.approx(mean), pytest.approx(half), 3)
    assert row(rows, "random δ=0.2")["vs_random"] is None and rows[0]["vs_baseline"] is None


def test_e_is_interpolated_against_the_baseline_target_of_the_same_seed(records):
    rows = summarize(records)
    target = metrics.target_level(falling(0.5))
    e1 = metrics.epochs_to_target(falling(0.5), target)
    e = metrics.epochs_to_target(falling(0.4), target)
    assert e != int(e)  # sub-epoch resolution
    assert rows[0]["e"][0] == pytest.approx(e1) and row(rows, "hardest δ=0.2")["e"][0] == pytest.approx(e)
    hard = row(rows, "hardest δ=0.2")
    assert hard["de_ours"][0] == pytest.approx(100 * (e1 - e) / e1)
    assert hard["de_paper"][0] == pytest.approx(100 * (e1 - e) / e)
    assert hard["secs_to_target"][0] == pytest.approx(1.5 * e)  # 1.5 s per epoch
    assert hard["time_ratio"][0] == pytest.approx(1.5)


def test_time_per_back_prop_is_shown_on_the_wall_and_the_cpu_clock_with_intervals(records):
    """Issue 20: the table showed wall time only, which another program on the machine inflates; the process's
    CPU time per back-prop stands beside it, each as mean ± 95 % interval over seeds, and a block whose records
    predate the CPU clock shows '-' there rather than a mean over some of its seeds."""
    for i, r in enumerate(records):
        r["cpu_per_backprop_s"] = (0.02, 0.03, 0.025)[i % 3] + 0.001 * (i // 3)  # baseline, hardest, random by seed
    rows = summarize(records)
    hard = row(rows, "hardest δ=0.2")
    assert hard["cpu_ms"] == (pytest.approx(metrics.mean_ci([30.0, 31.0, 32.0])[0]),
                              pytest.approx(metrics.mean_ci([30.0, 31.0, 32.0])[1]))
    assert hard["wall_ms"][0] == pytest.approx(150.0) and hard["wall_ms"][1] == pytest.approx(0.0)
    header = next(line for line in to_markdown(rows).splitlines() if line.startswith("| arm |")).split(" | ")
    hard_line = next(line for line in to_markdown(rows).splitlines() if line.startswith("| hardest δ=0.2 |")).split(" | ")
    assert hard_line[header.index("CPU ms / back-prop")] == "31.00 ± 2.48"
    assert hard_line[header.index("wall ms / back-prop")] == "150.00 ± 0.00"
    del records[1]["cpu_per_backprop_s"]  # one hardest seed without a CPU clock: no mean of the other two
    assert row(summarize(records), "hardest δ=0.2")["cpu_ms"] is None


def test_equal_training_time_compares_at_the_shorter_runs_seconds(records):
    hard = row(summarize(records), "hardest δ=0.2")
    # Algorithm 1 spends 10 s; hardest reaches 10 s at epoch 10 / 1.5: its accuracy there, minus Algorithm 1's end.
    per_seed = [acc_h * (10 / 1.5) / E - acc_b for acc_b, acc_h in [(90.0, 91.0), (88.0, 90.0), (89.0, 89.5)]]
    assert hard["equal_time_vs_baseline"][0] == pytest.approx(sum(per_seed) / 3)


def test_an_arm_that_has_not_converged_gets_no_e(records):
    still_falling = [2.0 - 0.15 * e for e in range(E + 1)]
    records = [r for r in records if r["config"]["select"] != "random"]
    records += [record(s, still_falling, 85.0, **RANDOM) for s in range(3)]
    rand = row(summarize(records), "random δ=0.2")
    assert rand["converged"] == 0 and rand["e"] is None and rand["de_ours"] is None
    assert rand["e_note"] == "not converged (0/3)"
    table = to_markdown(summarize(records))
    assert "not converged (0/3)" in table and "| random δ=0.2 | 3 | 0/3 |" in table


def test_diverged_runs_are_counted_never_averaged(records):
    bad = record(3, [2.0] + [math.inf] * E, 10.0, status="diverged", **HARD)
    hard = row(summarize(records + [bad]), "hardest δ=0.2")
    assert hard["seeds"] == 3 and hard["diverged"] == 1
    assert "3 (+1 diverged)" in to_markdown(summarize(records + [bad]))


def test_tables_mark_findings_and_the_verdict_says_it_in_words(records):
    rows = summarize(records)
    table, words = to_markdown(rows), "\n".join(verdict(rows))
    base_line = next(line for line in table.splitlines() if line.startswith("| Algorithm 1 (fixed) (baseline) |"))
    assert "**" not in base_line and base_line.count("| - ") == 8  # compares with nothing; no CPU clock in these records
    hard = row(rows, "hardest δ=0.2")
    shown = f"{hard['vs_random'][0]:+.1f} ± {hard['vs_random'][1]:.1f}"
    assert (f"**{shown}**" in table) == metrics.excludes_zero(hard["vs_random"])
    assert "hardest δ=0.2 − Algorithm 1, final test top-1: +1.2 ± " in words
    assert "by chance alone" in words
    assert words.count("over 3 paired seeds") >= 4


def test_runs_that_differ_only_in_an_ignored_knob_are_one_arm():
    # An old-style record that stored Algorithm 2's knobs for Algorithm 1 is the same arm as a new one.
    new = RunConfig(method="minibatch", device="cpu").to_dict()
    old = {**new, "select": "easiest", "delta": 0.3}
    assert arms.arm(old) == arms.arm(new) and arms.run_key(old) == arms.run_key(new)
    assert arms.record_name(old) == arms.record_name(new)


def test_peers_are_paired_with_algorithm_1_random_and_hardest(records):
    """Chapter 6: proportional at δ and Selective-Backprop (no δ) get − Algorithm 1, − random and − hardest,
    each the per-seed differences; hardest itself and the controls get no − hardest."""
    accs = [(90.5, 89.0), (89.0, 91.0), (90.0, 90.0)]  # (proportional, selective) per seed
    for seed, (acc_p, acc_s) in enumerate(accs):
        records.append(record(seed, falling(0.45), acc_p, method="hardbatch", select="proportional", delta=0.2))
        records.append(record(seed, falling(0.45), acc_s, secs_per_epoch=2.0, method="selective"))
    rows = summarize(records)
    assert [r["label"] for r in rows] == ["Algorithm 1 (fixed)", "hardest δ=0.2", "proportional α=1 δ=0.2",
                                          "random δ=0.2", "selective β=1"]
    base, hard, rand = [90.0, 88.0, 89.0], [91.0, 90.0, 89.5], [89.5, 88.0, 88.5]
    for label, mine in (("proportional α=1 δ=0.2", [a for a, _ in accs]), ("selective β=1", [s for _, s in accs])):
        r = row(rows, label)
        for key, other in (("vs_baseline", base), ("vs_random", rand), ("vs_hardest", hard)):
            mean, half = metrics.mean_ci([m - o for m, o in zip(mine, other)])
            assert r[key] == (pytest.approx(mean), pytest.approx(half), 3), (label, key)
    assert row(rows, "selective β=1")["time_ratio"][0] == pytest.approx(2.0)  # its scoring time is in its clock
    assert all(row(rows, name)["vs_hardest"] is None for name in ("hardest δ=0.2", "random δ=0.2"))
    assert rows[0]["vs_hardest"] is None
    words = "\n".join(verdict(rows))
    assert "selective β=1 − hardest at δ=0.2, final test top-1:" in words
    assert "proportional − random at δ=0.2, final test top-1:" in words
    assert "− hardest, same δ (points)" in to_markdown(rows)


def test_the_verdict_counts_intervals_and_keeps_only_what_survives_holm():
    from hardbatch.report import multiplicity, p_value

    strong, weak, none = (2.0, 0.1, 5), (0.5, 0.45, 5), (0.1, 1.0, 5)
    assert p_value(strong) < 1e-4 and 0.01 < p_value(weak) < 0.05 and p_value(none) > 0.5
    assert math.isnan(p_value((1.0, 0.5, 1)))  # one seed: no test
    # 15 tests: the weak one excludes 0 at 95 % but not after Holm (its p times 14 > 0.05); the strong one stays
    family = [("strong", strong), ("weak", weak)] + [(f"n{i}", none) for i in range(13)]
    line = multiplicity(family)
    assert "2 interval(s) exclude 0, where about 0.8 would by chance alone" in line
    assert line.endswith("1 remain(s): strong.")
    assert multiplicity([("weak", weak)] + [(f"n{i}", none) for i in range(14)]).endswith("none remains, so none is a finding.")
    assert multiplicity([("n", none)] * 3).endswith("no difference is detected.")


def test_two_settings_whose_words_coincide_stay_apart(records):
    """Rows are grouped by the block's key (arms.block), and its words only head a table: lr 0.005 and
    0.0050000005 both read "lr=0.005", yet they are two tables, two Table 6 cells and two sets of pairs."""
    import matplotlib
    matplotlib.use("Agg")
    from hardbatch import paper, plots

    lr = RunConfig().lr * (1 + 1e-7)
    twin = [record(r["config"]["seed"], falling(0.5), r["history"][-1]["test_acc"] - 10, lr=lr,
                   **{k: r["config"][k] for k in ("method", "select", "delta")}) for r in records]
    rows = summarize(records + twin)
    assert len({r["setting"] for r in rows}) == 1 and len({r["block"] for r in rows}) == 2  # one heading, two keys
    table = to_markdown(rows)
    heading = f"**{rows[0]['model']} on {rows[0]['dataset']}** ({rows[0]['setting']})"
    assert table.count(heading) == 2 and table.count("| Algorithm 1 (fixed) (baseline) |") == 2
    words = verdict(rows)
    assert words.count(f"{rows[0]['model']} on {rows[0]['dataset']} ({rows[0]['setting']}):") == 2
    assert [r["test_acc"][0] for r in rows if r["baseline"]] == pytest.approx([89.0, 79.0])  # never averaged together

    t6 = paper.table6(rows)
    assert [r["baseline"][0] for r in t6] == pytest.approx([89.0, 79.0])  # one cell each, none overwritten
    assert paper.table6_markdown(t6).count("(δ=0.2: ") == 2

    ax = plots.paired_differences(records + twin).axes[0]  # each arm paired with its own block's baseline
    assert [t.get_text() for t in ax.get_xticklabels()] == ["hardest δ=0.2"] * 2 + ["random δ=0.2"] * 2
    dots = [c.get_offsets()[:, 1].tolist() for c in ax.collections if len(c.get_offsets()) == 3]
    assert dots == [pytest.approx([1.0, 2.0, 0.5])] * 2 + [pytest.approx([-0.5, 0.0, -0.5])] * 2
    matplotlib.pyplot.close("all")
