"""Samples: the worked examples' data, checks on any loader's output, the validation split,
full batches and shuffled mini-batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradtrace.components.data import Samples, as_samples, batches, points, split, uniform
from gradtrace.errors import ConfigError

CPU = torch.device("cpu")


def test_full_batch_is_the_whole_data_every_step():
    data = points([[1.0, 2.0, 3.0]], [5.0])
    stream = batches(data, None, 0, CPU)
    for _ in range(3):
        inputs, targets = next(stream)
        assert inputs.tolist() == [[1.0, 2.0, 3.0]] and targets.tolist() == [5.0]


def test_minibatches_visit_every_sample_once_per_epoch():
    data = uniform(10, 2, seed=0)
    stream = batches(data, 4, 0, CPU)
    for _ in range(2):  # two epochs: batches of 4, 4, 2
        epoch = [next(stream) for _ in range(3)]
        assert [len(t) for _, t in epoch] == [4, 4, 2]
        seen = torch.cat([t for _, t in epoch])
        assert sorted(seen.tolist()) == sorted(data.targets.tolist())
        for inputs, targets in epoch:  # rows stay paired with their targets
            for row, target in zip(inputs, targets):
                index = (data.targets == target).nonzero().item()
                assert torch.equal(data.inputs[index], row)


def test_shuffle_order_follows_the_seed():
    def first_batches(seed: int) -> list[list[float]]:
        stream = batches(uniform(20, 1, seed=0), 5, seed, CPU)
        return [next(stream)[1].tolist() for _ in range(4)]

    assert first_batches(1) == first_batches(1)
    assert first_batches(1) != first_batches(2)


def test_uniform_data_follows_the_seed():
    a, b, c = (uniform(50, 3, seed=s) for s in (1, 1, 2))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.inputs, c.inputs)


def test_split_holds_out_a_seeded_fraction_and_keeps_the_rest_in_order():
    data = Samples(torch.arange(20.0).reshape(10, 2), torch.arange(10.0))
    train, val = split(data, 0.3, seed=0)
    assert val is not None and len(train) == 7 and len(val) == 3
    # Every sample lands on exactly one side, rows paired with their targets.
    assert sorted(train.targets.tolist() + val.targets.tolist()) == list(range(10))
    assert torch.equal(train.inputs[:, 0], 2 * train.targets)
    assert train.targets.tolist() == sorted(train.targets.tolist())
    same_train, same_val = split(data, 0.3, seed=0)
    assert torch.equal(same_val.targets, val.targets)
    other = {tuple(split(data, 0.3, seed=s)[1].targets.tolist()) for s in range(1, 6)}
    assert len(other) > 1  # another seed, another split


def test_split_of_zero_is_no_validation():
    data = uniform(5, 1, seed=0)
    assert split(data, 0.0, seed=0) == (data, None)


@pytest.mark.parametrize(
    "fraction,message",
    [
        (1.0, r"^data\.val_fraction must be a number in \[0, 1\)"),
        (-0.1, r"^data\.val_fraction must be a number in \[0, 1\)"),
        (0.01, r"^data\.val_fraction=0\.01 of 10 samples leaves 0 for validation"),
        (0.99, r"leaves 10 for validation and 0 for training"),
    ],
)
def test_split_refuses_fractions_that_leave_a_side_empty(fraction: float, message: str):
    with pytest.raises(ConfigError, match=message):
        split(uniform(10, 1, seed=0), fraction, seed=0)


def test_a_loader_may_return_a_pair_of_arrays():
    samples = as_samples((np.ones((4, 2)), [1, 2, 3, 4]), "data: mypackage.load")
    assert samples.inputs.dtype == torch.float32 and samples.targets.tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "value,message",
    [
        ("abc", r"^data: my\.load must return gradtrace\.components\.data\.Samples or a pair"),
        ((np.ones((4, 2)), np.ones(3)), r"^data: my\.load: inputs \[samples, \.\.\.\] and targets "
                                        r"\[samples, \.\.\.\] must hold as many samples, got inputs "
                                        r"of shape \[4, 2\] and targets of shape \[3\]$"),
        ((np.ones((4, 2)), np.ones(())), r"must hold as many samples"),
        ((np.ones((0, 2)), np.ones(0)), r"^data: my\.load holds no samples$"),
        ((np.array([[1.0, np.inf]]), np.ones(1)),
         r"^data: my\.load: inputs hold 1 NaN or Inf value\(s\), the first inf at row 0, column 1"),
        ((np.ones((2, 1)), np.array([0.0, np.nan])),
         r"^data: my\.load: targets hold 1 NaN or Inf value\(s\), the first nan at row 1"),
    ],
)
def test_a_loaders_output_is_checked(value, message: str):
    with pytest.raises(ConfigError, match=message):
        as_samples(value, "data: my.load")
