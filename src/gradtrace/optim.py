"""Optimisers of our own. torch.optim supplies the rest (see configs/optim/)."""

from __future__ import annotations

from typing import Iterable

import torch


class ManualSGD(torch.optim.Optimizer):
    """Gradient descent written out by hand: `p -= lr * p.grad`, then the gradient is zeroed.

    The update a tutorial writes, wrapped as an Optimizer so the trainer treats it like any other.
    It gives bitwise the same parameters as `torch.optim.SGD` without momentum.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float) -> None:
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None) -> None:  # noqa: ANN001 - torch's signature
        if closure is not None:
            raise ValueError("ManualSGD.step takes no closure")
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                p -= group["lr"] * p.grad
                p.grad.zero_()
