"""The committed study in results/underfitting/ re-renders, without training, to exactly the committed report.

`make report` (hardbatch report results/underfitting --out results/underfitting/report) must give back
results/underfitting/report/report.md
byte for byte from the committed run records: the numbers in the README and the report are the
records', and anyone can check them.
"""
from pathlib import Path

import pytest

from hardbatch.paper import write_report
from hardbatch.record import load_record

RESULTS = Path(__file__).resolve().parent.parent / "results" / "underfitting"


def test_the_report_re_renders_from_the_committed_records(tmp_path):
    if not (RESULTS / "report" / "report.md").exists():
        pytest.skip("results/ holds no report yet")
    report = write_report(RESULTS, out=tmp_path / "report")
    assert report["markdown"] == (RESULTS / "report" / "report.md").read_text()
    assert not report["skipped"], report["skipped"]  # every committed file is a valid record
    assert {f["path"].name for f in report["figures"]} == {p.name for p in (RESULTS / "report" / "figures").glob("*.png")}


def test_the_study_is_on_real_fashion_mnist_with_every_image():
    records = [load_record(p) for p in sorted((RESULTS / "records").glob("*.json"))]
    if not records:
        pytest.skip("results/ holds no records yet")
    for r in records:
        assert r["config"]["dataset"] == "fashion-mnist" and r["n_train"] == 60_000 and r["n_test"] == 10_000
        assert r["status"] == "complete" and r["backprops"] == r["n_batches"] * r["config"]["epochs"]
