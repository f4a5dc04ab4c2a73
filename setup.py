"""Build-time steps pyproject.toml cannot state on its own; everything else is declared there.

- The long description is README.md with every relative link made absolute, pointing at the release's tag
  (`v<version>`) in the repository of `[project.urls] Repository`: a package index shows the README
  without the repository around it, so `docs/method.md` would lead nowhere. Images point at the raw file.
- The wheel carries the chapters: `build_py` copies notebooks/*.ipynb and notebooks/README.md into
  hardbatch/notebooks/, where `hardbatch chapters DIR` finds them (hardbatch/chapters.py). In the
  repository the notebooks stay in notebooks/; an editable install reads them there.

tests/test_release.py checks both (it loads this file without running setup()).
"""
import re
import shutil
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHAPTER_FILES = ("*.ipynb", "README.md")  # what notebooks/ contributes to the wheel (not its conftest.py)

# a Markdown link or image: [text](target) / ![alt](target); the target stops at a space, a quote or ')'
LINK = re.compile(r"(?P<bang>!?)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)(?P<title>\s+\"[^\"]*\")?\)")


def version(root=HERE):
    """__version__ from hardbatch/version.py, read as text (the one place it lives)."""
    m = re.search(r'^__version__ = "([^"]+)"$', (root / "hardbatch/version.py").read_text(), re.M)
    assert m, "hardbatch/version.py must set __version__ = \"X.Y.Z\""
    return m.group(1)


def repository(root=HERE):
    """(https://github.com/ORG/REPO, ORG/REPO) from pyproject.toml's [project.urls] Repository."""
    url = tomllib.loads((root / "pyproject.toml").read_text())["project"]["urls"]["Repository"].rstrip("/")
    m = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+)", url)
    assert m, f"[project.urls] Repository must be a https://github.com/ORG/REPO address, not {url}"
    return url, m.group(1)


def is_relative(target):
    return not re.match(r"^([a-z][a-z0-9+.-]*:|#|/)", target, re.I)


def absolute_links(text, url, slug, ref):
    """`text` with each relative Markdown link made absolute: files and folders to {url}/blob/{ref}/...,
    images to raw.githubusercontent.com (a package index shows the picture, not GitHub's page)."""
    def absolute(m):
        target = m["target"]
        if not is_relative(target):
            return m[0]
        path = target[2:] if target.startswith("./") else target
        base = f"https://raw.githubusercontent.com/{slug}/{ref}/" if m["bang"] else f"{url}/blob/{ref}/"
        return f"{m['bang']}[{m['text']}]({base}{path}{m['title'] or ''})"
    return LINK.sub(absolute, text)


def long_description(root=HERE):
    url, slug = repository(root)
    return absolute_links((root / "README.md").read_text(encoding="utf-8"), url, slug, f"v{version(root)}")


if __name__ == "__main__":  # the build backend runs this file as __main__; tests import it
    from setuptools import setup
    from setuptools.command.build_py import build_py

    class build_py_with_chapters(build_py):
        """build_py, plus the chapters copied into the built package (not in an editable install, which
        reads notebooks/ in place)."""

        def chapter_files(self):
            return sorted({p for pattern in CHAPTER_FILES for p in (HERE / "notebooks").glob(pattern)})

        def run(self):
            super().run()
            if getattr(self, "editable_mode", False):
                return
            target = Path(self.build_lib) / "hardbatch" / "notebooks"
            target.mkdir(parents=True, exist_ok=True)
            for path in self.chapter_files():
                shutil.copyfile(path, target / path.name)

        def get_outputs(self, include_bytecode=True):
            outputs = super().get_outputs(include_bytecode)
            if getattr(self, "editable_mode", False):
                return outputs
            target = Path(self.build_lib) / "hardbatch" / "notebooks"
            return outputs + [str(target / p.name) for p in self.chapter_files()]

    setup(long_description=long_description(), long_description_content_type="text/markdown",
          cmdclass={"build_py": build_py_with_chapters})
