"""explain: for each of the first `steps` steps, a table of every parameter element's value,
gradient, the update plain gradient descent would apply and the one the optimiser applied
(gradtrace.insight.explain), printed and logged as text."""

from __future__ import annotations

from typing import Optional

from gradtrace.errors import ConfigError
from gradtrace.insight.explain import Snapshot, StepExplainer
from gradtrace.instruments.gradcheck import single_process
from gradtrace.training.instruments import RunContext, StepView


class Explain:
    tag_prefix = ""
    tags_under = ()  # text only: explain

    def __init__(self, steps: int, max_elements: int) -> None:
        self.steps = steps
        self.max_elements = max_elements
        self.before: Optional[Snapshot] = None

    def setup(self, context: RunContext) -> bool:
        if self.steps == 0:
            return False
        if context.processes > 1:
            raise ConfigError(single_process("trainer.explain_steps", context.processes))
        self.explainer = StepExplainer(context.model, context.loss_fn, context.optimizer,
                                       steps=self.steps, max_elements=self.max_elements)
        return True

    def measure(self, view: StepView) -> None:
        # Copies: step() changes the parameters and (for some optimisers) the gradients.
        self.before = self.explainer.before_step(view.loss_value) if view.step < self.steps else None

    def after_step(self, view: StepView) -> Optional[dict[str, str]]:
        if self.before is None:
            return None
        explanation = self.explainer.after_step(view.step, self.before, view.inputs, view.targets)
        self.before = None
        return {"explain": explanation.markdown()}
