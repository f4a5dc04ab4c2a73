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


ROOT = RESULTS.parent
FITTING = ROOT / "fitting"


def test_the_fitting_study_report_re_renders_byte_for_byte():
    from hardbatch.study import report

    committed = FITTING / "report" / "report.md"
    if not committed.exists():
        pytest.skip("results/fitting/ holds no report yet")
    assert report(FITTING) == committed.read_text()


def test_the_fitting_study_figures_are_the_ones_its_records_draw():
    from hardbatch.study import figures, load

    if not (FITTING / "report" / "report.md").exists():
        pytest.skip("results/fitting/ holds no report yet")
    planned = {name for _, name, *_ in figures(*load(FITTING)[1:])}
    assert planned == {p.name for p in (FITTING / "report" / "figures").glob("*.png")}


def test_the_readme_results_table_is_the_computed_one():
    from hardbatch.readme import results_markdown

    readme = (ROOT.parent / "README.md").read_text()
    table = readme.split("<!-- results:start -->\n")[1].split("<!-- results:end -->")[0]
    assert table == results_markdown(ROOT)


def test_the_makefile_runs_stage_1_at_the_lr_stage_0s_rule_chose():
    """Once a schedule's half of stage 0 is complete (3 lrs x 2 seeds), the Makefile's lr for it is the rule's."""
    import re

    from hardbatch.paper import read_records
    from hardbatch.study import calibration, choose_lr

    makefile = (ROOT.parent / "Makefile").read_text()
    records, _ = read_records(FITTING / "stage0")
    rows = calibration(records)
    lrs = re.search(r"^STAGE0_LRS := (.*)$", makefile, re.M).group(1).split()
    checked = 0
    for sched, var in (("cosine", "LR_COSINE"), ("constant", "LR_CONSTANT")):
        mine = [r for r in rows if r["schedule"] == sched]
        if len(mine) < len(lrs) or any(r["seeds"] < 2 for r in mine):
            continue  # this half of stage 0 is still running
        chosen = choose_lr(rows)[sched]
        assert chosen is not None, f"no {sched} lr is eligible: the pre-registration says what happens next"
        assert float(re.search(rf"^{var} := (.*)$", makefile, re.M).group(1)) == chosen
        checked += 1
    if not checked:
        pytest.skip("stage 0 is still running")


def test_the_readme_compare_table_is_the_computed_one():
    from hardbatch.report import compare_markdown

    readme = (ROOT.parent / "README.md").read_text()
    table = readme.split("<!-- compare:start -->\n")[1].split("<!-- compare:end -->")[0]
    assert table == compare_markdown(ROOT.parent / "docs" / "compare" / "records")
    assert "1 torch thread(s) per run" in table  # the default for our small nets, stated under the table


def test_the_readme_chapter_6_answer_has_the_form_its_closing_cell_prints():
    """The README quotes chapter 6's computed answer (`make readme-chapter6` copies it): the quote must match the
    f-string of the cell, literal text as written and a value wherever the cell interpolates one."""
    import ast
    import re

    import nbformat

    nb = nbformat.read(ROOT.parent / "notebooks" / "06_beyond_the_paper.ipynb", as_version=4)
    source = next(c.source for c in nb.cells if c.get("id") == "answer6code")
    assign = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Assign)
                  and getattr(n.targets[0], "id", None) == "answer")
    pattern = "".join(re.escape(v.value) if isinstance(v, ast.Constant) else ".+?" for v in assign.value.values)
    readme = (ROOT.parent / "README.md").read_text()
    quote = readme.split("<!-- chapter6:start -->\n")[1].split("<!-- chapter6:end -->")[0]
    assert quote.startswith("> ") and quote.endswith("\n")
    assert re.fullmatch(pattern, quote[2:-1]), quote
