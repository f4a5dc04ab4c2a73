"""A loss that becomes NaN or infinite stops the run, is recorded as such, and is never averaged in.

"At once" has a price on a GPU: reading the loss every step would make the host wait for the
device every step. So train.py looks at the ledger once per round (Algorithm 2) and at the
losses once per equivalent epoch (both algorithms). These tests pin that contract down: a run
poisoned at back-prop s stops by the end of the round (or pass) that contains s.
"""
import json
import math

import pytest
import torch
from torch import nn

import hardbatch as hb
from hardbatch import cli
from hardbatch.models import SmallCNN
from hardbatch.report import summarize, to_markdown
from helpers import run_main as _main


@pytest.fixture(scope="module")
def digits(digits):
    return digits.subset(320)  # N = 20 batches of 16


class PoisonedAfter(nn.Module):
    """small_cnn whose training forward returns NaN from back-prop `s + 1` on (evaluation is left alone)."""

    def __init__(self, s):
        super().__init__()
        torch.manual_seed(0)
        self.net, self.s, self.calls = SmallCNN(1, 10), s, 0

    def forward(self, x):  # (B, 1, 8, 8) -> (B, 10)
        out = self.net(x)
        if self.training:
            self.calls += 1
            if self.calls > self.s:
                out = out * float("nan")
        return out


def cfg(**kw):
    algorithm2 = {"delta": 0.2} if kw.get("method", "hardbatch") == "hardbatch" else {}
    return hb.RunConfig(**{"batch_size": 16, "epochs": 5, "device": "cpu", **algorithm2, **kw})


N, K = 20, 4  # 320 samples / 16; k = round(0.2 * 20)


@pytest.mark.parametrize("method, s, stop_by", [
    ("hardbatch", 30, 30 + K),  # poisoned in a round: stopped at the next round's start
    ("hardbatch", 5, N),  # poisoned in the warm-up pass: stopped at its end
    ("minibatch", 30, 2 * N),  # Algorithm 1: stopped at the end of the pass
])
def test_a_nan_loss_stops_the_run_soon_after(method, s, stop_by, digits, tmp_path):
    record = hb.train(cfg(method=method), data=digits, model=PoisonedAfter(s), checkpoint=tmp_path / "ck.pt")
    assert record["status"] == "diverged"
    assert s < record["backprops"] <= stop_by < record["n_batches"] * 5
    assert sum(record["batch_train_counts"]) == record["backprops"]
    assert not all(math.isfinite(x) for x in record["final_ledger_loss"])
    # The last checkpoint is the last healthy state: no NaN weights are ever saved.
    if (tmp_path / "ck.pt").exists():
        saved = torch.load(tmp_path / "ck.pt", weights_only=True)
        assert all(torch.isfinite(t).all() for t in saved["model"].values())
        assert saved["state"]["step"] <= s
    # The record is written and reads back, NaN as null, status kept.
    hb.save_record(record, tmp_path / "r.json")
    back = hb.load_record(tmp_path / "r.json")
    assert back["status"] == "diverged" and back["backprops"] == record["backprops"]
    assert "NaN" not in (tmp_path / "r.json").read_text()  # strict JSON


def test_a_healthy_run_is_not_called_diverged(digits):
    record = hb.train(cfg(epochs=2), data=digits, model=PoisonedAfter(10**9))
    assert record["status"] == "complete" and record["backprops"] == 2 * N


def test_reports_never_average_a_diverged_run_in(digits):
    good = hb.train(cfg(epochs=2, seed=0), data=digits)
    bad = hb.train(cfg(epochs=2, seed=1), data=digits, model=PoisonedAfter(25))
    assert bad["status"] == "diverged"
    (row,) = summarize([good, bad])
    assert row["seeds"] == 1 and row["diverged"] == 1
    assert row["test_acc"][0] == pytest.approx(good["history"][-1]["test_acc"])
    assert row["train_acc"][0] == pytest.approx(good["history"][-1]["train_acc"])
    assert math.isfinite(row["test_acc"][0])
    table = to_markdown([row])
    (line,) = [l for l in table.splitlines() if l.startswith("| hardest")]
    assert line.split("|")[2].strip() == "1 (+1 diverged)"  # one seed counted, not two, and the table says so
    assert "diverged" not in to_markdown(summarize([good]))  # nothing said when none diverged


def test_cli_writes_a_diverged_record_and_says_so(tmp_path, capsys):
    out, ck = tmp_path / "r.json", tmp_path / "ck.pt"
    argv = ["run", "--lr", "1e6", "--subset", "200", "--epochs", "3", "--device", "cpu", "--out", str(out),
            "--checkpoint", str(ck)]
    try:
        status = cli.main(argv)
    except SystemExit as e:
        status = e.code
    captured = capsys.readouterr()
    assert status == 1
    assert "Traceback" not in captured.err
    assert "diverged" in captured.err and "NaN or infinite" in captured.err and "--lr" in captured.err
    assert str(out) in captured.err
    record = hb.load_record(out)
    assert record["status"] == "diverged"
    assert record["backprops"] < record["n_batches"] * 3
    assert json.loads(out.read_text())["status"] == "diverged"
    assert not ck.exists()  # it diverged in the first pass: no healthy epoch to keep


def test_compare_names_its_diverged_runs(tmp_path, capsys, monkeypatch):
    """One arm diverges (its model is poisoned): the table holds the others, and stderr names the lost run."""
    import hardbatch.compare as compare_module

    real = compare_module.train

    def poison_algorithm2(cfg, **kw):
        return real(cfg, **kw, **({"model": PoisonedAfter(1)} if cfg.method == "hardbatch" else {}))

    monkeypatch.setattr(compare_module, "train", poison_algorithm2)
    argv = ["compare", "--seeds", "0", "--deltas", "0.5", "--strategies", "hardest", "--epochs", "2",
            "--subset", "128", "--device", "cpu", "--out", str(tmp_path / "c")]
    status, out, err = _main(argv, capsys)
    assert status == 0, err
    assert "1 run(s) diverged and are left out of the table: hardest δ=0.5 seed 0" in err
    assert "Algorithm 1 (fixed)" in out and "Traceback" not in err


@pytest.mark.filterwarnings("ignore:No artists with labels")  # an empty figure: every run diverged
def test_compare_where_every_run_diverges_fails_with_a_clear_message(tmp_path, capsys):
    argv = ["compare", "--lr", "1e6", "--seeds", "0", "--deltas", "0.5", "--strategies", "hardest", "--epochs", "2",
            "--subset", "128", "--device", "cpu", "--out", str(tmp_path / "c")]
    status, out, err = _main(argv, capsys)
    assert status == 1, err
    assert "every run diverged (2 of 2" in err and "nothing to compare" in err and "--lr (now 1e+06)" in err
    assert "| data |" not in out  # no empty table
    records = [hb.load_record(p) for p in sorted((tmp_path / "c" / "records").glob("*.json"))]
    assert [r["status"] for r in records] == ["diverged", "diverged"]


