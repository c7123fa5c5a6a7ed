"""Optimisers of our own. torch.optim supplies the rest (see configs/optim/)."""

from __future__ import annotations

from typing import Iterable

import torch


class ManualSGD(torch.optim.Optimizer):
    """Gradient descent written out by hand: `p -= lr * p.grad`, then the gradient is zeroed.

    The update a tutorial writes, wrapped as an Optimizer so the trainer treats it like any other.
    It is written `p.sub_(p.grad, alpha=lr)` rather than `p -= lr * p.grad`: the same rule, but
    computed as one fused multiply-subtract, which is what torch.optim.SGD does. The two-step form
    rounds `lr * p.grad` to float32 first and so drifts from SGD by an ulp per step on the CPU;
    the fused form gives bitwise the same parameters as SGD without momentum (tested).
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float) -> None:
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: None = None) -> None:
        if closure is not None:
            raise ValueError("ManualSGD.step takes no closure")
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                p.sub_(p.grad, alpha=group["lr"])  # p -= lr * p.grad
                p.grad.zero_()
