"""One training loop for every method, read top to bottom; nothing in it is specific to one method.

A method (hardbatch/methods/: Algorithm 1 `minibatch`, Algorithm 2 `hardbatch`, Selective-Backprop
`selective`, InfoBatch `infobatch`, online batch selection `online`) says how the budget T = N·E
back-props is spent. The loop is a queue of batch indices: when it runs empty, the method refills it
with its next pass or round (`run.method.refill`); each back-prop trains the samples the method names
(`samples`) on the loss it reduces (`loss`), and the method remembers what it needs (`after_step`).
Runs are evaluated at the end of every equivalent epoch (every N back-props; for InfoBatch, which saves
back-props, every pass), never every round, and only the training steps are timed.

A `Run` holds all the state there is (model, optimiser, schedule, ledger, random generators, partition,
queue, counters, history, and its method's own state), so a checkpoint taken at an equivalent epoch
resumes the run exactly. Chapters 1 and 4 teach this.
"""
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from .batches import make_partition
from .checkpoint import load_checkpoint, save_checkpoint
from .config import (RunConfig, available_cpus, omp_num_threads, resolve_device,
                     resolve_threads)
from .data import load_dataset, preprocess
from .device import autocast, layout, sync
from .ledger import Ledger
from .methods import REGISTRY
from .methods.base import Diverged
from .models import check_fits, create_model
from .version import __version__


EVAL_BYTES = 2**30  # the activations one evaluation chunk may hold at once (an estimate, see eval_chunk)
EVAL_FLOATS_PER_PIXEL = 64  # a generous estimate of what a model holds per input pixel in inference (small_cnn: ~44)


def eval_chunk(side):
    """Images per evaluation chunk for images of `side`²: 1024, fewer for large images, so that one chunk's
    activations stay within EVAL_BYTES (512² images: 16 per chunk, not 1024 needing ~16 GB). It depends on
    the image size only, never on free memory, so a resumed run evaluates exactly as an uninterrupted one."""
    return max(1, min(1024, EVAL_BYTES // (EVAL_FLOATS_PER_PIXEL * 4 * side * side)))


@torch.inference_mode()
def evaluate(model, x, y, data, cfg, batch_size=None):
    """Mean cross-entropy and top-1 (%) over (x, y) in eval mode, without gradient, in chunks of
    `batch_size` images (default: eval_chunk of the image size)."""
    if len(y) == 0:
        raise ValueError("evaluate needs at least one image")
    batch_size = batch_size or eval_chunk(cfg.image_size or max(x.shape[-2:]))
    model.eval()
    total_loss = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device)
    for start in range(0, len(y), batch_size):
        xb = preprocess(x[start:start + batch_size], data, cfg.image_size)
        with autocast(cfg, x.device):
            logits = model(layout(xb))
        total_loss += F.cross_entropy(logits.float(), y[start:start + batch_size], reduction="sum")
        correct += (logits.argmax(1) == y[start:start + batch_size]).sum()
    model.train()
    return (total_loss / len(y)).item(), (100 * correct / len(y)).item()


@dataclass
class Run:
    """Everything one run is made of and everything it has done so far."""
    cfg: RunConfig
    device: str
    data: object  # ImageData on the device
    partition: list  # N index tensors (the fixed partition)
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: object  # an lr scheduler, or None
    ledger: Ledger
    gen: torch.Generator  # partition, batch order, selection (on the host)
    aug_gen: torch.Generator  # augmentation (on the device)
    eval_idx: torch.Tensor  # the training images the train loss is measured on
    method: object = None  # how the budget is spent (methods/): set by start()
    step: int = 0  # back-props spent
    rounds: int = 0  # Algorithm 2's rounds after the warm-up
    queue: list = field(default_factory=list)  # batch indices still to train in this pass or round
    epoch_batches: list = None  # this pass's own batches, for a method that cuts them (else the partition)
    history: list = field(default_factory=list)  # one entry per equivalent epoch, from epoch 0
    train_s: float = 0.0  # seconds spent in training steps (wall clock)
    train_cpu_s: float = 0.0  # the same steps in this process's CPU time, which other processes do not inflate
    eval_s: float = 0.0  # seconds spent evaluating
    status: str = "complete"
    step_model: torch.nn.Module = None  # the model the steps call (compiled when cfg.compile)
    threads_used: list = field(default_factory=list)  # torch's CPU thread counts, in the order they ran
    t_start: float = field(default_factory=time.perf_counter)

    @property
    def N(self):
        return len(self.partition)

    @property
    def T(self):
        return self.N * self.cfg.epochs  # the budget

    @property
    def k(self):
        return self.method.k  # batches per round (N for a method without rounds)

    def refill_queue(self):
        """Queue the next pass or round, as the method says."""
        self.queue = self.method.refill(self)

    def samples(self, i):
        """The sample indices that back-prop on queue item i trains (the method's `samples`)."""
        return self.method.samples(self, i)

    def backprop(self, i):
        """One back-prop on queue item i; returns its loss (a 0-d tensor on the device, never synced)."""
        idx = self.samples(i)
        x = preprocess(self.data.x_train[idx], self.data, self.cfg.image_size, self.cfg.augment, self.aug_gen)
        with autocast(self.cfg, self.device):
            loss, losses = self.method.loss(self, self.step_model(layout(x)).float(), self.data.y_train[idx], idx)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.sched is not None:
            self.sched.step()
        self.method.after_step(self, i, idx, loss, losses)
        self.step += 1
        return loss.detach()

    def evaluate(self, backprop_loss=None):
        """Append the history entry of this equivalent epoch: train loss (eval mode, all N batches or the
        fixed sample), test loss and top-1, and the clocks."""
        t0 = time.perf_counter()
        d = self.data
        train_loss, train_acc = evaluate(self.model, d.x_train[self.eval_idx], d.y_train[self.eval_idx], d, self.cfg)
        test_loss, test_acc = evaluate(self.model, d.x_test, d.y_test, d, self.cfg)
        self.eval_s += time.perf_counter() - t0
        entry = {"epoch": self.method.epoch(self), "backprops": self.step, "train_loss": train_loss,
                 "train_acc": train_acc, "test_loss": test_loss, "test_acc": test_acc,
                 "backprop_loss": backprop_loss, "train_s": self.train_s, "train_cpu_s": self.train_cpu_s,
                 "eval_s": self.eval_s,
                 "wall_s": time.perf_counter() - self.t_start}
        self.history.append(entry)
        return entry

    def save(self, path):
        save_checkpoint(self, path)

    def load(self, path):
        load_checkpoint(self, path)

    def record(self):
        """The run record (see record.py)."""
        return {
            "config": {**self.cfg.to_dict(), "device": self.device, "threads": torch.get_num_threads()},
            "threads_used": self.threads_used or [torch.get_num_threads()],
            "status": self.status,
            "n_train": len(self.data.y_train), "n_test": len(self.data.y_test), "n_train_eval": len(self.eval_idx),
            "n_batches": self.N, "k": self.k, "rounds": self.rounds, "backprops": self.step,
            "batch_train_counts": self.ledger.train_count.tolist(),
            "final_ledger_loss": self.ledger.loss.tolist(),
            "history": self.history,
            "time_per_backprop_s": self.train_s / max(1, self.step),
            "cpu_per_backprop_s": self.train_cpu_s / max(1, self.step),
            **self.method.counters(self),
            "version": __version__,
            "torch": torch.__version__,
        }


def start(cfg, data=None, model=None):
    """A Run at back-prop 0: data on the device, the partition, the model, optimiser and ledger."""
    from .data import ImageData

    for name, value, kind in (("cfg", cfg, RunConfig), ("data", data, ImageData), ("model", model, torch.nn.Module)):
        if value is not None and not isinstance(value, kind):
            raise ValueError(f"{name} must be a {kind.__name__}{' or None' if name != 'cfg' else ''}, "
                             f"got {type(value).__name__}")
    device = resolve_device(cfg.device)
    if device == "cpu":
        torch.set_num_threads(resolve_threads(cfg.threads, cfg.model))
    torch.manual_seed(cfg.seed)  # model init and anything else that draws from the global RNG
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
    data = data if data is not None else load_dataset(cfg.dataset)
    data = data.subset(cfg.subset) if cfg.subset else data
    if cfg.batch_size > len(data.y_train):
        raise ValueError(f"batch_size must be at most the {len(data.y_train)} training samples, got {cfg.batch_size}")
    data = data.test_sample(cfg.test_subset).to(device) if cfg.test_subset else data.to(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    aug_gen = gen if device == "cpu" else torch.Generator(device=device).manual_seed(cfg.seed)
    partition = [idx.to(device) for idx in make_partition(len(data.y_train), cfg.batch_size, gen, cfg.drop_last)]
    N = len(partition)
    side = cfg.image_size or data.x_train.shape[-1]
    model = model if model is not None else create_model(cfg.model, data.num_classes, data.in_chans, side)
    model = model.to(device, memory_format=torch.channels_last)  # 4-d weights as (out, kh, kw, in), like the inputs
    check_fits(model, cfg.model, data, cfg.image_size)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = None
    if cfg.lr_schedule == "cosine":  # keyed to back-props, so every method sees the same schedule
        T = N * cfg.epochs
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, T) / T)))
    eval_idx = data.fixed_sample(len(data.y_train), cfg.train_eval_subset).to(device)
    run = Run(cfg, device, data, partition, model, opt, sched, Ledger(N, device), gen, aug_gen, eval_idx,
              step_model=torch.compile(model) if cfg.compile else model, threads_used=[torch.get_num_threads()])
    run.method = REGISTRY[cfg.method](run)
    return run


def keep_threads(run):
    """After a resume: keep the thread count the run had (the checkpoint's last), unless cfg.threads names
    one (or $OMP_NUM_THREADS); a run's sums, and so its last bits, depend on the thread count. `threads_used` then lists every
    count the run ran with, in order. A count above the CPUs this process may use now is lowered to them."""
    if run.device != "cpu":
        return
    saved = run.threads_used  # restored from the checkpoint (old checkpoints: the count of this process)
    if not run.cfg.threads and omp_num_threads() is None and saved and saved[-1] != torch.get_num_threads():
        cpus = available_cpus()
        if saved[-1] > cpus:
            warnings.warn(f"the checkpoint ran with {saved[-1]} threads, more than the {cpus} CPUs this process "
                          f"may use; it continues with {cpus} (its record lists both)", stacklevel=2)
        torch.set_num_threads(min(saved[-1], cpus))
    now = torch.get_num_threads()
    run.threads_used = list(saved) + ([now] if not saved or saved[-1] != now else [])


def train(cfg=None, data=None, model=None, *, checkpoint=None, resume=False, progress=False,
          on_step=None, on_epoch=None):
    """Run one configuration and return its run record (a dict; see record.py).

    cfg: a RunConfig (defaults: Algorithm 2 on digits). data: an ImageData, else cfg.dataset
    is loaded. model: a module, else cfg.model is created. checkpoint: a file written at every
    equivalent epoch; with resume=True an existing one is continued. on_step(step, batch, loss)
    and on_epoch(entry) are optional hooks for notebooks (loss is a 0-d tensor on the device).
    """
    cfg = cfg or RunConfig()
    run = start(cfg, data, model)
    if resume and checkpoint is not None and Path(checkpoint).exists():
        run.load(checkpoint)
        keep_threads(run)
    else:
        run.evaluate()

    bar = None
    if progress:
        from tqdm.auto import tqdm
        from .arms import label
        name = label(cfg)
        bar = tqdm(total=run.T, initial=run.step, desc=name, unit="bp", leave=False)
    bp_loss_sum = torch.zeros((), device=run.device)  # running sum of back-propagated losses (on device)
    epoch_start = run.step  # the back-prop count at the start of this epoch
    sync(run.device)
    t_seg, cpu_seg = time.perf_counter(), time.process_time()
    try:
        while not run.method.finished(run):
            if not run.queue:
                run.refill_queue()
            i = run.queue.pop(0)
            loss = run.backprop(i)
            bp_loss_sum += loss
            if on_step is not None:
                on_step(run.step, i, loss)
            if bar is not None:
                bar.update(1)
            if run.method.epoch_ended(run):  # stop the clock, evaluate, checkpoint
                sync(run.device)
                run.train_s += time.perf_counter() - t_seg
                run.train_cpu_s += time.process_time() - cpu_seg
                entry = run.evaluate((bp_loss_sum / (run.step - epoch_start)).item())
                bp_loss_sum.zero_()
                epoch_start = run.step
                if not all(math.isfinite(entry[key]) for key in ("train_loss", "backprop_loss")):
                    raise Diverged(f"the loss became {entry['backprop_loss']} by back-prop {run.step}")
                if on_epoch is not None:
                    on_epoch(entry)
                if bar is not None:
                    bar.set_postfix(test_acc=f"{entry['test_acc']:.1f}%")
                if checkpoint is not None:
                    run.save(checkpoint)
                t_seg, cpu_seg = time.perf_counter(), time.process_time()
    except Diverged:
        run.status = "diverged"
    finally:
        if bar is not None:
            bar.close()
    return run.record()
