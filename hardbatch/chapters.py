"""The six chapter notebooks, wherever hardbatch is installed: `hardbatch chapters DIR` copies them out.

A wheel carries them as hardbatch/notebooks/ (setup.py copies them in at build time); a clone or an
editable install has them in the repository's notebooks/, next to the package. Either way the copies
are the committed notebooks, outputs cleared, ready to open in Jupyter.
"""
import shutil
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def source_folder():
    """The folder the chapters are copied from: the installed package's notebooks/, else the repository's."""
    for folder in (PACKAGE / "notebooks", PACKAGE.parent / "notebooks"):
        if any(folder.glob("*.ipynb")):
            return folder
    raise ValueError(f"no chapter notebooks found in {PACKAGE / 'notebooks'} or {PACKAGE.parent / 'notebooks'}; "
                     f"reinstall hardbatch from a wheel or a clone of the repository")


def chapter_files():
    """The chapters (*.ipynb, in order) and the notebooks' README, as paths."""
    folder = source_folder()
    return sorted(folder.glob("*.ipynb")) + [p for p in [folder / "README.md"] if p.is_file()]


def copy_chapters(dest, overwrite=False):
    """Copy the chapters into folder `dest` (created if missing); returns the paths written. A file that
    exists is not replaced unless overwrite=True (a reader's own edits are never lost silently)."""
    dest = Path(dest)
    files = chapter_files()
    if dest.exists() and not dest.is_dir():
        raise ValueError(f"cannot copy the chapters to {str(dest)!r}: it is not a folder")
    there = [dest / p.name for p in files if (dest / p.name).exists()]
    if there and not overwrite:
        raise ValueError(f"{str(dest)!r} already holds {', '.join(p.name for p in there)}; "
                         f"choose another folder or pass --overwrite")
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for path in files:
        shutil.copyfile(path, dest / path.name)
        written.append(dest / path.name)
    return written


def printed(notebook, cell_id):
    """What the cell `cell_id` of an executed notebook printed (its stdout), e.g. a chapter's closing answer."""
    import json

    cells = [c for c in json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"] if c.get("id") == cell_id]
    if not cells:
        raise ValueError(f"{notebook} has no cell with id {cell_id!r}")
    text = lambda t: "".join(t) if isinstance(t, list) else t  # a notebook on disk may split text into lines
    return "".join(text(o.get("text", "")) for o in cells[0].get("outputs", []) if o.get("name") == "stdout").strip()


def update_readme_answer(readme, executed, cell_id="answer6code", block="chapter6"):
    """Put what an executed chapter's answer cell printed into the README, between its BLOCK markers."""
    from .readme import replace_block

    answer = printed(executed, cell_id)
    if not answer:
        raise ValueError(f"the cell {cell_id!r} of {executed} printed nothing: was the notebook executed?")
    replace_block(readme, block, f"> {answer}\n")
