"""Losses whose backward is written by hand as a torch.autograd.Function, correct or wrong by a
factor: the negative controls of the gradient check. Their forwards are right, so finite
differences see the true gradient; subclassing MSELoss / L1Loss says which closed form applies.

Importable by the CLI too: PYTHONPATH=tests/insight ... loss._target_=broken_losses.DoubledGradMSE
"""

from __future__ import annotations

import torch
from torch import nn


class _Square(torch.autograd.Function):
    """r**2 elementwise; the backward returns factor * 2r (factor 1: correct)."""

    @staticmethod
    def forward(ctx, residuals: torch.Tensor, factor: float) -> torch.Tensor:
        ctx.save_for_backward(residuals)
        ctx.factor = factor
        return residuals**2

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (residuals,) = ctx.saved_tensors
        return grad * 2 * residuals * ctx.factor, None


class _Abs(torch.autograd.Function):
    """|r| elementwise; the backward returns factor * sign(r) (factor 1: correct)."""

    @staticmethod
    def forward(ctx, residuals: torch.Tensor, factor: float) -> torch.Tensor:
        ctx.save_for_backward(residuals)
        ctx.factor = factor
        return residuals.abs()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (residuals,) = ctx.saved_tensors
        return grad * torch.sign(residuals) * ctx.factor, None


class HandMSE(nn.MSELoss):
    """mean((preds - targets)**2) with a hand-written backward scaled by `factor`."""

    factor = 1.0

    def forward(self, preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return _Square.apply(preds - targets, self.factor).mean()


class DoubledGradMSE(HandMSE):
    factor = 2.0  # the classic slip: a gradient twice too large


class HandL1(nn.L1Loss):
    """mean(|preds - targets|) with a hand-written backward scaled by `factor`."""

    factor = 1.0

    def forward(self, preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return _Abs.apply(preds - targets, self.factor).mean()


class FlippedGradL1(HandL1):
    factor = -1.0  # the sign slip: gradient ascent


class UnknownDoubledGradLoss(nn.Module):
    """A loss with no closed form in gradtrace (not an MSELoss): only finite differences apply."""

    def forward(self, preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return _Square.apply(preds - targets, 2.0).mean()
