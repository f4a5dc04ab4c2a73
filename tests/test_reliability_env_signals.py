"""Classes 7 and 8 of issue 12: environment switches with documented values, and SIGTERM handled as Ctrl-C.

HARDBATCH_SMOKE accepts 1/true/yes/on and 0/false/no/off/empty (any case, spaces around); anything
else is refused with a message (the CLI exits 2). CI, set by CI systems to their own values, is off
for 0/false/no/off/empty and on otherwise. SIGTERM stops run, compare and sweep with the same one
line as Ctrl-C and how to continue (exit 143; Ctrl-C 130), and a terminated run resumes.
"""
import os
import signal
import subprocess
import sys
import time

import pytest

import hardbatch as hb
from hardbatch import cli


@pytest.mark.parametrize("value, on", [("1", True), ("true", True), ("YES", True), (" on ", True), ("True", True),
                                       ("0", False), ("false", False), ("no", False), ("OFF", False), ("", False),
                                       (" 0", False)])
def test_hardbatch_smoke_accepts_its_documented_values(value, on, monkeypatch):
    monkeypatch.setenv("HARDBATCH_SMOKE", value)
    monkeypatch.setenv("CI", "true")  # HARDBATCH_SMOKE, when set, decides alone
    assert hb.fast_mode() is on


@pytest.mark.parametrize("value", ["garbage", "n", "y", "disable", "enable", "2", "-1", "on off", "nope"])
def test_hardbatch_smoke_refuses_anything_else(value, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("HARDBATCH_SMOKE", value)
    with pytest.raises(ValueError, match=r"HARDBATCH_SMOKE=.* is not understood; allowed: 1, true, yes, on"):
        hb.fast_mode()
    try:
        status = cli.main(["run", "--epochs", "1", "--subset", "64", "--out", str(tmp_path / "r.json")])
    except SystemExit as e:
        status = e.code
    err = capsys.readouterr().err
    assert status == 2 and "HARDBATCH_SMOKE" in err and "Traceback" not in err
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("value, on", [("false", False), ("0", False), ("no", False), ("off", False), ("", False),
                                       ("true", True), ("1", True), ("woodpecker", True), (None, False)])
def test_ci_is_off_only_for_an_off_value(value, on, monkeypatch):
    monkeypatch.delenv("HARDBATCH_SMOKE", raising=False)
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert hb.fast_mode() is on


# ------------------------------------------------------------------ signals, in real processes

def start(argv, tmp_path, name):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "hardbatch", *argv], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path, proc, timeout=240):
    """Wait until `path` exists (the command is at work), or fail if the process ended first."""
    t0 = time.time()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < timeout, f"{path} never appeared"
        time.sleep(0.05)


def test_sigterm_and_sigint_stop_every_command_with_one_line(tmp_path):
    """run (SIGTERM and SIGINT), compare and sweep (SIGTERM), all at once: the torch imports overlap."""
    long_run = ["--epochs", "400", "--subset", "256", "--batch-size", "16", "--device", "cpu"]
    cases = {
        "run-term": (["run", *long_run, "--out", "r1.json", "--checkpoint", "ck1.pt"], "ck1.pt", signal.SIGTERM),
        "run-int": (["run", *long_run, "--out", "r2.json", "--checkpoint", "ck2.pt"], "ck2.pt", signal.SIGINT),
        "compare-term": (["compare", "--epochs", "400", "--subset", "256", "--seeds", "0", "--device", "cpu",
                          "--out", "c"], "c/records", signal.SIGTERM),
        "sweep-term": (["sweep", "--models", "small_cnn", "--datasets", "digits", "--deltas", "0.5", "--seeds", "0",
                        "--epochs", "400", "--batch-size", "16", "--subset", "256", "--image-size", "0",
                        "--device", "cpu", "--out", "s"], "s/checkpoints", signal.SIGTERM),
    }
    procs = {name: start(argv, tmp_path, name) for name, (argv, _, _) in cases.items()}
    try:
        for name, (argv, marker, sig) in cases.items():
            wait_for(tmp_path / marker, procs[name])  # a checkpoint, or the output folders: it is training
            time.sleep(0.5)
            procs[name].send_signal(sig)
        results = {name: proc.communicate(timeout=120) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    expected = {"run-term": (143, "run terminated (SIGTERM)", "--resume continues"),
                "run-int": (130, "run interrupted", "--resume continues"),
                "compare-term": (143, "compare terminated (SIGTERM)", "the same command runs the comparison again"),
                "sweep-term": (143, "sweep terminated (SIGTERM)", "the same command continues the sweep")}
    for name, (code, what, hint) in expected.items():
        out, err = results[name]
        assert procs[name].returncode == code, (name, err)
        assert "Traceback" not in err, (name, err)
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"hardbatch: {what}") and hint in last, (name, last)
    # the terminated run continues from its last checkpoint (checked up to its first step: the whole run is long)
    import torch

    ck = tmp_path / "ck1.pt"
    step = torch.load(ck, weights_only=True)["state"]["step"]
    assert step > 0
    steps = []

    def stop(s, b, l):
        steps.append(s)
        raise KeyboardInterrupt

    cfg = hb.RunConfig(epochs=400, subset=256, batch_size=16, device="cpu")
    with pytest.raises(KeyboardInterrupt):
        hb.train(cfg, data=hb.load_dataset("digits"), checkpoint=ck, resume=True, on_step=stop)
    assert steps == [step + 1]
