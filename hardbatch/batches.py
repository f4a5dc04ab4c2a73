"""The fixed partition: the training set cut once into N mini-batches.

Algorithm 2 keeps a loss per mini-batch, so a mini-batch must keep its identity (the same
samples) for the whole run. We cut a seeded permutation of the sample indices into N slices
of size B; batch i is always slice i. Chapter 1 teaches this.
"""
import torch


def make_partition(n_samples, batch_size, generator=None, drop_last=False):
    """Split `range(n_samples)` into mini-batches of `batch_size` sample indices.

    Returns a list of N index tensors, each of shape (B,) (the last may be smaller unless
    `drop_last`). The order of samples comes from `torch.randperm(n_samples, generator=...)`,
    exactly as `torch.utils.data.RandomSampler` draws it, so a `DataLoader` with
    `sampler=RandomSampler(data, generator=...)` and the same generator state yields the same
    batches. (`DataLoader(shuffle=True, generator=g)` does not: it first draws a worker seed from g.)
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    if not 1 <= batch_size <= n_samples:
        raise ValueError(f"batch_size must be between 1 and the {n_samples} training samples, got {batch_size}")
    perm = torch.randperm(n_samples, generator=generator)  # (n_samples,)
    batches = list(torch.split(perm, batch_size))  # N tensors of (B,)
    if drop_last and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def n_batches(n_samples, batch_size, drop_last=False):
    """N, the number of mini-batches `make_partition` makes."""
    return n_samples // batch_size if drop_last else -(-n_samples // batch_size)
