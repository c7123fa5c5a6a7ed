"""A task is data + model + loss that agree: what the loss expects of the predictions and the
targets, checked once before step 0 with one line that says what was expected. Never broadcast
past a mismatch: [N, 1] predictions against [N] targets, or [N] predictions read by a
cross-entropy loss as one sample's N logits, would train silently on the wrong thing.

The kind of task is the loss's to say:

    classes     logits [N, C, ...] and class indices [N, ...], int64 in [0, C)
                (torch.nn.CrossEntropyLoss, NLLLoss)
    binary      logits (or probabilities) and 0/1 targets of one shape, float
                (torch.nn.BCEWithLogitsLoss, BCELoss)
    regression  predictions and targets of one shape, float (every other loss)

A loss of a user's own declares `task = "classes"` (or "binary") as a class attribute to get the
classes (or binary) contract.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from gradtrace.components.data import Samples
from gradtrace.components.models import evaluating
from gradtrace.errors import ConfigError, failure

CLASSES, BINARY, REGRESSION = "classes", "binary", "regression"
KINDS = (CLASSES, BINARY, REGRESSION)


def kind_of(loss_fn: Any) -> str:
    """The task a loss trains: its own `task` attribute, else what gradtrace knows of torch's."""
    declared = getattr(loss_fn, "task", None)
    if declared in KINDS:
        return str(declared)
    if isinstance(loss_fn, (nn.CrossEntropyLoss, nn.NLLLoss)):
        return CLASSES
    if isinstance(loss_fn, (nn.BCEWithLogitsLoss, nn.BCELoss)):
        return BINARY
    return REGRESSION


def prepare(samples: Samples, kind: str, source: str, loss: str) -> Samples:
    """The targets in the dtype the task needs: class indices as int64, the rest as float32.
    Float targets that are whole numbers are class indices too (a CSV's 0.0, 1.0, ...)."""
    targets = samples.targets
    if samples.classes is not None and kind != CLASSES:
        shown = ", ".join(map(repr, samples.classes[:3]))
        raise ConfigError(
            f"{source}: the target column holds {len(samples.classes)} text labels ({shown}"
            f"{', ...' if len(samples.classes) > 3 else ''}), but loss._target_={loss} is not a "
            f"classification loss: pick loss=cross_entropy, or make the column numbers"
        )
    if kind == CLASSES:
        if targets.is_floating_point():
            whole = targets == targets.round()
            if not whole.all():
                row = int((~whole).flatten().nonzero()[0])
                raise ConfigError(
                    f"loss._target_={loss} needs class indices (whole numbers 0, 1, ...) as "
                    f"targets, but {source} gives {targets.flatten()[row].item():g} at position "
                    f"{row} (counting from 0): pick class data (data=spiral, digits, ...) or a "
                    f"regression loss (loss=mse)"
                )
        if len(targets) and int(targets.min()) < 0:
            raise ConfigError(f"{source}: class indices must be >= 0 for loss._target_={loss}, "
                              f"got {int(targets.min())}")
        return samples.with_targets(targets.long())
    targets = targets.float()
    if kind == BINARY and not ((targets >= 0) & (targets <= 1)).all():
        raise ConfigError(
            f"loss._target_={loss} needs targets in [0, 1]; {source} gives values from "
            f"{targets.min().item():g} to {targets.max().item():g}"
        )
    return samples.with_targets(targets)


def outputs(samples: Samples, kind: str) -> tuple[int, ...]:
    """The per-sample output shape a model built for these targets should give: (C,) for C
    classes (the largest training label + 1), else the targets' own per-sample shape."""
    if kind == CLASSES:
        return (int(samples.targets.max()) + 1, *samples.targets.shape[1:])
    return tuple(samples.targets.shape[1:])


def check_contract(
    model: nn.Module, target: str, loss: str, kind: str, inputs: torch.Tensor,
    targets: torch.Tensor,
) -> torch.Tensor:
    """One forward pass on a batch, without gradients and in eval mode (no dropout randomness,
    no batch-norm statistics updated), to stop before step 0 a model whose predictions do not fit
    the targets as the loss reads them. Returns the predictions."""
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(f"model._target_={target} has no trainable parameter")
    with evaluating(model):
        preds = model(inputs)
    shapes = f"for inputs of shape {list(inputs.shape)} and targets of shape {list(targets.shape)}"
    if not isinstance(preds, torch.Tensor):
        raise ConfigError(f"model._target_={target} returned {type(preds).__name__} {shapes}; "
                          f"it must return a tensor")
    if not preds.is_floating_point():
        raise ConfigError(f"model._target_={target} returned {preds.dtype} predictions {shapes}; "
                          f"they must be floating point")
    got = f"model._target_={target} returned predictions of shape {list(preds.shape)} {shapes}"
    if kind == CLASSES:
        wanted = [targets.shape[0], "C", *targets.shape[1:]]
        if preds.ndim != targets.ndim + 1 or preds.shape[:1] + preds.shape[2:] != targets.shape:
            raise ConfigError(
                f"loss._target_={loss} needs logits of shape {wanted} (C classes) for class "
                f"indices of shape {list(targets.shape)}: {got}; pick a classifier "
                f"(model=logistic, mlp, convnet) or a regression loss (loss=mse)"
            )
    elif preds.shape != targets.shape:
        hint = " (return out.squeeze(-1))" if preds.shape == (*targets.shape, 1) else ""
        raise ConfigError(
            f"{got}: loss._target_={loss} needs one prediction per target, of shape "
            f"{list(targets.shape)}{hint}"
        )
    return preds


def check_classes(samples: Samples, classes: int, where: str) -> None:
    """Every class index of `samples` (training or validation) in [0, classes)."""
    too_big = (samples.targets >= classes).flatten().nonzero()
    if len(too_big):
        position = int(too_big[0])
        raise ConfigError(
            f"{where}: class index {int(samples.targets.flatten()[position])} at position "
            f"{position} (counting from 0) is out of range for the model's {classes} classes "
            f"(model.classes, or model.weight's rows; or data whose labels are 0..{classes - 1})"
        )


def check_loss(loss_fn: Callable[..., Any], target: str, preds: torch.Tensor,
               targets: torch.Tensor) -> None:
    """The loss of a batch must be one number: a per-sample loss (reduction="none") would stop
    backward() at step 0 with a traceback. Class weights must be one a class."""
    weight = getattr(loss_fn, "weight", None)
    if kind_of(loss_fn) == CLASSES and isinstance(weight, torch.Tensor) and preds.ndim >= 2 \
            and weight.numel() != preds.shape[1]:
        raise ConfigError(
            f"loss.weight must hold one weight per class ({preds.shape[1]}), got "
            f"{weight.numel()}"
        )
    with torch.no_grad():
        try:
            loss = loss_fn(preds, targets)
        except Exception as error:
            raise failure("loss", target, error) from None
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0 or not loss.is_floating_point():
        shape = list(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ConfigError(
            f"loss._target_={target} returned {shape} for predictions of shape "
            f"{list(preds.shape)}; it must return one floating-point number (a 0-d tensor), "
            f"e.g. the mean over the batch"
        )

