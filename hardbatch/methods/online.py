"""Online batch selection (Loshchilov & Hutter 2015): samples ranked by their latest loss, drawn with a
probability that decays exponentially in rank; the per-sample ancestor of hard mini-batches.

The first equivalent epoch is Algorithm 2's warm-up (the same shuffled pass over the partition), which
scores every sample. Then, every N back-props, the samples are ranked by their latest loss, highest
first, and the rank-r sample (from 0) gets probability ∝ s^(−r/(n−1)), so the first is s (`pressure`)
times as likely as the last; each back-prop trains B distinct samples drawn by these probabilities.
A trained sample's loss is refreshed by its back-prop; every `recompute` equivalent epochs every sample
is scored forward-only (eval mode). Exactly N·E back-props, like every method that does not save.
"""
import math
import time

import torch

from ..device import sync
from .base import Diverged, PerSample, get, score, scored_samples


class Online(PerSample):
    name = "online"
    knobs = {"pressure": 100.0, "recompute": 2}
    order = 4

    def refill(self, run):
        e = run.step // run.N
        if e == 0:  # the warm-up: every batch of the partition once, shuffled
            return super().refill(run)
        pool = scored_samples(run)  # (n,)
        if run.cfg.recompute and e % run.cfg.recompute == 0:
            self.rescore(run, pool)
        loss = self.sample_loss[pool].cpu()  # (n,) one host sync per pass
        if not torch.isfinite(loss).all():
            raise Diverged(f"a sample loss became non-finite before back-prop {run.step}")
        rank = torch.empty(len(pool), dtype=torch.long)
        rank[torch.sort(loss, descending=True, stable=True).indices] = torch.arange(len(pool))
        probs = run.cfg.pressure ** (-rank.double() / max(1, len(pool) - 1))  # (n,) in [1/s, 1]
        draws = [torch.multinomial(probs, run.cfg.batch_size, replacement=False, generator=run.gen)
                 for _ in range(run.N)]
        run.epoch_batches = [pool[d.to(pool.device)] for d in draws]
        return list(range(run.N))

    def rescore(self, run, pool):
        """Every sample's loss, forward-only, in eval mode, in chunks of B (no sync but the clock's)."""
        t0 = time.perf_counter()
        run.model.eval()
        for chunk in torch.split(pool, run.cfg.batch_size):
            self.sample_loss[chunk] = score(run, chunk)
        run.model.train()
        sync(run.device)
        self.forward_samples += len(pool)
        self.forward_s += time.perf_counter() - t0

    samples_rule = "n + (E-1)*N*B"

    @classmethod
    def expected_samples(cls, record, N, E):
        """The warm-up's n samples, then B per back-prop."""
        pool = N * record["config"]["batch_size"] if record["config"].get("drop_last") else record["n_train"]
        return pool + (E - 1) * N * record["config"]["batch_size"]

    @classmethod
    def label(cls, c):
        every = get(c, "recompute")
        return f"online s={get(c, 'pressure'):g}" + (f" recompute={every}" if every != cls.knobs["recompute"] else "")

    @classmethod
    def tag(cls, c):
        return f"s{c['pressure']:g}-r{c['recompute']}"

    @classmethod
    def sort_key(cls, c):
        return (False, "", get(c, "pressure"), get(c, "recompute"))

    @classmethod
    def color(cls, c):
        return ("copper", 0.2 + 0.15 * min(4.0, math.log10(float(get(c, "pressure") or 100.0))))
