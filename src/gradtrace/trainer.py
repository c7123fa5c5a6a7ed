"""The training loop: zero_grad, forward, loss, backward, log, step. All of it is in `train`.

Gradient insight (gradtrace.insight) plugs in as optional objects called with a line or two each:
a gradient check between backward and step, a step explanation around the step, and the
trajectory the landscape picture draws."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import torch
from torch import nn
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from gradtrace.data import Batch
from gradtrace.insight.explain import StepExplainer
from gradtrace.insight.gradcheck import GradCheck
from gradtrace.insight.trajectory import Trajectory
from gradtrace.loggers import Logger
from gradtrace.probe import Probe

log = logging.getLogger(__name__)

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (preds [B], targets [B]) -> []


class NonFiniteError(RuntimeError):
    """The loss or a gradient became NaN or Inf; training stopped before the optimiser step."""


@dataclass
class TrainResult:
    final_loss: float  # the loss of the last step's batch, before its update
    best_loss: float
    steps: int  # completed optimiser steps
    seconds: float


def train(
    *,
    model: nn.Module,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    batches: Iterator[Batch],
    probe: Probe,
    logger: Logger,
    steps: int,
    log_every_steps: int = 1,
    histogram_every_steps: int = 100,
    grad_check: Optional[GradCheck] = None,
    explainer: Optional[StepExplainer] = None,
    trajectory: Optional[Trajectory] = None,
) -> TrainResult:
    """Run `steps` optimiser steps and hand every `log_every_steps`-th step to `logger`.

    What step k logs is what step k computed with: the loss of the parameters before the k-th
    update, those parameters, and that loss's gradients. So for plain SGD the logged numbers obey
    param[k+1] = param[k] - lr * grad[k], and TensorBoard alone is enough to check an update.
    `trajectory` keeps those logged rows for the landscape picture.
    """
    best_loss = math.inf
    loss_value = math.nan
    report_every = max(1, steps // 10)  # about ten console lines per run
    start = time.perf_counter()
    # The bar shows only on a terminal, and only once a run has taken two seconds.
    with logging_redirect_tqdm(), tqdm(total=steps, unit="step", delay=2, disable=None) as bar:
        for step in range(steps):
            inputs, targets = next(batches)
            optimizer.zero_grad()
            preds = model(inputs)  # [B]
            loss = loss_fn(preds, targets)  # []
            loss.backward()

            # Read loss, parameters and gradients now, between backward() and step(): the
            # parameters are still the ones this loss was computed with.
            loss_value = loss.item()
            values = probe.read()
            if step % log_every_steps == 0:
                logger.log_step(step, loss_value, optimizer.param_groups[0]["lr"], values)
                if trajectory is not None:
                    trajectory.record(step, values)
            if not probe.all_finite(loss_value, values):
                raise NonFiniteError(_describe_nonfinite(step, loss_value, probe, values))
            if probe.large and step % histogram_every_steps == 0:
                logger.log_histograms(step, probe.histograms())
            if grad_check is not None and grad_check.due(step):
                # Autograd vs. finite differences and closed forms, on a float64 copy of the model.
                report = grad_check.check(step, inputs, targets)
                logger.log_scalars(step, report.scalars())
                grad_check.enforce(report)  # strict: GradCheckError names parameter and values

            explaining = explainer is not None and explainer.due(step)
            if explaining:
                before = explainer.before_step(loss_value)  # copies: step() changes both
            optimizer.step()
            if explaining:
                explanation = explainer.after_step(step, before, inputs, targets)
                logger.log_text(step, "explain", explanation.markdown())

            if loss_value < best_loss:
                best_loss = loss_value
            bar.update()
            if step % report_every == 0 or step == steps - 1:
                log.info("step %d/%d  loss %.6g", step, steps, loss_value)
    return TrainResult(loss_value, best_loss, steps, time.perf_counter() - start)


def _describe_nonfinite(step: int, loss: float, probe: Probe, values: list[float]) -> str:
    bad = {"loss": loss} if not math.isfinite(loss) else {}
    bad.update(probe.nonfinite(values))
    shown = ", ".join(f"{name} = {value}" for name, value in list(bad.items())[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    return (
        f"step {step}: non-finite value before the optimiser step: {shown}{more}. "
        f"The steps before it are logged (and this one, if it was a logged step); "
        f"a smaller optim.lr may help."
    )
