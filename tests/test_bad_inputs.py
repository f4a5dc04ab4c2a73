"""Every bad input is refused at the boundary: one line naming the value and what is allowed.

The table goes through the real command line parser and `cli.main` in-process (a subprocess
costs a torch import per row); a handful of rows run as real `python -m hardbatch` processes
to prove the exit status 2 and that no traceback reaches the user. The public API
(`RunConfig`, `train`, `load_dataset`, `create_model`) refuses the same values with ValueError.
"""
import math
import os
import socket
import subprocess
import sys

import pytest
import torch

import hardbatch as hb
from hardbatch import cli

NO_GPU = not torch.cuda.is_available()
DIGITS_TRAIN = 1297  # digits: 1797 images, 500 held out for the test


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to reach the internet fails the test loudly instead of hanging."""
    def refuse(*args, **kwargs):
        raise AssertionError("hardbatch tried to use the network without --download")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def empty_data_root(tmp_path, monkeypatch):
    root = tmp_path / "no-data-here"
    root.mkdir()
    monkeypatch.setenv("HARDBATCH_DATA", str(root))
    return root


def a_file(tmp_path):
    f = tmp_path / "a-file"
    f.write_text("I am a file, not a folder\n")
    return f


# (id, extra argv for `run` (or a whole argv when it starts with "compare"), words stderr must hold)
# Run rows get a small valid base (--epochs 1 --subset 64) and an --out in tmp_path; a row's own
# options come last, so they win. "{tmp}" is replaced by tmp_path, "{file}" by a regular file.
ROWS = [
    ("delta-0", ["--delta", "0"], ["'0'", "(0, 1]"]),
    ("delta-negative", ["--delta", "-0.1"], ["'-0.1'", "(0, 1]"]),
    ("delta-above-1", ["--delta", "1.5"], ["'1.5'", "(0, 1]"]),
    ("delta-nan", ["--delta", "nan"], ["'nan'", "(0, 1]"]),
    ("delta-inf", ["--delta", "inf"], ["'inf'", "(0, 1]"]),
    ("delta-text", ["--delta", "abc"], ["'abc'", "(0, 1]"]),
    ("delta-empty", ["--delta", ""], ["''", "(0, 1]"]),
    ("epochs-0", ["--epochs", "0"], ["epochs", "'0'", ">= 1"]),
    ("epochs-negative", ["--epochs", "-1"], ["epochs", "'-1'", ">= 1"]),
    ("epochs-fraction", ["--epochs", "2.5"], ["epochs", "'2.5'", "integer"]),
    ("epochs-text", ["--epochs", "x"], ["epochs", "'x'", "integer"]),
    ("batch-size-0", ["--batch-size", "0"], ["batch_size", "'0'", ">= 1"]),
    ("batch-size-too-big", ["--subset", "0", "--batch-size", "100000"], ["100000", f"at most the {DIGITS_TRAIN}"]),
    ("batch-size-above-subset", ["--subset", "64", "--batch-size", "65"], ["65", "at most the 64"]),
    ("lr-0", ["--lr", "0"], ["lr", "'0'", "> 0"]),
    ("lr-negative", ["--lr", "-1"], ["lr", "'-1'", "> 0"]),
    ("lr-nan", ["--lr", "nan"], ["lr", "'nan'", "finite"]),
    ("momentum-negative", ["--momentum", "-0.1"], ["momentum", "'-0.1'", ">= 0 and < 1"]),
    ("momentum-1", ["--momentum", "1"], ["momentum", "'1'", ">= 0 and < 1"]),
    ("weight-decay-negative", ["--weight-decay", "-1"], ["weight_decay", "'-1'", ">= 0"]),
    ("seed-negative", ["--seed", "-1"], ["seed", "'-1'", "from 0 to"]),
    ("seed-too-big", ["--seed", str(2**64)], ["seed", str(2**64), "from 0 to"]),
    ("image-size-1", ["--image-size", "1"], ["image_size", "got '1'", "from 2 to 512"]),
    ("image-size-huge", ["--image-size", "100000"], ["image_size", "100000", "from 2 to 512"]),
    ("subset-too-big", ["--subset", "100000"], ["100000", f"the {DIGITS_TRAIN} training samples"]),
    ("model-typo", ["--model", "resnet19"], ["'resnet19'", "resnet18"]),
    ("model-unknown", ["--model", "notamodel"], ["'notamodel'", "small_cnn", "timm"]),
    ("model-wrong-image-size", ["--model", "vit_tiny_patch16_224"], ["'vit_tiny_patch16_224'", "(1, 8, 8)",
                                                                     "--image-size"]),
    ("dataset-unknown", ["--dataset", "mnist"], ["'mnist'", "digits", "fashion-mnist", "cifar10"]),
    ("method-unknown", ["--method", "sgd"], ["'sgd'", "minibatch", "hardbatch"]),
    ("select-unknown", ["--select", "hardestt"], ["'hardestt'", "hardest", "random", "easiest"]),
    ("order-unknown", ["--order", "random"], ["'random'", "fixed", "shuffled"]),
    ("schedule-unknown", ["--lr-schedule", "step"], ["'step'", "constant", "cosine"]),
    ("device-unknown", ["--device", "tpu"], ["'tpu'", "cpu", "cuda"]),
    pytest.param("device-cuda-without-gpu", ["--device", "cuda"], ["'cuda'", "no CUDA GPU", "--device cpu"],
                 marks=pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU")),
    ("option-unknown", ["--deltaa", "0.5"], ["--deltaa", "usage:"]),
    ("out-is-a-folder", ["--out", "{tmp}"], ["{tmp}", "is a folder"]),
    ("out-under-a-file", ["--out", "{file}/r.json"], ["{file}/r.json", "is a file, not a folder"]),
    ("out-in-proc", ["--out", "/proc/hardbatch/r.json"], ["/proc/hardbatch/r.json", "cannot write"]),
    ("out-nul-byte", ["--out", "{tmp}/r\x00.json"], ["cannot write", "null"]),
    ("out-name-too-long", ["--out", "{tmp}/" + "r" * 300 + ".json"], ["cannot write", "too long"]),
    ("checkpoint-under-a-file", ["--checkpoint", "{file}/ck.pt"], ["{file}/ck.pt", "is a file, not a folder"]),
    ("resume-without-checkpoint", ["--resume"], ["--resume", "--checkpoint"]),
    ("dataset-missing-offline", ["--dataset", "cifar10"], ["'cifar10'", "download is off", "--download"]),
    ("compare-delta-0", ["compare", "--deltas", "0.5", "0", "--out", "{tmp}/c"], ["'0'", "(0, 1]"]),
    ("compare-strategy", ["compare", "--strategies", "hardest", "hardes", "--out", "{tmp}/c"], ["'hardes'", "random"]),
    ("compare-seed", ["compare", "--seeds", "0", "-2", "--out", "{tmp}/c"], ["'-2'", "from 0 to"]),
    ("compare-out-under-a-file", ["compare", "--out", "{file}/c"], ["{file}/c", "is a file, not a folder"]),
    ("compare-model", ["compare", "--model", "resnet19", "--out", "{tmp}/c"], ["'resnet19'", "resnet18"]),
]


def fill(words, tmp_path):
    return [w.replace("{tmp}", str(tmp_path)).replace("{file}", str(tmp_path / "a-file")) for w in words]


def argv_for(extra, tmp_path):
    a_file(tmp_path)
    extra = fill(extra, tmp_path)
    if extra[:1] == ["compare"]:
        return extra
    return ["run", "--epochs", "1", "--subset", "64", "--out", str(tmp_path / "out" / "r.json"), *extra]


def run_main(argv, capsys):
    """cli.main in-process: (exit status, stderr). A traceback would escape as an exception."""
    try:
        status = cli.main(argv)
    except SystemExit as e:
        status = e.code
    return status, capsys.readouterr().err


@pytest.mark.parametrize("name, extra, words", ROWS)
def test_bad_input_is_refused_with_one_clear_message(name, extra, words, tmp_path, capsys, no_network,
                                                     empty_data_root):
    status, err = run_main(argv_for(extra, tmp_path), capsys)
    assert status == 2, err
    assert "Traceback" not in err
    for w in fill(words, tmp_path):
        assert w in err, f"{w!r} not in {err!r}"
    assert not (tmp_path / "out" / "r.json").exists()  # nothing was trained, nothing written


def test_the_table_is_big_enough():
    assert len(ROWS) >= 30


# A handful of rows as real processes: exit status 2 and no traceback, seen from outside.
SUBPROCESS_ROWS = ["delta-nan", "batch-size-too-big", "dataset-missing-offline", "out-under-a-file"]


def test_real_processes_exit_2_without_traceback(tmp_path):
    rows = {values[0]: values for values in (getattr(r, "values", r) for r in ROWS)}  # pytest.param or tuple
    env = {**os.environ, "HARDBATCH_DATA": str(tmp_path / "no-data-here"), "OMP_NUM_THREADS": "1"}
    procs = {}
    for name in SUBPROCESS_ROWS:  # all at once: the torch imports overlap
        _, extra, words = rows[name]
        procs[name] = (subprocess.Popen([sys.executable, "-m", "hardbatch", *argv_for(extra, tmp_path)], env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), words)
    for name, (proc, words) in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 2, (name, err)
        assert "Traceback" not in err and "Traceback" not in out, name
        for w in fill(words, tmp_path):
            assert w in err, (name, w, err)


def test_missing_dataset_fails_fast_and_never_downloads(tmp_path, no_network, empty_data_root):
    # No --download: torchvision is asked for the files only; no socket is opened (no_network).
    for name in ("cifar10", "cifar100", "stl10"):
        with pytest.raises(FileNotFoundError, match="download=True"):
            hb.load_dataset(name)
    assert list(empty_data_root.iterdir()) == []  # nothing half-downloaded left behind


def test_a_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    """--download on a machine without internet: a ConnectionError saying what to do, not a URLError trace."""
    import urllib.error
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(ConnectionError, match="could not download data set 'cifar10'.*HARDBATCH_DATA"):
        hb.load_dataset("cifar10", root=tmp_path, download=True)


# The public API refuses the same values with ValueError -----------------------------------------

API_ROWS = [
    (dict(delta=0), ["delta", "0", "(0, 1]"]),
    (dict(delta=-0.1), ["delta", "-0.1", "(0, 1]"]),
    (dict(delta=1.5), ["delta", "1.5", "(0, 1]"]),
    (dict(delta=math.nan), ["delta", "nan", "(0, 1]"]),
    (dict(delta=math.inf), ["delta", "inf", "(0, 1]"]),
    (dict(delta="abc"), ["delta", "'abc'", "(0, 1]"]),
    (dict(delta=True), ["delta", "True", "(0, 1]"]),
    (dict(epochs=0), ["epochs", "0", ">= 1"]),
    (dict(epochs=2.5), ["epochs", "2.5", "integer"]),
    (dict(epochs="3"), ["epochs", "'3'", "integer"]),
    (dict(batch_size=0), ["batch_size", "0", ">= 1"]),
    (dict(lr=0), ["lr", "0", "> 0"]),
    (dict(lr=-1), ["lr", "-1", "> 0"]),
    (dict(lr=math.nan), ["lr", "nan", "finite"]),
    (dict(momentum=-0.1), ["momentum", "-0.1", ">= 0"]),
    (dict(momentum=1), ["momentum", "1", ">= 0 and < 1"]),
    (dict(weight_decay=-1), ["weight_decay", "-1", ">= 0"]),
    (dict(seed=-1), ["seed", "-1", "from 0 to"]),
    (dict(image_size=1), ["image_size", "1", "from 2 to 512"]),
    (dict(subset=-1), ["subset", "-1", "0 (all) or an integer >= 1"]),
    (dict(method="sgd"), ["method", "'sgd'", "minibatch, hardbatch"]),
    (dict(order="random"), ["order", "'random'", "fixed, shuffled"]),
    (dict(select="worst"), ["select", "'worst'", "hardest"]),
    (dict(device="tpu"), ["device", "'tpu'", "auto, cpu, cuda"]),
    (dict(lr_schedule="step"), ["lr_schedule", "'step'", "constant, cosine"]),
]


@pytest.mark.parametrize("kwargs, words", API_ROWS, ids=[str(k) for k, _ in API_ROWS])
def test_runconfig_refuses_bad_values(kwargs, words):
    with pytest.raises(ValueError) as e:
        hb.RunConfig(**kwargs)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_train_refuses_what_only_data_or_names_reveal(no_network, empty_data_root):
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist'; allowed: digits, fashion-mnist"):
        hb.train(hb.RunConfig(dataset="mnist"))
    with pytest.raises(ValueError, match=rf"batch_size must be at most the {DIGITS_TRAIN} training samples, got 5000"):
        hb.train(hb.RunConfig(batch_size=5000))
    with pytest.raises(ValueError, match=r"unknown model 'resnet19'.*did you mean: resnet18"):
        hb.train(hb.RunConfig(model="resnet19", subset=64, epochs=1))
    with pytest.raises(FileNotFoundError, match=r"'cifar10'.*download"):
        hb.train(hb.RunConfig(dataset="cifar10"))
    if NO_GPU:
        with pytest.raises(ValueError, match="no CUDA GPU"):
            hb.train(hb.RunConfig(device="cuda"))


def test_create_model_suggests_close_timm_names():
    with pytest.raises(ValueError, match=r"'resnt50'.*resnet50"):
        hb.create_model("resnt50")
    with pytest.raises(ValueError, match=r"'efficientnet_b44'.*efficientnet_b4"):
        hb.create_model("efficientnet_b44")
    assert hb.create_model("small_cnn") is not None


def test_a_good_command_still_runs(tmp_path, capsys):
    """The checks refuse bad values only: the smallest valid run writes its record and exits 0."""
    out = tmp_path / "deep" / "folder" / "r.json"
    status, err = run_main(["run", "--epochs", "1", "--subset", "64", "--device", "cpu", "--out", str(out)], capsys)
    assert status == 0, err
    record = hb.load_record(out)
    assert record["status"] == "complete" and record["backprops"] == record["n_batches"]
    assert [p.name for p in out.parent.iterdir()] == ["r.json"]  # the write probe left nothing behind
