"""The contract every registered method keeps (methods/), checked over the registry, so a new method is
tested by being registered: its budget (exactly N·E back-props, or the saving it declares), an exact resume
after two stops, a record that validates, no host sync per step, refused knobs it ignores, and its words.
A toy method registered here runs through `run`, `compare`, `sweep --dry-run` and `report` with no package
file edited."""
import json
import math

import matplotlib.colors
import pytest
import torch

import hardbatch as hb
from hardbatch import arms, methods
from hardbatch.config import ONLY_FOR
from hardbatch.methods.base import Method
from hardbatch.plots import arm_color
from hardbatch.record import validate_record, without_timing
from helpers import run_main
from test_no_sync import count_syncs, tiny_data

OWN = {"hardbatch": {"delta": 0.5}, "infobatch": {"anneal": 0.25}}  # knobs that make the small runs telling
OTHER = {"order": "shuffled", "select": "random", "delta": 0.5, "alpha": 2.0, "beta": 2.0, "window": 9,
         "prune": 0.3, "anneal": 0.5, "prune_by": "random", "pressure": 10.0, "recompute": 3}  # a value for every method's knob


def small(method, **kw):
    return hb.RunConfig(method=method, **{"epochs": 4, "batch_size": 8, "device": "cpu", **OWN.get(method, {}), **kw})


class Stop(Exception):
    pass


@pytest.mark.parametrize("name", list(methods.METHODS))
def test_budget_is_exact_or_the_declared_saving(name):
    data = tiny_data(83)  # N = 11, the last batch of 3
    backwards = []
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 3))
    model[1].weight.register_hook(lambda g: backwards.append(1))
    record = hb.train(small(name), data=data, model=model)
    N, E, n = record["n_batches"], 4, 83
    assert record["status"] == "complete" and len(backwards) == record["backprops"] == sum(record["batch_train_counts"])
    assert len(record["history"]) == E + 1 and [h["epoch"] for h in record["history"]] == list(range(E + 1))
    if methods.REGISTRY[name].saves_backprops:
        assert record["backprops"] + record["backprops_saved"] == N * E and record["backprops_saved"] > 0
        assert record["backprop_samples"] + record["samples_pruned"] == n * E and record["samples_pruned"] > 0
    else:
        assert record["backprops"] == N * E and [h["backprops"] for h in record["history"]] == [N * e for e in range(E + 1)]
    validate_record(json.loads(json.dumps(record)))
    for key, change in (("backprops", -1), ("backprop_samples", 1)):  # the invariant is checked, not assumed
        broken = {**record, key: record[key] + change}
        if key == "backprops":
            broken["batch_train_counts"] = [record["batch_train_counts"][0] - 1] + record["batch_train_counts"][1:]
        with pytest.raises(ValueError):
            validate_record(broken)


@pytest.mark.parametrize("name", list(methods.METHODS))
def test_same_seed_same_record_and_exact_resume_after_two_stops(name, tmp_path):
    data = tiny_data(83)
    cfg = small(name, augment=True)
    whole = hb.train(cfg, data=data)
    assert without_timing(hb.train(cfg, data=data)) == without_timing(whole)  # deterministic per seed
    ends = [h["backprops"] for h in whole["history"]]
    ck = tmp_path / "ck.pt"
    for stop in (ends[1] + 2, ends[2] + 1):  # inside epoch 2, then inside epoch 3 of the resumed run

        def on_step(step, batch, loss, stop=stop):
            if step == stop:
                raise Stop

        with pytest.raises(Stop):
            hb.train(cfg, data=data, checkpoint=ck, resume=True, on_step=on_step)
    steps = []
    resumed = hb.train(cfg, data=data, checkpoint=ck, resume=True, on_step=lambda s, b, l: steps.append(s))
    assert steps == list(range(ends[2] + 1, ends[-1] + 1))  # only the missing back-props ran
    assert without_timing(resumed) == without_timing(whole)


@pytest.mark.parametrize("name", list(methods.METHODS))
def test_no_host_sync_per_step(name, monkeypatch):
    cfg = small(name, epochs=3)
    small_n, r_small = count_syncs(monkeypatch, cfg, tiny_data(80))  # N = 10
    big_n, r_big = count_syncs(monkeypatch, cfg, tiny_data(320))  # N = 40
    assert r_big["backprops"] > 3 * r_small["backprops"]
    if getattr(methods.REGISTRY[name], "syncs_per_step", False):  # declared: Selective-Backprop's kept count
        assert big_n > small_n
    else:
        assert big_n == small_n, f"{big_n - small_n} extra host syncs for {r_big['backprops'] - r_small['backprops']} steps"


@pytest.mark.parametrize("name", list(methods.METHODS))
def test_knobs_of_other_methods_are_refused_and_its_own_filled(name):
    cls = methods.REGISTRY[name]
    cfg = hb.RunConfig(method=name)
    for knob, default in cls.knobs.items():
        assert getattr(cfg, knob) == default
    for knob, owner in ONLY_FOR.items():
        if owner != name:
            with pytest.raises(ValueError, match=knob):
                hb.RunConfig(method=name, **{knob: OTHER[knob]})


def test_words_are_defined_distinct_and_ordered():
    configs = [hb.RunConfig(method=name) for name in methods.METHODS] + [hb.RunConfig(method="minibatch",
                                                                                       order="shuffled")]
    labels = [arms.label(c) for c in configs]
    assert all(isinstance(x, str) and x for x in labels) and len(set(labels)) == len(labels)
    names = [arms.record_name(c) for c in configs]
    assert len(set(names)) == len(names) and all(" " not in x and "/" not in x for x in names)
    assert min(configs, key=arms.sort_key).method == "minibatch" and arms.is_baseline(min(configs, key=arms.sort_key))
    colours = [matplotlib.colors.to_hex(arm_color(c)) for c in configs]
    assert len(set(colours)) == len(colours)  # every method's default arm has its own colour
    assert all(math.isfinite(x) for c in configs for x in matplotlib.colors.to_rgba(arm_color(c.to_dict())))


class Backwards(Method):
    """A toy: each pass trains the batches of the partition from the last to the first."""
    name = "toy"
    order = 7

    def refill(self, run):
        return list(range(run.N))[::-1]

    @classmethod
    def label(cls, c):
        return "toy (last batch first)"


@pytest.fixture
def toy():
    methods.register(Backwards)
    yield Backwards
    methods.unregister("toy")
    assert "toy" not in methods.METHODS and "toy" not in hb.config.METHOD_DEFAULTS


def test_a_method_registered_at_run_time_runs_everywhere(toy, tmp_path, capsys):
    common = ["--epochs", "2", "--batch-size", "64", "--subset", "256", "--device", "cpu"]
    status, out, err = run_main(["run", "--method", "toy", *common, "--out", str(tmp_path / "r.json")], capsys)
    assert status == 0, err
    record = hb.load_record(tmp_path / "r.json")
    assert record["config"]["method"] == "toy" and record["backprops"] == 4 * 2
    status, out, err = run_main(["compare", *common, "--seeds", "0", "1", "--arms", "toy", "hardbatch delta=0.5",
                                 "--out", str(tmp_path / "cmp")], capsys)
    assert status == 0, err
    assert "toy (last batch first)" in out and "Algorithm 1 (fixed)" in out and "hardest δ=0.5" in out
    assert len(list((tmp_path / "cmp" / "records").glob("digits-small_cnn-toy-x-s*.json"))) == 2
    status, out, err = run_main(["sweep", "--dry-run", "--models", "small_cnn", "--datasets", "digits", "--seeds", "0",
                                 "--arms", "toy", "--out", str(tmp_path / "sw")], capsys)
    assert status == 0, err
    assert "digits-small_cnn-toy-x-s0-" in out and "2 runs" in out
    status, out, err = run_main(["report", str(tmp_path / "cmp"), "--no-figures"], capsys)
    assert status == 0, err
    assert "toy (last batch first)" in out


def test_compare_arms_spec_names_every_arm(tmp_path, capsys):
    common = ["--epochs", "2", "--batch-size", "64", "--subset", "256", "--device", "cpu", "--seeds", "0"]
    status, out, err = run_main(["compare", *common, "--arms", "infobatch prune=0.5", "online pressure=10",
                                 "--out", str(tmp_path)], capsys)
    assert status == 0, err
    assert "infobatch r=0.5" in out and "online s=10" in out and "| hardest" not in out
    status, out, err = run_main(["compare", *common, "--arms", "online", "--betas", "1", "--out", str(tmp_path)],
                                capsys)
    assert status == 2 and "--arms names every arm" in err
