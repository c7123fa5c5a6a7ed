"""gradtrace.setup.targets, the path every object is built on, and the model contract checked before
step 0: with classes of a user's kind, defined here."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gradtrace.components.models import check_contract, check_loss
from gradtrace.errors import ConfigError
from gradtrace.setup.targets import Target


class Widget:
    def __init__(self, size: int, *, colour: str = "red", in_features: int = 0) -> None:
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size}")
        self.size, self.colour, self.in_features = size, colour, in_features


class Anything:
    def __init__(self, **options: object) -> None:
        self.options = options


def target(node: dict, **kwargs) -> Target:
    return Target.from_config("model", {"_target_": f"{__name__}.{node.pop('cls')}", **node},
                              **kwargs)


def test_keys_become_arguments_and_run_values_go_only_where_taken():
    widget = target({"cls": "Widget", "size": 3}, optional=("in_features", "seed")).build(
        in_features=7, seed=1
    )
    assert (widget.size, widget.colour, widget.in_features) == (3, "red", 7)
    assert target({"cls": "Anything"}).build(in_features=7).options == {"in_features": 7}


def test_a_key_the_user_set_wins_over_the_run_value():
    widget = target({"cls": "Widget", "size": 1, "in_features": 2}, optional=("in_features",))
    assert widget.build(in_features=7).in_features == 2


def test_nested_targets_are_built():
    node = {"cls": "Anything", "act": {"_target_": "torch.nn.Tanh"}, "sizes": [1, 2]}
    built = target(node).build()
    assert isinstance(built.options["act"], nn.Tanh) and built.options["sizes"] == [1, 2]


@pytest.mark.parametrize(
    "node,message",
    [
        ({"cls": "Widget", "size": 1, "colour": "blue", "shape": 2},
         r"^model: tests?\S*Widget takes no argument shape; it takes size, colour: drop it with "
         r"~model\.shape$"),
        ({"cls": "Widget", "size": 1, "colur": "x"},
         r"takes no argument colur \(did you mean colour\?\)"),
        ({"cls": "Widget"}, r"^model: \S+Widget needs the argument size: set model\.size=\.\.\."),
        ({"cls": "Nope"}, r"^model\._target_=\S+\.Nope cannot be imported: \S+ has no attribute "
                          r"Nope$"),
    ],
)
def test_what_does_not_fit_is_one_line_before_building(node: dict, message: str):
    with pytest.raises(ConfigError, match=message):
        target(node, optional=("in_features",))


def test_what_the_constructor_raises_is_one_line_naming_group_and_target():
    with pytest.raises(ConfigError, match=r"^model: \S+Widget failed: ValueError: size must be "
                                          r">= 0, got -1$"):
        target({"cls": "Widget", "size": -1}).build()


def test_a_missing_or_odd_target_is_named():
    with pytest.raises(ConfigError, match=r"^loss\._target_ must name a class or function"):
        Target.from_config("loss", {"reduction": "sum"})
    with pytest.raises(ConfigError, match=r"^loss\._target_ must be a dotted path"):
        Target.from_config("loss", {"_target_": "MSELoss"})
    with pytest.raises(ConfigError, match=r"^loss\._target_=math\.pi is not a class or function"):
        Target.from_config("loss", {"_target_": "math.pi"})
    with pytest.raises(ConfigError, match=r"^model\._target_=\S+ is set by gradtrace itself|"
                                          r"^logger\.run_dir is set by gradtrace itself"):
        Target.from_config("logger", {"_target_": "gradtrace.loggers.NullLogger", "run_dir": "x"},
                           given=("run_dir", "columns"))


X = torch.ones(4, 3)
Y = torch.zeros(4)


class Columns(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.linear(inputs)  # [N, 1]: the classic mistake


class Counts(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(3))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return (inputs @ self.w).long()


class Dropping(nn.Module):
    """Dropout and batch norm: the check must not draw random numbers or update statistics."""

    def __init__(self) -> None:
        super().__init__()
        self.norm, self.drop, self.w = nn.BatchNorm1d(3), nn.Dropout(0.5), nn.Parameter(torch.ones(3))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.drop(self.norm(inputs)) @ self.w


@pytest.mark.parametrize(
    "loss_fn,message",
    [
        (torch.nn.MSELoss(reduction="none"),
         r"^loss\._target_=my\.Loss returned \[4\] for predictions of shape \[4\]; it must return "
         r"one floating-point number"),
        (lambda p, t: float((p - t).abs().mean()), r"returned float for predictions"),
        (lambda p, t: p.view(2, 3), r"^loss: my\.Loss failed: RuntimeError: "),
    ],
)
def test_the_loss_must_be_one_number(loss_fn, message: str):
    with pytest.raises(ConfigError, match=message):
        check_loss(loss_fn, "my.Loss", torch.ones(4), Y)


@pytest.mark.parametrize(
    "model,message",
    [
        (Columns(), r"^model\._target_=my\.Model returned predictions of shape \[4, 1\] for targets "
                    r"of shape \[4\]: it must return one number per sample \(return out\.squeeze"),
        (Counts(), r"^model\._target_=my\.Model returned torch\.int64 predictions of shape \[4\] "
                   r"for targets of shape \[4\]; they must be floating point$"),
        (nn.Identity(), r"^model\._target_=my\.Model has no trainable parameter$"),
    ],
)
def test_the_model_contract(model: nn.Module, message: str):
    with pytest.raises(ConfigError, match=message):
        check_contract(model, "my.Model", X, Y)


def test_the_contract_check_leaves_the_model_and_the_random_state_as_they_were():
    model = Dropping().train()
    stats = model.norm.running_mean.clone()
    inputs = torch.rand(4, 3)
    state = torch.get_rng_state()
    check_contract(model, "my.Dropping", inputs, Y)
    assert model.training and torch.equal(model.norm.running_mean, stats)
    assert torch.equal(torch.get_rng_state(), state)
