"""InfoBatch (Qin et al., ICLR 2024): prune well-learned samples at random each pass, and rescale the rest.

Each pass, every sample whose latest loss is below the mean of the latest losses is "well learned"; a
fraction r (`prune`) of them, drawn at random, sits the pass out, and the losses of the well-learned
samples that stay are multiplied by 1/(1 − r), so the expected gradient is the full data set's. Samples
never scored yet count as not well learned (kept). The last fraction of the passes (`anneal`) trains on all
data, unweighted. The kept samples are shuffled into batches of B: a pass takes fewer than N back-props, so
InfoBatch *saves* back-props, and is judged on its own claim (test top-1 after E passes, at fewer back-props).
Its record states what it saved (`samples_pruned`, `backprops_saved`). docs/method.md says where we differ
from the authors' code.

`prune_by="random"` is the control the paper compares with (dynamic random pruning at the same ratio): each
pass prunes exactly as many samples as the loss rule would prune given the same latest losses, drawn uniformly
from all samples, and rescales nothing. It asks whether the *choice* of samples matters, or only their number.
"""
import torch

from .base import PerSample, check, get, pass_batches, scored_samples


PRUNE_BY = ("loss", "random")  # InfoBatch's rule, and its control (config.RunConfig.prune_by)


class InfoBatch(PerSample):
    name = "infobatch"
    knobs = {"prune": 0.5, "anneal": 0.125, "prune_by": "loss"}
    order = 3
    saves_backprops = True

    def __init__(self, run):
        super().__init__(run)
        self.weight = torch.ones(len(run.data.y_train), device=run.device)  # (n,) 1/(1-r) for kept well-learned
        self.passes = 0  # passes queued so far
        self.pruned = 0  # samples pruned, over all passes

    def prunes(self, run, e):
        """True if pass e (from 0) prunes: InfoBatch's rule, e ≤ E·(1 − anneal)."""
        return run.cfg.prune > 0 and e <= run.cfg.epochs * (1 - run.cfg.anneal)

    def refill(self, run):
        pool = scored_samples(run)  # (n,)
        keep = torch.arange(len(pool))  # positions in pool
        self.weight.fill_(1.0)
        if self.prunes(run, self.passes):
            loss = self.sample_loss[pool].cpu()  # (n,) one host sync per pass
            scored = ~torch.isnan(loss)
            low = torch.zeros_like(scored)
            if scored.any():
                low = scored & (loss < loss[scored].mean())
            low_pos = low.nonzero().squeeze(1)
            n_keep = int((1 - run.cfg.prune) * len(low_pos))  # as InfoBatch: exactly this many stay
            if run.cfg.prune_by == "random":  # the control: as many pruned, drawn from all samples, no rescaling
                n_pruned = len(low_pos) - n_keep
                keep = torch.randperm(len(pool), generator=run.gen)[n_pruned:].sort().values
            else:
                kept_low = low_pos[torch.randperm(len(low_pos), generator=run.gen)[:n_keep]]
                keep = torch.cat([(~low).nonzero().squeeze(1), kept_low])
                self.weight[pool[kept_low.to(pool.device)]] = 1 / (1 - run.cfg.prune)
        order = keep[torch.randperm(len(keep), generator=run.gen)]
        run.epoch_batches = pass_batches(pool[order.to(pool.device)], run.cfg.batch_size)
        self.pruned += len(pool) - len(keep)
        self.passes += 1
        return list(range(len(run.epoch_batches)))

    def loss_weights(self, run, idx):
        return self.weight[idx]

    def epoch_ended(self, run):
        return not run.queue  # a pass ends with its last back-prop

    def finished(self, run):
        return self.passes >= run.cfg.epochs and not run.queue

    def epoch(self, run):
        return self.passes

    def counters(self, run):
        return {**super().counters(run), "samples_pruned": self.pruned, "backprops_saved": run.T - run.step}

    @classmethod
    def check_record(cls, record, N, E):
        """E passes, and what was trained plus what was saved is the full budget, in samples and back-props."""
        pool = N * record["config"]["batch_size"] if record["config"].get("drop_last") else record["n_train"]
        if len(record["history"]) != E + 1:
            raise ValueError("a complete infobatch record has one history entry per pass, plus epoch 0")
        if record.get("backprops_saved") != N * E - record["backprops"]:
            raise ValueError("a complete infobatch record must state backprops_saved = N*E - backprops")
        if record.get("backprop_samples", 0) + record.get("samples_pruned", -1) != pool * E:
            raise ValueError("a complete infobatch record's backprop_samples + samples_pruned must be n*E")

    def state_dict(self):
        return {**super().state_dict(), "weight": self.weight.cpu(), "passes": self.passes, "pruned": self.pruned}

    def load_state_dict(self, state, run):
        super().load_state_dict(state, run)
        check({"weight", "passes", "pruned"} <= set(state), "its infobatch state")
        w = state["weight"]
        check(isinstance(w, torch.Tensor) and w.shape == self.weight.shape and w.dtype == self.weight.dtype
              and bool((w >= 1).all()) and bool(torch.isfinite(w).all()), "its loss weights")
        for name in ("passes", "pruned"):
            check(isinstance(state[name], int) and not isinstance(state[name], bool) and state[name] >= 0,
                  f"its count {name}")
        check(state["passes"] <= run.cfg.epochs, "its pass count")
        self.weight.copy_(w)
        self.passes, self.pruned = state["passes"], state["pruned"]

    @classmethod
    def label(cls, c):
        anneal, name = get(c, "anneal"), "random pruning" if random_pruning(c) else "infobatch"
        return f"{name} r={get(c, 'prune'):g}" + (f" anneal={anneal:g}" if anneal != cls.knobs["anneal"] else "")

    @classmethod
    def tag(cls, c):
        return f"r{c['prune']:g}-a{c['anneal']:g}" + ("-random" if random_pruning(c) else "")

    @classmethod
    def sort_key(cls, c):
        return (False, "", random_pruning(c), get(c, "prune"), get(c, "anneal"))

    @classmethod
    def color(cls, c):
        if random_pruning(c):  # greys: a control, like Algorithm 2's random
            return ("Greys", 0.35 + 0.3 * float(get(c, "prune") or 0.5))
        return ("YlGnBu", 0.45 + 0.5 * float(get(c, "prune") or 0.5))

    @classmethod
    def color_key(cls, c):
        return (random_pruning(c),)


def random_pruning(c):
    """True for the random-pruning control (a record that predates `prune_by` pruned by loss)."""
    return get(c, "prune_by") == "random"
