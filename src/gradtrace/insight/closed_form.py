"""Gradients written out by hand, independent of autograd, for every built-in model and loss.

With residuals r = preds - targets over N samples:

    loss                 dL/dpred_i          (reduction="mean"; "sum" drops the 1/N)
    mse  mean(r**2)      2 r_i / N
    mae  mean(|r|)       sign(r_i) / N       sign(0) = 0, as torch's L1Loss backward uses

and the chain rule through the model, c_i = dL/dpred_i:

    model       preds                    gradients
    scalar      pred_i = w               dL/dw = sum_i c_i
    linear      pred_i = W x_i + b       dL/dW = sum_i c_i x_i   [1, D],  dL/db = sum_i c_i   [1]
    regressor   pred_i = params . x_i    dL/dparams = sum_i c_i x_i   [D]

So for the linear example with mse: dL/dW = 2 (pred - y) x / N. The predictions are computed
from these formulas too, not by calling the model. Everything is in float64.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from gradtrace.components import models

Pullback = Callable[[torch.Tensor], dict[str, torch.Tensor]]  # dL/dpreds [N] -> {name: dL/dparam}


def closed_form_grads(
    model: nn.Module,
    loss_fn: object,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    keep: Optional[torch.Tensor] = None,
) -> Optional[dict[str, torch.Tensor]]:
    """dL/dparam for each parameter by formula, in float64; None when the model or the loss is
    not one with a known closed form.

    `keep` (bool [N]) restricts the sum to some samples while N stays the number of all of them:
    the gradient of the loss's terms of those samples alone (used to leave out samples at a kink).
    """
    x, y = inputs.double(), targets.double()  # [N, D], [N]
    model_part = _model_pullback(model, x)
    if model_part is None:
        return None
    preds, pullback = model_part
    dloss_dpreds = _loss_derivative(loss_fn, preds, y)
    if dloss_dpreds is None:
        return None
    if keep is not None:
        dloss_dpreds = torch.where(keep, dloss_dpreds, torch.zeros_like(dloss_dpreds))
    return pullback(dloss_dpreds)


def has_closed_form(model: nn.Module, loss_fn: object) -> bool:
    return isinstance(model, (models.Scalar, models.Linear, models.Regressor)) and _reduction(
        loss_fn
    ) is not None


def _reduction(loss_fn: object) -> Optional[str]:
    """"mean" or "sum" for MSELoss and L1Loss (and subclasses, which claim to compute them)."""
    if isinstance(loss_fn, (nn.MSELoss, nn.L1Loss)) and loss_fn.reduction in ("mean", "sum"):
        return loss_fn.reduction
    return None


def _loss_derivative(
    loss_fn: object, preds: torch.Tensor, targets: torch.Tensor
) -> Optional[torch.Tensor]:
    """dL/dpreds [N] for mse and mae, None for any other loss."""
    reduction = _reduction(loss_fn)
    if reduction is None:
        return None
    scale = 1.0 / len(preds) if reduction == "mean" else 1.0
    residuals = preds - targets  # [N]
    if isinstance(loss_fn, nn.MSELoss):
        return 2.0 * residuals * scale
    return torch.sign(residuals) * scale  # L1Loss; sign(0) = 0


def _model_pullback(
    model: nn.Module, x: torch.Tensor
) -> Optional[tuple[torch.Tensor, Pullback]]:
    """The predictions [N] and the map dL/dpreds -> dL/dparams, for the built-in models."""
    if isinstance(model, models.Scalar):
        w = model.w.detach().double()  # []
        return w.expand(len(x)), lambda c: {"w": c.sum()}
    if isinstance(model, models.Linear):
        weight = model.weight.detach().double()  # [1, D]
        bias = model.bias.detach().double()  # [1]
        preds = x @ weight[0] + bias[0]
        return preds, lambda c: {"weight": (c @ x).unsqueeze(0), "bias": c.sum().reshape(1)}
    if isinstance(model, models.Regressor):
        params = model.params.detach().double()  # [D]
        return x @ params, lambda c: {"params": c @ x}
    return None
