"""Selection rules: which k batches a round of Algorithm 2 trains.

A rule is a function `rule(ledger, k, generator)` of the loss ledger (its losses, staleness and
train counts: see ledger.py) that returns a (k,) tensor of batch indices in the order they will
be trained. `hardest` is the paper's rule; `random` and `easiest` are the control arms that tell
whether *hardness* helps or only a different order does. Ties always go to the lower batch
index (a stable sort). A new rule is one function here and one name in STRATEGIES, or, from a
notebook, `register(name, rule)` at run time (RunConfig checks `select` against STRATEGIES as it is now).
Chapter 3 teaches this. Chapter 6 adds `proportional` (batches drawn ∝ loss^alpha) and the per-sample
rule of Selective-Backprop (`keep_samples`), which train.py applies inside its `selective` method.
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


def proportional(ledger, k, generator=None, alpha=1.0):
    """k distinct batches drawn one after another without replacement, each with probability ∝ loss^alpha
    among those not yet drawn (in the spirit of Katharopoulos & Fleuret 2018): a hard batch is likely
    but never certain, an easy one unlikely but never impossible. alpha=0 is `random`'s law; a large
    alpha approaches `hardest`. Losses are divided by the largest first (so loss^alpha cannot overflow)
    and floored at 1e-12 (so a batch of zero loss keeps a tiny chance and k draws always exist)."""
    loss = ledger.loss.detach().double().cpu()
    weights = (loss / loss.max().clamp_min(1e-300)).clamp_min(1e-12) ** alpha  # (N,) in (0, 1]
    return torch.multinomial(weights, k, replacement=False, generator=generator).to(ledger.loss.device)


STRATEGIES = {"hardest": hardest, "random": random, "easiest": easiest, "proportional": proportional}
BUILT_IN = tuple(STRATEGIES)  # the rules hardbatch ships; register() adds to STRATEGIES, never replaces these


def register(name, rule):
    """Add `rule(ledger, k, generator)` to STRATEGIES as `name`, so `RunConfig(select=name)` and `hb.train`
    use it (chapter 3, exercise 4). A built-in name cannot be replaced; registering the same name again
    replaces your own earlier rule, so a notebook cell can be rerun."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"a rule's name must be a Python identifier, got {name!r}")
    if name in BUILT_IN:
        raise ValueError(f"{name!r} is a built-in rule; choose another name")
    if not callable(rule):
        raise TypeError(f"a rule must be callable as rule(ledger, k, generator), got {type(rule).__name__}")
    STRATEGIES[name] = rule
    return rule


# ---------------------------------------------------------------- Selective-Backprop (per sample, chapter 6)

def keep_probability(losses, window, beta):
    """CDF(loss)^beta for each of `losses` (n,): CDF is the fraction of the recent losses `window` (m,) that
    are at most this loss (Jiang et al. 2019). With losses that are all different and a window that holds
    them, CDF is spread evenly over (0, 1], so the mean keep probability is about 1/(beta + 1)."""
    cdf = (window[None, :] <= losses[:, None]).double().mean(dim=1)  # (n,)
    return cdf ** beta


def keep_samples(losses, window, beta, generator=None):
    """(n,) bool: which samples Selective-Backprop keeps, each with probability keep_probability, by one
    uniform draw per sample from `generator`."""
    draws = torch.rand(len(losses), generator=generator, dtype=torch.double)
    return draws < keep_probability(losses, window, beta)


def select(strategy, ledger, k, generator=None, **strength):
    """Apply the named rule to a Ledger (or to a plain (N,) tensor of losses); see STRATEGIES.
    strength: the rule's own knob, e.g. alpha=2.0 for `proportional` (config.ONLY_FOR_SELECT)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown selection strategy {strategy!r}; allowed: {', '.join(STRATEGIES)}")
    if isinstance(ledger, torch.Tensor):
        ledger = Ledger.of(ledger)
    return STRATEGIES[strategy](ledger, k, generator, **strength)
