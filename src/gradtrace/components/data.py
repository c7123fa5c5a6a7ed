"""Samples, and how the trainer gets them: inputs [N, ...] (float32) and targets [N, ...]
(float32 numbers, or int64 class indices), tensors held in memory, split into training and
validation samples, served as full batches or seeded shuffled mini-batches (index slicing of the
tensors, not a per-sample DataLoader).

A data option's `_target_` is any function or class that returns `Samples`, or a pair
(inputs, targets) of tensors, arrays or lists. The worked examples' data below, the generated
classification sets (gradtrace.components.datasets) and `gradtrace.components.files.load_file`
are the first users of that path. Which dtype the targets need is the loss's to say
(gradtrace.components.tasks): the data keep what they were given.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from typing import Any, Iterator, Optional

import numpy as np
import torch

from gradtrace.errors import ConfigError, is_finite_number, require

Batch = tuple[torch.Tensor, torch.Tensor]  # inputs [B, ...], targets [B, ...]


@dataclass(frozen=True)
class Samples:
    inputs: torch.Tensor  # [N, ...] float32
    targets: torch.Tensor  # [N, ...] float32, or int64 class indices
    # The class names of a file's text label column, in index order (label i is classes[i]).
    classes: Optional[tuple[str, ...]] = None

    def __len__(self) -> int:
        return self.inputs.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        """One sample's input shape, e.g. (64,) or (1, 8, 8)."""
        return tuple(self.inputs.shape[1:])

    @property
    def features(self) -> int:
        """Input elements per sample: what a model that flattens its inputs takes."""
        return math.prod(self.shape)

    def subset(self, index: torch.Tensor) -> Samples:
        return replace(self, inputs=self.inputs[index], targets=self.targets[index])

    def with_targets(self, targets: torch.Tensor) -> Samples:
        return replace(self, targets=targets)


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
    if inputs.ndim < 1 or targets.ndim < 1 or targets.shape[0] != inputs.shape[0]:
        raise ConfigError(
            f"{source}: inputs [samples, ...] and targets [samples, ...] must hold as many "
            f"samples, got inputs of shape {list(inputs.shape)} and targets of shape "
            f"{list(targets.shape)}"
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
    integral = not targets.is_floating_point() and not targets.is_complex()
    classes = value.classes if isinstance(value, Samples) else None
    return Samples(inputs.float(), targets.long() if integral else targets.float(), classes)


def _tensor(value: Any, source: str) -> torch.Tensor:
    """Numbers as a tensor: integers stay integers (class labels), the rest float32."""
    try:
        if isinstance(value, torch.Tensor):
            return value.detach()
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"got {array.dtype} values")
        return torch.as_tensor(array if array.dtype.kind in "biu" else array.astype(np.float32))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source}: inputs and targets must be numbers ({error})") from None


# --- the worked examples' data ---------------------------------------------------------------


def points(inputs: list[list[float]], targets: list[Any]) -> Samples:
    """Samples written out in the config (`data.inputs`, `data.targets`: numbers, rows of
    numbers, or integer class labels)."""
    try:
        x = torch.tensor(inputs, dtype=torch.float32)
    except (TypeError, ValueError):
        raise ConfigError(
            f"data.inputs must be rows of numbers, all of one length, got {inputs!r}"
        ) from None
    if x.ndim != 2:
        raise ConfigError(f"data.inputs must be a list of rows [[...], ...], got {inputs!r}")
    try:
        y = torch.tensor(targets)
    except (TypeError, ValueError, RuntimeError):
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


def align_classes(held_out: Samples, classes: Optional[tuple[str, ...]]) -> Samples:
    """Validation samples read from their own file, their text labels numbered as the training
    file's (`classes`): label i means the same class in both."""
    if held_out.classes == classes:
        return held_out
    if classes is None or held_out.classes is None:
        text, numbers = ("validation", "training") if classes is None else ("training", "validation")
        raise ConfigError(f"data.val_path: the {text} file's target column holds text labels, the "
                          f"{numbers} file's numbers; both must hold the same kind")
    unknown = sorted(set(held_out.classes) - set(classes))
    if unknown:
        raise ConfigError(f"data.val_path: the validation file has class label(s) "
                          f"{', '.join(map(repr, unknown[:5]))} that the training file has not")
    index = torch.tensor([classes.index(name) for name in held_out.classes])
    return replace(held_out, targets=index[held_out.targets], classes=classes)


# --- validation split and batches ------------------------------------------------------------


def split(samples: Samples, val_fraction: float, seed: int, *, stratify: bool = False
          ) -> tuple[Samples, Samples | None]:
    """A seeded random `val_fraction` of the samples held out for validation; the rest, in their
    original order, for training. val_fraction 0: no validation samples. stratify (class
    indices [N]): that fraction of each class, so both parts keep the classes' proportions."""
    check_val_fraction(val_fraction)
    if val_fraction == 0:
        return samples, None
    n = len(samples)
    generator = torch.Generator().manual_seed(seed)
    if stratify:
        held = [members[torch.randperm(len(members), generator=generator)]
                [:round(len(members) * val_fraction)]
                for members in _by_class(samples.targets)]
        val_index = torch.cat(held).sort().values
    else:
        val_index = torch.randperm(n, generator=generator)[:round(n * val_fraction)].sort().values
    held_out = len(val_index)
    if not 1 <= held_out < n:
        raise ConfigError(
            f"data.val_fraction={val_fraction} of {n} samples leaves {held_out} for validation "
            f"and {n - held_out} for training; both need at least one"
        )
    keep = torch.ones(n, dtype=torch.bool)
    keep[val_index] = False
    return samples.subset(keep.nonzero().squeeze(1)), samples.subset(val_index)


def _by_class(labels: torch.Tensor) -> list[torch.Tensor]:
    """The indices of each class's samples, classes in increasing order."""
    return [(labels == c).nonzero().squeeze(1) for c in labels.unique()]


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
