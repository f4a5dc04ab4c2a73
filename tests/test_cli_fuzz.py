"""Fuzzing the command line: whatever the arguments, the user sees a result or one clear error.

hypothesis builds `hardbatch run` argument lists from valid and invalid tokens for every option
(and now and then a random string), and calls the real `cli.main` in-process: the parser, the
config checks, the data set loading and the training loop all run for real. The only help is a
small base (64 digits, one epoch) so that the valid combinations finish in a fraction of a second.
The property: main returns 0, or exits with 2 and a message; 1 only for a diverged run; never
another exception, never a traceback.
"""
import contextlib
import io
import os
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hardbatch import cli

# option: (valid tokens, invalid tokens). Valid ones are drawn most often, so that a good share of
# the argument lists are valid as a whole and really train; then invalid tokens, then any text.
TOKENS = {
    "--epochs": (["1", "2"], ["0", "-1", "2.5", "x", "", "1e1"]),
    "--delta": (["0.5", "1", "0.2", "1e-9"], ["0", "-0.1", "1.5", "nan", "-inf", "abc", "0x1"]),
    "--batch-size": (["16", "32", "64", "1"], ["0", "-3", "65", "100000", "1e2"]),
    "--lr": (["0.01", "0.1", "1e6"], ["0", "-1", "nan", "inf", "1e400"]),
    "--momentum": (["0", "0.9", "0.999"], ["1", "-0.1", "nan"]),
    "--weight-decay": (["0", "1e-4"], ["-1", "inf"]),
    "--method": (["minibatch", "hardbatch"], ["sgd", ""]),
    "--order": (["fixed", "shuffled"], ["random"]),
    "--select": (["hardest", "random", "easiest"], ["worst", "all"]),
    "--seed": (["0", "3", str(2**63 - 1)], ["-1", "1.5", str(2**63)]),
    "--model": (["small_cnn"], ["notamodel", "", "small-cnn"]),
    "--dataset": (["digits"], ["mnist", "cifar10"]),
    "--image-size": (["0", "4", "8"], ["1", "-1", "x", "600"]),
    "--subset": (["64", "32"], ["-1", "100000", "x"]),
    "--lr-schedule": (["constant", "cosine"], ["step"]),
    "--device": (["cpu", "auto"], ["tpu"] + (["cuda"] if not torch.cuda.is_available() else [])),
    "--checkpoint": (["{tmp}/ck.pt"], ["{file}/ck.pt", "{tmp}"]),
    "--out": (["{tmp}/r.json", "{tmp}/deeper/r.json"], ["{file}/r.json", "{tmp}", "/proc/r.json"]),
}
FLAGS = ["--augment", "--resume", "--download"]


def value_for(name):
    valid, invalid = (st.sampled_from(v) for v in TOKENS[name])
    return st.one_of(*[valid] * 6, invalid, st.text(max_size=6))


option = st.sampled_from(sorted(TOKENS)).flatmap(lambda name: st.tuples(st.just(name), value_for(name)))
argv_strategy = st.tuples(
    st.lists(option, max_size=5),
    st.lists(st.sampled_from(FLAGS), max_size=2, unique=True),  # --resume alone is an error too
    st.one_of(*[st.just([])] * 5, st.lists(st.text(max_size=8), min_size=1, max_size=1)),
)


@pytest.fixture(scope="module")
def empty_data_root(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("HARDBATCH_DATA", str(tmp_path_factory.mktemp("no-data")))
    yield
    mp.undo()


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(argv_strategy)
def test_the_cli_never_shows_a_traceback(empty_data_root, args):
    options, flags, stray = args
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "a-file").write_text("not a folder\n")
        fill = lambda t: t.replace("{tmp}", tmp).replace("{file}", f"{tmp}/a-file")
        argv = ["run", "--epochs", "1", "--subset", "64", "--out", f"{tmp}/r.json"]
        for name, value in options:
            argv += [name, fill(value)]
        argv += flags + stray
        err, cwd = io.StringIO(), os.getcwd()
        os.chdir(tmp)  # a random relative --out or --checkpoint lands in tmp, not in the repository
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                status = cli.main(argv)
        except SystemExit as e:
            status = e.code
        finally:
            os.chdir(cwd)
        err = err.getvalue()
        event(f"exit status {status}")  # shown by --hypothesis-show-statistics
        event(err.strip().splitlines()[-1][:60] if err.strip() else "no message")  # which checks were hit
        assert "Traceback" not in err
        assert status in (0, 1, 2), (argv, status, err)
        if status == 2:
            assert "error" in err, (argv, err)
        if status == 1:
            assert "diverged" in err, (argv, err)
