"""The worked examples' models, and the contract every model (a user's too) must keep: inputs
[N, in_features] in, one floating-point prediction per sample [N] out, at least one trainable
parameter. `check_contract` tests it on real data before step 0."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Optional

import torch
from torch import nn

from gradtrace.errors import ConfigError, failure, is_float32, require


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


def check_contract(
    model: nn.Module, target: str, inputs: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """One forward pass on a batch, without gradients and in eval mode (no dropout randomness,
    no batch-norm statistics updated), to stop before step 0 a model whose predictions do not
    fit the targets: a [N, 1] output would broadcast against [N] targets into an [N, N] loss and
    train silently on the wrong thing."""
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(f"model._target_={target} has no trainable parameter")
    with evaluating(model):
        preds = model(inputs)
    if not isinstance(preds, torch.Tensor):
        raise ConfigError(
            f"model._target_={target} returned {type(preds).__name__} for inputs of shape "
            f"{list(inputs.shape)}; it must return a tensor of shape {list(targets.shape)}"
        )
    if preds.shape != targets.shape:
        hint = " (return out.squeeze(-1))" if preds.shape == (*targets.shape, 1) else ""
        raise ConfigError(
            f"model._target_={target} returned predictions of shape {list(preds.shape)} for "
            f"targets of shape {list(targets.shape)}: it must return one number per sample"
            f"{hint}"
        )
    if not preds.is_floating_point():
        raise ConfigError(
            f"model._target_={target} returned {preds.dtype} predictions of shape "
            f"{list(preds.shape)} for targets of shape {list(targets.shape)}; they must be "
            f"floating point"
        )
    return preds


def check_loss(loss_fn: Callable[..., Any], target: str, preds: torch.Tensor,
               targets: torch.Tensor) -> None:
    """The loss of a batch must be one number: a per-sample loss (reduction="none") would stop
    backward() at step 0 with a traceback."""
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
