"""Explain the first steps in words: for each parameter element, what the gradient says and what
the optimiser did about it.

    parameter    value  gradient  raising it would  -lr*grad  applied  new value
    weight[0,0]  0.5    -5        lower the loss    0.05      0.05     0.55

`applied` is new minus old, read off the parameters after optimizer.step(). For plain SGD it is
-lr * grad (up to float32 rounding); for momentum, weight decay or Adam it is not, and the table
shows both so the difference is visible. Then the batch's loss before and after the step.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from gradtrace.training.probe import element_names

log = logging.getLogger(__name__)

HEADER = ("parameter", "value", "gradient", "raising it would", "-lr*grad", "applied", "new value")


@dataclass
class Row:
    element: str  # e.g. weight[0,2]
    value: float  # before the step
    grad: float  # dL/d(element) of this step's loss
    sgd_update: float  # -lr * grad: what plain gradient descent would apply
    applied: float  # new - value: what the optimiser applied
    new_value: float

    @property
    def meaning(self) -> str:
        if self.grad > 0:
            return "raise the loss"
        if self.grad < 0:
            return "lower the loss"
        return "not change it"  # flat to first order


@dataclass
class StepExplanation:
    step: int
    optimizer: str  # the optimiser's class name
    rows: list[Row]
    hidden: list[str]  # tensors too large to list element by element
    loss_before: float
    loss_after: float  # the same batch, parameters after the step
    curvature: Optional[str] = None  # how lr stands against the Hessian's top eigenvalue

    @property
    def loss_fell(self) -> bool:
        return self.loss_after < self.loss_before

    @property
    def plain_gradient_step(self) -> bool:
        """Whether every applied update equals -lr * grad, up to float32 rounding."""
        return all(
            abs(r.applied - r.sgd_update) <= 1e-6 * max(abs(r.value), abs(r.new_value)) + 1e-12
            for r in self.rows
        )

    def verdict(self) -> str:
        change = self.loss_after - self.loss_before
        fell = "fell" if change < 0 else ("did not change" if change == 0 else "ROSE")
        rule = (
            "each update is -lr*grad (plain gradient descent)"
            if self.plain_gradient_step
            else f"{self.optimizer} applied its own update, not -lr*grad"
        )
        curvature = f"; {self.curvature}" if self.curvature else ""
        return (
            f"step {self.step}: loss {self.loss_before:.6g} -> {self.loss_after:.6g} on this "
            f"batch, {fell} by {abs(change):.6g}; {rule}{curvature}"
        )

    def cells(self) -> list[tuple[str, ...]]:
        return [
            (r.element, *(f"{v:.6g}" for v in (r.value, r.grad)), r.meaning,
             *(f"{v:.6g}" for v in (r.sgd_update, r.applied, r.new_value)))
            for r in self.rows
        ]

    def table(self) -> str:
        """Aligned plain text for the console."""
        lines = [HEADER, *self.cells()]
        widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
        text = [self.verdict()]
        text += ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
        text += [f"({name}: too many elements to list)" for name in self.hidden]
        return "\n".join(text)

    def markdown(self) -> str:
        """The same as a Markdown table, for TensorBoard's text dashboard."""
        header = "| " + " | ".join(map(_markdown_escape, HEADER)) + " |"
        lines = [f"**{_markdown_escape(self.verdict())}**", "", header]
        lines.append("|" + "---|" * len(HEADER))
        lines += ["| " + " | ".join(cells) + " |" for cells in self.cells()]
        lines += [f"\n({name}: too many elements to list)" for name in self.hidden]
        return "\n".join(lines)


def _markdown_escape(text: str) -> str:
    return text.replace("*", "\\*")  # -lr*grad: a product, not Markdown emphasis


@dataclass
class Snapshot:
    """The parameters and gradients a step starts from (copies: the step changes both)."""

    loss: float
    values: list[torch.Tensor]
    grads: list[torch.Tensor]


class StepExplainer:
    """Explains each of the first `steps` steps; built only when trainer.explain_steps > 0."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        optimizer: torch.optim.Optimizer,
        *,
        steps: int,
        max_elements: int,
    ) -> None:
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.steps = steps
        self.named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.max_elements = max_elements  # larger tensors are named, not listed

    def before_step(self, loss: float) -> Snapshot:
        return Snapshot(
            loss,
            [p.detach().clone() for _, p in self.named],
            [torch.zeros_like(p) if p.grad is None else p.grad.clone() for _, p in self.named],
        )

    @torch.no_grad()
    def after_step(
        self, step: int, before: Snapshot, inputs: torch.Tensor, targets: torch.Tensor,
        curvature: Optional[str] = None,
    ) -> StepExplanation:
        """Explain the step just taken from `before`, and print the table."""
        lrs = {id(p): group["lr"] for group in self.optimizer.param_groups for p in group["params"]}
        rows, hidden = [], []
        for (name, p), old, grad in zip(self.named, before.values, before.grads):
            if p.numel() > self.max_elements:
                hidden.append(name)
                continue
            lr = lrs.get(id(p), math.nan)
            new = p.detach()
            # float64 on the CPU: the numbers as the table shows them
            columns = [t.double().cpu().reshape(-1).tolist() for t in (old, grad, new)]
            for element, value, g, new_value in zip(element_names(name, p.shape), *columns):
                sgd_update = -lr * g + 0.0  # + 0.0: 0, not -0, for a zero gradient
                rows.append(Row(element, value, g, sgd_update, new_value - value, new_value))
        loss_after = self.loss_fn(self.model(inputs), targets).item()
        explanation = StepExplanation(
            step, type(self.optimizer).__name__, rows, hidden, before.loss, loss_after, curvature
        )
        log.info("explain\n%s", explanation.table())
        return explanation
