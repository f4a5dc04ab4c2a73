"""Files (files.py): atomic writes that never leave half a file. (Special files, devices and named pipes, which
are never replaced nor read: tests/test_reliability_paths.py, through the command line too.)"""
import os

import pytest

from hardbatch import files


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp") or p.name.startswith("."))


def test_atomic_write_writes_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    files.atomic_write(target, "hello")
    files.atomic_write(target, b"bytes")
    assert target.read_bytes() == b"bytes"
    assert leftovers(target.parent) == []


@pytest.mark.parametrize("fails", ["replace", "fsync", "write"])
def test_a_failure_mid_write_keeps_the_old_file(tmp_path, monkeypatch, fails):
    target = tmp_path / "run.json"
    target.write_text("old contents")

    def boom(*args, **kwargs):
        raise OSError("disk on fire")

    if fails == "write":  # data that cannot be written at all (not bytes, not str)
        data = object()
    else:
        data = "new contents " * 1000
        monkeypatch.setattr(os, fails, boom)
    with pytest.raises((OSError, TypeError)):
        files.atomic_write(target, data)
    monkeypatch.undo()
    assert target.read_text() == "old contents"  # never a partial target
    assert leftovers(tmp_path) == []  # and the temporary file is gone
