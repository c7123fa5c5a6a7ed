"""Full batches and shuffled mini-batches."""

from __future__ import annotations

import torch

from gradtrace.data import Points, UniformRegression


def test_full_batch_is_the_whole_data_every_step():
    data = Points([[1.0, 2.0, 3.0]], [5.0])
    batches = data.batches(torch.device("cpu"))
    for _ in range(3):
        inputs, targets = next(batches)
        assert inputs.tolist() == [[1.0, 2.0, 3.0]] and targets.tolist() == [5.0]


def test_minibatches_visit_every_sample_once_per_epoch():
    data = UniformRegression(10, 2, batch_size=4, seed=0)
    batches = data.batches(torch.device("cpu"))
    for _ in range(2):  # two epochs: batches of 4, 4, 2
        epoch = [next(batches) for _ in range(3)]
        assert [len(t) for _, t in epoch] == [4, 4, 2]
        seen = torch.cat([t for _, t in epoch])
        assert sorted(seen.tolist()) == sorted(data.targets.tolist())
        for inputs, targets in epoch:  # rows stay paired with their targets
            for row, target in zip(inputs, targets):
                index = (data.targets == target).nonzero().item()
                assert torch.equal(data.inputs[index], row)


def test_shuffle_order_follows_the_seed():
    def first_batches(seed: int) -> list[list[float]]:
        batches = UniformRegression(20, 1, batch_size=5, seed=0).batches(torch.device("cpu"))
        batches.generator.manual_seed(seed)
        return [next(batches)[1].tolist() for _ in range(4)]

    assert first_batches(1) == first_batches(1)
    assert first_batches(1) != first_batches(2)


def test_uniform_data_follows_the_seed():
    a, b, c = (UniformRegression(50, 3, seed=s) for s in (1, 1, 2))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.inputs, c.inputs)
