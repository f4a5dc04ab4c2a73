"""The loss ledger (ledger.py): its bookkeeping against an independent replay of events.

Convention checked here: `on_step(step, batch, loss)` is called with step = 1, 2, ..., T (back-props
done so far), while the ledger writes the 0-based index of the back-prop, step - 1. So after the run
(now = T) the batch trained last has staleness 1: the model has taken one update since its loss.
"""
import importlib
import math
from unittest import mock

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import hardbatch as hb
from hardbatch.data import ImageData
from hardbatch.ledger import Ledger

train_module = importlib.import_module("hardbatch.train")
hardbatch_method = importlib.import_module("hardbatch.methods.hardbatch")  # where Algorithm 2 calls select


def replay(events, N):
    """Plain-Python bookkeeping of (step, batch, loss) events: counts, last 0-based back-prop, last loss."""
    count, last, loss = [0] * N, [-1] * N, [math.nan] * N
    for step, i, value in events:
        count[i] += 1
        last[i] = step - 1
        loss[i] = value
    return count, last, loss


def test_a_new_ledger_knows_nothing():
    led = Ledger(4)
    assert len(led) == 4
    assert torch.isnan(led.loss).all()
    assert led.train_count.tolist() == [0, 0, 0, 0] and led.last_scored.tolist() == [-1] * 4
    assert led.staleness(10).tolist() == [-1] * 4
    assert led.starved().all()


def test_write_by_hand():
    led = Ledger(3)
    led.write(1, torch.tensor(2.5), 0)
    led.write(0, torch.tensor(1.0), 1)
    led.write(1, torch.tensor(0.5), 2)
    assert led.loss[:2].tolist() == [1.0, 0.5] and math.isnan(led.loss[2].item())
    assert led.train_count.tolist() == [1, 2, 0]
    assert led.last_scored.tolist() == [1, 2, -1]
    assert led.staleness(3).tolist() == [2, 1, -1]
    assert led.starved().tolist() == [True, False, True]
    other = Ledger(3)
    other.load_state_dict(led.state_dict())
    assert torch.equal(other.train_count, led.train_count) and torch.equal(other.last_scored, led.last_scored)
    assert torch.equal(other.loss.nan_to_num(-1), led.loss.nan_to_num(-1))


@settings(max_examples=150, deadline=None)
@given(st.data(), st.integers(1, 12))
def test_any_sequence_of_writes_matches_the_replay(data, N):
    batches = data.draw(st.lists(st.integers(0, N - 1), max_size=60))
    values = data.draw(st.lists(st.floats(0, 10, width=32), min_size=len(batches), max_size=len(batches)))
    events = [(s + 1, i, v) for s, (i, v) in enumerate(zip(batches, values))]
    led = Ledger(N)
    for step, i, v in events:
        led.write(i, torch.tensor(v), step - 1)
    count, last, loss = replay(events, N)
    now = len(events)
    assert led.train_count.tolist() == count
    assert led.last_scored.tolist() == last
    assert [a if not math.isnan(a) else None for a in led.loss.tolist()] == [b if not math.isnan(b) else None for b in loss]
    assert led.staleness(now).tolist() == [now - s if s >= 0 else -1 for s in last]
    assert led.starved().tolist() == [c <= 1 for c in count]


def tiny_data(n=36, m=12, classes=3):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n + m, 1, 4, 4), generator=g, dtype=torch.uint8)
    y = torch.randint(0, classes, (n + m,), generator=g)
    xf = x[:n].float() / 255
    return ImageData("tiny", x[:n], y[:n], x[n:], y[n:], classes,
                     tuple(xf.mean(dim=(0, 2, 3)).tolist()), tuple(xf.std(dim=(0, 2, 3)).tolist()))


@settings(max_examples=25, deadline=None)
@given(strategy=st.sampled_from(["hardest", "easiest", "random"]), delta=st.sampled_from([0.1, 0.25, 0.5]),
       E=st.integers(2, 4), B=st.integers(2, 8), seed=st.integers(0, 100))
def test_ledger_after_a_run_matches_the_replay(tmp_path_factory, strategy, delta, E, B, seed):
    events, seen_by_select = [], []
    real_select = hardbatch_method.select

    def spy_select(name, ledger, k, generator=None):
        seen_by_select.append((len(events), ledger.loss.tolist()))  # what the ledger held when the round was chosen
        return real_select(name, ledger, k, generator)

    ckpt = tmp_path_factory.mktemp("ledger") / "run.pt"  # the checkpoint holds the final ledger
    cfg = hb.RunConfig(method="hardbatch", select=strategy, delta=delta, epochs=E, batch_size=B, seed=seed,
                       device="cpu", lr=0.1)
    torch.manual_seed(0)
    with mock.patch.object(hardbatch_method, "select", spy_select):
        record = hb.train(cfg, data=tiny_data(), model=nn.Sequential(nn.Flatten(), nn.Linear(16, 3)),
                          checkpoint=ckpt, on_step=lambda s, i, loss: events.append((s, i, loss.item())))
    N, T = record["n_batches"], record["backprops"]
    count, last, loss = replay(events, N)
    led = Ledger(N)
    led.load_state_dict(torch.load(ckpt, weights_only=True)["ledger"])

    assert record["batch_train_counts"] == count == led.train_count.tolist()
    assert record["final_ledger_loss"] == loss == led.loss.tolist()
    assert led.last_scored.tolist() == last
    assert led.staleness(T).tolist() == [T - s for s in last]
    assert led.starved().tolist() == [c == 1 for c in count]  # after the warm-up every batch has one
    assert min(led.staleness(T).tolist()) == 1  # the last batch trained
    # Every round was chosen from the replayed ledger: fresh entries for trained batches, stale for the rest.
    assert len(seen_by_select) == record["rounds"] > 0
    for done, losses in seen_by_select:
        assert losses == replay(events[:done], N)[2]
