"""A release that installs: one version, declared imports, absolute links on a package index, a citation,
the chapters inside the wheel, and README's release checklist kept honest.

The slow test builds the sdist, then the wheel from the unpacked sdist (what `python -m build` does), calling
setuptools' build backend directly (no download, no isolation), checks what each holds, runs a few of the
tests from the sdist, and runs the wheel's `hardbatch` outside the repository.
"""
import ast
import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml  # PyYAML comes with jupyterlab
from helpers import run_main
from packaging.requirements import Requirement

import hardbatch
from hardbatch import chapters, cli

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = hardbatch.__version__
WHEEL = f"hardbatch-{VERSION}-py3-none-any.whl"
CHAPTERS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))


def load_setup():
    """setup.py as a module, without running setup() (it runs only as __main__, as the build backend runs it)."""
    spec = importlib.util.spec_from_file_location("hardbatch_setup", ROOT / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SETUP = load_setup()


# ---------------------------------------------------------------- one version

def test_the_version_lives_in_one_place():
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "hardbatch.version.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION) and SETUP.version() == VERSION


def test_version_option_prints_it(capsys):
    status, out, _ = run_main(["--version"], capsys)
    assert status == 0 and out.strip() == f"hardbatch {VERSION}"


def test_python_bound_is_3_11():
    assert PYPROJECT["project"]["requires-python"] == ">=3.11" and sys.version_info >= (3, 11)


# ---------------------------------------------------------------- every import declared

# Imported by the package but provided by a declared dependency that requires it (checked below).
PROVIDED_BY = {"ipython": "ipywidgets"}


def third_party_imports():
    """{distribution name: files importing it} for every absolute, non-stdlib import in hardbatch/."""
    dists = importlib.metadata.packages_distributions()
    found = {}
    for path in sorted((ROOT / "hardbatch").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "hardbatch":
                    continue
                for dist in dists.get(top, [top]):
                    found.setdefault(dist.lower(), set()).add(path.name)
    return found


def test_every_imported_package_is_declared():
    project = PYPROJECT["project"]
    declared = {Requirement(r).name.lower() for r in project["dependencies"]}
    declared |= {Requirement(r).name.lower() for extra in project["optional-dependencies"].values() for r in extra}
    imported = third_party_imports()
    assert "scipy" in imported, "metrics.py imports scipy; the scan missed it"
    missing = {}
    for dist, files in imported.items():
        if dist in declared:
            continue
        via = PROVIDED_BY.get(dist)
        requires = (importlib.metadata.requires(via) or []) if via in declared else []
        if not any(Requirement(r).name.lower() == dist for r in requires):
            missing[dist] = sorted(files)
    assert missing == {}, f"imported but not declared in pyproject.toml: {missing}"


# ---------------------------------------------------------------- links on a package index

def relative_links(text):
    return [m["target"] for m in SETUP.LINK.finditer(text) if SETUP.is_relative(m["target"])]


def test_every_relative_link_in_readme_resolves():
    links = relative_links((ROOT / "README.md").read_text())
    assert links, "README.md has relative links (docs/method.md, the chapters): the scan found none"
    missing = []
    for target in links:
        path = target.split("#")[0]
        if path.startswith("results/") and not (ROOT / "results").exists():
            continue  # an sdist leaves results/ out; the long description points at the repository's copy
        if not (ROOT / path).exists():
            missing.append(target)
    assert missing == [], f"README.md links to files that do not exist: {missing}"


def test_long_description_has_absolute_links_to_the_release():
    url, slug = SETUP.repository()
    readme = (ROOT / "README.md").read_text()
    text = SETUP.long_description()
    assert relative_links(text) == []
    rewritten = [m["target"] for m in SETUP.LINK.finditer(text)
                 if m["target"].startswith((f"{url}/blob/v{VERSION}/", f"https://raw.githubusercontent.com/{slug}/"))]
    assert len(rewritten) == len(relative_links(readme))
    assert f"https://raw.githubusercontent.com/{slug}/v{VERSION}/docs/compare.png" in text
    assert f"({url}/blob/v{VERSION}/docs/method.md)" in text


def test_absolute_links_leaves_anchors_and_addresses_alone():
    text = ('[m](docs/method.md#the-ledger) ![f](./docs/f.png "a figure") [a](#two-commands) '
            '[w](https://example.org/x) [e](mailto:a@b.c) `[not](a link)`')
    out = SETUP.absolute_links(text, "https://github.com/o/r", "o/r", "v1.2.3")
    assert out == ('[m](https://github.com/o/r/blob/v1.2.3/docs/method.md#the-ledger) '
                   '![f](https://raw.githubusercontent.com/o/r/v1.2.3/docs/f.png "a figure") [a](#two-commands) '
                   '[w](https://example.org/x) [e](mailto:a@b.c) `[not](a link)`')


# ---------------------------------------------------------------- the citation

def test_citation_cites_the_package_and_the_paper():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software" and cff["authors"]
    assert str(cff["version"]) == VERSION
    assert cff["repository-code"] == PYPROJECT["project"]["urls"]["Repository"]
    paper = cff["preferred-citation"]
    assert paper["title"] == "Can we learn better with hard samples?"
    assert [a["family-names"] for a in paper["authors"]] == ["Sahayam", "Zakkam", "Jayaraman"]
    assert "arXiv:2304.03486" in [i["value"] for i in paper["identifiers"]]


# ---------------------------------------------------------------- the chapters out of the package

def test_chapters_are_copied_out(tmp_path, capsys):
    dest = tmp_path / "my chapters"
    status, out, err = run_main(["chapters", str(dest)], capsys)
    assert status == 0, err
    assert sorted(p.name for p in dest.iterdir()) == sorted(CHAPTERS + ["README.md"])
    assert all((dest / n).read_bytes() == (ROOT / "notebooks" / n).read_bytes() for n in CHAPTERS)
    assert f"{len(CHAPTERS) + 1} files copied" in out
    (dest / CHAPTERS[0]).write_text("my notes")
    status, _, err = run_main(["chapters", str(dest)], capsys)  # a reader's edits are not replaced silently
    assert status == 2 and "--overwrite" in err and "Traceback" not in err
    assert (dest / CHAPTERS[0]).read_text() == "my notes"
    status, _, _ = run_main(["chapters", str(dest), "--overwrite"], capsys)
    assert status == 0 and (dest / CHAPTERS[0]).read_bytes() == (ROOT / "notebooks" / CHAPTERS[0]).read_bytes()
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="not a folder"):
        chapters.copy_chapters(tmp_path / "file")


# ---------------------------------------------------------------- README's release checklist

def release_section():
    text = (ROOT / "README.md").read_text()
    m = re.search(r"^## Releasing\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, "README.md has no '## Releasing' section"
    return m.group(1)


def test_release_checklist_names_this_version_and_real_files():
    section = release_section()
    versions = set(re.findall(r"(?<![\w.])v?(\d+\.\d+\.\d+)(?![\w.])", section))
    assert versions == {VERSION}, f"the checklist names {sorted(versions)}; __version__ is {VERSION}"
    code = re.findall(r"`([^`]+)`", section)
    paths = {token for span in code for token in span.split()
             if re.fullmatch(r"[\w.*/-]+", token) and ("/" in token or re.search(r"\.(py|cff|md|toml|txt|yml)$", token))
             and not token.startswith(("dist/", "/tmp/"))}
    assert {"hardbatch/version.py", "CITATION.cff", "notebooks/*.ipynb", "tests/test_release.py"} <= paths
    missing = [p for p in sorted(paths) if not list(ROOT.glob(p))]
    assert missing == [], f"the checklist names files that do not exist: {missing}"
    assert f"dist/{WHEEL}" in section, f"the checklist's wheel must be the one the build makes, {WHEEL}"
    subcommands = set(re.findall(r"`hardbatch ([a-z-][\w-]*)", section))
    known = set(cli.build_parser()._subparsers._group_actions[0].choices) | {"--version"}
    assert subcommands and subcommands <= known, subcommands - known


def test_make_test_runs_ruff_then_pytest():
    makefile = (ROOT / "Makefile").read_text()
    recipe = [line.strip() for line in re.search(r"^test:.*\n((?:\t.*\n)+)", makefile, re.M).group(1).splitlines()]
    assert "$(BIN)/ruff check ." in recipe and "$(BIN)/python -m pytest" in recipe
    assert recipe.index("$(BIN)/ruff check .") < recipe.index("$(BIN)/python -m pytest"), "lint first: it is quick"
    assert re.search(r"^ruff==", (ROOT / "constraints.txt").read_text(), re.M)
    assert any(Requirement(r).name == "ruff" for r in PYPROJECT["project"]["optional-dependencies"]["test"])


# ---------------------------------------------------------------- the sdist and the wheel, built

def backend(hook, source, out):
    """Call setuptools' build backend hook in `source`, writing into `out`; returns the file's name."""
    code = f"from setuptools import build_meta; print(build_meta.{hook}({str(out)!r}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=source, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_sdist_runs_its_tests_and_the_wheel_carries_the_chapters(tmp_path):
    sdist = tmp_path / backend("build_sdist", ROOT, tmp_path)
    top = f"hardbatch-{VERSION}"
    with tarfile.open(sdist) as tar:
        names = set(tar.getnames())
        tar.extractall(tmp_path / "sdist", filter="data")
    for needed in ["tests/conftest.py", "tests/helpers.py", "tests/test_release.py", "setup.py", "MANIFEST.in",
                   "CITATION.cff", "constraints.txt", "environment.yml", "binder/environment.yml", "binder/postBuild",
                   "notebooks/conftest.py", "notebooks/README.md", "docs/method.md", *(f"notebooks/{n}" for n in CHAPTERS),
                   "book/_config.yml", "book/_toc.yml", "book/intro.md", "book/build.py", "book/text_progress.py"]:
        assert f"{top}/{needed}" in names, f"the sdist lacks {needed}"
    assert not [n for n in names if "__pycache__" in n or n.startswith((f"{top}/results/", f"{top}/book/_build"))]
    assert not [n for n in names if n.startswith(f"{top}/book/") and n.endswith(".ipynb")]  # build-time links
    source = tmp_path / "sdist" / top

    # the sdist runs tests: these use tests/conftest.py and tests/helpers.py, and check its files are in step
    env = {**os.environ, "PYTHONPATH": str(source)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "tests/test_env_sync.py", "tests/test_release.py",
                           "-k", "not sdist_runs_its_tests"], cwd=source, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]

    wheel = tmp_path / "dist" / backend("build_wheel", source, tmp_path / "dist")
    assert wheel.name == WHEEL
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        metadata = z.read(f"hardbatch-{VERSION}.dist-info/METADATA").decode()
        z.extractall(tmp_path / "site")
    assert {f"hardbatch/notebooks/{n}" for n in CHAPTERS + ["README.md"]} <= names
    assert "hardbatch/notebooks/conftest.py" not in names and "hardbatch/chapters.py" in names
    assert f"\nVersion: {VERSION}\n" in metadata and "\nRequires-Python: >=3.11\n" in metadata
    assert re.search(r"^Requires-Dist: scipy", metadata, re.M)
    assert "Description-Content-Type: text/markdown" in metadata
    assert "](docs/" not in metadata and "](notebooks/" not in metadata

    # the wheel's hardbatch, outside the repository: its version, the chapters copied out of it
    site, out = tmp_path / "site", tmp_path / "copied"
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = ("import sys, hardbatch, hardbatch.chapters as c; from hardbatch.cli import main; "
            "print(hardbatch.__file__, c.source_folder()); sys.argv[0] = 'hardbatch'; main(sys.argv[1:])")
    said = {}
    for argv in (["--version"], ["chapters", str(out)], ["compare", "--help"]):
        done = subprocess.run([sys.executable, "-c", code, *argv], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        package, notebooks, said[argv[0]] = done.stdout.split("\n", 2)[0].split() + [done.stdout]
        assert package.startswith(str(site)) and notebooks == str(site / "hardbatch" / "notebooks"), package
    assert f"\nhardbatch {VERSION}\n" in said["--version"] and "--strategies" in said["compare"]
    assert sorted(p.name for p in out.iterdir()) == sorted(CHAPTERS + ["README.md"])
    assert json.loads((out / CHAPTERS[0]).read_text())["cells"]


def test_python_build_and_twine_check_pass(tmp_path):
    """Release step 3 as README says it: `python -m build` (without isolation, so nothing is downloaded: the
    same frontend, the venv's setuptools), then `twine check --strict`, what a package index checks."""
    pytest.importorskip("build", reason="build is absent (pip install -e '.[test]')")
    pytest.importorskip("twine", reason="twine is absent (pip install -e '.[test]')")
    built = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-2000:]
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == [WHEEL, f"hardbatch-{VERSION}.tar.gz"]
    checked = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, files)],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0 and checked.stdout.count("PASSED") == 2, checked.stdout + checked.stderr
