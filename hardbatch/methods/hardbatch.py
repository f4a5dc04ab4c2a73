"""Algorithm 2, hard mini-batches (the paper's): a warm-up pass over all N batches fills the ledger, then
rounds train the k = max(1, round(δN)) batches a selection rule picks from it, until exactly T = N·E
back-props are spent (the last round takes only what is left). Chapters 2-4 teach this.
"""
import torch

from ..budget import k_for
from ..selection import select
from .base import Diverged, Method, get


class Hardbatch(Method):
    name = "hardbatch"
    knobs = {"select": "hardest", "delta": 0.2}
    rule_knobs = ("alpha",)  # proportional's (config.ONLY_FOR_SELECT)
    order = 1

    def __init__(self, run):
        self.k = k_for(run.cfg.delta, run.N)

    def refill(self, run):
        """The warm-up pass (shuffled order), then one round: the k batches the rule picks."""
        if run.step < run.N:
            return super().refill(run)
        if not torch.isfinite(run.ledger.loss).all():  # one host sync per round, never per step
            raise Diverged(f"a batch loss became non-finite before back-prop {run.step}")
        run.rounds += 1  # a rule's knob (alpha) is set only when the config's rule reads it (config.ONLY_FOR_SELECT)
        strength = {name: getattr(run.cfg, name) for name in self.rule_knobs if getattr(run.cfg, name) is not None}
        return select(run.cfg.select, run.ledger, min(self.k, run.T - run.step), run.gen, **strength).tolist()

    @classmethod
    def label(cls, c):
        if get(c, "select") == "proportional":
            return f"proportional α={get(c, 'alpha'):g} δ={get(c, 'delta'):g}"
        return f"{get(c, 'select')} δ={get(c, 'delta'):g}"

    @classmethod
    def tag(cls, c):
        return f"{c['select']}{'-a%g' % c['alpha'] if 'alpha' in c else ''}-d{c['delta']:g}"

    @classmethod
    def sort_key(cls, c):
        return (get(c, "select") != "hardest", get(c, "select"), -get(c, "delta"))

    @classmethod
    def color(cls, c):
        """hardest in oranges, random in blues, easiest in greens, proportional in purples, darker for smaller δ."""
        cmap = {"hardest": "Oranges", "random": "Blues", "easiest": "Greens"}.get(get(c, "select"), "Purples")
        return (cmap, 0.95 - 0.55 * float(get(c, "delta") or 0.5))

    @classmethod
    def color_key(cls, c):
        return (get(c, "select"), round(float(get(c, "delta") or 0.5), 6))

    @classmethod
    def paired_delta(cls, c, smallest):
        return get(c, "delta")
