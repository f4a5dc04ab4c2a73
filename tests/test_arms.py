"""Run identity (arms.py): which settings make a run, which knobs are refused, and the Run's checkpoint.

A new RunConfig field joins a run's identity unless it is named in arms.EXECUTION; these tests
enumerate the fields so that no field can be left out of both by accident.
"""
from dataclasses import fields

import pytest
import torch

from hardbatch import RunConfig, arms, load_dataset
from hardbatch.cli import main
from hardbatch.config import METHODS, ONLY_FOR, ONLY_FOR_SELECT
from hardbatch.train import start


def test_every_field_is_identity_or_execution():
    names = {f.name for f in fields(RunConfig)}
    assert set(arms.EXECUTION) <= names and set(arms.ALGORITHM) <= names
    identity = set().union(*(arms.settings(c) for c in [RunConfig(method=m) for m in METHODS]
                             + [RunConfig(select="proportional")]))
    assert identity | set(arms.EXECUTION) == names
    assert not identity & set(arms.EXECUTION)
    for name in identity:  # changing any identity field changes the run (and its arm, unless it is the seed)
        f = next(f for f in fields(RunConfig) if f.name == name)
        method = ONLY_FOR.get(name, "hardbatch")
        other = {"method": "minibatch" if method == "hardbatch" else "hardbatch", "order": "shuffled",
                 "select": "random", "delta": 0.5, "epochs": 3, "batch_size": 7, "lr": 0.1, "momentum": 0.5,
                 "weight_decay": 0.1, "seed": 4, "model": "resnet18", "dataset": "cifar10", "image_size": 32,
                 "augment": True, "lr_schedule": "cosine", "drop_last": True, "subset": 99,
                 "train_eval_subset": 77, "test_subset": 55, "alpha": 2.0, "beta": 2.0, "window": 99,
                 "prune": 0.3, "anneal": 0.5, "prune_by": "random", "pressure": 10.0, "recompute": 3}[name]
        rule = {"select": ONLY_FOR_SELECT[name]} if name in ONLY_FOR_SELECT else {}
        base = RunConfig(method=method, **rule)
        changed = RunConfig(**{**{k: v for k, v in base.to_dict().items() if k not in ONLY_FOR}, **rule, name: other})
        assert arms.run_key(changed) != arms.run_key(base), name
        assert arms.record_name(changed) != arms.record_name(base), name
        assert (arms.arm(changed) != arms.arm(base)) == (name != "seed"), name
        assert f.metadata["help"]  # every field documents itself (the CLI's help)
    for name in arms.EXECUTION:
        assert arms.run_key(RunConfig(**{name: {"device": "cpu", "amp": False, "compile": True, "threads": 1}[name]})) \
            == arms.run_key(RunConfig()), name


@pytest.mark.parametrize("kwargs, words", [
    (dict(method="minibatch", delta=0.2), ["delta", "'hardbatch' only"]),
    (dict(method="minibatch", select="easiest"), ["select", "'hardbatch' only"]),
    (dict(method="hardbatch", order="shuffled"), ["order", "'minibatch' only"]),
])
def test_a_knob_the_method_ignores_is_refused(kwargs, words):
    with pytest.raises(ValueError) as e:
        RunConfig(**kwargs)
    assert all(w in str(e.value) for w in words)


@pytest.mark.parametrize("argv, words", [
    (["run", "--method", "minibatch", "--delta", "0.2"], ["delta", "'hardbatch' only"]),
    (["run", "--method", "minibatch", "--select", "easiest"], ["select", "'hardbatch' only"]),
    (["run", "--order", "shuffled"], ["order", "'minibatch' only"]),
    (["compare", "--seeds", "0", "0"], ["seeds must be distinct", "[0, 0]"]),
    (["sweep", "--seeds", "1", "1", "--dry-run"], ["seeds must be distinct"]),
    (["run", "--select", "all"], ["invalid choice: 'all'"]),
])
def test_conflicting_flags_exit_2_with_one_line(argv, words, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(argv + ["--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err
    assert all(w in err for w in words), err


def test_a_job_lists_each_run_once_and_refuses_repeated_seeds():
    base = RunConfig(device="cpu")
    runs = arms.job(base, deltas=(0.5, 0.2), strategies=("hardest", "random"), seeds=(0, 1))
    assert len(runs) == 2 * 5 and len({arms.run_key(c) for c in runs}) == 10
    assert [arms.label(c) for c in runs[:5]] == ["Algorithm 1 (fixed)", "hardest δ=0.5", "hardest δ=0.2",
                                                 "random δ=0.5", "random δ=0.2"]
    assert all(arms.is_baseline(c) == (c.method == "minibatch") for c in runs)
    assert len(arms.job(base, deltas=(0.5, 0.5), strategies=("hardest",), seeds=(0,))) == 2  # δ named twice
    with pytest.raises(ValueError, match="distinct"):
        arms.job(base, seeds=(0, 0))


def test_record_names_are_stable_and_readable():
    cfg = RunConfig(device="cpu", seed=3, delta=0.5)
    name = arms.record_name(cfg)
    assert name.startswith("digits-small_cnn-hardbatch-hardest-d0.5-s3-")
    assert name == arms.record_name({**cfg.to_dict(), "device": "cuda", "threads": 8})  # execution: same name
    # A record written before a field existed (here: test_subset) keeps its name, since the default is implied.
    older = {k: v for k, v in cfg.to_dict().items() if k != "test_subset"}
    assert arms.record_name(older) == name


def test_run_save_and_load_round_trip(tmp_path):
    cfg = RunConfig(epochs=3, subset=128, batch_size=32, delta=0.5, device="cpu", augment=True, lr_schedule="cosine")
    data = load_dataset("digits")
    run = start(cfg, data)
    run.evaluate()
    for _ in range(run.N):  # one equivalent epoch: the warm-up pass
        if not run.queue:
            run.refill_queue()
        run.backprop(run.queue.pop(0))
    run.evaluate(backprop_loss=1.0)
    run.save(tmp_path / "run.pt")
    again = start(cfg, data)
    again.load(tmp_path / "run.pt")
    assert (again.step, again.rounds, again.queue, again.history) == (run.step, run.rounds, run.queue, run.history)
    assert all(torch.equal(a, b) for a, b in zip(again.model.state_dict().values(), run.model.state_dict().values()))
    assert torch.equal(again.ledger.loss, run.ledger.loss) and torch.equal(again.gen.get_state(), run.gen.get_state())
    again.refill_queue(), run.refill_queue()  # the same round is chosen next
    assert again.queue == run.queue and again.rounds == run.rounds == 1
    with pytest.raises(ValueError, match="another configuration"):
        start(RunConfig(**{**cfg.to_dict(), "lr": 0.1}), data).load(tmp_path / "run.pt")
