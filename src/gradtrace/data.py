"""The worked examples' data, made in code: inputs [N, D] and targets [N]."""

from __future__ import annotations

import itertools
from typing import Iterator, Optional

import torch

from gradtrace.config import ConfigError

Batch = tuple[torch.Tensor, torch.Tensor]  # inputs [B, D], targets [B]


class TensorData:
    """Samples held as two tensors, served as full batches or shuffled mini-batches."""

    def __init__(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        *,
        batch_size: Optional[int],
        seed: int,
    ) -> None:
        samples = inputs.shape[0]
        if targets.shape != (samples,):
            raise ConfigError(
                f"data.targets must hold one number per input row ({samples}), "
                f"got shape {list(targets.shape)}"
            )
        if batch_size is not None and batch_size > samples:
            raise ConfigError(
                f"data.batch_size must be at most the number of samples ({samples}), "
                f"got {batch_size}"
            )
        self.inputs = inputs
        self.targets = targets
        self.batch_size = batch_size
        self.seed = seed

    @property
    def samples(self) -> int:
        return self.inputs.shape[0]

    @property
    def features(self) -> int:
        return self.inputs.shape[1]

    def batches(self, device: torch.device) -> Iterator[Batch]:
        inputs, targets = self.inputs.to(device), self.targets.to(device)
        if self.batch_size is None:
            return itertools.repeat((inputs, targets))  # full batch: the same tensors every step
        return MiniBatches(inputs, targets, self.batch_size, self.seed)


class MiniBatches:
    """Endless shuffled mini-batches: a fresh seeded permutation each epoch, whose last batch
    may be short."""

    def __init__(
        self, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int, seed: int
    ) -> None:
        self.inputs, self.targets, self.batch_size = inputs, targets, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.empty(0, dtype=torch.long)
        self.position = 0  # next index into self.order

    def __iter__(self) -> "MiniBatches":
        return self

    def __next__(self) -> Batch:
        if self.position >= len(self.order):
            order = torch.randperm(len(self.inputs), generator=self.generator)
            self.order = order.to(self.inputs.device)
            self.position = 0
        index = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return self.inputs[index], self.targets[index]


class Points(TensorData):
    """Samples written out in the config (`data.inputs`, `data.targets`)."""

    def __init__(
        self,
        inputs: list[list[float]],
        targets: list[float],
        *,
        batch_size: Optional[int] = None,
        seed: int = 0,
    ) -> None:
        try:
            x = torch.tensor(inputs, dtype=torch.float32)
        except (TypeError, ValueError) as error:
            raise ConfigError(
                f"data.inputs must be rows of numbers, all of one length, got {inputs!r}"
            ) from error
        if x.ndim != 2:
            raise ConfigError(f"data.inputs must be a list of rows [[...], ...], got {inputs!r}")
        y = torch.tensor(targets, dtype=torch.float32)
        super().__init__(x, y, batch_size=batch_size, seed=seed)


class UniformRegression(TensorData):
    """Inputs [samples, features] and targets [samples], uniform on [0, 1), drawn with `seed`."""

    def __init__(
        self, samples: int, features: int, *, batch_size: Optional[int] = None, seed: int = 0
    ) -> None:
        generator = torch.Generator().manual_seed(seed)
        x = torch.rand(samples, features, generator=generator)
        y = torch.rand(samples, generator=generator)
        super().__init__(x, y, batch_size=batch_size, seed=seed)
