"""Analytic objectives: models whose loss is a closed-form function of their parameters, with no
data, where the textbook's formulas are the tests. Each holds one parameter `x` (its start set by
`start`), returns f(x) for the one dummy sample of data=scalar, and is trained with loss=value
(the prediction itself is the loss). `optimum` is the known minimiser x* and `minimum` f(x*): the
`optimum` instrument logs the distance to it.

    quadratic   f(x) = 1/2 sum_i lambda_i (y_i)^2,  y = Q^T (x - x*)   (Q: identity, or a seeded
                rotation), so the Hessian is Q diag(lambda) Q^T and its eigenvalues are lambda
    rosenbrock  f(x, y) = (a - x)^2 + b (y - x^2)^2, minimum 0 at (a, a^2)
    rastrigin   f(x) = A n + sum_i (x_i^2 - A cos(2 pi x_i)), minimum 0 at 0
    beale       f(x, y) = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2, minimum 0
                at (3, 0.5)
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from gradtrace.errors import ConfigError, is_finite_number, require


def _vector(key: str, values: list[float], size: Optional[int] = None) -> torch.Tensor:
    if not isinstance(values, (list, tuple)) or not values or not all(map(is_finite_number, values)):
        raise ConfigError(f"{key} must be a list of finite numbers, got {values!r}")
    if size is not None and len(values) != size:
        raise ConfigError(f"{key} must hold {size} numbers (one per coordinate), got {len(values)}")
    return torch.tensor(values, dtype=torch.float32)


class Analytic(nn.Module):
    """One parameter `x`; forward gives f(x) once per sample, [N]."""

    optimum: torch.Tensor  # x*
    minimum: float = 0.0  # f(x*)

    def __init__(self, start: list[float], size: Optional[int] = None) -> None:
        super().__init__()
        self.x = nn.Parameter(_vector("model.start", start, size))

    def value(self) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.value().expand(inputs.shape[0])


class Quadratic(Analytic):
    lambdas: torch.Tensor  # the Hessian's eigenvalues
    rotation: torch.Tensor  # Q: its eigenvectors as columns

    def __init__(self, *, eigenvalues: list[float], start: list[float],
                 optimum: Optional[list[float]] = None, rotation_seed: Optional[int] = None) -> None:
        lambdas = _vector("model.eigenvalues", eigenvalues)
        super().__init__(start, len(lambdas))
        n = len(lambdas)
        self.register_buffer("lambdas", lambdas)
        self.register_buffer("optimum", torch.zeros(n) if optimum is None
                             else _vector("model.optimum", optimum, n))
        rotation = torch.eye(n)
        if rotation_seed is not None:  # Q from the QR factorisation of a seeded Gaussian matrix
            q, r = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(
                rotation_seed), dtype=torch.float64))
            rotation = (q * torch.sign(torch.diagonal(r))).float()
        self.register_buffer("rotation", rotation)

    def value(self) -> torch.Tensor:
        y = self.rotation.T @ (self.x - self.optimum)  # coordinates along the eigenvectors
        return 0.5 * (self.lambdas * y * y).sum()


class Rosenbrock(Analytic):
    def __init__(self, *, start: list[float], a: float = 1.0, b: float = 100.0) -> None:
        super().__init__(start, 2)
        require(is_finite_number(a) and is_finite_number(b) and b > 0, "model.b", b,
                "a finite number > 0 (and model.a finite)")
        self.a, self.b = float(a), float(b)
        self.register_buffer("optimum", torch.tensor([self.a, self.a ** 2]))

    def value(self) -> torch.Tensor:
        x, y = self.x[0], self.x[1]
        return (self.a - x) ** 2 + self.b * (y - x ** 2) ** 2


class Rastrigin(Analytic):
    def __init__(self, *, start: list[float], A: float = 10.0) -> None:  # noqa: N803 (its name)
        super().__init__(start)
        require(is_finite_number(A) and A >= 0, "model.A", A, "a finite number >= 0")
        self.A = float(A)
        self.register_buffer("optimum", torch.zeros_like(self.x.detach()))

    def value(self) -> torch.Tensor:
        x = self.x
        return self.A * len(x) + (x * x - self.A * torch.cos(2 * math.pi * x)).sum()


class Beale(Analytic):
    def __init__(self, *, start: list[float]) -> None:
        super().__init__(start, 2)
        self.register_buffer("optimum", torch.tensor([3.0, 0.5]))

    def value(self) -> torch.Tensor:
        x, y = self.x[0], self.x[1]
        return ((1.5 - x + x * y) ** 2 + (2.25 - x + x * y ** 2) ** 2
                + (2.625 - x + x * y ** 3) ** 2)


class Value(nn.Module):
    """loss=value: the prediction is the loss (an analytic objective's f(x)), its mean over the
    batch; the targets are not read."""

    def forward(self, preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return preds.mean()
