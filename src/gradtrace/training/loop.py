"""The training loop: zero_grad, forward, loss, backward, log, step. All of it is in `train`.

Optional parts plug in with a line or two each, named here by what the loop calls (small
protocols), not by the classes that happen to implement them: a validation loss, a gradient check
between backward and step (gradtrace.insight.gradcheck), a step explanation around the step
(insight.explain), and the trajectory the landscape picture draws (insight.trajectory)."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Protocol

import torch
from torch import nn
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from gradtrace.components.data import Batch
from gradtrace.errors import NonFiniteError
from gradtrace.loggers import Logger
from gradtrace.training.probe import Probe

log = logging.getLogger(__name__)

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (preds [B], targets [B]) -> []


class GradChecker(Protocol):
    """Compares the gradients about to be applied with references (insight.gradcheck)."""

    def due(self, step: int) -> bool: ...

    def check(self, step: int, inputs: torch.Tensor, targets: torch.Tensor) -> Any: ...

    def enforce(self, report: Any) -> None: ...  # strict: raises GradCheckError


class Explainer(Protocol):
    """Describes what one optimiser step did (insight.explain)."""

    def due(self, step: int) -> bool: ...

    def before_step(self, loss: float) -> Any: ...

    def after_step(
        self, step: int, before: Any, inputs: torch.Tensor, targets: torch.Tensor
    ) -> Any: ...  # has .markdown()


class Checkpointer(Protocol):
    """Saves the run's state now and then (gradtrace.training.checkpoint)."""

    def after_step(self, steps_done: int, loss: float, best_loss: float, *, last: bool) -> None:
        ...  # last: the loop ends here (the last step, or a stop signal): save now


class Recorder(Protocol):
    """Keeps the logged rows (insight.trajectory)."""

    def record(self, step: int, values: list[float]) -> None: ...


@dataclass
class TrainResult:
    final_loss: float  # the loss of the last step's batch, before its update
    best_loss: float
    steps: int  # completed optimiser steps
    seconds: float
    val_loss: Optional[float] = None  # on every validation sample, after the last step
    interrupted: bool = False  # a stop signal ended it after `steps` steps


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
    validation: Optional[Callable[[], float]] = None,
    val_every_steps: int = 100,
    grad_check: Optional[GradChecker] = None,
    explainer: Optional[Explainer] = None,
    trajectory: Optional[Recorder] = None,
    checkpoint: Optional[Checkpointer] = None,
    stop: Optional[Callable[[], bool]] = None,
    read_loss: Callable[[torch.Tensor], float] = torch.Tensor.item,
    start_step: int = 0,
    last_loss: float = math.nan,
    best_loss: float = math.inf,
) -> TrainResult:
    """Run `steps` optimiser steps and hand every `log_every_steps`-th step to `logger`.

    What step k logs is what step k computed with: the loss of the parameters before the k-th
    update, those parameters, and that loss's gradients. So for plain SGD the logged numbers obey
    param[k+1] = param[k] - lr * grad[k], and TensorBoard alone is enough to check an update.
    `validation()` is the loss on the validation samples, logged as loss/val at steps 0,
    val_every_steps, ... (with the same parameters as that step's loss) and at step `steps`, after
    the last update. `trajectory` keeps the logged rows for the landscape picture.

    After each step, `checkpoint` may save the run's state, and once `stop()` is true the loop
    ends (a stop signal: TrainResult.interrupted). `read_loss` turns the loss into the number
    logged; across processes (gradtrace.training.distributed) it averages the ranks' losses. A resumed
    run starts at `start_step` with the loss of its last step and the `best_loss` so far; all
    else it needs is in the objects given.
    """
    loss_value = last_loss
    report_every = max(1, steps // 10)  # about ten console lines per run
    start = time.perf_counter()
    # The bar shows only on a terminal, and only once a run has taken two seconds; log lines
    # then go through it, so that they do not break it.
    bar = tqdm(total=steps, initial=start_step, unit="step", delay=2, disable=None)
    with bar, logging_redirect_tqdm() if not bar.disable else contextlib.nullcontext():
        for step in range(start_step, steps):
            inputs, targets = next(batches)
            optimizer.zero_grad()
            preds = model(inputs)  # [B]
            loss = loss_fn(preds, targets)  # []
            loss.backward()

            # Read loss, parameters and gradients now, between backward() and step(): the
            # parameters are still the ones this loss was computed with.
            loss_value = read_loss(loss)
            values = probe.read()
            if step % log_every_steps == 0:
                logger.log_step(step, loss_value, optimizer.param_groups[0]["lr"], values)
                if trajectory is not None:
                    trajectory.record(step, values)
            if not probe.all_finite(loss_value, values):
                raise NonFiniteError(_describe_nonfinite(step, loss_value, probe, values))
            if probe.large and step % histogram_every_steps == 0:
                logger.log_histograms(step, probe.histograms())
            if validation is not None and step % val_every_steps == 0:
                logger.log_scalars(step, {"loss/val": validation()})
            if grad_check is not None and grad_check.due(step):
                # Autograd vs. finite differences and closed forms, on a float64 copy of the model.
                report = grad_check.check(step, inputs, targets)
                logger.log_scalars(step, report.scalars())
                grad_check.enforce(report)  # strict: GradCheckError names parameter and values

            explaining = explainer if explainer is not None and explainer.due(step) else None
            if explaining is not None:
                before = explaining.before_step(loss_value)  # copies: step() changes both
            optimizer.step()
            if explaining is not None:
                explanation = explaining.after_step(step, before, inputs, targets)
                logger.log_text(step, "explain", explanation.markdown())

            if loss_value < best_loss:
                best_loss = loss_value
            bar.update()
            if step % report_every == 0 or step == steps - 1:
                log.info("step %d/%d  loss %.6g", step, steps, loss_value)
            # Checkpoint after the update, before the next step reads anything: a resumed run
            # goes on from exactly here.
            stopping = stop is not None and stop()
            if checkpoint is not None:
                last = stopping or step == steps - 1
                checkpoint.after_step(step + 1, loss_value, best_loss, last=last)
            if stopping:
                seconds = time.perf_counter() - start
                return TrainResult(loss_value, best_loss, step + 1, seconds, interrupted=True)
    seconds = time.perf_counter() - start
    val_loss = None
    if validation is not None:  # the trained model: after the last update
        val_loss = validation()
        logger.log_scalars(steps, {"loss/val": val_loss})
        log.info("step %d/%d  validation loss %.6g", steps, steps, val_loss)
    return TrainResult(loss_value, best_loss, steps, seconds, val_loss)


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
