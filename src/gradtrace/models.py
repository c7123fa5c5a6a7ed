"""The worked examples' models. Each maps inputs [N, in_features] to predictions [N]."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from gradtrace.config import ConfigError


class Scalar(nn.Module):
    """One parameter `w`, predicted for every sample whatever its inputs."""

    def __init__(self, in_features: int, *, init: float = 3.0) -> None:
        super().__init__()
        del in_features  # the prediction does not depend on the inputs
        self.w = nn.Parameter(torch.tensor(float(init)))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.w.expand(inputs.shape[0])


class Linear(nn.Linear):
    """`torch.nn.Linear(in_features, 1)`, predictions squeezed from [N, 1] to [N]."""

    def __init__(
        self,
        in_features: int,
        *,
        weight: Optional[list[list[float]]] = None,
        bias: Optional[list[float]] = None,
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
    if tuple(tensor.shape) != shape:
        raise ConfigError(
            f"{key} must have shape {list(shape)} to match the data's features, "
            f"got {list(tensor.shape)}: {values}"
        )
    return tensor
