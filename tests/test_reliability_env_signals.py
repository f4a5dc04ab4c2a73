"""Classes 7 and 8 of issue 12: environment switches with documented values, and SIGTERM handled as Ctrl-C.

HARDBATCH_SMOKE accepts 1/true/yes/on and 0/false/no/off/empty (any case, spaces around); anything
else is refused with a message (the CLI exits 2). CI, set by CI systems to their own values, is off
for 0/false/no/off/empty and on otherwise. SIGTERM stops run, compare and sweep with the same one
line as Ctrl-C and how to continue (exit 143; Ctrl-C 130), and a terminated run resumes.
Issue 18: --threads and OMP_NUM_THREADS above the usable CPUs are refused; Ctrl-C twice, or a signal in
the first second, is one line and never a traceback.
"""
import os
import signal
import subprocess
import sys
import time

import pytest

import hardbatch as hb
from hardbatch import cli, config
from helpers import RUN, TINY, run_main


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


# --------------------------------------------------------------- threads bounded by the usable CPUs (issue 18, class 8)

@pytest.mark.parametrize("threads", ["1024", "3", str(os.cpu_count() + 1)])
def test_threads_above_the_usable_cpus_are_refused(threads, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(config, "available_cpus", lambda: 2)
    status, _, err = run_main([*RUN, "--threads", threads, "--out", str(tmp_path / "r.json")], capsys)
    assert status == 2 and "--threads must be an integer from 1 to 2" in err and threads in err
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("value, words", [("1024", "OMP_NUM_THREADS='1024' must be an integer from 1 to 2"),
                                          ("4,2,1024", "OMP_NUM_THREADS='4,2,1024' must be an integer from 1 to 2"),
                                          ("abc", "OMP_NUM_THREADS='abc' is not understood"),
                                          ("0", "OMP_NUM_THREADS='0' is not understood"),
                                          ("-4", "is not understood")])
def test_omp_num_threads_above_the_usable_cpus_or_not_a_number_is_refused(value, words, tmp_path, capsys,
                                                                          monkeypatch):
    monkeypatch.setattr(config, "available_cpus", lambda: 2)
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    status, _, err = run_main([*RUN, "--out", str(tmp_path / "r.json")], capsys)
    assert status == 2 and words in err and "Traceback" not in err
    with pytest.raises(ValueError, match="OMP_NUM_THREADS"):
        hb.train(hb.RunConfig(**TINY))


def test_omp_num_threads_in_list_form_counts_its_first_level(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1,4")
    assert config.resolve_threads(0, "resnet18") == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "\u0661")  # an Arabic-Indic one: Python reads it, OpenMP does not
    with pytest.raises(ValueError, match="is not understood"):
        config.resolve_threads(0, "resnet18")


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


# ------------------------------------------------------------------ Ctrl-C twice, or early (issue 18, class 9)

@pytest.mark.parametrize("gap", [0.0, 0.01, 0.3])  # while it stops, or while Python shuts down
def test_ctrl_c_twice_quickly_is_one_line_and_130(gap, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "hardbatch", "run", "--epochs", "400", "--subset", "256",
                             "--batch-size", "16", "--device", "cpu", "--out", "r.json", "--checkpoint", "ck.pt"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not (tmp_path / "ck.pt").exists():
        assert proc.poll() is None and time.time() - t0 < 240, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    time.sleep(gap)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("hardbatch: ")


def test_ctrl_c_while_the_command_starts_is_one_line_and_130(tmp_path, monkeypatch, capsys):
    from hardbatch import cli

    def interrupted():
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the parser is being built
        time.sleep(1)

    monkeypatch.setattr(cli, "_robust_output", interrupted)
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN when pytest runs in the background
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, whoever started pytest
    try:
        status, _, err = run_main(["run", "--out", str(tmp_path / "r.json")], capsys)
        assert status == 130 and err == "hardbatch: interrupted\n"
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # called in-process: put back
    finally:
        signal.signal(signal.SIGINT, before)


def _ctrl_c_as_in_a_terminal():
    """A child started from a shell script in the background inherits SIGINT ignored (POSIX shells do that for
    `&` jobs), and then rightly ignores Ctrl-C; the tests start theirs as a terminal would, whoever runs pytest."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("after", [0.0, 0.3, 1.0])  # while Python starts, while torch loads, while parsing
def test_a_signal_in_the_first_second_is_one_line_never_a_traceback(sig, after, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "hardbatch", "run", "--epochs", "400", "--subset", "256",
                             "--device", "cpu", "--out", "r.json"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_ctrl_c_as_in_a_terminal)
    time.sleep(after)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    assert proc.returncode in (128 + sig, -sig), (proc.returncode, err)  # -sig: before Python's own handlers
    assert len(err.strip().splitlines()) <= 1 and (not err or err.startswith("hardbatch: "))
    assert not (tmp_path / "r.json").exists()


def test_importing_the_package_loads_no_torch():
    # what makes the above possible: `import hardbatch` is instant; torch loads with the first name used
    code = "import sys, hardbatch as hb; assert 'torch' not in sys.modules; hb.Ledger; assert 'torch' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
