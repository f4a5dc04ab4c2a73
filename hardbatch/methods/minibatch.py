"""Algorithm 1, mini-batch SGD: E passes over all N batches, in a new order each pass.

`order="fixed"`: the fixed partition, its batch order reshuffled each pass (the baseline every table
pairs with). `order="shuffled"`: the textbook DataLoader, samples reshuffled into new batches each pass.
Chapter 1 teaches this.
"""
import torch

from ..batches import make_partition
from .base import Method, get


class Minibatch(Method):
    name = "minibatch"
    knobs = {"order": "fixed"}
    order = 0

    def refill(self, run):
        if run.cfg.order == "shuffled":  # new batches from reshuffled samples
            run.epoch_batches = [i.to(run.device) for i in
                                 make_partition(len(run.data.y_train), run.cfg.batch_size, run.gen, run.cfg.drop_last)]
            return list(range(run.N))
        return torch.randperm(run.N, generator=run.gen).tolist()

    @classmethod
    def label(cls, c):
        return f"Algorithm 1 ({get(c, 'order') or 'fixed'})"

    @classmethod
    def tag(cls, c):
        return c["order"]

    @classmethod
    def sort_key(cls, c):
        return (get(c, "order") != "fixed", "", 0.0)

    @classmethod
    def color(cls, c):
        return "black" if get(c, "order", "fixed") == "fixed" else "tab:gray"

    @classmethod
    def color_key(cls, c):
        return (get(c, "order") or "fixed",)

    @classmethod
    def paired_delta(cls, c, smallest):
        return None
