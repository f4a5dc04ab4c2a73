"""No host-device synchronisation per training step (the speed issue).

On the CPU we count every call that would force a GPU to finish its queue (`.item()`, `.tolist()`,
`.cpu()`, `bool(tensor)`, `float(tensor)`, ...) during whole runs. The count may grow with the
number of equivalent epochs and of rounds (one selection per round, one evaluation per epoch),
never with the number of steps: runs with 4x more batches per epoch must make exactly as many.
On a CUDA machine, torch's sync debug mode turns any sync inside a training step into an error.
"""
import pytest
import torch

import hardbatch as hb
from hardbatch.data import ImageData

SYNCS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__")


def tiny_data(n_train, n_test=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n_train + n_test, 1, 6, 6), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 3, (n_train + n_test,), generator=g)
    return ImageData("tiny", x[:n_train], y[:n_train], x[n_train:], y[n_train:], 3, (0.5,), (0.25,))


def count_syncs(monkeypatch, cfg, data, **hooks):
    calls = {"n": 0}
    for name in SYNCS:
        original = getattr(torch.Tensor, name)

        def wrapper(self, *args, _original=original, **kwargs):
            calls["n"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, wrapper)
    record = hb.train(cfg, data=data, **hooks)
    monkeypatch.undo()
    return calls["n"], record


@pytest.mark.parametrize("method,select", [("minibatch", None), ("hardbatch", "hardest"),
                                           ("hardbatch", "random"), ("hardbatch", "easiest")])
def test_sync_count_does_not_grow_with_steps(monkeypatch, method, select):
    algorithm2 = dict(select=select, delta=0.5) if method == "hardbatch" else {}
    cfg = hb.RunConfig(method=method, epochs=3, batch_size=8, device="cpu", **algorithm2)
    small, r_small = count_syncs(monkeypatch, cfg, tiny_data(80))  # N = 10, k = 5
    big, r_big = count_syncs(monkeypatch, cfg, tiny_data(320))  # N = 40, k = 20
    assert (r_small["n_batches"], r_big["n_batches"]) == (10, 40)
    assert r_small["rounds"] == r_big["rounds"]  # same ζ, 4x the steps
    assert r_big["backprops"] == 4 * r_small["backprops"]
    assert small == big, f"{big - small} extra host syncs for {r_big['backprops'] - r_small['backprops']} extra steps"


def test_counter_sees_a_per_step_sync(monkeypatch):
    """The counter must be able to fail: a hook that reads the loss each step adds one sync per step."""
    cfg = hb.RunConfig(method="minibatch", epochs=2, batch_size=8, device="cpu")
    base, record = count_syncs(monkeypatch, cfg, tiny_data(80))
    with_hook, _ = count_syncs(monkeypatch, cfg, tiny_data(80), on_step=lambda step, i, loss: loss.item())
    assert with_hook - base == record["backprops"] == 20


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (sync debug mode)")
def test_no_sync_inside_training_steps_on_cuda():
    data = hb.load_dataset("digits")
    for method in ("minibatch", "hardbatch"):
        cfg = hb.RunConfig(method=method, delta=0.2, epochs=3, batch_size=32, device="cuda")
        n = hb.n_batches(len(data.y_train), cfg.batch_size)
        k = hb.k_for(cfg.delta, n)

        def on_step(step, i, loss):
            # evaluation (every N) and selection (every round) may sync; the steps between them may not
            boundary = step % n == 0 or (method == "hardbatch" and step >= n and (step - n) % k == 0)
            torch.cuda.set_sync_debug_mode("default" if boundary else "error")

        try:
            hb.train(cfg, data=data, on_step=on_step)
        finally:
            torch.cuda.set_sync_debug_mode("default")
