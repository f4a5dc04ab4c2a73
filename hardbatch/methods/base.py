"""What a method is: one way of spending the budget, behind the hooks where methods differ.

The training loop (train.py) never names a method. It asks the run's method for the next pass or
round when its queue runs empty (`refill`), for the samples one back-prop trains (`samples`), for the
loss to back-propagate (`loss`: how per-sample losses reduce), and tells it what happened after each
step (`after_step`). Whether an equivalent epoch has ended and whether the run is over are the
method's too (`epoch_ended`, `finished`): every method here spends exactly T = N·E back-props and is
evaluated every N, except one that *saves* back-props (InfoBatch), which is evaluated after each pass.

A method also says what it remembers across a checkpoint (`state_dict` / `load_state_dict`), what its
record counts and which invariant a complete record keeps (`counters`, `check_record`), and its words:
the label of an arm in tables, the tag in a record's name, its place in tables and its colour.

A method is a small object whose state is saved with the run (never a generator, whose place in a
loop cannot be saved), so a run killed anywhere resumes exactly. methods/__init__.py keeps the
registry; config.py derives its choices, knobs and defaults from it.
"""
import torch
import torch.nn.functional as F

from ..data import preprocess
from ..device import autocast, layout


class Diverged(RuntimeError):
    """The loss became NaN or infinite."""


def get(config, name, default=None):
    """A knob of a RunConfig or of a record's config dict (missing: `default`)."""
    return getattr(config, name, default) if hasattr(config, "to_dict") else dict(config).get(name, default)


class Method:
    """The base: Algorithm 1's behaviour on the fixed partition, where a hook has one obvious default."""
    name = None  # the config's `method`
    knobs = {}  # the RunConfig fields only this method reads, and their defaults
    rule_knobs = ()  # knobs only this method reads through one of its rules, which gives their defaults
    order = 9  # its place in tables: baseline first (0), then by this number
    saves_backprops = False  # True: it spends fewer than N·E back-props and its record says how many it saved

    def __init__(self, run):
        self.k = run.N  # batches per round (Algorithm 2's k; N for a method without rounds)

    # ---------------------------------------------------------------- the loop's hooks
    def refill(self, run):
        """The queue of the next pass or round: a list of batch indices (queue items)."""
        return torch.randperm(run.N, generator=run.gen).tolist()

    def samples(self, run, i):
        """(b,) the sample indices the back-prop on queue item i trains."""
        return run.epoch_batches[i] if run.epoch_batches is not None else run.partition[i]

    def loss(self, run, logits, y, idx):
        """(loss to back-propagate, (b,) per-sample losses or None). The plain mean by default: one cross-entropy
        call, so Algorithm 1 and 2 are bit for bit what they were."""
        return F.cross_entropy(logits, y), None

    def after_step(self, run, i, idx, loss, losses):
        """What the method remembers after back-prop `run.step` on queue item i (before the count moves on)."""
        run.ledger.write(i, loss, run.step)

    def epoch_ended(self, run):
        """True right after the back-prop that ends an equivalent epoch: evaluate and checkpoint now."""
        return run.step % run.N == 0

    def finished(self, run):
        return run.step >= run.T

    def epoch(self, run):
        """The number of the epoch just ended (history's "epoch")."""
        return run.step // run.N

    # ---------------------------------------------------------------- what it records and remembers
    def backprop_samples(self, run):
        """Samples back-propagated so far: each batch's size times its train count."""
        return sum(len(b) * int(c) for b, c in zip(run.partition, run.ledger.train_count.tolist()))

    def counters(self, run):
        """The record's counts of this method's work (record.py lists them)."""
        return {"backprop_samples": self.backprop_samples(run), "forward_samples": 0, "forward_s": 0.0}

    @classmethod
    def check_record(cls, record, N, E):
        """ValueError unless a complete record keeps this method's budget: exactly N·E back-props, of
        `expected_samples` samples in all."""
        if record["backprops"] != N * E:
            raise ValueError("a complete record must have spent exactly N*E back-props")
        expected = cls.expected_samples(record, N, E)  # None: not computable (record.py names the bad counts)
        if expected is not None and record.get("backprop_samples") not in (None, expected):
            raise ValueError(f"a complete {cls.name} record must have back-propagated exactly {cls.samples_rule} "
                             f"samples ({expected})")

    samples_rule = "the batches' sizes times their train counts"  # expected_samples, in words

    @classmethod
    def expected_samples(cls, record, N, E):
        """The samples a complete run back-propagates: each batch of the partition's sizes times its train count."""
        B, n = record["config"]["batch_size"], record["n_train"]
        sizes = [B] * (N - 1) + [B if record["config"].get("drop_last") else n - (N - 1) * B]
        counts = record["batch_train_counts"]
        if len(counts) != N or not all(isinstance(c, int) and not isinstance(c, bool) for c in counts):
            return None
        return sum(s * c for s, c in zip(sizes, counts))

    def state_dict(self):
        """What the method remembers between steps, beyond the Run's own state ({}: nothing)."""
        return {}

    def load_state_dict(self, state, run):
        """Restore what state_dict saved; ValueError naming what does not fit this run."""

    # ---------------------------------------------------------------- its words
    @classmethod
    def label(cls, c):
        """An arm's name in tables and legends (c: a RunConfig or a config dict)."""
        return cls.name

    @classmethod
    def tag(cls, c):
        """What a record's name says about the arm after the method (c: a run's settings)."""
        return "x"

    @classmethod
    def sort_key(cls, c):
        """Its order among the arms of its method in tables."""
        return ()

    @classmethod
    def color(cls, c):
        """Its colour in figures: a matplotlib colour name, or (colormap name, position in [0, 1]); plots.ARM_COLORS
        overrides it for the arms the course draws, keyed by (name, *color_key(c))."""
        return ("Greys", 0.6)

    @classmethod
    def color_key(cls, c):
        return ()

    @classmethod
    def paired_delta(cls, c, smallest):
        """The δ of the hardest and random arms this arm is paired with in reports (None: none). Per-sample
        methods, which have no δ, take the block's smallest δ (`smallest`)."""
        return smallest


def check(ok, what):
    """ValueError(what) unless ok: load_state_dict's checks, which checkpoint.py reports as a bad checkpoint."""
    if not ok:
        raise ValueError(what)


def index_tensor(t, n, most=None):
    """True if t is a 1-d long tensor of indices in [0, n), at most `most` long."""
    return (isinstance(t, torch.Tensor) and t.ndim == 1 and t.dtype == torch.long
            and (most is None or len(t) <= most) and (t.numel() == 0 or (int(t.min()) >= 0 and int(t.max()) < n)))


def pass_batches(order, B):
    """A pass's own batches: the sample indices `order` (n,) cut into batches of B (the last may be smaller)."""
    return list(torch.split(order, B))


def scored_samples(run):
    """(n,) every sample the partition holds (drop_last leaves some out), in partition order."""
    return torch.cat(run.partition)


@torch.no_grad()
def score(run, idx):
    """(b,) the per-sample losses of samples `idx` forward-only, without augmentation, on the device (no sync)."""
    x = preprocess(run.data.x_train[idx], run.data, run.cfg.image_size)
    with autocast(run.cfg, run.device):
        return F.cross_entropy(run.step_model(layout(x)).float(), run.data.y_train[idx], reduction="none")


class PerSample(Method):
    """A method that keeps every sample's latest loss (InfoBatch, online batch selection): its back-props
    train batches it cuts itself (`run.epoch_batches`), each back-prop writes its samples' losses, and a
    pass's `refill` reads them (one host sync per pass, never per step). The ledger's slot j counts the
    pass's j-th back-prop."""

    def __init__(self, run):
        super().__init__(run)
        self.sample_loss = torch.full((len(run.data.y_train),), float("nan"), device=run.device)  # (n,) NaN: never scored
        self.trained = 0  # samples back-propagated
        self.forward_samples = 0  # samples scored forward-only
        self.forward_s = 0.0  # seconds spent scoring (also inside train_s)

    def loss_weights(self, run, idx):
        """(b,) the weight of each sample's loss in the mean (None: all 1)."""
        return None

    def loss(self, run, logits, y, idx):
        losses = F.cross_entropy(logits, y, reduction="none")  # (b,)
        w = self.loss_weights(run, idx)
        return (losses.mean() if w is None else (losses * w).mean()), losses

    def after_step(self, run, i, idx, loss, losses):
        self.sample_loss[idx] = losses.detach()
        self.trained += len(idx)
        run.ledger.write(i, loss, run.step)

    def backprop_samples(self, run):
        return self.trained

    def counters(self, run):
        return {"backprop_samples": self.trained, "forward_samples": self.forward_samples, "forward_s": self.forward_s}

    def state_dict(self):
        return {"loss": self.sample_loss.cpu(), "trained": self.trained, "forward_samples": self.forward_samples,
                "forward_s": self.forward_s}

    def load_state_dict(self, state, run):
        check(isinstance(state, dict) and {"loss", "trained", "forward_samples", "forward_s"} <= set(state),
              f"its {self.name} state")
        loss = state["loss"]
        check(isinstance(loss, torch.Tensor) and loss.shape == self.sample_loss.shape and loss.dtype == self.sample_loss.dtype
              and not bool((loss < 0).any()), "its sample losses")
        for name in ("trained", "forward_samples"):
            check(isinstance(state[name], int) and not isinstance(state[name], bool) and state[name] >= 0,
                  f"its count {name}")
        check(isinstance(state["forward_s"], (int, float)) and 0 <= state["forward_s"] < float("inf"), "its clock")
        self.sample_loss.copy_(loss)
        self.trained, self.forward_samples, self.forward_s = state["trained"], state["forward_samples"], state["forward_s"]
