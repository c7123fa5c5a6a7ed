"""Reads a model's parameters and gradients into one flat row of numbers per step.

The row is what the trainer checks for NaN/Inf and what the logger writes. Its layout is fixed
at the start and named by `columns`:

    param/<name>[i,j]   grad/<name>[i,j]     each element of a small tensor (<= max_elements)
    param_norm/<name>   grad_norm/<name>     the L2 norm of each larger tensor

Reading a small model costs two calls into torch; that is what keeps per-element logging cheap.
"""

from __future__ import annotations

import itertools
import math
from typing import Iterable

import torch
from torch import nn
from torch._utils import _flatten_dense_tensors


def element_names(name: str, shape: torch.Size) -> list[str]:
    """`w` for a 0-d tensor, `weight[0,2]` for the elements of a 2-d one, in row-major order."""
    if len(shape) == 0:
        return [name]
    return [
        f"{name}[{','.join(map(str, index))}]"
        for index in itertools.product(*(range(n) for n in shape))
    ]


class Probe:
    def __init__(self, named_parameters: Iterable[tuple[str, nn.Parameter]], max_elements: int):
        named = [(name, p) for name, p in named_parameters if p.requires_grad]
        self.small = [(name, p) for name, p in named if p.numel() <= max_elements]
        self.large = [(name, p) for name, p in named if p.numel() > max_elements]
        self._small_params = [p.detach() for _, p in self.small]  # share memory: stay current
        self._small = [p for _, p in self.small]
        self._large = [p for _, p in self.large]
        small_names = [n for name, p in self.small for n in element_names(name, p.shape)]
        self.columns = (
            [f"param/{n}" for n in small_names]
            + [f"grad/{n}" for n in small_names]
            + [f"param_norm/{name}" for name, _ in self.large]
            + [f"grad_norm/{name}" for name, _ in self.large]
        )

    def read(self) -> list[float]:
        """Parameters and gradients as one flat list of floats, laid out as `columns`."""
        tensors = self._small_params + [p.grad for p in self._small]
        if self._large:
            large = [p.detach() for p in self._large] + [_grad(p) for p in self._large]
            tensors += torch._foreach_norm(large)
        # One call that flattens and concatenates them all (what DDP uses to bucket gradients),
        # then one copy out: per-call overhead, not arithmetic, is what a tiny model's step costs.
        try:
            return _flatten_dense_tensors(tensors).tolist()
        except TypeError:  # a None gradient: a parameter the loss did not use. Count it as 0.
            tensors[len(self._small_params) : 2 * len(self._small)] = map(_grad, self._small)
            return _flatten_dense_tensors(tensors).tolist()

    @staticmethod
    def all_finite(loss: float, values: list[float]) -> bool:
        # One sum instead of a test per element: a NaN or Inf anywhere makes it non-finite. A sum
        # that overflows from finite values is rechecked element by element.
        return math.isfinite(loss + sum(values)) or (
            math.isfinite(loss) and all(map(math.isfinite, values))
        )

    def nonfinite(self, values: list[float]) -> dict[str, float]:
        """The columns of `values` that hold NaN or Inf, by name."""
        return {c: v for c, v in zip(self.columns, values) if not math.isfinite(v)}

    def histograms(self) -> dict[str, torch.Tensor]:
        """The large tensors themselves, for histograms."""
        tensors = {f"param/{name}": p.detach() for name, p in self.large}
        tensors.update({f"grad/{name}": _grad(p) for name, p in self.large})
        return tensors


def _grad(p: nn.Parameter) -> torch.Tensor:
    return p.grad if p.grad is not None else torch.zeros_like(p)  # unused parameter: no gradient
