"""Selective-Backprop (Jiang et al. 2019), per sample (chapter 6): batches of the partition are scored
forward-only, in shuffled passes, and each sample is kept with probability CDF(loss)^β over the `window`
latest losses; every B kept samples make one back-prop, until the same T = N·E back-props (of B samples
each) are spent. The keep rule is selection.keep_samples; this file says when it runs.

Its host syncs are one per *scored batch* (the kept count decides when a back-prop can start), so it is
the one method whose syncs grow with the steps (`syncs_per_step`).
"""
import time

import torch

from ..device import sync
from ..selection import keep_samples
from .base import Diverged, Method, check, get, index_tensor, score

STATE = ("candidates", "forward_samples", "forward_s", "kept", "recent")  # what a checkpoint saves


class Selective(Method):
    name = "selective"
    knobs = {"beta": 1.0, "window": 1024}
    order = 2
    syncs_per_step = True

    def __init__(self, run):
        super().__init__(run)
        self.candidates = []  # batches still to score in this pass
        self.kept = torch.zeros(0, dtype=torch.long, device=run.device)  # (≤ 2B-1,) kept, not yet back-propagated
        self.recent = torch.zeros(0, dtype=torch.double)  # (≤ window,) the latest sample losses, oldest first (host)
        self.forward_samples = 0  # samples scored forward-only
        self.forward_s = 0.0  # seconds spent scoring (also inside train_s: scoring is part of training)

    def refill(self, run):
        """One back-prop at a time, once B samples are kept."""
        return [self.score_until_full(run)]

    @torch.no_grad()
    def score_until_full(self, run):
        """Score batches of the partition forward-only (shuffled passes), keep each sample with probability
        CDF(loss)^β over the `window` latest losses, until B samples are kept. Returns the last batch scored
        (the ledger counts the back-prop there)."""
        cfg = run.cfg
        t0 = time.perf_counter()
        while len(self.kept) < cfg.batch_size:
            if not self.candidates:
                self.candidates = torch.randperm(run.N, generator=run.gen).tolist()
            i = self.candidates.pop(0)
            idx = run.partition[i]
            losses = score(run, idx).double().cpu()  # (b,) scored without augmentation; one host sync per batch
            if not torch.isfinite(losses).all():
                raise Diverged(f"a sample loss became non-finite before back-prop {run.step}")
            self.recent = torch.cat([self.recent, losses])[-cfg.window:]
            keep = keep_samples(losses, self.recent, cfg.beta, run.gen)
            self.kept = torch.cat([self.kept, idx[keep.to(idx.device)]])
            run.ledger.loss[i] = losses.mean()  # the ledger holds each batch's latest scored loss
            self.forward_samples += len(idx)
        sync(run.device)
        self.forward_s += time.perf_counter() - t0
        return i

    def samples(self, run, i):
        """The first B kept samples, whichever batches they came from."""
        idx, self.kept = self.kept[:run.cfg.batch_size], self.kept[run.cfg.batch_size:]
        return idx

    def after_step(self, run, i, idx, loss, losses):
        """Count the back-prop at the batch that filled the buffer (its ledger loss is the scored one)."""
        run.ledger.train_count[i] += 1
        run.ledger.last_scored[i] = run.step

    def backprop_samples(self, run):
        return run.step * run.cfg.batch_size

    def counters(self, run):
        return {**super().counters(run), "forward_samples": self.forward_samples, "forward_s": self.forward_s}

    samples_rule = "N*E*B"

    @classmethod
    def expected_samples(cls, record, N, E):
        return N * E * record["config"]["batch_size"]  # B per back-prop

    def state_dict(self):
        return {"candidates": list(self.candidates), "forward_samples": self.forward_samples,
                "forward_s": self.forward_s, "kept": self.kept.cpu(), "recent": self.recent}

    def load_state_dict(self, state, run):
        check(isinstance(state, dict) and all(name in state for name in STATE), "its selective state")
        check(index_tensor(state["kept"], len(run.data.y_train)) and len(state["kept"]) < run.cfg.batch_size,
              "its kept samples")
        recent = state["recent"]
        check(isinstance(recent, torch.Tensor) and recent.ndim == 1 and recent.dtype == torch.double
              and len(recent) <= run.cfg.window and bool(torch.isfinite(recent).all()) and bool((recent >= 0).all()),
              "its window of recent losses")
        check(isinstance(state["candidates"], list) and len(state["candidates"]) <= run.N
              and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < run.N for i in state["candidates"]),
              "its batches left to score")
        check(isinstance(state["forward_samples"], int) and state["forward_samples"] >= 0
              and isinstance(state["forward_s"], (int, float)) and 0 <= state["forward_s"] < float("inf"),
              "its forward counters")
        self.candidates, self.recent = list(state["candidates"]), recent
        self.forward_samples, self.forward_s = state["forward_samples"], float(state["forward_s"])
        self.kept = state["kept"].to(run.device)

    @classmethod
    def label(cls, c):
        return f"selective β={get(c, 'beta'):g}"

    @classmethod
    def tag(cls, c):
        return f"b{c['beta']:g}"

    @classmethod
    def sort_key(cls, c):
        return (False, "", get(c, "beta"))

    @classmethod
    def color(cls, c):
        """Magentas (red-purples), darker for larger β: a red next to hardest's dark orange could not be told apart."""
        return ("RdPu", 0.5 + 0.1 * min(3.0, float(get(c, "beta") or 1.0)))

    @classmethod
    def color_key(cls, c):
        return (float(get(c, "beta") or 1.0),)
