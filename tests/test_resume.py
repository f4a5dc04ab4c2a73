"""Checkpoint and resume: a killed run continues where its last checkpoint left it, exactly.

The main test kills `python -m hardbatch run ... --checkpoint ck.pt --resume` with SIGKILL at
seeded random moments, checks that no file on disk is ever half written, re-runs the same
command and compares its record with an uninterrupted run's: on the CPU everything but the
timing fields must be equal. Cheaper in-process tests cover a stop in the middle of a round
with augmentation, two stops in one run, a finished run, and the safe loading of checkpoints
(`torch.load(weights_only=True)`: a pickle that would run code is refused, not executed).
"""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import hardbatch as hb
from hardbatch.record import without_timing
from hardbatch import cli



# SIGKILL at random moments ---------------------------------------------------------------------

# Algorithm 2 with augmentation (the generator draws every step), a cosine schedule (its state is
# in the checkpoint) and k = 12 not dividing N = 41 (rounds run across equivalent epochs).
EPOCHS = 8
RUN = ["run", "--epochs", str(EPOCHS), "--delta", "0.3", "--select", "hardest", "--augment", "--lr-schedule",
       "cosine", "--device", "cpu"]


def start(folder):
    argv = [sys.executable, "-m", "hardbatch", *RUN, "--out", str(folder / "r.json"),
            "--checkpoint", str(folder / "ck.pt"), "--resume"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same threads in every process: the same sums
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc):
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    return out


def files_are_whole(folder):
    """Each file is absent or loads completely. Returns the checkpoint's state (or None)."""
    state = None
    if (folder / "ck.pt").exists():
        state = torch.load(folder / "ck.pt", weights_only=True)["state"]
    if (folder / "r.json").exists():
        hb.load_record(folder / "r.json")
    return state


def stamp(path):
    """Which file is at `path` now: every checkpoint is a new file renamed into place."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def kill_mid_epoch(proc, ck, writes, rng):
    """Let `proc` write `writes` (>= 2) checkpoints, then SIGKILL it a random fraction of an epoch later.

    The epoch's length is measured between the last two writes, so the kill lands inside the next
    epoch however fast or slow the machine is. Returns that fraction (None if the run ended first).
    """
    times, last = [], stamp(ck)
    while len(times) < writes and proc.poll() is None:
        now = stamp(ck)
        if now != last:
            times.append(time.perf_counter())
            last = now
        time.sleep(0.002)
    fraction = rng.uniform(0.05, 0.95)
    if len(times) == writes:
        time.sleep(fraction * (times[-1] - times[-2]))
    ended = proc.poll() is not None
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return None if ended else fraction


def test_sigkill_at_random_moments_then_resume_gives_the_same_record(tmp_path):
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    finish(start(ref_dir))
    ref = hb.load_record(ref_dir / "r.json")
    N, T = ref["n_batches"], ref["backprops"]
    assert ref["status"] == "complete" and T == N * EPOCHS
    rng = random.Random(20240607)
    log, mid_run = [], 0
    # Trial 0: killed while starting (before any checkpoint). Trial 1: once, in a random epoch.
    # Trial 2: twice, the second time in the resumed process. Each time at a random point of an epoch.
    for trial, kills in enumerate([1, 1, 2]):
        folder = tmp_path / f"trial{trial}"
        folder.mkdir()
        for kill in range(kills):
            proc = start(folder)
            if trial == 0:
                time.sleep(rng.uniform(0.1, 0.8))  # torch alone takes longer than this to import
                proc.send_signal(signal.SIGKILL)
                proc.communicate()
                fraction = None
            else:
                fraction = kill_mid_epoch(proc, folder / "ck.pt", rng.randint(2, 3 if kills == 2 else EPOCHS - 2), rng)
            state = files_are_whole(folder)  # never a half-written checkpoint or record
            step = None if state is None else state["step"]
            if step is not None:
                assert step % N == 0 and 0 < step <= T
            if fraction is not None and step is not None and step < T:
                mid_run += 1
                log.append(f"trial {trial} kill {kill}: at about back-prop {step + round(fraction * N)} of {T} "
                           f"(last checkpoint: {step})")
            else:
                log.append(f"trial {trial} kill {kill}: " + (f"checkpoint at {step}" if step else "no checkpoint yet"))
        saved = state
        finish(start(folder))  # the same command, to completion
        record = hb.load_record(folder / "r.json")
        assert without_timing(record) == without_timing(ref)
        if saved is not None:  # it resumed, not restarted: the saved history, timings included, is kept
            assert record["history"][:len(saved["history"])] == saved["history"]
    print("\n" + "\n".join(log))
    assert mid_run >= 2, log  # the kills really landed inside the run


# In-process: stops at chosen points -------------------------------------------------------------

class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def digits(digits):
    return digits.subset(208)  # N = 13 batches of 16


def small(**kw):
    algorithm2 = {"delta": 0.3} if kw.get("method", "hardbatch") == "hardbatch" else {}
    return hb.RunConfig(**{"batch_size": 16, "epochs": 5, "device": "cpu", **algorithm2, **kw})  # k = 4


def stop_at(step_to_stop):
    def on_step(step, batch, loss):
        if step == step_to_stop:
            raise Stop
    return on_step


@pytest.mark.parametrize("kw", [
    dict(method="hardbatch", select="random", augment=True),  # the selection and the crops draw from the generator
    dict(method="hardbatch", select="easiest", lr_schedule="cosine", momentum=0.5, weight_decay=1e-3),
    dict(method="minibatch", order="fixed", augment=True),
], ids=["random-augment", "easiest-cosine", "minibatch-augment"])
def test_a_stop_in_the_middle_of_a_round_resumes_exactly(kw, digits, tmp_path):
    cfg = small(**kw)
    whole = hb.train(cfg, data=digits)
    ck = tmp_path / "ck.pt"
    for stop in (30, 47):  # in epoch 3, then in epoch 4 of the resumed run: two stops, two resumes
        with pytest.raises(Stop):
            hb.train(cfg, data=digits, checkpoint=ck, resume=True, on_step=stop_at(stop))
        assert torch.load(ck, weights_only=True)["state"]["step"] == 13 * (stop // 13)
    steps = []
    resumed = hb.train(cfg, data=digits, checkpoint=ck, resume=True, on_step=lambda s, b, l: steps.append(s))
    assert steps == list(range(40, 66))  # only the missing back-props ran
    assert without_timing(resumed) == without_timing(whole)


def test_resuming_a_finished_run_trains_nothing(digits, tmp_path):
    cfg, ck = small(epochs=2), tmp_path / "ck.pt"
    first = hb.train(cfg, data=digits, checkpoint=ck)
    steps = []
    again = hb.train(cfg, data=digits, checkpoint=ck, resume=True, on_step=lambda *a: steps.append(a))
    assert steps == [] and again == first  # timings too: nothing was re-measured


def test_without_resume_an_old_checkpoint_is_ignored(digits, tmp_path):
    ck = tmp_path / "ck.pt"
    with pytest.raises(Stop):
        hb.train(small(), data=digits, checkpoint=ck, on_step=stop_at(20))
    steps = []
    hb.train(small(epochs=2), data=digits, checkpoint=ck, on_step=lambda *a: steps.append(a))
    assert len(steps) == 26


# Safe loading ----------------------------------------------------------------------------------

class RunsCode:
    """A pickle that would create a file when loaded unsafely."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_checkpoint_that_would_run_code_is_refused_not_executed(digits, tmp_path):
    ck, marker = tmp_path / "ck.pt", tmp_path / "pwned"
    torch.save({"config": small().to_dict(), "state": RunsCode(str(marker))}, ck)
    with pytest.raises(ValueError, match="cannot be loaded safely.*delete it"):
        hb.train(small(), data=digits, checkpoint=ck, resume=True)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", "truncated"])
def test_a_corrupt_checkpoint_is_a_clear_error(content, digits, tmp_path):
    ck = tmp_path / "ck.pt"
    hb.train(small(epochs=1), data=digits, checkpoint=ck)
    whole = ck.read_bytes()
    ck.write_bytes(whole[: len(whole) // 2] if content == "truncated" else content)
    with pytest.raises(ValueError, match=f"checkpoint {ck} cannot be loaded safely"):
        hb.train(small(epochs=1), data=digits, checkpoint=ck, resume=True)


def test_a_checkpoint_of_another_run_is_refused(digits, tmp_path):
    ck = tmp_path / "ck.pt"
    hb.train(small(epochs=1), data=digits, checkpoint=ck)
    with pytest.raises(ValueError, match="belongs to another configuration"):
        hb.train(small(epochs=1, lr=0.02), data=digits, checkpoint=ck, resume=True)


def test_cli_refuses_a_bad_checkpoint_with_exit_2(tmp_path, capsys):
    ck = tmp_path / "ck.pt"
    ck.write_text('{"not": "a torch file"}\n')
    argv = ["run", "--epochs", "1", "--subset", "64", "--device", "cpu", "--out", str(tmp_path / "r.json"),
            "--checkpoint", str(ck), "--resume"]
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err
    assert str(ck) in err and "delete it" in err
    assert not (tmp_path / "r.json").exists()


def test_records_are_checked_against_the_schema_when_loaded(digits, tmp_path):
    record = hb.train(small(epochs=1), data=digits)
    path = tmp_path / "r.json"
    hb.save_record(record, path)
    text = path.read_text()
    for broken in (text[: len(text) // 2], text.replace('"complete"', '"finished"'),
                   text.replace('"backprops"', '"back_props"'), "[]"):
        path.write_text(broken)
        with pytest.raises(ValueError, match=str(path)):
            hb.load_record(path)
