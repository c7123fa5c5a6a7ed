"""Losses whose options are plain config values: class weights as a list, turned into the tensor
torch's class takes. The rest (mse, mae, huber) are torch.nn's classes named in their YAML."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from gradtrace.errors import ConfigError, is_finite_number, require


def _weights(key: str, values: Optional[list[float]]) -> Optional[torch.Tensor]:
    if values is None:
        return None
    if not isinstance(values, list) or not values or not all(
            is_finite_number(v) and v >= 0 for v in values):
        raise ConfigError(f"{key} must be null or a list of finite numbers >= 0, one per class, "
                          f"got {values!r}")
    return torch.tensor(values, dtype=torch.float32)


def cross_entropy(*, weight: Optional[list[float]] = None,
                  label_smoothing: float = 0.0) -> nn.CrossEntropyLoss:
    """Softmax cross entropy of logits [N, C] against class indices [N], mean over the batch
    (weighted by the targets' class weights when `weight` is given)."""
    require(is_finite_number(label_smoothing) and 0 <= label_smoothing <= 1,
            "loss.label_smoothing", label_smoothing, "a number in [0, 1]")
    return nn.CrossEntropyLoss(weight=_weights("loss.weight", weight),
                               label_smoothing=float(label_smoothing))


def bce(*, pos_weight: Optional[list[float]] = None) -> nn.BCEWithLogitsLoss:
    """Binary cross entropy of logits against 0/1 targets of the same shape (sigmoid inside, in
    the numerically stable form); `pos_weight` weighs the positives, one a target column."""
    return nn.BCEWithLogitsLoss(pos_weight=_weights("loss.pos_weight", pos_weight))
