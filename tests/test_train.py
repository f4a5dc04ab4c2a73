"""The training loop (train.py) against docs/method.md and against hand-written plain PyTorch loops.

The loop-level properties run on a really tiny set-up (4x4 random images, a linear model),
so that hypothesis can try many N, E and δ quickly. Back-props are counted by a gradient hook
on the model's weight, independently of the record's own `backprops` field.
"""
import copy
import importlib
import math
from collections import Counter
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

import hardbatch as hb
from hardbatch.record import without_timing
from hardbatch import budget
from hardbatch.data import ImageData

train_module = importlib.import_module("hardbatch.train")  # `hardbatch.train` is also the function's name
hardbatch_method = importlib.import_module("hardbatch.methods.hardbatch")  # where Algorithm 2 calls select


def tiny_data(n=36, m=12, classes=3, seed=0):
    """Random uint8 images (n, 1, 4, 4) with random labels: enough to exercise every code path."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n + m, 1, 4, 4), generator=g, dtype=torch.uint8)
    y = torch.randint(0, classes, (n + m,), generator=g)
    xf = x[:n].float() / 255
    return ImageData("tiny", x[:n], y[:n], x[n:], y[n:], classes,
                     tuple(xf.mean(dim=(0, 2, 3)).tolist()), tuple(xf.std(dim=(0, 2, 3)).tolist()))


def tiny_model(classes=3, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, classes))


def cfg_for(**kw):
    """A small config; the knobs the method ignores (order for Algorithm 2, select and delta for Algorithm 1)
    are dropped, since RunConfig refuses them."""
    base = dict(device="cpu", lr=0.1, momentum=0.9, weight_decay=1e-3, batch_size=6, epochs=3)
    ignored = ("select", "delta") if kw.get("method") == "minibatch" else ("order",)
    return hb.RunConfig(**{k: v for k, v in {**base, **kw}.items() if k not in ignored})


# ---------------------------------------------------------------------------------------------
# Budget and evaluation properties, over N, E, δ and every method
# ---------------------------------------------------------------------------------------------

arms = st.sampled_from([("minibatch", "fixed", "hardest"), ("minibatch", "shuffled", "hardest"),
                        ("hardbatch", "fixed", "hardest"), ("hardbatch", "fixed", "easiest"),
                        ("hardbatch", "fixed", "random")])


@settings(max_examples=100, deadline=None)
@given(n=st.integers(4, 40), data=st.data(), E=st.integers(1, 4), delta=st.sampled_from([0.05, 0.2, 0.3, 0.5, 0.8, 1.0]),
       arm=arms, drop_last=st.booleans(), seed=st.integers(0, 1000))
def test_loop_spends_exactly_n_times_e_backprops(n, data, E, delta, arm, drop_last, seed):
    method, order, strategy = arm
    B = data.draw(st.integers(1, n // 2), label="batch_size")
    cfg = cfg_for(method=method, order=order, select=strategy, delta=delta, epochs=E, batch_size=B,
                  drop_last=drop_last, seed=seed)
    model = tiny_model()
    backwards = [0]
    model[1].weight.register_hook(lambda g: backwards.__setitem__(0, backwards[0] + 1))
    steps, at_epoch, rounds = [], [], []

    real_select = hardbatch_method.select

    def spy_select(name, ledger, k, generator=None):
        picked = real_select(name, ledger, k, generator)
        rounds.append(picked.tolist())
        return picked

    with mock.patch.object(hardbatch_method, "select", spy_select):
        record = hb.train(cfg, data=tiny_data(n), model=model,
                          on_step=lambda s, i, loss: steps.append((s, i)),
                          on_epoch=lambda entry: at_epoch.append((entry["backprops"], backwards[0])))

    N = record["n_batches"]
    assert N == hb.n_batches(n, B, drop_last)
    assert backwards[0] == N * E == record["backprops"] == len(steps)  # exactly T = N·E back-props
    assert [s for s, _ in steps] == list(range(1, N * E + 1))
    trained = [i for _, i in steps]
    visits = Counter(trained)
    assert [visits[i] for i in range(N)] == record["batch_train_counts"]
    assert sum(record["batch_train_counts"]) == N * E
    assert sorted(trained[:N]) == list(range(N))  # the first pass (warm-up) trains every batch once

    # evaluated at back-props 0, N, ..., EN, and on_epoch saw exactly that many backward passes
    assert [h["backprops"] for h in record["history"]] == [N * e for e in range(E + 1)]
    assert [h["epoch"] for h in record["history"]] == list(range(E + 1))
    assert at_epoch == [(N * e, N * e) for e in range(1, E + 1)]
    assert all(math.isfinite(h[key]) for h in record["history"] for key in ("train_loss", "test_loss", "test_acc"))

    if method == "minibatch":
        assert record["rounds"] == 0 and rounds == []
        for e in range(E):  # Algorithm 1: every pass is a permutation of the N batches
            assert sorted(trained[e * N:(e + 1) * N]) == list(range(N))
    else:
        k = budget.k_for(delta, N)
        assert record["k"] == k
        assert [len(r) for r in rounds] == budget.round_sizes(N, E, delta)
        assert record["rounds"] == len(rounds) == budget.zeta(N, E, delta)
        assert all(len(set(r)) == len(r) for r in rounds)  # a round never trains a batch twice
        assert sum(rounds, []) == trained[N:]  # the loop trains what was selected, in that order


# ---------------------------------------------------------------------------------------------
# Algorithm 1 against a hand-written plain PyTorch loop
# ---------------------------------------------------------------------------------------------

def normalise(x, data):
    """What hb.preprocess does without resizing or augmentation: x/255, then (x - mean) / std."""
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    return (x.float() / 255 - mean) / std


def sgd_step(model, opt, x, y, data):
    loss = F.cross_entropy(model(normalise(x, data)), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def make_opt(model, cfg):
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def plain_fixed(cfg, data, model):
    """Algorithm 1, order='fixed': one partition, its batch order reshuffled each epoch."""
    g = torch.Generator().manual_seed(cfg.seed)
    n = len(data.y_train)
    parts = list(torch.split(torch.randperm(n, generator=g), cfg.batch_size))
    if cfg.drop_last and len(parts[-1]) < cfg.batch_size:
        parts.pop()
    opt, order = make_opt(model, cfg), []
    for _ in range(cfg.epochs):
        for i in torch.randperm(len(parts), generator=g).tolist():
            sgd_step(model, opt, data.x_train[parts[i]], data.y_train[parts[i]], data)
            order.append(i)
    return order


class Reshuffle(torch.utils.data.Sampler):
    """A fresh seeded permutation of the n samples every epoch: what RandomSampler draws."""

    def __init__(self, n, generator):
        self.n, self.generator = n, generator

    def __len__(self):
        return self.n

    def __iter__(self):
        yield from torch.randperm(self.n, generator=self.generator).tolist()


def plain_shuffled(cfg, data, model):
    """Algorithm 1, order='shuffled': the textbook DataLoader over samples, reshuffled each epoch.

    Three things make it draw from the generator exactly as hardbatch does: hardbatch draws its
    fixed partition first (unused by this baseline), so we draw that permutation too;
    `DataLoader(shuffle=True, generator=g)` draws an extra worker seed from g before each epoch
    (see the test below); and torch's RandomSampler draws and discards a second permutation at
    the end of each pass, so from epoch 2 on it is one permutation ahead. `Reshuffle` is
    RandomSampler without that discarded draw.
    """
    g = torch.Generator().manual_seed(cfg.seed)
    torch.randperm(len(data.y_train), generator=g)  # hardbatch's fixed partition, drawn first
    ds = TensorDataset(data.x_train, data.y_train)
    loader = DataLoader(ds, batch_size=cfg.batch_size, sampler=Reshuffle(len(ds), g), drop_last=cfg.drop_last)
    opt = make_opt(model, cfg)
    for _ in range(cfg.epochs):
        for xb, yb in loader:
            sgd_step(model, opt, xb, yb, data)


def test_dataloader_shuffle_with_generator_draws_an_extra_seed():
    # Why the oracle above hands the generator to the sampler: documents PyTorch's behaviour.
    ds = TensorDataset(torch.arange(10))
    shuffle = [b[0].tolist() for b in DataLoader(ds, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0))]
    ours = [p.tolist() for p in hb.make_partition(10, 4, torch.Generator().manual_seed(0))]
    sampler = [b[0].tolist() for b in DataLoader(ds, batch_size=4, sampler=RandomSampler(ds, generator=torch.Generator().manual_seed(0)))]
    assert ours == sampler != shuffle


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), f"{key} differs by {(sa[key] - sb[key]).abs().max().item():.3g}"


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("drop_last", [False, True])
def test_algorithm_1_fixed_matches_a_plain_loop(seed, drop_last):
    data, model = tiny_data(40), tiny_model(seed=seed)
    cfg = cfg_for(method="minibatch", order="fixed", seed=seed, drop_last=drop_last, batch_size=7)
    ref, order = copy.deepcopy(model), []
    hb.train(cfg, data=data, model=model, on_step=lambda s, i, loss: order.append(i))
    assert plain_fixed(cfg, data, ref) == order
    assert_same_weights(model, ref)  # bit for bit: same ops in the same order on CPU


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("drop_last", [False, True])
def test_algorithm_1_shuffled_matches_a_dataloader_loop(seed, drop_last):
    data, model = tiny_data(40), tiny_model(seed=seed)
    cfg = cfg_for(method="minibatch", order="shuffled", seed=seed, drop_last=drop_last, batch_size=7)
    ref = copy.deepcopy(model)
    hb.train(cfg, data=data, model=model)
    plain_shuffled(cfg, data, ref)
    assert_same_weights(model, ref)


# ---------------------------------------------------------------------------------------------
# Algorithm 2 against a hand-written reference with sorted()-based selection
# ---------------------------------------------------------------------------------------------

def plain_hard(cfg, data, model):
    """Algorithm 2 by hand: warm-up pass over the fixed partition, then rounds of the top k by sorted()."""
    g = torch.Generator().manual_seed(cfg.seed)
    parts = list(torch.split(torch.randperm(len(data.y_train), generator=g), cfg.batch_size))
    N = len(parts)
    T, k = N * cfg.epochs, max(1, round(cfg.delta * N))
    opt, ledger, order = make_opt(model, cfg), [None] * N, []

    def train_batch(i):
        ledger[i] = sgd_step(model, opt, data.x_train[parts[i]], data.y_train[parts[i]], data)
        order.append(i)

    for i in torch.randperm(N, generator=g).tolist():  # warm-up, shuffled order
        train_batch(i)
    while len(order) < T:
        sign = -1 if cfg.select == "hardest" else 1  # hardest: descending; easiest: ascending
        top = sorted(range(N), key=lambda i: (sign * ledger[i], i))[:min(k, T - len(order))]
        for i in top:
            train_batch(i)
    return order


@pytest.mark.parametrize("strategy", ["hardest", "easiest"])
@pytest.mark.parametrize("delta, seed", [(0.4, 0), (0.2, 3), (1.0, 5)])
def test_algorithm_2_matches_a_plain_loop(strategy, delta, seed):
    data, model = tiny_data(40), tiny_model(seed=seed)
    cfg = cfg_for(method="hardbatch", select=strategy, delta=delta, seed=seed, epochs=4)
    ref, order = copy.deepcopy(model), []
    record = hb.train(cfg, data=data, model=model, on_step=lambda s, i, loss: order.append(i))
    assert plain_hard(cfg, data, ref) == order  # same batches in the same order
    assert_same_weights(model, ref)
    assert record["rounds"] == budget.zeta(record["n_batches"], 4, delta)


# ---------------------------------------------------------------------------------------------
# Determinism and checkpoints
# ---------------------------------------------------------------------------------------------

def test_same_seed_same_record_on_cpu(digits, tmp_path):
    # The real path: small_cnn created by train() from the seed, digits, Algorithm 2.
    cfg = hb.RunConfig(method="hardbatch", delta=0.3, epochs=2, subset=256, device="cpu")
    a = hb.train(cfg, data=digits, checkpoint=tmp_path / "a.pt")
    b = hb.train(cfg, data=digits, checkpoint=tmp_path / "b.pt")
    c = hb.train(hb.RunConfig(**{**cfg.to_dict(), "seed": 1}), data=digits, checkpoint=tmp_path / "c.pt")
    assert without_timing(a) == without_timing(b)
    assert without_timing(a)["history"] != without_timing(c)["history"]
    parts = [torch.load(tmp_path / f"{x}.pt", weights_only=True)["partition"] for x in "abc"]
    assert all(torch.equal(p, q) for p, q in zip(parts[0], parts[1]))
    assert not all(torch.equal(p, q) for p, q in zip(parts[0], parts[2]))  # another seed, another partition
    assert a["status"] == "complete" and a["backprops"] == a["n_batches"] * 2


class Stop(Exception):
    pass


@pytest.mark.parametrize("method, order", [("hardbatch", "fixed"), ("minibatch", "shuffled")])
def test_resume_from_a_checkpoint_continues_exactly(method, order, tmp_path):
    data = tiny_data(40)
    cfg = cfg_for(method=method, order=order, delta=0.3, epochs=4, lr_schedule="cosine")
    whole_model, part_model = tiny_model(), tiny_model()
    whole = hb.train(cfg, data=data, model=whole_model)

    def stop_at_2(entry):
        if entry["epoch"] == 2:
            raise Stop  # killed after epoch 2's evaluation, before its checkpoint: epoch 1 is on disk

    ckpt = tmp_path / "run.pt"
    with pytest.raises(Stop):
        hb.train(cfg, data=data, model=tiny_model(), checkpoint=ckpt, on_epoch=stop_at_2)
    N = whole["n_batches"]
    assert torch.load(ckpt, weights_only=True)["state"]["step"] == N  # the run really stopped at epoch 1
    backwards = [0]
    part_model[1].weight.register_hook(lambda g: backwards.__setitem__(0, backwards[0] + 1))
    resumed = hb.train(cfg, data=data, model=part_model, checkpoint=ckpt, resume=True)
    assert backwards[0] == N * (cfg.epochs - 1)  # only the missing back-props were run
    assert_same_weights(whole_model, part_model)
    assert without_timing(whole) == without_timing(resumed)


def test_bad_batch_size_is_refused():
    with pytest.raises(ValueError, match="batch_size"):
        hb.train(cfg_for(batch_size=100), data=tiny_data(36), model=tiny_model())
