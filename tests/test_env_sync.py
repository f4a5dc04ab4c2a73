"""The ways in (pip, conda, Binder, Colab) must not drift apart.

conda cannot reach its channels here, so nobody would notice if `environment.yml` or
`binder/environment.yml` went stale. This test reads them next to `pyproject.toml` and fails on:
a package one file has and another lacks, version bounds that differ, a channel other than
conda-forge, a Binder Python not pinned to the lowest one `requires-python` admits (the one CI tests),
a Binder set-up that would not install the package, a notebook whose badges or Colab install line
name another repository or another version than the package says, and a book (book/_config.yml) or a
"Read it" badge that points at another site than the repository's GitHub Pages.

`pyproject.toml` is the one source of truth for the address (`[project.urls] Repository`) and the
bounds; `hardbatch/version.py`'s `__version__` (which pyproject reads) gives the tag `v<version>` that
the Colab and Binder badges open and the Colab install line installs: the release step creates that
tag, so on release day all three name the same released files. Each check is a small function returning
a list of problems, so the tests below can show that a deliberately drifted copy is caught.
"""
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml  # PyYAML comes with jupyterlab (jupyter_server -> jupyter_events)
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]

CONDA_TO_PYPI = {"pytorch": "torch", "pytorch-cpu": "torch"}  # conda-forge name -> PyPI name
CONDA_ONLY = {"pip"}  # tools conda needs for itself, with no PyPI counterpart to compare
NOT_IN_CONDA = {"playwright": "drives Chromium for tests/test_browser.py only, which skips without it",
                "ruff": "the linter `make test` runs (pip, constraints.txt); not needed to run the chapters or tests",
                "ray": "the cluster extra (sweep --engine ray) only; tests/test_cluster.py skips its Ray tests "
                       "without it, and Binder has one CPU machine to offer",
                "jupyter-book": "the book extra (make book); tests/test_book.py skips without it, and a reader "
                                "of the chapters needs none of it",
                "build": "release checks (tests/test_release.py skips them without it)",
                "twine": "release checks (tests/test_release.py skips them without it)"}


# ---------------------------------------------------------------- reading the three files

def package_version(root: Path = ROOT) -> str:
    """hardbatch's __version__, read as text (pyproject.toml's version is dynamic: it reads the same line)."""
    m = re.search(r'^__version__ = "([^"]+)"$', (root / "hardbatch/version.py").read_text(), re.M)
    assert m, "hardbatch/version.py must set __version__ = \"X.Y.Z\""
    return m.group(1)


VERSION = package_version()


def pyproject_requirements(pyproject: dict) -> tuple[dict[str, SpecifierSet], list[str]]:
    """All requirements of pyproject.toml (dependencies and every extra), by PyPI name."""
    project = pyproject["project"]
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    reqs, problems = {}, []
    for line in lines:
        r = Requirement(line)
        name = r.name.lower()
        if name in reqs and reqs[name] != r.specifier:
            problems.append(f"pyproject.toml: {name} has two different bounds, {reqs[name]} and {r.specifier}")
        reqs[name] = r.specifier
    reqs["python"] = SpecifierSet(project["requires-python"])
    return reqs, problems


def conda_requirements(env: dict, label: str) -> tuple[dict[str, SpecifierSet], list[str]]:
    """The conda packages of an environment.yml, by PyPI name; 'name >=1,<2 [build]' specs only."""
    reqs, problems = {}, []
    for dep in env.get("dependencies", []):
        if isinstance(dep, dict):  # the pip: section
            continue
        name, *rest = str(dep).split()
        name = name.lower()
        version = rest[0] if rest else ""
        if re.match(r"^=[^=]", version):  # conda's '=1.2' means '1.2.*'
            version = "==" + version[1:] + ".*"
        pypi = CONDA_TO_PYPI.get(name, name)
        if pypi in reqs:
            problems.append(f"{label}: {pypi} is listed twice")
        try:
            reqs[pypi] = SpecifierSet(version)
        except Exception:
            problems.append(f"{label}: cannot read the version of {dep!r}")
    return reqs, problems


def binder_python(pin: SpecifierSet | None, requires: SpecifierSet) -> list[str]:
    """Binder's Python must be pinned (conda's `python =X.Y`) to the lowest X.Y of requires-python: the
    version CI tests. repo2docker would otherwise choose its own default, which CI never runs."""
    m = re.fullmatch(r">=(\d+\.\d+)", str(requires))
    if not m:
        return [f"pyproject.toml: requires-python must read '>=X.Y', not {requires}"]
    if pin != SpecifierSet(f"=={m.group(1)}.*"):
        return [f"binder/environment.yml: python must be pinned to python ={m.group(1)}, the lowest version "
                f"requires-python admits (the one CI tests), not {pin or 'unpinned'}"]
    return []


def pip_section(env: dict) -> list[str]:
    for dep in env.get("dependencies", []):
        if isinstance(dep, dict) and "pip" in dep:
            return [str(line) for line in dep["pip"]]
    return []


def check_environments(pyproject_path: Path, env_path: Path, binder_env_path: Path) -> list[str]:
    """Every problem that keeps the two conda files from matching pyproject.toml; [] when in step."""
    pyproject = tomllib.loads(pyproject_path.read_text())
    wanted, problems = pyproject_requirements(pyproject)
    wanted = {name: spec for name, spec in wanted.items() if name not in NOT_IN_CONDA}
    for path, label in [(env_path, "environment.yml"), (binder_env_path, "binder/environment.yml")]:
        env = yaml.safe_load(path.read_text())
        if env.get("channels") != ["conda-forge"]:
            problems.append(f"{label}: channels must be exactly [conda-forge], not {env.get('channels')}")
        have, found = conda_requirements(env, label)
        problems += found
        for name, spec in sorted(wanted.items()):
            if name == "python" and label == "binder/environment.yml":
                problems += binder_python(have.get(name), spec)
            elif name not in have:
                problems.append(f"{label}: lacks {name} (pyproject.toml wants {name}{spec})")
            elif have[name] != spec:
                problems.append(f"{label}: {name}{have[name]} but pyproject.toml says {name}{spec}")
        for name in sorted(set(have) - set(wanted) - CONDA_ONLY):
            problems.append(f"{label}: has {name}, which pyproject.toml does not list")
        if "torch" in have and not any(str(d).split()[0] == "pytorch-cpu" for d in env["dependencies"]
                                       if not isinstance(d, dict)):
            problems.append(f"{label}: PyTorch must be conda-forge's CPU build (pytorch-cpu)")
    top, binder = (yaml.safe_load(p.read_text()) for p in (env_path, binder_env_path))
    if "-e ." not in pip_section(top):
        problems.append("environment.yml: the pip section must install the package itself ('-e .')")
    if pip_section(binder):
        problems.append("binder/environment.yml: no pip section (the repository is not there yet "
                        "when repo2docker builds it); binder/postBuild installs the package")
    return problems


# ---------------------------------------------------------------- the repository address

def repository(pyproject: dict) -> tuple[str, str]:
    """(address, 'org/name') from [project.urls] Repository, the one place the address lives."""
    url = pyproject["project"]["urls"]["Repository"].rstrip("/")
    m = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+)", url)
    assert m, f"[project.urls] Repository must be a https://github.com/ORG/REPO address, not {url}"
    return url, m.group(1)


def pages(pyproject: dict) -> str:
    """The repository's GitHub Pages site, where the book lives: github.com/ORG/REPO -> ORG.github.io/REPO/."""
    org, name = repository(pyproject)[1].split("/")
    return f"https://{org}.github.io/{name}/"


def expected_links(pyproject: dict, notebook_name: str, version: str = VERSION) -> dict[str, str]:
    """The badges and the install line of a chapter: Colab, Binder and the install name the release tag
    v<version>; "Read it" opens the chapter's page in the book, which is built from main (pages.yml)."""
    url, slug = repository(pyproject)
    return {
        "colab": f"https://colab.research.google.com/github/{slug}/blob/v{version}/notebooks/{notebook_name}",
        "binder": f"https://mybinder.org/v2/gh/{slug}/v{version}?urlpath=lab/tree/notebooks/{notebook_name}",
        "book": f"{pages(pyproject)}{Path(notebook_name).stem}.html",
        "install": f'%pip install -q "hardbatch @ git+{url}@v{version}"',
    }


# Anything that points Colab, Binder or pip at a GitHub repository, and the repository it names.
REPO_MENTIONS = re.compile(r"(?:colab\.research\.google\.com/github/|mybinder\.org/v2/gh/|git\+https://github\.com/)"
                           r"([\w.-]+/[\w.-]+?)(?=[/@?#\"')\s]|$)")


def check_notebook(path: Path, pyproject: dict) -> list[str]:
    """Badges in the first cell, a Colab-only install pinned to v<version>, no other repository."""
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    source = lambda cell: "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    links = expected_links(pyproject, path.name)
    _, slug = repository(pyproject)
    problems = []
    first = source(cells[0]) if cells else ""
    for kind in ("colab", "binder", "book"):
        if f"]({links[kind]})" not in first:
            problems.append(f"{path.name}: the first cell lacks the {kind} badge link {links[kind]}")
    code = [source(c) for c in cells if c["cell_type"] == "code"]
    setup = code[0] if code else ""
    if links["install"] not in setup:
        problems.append(f"{path.name}: the first code cell lacks the install line {links['install']} "
                        f"(the address of [project.urls] Repository, pinned to the tag v<hardbatch.__version__>)")
    else:
        before = setup[: setup.index(links["install"])]  # ends with the guard line and the indentation
        guard = before.rstrip().splitlines()[-1:] or [""]
        if not re.fullmatch(r"""\s*if\s+["']google\.colab["']\s+in\s+sys\.modules\s*:\s*(#.*)?""", guard[0]) \
                or not re.search(r"\n[ \t]+$", before):
            problems.append(f"{path.name}: the install line must sit under 'if \"google.colab\" in sys.modules:'")
    for text in code:
        for line in text.splitlines():
            if "pip install" in line and re.search(r"(\s-U\b|--upgrade|--force-reinstall|\btorch\b)", line):
                problems.append(f"{path.name}: {line.strip()!r} would reinstall or upgrade what Colab has")
    for cell in cells:
        for other in REPO_MENTIONS.findall(source(cell)):
            if other != slug:
                problems.append(f"{path.name}: names the repository {other}, not {slug} (pyproject.toml)")
    return problems


def check_book(config_path: Path, pyproject: dict) -> list[str]:
    """book/_config.yml names the repository of pyproject.toml and its Pages site, where pages.yml publishes."""
    config = yaml.safe_load(config_path.read_text())
    url, _ = repository(pyproject)
    problems = []
    if config.get("html", {}).get("baseurl") != pages(pyproject):
        problems.append(f"book/_config.yml: html.baseurl must be {pages(pyproject)}")
    if config.get("repository", {}).get("url") != url:
        problems.append(f"book/_config.yml: repository.url must be {url}")
    return problems


# ---------------------------------------------------------------- the tests

@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_real_environment_files_are_in_step_with_pyproject():
    assert check_environments(ROOT / "pyproject.toml", ROOT / "environment.yml",
                              ROOT / "binder/environment.yml") == []


def drifted_copy(tmp_path: Path, edit) -> list[str]:
    """Copy the three files into tmp_path, apply edit(dict of texts) and run the checker on the copy."""
    texts = {name: (ROOT / name).read_text()
             for name in ("pyproject.toml", "environment.yml", "binder/environment.yml")}
    edit(texts)
    for name, text in texts.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return check_environments(tmp_path / "pyproject.toml", tmp_path / "environment.yml",
                              tmp_path / "binder/environment.yml")


def _sub(texts, name, old, new):
    assert old in texts[name], f"the drift test expects {old!r} in {name}"
    texts[name] = texts[name].replace(old, new, 1)


@pytest.mark.parametrize("edit, expected", [
    # a package dropped from the Binder file
    (lambda t: _sub(t, "binder/environment.yml", "  - timm >=0.9\n", ""), "binder/environment.yml: lacks timm"),
    # a bound raised in pyproject.toml only
    (lambda t: _sub(t, "pyproject.toml", '"torch>=2.1"', '"torch>=2.3"'), "environment.yml: torch>=2.1 but pyproject"),
    # a bound changed in the top-level conda file only
    (lambda t: _sub(t, "environment.yml", "matplotlib >=3.7", "matplotlib >=3.5"), "environment.yml: matplotlib>=3.5"),
    # a new runtime dependency added to pyproject.toml and nowhere else
    (lambda t: _sub(t, "pyproject.toml", '"tqdm>=4.60",', '"tqdm>=4.60",\n    "pandas>=2",'), "lacks pandas"),
    # a package added to a conda file only
    (lambda t: _sub(t, "environment.yml", "  - pip\n", "  - pip\n  - seaborn\n"), "has seaborn, which"),
    # Python's bound drifts: the top-level file no longer matches, and Binder is pinned to the old lowest version
    (lambda t: _sub(t, "pyproject.toml", 'requires-python = ">=3.11"', 'requires-python = ">=3.12"'),
     "environment.yml: python>=3.11 but pyproject"),
    (lambda t: _sub(t, "pyproject.toml", 'requires-python = ">=3.11"', 'requires-python = ">=3.12"'),
     "python must be pinned to python =3.12"),
    # Binder's Python left to repo2docker's default
    (lambda t: _sub(t, "binder/environment.yml", "  - python =3.11\n", "  - python >=3.11\n"), "must be pinned"),
    # GPU PyTorch (or the pytorch channel) sneaks in
    (lambda t: _sub(t, "binder/environment.yml", "pytorch-cpu >=2.1", "pytorch >=2.1"), "pytorch-cpu"),
    (lambda t: _sub(t, "environment.yml", "  - conda-forge\n", "  - pytorch\n  - conda-forge\n"), "channels"),
    # the package itself no longer installed
    (lambda t: _sub(t, "environment.yml", "      - -e .\n", "      - tqdm\n"), "'-e .'"),
])
def test_a_drifted_copy_fails(tmp_path, edit, expected):
    problems = drifted_copy(tmp_path, edit)
    assert any(expected in p for p in problems), problems


def test_an_untouched_copy_passes(tmp_path):
    assert drifted_copy(tmp_path, lambda texts: None) == []


def test_postbuild_installs_the_package_and_opens_chapter_1(tmp_path):
    """Run binder/postBuild in a copy of the repository, with a stand-in `python` that only records."""
    repo, home, bin_ = tmp_path / "repo", tmp_path / "home", tmp_path / "bin"
    (repo / "notebooks").mkdir(parents=True)
    (repo / "binder").mkdir()
    home.mkdir()
    bin_.mkdir()
    shutil.copy(ROOT / "binder/postBuild", repo / "binder/postBuild")
    chapters = sorted(p.name for p in (ROOT / "notebooks").glob("0*.ipynb")) or ["01_demo.ipynb", "02_demo.ipynb"]
    for name in chapters:
        (repo / "notebooks" / name).write_text("{}")
    (bin_ / "python").write_text('#!/bin/sh\necho "$@" >> "$HOME/python-calls"\n')
    (bin_ / "python").chmod(0o755)
    env = {"PATH": f"{bin_}:/usr/bin:/bin", "HOME": str(home)}
    subprocess.run(["bash", "binder/postBuild"], cwd=repo, env=env, check=True, timeout=30)
    assert (home / "python-calls").read_text().split() == ["-m", "pip", "install", "--no-deps", "-e", "."]
    config = (home / ".jupyter/jupyter_server_config.py").read_text()
    first = next(name for name in chapters if name.startswith("01_"))
    assert f"c.ServerApp.default_url = '/lab/tree/notebooks/{first}'" in config


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_badges_and_colab_install_use_the_one_address(path, pyproject):
    assert check_notebook(path, pyproject) == []


def test_book_names_the_repository_and_its_pages(tmp_path, pyproject):
    config = (ROOT / "book/_config.yml").read_text()
    assert check_book(ROOT / "book/_config.yml", pyproject) == []
    url, slug = repository(pyproject)
    for old, new in [(pages(pyproject), "https://someone.github.io/fork/"), (url, "https://github.com/someone/fork")]:
        assert old in config
        (tmp_path / "_config.yml").write_text(config.replace(old, new))
        assert len(check_book(tmp_path / "_config.yml", pyproject)) == 1


def test_readme_names_no_other_repository(pyproject):
    readme = ROOT / "README.md"
    if not readme.exists():
        pytest.skip("no README.md yet")
    _, slug = repository(pyproject)
    assert [other for other in REPO_MENTIONS.findall(readme.read_text()) if other != slug] == []


def _notebook(first_cell: str, setup: str) -> dict:
    cell = lambda kind, text: {"cell_type": kind, "metadata": {}, "source": text.splitlines(True),
                               **({"outputs": [], "execution_count": None} if kind == "code" else {})}
    return {"cells": [cell("markdown", first_cell), cell("code", setup)], "metadata": {}, "nbformat": 4,
            "nbformat_minor": 5}


def test_notebook_checker_catches_a_wrong_address_or_pin(tmp_path, pyproject):
    links = expected_links(pyproject, "01_demo.ipynb")
    good_first = f"# Demo\n[![Colab]({links['colab']})]  [![Binder]({links['binder']})]  [![Read it]({links['book']})]\n"
    good_setup = f'import sys\nif "google.colab" in sys.modules:\n    {links["install"]}\nimport hardbatch as hb\n'
    path = tmp_path / "01_demo.ipynb"

    def problems(first, setup):
        path.write_text(json.dumps(_notebook(first, setup)))
        return check_notebook(path, pyproject)

    assert problems(good_first, good_setup) == []
    _, slug = repository(pyproject)
    assert problems(good_first.replace(slug, "someone/fork"), good_setup)  # badges of a fork
    assert problems(good_first, good_setup.replace(slug, "someone/fork"))  # installs from a fork
    assert problems(good_first, good_setup.replace(f"@v{VERSION}", "@main"))  # not pinned
    assert problems(good_first.replace(f"/blob/v{VERSION}/", "/blob/main/"), good_setup)  # badge opens main
    assert problems(good_first.replace(f"/v{VERSION}?", "/HEAD?"), good_setup)  # Binder builds HEAD
    assert problems(good_first.replace(f"[![Read it]({links['book']})]", ""), good_setup)  # no "Read it" badge
    assert problems(good_first.replace(links["book"], links["book"].replace("01_demo", "02_demo")), good_setup)
    assert problems(good_first.replace(links["book"], links["book"].replace(".html", ".ipynb")), good_setup)
    assert problems(good_first, good_setup.replace('if "google.colab" in sys.modules:\n    ', ""))  # not Colab-only
    assert problems(good_first, good_setup + '%pip install -q -U torch\n')  # reinstalls Colab's torch


# Every ref a Colab badge, a Binder badge or a pip install from GitHub names (README and chapters alike).
REFS = re.compile(r"colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/([^/\s]+)/"
                  r"|mybinder\.org/v2/gh/[\w.-]+/[\w.-]+/([^?/\s)\"]+)"
                  r"|git\+https://github\.com/[\w.-]+/[\w.-]+?@([^\s\"')\\]+)")


def named_refs(text: str) -> set[str]:
    return {a or b or c for a, b, c in REFS.findall(text)}


def test_named_refs_reads_badges_and_installs():
    links = expected_links({"project": {"urls": {"Repository": "https://github.com/o/r"}}}, "01_x.ipynb", "9.8.7")
    assert links["book"] == "https://o.github.io/r/01_x.html"
    assert [named_refs(links[kind]) for kind in ("colab", "binder", "install")] == [{"v9.8.7"}] * 3
    assert named_refs("https://mybinder.org/v2/gh/o/r/HEAD?urlpath=lab") == {"HEAD"}


def test_readme_and_chapters_open_and_install_the_same_release():
    """The badges open, and Colab installs, the tag the release step creates: v<__version__>, never main/HEAD."""
    for path in [ROOT / "README.md", *NOTEBOOKS]:
        refs = named_refs(path.read_text())
        assert refs <= {f"v{VERSION}"}, f"{path.name} names {sorted(refs)}, not only v{VERSION}"
    assert named_refs((ROOT / "README.md").read_text()) == {f"v{VERSION}"}, "README's badges name the release"
