"""optimum/distance = |x - x*| and optimum/gap = f(x) - f(x*) on the logged steps, for a model
that knows its optimum (the analytic objectives, gradtrace.components.objectives: an `optimum`
tensor of x's shape and a `minimum` number). Left out for any other model."""

from __future__ import annotations

import torch

from gradtrace.training.instruments import RunContext, StepView


class Optimum:
    def setup(self, context: RunContext) -> bool:
        model = context.model
        optimum = getattr(model, "optimum", None)
        x = getattr(model, "x", None)
        if not isinstance(optimum, torch.Tensor) or not isinstance(x, torch.Tensor) \
                or optimum.shape != x.shape or not context.is_main:
            return False
        self.x, self.optimum = x, optimum
        self.minimum = float(getattr(model, "minimum", 0.0))
        return True

    def measure(self, view: StepView) -> dict[str, float]:
        distance = float(torch.linalg.vector_norm(self.x.detach() - self.optimum))
        return {"distance": distance, "gap": view.loss_value - self.minimum}
