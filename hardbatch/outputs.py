"""Output paths, checked before any work: a command that would fail to write its result fails at once.

Why: a run or a sweep may train for hours, then find that its record cannot be written (a folder where a
file should be, a file where a folder should be, no permission) or that it would replace a device or a
named pipe given by mistake. The command line checks every path it will write here, first.
"""
import os
import tempfile
from pathlib import Path

from .files import check_not_special, file_kind


def check_writable(path, folder=False):
    """Fail now, not after training, if `path` (a file, or a folder with folder=True) cannot be written:
    a file that exists must be a regular file (a device or a named pipe is never replaced)."""
    path = Path(path)
    parent = path if folder else path.parent
    try:
        if not folder and path.is_dir():
            raise ValueError("it is a folder; give a file name")
        if not folder and path.exists() and not path.is_file():
            raise ValueError(f"it is {file_kind(path.stat().st_mode)}, not a regular file; give a file name")
        for above in (parent, *parent.parents):  # mkdir would only say "File exists"
            if above.exists() and not above.is_dir():
                kind = "a file" if above.is_file() else file_kind(above.stat().st_mode)
                raise ValueError(f"{str(above)!r} is {kind}, not a folder")
        parent.mkdir(parents=True, exist_ok=True)
        # a probe named as atomic_write will name its temporary file (bad bytes, too long a name), gone on close
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{path.name}." if not folder else "tmp", suffix=".tmp"):
            pass
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the path
        raise ValueError(f"cannot write to {str(path)!r}: {getattr(e, 'strerror', None) or e}") from None


def same_file(a, b):
    """True if paths `a` and `b` name one file (also through links or different spellings)."""
    a, b = Path(a), Path(b)
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except (OSError, ValueError):
        return False


def check_outputs(paths):
    """Refuse, before any work, an output file that exists and is not a regular file."""
    for path in paths:
        check_not_special(path)
