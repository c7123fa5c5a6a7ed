"""The worked examples' models (scalar, linear, regressor): one floating-point prediction per
sample [N]. What every model (a user's too) must give for the chosen loss is checked on real data
before step 0 by gradtrace.components.tasks.check_contract; the classifiers are in
gradtrace.components.networks."""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional

import torch
from torch import nn

from gradtrace.errors import ConfigError, is_float32, require


class Scalar(nn.Module):
    """One parameter `w`, predicted for every sample whatever its inputs."""

    def __init__(self, *, init: float) -> None:
        super().__init__()
        require(is_float32(init), "model.init", init, "a number with |x| <= 3.4e38 (float32)")
        self.w = nn.Parameter(torch.tensor(float(init)))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.w.expand(inputs.shape[0])


class Linear(nn.Linear):
    """`torch.nn.Linear(in_features, 1)`, predictions squeezed from [N, 1] to [N]."""

    def __init__(
        self,
        in_features: int,
        *,
        weight: Optional[list[list[float]]],
        bias: Optional[list[float]],
    ) -> None:
        if in_features < 1:
            raise ConfigError(
                f"model=linear needs inputs with at least one feature, but the data have "
                f"{in_features}: pick data=single_sample or data=uniform"
            )
        super().__init__(in_features, 1)
        with torch.no_grad():
            if weight is not None:
                self.weight.copy_(_tensor("model.weight", weight, (1, in_features)))
            if bias is not None:
                self.bias.copy_(_tensor("model.bias", bias, (1,)))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return super().forward(inputs).squeeze(-1)


class Regressor(nn.Module):
    """Bias-free linear model `preds = (inputs * params).sum(1)`; params uniform on [0, 1)."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        if in_features < 1:
            raise ConfigError(
                f"model=regressor needs inputs with at least one feature, but the data have "
                f"{in_features}: pick data=uniform or data=single_sample"
            )
        self.params = nn.Parameter(torch.rand(in_features))  # global RNG, seeded by the run

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return (inputs * self.params).sum(1)


def _tensor(key: str, values: list, shape: tuple[int, ...]) -> torch.Tensor:
    try:
        tensor = torch.tensor(values, dtype=torch.float32)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{key} must be a nested list of numbers, got {values!r}") from error
    if not torch.isfinite(tensor).all():
        raise ConfigError(f"{key} must hold numbers with |x| <= 3.4e38 (float32), got {values}")
    if tuple(tensor.shape) != shape:
        raise ConfigError(
            f"{key} must have shape {list(shape)} to match the data's features, "
            f"got {list(tensor.shape)}: {values}"
        )
    return tensor


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Inside: eval mode and no gradients (no dropout draws, no batch-norm statistics updated);
    after: the model's mode as it was. What the contract check and validation run in."""
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(training)
