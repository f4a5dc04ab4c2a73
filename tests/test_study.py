"""The fitting-regime study (study.py): its lr rule, endpoints, Holm-adjusted tests and report, as pre-registered."""
import math
from dataclasses import replace
from pathlib import Path

import pytest
from scipy.stats import ttest_rel

from hardbatch import arms, study
from hardbatch.config import RunConfig
from hardbatch.metrics import area_log_loss, holm, mde, paired_test
from hardbatch.record import save_record
from hardbatch.train import train
from tests.helpers import run_main


def test_holm_matches_the_step_down_rule():
    # sorted 0.01, 0.03, 0.04, 0.5 -> 4·0.01, 3·0.03, max(0.09, 2·0.04), max(0.09, 0.5)
    assert holm([0.04, 0.01, 0.5, 0.03]) == pytest.approx([0.09, 0.04, 0.5, 0.09])
    assert holm([0.3, math.nan]) == [0.3, math.nan] or math.isnan(holm([0.3, math.nan])[1])
    assert holm([0.9, 0.8]) == [1.0, 1.0]  # capped at 1


def test_paired_test_is_scipys_paired_t_test():
    a, b = [71.2, 70.1, 72.5, 69.9, 70.4], [70.0, 70.3, 71.1, 69.0, 70.2]
    t = paired_test([x - y for x, y in zip(a, b)])
    assert t["p"] == pytest.approx(ttest_rel(a, b).pvalue)
    assert t["n"] == 5 and t["mean"] == pytest.approx(sum(a) / 5 - sum(b) / 5)


def test_mde_of_ten_paired_seeds_is_about_one_sd():
    # (t.975 + t.80 with 9 d.f.) / sqrt(10) = (2.262 + 0.883) / 3.162; five seeds: (2.776 + 0.941) / 2.236
    assert mde(1.0, 10) == pytest.approx(0.9947, abs=1e-3)
    assert mde(2.0, 5) == pytest.approx(2 * 1.6625, abs=2e-3)
    assert math.isnan(mde(1.0, 1))


def test_area_log_loss_is_the_mean_log_loss_of_a_straight_log_curve():
    curve = [math.exp(-e) for e in range(5)]  # log loss 0, -1, ..., -4: area / E = -2
    assert area_log_loss(curve) == pytest.approx(-2.0)


def _fake(seed, label, sched="cosine", train_acc=None, test_acc=None, epochs=4, status="complete", lr=0.05):
    """A record-shaped dict with only what study.py reads."""
    method, knobs = ("minibatch", {"order": "fixed"}) if label.startswith("Algorithm") else \
        ("hardbatch", {"select": label.split()[0], "delta": float(label.split("=")[1])})
    train_acc = train_acc or [10, 80, 95, 99.5, 99.9]
    test_acc = test_acc or [10, 80, 88, 89, 90]
    return {"config": {**arms.DEFAULTS, "method": method, **knobs, "seed": seed, "lr_schedule": sched, "lr": lr,
                       "epochs": epochs, "threads": 1},
            "status": status, "n_train": 100, "n_test": 50, "n_batches": 4, "time_per_backprop_s": 0.01,
            "cpu_per_backprop_s": 0.01,
            "history": [{"train_acc": a, "test_acc": t, "train_loss": 2.0 / (e + 1), "train_cpu_s": 360.0 * e,
                         "wall_s": 450.0 * e}
                        for e, (a, t) in enumerate(zip(train_acc, test_acc))]}


def test_endpoints_follow_the_pre_registration():
    r = _fake(0, "Algorithm 1 (fixed)", train_acc=[10, 80, 95, 99.5, 99.9], test_acc=[10, 80, 88, 89, 91])
    assert study.primary(r) == 91  # cosine: the final evaluation
    assert study.primary({**r, "config": {**r["config"], "lr_schedule": "constant"}}) == pytest.approx(
        (88 + 89 + 91) / 3)  # constant: the mean of the last 3
    assert study.e_target(r) == pytest.approx(2 + (99 - 95) / (99.5 - 95))  # interpolated between epochs 2 and 3
    assert study.e_target(_fake(0, "Algorithm 1 (fixed)", train_acc=[10, 50, 90, 95, 98])) is None


def _stage0_row(sched, lr, train, P):
    return {"schedule": sched, "lr": lr, "seeds": 2, "complete": 2, "train_top1": train, "test_top1": P, "P": P,
            "eligible": sched == "constant" or min(train) >= study.TARGET}


def test_stage0_rule_needs_the_target_under_cosine_and_prefers_a_smaller_lr_within_the_tie():
    rows = [_stage0_row("cosine", 0.02, [98.5, 99.2], 92.0),  # best test top-1 but one seed short of 99 %
            _stage0_row("cosine", 0.05, [99.9, 99.8], 91.5),
            _stage0_row("cosine", 0.1, [100, 100], 91.55),  # better by 0.05 < TIE: the smaller lr wins
            _stage0_row("constant", 0.02, [90, 91], 89.0), _stage0_row("constant", 0.05, [93, 93], 90.0)]
    assert study.choose_lr(rows) == {"cosine": 0.05, "constant": 0.05}
    rows[1]["P"] = 91.3  # now 0.1 is better by 0.25 > TIE
    assert study.choose_lr(rows)["cosine"] == 0.1
    none = [_stage0_row("cosine", 0.05, [97, 99.5], 91.0)]
    assert study.choose_lr(none) == {"cosine": None}
    assert "no lr is eligible" in study.calibration_markdown(study.calibration(
        [_fake(100, "Algorithm 1 (fixed)", train_acc=[10, 50, 90, 95, 98]),
         _fake(101, "Algorithm 1 (fixed)", train_acc=[10, 50, 90, 95, 98])]))


def test_calibration_counts_a_diverged_run_as_ineligible():
    rows = study.calibration([_fake(100, "Algorithm 1 (fixed)"), _fake(101, "Algorithm 1 (fixed)", status="diverged")])
    assert rows[0]["complete"] == 1 and not rows[0]["eligible"]


def _main_study(shift, seeds=range(10), noise=(0.3, -0.2, 0.1, -0.4, 0.2, 0.0, -0.1, 0.3, -0.3, 0.1)):
    """Records of stage 1 where hardest δ=0.2 ends `shift` points above the other two arms, plus noise per seed."""
    out = []
    for sched in study.SCHEDULES:
        for s in seeds:
            base = 90 + s * 0.1
            for label, acc in ((study.BASELINE, base), (study.RANDOM, base + noise[s] / 2),
                               (study.HARDEST, base + shift + noise[s])):
                out.append(_fake(s, label, sched, test_acc=[10, 80, acc, acc, acc]))
    return out


def test_a_real_gain_is_a_finding_and_a_null_states_what_it_excludes():
    gain = study.contrasts(_main_study(shift=1.0))
    p_tests = [t for t in gain if t["endpoint"] == "P"]
    assert all(t["holm_p"] <= study.ALPHA and t["n"] == 10 for t in p_tests)
    assert all("**hardest δ=0.2 is higher**" in study.verdict(t) for t in p_tests)
    null = study.contrasts(_main_study(shift=0.0))
    p_null = [t for t in null if t["endpoint"] == "P"]
    assert all(t["holm_p"] > study.ALPHA for t in p_null)
    text = study.verdict(p_null[0])
    assert "no difference detected" in text and "gains above" in text and "MDE" in text
    hi = p_null[0]["mean"] + p_null[0]["half"]
    assert f"gains above {hi:.2f} points" in text  # the bound is the interval's upper end, computed
    # every arm reached 99 % at the same epoch: C is exactly 0, p = 1, no finding
    assert all(t["mean"] == 0 and t["holm_p"] == 1 for t in null if t["endpoint"] == "C")


def test_no_verdict_before_every_pre_registered_seed_is_in():
    tests = study.contrasts(_main_study(shift=1.0, seeds=range(6)))
    assert all(not t["complete"] for t in tests)
    assert all("no verdict until all are" in study.verdict(t) for t in tests)


def test_a_complete_half_gets_no_holm_verdict_while_the_other_half_runs():
    """Holm's correction is over all eight tests: with the constant half still running, even a large gain under
    cosine is reported as interim, with its unadjusted p, never as a finding."""
    recs = [r for r in _main_study(shift=1.0) if r["config"]["lr_schedule"] == "cosine" or r["config"]["seed"] < 6]
    tests = study.contrasts(recs)
    cosine = [t for t in tests if t["schedule"] == "cosine"]
    assert all(t["complete"] and t["waiting"] == 4 and math.isnan(t["holm_p"]) for t in cosine)
    for t in cosine:
        text = study.verdict(t)
        assert "interim" in text and "unadjusted p" in text and "no verdict until the other 4" in text
        assert "Holm-adjusted" not in text and "**" not in text
    assert all("no verdict until all are" in study.verdict(t) for t in tests if t["schedule"] == "constant")


def test_a_run_that_never_reaches_the_target_enters_c_at_e_not_dropped():
    recs = _main_study(shift=0.0)
    for r in recs:
        if study.arms.label(r["config"]) == study.HARDEST and r["config"]["seed"] < 5:
            r["history"] = [{**h, "train_acc": min(h["train_acc"], 98.0)} for h in r["history"]]
    c = next(t for t in study.contrasts(recs) if t["endpoint"] == "C" and t["other"] == study.BASELINE)
    assert c["n"] == 10 and c["reached"] == (5, 10)
    e_base = study.e_target(next(r for r in recs if r["config"]["seed"] == 0))
    assert c["mean"] == pytest.approx(5 / 10 * math.log(4 / e_base))  # 5 seeds at E = 4 against e_base


@pytest.mark.parametrize("diverged_seed", [3])
def test_a_diverged_run_is_counted_and_keeps_the_verdict_back(diverged_seed):
    recs = _main_study(shift=1.0)
    for r in recs:
        if study.arms.label(r["config"]) == study.HARDEST and r["config"]["seed"] == diverged_seed:
            r["status"] = "diverged"
    t = study.contrasts(recs)[0]
    assert t["diverged"] == 1 and t["n"] == 9 and not t["complete"]


def test_the_report_renders_from_real_records_byte_for_byte(tmp_path, capsys):
    """Real tiny runs on digits in the study's two folders; `hardbatch study` renders them, twice the same."""
    base = RunConfig(method="minibatch", model="two_conv_cnn", epochs=2, batch_size=256, lr=0.05, threads=1)
    for sched in ("cosine", "constant"):
        for seed in (100, 101):
            cfg = replace(base, lr_schedule=sched, seed=seed)
            save_record(train(cfg), tmp_path / "stage0" / "records" / f"{arms.record_name(cfg)}.json")
    for cfg in arms.job(replace(base, lr_schedule="cosine"), seeds=(0, 1),
                        specs=("hardbatch delta=0.2", "hardbatch select=random delta=0.2")):
        save_record(train(cfg), tmp_path / "main" / "records" / f"{arms.record_name(cfg)}.json")
    status, out, err = run_main(["study", str(tmp_path)], capsys)
    assert status == 0, err
    text = (tmp_path / "report" / "report.md").read_text()
    assert text == study.report(tmp_path) and "## Stage 0" in text and "## Stage 1" in text
    assert "Chosen by the pre-registered rule" in text and "no verdict until all are" in text
    assert "2 under cosine, 0 under constant so far: an interim table" in text
    assert text.split("## Stage 1")[1].count("| cosine | ") == 3  # Algorithm 1, hardest and random under cosine
    drawn = sorted(p.name for p in (tmp_path / "report" / "figures").glob("*.png"))
    assert drawn == ["fig-cosine-curves.png", "fig-cosine-paired.png"]  # no constant run, no constant figure
    assert all(f"](figures/{name})" in text for name in drawn)


def _stage2(folder, shift):
    """Stage 2's records under cosine, 10 seeds: Selective-Backprop beside Algorithm 1 and hardest δ=0.2 (main/),
    or the MLP's three arms (stage2-mlp/); the first arm of each pair ends `shift` points higher."""
    noise = (0.3, -0.2, 0.1, -0.4, 0.2, 0.0, -0.1, 0.3, -0.3, 0.1)
    out = []
    for s in range(10):
        base = 90 + s * 0.1
        for label, acc in ((study.BASELINE, base), (study.RANDOM, base + noise[s] / 2), (study.HARDEST, base + noise[s] / 3)):
            out.append(_fake(s, label, test_acc=[10, 80, acc, acc, acc]))
        if folder == "main":
            sel = _fake(s, study.BASELINE, test_acc=[10, 80] + [base + shift + noise[s]] * 3)
            sel["config"] = {**sel["config"], "method": "selective", "order": None, "beta": 1.0}
            out.append(sel)
        else:
            out[-1] = _fake(s, study.HARDEST, test_acc=[10, 80] + [base + shift + noise[s]] * 3)
    return out


@pytest.mark.parametrize("folder", ["main", "stage2-mlp"])
def test_stage_2_is_described_with_intervals_and_never_called_a_finding(folder):
    assert study.arms.label(_stage2("main", 0.0)[-1]["config"]) == study.SELECTIVE
    gain = study.exploratory(_stage2(folder, 1.5), folder)
    assert [(t["arm"], t["other"], t["endpoint"]) for t in gain] == [
        (a, b, e) for a, b in study.STAGE2[folder] for e in ("P", "C")]
    first = study.described(gain[0])
    assert gain[0]["n"] == 10 and gain[0]["p"] < 0.05 and "holm_p" not in gain[0]
    assert "excludes no difference, unadjusted" in first and "not a finding" in first and "**" not in first
    null = study.described(study.exploratory(_stage2(folder, 0.0), folder)[0])
    assert "excluded" in null and "MDE" in null and "finding" not in null
    short = study.exploratory([r for r in _stage2(folder, 0.0) if r["config"]["seed"] < 7], folder)
    assert study.described(short[0]).endswith("7 of 10 paired seeds in.")


def test_the_report_has_a_stage_2_section_only_when_stage_2_has_runs(tmp_path, monkeypatch):
    folders = {"main": _main_study(shift=0.0)}  # what read_records gives for each folder
    monkeypatch.setattr(study, "read_records", lambda path: (folders.get(Path(path).name, []), []))
    for name in ("main", "stage2-mlp"):
        (tmp_path / name).mkdir()
    assert "## Stage 2" not in study.report(tmp_path)
    folders["main"] += [r for r in _stage2("main", 0.0) if r["config"]["method"] == "selective"]
    folders["stage2-mlp"] = _stage2("stage2-mlp", 0.0)
    for r in folders["stage2-mlp"]:
        r["config"]["model"] = "mlp"
    text = study.report(tmp_path)
    stage1, stage2 = text.split("## Stage 2")
    assert "selective" not in stage1 and "| cosine | selective β=1 | 10 (0) |" in stage2
    assert "### The MLP" in stage2 and "mlp on" in stage2 and "Regime: Algorithm 1 (cosine)" in stage2
    assert stage2.count("unadjusted p") == 8 and "Holm-adjusted" not in stage2
    # 60 stage-1 runs of 4 epochs at 360 CPU s an epoch: 24 core-hours; 10 Selective-Backprop runs: 4
    assert "| stage 1 | 60 | 24.00 | 30.00 |" in text and "| stage 2, Selective-Backprop | 10 | 4.00 | 5.00 |" in text
    assert "| stage 2, the MLP | 30 | 12.00 | 15.00 |" in text


@pytest.mark.parametrize("shift", [0.0, 1.0])
def test_the_readme_row_gives_all_eight_verdicts_only_when_all_are_in(tmp_path, monkeypatch, shift):
    from hardbatch import readme

    folders = {"main": _main_study(shift=shift), "stage0": []}
    monkeypatch.setattr(readme, "read_records", lambda path: (folders.get(Path(path).name, []), []))
    (tmp_path / "fitting" / "main").mkdir(parents=True)
    row = readme.results_markdown(tmp_path).splitlines()[2]
    assert "Holm over the 8 pre-registered tests" in row and "interim" not in row
    assert row.count("vs ") == 4 and row.count("epochs to 99 % train") == 4
    assert ("**hardest δ=0.2 higher** by" in row) == (shift > 0) and ("no difference detected, gains above" in row) == (shift == 0)
    assert "10/10 seeds of stage 1), **fits**" in row and "under the constant lr it ends at" in row
    chance = next(line for line in readme.results_markdown(tmp_path).splitlines() if line.startswith("The fitting"))
    if shift:  # the four P tests: every interval above 0, and Holm keeps all four
        assert "4 have an unadjusted 95 % interval that excludes 0" in chance and "correction 4 remain." in chance
        assert "opposite" not in chance
    else:
        assert "0 have an unadjusted" in chance and chance.endswith("none remains: none is a finding.")
    folders["main"] = [r for r in folders["main"] if r["config"]["lr_schedule"] == "cosine" or r["config"]["seed"] < 6]
    row = readme.results_markdown(tmp_path).splitlines()[2]
    assert "(cosine, interim)" in row and "no verdict until all eight tests are in" in row and "Holm over" not in row


def test_two_runs_of_one_arm_and_seed_are_refused_by_name_not_one_silently_kept():
    recs = _main_study(shift=0.0, seeds=range(2))
    recs.append(_fake(1, study.HARDEST, lr=0.1))  # the same arm and seed at another lr
    with pytest.raises(ValueError, match=r"two runs of hardest δ=0.2 under cosine with seed 1 \(they differ in lr\)"):
        study.contrasts(recs)


def test_an_interval_on_one_side_of_0_excludes_every_effect_of_the_other_sign():
    p, c = {"endpoint": "P"}, {"endpoint": "C"}
    assert study.excluded(p, -0.17, 0.03) == "gains above 0.03 points and losses beyond 0.17 points are excluded"
    assert study.excluded(p, -0.27, -0.03) == ("its interval lies below 0 (unadjusted): any gain is excluded, and "
                                               "losses beyond 0.27 points")
    assert study.excluded(p, 0.1, 0.4).startswith("its interval lies above 0 (unadjusted): any loss is excluded")
    below = study.excluded(c, math.log(0.946), math.log(0.991))
    assert below.startswith("its interval lies below ×1 (unadjusted): any slow-down is excluded, and a speed-up "
                            "beyond ×0.946")
    assert "slow-down beyond" not in below


def test_a_target_no_run_reached_is_said_to_tell_nothing():
    recs = [_fake(s, label, train_acc=[10, 50, 90, 95, 98]) for s in range(10)
            for label in (study.BASELINE, study.HARDEST, study.RANDOM)]
    c = [t for t in study.exploratory(recs, "stage2-mlp") if t["endpoint"] == "C"]
    assert all(t["reached"] == (0, 0) and "cannot tell them apart" in study.described(t) for t in c)
    assert "excluded" not in study.described(c[0])
    assert "does not fit its training set in any seed" in study.regime(recs)
