"""The fixed partition (batches.py): every sample in exactly one batch, seeded, same as RandomSampler."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import BatchSampler, RandomSampler

from hardbatch import batches


@st.composite
def sizes(draw):
    n = draw(st.integers(1, 300))
    return n, draw(st.integers(1, n)), draw(st.booleans()), draw(st.integers(0, 2**32))


@settings(max_examples=200, deadline=None)
@given(sizes())
def test_partition_covers_every_sample_once(nbds):
    n, B, drop_last, seed = nbds
    parts = batches.make_partition(n, B, torch.Generator().manual_seed(seed), drop_last)
    assert len(parts) == batches.n_batches(n, B, drop_last) == (n // B if drop_last else -(-n // B))
    assert all(len(p) == B for p in parts[:-1])
    assert 1 <= len(parts[-1]) <= B and (len(parts[-1]) == B or not drop_last)
    flat = torch.cat(parts).tolist()
    assert len(flat) == len(set(flat))  # no sample twice
    assert set(flat) <= set(range(n))
    if not drop_last:
        assert sorted(flat) == list(range(n))  # every sample once
    else:
        assert len(flat) == (n // B) * B
    again = batches.make_partition(n, B, torch.Generator().manual_seed(seed), drop_last)
    assert all(torch.equal(a, b) for a, b in zip(parts, again))  # same seed, same partition


def test_different_seeds_give_different_partitions():
    parts = {tuple(torch.cat(batches.make_partition(100, 10, torch.Generator().manual_seed(s))).tolist())
             for s in range(20)}
    assert len(parts) == 20


@pytest.mark.parametrize("n, B, drop_last", [(10, 4, False), (10, 4, True), (64, 8, False)])
def test_same_draws_as_a_random_sampler(n, B, drop_last):
    # A seeded RandomSampler in a BatchSampler yields the very same batches from the same generator state.
    ours = batches.make_partition(n, B, torch.Generator().manual_seed(3), drop_last)
    sampler = BatchSampler(RandomSampler(range(n), generator=torch.Generator().manual_seed(3)), B, drop_last)
    assert [p.tolist() for p in ours] == list(sampler)


@pytest.mark.parametrize("n, B", [(0, 1), (5, 0), (5, 6)])
def test_bad_sizes_are_refused(n, B):
    with pytest.raises(ValueError, match="n_samples|batch_size"):
        batches.make_partition(n, B)
