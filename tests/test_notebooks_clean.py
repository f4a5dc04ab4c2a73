"""Every chapter notebook is committed clean and has the parts every chapter promises.

Clean: no outputs and no execution counts, so a diff shows only what a person changed and no
stale result can pass for a fresh one (nbval reruns every notebook in CI). The parts: a first
markdown cell with the Colab and Binder badges, a setup cell that installs on Colab only, at
least one widget (`interact(`), at least one in-notebook `assert`, and a closing markdown cell
with exercises.
"""
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_chapter_notebooks():
    names = {p.name for p in NOTEBOOKS}
    for chapter in ("01_minibatch_sgd", "02_loss_bookkeeping", "03_sorting_and_selection", "04_matching_the_budget"):
        assert f"{chapter}.ipynb" in names


@pytest.fixture(params=NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def notebook(request):
    nb = nbformat.read(request.param, as_version=4)
    nbformat.validate(nb)
    return request.param.name, nb


def test_outputs_are_cleared(notebook):
    name, nb = notebook
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{name}: cells {dirty} carry outputs or execution counts; clear them before committing"


def test_opens_with_title_and_both_badges(notebook):
    name, nb = notebook
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("# ")
    assert "https://colab.research.google.com/github/" in first.source and f"/notebooks/{name}" in first.source
    assert "https://mybinder.org/v2/gh/" in first.source and f"urlpath=lab/tree/notebooks/{name}" in first.source


def test_has_setup_widget_assert_and_exercises(notebook):
    name, nb = notebook
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    setup = next((s for s in code if "google.colab" in s), None)
    assert setup is not None, f"{name}: no setup cell guarded by a check for Colab"
    assert code.index(setup) == 0, f"{name}: the Colab setup cell must be the first code cell"
    assert any("interact(" in s for s in code), f"{name}: no ipywidgets control"
    assert any(line.lstrip().startswith("assert ") for s in code for line in s.splitlines()), f"{name}: no assert"
    last = nb.cells[-1]
    assert last.cell_type == "markdown" and "Exercises" in last.source, f"{name}: must end with exercises"
