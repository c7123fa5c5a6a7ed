"""Histograms of the parameters and gradients too large for per-element scalars (more than
`max_elements` elements): param/<name> and grad/<name>, on their due steps."""

from __future__ import annotations

import torch

from gradtrace.training.instruments import RunContext, StepView


class Histograms:
    tag_prefix = ""

    def __init__(self, max_elements: int) -> None:
        self.max_elements = max_elements

    def setup(self, context: RunContext) -> bool:
        named = context.model.named_parameters()
        self.large = [(n, p) for n, p in named if p.requires_grad and p.numel() > self.max_elements]
        return bool(self.large)  # a model of small tensors has none to draw

    def measure(self, view: StepView) -> dict[str, torch.Tensor]:
        out = {f"param/{name}": p.detach() for name, p in self.large}
        out.update({f"grad/{name}": p.grad if p.grad is not None else torch.zeros_like(p)
                    for name, p in self.large})
        return out
