"""The config schema: the type and allowed range of every key.

Hydra checks types, unknown keys and unknown options while it composes (each YAML option pulls in
one of these dataclasses as its schema). Ranges are checked in `__post_init__`, which runs when
`validate` turns the composed config into these objects: before anything is built, before any
event file is written. Every message names the key, the value and what is allowed.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import II, MISSING, DictConfig, OmegaConf


class ConfigError(ValueError):
    """A config value, or a combination of values, that cannot work."""


def require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key} must be {allowed}, got {value!r}")


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


# --- model -----------------------------------------------------------------------------------


@dataclass
class ScalarModelConfig:
    _target_: str = "gradtrace.models.Scalar"
    init: float = 3.0

    def __post_init__(self) -> None:
        require(_finite(self.init), "model.init", self.init, "a finite number")


@dataclass
class LinearModelConfig:
    _target_: str = "gradtrace.models.Linear"
    # Initial values, shape [1, in_features] and [1]; null keeps PyTorch's own initialisation.
    # (Nested lists are typed Any: OmegaConf would refuse the ints in [[1, 2, 3]]; the model
    # checks shape and numbers.)
    weight: Optional[list[Any]] = None
    bias: Optional[list[float]] = None


@dataclass
class RegressorModelConfig:
    _target_: str = "gradtrace.models.Regressor"


# --- data ------------------------------------------------------------------------------------


def _check_batch_size(batch_size: Optional[int]) -> None:
    require(
        batch_size is None or batch_size >= 1,
        "data.batch_size",
        batch_size,
        "null (full batch) or an integer >= 1",
    )


@dataclass
class PointsDataConfig:
    """Samples written out by hand: inputs [N, D], targets [N]."""

    _target_: str = "gradtrace.data.Points"
    inputs: list[Any] = MISSING  # rows of numbers, checked by gradtrace.data.Points
    targets: list[float] = MISSING
    batch_size: Optional[int] = None
    seed: int = II("seed")

    def __post_init__(self) -> None:
        _check_batch_size(self.batch_size)


@dataclass
class UniformDataConfig:
    """Inputs [samples, features] and targets [samples], all uniform on [0, 1)."""

    _target_: str = "gradtrace.data.UniformRegression"
    samples: int = 1000
    features: int = 10
    batch_size: Optional[int] = None
    seed: int = II("seed")

    def __post_init__(self) -> None:
        require(self.samples >= 1, "data.samples", self.samples, "an integer >= 1")
        require(self.features >= 1, "data.features", self.features, "an integer >= 1")
        _check_batch_size(self.batch_size)


# --- loss ------------------------------------------------------------------------------------


@dataclass
class LossConfig:
    _target_: str = MISSING


# --- optim -----------------------------------------------------------------------------------


def _check_lr(lr: float) -> None:
    require(_finite(lr) and lr > 0, "optim.lr", lr, "a finite number > 0")


def _check_weight_decay(weight_decay: float) -> None:
    require(
        _finite(weight_decay) and weight_decay >= 0,
        "optim.weight_decay",
        weight_decay,
        "a finite number >= 0",
    )


@dataclass
class SGDConfig:
    _target_: str = "torch.optim.SGD"
    _partial_: bool = True  # the parameters come from the model at build time
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False

    def __post_init__(self) -> None:
        _check_lr(self.lr)
        require(
            _finite(self.momentum) and self.momentum >= 0,
            "optim.momentum",
            self.momentum,
            "a finite number >= 0",
        )
        _check_weight_decay(self.weight_decay)
        if self.nesterov and self.momentum == 0:
            raise ConfigError("optim.nesterov=true needs optim.momentum > 0, got 0.0")


@dataclass
class AdamConfig:
    _target_: str = "torch.optim.Adam"
    _partial_: bool = True
    lr: float = 0.001
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        _check_lr(self.lr)
        require(
            len(self.betas) == 2 and all(_finite(b) and 0 <= b < 1 for b in self.betas),
            "optim.betas",
            list(self.betas),
            "two numbers in [0, 1)",
        )
        require(_finite(self.eps) and self.eps > 0, "optim.eps", self.eps, "a finite number > 0")
        _check_weight_decay(self.weight_decay)


@dataclass
class ManualSGDConfig:
    _target_: str = "gradtrace.optim.ManualSGD"
    _partial_: bool = True
    lr: float = 0.01

    def __post_init__(self) -> None:
        _check_lr(self.lr)


# --- trainer and logger ----------------------------------------------------------------------


@dataclass
class TrainerConfig:
    steps: int = 100
    log_every_steps: int = 1
    # Tensors with at most this many elements are logged element by element, every logged step;
    # larger ones as L2 norms every logged step and histograms every histogram_every_steps.
    log_elements_max: int = 64
    histogram_every_steps: int = 100
    device: str = "auto"  # auto: CUDA when present, else CPU

    def __post_init__(self) -> None:
        require(self.steps >= 1, "trainer.steps", self.steps, "an integer >= 1")
        for key in ("log_every_steps", "histogram_every_steps"):
            value = getattr(self, key)
            require(value >= 1, f"trainer.{key}", value, "an integer >= 1")
        require(
            self.log_elements_max >= 0,
            "trainer.log_elements_max",
            self.log_elements_max,
            "an integer >= 0",
        )
        device = self.device
        require(
            device in ("auto", "cpu", "cuda") or device.startswith("cuda:"),
            "trainer.device",
            device,
            "one of auto, cpu, cuda, cuda:N",
        )


@dataclass
class TensorBoardLoggerConfig:
    _target_: str = "gradtrace.loggers.TensorBoardLogger"
    flush_every_secs: float = 5.0  # buffered steps reach the event file at least this often

    def __post_init__(self) -> None:
        require(
            _finite(self.flush_every_secs) and self.flush_every_secs > 0,
            "logger.flush_every_secs",
            self.flush_every_secs,
            "a finite number > 0",
        )


@dataclass
class NoLoggerConfig:
    _target_: str = "gradtrace.loggers.NullLogger"


# --- the whole run ---------------------------------------------------------------------------


@dataclass
class TrainConfig:
    model: Any = MISSING
    data: Any = MISSING
    loss: Any = MISSING
    optim: Any = MISSING
    trainer: TrainerConfig = MISSING
    logger: Any = MISSING
    seed: int = 0


SCHEMAS: dict[str, dict[str, type]] = {
    "model": {
        "scalar": ScalarModelConfig,
        "linear": LinearModelConfig,
        "regressor": RegressorModelConfig,
    },
    "data": {"points": PointsDataConfig, "uniform": UniformDataConfig},
    "loss": {"loss": LossConfig},
    "optim": {"sgd": SGDConfig, "adam": AdamConfig, "manual": ManualSGDConfig},
    "trainer": {"trainer": TrainerConfig},
    "logger": {"tensorboard": TensorBoardLoggerConfig, "none": NoLoggerConfig},
}


def register() -> None:
    """Make the schemas and resolvers known to Hydra; call once before composing a config.

    Schemas are stored as `schema/<group>/<name>`, and each YAML option lists one in its defaults.
    """
    if not OmegaConf.has_resolver("gradtrace.pid"):
        # Run folder names: the process id keeps two runs started in the same second apart.
        OmegaConf.register_new_resolver("gradtrace.pid", lambda: f"p{os.getpid()}")
        OmegaConf.register_new_resolver("gradtrace.suffix", lambda s: f"_{s}" if s else "")
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    for group, schemas in SCHEMAS.items():
        for name, node in schemas.items():
            store.store(group=f"schema/{group}", name=name, node=node)


def validate(cfg: DictConfig) -> TrainConfig:
    """Resolve `cfg` and build the schema objects, which runs every range check."""
    return OmegaConf.to_object(cfg)  # type: ignore[return-value]
