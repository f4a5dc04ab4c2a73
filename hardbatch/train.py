"""One training loop for both algorithms, read top to bottom.

Algorithm 1 (`method="minibatch"`): E passes over the N batches, in a new order each pass.
Algorithm 2 (`method="hardbatch"`): one warm-up pass over all N batches that fills the
ledger, then rounds that train the k batches a selection strategy picks from the ledger,
until exactly T = N·E back-props are spent. Both are evaluated every N back-props (an
*equivalent epoch*), never every round, and only the training steps are timed.

The loop is a queue of batch indices: when it runs empty, the next pass (Algorithm 1, the
warm-up) or the next round (Algorithm 2) refills it. The queue, the ledger, the model, the
optimiser and every random state are all the state there is, so a checkpoint taken at an
equivalent epoch resumes the run exactly. Chapters 1 and 4 teach this.
"""
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from . import __version__
from .batches import make_partition
from .budget import k_for
from .config import RunConfig, resolve_device, settings
from .data import load_dataset, preprocess
from .ledger import Ledger
from .models import create_model
from .record import atomic_write
from .selection import select


class Diverged(RuntimeError):
    """The loss became NaN or infinite."""


@torch.no_grad()
def evaluate(model, x, y, data, cfg, batch_size=1024):
    """Mean cross-entropy and top-1 (%) over (x, y) in eval mode, without gradient."""
    model.eval()
    total_loss = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device)
    for start in range(0, len(y), batch_size):
        xb = preprocess(x[start:start + batch_size], data, cfg.image_size)
        with _autocast(cfg, x.device):
            logits = model(_layout(xb, cfg))
        total_loss += F.cross_entropy(logits.float(), y[start:start + batch_size], reduction="sum")
        correct += (logits.argmax(1) == y[start:start + batch_size]).sum()
    model.train()
    return (total_loss / len(y)).item(), (100 * correct / len(y)).item()


def _autocast(cfg, device):
    """bf16 autocast on GPUs that compute in bf16 natively (Ampere and later; Colab's T4 does not)."""
    cuda = torch.device(device).type == "cuda"
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16,
                          enabled=cfg.amp and cuda and torch.cuda.get_device_capability(device)[0] >= 8)


def _layout(x, cfg):
    """channels_last (B, H, W, C in memory): faster convolutions and pooling on GPUs and on CPUs alike
    (1.5-2x per back-prop for the small CNN on digits, see benchmarks/step_time.py)."""
    return x.contiguous(memory_format=torch.channels_last)


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def train(cfg=None, data=None, model=None, *, checkpoint=None, resume=False, progress=False,
          on_step=None, on_epoch=None):
    """Run one configuration and return its run record (a dict; see record.py).

    cfg: a RunConfig (defaults: Algorithm 2 on digits). data: an ImageData, else cfg.dataset
    is loaded. model: a module, else cfg.model is created. checkpoint: a file written at every
    equivalent epoch; with resume=True an existing one is continued. on_step(step, batch, loss)
    and on_epoch(entry) are optional hooks for notebooks (loss is a 0-d tensor on the device).
    """
    cfg = cfg or RunConfig()
    device = resolve_device(cfg.device)
    t_start = time.perf_counter()
    torch.manual_seed(cfg.seed)  # model init and anything else that draws from the global RNG
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
    data = data if data is not None else load_dataset(cfg.dataset)
    if cfg.subset:
        data = data.subset(cfg.subset)
    if cfg.batch_size > len(data.y_train):
        raise ValueError(f"batch_size must be at most the {len(data.y_train)} training samples, got {cfg.batch_size}")
    data = data.to(device)
    gen = torch.Generator().manual_seed(cfg.seed)  # partition, batch order, selection (on the host)
    aug_gen = gen if device == "cpu" else torch.Generator(device=device).manual_seed(cfg.seed)  # augmentation

    partition = make_partition(len(data.y_train), cfg.batch_size, gen, cfg.drop_last)
    partition = [idx.to(device) for idx in partition]
    N, E = len(partition), cfg.epochs
    T = N * E  # the budget
    k = k_for(cfg.delta, N) if cfg.method == "hardbatch" and cfg.select != "all" else N  # "all": every batch

    model = model if model is not None else create_model(cfg.model, data.num_classes, data.in_chans)
    model = model.to(device, memory_format=torch.channels_last)  # 4-d weights as (out, kh, kw, in), like the inputs
    step_model = torch.compile(model) if cfg.compile else model
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = None
    if cfg.lr_schedule == "cosine":  # keyed to back-props, so every method sees the same schedule
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, T) / T)))
    ledger = Ledger(N, device)

    state = {"step": 0, "queue": [], "rounds": 0, "history": [], "train_s": 0.0, "status": "complete",
             "epoch_batches": None}  # epoch_batches: this pass's batches when order="shuffled"
    ckpt = Path(checkpoint) if checkpoint else None
    if resume and ckpt is not None and ckpt.exists():
        _load_checkpoint(ckpt, cfg, model, opt, sched, ledger, gen, aug_gen, state, partition)
    else:
        state["history"].append(_entry(0, 0, model, data, cfg, state, None, t_start))

    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=T, initial=state["step"], desc=f"{cfg.method} δ={cfg.delta}", unit="bp", leave=False)
    bp_loss_sum = torch.zeros((), device=device)  # running sum of back-propagated losses (on device)
    _sync(device)
    t_seg = time.perf_counter()

    try:
        while state["step"] < T:
            if not state["queue"]:
                state["queue"] = _next_pass(cfg, state, ledger, gen, N, T, k, len(data.y_train), device)
            i = state["queue"].pop(0)
            idx = state["epoch_batches"][i] if state["epoch_batches"] is not None else partition[i]
            x = preprocess(data.x_train[idx], data, cfg.image_size, cfg.augment, aug_gen)  # (B, C, S, S)
            with _autocast(cfg, device):
                loss = F.cross_entropy(step_model(_layout(x, cfg)).float(), data.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            ledger.write(i, loss, state["step"])
            bp_loss_sum += loss.detach()
            state["step"] += 1
            if on_step is not None:
                on_step(state["step"], i, loss.detach())
            if bar is not None:
                bar.update(1)
            if state["step"] % N == 0:  # an equivalent epoch: stop the clock, evaluate, checkpoint
                _sync(device)
                state["train_s"] += time.perf_counter() - t_seg
                entry = _entry(state["step"] // N, state["step"], model, data, cfg, state,
                               (bp_loss_sum / N).item(), t_start)
                bp_loss_sum.zero_()
                state["history"].append(entry)
                if not all(math.isfinite(entry[key]) for key in ("train_loss", "backprop_loss")):
                    raise Diverged(f"the loss became {entry['backprop_loss']} by back-prop {state['step']}")
                if on_epoch is not None:
                    on_epoch(entry)
                if bar is not None:
                    bar.set_postfix(test_acc=f"{entry['test_acc']:.1f}%")
                if ckpt is not None:
                    _save_checkpoint(ckpt, cfg, model, opt, sched, ledger, gen, aug_gen, state, partition)
                t_seg = time.perf_counter()
    except Diverged:
        state["status"] = "diverged"
    finally:
        if bar is not None:
            bar.close()

    return {
        "config": {**cfg.to_dict(), "device": device},
        "status": state["status"],
        "n_train": len(data.y_train), "n_test": len(data.y_test),
        "n_batches": N, "k": k, "rounds": state["rounds"], "backprops": state["step"],
        "batch_train_counts": ledger.train_count.tolist(),
        "final_ledger_loss": ledger.loss.tolist(),
        "history": state["history"],
        "time_per_backprop_s": state["train_s"] / max(1, state["step"]),
        "version": __version__,
        "torch": torch.__version__,
    }


def _next_pass(cfg, state, ledger, gen, N, T, k, n_train, device):
    """The batch indices to train next: a pass (Algorithm 1, warm-up) or a round (Algorithm 2)."""
    if cfg.method == "minibatch" and cfg.order == "shuffled":  # new batches from reshuffled samples
        state["epoch_batches"] = [idx.to(device) for idx in make_partition(n_train, cfg.batch_size, gen, cfg.drop_last)]
        return list(range(N))
    if cfg.method == "minibatch" or state["step"] < N:  # fixed batches, reshuffled order; or the warm-up
        return torch.randperm(N, generator=gen).tolist()
    if not torch.isfinite(ledger.loss).all():  # one host sync per round, never per step
        raise Diverged(f"a batch loss became non-finite before back-prop {state['step']}")
    state["rounds"] += 1
    return select(cfg.select, ledger.loss, min(k, T - state["step"]), gen).tolist()


def _entry(epoch, backprops, model, data, cfg, state, backprop_loss, t_start):
    train_loss, train_acc = evaluate(model, data.x_train, data.y_train, data, cfg)
    test_loss, test_acc = evaluate(model, data.x_test, data.y_test, data, cfg)
    return {"epoch": epoch, "backprops": backprops, "train_loss": train_loss, "train_acc": train_acc,
            "test_loss": test_loss, "test_acc": test_acc, "backprop_loss": backprop_loss,
            "train_s": state["train_s"], "wall_s": time.perf_counter() - t_start}


def _rng_states(gen, aug_gen):
    states = {"gen": gen.get_state(), "aug_gen": aug_gen.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _save_checkpoint(path, cfg, model, opt, sched, ledger, gen, aug_gen, state, partition):
    import io

    payload = {"config": cfg.to_dict(), "model": model.state_dict(), "opt": opt.state_dict(),
               "sched": sched.state_dict() if sched is not None else None, "ledger": ledger.state_dict(),
               "partition": [p.cpu() for p in partition], "rng": _rng_states(gen, aug_gen),
               "state": {**state, "epoch_batches": None if state["epoch_batches"] is None
                         else [p.cpu() for p in state["epoch_batches"]]}}
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write(path, buf.getvalue())


def _load_checkpoint(path, cfg, model, opt, sched, ledger, gen, aug_gen, state, partition):
    try:  # weights_only: tensors and plain containers only, never arbitrary pickled code
        payload = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as e:  # noqa: BLE001 (a corrupt, truncated or unsafe file: torch raises several kinds)
        raise ValueError(f"checkpoint {path} cannot be loaded safely ({type(e).__name__}); "
                         f"delete it to start the run afresh") from e
    saved = settings(payload["config"])
    if saved != settings(cfg):
        raise ValueError(f"checkpoint {path} belongs to another configuration: {saved}")
    if any(not torch.equal(a.cpu(), b) for a, b in zip(partition, payload["partition"])):
        raise ValueError(f"checkpoint {path} was made with another partition of the data")
    model.load_state_dict(payload["model"])
    opt.load_state_dict(payload["opt"])
    if sched is not None:
        sched.load_state_dict(payload["sched"])
    ledger.load_state_dict(payload["ledger"])
    gen.set_state(payload["rng"]["gen"])
    if aug_gen is not gen:
        aug_gen.set_state(payload["rng"]["aug_gen"])
    torch.set_rng_state(payload["rng"]["torch"])
    if "cuda" in payload["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["rng"]["cuda"])
    state.update(payload["state"])
    device = ledger.loss.device
    if state["epoch_batches"] is not None:
        state["epoch_batches"] = [p.to(device) for p in state["epoch_batches"]]
