"""Class 1 of issue 12, and the I/O half of class 8: special output paths, a full disk, an ASCII terminal.

hardbatch writes regular files only: an existing --out, --checkpoint or report path that is a device,
a named pipe or a folder is refused before any work (exit 2), and files.atomic_write itself never
replaces one. `report` skips a named pipe called x.json (opening it would wait forever). A full disk
names the file being written; help texts with δ, ², · and ± print on an ASCII-only terminal.
"""
import errno
import os
import stat
import subprocess
import sys
import threading

import pytest

import hardbatch as hb
from hardbatch import files
from helpers import run_main

RUN = ["run", "--epochs", "1", "--subset", "64", "--batch-size", "32", "--device", "cpu"]


def no_training(monkeypatch):
    """Make any training fail loudly: a check that should refuse 'before any work' did not."""
    import hardbatch.compare
    import hardbatch.runner

    def refuse(*args, **kwargs):
        raise AssertionError("training started although the command should have been refused first")

    for module in (hardbatch.compare, hardbatch.runner):
        monkeypatch.setattr(module, "train", refuse)


@pytest.fixture
def device_file(tmp_path):
    """A character device like /dev/null, made with mknod (skipped where that is not allowed)."""
    path = tmp_path / "null-device"
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError) as e:
        pytest.skip(f"mknod is not allowed here ({e})")
    return path


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.json"
    os.mkfifo(path)
    return path


def is_char_device(path):
    return stat.S_ISCHR(os.stat(path).st_mode)


@pytest.mark.parametrize("option", ["--out", "--checkpoint"])
def test_run_refuses_a_device_file_and_leaves_it_alone(option, device_file, tmp_path, capsys):
    other = {"--out": ["--checkpoint", str(tmp_path / "ck.pt")], "--checkpoint": ["--out", str(tmp_path / "r.json")]}
    status, _, err = run_main(RUN + [option, str(device_file), *other[option]], capsys)
    assert status == 2 and "Traceback" not in err
    assert str(device_file) in err and "character device, not a regular file" in err
    assert is_char_device(device_file)  # not replaced by a JSON file
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "ck.pt").exists()


@pytest.mark.parametrize("option", ["--out", "--checkpoint"])
def test_run_refuses_a_named_pipe(option, fifo, tmp_path, capsys):
    status, _, err = run_main(RUN + [option, str(fifo)] + (["--out", str(tmp_path / "r.json")] if option != "--out"
                                                            else []), capsys)
    assert status == 2 and "named pipe, not a regular file" in err and str(fifo) in err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


@pytest.mark.parametrize("spelling", ["same", "dotted", "symlink"])
def test_checkpoint_equal_to_out_is_refused(spelling, tmp_path, capsys):
    out = tmp_path / "r.json"
    ck = {"same": out, "dotted": tmp_path / "sub" / ".." / "r.json", "symlink": tmp_path / "link.json"}[spelling]
    (tmp_path / "sub").mkdir()
    if spelling == "symlink":
        out.write_text("{}")
        ck.symlink_to(out)
    status, _, err = run_main(RUN + ["--out", str(out), "--checkpoint", str(ck)], capsys)
    assert status == 2 and "--checkpoint and --out name the same file" in err
    assert "Traceback" not in err


def test_atomic_write_never_replaces_a_special_file(fifo, tmp_path):
    with pytest.raises(ValueError, match="named pipe, not a regular file"):
        files.atomic_write(fifo, "data")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    folder = tmp_path / "a-folder.json"
    folder.mkdir()
    with pytest.raises(ValueError, match="a folder, not a regular file"):
        files.atomic_write(folder, "data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-folder.json", "pipe.json"]  # no temporary file left


def test_atomic_write_never_replaces_a_device(device_file):
    with pytest.raises(ValueError, match="character device, not a regular file"):
        files.atomic_write(device_file, b"data")
    assert is_char_device(device_file)


def a_records_folder(tmp_path):
    """A folder with one real record in it."""
    folder = tmp_path / "runs"
    rec = hb.train(hb.RunConfig(epochs=1, subset=64, batch_size=32, device="cpu"))
    hb.save_record(rec, folder / "real.json")
    return folder


def test_report_skips_a_named_pipe_instead_of_hanging(tmp_path, capsys):
    folder = a_records_folder(tmp_path)
    os.mkfifo(folder / "x.json")
    result = {}
    worker = threading.Thread(target=lambda: result.update(zip(("status", "out", "err"),
                                                               run_main(["report", str(folder), "--no-figures"],
                                                                        capsys))))
    worker.start()
    worker.join(timeout=120)
    if worker.is_alive():  # it opened the pipe: release it, then fail
        fd = os.open(folder / "x.json", os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        worker.join()
        pytest.fail("report blocked on a named pipe")
    assert result["status"] == 0, result["err"]
    assert "x.json" in result["out"] and "named pipe" in result["out"]  # listed as skipped, with why


def test_report_out_that_is_a_file_is_refused_before_reading(tmp_path, capsys, monkeypatch):
    folder = a_records_folder(tmp_path)
    collision = tmp_path / "collision"
    collision.write_text("mine\n")
    import hardbatch.paper

    monkeypatch.setattr(hardbatch.paper, "write_report", lambda *a, **k: pytest.fail("report started"))
    for out in (collision, collision / "sub"):
        status, _, err = run_main(["report", str(folder), "--out", str(out)], capsys)
        assert status == 2 and "is a file, not a folder" in err and "Traceback" not in err
    assert collision.read_text() == "mine\n"


def test_report_refuses_an_output_file_that_is_a_named_pipe(tmp_path, capsys):
    folder = a_records_folder(tmp_path)
    (tmp_path / "rep").mkdir()
    os.mkfifo(tmp_path / "rep" / "report.md")
    status, _, err = run_main(["report", str(folder), "--out", str(tmp_path / "rep"), "--no-figures"], capsys)
    assert status == 2 and "named pipe, not a regular file" in err and "Traceback" not in err


def test_compare_refuses_a_special_file_among_its_outputs_before_training(tmp_path, capsys, monkeypatch):
    no_training(monkeypatch)
    out = tmp_path / "c"
    base = hb.RunConfig(epochs=1, subset=64, batch_size=32)
    name = hb.arms.record_name(hb.arms.job(base, (0.5,), ("hardest",), (0,))[1])
    (out / "records").mkdir(parents=True)
    os.mkfifo(out / "records" / f"{name}.json")
    argv = ["compare", "--epochs", "1", "--subset", "64", "--batch-size", "32", "--seeds", "0", "--deltas", "0.5",
            "--strategies", "hardest", "--device", "cpu", "--out", str(out)]
    status, _, err = run_main(argv, capsys)
    assert status == 2 and f"{name}.json is a named pipe" in err


@pytest.mark.parametrize("where", ["records/{name}.json", "checkpoints/{name}.pt", "report"])
def test_sweep_refuses_a_special_file_among_its_outputs_before_training(where, tmp_path, capsys, monkeypatch):
    from hardbatch.sweep import plan

    no_training(monkeypatch)
    out = tmp_path / "s"
    grid = ["--models", "small_cnn", "--datasets", "digits", "--deltas", "0.5", "--seeds", "0", "--controls",
            "--epochs", "1", "--batch-size", "32", "--subset", "64", "--image-size", "0", "--device", "cpu",
            "--out", str(out)]
    base = hb.RunConfig(epochs=1, batch_size=32, subset=64, lr=0.005, momentum=0.9, weight_decay=0.0)
    name = plan(["small_cnn"], ["digits"], [0.5], [0], controls=(), base=base)[0][0]
    target = out / where.format(name=name)
    target.parent.mkdir(parents=True)
    os.mkfifo(target)
    status, _, err = run_main(["sweep", *grid], capsys)
    assert status == 2 and "named pipe" in err and "Traceback" not in err


def test_a_full_disk_names_the_file(tmp_path, monkeypatch, capsys):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match=r"No space left on device.*r\.json") as e:
        files.atomic_write(tmp_path / "r.json", "x")
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(tmp_path / "r.json")
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone
    out = tmp_path / "out" / "r.json"
    status, _, err = run_main(RUN + ["--out", str(out)], capsys)
    assert status == 2 and "No space left on device" in err and str(out) in err and "Traceback" not in err


def test_help_prints_on_an_ascii_only_terminal(tmp_path):
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "hardbatch", *argv], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, encoding="ascii", errors="strict")
             for argv in (["run", "--help"], ["sweep", "--help"], ["run", "--delta", "2"])]
    (out, err), (sweep_out, _), (_, bad_err) = (p.communicate(timeout=300) for p in procs)
    assert [p.returncode for p in procs] == [0, 0, 2], err
    assert "Traceback" not in err + bad_err
    assert "--epochs" in out and "N?E back-props" in out  # the · replaced, the rest intact
    assert "--deltas" in sweep_out and "delta must be a number in (0, 1]" in bad_err
