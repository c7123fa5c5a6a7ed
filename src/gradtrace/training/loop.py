"""The training loop: zero_grad, forward, loss, backward, measure, clip, step, schedule. All of it
is in `train`.

What changes the update stays here, in order: gradient accumulation, clipping, the learning-rate
schedule. What only watches a step is an instrument
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
from typing import Any, Callable, Iterator, Optional, Sequence

import torch
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau
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
    accumulate_steps: int = 1,
    clip_grad_norm: Optional[float] = None,
    clip_grad_value: Optional[float] = None,
    scheduler: Optional[Any] = None,
    plateau_metric: str = "loss/val",
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
    update, those parameters, that loss's raw gradients and the lr the update uses. So for plain
    SGD the logged numbers obey param[k+1] = param[k] - lr * clip(grad[k]) (clip: none, or
    grad * grad_norm/clipped / grad_norm/total), and TensorBoard alone is enough to check an
    update.

    Each step takes `accumulate_steps` batches and sums their gradients, each loss weighted by
    its share of the samples: the gradient (and the logged loss) of their union, as one batch of
    that size would give, up to float rounding. The scheduler steps after each update;
    ReduceLROnPlateau steps with `plateau_metric`'s value on the steps that log it.

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
    clipping = clip_grad_norm is not None or clip_grad_value is not None
    parameters = [p for p in model.parameters() if p.requires_grad]
    groups = optimizer.param_groups
    lr_tags = ["optim/lr"] if len(groups) == 1 else [f"optim/lr/group{i}" for i in range(len(groups))]
    plateau = isinstance(scheduler, ReduceLROnPlateau)
    report_every = max(1, steps // 10)  # about ten console lines per run
    start = time.perf_counter()
    # The bar shows only on a terminal, and only once a run has taken two seconds; log lines
    # then go through it, so that they do not break it.
    bar = tqdm(total=steps, initial=start_step, unit="step", delay=2, disable=None)
    with bar, logging_redirect_tqdm() if not bar.disable else contextlib.nullcontext():
        for step in range(start_step, steps):
            optimizer.zero_grad()
            if accumulate_steps == 1:
                inputs, targets = next(batches)
                preds = forward(inputs)
                loss = loss_fn(preds, targets)  # []
                loss.backward()
            else:
                inputs, targets, preds, loss = accumulate(forward, loss_fn, batches,
                                                          accumulate_steps)

            loss_value = read_loss(loss)
            row: dict[str, float] = {}
            logged = step % log_every_steps == 0
            if logged:
                row["loss/train"] = loss_value
                for tag, group in zip(lr_tags, groups):
                    row[tag] = group["lr"]  # the lr this step's update uses
            if loss_value < best_loss:
                best_loss = loss_value
            # Measured between backward() and step(): the parameters are still the ones this
            # loss was computed with, and .grad holds its gradients.
            view.step, view.loss, view.loss_value, view.best_loss = step, loss, loss_value, best_loss
            view.inputs, view.targets, view.preds = inputs, targets, preds
            try:
                instruments.measure(view, row, logger)  # may stop the run: a NaN gradient
                if clipping:  # after the raw gradients are measured, before they are applied
                    clip(parameters, clip_grad_norm, clip_grad_value)
                    if logged:
                        row["grad_norm/clipped"] = grad_norm(parameters)
            finally:
                if row:  # logged before the step, so that a checkpoint after it holds it
                    logger.log_scalars(step, row)
            if not math.isfinite(loss_value):
                raise NonFiniteError(
                    f"step {step}: non-finite value before the optimiser step: loss = "
                    f"{loss_value}. The steps before it are logged; a smaller optim.lr may help."
                )
            optimizer.step()
            if scheduler is not None:  # the next step's lr
                if not plateau:
                    scheduler.step()
                elif plateau_metric in row:
                    scheduler.step(row[plateau_metric])

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


def accumulate(
    forward: nn.Module, loss_fn: LossFn, batches: Iterator[Batch], count: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The gradients of `count` batches summed into .grad, each batch's mean loss weighted by its
    share of all their samples (a short last batch of an epoch counts less). Returns the batches'
    inputs, targets and predictions joined, and the loss of them all: []."""
    micro = [next(batches) for _ in range(count)]
    total = sum(len(targets) for _, targets in micro)
    losses, all_preds = [], []
    for inputs, targets in micro:
        preds = forward(inputs)
        loss = loss_fn(preds, targets) * (len(targets) / total)
        loss.backward()
        losses.append(loss.detach())
        all_preds.append(preds.detach())
    inputs = torch.cat([inputs for inputs, _ in micro])
    targets = torch.cat([targets for _, targets in micro])
    return inputs, targets, torch.cat(all_preds), torch.stack(losses).sum()


def clip(parameters: Sequence[torch.Tensor], max_norm: Optional[float],
         max_value: Optional[float]) -> None:
    """Clip the gradients in place: each element to [-max_value, max_value], then all of them
    together to an L2 norm of at most max_norm (None: that clip is off)."""
    if max_value is not None:
        nn.utils.clip_grad_value_(parameters, max_value)
    if max_norm is not None:
        nn.utils.clip_grad_norm_(parameters, max_norm)


def grad_norm(parameters: Sequence[torch.Tensor]) -> float:
    """The L2 norm of all the gradients together."""
    norms = [torch.linalg.vector_norm(p.grad) for p in parameters if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0
