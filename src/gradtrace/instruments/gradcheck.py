"""grad_check: autograd's gradients against central finite differences (float64) and, for the
built-in models and losses, the closed forms (gradtrace.insight.gradcheck), on the due steps.
Logs grad_check/<fd|closed_form>/<abs_error|rel_error>/<param> and grad_check/kink_samples.

strict: a gradient that disagrees fails the run with GradCheckError (exit 4), right after its
step, its errors logged first; otherwise a warning."""

from __future__ import annotations

from typing import Optional

from gradtrace.errors import ConfigError
from gradtrace.insight.gradcheck import GradCheck, GradCheckReport
from gradtrace.training.instruments import RunContext, StepView


class GradientCheck:
    tag_prefix = ""  # its keys are grad_check/...
    tags_under = ("grad_check/",)

    def __init__(self, tolerance: float, abs_tolerance: float, step_size: float,
                 strict: bool) -> None:
        self.tolerance, self.abs_tolerance = tolerance, abs_tolerance
        self.step_size, self.strict = step_size, strict
        self.report: Optional[GradCheckReport] = None

    def setup(self, context: RunContext) -> None:
        if context.processes > 1:
            raise ConfigError(single_process("trainer.grad_check.every_steps", context.processes))
        self.check = GradCheck(
            context.model, context.loss_fn, every_steps=1, tolerance=self.tolerance,
            abs_tolerance=self.abs_tolerance, step_size=self.step_size, strict=self.strict,
        )

    def measure(self, view: StepView) -> dict[str, float]:
        # On a float64 copy of the model: the real one and its .grad are not touched.
        self.report = self.check.check(view.step, view.inputs, view.targets)
        return self.report.scalars()

    def after_step(self, view: StepView) -> None:
        report, self.report = self.report, None
        if report is not None:
            self.check.enforce(report)  # strict: GradCheckError names parameter and values


def single_process(key: str, processes: int) -> str:
    """The one line for an instrument that checks one process's own gradients."""
    return (f"{key} needs a single process (it recomputes one process's gradients on its own "
            f"data), got {processes} processes: set {key}=0 or run without torchrun")
