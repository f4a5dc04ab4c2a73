"""Selection rules: which k batches a round of Algorithm 2 trains.

A rule is a function `rule(ledger, k, generator)` of the loss ledger (its losses, staleness and
train counts: see ledger.py) that returns a (k,) tensor of batch indices in the order they will
be trained. `hardest` is the paper's rule; `random` and `easiest` are the control arms that tell
whether *hardness* helps or only a different order does. Ties always go to the lower batch
index (a stable sort). A new rule is one function here and one name in STRATEGIES.
Chapter 3 teaches this.
"""
import torch

from .ledger import Ledger


def hardest(ledger, k, generator=None):
    """The k highest losses, highest first."""
    return torch.sort(ledger.loss, descending=True, stable=True).indices[:k]


def easiest(ledger, k, generator=None):
    """The k lowest losses, lowest first."""
    return torch.sort(ledger.loss, descending=False, stable=True).indices[:k]


def random(ledger, k, generator=None):
    """k distinct batches drawn uniformly, whatever their loss."""
    return torch.randperm(len(ledger), generator=generator)[:k].to(ledger.loss.device)


STRATEGIES = {"hardest": hardest, "random": random, "easiest": easiest}


def select(strategy, ledger, k, generator=None):
    """Apply the named rule to a Ledger (or to a plain (N,) tensor of losses); see STRATEGIES."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown selection strategy {strategy!r}; allowed: {', '.join(STRATEGIES)}")
    if isinstance(ledger, torch.Tensor):
        ledger = Ledger.of(ledger)
    return STRATEGIES[strategy](ledger, k, generator)
