"""Class 2 of issue 12: malformed run records are refused by one full validation, named, skipped by
`report` and run again by `sweep`; hardbatch itself never writes one.

Every record read goes through record.load_record: a regular file of bounded size, strict JSON of
bounded depth (no NaN literals), every field of the right type and range, the history entry by
entry, finite numbers in a complete run. A structure-aware fuzz (hypothesis) mutates a real record
anywhere in its tree and checks that `report` and `sweep` never show a traceback, and that a sweep
always ends with one complete record per run.

Issue 18: a record's thread counts; a report that follows linked folders, survives a loop and lists a
folder it cannot read; copies of one run that disagree; unreadable records a sweep moves aside, never
overwriting; batch counts that do not fit the data; file names that are not UTF-8.
"""
import copy
import json
import math
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import hardbatch as hb
from hardbatch import arms, cli, paper, record
from helpers import RUNS, SWEEP, TINY, run_main

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


# ------------------------------------------------------------------ a record's threads (issue 18)

@pytest.fixture(scope="module")
def good_record(digits):
    return hb.train(hb.RunConfig(**TINY, threads=1), data=digits)


def test_an_older_record_without_threads_used_still_loads(good_record, tmp_path):
    old = {k: v for k, v in good_record.items() if k != "threads_used"}
    hb.save_record(old, tmp_path / "old.json")
    assert "threads_used" not in hb.load_record(tmp_path / "old.json")


@pytest.mark.parametrize("used", [[], [0], [1.5], ["2"], [True], [2000], "1"])
def test_a_record_with_bad_thread_counts_is_refused(used, good_record, tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({**good_record, "threads_used": used}))
    with pytest.raises(ValueError, match="threads_used"):
        hb.load_record(tmp_path / "r.json")


# ------------------------------------------------------------------ folders a report cannot read (issue 18, class 4)

def test_report_follows_a_linked_folder_and_survives_a_loop(good_record, tmp_path):
    real, folder = tmp_path / "elsewhere", tmp_path / "results"
    real.mkdir()
    folder.mkdir()
    hb.save_record(good_record, real / "r.json")
    os.symlink(real, folder / "linked")
    os.symlink(folder, folder / "loop")  # a link back up: read once, never for ever
    records, skipped = paper.read_records(folder)
    assert len(records) == 1 and skipped == []
    os.symlink(tmp_path / "unmounted", folder / "gone")  # a link to a folder that is not there (any more)
    _, skipped = paper.read_records(folder)
    assert [(p.name, "which does not exist" in why) for p, why in skipped] == [("gone", True)]


def test_report_lists_a_folder_it_cannot_read(good_record, tmp_path, monkeypatch):
    folder = tmp_path / "results"
    (folder / "locked").mkdir(parents=True)
    hb.save_record(good_record, folder / "r.json")
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path).name == "locked":  # as chmod 000 does for anyone but root
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = paper.write_report(folder, make_figures=False)
    assert result["records"] == 1
    assert [(p.name, "Permission denied" in why) for p, why in result["skipped"]] == [("locked", True)]
    assert "skipped `locked`: a folder that could not be read (Permission denied)" in result["markdown"]


# ------------------------------------------------------------------ copies of one run that disagree (issue 18, class 5)

def own_name(r):
    return f"{arms.record_name(r['config'])}.json"


def test_the_record_under_the_runs_own_name_is_preferred_and_a_disagreeing_copy_listed(good_record, tmp_path):
    edited = copy.deepcopy(good_record)
    edited["history"][-1]["test_acc"] = 99.9
    hb.save_record(edited, tmp_path / "a-copy.json")  # sorts first
    hb.save_record(good_record, tmp_path / own_name(good_record))
    records, skipped = paper.read_records(tmp_path)
    assert records[0]["history"][-1]["test_acc"] == good_record["history"][-1]["test_acc"]
    assert [p.name for p, _ in skipped] == ["a-copy.json"] and "disagrees with" in skipped[0][1]


def test_a_diverged_copy_never_displaces_a_complete_record(good_record, tmp_path):
    diverged = copy.deepcopy(good_record)
    diverged.update(status="diverged", backprops=diverged["n_batches"])
    diverged["history"] = diverged["history"][:2]
    diverged["batch_train_counts"] = [1] * diverged["n_batches"]
    hb.save_record(diverged, tmp_path / own_name(good_record))  # even under the run's own name
    hb.save_record(good_record, tmp_path / "zz-copy.json")
    records, skipped = paper.read_records(tmp_path)
    assert records[0]["status"] == "complete"
    assert "disagrees" in skipped[0][1] and "(diverged)" in skipped[0][1]


def test_identical_copies_are_counted_once_quietly(good_record, tmp_path):
    hb.save_record(good_record, tmp_path / own_name(good_record))
    hb.save_record({**good_record, "sweep": {"name": "x"}}, tmp_path / "copy.json")
    records, skipped = paper.read_records(tmp_path)
    assert len(records) == 1 and "counted once" in skipped[0][1]


# ------------------------------------------------------------------ records a sweep cannot read (issue 18, class 6)

@pytest.mark.parametrize("change", ["newer-schema", "older-version", "of-another-run", "garbage"])
def test_a_sweep_moves_an_unreadable_record_aside_and_never_overwrites(change, tmp_path, capsys):
    out = tmp_path / "s"
    assert run_main([*SWEEP, "--out", str(out)], capsys)[0] == 0
    name = RUNS[1][0]
    path = out / "records" / f"{name}.json"
    r = json.loads(path.read_text())
    text = {"newer-schema": lambda: json.dumps({**r, "config": {**r["config"], "a_knob_of_version_9": 1}}),
            "older-version": lambda: json.dumps({k: v for k, v in r.items() if k != "torch"}),
            "of-another-run": lambda: (out / "records" / f"{RUNS[0][0]}.json").read_text(),
            "garbage": lambda: "{not json"}[change]()
    for n in (1, 2):  # twice: the second set-aside never replaces the first
        path.write_text(text)
        status, out_text, err = run_main([*SWEEP, "--out", str(out)], capsys)
        assert status == 0 and "Traceback" not in err
        assert f"moved it to {name}.json.unreadable-{n}" in out_text + err
        assert (out / "records" / f"{name}.json.unreadable-{n}").read_text() == text
        assert hb.load_record(path)["status"] == "complete"


# ----------------------------------------------------------- batch counts; odd records in a report (issue 18, class 11)

@pytest.mark.parametrize("change, words", [
    (lambda r: r.update(n_train=r["n_train"] + 64), "differs from the config's subset"),
    (lambda r: r["config"].update(subset=0) or r.update(n_train=10 * r["n_train"]), "does not fit n_train"),
    (lambda r: r["config"].update(batch_size=16, subset=0), "does not fit n_train"),
    (lambda r: r["config"].update(drop_last=True, subset=0) or r.update(n_train=r["n_train"] + 40),
     "expected floor(168/32) = 5"),
    (lambda r: r["config"].update(batch_size=1000, subset=0), "larger than the 128 training samples")])
def test_a_record_whose_batch_count_does_not_fit_is_refused(change, words, good_record, tmp_path):
    r = copy.deepcopy(good_record)
    change(r)
    (tmp_path / "r.json").write_text(json.dumps(r))
    with pytest.raises(ValueError, match="r.json: ") as e:
        hb.load_record(tmp_path / "r.json")
    assert words in str(e.value)


def test_a_drop_last_record_with_floor_batches_loads(digits, tmp_path):
    r = hb.train(hb.RunConfig(epochs=1, batch_size=30, subset=100, drop_last=True, device="cpu", threads=1), data=digits)
    assert r["n_batches"] == 3
    hb.save_record(r, tmp_path / "r.json")
    hb.load_record(tmp_path / "r.json")


def test_a_file_name_that_is_not_utf8_does_not_stop_a_report(good_record, tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    hb.save_record(good_record, folder / "good.json")
    bad = os.fsdecode(b"odd-\xff\xfe.json")
    (folder / bad).write_text("{not json")
    hb.save_record(good_record, folder / os.fsdecode(b"copy-\xff.json"))
    result = paper.write_report(folder, make_figures=False)
    assert result["records"] == 1 and len(result["skipped"]) == 2
    md = (folder / "report" / "report.md").read_text(encoding="utf-8")
    assert "odd-\ufffd\ufffd.json" in md and "copy-\ufffd.json" in md


@pytest.mark.parametrize("text, why", [("{", "not a readable run record"), ("[]", "must be a JSON object, got list"),
                                       ('{"schema": 999}', "lacks the key 'config'"),
                                       ('{"config": 1}', "'config' should be dict, got int")])
def test_a_report_with_only_unreadable_records_names_them_and_why(text, why, tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "r.json").write_text(text)
    status, _, err = run_main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "rep")], capsys)
    assert status == 2 and "1 unreadable .json files: r.json: " in err and why in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
