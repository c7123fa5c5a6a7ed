"""Samples, and how the trainer gets them: inputs [N, D] and targets [N], float32 tensors held in
memory, split into training and validation samples, served as full batches or seeded shuffled
mini-batches (index slicing of the tensors, not a per-sample DataLoader).

A data option's `_target_` is any function or class that returns `Samples`, or a pair
(inputs, targets) of tensors, arrays or lists. The worked examples' data below, and
`gradtrace.components.files.load_file`, are the first users of that path.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch

from gradtrace.errors import ConfigError, is_finite_number, require

Batch = tuple[torch.Tensor, torch.Tensor]  # inputs [B, D], targets [B]


@dataclass(frozen=True)
class Samples:
    inputs: torch.Tensor  # [N, D] float32
    targets: torch.Tensor  # [N] float32

    def __len__(self) -> int:
        return self.inputs.shape[0]

    @property
    def features(self) -> int:
        return self.inputs.shape[1]

    def subset(self, index: torch.Tensor) -> Samples:
        return Samples(self.inputs[index], self.targets[index])


def as_samples(value: Any, source: str) -> Samples:
    """`value` (Samples, or a pair inputs, targets) as checked float32 Samples; `source` names
    where it came from in messages (e.g. "data: mypackage.load")."""
    if isinstance(value, Samples):
        inputs, targets = value.inputs, value.targets
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        inputs, targets = (_tensor(v, source) for v in value)
    else:
        raise ConfigError(
            f"{source} must return gradtrace.components.data.Samples or a pair (inputs, targets), "
            f"got {type(value).__name__}"
        )
    if inputs.ndim != 2:
        raise ConfigError(f"{source}: inputs must have shape [samples, features], got "
                          f"{list(inputs.shape)}")
    if targets.shape != (inputs.shape[0],):
        raise ConfigError(
            f"{source}: targets must hold one number per input row ({inputs.shape[0]}), "
            f"got shape {list(targets.shape)}"
        )
    if len(targets) == 0:
        raise ConfigError(f"{source} holds no samples")
    for name, tensor in (("inputs", inputs), ("targets", targets)):
        bad = (~torch.isfinite(tensor)).nonzero()
        if len(bad):
            where = ", column ".join(str(int(i)) for i in bad[0])
            raise ConfigError(
                f"{source}: {name} hold {len(bad)} NaN or Inf value(s), the first "
                f"{tensor[tuple(bad[0])].item()} at row {where} (counting from 0)"
            )
    return Samples(inputs.float(), targets.float())


def _tensor(value: Any, source: str) -> torch.Tensor:
    try:
        if isinstance(value, torch.Tensor):
            return value.detach()
        return torch.as_tensor(np.asarray(value, dtype=np.float32))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source}: inputs and targets must be numbers ({error})") from None


# --- the worked examples' data ---------------------------------------------------------------


def points(inputs: list[list[float]], targets: list[float]) -> Samples:
    """Samples written out in the config (`data.inputs`, `data.targets`)."""
    try:
        x = torch.tensor(inputs, dtype=torch.float32)
    except (TypeError, ValueError):
        raise ConfigError(
            f"data.inputs must be rows of numbers, all of one length, got {inputs!r}"
        ) from None
    if x.ndim != 2:
        raise ConfigError(f"data.inputs must be a list of rows [[...], ...], got {inputs!r}")
    try:
        y = torch.tensor(targets, dtype=torch.float32)
    except (TypeError, ValueError):
        raise ConfigError(f"data.targets must be a list of numbers, got {targets!r}") from None
    return as_samples((x, y), "data")


def uniform(samples: int, features: int, *, seed: int) -> Samples:
    """Inputs [samples, features] and targets [samples], uniform on [0, 1), drawn with `seed`."""
    require(isinstance(samples, int) and samples >= 1, "data.samples", samples, "an integer >= 1")
    require(
        isinstance(features, int) and features >= 1, "data.features", features, "an integer >= 1"
    )
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(samples, features, generator=generator)
    y = torch.rand(samples, generator=generator)
    return Samples(x, y)


# --- validation split and batches ------------------------------------------------------------


def split(samples: Samples, val_fraction: float, seed: int) -> tuple[Samples, Samples | None]:
    """A seeded random `val_fraction` of the samples held out for validation; the rest, in their
    original order, for training. val_fraction 0: no validation samples."""
    check_val_fraction(val_fraction)
    if val_fraction == 0:
        return samples, None
    n = len(samples)
    held_out = round(n * val_fraction)
    if not 1 <= held_out < n:
        raise ConfigError(
            f"data.val_fraction={val_fraction} of {n} samples leaves {held_out} for validation "
            f"and {n - held_out} for training; both need at least one"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_index, train_index = order[:held_out].sort().values, order[held_out:].sort().values
    return samples.subset(train_index), samples.subset(val_index)


def check_val_fraction(val_fraction: Any) -> None:
    require(
        is_finite_number(val_fraction) and 0 <= val_fraction < 1,
        "data.val_fraction",
        val_fraction,
        "a number in [0, 1) (0: no validation samples)",
    )


def check_batch_size(batch_size: Any, samples: int | None = None) -> None:
    require(
        batch_size is None or (isinstance(batch_size, int) and not isinstance(batch_size, bool)
                               and batch_size >= 1),
        "data.batch_size",
        batch_size,
        "null (full batch) or an integer >= 1",
    )
    if batch_size is not None and samples is not None and batch_size > samples:
        raise ConfigError(
            f"data.batch_size must be at most the number of training samples ({samples}), "
            f"got {batch_size}"
        )


def batches(
    samples: Samples,
    batch_size: int | None,
    seed: int,
    device: torch.device,
    part: tuple[int, int] = (0, 1),
) -> Iterator[Batch]:
    """Endless batches on `device`: the same full batch every step (batch_size None), or
    shuffled mini-batches. part=(k, n): only the k-th of n equal, contiguous shards of each
    batch (one process's share when n train together; each batch must divide by n)."""
    if batch_size is None:  # slices: views, no copy
        inputs, targets = _part(samples.inputs, part), _part(samples.targets, part)
        return itertools.repeat((inputs.to(device), targets.to(device)))
    inputs, targets = samples.inputs.to(device), samples.targets.to(device)
    return MiniBatches(inputs, targets, batch_size, seed, part)


def _part(rows: torch.Tensor, part: tuple[int, int]) -> torch.Tensor:
    k, n = part
    size = len(rows) // n
    return rows[k * size : (k + 1) * size]


class MiniBatches:
    """Endless shuffled mini-batches: a fresh seeded permutation each epoch, whose last batch
    may be short. Every process of a distributed run draws the same order and takes its `part`."""

    def __init__(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int,
        seed: int,
        part: tuple[int, int] = (0, 1),
    ) -> None:
        self.inputs, self.targets, self.batch_size = inputs, targets, batch_size
        self.part = part
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.empty(0, dtype=torch.long)
        self.position = 0  # next index into self.order

    def __iter__(self) -> MiniBatches:
        return self

    def __next__(self) -> Batch:
        if self.position >= len(self.order):
            order = torch.randperm(len(self.inputs), generator=self.generator)
            self.order = order.to(self.inputs.device)
            self.position = 0
        index = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        if self.part[1] > 1:
            index = _part(index, self.part)
        return self.inputs[index], self.targets[index]

    def state_dict(self) -> dict[str, Any]:
        """Where the stream stands: the generator, this epoch's order, the position in it."""
        return {"generator": self.generator.get_state(), "order": self.order.cpu(),
                "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.order = state["order"].to(self.inputs.device)
        self.position = state["position"]
