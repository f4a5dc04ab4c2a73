"""Run records (record.py): a round trip through JSON, and a schema that names the problem."""
import copy
import json

import pytest

from hardbatch import record as rec


def a_record(N=3, E=2):
    """The smallest complete record the schema accepts, by hand."""
    history = [{"epoch": e, "backprops": e * N, "train_loss": 2.0 - e, "train_acc": 10.0 * e, "test_loss": 2.1 - e,
                "test_acc": 9.0 * e, "backprop_loss": None if e == 0 else 1.5, "train_s": 0.1 * e, "wall_s": 0.2 * e}
               for e in range(E + 1)]
    config = {"method": "hardbatch", "delta": 0.5, "epochs": E, "batch_size": 4, "lr": 0.01, "momentum": 0.9,
              "weight_decay": 0.0, "seed": 0, "model": "small_cnn", "dataset": "digits", "image_size": 0,
              "device": "cpu"}
    return {"config": config, "status": "complete", "n_train": 12, "n_test": 5, "n_batches": N, "k": 2, "rounds": 2,
            "backprops": N * E, "batch_train_counts": [2, 2, 2], "final_ledger_loss": [0.5, 0.4, 0.3],
            "history": history, "time_per_backprop_s": 0.001, "version": "0.1.0", "torch": "2.x"}


def test_save_and_load_round_trip_with_nan_as_null(tmp_path):
    r = a_record()
    r["history"][0]["backprop_loss"] = float("nan")  # epoch 0 has no back-prop loss
    path = tmp_path / "r.json"
    rec.save_record(r, path)
    text = path.read_text()
    assert "NaN" not in text and json.loads(text)["history"][0]["backprop_loss"] is None
    loaded = rec.load_record(path)
    assert loaded["history"][1] == r["history"][1] and loaded["config"] == r["config"]
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left


def test_load_rejects_truncated_json(tmp_path):
    path = tmp_path / "r.json"
    text = json.dumps(a_record())
    path.write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match="not a readable run record"):
        rec.load_record(path)
    with pytest.raises(ValueError, match="r.json"):
        rec.load_record(path)
    path.write_text("")
    with pytest.raises(ValueError, match="not a readable run record"):
        rec.load_record(path)
    with pytest.raises(ValueError, match="not a readable"):
        rec.load_record(tmp_path / "missing.json")


@pytest.mark.parametrize("key", list(rec.RECORD_KEYS))
def test_load_rejects_a_missing_key_by_name(tmp_path, key):
    r = a_record()
    del r[key]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(r))
    with pytest.raises(ValueError, match=repr(key)):
        rec.load_record(path)


@pytest.mark.parametrize("where, key", [("config", k) for k in rec.CONFIG_KEYS] + [("history", k) for k in rec.HISTORY_KEYS])
def test_validate_names_a_missing_config_or_history_key(where, key):
    r = a_record()
    if where == "config":
        del r["config"][key]
    else:
        del r["history"][1][key]
    with pytest.raises(ValueError, match=key):
        rec.validate_record(r)


@pytest.mark.parametrize("change, words", [
    (lambda r: r.update(backprops=5), "N\\*E"),
    (lambda r: r["history"].pop(), "history entry per equivalent epoch"),
    (lambda r: r.update(batch_train_counts=[1, 2]), "batch_train_counts"),
    (lambda r: r.update(status="crashed"), "status"),
    (lambda r: r.update(k="2"), "'k'"),
    (lambda r: r.update(rounds=True), "'rounds'"),
])
def test_validate_rejects_inconsistent_records(change, words):
    r = a_record()
    change(r)
    with pytest.raises(ValueError, match=words):
        rec.validate_record(r)
    with pytest.raises(ValueError):
        rec.save_record(r, "/nonexistent/never-written.json")  # validated before anything is written


def test_a_diverged_record_may_stop_early():
    r = a_record()
    r.update(status="diverged", backprops=4, batch_train_counts=[2, 1, 1])
    r["history"] = r["history"][:2]
    assert rec.validate_record(copy.deepcopy(r)) == r
    with pytest.raises(ValueError, match="JSON object"):
        rec.validate_record([r])
