"""Sweeps resume without losing or repeating a run; reports rebuild the paper's tables from records.

All runs are tiny (small_cnn on 256 digits, batches of 64: N = 4, E = 2), so every test here
trains for real and the whole file needs well under a minute of CPU time.
"""
import csv
import json
import random
from dataclasses import replace

import pytest

import hardbatch.runner as runner
import hardbatch.sweep as sw
from hardbatch import RunConfig, load_record
from hardbatch.cli import main
from hardbatch.paper import read_records, write_report

BASE = RunConfig(model="small_cnn", dataset="digits", epochs=2, batch_size=64, subset=256, lr=0.05, device="cpu")
GRID = dict(models=("small_cnn",), datasets=("digits",), deltas=(0.5, 0.2), seeds=(0, 1))
ARMS = 4  # Algorithm 1, hardest at δ = 0.5 and 0.2, random at δ = 0.2


@pytest.fixture
def count_runs(monkeypatch):
    """Count the calls to train() that the sweep makes (warm-up runs excluded)."""
    calls = []
    real = runner.train

    def counting(cfg, **kw):
        if kw.get("checkpoint") is not None or "resume" in kw:  # the sweep's timed runs pass these
            calls.append(cfg)
        return real(cfg, **kw)

    monkeypatch.setattr(runner, "train", counting)
    return calls


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """One sweep of 2 seeds × 4 arms, shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("sweep")
    result = sw.sweep(out, **GRID, base=BASE, progress=False, log=lambda *_: None)
    return out, result


def _names():
    return [name for name, _ in sw.plan(**GRID, base=BASE)]


def test_plan_has_the_papers_arms_and_fixed_names():
    runs = sw.plan(**GRID, base=BASE)
    assert len(runs) == 2 * ARMS
    arms = {(c.method, c.select if c.method == "hardbatch" else c.order, c.delta) for _, c in runs}
    assert arms == {("minibatch", "fixed", None), ("hardbatch", "hardest", 0.5), ("hardbatch", "hardest", 0.2),
                    ("hardbatch", "random", 0.2)}
    assert [n for n, _ in runs] == _names()  # deterministic from the config
    assert len(set(_names())) == len(runs)
    other = [n for n, _ in sw.plan(**GRID, base=replace(BASE, epochs=3))]
    assert not set(other) & set(_names())  # another setting never collides with these records
    assert runs[0][0].startswith("digits-small_cnn-minibatch-fixed-s0-")


def test_sweep_writes_one_record_per_run(swept):
    out, result = swept
    files = sorted(p.stem for p in (out / "records").glob("*.json"))
    assert files == sorted(_names())
    assert len(result["ran"]) == 2 * ARMS and not result["skipped"]
    for path in (out / "records").glob("*.json"):
        record = load_record(path)
        assert record["status"] == "complete" and record["backprops"] == record["n_batches"] * 2
    assert not list((out / "checkpoints").glob("*"))  # deleted once each record was written


def test_a_second_sweep_runs_nothing(swept, count_runs):
    out, _ = swept
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "records").glob("*.json")}
    result = sw.sweep(out, **GRID, base=BASE, progress=False, log=lambda *_: None)
    assert count_runs == [] and result["ran"] == [] and len(result["skipped"]) == 2 * ARMS
    assert {p: p.stat().st_mtime_ns for p in (out / "records").glob("*.json")} == mtimes


def _copy_records(src, dst):
    (dst / "records").mkdir(parents=True, exist_ok=True)
    for p in (src / "records").glob("*.json"):
        (dst / "records" / p.name).write_bytes(p.read_bytes())


def test_a_corrupt_record_is_run_again(swept, tmp_path, count_runs):
    _copy_records(swept[0], tmp_path)
    victim = tmp_path / "records" / f"{_names()[1]}.json"
    text = victim.read_text()
    victim.write_text(text[: len(text) // 2])  # a half-written file, as a kill without atomic writes would leave
    with pytest.raises(ValueError):
        load_record(victim)
    assert [p for p, _ in read_records(tmp_path)[1]] == [victim]  # the report skips it, never counts it
    result = sw.sweep(tmp_path, **GRID, base=BASE, progress=False, log=lambda *_: None)
    assert count_runs == [dict(sw.plan(**GRID, base=BASE))[victim.stem]]  # that run, and only it
    assert result["repaired"] == [victim.stem] and len(result["skipped"]) == 2 * ARMS - 1
    assert load_record(victim)["status"] == "complete"


def test_each_seeds_arms_run_in_a_seeded_random_order(tmp_path, count_runs):
    """Not Algorithm 1 first every time (chapter 5's Table 1 would charge a machine's drift to one arm): the arms
    of each seed run shuffled by random.Random(seed), seed after seed, and the records come back in plan order."""
    grid = dict(GRID, seeds=(0, 1, 2))
    runs = sw.plan(**grid, base=BASE)
    result = sw.sweep(tmp_path, **grid, base=BASE, progress=False, log=lambda *_: None)
    ran = [c.to_dict() for c in count_runs]
    assert [c["seed"] for c in ran] == [c.seed for _, c in runs]  # seed by seed: one seed's arms run together
    for seed in grid["seeds"]:
        mine = [c for _, c in runs if c.seed == seed]
        expected = list(mine)
        random.Random(seed).shuffle(expected)
        assert [c for c in ran if c["seed"] == seed] == [c.to_dict() for c in expected]
    firsts = {ran[i]["method"] for i in range(0, len(ran), ARMS)}
    assert firsts != {"minibatch"}, "Algorithm 1 must not run first for every seed"
    assert [r["sweep"]["name"] for r in result["records"]] == [name for name, _ in runs]


def test_seeded_order_shuffles_each_stretch_of_one_seed_in_place():
    items = [(0, "a"), (0, "b"), (0, "c"), (1, "a"), (1, "b"), (1, "c"), (1, "d")]
    out = sw.seeded_order(items, seed_of=lambda it: it[0])
    assert sorted(out) == sorted(items) and [s for s, _ in out] == [s for s, _ in items]
    assert out == sw.seeded_order(items, seed_of=lambda it: it[0])  # the same every time


def test_a_killed_sweep_resumes_from_its_checkpoint(swept, tmp_path, monkeypatch):
    """Kill a run at its last equivalent epoch (after the checkpoint of the one before); the next
    sweep finishes it from that checkpoint, and its record equals that of an uninterrupted run."""
    grid = dict(GRID, seeds=(0,), deltas=(0.2,))  # Algorithm 1, then hardest δ = 0.2
    real = runner.train
    calls = {"n": 0}

    def killed(cfg, **kw):
        if kw.get("checkpoint") is not None:
            calls["n"] += 1
            if calls["n"] == 2:
                def boom(entry):
                    if entry["epoch"] == 2:
                        raise KeyboardInterrupt
                kw = dict(kw, on_epoch=boom)
        return real(cfg, **kw)

    monkeypatch.setattr(runner, "train", killed)
    with pytest.raises(KeyboardInterrupt):
        sw.sweep(tmp_path, controls=(), **grid, base=BASE, progress=False, log=lambda *_: None)
    assert len(list((tmp_path / "records").glob("*.json"))) == 1
    assert len(list((tmp_path / "checkpoints").glob("*.pt"))) == 1
    monkeypatch.setattr(runner, "train", real)
    logs = []
    result = sw.sweep(tmp_path, controls=(), **grid, base=BASE, progress=False, log=logs.append)
    assert len(result["ran"]) == 1 and len(result["skipped"]) == 1
    assert any("(resumed)" in line for line in logs)
    assert not list((tmp_path / "checkpoints").glob("*.pt"))
    for name in result["ran"] + result["skipped"]:  # the same names as in the uninterrupted shared sweep
        a, b = (load_record(d / "records" / f"{name}.json") for d in (tmp_path, swept[0]))
        for key in ("train_loss", "test_loss", "test_acc"):
            assert [h[key] for h in a["history"]] == [h[key] for h in b["history"]], (name, key)
        assert a["batch_train_counts"] == b["batch_train_counts"]


def test_an_unusable_checkpoint_is_replaced(swept, tmp_path):
    _copy_records(swept[0], tmp_path)
    name = _names()[2]
    (tmp_path / "records" / f"{name}.json").unlink()
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / f"{name}.pt").write_bytes(b"not a checkpoint")  # e.g. from another tool
    logs = []
    result = sw.sweep(tmp_path, **GRID, base=BASE, progress=False, log=logs.append)
    assert result["ran"] == [name] and any("cannot be loaded safely" in line and "starting over" in line
                                           for line in logs)
    assert (tmp_path / "checkpoints" / f"{name}.bad").read_bytes() == b"not a checkpoint"  # moved aside, kept
    a, b = (load_record(d / "records" / f"{name}.json") for d in (tmp_path, swept[0]))
    assert [h["test_loss"] for h in a["history"]] == [h["test_loss"] for h in b["history"]]  # run from the start


def test_a_diverged_run_is_recorded_counted_and_never_averaged(tmp_path, swept):
    """A run at a huge lr diverges; its record says so, a re-run sweep keeps it, and the report
    counts it apart while its arm's averages come from the complete runs alone."""
    out = tmp_path / "div"
    hot = replace(BASE, lr=1e6)
    result = sw.sweep(out, **dict(GRID, seeds=(0,), deltas=(0.2,)), controls=(), base=hot, progress=False,
                      log=lambda *_: None)
    assert result["diverged"], "lr=1e6 should make the loss infinite"
    again = sw.sweep(out, **dict(GRID, seeds=(0,), deltas=(0.2,)), controls=(), base=hot, progress=False,
                     log=lambda *_: None)
    assert again["ran"] == []

    # a copy of the shared sweep, plus one diverged record of an arm that also has complete runs
    for p in (swept[0] / "records").glob("*.json"):
        (tmp_path / "mix" / "records").mkdir(parents=True, exist_ok=True)
        (tmp_path / "mix" / "records" / p.name).write_text(p.read_text())
    record = json.loads((swept[0] / "records" / f"{_names()[0]}.json").read_text())
    record["config"]["seed"] = 7
    N = record["n_batches"]  # it diverged in its first equivalent epoch: N back-props, each batch once
    record["status"], record["backprops"], record["batch_train_counts"] = "diverged", N, [1] * N
    record["history"] = record["history"][:1] + [dict(record["history"][1], train_loss=None, test_acc=0.0)]
    (tmp_path / "mix" / "records" / "diverged.json").write_text(json.dumps(record))
    report = write_report(tmp_path / "mix")
    assert report["diverged"] == 1 and report["records"] == 2 * ARMS + 1
    base_row = next(r for r in report["results"] if r["method"] == "minibatch")
    assert base_row["seeds"] == 2 and base_row["diverged"] == 1
    finals = [load_record(swept[0] / "records" / f"{n}.json")["history"][-1]["test_acc"]
              for n in _names() if "-minibatch-" in n]
    assert base_row["test_acc"][0] == pytest.approx(sum(finals) / 2)  # the diverged 0.0 is not in the mean
    assert "1 diverged" in report["markdown"]


def test_report_writes_paper_shaped_tables_and_figures(swept, tmp_path):
    out, _ = swept
    report = write_report(out, tmp_path / "report")
    files = {p.name for p in (tmp_path / "report").rglob("*") if p.is_file()}
    assert {"report.md", "table1.csv", "tables3-5.csv", "table6.csv"} <= files
    pngs = list((tmp_path / "report" / "figures").glob("*.png"))
    assert len(pngs) == 1 and pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    with open(tmp_path / "report" / "table1.csv", newline="") as f:
        t1 = list(csv.DictReader(f))
    assert [r["arm"] for r in t1] == ["Algorithm 1 (fixed)", "hardest δ=0.5", "hardest δ=0.2", "random δ=0.2"]
    assert float(t1[0]["ratio"]) == pytest.approx(1.0) and all(float(r["dt_ms"]) > 0 for r in t1)
    with open(tmp_path / "report" / "tables3-5.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == ARMS and all(r["seeds"] == "2" and r["diverged"] == "0" for r in rows)
    assert all(0 <= float(r["test_acc"]) <= 100 for r in rows)
    with open(tmp_path / "report" / "table6.csv", newline="") as f:
        t6 = list(csv.DictReader(f))
    assert len(t6) == 1 and float(t6[0]["best_delta"]) in (0.5, 0.2)
    best = max((r for r in rows if r["select"] == "hardest"), key=lambda r: float(r["test_acc"]))
    assert float(t6[0]["change_pp"]) == pytest.approx(float(best["test_acc"]) - float(rows[0]["test_acc"]))
    md = report["markdown"]
    for heading in ("Table 1", "Table 6", "digits", "Algorithm 1 (fixed)", "figures/"):
        assert heading in md


def test_the_tuned_recipe_changes_every_arm_alike(swept, tmp_path, count_runs):
    _copy_records(swept[0], tmp_path)  # the paper recipe is done already: only the tuned runs are new
    grid = dict(GRID, seeds=(0,), deltas=(0.2,))
    result = sw.sweep(tmp_path, **grid, controls=(), recipes=("paper", "tuned"), base=BASE, progress=False,
                      log=lambda *_: None)
    assert [(c.lr_schedule, c.augment) for c in count_runs] == [("cosine", True)] * 2
    assert {(r["config"]["lr_schedule"], r["config"]["augment"]) for r in result["records"]} == {
        ("constant", False), ("cosine", True)}
    report = write_report(tmp_path)
    assert {r["setting"].split(",")[0] for r in report["table6"]} == {"paper", "tuned"}


def test_cli_sweep_then_report(tmp_path, capsys):
    args = ["--models", "small_cnn", "--datasets", "digits", "--deltas", "0.5", "--seeds", "0", "--epochs", "1",
            "--batch-size", "64", "--subset", "128", "--image-size", "0", "--device", "cpu", "--controls",
            "--out", str(tmp_path / "s")]
    assert main(["sweep", "--dry-run", *args]) == 0
    assert capsys.readouterr().out.count("missing") == 2
    assert main(["sweep", *args]) == 0
    capsys.readouterr()
    assert main(["sweep", "--dry-run", *args]) == 0
    assert capsys.readouterr().out.count("done ") == 2
    assert main(["report", str(tmp_path / "s"), "--out", str(tmp_path / "r")]) == 0
    assert "Table 1" in capsys.readouterr().out and (tmp_path / "r" / "report.md").exists()
    with pytest.raises(SystemExit) as e:
        main(["report", str(tmp_path / "empty")])
    assert e.value.code == 2


def test_a_sweep_runs_the_peers_of_chapter_6(tmp_path):
    """--betas adds Selective-Backprop and --controls may name proportional: one complete record each."""
    grid = dict(GRID, seeds=(0,), deltas=(0.2,))
    runs = sw.plan(**grid, controls=("random", "proportional"), betas=(1.0,), base=BASE)
    assert [c.method for _, c in runs].count("selective") == 1
    assert [c.select for _, c in runs if c.method == "hardbatch"] == ["hardest", "random", "proportional"]
    result = sw.sweep(tmp_path, **grid, controls=("random", "proportional"), betas=(1.0,), base=BASE,
                      progress=False, log=lambda *_: None)
    assert sorted(result["ran"]) == sorted(n for n, _ in runs)
    selective = load_record(tmp_path / "records" / f"{next(n for n, c in runs if c.method == 'selective')}.json")
    assert selective["status"] == "complete" and selective["backprop_samples"] == selective["backprops"] * 64
