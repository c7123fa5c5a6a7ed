"""Histograms of the parameters and gradients too large for per-element scalars (more than
`max_elements` elements): param/<name> and grad/<name>, on their due steps."""

from __future__ import annotations

import torch

from gradtrace.training.instruments import RunContext, StepView
from gradtrace.training.probe import Probe


class Histograms:
    tag_prefix = ""
    tags_under = ()  # histograms only

    def __init__(self, max_elements: int) -> None:
        self.max_elements = max_elements

    def setup(self, context: RunContext) -> bool:
        self.probe = Probe(context.model.named_parameters(), self.max_elements)
        return bool(self.probe.large)  # a model of small tensors has none to draw

    def measure(self, view: StepView) -> dict[str, torch.Tensor]:
        return self.probe.histograms()
