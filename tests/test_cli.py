"""The command line end to end on digits: `python -m hardbatch`, the `hardbatch` console script, compare.

Each command runs in a subprocess in a temporary folder, exactly as a user would type it; its run
records are then checked against the schema and the keys docs/method.md promises.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hardbatch import cli
from hardbatch.budget import k_for, zeta
from hardbatch.record import load_record, validate_record

CONFIG_KEYS = {"method", "delta", "epochs", "batch_size", "lr", "momentum", "weight_decay", "seed", "model",
               "dataset", "image_size", "device"}
HISTORY_KEYS = {"epoch", "backprops", "train_loss", "test_loss", "test_acc", "wall_s"}
RECORD_KEYS = {"config", "n_batches", "k", "rounds", "backprops", "batch_train_counts", "history",
               "time_per_backprop_s", "version"}


def console_script():
    """The `hardbatch` entry point installed next to this Python (or on PATH)."""
    here = Path(sys.executable).parent / "hardbatch"
    found = str(here) if here.exists() else shutil.which("hardbatch")
    assert found, "the `hardbatch` console script is not installed (pip install -e .)"
    return found


def run(args, cwd):
    # One thread: these models are tiny, and on a CPU shared with other jobs threads only fight.
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    env.pop("HARDBATCH_SMOKE", None)
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def check_record(path, **expected):
    record = load_record(path)  # validates against the schema
    validate_record(json.loads(Path(path).read_text()))
    assert RECORD_KEYS <= record.keys()
    assert CONFIG_KEYS <= record["config"].keys()
    assert all(HISTORY_KEYS <= entry.keys() for entry in record["history"])
    for key, value in expected.items():
        assert record["config"][key] == value, key
    N, E = record["n_batches"], record["config"]["epochs"]
    assert record["status"] == "complete" and record["backprops"] == N * E == sum(record["batch_train_counts"])
    assert [h["backprops"] for h in record["history"]] == [N * e for e in range(E + 1)]
    assert isinstance(record["version"], str) and record["time_per_backprop_s"] > 0
    return record


def test_python_m_hardbatch_run(tmp_path):
    out = run([sys.executable, "-m", "hardbatch", "run", "--epochs", "2", "--delta", "0.5", "--batch-size", "32",
               "--device", "cpu", "--out", "tmp/x.json"], cwd=tmp_path)
    record = check_record(tmp_path / "tmp" / "x.json", method="hardbatch", delta=0.5, epochs=2, dataset="digits",
                          device="cpu", model="small_cnn", seed=0)
    assert record["n_batches"] == 41  # 1297 samples in batches of 32
    assert record["k"] == k_for(0.5, 41) and record["rounds"] == zeta(41, 2, 0.5)
    assert "82 back-props" in out and "tmp/x.json" in out


def test_console_script_run(tmp_path):
    run([console_script(), "run", "--method", "minibatch", "--order", "shuffled", "--epochs", "2", "--subset", "200", "--batch-size", "32",
         "--seed", "3", "--lr", "0.05", "--device", "cpu", "--out", str(tmp_path / "y.json")], cwd=tmp_path)
    record = check_record(tmp_path / "y.json", method="minibatch", epochs=2, seed=3, lr=0.05)
    assert record["config"]["order"] == "shuffled" and record["n_batches"] == 7 and record["rounds"] == 0


def test_console_script_compare(tmp_path):
    out_dir = tmp_path / "cmp"
    out = run([console_script(), "compare", "--epochs", "2", "--seeds", "0", "1", "--deltas", "0.5", "--subset", "300", "--batch-size", "32",
               "--device", "cpu", "--out", str(out_dir)], cwd=tmp_path)
    table = (out_dir / "table.md").read_text()
    assert "**small_cnn on digits**" in table and "Verdict:" in table
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| arm |")]
    arms = [row.split("|")[1].strip() for row in rows]
    assert arms == ["Algorithm 1 (fixed) (baseline)", "hardest δ=0.5", "random δ=0.5"]
    assert all(row.split("|")[2].strip() == "2" for row in rows)  # two seeds per arm
    assert all(row in out for row in rows)  # the same table is printed
    png = (out_dir / "compare.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    records = sorted((out_dir / "records").glob("*.json"))
    assert len(records) == 6
    loaded = [check_record(p, epochs=2, dataset="digits") for p in records]
    assert sorted((r["config"]["method"], r["config"]["select"], r["config"]["seed"]) for r in loaded
                  if r["config"]["method"] == "hardbatch") == [("hardbatch", s, seed) for s in ("hardest", "random")
                                                               for seed in (0, 1)]
    assert all(r["n_train"] == 300 and r["n_batches"] == 10 for r in loaded)
    assert not list(out_dir.rglob("*.tmp*"))  # atomic writes leave nothing behind


@pytest.mark.parametrize("argv, words", [
    (["run", "--delta", "0"], "delta must be a number in (0, 1]"),
    (["run", "--epochs", "-1"], "epochs must be an integer >= 1"),
    (["run", "--select", "hardst"], "invalid choice"),
    (["compare", "--deltas", "1.5"], "delta must be a number in (0, 1]"),
])
def test_bad_values_exit_2_with_one_line(argv, words, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_an_unwritable_output_is_refused_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as stop:
        cli.main(["run", "--device", "cpu", "--out", str(blocker / "sub" / "x.json")])
    assert stop.value.code == 2
    assert "cannot write" in capsys.readouterr().err
