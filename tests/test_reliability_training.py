"""Classes 4, 5, 6 and 9 of issue 12: values that were accepted and then crashed training, commands that
skipped checks `run` makes, wrongly typed API values, data and models that do not fit, and the
thread count on a busy machine. Issue 18: a model whose outputs cannot train (not a tensor, integers,
detached, no trainable weights) is refused before training.
"""
import os
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

import hardbatch as hb
import importlib

from hardbatch import config
from hardbatch.models import SmallCNN
from helpers import run_main

train_module = importlib.import_module("hardbatch.train")  # `hardbatch.train` is also the function's name
RUN = ["run", "--epochs", "2", "--subset", "64", "--batch-size", "32", "--device", "cpu"]
TINY = dict(epochs=2, batch_size=32, subset=64, device="cpu")  # RUN as a RunConfig, for this file's 64 digits


@pytest.fixture(scope="module")
def digits(digits):
    return digits.subset(64)


# ------------------------------------------------------------------ class 4: accepted values that crashed training

@pytest.mark.parametrize("option, value", [("--lr", "1e39"), ("--lr", "1e308"), ("--weight-decay", "1e308"),
                                           ("--lr", str(2**1100))])
def test_values_beyond_float32_are_refused_clearly(option, value, tmp_path, capsys):
    status, _, err = run_main(RUN + [option, value, "--out", str(tmp_path / "r.json")], capsys)
    assert status == 2 and "Traceback" not in err
    assert "the largest float32" in err and option.lstrip("-").replace("-", "_") in err


def test_the_largest_accepted_values_end_as_a_diverged_run(tmp_path, capsys):
    out = tmp_path / "r.json"
    status, _, err = run_main(RUN + ["--lr", "3.4e38", "--weight-decay", "3.4e38", "--out", str(out)], capsys)
    assert status == 1 and "Traceback" not in err and "diverged" in err
    assert hb.load_record(out)["status"] == "diverged"


def test_large_images_are_evaluated_in_small_chunks(digits):
    """--image-size 512: one chunk of 1024 images would need ~16 GB for small_cnn's activations."""
    assert train_module.eval_chunk(8) == train_module.eval_chunk(32) == 1024  # small images: as before
    side = 512
    chunk = train_module.eval_chunk(side)
    assert chunk * train_module.EVAL_FLOATS_PER_PIXEL * 4 * side * side <= train_module.EVAL_BYTES
    seen = []

    class Spy(nn.Module):  # records the chunk sizes, computes nothing
        def forward(self, x):
            seen.append(tuple(x.shape))
            return torch.zeros(len(x), 10)

    cfg = hb.RunConfig(image_size=side, device="cpu")
    loss, acc = train_module.evaluate(Spy(), digits.x_test[:40], digits.y_test[:40], digits, cfg)
    assert [s[0] for s in seen] == [chunk, chunk, 40 - 2 * chunk] and seen[0][1:] == (1, side, side)
    assert loss == pytest.approx(np.log(10)) and 0 <= acc <= 100


# ------------------------------------------------------------------ class 5: one validation path for every command

def test_compare_refuses_a_model_that_cannot_take_the_images(tmp_path, capsys, monkeypatch):
    status, _, err = run_main(["compare", "--model", "vit_tiny_patch16_224", "--seeds", "0", "--epochs", "1",
                               "--subset", "64", "--device", "cpu", "--out", str(tmp_path / "c")], capsys)
    assert status == 2 and "Traceback" not in err and "AssertionError" not in err
    assert "'vit_tiny_patch16_224' cannot take the digits images at (1, 8, 8)" in err and "--image-size" in err
    assert not (tmp_path / "c").exists()  # refused before anything was written


@pytest.mark.parametrize("extra, words", [
    (["--models", "small_cnn", "vit_tiny_patch16_224"], ["'vit_tiny_patch16_224' cannot take the digits images"]),
    (["--models", "small_cnn", "--batch-size", "2000"], ["batch_size must be at most the 1297 training samples"]),
    (["--models", "small_cnn", "--subset", "5000"], ["subset must be between 1 and the 1297 training samples"]),
])
def test_sweep_checks_every_run_before_the_first(extra, words, tmp_path, capsys, monkeypatch):
    import hardbatch.runner

    monkeypatch.setattr(hardbatch.runner, "train", lambda *a, **k: pytest.fail("a run started"))
    argv = ["sweep", "--datasets", "digits", "--deltas", "0.5", "--seeds", "0", "--epochs", "1", "--batch-size", "32",
            "--image-size", "0", "--device", "cpu", "--out", str(tmp_path / "s"), *extra]
    status, _, err = run_main(argv, capsys)
    assert status == 2 and "Traceback" not in err
    for w in words:
        assert w in err, err


# ------------------------------------------------------------------ class 6: API types, data and models

@pytest.mark.parametrize("field, value", [
    ("lr", "0.01"), ("weight_decay", "0"), ("momentum", "0.5"), ("delta", "0.5"), ("epochs", "3"), ("epochs", 3.0),
    ("batch_size", 64.0), ("seed", 1.0), ("image_size", "8"), ("subset", None), ("threads", True), ("threads", 1.5),
    ("augment", "false"), ("augment", "true"), ("augment", 1), ("compile", 1), ("compile", "no"), ("drop_last", "yes"),
    ("amp", 0), ("amp", None), ("model", 3), ("model", None), ("dataset", None), ("dataset", ["digits"]),
    ("method", torch.tensor([1, 2])), ("select", 1), ("device", b"cpu"), ("lr_schedule", None), ("lr", [0.1]),
    ("lr", 10**400), ("threads", 10**6),
])
def test_runconfig_refuses_wrong_types_naming_the_field(field, value):
    kw = {field: value}
    if field == "select":
        kw["method"] = "hardbatch"
    with pytest.raises(ValueError) as e:
        hb.RunConfig(**kw)
    assert field in str(e.value) and len(str(e.value)) < 300


def test_runconfig_takes_numpy_numbers_as_python_numbers():
    cfg = hb.RunConfig(lr=np.float32(0.01), epochs=np.int64(3), delta=np.float64(0.5))
    assert type(cfg.lr) is float and type(cfg.epochs) is int and type(cfg.delta) is float
    assert cfg.epochs == 3 and cfg.delta == 0.5


def bad(data, **fields):
    """`data` with some fields changed behind the dataclass's back (so the check at train time is the one seen)."""
    data = replace(data)
    for k, v in fields.items():
        setattr(data, k, v)
    return data


@pytest.mark.parametrize("case, words", [
    ("labels-above", "train labels must be in 0..9"),
    ("labels-negative", "test labels must be in 0..9"),
    ("labels-float", "y_train must be an int64 tensor"),
    ("labels-wrong-length", "y_train must be an int64 tensor of one label per image"),
    ("images-3d", "x_train must be a uint8 tensor of shape (n, C, H, W)"),
    ("images-float", "x_train must be a uint8 tensor"),
    ("images-a-list", "x_train must be a uint8 tensor"),
    ("test-other-size", "test images (1, 4, 4) differ from training images (1, 8, 8)"),
    ("empty-train", "at most the 0 training samples"),  # start() says it first
    ("mean-wrong-length", "mean must be a tuple of 1 finite number"),
    ("std-zero", "std must be a tuple of 1 finite number(s), one per channel (each > 0)"),
    ("classes-zero", "num_classes must be an integer >= 1"),
])
def test_train_refuses_data_that_do_not_fit_before_training(case, words, digits):
    d = digits
    data = {
        "labels-above": lambda: bad(d, y_train=d.y_train.clone().index_fill_(0, torch.tensor([3]), 10)),
        "labels-negative": lambda: bad(d, y_test=d.y_test.clone().index_fill_(0, torch.tensor([0]), -1)),
        "labels-float": lambda: bad(d, y_train=d.y_train.float()),
        "labels-wrong-length": lambda: bad(d, y_train=d.y_train[:-1]),
        "images-3d": lambda: bad(d, x_train=d.x_train[:, 0]),
        "images-float": lambda: bad(d, x_train=d.x_train.float()),
        "images-a-list": lambda: bad(d, x_train=d.x_train.tolist()),
        "test-other-size": lambda: bad(d, x_test=d.x_test[:, :, :4, :4]),
        "empty-train": lambda: bad(d, x_train=d.x_train[:0], y_train=d.y_train[:0]),
        "mean-wrong-length": lambda: bad(d, mean=(0.5, 0.5)),
        "std-zero": lambda: bad(d, std=(0.0,)),
        "classes-zero": lambda: bad(d, num_classes=0),
    }[case]()
    steps = []
    with pytest.raises(ValueError) as e:
        hb.train(hb.RunConfig(epochs=1, batch_size=16, device="cpu"), data=data, on_step=lambda *a: steps.append(a))
    assert words in str(e.value) and steps == []


@pytest.mark.parametrize("model, words", [
    (nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), "gives outputs of shape (3,) per image, but digits has 10 classes"),
    (nn.Sequential(nn.Flatten(), nn.Linear(10, 10)), "cannot take the digits images at (1, 8, 8)"),
    (nn.Sequential(SmallCNN(), nn.Unflatten(1, (2, 5))), "gives outputs of shape (2, 5)"),
])
def test_train_refuses_a_model_that_does_not_fit_before_training(model, words, digits):
    steps = []
    with pytest.raises(ValueError) as e:
        hb.train(hb.RunConfig(epochs=1, batch_size=16, device="cpu"), data=digits, model=model,
                 on_step=lambda *a: steps.append(a))
    assert words in str(e.value) and steps == []


# ------------------------------------------------------------------ class 9: threads from the CPUs really available

def test_available_cpus_follows_affinity_and_the_cgroup_quota(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    quota = {"/sys/fs/cgroup/cpu.max": "150000 100000\n"}  # 1.5 CPUs: one thread, not two

    def read_text(self, *a, **k):
        if str(self) in quota:
            return quota[str(self)]
        raise FileNotFoundError(self)

    monkeypatch.setattr(config.Path, "read_text", read_text)
    assert config.available_cpus() == 1
    quota["/sys/fs/cgroup/cpu.max"] = "max 100000\n"
    assert config.available_cpus() == 4
    del quota["/sys/fs/cgroup/cpu.max"]
    quota.update({"/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "200000", "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000"})
    assert config.available_cpus() == 2


def test_resolve_threads_depends_on_the_model_and_the_usable_cpus_never_on_the_load(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(config, "available_cpus", lambda: 4)
    for idle in (4.0, 2.9, 0.0, None):  # whatever the others do right now
        monkeypatch.setattr(config, "idle_cpus", lambda seconds=0.1, idle=idle: idle)
        assert [config.resolve_threads(0, m) for m in ("small_cnn", "two_conv_cnn", "mlp", "resnet18")] == [1, 1, 1, 4]
    assert config.resolve_threads(3) == 3  # the user's choice wins
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert config.resolve_threads(0, "resnet18") == 2 and config.resolve_threads(3) == 3


def test_idle_cpus_is_the_idle_share_of_the_machine(monkeypatch):
    real = config.idle_cpus(0.05)
    if real is None:
        pytest.skip("no /proc/stat here")
    assert 0 <= real <= os.cpu_count()
    samples = iter([(100, 1000), (150, 1100)])  # (idle, total) ticks: half of the time idle in between
    monkeypatch.setattr(config, "_cpu_times", lambda: next(samples))
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert config.idle_cpus(0) == 2.0


def test_the_record_says_how_many_threads_ran(digits, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    record = hb.train(hb.RunConfig(epochs=1, batch_size=32, device="cpu"), data=digits)
    assert record["config"]["threads"] == torch.get_num_threads() == 1
    record = hb.train(hb.RunConfig(epochs=1, batch_size=32, device="cpu", threads=2), data=digits)
    assert record["config"]["threads"] == 2
    torch.set_num_threads(1)


# ------------------------------------------------------------------ models that cannot be trained (issue 18, class 10)

class Wraps(nn.Module):
    def __init__(self, how):
        super().__init__()
        self.how, self.fc = how, nn.Linear(64, 10)

    def forward(self, x):
        out = self.fc(x.flatten(1))
        return {"tuple": lambda: (out, out), "dict": lambda: {"logits": out}, "int": lambda: out.argmax(1, True)
                .expand(-1, 10), "detached": lambda: out.detach(), "long": lambda: out.long(),
                "type-error": lambda: out + "x"}[self.how]()


class NoWeights(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :10]


class Frozen(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10).requires_grad_(False)

    def forward(self, x):
        return self.fc(x.flatten(1))


@pytest.mark.parametrize("model, words", [
    (Wraps("tuple"), "returns tuple, not a tensor"), (Wraps("dict"), "returns dict, not a tensor"),
    (Wraps("int"), "torch.int64 outputs"), (Wraps("long"), "torch.int64 outputs"),
    (Wraps("detached"), "do not depend on its weights"), (Wraps("type-error"), "cannot take the digits images"),
    (NoWeights(), "has no weights that train"), (Frozen(), "has no weights that train")])
def test_a_model_that_cannot_be_trained_is_refused_before_training(model, words, digits):
    steps = []
    with pytest.raises(ValueError, match="model 'small_cnn'") as e:
        hb.train(hb.RunConfig(**TINY, threads=1), data=digits, model=model, on_step=lambda *a: steps.append(a))
    assert words in str(e.value) and steps == []
