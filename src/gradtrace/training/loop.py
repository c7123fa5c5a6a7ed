"""The training loop: zero_grad, forward, loss, backward, measure, step. All of it is in `train`.

What changes the update stays here, in order. What only watches a step is an instrument
(gradtrace.training.instruments): element logging, histograms, validation, the gradient check,
the explanation, the landscape's path, checkpoints and a user's own, each called on its own due
steps with a read-only view of the step. The loop hands their numbers to the logger.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

import torch
from torch import nn
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from gradtrace.components.data import Batch
from gradtrace.errors import NonFiniteError
from gradtrace.training.instruments import Instruments, Sink, StepView

log = logging.getLogger(__name__)

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (preds, targets) -> []


@dataclass
class TrainResult:
    final_loss: float  # the loss of the last step's batch, before its update
    best_loss: float
    steps: int  # completed optimiser steps
    seconds: float
    stopped: Optional[str] = None  # None: every step ran; else why it ended early ("signal", ...)
    final: dict[str, float] = field(default_factory=dict)  # what the instruments logged at the end


def train(
    *,
    model: nn.Module,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    batches: Iterator[Batch],
    instruments: Instruments,
    logger: Sink,
    steps: int,
    log_every_steps: int = 1,
    forward: Optional[nn.Module] = None,
    stop: Callable[[], Optional[str]] = lambda: None,
    request_stop: Callable[[str], None] = lambda reason: None,
    read_loss: Callable[[torch.Tensor], float] = torch.Tensor.item,
    start_step: int = 0,
    last_loss: float = math.nan,
    best_loss: float = math.inf,
) -> TrainResult:
    """Run optimiser steps `start_step` .. `steps - 1`; log loss/train and optim/lr every
    `log_every_steps`-th step, and whatever the instruments measure on their due steps.

    What step k logs is what step k computed with: the loss of the parameters before the k-th
    update, those parameters, and that loss's gradients. So for plain SGD the logged numbers obey
    param[k+1] = param[k] - lr * grad[k], and TensorBoard alone is enough to check an update.

    `forward` is what computes the predictions (the model, or its DistributedDataParallel
    wrapper). After each step `stop()` says whether to end now, and why (a signal, or an
    instrument's `request_stop`, which comes through `request_stop`). `read_loss` turns the
    loss into the number logged; across processes it averages the ranks' losses. A resumed run
    starts at `start_step` with the loss of its last step and the `best_loss` so far.
    """
    forward = forward or model
    view = StepView(model, optimizer, request_stop)
    loss_value = last_loss
    stopped: Optional[str] = None
    report_every = max(1, steps // 10)  # about ten console lines per run
    start = time.perf_counter()
    # The bar shows only on a terminal, and only once a run has taken two seconds; log lines
    # then go through it, so that they do not break it.
    bar = tqdm(total=steps, initial=start_step, unit="step", delay=2, disable=None)
    with bar, logging_redirect_tqdm() if not bar.disable else contextlib.nullcontext():
        for step in range(start_step, steps):
            inputs, targets = next(batches)
            optimizer.zero_grad()
            preds = forward(inputs)
            loss = loss_fn(preds, targets)  # []
            loss.backward()

            loss_value = read_loss(loss)
            row: dict[str, float] = {}
            if step % log_every_steps == 0:
                row["loss/train"] = loss_value
                row["optim/lr"] = optimizer.param_groups[0]["lr"]
            if loss_value < best_loss:
                best_loss = loss_value
            # Measured between backward() and step(): the parameters are still the ones this
            # loss was computed with, and .grad holds its gradients.
            view.step, view.loss, view.loss_value, view.best_loss = step, loss, loss_value, best_loss
            view.inputs, view.targets, view.preds = inputs, targets, preds
            try:
                instruments.measure(view, row, logger)  # may stop the run: a NaN gradient
            finally:
                if row:  # logged before the step, so that a checkpoint after it holds it
                    logger.log_scalars(step, row)
            if not math.isfinite(loss_value):
                raise NonFiniteError(
                    f"step {step}: non-finite value before the optimiser step: loss = "
                    f"{loss_value}. The steps before it are logged; a smaller optim.lr may help."
                )
            optimizer.step()

            bar.update()
            if step % report_every == 0 or step == steps - 1:
                log.info("step %d/%d  loss %.6g", step, steps, loss_value)
            # After the update, before the next step reads anything (checkpoints: a resumed run
            # goes on from exactly here).
            instruments.after_step(view, logger)
            stopped = stop()
            if stopped is not None:
                break
    seconds = time.perf_counter() - start
    done = view.step + 1 if view.step >= 0 else start_step
    # Once at the end, on the model as trained: a validation after the last update, a picture.
    view.step, view.stopped = done, stopped
    final = instruments.finish(view, logger)
    return TrainResult(loss_value, best_loss, done, seconds, stopped, final)
