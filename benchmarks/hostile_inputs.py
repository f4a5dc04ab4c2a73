"""A battery of hostile inputs against the command line: how many end in a traceback or pass silently.

Each case is a command line (with, where it needs them, environment variables or files it writes first)
that a user could type by mistake or that a damaged folder could hand to hardbatch. Each runs in-process
through `cli.main`, as the tests do, and is judged:

- traceback: an exception escaped `cli.main` (a user would see a Python traceback);
- silent: the command exited 0 although the input is wrong (a wrong result nobody is told about);
- unclear: it was refused, but not in one line that names the bad value (or the file) it refused;
- clear: refused in one line naming what was wrong.

    python benchmarks/hostile_inputs.py          # prints one line per case, then the tally; exits 1 on any
                                                  # traceback or silent case

The cases that train use digits at a few dozen images, so the battery takes well under a minute.
"""
import contextlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path

from hardbatch import cli

TINY = ["--dataset", "digits", "--subset", "64", "--batch-size", "32", "--epochs", "1", "--threads", "1"]


def _cases(tmp):
    """(name, argv, env, the text the message must name, setup) for each hostile input."""
    out = str(tmp / "out")
    run = ["run", *TINY]
    yield from (
        (f"--delta {v}", [*run, "--delta", v], {}, v, None)
        for v in ("0", "-0.1", "1.5", "nan", "inf", "abc", "", "1e400", "0x1"))
    yield from ((f"--epochs {v}", [*run[:-2], "--epochs", v, "--threads", "1"], {}, v, None)
                for v in ("0", "-1", "2.5", "x", "1e9"))
    yield from ((f"--batch-size {v}", ["run", "--dataset", "digits", "--batch-size", v], {}, v, None)
                for v in ("0", "-4", "100000", "3.0"))
    yield from ((f"--lr {v}", [*run, "--lr", v], {}, v, None) for v in ("0", "-1", "nan", "1e39", "inf"))
    yield from ((f"--momentum {v}", [*run, "--momentum", v], {}, v, None) for v in ("-0.1", "1", "nan"))
    yield from ((f"--weight-decay {v}", [*run, "--weight-decay", v], {}, v, None) for v in ("-1", "1e39"))
    yield from ((f"--seed {v}", [*run, "--seed", v], {}, v, None) for v in ("-1", str(2**64), "1.5"))
    yield from ((f"--image-size {v}", [*run, "--image-size", v], {}, v, None) for v in ("1", "100000", "-3"))
    yield from ((f"--subset {v}", ["run", "--dataset", "digits", "--subset", v], {}, v, None)
                for v in ("100000", "-1"))
    yield from ((f"--model {v}", [*run, "--model", v], {}, v, None) for v in ("resnet19", "notamodel", ""))
    yield from ((f"--{k} {v}", [*run, f"--{k}", v], {}, v, None)
                for k, v in (("dataset", "mnist2"), ("method", "sgd"), ("select", "hardestt"),
                             ("order", "sorted"), ("lr-schedule", "step"), ("device", "tpu")))
    yield ("--order with hardbatch", [*run, "--method", "hardbatch", "--order", "shuffled"], {}, "order", None)
    yield ("--delta with minibatch", [*run, "--method", "minibatch", "--delta", "0.2"], {}, "delta", None)
    yield ("--beta with hardbatch", [*run, "--beta", "1"], {}, "beta", None)
    yield ("--threads 1024", [*run[:-2], "--threads", "1024"], {}, "1024", None)
    yield ("--threads x", [*run[:-2], "--threads", "x"], {}, "x", None)
    yield from ((f"OMP_NUM_THREADS={v}", ["run", *TINY[:-2]], {"OMP_NUM_THREADS": v}, v, None)
                for v in ("0", "1024", "two", "4,2,1024", "-1"))
    yield from ((f"HARDBATCH_SMOKE={v}", ["run", *TINY], {"HARDBATCH_SMOKE": v}, v, None)
                for v in ("maybe", "2", "yes please"))
    yield ("--device cuda without a GPU", [*run, "--device", "cuda"], {}, "cuda", None)
    yield ("cifar10 missing, no --download", ["run", "--dataset", "cifar10", "--threads", "1"],
           {"HARDBATCH_DATA": str(tmp / "none")}, "cifar10", None)
    yield ("--out is a folder", [*run, "--out", str(tmp)], {}, str(tmp), None)
    yield ("--out under a file", [*run, "--out", str(tmp / "afile" / "r.json")], {}, "afile",
           lambda: (tmp / "afile").write_text("x"))
    yield ("--out under /proc", [*run, "--out", "/proc/r.json"], {}, "/proc", None)
    yield ("--out with a NUL byte", [*run, "--out", "a\0b.json"], {}, "NUL", None)
    yield ("--out 300 characters", [*run, "--out", "x" * 300 + ".json"], {}, "x" * 40, None)
    yield ("--out a FIFO", [*run, "--out", str(tmp / "fifo")], {}, "fifo", lambda: os.mkfifo(tmp / "fifo"))
    yield ("--resume without --checkpoint", [*run, "--resume"], {}, "--checkpoint", None)
    yield ("--checkpoint that is garbage", [*run, "--checkpoint", str(tmp / "bad.pt"), "--resume"], {}, "bad.pt",
           lambda: (tmp / "bad.pt").write_bytes(b"\x80\x02garbage"))
    yield ("compare --seeds 0 0", ["compare", *TINY, "--seeds", "0", "0", "--out", out], {}, "0", None)
    yield ("compare --deltas 2", ["compare", *TINY, "--deltas", "2", "--out", out], {}, "2", None)
    yield ("sweep --seeds 1 1", ["sweep", "--seeds", "1", "1", "--dry-run", "--out", out], {}, "1", None)
    yield ("sweep --arms bogus", ["sweep", "--arms", "bogus delta=0.2", "--dry-run", "--out", out], {}, "bogus",
           None)
    yield ("sweep --arms bad knob", ["sweep", "--arms", "hardbatch gamma=1", "--dry-run", "--out", out], {},
           "gamma", None)
    yield ("sweep --cpus-per-run 64 on ray", ["sweep", *TINY[:-2], "--engine", "ray", "--cpus-per-run", "64",
                                             "--seeds", "0", "--out", out], {}, "64", None)
    yield ("report of a missing folder", ["report", str(tmp / "missing")], {}, "missing", None)
    yield ("report of a file", ["report", str(tmp / "afile2")], {}, "afile2", lambda: (tmp / "afile2").write_text("x"))
    for i, text in enumerate(("{", "[]", json.dumps({"schema": 999}), "\xff\xfe", json.dumps({"config": 1}))):
        folder = tmp / f"records{i}"
        yield (f"report of a damaged record {text[:12]!r}", ["report", str(folder), "--out", str(tmp / f"rep{i}")], {},
               "r.json", lambda folder=folder, text=text: (folder.mkdir(), (folder / "r.json").write_text(text)))


def judge(names, capsys_err, status, error):
    """How a hostile input was answered: 'traceback', 'silent' (exit 0), 'unclear' (no message, or one that does
    not name the bad value `names`) or 'clear'; with the last line said."""
    if error is not None:
        return "traceback", f"{type(error).__name__}: {error}"[:160]
    if status in (0, None):
        return "silent", "exit 0"
    lines = [line for line in capsys_err.strip().splitlines() if line.strip()]
    if not lines:
        return "unclear", f"exit {status}, nothing said"
    said = lines[-1]
    if "Traceback" in capsys_err:
        return "traceback", said[:160]
    if names and names.lower() not in capsys_err.lower() and names not in repr(capsys_err):
        return "unclear", f"does not name {names[:30]!r}: {said[:120]}"
    return "clear", said[:160]


def main():
    tally = {"clear": 0, "unclear": 0, "silent": 0, "traceback": 0}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name, argv, env, names, setup in _cases(tmp):
            if setup:
                setup()
            saved = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            out, err, status, error = io.StringIO(), io.StringIO(), None, None
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    status = cli.main(argv)
            except SystemExit as e:
                status = e.code
            except BaseException as e:  # noqa: BLE001 - what a user would see as a traceback
                error = e
            finally:
                for k, v in saved.items():
                    os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
            verdict, said = judge(names, err.getvalue(), status, error)
            tally[verdict] += 1
            print(f"{verdict:9} {name:40} {said}", flush=True)
    total = sum(tally.values())
    print(f"\n{total} hostile inputs: " + ", ".join(f"{v} {k}" for k, v in tally.items()))
    sys.exit(1 if tally["traceback"] or tally["silent"] else 0)


if __name__ == "__main__":
    main()
