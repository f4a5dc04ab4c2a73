"""Build the course as a book: `python book/build.py [--fast] [--out DIR]` (`make book`, `make book-fast`).

Jupyter Book builds the pages from book/ (its _config.yml and _toc.yml, and intro.md). The chapters stay
in notebooks/, where readers, Colab and Binder open them: this script links each one into book/ (the links
are git-ignored) so that its page is <notebook stem>.html at the top of the site, as the chapters' "Read it"
badges expect; the studies' reports follow the chapters, copied in from results/ (`copy_results`). It runs
every chapter at its default sizes (HARDBATCH_SMOKE=0), or in fast mode with --fast, always set explicitly because `CI` alone would turn fast mode on; executed chapters are cached under
DIR/_build/.jupyter_cache, so a chapter whose code did not change is not run again. The kernels draw text
progress bars (book/text_progress.py). The site is DIR/_build/html.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

BOOK = Path(__file__).resolve().parent
NOTEBOOKS = BOOK.parent / "notebooks"
RESULTS = BOOK.parent / "results"
STUDIES = ("fitting", "underfitting")  # the studies' reports the book shows after the chapters (book/_toc.yml)


def link_chapters(book=BOOK, notebooks=NOTEBOOKS):
    """book/<chapter>.ipynb -> ../notebooks/<chapter>.ipynb for every chapter; stale links removed."""
    chapters = sorted(notebooks.glob("0*.ipynb"))
    for link in book.glob("*.ipynb"):
        if link.is_symlink() and not (notebooks / link.name).exists():
            link.unlink()
    for chapter in chapters:
        link = book / chapter.name
        if not link.is_symlink():
            try:
                link.symlink_to(os.path.relpath(chapter, book))
            except FileExistsError:  # another build (make test, make book) linked it just now
                pass
    return [c.stem for c in chapters]


def copy_results(book=BOOK, results=RESULTS, studies=STUDIES):
    """book/results/<study>/: each study's committed report (report.md and its figures/), copied in at build time
    (git-ignored), so that the book shows the reports the records render and never an old copy of them. Each
    file is replaced atomically (two builds may share book/); files the report no longer has are removed."""
    copied = []
    for study in studies:
        src, dst = results / study / "report", book / "results" / study
        wanted = [Path("report.md")] + sorted(p.relative_to(src) for p in (src / "figures").glob("*.png"))
        if not (src / "report.md").is_file():
            continue
        for rel in wanted:
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            tmp = (dst / rel).with_name(f".{rel.name}.{os.getpid()}.tmp")
            shutil.copyfile(src / rel, tmp)
            os.replace(tmp, dst / rel)
        for old in dst.rglob("*"):
            if old.is_file() and old.relative_to(dst) not in wanted and not old.name.endswith(".tmp"):
                old.unlink(missing_ok=True)
        copied.append(study)
    return copied


def build(out, fast=False):
    """Build the book into out/_build/html; returns that folder. Fails (CalledProcessError) if a chapter fails."""
    out = Path(out).resolve()
    link_chapters()
    copy_results()
    ipython = out / "_build" / "ipython"  # the kernels' IPython folder: only its start-up file is ours
    startup = ipython / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(BOOK / "text_progress.py", startup / "00-text-progress.py")
    env = {**os.environ, "HARDBATCH_SMOKE": "1" if fast else "0", "IPYTHONDIR": str(ipython)}
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    subprocess.run([str(jupyter_book), "build", str(BOOK), "--path-output", str(out)], env=env, check=True)
    return out / "_build" / "html"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="run the chapters in fast mode (HARDBATCH_SMOKE=1)")
    parser.add_argument("--out", type=Path, default=BOOK, help="the site goes to OUT/_build/html (default: book/)")
    args = parser.parse_args(argv)
    start = time.monotonic()
    html = build(args.out, fast=args.fast)
    print(f"book built in {time.monotonic() - start:.0f} s ({'fast' if args.fast else 'default'} mode): "
          f"{html / 'index.html'}")


if __name__ == "__main__":
    main()
