"""Reads a model's parameters and gradients into one flat row of numbers per step.

The row is what the trainer checks for NaN/Inf and what the logger writes. Its layout is fixed
at the start and named by `columns`:

    param/<name>[i,j]   grad/<name>[i,j]     each element of a small tensor (<= max_elements)
    param_norm/<name>   grad_norm/<name>     the L2 norm of each larger tensor

Reading a small model costs one `torch.cat`; that is what keeps per-element logging cheap.
"""

from __future__ import annotations

import itertools
from typing import Iterable

import torch
from torch import nn


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
        self._small_params = [p.detach().view(-1) for _, p in self.small]  # views: stay current
        self._small = [p for _, p in self.small]
        self._large = [p for _, p in self.large]
        small_names = [n for name, p in self.small for n in element_names(name, p.shape)]
        self.columns = (
            [f"param/{n}" for n in small_names]
            + [f"grad/{n}" for n in small_names]
            + [f"param_norm/{name}" for name, _ in self.large]
            + [f"grad_norm/{name}" for name, _ in self.large]
        )
        self.grad_columns = [i for i, c in enumerate(self.columns) if c.startswith("grad")]

    def read(self) -> torch.Tensor:
        """Parameters and gradients as one float32 row [len(columns)], on the model's device."""
        parts = self._small_params + [_grad(p).view(-1) for p in self._small]
        if self._large:
            tensors = [p.detach() for p in self._large] + [_grad(p) for p in self._large]
            parts.append(torch.stack(torch._foreach_norm(tensors)).float())
        return torch.cat(parts)

    def all_finite(self, row: torch.Tensor) -> bool:
        # One reduction instead of an isfinite per element: a NaN or Inf anywhere makes the sum
        # non-finite. A sum that overflows from finite values is rechecked element by element.
        total = row.sum().item()
        return total == total and abs(total) != float("inf") or bool(row.isfinite().all())

    def nonfinite(self, row: torch.Tensor) -> dict[str, float]:
        """The columns of `row` that hold NaN or Inf, by name."""
        bad = (~row.isfinite()).nonzero().flatten().tolist()
        return {self.columns[i]: row[i].item() for i in bad}

    def histograms(self) -> dict[str, torch.Tensor]:
        """The large tensors themselves, for histograms."""
        tensors = {f"param/{name}": p.detach() for name, p in self.large}
        tensors.update({f"grad/{name}": _grad(p) for name, p in self.large})
        return tensors


def _grad(p: nn.Parameter) -> torch.Tensor:
    return p.grad if p.grad is not None else torch.zeros_like(p)  # unused parameter: no gradient
