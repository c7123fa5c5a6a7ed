"""Models for any supervised task: a logistic (softmax) regression, a multi-layer perceptron and a
small convolutional network. Each flattens (or, the CNN, keeps) its inputs and gives `outputs`,
the per-sample output shape the run's targets need (gradtrace.components.tasks.outputs): C logits
for C classes, one number per target element for regression. The input size comes from the data;
the class count from `weight`'s rows when it is given, else `classes`, else the data's labels.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from gradtrace.components.models import _tensor
from gradtrace.errors import ConfigError, require

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid}


def _output_shape(outputs: tuple[int, ...], classes: Optional[int]) -> tuple[int, ...]:
    """What the last layer gives a sample: `classes` logits when set, else the task's shape."""
    if classes is None:
        return tuple(outputs)
    require(isinstance(classes, int) and not isinstance(classes, bool) and classes >= 2,
            "model.classes", classes, "null (from the data's labels) or an integer >= 2")
    return (classes,)


class Logistic(nn.Linear):
    """One linear layer from the flattened inputs to C logits (softmax regression; with one output
    and loss=bce, logistic regression). `weight` [C, F] and `bias` [C] set the initial values, as
    model=linear's do."""

    def __init__(self, in_features: int, outputs: tuple[int, ...], *, classes: Optional[int] = None,
                 weight: Optional[list[list[float]]] = None,
                 bias: Optional[list[float]] = None) -> None:
        shape = _output_shape(outputs, classes)
        if weight is not None:  # its rows are the class count
            rows = len(weight) if isinstance(weight, list) else 0
            shape = shape if rows == math.prod(shape) else (rows,)
        size = math.prod(shape)
        super().__init__(in_features, size)
        self.shape = shape
        with torch.no_grad():
            if weight is not None:
                self.weight.copy_(_tensor("model.weight", weight, (size, in_features)))
            if bias is not None:
                self.bias.copy_(_tensor("model.bias", bias, (size,)))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return super().forward(inputs.flatten(1)).reshape(inputs.shape[0], *self.shape)


class MLP(nn.Module):
    """Linear layers of `hidden` widths, each followed by `activation`, then a linear output layer."""

    def __init__(self, in_features: int, outputs: tuple[int, ...], *, hidden: list[int],
                 activation: str = "relu", classes: Optional[int] = None) -> None:
        super().__init__()
        self.shape = _output_shape(outputs, classes)
        require(isinstance(hidden, (list, tuple)) and all(
            isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden),
            "model.hidden", hidden, "a list of layer widths >= 1, e.g. [64, 64] ([] for none)")
        require(activation in ACTIVATIONS, "model.activation", activation,
                f"one of {', '.join(ACTIVATIONS)}")
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), ACTIVATIONS[activation]()]
            width = size
        layers.append(nn.Linear(width, math.prod(self.shape)))
        self.layers = nn.Sequential(*layers)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.layers(inputs.flatten(1)).reshape(inputs.shape[0], *self.shape)


class ConvNet(nn.Module):
    """For images [N, C, H, W]: per entry of `channels`, a 3x3 convolution (padding 1), ReLU and
    2x2 max pooling; then a linear layer from the flattened feature maps to the outputs."""

    def __init__(self, input_shape: tuple[int, ...], outputs: tuple[int, ...], *,
                 channels: list[int], classes: Optional[int] = None) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ConfigError(
                f"model=convnet needs images [N, C, H, W], but the data give samples of shape "
                f"{list(input_shape)} (data=digits: data.images=true)"
            )
        require(isinstance(channels, (list, tuple)) and len(channels) >= 1 and all(
            isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in channels),
            "model.channels", channels, "a list of one or more channel counts >= 1, e.g. [16, 32]")
        self.shape = _output_shape(outputs, classes)
        depth, height, width = input_shape
        if min(height, width) < 2 ** len(channels):
            raise ConfigError(
                f"model.channels={list(channels)} pools {len(channels)} times, which needs images "
                f"of at least {2 ** len(channels)} pixels a side, got {height}x{width}"
            )
        layers: list[nn.Module] = []
        for size in channels:
            layers += [nn.Conv2d(depth, size, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            depth, height, width = size, height // 2, width // 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(depth * height * width, math.prod(self.shape))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        maps = self.features(inputs)  # [N, channels[-1], H / 2^k, W / 2^k]
        return self.head(maps.flatten(1)).reshape(inputs.shape[0], *self.shape)
