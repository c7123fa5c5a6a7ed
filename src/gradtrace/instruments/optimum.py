"""optimum/distance = |x - x*| and optimum/gap = f(x) - f(x*) on the logged steps, for a model
that knows its optimum (the analytic objectives, gradtrace.components.objectives: an `optimum`
tensor of x's shape and a `minimum` number). Left out for any other model."""

from __future__ import annotations

from typing import Optional

import torch

from gradtrace.training.instruments import RunContext, StepView


def known_optimum(model: torch.nn.Module) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
    """(x, x*) for a model that knows its optimum; None for any other."""
    optimum, x = getattr(model, "optimum", None), getattr(model, "x", None)
    if isinstance(optimum, torch.Tensor) and isinstance(x, torch.Tensor) and optimum.shape == x.shape:
        return x, optimum
    return None


class Optimum:
    def setup(self, context: RunContext) -> bool:
        known = known_optimum(context.model)
        if known is None or not context.is_main:
            return False
        self.x, self.optimum = known
        self.minimum = float(getattr(context.model, "minimum", 0.0))
        return True

    def measure(self, view: StepView) -> dict[str, float]:
        distance = float(torch.linalg.vector_norm(self.x.detach() - self.optimum))
        return {"distance": distance, "gap": view.loss_value - self.minimum}
