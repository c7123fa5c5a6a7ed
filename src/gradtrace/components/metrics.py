"""Metrics: numbers besides the loss that say how well a model does, on training batches
(`<name>/train`) and on the validation samples (`<name>/val`).

    accuracy       classes: the share of samples whose largest logit is the label's;
                   binary: of targets on the logit's side of 0 (of 0.5 for probabilities)
    top<k>_accuracy  classes: the share whose label is among the k largest logits (top5_accuracy)
    macro_f1       classes: the mean over classes of F1 = 2 TP / (2 TP + FP + FN), over the
                   classes present in the labels or the predictions (scikit-learn's f1_score,
                   average="macro")
    r2             regression: 1 - sum (y - pred)^2 / sum (y - mean y)^2, per target column,
                   averaged over the columns (scikit-learn's r2_score)
    mae            regression: the mean absolute error

Written in plain torch, a few tensor operations each, rather than with torchmetrics: its import
(about 1 s) and its per-call state handling would cost every run and every logged step more than
these do, and the tests check each against scikit-learn's. A metric of your own is a dotted path
to a function (preds, targets) -> a number, logged under its last name.
"""

from __future__ import annotations

import re
from typing import Callable, Optional, Sequence, Union

import torch
from torch import nn

from gradtrace.components.tasks import BINARY, CLASSES, REGRESSION
from gradtrace.errors import ConfigError

Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (preds, targets) -> []


def _flat_classes(preds: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits [N, C, ...] and labels [N, ...] as [M, C] and [M]."""
    return preds.movedim(1, -1).reshape(-1, preds.shape[1]), targets.reshape(-1)


def accuracy(preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits, labels = _flat_classes(preds, targets)
    return (logits.argmax(1) == labels).float().mean()


def top_k_accuracy(k: int) -> Metric:
    def top_k(preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits, labels = _flat_classes(preds, targets)
        if k > logits.shape[1]:
            raise ConfigError(f"metrics: top{k}_accuracy needs at least {k} classes, the model "
                              f"gives {logits.shape[1]}")
        return (logits.topk(k, dim=1).indices == labels.unsqueeze(1)).any(1).float().mean()
    return top_k


def macro_f1(preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits, labels = _flat_classes(preds, targets)
    classes = logits.shape[1]
    predicted = logits.argmax(1)
    hits = torch.bincount(labels[predicted == labels], minlength=classes).float()  # TP per class
    # 2 TP + FP + FN = (predicted as c) + (labelled c)
    both = (torch.bincount(predicted, minlength=classes)
            + torch.bincount(labels, minlength=classes)).float()
    present = both > 0
    return (2 * hits[present] / both[present]).mean()


def binary_accuracy(threshold: float) -> Metric:
    def binary(preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return ((preds > threshold) == (targets > 0.5)).float().mean()
    return binary


def r2(preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    y, p = targets.reshape(len(targets), -1), preds.reshape(len(preds), -1)  # [N, K]
    residual = ((y - p) ** 2).sum(0)
    total = ((y - y.mean(0)) ** 2).sum(0)
    return (1 - residual / total).mean()


def mae(preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return (preds - targets).abs().mean()


FIXED: dict[str, tuple[str, Metric]] = {  # name -> (task, metric)
    "accuracy": (CLASSES, accuracy),
    "macro_f1": (CLASSES, macro_f1),
    "r2": (REGRESSION, r2),
    "mae": (REGRESSION, mae),
}
NAMES = "accuracy, top<k>_accuracy (e.g. top5_accuracy), macro_f1 (classes); r2, mae (regression)"


def default_names(kind: str) -> list[str]:
    """metrics: null: accuracy for classification losses, none for regression."""
    return ["accuracy"] if kind in (CLASSES, BINARY) else []


def resolve(names: Optional[Sequence[Union[str, Metric]]], kind: str,
            loss_fn: object) -> dict[str, Metric]:
    """name -> metric for the run's task (a user's own function comes located, under its own
    name); a ConfigError for a name that is unknown or does not fit the task."""
    out: dict[str, Metric] = {}
    for name in default_names(kind) if names is None else names:
        if callable(name):  # mypackage.my_metric, imported by gradtrace.setup
            out[getattr(name, "__name__", "metric")] = name
            continue
        if not isinstance(name, str):
            raise ConfigError(f"metrics must be a list of metric names ({NAMES}), got {name!r}")
        top = re.fullmatch(r"top([1-9]\d*)_accuracy", name)
        if name == "accuracy" and kind == BINARY:
            out[name] = binary_accuracy(0.5 if isinstance(loss_fn, nn.BCELoss) else 0.0)
            continue
        if top is not None:
            task, metric = CLASSES, top_k_accuracy(int(top.group(1)))
        elif name in FIXED:
            task, metric = FIXED[name]
        else:
            raise ConfigError(f"metrics: unknown metric {name!r}; gradtrace has {NAMES}, or give "
                              f"a dotted path to a function of your own")
        if task != kind:
            raise ConfigError(f"metrics: {name} is a metric for {task} tasks, but the loss trains "
                              f"a {kind} task")
        out[name] = metric
    return out
