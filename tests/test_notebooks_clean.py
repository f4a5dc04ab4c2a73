"""Every chapter notebook is committed clean and has the parts every chapter promises.

Clean: no outputs and no execution counts, so a diff shows only what a person changed and no
stale result can pass for a fresh one (nbval reruns every notebook in CI). The parts: a first
markdown cell with the Colab and Binder badges and the chapter's measured running time, a setup
cell that installs on Colab only and sets torch's threads the one way every chapter does, at least
one widget drawn with `Live` (one figure per widget, redrawn in place; never `interact`, whose
first call left a frozen second copy), at least one in-notebook `assert`, a "Predict first." prompt
before a main experiment, and closing exercises, each with a hint in a collapsible `<details>` block
and, when it asks for code, a collapsed solution cell right after it that nbval runs.
"""
import re
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


def test_cell_ids_are_unique_across_the_course():
    """A book built from the chapters links to cells by id: an id two chapters share would be ambiguous."""
    seen = {}
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            seen.setdefault(cell.id, []).append(path.name)
    shared = {i: names for i, names in seen.items() if len(names) > 1}
    assert not shared, f"cell ids used more than once: {shared}"


def test_outputs_are_cleared(notebook):
    name, nb = notebook
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{name}: cells {dirty} carry outputs or execution counts; clear them before committing"


def test_opens_with_title_and_both_badges(notebook):
    name, nb = notebook
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("# ")
    assert re.search(r"running every cell took (about )?\d+ (s|min)", first.source, re.I), \
        f"{name}: the header must state the measured running time of the default mode"
    assert "TIME_" not in first.source, f"{name}: a time placeholder was left in the header"
    assert "https://colab.research.google.com/github/" in first.source and f"/notebooks/{name}" in first.source
    assert "https://mybinder.org/v2/gh/" in first.source and f"urlpath=lab/tree/notebooks/{name}" in first.source


def test_has_setup_widget_assert_and_exercises(notebook):
    name, nb = notebook
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    setup = next((s for s in code if "google.colab" in s), None)
    assert setup is not None, f"{name}: no setup cell guarded by a check for Colab"
    assert code.index(setup) == 0, f"{name}: the Colab setup cell must be the first code cell"
    assert "THREADS = 1" in setup and "torch.set_num_threads(THREADS)" in setup, \
        f"{name}: the setup cell must set torch's threads as every chapter does"
    assert any("Live(" in s for s in code), f"{name}: no widget (hardbatch.widgets.Live)"
    assert not any("interact(" in s for s in code), f"{name}: use Live, one figure per widget, not interact"
    assert any(line.lstrip().startswith("assert ") for s in code for line in s.splitlines()), f"{name}: no assert"


def exercises(nb):
    """[(exercise markdown cell, the cell after it or None)] of the cells after the '## Exercises' heading."""
    start = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and "## Exercises" in c.source), None)
    assert start is not None, "no '## Exercises' heading"
    tail = nb.cells[start + 1:]
    return [(c, tail[i + 1] if i + 1 < len(tail) else None) for i, c in enumerate(tail)
            if c.cell_type == "markdown" and c.source.startswith("**Exercise ")]


def is_solution(cell):
    return cell is not None and cell.cell_type == "code" and {"solution", "hide-input"} <= set(cell.metadata.get("tags", []))


def test_ends_with_exercises_each_with_a_hint_and_a_solution_that_runs(notebook):
    """Issue 20: every coding exercise is followed by a solution cell that nbval executes (a <details> block in
    markdown would never run), tagged `solution` and `hide-input` and collapsed, that asserts what it shows. An
    exercise without one must say why (it needs a GPU, or a hand on the Interrupt button)."""
    name, nb = notebook
    found = exercises(nb)
    assert found, f"{name}: no exercise cells ('**Exercise N.** ...') after the '## Exercises' heading"
    numbers = [int(re.match(r"\*\*Exercise (\d+)\.\*\*", c.source).group(1)) for c, _ in found]
    assert numbers == list(range(1, len(found) + 1)), f"{name}: exercises numbered {numbers}"
    after_heading = nb.cells[nb.cells.index(found[0][0]) - 1:]
    assert all(c.cell_type == "markdown" and c.source.startswith("**Exercise ") or is_solution(c)
               for c in after_heading[1:]), f"{name}: after the exercises' heading, only exercises and their solutions"
    for (cell, after), n in zip(found, numbers):
        assert cell.source.count("<details><summary>Hint</summary>") == 1, f"{name}: exercise {n} needs one hint"
        if "*No solution cell:" in cell.source:
            assert not is_solution(after), f"{name}: exercise {n} says it has no solution cell, yet has one"
            continue
        assert is_solution(after), f"{name}: exercise {n} is not followed by a cell tagged solution and hide-input"
        assert after.metadata.get("jupyter", {}).get("source_hidden") is True, f"{name}: solution {n} is not collapsed"
        assert any(line.lstrip().startswith("assert ") for line in after.source.splitlines()), \
            f"{name}: solution {n} asserts nothing"
        assert "NBVAL_SKIP" not in after.source and "raises-exception" not in after.metadata.get("tags", []), \
            f"{name}: solution {n} must run under nbval"


def test_asks_the_reader_to_predict_before_each_main_experiment(notebook):
    """A short 'Predict first.' prompt right before an experiment's code cell (issue 20)."""
    name, nb = notebook
    prompts = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith("**Predict first.**")]
    assert prompts, f"{name}: no 'Predict first.' prompt"
    for i in prompts:
        assert nb.cells[i + 1].cell_type == "code" and "?" in nb.cells[i].source, \
            f"{name}: a 'Predict first.' prompt must ask a question right before the cell that answers it"
