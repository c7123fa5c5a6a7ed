"""explain: for each of the first `steps` steps, a table of every parameter element's value,
gradient, the update plain gradient descent would apply and the one the optimiser applied
(gradtrace.insight.explain), printed and logged as text. With the sharpness instrument on, it
also says how the step size stands against the curvature: "lr 0.1 > 2/lambda = 0.0667: the top
direction overshoots and grows", lambda computed here on the step's batch."""

from __future__ import annotations

from typing import Optional

from gradtrace.errors import ConfigError
from gradtrace.insight.explain import Snapshot, StepExplainer
from gradtrace.instruments.curvature import Sharpness, step_size_verdict
from gradtrace.instruments.gradcheck import single_process
from gradtrace.training.instruments import RunContext, StepView


class Explain:
    tag_prefix = ""
    tags_under = ()  # text only: explain

    def __init__(self, steps: int, max_elements: int,
                 sharpness_iterations: Optional[int] = None) -> None:
        """sharpness_iterations: None, or the sharpness instrument's Lanczos iterations (set in
        the config when that instrument is on)."""
        self.steps = steps
        self.max_elements = max_elements
        # Its own: instruments do not call each other, and sharpness may not be due this step.
        self.sharpness = None if sharpness_iterations is None else Sharpness(sharpness_iterations)
        self.before: Optional[Snapshot] = None
        self.curvature: Optional[str] = None

    def setup(self, context: RunContext) -> bool:
        if self.steps == 0:
            return False
        if context.processes > 1:
            raise ConfigError(single_process("trainer.explain_steps", context.processes))
        self.explainer = StepExplainer(context.model, context.loss_fn, context.optimizer,
                                       steps=self.steps, max_elements=self.max_elements)
        if self.sharpness is not None:
            self.sharpness.setup(context)
        return True

    def measure(self, view: StepView) -> None:
        # Copies: step() changes the parameters and (for some optimisers) the gradients.
        self.before = self.explainer.before_step(view.loss_value) if view.step < self.steps else None
        if self.before is not None and self.sharpness is not None:
            top = self.sharpness.measure(view)["top"]
            self.curvature = (f"lambda = {top:.4g}, the Hessian's top eigenvalue on this batch: "
                              f"{step_size_verdict(view.optimizer, top)}")

    def after_step(self, view: StepView) -> Optional[dict[str, str]]:
        if self.before is None:
            return None
        explanation = self.explainer.after_step(view.step, self.before, view.inputs, view.targets,
                                                curvature=self.curvature)
        self.before = None
        return {"explain": explanation.markdown()}
