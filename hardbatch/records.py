"""A folder of run records, read as one set: every run once, and a word on every file that is left out.

record.py reads and checks one record; a report, a study or a chapter reads a whole folder of them, which
may hold copies of a run (a sweep folder copied into another), files that are not records, links to other
folders, and folders that cannot be read. `read_records` decides, in one place, which copy of a run counts
and says why each other file was skipped, so that report.py, paper.py and study.py agree on what they read.
"""
import os
from pathlib import Path

from . import arms
from .record import load_record, without_timing


def shown(x):
    """A path or message as text that can be printed and written: bytes of a file name that are not UTF-8
    (kept by Python as surrogates) become U+FFFD."""
    return os.fsencode(str(x)).decode("utf-8", "replace")


def json_files(folder):
    """(paths, unread): every *.json under `folder`, following links to folders (each folder read once, so
    a link back up the tree is no loop), sorted; and [(folder, why)] for every folder that could not be read."""
    files, unread, seen, stack = [], [], set(), [Path(folder)]
    while stack:
        here = stack.pop()
        try:
            st = here.stat()
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(here) as it:
                entries = list(it)
        except OSError as e:
            unread.append((here, f"a folder that could not be read ({e.strerror or e}); records in it are left out"))
            continue
        for entry in entries:
            try:
                is_dir = entry.is_dir()  # follows a link
            except OSError:
                is_dir = False
            if is_dir:
                stack.append(Path(entry.path))
            elif entry.name.endswith(".json"):
                files.append(Path(entry.path))
            elif entry.is_symlink() and not os.path.exists(entry.path):  # perhaps a folder, now gone
                unread.append((Path(entry.path), f"a link to {os.readlink(entry.path)!r}, which does not exist; "
                                                 f"nothing was read there"))
    return sorted(files), unread


NOT_NUMBERS = ("config", "sweep", "version", "torch", "threads_used")  # what may differ between copies of one run


def _numbers(record):
    return without_timing({k: v for k, v in record.items() if k not in NOT_NUMBERS})


def _own_name(path, record):
    try:
        return path.name == f"{arms.record_name(record['config'])}.json"
    except (ValueError, KeyError, TypeError):
        return False


def read_records(folder):
    """(records, skipped): every run record in `folder` (recursively, through links to folders) and
    [(path, why)] for the rest: files that are not records, folders that could not be read, and copies of
    a run already counted. Of several copies of one run, the complete one is used before a diverged one,
    then the one under the run's own name (arms.record_name), then the first; a copy whose numbers differ
    from the one used is listed as disagreeing, never silently dropped."""
    paths, skipped = json_files(folder)
    copies = {}  # run key -> [(path, record)], in the order first found
    for path in paths:
        try:
            record = load_record(path)
        except ValueError as e:
            skipped.append((path, shown(str(e).removeprefix(f"{path}: "))))
            continue
        copies.setdefault(arms.run_key(record["config"]), []).append((path, record))
    records = []
    for found in copies.values():
        rank = {id(r): (r["status"] != "complete", not _own_name(p, r), i) for i, (p, r) in enumerate(found)}
        used_path, used = min(found, key=lambda pr: rank[id(pr[1])])
        records.append(used)
        for path, record in found:
            if record is used:
                continue
            if _numbers(record) == _numbers(used):
                skipped.append((path, f"the same run as {shown(used_path.name)}, counted once"))
            else:
                status = "" if record["status"] == used["status"] else f" ({record['status']})"
                skipped.append((path, f"disagrees with {shown(used_path)}, a copy of the same run with other "
                                      f"numbers{status}: {shown(used_path.name)} is used; check which is right"))
    return records, skipped
