"""The same command gives the same numbers whatever the machine's load (issue 18).

A run's default thread count is a function of its model and of the CPUs the process may use (1 for our
small nets), never of the momentary load, so `run` and `compare` give identical numbers with a CPU-burning
process beside them; a resume keeps the run's count, or records every count it ran with.
"""
import os
import subprocess
import sys
import time

import pytest
import torch

import hardbatch as hb
from hardbatch import config
from hardbatch.record import without_timing
from helpers import RUN, TINY, stop_at_epoch_1


def env_without_threads():
    """The environment of a user who set nothing: hardbatch chooses the threads (conftest sets OMP_NUM_THREADS)."""
    return {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}


def hardbatch_cli(argv, cwd, env=None, timeout=600):
    proc = subprocess.run([sys.executable, "-m", "hardbatch", *argv], cwd=cwd, env=env or env_without_threads(),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc


BURN = "while True:\n    pass\n"


class Burners:
    """One CPU-burning process per core, for the length of a `with` block."""

    def __enter__(self):
        self.procs = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(os.cpu_count() or 1)]
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
            p.wait()



def test_run_gives_the_same_numbers_beside_a_busy_process(tmp_path):
    hardbatch_cli([*RUN, "--out", "quiet.json"], tmp_path)
    with Burners():
        hardbatch_cli([*RUN, "--out", "busy.json"], tmp_path)
    quiet, busy = (hb.load_record(tmp_path / f"{n}.json") for n in ("quiet", "busy"))
    assert quiet["config"]["threads"] == busy["config"]["threads"] == 1  # small_cnn: one thread, busy or not
    assert without_timing(quiet) == without_timing(busy)


def test_compare_gives_the_same_numbers_beside_a_busy_process(tmp_path):
    argv = ["compare", "--seeds", "0", "--deltas", "0.5", "--strategies", "hardest", "random", "--epochs", "2",
            "--batch-size", "32", "--subset", "128", "--device", "cpu"]
    hardbatch_cli([*argv, "--out", "quiet"], tmp_path)
    with Burners():
        hardbatch_cli([*argv, "--out", "busy"], tmp_path)
    quiet, busy = ({p.name: without_timing(hb.load_record(p)) for p in (tmp_path / d / "records").glob("*.json")}
                   for d in ("quiet", "busy"))
    assert len(quiet) == 3 and quiet == busy


def test_the_default_thread_count_ignores_the_load(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(config, "idle_cpus", lambda *a, **k: pytest.fail("the load was looked at"))
    assert config.resolve_threads(0, "small_cnn") == 1
    assert config.resolve_threads(0, "resnet18") == config.available_cpus()



@pytest.mark.skipif(config.available_cpus() < 2, reason="needs 2 usable CPUs")
def test_a_resume_keeps_the_runs_thread_count_or_records_both(digits, tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        ck = tmp_path / "a.pt"
        stop_at_epoch_1(hb.RunConfig(**TINY, threads=2), digits, ck)
        kept = hb.train(hb.RunConfig(**TINY), data=digits, checkpoint=ck, resume=True)  # the default: keep 2
        assert kept["config"]["threads"] == 2 and kept["threads_used"] == [2]
        whole = hb.train(hb.RunConfig(**TINY, threads=2), data=digits)
        assert without_timing(kept) == without_timing({**whole, "config": {**whole["config"], "threads": 2}})

        ck = tmp_path / "b.pt"
        stop_at_epoch_1(hb.RunConfig(**TINY, threads=1), digits, ck)
        other = hb.train(hb.RunConfig(**TINY, threads=2), data=digits, checkpoint=ck, resume=True)
        assert other["config"]["threads"] == 2 and other["threads_used"] == [1, 2]
        hb.save_record(other, tmp_path / "r.json")
        assert hb.load_record(tmp_path / "r.json")["threads_used"] == [1, 2]
    finally:
        torch.set_num_threads(1)
