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
class GradCheckConfig:
    """trainer.grad_check: autograd vs. finite differences and closed forms (gradtrace.insight)."""

    every_steps: int = 0  # check at steps 0, every_steps, 2 * every_steps, ...; 0: never
    # An element fails when |autograd - reference| > abs_tolerance + tolerance * |reference|.
    tolerance: float = 1e-3
    abs_tolerance: float = 1e-5
    step_size: float = 1e-6  # h of the central differences, in parameter units (float64)
    strict: bool = False  # a failure stops the run (exit code 4); otherwise a warning

    def __post_init__(self) -> None:
        require(
            self.every_steps >= 0,
            "trainer.grad_check.every_steps",
            self.every_steps,
            "an integer >= 0 (0: off)",
        )
        for key in ("tolerance", "step_size"):
            value = getattr(self, key)
            allowed = "a finite number > 0"
            require(_finite(value) and value > 0, f"trainer.grad_check.{key}", value, allowed)
        require(
            _finite(self.abs_tolerance) and self.abs_tolerance >= 0,
            "trainer.grad_check.abs_tolerance",
            self.abs_tolerance,
            "a finite number >= 0",
        )


@dataclass
class TrainerConfig:
    steps: int = 100
    log_every_steps: int = 1
    # Tensors with at most this many elements are logged element by element, every logged step;
    # larger ones as L2 norms every logged step and histograms every histogram_every_steps.
    log_elements_max: int = 64
    histogram_every_steps: int = 100
    device: str = "auto"  # auto: CUDA when present, else CPU
    # torch CPU threads. null: torch's default, or, under a launcher that runs jobs side by side
    # (joblib, submitit), the cores shared out so that jobs x threads <= cores.
    threads: Optional[int] = None
    grad_check: GradCheckConfig = field(default_factory=GradCheckConfig)
    # Print (and log as text) a table of every parameter element's update for the first K steps.
    explain_steps: int = 0

    def __post_init__(self) -> None:
        require(self.steps >= 1, "trainer.steps", self.steps, "an integer >= 1")
        require(
            self.explain_steps >= 0, "trainer.explain_steps", self.explain_steps, "an integer >= 0"
        )
        require(
            self.threads is None or self.threads >= 1,
            "trainer.threads",
            self.threads,
            "null (automatic) or an integer >= 1",
        )
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


# --- landscape -------------------------------------------------------------------------------


@dataclass
class LandscapeConfig:
    """The loss-landscape picture drawn after training (gradtrace.insight.landscape)."""

    # Drawn when every parameter element is logged (tensors of at most trainer.log_elements_max
    # elements), as for the worked examples; other runs skip it with a line saying why.
    enabled: bool = True
    resolution: int = 41  # grid points per axis: the cost is resolution**2 losses on all samples
    # Two parameter elements as the slice's axes, e.g. ["weight[0,2]", "bias[0]"]; null: the
    # model's elements when it has one or two, else two random directions normalised per tensor.
    axes: Optional[list[str]] = None
    margin: float = 0.25  # added on each side of the trajectory, as a fraction of its extent

    def __post_init__(self) -> None:
        require(
            3 <= self.resolution <= 401,
            "landscape.resolution",
            self.resolution,
            "an integer in [3, 401]",
        )
        require(
            _finite(self.margin) and self.margin >= 0,
            "landscape.margin",
            self.margin,
            "a finite number >= 0",
        )
        require(
            self.axes is None or len(self.axes) == 2,
            "landscape.axes",
            self.axes if self.axes is None else list(self.axes),
            'null or two parameter elements, e.g. ["weight[0,2]","bias[0]"]',
        )


# --- the whole run ---------------------------------------------------------------------------


@dataclass
class TrainConfig:
    model: Any = MISSING
    data: Any = MISSING
    loss: Any = MISSING
    optim: Any = MISSING
    trainer: TrainerConfig = MISSING
    logger: Any = MISSING
    landscape: LandscapeConfig = MISSING
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
    "landscape": {"landscape": LandscapeConfig},
}


def register_resolvers() -> None:
    """The resolvers that run and sweep folder names use (configs/train.yaml)."""
    if not OmegaConf.has_resolver("gradtrace.pid"):
        # The process id keeps two runs started in the same second apart. Cached, like Hydra's
        # `now`: a parallel launcher's worker processes resolve the sweep folder again, and must
        # get the launching process's id from the cache Hydra copies into each job's config.
        OmegaConf.register_new_resolver("gradtrace.pid", lambda: f"p{os.getpid()}", use_cache=True)
        OmegaConf.register_new_resolver("gradtrace.suffix", lambda s: f"_{s}" if s else "")


# At import, not only in register(): joblib and submitit workers unpickle the task function, which
# imports this package, but never run scripts/train.py's `__main__` block; they resolve the job's
# folder name before the task starts.
register_resolvers()


def register() -> None:
    """Make the schemas and resolvers known to Hydra; call once before composing a config.

    Schemas are stored as `schema/<group>/<name>`, and each YAML option lists one in its defaults.
    """
    register_resolvers()
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    for group, schemas in SCHEMAS.items():
        for name, node in schemas.items():
            store.store(group=f"schema/{group}", name=name, node=node)


def validate(cfg: DictConfig) -> TrainConfig:
    """Resolve `cfg` and build the schema objects, which runs every range check."""
    return OmegaConf.to_object(cfg)  # type: ignore[return-value]
