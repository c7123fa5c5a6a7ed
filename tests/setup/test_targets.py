"""gradtrace.setup.targets, the path every object is built on: with classes of a user's kind,
defined here. (The model contract checked before step 0: tests/components/test_tasks.py.)"""

from __future__ import annotations

import pytest
from torch import nn

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
