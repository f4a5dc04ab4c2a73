"""Class 2 of issue 12: malformed run records are refused by one full validation, named, skipped by
`report` and run again by `sweep`; hardbatch itself never writes one.

Every record read goes through record.load_record: a regular file of bounded size, strict JSON of
bounded depth (no NaN literals), every field of the right type and range, the history entry by
entry, finite numbers in a complete run. A structure-aware fuzz (hypothesis) mutates a real record
anywhere in its tree and checks that `report` and `sweep` never show a traceback, and that a sweep
always ends with one complete record per run.
"""
import copy
import json
import math
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import hardbatch as hb
from hardbatch import arms, cli, record
from hardbatch.sweep import plan
from helpers import run_main

SWEEP = ["sweep", "--models", "small_cnn", "--datasets", "digits", "--deltas", "0.5", "--seeds", "0", "--controls",
         "--epochs", "1", "--batch-size", "32", "--subset", "64", "--image-size", "0", "--device", "cpu",
         "--no-report"]
BASE = hb.RunConfig(epochs=1, batch_size=32, subset=64, lr=0.005, momentum=0.9, weight_decay=0.0)
RUNS = plan(["small_cnn"], ["digits"], [0.5], [0], controls=(), base=BASE)  # Algorithm 1 and hardest δ=0.5


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A finished tiny sweep (two runs): the records every test starts from."""
    out = tmp_path_factory.mktemp("swept")
    assert cli.main([*SWEEP, "--out", str(out)]) == 0
    return out


def copy_of(swept, where):
    shutil.copytree(swept, where, dirs_exist_ok=True)
    return where, where / "records" / f"{RUNS[1][0]}.json"


def assert_sweep_is_whole(out):
    """One complete record per planned run, each of that very run."""
    for name, cfg in RUNS:
        r = hb.load_record(out / "records" / f"{name}.json")
        assert r["status"] == "complete" and arms.run_key(r["config"]) == arms.run_key(cfg), name


# ------------------------------------------------------------------ the malformed records of the issue, and more

def _set(path, value):
    def change(r):
        target = r
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def _delete(path):
    def change(r):
        target = r
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return change


NESTED = json.loads("[" * 60 + "]" * 60)
MALFORMED = {  # id: a change to a real record (a function), or the file's whole text (bytes)
    "history-not-a-list": _set(("history",), "x"),
    "history-of-numbers": _set(("history",), [1, 2]),
    "history-entry-a-list": _set(("history", 1), [1, 2]),
    "history-epoch-text": _set(("history", 1, "epoch"), "1"),
    "history-entry-missing-key": _delete(("history", 1, "test_acc")),
    "history-extra-entry": lambda r: r["history"].append(dict(r["history"][-1])),
    "sweep-a-string": _set(("sweep",), "name"),
    "sweep-name-a-number": _set(("sweep",), {"name": 3}),
    "delta-a-string": _set(("config", "delta"), "0.5"),
    "model-a-number": _set(("config", "model"), 3),
    "model-null": _set(("config", "model"), None),
    "dataset-a-list": _set(("config", "dataset"), ["digits"]),
    "dataset-unknown": _set(("config", "dataset"), "mnist"),
    "config-unknown-key": _set(("config", "colour"), "blue"),
    "lr-a-string": _set(("config", "lr"), "0.005"),
    "epochs-a-bool": _set(("config", "epochs"), True),
    "null-metric-in-complete": _set(("history", -1, "test_acc"), None),
    "null-loss-in-complete": _set(("history", -1, "train_loss"), None),
    "accuracy-above-100": _set(("history", -1, "test_acc"), 150.0),
    "negative-loss": _set(("history", -1, "test_loss"), -1.0),
    "counts-a-string": _set(("batch_train_counts", 0), "1"),
    "counts-wrong-sum": _set(("batch_train_counts", 0), 5),
    "ledger-null-in-complete": _set(("final_ledger_loss", 0), None),
    "time-negative": _set(("time_per_backprop_s",), -1.0),
    "time-a-string": _set(("time_per_backprop_s",), "fast"),
    "k-above-n": _set(("k",), 99),
    "rounds-negative": _set(("rounds",), -1),
    "backprops-short": _set(("backprops",), 1),
    "n-test-zero": _set(("n_test",), 0),
    "status-unknown": _set(("status",), "finished"),
    "nested-deep-in-config": _set(("config", "colour"), NESTED),
    "nested-extra-key": _set(("extra",), NESTED),
    "nan-literal": b'{"status": NaN}',
    "infinity-literal": "nan-in-history",
    "deep-json": b"[" * 100000 + b"]" * 100000,
    "huge-integer": b'{"n_batches": 1' + b"0" * 5000 + b"}",
    "not-utf8": b'{"status": "\xff\xfe"}',
    "truncated": "half",
    "empty": b"",
    "a-list": b"[]",
    "null": b"null",
}


def write_malformed(path, good, how):
    """Write the malformed version `how` of the record text `good` to `path`."""
    if how == "half":
        path.write_text(good[: len(good) // 2])
    elif how == "nan-in-history":
        r = json.loads(good)
        r["history"][-1]["test_loss"] = math.inf
        path.write_text(json.dumps(r))  # Python writes Infinity, which is not JSON
    elif isinstance(how, bytes):
        path.write_bytes(how)
    else:
        r = json.loads(good)
        how(r)
        path.write_text(json.dumps(r))


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_record_is_refused_with_its_name(case, swept, tmp_path):
    good = (swept / "records" / f"{RUNS[1][0]}.json").read_text()
    path = tmp_path / "bad.json"
    write_malformed(path, good, MALFORMED[case])
    with pytest.raises(ValueError) as e:
        hb.load_record(path)
    assert str(e.value).startswith(f"{path}: ")


def test_the_good_record_itself_loads(swept):
    for name, _ in RUNS:
        assert hb.load_record(swept / "records" / f"{name}.json")["status"] == "complete"


def test_a_record_too_large_is_refused_unread(swept, tmp_path, monkeypatch):
    path = swept / "records" / f"{RUNS[1][0]}.json"
    monkeypatch.setattr(record, "MAX_RECORD_BYTES", path.stat().st_size - 1)
    with pytest.raises(ValueError, match="larger than"):
        hb.load_record(path)


def test_report_lists_and_skips_every_malformed_record(swept, tmp_path, capsys):
    folder, _ = copy_of(swept, tmp_path / "runs")
    good = (folder / "records" / f"{RUNS[1][0]}.json").read_text()
    (folder / "bad").mkdir()
    for case, how in MALFORMED.items():
        write_malformed(folder / "bad" / f"{case}.json", good, how)
    status, out, err = run_main(["report", str(folder), "--no-figures"], capsys)
    assert status == 0, err
    assert "Traceback" not in err
    for case in MALFORMED:
        assert f"bad/{case}.json" in out, case  # listed, with why
    assert f"{len(MALFORMED)} file(s) skipped" in out


def test_sweep_runs_a_malformed_record_again(swept, tmp_path, capsys):
    folder, victim = copy_of(swept, tmp_path / "runs")
    good = victim.read_text()
    for case in ("history-entry-a-list", "null-metric-in-complete", "deep-json", "model-a-number", "truncated"):
        write_malformed(victim, good, MALFORMED[case])
        status, _, err = run_main([*SWEEP, "--out", str(folder)], capsys)
        assert status == 0 and "Traceback" not in err, (case, err)
        assert_sweep_is_whole(folder)


@pytest.mark.parametrize("change", ["nan-accuracy", "null-loss", "string-lr", "bad-history"])
def test_hardbatch_never_writes_a_malformed_record(change, swept, tmp_path):
    r = hb.load_record(swept / "records" / f"{RUNS[1][0]}.json")
    if change == "nan-accuracy":
        r["history"][-1]["test_acc"] = math.nan
    elif change == "null-loss":
        r["history"][1]["train_loss"] = None
    elif change == "string-lr":
        r["config"]["lr"] = "0.005"
    else:
        r["history"][1] = [1]
    with pytest.raises(ValueError):
        hb.save_record(r, tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()


def test_train_refuses_an_empty_test_set_before_training():
    data = hb.load_dataset("digits").subset(64)
    with pytest.raises(ValueError, match="test set is empty"):
        replace(data, x_test=data.x_test[:0], y_test=data.y_test[:0])
    data.x_test, data.y_test = data.x_test[:0], data.y_test[:0]  # emptied behind the dataclass's back
    steps = []
    with pytest.raises(ValueError, match="test set is empty"):
        hb.train(hb.RunConfig(epochs=1, batch_size=32, device="cpu"), data=data, on_step=lambda *a: steps.append(a))
    assert steps == []


# ------------------------------------------------------------------ structure-aware fuzz

HOSTILE = [None, True, False, 0, -1, 1.5, 10**30, -1e308, 1e308, math.nan, math.inf, "", "x", "NaN", [], {},
           [None], {"a": 1}, NESTED, [[[[[1]]]]], {"name": None}]


def tree_paths(x, prefix=()):
    """Every place in a JSON tree: paths of keys and indices (the root excluded)."""
    out = []
    items = x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, list) else ()
    for k, v in items:
        out.append(prefix + (k,))
        out.extend(tree_paths(v, prefix + (k,)))
    return out


def mutate(r, path, op, value):
    """Apply one structural change at `path` of record `r` (in place)."""
    parent = r
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if op == "replace":
        parent[key] = copy.deepcopy(value)
    elif op == "delete":
        del parent[key]
    elif op == "list-for-dict" and isinstance(parent[key], dict):
        parent[key] = list(parent[key].values())
    elif op == "dict-for-list" and isinstance(parent[key], list):
        parent[key] = {str(i): v for i, v in enumerate(parent[key])}
    elif op == "add-key" and isinstance(parent[key], dict):
        parent[key]["unexpected"] = copy.deepcopy(value)
    elif op == "append" and isinstance(parent[key], list):
        parent[key].append(copy.deepcopy(value))


@st.composite
def malformed_record_text(draw, good):
    r = json.loads(good)
    for _ in range(draw(st.integers(1, 3))):
        paths = tree_paths(r)
        if not paths:
            break
        mutate(r, draw(st.sampled_from(paths)),
               draw(st.sampled_from(["replace"] * 4 + ["delete", "list-for-dict", "dict-for-list", "add-key",
                                                        "append"])),
               draw(st.sampled_from(HOSTILE)))
    text = json.dumps(r)  # NaN and Infinity come out as the literals JSON does not have
    cut = draw(st.one_of(st.just(None), st.integers(0, len(text))))
    return text if cut is None else text[:cut]


def fuzz(examples):
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def good_text(swept):
    return (swept / "records" / f"{RUNS[1][0]}.json").read_text()


@fuzz(150)
@given(data=st.data())
def test_fuzz_report_never_shows_a_traceback(data, swept, good_text, capsys):
    text = data.draw(malformed_record_text(good_text))
    with tempfile.TemporaryDirectory() as tmp:
        folder, victim = copy_of(swept, Path(tmp) / "runs")
        victim.write_text(text)
        try:  # the loader: a record that passes its checks, or ValueError naming the file
            hb.load_record(victim)
            loaded = True
        except ValueError as e:
            assert str(e).startswith(f"{victim}: ")
            loaded = False
        event("the record still loads" if loaded else "the record is refused")
        status, out, err = run_main(["report", str(folder), "--no-figures"], capsys)
        assert status == 0, err
        assert "Traceback" not in err
        assert loaded or f"skipped `records/{victim.name}`" in out


@fuzz(12)
@given(data=st.data())
def test_fuzz_sweep_always_ends_with_one_complete_record_per_run(data, swept, good_text, capsys):
    text = data.draw(malformed_record_text(good_text))
    with tempfile.TemporaryDirectory() as tmp:
        folder, victim = copy_of(swept, Path(tmp) / "runs")
        victim.write_text(text)
        status, _, err = run_main([*SWEEP, "--out", str(folder)], capsys)
        assert status == 0, err
        assert "Traceback" not in err
        assert_sweep_is_whole(folder)
