"""Class 3 of issue 12: checkpoints that load but are malformed are refused, named, never half-applied.

checkpoint.check_payload checks every part a Run would restore, against the run as it is: keys,
containers, tensor shapes and dtypes, finite weights, the optimiser's hyper-parameters and
momentum buffers, the schedule, the ledger, the partition, the random states, the counters, the
queue and the history. `run --resume` refuses a bad file with exit 2 and its name; a sweep moves
it aside as NAME.bad and runs that run from the start. A structure-aware fuzz (hypothesis)
mutates a real checkpoint anywhere in its tree: `run --resume` and `sweep` never show a
traceback, and the sweep always ends with one complete record per run. Flipped bytes that torch itself
loads are caught by the checkpoint's checksum (issue 18).
"""
import copy
import math
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import hardbatch as hb
from hardbatch import arms, checkpoint, cli
from hardbatch.checkpoint import BadCheckpoint
from hardbatch.record import without_timing
from hardbatch.sweep import plan
from helpers import TINY, Stop, run_main, stop_at_epoch_1

# The tuned recipe (cosine schedule + augmentation), so the schedule and the augmentation generator are saved too.
SWEEP = ["sweep", "--models", "small_cnn", "--datasets", "digits", "--deltas", "0.5", "--seeds", "0", "--controls",
         "--recipes", "tuned", "--epochs", "2", "--batch-size", "16", "--subset", "64", "--image-size", "0",
         "--lr", "0.05", "--device", "cpu", "--no-report"]
BASE = hb.RunConfig(epochs=2, batch_size=16, subset=64, lr=0.05, momentum=0.9, weight_decay=0.0)
RUNS = plan(["small_cnn"], ["digits"], [0.5], [0], controls=(), recipes=("tuned",), base=BASE)
NAME, CFG = RUNS[1]  # hardest δ=0.5: N = 4 batches, k = 2
N = 4
SELECTIVE = hb.RunConfig(method="selective", beta=1.0, window=64, epochs=2, batch_size=16, subset=64, lr=0.05,
                         device="cpu")


def argv_of(cfg):
    """`hardbatch run` options that give exactly `cfg`."""
    argv = ["run"]
    for k, v in cfg.to_dict().items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            argv.append(flag if v else "--no-" + k.replace("_", "-"))
        elif v is not None:
            argv += [flag, str(v)]
    return argv


def checkpoint_of(cfg, digits, tmp_path_factory):
    """A real checkpoint of `cfg`, taken at equivalent epoch 1 of 2 (the run was stopped in epoch 2)."""
    ck = tmp_path_factory.mktemp("ck") / "ck.pt"

    def stop(step, batch, loss):
        if step == N + 1:
            raise Stop

    with pytest.raises(Stop):
        hb.train(cfg, data=digits, checkpoint=ck, on_step=stop)
    return torch.load(ck, weights_only=True)


@pytest.fixture(scope="module")
def payload(digits, tmp_path_factory):
    return checkpoint_of(CFG, digits, tmp_path_factory)


@pytest.fixture(scope="module")
def selective_payload(digits, tmp_path_factory):
    """Selective-Backprop (chapter 6) also saves its kept samples and loss window."""
    return checkpoint_of(SELECTIVE, digits, tmp_path_factory)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("swept")
    assert cli.main([*SWEEP, "--out", str(out)]) == 0
    return out


def test_the_real_checkpoint_resumes(payload, digits, tmp_path):
    ck = tmp_path / "ck.pt"
    torch.save(payload, ck)
    steps = []
    record = hb.train(CFG, data=digits, checkpoint=ck, resume=True, on_step=lambda s, b, l: steps.append(s))
    assert record["status"] == "complete" and steps == list(range(N + 1, 2 * N + 1))


# ------------------------------------------------------------------ the malformed checkpoints of the issue, and more

def at(path, value=None, delete=False):
    def change(p):
        target = p
        for key in path[:-1]:
            target = target[key]
        if delete:
            del target[path[-1]]
        else:
            target[path[-1]] = value(target[path[-1]]) if callable(value) else value
    return change


def first_weight(p):
    return next(iter(p["model"]))


MALFORMED = {
    **{f"missing-{key}": at((key,), delete=True) for key in ("model", "opt", "sched", "ledger", "partition",
                                                             "epoch_batches", "rng", "state")},
    "missing-config": at(("config",), delete=True),
    "missing-state-queue": at(("state", "queue"), delete=True),
    "missing-ledger-loss": at(("ledger", "loss"), delete=True),
    "state-a-list": at(("state",), lambda s: list(s.values())),
    "rng-a-list": at(("rng",), lambda r: list(r.values())),
    "opt-a-list": at(("opt",), lambda o: list(o.values())),
    "model-a-list": at(("model",), lambda m: list(m.values())),
    "history-a-dict": at(("state", "history"), lambda h: dict(enumerate(h))),
    "weight-wrong-shape": lambda p: p["model"].update({first_weight(p): torch.zeros(3)}),
    "weight-nan": lambda p: p["model"][first_weight(p)].fill_(math.nan),
    "ledger-wrong-shape": at(("ledger", "loss"), torch.zeros(N + 1)),
    "ledger-wrong-dtype": at(("ledger", "train_count"), lambda t: t.float()),
    "ledger-counts-wrong-sum": at(("ledger", "train_count"), lambda t: t + 1),
    "ledger-nan-loss": at(("ledger", "loss"), lambda t: t * math.nan),
    "partition-wrong-shape": at(("partition", 0), torch.zeros(3, dtype=torch.long)),
    "partition-too-short": at(("partition",), lambda p: p[:-1]),
    "partition-index-out-of-range": at(("partition", 0), lambda t: t + 10**6),
    "epoch-batches-for-a-fixed-partition": at(("epoch_batches",), lambda _: [torch.arange(16)] * N),
    "rng-wrong-size": at(("rng", "gen"), torch.zeros(3, dtype=torch.uint8)),
    "queue-index-out-of-range": at(("state", "queue"), [N]),
    "queue-negative-index": at(("state", "queue"), [-1]),
    "queue-of-bools": at(("state", "queue"), [True]),
    "queue-a-tensor": at(("state", "queue"), torch.tensor([0, 1])),
    "step-not-an-epoch": at(("state", "step"), N + 1),
    "step-a-string": at(("state", "step"), "4"),
    "step-beyond-budget": at(("state", "step"), 3 * N),
    "rounds-negative": at(("state", "rounds"), -1),
    "clock-nan": at(("state", "train_s"), math.nan),
    "status-diverged": at(("state", "status"), "diverged"),
    "history-too-short": at(("state", "history"), lambda h: h[:1]),
    "history-entry-missing-key": lambda p: p["state"]["history"][1].pop("test_acc"),
    "history-nan-loss": lambda p: p["state"]["history"][1].update(train_loss=math.nan),
    "optimizer-momentum-changed": lambda p: p["opt"]["param_groups"][0].update(momentum=0.5),
    "optimizer-momentum-a-string": lambda p: p["opt"]["param_groups"][0].update(momentum="x"),
    "optimizer-lr-huge": lambda p: p["opt"]["param_groups"][0].update(lr=1e30),
    "optimizer-buffer-wrong-shape": lambda p: p["opt"]["state"][0].update(momentum_buffer=torch.zeros(2)),
    "optimizer-buffer-a-string": lambda p: p["opt"]["state"][0].update(momentum_buffer="x"),
    "optimizer-state-index-out-of-range": lambda p: p["opt"]["state"].update({99: {"momentum_buffer": None}}),
    "optimizer-no-param-groups": at(("opt", "param_groups"), []),
    "schedule-missing": at(("sched",), None),
    "schedule-step-a-string": lambda p: p["sched"].update(last_epoch="4"),
    "schedule-a-list": at(("sched",), [1, 2]),
    "config-of-another-run": lambda p: p["config"].update(lr=0.01),
    "config-with-a-tensor": lambda p: p["config"].update(lr=torch.tensor([1.0, 2.0])),
    "config-with-number-keys": lambda p: p["config"].update({1: 2}),
}


def write(payload, change, path):
    p = copy.deepcopy(payload)
    change(p)
    torch.save(p, path)


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_checkpoint_is_refused_with_its_name(case, payload, digits, tmp_path):
    ck = tmp_path / "ck.pt"
    write(payload, MALFORMED[case], ck)
    steps = []
    with pytest.raises(BadCheckpoint) as e:
        hb.train(CFG, data=digits, checkpoint=ck, resume=True, on_step=lambda *a: steps.append(a))
    assert str(ck) in str(e.value) and steps == []


@pytest.mark.parametrize("what", ["a-list", "a-tensor", "a-number", "fifo"])
def test_a_checkpoint_that_is_not_a_payload_is_refused(what, digits, tmp_path):
    import os

    ck = tmp_path / "ck.pt"
    if what == "fifo":
        os.mkfifo(ck)  # torch.load would wait on it forever
    else:
        torch.save({"a-list": [1, 2], "a-tensor": torch.zeros(3), "a-number": 3}[what], ck)
    with pytest.raises(BadCheckpoint, match=str(ck)):
        hb.train(CFG, data=digits, checkpoint=ck, resume=True)


@pytest.mark.parametrize("case", ["missing-state", "state-a-list", "weight-wrong-shape", "queue-index-out-of-range",
                                  "optimizer-buffer-wrong-shape"])
def test_run_resume_refuses_it_with_exit_2(case, payload, tmp_path, capsys):
    ck, out = tmp_path / "ck.pt", tmp_path / "r.json"
    write(payload, MALFORMED[case], ck)
    status, _, err = run_main(argv_of(CFG) + ["--checkpoint", str(ck), "--resume", "--out", str(out)], capsys)
    assert status == 2 and "Traceback" not in err
    assert f"checkpoint {ck}" in err and "delete it" in err
    assert not out.exists()


def test_a_shuffled_run_checks_its_pass_batches(digits, tmp_path):
    cfg = hb.RunConfig(method="minibatch", order="shuffled", epochs=2, batch_size=16, subset=64, device="cpu")
    ck = tmp_path / "ck.pt"

    def stop(step, batch, loss):
        if step == N + 1:
            raise Stop

    with pytest.raises(Stop):
        hb.train(cfg, data=digits, checkpoint=ck, on_step=stop)
    good = torch.load(ck, weights_only=True)
    assert len(good["epoch_batches"]) == N
    for change in (at(("epoch_batches", 0), lambda t: t + 10**6), at(("epoch_batches",), lambda b: b[:1]),
                   at(("epoch_batches", 0), lambda t: t.float())):
        write(good, change, ck)
        with pytest.raises(BadCheckpoint, match="its batches of this pass"):
            hb.train(cfg, data=digits, checkpoint=ck, resume=True)


def test_a_sweep_moves_a_malformed_checkpoint_aside_and_runs_again(swept, payload, tmp_path, capsys):
    shutil.copytree(swept, tmp_path / "s")
    out = tmp_path / "s"
    (out / "records" / f"{NAME}.json").unlink()
    (out / "checkpoints").mkdir(exist_ok=True)
    ck = out / "checkpoints" / f"{NAME}.pt"
    write(payload, MALFORMED["weight-wrong-shape"], ck)
    bad = ck.read_bytes()
    status, out_text, err = run_main([*SWEEP, "--out", str(out)], capsys)
    assert status == 0 and "Traceback" not in err
    assert "its weights do not fit the model" in out_text + err and "starting over" in out_text + err
    assert (out / "checkpoints" / f"{NAME}.bad").read_bytes() == bad  # kept for a look, out of the way
    assert_sweep_is_whole(out)
    a, b = (hb.load_record(d / "records" / f"{NAME}.json") for d in (out, swept))
    assert [h["test_loss"] for h in a["history"]] == [h["test_loss"] for h in b["history"]]  # run from the start


def assert_sweep_is_whole(out):
    for name, cfg in RUNS:
        r = hb.load_record(out / "records" / f"{name}.json")
        assert r["status"] == "complete" and arms.run_key(r["config"]) == arms.run_key(cfg), name


# ------------------------------------------------------------------ structure-aware fuzz

def tree_paths(x, prefix=()):
    """Every place in a payload (dicts and lists; tensors are leaves)."""
    out = []
    items = x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, (list, tuple)) else ()
    for k, v in items:
        out.append(prefix + (k,))
        out.extend(tree_paths(v, prefix + (k,)))
    return out


def hostile(original, kind):
    """A hostile replacement for `original`."""
    if kind == "wrong-shape" and isinstance(original, torch.Tensor):
        return original.unsqueeze(0)
    if kind == "wrong-dtype" and isinstance(original, torch.Tensor):
        return original.to(torch.int8 if original.is_floating_point() else torch.float32)
    if kind == "nan" and isinstance(original, torch.Tensor) and original.is_floating_point():
        return torch.full_like(original, math.nan)
    if kind == "list-for-dict" and isinstance(original, dict):
        return list(original.values())
    if kind == "dict-for-list" and isinstance(original, list):
        return dict(enumerate(original))
    return {"none": None, "bool": True, "negative": -1, "huge": 2**70, "float": 1.5, "nan": math.nan, "text": "x",
            "empty-list": [], "empty-dict": {}, "tensor": torch.zeros(3), "wrong-shape": torch.zeros(2, 2),
            "wrong-dtype": torch.zeros(3, dtype=torch.int8), "list-for-dict": [1], "dict-for-list": {"a": 1}}[kind]


KINDS = ["none", "bool", "negative", "huge", "float", "nan", "text", "empty-list", "empty-dict", "tensor",
         "wrong-shape", "wrong-dtype", "list-for-dict", "dict-for-list", "delete"]


@st.composite
def malformed_payload(draw, payload):
    p = copy.deepcopy(payload)
    for _ in range(draw(st.integers(1, 2))):
        paths = tree_paths(p)
        path = draw(st.sampled_from(paths))
        parent = p
        for key in path[:-1]:
            parent = parent[key]
        kind = draw(st.sampled_from(KINDS))
        if isinstance(parent, tuple):
            continue
        if kind == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = hostile(parent[path[-1]], kind)
    return p


def fuzz(examples):
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@fuzz(60)
@given(data=st.data())
def test_fuzz_run_resume_never_shows_a_traceback(data, payload, selective_payload, capsys):
    cfg, good = data.draw(st.sampled_from([(CFG, payload), (SELECTIVE, selective_payload)]))
    p = data.draw(malformed_payload(good))
    with tempfile.TemporaryDirectory() as tmp:
        ck, out = Path(tmp) / "ck.pt", Path(tmp) / "r.json"
        torch.save(p, ck)
        status, _, err = run_main(argv_of(cfg) + ["--checkpoint", str(ck), "--resume", "--out", str(out)], capsys)
        assert "Traceback" not in err
        assert status in (0, 2), err
        event("resumed" if status == 0 else "refused")
        if status == 0:  # a change that leaves a usable checkpoint (e.g. other random states): a whole run
            assert hb.load_record(out)["status"] == "complete"
        else:
            assert f"checkpoint {ck}" in err


@fuzz(12)
@given(data=st.data())
def test_fuzz_sweep_always_ends_with_one_complete_record_per_run(data, swept, payload, capsys):
    p = data.draw(malformed_payload(payload))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s"
        shutil.copytree(swept, out)
        (out / "records" / f"{NAME}.json").unlink()
        (out / "checkpoints").mkdir(exist_ok=True)
        torch.save(p, out / "checkpoints" / f"{NAME}.pt")
        status, _, err = run_main([*SWEEP, "--out", str(out)], capsys)
        assert status == 0, err
        assert "Traceback" not in err
        assert_sweep_is_whole(out)


# ------------------------------------------------------------------ flipped bytes in a checkpoint (issue 18, class 3)

def flip_in_file(path, tensor):
    """Flip the lowest bit of the first float of `tensor`'s bytes inside the file at `path` (stays finite)."""
    blob, needle = bytearray(path.read_bytes()), tensor.contiguous().view(torch.uint8).numpy().tobytes()[:16]
    at = blob.find(needle)
    assert at >= 0 and blob.find(needle, at + 1) < 0
    blob[at] ^= 1
    path.write_bytes(bytes(blob))


def test_flipped_bytes_in_a_checkpoint_are_refused(digits, tmp_path):
    cfg = hb.RunConfig(**TINY, threads=1)
    ck = tmp_path / "ck.pt"
    stop_at_epoch_1(cfg, digits, ck)
    payload = torch.load(ck, weights_only=True)
    assert payload["sha256"] == checkpoint.digest(payload)  # saved again as it is: the same contents
    flip_in_file(ck, payload["model"]["head.weight"])
    assert torch.load(ck, weights_only=True)["sha256"] == payload["sha256"]  # torch itself does not notice
    with pytest.raises(checkpoint.BadCheckpoint, match="do not match the checksum"):
        hb.train(cfg, data=digits, checkpoint=ck, resume=True)


def test_a_sweep_restarts_a_run_whose_checkpoint_has_flipped_bytes(digits, tmp_path, capsys):
    out = tmp_path / "s"
    cfg = hb.RunConfig(**{**RUNS[1][1].to_dict(), "epochs": 2})
    name = arms.record_name(cfg)
    argv = [*SWEEP[:SWEEP.index("--epochs")], "--epochs", "2", *SWEEP[SWEEP.index("--epochs") + 2:]]
    ck = out / "checkpoints" / f"{name}.pt"
    ck.parent.mkdir(parents=True)
    stop_at_epoch_1(cfg, digits, ck)
    flip_in_file(ck, torch.load(ck, weights_only=True)["model"]["head.weight"])
    status, text, err = run_main([*argv, "--out", str(out)], capsys)
    assert status == 0 and "checksum" in text + err and "starting over" in text + err
    whole = hb.train(cfg, data=digits)
    assert without_timing(hb.load_record(out / "records" / f"{name}.json"))["history"] == \
        without_timing(whole)["history"]
