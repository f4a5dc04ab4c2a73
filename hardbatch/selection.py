"""Selection strategies: which k batches a round of Algorithm 2 trains.

Each is a pure function of the ledger's losses (a (N,) tensor) and k, returning a (k,) tensor
of batch indices in the order they will be trained. `hardest` is the paper's rule; `random`
and `easiest` are the control arms that tell whether *hardness* helps or only a different
order does. Ties always go to the lower batch index (a stable sort). Chapter 3 teaches this.
"""
import torch


def hardest(losses, k, generator=None):
    """The k highest losses, highest first."""
    return torch.sort(losses, descending=True, stable=True).indices[:k]


def easiest(losses, k, generator=None):
    """The k lowest losses, lowest first."""
    return torch.sort(losses, descending=False, stable=True).indices[:k]


def random(losses, k, generator=None):
    """k distinct batches drawn uniformly, whatever their loss."""
    return torch.randperm(len(losses), generator=generator)[:k].to(losses.device)


def all_batches(losses, k=None, generator=None):
    """Every batch, highest loss first (δ = 1 in loss order: not Algorithm 1)."""
    return hardest(losses, len(losses))


STRATEGIES = {"hardest": hardest, "random": random, "easiest": easiest, "all": all_batches}


def select(strategy, losses, k, generator=None):
    """Apply the named strategy; see STRATEGIES for the names allowed."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown selection strategy {strategy!r}; allowed: {', '.join(STRATEGIES)}")
    return STRATEGIES[strategy](losses, k, generator)
