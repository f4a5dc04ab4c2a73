"""The embedded digits data set (data.py): shapes, labels, a test split that no seed can move."""
import pytest
import torch

import hardbatch as hb
from hardbatch.data import preprocess


def test_shapes_and_types(digits):
    assert digits.x_train.shape == (1297, 1, 8, 8) and digits.x_test.shape == (500, 1, 8, 8)
    assert digits.x_train.dtype == digits.x_test.dtype == torch.uint8
    assert digits.y_train.shape == (1297,) and digits.y_test.shape == (500,)
    assert digits.y_train.dtype == digits.y_test.dtype == torch.long
    assert (digits.in_chans, digits.size, digits.num_classes) == (1, 8, 10)
    assert digits.classes == tuple(str(c) for c in range(10))


def test_labels_are_0_to_9_and_every_class_is_in_both_splits(digits):
    assert sorted(digits.y_train.unique().tolist()) == list(range(10))
    assert sorted(digits.y_test.unique().tolist()) == list(range(10))
    assert int(digits.x_train.max()) == 255 and int(digits.x_train.min()) == 0  # 0..16 scaled to 0..255


def test_mean_and_std_are_the_training_sets(digits):
    x = digits.x_train.float() / 255
    assert digits.mean == pytest.approx((x.mean().item(),), rel=1e-5)
    assert digits.std == pytest.approx((x.std().item(),), rel=1e-5)
    z = preprocess(digits.x_train, digits)  # normalised with them: mean 0, std 1
    assert abs(z.mean().item()) < 1e-4 and abs(z.std().item() - 1) < 1e-4


def test_the_split_is_fixed_and_complete(digits):
    from sklearn.datasets import load_digits

    again = hb.load_dataset("digits")
    assert torch.equal(again.x_test, digits.x_test) and torch.equal(again.y_test, digits.y_test)
    assert torch.equal(again.x_train, digits.x_train)
    sk = load_digits()  # the 1797 images, split into 1297 + 500: label counts add up
    counts = torch.bincount(digits.y_train, minlength=10) + torch.bincount(digits.y_test, minlength=10)
    assert counts.tolist() == torch.bincount(torch.as_tensor(sk.target), minlength=10).tolist()


def test_the_test_split_is_the_same_for_every_run_seed(digits):
    # A run's seed draws its partition and its subset of the training set, never the test split.
    tests = []
    for seed in (0, 1, 2):
        sub = digits.subset(300, seed=seed)
        assert len(sub.y_train) == 300 and torch.equal(sub.x_test, digits.x_test) and torch.equal(sub.y_test, digits.y_test)
        tests.append(sub.y_train)
    assert not torch.equal(tests[0], tests[1])  # the training subsets do differ


def test_subset_refuses_bad_sizes(digits):
    with pytest.raises(ValueError, match="subset"):
        digits.subset(0)
    with pytest.raises(ValueError, match="subset"):
        digits.subset(1298)
